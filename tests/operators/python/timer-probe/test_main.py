"""The Python timer probe through the SDK's test harness (no Wasm): the Rust probe's unit
test, and the timer script of tests/tests/integration/event_time.rs.

Run: eddy test tests/operators/python/timer-probe
"""

import importlib.util
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "guest-sdk" / "python"))

import eddy_sdk as eddy  # noqa: E402
from eddy_sdk.testing import Harness, InputRecord  # noqa: E402

_spec = importlib.util.spec_from_file_location("timer_probe_main", HERE / "main.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def lines(emitted):
    return [f"{e.key_str()}: {e.value_str()}" for e in emitted]


class TimerProbe(unittest.TestCase):
    def test_states_are_declared(self):
        h = Harness(probe.TimerProbe)
        self.assertEqual((h.info.name, h.info.version), ("timer-probe", "0.1.0"))
        self.assertEqual([(s.name, s.kind.value, s.ttl) for s in h.states],
                         [("records", "value", None), ("fired", "value", None), ("fail", "value", None),
                          ("chains", "value", None), ("show-watermark", "value", None)])

    def test_timers_fire_in_order_once_with_their_keys_state(self):
        h = Harness(probe.TimerProbe)
        h.process_str("a", "event:300")
        h.process_str("b", "event:100")
        h.process_str("a", "event:300")  # twice: fires once
        h.process_str("b", "event:200")
        h.process_str("b", "unevent:200")
        self.assertEqual(lines(h.advance_watermark(1_000)), [
            "b: fired event 100 records=3 fired=1",
            "a: fired event 300 records=2 fired=1",
        ])
        self.assertEqual(h.advance_watermark(5_000), [])

    def test_the_integration_timer_script(self):
        # event_time.rs, timers_fire_in_timestamp_order_once_each_with_their_keys_state: the
        # watermark before each record is the previous record's timestamp - 1.
        script = [("a", "event:3000", 1000), ("b", "event:2000", 1100), ("a", "event:3000", 1200),
                  ("c", "event:2500", 1300), ("c", "unevent:2500", 1400), ("d", "chain:2", 1450),
                  ("d", "event:2000", 1500), ("e", "processing:0", 1600), ("b", "x", 2500),
                  ("b", "y", 5000), ("a", "z", 9000)]
        h = Harness(probe.TimerProbe)
        out = []
        previous = None
        for key, value, ts in script:
            if previous is not None:
                out += h.advance_watermark(previous - 1)
            out += h.process_record(InputRecord(key, value, timestamp=ts))
            previous = ts
        out += h.advance_watermark(2**63 - 1)
        event = [line for line in lines(out) if " event " in line]
        self.assertEqual(event, [
            "b: fired event 2000 records=2 fired=1",
            "d: fired event 2000 records=2 fired=1",
            "a: fired event 3000 records=2 fired=1",
            "d: fired event 3000 records=2 fired=2",
            "d: fired event 4000 records=2 fired=3",
        ])
        self.assertEqual(lines(h.advance_processing_time(1)), ["e: fired processing 0 records=1 fired=1"])

    def test_a_failing_timer_fails_and_its_key_goes_on(self):
        h = Harness(probe.TimerProbe)
        h.process_record(InputRecord("f", "fail-timer", timestamp=100))
        h.process_record(InputRecord("f", "event:500", timestamp=200))
        h.process_record(InputRecord("g", "event:500", timestamp=300))
        with self.assertRaises(eddy.Failed) as caught:
            h.advance_watermark(999)
        self.assertIn("asked to fail this timer", caught.exception.message)
        self.assertTrue(caught.exception.message.startswith("timer 0 (EventTime 500): "), caught.exception.message)

    def test_json_values_show_watermark_and_after(self):
        h = Harness(probe.TimerProbe)
        h.process_record(InputRecord("k", '{"cmd":"show-watermark"}', timestamp=10))
        h.process_record(InputRecord("k", '{"k":"k","ts":20,"cmd":"after:1000"}', timestamp=20))
        h.process_record(InputRecord("k", '{"no":"cmd"}', timestamp=30))  # only counts
        self.assertEqual(lines(h.advance_watermark(1_500)),
                         ["k: fired event 1020 records=3 fired=1 watermark=1500"])
        h.process_str("p", "show-watermark")
        h.process_str("p", "processing:5")
        self.assertEqual(lines(h.advance_processing_time(10)),
                         ["p: fired processing 5 records=2 fired=1 watermark=1500"])
        self.assertEqual(h.value("records", "k"), 3)
        self.assertEqual(h.value("show-watermark", "k"), True)

    def test_arguments_are_read_as_rust_reads_them(self):
        h = Harness(probe.TimerProbe)
        for bad in ["event:", "event:1.5", "event: 5", "after:x", "chain:9223372036854775808", "event:1_0"]:
            with self.assertRaises(eddy.Failed, msg=bad):
                h.process("k", bad)
        # A failing record leaves no trace: not counted, no timer.
        self.assertIsNone(h.value("records", "k"))
        self.assertEqual(h.timers(), [])
        h.process_str("k", "event:+0007")
        self.assertEqual([t.timestamp for _, t in h.timers()], [7])
        h.process_str("k", "chain:-1")
        self.assertEqual(h.value("chains", "k"), 2**64 - 1)
        h.process_record(InputRecord("w", "after:10", timestamp=2**63 - 5))
        self.assertIn(-(2**63) + 5, [t.timestamp for _, t in h.timers()])
        # Values that are not a JSON object with a string `cmd` are commands as they are.
        for value in ['{"cmd":"event:1"} x', '{"cmd":"event:1","x":NaN}', '{"cmd":5}', ' {"cmd":"event:1"}']:
            self.assertEqual(probe.command_of(value), value)
        self.assertEqual(probe.command_of('{"cmd":"event:1","x":[1]} \n'), "event:1")


if __name__ == "__main__":
    unittest.main()
