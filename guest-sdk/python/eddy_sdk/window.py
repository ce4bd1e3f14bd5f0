"""Event-time windows, built on keyed state and timers only (no host machinery of their
own): :class:`TumblingWindows`, :class:`SlidingWindows` and :class:`SessionWindows`, each
finished with a window function — ``reduce``, ``aggregate`` or ``process`` — into a
:class:`Windows` handle. An operator declares it in ``open``, keeps it as an attribute,
feeds it from ``process`` with :meth:`Windows.add` and lets it handle its timers in
``on_timer`` with :meth:`Windows.on_timer`. Both hand back the windows that fired, as
:class:`Fired` results; the operator emits what it wants from them. It is the Rust SDK's
``eddy_sdk::window`` with the same semantics.

>>> import eddy_sdk as eddy
>>> from eddy_sdk.testing import Harness, InputRecord
>>> class MinuteSums(eddy.Operator):
...     \"\"\"Sums the numbers of every key per minute of event time.\"\"\"
...     def open(self, states):
...         self.sums = TumblingWindows.of(60_000).reduce(states, "sums", lambda a, b: a + b)
...     def process(self, ctx, record):
...         for fired in self.sums.add(ctx, int(record.value)):  # a late element re-fires
...             ctx.emit(ctx.key, f"{fired.window}: {fired.result}")
...     def on_timer(self, ctx, timer):
...         # None: nothing of the windows was due (this operator has no timers of its own).
...         for fired in self.sums.on_timer(ctx, timer) or []:
...             ctx.emit(ctx.key, f"{fired.window}: {fired.result}")
>>> h = Harness(MinuteSums)
>>> for value, at in [("5", 1_000), ("7", 59_999), ("1", 60_000)]:
...     _ = h.process_record(InputRecord("a", value, at))
>>> h.advance_watermark(59_998)  # the first minute's last millisecond is 59 999
[]
>>> [e.value_str() for e in h.advance_watermark(59_999)]
['[0, 60000): 12']

Semantics (Flink's event-time windows):

- A :class:`Window` ``[start, end)`` holds the elements whose timestamps fall in it; its last
  timestamp is ``end - 1`` (:meth:`Window.max_timestamp`). It fires once when the watermark
  reaches ``end - 1``: the key's timer then hands the result back from ``on_timer``.
- **Allowed lateness** ``L`` (default 0): a window's state is kept until the watermark
  reaches ``end - 1 + L``, when a cleanup timer removes it. An element that arrives after
  the window fired but before its cleanup is added and fires the window again at once (from
  ``add``, with :attr:`Fired.late` set), with everything the window holds.
- An element whose every window has been cleaned up is **dropped**: ``add`` changes nothing
  and says so in :attr:`Added.dropped`; the operator decides what to do with it. With the
  job's ``[event-time] allowed-lateness`` at least the window's, the host keeps such records
  from the operator (they go to the late-data output).
- **Sessions**: an element at ``t`` opens the session ``[t, t + gap)``; sessions that overlap
  merge into one that covers them, their contents merged, so an element that falls between
  two sessions bridges them. Elements less than ``gap`` apart share a session; ``gap`` or
  more apart, they do not (sessions that only touch never merge, so the result does not
  depend on when the watermark passed).

Timestamps are the records' (``ctx.timestamp``) unless ``add`` is given one; the watermark
is the one the record or timer sees (``ctx.watermark``).

State and timers: a ``Windows`` named ``name`` declares, in this order,

- ``{name}/windows``: a value state per key holding the key's live windows as a JSON list of
  ``[start, end, pending, accumulator]`` (schema version 1), ``pending`` being "not fired
  since the last element". The accumulator is the reduced value (reduce), the aggregate
  function's accumulator (aggregate), or ``null`` (process);
- ``{name}/elements``, for ``process`` only: a list state per key of ``[timestamp,
  element]``, each element stored once (however many sliding windows it is in) and removed
  when its last window is cleaned up.

The names are the state's identity across versions of the operator: keep ``name``. Whenever
they write a key's windows, the windows register an event-time timer of the key at
``end - 1`` of every pending window and at ``end - 1 + L`` of every live one — except when
an element only adds to windows that were pending already and all the key's live windows
are pending (their timers were registered when they became pending) — and they never
delete one. A timer is (key, domain, timestamp), so it is shared by everything that runs
for the key, the operator's own event-time timers and every ``Windows`` of the operator: a
timer the windows no longer need fires as a no-op (``on_timer`` returns None), and
``on_timer`` does whatever is due at the time of any timer, whoever registered it. So an
operator must not delete an event-time timer at a timestamp its windows may use, and hands
every event-time timer to its windows as well as handling it as its own.

Costs: the windows value state is prefetched and read once per ``add`` and ``on_timer``,
which rewrite the key's whole list of live windows (and, when a window is created, fires or
is cleaned up, register its timers again, one or two per live window), so keep accumulators
small (a sliding window of size ``s`` and slide ``d`` keeps about ``s / d`` windows per key,
sessions one or two). A process window makes one host call per ``add`` and reads the key's
element list once per call that fires or cleans up a window.

Values go through the JSON codec: an accumulator or element that is a tuple comes back as a
list. Window functions must not change the elements they are given (an element may be in
several sliding windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, List, NamedTuple, Optional

from .errors import Failed, InvalidConfig
from .runtime import NO_WATERMARK, TimeDomain
from .state import AggregateFunction, StateRegistry

__all__ = [
    "MAX_WINDOWS_PER_ELEMENT",
    "Window",
    "Fired",
    "Added",
    "ProcessWindowFunction",
    "MergingAggregateFunction",
    "WindowAssigner",
    "TumblingWindows",
    "SlidingWindows",
    "SessionWindows",
    "Windows",
]

#: The most sliding windows one element may belong to (``size / slide``, rounded up); larger
#: ratios make a declaration fail :meth:`Windows.check`.
MAX_WINDOWS_PER_ELEMENT = 1000

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _saturate(value: int) -> int:
    """``value`` clamped to 64 bits, as the Rust SDK's saturating arithmetic has it."""
    if value < _I64_MIN:
        return _I64_MIN
    if value > _I64_MAX:
        return _I64_MAX
    return value


