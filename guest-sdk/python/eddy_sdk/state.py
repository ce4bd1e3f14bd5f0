"""State: the descriptors an operator declares in ``open`` through a :class:`StateRegistry`,
and the typed handles it gets back.

Keyed state (:class:`ValueState`, :class:`MapState`, :class:`ListState`,
:class:`ReducingState`, :class:`AggregatingState`) is scoped to the key of the record (or
timer) being handled: the handles take no key, they use the current one, and they work only
inside ``process`` and ``on_timer``. Operator state (:class:`OperatorListState`) is one list
per worker, not keyed, reachable in ``init_state``, ``process`` and ``on_timer``.

Values and map keys are encoded with the state's codec, JSON by default (:data:`JSON`:
compact UTF-8 JSON text, the same bytes ``serde_json`` writes, so ``eddy savepoint dump``
shows them and a Rust operator declaring ``Codec::Json`` reads them). Changing what a state
holds changes its bytes: bump its ``schema_version`` and implement ``Operator.migrate``.

Time to live: ``ttl=timedelta(...)`` makes the host drop each value, map entry and list item
once that much processing time has passed since its last update; ``ttl_update`` says
whether reads count as updates (:attr:`TtlUpdate.ON_READ_AND_WRITE`). Value state is
prefetched into the batch, where the host cannot see a read, so under ``ON_READ_AND_WRITE``
the SDK writes a read present value back (see :meth:`ValueState.get`).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator, List, Optional, Tuple

from .errors import Failed, StateError, describe_exception

__all__ = [
    "Codec",
    "JsonCodec",
    "JSON",
    "StateKind",
    "TtlUpdate",
    "TtlConfig",
    "Redistribution",
    "StateDescriptor",
    "OperatorStateDescriptor",
    "OperatorInfo",
    "StateRegistry",
    "ValueState",
    "MapState",
    "ListState",
    "ReducingState",
    "AggregateFunction",
    "AggregatingState",
    "OperatorListState",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SCHEMA_VERSION",
    "migrate_value",
]

#: How many entries :meth:`MapState.entries` and :meth:`MapState.keys` ask the host for at a
#: time, unless told otherwise.
DEFAULT_PAGE_SIZE = 256

#: The schema version a state gets unless its declaration says otherwise.
DEFAULT_SCHEMA_VERSION = 1

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

# -- codecs ---------------------------------------------------------------------------------


class Codec:
    """How a state's values and map keys become bytes. Subclass it (or give any object a
    ``name`` and ``encode``/``decode`` methods) for another format; the host passes unknown
    codec names through, but only ``"json"`` is understood by ``eddy savepoint dump``."""

    #: The name in the state descriptor.
    name = ""

    def encode(self, value: Any) -> bytes:
        """Encodes one value (or map key)."""
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        """Decodes one value (or map key)."""
        raise NotImplementedError


class JsonCodec(Codec):
    """Compact JSON text in UTF-8 (no spaces, non-ASCII kept as UTF-8, NaN refused): what
    ``serde_json::to_vec`` writes, so Rust operators, ``eddy savepoint dump`` and
    ``bootstrap`` share the bytes. Tuples become JSON arrays (and come back as lists)."""

    name = "json"

    def __init__(self) -> None:
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        decoder = json.JSONDecoder()
        self._encode = encoder.encode
        self._decode = decoder.decode
        # The C scanner alone is several times faster than `decode` on small values.
        self._scan = decoder.scan_once

    def encode(self, value: Any) -> bytes:
        """``value`` as compact JSON bytes."""
        if type(value) is int:  # the common case, without the encoder's machinery
            return str(value).encode()
        return self._encode(value).encode()

    def decode(self, data: bytes) -> Any:
        """The value of JSON bytes."""
        if data.isdigit() and (len(data) == 1 or data[0] != 48):
            return int(data)  # a non-negative integer: the common case, without the scanner
        text = data.decode()
        try:
            value, end = self._scan(text, 0)
        except StopIteration:
            # Leading whitespace, or not JSON: the full decoder says which.
            return self._decode(text)
        if end != len(text):
            return self._decode(text)
        return value


#: The default codec.
JSON = JsonCodec()


def _codec_named(name: Optional[str]) -> Optional[Codec]:
    return JSON if name == JSON.name else None


# -- descriptors ----------------------------------------------------------------------------


class StateKind(enum.Enum):
    """The kinds of keyed state (the WIT ``state-kind``)."""

    VALUE = "value"
    MAP = "map"
    LIST = "list"


class TtlUpdate(enum.Enum):
    """What restarts a value's time to live (the WIT ``ttl-update``)."""

    #: Creating or writing the value; a read does not. The default.
    ON_CREATE_AND_WRITE = "on-create-and-write"
    #: Creating, writing or reading it (a read of a value state costs a write-back).
    ON_READ_AND_WRITE = "on-read-and-write"


