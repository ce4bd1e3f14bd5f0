"""Event-time windows (``eddy_sdk.window``) through the harness, as the Rust SDK's window
tests have them: when windows fire, allowed lateness and cleanup, dropped elements, session
merging, the timers and state they leave, sharing timers with the operator's own, and — on
pseudo-random out-of-order input run the way the host runs it — the same results as a
straightforward batch computation. Plus the assigners, the declaration checks and the
module's doc examples."""

import doctest
import json
import unittest
from collections import namedtuple

import eddy_sdk as eddy
from eddy_sdk import window
from eddy_sdk.runtime import Context
from eddy_sdk.testing import Harness, InputRecord
from eddy_sdk.window import (
    Added,
    MergingAggregateFunction,
    ProcessWindowFunction,
    SessionWindows,
    SlidingWindows,
    TumblingWindows,
    Window,
)

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


def load_tests(loader, tests, ignore):
    tests.addTests(doctest.DocTestSuite(window))
    return tests


class Ids(ProcessWindowFunction):
    """The ids of a window, in timestamp order."""

    def process(self, key, window, elements):
        assert key
        assert all(window.contains(t) for t, _ in elements)
        return [element for _, element in elements]


class Count(MergingAggregateFunction):
    """Counts elements."""

    def create_accumulator(self):
        return 0

    def add(self, value, count):
        return count + 1

    def get_result(self, count):
        return count

    def merge(self, a, b):
        return a + b


def shape_of(config):
    """The job's choice of windows: ``{"shape": "tumbling", "size": 10, ...}``."""
    shape = config["shape"]
    lateness = config.get("lateness", 0)
    if shape == "tumbling":
        windows = TumblingWindows.of(config["size"]).offset(config.get("offset", 0))
    elif shape == "sliding":
        windows = SlidingWindows.of(config["size"], config["slide"])
    elif shape == "session":
        windows = SessionWindows.with_gap(config["gap"])
    else:
        raise eddy.InvalidConfig(f"probe config: unknown shape {shape!r}")
    return windows.allowed_lateness(lateness)


def emit(ctx, function, fired):
    for one in fired:
        late = " late" if one.late else ""
        result = json.dumps(one.result, separators=(",", ":"))
        ctx.emit(ctx.key, f"{function} {one.window.start} {one.window.end} {result}{late}")


class Probe(eddy.Operator):
    """Puts every record (value: an integer id) in three windows of one shape — process
    (``ids``), reduce (``sum``) and aggregate (``count``) — and emits what fires as
    ``"{function} {start} {end} {result}[ late]"``, and ``"dropped {id}"`` for a dropped
    element.

    A value ``own T`` registers an event-time timer of the operator's own at ``T``; it emits
    ``"own T"`` when it fires. A timer that is neither the operator's nor due for any of the
    windows (one they no longer need) does nothing."""

    name = "window-probe"
    version = "0.1.0"

    def open(self, states):
        # Sessions by default, so that `count` is declared able to merge.
        sessions = SessionWindows.with_gap(10)
        self.ids = sessions.process(states, "ids", Ids())
        self.sum = sessions.reduce(states, "sum", lambda a, b: a + b)
        self.count = sessions.aggregate(states, "count", Count())
        self.own = states.value("own")

    def init(self, config):
        if not config:
            return
        shape = shape_of(config)
        for windows in (self.ids, self.sum, self.count):
            windows.reconfigure(shape)

    def process(self, ctx, record):
        value = record.value_str()
        if value.startswith("own "):
            at = int(value[4:])
            self.own.set(self.own.get([]) + [at])
            ctx.register_event_time_timer(at)
            return
        element = int(value)
        ids = self.ids.add(ctx, element)
        total = self.sum.add(ctx, element)
        count = self.count.add(ctx, element)
        assert (total.dropped, count.dropped) == (ids.dropped, ids.dropped)
        if ids.dropped:
            ctx.emit(ctx.key, f"dropped {element}")
        emit(ctx, "ids", ids)
        emit(ctx, "sum", total)
        emit(ctx, "count", count)

    def on_timer(self, ctx, timer):
        for name in ("ids", "sum", "count"):
            fired = getattr(self, name).on_timer(ctx, timer)
            if fired is not None:
                emit(ctx, name, fired)
        own = self.own.get([])
        if timer.timestamp in own:
            own.remove(timer.timestamp)
            self.own.set(own)
            ctx.emit(ctx.key, f"own {timer.timestamp}")


def probe(config=None):
    h = Harness(Probe, config)
    h.init_result()
    return h


def all_lines(emitted):
    return [f"{e.key_str()}: {e.value_str()}" for e in emitted]


def lines(emitted):
    """Only the `ids` lines (the others are checked apart)."""
    return [line for line in all_lines(emitted) if ": sum " not in line and ": count " not in line]


def add(h, key, timestamp, value):
    return lines(h.process_record(InputRecord(key, value, timestamp)))


def advance(h, watermark):
    return lines(h.advance_watermark(watermark))


def event_timers(h, key):
    return [t.timestamp for k, t in h.timers()
            if k == key.encode() and t.domain is eddy.TimeDomain.EVENT_TIME]


