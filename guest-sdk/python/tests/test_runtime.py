"""The runtime and its batch codec: the bytes of a result, errors naming the record,
malformed batches, value-state writes (prefetch, own writes on top, the last write only,
the TTL write-back rule), timers in the result, and init."""

import struct
import unittest
from datetime import timedelta

import eddy_sdk as eddy
from eddy_sdk.runtime import NO_WATERMARK, Runtime
from eddy_sdk.testing import _Batch, _decode_output, _MemoryHost, _Store


class Echo(eddy.Operator):
    """Emits (key, value + count) with header n: count; counts in value state `n`."""

    name = "echo"
    version = "0.0.1"

    def open(self, states):
        states.list("unused")
        self.n = states.value("n")

    def process(self, ctx, record):
        if record.value == b"fail":
            raise eddy.Failed("no")
        if record.value == b"oops":
            {}["missing"]
        n = self.n.get(0) + 1
        self.n.set(n)
        ctx.emit(record.key, record.value + str(n).encode(), [("n", str(n))])


def host(operator_class=Echo):
    info = Runtime.describe(operator_class)
    store = _Store([s.kind for s in info.states], [s.ttl for s in info.states],
                   len(info.operator_states))
    return _MemoryHost(store, [b"k0", b"k1"], [])


def runtime(operator_class=Echo, config="{}"):
    rt = Runtime(operator_class)
    rt.init(config, host(operator_class))
    return rt


def batch(records=None, slots=(b"7", None), handles=(1,)):
    b = _Batch(keys=[b"k0", b"k1"], handles=list(handles), slots=list(slots))
    b.records = records if records is not None else [
        (1, 5, 0, b"a", []),
        (0, 6, 0, b"b", [("h", "v")]),
        (1, 7, 0, b"c", []),
    ]
    return b.encode()


def put_bytes(out, data):
    out += struct.pack("<I", len(data)) + data


class ResultLayout(unittest.TestCase):
    def test_output_bytes_follow_the_documented_layout(self):
        output = runtime().process(batch(), host())
        # Written out by hand from docs/batch-format.md.
        expected = bytearray(b"\x02") + struct.pack("<I", 3)
        for key, value, n in [(b"k1", b"a1", b"1"), (b"k0", b"b8", b"8"), (b"k1", b"c2", b"2")]:
            expected += struct.pack("<I", 1)  # one emit
            put_bytes(expected, key)
            put_bytes(expected, value)
            expected += struct.pack("<I", 1)  # one header
            put_bytes(expected, b"n")
            put_bytes(expected, n)
        expected += struct.pack("<I", 2)  # the last write per key: k0 = 8, k1 = 2
        for key_index, n in [(0, b"8"), (1, b"2")]:
            expected += struct.pack("<IIB", key_index, 1, 1)
            put_bytes(expected, n)
        expected += struct.pack("<I", 0)  # no timer changes
        self.assertEqual(output, bytes(expected))

    def test_batches_are_independent(self):
        rt = runtime()
        self.assertEqual(rt.process(batch(), host()), rt.process(batch(), host()))

    def test_a_record_without_emits_counts_zero(self):
        class Quiet(eddy.Operator):
            def process(self, ctx, record):
                pass

        out = runtime(Quiet).process(batch(slots=(), handles=()), host(Quiet))
        self.assertEqual(out, b"\x02" + struct.pack("<IIIIII", 3, 0, 0, 0, 0, 0))