class Redistribution(enum.Enum):
    """How the items of an operator state are spread over the workers when a job starts
    (the WIT ``redistribution``)."""

    #: The items of all workers, in worker order, split into contiguous parts of nearly
    #: equal size, one per worker; with the parallelism unchanged each worker gets its own
    #: items back. The default.
    EVEN_SPLIT = "even-split"
    #: Every worker gets the items of all workers, in worker order.
    UNION = "union"


@dataclass(frozen=True)
class TtlConfig:
    """The time to live of a keyed state's values (the WIT ``ttl-config``)."""

    #: Milliseconds of processing time after its last update at which a value expires.
    ttl_ms: int
    #: What counts as an update.
    update: TtlUpdate = TtlUpdate.ON_CREATE_AND_WRITE


@dataclass(frozen=True)
class StateDescriptor:
    """Declares one keyed state (the WIT ``state-descriptor``); ``migrate`` gets one too."""

    name: str
    kind: StateKind
    schema_version: int = DEFAULT_SCHEMA_VERSION
    ttl: Optional[TtlConfig] = None
    #: The codec's name (``"json"``); None: unknown.
    codec: Optional[str] = "json"


@dataclass(frozen=True)
class OperatorStateDescriptor:
    """Declares one non-keyed operator state (the WIT ``operator-state-descriptor``)."""

    name: str
    schema_version: int = DEFAULT_SCHEMA_VERSION
    redistribution: Redistribution = Redistribution.EVEN_SPLIT
    codec: Optional[str] = "json"

    def as_list_state(self) -> StateDescriptor:
        """The descriptor ``migrate`` gets for each item of this state when its schema
        version changes: a list state of the same name, version and codec, without TTL."""
        return StateDescriptor(self.name, StateKind.LIST, self.schema_version, None, self.codec)


@dataclass
class OperatorInfo:
    """What an operator says about itself (the WIT ``operator-info``)."""

    name: str
    version: str
    states: List[StateDescriptor] = field(default_factory=list)
    operator_states: List[OperatorStateDescriptor] = field(default_factory=list)


def migrate_value(state: StateDescriptor, value: bytes, upgrade: Callable[[Any], Any]) -> bytes:
    """For ``Operator.migrate``: decodes ``value`` with the codec ``state`` names (JSON),
    passes it to ``upgrade`` and encodes what that returns.

    >>> migrate_value(StateDescriptor("count", StateKind.VALUE, 2), b"7", lambda n: {"n": n})
    b'{"n":7}'
    """
    codec = _codec_named(state.codec)
    if codec is None:
        raise Failed(f"migrate: state `{state.name}` has codec {state.codec!r}, not json")
    try:
        old = codec.decode(value)
    except Exception as error:
        raise Failed(f"migrate: the stored value of `{state.name}` does not decode: "
                     f"{describe_exception(error)}") from None
    return codec.encode(upgrade(old))


# -- the registry ---------------------------------------------------------------------------