class Assigners(unittest.TestCase):
    """The windows an element belongs to (the Rust module's own unit tests)."""

    def assign(self, windows, timestamp):
        return [tuple(w) for w in windows._assign(timestamp)]

    def test_tumbling_windows_align_to_size_and_offset(self):
        minutes = TumblingWindows.of(60)
        self.assertEqual(self.assign(minutes, 0), [(0, 60)])
        self.assertEqual(self.assign(minutes, 59), [(0, 60)])
        self.assertEqual(self.assign(minutes, 60), [(60, 120)])
        self.assertEqual(self.assign(minutes, -1), [(-60, 0)])
        shifted = TumblingWindows.of(60, offset=15)
        self.assertEqual(self.assign(shifted, 14), [(-45, 15)])
        self.assertEqual(self.assign(shifted, 15), [(15, 75)])
        self.assertEqual(shifted, TumblingWindows.of(60).offset(15))
        # An offset beyond the size is the same as its remainder.
        self.assertEqual(self.assign(TumblingWindows.of(60, offset=615), 14), [(-45, 15)])
        # Extreme timestamps saturate to 64 bits instead of leaving them.
        self.assertEqual(self.assign(minutes, I64_MAX)[0][1], I64_MAX)
        self.assertEqual(self.assign(minutes, I64_MIN)[0][0], I64_MIN)

    def test_sliding_windows_hold_each_element_size_over_slide_times(self):
        sliding = SlidingWindows.of(30, 10)
        self.assertEqual(self.assign(sliding, 0), [(-20, 10), (-10, 20), (0, 30)])
        self.assertEqual(self.assign(sliding, 29), [(0, 30), (10, 40), (20, 50)])
        uneven = SlidingWindows.of(25, 10)
        self.assertEqual(self.assign(uneven, 4), [(-20, 5), (-10, 15), (0, 25)])
        self.assertEqual(self.assign(uneven, 5), [(-10, 15), (0, 25)])
        # A slide larger than the size leaves gaps.
        gappy = SlidingWindows.of(5, 10)
        self.assertEqual(self.assign(gappy, 3), [(0, 5)])
        self.assertEqual(self.assign(gappy, 7), [])
        self.assertLessEqual(len(self.assign(sliding, I64_MIN)), 3)

    def test_sessions_start_at_the_element(self):
        self.assertEqual(self.assign(SessionWindows.with_gap(10), 5), [(5, 15)])

    def test_windows_know_their_bounds(self):
        minute = Window(60_000, 120_000)
        self.assertTrue(minute.contains(60_000) and minute.contains(119_999))
        self.assertFalse(minute.contains(120_000))
        self.assertEqual(minute.max_timestamp(), 119_999)
        self.assertEqual(str(minute), "[60000, 120000)")
        self.assertLess(Window(0, 10), Window(0, 11))
        self.assertLess(Window(0, 11), Window(1, 2))

    def test_bad_parameters_are_problems(self):
        def problem(shape):
            return window._declaration_problem(shape, "w") or ""

        self.assertIn("size", problem(TumblingWindows.of(0)))
        self.assertIn("slide", problem(SlidingWindows.of(10, -1)))
        self.assertIn("1001 windows", problem(SlidingWindows.of(1001, 1)))
        self.assertEqual(problem(SlidingWindows.of(1000, 1)), "")
        self.assertIn("gap", problem(SessionWindows.with_gap(0)))
        self.assertIn("lateness", problem(SessionWindows.with_gap(1).allowed_lateness(-1)))
        # Python has no types to keep these out.
        self.assertEqual(problem(TumblingWindows.of(1.5)),
                         "the window size must be an integer number of milliseconds, got 1.5")
        self.assertIn("got True", problem(SessionWindows.with_gap(True)))
        self.assertIn("got '5'", problem(TumblingWindows.of(10).allowed_lateness("5")))
        self.assertIn("64 bits", problem(TumblingWindows.of(2**63)))
        self.assertEqual(window._declaration_problem(TumblingWindows.of(10), ""),
                         "the windows need a name (it names their state)")

    def test_assigners_are_immutable(self):
        minutes = TumblingWindows.of(60_000)
        late = minutes.allowed_lateness(5)
        self.assertEqual((minutes.lateness_ms, late.lateness_ms), (0, 5))
        self.assertEqual(late, TumblingWindows(60_000, 0, 5))

    def test_added_iterates_over_the_fired_windows(self):
        fired = window.Fired(Window(0, 10), 3, True)
        self.assertEqual(list(Added([fired])), [fired])
        self.assertFalse(Added().dropped)


class Firing(unittest.TestCase):
    def test_describe_names_the_window_state_stably(self):
        h = Harness(Probe)
        self.assertEqual([(s.name, s.kind, s.schema_version, s.codec) for s in h.states], [
            ("ids/windows", eddy.StateKind.VALUE, 1, "json"),
            ("ids/elements", eddy.StateKind.LIST, 1, "json"),
            ("sum/windows", eddy.StateKind.VALUE, 1, "json"),
            ("count/windows", eddy.StateKind.VALUE, 1, "json"),
            ("own", eddy.StateKind.VALUE, 1, "json"),
        ])

    def test_tumbling_windows_fire_when_the_watermark_reaches_their_last_timestamp(self):
        h = probe({"shape": "tumbling", "size": 10})
        self.assertEqual(add(h, "a", 3, "1"), [])
        self.assertEqual(add(h, "a", 9, "2"), [])
        self.assertEqual(add(h, "b", 5, "3"), [])
        self.assertEqual(add(h, "a", 10, "4"), [])
        self.assertEqual(add(h, "a", 0, "5"), [])
        self.assertEqual(event_timers(h, "a"), [9, 19])
        self.assertEqual(h.value("ids/windows", "a"), [[0, 10, True, None], [10, 20, True, None]])
        self.assertEqual(h.value("sum/windows", "a"), [[0, 10, True, 8], [10, 20, True, 4]])

        self.assertEqual(advance(h, 8), [])
        self.assertEqual(all_lines(h.advance_watermark(9)), [
            "a: ids 0 10 [5,1,2]",
            "a: sum 0 10 8",
            "a: count 0 10 3",
            "b: ids 0 10 [3]",
            "b: sum 0 10 3",
            "b: count 0 10 1",
        ])
        # Lateness 0: fired and cleaned up at once.
        self.assertFalse(h.has_state("b"))
        self.assertEqual(h.value("ids/windows", "a"), [[10, 20, True, None]])
        self.assertEqual(h.list_items("ids/elements", "a"), [[10, 4]])
        self.assertEqual(event_timers(h, "a"), [19])

        self.assertEqual(advance(h, I64_MAX), ["a: ids 10 20 [4]"])
        self.assertFalse(h.has_state("a"))
        self.assertEqual(h.timers(), [])

    def test_tumbling_windows_follow_their_offset(self):
        h = probe({"shape": "tumbling", "size": 10, "offset": 3})
        add(h, "a", 2, "1")
        add(h, "a", 3, "2")
        add(h, "a", 12, "3")
        self.assertEqual(advance(h, I64_MAX), ["a: ids -7 3 [1]", "a: ids 3 13 [2,3]"])

    def test_equal_timestamps_keep_the_order_they_came_in(self):
        h = probe({"shape": "tumbling", "size": 10})
        for element in ["3", "1", "2"]:
            add(h, "a", 5, element)
        add(h, "a", 4, "9")
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [9,3,1,2]"])

    def test_before_any_watermark_nothing_is_late(self):
        h = probe({"shape": "tumbling", "size": 10})
        self.assertEqual(h.watermark, eddy.NO_WATERMARK)
        self.assertEqual(add(h, "a", I64_MIN + 5, "1"), [])
        self.assertEqual(add(h, "a", -100, "2"), [])
        self.assertEqual(advance(h, -91), [
            f"a: ids {I64_MIN} {I64_MIN + 10} [1]",
            "a: ids -100 -90 [2]",
        ])

    def test_an_error_after_add_discards_the_window_changes(self):
        class Fails(eddy.Operator):
            def open(self, states):
                self.w = TumblingWindows.of(10).reduce(states, "w", lambda a, b: a + b)

            def process(self, ctx, record):
                self.w.add(ctx, 1)
                if record.value == b"fail":
                    raise eddy.Failed("asked to")

        h = Harness(Fails)
        with self.assertRaises(eddy.Failed):
            h.process_record(InputRecord("k", "fail", 1))
        self.assertFalse(h.has_state("k"))
        self.assertEqual(h.timers(), [])