class Window(NamedTuple):
    """A window of event time: the timestamps from ``start`` (included) to ``end``
    (excluded), in ms. Windows order by ``(start, end)``.

    >>> minute = Window(60_000, 120_000)
    >>> minute.contains(60_000), minute.contains(119_999), minute.contains(120_000)
    (True, True, False)
    >>> minute.max_timestamp()
    119999
    >>> str(minute)
    '[60000, 120000)'
    """

    #: The first timestamp in the window.
    start: int
    #: The first timestamp after the window.
    end: int

    def max_timestamp(self) -> int:
        """The last timestamp in the window, ``end - 1``: the window fires when the watermark
        reaches it."""
        return self.end - 1 if self.end > _I64_MIN else self.end

    def contains(self, timestamp: int) -> bool:
        """Whether ``timestamp`` is in the window."""
        return self.start <= timestamp < self.end

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


class Fired(NamedTuple):
    """A window that fired, with the window function's result."""

    #: The window.
    window: Window
    #: What the window function made of the window's contents.
    result: Any
    #: Whether an element that arrived after the window's end (within the allowed lateness)
    #: fired it, from :meth:`Windows.add`; such a firing repeats the window with that element
    #: added. False for the firings of ``on_timer``.
    late: bool = False


@dataclass(frozen=True)
class Added:
    """What :meth:`Windows.add` did with an element: the windows it fired, and whether it was
    dropped. Iterating it goes over the fired windows.

    >>> added = Added()
    >>> added.dropped, list(added)
    (False, [])
    """

    #: The windows the element fired at once because the watermark had already passed their
    #: end (late firings, within the allowed lateness). Usually empty.
    fired: List[Fired] = field(default_factory=list)
    #: Whether the element came too late for every window it belongs to (each was already
    #: cleaned up) and was dropped, changing nothing.
    dropped: bool = False

    def __iter__(self) -> Iterator[Fired]:
        return iter(self.fired)


