"""The Python guest SDK for Eddy operators.

An operator is a subclass of :class:`Operator`: it declares its keyed and operator state in
``open``, reads its configuration in ``init`` and handles one record at a time in
``process``. ``Operator = eddy_sdk.export(MyOperator)`` in the project's ``main.py`` makes
it the ``operator`` export of a component of the ``eddy:operator/operator-world`` contract
(``wit/operator.wit``), built with componentize-py::

    import eddy_sdk as eddy

    class WordCount(eddy.Operator):
        \"\"\"Counts records per key and emits the running count.\"\"\"

        name = "word-count"
        version = "0.1.0"

        def open(self, states):
            self.count = states.value("count")

        def process(self, ctx, record):
            count = self.count.get(0) + 1
            self.count.set(count)
            ctx.emit(record.key, str(count))

    Operator = eddy.export(WordCount)

The SDK hides the contract's batching: the host hands over a whole batch of records in one
call, with the value state of the batch's keys prefetched (docs/batch-format.md); the SDK
decodes it, calls ``process`` per record, and returns every emitted record, value-state
write and timer change in one result. Map and list state are reached through host calls.

Event-time windows (tumbling, sliding, session) are in :mod:`eddy_sdk.window`, built on
keyed state and timers.

Natively (plain CPython, no Wasm), :class:`eddy_sdk.testing.Harness` runs an operator on
in-memory state that behaves like the host's.
"""

from __future__ import annotations

from typing import Any

from .errors import Failed, InvalidConfig, OperatorError, StateError, Unsupported
from .runtime import (
    NO_WATERMARK,
    Context,
    InitContext,
    LogLevel,
    Record,
    TimeDomain,
    Timer,
    log,
)
from .state import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SCHEMA_VERSION,
    JSON,
    AggregateFunction,
    AggregatingState,
    Codec,
    JsonCodec,
    ListState,
    MapState,
    OperatorInfo,
    OperatorListState,
    OperatorStateDescriptor,
    ReducingState,
    Redistribution,
    StateDescriptor,
    StateKind,
    StateRegistry,
    TtlConfig,
    TtlUpdate,
    ValueState,
    migrate_value,
)
from .window import (
    MergingAggregateFunction,
    ProcessWindowFunction,
    SessionWindows,
    SlidingWindows,
    TumblingWindows,
    Window,
    Windows,
)

__all__ = [
    "Operator",
    "export",
    "trap",
    "Trap",
    # errors
    "OperatorError",
    "Failed",
    "InvalidConfig",
    "Unsupported",
    "StateError",
    # records, time, context
    "Record",
    "Timer",
    "TimeDomain",
    "NO_WATERMARK",
    "Context",
    "InitContext",
    "LogLevel",
    "log",
    # state
    "StateRegistry",
    "ValueState",
    "MapState",
    "ListState",
    "ReducingState",
    "AggregateFunction",
    "AggregatingState",
    "OperatorListState",
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
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SCHEMA_VERSION",
    "migrate_value",
    # event-time windows (the rest is in eddy_sdk.window)
    "Window",
    "Windows",
    "TumblingWindows",
    "SlidingWindows",
    "SessionWindows",
    "ProcessWindowFunction",
    "MergingAggregateFunction",
]