class Lateness(unittest.TestCase):
    def test_a_late_element_within_the_lateness_fires_its_window_again_at_once(self):
        h = probe({"shape": "tumbling", "size": 10, "lateness": 5})
        add(h, "a", 1, "1")
        # Fire timer at 9, cleanup timer at 14.
        self.assertEqual(event_timers(h, "a"), [9, 14])
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [1]"])
        self.assertEqual(event_timers(h, "a"), [14])
        self.assertEqual(h.value("ids/windows", "a"), [[0, 10, False, None]])

        # The watermark is 9: a record at 2 is late, but the window is kept until 14.
        self.assertEqual(all_lines(h.process_record(InputRecord("a", "2", 2))), [
            "a: ids 0 10 [1,2] late",
            "a: sum 0 10 3 late",
            "a: count 0 10 2 late",
        ])
        self.assertEqual(advance(h, 13), [])
        self.assertEqual(add(h, "a", 9, "3"), ["a: ids 0 10 [1,2,3] late"])
        # On-time elements of the next window are unaffected.
        self.assertEqual(add(h, "a", 12, "4"), [])

        # Cleanup at 14: nothing fires, the state goes.
        self.assertEqual(advance(h, 14), [])
        self.assertEqual(h.value("ids/windows", "a"), [[10, 20, True, None]])
        self.assertEqual(h.list_items("ids/elements", "a"), [[12, 4]])
        # Later than the lateness: dropped, nothing changes.
        self.assertEqual(add(h, "a", 5, "5"), ["a: dropped 5"])
        self.assertEqual(h.list_items("ids/elements", "a"), [[12, 4]])
        self.assertEqual(event_timers(h, "a"), [19, 24])
        self.assertEqual(advance(h, I64_MAX), ["a: ids 10 20 [4]"])
        self.assertFalse(h.has_state("a"))

    def test_without_lateness_an_element_behind_the_watermark_is_dropped(self):
        h = probe({"shape": "tumbling", "size": 10})
        add(h, "a", 1, "1")
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [1]"])
        self.assertEqual(add(h, "a", 9, "2"), ["a: dropped 2"])
        self.assertFalse(h.has_state("a"))
        # An element behind the watermark whose window is not over is on time.
        add(h, "b", 10, "3")
        advance(h, 15)
        self.assertEqual(add(h, "b", 11, "4"), [])
        self.assertEqual(advance(h, 19), ["b: ids 10 20 [3,4]"])

    def test_cleanup_timers_say_they_are_the_windows_with_nothing_fired(self):
        class Verdicts(eddy.Operator):
            def open(self, states):
                self.w = (TumblingWindows.of(10).allowed_lateness(10)
                          .reduce(states, "w", lambda a, b: a + b))

            def process(self, ctx, record):
                self.w.add(ctx, 1)

            def on_timer(self, ctx, timer):
                fired = self.w.on_timer(ctx, timer)
                ctx.emit(ctx.key, f"{timer.timestamp} {None if fired is None else len(fired)}")

        h = Harness(Verdicts)
        h.process_record(InputRecord("k", "", 1))
        self.assertEqual([e.value_str() for e in h.advance_watermark(I64_MAX)], ["9 1", "19 0"])

    def test_raising_the_allowed_lateness_between_runs_keeps_windows_until_the_new_cleanup(self):
        h = probe({"shape": "tumbling", "size": 10, "lateness": 5})
        add(h, "a", 1, "1")
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [1]"])
        self.assertEqual(event_timers(h, "a"), [14])

        # Restarted with a lateness of 20: [0, 10) is kept until 29, not 14.
        h.with_config({"shape": "tumbling", "size": 10, "lateness": 20}).init_result()
        self.assertEqual(advance(h, 14), [])
        self.assertEqual(event_timers(h, "a"), [29])
        self.assertEqual(add(h, "a", 2, "2"), ["a: ids 0 10 [1,2] late"])
        self.assertEqual(advance(h, 28), [])
        self.assertTrue(h.has_state("a"))
        self.assertEqual(advance(h, 29), [])
        self.assertFalse(h.has_state("a"))
        self.assertEqual(h.timers(), [])

    def test_lowering_the_allowed_lateness_between_runs_cleans_up_at_the_keys_next_element(self):
        h = probe({"shape": "tumbling", "size": 10, "lateness": 20})
        add(h, "a", 1, "1")
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [1]"])
        self.assertEqual(event_timers(h, "a"), [29])

        # Restarted with a lateness of 5: [0, 10) is over at 14. Its key's next element
        # registers that, which is due: the window goes before the key's next record.
        h.with_config({"shape": "tumbling", "size": 10, "lateness": 5}).init_result()
        self.assertEqual(advance(h, 15), [])
        self.assertEqual(add(h, "a", 3, "2"), ["a: dropped 2"])
        self.assertEqual(add(h, "a", 12, "3"), [])
        self.assertEqual(h.value("ids/windows", "a"), [[10, 20, True, None]])
        self.assertEqual(h.list_items("ids/elements", "a"), [[12, 3]])
        self.assertEqual(advance(h, I64_MAX), ["a: ids 10 20 [3]"])
        self.assertFalse(h.has_state("a"))
        self.assertEqual(h.timers(), [])


