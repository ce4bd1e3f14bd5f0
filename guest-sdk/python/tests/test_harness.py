"""The harness behaves like the host: a failing batch leaves nothing behind, timers fire
with the watermark and the clock (and split a batch as the host does), TTLs expire, logs
are kept; plus the golden-file helpers."""

import unittest
from datetime import timedelta

import eddy_sdk as eddy
from eddy_sdk.testing import (
    Emitted,
    Harness,
    InputRecord,
    run_jsonl,
    run_jsonl_event_time,
    sink_line,
    source_record,
)


class Writer(eddy.Operator):
    def open(self, states):
        self.value = states.value("value")
        self.map = states.map("map")
        self.list = states.list("list")

    def process(self, ctx, record):
        command = record.value_str()
        if command == "fail":
            raise eddy.Failed("asked to fail")
        if command == "trap":
            eddy.trap()
        self.value.set(command)
        self.map.put(command, command)
        self.list.add(command)
        ctx.emit(record.key, command)


class FailureDiscardsTheBatch(unittest.TestCase):
    def test_an_error_applies_nothing_of_the_batch(self):
        h = Harness(Writer)
        h.process("k", "before")
        with self.assertRaises(eddy.Failed) as caught:
            h.process_batch([("k", "x"), ("j", "y"), ("k", "fail")])
        self.assertEqual(caught.exception.message, "record 2: asked to fail")
        self.assertEqual(h.value("value", "k"), "before")
        self.assertEqual(h.map_entries("map", "k"), [("before", "before")])
        self.assertEqual(h.list_items("list", "k"), ["before"])
        self.assertFalse(h.has_state("j"))

    def test_a_trap_applies_nothing_either(self):
        h = Harness(Writer)
        with self.assertRaises(eddy.Trap):
            h.process_batch([("k", "x"), ("k", "trap")])
        self.assertFalse(h.has_state("k"))

    def test_a_batch_that_succeeds_applies_everything(self):
        h = Harness(Writer)
        out = h.process_batch([("k", "x"), ("j", "y"), ("k", "z")])
        self.assertEqual([[e.value for e in emits] for emits in out], [[b"x"], [b"y"], [b"z"]])
        self.assertEqual(h.value("value", "k"), "z")
        self.assertEqual(h.list_items("list", "k"), ["x", "z"])

    def test_without_prefetch_values_are_read_through_the_host(self):
        class Count(eddy.Operator):
            def open(self, states):
                self.count = states.value("count")

            def process(self, ctx, record):
                self.count.set(self.count.get(0) + 1)
                ctx.emit(record.key, str(self.count.get()))

        for prefetch in (True, False):
            h = Harness(Count, prefetch_values=prefetch)
            out = h.process_batch([("a", ""), ("b", ""), ("a", "")])
            self.assertEqual([e[0].value for e in out], [b"1", b"1", b"2"], prefetch)
            self.assertEqual(h.process("a"), [(b"a", b"3")])


class Timed(eddy.Operator):
    def open(self, states):
        self.count = states.value("count")

    def process(self, ctx, record):
        command, _, arg = record.value_str().partition(" ")
        if command == "event":
            ctx.register_event_time_timer(int(arg))
        elif command == "processing":
            ctx.register_processing_time_timer(int(arg))
        elif command == "delete":
            ctx.delete_event_time_timer(int(arg))
        self.count.set(self.count.get(0) + 1)

    def on_timer(self, ctx, timer):
        if timer.timestamp == 666:
            raise eddy.Failed("bad timer")
        ctx.emit(ctx.key, f"{timer.domain} {timer.timestamp} count={self.count.get(0)}")


def values(emitted):
    return [e.value_str() for e in emitted]


class Timers(unittest.TestCase):
    def test_event_time_timers_fire_when_the_watermark_reaches_them(self):
        h = Harness(Timed)
        h.process("k", "event 10")
        h.process("j", "event 5")
        h.process("k", "event 7")
        self.assertEqual([(k, t.timestamp) for k, t in h.timers()], [(b"j", 5), (b"k", 7), (b"k", 10)])
        self.assertEqual(h.advance_watermark(4), [])
        self.assertEqual(values(h.advance_watermark(10)),
                         ["EventTime 5 count=1", "EventTime 7 count=2", "EventTime 10 count=2"])
        self.assertEqual(h.timers(), [])
        self.assertEqual(h.watermark, 10)

    def test_deleted_timers_do_not_fire(self):
        h = Harness(Timed)
        h.process("k", "event 10")
        h.process("k", "delete 10")
        self.assertEqual(h.advance_watermark(100), [])

    def test_a_timer_at_or_below_the_watermark_fires_before_the_keys_next_record(self):
        h = Harness(Timed)
        h.advance_watermark(20)
        # Alone: it fires after the record.
        self.assertEqual(values(h.process_record(InputRecord("k", "event 15"))), ["EventTime 15 count=1"])
        # In a batch: the call splits before the key's next record.
        out = h.process_batch([("k", "event 16"), ("j", "x"), ("k", "x")])
        self.assertEqual([values(e) for e in out], [[], [], ["EventTime 16 count=2"]])
        self.assertEqual(h.value("count", "k"), 3)

    def test_processing_time_timers_follow_the_clock(self):
        h = Harness(Timed)
        h.process("k", "processing 100")
        self.assertEqual(h.advance_processing_time(50), [])
        self.assertEqual(values(h.advance_processing_time(100)), ["ProcessingTime 100 count=1"])
        self.assertEqual(h.processing_time, 100)

    def test_a_failing_timer_keeps_its_timer_and_leaves_no_effects(self):
        h = Harness(Timed)
        h.process("k", "event 666")
        with self.assertRaises(eddy.Failed) as caught:
            h.advance_watermark(1000)
        self.assertEqual(caught.exception.message, "timer 0 (EventTime 666): bad timer")
        self.assertEqual([t.timestamp for _, t in h.timers()], [666])