class ProcessWindowFunction:
    """A window function that sees all the elements of a window at once, when it fires (as
    Flink's ``ProcessWindowFunction``). The elements are stored in list state until their
    last window is cleaned up. ``process`` takes any callable
    ``function(key, window, elements)``; subclassing this class is one way to write one.

    >>> class Join(ProcessWindowFunction):
    ...     \"\"\"The window's elements, in timestamp order, joined with commas.\"\"\"
    ...     def process(self, key, window, elements):
    ...         return ",".join(word for _, word in elements)
    >>> Join()(b"k", Window(0, 10), [(1, "a"), (2, "b")])
    'a,b'
    """

    def process(self, key: bytes, window: Window, elements: List[tuple]) -> Any:
        """Makes the result of ``window`` of ``key`` from its elements: ``(timestamp,
        element)`` pairs in timestamp order, elements of equal timestamps in the order they
        were added."""
        raise NotImplementedError

    def __call__(self, key: bytes, window: Window, elements: List[tuple]) -> Any:
        return self.process(key, window, elements)


class MergingAggregateFunction(AggregateFunction):
    """An :class:`~eddy_sdk.AggregateFunction` whose accumulators merge, which session
    windows need (two sessions that an element bridges become one). Any object with
    ``create_accumulator``, ``add``, ``get_result`` and ``merge`` methods will do.

    >>> class Count(MergingAggregateFunction):
    ...     def create_accumulator(self): return 0
    ...     def add(self, value, count): return count + 1
    ...     def get_result(self, count): return count
    ...     def merge(self, a, b): return a + b
    >>> Count().merge(2, 3)
    5
    """

    def merge(self, a: Any, b: Any) -> Any:
        """The accumulator of everything both ``a`` and ``b`` hold (``a`` is the earlier
        window's)."""
        raise NotImplementedError


# -- window functions -----------------------------------------------------------------------
# What a `Windows` does per window: `create` an accumulator from the first element,
# `accumulate` (returning the new accumulator), `merge` two (sessions), and make the `result`
# (process windows get their elements, read by `Windows`).


class _Reduce:
    __slots__ = ("_reduce",)
    can_merge = True

    def __init__(self, reduce: Callable[[Any, Any], Any]) -> None:
        self._reduce = reduce

    def create(self, element: Any) -> Any:
        return element

    def accumulate(self, accumulator: Any, element: Any) -> Any:
        return self._reduce(accumulator, element)

    def merge(self, a: Any, b: Any) -> Any:
        return self._reduce(a, b)

    def result(self, key: bytes, window: Window, accumulator: Any, elements: Any) -> Any:
        return accumulator

    def __repr__(self) -> str:
        return "reduce"


class _Aggregate:
    __slots__ = ("_function", "can_merge")

    def __init__(self, function: Any) -> None:
        self._function = function
        self.can_merge = callable(getattr(function, "merge", None))

    def create(self, element: Any) -> Any:
        function = self._function
        return function.add(element, function.create_accumulator())

    def accumulate(self, accumulator: Any, element: Any) -> Any:
        return self._function.add(element, accumulator)

    def merge(self, a: Any, b: Any) -> Any:
        if not self.can_merge:
            raise Failed("aggregate windows cannot merge without a `merge` method")
        return self._function.merge(a, b)

    def result(self, key: bytes, window: Window, accumulator: Any, elements: Any) -> Any:
        return self._function.get_result(accumulator)

    def __repr__(self) -> str:
        return f"aggregate({self._function!r})"


class _Process:
    __slots__ = ("_function",)
    can_merge = True

    def __init__(self, function: Callable[[bytes, Window, List[tuple]], Any]) -> None:
        self._function = function

    def create(self, element: Any) -> None:
        return None

    def accumulate(self, accumulator: Any, element: Any) -> None:
        return None

    def merge(self, a: Any, b: Any) -> None:
        return None

    def result(self, key: bytes, window: Window, accumulator: Any, elements: List[tuple]) -> Any:
        start, end = window
        mine = [element for element in elements if start <= element[0] < end]
        # Stable: equal timestamps keep the order they were added in.
        mine.sort(key=_timestamp_of)
        return self._function(key, window, mine)

    def __repr__(self) -> str:
        return f"process({self._function!r})"


def _timestamp_of(element: tuple) -> int:
    return element[0]


# -- assigners ------------------------------------------------------------------------------


def _ms_problem(what: str, value: Any) -> Optional[str]:
    if type(value) is not int:
        return f"the {what} must be an integer number of milliseconds, got {value!r}"
    if not _I64_MIN <= value <= _I64_MAX:
        return f"the {what} must fit in 64 bits, got {value} ms"
    return None