class Sliding(unittest.TestCase):
    def test_sliding_windows_share_elements_and_keep_them_until_their_last_window_goes(self):
        h = probe({"shape": "sliding", "size": 30, "slide": 10})
        add(h, "a", 5, "1")
        add(h, "a", 25, "2")
        self.assertEqual(h.value("count/windows", "a"), [
            [-20, 10, True, 1],
            [-10, 20, True, 1],
            [0, 30, True, 2],
            [10, 40, True, 1],
            [20, 50, True, 1],
        ])
        # Each element is stored once, whatever the number of its windows.
        self.assertEqual(h.list_items("ids/elements", "a"), [[5, 1], [25, 2]])
        self.assertEqual(event_timers(h, "a"), [9, 19, 29, 39, 49])
        self.assertEqual(advance(h, 29), [
            "a: ids -20 10 [1]",
            "a: ids -10 20 [1]",
            "a: ids 0 30 [1,2]",
        ])
        # Element 1 is in no live window any more; element 2 is.
        self.assertEqual(h.list_items("ids/elements", "a"), [[25, 2]])
        self.assertEqual(advance(h, I64_MAX), ["a: ids 10 40 [2]", "a: ids 20 50 [2]"])
        self.assertFalse(h.has_state("a"))

    def test_sliding_windows_take_a_late_element_in_the_windows_still_open(self):
        h = probe({"shape": "sliding", "size": 20, "slide": 10})
        add(h, "a", 12, "1")
        self.assertEqual(advance(h, 19), ["a: ids 0 20 [1]"])
        # 15 is in [0, 20) (gone) and [10, 30) (open): it goes to the open one only.
        self.assertEqual(add(h, "a", 15, "2"), [])
        self.assertEqual(advance(h, 29), ["a: ids 10 30 [1,2]"])

    def test_sliding_windows_with_gaps_ignore_elements_in_the_gaps(self):
        h = probe({"shape": "sliding", "size": 5, "slide": 10})
        self.assertEqual(add(h, "a", 7, "1"), [])
        self.assertFalse(h.has_state("a"))
        add(h, "a", 12, "2")
        self.assertEqual(advance(h, I64_MAX), ["a: ids 10 15 [2]"])


