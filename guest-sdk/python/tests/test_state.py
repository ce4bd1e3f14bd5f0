"""State: declarations, the codec, and every kind of state through the harness (value,
map with paging, list, reducing, aggregating, operator list), migrate."""

import unittest
from datetime import timedelta

import eddy_sdk as eddy
from eddy_sdk.runtime import Context
from eddy_sdk.testing import Harness


class Declarations(unittest.TestCase):
    def test_handles_follow_declaration_order_and_carry_options(self):
        states = eddy.StateRegistry(Context())
        a = states.value("a")
        b = states.map("b", schema_version=3, ttl=timedelta(milliseconds=10))
        c = states.list("c", ttl=timedelta(minutes=1), ttl_update=eddy.TtlUpdate.ON_READ_AND_WRITE)
        o = states.operator_list("o", redistribution=eddy.Redistribution.UNION, schema_version=2)
        self.assertEqual([a.handle, b.handle, c.handle, o.handle], [0, 1, 2, 0])
        self.assertEqual(states.problems(), [])
        self.assertEqual(states.descriptors, [
            eddy.StateDescriptor("a", eddy.StateKind.VALUE, 1, None, "json"),
            eddy.StateDescriptor("b", eddy.StateKind.MAP, 3, eddy.TtlConfig(10), "json"),
            eddy.StateDescriptor("c", eddy.StateKind.LIST, 1,
                                 eddy.TtlConfig(60_000, eddy.TtlUpdate.ON_READ_AND_WRITE), "json"),
        ])
        self.assertEqual(states.operator_descriptors, [
            eddy.OperatorStateDescriptor("o", 2, eddy.Redistribution.UNION, "json")])
        self.assertEqual(states.operator_descriptors[0].as_list_state(),
                         eddy.StateDescriptor("o", eddy.StateKind.LIST, 2, None, "json"))

    def test_bad_declarations_are_collected_not_raised(self):
        cases = [
            (lambda s: s.value(""), "state #0 has an empty name"),
            (lambda s: (s.value("x"), s.map("x")), "`x` is declared twice (the first time as a keyed state)"),
            (lambda s: (s.operator_list("y"), s.list("y")), "`y` is declared twice (the first time as an operator state)"),
            (lambda s: s.value("t", ttl=timedelta(microseconds=10)), "under a millisecond"),
            (lambda s: s.value("t", ttl=5), "ttl must be a datetime.timedelta"),
            (lambda s: s.value("u", ttl_update=eddy.TtlUpdate.ON_READ_AND_WRITE), "without a TTL"),
            (lambda s: s.value("v", schema_version=-1), "schema_version must be an integer"),
            (lambda s: s.value("w", codec="json"), "codec must have a `name`"),
            (lambda s: s.value("z", colour="red"), "unknown option `colour`"),
            (lambda s: s.aggregating("g", object()), "has no `create_accumulator` method"),
        ]
        for declare, expected in cases:
            states = eddy.StateRegistry(Context())
            declare(states)
            self.assertTrue(states.problems(), expected)
            self.assertIn(expected, states.problems()[0])


class Codec(unittest.TestCase):
    def test_json_is_compact_utf8_as_serde_json_writes_it(self):
        self.assertEqual(eddy.JSON.encode("é\"x"), '"é\\"x"'.encode())
        self.assertEqual(eddy.JSON.encode([1, 2.5, None, True]), b"[1,2.5,null,true]")
        self.assertEqual(eddy.JSON.encode((3, 2)), b"[3,2]")
        self.assertEqual(eddy.JSON.encode({"a": [1]}), b'{"a":[1]}')
        self.assertEqual(eddy.JSON.encode(-12), b"-12")
        with self.assertRaises(ValueError):
            eddy.JSON.encode(float("nan"))

    def test_json_decodes_what_it_encodes_and_refuses_garbage(self):
        for value in [0, -7, 2**70, 1.5, "x", "", [], {"k": [None, False]}]:
            self.assertEqual(eddy.JSON.decode(eddy.JSON.encode(value)), value)
        self.assertEqual(eddy.JSON.decode(b" 5 "), 5)
        for garbage in [b"", b"1 2", b"{", b"nope", b"007", b"1_000"]:
            with self.assertRaises(ValueError, msg=garbage):
                eddy.JSON.decode(garbage)


