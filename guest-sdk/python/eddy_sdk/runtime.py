"""The operator lifecycle behind the component exports: ``describe``, ``init``, ``process``
and ``on-timer`` (one batch in, one batch result out) and ``migrate``, with the batch codec
of docs/batch-format.md (version 2). The component glue (``_wasm``) and the test harness
(``testing``) both drive an operator through :class:`Runtime`, so they cannot disagree.

Per batch, the runtime reads the key table and the prefetched value states once, then for
each record builds a :class:`Record` and calls the operator with the one :class:`Context`
it reuses from record to record. Emits go straight into the result (one ``bytearray``);
value-state writes are kept per (key, state), only the last one is written out; timer
changes are encoded as they are made.

Everything read here comes from the host, so every length and count is checked against the
bytes actually left: a malformed batch is a ``failed`` error, never a crash.
"""

from __future__ import annotations

import enum
import json
import struct
import sys
from collections import namedtuple
from typing import Any, List, Optional, Tuple

from .errors import (
    Failed,
    InvalidConfig,
    Unsupported,
    as_operator_error,
    describe_exception,
)
from .state import (
    _REFRESH,
    OperatorInfo,
    StateDescriptor,
    StateKind,
    StateRegistry,
)

__all__ = [
    "Record",
    "Timer",
    "TimeDomain",
    "LogLevel",
    "Context",
    "InitContext",
    "Runtime",
    "NO_WATERMARK",
    "log",
]

#: The only batch format version this SDK reads and writes.
VERSION = 2

#: The watermark before any record has set one (``i64::MIN``): no time has passed.
NO_WATERMARK = -(2**63)

_HEAD = struct.Struct("<BqI")  # version, processing time, key count
_U32 = struct.Struct("<I")
_RECORD = struct.Struct("<IqqI")  # key index, timestamp, watermark, value length
_TIMER = struct.Struct("<IqBq")  # key index, timestamp, domain, watermark
_WRITE = struct.Struct("<IIB")  # key index, handle, op
_TIMER_OP = struct.Struct("<IBBq")  # item, op, domain, timestamp
_ZERO = b"\x00\x00\x00\x00"

# The smallest encoded record (key index, timestamp, watermark, value length, header count)
# and an encoded timer.
_MIN_RECORD_SIZE = 4 + 8 + 8 + 4 + 4
_TIMER_SIZE = 4 + 8 + 1 + 8

# Per declared handle, where its prefetched value is (>= 0), or why there is none.
_NOT_PREFETCHED = -1
_NOT_VALUE = -2