class Sessions(unittest.TestCase):
    def test_an_element_bridging_two_sessions_merges_them(self):
        h = probe({"shape": "session", "gap": 10})
        add(h, "a", 0, "1")
        add(h, "a", 5, "2")  # [0, 15)
        add(h, "a", 20, "3")  # [20, 30)
        add(h, "a", 35, "4")  # [35, 45)
        add(h, "b", 12, "9")
        # [0, 10) grew to [0, 15): its timer at 9 stays, to find nothing due.
        self.assertEqual(event_timers(h, "a"), [9, 14, 29, 44])
        self.assertEqual(h.value("count/windows", "a"),
                         [[0, 15, True, 2], [20, 30, True, 1], [35, 45, True, 1]])
        # 12 is less than the gap from 5 and from 20: [0, 15) + [12, 22) + [20, 30) = [0, 30).
        add(h, "a", 12, "5")
        self.assertEqual(h.value("count/windows", "a"), [[0, 30, True, 4], [35, 45, True, 1]])
        self.assertEqual(h.value("sum/windows", "a"), [[0, 30, True, 11], [35, 45, True, 4]])
        # The timers of the merged sessions stay, and find nothing due.
        self.assertEqual(event_timers(h, "a"), [9, 14, 29, 44])
        self.assertEqual(advance(h, 28), ["b: ids 12 22 [9]"])
        self.assertEqual(event_timers(h, "a"), [29, 44])
        self.assertEqual(all_lines(h.advance_watermark(29)),
                         ["a: ids 0 30 [1,2,5,3]", "a: sum 0 30 11", "a: count 0 30 4"])
        self.assertEqual(h.list_items("ids/elements", "a"), [[35, 4]])
        self.assertEqual(advance(h, I64_MAX), ["a: ids 35 45 [4]"])
        self.assertEqual(h.timers(), [])
        self.assertFalse(h.has_state("a") or h.has_state("b"))

    def test_sessions_exactly_a_gap_apart_stay_apart(self):
        h = probe({"shape": "session", "gap": 10})
        add(h, "a", 0, "1")
        add(h, "a", 10, "2")
        add(h, "a", 19, "3")
        self.assertEqual(advance(h, I64_MAX), ["a: ids 0 10 [1]", "a: ids 10 29 [2,3]"])

    def test_a_late_element_extends_a_fired_session_within_the_lateness(self):
        h = probe({"shape": "session", "gap": 10, "lateness": 20})
        add(h, "a", 0, "1")  # [0, 10): fires at 9, cleaned up at 29
        self.assertEqual(advance(h, 12), ["a: ids 0 10 [1]"])
        self.assertEqual(event_timers(h, "a"), [29])

        # At watermark 12, an element at 5 makes [0, 15): its end is not reached yet, so it
        # fires when it is, not at once.
        self.assertEqual(add(h, "a", 5, "2"), [])
        # The cleanup timer of [0, 10) stays, to find nothing due.
        self.assertEqual(event_timers(h, "a"), [14, 29, 34])
        self.assertEqual(advance(h, 14), ["a: ids 0 15 [1,2]"])

        # At watermark 14, an element at 1 is inside the fired session: it fires again at once.
        self.assertEqual(add(h, "a", 1, "3"), ["a: ids 0 15 [1,3,2] late"])
        # Past the cleanup (34), an element that would have joined it opens a new session,
        # which is itself late: dropped.
        self.assertEqual(advance(h, 34), [])
        self.assertFalse(h.has_state("a"))
        self.assertEqual(add(h, "a", 3, "4"), ["a: dropped 4"])
        self.assertFalse(h.has_state("a"))
        # One whose own session is not over is taken.
        self.assertEqual(add(h, "a", 30, "5"), [])
        self.assertEqual(advance(h, I64_MAX), ["a: ids 30 40 [5]"])

    def test_sessions_need_a_merging_aggregate(self):
        class Plain(eddy.AggregateFunction):
            def create_accumulator(self):
                return 0

            def add(self, value, n):
                return n + 1

            def get_result(self, n):
                return n

        states = eddy.StateRegistry(Context())
        windows = TumblingWindows.of(10).aggregate(states, "w", Plain())
        self.assertEqual(states.problems(), [])
        with self.assertRaises(eddy.InvalidConfig) as caught:
            windows.reconfigure(SessionWindows.with_gap(10))
        self.assertIn("MergingAggregateFunction", caught.exception.message)
        # Still tumbling.
        windows.reconfigure(TumblingWindows.of(20))
        # Declared as sessions, the declaration itself is refused (init fails).
        SessionWindows.with_gap(10).aggregate(states, "v", Plain())
        self.assertEqual(states.problems(), [
            "window `v`: the aggregate function has no `merge` method (session windows merge "
            "their accumulators)"])


class Timers(unittest.TestCase):
    def test_timers_of_the_windows_and_the_operator_are_told_apart_and_shared(self):
        h = probe({"shape": "tumbling", "size": 10})
        add(h, "a", 1, "1")
        add(h, "a", 0, "own 5")
        add(h, "a", 0, "own 9")  # the windows' timestamp too
        add(h, "b", 0, "own 9")
        self.assertEqual(advance(h, 5), ["a: own 5"])
        self.assertEqual(advance(h, 9), ["a: ids 0 10 [1]", "a: own 9", "b: own 9"])

        # Processing-time timers are never the windows'.
        class Only(eddy.Operator):
            def open(self, states):
                self.w = TumblingWindows.of(10).reduce(states, "w", lambda a, b: a + b)

            def process(self, ctx, record):
                ctx.register_processing_time_timer(9)
                self.w.add(ctx, 1)

            def on_timer(self, ctx, timer):
                fired = self.w.on_timer(ctx, timer)
                ctx.emit(ctx.key, "mine" if fired is None else f"windows {len(fired)}")

        h = Harness(Only)
        h.process_record(InputRecord("k", "", 1))
        self.assertEqual([e.value_str() for e in h.advance_processing_time(9)], ["mine"])
        self.assertEqual([e.value_str() for e in h.advance_watermark(9)], ["windows 1"])

    def test_windows_of_different_shapes_share_their_keys_timers(self):
        class MinutesAndVisits(eddy.Operator):
            """Minute counts (tumbling) and visit counts (sessions, 30 s gap) of every key:
            both use the key's timers, and neither may take away one the other needs."""

            def open(self, states):
                add = lambda a, b: a + b  # noqa: E731
                self.minutes = TumblingWindows.of(60_000).reduce(states, "minutes", add)
                self.visits = SessionWindows.with_gap(30_000).reduce(states, "visits", add)

            def process(self, ctx, record):
                emit(ctx, "minute", self.minutes.add(ctx, 1))
                emit(ctx, "visit", self.visits.add(ctx, 1))

            def on_timer(self, ctx, timer):
                emit(ctx, "minute", self.minutes.on_timer(ctx, timer) or [])
                emit(ctx, "visit", self.visits.on_timer(ctx, timer) or [])

        h = Harness(MinutesAndVisits)
        self.assertEqual(h.process_record(InputRecord("k", "", 30_000)), [])
        # The minute ends at 59 999, and so does the visit [30000, 60000) so far.
        self.assertEqual(h.process_record(InputRecord("k", "", 40_000)), [])
        # The visit grew to [30000, 70000): the minute still needs the timer at 59 999.
        self.assertEqual(all_lines(h.advance_watermark(59_999)), ["k: minute 0 60000 2"])
        self.assertEqual(all_lines(h.advance_watermark(I64_MAX)), ["k: visit 30000 70000 2"])
        self.assertFalse(h.has_state("k"))
        self.assertEqual(h.timers(), [])

    def test_a_timer_with_nothing_due_is_none_to_the_windows(self):
        h = Harness(Answers)
        h.process_record(InputRecord("k", "", 0))
        # [0, 10) grows to [0, 15): the timer at 9 is left registered, and finds nothing due.
        h.process_record(InputRecord("k", "", 5))
        h.process_record(InputRecord("k", "own 12", 5))
        self.assertEqual(answers(h, 12), ["9 None", "12 None"])
        self.assertEqual(answers(h, I64_MAX), ["14 1"])
        self.assertEqual(h.timers(), [])
        self.assertFalse(h.has_state("k"))

    def test_any_timer_of_the_key_fires_the_windows_it_finds_overdue(self):
        h = Harness(Answers)
        # A session whose timer is missing.
        h.set_value("w/windows", "k", [[0, 10, True, 3]])
        h.process_record(InputRecord("k", "own 20", 0))
        self.assertEqual(answers(h, 19), [])
        self.assertEqual(answers(h, 20), ["20 1"])
        self.assertFalse(h.has_state("k"))

    def test_an_element_adding_to_pending_windows_registers_no_timer(self):
        registered = []

        class Recording:
            """The context, recording the timers registered through it."""

            def __init__(self, ctx):
                self._ctx = ctx

            def __getattr__(self, name):
                return getattr(self._ctx, name)

            def register_event_time_timer(self, timestamp):
                registered.append(timestamp)
                self._ctx.register_event_time_timer(timestamp)

        class Sums(eddy.Operator):
            def open(self, states):
                self.w = (SlidingWindows.of(20, 10).allowed_lateness(5)
                          .reduce(states, "w", lambda a, b: a + b))

            def process(self, ctx, record):
                self.w.add(Recording(ctx), 1)

            def on_timer(self, ctx, timer):
                self.w.on_timer(Recording(ctx), timer)

        h = Harness(Sums)

        def at(timestamp):
            registered.clear()
            h.process_record(InputRecord("k", "", timestamp))
            return list(registered)

        # [0, 20) and [10, 30) are new: their ends and cleanup times.
        self.assertEqual(at(12), [19, 24, 29, 34])
        self.assertEqual(at(15), [])  # both pending already
        self.assertEqual(at(21), [19, 24, 29, 34, 39, 44])  # [20, 40) is new: all again
        self.assertEqual(at(22), [])
        registered.clear()
        h.advance_watermark(19)
        # [0, 20) fired (it stays until 24): all again.
        self.assertEqual(registered, [24, 29, 34, 39, 44])
        # Not every live window is pending (one fired, whose cleanup time may have moved
        # with a new lateness): all again.
        self.assertEqual(at(25), [24, 29, 34, 39, 44])
        self.assertEqual(h.value("w/windows", "k"),
                         [[0, 20, False, 2], [10, 30, True, 5], [20, 40, True, 3]])