class StateRegistry:
    """Where an operator declares its state, in ``open``.

    Each declaration returns a typed handle. Keyed states are numbered in declaration order
    (their handles in every state call); operator states have their own numbering. Names
    must be non-empty and unique across keyed and operator states. A bad declaration does
    not raise here: ``init`` fails with ``invalid-config`` naming it.

    Options of the keyed kinds: ``schema_version`` (default 1), ``ttl`` (a
    ``datetime.timedelta`` of at least 1 ms; default none), ``ttl_update`` (a
    :class:`TtlUpdate`, only with ``ttl``), ``codec`` (default :data:`JSON`).
    """

    def __init__(self, scope: Any = None) -> None:
        self._scope = scope
        self._states: List[StateDescriptor] = []
        self._codecs: List[Codec] = []
        self._operator_states: List[OperatorStateDescriptor] = []
        self._operator_codecs: List[Codec] = []
        self._problems: List[str] = []

    @property
    def descriptors(self) -> List[StateDescriptor]:
        """The keyed states declared so far, in handle order."""
        return list(self._states)

    @property
    def operator_descriptors(self) -> List[OperatorStateDescriptor]:
        """The operator states declared so far, in handle order."""
        return list(self._operator_states)

    def problems(self) -> List[str]:
        """What is wrong with the declarations (empty when nothing is)."""
        return list(self._problems)

    # keyed state

    def value(self, name: str, **options: Any) -> "ValueState":
        """Declares a value state: one value per key."""
        return ValueState(*self._declare(name, StateKind.VALUE, options))

    def map(self, name: str, **options: Any) -> "MapState":
        """Declares a map state: a map per key, iterated in the byte order of the encoded
        map keys."""
        return MapState(*self._declare(name, StateKind.MAP, options))

    def list(self, name: str, **options: Any) -> "ListState":
        """Declares a list state: a list per key."""
        return ListState(*self._declare(name, StateKind.LIST, options))

    def reducing(self, name: str, reduce: Callable[[Any, Any], Any], **options: Any) -> "ReducingState":
        """Declares a reducing state: a value state that folds every added value into one
        with ``reduce(current, added)`` (e.g. ``operator.add``)."""
        if not callable(reduce):
            self._problems.append(f"reducing state `{name}`: `reduce` is not callable")
        return ReducingState(ValueState(*self._declare(name, StateKind.VALUE, options)), reduce)

    def aggregating(self, name: str, function: "AggregateFunction", **options: Any) -> "AggregatingState":
        """Declares an aggregating state: a value state holding ``function``'s accumulator
        (see :class:`AggregateFunction`)."""
        for method in ("create_accumulator", "add", "get_result"):
            if not callable(getattr(function, method, None)):
                self._problems.append(
                    f"aggregating state `{name}`: the function has no `{method}` method")
        return AggregatingState(ValueState(*self._declare(name, StateKind.VALUE, options)), function)

    # operator state

    def operator_list(
        self,
        name: str,
        *,
        schema_version: int = DEFAULT_SCHEMA_VERSION,
        redistribution: Redistribution = Redistribution.EVEN_SPLIT,
        codec: Codec = JSON,
    ) -> "OperatorListState":
        """Declares an operator list state: one list of items per worker, not keyed, handed
        out again by ``redistribution`` when a job starts."""
        self._check_name(name, "operator state", len(self._operator_states))
        self._check_version(name, schema_version)
        codec = self._check_codec(name, codec)
        if not isinstance(redistribution, Redistribution):
            self._problems.append(
                f"operator state `{name}`: redistribution must be a Redistribution, got "
                f"{redistribution!r}")
            redistribution = Redistribution.EVEN_SPLIT
        handle = len(self._operator_states)
        descriptor = OperatorStateDescriptor(
            str(name), _as_u32(schema_version), redistribution, codec.name)
        self._operator_states.append(descriptor)
        self._operator_codecs.append(codec)
        return OperatorListState(self._scope, handle, descriptor, codec)

    # checks

    def _declare(self, name: str, kind: StateKind, options: dict) -> tuple:
        schema_version = options.pop("schema_version", DEFAULT_SCHEMA_VERSION)
        ttl = options.pop("ttl", None)
        ttl_update = options.pop("ttl_update", None)
        codec = options.pop("codec", JSON)
        for unknown in options:
            self._problems.append(
                f"state `{name}`: unknown option `{unknown}` (the options are schema_version, "
                "ttl, ttl_update and codec)")
        self._check_name(name, "state", len(self._states))
        self._check_version(name, schema_version)
        codec = self._check_codec(name, codec)
        ttl_config = self._ttl(name, ttl, ttl_update)
        handle = len(self._states)
        descriptor = StateDescriptor(str(name), kind, _as_u32(schema_version), ttl_config, codec.name)
        self._states.append(descriptor)
        self._codecs.append(codec)
        return self._scope, handle, descriptor, codec

    def _ttl(self, name: str, ttl: Any, update: Any) -> Optional[TtlConfig]:
        if update is not None and not isinstance(update, TtlUpdate):
            self._problems.append(f"state `{name}`: ttl_update must be a TtlUpdate, got {update!r}")
            update = None
        if ttl is None:
            if update is not None:
                self._problems.append(
                    f"state `{name}` sets `ttl_update={update}` without a TTL; add `ttl=...` or "
                    "drop the update policy")
            return None
        if not isinstance(ttl, timedelta):
            self._problems.append(
                f"state `{name}`: ttl must be a datetime.timedelta, got {ttl!r}")
            return None
        ttl_ms = ttl // timedelta(milliseconds=1)
        if ttl_ms <= 0:
            self._problems.append(
                f"state `{name}` has a TTL of {ttl}, under a millisecond: every value would "
                "expire at once; give a TTL of 1 ms or more")
            ttl_ms = 0
        return TtlConfig(min(ttl_ms, _U64_MAX), update or TtlUpdate.ON_CREATE_AND_WRITE)

    def _check_name(self, name: Any, what: str, index: int) -> None:
        if not isinstance(name, str) or not name:
            self._problems.append(
                f"{what} #{index} has an empty name; give every state a stable, unique name")
        elif any(state.name == name for state in self._states):
            self._problems.append(
                f"state `{name}` is declared twice (the first time as a keyed state); state "
                "names must be unique across keyed and operator states")
        elif any(state.name == name for state in self._operator_states):
            self._problems.append(
                f"state `{name}` is declared twice (the first time as an operator state); "
                "state names must be unique across keyed and operator states")

    def _check_version(self, name: str, version: Any) -> None:
        if type(version) is not int or not 0 <= version <= _U32_MAX:
            self._problems.append(
                f"state `{name}`: schema_version must be an integer from 0 to {_U32_MAX}, "
                f"got {version!r}")

    def _check_codec(self, name: str, codec: Any) -> Codec:
        if (isinstance(getattr(codec, "name", None), str) and codec.name
                and callable(getattr(codec, "encode", None))
                and callable(getattr(codec, "decode", None))):
            return codec
        self._problems.append(
            f"state `{name}`: codec must have a `name` and `encode`/`decode` methods, got {codec!r}")
        return JSON


