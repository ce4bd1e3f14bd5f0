"""The Python state probe through the SDK's test harness (no Wasm): the answers of the Rust
probe's unit tests, and of the script of tests/tests/integration/state_semantics.rs.

Run: target/tools/venv/bin/python tests/operators/python/state-probe/test_main.py
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

_spec = importlib.util.spec_from_file_location("state_probe_main", HERE / "main.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def run(h, key, command):
    emitted = h.process_str(key, json.dumps(command))
    assert len(emitted) == 1, command
    return emitted[0][1]


class StateProbe(unittest.TestCase):
    def test_value_commands(self):
        h = Harness(probe.StateProbe)
        self.assertEqual(run(h, "k", {"op": "value-get"}), '{"value":null}')
        self.assertEqual(run(h, "k", {"op": "value-set", "v": "x"}), '{"ok":true}')
        self.assertEqual(run(h, "k", {"op": "value-get"}), '{"value":"x"}')
        self.assertEqual(run(h, "j", {"op": "value-get"}), '{"value":null}')
        run(h, "k", {"op": "value-clear"})
        self.assertEqual(run(h, "k", {"op": "value-get"}), '{"value":null}')

    def test_map_commands_page_through_entries(self):
        h = Harness(probe.StateProbe)
        self.assertEqual(run(h, "k", {"op": "map-is-empty"}), '{"value":true}')
        for k, v in [("b", "2"), ("a", "1"), ("cc", "3"), ("d", "4"), ("e", "5")]:
            run(h, "k", {"op": "map-put", "k": k, "v": v})
        self.assertEqual(run(h, "k", {"op": "map-get", "k": "a"}), '{"value":"1"}')
        self.assertEqual(run(h, "k", {"op": "map-get", "k": "z"}), '{"value":null}')
        self.assertEqual(run(h, "k", {"op": "map-contains", "k": "cc"}), '{"value":true}')
        # JSON-encoded keys: byte order of the quoted text (the Rust probe's postcard puts
        # shorter keys first).
        everything = '{"value":[["a","1"],["b","2"],["cc","3"],["d","4"],["e","5"]]}'
        self.assertEqual(run(h, "k", {"op": "map-entries"}), everything)
        for page in [1, 2, 4]:
            self.assertEqual(run(h, "k", {"op": "map-entries", "page": page}), everything)
        self.assertEqual(run(h, "k", {"op": "map-keys", "page": 2}), '{"value":["a","b","cc","d","e"]}')
        run(h, "k", {"op": "map-remove", "k": "a"})
        self.assertEqual(run(h, "k", {"op": "map-contains", "k": "a"}), '{"value":false}')
        run(h, "k", {"op": "map-clear"})
        self.assertEqual(run(h, "k", {"op": "map-is-empty"}), '{"value":true}')
        self.assertEqual(run(h, "k", {"op": "map-keys"}), '{"value":[]}')

    def test_list_commands(self):
        h = Harness(probe.StateProbe)
        run(h, "k", {"op": "list-add", "v": "a"})
        run(h, "k", {"op": "list-add-all", "vs": ["b", "c"]})
        self.assertEqual(run(h, "k", {"op": "list-get"}), '{"value":["a","b","c"]}')
        run(h, "k", {"op": "list-update", "vs": ["z"]})
        self.assertEqual(run(h, "k", {"op": "list-get"}), '{"value":["z"]}')
        run(h, "k", {"op": "list-clear"})
        self.assertEqual(run(h, "k", {"op": "list-get"}), '{"value":[]}')

    def test_reducing_and_aggregating_commands(self):
        h = Harness(probe.StateProbe)
        self.assertEqual(run(h, "k", {"op": "reducing-get"}), '{"value":null}')
        run(h, "k", {"op": "reducing-add", "n": 5})
        run(h, "k", {"op": "reducing-add", "n": -7})
        self.assertEqual(run(h, "k", {"op": "reducing-get"}), '{"value":-2}')
        run(h, "k", {"op": "reducing-add", "n": 2**63 - 1})
        self.assertEqual(run(h, "k", {"op": "reducing-get"}), '{"value":9223372036854775805}')
        run(h, "k", {"op": "reducing-add", "n": 10})
        self.assertEqual(run(h, "k", {"op": "reducing-get"}), '{"value":9223372036854775807}')
        self.assertEqual(run(h, "k", {"op": "aggregating-get"}), '{"value":null}')
        run(h, "k", {"op": "aggregating-add", "n": 1})
        run(h, "k", {"op": "aggregating-add", "n": 2})
        self.assertEqual(run(h, "k", {"op": "aggregating-get"}), '{"value":1.5}')
        self.assertEqual(h.value("average", "k"), [3, 2])

    def test_record_and_emit_commands(self):
        h = Harness(probe.StateProbe)
        emitted = h.process_record(InputRecord("k", '{"op":"headers"}', headers=[("b", "2"), ("a", "1")]))
        self.assertEqual(emitted[0].value_str(), '{"value":{"a":"1","b":"2"}}')
        emitted = h.process_record(InputRecord("k", '{"op":"timestamp"}', timestamp=77))
        self.assertEqual(emitted[0].value_str(), '{"value":77}')
        emitted = h.process_record(InputRecord("k", '{"op":"emit-headers","headers":{"y":"2","x":"1"}}'))
        self.assertEqual(emitted[0].headers, [("x", "1"), ("y", "2")])
        self.assertEqual(emitted[0].value_str(), '{"ok":true}')
        values = [v for _, v in h.process_str("k", '{"op":"emit-many","n":3}')]
        self.assertEqual(values, ['{"index":0}', '{"index":1}', '{"index":2}'])
        run(h, "k", {"op": "log", "v": "hi"})
        self.assertEqual(h.logs[-1].message, "hi")
        self.assertEqual(h.logs[-1].level, eddy.LogLevel.INFO)

    def test_fail_discards_the_batch(self):
        h = Harness(probe.StateProbe)
        with self.assertRaises(eddy.Failed) as caught:
            h.process_batch([
                InputRecord("k", '{"op":"value-set","v":"x"}'),
                InputRecord("k", '{"op":"map-put","k":"a","v":"1"}'),
                InputRecord("k", '{"op":"fail"}'),
            ])
        self.assertEqual(caught.exception.message, "record 2: state-probe: asked to fail")
        self.assertEqual(run(h, "k", {"op": "value-get"}), '{"value":null}')
        self.assertEqual(run(h, "k", {"op": "map-is-empty"}), '{"value":true}')
        for bad in ['{"op":"nonsense"}', '{"op":"value-set"}', '{"op":"emit-many","n":-1}',
                    '{"op":"reducing-add","n":1.5}', "not json"]:
            with self.assertRaises(eddy.Failed, msg=bad):
                h.process("k", bad)

    def test_trap_commands_trap(self):
        h = Harness(probe.StateProbe)
        for command in ['{"op":"trap"}', '{"op":"write-then-trap","v":"x"}']:
            with self.assertRaises(eddy.Trap):
                h.process("k", command)
        self.assertFalse(h.has_state("k"))

    def test_the_integration_script_gives_the_expected_answers(self):
        # tests/tests/integration/state_semantics.rs, every_state_operation_behaves_as_the_contract_says
        ok = {"ok": True}

        def value(v):
            return {"value": v}

        script = [
            ("a", {"op": "value-get"}, value(None)),
            ("a", {"op": "value-set", "v": "x"}, ok),
            ("a", {"op": "value-get"}, value("x")),
            ("b", {"op": "value-get"}, value(None)),
            ("a", {"op": "value-clear"}, ok),
            ("a", {"op": "value-get"}, value(None)),
            ("a", {"op": "value-set", "v": "kept"}, ok),
            ("a", {"op": "map-put", "k": "k1", "v": "v1"}, ok),
            ("a", {"op": "map-put", "k": "k2", "v": "v2"}, ok),
            ("a", {"op": "map-put", "k": "k10", "v": "v10"}, ok),
            ("a", {"op": "map-put", "k": "k1", "v": "v1b"}, ok),
            ("a", {"op": "map-get", "k": "k1"}, value("v1b")),
            ("b", {"op": "map-get", "k": "k1"}, value(None)),
            ("a", {"op": "map-contains", "k": "k2"}, value(True)),
            ("a", {"op": "map-remove", "k": "k2"}, ok),
            ("a", {"op": "map-contains", "k": "k2"}, value(False)),
            ("a", {"op": "map-entries", "page": 1}, value([["k1", "v1b"], ["k10", "v10"]])),
            ("a", {"op": "map-keys"}, value(["k1", "k10"])),
            ("a", {"op": "map-is-empty"}, value(False)),
            ("b", {"op": "map-is-empty"}, value(True)),
            ("c", {"op": "map-put", "k": "z", "v": "1"}, ok),
            ("c", {"op": "map-clear"}, ok),
            ("c", {"op": "map-is-empty"}, value(True)),
            ("c", {"op": "map-entries"}, value([])),
            ("a", {"op": "list-get"}, value([])),
            ("a", {"op": "list-add", "v": "x"}, ok),
            ("a", {"op": "list-add-all", "vs": ["y", "z"]}, ok),
            ("a", {"op": "list-get"}, value(["x", "y", "z"])),
            ("b", {"op": "list-get"}, value([])),
            ("c", {"op": "list-update", "vs": ["q"]}, ok),
            ("c", {"op": "list-get"}, value(["q"])),
            ("c", {"op": "list-clear"}, ok),
            ("c", {"op": "list-get"}, value([])),
            ("a", {"op": "reducing-get"}, value(None)),
            ("a", {"op": "reducing-add", "n": 5}, ok),
            ("a", {"op": "reducing-add", "n": 7}, ok),
            ("a", {"op": "reducing-get"}, value(12)),
            ("a", {"op": "aggregating-add", "n": 1}, ok),
            ("a", {"op": "aggregating-add", "n": 2}, ok),
            ("a", {"op": "aggregating-get"}, value(1.5)),
        ]
        h = Harness(probe.StateProbe)
        # Batches of 4, as the integration test's job runs them.
        for start in range(0, len(script), 4):
            part = script[start:start + 4]
            out = h.process_batch([InputRecord(k, json.dumps(c)) for k, c, _ in part])
            for (key, command, want), emitted in zip(part, out):
                self.assertEqual([(e.key_str(), json.loads(e.value)) for e in emitted], [(key, want)],
                                 command)


if __name__ == "__main__":
    unittest.main()
