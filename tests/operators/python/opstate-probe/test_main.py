"""The Python opstate probe through the SDK's test harness (no Wasm): the Rust probe's unit
tests, and what tests/tests/integration/operator_state.rs expects of one worker.

Run: eddy test tests/operators/python/opstate-probe
"""

import importlib.util
import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "guest-sdk" / "python"))

import eddy_sdk as eddy  # noqa: E402
from eddy_sdk.testing import Harness, InputRecord  # noqa: E402

_spec = importlib.util.spec_from_file_location("opstate_probe_main", HERE / "main.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def send(h, key, op, item):
    return h.process_str(key, json.dumps({"key": key, "op": op, "item": item}))


class OpstateProbe(unittest.TestCase):
    def test_states_are_declared_as_documented(self):
        h = Harness(probe.OpstateProbe)
        self.assertEqual(h.info.name, "opstate-probe")
        self.assertEqual(h.info.version, "0.1.0")
        self.assertEqual(h.info.states, [])
        self.assertEqual(
            [(s.name, s.redistribution, s.codec, s.schema_version) for s in h.info.operator_states],
            [("buffer", eddy.Redistribution.EVEN_SPLIT, "json", 1),
             ("rules", eddy.Redistribution.UNION, "json", 1)])

    def test_items_are_added_whatever_the_key_and_dumped_sorted(self):
        h = Harness(probe.OpstateProbe)
        self.assertEqual(send(h, "a", "buffer", "y"), [])
        send(h, "b", "buffer", "x")
        send(h, "a", "rule", "r2")
        send(h, "c", "rule", "r1")
        self.assertEqual(send(h, "z", "dump", ""), [("z", '{"buffer":["x","y"],"rules":["r1","r2"]}')])
        self.assertEqual(h.operator_list("buffer"), ["y", "x"])  # insertion order; dump sorts
        send(h, "a", "clear-buffer", "")
        self.assertEqual(send(h, "a", "dump", "")[0][1], '{"buffer":[],"rules":["r1","r2"]}')

    def test_dump_sorts_by_code_point_and_writes_json_as_serde_does(self):
        h = Harness(probe.OpstateProbe)
        for it in ["b", "\U0001F600", "\uFB01", "B", "a\"b", "é"]:
            send(h, "k", "buffer", it)
        self.assertEqual(send(h, "k", "dump", "")[0][1],
                         '{"buffer":["B","a\\"b","b","é","\uFB01","\U0001F600"],"rules":[]}')

    def test_a_failing_record_leaves_no_trace(self):
        h = Harness(probe.OpstateProbe)
        send(h, "a", "buffer", "kept")
        with self.assertRaises(eddy.Failed) as caught:
            h.process_batch([
                InputRecord("a", '{"key":"a","op":"buffer","item":"lost"}'),
                InputRecord("b", '{"key":"b","op":"fail","item":"lost too"}'),
            ])
        self.assertEqual(caught.exception.message, "record 1: opstate-probe: asked to fail")
        self.assertEqual(h.operator_list("buffer"), ["kept"])
        with self.assertRaises(eddy.Failed) as caught:
            h.process("a", '{"key":"a","op":"buffer"}')
        self.assertEqual(caught.exception.message, "record 0: opstate-probe: `buffer` needs a string `item`")

    def test_malformed_commands_fail_without_changing_state(self):
        h = Harness(probe.OpstateProbe)
        send(h, "a", "buffer", "kept")
        for value in ["not json", '"dump"', "[]", '{"op":5}', '{"item":"x"}', '{"op":"rule"}',
                      '{"op":"buffer","item":true}', '{"op":"nope"}']:
            with self.assertRaises(eddy.Failed, msg=value):
                h.process("k", value)
        self.assertEqual(h.operator_list("buffer"), ["kept"])
        self.assertEqual(h.operator_list("rules"), [])
        # Other fields are ignored.
        self.assertEqual(h.process_str("k", '{"op":"dump","other":[1]}'),
                         [("k", '{"buffer":["kept"],"rules":[]}')])

    def test_a_new_instance_logs_what_it_starts_with(self):
        h = Harness(probe.OpstateProbe)
        self.assertEqual(h.logs[-1].message, "opstate-probe: init sees buffer=0 rules=0")
        self.assertEqual(h.logs[-1].level, eddy.LogLevel.INFO)
        h.set_operator_list("rules", ["r"])
        send(h, "a", "buffer", "x")
        send(h, "a", "buffer", "y")
        h.with_config("{}")
        self.assertEqual(h.logs[-1].message, "opstate-probe: init sees buffer=2 rules=1")

    def test_the_integration_script_of_one_worker(self):
        # operator_state.rs, operator_state_survives_a_restart_and_a_failing_call_leaves_no_trace
        h = Harness(probe.OpstateProbe)
        send(h, "a", "buffer", "b1")
        send(h, "b", "rule", "r1")
        send(h, "c", "buffer", "b2")
        with self.assertRaises(eddy.Failed):
            send(h, "a", "fail", "never")
        want = [("d", '{"buffer":["b1","b2"],"rules":["r1"]}')]
        self.assertEqual(send(h, "d", "dump", ""), want)
        h.with_config("{}")  # a restart
        self.assertEqual(h.logs[-1].message, "opstate-probe: init sees buffer=2 rules=1")
        self.assertEqual(send(h, "e", "dump", ""), [("e", want[0][1])])


if __name__ == "__main__":
    unittest.main()