def _as_u32(value: Any) -> int:
    return value if type(value) is int and 0 <= value <= _U32_MAX else DEFAULT_SCHEMA_VERSION


# -- keyed state handles --------------------------------------------------------------------

# A value-state write of the current batch: the encoded bytes (set), None (clear), or
# _REFRESH (a read of a present value whose TTL restarts on reads: the prefetched bytes are
# written back).
_UNTOUCHED = object()
_REFRESH = object()

_OUTSIDE = "keyed state is only reachable inside `process` and `on_timer`"


class _StateHandle:
    """What every state handle has: the runtime scope, the handle, the descriptor and the
    codec. ``_KIND`` names the state in error messages."""

    __slots__ = ("_scope", "_handle", "_descriptor", "_name", "_encode", "_decode")
    _KIND = "state"

    def __init__(self, scope: Any, handle: int, descriptor: Any, codec: Codec) -> None:
        self._scope = scope
        self._handle = handle
        self._descriptor = descriptor
        self._name = descriptor.name
        self._encode = codec.encode
        self._decode = codec.decode

    @property
    def handle(self) -> int:
        """The state's handle (its index in ``operator-info.states``, or in
        ``operator-info.operator-states`` for operator state)."""
        return self._handle

    @property
    def descriptor(self) -> Any:
        """The state's declaration."""
        return self._descriptor

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, handle={self._handle})"

    def _error(self, what: str, error: BaseException) -> Failed:
        return Failed(f"{self._KIND} `{self._name}`: {what}: {describe_exception(error)}")