class Errors(unittest.TestCase):
    def test_a_failing_record_fails_the_batch_with_its_position(self):
        records = [(0, 0, 0, b"", []), (0, 0, 0, b"fail", [])]
        with self.assertRaises(eddy.Failed) as caught:
            runtime().process(batch(records), host())
        self.assertEqual(caught.exception.message, "record 1: no")

    def test_python_exceptions_become_failed_errors_naming_type_and_place(self):
        records = [(0, 0, 0, b"oops", [])]
        with self.assertRaises(eddy.Failed) as caught:
            runtime().process(batch(records), host())
        message = caught.exception.message
        self.assertTrue(message.startswith("record 0: KeyError: 'missing' (test_runtime.py:"), message)
        self.assertTrue(message.endswith("in process)"), message)

    def test_malformed_batches_are_errors(self):
        rt = runtime()
        data = batch()
        for length in range(len(data)):
            with self.assertRaises(eddy.Failed, msg=str(length)):
                rt.process(data[:length], host())
        with self.assertRaises(eddy.Failed) as caught:
            rt.process(data + b"\x00", host())
        self.assertEqual(caught.exception.message, "malformed batch: 1 bytes after the last record")
        # The list state (handle 0) cannot be prefetched.
        wrong = bytearray(data)
        wrong[1 + 8 + 4 + 6 + 6 + 4] = 0
        with self.assertRaises(eddy.Failed) as caught:
            rt.process(bytes(wrong), host())
        self.assertIn("handle 0 is not a value state", caught.exception.message)
        bad_version = b"\x03" + data[1:]
        with self.assertRaises(eddy.Failed) as caught:
            rt.process(bad_version, host())
        self.assertIn("version 3 is not the supported version 2", caught.exception.message)

    def test_a_key_index_outside_the_table_is_malformed(self):
        with self.assertRaises(eddy.Failed) as caught:
            runtime().process(batch([(2, 0, 0, b"", [])]), host())
        self.assertIn("key index 2 is outside the key table of 2 keys", caught.exception.message)

    def test_process_before_init_is_an_error(self):
        with self.assertRaises(eddy.Failed) as caught:
            Runtime(Echo).process(batch(), host())
        self.assertIn("before a successful `init`", caught.exception.message)

    def test_trap_is_not_turned_into_an_error(self):
        class Trapping(eddy.Operator):
            def process(self, ctx, record):
                eddy.trap("boom")

        with self.assertRaises(eddy.Trap):
            runtime(Trapping).process(batch(slots=(), handles=()), host(Trapping))


class Init(unittest.TestCase):
    def test_config_arrives_parsed_and_errors_are_invalid_config(self):
        seen = []

        class Configured(eddy.Operator):
            def init(self, config):
                seen.append(config)
                if config.get("bad"):
                    raise ValueError("bad config")

            def process(self, ctx, record):
                pass

        runtime(Configured, '{"a": 1}')
        self.assertEqual(seen, [{"a": 1}])
        with self.assertRaises(eddy.InvalidConfig) as caught:
            runtime(Configured, '{"bad": true}')
        self.assertTrue(caught.exception.message.startswith("ValueError: bad config"))
        with self.assertRaises(eddy.InvalidConfig):
            runtime(Configured, "not json")

    def test_bad_declarations_are_invalid_config(self):
        class Twice(eddy.Operator):
            def open(self, states):
                states.value("x")
                states.operator_list("x")

            def process(self, ctx, record):
                pass

        with self.assertRaises(eddy.InvalidConfig) as caught:
            runtime(Twice)
        self.assertEqual(caught.exception.message,
                         "state `x` is declared twice (the first time as a keyed state); state "
                         "names must be unique across keyed and operator states")

    def test_a_failing_open_still_describes_and_fails_init(self):
        class Broken(eddy.Operator):
            name = "broken"

            def open(self, states):
                states.value("first")
                raise RuntimeError("no")

            def process(self, ctx, record):
                pass

        info = Runtime.describe(Broken)
        self.assertEqual(info.name, "broken")
        self.assertEqual([s.name for s in info.states], ["first"])
        with self.assertRaises(eddy.InvalidConfig) as caught:
            runtime(Broken)
        self.assertIn("open: RuntimeError: no", caught.exception.message)

    def test_describe_defaults(self):
        class Plain(eddy.Operator):
            def process(self, ctx, record):
                pass

        info = Runtime.describe(Plain)
        self.assertEqual((info.name, info.version), ("Plain", "0.0.0"))


class Counter(eddy.Operator):
    """Value state `n` (TTL renewed by reads), written as the record's value says."""

    def open(self, states):
        self.n = states.value("n", ttl=timedelta(seconds=1), ttl_update=eddy.TtlUpdate.ON_READ_AND_WRITE)
        self.plain = states.value("plain")

    def process(self, ctx, record):
        for command in record.value.decode().split(","):
            if command == "read":
                ctx.emit(record.key, repr(self.n.get()))
            elif command == "read-plain":
                ctx.emit(record.key, repr(self.plain.get()))
            elif command == "clear":
                self.n.clear()
            elif command.startswith("set="):
                self.n.set(int(command[4:]))
            elif command.startswith("timer="):
                ctx.register_event_time_timer(int(command[6:]))
            elif command.startswith("untimer="):
                ctx.delete_processing_time_timer(int(command[8:]))


def counter_output(records, slots, handles=(0, 1)):
    rt = runtime(Counter)
    return _decode_output(rt.process(batch(records, slots=slots, handles=handles), host(Counter)))


