"""Native tests of the operator (plain CPython, no Wasm): `eddy test`."""

import unittest
from pathlib import Path

from eddy_sdk.testing import Harness, run_jsonl

import main

HERE = Path(__file__).resolve().parent


class CounterTest(unittest.TestCase):
    def test_counts_per_key(self):
        h = Harness(main.Counter)
        h.process_str("to", "")
        h.process_str("be", "")
        self.assertEqual(h.process_str("to", ""), [("to", "2")])

    def test_input_gives_the_expected_output(self):
        output = run_jsonl(Harness(main.Counter), (HERE / "input.jsonl").read_text())
        self.assertEqual(output, (HERE / "expected-output.jsonl").read_text())


if __name__ == "__main__":
    unittest.main()
