"""The Python sessionize through the SDK's test harness: the Rust example's golden files,
run with the `[event-time]` settings of this job file as the host runs them, and the Rust
example's unit tests.

Run: target/tools/venv/bin/python examples/python/sessionize/test_main.py
"""

import importlib.util
import re
import sys
import tomllib
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "guest-sdk" / "python"))

import eddy_sdk as eddy  # noqa: E402
from eddy_sdk.testing import Harness, InputRecord, run_jsonl_event_time  # noqa: E402

_spec = importlib.util.spec_from_file_location("sessionize_main", HERE / "main.py")
sessionize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sessionize)

RUST_EXAMPLE = REPO / "examples" / "sessionize"
MINUTE = 60_000
I64_MAX = 2**63 - 1

_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000}


def duration_ms(text):
    """A human duration of a job file (`"5m"`, `"1m 30s"`, `"500ms"`) in ms."""
    parts = re.findall(r"\s*(\d+)\s*([a-z]+)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
        raise ValueError(f"duration {text!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def event_time(job):
    """`(max-out-of-orderness, allowed-lateness)` in ms of the job file's `[event-time]`."""
    table = tomllib.loads(job)["event-time"]
    return (duration_ms(table.get("max-out-of-orderness", "0ms")),
            duration_ms(table.get("allowed-lateness", "0ms")))


def click(h, user, minute, page):
    value = f'{{"user":"{user}","page":"{page}"}}'
    assert h.process_record(InputRecord(user, value, minute * MINUTE)) == []


def summaries(h, watermark):
    return [e.value_str() for e in h.advance_watermark(watermark)]


class Sessionize(unittest.TestCase):
    def test_golden_input_gives_expected_output(self):
        max_out_of_orderness, allowed_lateness = event_time((HERE / "job.toml").read_text())
        self.assertEqual((max_out_of_orderness, allowed_lateness), (5 * MINUTE, 0))
        output, late = run_jsonl_event_time(
            Harness(sessionize.Sessionize), (RUST_EXAMPLE / "input.jsonl").read_text(),
            max_out_of_orderness, allowed_lateness)
        self.assertEqual(output, (RUST_EXAMPLE / "expected-output.jsonl").read_text())
        # No click is late.
        self.assertEqual(late, "")

    def test_a_session_ends_thirty_minutes_after_its_last_click(self):
        h = Harness(sessionize.Sessionize)
        click(h, "u1", 0, "/home")
        click(h, "u1", 10, "/cart")
        click(h, "u1", 5, "/home")
        self.assertEqual(summaries(h, 40 * MINUTE - 2), [])
        self.assertEqual(summaries(h, 40 * MINUTE - 1), [
            '{"user":"u1","start":0,"end":600000,"clicks":3,"pages":["/home","/cart"]}'])
        self.assertFalse(h.has_state("u1"))

    def test_thirty_minutes_apart_is_two_sessions_and_a_click_between_joins_them(self):
        h = Harness(sessionize.Sessionize)
        click(h, "u1", 0, "/a")
        click(h, "u1", 30, "/b")
        click(h, "u2", 0, "/a")
        click(h, "u2", 30, "/b")
        click(h, "u2", 15, "/c")
        self.assertEqual(summaries(h, I64_MAX), [
            '{"user":"u1","start":0,"end":0,"clicks":1,"pages":["/a"]}',
            '{"user":"u1","start":1800000,"end":1800000,"clicks":1,"pages":["/b"]}',
            '{"user":"u2","start":0,"end":1800000,"clicks":3,"pages":["/a","/c","/b"]}',
        ])

    def test_config_sets_and_checks_the_gap(self):
        h = Harness(sessionize.Sessionize, {"gap-ms": 60000})
        click(h, "u1", 0, "/a")
        click(h, "u1", 1, "/b")
        self.assertEqual(len(summaries(h, I64_MAX)), 2)
        for bad in ['{"gap-ms": 0}', '{"gap": 1}', '{"gap-ms": "1m"}', "not json"]:
            self.assertIsInstance(Harness(sessionize.Sessionize, bad).init_error,
                                  eddy.InvalidConfig, bad)
        self.assertEqual(
            Harness(sessionize.Sessionize, {"gap-ms": 0}).init_error.message,
            "sessionize config: window `sessions`: the session gap must be positive, got 0 ms")

    def test_bad_input_is_an_error(self):
        h = Harness(sessionize.Sessionize)
        with self.assertRaises(eddy.Failed):
            h.process("u1", '{"user":"u1"}')
        with self.assertRaises(eddy.Failed) as caught:
            h.process("u2", '{"user":"u1","page":"/"}')
        self.assertIn("does not match the record key", caught.exception.message)
        self.assertFalse(h.has_state("u1") or h.has_state("u2"))


if __name__ == "__main__":
    unittest.main()