class _KeyedState(_StateHandle):
    """A keyed state handle."""

    __slots__ = ()

    def _encoded(self, value: Any, what: str) -> bytes:
        try:
            return self._encode(value)
        except Exception as error:
            raise self._error(f"cannot encode {what}", error) from None

    def _decoded(self, data: bytes, what: str) -> Any:
        try:
            return self._decode(data)
        except Exception as error:
            raise self._error(f"cannot decode {what}", error) from None

    def _key(self, what: str) -> int:
        key = self._scope._key_index
        if key < 0:
            raise Failed(f"state `{self._name}`: {what}: {_OUTSIDE}")
        return key


class ValueState(_KeyedState):
    """One value per key.

    The host prefetches value state into the batch, so a read costs no boundary crossing;
    writes are collected and returned with the batch result (only the last write per key),
    so they cost none either.
    """

    __slots__ = ("_refresh",)

    def __init__(self, scope: Any, handle: int, descriptor: StateDescriptor, codec: Codec) -> None:
        super().__init__(scope, handle, descriptor, codec)
        ttl = descriptor.ttl
        self._refresh = ttl is not None and ttl.update is TtlUpdate.ON_READ_AND_WRITE

    def _raw(self) -> Optional[bytes]:
        """The current key's bytes: the batch's last write, else the value before the batch."""
        scope = self._scope
        key = scope._key_index
        if key < 0:
            raise Failed(f"state `{self._name}`: get: {_OUTSIDE}")
        position = scope._position[self._handle]
        if position >= 0:
            slot = key * scope._n_handles + position
            written = scope._written.get(slot, _UNTOUCHED)
            if written is _UNTOUCHED:
                raw = scope._prefetched[slot]
                if self._refresh and raw is not None:
                    scope._written[slot] = _REFRESH
                return raw
            if written is _REFRESH:
                return scope._prefetched[slot]
            return written
        return self._fetched(scope, key)

    def _fetched(self, scope: Any, key: int) -> Optional[bytes]:
        # A value state the host did not prefetch: read once per batch through `value-get`.
        at = (key, self._handle)
        fetched = scope._fetched.get(at)
        if fetched is None:
            try:
                value = scope._host.value_get(self._handle, key)
            except StateError as error:
                raise self._error("get", error) from None
            fetched = scope._fetched[at] = [value, False]
        if self._refresh and fetched[0] is not None:
            fetched[1] = True
        return fetched[0]

    def get(self, default: Any = None) -> Any:
        """The current key's value, or ``default`` when it has none (an expired value is
        none: the host does not prefetch it).

        Under ``TtlUpdate.ON_READ_AND_WRITE`` a read must restart the value's time to live,
        but the host cannot see it (the value came prefetched): a read of a present value
        makes the SDK write the same bytes back in the batch result, unless the batch writes
        the value itself (the last write wins). A read of an absent value writes nothing.
        """
        # `_raw`, inlined: this is the hot path of most operators.
        scope = self._scope
        key = scope._key_index
        if key < 0:
            raise Failed(f"state `{self._name}`: get: {_OUTSIDE}")
        position = scope._position[self._handle]
        if position >= 0:
            slot = key * scope._n_handles + position
            raw = scope._written.get(slot, _UNTOUCHED)
            if raw is _UNTOUCHED:
                raw = scope._prefetched[slot]
                if self._refresh and raw is not None:
                    scope._written[slot] = _REFRESH
            elif raw is _REFRESH:
                raw = scope._prefetched[slot]
        else:
            raw = self._fetched(scope, key)
        if raw is None:
            return default
        try:
            return self._decode(raw)
        except Exception as error:
            raise self._error("cannot decode value", error) from None

    def set(self, value: Any) -> None:
        """Sets the current key's value."""
        try:
            raw = self._encode(value)
        except Exception as error:
            raise self._error("cannot encode value", error) from None
        scope = self._scope
        key = scope._key_index
        if key < 0:
            raise Failed(f"state `{self._name}`: set: {_OUTSIDE}")
        position = scope._position[self._handle]
        if position >= 0:
            scope._written[key * scope._n_handles + position] = raw
        else:
            scope._fetched[(key, self._handle)] = [raw, True]

    def clear(self) -> None:
        """Removes the current key's value."""
        self._write(None, "clear")

    def _write(self, raw: Optional[bytes], what: str) -> None:
        scope = self._scope
        key = scope._key_index
        if key < 0:
            raise Failed(f"state `{self._name}`: {what}: {_OUTSIDE}")
        position = scope._position[self._handle]
        if position >= 0:
            scope._written[key * scope._n_handles + position] = raw
        else:
            scope._fetched[(key, self._handle)] = [raw, True]