def _window_start(timestamp: int, offset: int, size: int) -> int:
    """The start of the window of length ``size`` (aligned to ``offset``) holding
    ``timestamp``."""
    return _saturate(timestamp - (timestamp - offset) % size)


class WindowAssigner:
    """The shape of windows with their allowed lateness: the base of
    :class:`TumblingWindows`, :class:`SlidingWindows` and :class:`SessionWindows` (what
    :meth:`Windows.reconfigure` takes). Immutable: every method returns a new one. Finish a
    declaration with :meth:`reduce`, :meth:`aggregate` or :meth:`process`."""

    __slots__ = ()
    #: How long after a window's end (in event time) its state is kept, in ms.
    lateness_ms: int
    # Whether the windows merge (sessions).
    _merges = False

    def allowed_lateness(self, lateness_ms: int) -> "WindowAssigner":
        """How long after a window's end (in event time) its state is kept for late elements
        (default 0, not negative); see the module docs."""
        return replace(self, lateness_ms=lateness_ms)

    def reduce(self, states: StateRegistry, name: str,
               reduce: Callable[[Any, Any], Any]) -> "Windows":
        """Finishes the declaration with a reduce function ``reduce(a, b)`` returning the
        value of both (it also merges sessions that merge): each window's result is its
        elements folded into one. ``name`` names the windows' state (``{name}/windows``).

        >>> from eddy_sdk import StateRegistry
        >>> sums = TumblingWindows.of(60_000).reduce(StateRegistry(), "sums", lambda a, b: a + b)
        """
        if not callable(reduce):
            states._problems.append(f"window `{name}`: `reduce` is not callable")
        return Windows(self, states, name, _Reduce(reduce))

    def aggregate(self, states: StateRegistry, name: str, function: AggregateFunction) -> "Windows":
        """Finishes the declaration with an :class:`~eddy_sdk.AggregateFunction`: each
        window keeps its accumulator, and its result is the function's. Session windows need
        a :class:`MergingAggregateFunction` (a ``merge`` method). ``name`` names the
        windows' state (``{name}/windows``)."""
        methods = ["create_accumulator", "add", "get_result"] + (["merge"] if self._merges else [])
        for method in methods:
            if not callable(getattr(function, method, None)):
                states._problems.append(
                    f"window `{name}`: the aggregate function has no `{method}` method"
                    + (" (session windows merge their accumulators)" if method == "merge" else ""))
        return Windows(self, states, name, _Aggregate(function))

    def process(self, states: StateRegistry, name: str,
                function: Callable[[bytes, Window, List[tuple]], Any]) -> "Windows":
        """Finishes the declaration with a process-window function
        ``function(key, window, elements)`` (see :class:`ProcessWindowFunction`): the
        elements are kept, and the function makes a window's result from all of them when it
        fires. ``name`` names the windows' state (``{name}/windows`` and
        ``{name}/elements``)."""
        if not callable(function):
            states._problems.append(f"window `{name}`: the process-window function is not callable")
        return Windows(self, states, name, _Process(function))

    def _problem(self) -> Optional[str]:
        raise NotImplementedError

    def _assign(self, timestamp: int) -> List[Window]:
        raise NotImplementedError


@dataclass(frozen=True)
class TumblingWindows(WindowAssigner):
    """Tumbling event-time windows: back-to-back windows of one size, e.g. every minute
    (``[0, 60000)``, ``[60000, 120000)``, …); each element is in exactly one.

    >>> hourly = TumblingWindows.of(3_600_000, offset=900_000).allowed_lateness(60_000)
    """

    #: The windows' size, in ms.
    size_ms: int
    #: Where windows start: at this plus multiples of the size, in ms.
    offset_ms: int = 0
    lateness_ms: int = 0

    @classmethod
    def of(cls, size_ms: int, offset: int = 0) -> "TumblingWindows":
        """Windows of ``size_ms`` milliseconds (positive), starting at ``offset`` (ms) plus
        multiples of the size."""
        return cls(size_ms, offset)

    def offset(self, offset_ms: int) -> "TumblingWindows":
        """Windows start at ``offset_ms`` plus multiples of the size instead (e.g. days in a
        time zone: ``TumblingWindows.of(86_400_000).offset(-7_200_000)``)."""
        return replace(self, offset_ms=offset_ms)

    def _problem(self) -> Optional[str]:
        problem = (_ms_problem("window size", self.size_ms)
                   or _ms_problem("window offset", self.offset_ms))
        if problem is None and self.size_ms <= 0:
            problem = f"the window size must be positive, got {self.size_ms} ms"
        return problem

    def _assign(self, timestamp: int) -> List[Window]:
        start = _window_start(timestamp, self.offset_ms, self.size_ms)
        return [Window(start, _saturate(start + self.size_ms))]


