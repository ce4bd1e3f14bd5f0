"""A test harness: runs an operator in plain CPython, without a host or Wasm, with the
host's state semantics kept in memory.

Records go through the same batch codec and the same runtime as in the component (the
harness encodes a batch as the host would, and decodes the result), so what passes here
exercises the code that runs in the component. Like the host, the harness:

- prefetches every value state of the batch's keys into the batch;
- applies a batch's effects (value-state writes, map and list calls, timer changes) only
  when ``process`` succeeds: an error discards all of them;
- iterates maps in the byte order of the encoded map keys, in pages;
- fires event-time timers when the watermark reaches them, from the front of the due
  timers, and a timer registered at or below the watermark before its key's next record;
- enforces state TTLs in processing time (the harness's clock, which
  :meth:`Harness.advance_processing_time` moves): each value, map entry and list item is
  stamped with the clock when written and expires once ``stamp + ttl_ms <= clock``; under
  ``TtlUpdate.ON_READ_AND_WRITE`` the reads made through host calls restamp what they
  return (``map-is-empty`` restamps nothing); a prefetched value's read is restamped by
  the SDK's write-back, as on the host;
- keeps one list per operator state (one worker's), reachable in ``init_state``,
  ``process`` and ``on_timer``.

>>> import eddy_sdk as eddy
>>> class Count(eddy.Operator):
...     def open(self, states):
...         self.count = states.value("count")
...     def process(self, ctx, record):
...         n = self.count.get(0) + 1
...         self.count.set(n)
...         ctx.emit(record.key, str(n))
>>> h = Harness(Count)
>>> h.process_str("a", "")
[('a', '1')]
>>> h.process_str("a", "")
[('a', '2')]
>>> h.value("count", "a")
2

The harness needs no componentize-py bindings: it never imports ``wit_world``.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from .errors import Failed, OperatorError, StateError
from .runtime import NO_WATERMARK, Context, LogLevel, Runtime, TimeDomain, Timer
from .state import JSON, StateKind, StateRegistry, TtlConfig, TtlUpdate

__all__ = [
    "Harness",
    "InputRecord",
    "Emitted",
    "LogLine",
    "MAX_PAGE",
    "MAX_FIRINGS",
    "run_jsonl",
    "run_jsonl_event_time",
    "sink_line",
    "source_record",
]

#: The most entries or keys one map page holds, whatever the operator asks for (the host
#: caps pages too).
MAX_PAGE = 1024

#: The most timers one firing fires before it fails: an operator that registers the timer it
#: handles again, at or below the watermark, would otherwise fire it forever.
MAX_FIRINGS = 1_000_000

_EVENT = int(TimeDomain.EVENT_TIME)
_PROCESSING = int(TimeDomain.PROCESSING_TIME)

Bytes = Union[bytes, str]


def _b(data: Bytes) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


@dataclass
class InputRecord:
    """An input record for :meth:`Harness.process_record` and :meth:`Harness.process_batch`
    (``str`` keys and values are taken as UTF-8)."""

    key: Bytes
    value: Bytes = b""
    timestamp: int = 0
    headers: List[Tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = _b(self.key)
        self.value = _b(self.value)
        if isinstance(self.headers, dict):
            self.headers = list(self.headers.items())
        self.headers = [(str(n), str(v)) for n, v in self.headers]


@dataclass
class Emitted:
    """A record an operator emitted."""

    key: bytes
    value: bytes
    headers: List[Tuple[str, str]] = field(default_factory=list)

    def key_str(self) -> str:
        """The key as UTF-8 text."""
        return self.key.decode()

    def value_str(self) -> str:
        """The value as UTF-8 text."""
        return self.value.decode()


@dataclass
class LogLine:
    """A line an operator logged."""

    level: LogLevel
    #: The key of the record being handled, for lines logged through a ``Context``.
    key: Optional[bytes]
    message: str


# -- the host side of the batch format ------------------------------------------------------

_U32 = struct.Struct("<I")


@dataclass
class _Batch:
    keys: List[bytes] = field(default_factory=list)
    handles: List[int] = field(default_factory=list)
    slots: List[Optional[bytes]] = field(default_factory=list)
    processing_time: int = 0
    # (key index, timestamp, watermark, value, headers)
    records: List[tuple] = field(default_factory=list)
    # (key index, timestamp, domain, watermark)
    timers: List[tuple] = field(default_factory=list)

    def encode(self) -> bytes:
        out = bytearray(struct.pack("<BqI", 2, self.processing_time, len(self.keys)))
        for key in self.keys:
            out += _U32.pack(len(key)) + key
        out += _U32.pack(len(self.handles))
        for handle in self.handles:
            out += _U32.pack(handle)
        for slot in self.slots:
            if slot is None:
                out.append(0)
            else:
                out.append(1)
                out += _U32.pack(len(slot)) + slot
        if self.timers:
            out += _U32.pack(len(self.timers))
            for key_index, timestamp, domain, watermark in self.timers:
                out += struct.pack("<IqBq", key_index, timestamp, domain, watermark)
        else:
            out += _U32.pack(len(self.records))
            for key_index, timestamp, watermark, value, headers in self.records:
                out += struct.pack("<IqqI", key_index, timestamp, watermark, len(value)) + value
                out += _U32.pack(len(headers))
                for name, text in headers:
                    for part in (name.encode(), text.encode()):
                        out += _U32.pack(len(part)) + part
        return bytes(out)


@dataclass
class _Output:
    emits: List[List[Emitted]]
    writes: List[Tuple[int, int, Optional[bytes]]]
    # (item, register, domain, timestamp)
    timer_ops: List[Tuple[int, bool, int, int]]


class _OutputReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise Failed(f"malformed result at byte {self.pos}: {what} runs past the end")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def bytes(self, what: str) -> bytes:
        (n,) = self.unpack("<I", what)
        return self.take(n, what)

    def text(self, what: str) -> str:
        try:
            return self.bytes(what).decode()
        except UnicodeDecodeError as error:
            raise Failed(f"malformed result: {what} is not UTF-8: {error}") from None


def _decode_output(data: bytes) -> _Output:
    reader = _OutputReader(data)
    (version,) = reader.unpack("<B", "version")
    if version != 2:
        raise Failed(f"malformed result: version {version}")
    (n_items,) = reader.unpack("<I", "item count")
    emits = []
    for _ in range(n_items):
        (n,) = reader.unpack("<I", "emit count")
        emitted = []
        for _ in range(n):
            key = reader.bytes("emit key")
            value = reader.bytes("emit value")
            (n_headers,) = reader.unpack("<I", "header count")
            headers = [(reader.text("header name"), reader.text("header value"))
                       for _ in range(n_headers)]
            emitted.append(Emitted(key, value, headers))
        emits.append(emitted)
    (n_writes,) = reader.unpack("<I", "write count")
    writes = []
    for _ in range(n_writes):
        key_index, handle, op = reader.unpack("<IIB", "write")
        if op not in (0, 1):
            raise Failed(f"malformed result: write op {op}")
        writes.append((key_index, handle, reader.bytes("write value") if op == 1 else None))
    (n_ops,) = reader.unpack("<I", "timer op count")
    timer_ops = []
    for _ in range(n_ops):
        item, op, domain, timestamp = reader.unpack("<IBBq", "timer op")
        if op not in (0, 1) or domain not in (0, 1):
            raise Failed(f"malformed result: timer op {op} domain {domain}")
        timer_ops.append((item, op == 1, domain, timestamp))
    if reader.pos != len(data):
        raise Failed(f"malformed result: {len(data) - reader.pos} bytes after the timer ops")
    return _Output(emits, writes, timer_ops)


# -- the in-memory store --------------------------------------------------------------------

# A stored value, map value or list item: (bytes, processing time of its last update).
_Stamped = Tuple[bytes, int]


class _Store:
    """The state of every key, by (handle, key), and the operator state. Empty maps and
    lists are removed, as a host that stores entries rather than containers would."""

    def __init__(self, kinds: List[StateKind], ttls: List[Optional[TtlConfig]], n_operator: int) -> None:
        self.kinds = kinds
        self.ttls = ttls
        self.now = 0
        self.values: Dict[Tuple[int, bytes], _Stamped] = {}
        self.maps: Dict[Tuple[int, bytes], Dict[bytes, _Stamped]] = {}
        self.lists: Dict[Tuple[int, bytes], List[_Stamped]] = {}
        # (domain, timestamp, key)
        self.timers: set = set()
        self.operator_lists: List[List[bytes]] = [[] for _ in range(n_operator)]

    def clone(self) -> "_Store":
        copy = _Store.__new__(_Store)
        copy.kinds = self.kinds
        copy.ttls = self.ttls
        copy.now = self.now
        copy.values = dict(self.values)
        copy.maps = {at: dict(entries) for at, entries in self.maps.items()}
        copy.lists = {at: list(items) for at, items in self.lists.items()}
        copy.timers = set(self.timers)
        copy.operator_lists = [list(items) for items in self.operator_lists]
        return copy

    def refreshes_on_read(self, handle: int) -> bool:
        ttl = self.ttls[handle] if 0 <= handle < len(self.ttls) else None
        return ttl is not None and ttl.update is TtlUpdate.ON_READ_AND_WRITE

    def expire(self) -> None:
        """Drops every value, map entry and list item whose TTL has run out."""
        now = self.now

        def expired(handle: int, updated: int) -> bool:
            ttl = self.ttls[handle] if 0 <= handle < len(self.ttls) else None
            return ttl is not None and updated + ttl.ttl_ms <= now

        self.values = {at: v for at, v in self.values.items() if not expired(at[0], v[1])}
        maps = {}
        for at, entries in self.maps.items():
            kept = {k: v for k, v in entries.items() if not expired(at[0], v[1])}
            if kept:
                maps[at] = kept
        self.maps = maps
        lists = {}
        for at, items in self.lists.items():
            kept_items = [item for item in items if not expired(at[0], item[1])]
            if kept_items:
                lists[at] = kept_items
        self.lists = lists

    def apply(self, keys: List[bytes], items: List[int], output: _Output) -> None:
        """Applies the value writes and timer changes of a call's output, after checking
        every one of them: a bad one fails the call with nothing applied."""
        writes = []
        for key_index, handle, value in output.writes:
            if not 0 <= key_index < len(keys):
                raise Failed(f"write to key index {key_index} outside the batch")
            if not 0 <= handle < len(self.kinds) or self.kinds[handle] is not StateKind.VALUE:
                raise Failed(f"write to handle {handle} that is not a value state")
            writes.append(((handle, keys[key_index]), value))
        timer_ops = []
        for item, register, domain, timestamp in output.timer_ops:
            if not 0 <= item < len(items):
                raise Failed(f"a timer change names input {item}")
            timer_ops.append((register, (domain, timestamp, keys[items[item]])))
        for at, value in writes:
            if value is None:
                self.values.pop(at, None)
            else:
                self.values[at] = (value, self.now)
        for register, timer in timer_ops:
            if register:
                self.timers.add(timer)
            else:
                self.timers.discard(timer)


class _MemoryHost:
    """The store, seen from inside one call: key indexes name the call's keys (none in
    ``init``)."""

    def __init__(self, store: _Store, keys: List[bytes], logs: List[LogLine]) -> None:
        self.store = store
        self.keys = keys
        self.logs = logs

    def _locate(self, state: int, key: int, kind: StateKind) -> Tuple[int, bytes]:
        kinds = self.store.kinds
        if not 0 <= state < len(kinds) or kinds[state] is not kind:
            raise StateError("bad-handle", state)
        if not 0 <= key < len(self.keys):
            raise StateError("bad-key", key)
        return state, self.keys[key]

    def _touch(self, state: int, entries: Dict[bytes, _Stamped], map_key: bytes) -> None:
        if self.store.refreshes_on_read(state) and map_key in entries:
            entries[map_key] = (entries[map_key][0], self.store.now)

    def value_get(self, state: int, key: int) -> Optional[bytes]:
        at = self._locate(state, key, StateKind.VALUE)
        value = self.store.values.get(at)
        if value is None:
            return None
        if self.store.refreshes_on_read(state):
            self.store.values[at] = (value[0], self.store.now)
        return value[0]

    def map_get(self, state: int, key: int, map_key: bytes) -> Optional[bytes]:
        at = self._locate(state, key, StateKind.MAP)
        entries = self.store.maps.get(at, {})
        self._touch(state, entries, map_key)
        value = entries.get(map_key)
        return None if value is None else value[0]

    def map_put(self, state: int, key: int, map_key: bytes, value: bytes) -> None:
        at = self._locate(state, key, StateKind.MAP)
        self.store.maps.setdefault(at, {})[bytes(map_key)] = (bytes(value), self.store.now)

    def map_remove(self, state: int, key: int, map_key: bytes) -> None:
        at = self._locate(state, key, StateKind.MAP)
        entries = self.store.maps.get(at)
        if entries is not None:
            entries.pop(map_key, None)
            if not entries:
                del self.store.maps[at]

    def map_contains(self, state: int, key: int, map_key: bytes) -> bool:
        at = self._locate(state, key, StateKind.MAP)
        entries = self.store.maps.get(at, {})
        self._touch(state, entries, map_key)
        return map_key in entries

    def map_is_empty(self, state: int, key: int) -> bool:
        at = self._locate(state, key, StateKind.MAP)
        return not self.store.maps.get(at)

    def map_clear(self, state: int, key: int) -> None:
        at = self._locate(state, key, StateKind.MAP)
        self.store.maps.pop(at, None)

    def map_entries(self, state: int, key: int, cursor: Optional[bytes], limit: int) -> tuple:
        at = self._locate(state, key, StateKind.MAP)
        entries = self.store.maps.get(at)
        if not entries:
            return [], None
        limit = max(1, min(limit, MAX_PAGE))
        ordered = sorted(entries)
        start = 0 if cursor is None else bisect_right(ordered, bytes(cursor))
        chosen = ordered[start:start + limit]
        following = chosen[-1] if start + limit < len(ordered) else None
        if self.store.refreshes_on_read(state):
            for map_key in chosen:
                entries[map_key] = (entries[map_key][0], self.store.now)
        return [(map_key, entries[map_key][0]) for map_key in chosen], following

    def map_keys(self, state: int, key: int, cursor: Optional[bytes], limit: int) -> tuple:
        entries, following = self.map_entries(state, key, cursor, limit)
        return [map_key for map_key, _ in entries], following

    def list_get(self, state: int, key: int) -> List[bytes]:
        at = self._locate(state, key, StateKind.LIST)
        items = self.store.lists.get(at, [])
        if self.store.refreshes_on_read(state) and items:
            items[:] = [(item[0], self.store.now) for item in items]
        return [item[0] for item in items]

    def list_add(self, state: int, key: int, value: bytes) -> None:
        at = self._locate(state, key, StateKind.LIST)
        self.store.lists.setdefault(at, []).append((bytes(value), self.store.now))

    def list_add_all(self, state: int, key: int, values: List[bytes]) -> None:
        at = self._locate(state, key, StateKind.LIST)
        if values:
            self.store.lists.setdefault(at, []).extend((bytes(v), self.store.now) for v in values)

    def list_update(self, state: int, key: int, values: List[bytes]) -> None:
        at = self._locate(state, key, StateKind.LIST)
        if values:
            self.store.lists[at] = [(bytes(v), self.store.now) for v in values]
        else:
            self.store.lists.pop(at, None)

    def list_clear(self, state: int, key: int) -> None:
        at = self._locate(state, key, StateKind.LIST)
        self.store.lists.pop(at, None)

    def _operator_list(self, state: int) -> List[bytes]:
        lists = self.store.operator_lists
        if not 0 <= state < len(lists):
            raise StateError("bad-handle", state)
        return lists[state]

    def operator_list_get(self, state: int) -> List[bytes]:
        return list(self._operator_list(state))

    def operator_list_add(self, state: int, value: bytes) -> None:
        self._operator_list(state).append(bytes(value))

    def operator_list_update(self, state: int, values: List[bytes]) -> None:
        self._operator_list(state)[:] = [bytes(v) for v in values]

    def log(self, level: LogLevel, key: Optional[int], message: str) -> None:
        shown = self.keys[key] if key is not None and 0 <= key < len(self.keys) else None
        self.logs.append(LogLine(LogLevel(level), shown, message))


# -- the harness ----------------------------------------------------------------------------


class Harness:
    """Runs an operator natively on in-memory state; see the module docs.

    ``Harness(MyOperator)`` opens the operator and initializes it with the config ``{}``
    (or ``config``: a dict or JSON text). An operator whose ``init`` fails still makes a
    harness: every call then raises the init error, and :attr:`init_error` shows it.
    Failing calls raise :class:`~eddy_sdk.OperatorError` (a :class:`~eddy_sdk.Trap` from
    :func:`~eddy_sdk.trap` passes through), with nothing of the call applied.
    """

    def __init__(self, operator_class: type, config: Any = None, *, prefetch_values: bool = True) -> None:
        self._class = operator_class
        self.info = Runtime.describe(operator_class)
        registry = StateRegistry(Context())
        try:
            operator_class().open(registry)
        except Exception:
            pass
        self._codecs = {state.name: codec for state, codec in zip(registry._states, registry._codecs)}
        self._operator_codecs = {state.name: codec for state, codec
                                 in zip(registry._operator_states, registry._operator_codecs)}
        self._store = _Store(
            [state.kind for state in self.info.states],
            [state.ttl for state in self.info.states],
            len(self.info.operator_states),
        )
        #: The lines logged so far.
        self.logs: List[LogLine] = []
        #: Whether value state is prefetched into batches (as the host does); with False,
        #: every value read goes through the ``value-get`` call instead.
        self.prefetch_values = prefetch_values
        self._watermark = NO_WATERMARK
        self._runtime = Runtime(operator_class)
        #: What the last ``init`` raised (None when it succeeded).
        self.init_error: Optional[OperatorError] = None
        self._init({} if config is None else config)

    def with_config(self, config: Any) -> "Harness":
        """Re-opens the operator with ``config`` (a dict or JSON text), keeping the state: as
        a new instance of the same worker, it sees the operator state in ``init_state``.
        Returns the harness."""
        self._init(config)
        return self

    def _init(self, config: Any) -> None:
        text = config if isinstance(config, str) else json.dumps(config)
        self._runtime = Runtime(self._class)
        snapshot = self._store.clone()
        host = _MemoryHost(self._store, [], self.logs)
        try:
            self._runtime.init(text, host)
            self.init_error = None
        except OperatorError as error:
            self.init_error = error
            self._store = snapshot

    def init_result(self) -> None:
        """Raises what the last ``init`` raised, if anything."""
        if self.init_error is not None:
            raise self.init_error

    @property
    def states(self) -> list:
        """The declared keyed states, in handle order."""
        return list(self.info.states)

    # -- records ----------------------------------------------------------------------------

    def process(self, key: Bytes, value: Bytes = b"") -> List[Tuple[bytes, bytes]]:
        """Processes one record (timestamp 0, no headers) and returns the emitted
        ``(key, value)`` pairs, with what event-time timers that fired around it emitted."""
        return [(e.key, e.value) for e in self.process_record(InputRecord(key, value))]

    def process_str(self, key: Bytes, value: Bytes = b"") -> List[Tuple[str, str]]:
        """Like :meth:`process`, with text keys and values."""
        return [(e.key_str(), e.value_str()) for e in self.process_record(InputRecord(key, value))]

    def process_record(self, record: InputRecord) -> List[Emitted]:
        """Processes one record and returns what it emitted, headers included (see
        :meth:`process_batch`)."""
        return self.process_batch([record])[0]

    def process_batch(self, records: Iterable[Any]) -> List[List[Emitted]]:
        """Processes records (:class:`InputRecord` or ``(key, value)`` pairs) as one batch,
        as the host does: one ``process`` call whose effects are applied together. Every
        record sees the harness's :attr:`watermark`. Returns what each record emitted.

        Event-time timers due at the watermark fire as on the host: before a record whose
        key has one, and after the batch when one of its keys has one; a timer that a
        record registers at or below the watermark fires before the next record of its key
        (the call is split there) or after the batch. What they emit comes first in the
        list of the record they fired before, or last in the last record's list.

        On an error nothing of the call is applied: the state and the timers are as before.
        """
        if self.init_error is not None:
            raise self.init_error.with_context("init failed")
        batch = [r if isinstance(r, InputRecord) else InputRecord(*r) for r in records]
        snapshot = self._store.clone()
        try:
            return self._run_records(batch)
        except BaseException:
            self._store = snapshot
            raise

    def _run_records(self, records: List[InputRecord]) -> List[List[Emitted]]:
        emitted: List[List[Emitted]] = [[] for _ in records]
        start = 0
        while start < len(records):
            if self._key_due(records[start].key):
                emitted[start].extend(self._fire(_EVENT, self._watermark))
            end = next((j for j in range(start + 1, len(records)) if self._key_due(records[j].key)),
                       len(records))
            run = records[start:end]
            kind, result = self._call(self._record_batch(run), split=True)
            if kind == "split":
                done = result
                kind, result = self._call(self._record_batch(run[:done]), split=False)
            else:
                done = len(run)
            for slot, out in zip(emitted[start:], result):
                slot.extend(out)
            start += done
        if any(self._key_due(record.key) for record in records):
            fired = self._fire(_EVENT, self._watermark)
            if emitted:
                emitted[-1].extend(fired)
        return emitted

    def _record_batch(self, records: List[InputRecord]) -> _Batch:
        batch = _Batch()
        index: Dict[bytes, int] = {}
        for record in records:
            key_index = index.get(record.key)
            if key_index is None:
                key_index = index[record.key] = len(batch.keys)
                batch.keys.append(record.key)
            batch.records.append(
                (key_index, record.timestamp, self._watermark, record.value, record.headers))
        return batch

    def _key_due(self, key: bytes) -> bool:
        watermark = self._watermark
        return any(d == _EVENT and ts <= watermark and k == key for d, ts, k in self._store.timers)

    def _call(self, batch: _Batch, split: bool) -> Tuple[str, Any]:
        """Encodes ``batch`` with its prefetched values, runs it, and applies its effects
        only when it succeeds, and, with ``split``, when no record registers an event-time
        timer due at a later record of its key in the batch: the call is then undone and
        says where to split it, as the host does."""
        store = self._store
        batch.processing_time = store.now
        if self.prefetch_values:
            batch.handles = [h for h, state in enumerate(self._runtime.states)
                             if state.kind is StateKind.VALUE]
        for key in batch.keys:
            for handle in batch.handles:
                value = store.values.get((handle, key))
                batch.slots.append(None if value is None else value[0])
        data = batch.encode()
        snapshot = store.clone()
        logged = len(self.logs)
        try:
            result = self._run(data, batch, split)
        except BaseException:
            self._store = snapshot
            raise
        if result[0] == "split":
            # The part before the split runs again, and logs again.
            self._store = snapshot
            del self.logs[logged:]
        return result

    def _run(self, data: bytes, batch: _Batch, split: bool) -> Tuple[str, Any]:
        host = _MemoryHost(self._store, batch.keys, self.logs)
        if batch.timers:
            output = self._runtime.on_timer(data, host)
            items = [timer[0] for timer in batch.timers]
        else:
            output = self._runtime.process(data, host)
            items = [record[0] for record in batch.records]
        decoded = _decode_output(output)
        if len(decoded.emits) != len(items):
            raise Failed(f"the result holds {len(decoded.emits)} items for {len(items)} inputs")
        if split and not batch.timers:
            j = _first_due_within(items, decoded, self._watermark)
            if j is not None:
                return "split", j
        self._store.apply(batch.keys, items, decoded)
        return "done", decoded.emits

    # -- time -------------------------------------------------------------------------------

    @property
    def watermark(self) -> int:
        """The watermark the next records see, and up to which event-time timers fired."""
        return self._watermark

    def advance_watermark(self, watermark: int) -> List[Emitted]:
        """Advances the watermark to ``watermark`` (a lower one changes nothing) and fires
        every event-time timer at or below it, as the host does: each ``on-timer`` call takes
        the due timers from the front, in (timestamp, key) order, up to the first key it
        holds already, and the calls go on until none is due. Returns what the timers
        emitted, in firing order. On an error the failing call's effects are discarded, the
        calls before it stay, and the timers not yet fired stay registered."""
        self._watermark = max(self._watermark, watermark)
        return self._fire(_EVENT, self._watermark)

    def advance_processing_time(self, now: int) -> List[Emitted]:
        """Sets the wall clock the operator sees (default 0; it never goes back), drops the
        state whose TTL has run out by then, and fires every processing-time timer at or
        below it, as :meth:`advance_watermark` fires event-time timers."""
        self._store.now = max(self._store.now, now)
        self._store.expire()
        return self._fire(_PROCESSING, self._store.now)

    @property
    def processing_time(self) -> int:
        """The wall clock the operator sees (ms)."""
        return self._store.now

    def timers(self) -> List[Tuple[bytes, Timer]]:
        """The registered timers, as ``(key, Timer)``, in (domain, timestamp, key) order."""
        return [(key, Timer(ts, TimeDomain(domain))) for domain, ts, key in sorted(self._store.timers)]

    def _fire(self, domain: int, upto: int) -> List[Emitted]:
        if self.init_error is not None:
            raise self.init_error.with_context("init failed")
        emitted: List[Emitted] = []
        fired = 0
        while True:
            taken = set()
            run = []
            for d, ts, key in sorted(t for t in self._store.timers if t[0] == domain):
                if ts > upto or key in taken:
                    break
                taken.add(key)
                run.append((ts, key))
            if not run:
                return emitted
            fired += len(run)
            if fired > MAX_FIRINGS:
                raise Failed(
                    f"more than {MAX_FIRINGS} timers fired in one go: `on_timer` keeps "
                    f"registering timers at or below the {TimeDomain(domain)} time {upto} (the "
                    "one it handles?); register a later one")
            batch = _Batch()
            for ts, key in run:
                self._store.timers.discard((domain, ts, key))
                batch.keys.append(key)
                batch.timers.append((len(batch.keys) - 1, ts, domain, self._watermark))
            try:
                _, out = self._call(batch, split=False)
            except BaseException:
                # The fired timers come back with the rest of the state (which the call's
                # undo restored as it was after they were taken).
                for ts, key in run:
                    self._store.timers.add((domain, ts, key))
                raise
            for item in out:
                emitted.extend(item)

    # -- state ------------------------------------------------------------------------------

    def _handle(self, name: str, kind: StateKind) -> int:
        for handle, state in enumerate(self.info.states):
            if state.name == name and state.kind is kind:
                return handle
        declared = ", ".join(f"{s.name} ({s.kind.value})" for s in self.info.states)
        raise Failed(f"no {kind.value} state named `{name}`; the operator declares: {declared}")

    def _codec(self, name: str) -> Any:
        return self._codecs.get(name, JSON)

    def value(self, state: str, key: Bytes, default: Any = None) -> Any:
        """The value of value state ``state`` for ``key`` (also of reducing and aggregating
        states: the reduced value or the accumulator), or ``default``."""
        handle = self._handle(state, StateKind.VALUE)
        stored = self._store.values.get((handle, _b(key)))
        return default if stored is None else self._codec(state).decode(stored[0])

    def set_value(self, state: str, key: Bytes, value: Any) -> None:
        """Sets the value of value state ``state`` for ``key``, e.g. to start a test from a
        state (stamped with the current :attr:`processing_time`)."""
        handle = self._handle(state, StateKind.VALUE)
        self._store.values[(handle, _b(key))] = (self._codec(state).encode(value), self._store.now)

    def map_get(self, state: str, key: Bytes, map_key: Any, default: Any = None) -> Any:
        """The value under ``map_key`` in map state ``state`` for ``key``, or ``default``."""
        handle = self._handle(state, StateKind.MAP)
        codec = self._codec(state)
        stored = self._store.maps.get((handle, _b(key)), {}).get(codec.encode(map_key))
        return default if stored is None else codec.decode(stored[0])

    def map_entries(self, state: str, key: Bytes) -> List[Tuple[Any, Any]]:
        """Every entry of map state ``state`` for ``key``, in the byte order of the encoded
        keys."""
        handle = self._handle(state, StateKind.MAP)
        codec = self._codec(state)
        entries = self._store.maps.get((handle, _b(key)), {})
        return [(codec.decode(k), codec.decode(entries[k][0])) for k in sorted(entries)]

    def list_items(self, state: str, key: Bytes) -> list:
        """The list state ``state`` for ``key`` (empty when it has none)."""
        handle = self._handle(state, StateKind.LIST)
        codec = self._codec(state)
        return [codec.decode(item[0]) for item in self._store.lists.get((handle, _b(key)), [])]

    def _operator_handle(self, name: str) -> int:
        for handle, state in enumerate(self.info.operator_states):
            if state.name == name:
                return handle
        declared = ", ".join(s.name for s in self.info.operator_states)
        raise Failed(f"no operator state named `{name}`; the operator declares: {declared}")

    def operator_list(self, state: str) -> list:
        """The items of operator list state ``state`` (this harness is one worker)."""
        handle = self._operator_handle(state)
        codec = self._operator_codecs.get(state, JSON)
        return [codec.decode(item) for item in self._store.operator_lists[handle]]

    def set_operator_list(self, state: str, items: Iterable[Any]) -> None:
        """Replaces the items of operator list state ``state``, e.g. to start a test from
        what the host would hand this worker after a redistribution. The running instance
        sees them from its next call; :meth:`with_config` starts a new instance, whose
        ``init_state`` sees them."""
        handle = self._operator_handle(state)
        codec = self._operator_codecs.get(state, JSON)
        self._store.operator_lists[handle] = [codec.encode(item) for item in items]

    def has_state(self, key: Bytes) -> bool:
        """Whether ``key`` has any state at all (a value, a non-empty map or list)."""
        key = _b(key)
        store = self._store
        return (any(k == key for _, k in store.values) or any(k == key for _, k in store.maps)
                or any(k == key for _, k in store.lists))


def _first_due_within(items: List[int], output: _Output, watermark: int) -> Optional[int]:
    """The first record before which an event-time timer that an earlier record of its key
    registered in the same call is due."""
    best = None
    for item, register, domain, timestamp in output.timer_ops:
        if not register or domain != _EVENT or timestamp > watermark or not 0 <= item < len(items):
            continue
        key = items[item]
        for j in range(item + 1, len(items)):
            if items[j] == key:
                if best is None or j < best:
                    best = j
                break
    return best


# -- golden files ---------------------------------------------------------------------------

_SINK_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def sink_line(emitted: Emitted) -> str:
    """One line of the file sink's JSON format: ``{"key":…,"value":…}``, with
    ``"headers":{…}`` (sorted by name) when the record has any."""
    line: Dict[str, Any] = {"key": emitted.key_str(), "value": emitted.value_str()}
    if emitted.headers:
        line["headers"] = dict(sorted(dict(emitted.headers).items()))
    return _SINK_ENCODER.encode(line)


def source_record(line: str) -> InputRecord:
    """One line of the file source's JSON format (``{"key":…,"value":…,"timestamp":…,
    "headers":{…}}``; timestamp and headers optional) as an input record."""
    fields = json.loads(line)
    unknown = set(fields) - {"key", "value", "timestamp", "headers"}
    if unknown:
        raise ValueError(f"input line {line!r}: unknown field {sorted(unknown)[0]!r}")
    return InputRecord(fields["key"], fields["value"], fields.get("timestamp") or 0,
                       sorted((fields.get("headers") or {}).items()))


def run_jsonl(harness: Harness, text: str) -> str:
    """Runs the file-source lines of ``text`` through ``harness`` one record at a time, as a
    job without event time does, and returns what the file sink would write (one line per
    emitted record). For golden tests: compare with an ``expected-output.jsonl``."""
    out = []
    for line in text.splitlines():
        if line.strip():
            for emitted in harness.process_record(source_record(line)):
                out.append(sink_line(emitted) + "\n")
    return "".join(out)


def run_jsonl_event_time(harness: Harness, text: str, max_out_of_orderness_ms: int = 0,
                         allowed_lateness_ms: int = 0) -> Tuple[str, str]:
    """Runs the file-source lines of ``text`` through ``harness`` the way the host runs a
    job with ``[event-time]`` (``max-out-of-orderness`` and ``allowed-lateness`` in ms) and
    one file source, and returns ``(output, late)``: what the file sink and the late-data
    file sink would write. For golden tests of event-time operators:

    - the watermark a record sees is the largest timestamp before it minus the
      out-of-orderness minus 1 (:data:`~eddy_sdk.NO_WATERMARK` before the first record);
    - before each record, the event-time timers due at that watermark fire (their emits come
      first);
    - a record whose timestamp plus the allowed lateness is at or below the watermark is
      late: it goes to the late output, with headers ``eddy-late-timestamp`` and
      ``eddy-late-watermark``, instead of to the operator;
    - when the input ends, the watermark goes to the maximum and every timer left fires.
    """
    output = []
    late = []
    newest: Optional[int] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        record = source_record(line)
        watermark = (NO_WATERMARK if newest is None
                     else max(NO_WATERMARK, newest - max_out_of_orderness_ms - 1))
        output.extend(sink_line(e) + "\n" for e in harness.advance_watermark(watermark))
        if newest is not None and record.timestamp + allowed_lateness_ms <= watermark:
            headers = list(record.headers) + [("eddy-late-timestamp", str(record.timestamp)),
                                              ("eddy-late-watermark", str(watermark))]
            late.append(sink_line(Emitted(record.key, record.value, headers)) + "\n")
            continue
        output.extend(sink_line(e) + "\n" for e in harness.process_record(record))
        newest = record.timestamp if newest is None else max(newest, record.timestamp)
    output.extend(sink_line(e) + "\n" for e in harness.advance_watermark(2**63 - 1))
    return "".join(output), "".join(late)