class MapState(_KeyedState):
    """A map per key. Every call crosses to the host (map state is not prefetched).

    Map keys are encoded with the codec, and the host orders entries by those **encoded
    bytes**: with JSON, strings come in the byte order of their quoted text, numbers in the
    order of their decimal text (``10`` before ``9``). Sort what you iterate if you need
    another order.
    """

    __slots__ = ()

    def _host(self, what: str) -> Tuple[Any, int]:
        return self._scope._host, self._key(what)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when there is none."""
        host, k = self._host("get")
        map_key = self._encoded(key, "map key")
        try:
            raw = host.map_get(self._handle, k, map_key)
        except StateError as error:
            raise self._error("get", error) from None
        return default if raw is None else self._decoded(raw, "map value")

    def put(self, key: Any, value: Any) -> None:
        """Puts ``value`` under ``key``, replacing any value there."""
        host, k = self._host("put")
        map_key = self._encoded(key, "map key")
        raw = self._encoded(value, "map value")
        try:
            host.map_put(self._handle, k, map_key, raw)
        except StateError as error:
            raise self._error("put", error) from None

    def remove(self, key: Any) -> None:
        """Removes ``key`` (nothing happens when it is absent)."""
        host, k = self._host("remove")
        map_key = self._encoded(key, "map key")
        try:
            host.map_remove(self._handle, k, map_key)
        except StateError as error:
            raise self._error("remove", error) from None

    def contains(self, key: Any) -> bool:
        """Whether the map holds ``key``."""
        host, k = self._host("contains")
        map_key = self._encoded(key, "map key")
        try:
            return bool(host.map_contains(self._handle, k, map_key))
        except StateError as error:
            raise self._error("contains", error) from None

    def is_empty(self) -> bool:
        """Whether the map is empty."""
        host, k = self._host("is-empty")
        try:
            return bool(host.map_is_empty(self._handle, k))
        except StateError as error:
            raise self._error("is-empty", error) from None

    def clear(self) -> None:
        """Removes every entry."""
        host, k = self._host("clear")
        try:
            host.map_clear(self._handle, k)
        except StateError as error:
            raise self._error("clear", error) from None

    def entries(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Tuple[Any, Any]]:
        """The ``(key, value)`` entries, in the byte order of the encoded keys, fetched from
        the host ``page_size`` entries at a time, so a large map never crosses the boundary
        at once. Changes behind the cursor are safe while iterating (each page starts after
        the last key of the previous one); iterate within the same call."""
        host, k = self._host("entries")
        decode = self._decoded
        for page in self._pages("entries", host.map_entries, k, page_size):
            for map_key, value in page:
                yield decode(map_key, "map key"), decode(value, "map value")

    def keys(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Any]:
        """The keys, in the byte order of their encoding, paged like :meth:`entries`."""
        host, k = self._host("keys")
        decode = self._decoded
        for page in self._pages("keys", host.map_keys, k, page_size):
            for map_key in page:
                yield decode(map_key, "map key")

    def values(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Any]:
        """The values, in the byte order of their keys, paged like :meth:`entries`."""
        for _, value in self.entries(page_size):
            yield value

    def _pages(self, what: str, fetch: Callable, key: int, page_size: int) -> Iterator[list]:
        size = max(1, min(int(page_size), _U32_MAX))
        cursor = None
        while True:
            try:
                items, following = fetch(self._handle, key, cursor, size)
            except StateError as error:
                raise self._error(what, error) from None
            if not items and following is not None and following == cursor:
                raise Failed(f"state `{self._name}`: {what}: the host returned an empty page "
                             "that does not advance the cursor")
            yield items
            if following is None:
                return
            cursor = following


class ListState(_KeyedState):
    """A list per key. Every call crosses to the host (list state is not prefetched)."""

    __slots__ = ()

    def _host(self, what: str) -> Tuple[Any, int]:
        return self._scope._host, self._key(what)

    def get(self) -> list:
        """The whole list (empty when the key has none)."""
        host, k = self._host("get")
        try:
            items = host.list_get(self._handle, k)
        except StateError as error:
            raise self._error("get", error) from None
        decode = self._decoded
        return [decode(item, "list element") for item in items]

    def add(self, value: Any) -> None:
        """Appends one element."""
        host, k = self._host("add")
        raw = self._encoded(value, "list element")
        try:
            host.list_add(self._handle, k, raw)
        except StateError as error:
            raise self._error("add", error) from None

    def add_all(self, values: Any) -> None:
        """Appends every element of ``values``, in one host call."""
        host, k = self._host("add-all")
        encoded = [self._encoded(value, "list element") for value in values]
        if not encoded:
            return
        try:
            host.list_add_all(self._handle, k, encoded)
        except StateError as error:
            raise self._error("add-all", error) from None

    def update(self, values: Any) -> None:
        """Replaces the whole list with ``values``."""
        host, k = self._host("update")
        encoded = [self._encoded(value, "list element") for value in values]
        try:
            host.list_update(self._handle, k, encoded)
        except StateError as error:
            raise self._error("update", error) from None

    def clear(self) -> None:
        """Removes the list."""
        host, k = self._host("clear")
        try:
            host.list_clear(self._handle, k)
        except StateError as error:
            raise self._error("clear", error) from None


class ReducingState:
    """A value state that folds every added value into one with a reduce function, e.g. a
    sum. Reads behave as :meth:`ValueState.get` (TTL write-back included)."""

    __slots__ = ("_value", "_reduce")

    def __init__(self, value: ValueState, reduce: Callable[[Any, Any], Any]) -> None:
        self._value = value
        self._reduce = reduce

    @property
    def handle(self) -> int:
        """The state's handle."""
        return self._value.handle

    def add(self, value: Any) -> None:
        """Folds ``value`` into the current key's value (which becomes ``value`` when there
        is none)."""
        raw = self._value._raw()
        if raw is not None:
            value = self._reduce(self._value._decoded(raw, "value"), value)
        self._value.set(value)

    def get(self, default: Any = None) -> Any:
        """The current key's reduced value, or ``default`` if nothing was added."""
        return self._value.get(default)

    def clear(self) -> None:
        """Forgets the current key's value."""
        self._value.clear()