@dataclass(frozen=True)
class SlidingWindows(WindowAssigner):
    """Sliding event-time windows: windows of one size that start every slide, e.g. the
    last 10 minutes every minute; an element is in ``size / slide`` of them (rounded up;
    none when it falls in a gap of a slide larger than the size).

    >>> last_hour_every_5_minutes = SlidingWindows.of(3_600_000, 300_000)
    """

    #: The windows' size, in ms.
    size_ms: int
    #: How far apart windows start, in ms.
    slide_ms: int
    #: Where windows start: at this plus multiples of the slide, in ms.
    offset_ms: int = 0
    lateness_ms: int = 0

    @classmethod
    def of(cls, size_ms: int, slide_ms: int, offset: int = 0) -> "SlidingWindows":
        """Windows of ``size_ms`` milliseconds starting every ``slide_ms`` (both positive, at
        most :data:`MAX_WINDOWS_PER_ELEMENT` windows per element), at ``offset`` (ms) plus
        multiples of the slide."""
        return cls(size_ms, slide_ms, offset)

    def offset(self, offset_ms: int) -> "SlidingWindows":
        """Windows start at ``offset_ms`` plus multiples of the slide instead."""
        return replace(self, offset_ms=offset_ms)

    def _problem(self) -> Optional[str]:
        size, slide = self.size_ms, self.slide_ms
        problem = (_ms_problem("window size", size) or _ms_problem("window slide", slide)
                   or _ms_problem("window offset", self.offset_ms))
        if problem is not None:
            return problem
        if size <= 0 or slide <= 0:
            return f"the window size and slide must be positive, got {size} ms and {slide} ms"
        per_element = -(-size // slide)
        if per_element > MAX_WINDOWS_PER_ELEMENT:
            return (f"a size of {size} ms sliding by {slide} ms puts every element in "
                    f"{per_element} windows, more than the {MAX_WINDOWS_PER_ELEMENT} allowed; "
                    "slide by more")
        return None

    def _assign(self, timestamp: int) -> List[Window]:
        size, slide = self.size_ms, self.slide_ms
        start = _window_start(timestamp, self.offset_ms, slide)
        windows = []
        while _saturate(start + size) > timestamp and len(windows) < MAX_WINDOWS_PER_ELEMENT:
            windows.append(Window(start, _saturate(start + size)))
            start -= slide
            if start < _I64_MIN:
                break
        windows.reverse()
        return windows


@dataclass(frozen=True)
class SessionWindows(WindowAssigner):
    """Session windows of event time: a key's elements less than the gap apart form one
    session, which ends a gap after its last element. A session grows with every element,
    and two sessions merge when an element bridges them. ``aggregate`` needs a
    :class:`MergingAggregateFunction`.

    >>> visits = SessionWindows.with_gap(30 * 60_000).allowed_lateness(60_000)
    """

    #: How long without elements closes a session, in ms.
    gap_ms: int
    lateness_ms: int = 0
    _merges = True

    @classmethod
    def with_gap(cls, gap_ms: int) -> "SessionWindows":
        """Sessions that close after ``gap_ms`` milliseconds (positive) without elements."""
        return cls(gap_ms)

    def _problem(self) -> Optional[str]:
        problem = _ms_problem("session gap", self.gap_ms)
        if problem is None and self.gap_ms <= 0:
            problem = f"the session gap must be positive, got {self.gap_ms} ms"
        return problem

    def _assign(self, timestamp: int) -> List[Window]:
        return [Window(timestamp, _saturate(timestamp + self.gap_ms))]


def _declaration_problem(shape: WindowAssigner, name: Any) -> Optional[str]:
    """What is wrong with windows of ``shape`` named ``name``, if anything."""
    if not isinstance(name, str) or not name:
        return "the windows need a name (it names their state)"
    lateness = shape.lateness_ms
    problem = _ms_problem("allowed lateness", lateness)
    if problem is None and lateness < 0:
        problem = f"the allowed lateness must not be negative, got {lateness} ms"
    return problem or shape._problem()


# -- the windows ----------------------------------------------------------------------------


class _Slot:
    """A live window of a key."""

    __slots__ = ("window", "pending", "accumulator")

    def __init__(self, window: Window, pending: bool, accumulator: Any) -> None:
        self.window = window
        # Holds elements not yet in a firing: it fires when the watermark reaches its end.
        self.pending = pending
        self.accumulator = accumulator


def _window_of(slot: _Slot) -> Window:
    return slot.window


class Windows:
    """Event-time windows over the current key's elements, with a window function; made by
    the ``reduce``, ``aggregate`` and ``process`` methods of :class:`TumblingWindows`,
    :class:`SlidingWindows` and :class:`SessionWindows` in ``open``. See the module docs for
    the semantics, the state and the timers.

    >>> import eddy_sdk as eddy
    >>> from eddy_sdk.testing import Harness, InputRecord
    >>> class Visits(eddy.Operator):
    ...     \"\"\"The pages of every visit, in order.\"\"\"
    ...     def open(self, states):
    ...         path = lambda key, window, pages: " > ".join(page for _, page in pages)
    ...         self.visits = SessionWindows.with_gap(2_000).process(states, "visits", path)
    ...     def init(self, config):
    ...         self.visits.check()  # bad window parameters fail the start, not every record
    ...     def process(self, ctx, record):
    ...         for fired in self.visits.add(ctx, record.value_str()):
    ...             ctx.emit(ctx.key, fired.result)
    ...     def on_timer(self, ctx, timer):
    ...         for fired in self.visits.on_timer(ctx, timer) or []:
    ...             ctx.emit(ctx.key, fired.result)
    >>> h = Harness(Visits)
    >>> for page, at in [("/", 0), ("/cart", 2_500), ("/shop", 1_800), ("/pay", 5_000)]:
    ...     _ = h.process_record(InputRecord("ann", page, at))
    >>> [e.value_str() for e in h.advance_watermark(2**63 - 1)]  # /shop bridged / and /cart
    ['/ > /shop > /cart', '/pay']
    """

    __slots__ = ("_name", "_shape", "_windows", "_elements", "_function", "_problem")

    def __init__(self, shape: WindowAssigner, states: StateRegistry, name: str,
                 function: Any) -> None:
        """Use the ``reduce``, ``aggregate`` and ``process`` methods of the assigners."""
        self._name = name
        self._shape = shape
        self._windows = states.value(f"{name}/windows")
        keeps_elements = isinstance(function, _Process)
        self._elements = states.list(f"{name}/elements") if keeps_elements else None
        self._function = function
        self._problem = _declaration_problem(shape, name)

    def __repr__(self) -> str:
        return f"Windows({self._name!r}, {self._shape!r}, {self._function!r})"

    @property
    def name(self) -> str:
        """The name the windows were declared with (their state is ``{name}/…``)."""
        return self._name

    def check(self) -> None:
        """Raises :class:`~eddy_sdk.InvalidConfig` unless the declaration is sound: a name,
        a positive size, slide or gap (and at most :data:`MAX_WINDOWS_PER_ELEMENT` sliding
        windows per element), and a lateness that is not negative, all integers. An operator
        whose window parameters come from its config calls it in ``init``; otherwise ``add``
        and ``on_timer`` fail with the same message (as :class:`~eddy_sdk.Failed`), e.g.
        ``window `sums`: the window size must be positive, got 0 ms``."""
        if self._problem is not None:
            raise InvalidConfig(f"window `{self._name}`: {self._problem}")

    def reconfigure(self, windows: WindowAssigner) -> None:
        """Replaces the shape and allowed lateness of the windows, keeping their name and
        state: for parameters that come from the operator's config, in ``init`` (``open``
        cannot read it). Windows already in the state keep their bounds; new elements go to
        windows of the new shape. The new lateness applies to every window: the cleanup
        timers it needs are registered at the key's next element or timer — so a window
        kept longer is not cleaned up at its old time, and one whose new cleanup time has
        passed is cleaned up then (at the latest at its old cleanup time). Raises like
        :meth:`check` (the new parameters stay, so the calls fail too), and, changing
        nothing, when asked for sessions by aggregate windows whose function cannot merge."""
        if not isinstance(windows, WindowAssigner):
            raise TypeError(f"window `{self._name}`: reconfigure takes TumblingWindows, "
                            f"SlidingWindows or SessionWindows, not {type(windows).__name__}")
        if windows._merges and not self._function.can_merge:
            raise InvalidConfig(
                f"window `{self._name}`: session windows merge their accumulators, which this "
                "aggregate function cannot: give it a `merge` method (a "
                "MergingAggregateFunction)")
        self._shape = windows
        self._problem = _declaration_problem(windows, self._name)
        self.check()

    def add(self, ctx: Any, element: Any, timestamp: Optional[int] = None) -> Added:
        """Adds ``element`` at ``timestamp`` (default: the record's, ``ctx.timestamp``) to
        the current key's windows that hold it, creating them (and merging sessions) as
        needed, and registers their timers.

        A window whose end the watermark (``ctx.watermark``) has already passed, but which is
        still within its allowed lateness, fires at once: it is in the returned
        :attr:`Added.fired`, with ``late`` set. An element for which every window was already
        cleaned up changes nothing and comes back as :attr:`Added.dropped`. Iterating the
        result goes over the fired windows: emit them."""
        if self._problem is not None:
            raise Failed(f"window `{self._name}`: {self._problem}")
        if timestamp is None:
            timestamp = ctx.timestamp
        watermark = ctx.watermark
        shape = self._shape
        assigned = shape._assign(timestamp)
        if not assigned:
            # In the gap between sliding windows: in no window, and not late either.
            return Added()
        slots = self._load()
        function = self._function

        took: List[Window] = []
        # Whether the element only went into windows that were pending already, and every
        # live window is pending: their timers were registered when they became pending (a
        # cleanup time moved by a new allowed lateness is registered when the window fires),
        # so none is sent again.
        same_timers = True
        if shape._merges:
            same_timers = False
            for new in assigned:
                merged = new
                accumulator = _NOTHING
                rest = []
                # Live sessions are disjoint and in order: the new one overlaps a run of
                # them, and covering that run overlaps no other.
                for slot in slots:
                    window = slot.window
                    if window.start < new.end and new.start < window.end:
                        merged = Window(min(merged.start, window.start),
                                        max(merged.end, window.end))
                        if accumulator is _NOTHING:
                            accumulator = slot.accumulator
                        else:
                            accumulator = function.merge(accumulator, slot.accumulator)
                    else:
                        rest.append(slot)
                if self._expired(merged, watermark):
                    # Only a session that merged with none can be expired (a live one is
                    # not): nothing changed.
                    return Added(dropped=True)
                if accumulator is _NOTHING:
                    accumulator = function.create(element)
                else:
                    accumulator = function.accumulate(accumulator, element)
                rest.append(_Slot(merged, False, accumulator))
                slots = rest
                took.append(merged)
        else:
            for window in assigned:
                if self._expired(window, watermark):
                    continue
                for slot in slots:
                    if slot.window == window:
                        same_timers = same_timers and slot.pending
                        slot.accumulator = function.accumulate(slot.accumulator, element)
                        break
                else:
                    same_timers = False
                    slots.append(_Slot(window, False, function.create(element)))
                took.append(window)
        if not took:
            return Added(dropped=True)
        slots.sort(key=_window_of)
        if self._elements is not None:
            self._elements.add([timestamp, element])

        fired = []
        elements = None
        for slot in slots:
            window = slot.window
            if window not in took:
                continue
            if watermark != NO_WATERMARK and window.max_timestamp() <= watermark:
                if elements is None and self._elements is not None:
                    elements = self._read_elements()
                result = function.result(ctx.key, window, slot.accumulator, elements)
                fired.append(Fired(window, result, True))
                slot.pending = False
            else:
                slot.pending = True
        if fired or not (same_timers and all(slot.pending for slot in slots)):
            self._register_timers(ctx, slots)
        self._save(slots)
        return Added(fired, False)

    def on_timer(self, ctx: Any, timer: Any) -> Optional[List[Fired]]:
        """Handles a fired timer of the current key — any of its event-time timers, whoever
        registered it: fires every pending window whose end the timer's time reached (in
        window order) and cleans up every window whose allowed lateness is over at that
        time. A window is due when both the timer's timestamp and the watermark
        (``ctx.watermark``) have reached its time, so a timer never fires a window early, and
        a window whose own timer is missing or was registered by someone else is handled by
        the key's first timer at or after its time.

        Returns the list of windows that fired when anything of these windows was due: a
        window fired or was cleaned up (a cleanup alone gives an empty list). Returns None
        when nothing of them was due: a processing-time timer, a timer of the operator's own,
        or one these windows registered but no longer need. A timestamp can be both the
        windows' and the operator's: a list does not mean the timer is not also the
        operator's, so an operator with timers of its own recognizes them by its own state,
        whatever the windows answer."""
        if timer.domain != TimeDomain.EVENT_TIME:
            return None
        if self._problem is not None:
            raise Failed(f"window `{self._name}`: {self._problem}")
        time = min(timer.timestamp, ctx.watermark)
        slots = self._load()
        if not slots:
            return None
        function = self._function
        fired = []
        elements = None
        for slot in slots:
            if slot.pending and slot.window.max_timestamp() <= time:
                if elements is None and self._elements is not None:
                    elements = self._read_elements()
                result = function.result(ctx.key, slot.window, slot.accumulator, elements)
                fired.append(Fired(slot.window, result, False))
                slot.pending = False
        lateness = self._shape.lateness_ms
        live = [slot for slot in slots
                if _saturate(slot.window.max_timestamp() + lateness) > time]
        cleaned = len(live) < len(slots)
        if cleaned and self._elements is not None:
            self._retain([slot.window for slot in live], elements)
        # Registered again even when nothing changed: the timers may be missing when the
        # allowed lateness grew since they were registered.
        self._register_timers(ctx, live)
        if not fired and not cleaned:
            return None
        self._save(live)
        return fired

    def windows(self, ctx: Any) -> List[Window]:
        """The current key's live windows (those holding state), in order."""
        return [slot.window for slot in self._load()]

    # -- internals ----------------------------------------------------------------------------

    def _expired(self, window: Window, watermark: int) -> bool:
        """Whether ``window`` is past its allowed lateness at ``watermark``."""
        return (watermark != NO_WATERMARK
                and _saturate(window.max_timestamp() + self._shape.lateness_ms) <= watermark)

    def _register_timers(self, ctx: Any, slots: List[_Slot]) -> None:
        """Registers every event-time timer ``slots`` need: the end of every pending window
        and the cleanup time of every live one. Those that exist stay as they are (the host
        changes nothing for them), which keeps the timers right after a change of the
        allowed lateness without knowing which ones the key has."""
        lateness = self._shape.lateness_ms
        times = set()
        for slot in slots:
            last = slot.window.max_timestamp()
            times.add(_saturate(last + lateness))
            if slot.pending:
                times.add(last)
        for time in sorted(times):
            ctx.register_event_time_timer(time)

    def _load(self) -> List[_Slot]:
        stored = self._windows.get()
        if stored is None:
            return []
        try:
            return [_Slot(Window(start, end), pending, accumulator)
                    for start, end, pending, accumulator in stored]
        except (TypeError, ValueError):
            raise Failed(f"window `{self._name}`: state `{self._name}/windows` does not hold a "
                         "list of [start, end, pending, accumulator]") from None

    def _save(self, slots: List[_Slot]) -> None:
        if not slots:
            self._windows.clear()
            return
        self._windows.set([[slot.window.start, slot.window.end, slot.pending, slot.accumulator]
                           for slot in slots])

    def _read_elements(self) -> List[tuple]:
        try:
            return [(timestamp, element) for timestamp, element in self._elements.get()]
        except (TypeError, ValueError):
            raise Failed(f"window `{self._name}`: state `{self._name}/elements` does not hold "
                         "[timestamp, element] pairs") from None

    def _retain(self, live: List[Window], elements: Optional[List[tuple]]) -> None:
        """Forgets the stored elements that are in none of the ``live`` windows."""
        if not live:
            self._elements.clear()
            return
        if elements is None:
            elements = self._read_elements()
        kept = [[timestamp, element] for timestamp, element in elements
                if any(window.start <= timestamp < window.end for window in live)]
        if len(kept) != len(elements):
            self._elements.update(kept)


# An accumulator not found yet (None is a valid accumulator).
_NOTHING = object()