class LogLevel(enum.IntEnum):
    """Severity of a log line (the WIT ``log.level``)."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


class TimeDomain(enum.IntEnum):
    """The clock a timer follows (the WIT ``time-domain``)."""

    #: The job's watermark: derived from record timestamps, deterministic on replay.
    EVENT_TIME = 0
    #: The host's wall clock.
    PROCESSING_TIME = 1

    def __str__(self) -> str:
        return "EventTime" if self is TimeDomain.EVENT_TIME else "ProcessingTime"


_DOMAINS = (TimeDomain.EVENT_TIME, TimeDomain.PROCESSING_TIME)


class Timer(namedtuple("Timer", ("timestamp", "domain"))):
    """A timer that fired: ``timestamp`` (ms, in its domain's clock) and ``domain``
    (:class:`TimeDomain`). A timer is identified by (key, domain, timestamp)."""

    __slots__ = ()


class Record(namedtuple("Record", ("key", "value", "timestamp", "watermark", "headers"))):
    """One input record, as ``process`` gets it (immutable).

    - ``key``: the bytes state is scoped to;
    - ``value``: the record's bytes;
    - ``timestamp``: the event timestamp, ms since the Unix epoch;
    - ``watermark``: the job's event-time watermark as the record reaches the operator
      (:data:`NO_WATERMARK` before there is one);
    - ``headers``: a tuple of ``(name, value)`` string pairs, in record order (names may
      repeat).
    """

    __slots__ = ()

    def key_str(self) -> str:
        """The key as UTF-8 text; a :class:`Failed` error names it when it is not UTF-8."""
        return _utf8(self.key, "key")

    def value_str(self) -> str:
        """The value as UTF-8 text; a :class:`Failed` error names it when it is not UTF-8."""
        return _utf8(self.value, "value")

    def json(self) -> Any:
        """The value parsed as JSON."""
        return json.loads(self.value)

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of the first header called ``name``, or ``default``."""
        for header, value in self.headers:
            if header == name:
                return value
        return default


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        shown = data[:64].decode(errors="replace")
        raise Failed(f"record {what} {shown!r} is not UTF-8: {error}") from None


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise Failed(f"cannot emit record: the {what} must be str or bytes, not {type(data).__name__}")


class _Malformed(Exception):
    """A batch that does not follow docs/batch-format.md."""

    def __init__(self, at: int, what: str) -> None:
        super().__init__(f"malformed batch at byte {at}: {what}")


# The host of the current call, for `log` outside a context; the component glue sets a
# default one.
_current_host: Any = None
default_host: Any = None


def log(level: LogLevel, message: str) -> None:
    """Logs a line into the host's structured logging, not tagged with a key (e.g. from
    ``init``). Natively, outside the test harness, it goes to standard error."""
    host = _current_host or default_host
    if host is None:
        print(f"[{LogLevel(level).name}] {message}", file=sys.stderr)
    else:
        host.log(LogLevel(level), None, str(message))


class Context:
    """What an operator can do while it handles one record or timer: read where it is
    (``key``, ``timestamp``, ``watermark``, ``processing_time``), emit records, register and
    delete timers of the current key, and log.

    Keyed state handles act on the current key (there is no way to reach another key's
    state). The SDK reuses one context from record to record: do not keep it beyond the
    call. Its attributes are read-only.
    """

    __slots__ = (
        # public, set per item
        "key",
        "timestamp",
        "watermark",
        "processing_time",
        # per item
        "_key_index",
        "_item",
        "_n_emits",
        # per call
        "_out",
        "_host",
        "_position",
        "_n_handles",
        "_handles",
        "_prefetched",
        "_written",
        "_fetched",
        "_timer_ops",
        "_n_timer_ops",
    )

    def __init__(self) -> None:
        self.key = b""
        self.timestamp = 0
        self.watermark = NO_WATERMARK
        self.processing_time = 0
        self._key_index = -1
        self._item = 0
        self._n_emits = 0
        self._out: Optional[bytearray] = None
        self._host: Any = None
        self._position: List[int] = []
        self._n_handles = 0
        self._handles: List[int] = []
        self._prefetched: List[Optional[bytes]] = []
        self._written: dict = {}
        self._fetched: dict = {}
        self._timer_ops = bytearray()
        self._n_timer_ops = 0

    def key_str(self) -> str:
        """The current key as UTF-8 text."""
        return _utf8(self.key, "key")

    def emit(self, key: Any, value: Any, headers: Any = None) -> None:
        """Emits an output record. ``key`` and ``value`` are ``bytes`` or ``str`` (UTF-8);
        ``headers`` a mapping or an iterable of ``(name, value)`` string pairs."""
        out = self._out
        if out is None:
            raise Failed("cannot emit record: emits are only possible inside `process` and `on_timer`")
        if type(key) is not bytes:
            key = key.encode() if type(key) is str else _as_bytes(key, "key")
        if type(value) is not bytes:
            value = value.encode() if type(value) is str else _as_bytes(value, "value")
        out += _U32.pack(len(key))
        out += key
        out += _U32.pack(len(value))
        out += value
        if headers:
            out += _encode_headers(headers)
        else:
            out += _ZERO
        self._n_emits += 1

    def register_event_time_timer(self, timestamp: int) -> None:
        """Registers an event-time timer for the current key: ``on_timer`` runs once the
        watermark reaches ``timestamp`` (before the key's next record when it has already).
        Registering the same timestamp twice fires once."""
        self._timer_op(1, 0, timestamp)

    def delete_event_time_timer(self, timestamp: int) -> None:
        """Deletes the current key's event-time timer at ``timestamp``, if there is one."""
        self._timer_op(0, 0, timestamp)

    def register_processing_time_timer(self, timestamp: int) -> None:
        """Registers a processing-time timer for the current key: ``on_timer`` runs once the
        host's wall clock reaches ``timestamp``."""
        self._timer_op(1, 1, timestamp)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        """Deletes the current key's processing-time timer at ``timestamp``, if there is one."""
        self._timer_op(0, 1, timestamp)

    def _timer_op(self, op: int, domain: int, timestamp: int) -> None:
        if self._out is None:
            raise Failed("timers can only be changed inside `process` and `on_timer`")
        try:
            self._timer_ops += _TIMER_OP.pack(self._item, op, domain, timestamp)
        except struct.error:
            raise Failed(f"timer timestamp {timestamp!r} is not a 64-bit integer") from None
        self._n_timer_ops += 1

    def log(self, level: LogLevel, message: str) -> None:
        """Logs a line into the host's structured logging, tagged with the current key."""
        host = self._host
        if host is None:
            log(level, message)
        else:
            host.log(LogLevel(level), self._key_index if self._key_index >= 0 else None, str(message))


def _encode_headers(headers: Any) -> bytes:
    pairs = headers.items() if hasattr(headers, "items") else headers
    out = bytearray(_ZERO)
    n = 0
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise Failed(f"cannot emit record: header {name!r} = {value!r} is not a pair of strings")
        name_bytes = name.encode()
        value_bytes = value.encode()
        out += _U32.pack(len(name_bytes))
        out += name_bytes
        out += _U32.pack(len(value_bytes))
        out += value_bytes
        n += 1
    _U32.pack_into(out, 0, n)
    return bytes(out)


class InitContext:
    """What ``init_state`` can do: log (operator state handles work there too). Keyed state
    is out of reach: there is no current key."""

    __slots__ = ("_host",)

    def __init__(self, host: Any) -> None:
        self._host = host

    def log(self, level: LogLevel, message: str) -> None:
        """Logs a line into the host's structured logging, not tagged with a key."""
        self._host.log(LogLevel(level), None, str(message))


def _read_bytes(data: bytes, pos: int, size: int, what: str) -> Tuple[bytes, int]:
    if pos + 4 > size:
        raise _Malformed(pos, f"{what} needs 4 bytes but only {size - pos} are left")
    (length,) = _U32.unpack_from(data, pos)
    start = pos + 4
    end = start + length
    if end > size:
        raise _Malformed(start, f"{what} needs {length} bytes but only {size - start} are left")
    return data[start:end], end


def _read_count(data: bytes, pos: int, size: int, min_size: int, what: str) -> int:
    if pos + 4 > size:
        raise _Malformed(pos, f"{what} needs 4 bytes but only {size - pos} are left")
    (count,) = _U32.unpack_from(data, pos)
    left = size - pos - 4
    if count * min_size > left:
        raise _Malformed(pos, f"{what} is {count}, more than the {left} bytes left can hold")
    return count


def _read_headers(data: bytes, pos: int, size: int, n: int) -> Tuple[tuple, int]:
    headers = []
    for _ in range(n):
        at = pos
        name, pos = _read_bytes(data, pos, size, "header name")
        value, pos = _read_bytes(data, pos, size, "header value")
        try:
            headers.append((name.decode(), value.decode()))
        except UnicodeDecodeError as error:
            raise _Malformed(at, f"header is not UTF-8: {error}") from None
    return tuple(headers), pos


class Runtime:
    """One operator instance and its batch tables. Not a public API: the component glue and
    the test harness drive operators through it."""

    def __init__(self, operator_class: type) -> None:
        self._class = operator_class
        self._operator: Any = None
        self._context = Context()
        self._states: List[StateDescriptor] = []
        self._kinds: List[StateKind] = []
        self._migrator: Any = None

    # -- describe ---------------------------------------------------------------------------

    @staticmethod
    def describe(operator_class: type) -> OperatorInfo:
        """The operator's name, version and states (opens a throw-away instance). Never
        raises: an ``open`` that fails declares what it declared until then, and ``init``
        reports the failure."""
        registry = StateRegistry(Context())
        try:
            operator_class().open(registry)
        except Exception:
            pass
        return OperatorInfo(
            name=str(getattr(operator_class, "name", "") or operator_class.__name__),
            version=str(getattr(operator_class, "version", "") or "0.0.0"),
            states=registry.descriptors,
            operator_states=registry.operator_descriptors,
        )

    @property
    def states(self) -> List[StateDescriptor]:
        """The keyed states of the initialized operator, in handle order."""
        return list(self._states)

    # -- init -------------------------------------------------------------------------------

    def init(self, config: str, host: Any) -> None:
        """Opens a new operator instance, initializes it with ``config`` (JSON text) and lets
        it reach its operator state through ``host``.

        A bad declaration, a config that is not JSON or an error of ``init`` is
        ``invalid-config`` (unless it is ``unsupported``); an error of ``init_state`` keeps
        its kind (``failed`` for plain exceptions).
        """
        global _current_host
        self._operator = None
        context = Context()
        registry = StateRegistry(context)
        try:
            operator = self._class()
            operator.open(registry)
        except Exception as error:
            raise InvalidConfig(f"open: {describe_exception(error)}") from None
        problems = registry.problems()
        if problems:
            raise InvalidConfig(problems[0])
        try:
            parsed = json.loads(config) if config.strip() else {}
        except ValueError as error:
            raise InvalidConfig(f"the config is not JSON: {error}") from None
        previous = _current_host
        _current_host = host
        try:
            try:
                operator.init(parsed)
            except Exception as error:
                if isinstance(error, (Unsupported, InvalidConfig)):
                    raise error
                raise InvalidConfig(describe_exception(error)) from None
            context._host = host
            try:
                operator.init_state(InitContext(host))
            except Exception as error:
                raise as_operator_error(error).with_context("init_state") from None
        finally:
            context._host = None
            _current_host = previous
        self._context = context
        self._states = registry.descriptors
        self._kinds = [state.kind for state in self._states]
        self._operator = operator

    # -- process / on-timer -----------------------------------------------------------------

    def process(self, data: bytes, host: Any) -> bytes:
        """Processes one encoded batch of records and returns the encoded result. Any
        record's error fails the whole batch, naming the record's position."""
        return self._call(data, host, False)

    def on_timer(self, data: bytes, host: Any) -> bytes:
        """Handles one encoded batch of fired timers (``on-timer``); as :meth:`process`."""
        return self._call(data, host, True)

    def _call(self, data: bytes, host: Any, timers: bool) -> bytes:
        global _current_host
        operator = self._operator
        if operator is None:
            export = "on-timer" if timers else "process"
            raise Failed(f"`{export}` was called before a successful `init`")
        context = self._context
        previous = _current_host
        _current_host = host
        context._host = host
        try:
            pos, keys = self._begin(data)
            if timers:
                out = self._timers(operator, context, data, pos, keys)
            else:
                out = self._records(operator, context, data, pos, keys)
            return bytes(out)
        except _Malformed as error:
            raise Failed(str(error)) from None
        except (struct.error, IndexError) as error:
            # A length that ran past the end of the buffer (the operator's own errors were
            # turned into OperatorErrors where it was called).
            raise Failed(f"malformed batch: {error}") from None
        finally:
            _current_host = previous
            context._key_index = -1
            context._out = None
            context._host = None
            context._prefetched = []
            context._written = {}
            context._fetched = {}
            context._timer_ops = bytearray()
            context._n_timer_ops = 0

    def _begin(self, data: bytes) -> Tuple[int, List[bytes]]:
        """Reads the head of a batch into the context: the key table and the prefetched
        value states. Returns the position of the item count, and the keys."""
        context = self._context
        size = len(data)
        if size < _HEAD.size:
            raise _Malformed(0, f"the batch head needs {_HEAD.size} bytes but only {size} are left")
        version, processing_time, _ = _HEAD.unpack_from(data, 0)
        if version != VERSION:
            raise _Malformed(0, f"version {version} is not the supported version {VERSION}")
        context.processing_time = processing_time
        n_keys = _read_count(data, 9, size, 4, "key count")
        pos = 13
        keys = []
        for _ in range(n_keys):
            key, pos = _read_bytes(data, pos, size, "key")
            keys.append(key)
        n_handles = _read_count(data, pos, size, 4, "value state count")
        pos += 4
        kinds = self._kinds
        position = [_NOT_PREFETCHED if kind is StateKind.VALUE else _NOT_VALUE for kind in kinds]
        handles = list(struct.unpack_from(f"<{n_handles}I", data, pos))
        for index, handle in enumerate(handles):
            at = pos + 4 * index
            if handle >= len(position):
                raise _Malformed(at, f"prefetched handle {handle} names no state (the operator "
                                     f"declares {len(position)})")
            if position[handle] == _NOT_VALUE:
                raise _Malformed(at, f"prefetched handle {handle} is not a value state")
            if position[handle] >= 0:
                raise _Malformed(at, f"value state handle {handle} is prefetched twice")
            position[handle] = index
        pos += 4 * n_handles
        n_slots = n_keys * n_handles
        if n_slots > size - pos:
            raise _Malformed(pos, f"{n_keys} keys × {n_handles} value states need more slots "
                                  f"than the {size - pos} bytes left")
        prefetched: List[Optional[bytes]] = []
        append = prefetched.append
        for _ in range(n_slots):
            flag = data[pos]
            if flag == 0:
                append(None)
                pos += 1
            elif flag == 1:
                value, pos = _read_bytes(data, pos + 1, size, "prefetched value")
                append(value)
            else:
                raise _Malformed(pos, f"slot present flag is {flag}, not 0 or 1")
        context._position = position
        context._n_handles = n_handles
        context._handles = handles
        context._prefetched = prefetched
        context._written = {}
        context._fetched = {}
        context._timer_ops = bytearray()
        context._n_timer_ops = 0
        return pos, keys

    def _records(self, operator: Any, context: Context, data: bytes, pos: int,
                 keys: List[bytes]) -> bytearray:
        size = len(data)
        n = _read_count(data, pos, size, _MIN_RECORD_SIZE, "record count")
        pos += 4
        n_keys = len(keys)
        out = bytearray(b"\x02")
        out += _U32.pack(n)
        context._out = out
        process = operator.process
        unpack_record = _RECORD.unpack_from
        unpack_u32 = _U32.unpack_from
        pack_u32_into = _U32.pack_into
        new = tuple.__new__
        for index in range(n):
            at = len(out)
            out += _ZERO
            # Read the record (the count check above leaves room for its fixed part).
            key_index, timestamp, watermark, length = unpack_record(data, pos)
            if key_index >= n_keys:
                raise _Malformed(pos, f"record key index {key_index} is outside the key table "
                                      f"of {n_keys} keys")
            start = pos + 24
            end = start + length
            if end + 4 > size:
                raise _Malformed(start, f"record value needs {length} bytes and a header count "
                                        f"but only {size - start} bytes are left")
            value = data[start:end]
            (n_headers,) = unpack_u32(data, end)
            pos = end + 4
            if n_headers:
                headers, pos = _read_headers(data, pos, size, n_headers)
            else:
                headers = ()
            key = keys[key_index]
            context._key_index = key_index
            context.key = key
            context.timestamp = timestamp
            context.watermark = watermark
            context._item = index
            context._n_emits = 0
            try:
                process(context, new(Record, (key, value, timestamp, watermark, headers)))
            except Exception as error:
                raise as_operator_error(error).with_context(f"record {index}") from None
            if context._n_emits:
                pack_u32_into(out, at, context._n_emits)
        if pos != size:
            raise Failed(f"malformed batch: {size - pos} bytes after the last record")
        self._write_output(out)
        return out

    def _timers(self, operator: Any, context: Context, data: bytes, pos: int,
                keys: List[bytes]) -> bytearray:
        size = len(data)
        n = _read_count(data, pos, size, _TIMER_SIZE, "timer count")
        pos += 4
        n_keys = len(keys)
        out = bytearray(b"\x02")
        out += _U32.pack(n)
        context._out = out
        on_timer = operator.on_timer
        for index in range(n):
            at = len(out)
            out += _ZERO
            key_index, timestamp, domain, watermark = _TIMER.unpack_from(data, pos)
            if key_index >= n_keys:
                raise _Malformed(pos, f"timer key index {key_index} is outside the key table "
                                      f"of {n_keys} keys")
            if domain > 1:
                raise _Malformed(pos + 12, f"timer domain {domain} is neither 0 (event time) "
                                           "nor 1 (processing time)")
            pos += _TIMER_SIZE
            timer = Timer(timestamp, _DOMAINS[domain])
            context._key_index = key_index
            context.key = keys[key_index]
            context.timestamp = timestamp
            context.watermark = watermark
            context._item = index
            context._n_emits = 0
            try:
                on_timer(context, timer)
            except Exception as error:
                raise as_operator_error(error).with_context(
                    f"timer {index} ({timer.domain} {timestamp})") from None
            if context._n_emits:
                _U32.pack_into(out, at, context._n_emits)
        if pos != size:
            raise Failed(f"malformed batch: {size - pos} bytes after the last timer")
        self._write_output(out)
        return out

    def _write_output(self, out: bytearray) -> None:
        """Appends the value-state writes (the last per key and state, in key then
        prefetch order) and the timer changes."""
        context = self._context
        written = context._written
        fetched = [(at, f[0]) for at, f in sorted(context._fetched.items()) if f[1]]
        out += _U32.pack(len(written) + len(fetched))
        if written:
            n_handles = context._n_handles
            handles = context._handles
            prefetched = context._prefetched
            pack_write = _WRITE.pack
            for slot in sorted(written):
                value = written[slot]
                key, position = divmod(slot, n_handles)
                if value is _REFRESH:
                    value = prefetched[slot]
                if value is None:
                    out += pack_write(key, handles[position], 0)
                else:
                    out += pack_write(key, handles[position], 1)
                    out += _U32.pack(len(value))
                    out += value
        for (key, handle), value in fetched:
            if value is None:
                out += _WRITE.pack(key, handle, 0)
            else:
                out += _WRITE.pack(key, handle, 1)
                out += _U32.pack(len(value))
                out += value
        out += _U32.pack(context._n_timer_ops)
        out += context._timer_ops

    # -- migrate ----------------------------------------------------------------------------

    def migrate(self, state: StateDescriptor, from_version: int, value: bytes) -> bytes:
        """Rewrites one stored value to the schema version this module declares, through the
        operator's ``migrate`` (called on an opened, not initialized, instance)."""
        try:
            if self._migrator is None:
                migrator = self._class()
                migrator.open(StateRegistry(Context()))
                self._migrator = migrator
            result = self._migrator.migrate(state, from_version, value)
        except Exception as error:
            raise as_operator_error(error) from None
        if isinstance(result, (bytearray, memoryview)):
            result = bytes(result)
        if not isinstance(result, bytes):
            raise Failed(f"migrate of state `{state.name}` returned {type(result).__name__}, "
                         "not bytes")
        return result