class AggregateFunction:
    """An incremental aggregation, as Flink's ``AggregateFunction``: inputs are added to an
    accumulator (the stored state), from which a result is computed on read.

    ``add`` returns the new accumulator (it may change the one it gets and return it).

    >>> class Average(AggregateFunction):
    ...     def create_accumulator(self): return [0, 0]           # [sum, count]
    ...     def add(self, value, acc): return [acc[0] + value, acc[1] + 1]
    ...     def get_result(self, acc): return acc[0] / max(acc[1], 1)
    """

    def create_accumulator(self) -> Any:
        """A new, empty accumulator."""
        raise NotImplementedError

    def add(self, value: Any, accumulator: Any) -> Any:
        """Adds one input to the accumulator; returns the accumulator."""
        raise NotImplementedError

    def get_result(self, accumulator: Any) -> Any:
        """The result of the accumulator."""
        raise NotImplementedError


class AggregatingState:
    """A value state holding an :class:`AggregateFunction`'s accumulator. Reads behave as
    :meth:`ValueState.get` (TTL write-back included)."""

    __slots__ = ("_value", "_function")

    def __init__(self, value: ValueState, function: AggregateFunction) -> None:
        self._value = value
        self._function = function

    @property
    def handle(self) -> int:
        """The state's handle."""
        return self._value.handle

    @property
    def function(self) -> AggregateFunction:
        """The aggregate function."""
        return self._function

    def add(self, value: Any) -> None:
        """Adds ``value`` to the current key's accumulator (a new one when there is none)."""
        raw = self._value._raw()
        if raw is None:
            accumulator = self._function.create_accumulator()
        else:
            accumulator = self._value._decoded(raw, "value")
        self._value.set(self._function.add(value, accumulator))

    def get(self, default: Any = None) -> Any:
        """The current key's result, or ``default`` if nothing was added."""
        raw = self._value._raw()
        if raw is None:
            return default
        return self._function.get_result(self._value._decoded(raw, "value"))

    def accumulator(self, default: Any = None) -> Any:
        """The current key's accumulator, or ``default`` if nothing was added."""
        return self._value.get(default)

    def clear(self) -> None:
        """Forgets the current key's accumulator."""
        self._value.clear()


