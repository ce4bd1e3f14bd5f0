"""The Python word count through the SDK's test harness: the Rust example's golden files and
the Rust example's unit tests.

Run: target/tools/venv/bin/python examples/python/word-count/test_main.py
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

_spec = importlib.util.spec_from_file_location("word_count_main", HERE / "main.py")
word_count = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(word_count)

RUST_EXAMPLE = REPO / "examples" / "word-count"


class WordCount(unittest.TestCase):
    def test_golden_input_gives_expected_output(self):
        actual = run_jsonl(Harness(word_count.WordCount), (RUST_EXAMPLE / "input.jsonl").read_text())
        self.assertEqual(actual, (RUST_EXAMPLE / "expected-output.jsonl").read_text())

    def test_counts_per_word(self):
        h = Harness(word_count.WordCount)
        emitted = [pair for word in ["the", "cat", "the", "hat", "the"] for pair in h.process_str(word, word)]
        self.assertEqual(emitted, [("the", "1"), ("cat", "1"), ("the", "2"), ("hat", "1"), ("the", "3")])
        self.assertEqual(h.value("count", "the"), 3)
        self.assertIsNone(h.value("count", "dog"))

    def test_emit_every_aggregates(self):
        h = Harness(word_count.WordCount, {"emit-every": 2})
        emitted = [pair for word in "aabaab" for pair in h.process_str(word, word)]
        self.assertEqual(emitted, [("a", "2"), ("a", "4"), ("b", "2")])
        for bad in [{"emit-every": 0}, {"emit-every": -1}, {"emit-every": "2"}, {"every": 2}]:
            self.assertIsInstance(Harness(word_count.WordCount, bad).init_error, eddy.InvalidConfig, bad)

    def test_counts_within_one_batch_see_each_other(self):
        h = Harness(word_count.WordCount)
        batch = h.process_batch([InputRecord(word) for word in ["a", "b", "a", "a"]])
        self.assertEqual([emits[0].value_str() for emits in batch], ["1", "1", "2", "3"])

    def test_binary_keys_are_fine(self):
        h = Harness(word_count.WordCount)
        self.assertEqual(h.process(b"\xff\x00"), [(b"\xff\x00", b"1")])


if __name__ == "__main__":
    unittest.main()