class Answers(eddy.Operator):
    """Sessions (gap 10) that answer every timer with what ``on_timer`` said: ``"{timestamp}
    {n}"``, ``n`` the number of windows fired, or ``None``. A value ``own T`` registers an
    event-time timer at ``T`` instead of adding an element."""

    def open(self, states):
        self.w = SessionWindows.with_gap(10).reduce(states, "w", lambda a, b: a + b)

    def process(self, ctx, record):
        value = record.value_str()
        if value.startswith("own "):
            ctx.register_event_time_timer(int(value[4:]))
            return
        self.w.add(ctx, 1)

    def on_timer(self, ctx, timer):
        fired = self.w.on_timer(ctx, timer)
        ctx.emit(ctx.key, f"{timer.timestamp} {None if fired is None else len(fired)}")


def answers(h, watermark):
    return [e.value_str() for e in h.advance_watermark(watermark)]


class Declarations(unittest.TestCase):
    def test_bad_parameters_fail_init_or_the_calls(self):
        for config, problem in [
            ({"shape": "tumbling", "size": 0},
             "window `ids`: the window size must be positive, got 0 ms"),
            ({"shape": "sliding", "size": 10, "slide": 0},
             "window `ids`: the window size and slide must be positive, got 10 ms and 0 ms"),
            ({"shape": "session", "gap": -1},
             "window `ids`: the session gap must be positive, got -1 ms"),
            ({"shape": "tumbling", "size": 10, "lateness": -1},
             "window `ids`: the allowed lateness must not be negative, got -1 ms"),
            ({"shape": "tumbling", "size": "10"},
             "window `ids`: the window size must be an integer number of milliseconds, got '10'"),
        ]:
            error = Harness(Probe, config).init_error
            self.assertIsInstance(error, eddy.InvalidConfig, config)
            self.assertEqual(error.message, problem)

        # Declared bad in `open` and never checked: the calls fail.
        class Bad(eddy.Operator):
            def open(self, states):
                self.w = SlidingWindows.of(100_000, 10).reduce(states, "w", lambda a, b: a + b)

            def process(self, ctx, record):
                self.w.add(ctx, 1)

            def on_timer(self, ctx, timer):
                self.w.on_timer(ctx, timer)

        h = Harness(Bad)
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", "")
        self.assertIn("window `w`: a size of 100000 ms sliding by 10 ms puts every element in "
                      "10000 windows", caught.exception.message)
        self.assertNotIsInstance(caught.exception, eddy.InvalidConfig)

    def test_functions_that_cannot_work_fail_init(self):
        class Wrong(eddy.Operator):
            def open(self, states):
                TumblingWindows.of(10).reduce(states, "r", None)
                TumblingWindows.of(10).process(states, "p", "not a function")
                TumblingWindows.of(10).aggregate(states, "a", object())

            def process(self, ctx, record):
                pass

        error = Harness(Wrong).init_error
        self.assertIsInstance(error, eddy.InvalidConfig)
        self.assertEqual(error.message, "window `r`: `reduce` is not callable")
        states = eddy.StateRegistry(Context())
        Wrong().open(states)
        self.assertEqual(states.problems(), [
            "window `r`: `reduce` is not callable",
            "window `p`: the process-window function is not callable",
            "window `a`: the aggregate function has no `create_accumulator` method",
            "window `a`: the aggregate function has no `add` method",
            "window `a`: the aggregate function has no `get_result` method",
        ])

    def test_reconfigure_takes_an_assigner(self):
        windows = TumblingWindows.of(10).reduce(eddy.StateRegistry(Context()), "w", max)
        self.assertEqual(windows.name, "w")
        with self.assertRaises(TypeError):
            windows.reconfigure(10)

    def test_windows_lists_the_live_windows_of_the_key(self):
        class Live(eddy.Operator):
            def open(self, states):
                self.w = SessionWindows.with_gap(10).process(states, "w", lambda k, w, e: len(e))

            def process(self, ctx, record):
                self.w.add(ctx, record.value_str())
                ctx.emit(ctx.key, " ".join(str(w) for w in self.w.windows(ctx)))

        h = Harness(Live)
        h.process_record(InputRecord("k", "a", 0))
        self.assertEqual(h.process_record(InputRecord("k", "b", 30))[0].value_str(),
                         "[0, 10) [30, 40)")
        self.assertEqual(h.process_record(InputRecord("k", "c", 5))[0].value_str(),
                         "[0, 15) [30, 40)")

    def test_a_malformed_window_state_is_an_error_naming_it(self):
        h = Harness(Answers)
        h.set_value("w/windows", "k", [[0, 10]])
        with self.assertRaises(eddy.Failed) as caught:
            h.process_record(InputRecord("k", "", 0))
        self.assertIn("state `w/windows` does not hold a list of [start, end, pending, "
                      "accumulator]", caught.exception.message)


