"""The Python TTL probe through the SDK's test harness (no Wasm): the Rust probe's unit
tests (its clock, in processing-time milliseconds, set by the harness).

Run: eddy test tests/operators/python/ttl-probe
"""

import importlib.util
import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "guest-sdk" / "python"))

import eddy_sdk as eddy  # noqa: E402
from eddy_sdk.testing import Harness  # noqa: E402

_spec = importlib.util.spec_from_file_location("ttl_probe_main", HERE / "main.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def send(h, op, value=None):
    record = {"key": "k", "op": op}
    if value is not None:
        record["value"] = value
    out = h.process_str("k", json.dumps(record))
    assert all(key == "k" for key, _ in out), out
    return [v for _, v in out]


def get(h):
    emitted = send(h, "get")
    assert len(emitted) == 1, emitted
    return emitted[0]


class TtlProbe(unittest.TestCase):
    def test_states_are_declared_with_the_ttl_and_json(self):
        h = Harness(probe.TtlProbe)
        self.assertEqual((h.info.name, h.info.version), ("ttl-probe", "0.1.0"))
        w, r = eddy.TtlUpdate.ON_CREATE_AND_WRITE, eddy.TtlUpdate.ON_READ_AND_WRITE
        self.assertEqual(
            [(s.name, s.kind.value, s.ttl.update) for s in h.states],
            [("v", "value", w), ("m", "map", w), ("l", "list", w),
             ("v-rw", "value", r), ("m-rw", "map", r), ("l-rw", "list", r)])
        self.assertTrue(all(s.ttl.ttl_ms == 4_000 and s.codec == "json" and s.schema_version == 1
                            for s in h.states))
        self.assertEqual(h.info.operator_states, [])

    def test_get_reports_every_state_and_put_emits_nothing(self):
        h = Harness(probe.TtlProbe)
        self.assertEqual(get(h), '{"key":"k","v":null,"m":[],"l":[]}')
        self.assertEqual(send(h, "put", "b"), [])
        send(h, "put", "a")
        self.assertEqual(get(h), '{"key":"k","v":"a","m":["a","b"],"l":["b","a"]}')
        self.assertEqual(send(h, "touch-v"), [])
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", '{"key":"k","op":"put"}')
        self.assertEqual(caught.exception.message, "record 0: ttl-probe: `put` needs a string `value`")
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", '{"key":"k","op":"nope"}')
        self.assertEqual(caught.exception.message, 'record 0: ttl-probe: unknown op "nope"')

    def test_malformed_commands_fail_without_changing_state(self):
        h = Harness(probe.TtlProbe)
        send(h, "put", "kept")
        for value in ["not json", '"get"', "[]", '{"op":5}', '{"value":"x"}', '{"op":"put"}',
                      '{"op":"put","value":7}', '{"op":"nope"}']:
            with self.assertRaises(eddy.Failed, msg=value):
                h.process("k", value)
        self.assertEqual(get(h), '{"key":"k","v":"kept","m":["kept"],"l":["kept"]}')
        # Other fields are ignored.
        self.assertEqual(h.process_str("k", '{"op":"touch-v","other":[1]}'), [])

    def test_get_writes_the_key_and_sorted_keys_as_serde_does(self):
        h = Harness(probe.TtlProbe)
        for value in ["é", "b", "\U0001F600", "\uFB01", "a\"\n"]:
            send(h, "put", value)
        self.assertEqual(
            get(h),
            '{"key":"k","v":"a\\"\\n","m":["a\\"\\n","b","é","\uFB01","\U0001F600"],'
            '"l":["é","b","\U0001F600","\uFB01","a\\"\\n"]}')

    def test_on_create_and_write_expires_each_value_after_its_last_write(self):
        h = Harness(probe.TtlProbe)
        send(h, "put", "x")
        h.advance_processing_time(2_000)
        send(h, "put", "y")
        h.advance_processing_time(3_600)
        send(h, "touch-v")  # restarts nothing
        send(h, "touch-m")
        send(h, "touch-l")
        h.advance_processing_time(4_000)  # x's entry and item expire, v (= y, written at 2000) lives
        self.assertEqual(get(h), '{"key":"k","v":"y","m":["y"],"l":["y"]}')
        h.advance_processing_time(6_000)
        self.assertEqual(get(h), '{"key":"k","v":null,"m":[],"l":[]}')

    def test_on_read_and_write_restarts_what_each_touch_reads(self):
        h = Harness(probe.TtlProbe, {"update": "on-read-and-write"})
        send(h, "put", "x")
        h.advance_processing_time(2_400)
        send(h, "touch-v")
        h.advance_processing_time(4_800)  # v read at 2400 lives, m and l expired
        self.assertEqual(h.value("v-rw", "k"), "x")
        self.assertEqual(get(h), '{"key":"k","v":"x","m":[],"l":[]}')
        send(h, "put", "y")  # at 4800
        h.advance_processing_time(8_000)
        send(h, "touch-m")
        send(h, "touch-l")
        h.advance_processing_time(11_999)  # v (4800) expired, m and l (read at 8000) live
        self.assertEqual(get(h), '{"key":"k","v":null,"m":["y"],"l":["y"]}')
        h.advance_processing_time(15_999)  # that get restarted them at 11999
        self.assertEqual(get(h), '{"key":"k","v":null,"m":[],"l":[]}')
        # The other policy's states are untouched.
        self.assertIsNone(h.value("v", "k"))

    def test_configs_are_checked(self):
        for ok in [{"update": "on-create-and-write"}, {"update": "on-read-and-write"}, {}, {"update": None}]:
            self.assertIsNone(Harness(probe.TtlProbe, ok).init_error, ok)
        for bad, message in [
            ({"ttl-ms": 4000}, "unknown field `ttl-ms`"),
            ({"update": "sometimes"},
             'update "sometimes" is neither "on-create-and-write" nor "on-read-and-write"'),
            ({"ttl": 1000}, "unknown field `ttl`"),
            ({"update": 3}, "field `update`: expected a string"),
            ([], "expected a JSON object"),
        ]:
            error = Harness(probe.TtlProbe, bad).init_error
            self.assertIsInstance(error, eddy.InvalidConfig, bad)
            self.assertEqual(error.message, f"ttl-probe config: {message}")

    def test_the_integration_script(self):
        # state_ttl.rs, a_value_is_invisible_after_its_ttl_and_a_read_renews_it_only_when_asked,
        # on the harness's clock: written at 0, read at 1500, read again at 4100.
        x = '{"key":"a","v":"x","m":["x"],"l":["x"]}'
        gone = '{"key":"a","v":null,"m":[],"l":[]}'
        for update, renewed in [("on-create-and-write", False), ("on-read-and-write", True)]:
            h = Harness(probe.TtlProbe, {"update": update})
            out = h.process_str("a", '{"key":"a","op":"put","value":"x"}')
            out += h.process_str("a", '{"key":"a","op":"get"}')
            h.advance_processing_time(1_500)
            out += h.process_str("a", '{"key":"a","op":"get"}')
            h.advance_processing_time(4_100)
            out += h.process_str("a", '{"key":"a","op":"get"}')
            self.assertEqual([v for _, v in out], [x, x, x if renewed else gone], update)


if __name__ == "__main__":
    unittest.main()