# -- operator state -------------------------------------------------------------------------


class OperatorListState(_StateHandle):
    """A list of items per worker, not scoped to a key (Flink's operator ``ListState``).

    Reachable in ``init_state`` (e.g. to rebuild an in-memory structure when an instance
    starts), ``process`` and ``on_timer``. When a job starts (after a restart, a restore, a
    change of parallelism) the host hands the items out again by the state's
    :class:`Redistribution`. Changes made during a call that fails are undone with the rest
    of the call's effects. Every call crosses to the host; there is no TTL for operator
    state.
    """

    __slots__ = ()
    _KIND = "operator state"

    def _host(self, what: str) -> Any:
        host = self._scope._host
        if host is None:
            raise Failed(f"operator state `{self._name}`: {what}: operator state is only "
                         "reachable inside `init_state`, `process` and `on_timer`")
        return host

    def _encoded(self, value: Any) -> bytes:
        try:
            return self._encode(value)
        except Exception as error:
            raise self._error("cannot encode item", error) from None

    def get(self) -> list:
        """This worker's items, oldest first (empty when there are none)."""
        host = self._host("get")
        try:
            items = host.operator_list_get(self._handle)
        except StateError as error:
            raise self._error("get", error) from None
        out = []
        for item in items:
            try:
                out.append(self._decode(item))
            except Exception as error:
                raise self._error("cannot decode item", error) from None
        return out

    def add(self, value: Any) -> None:
        """Appends one item."""
        host = self._host("add")
        raw = self._encoded(value)
        try:
            host.operator_list_add(self._handle, raw)
        except StateError as error:
            raise self._error("add", error) from None

    def add_all(self, values: Any) -> None:
        """Appends every item of ``values``, in order (one host call per item: the contract
        has no add-all for operator state; :meth:`update` writes many at once)."""
        host = self._host("add-all")
        for raw in [self._encoded(value) for value in values]:
            try:
                host.operator_list_add(self._handle, raw)
            except StateError as error:
                raise self._error("add-all", error) from None

    def update(self, values: Any) -> None:
        """Replaces this worker's items with ``values`` (an empty list clears them)."""
        host = self._host("update")
        encoded = [self._encoded(value) for value in values]
        try:
            host.operator_list_update(self._handle, encoded)
        except StateError as error:
            raise self._error("update", error) from None

    def clear(self) -> None:
        """Removes this worker's items."""
        self.update([])