# -- out-of-order input against a batch computation -----------------------------------------


class Lcg:
    """A deterministic pseudo-random sequence (a 64-bit LCG), so failures reproduce."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % 2**64
        return (self.state >> 33) % n


Input = namedtuple("Input", ("key", "timestamp", "id"))


def make_input(seed, n, step, disorder, late_every, late_by):
    """``n`` records of 4 keys, timestamps rising by about ``step`` but each up to
    ``disorder`` earlier than its place; every ``late_every``-th record (0: none) is pushed
    back by up to ``late_by`` more."""
    rng = Lcg(seed)
    keys = ["a", "b", "c", "d"]
    base = 1_000
    records = []
    for id_ in range(n):
        base += rng.below(step * 2 + 1)
        timestamp = base - rng.below(disorder + 1)
        if late_every and id_ % late_every == late_every - 1:
            timestamp -= rng.below(late_by + 1)
        records.append(Input(keys[rng.below(4)], timestamp, id_))
    return records


Run = namedtuple("Run", ("lines", "diverted", "watermarks"))


def run(h, records, max_out_of_orderness, allowed_lateness):
    """Runs ``records`` the way the host does with ``[event-time]``: the watermark a record
    sees is the largest timestamp before it minus ``max_out_of_orderness`` minus 1; timers
    due at it fire before the record; a record at or below the watermark minus
    ``allowed_lateness`` is diverted; at the end the watermark goes to the maximum."""
    out = Run([], [], [])
    newest = None
    for record in records:
        watermark = eddy.NO_WATERMARK if newest is None else newest - max_out_of_orderness - 1
        out.watermarks.append(watermark)
        out.lines.extend(all_lines(h.advance_watermark(watermark)))
        if watermark != eddy.NO_WATERMARK and record.timestamp + allowed_lateness <= watermark:
            out.diverted.append(record.id)
            continue
        out.lines.extend(all_lines(h.process_record(
            InputRecord(record.key, str(record.id), record.timestamp))))
        newest = record.timestamp if newest is None else max(newest, record.timestamp)
    out.lines.extend(all_lines(h.advance_watermark(I64_MAX)))
    return out


def windows_of(config, timestamp):
    """The windows of ``timestamp``, computed the plain way."""
    if config["shape"] == "tumbling":
        size, offset = config["size"], config.get("offset", 0)
        start = timestamp - (timestamp - offset) % size
        return [(start, start + size)]
    size, slide = config["size"], config["slide"]
    windows = []
    start = timestamp - timestamp % slide
    while start + size > timestamp:
        windows.append((start, start + size))
        start -= slide
    return windows


def batch_lines(expected):
    """The ``ids`` lines a batch computation expects (``expected``: per (key, start, end),
    its elements as (timestamp, arrival, id)), each window once, in (key, window) order."""
    out = []
    for (key, start, end), elements in sorted(expected.items()):
        ids = ",".join(str(id_) for _, _, id_ in sorted(elements))
        out.append(f"{key}: ids {start} {end} [{ids}]")
    return out


def last_firings(lines_):
    """The last ``ids`` firing of every window in a run, in (key, window) order, and how many
    times each fired."""
    last = {}
    counts = {}
    for line in lines_:
        key, sep, rest = line.partition(": ids ")
        if not sep:
            continue
        start, end, ids = rest.split(" ")[:3]
        window_id = (key, int(start), int(end))
        last[window_id] = f"{key}: ids {start} {end} {ids}"
        counts[window_id] = counts.get(window_id, 0) + 1
    return [last[w] for w in sorted(last)], counts


def check_functions_agree(test, lines_):
    """Every ``sum`` and ``count`` firing must agree with the ``ids`` firing before it."""
    ids_of = {}
    for line in lines_:
        key, rest = line.split(": ", 1)
        words = rest.split(" ")
        function = words[0]
        if function in ("own", "dropped"):
            continue
        window_id = (key, words[1], words[2])
        result = json.loads(words[3])
        if function == "ids":
            ids_of[window_id] = result
        elif function == "sum":
            test.assertEqual(result, sum(ids_of[window_id]), line)
        elif function == "count":
            test.assertEqual(result, len(ids_of[window_id]), line)
        else:
            test.fail(f"unexpected line {line}")


class AgainstABatchComputation(unittest.TestCase):
    def test_fixed_windows_on_out_of_order_input_match_a_batch_computation(self):
        """Without late records, every window fires once, as the batch computation has it,
        and no state or timer is left."""
        shapes = [
            {"shape": "tumbling", "size": 100},
            {"shape": "tumbling", "size": 100, "offset": 30},
            {"shape": "sliding", "size": 100, "slide": 25},
            {"shape": "sliding", "size": 90, "slide": 40},
        ]
        for seed, config in enumerate(shapes):
            disorder = 60
            records = make_input(seed + 7, 400, 10, disorder, 0, 0)
            h = probe(config)
            result = run(h, records, disorder, 0)
            self.assertEqual(result.diverted, [], f"{config}: the input has no late record")

            expected = {}
            for arrival, r in enumerate(records):
                for start, end in windows_of(config, r.timestamp):
                    expected.setdefault((r.key, start, end), []).append(
                        (r.timestamp, arrival, r.id))
            last, counts = last_firings(result.lines)
            self.assertEqual(last, batch_lines(expected), config)
            self.assertTrue(all(n == 1 for n in counts.values()), f"{config}: fired once each")
            check_functions_agree(self, result.lines)
            self.assertEqual(h.timers(), [], config)
            for key in "abcd":
                self.assertFalse(h.has_state(key), f"{config}: {key} has state left")

    def test_fixed_windows_with_late_records_match_a_batch_computation(self):
        """With late records and allowed lateness, the host diverts records later than the
        lateness; each window's last firing holds exactly the elements that reached it
        before its cleanup, and it fired once on time plus once per late element."""
        shapes = [
            {"shape": "tumbling", "size": 100, "lateness": 150},
            {"shape": "sliding", "size": 100, "slide": 50, "lateness": 80},
            {"shape": "tumbling", "size": 100},
        ]
        for seed, config in enumerate(shapes):
            lateness = config.get("lateness", 0)
            disorder = 30
            records = make_input(seed + 70, 400, 10, disorder, 7, 200)
            h = probe(config)
            result = run(h, records, disorder, lateness)
            self.assertNotEqual(result.diverted, [], f"{config}: some records are diverted")

            expected = {}
            on_time = set()
            late = {}
            for arrival, r in enumerate(records):
                if r.id in result.diverted:
                    continue
                watermark = result.watermarks[arrival]
                for start, end in windows_of(config, r.timestamp):
                    known = watermark != eddy.NO_WATERMARK
                    if known and end - 1 + lateness <= watermark:
                        continue  # cleaned up
                    window_id = (r.key, start, end)
                    expected.setdefault(window_id, []).append((r.timestamp, arrival, r.id))
                    if known and end - 1 <= watermark:
                        late[window_id] = late.get(window_id, 0) + 1
                    else:
                        on_time.add(window_id)
            firings = {w: int(w in on_time) + late.get(w, 0) for w in expected}
            self.assertTrue(any(late.values()) or lateness == 0, f"{config}: late firings")
            last, counts = last_firings(result.lines)
            self.assertEqual(last, batch_lines(expected), config)
            self.assertEqual(counts, firings, f"{config}: on time once, then once per late element")
            check_functions_agree(self, result.lines)
            self.assertFalse(any("dropped" in line for line in result.lines),
                             f"{config}: with the job's lateness the windows', the host diverts "
                             "every record they would drop")
            self.assertEqual(h.timers(), [], config)

    def test_sessions_on_out_of_order_input_match_a_batch_computation(self):
        """Sessions (with bridging elements) without late records: each session fires once,
        as sorting each key's elements and cutting at gaps gives."""
        # (seed, gap, step, disorder): steps wide enough for sessions to end, disorder large
        # enough for elements to bridge them.
        for seed, gap, step, disorder in [(1, 25, 10, 120), (2, 40, 15, 150), (3, 15, 5, 80)]:
            config = {"shape": "session", "gap": gap}
            records = make_input(seed, 300, step, disorder, 0, 0)
            h = probe(config)
            result = run(h, records, disorder, 0)
            self.assertEqual(result.diverted, [])

            by_key = {}
            for arrival, r in enumerate(records):
                by_key.setdefault(r.key, []).append((r.timestamp, arrival, r.id))
            expected = {}
            for key, elements in by_key.items():
                session = []
                for element in sorted(elements) + [None]:
                    if session and (element is None or element[0] >= session[-1][0] + gap):
                        expected[(key, session[0][0], session[-1][0] + gap)] = session
                        session = []
                    if element is not None:
                        session.append(element)
            # Some element must have bridged two sessions for the test to mean anything: one
            # that came after a later element of its key that was more than a gap after the
            # one before it.
            merges = 0
            for i, r in enumerate(records):
                earlier = [o.timestamp for o in records[:i] if o.key == r.key]
                below = [t for t in earlier if t <= r.timestamp]
                above = [t for t in earlier if t > r.timestamp]
                if below and above:
                    below, above = max(below), min(above)
                    if (above - below >= gap and r.timestamp - below < gap
                            and above - r.timestamp < gap):
                        merges += 1
            self.assertGreater(merges, 0, f"gap {gap}: no bridging element")

            last, counts = last_firings(result.lines)
            self.assertEqual(last, batch_lines(expected), f"gap {gap}")
            self.assertTrue(all(n == 1 for n in counts.values()), f"gap {gap}: fired once each")
            check_functions_agree(self, result.lines)
            self.assertEqual(h.timers(), [])
            for key in "abcd":
                self.assertFalse(h.has_state(key))

    def test_windows_fire_in_watermark_order(self):
        records = make_input(11, 300, 10, 40, 0, 0)
        h = probe({"shape": "sliding", "size": 60, "slide": 20})
        result = run(h, records, 40, 0)
        # Per key, the ends of the windows as they fire never go back.
        last_end = {}
        for line in result.lines:
            key, sep, rest = line.partition(": ids ")
            if not sep:
                continue
            end = int(rest.split(" ")[1])
            previous = last_end.get(key, I64_MIN)
            self.assertLessEqual(previous, end, f"{line} after a window ending at {previous}")
            last_end[key] = end


if __name__ == "__main__":
    unittest.main()