class Expiring(eddy.Operator):
    def open(self, states):
        ttl = timedelta(milliseconds=100)
        self.written = states.value("written", ttl=ttl)
        self.read = states.value("read", ttl=ttl, ttl_update=eddy.TtlUpdate.ON_READ_AND_WRITE)
        self.map = states.map("map", ttl=ttl)

    def process(self, ctx, record):
        if record.value == b"set":
            self.written.set(1)
            self.read.set(1)
            self.map.put("a", 1)
        else:
            ctx.emit(record.key, eddy.JSON.encode([self.written.get(), self.read.get(), self.map.get("a")]))


class Ttl(unittest.TestCase):
    def test_values_expire_and_reads_renew_where_declared(self):
        h = Harness(Expiring)
        h.process("k", "set")
        h.advance_processing_time(50)
        self.assertEqual(h.process_str("k", "get"), [("k", "[1,1,1]")])
        h.advance_processing_time(100)
        self.assertEqual(h.process_str("k", "get"), [("k", "[null,1,null]")])
        h.advance_processing_time(199)
        self.assertEqual(h.process_str("k", "get"), [("k", "[null,1,null]")])
        h.advance_processing_time(400)
        self.assertEqual(h.process_str("k", "get"), [("k", "[null,null,null]")])
        self.assertFalse(h.has_state("k"))


class Logs(unittest.TestCase):
    def test_logs_are_kept_with_their_key(self):
        class Talk(eddy.Operator):
            def init(self, config):
                eddy.log(eddy.LogLevel.WARN, "starting")

            def process(self, ctx, record):
                ctx.log(eddy.LogLevel.INFO, record.value_str())

        h = Harness(Talk)
        h.process("k", "hello")
        self.assertEqual([(l.level, l.key, l.message) for l in h.logs],
                         [(eddy.LogLevel.WARN, None, "starting"), (eddy.LogLevel.INFO, b"k", "hello")])


class Emits(unittest.TestCase):
    def test_emits_take_text_or_bytes_and_headers(self):
        class Emitter(eddy.Operator):
            def process(self, ctx, record):
                ctx.emit("k", b"\xff")
                ctx.emit(b"k", "é", {"b": "2", "a": "1"})
                ctx.emit(bytearray(b"k"), "x", [("n", "1"), ("n", "2")])
                if record.value == b"bad":
                    ctx.emit("k", 5)

        h = Harness(Emitter)
        self.assertEqual(h.process_record(InputRecord("k")), [
            Emitted(b"k", b"\xff", []),
            Emitted(b"k", "é".encode(), [("b", "2"), ("a", "1")]),
            Emitted(b"k", b"x", [("n", "1"), ("n", "2")]),
        ])
        with self.assertRaises(eddy.Failed) as caught:
            h.process("k", "bad")
        self.assertIn("the value must be str or bytes, not int", caught.exception.message)


class Golden(unittest.TestCase):
    def test_file_source_and_sink_lines(self):
        record = source_record('{"key":"u","value":"v","timestamp":5,"headers":{"b":"2","a":"1"}}')
        self.assertEqual(record, InputRecord("u", "v", 5, [("a", "1"), ("b", "2")]))
        self.assertEqual(source_record('{"key":"u","value":"v"}').timestamp, 0)
        with self.assertRaises(ValueError):
            source_record('{"key":"u","value":"v","extra":1}')
        self.assertEqual(sink_line(Emitted(b"k", '"é"'.encode())), '{"key":"k","value":"\\"é\\""}')
        self.assertEqual(sink_line(Emitted(b"k", b"v", [("b", "2"), ("a", "1")])),
                         '{"key":"k","value":"v","headers":{"a":"1","b":"2"}}')

    def test_run_jsonl_feeds_records_one_by_one(self):
        h = Harness(Writer)
        text = '{"key":"a","value":"x"}\n\n{"key":"b","value":"y"}\n'
        self.assertEqual(run_jsonl(h, text), '{"key":"a","value":"x"}\n{"key":"b","value":"y"}\n')

    def test_run_jsonl_event_time_moves_the_watermark_and_diverts_late_records(self):
        h = Harness(Timed)
        text = "\n".join([
            '{"key":"a","value":"event 15","timestamp":10}',
            '{"key":"b","value":"x","timestamp":20}',  # sees 10 - 5 - 1 = 4
            '{"key":"a","value":"x","timestamp":30}',  # sees 14
            '{"key":"b","value":"x","timestamp":11,"headers":{"h":"1"}}',  # sees 24: late
            '{"key":"a","value":"x","timestamp":22}',  # sees 24, but within the lateness
        ])
        output, late = run_jsonl_event_time(h, text, max_out_of_orderness_ms=5,
                                            allowed_lateness_ms=5)
        # The timer at 15 fires before the first record that sees 24; the rest at the end.
        self.assertEqual(output, '{"key":"a","value":"EventTime 15 count=2"}\n')
        self.assertEqual(late, '{"key":"b","value":"x","headers":{"eddy-late-timestamp":"11",'
                               '"eddy-late-watermark":"24","h":"1"}}\n')
        self.assertEqual(h.value("count", "a"), 3)
        self.assertEqual(h.watermark, 2**63 - 1)


if __name__ == "__main__":
    unittest.main()