class Everything(eddy.Operator):
    """One command per record: `<op> <json argument>`; emits the answer as JSON."""

    name = "everything"

    def open(self, states):
        self.value = states.value("value")
        self.map = states.map("map")
        self.list = states.list("list")
        self.sum = states.reducing("sum", lambda a, b: a + b)
        self.mean = states.aggregating("mean", Mean())
        self.seen = states.operator_list("seen")

    def process(self, ctx, record):
        op, _, arg = record.value.decode().partition(" ")
        arg = eddy.JSON.decode(arg.encode()) if arg else None
        self.seen.add(op)
        result = {
            "value-get": lambda: self.value.get("none"),
            "value-set": lambda: self.value.set(arg),
            "value-clear": lambda: self.value.clear(),
            "map-put": lambda: self.map.put(arg[0], arg[1]),
            "map-get": lambda: self.map.get(arg, "none"),
            "map-remove": lambda: self.map.remove(arg),
            "map-contains": lambda: self.map.contains(arg),
            "map-is-empty": lambda: self.map.is_empty(),
            "map-clear": lambda: self.map.clear(),
            "map-entries": lambda: [list(e) for e in self.map.entries(arg or 256)],
            "map-keys": lambda: list(self.map.keys(arg or 256)),
            "map-values": lambda: list(self.map.values(arg or 256)),
            "list-add": lambda: self.list.add(arg),
            "list-add-all": lambda: self.list.add_all(arg),
            "list-update": lambda: self.list.update(arg),
            "list-get": lambda: self.list.get(),
            "list-clear": lambda: self.list.clear(),
            "sum-add": lambda: self.sum.add(arg),
            "sum-get": lambda: self.sum.get(),
            "sum-clear": lambda: self.sum.clear(),
            "mean-add": lambda: self.mean.add(arg),
            "mean-get": lambda: self.mean.get(),
            "mean-acc": lambda: self.mean.accumulator(),
            "seen": lambda: self.seen.get(),
            "fail": lambda: 1 / 0,
        }[op]()
        ctx.emit(record.key, eddy.JSON.encode(result))


class Mean(eddy.AggregateFunction):
    def create_accumulator(self):
        return [0, 0]

    def add(self, value, acc):
        acc[0] += value
        acc[1] += 1
        return acc

    def get_result(self, acc):
        return acc[0] / max(acc[1], 1)


def ask(h, key, command):
    [(_, answer)] = h.process_str(key, command)
    return answer


class KeyedState(unittest.TestCase):
    def setUp(self):
        self.h = Harness(Everything)

    def test_value_state(self):
        h = self.h
        self.assertEqual(ask(h, "k", "value-get"), '"none"')
        ask(h, "k", 'value-set {"a":[1,"é"]}')
        self.assertEqual(ask(h, "k", "value-get"), '{"a":[1,"é"]}')
        self.assertEqual(ask(h, "j", "value-get"), '"none"')
        self.assertEqual(h.value("value", "k"), {"a": [1, "é"]})
        ask(h, "k", "value-clear")
        self.assertIsNone(h.value("value", "k"))

    def test_map_state_pages_in_encoded_key_order(self):
        h = self.h
        self.assertEqual(ask(h, "k", "map-is-empty"), "true")
        for k, v in [("b", 2), ("a", 1), ("cc", 3), ("d", 4), ("e", 5), ("k10", 10), ("k2", 20)]:
            ask(h, "k", f'map-put ["{k}",{v}]')
        self.assertEqual(ask(h, "k", 'map-get "a"'), "1")
        self.assertEqual(ask(h, "k", 'map-get "z"'), '"none"')
        self.assertEqual(ask(h, "k", 'map-contains "cc"'), "true")
        everything = '[["a",1],["b",2],["cc",3],["d",4],["e",5],["k10",10],["k2",20]]'
        for page in ["", " 1", " 2", " 3", " 7", " 100"]:
            self.assertEqual(ask(h, "k", "map-entries" + page), everything, page)
        self.assertEqual(ask(h, "k", "map-keys 2"), '["a","b","cc","d","e","k10","k2"]')
        self.assertEqual(ask(h, "k", "map-values 3"), "[1,2,3,4,5,10,20]")
        self.assertEqual(ask(h, "j", "map-entries"), "[]")
        ask(h, "k", 'map-remove "a"')
        self.assertEqual(ask(h, "k", 'map-contains "a"'), "false")
        self.assertEqual(h.map_get("map", "k", "b"), 2)
        self.assertEqual(h.map_entries("map", "k")[0], ("b", 2))
        ask(h, "k", "map-clear")
        self.assertEqual(ask(h, "k", "map-is-empty"), "true")
        self.assertFalse(h.has_state("k"))

    def test_list_state(self):
        h = self.h
        self.assertEqual(ask(h, "k", "list-get"), "[]")
        ask(h, "k", 'list-add "a"')
        ask(h, "k", 'list-add-all ["b","c"]')
        ask(h, "k", "list-add-all []")
        self.assertEqual(ask(h, "k", "list-get"), '["a","b","c"]')
        ask(h, "k", 'list-update ["z"]')
        self.assertEqual(h.list_items("list", "k"), ["z"])
        ask(h, "k", "list-clear")
        self.assertEqual(ask(h, "k", "list-get"), "[]")

    def test_reducing_and_aggregating_state(self):
        h = self.h
        self.assertEqual(ask(h, "k", "sum-get"), "null")
        ask(h, "k", "sum-add 5")
        ask(h, "k", "sum-add -7")
        self.assertEqual(ask(h, "k", "sum-get"), "-2")
        ask(h, "k", "sum-clear")
        self.assertEqual(ask(h, "k", "sum-get"), "null")
        self.assertEqual(ask(h, "k", "mean-get"), "null")
        ask(h, "k", "mean-add 1")
        ask(h, "k", "mean-add 2")
        self.assertEqual(ask(h, "k", "mean-get"), "1.5")
        self.assertEqual(ask(h, "k", "mean-acc"), "[3,2]")
        self.assertEqual(h.value("mean", "k"), [3, 2])

    def test_state_errors_name_the_state_and_the_record(self):
        h = self.h
        h.set_value("value", "k", "x")
        h._store.values[(0, b"k")] = (b"{broken", 0)
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", "value-get")
        self.assertTrue(caught.exception.message.startswith(
            "record 0: state `value`: cannot decode value: JSONDecodeError"), caught.exception.message)

    def test_state_outside_a_call_is_an_error(self):
        h = self.h
        operator = h._runtime._operator
        with self.assertRaises(eddy.Failed) as caught:
            operator.value.get()
        self.assertIn("only reachable inside `process` and `on_timer`", caught.exception.message)
        with self.assertRaises(eddy.Failed):
            operator.map.put("a", 1)