class Operator:
    """A stream operator: state declared up front, and a method called for every record.

    Lifecycle:

    1. ``open(states)`` declares the states (on the :class:`StateRegistry`) and keeps the
       handles. The SDK calls it on a throw-away instance for ``describe`` and again on the
       instance that runs; it must not depend on the configuration.
    2. ``init(config)`` gets the job's ``config`` table (parsed JSON, ``{}`` when none), once
       per instance. Any exception refuses the job's start as ``invalid-config``.
    3. ``init_state(ctx)`` may read or change the worker's operator state, right after
       ``init``.
    4. ``process(ctx, record)`` is called for every record, in stream order, and
       ``on_timer(ctx, timer)`` for every timer of the key that fires.

    Errors and isolation: an exception from ``process`` fails the **whole batch** the record
    came in (the message names the record: ``record 2: ...``). The host discards every
    effect of the batch (emits, value writes, map and list calls, timer changes), builds a
    fresh instance, and re-runs the batch one record at a time, so only the failing record
    goes to the dead-letter output. So ``process`` may raise at any point without leaving
    half-applied state, but it runs again for the batch's other records: keep it
    deterministic and free of side effects other than through the context and the state.

    Class attributes ``name`` and ``version`` (semver) say what the operator is; they
    default to the class name and ``0.0.0``.
    """

    #: Human name of the operator, e.g. ``"word-count"``.
    name = ""
    #: The operator's own version (semver).
    version = "0.0.0"

    def open(self, states: StateRegistry) -> None:
        """Declares the keyed and operator states. Handles are numbered in declaration
        order, which must depend on nothing but the code."""

    def init(self, config: Any) -> None:
        """Reads the configuration (the job's ``config`` table as parsed JSON). Raise (e.g.
        :class:`InvalidConfig`) to refuse it."""

    def init_state(self, ctx: InitContext) -> None:
        """Reads (or changes) the worker's operator state when an instance starts, after a
        successful ``init``; keyed state is out of reach. An exception fails the start
        (``failed`` unless it is another :class:`OperatorError`), and its changes are
        undone. The default does nothing."""

    def process(self, ctx: Context, record: Record) -> None:
        """Processes one record. See the class docs for what an exception does."""
        raise NotImplementedError(f"{type(self).__name__} does not implement `process`")

    def on_timer(self, ctx: Context, timer: Timer) -> None:
        """Handles a timer of the current key (``ctx.key``) that fired; ``ctx.timestamp``
        is the timer's timestamp. It reaches the key's state, emits, and may register or
        delete timers, as ``process`` does; an exception is handled as in ``process`` (the
        timer goes to the dead-letter output). The default does nothing."""

    def migrate(self, state: StateDescriptor, from_version: int, value: bytes) -> bytes:
        """Rewrites one stored value of ``state`` (a value, a map value or a list item; for
        an operator state, a list-kind descriptor of its name and one item) from schema
        ``from_version`` to the version this operator declares. Called on an opened, not
        initialized, instance. :func:`migrate_value` decodes, converts and encodes. The
        default refuses with :class:`Unsupported`."""
        raise Unsupported(
            f"operator `{self.name or type(self).__name__}` {self.version} cannot migrate state "
            f"`{state.name}` from schema version {from_version} to {state.schema_version}")


class Trap(BaseException):
    """Raised by :func:`trap`. Not an ``Exception``: the SDK does not turn it into an
    operator error, so it escapes the export and componentize-py traps the instance."""


def trap(message: str = "trap") -> None:
    """Traps the Wasm instance, as a Rust panic does (the host then discards the batch,
    builds a new instance and isolates the record). Meant for tests of the host's fault
    handling; operators should raise :class:`Failed` instead. Natively it raises
    :class:`Trap`."""
    raise Trap(message)


def export(operator_class: type) -> type:
    """Makes ``operator_class`` the component's ``operator`` export. Use it once, in the
    project's ``main.py``: ``Operator = eddy_sdk.export(MyOperator)`` (componentize-py looks
    for the name ``Operator``).

    Inside a component it returns the export class; natively (no ``wit_world`` bindings) it
    returns a stand-in whose methods say to use :class:`eddy_sdk.testing.Harness`, so the
    same ``main.py`` imports in tests.
    """
    if not callable(getattr(operator_class, "process", None)):
        raise TypeError(f"{operator_class!r} has no `process` method; subclass eddy_sdk.Operator")
    try:
        from . import _wasm
    except ImportError:
        return _native_export(operator_class)
    return _wasm.export(operator_class)


def _native_export(operator_class: type) -> type:
    def unavailable(self: Any, *args: Any) -> Any:
        raise RuntimeError(
            f"{operator_class.__name__} runs as a component only inside Wasm; natively, use "
            "eddy_sdk.testing.Harness")

    return type("Operator", (), {
        "operator_class": operator_class,
        "describe": unavailable,
        "init": unavailable,
        "process": unavailable,
        "on_timer": unavailable,
        "migrate": unavailable,
    })