class ValueWrites(unittest.TestCase):
    def test_reads_see_the_prefetch_with_the_batch_writes_on_top_and_only_the_last_write_goes_out(self):
        out = counter_output(
            [(0, 0, 0, b"read,set=1,read,set=2", []), (0, 0, 0, b"read,clear,read", []),
             (1, 0, 0, b"set=5", [])],
            slots=(b"41", None, None, None),
        )
        self.assertEqual([[e.value for e in emits] for emits in out.emits],
                         [[b"41", b"1"], [b"2", b"None"], []])
        self.assertEqual(out.writes, [(0, 0, None), (1, 0, b"5")])

    def test_a_read_that_restarts_the_ttl_writes_the_value_back(self):
        # k0 is present and only read: written back. k1 is absent: nothing to write.
        out = counter_output([(0, 0, 0, b"read", []), (1, 0, 0, b"read", [])],
                             slots=(b"3", b"9", None, None))
        self.assertEqual(out.writes, [(0, 0, b"3")])
        # A later write replaces the write-back; so does an earlier one.
        out = counter_output([(0, 0, 0, b"read,set=4", []), (1, 0, 0, b"set=6,read", [])],
                             slots=(b"3", None, b"8", None))
        self.assertEqual(out.writes, [(0, 0, b"4"), (1, 0, b"6")])
        # A state without that TTL policy is not written back.
        out = counter_output([(0, 0, 0, b"read-plain", [])], slots=(None, b"1", None, None))
        self.assertEqual(out.writes, [])

    def test_value_state_the_host_did_not_prefetch_is_read_through_value_get(self):
        rt = runtime(Counter)
        h = host(Counter)
        h.store.values[(0, b"k0")] = (b"12", 0)
        out = _decode_output(rt.process(
            batch([(0, 0, 0, b"read,set=13,read", []), (1, 0, 0, b"read", [])], slots=(), handles=()), h))
        self.assertEqual([[e.value for e in emits] for emits in out.emits], [[b"12", b"13"], [b"None"]])
        self.assertEqual(out.writes, [(0, 0, b"13")])

    def test_timer_changes_travel_in_the_result(self):
        out = counter_output([(1, 0, 0, b"timer=10", []), (0, 0, 0, b"untimer=5", [])],
                             slots=(None, None, None, None))
        self.assertEqual(out.timer_ops, [(0, True, 0, 10), (1, False, 1, 5)])


class Timers(unittest.TestCase):
    def test_on_timer_gets_the_timer_and_its_key(self):
        seen = []

        class Timed(eddy.Operator):
            def process(self, ctx, record):
                pass

            def on_timer(self, ctx, timer):
                seen.append((ctx.key, timer, ctx.timestamp, ctx.watermark))
                ctx.emit(ctx.key, "fired")
                if timer.timestamp == 9:
                    raise eddy.Failed("late")

        rt = runtime(Timed)
        b = _Batch(keys=[b"k0", b"k1"], timers=[(1, 5, 0, 4), (0, 7, 1, NO_WATERMARK)])
        out = _decode_output(rt.on_timer(b.encode(), host(Timed)))
        self.assertEqual([len(e) for e in out.emits], [1, 1])
        self.assertEqual(seen, [
            (b"k1", eddy.Timer(5, eddy.TimeDomain.EVENT_TIME), 5, 4),
            (b"k0", eddy.Timer(7, eddy.TimeDomain.PROCESSING_TIME), 7, NO_WATERMARK),
        ])
        b = _Batch(keys=[b"k0"], timers=[(0, 9, 0, 9)])
        with self.assertRaises(eddy.Failed) as caught:
            rt.on_timer(b.encode(), host(Timed))
        self.assertEqual(caught.exception.message, "timer 0 (EventTime 9): late")


class Records(unittest.TestCase):
    def test_records_carry_key_value_time_headers_and_watermark(self):
        seen = []

        class Look(eddy.Operator):
            def process(self, ctx, record):
                seen.append((record, ctx.key, ctx.timestamp, ctx.watermark, ctx.processing_time,
                             record.header("h"), record.header("x", "none")))

        rt = runtime(Look)
        b = _Batch(keys=[b"k"], processing_time=99, records=[(0, 5, 3, b"v", [("h", "1"), ("h", "2")])])
        rt.process(b.encode(), host(Look))
        record, key, timestamp, watermark, now, h, x = seen[0]
        self.assertEqual((record.key, record.value, record.timestamp, record.watermark),
                         (b"k", b"v", 5, 3))
        self.assertEqual(record.headers, (("h", "1"), ("h", "2")))
        self.assertEqual((key, timestamp, watermark, now, h, x), (b"k", 5, 3, 99, "1", "none"))
        self.assertEqual(record.key_str(), "k")

    def test_non_utf8_is_reported(self):
        record = eddy.Record(b"\xff", b"", 0, 0, ())
        with self.assertRaises(eddy.Failed) as caught:
            record.key_str()
        self.assertIn("record key", caught.exception.message)


if __name__ == "__main__":
    unittest.main()
