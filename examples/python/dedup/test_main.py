"""The Python dedup through the SDK's test harness: the Rust example's golden files and the
Rust example's unit tests.

Run: target/tools/venv/bin/python examples/python/dedup/test_main.py
"""

import importlib.util
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "guest-sdk" / "python"))

import eddy_sdk as eddy  # noqa: E402
from eddy_sdk.testing import Harness, InputRecord, run_jsonl  # noqa: E402

_spec = importlib.util.spec_from_file_location("dedup_main", HERE / "main.py")
dedup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dedup)

RUST_EXAMPLE = REPO / "examples" / "dedup"


def event(user, event_id):
    return f'{{"user":"{user}","event":"{event_id}"}}'


def send(h, user, event_id, at):
    """Whether the record was emitted."""
    value = event(user, event_id)
    emitted = h.process_record(InputRecord(user, value, at))
    if not emitted:
        return False
    [one] = emitted
    assert (one.key_str(), one.value_str()) == (user, value)
    return True


class Dedup(unittest.TestCase):
    def test_golden_input_gives_expected_output(self):
        # The same config as job.toml.
        h = Harness(dedup.Dedup, {"window-ms": 10000})
        actual = run_jsonl(h, (RUST_EXAMPLE / "input.jsonl").read_text())
        self.assertEqual(actual, (RUST_EXAMPLE / "expected-output.jsonl").read_text())

    def test_repeats_within_the_default_window_are_dropped(self):
        h = Harness(dedup.Dedup)
        self.assertTrue(send(h, "u1", "e1", 0))
        self.assertFalse(send(h, "u1", "e1", 59_999))
        self.assertTrue(send(h, "u2", "e1", 59_999))
        # Every sighting counts: the drop at 59 999 keeps e1 a duplicate until 119 999.
        self.assertFalse(send(h, "u1", "e1", 119_998))
        self.assertTrue(send(h, "u1", "e1", 119_998 + dedup.DEFAULT_WINDOW_MS))

    def test_config_sets_and_checks_the_window(self):
        h = Harness(dedup.Dedup, {"window-ms": 10})
        self.assertTrue(send(h, "u", "e", 100))
        self.assertFalse(send(h, "u", "e", 109))
        self.assertTrue(send(h, "u", "e", 119))
        for bad in ['{"window-ms": 0}', '{"window": 5}', '{"window-ms": "5"}', "not json"]:
            self.assertIsInstance(Harness(dedup.Dedup, bad).init_error, eddy.InvalidConfig, bad)

    def test_sweeping_removes_expired_entries_across_pages(self):
        h = Harness(dedup.Dedup, {"window-ms": 1000})
        # 600 events: more than two pages of the default page size.
        batches = h.process_batch(
            [InputRecord("u", event("u", f"e{i}"), i) for i in range(600)])
        self.assertTrue(all(len(emitted) == 1 for emitted in batches))
        self.assertEqual(len(h.map_entries("seen", "u")), 600)
        self.assertEqual(h.value("swept-at", "u"), 0)
        # At 1 300, everything seen at 300 or before has expired: e0..=e300 go.
        self.assertTrue(send(h, "u", "new", 1300))
        seen = h.map_entries("seen", "u")
        self.assertEqual(len(seen), 300)
        self.assertTrue(all(at >= 301 for _, at in seen))
        self.assertEqual(h.value("swept-at", "u"), 1300)
        # e301 is still a duplicate, e300 no longer is.
        self.assertFalse(send(h, "u", "e301", 1300))
        self.assertTrue(send(h, "u", "e300", 1300))

    def test_bad_input_is_an_error(self):
        h = Harness(dedup.Dedup)
        with self.assertRaises(eddy.Failed):
            h.process("u1", '{"user":"u1"}')
        with self.assertRaises(eddy.Failed) as caught:
            h.process("u2", event("u1", "e"))
        self.assertIn("does not match the record key", caught.exception.message)

    def test_state_expires_a_day_after_the_last_event(self):
        h = Harness(dedup.Dedup)
        send(h, "u", "e", 0)
        h.advance_processing_time(24 * 3600 * 1000)
        self.assertFalse(h.has_state("u"))


if __name__ == "__main__":
    unittest.main()