class OperatorState(unittest.TestCase):
    def test_operator_list_is_per_worker_and_undone_with_a_failed_call(self):
        h = Harness(Everything)
        h.process("a", "value-get")
        h.process("b", "list-get")
        self.assertEqual(h.operator_list("seen"), ["value-get", "list-get"])
        with self.assertRaises(eddy.Failed) as caught:
            h.process("a", "fail")
        self.assertIn("ZeroDivisionError", caught.exception.message)
        self.assertEqual(h.operator_list("seen"), ["value-get", "list-get"])

    def test_init_state_sees_what_the_host_handed_out(self):
        class Recent(eddy.Operator):
            def open(self, states):
                self.recent = states.operator_list("recent", redistribution=eddy.Redistribution.UNION)
                self.at_start = None

            def init_state(self, ctx):
                self.at_start = self.recent.get()
                ctx.log(eddy.LogLevel.INFO, f"{len(self.at_start)} at start")
                if "bad" in self.at_start:
                    raise eddy.Failed("bad item")
                self.recent.add("started")

            def process(self, ctx, record):
                recent = self.recent.get()
                recent.append(record.value_str())
                self.recent.update(recent[-3:])
                ctx.emit(record.key, str(self.at_start))

        h = Harness(Recent)
        self.assertEqual(h.operator_list("recent"), ["started"])
        for value in "abcd":
            h.process("k", value)
        self.assertEqual(h.operator_list("recent"), ["b", "c", "d"])
        h.set_operator_list("recent", ["x", "y"])
        h.with_config({})
        self.assertEqual(h.process_str("k", "z"), [("k", "['x', 'y']")])
        self.assertEqual(h.logs[-1].message, "2 at start")
        h.set_operator_list("recent", ["bad"])
        h.with_config({})
        self.assertEqual(h.init_error.message, "init_state: bad item")
        self.assertEqual(h.operator_list("recent"), ["bad"])
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", "z")
        self.assertEqual(caught.exception.message, "init failed: init_state: bad item")


class Migrate(unittest.TestCase):
    def test_migrate_is_unsupported_by_default(self):
        from eddy_sdk.runtime import Runtime

        descriptor = eddy.StateDescriptor("value", eddy.StateKind.VALUE, 2)
        with self.assertRaises(eddy.Unsupported) as caught:
            Runtime(Everything).migrate(descriptor, 1, b"1")
        self.assertEqual(caught.exception.message,
                         "operator `everything` 0.0.0 cannot migrate state `value` from schema "
                         "version 1 to 2")

    def test_migrate_upgrades_values(self):
        from eddy_sdk.runtime import Runtime

        class V2(eddy.Operator):
            def open(self, states):
                self.count = states.value("count", schema_version=2)

            def process(self, ctx, record):
                pass

            def migrate(self, state, from_version, value):
                if state.name == "count" and from_version == 1:
                    return eddy.migrate_value(state, value, lambda n: {"n": n})
                return super().migrate(state, from_version, value)

        rt = Runtime(V2)
        descriptor = eddy.StateDescriptor("count", eddy.StateKind.VALUE, 2)
        self.assertEqual(rt.migrate(descriptor, 1, b"7"), b'{"n":7}')
        with self.assertRaises(eddy.Failed):
            rt.migrate(descriptor, 1, b"{oops")
        with self.assertRaises(eddy.Unsupported):
            rt.migrate(descriptor, 0, b"7")


if __name__ == "__main__":
    unittest.main()
