"""`timer-probe` in Python: a test operator for timers. A port of the Rust fixture
`tests/operators/timer-probe/src/lib.rs` (the integration tests in
tests/tests/integration/event_time.rs run unchanged against both).

Each record's value is a command for the record's key (the value itself, or the `cmd`
field of a JSON object value):
- `event:<ts>` / `processing:<ts>` registers a timer, `unevent:<ts>` /
  `unprocessing:<ts>` deletes one;
- `after:<ms>` registers an event-time timer `ms` after the record's timestamp;
- `chain:<n>`: the key's next `n` event-time firings each register another timer
  1,000 ms later;
- `fail-timer` makes the key's next firing fail;
- anything else only counts.

Every record adds one to the key's `records` count. A firing adds one to the key's
`fired` count and emits `fired <domain> <ts> records=<n> fired=<m>` for the timer's
key, and ` watermark=<wm>` when the record said `show-watermark` (the watermark at a
firing depends on where the watermark advanced, which a replay need not repeat).

States (value states): `records`, `fired`, `chains` (u64), `fail`, `show-watermark`
(bool). The Rust fixture stores them with postcard (the Rust SDK's default); this port with
JSON, the Python SDK's only codec. Numbers follow Rust's: `<ts>` and `<ms>` are parsed as
an i64 (`str::parse`), sums wrap around as i64 (a release build does not check overflow),
and `chain:<n>` is that i64 cast to u64. An argument that is not such a number fails the
record; no test reads the message.
"""

import json
import re

import eddy_sdk as eddy

_I64 = 2**64
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def wrap_i64(n):
    """`n` wrapped into an i64, as Rust's `+` on i64 in a release build."""
    return (n - _I64_MIN) % _I64 + _I64_MIN


def parse(arg):
    """`arg.parse::<i64>()`: an optional sign and ASCII digits (any number of leading
    zeros), within the i64 range."""
    if _INTEGER.match(arg):
        digits = arg.lstrip("+-").lstrip("0")
        if len(digits) <= 19:
            n = int(arg[0] + digits) if arg[0] in "+-" and digits else int(digits or "0")
            if _I64_MIN <= n <= _I64_MAX:
                return n
    # json.dumps escapes what is not ASCII, so a lone surrogate still makes a UTF-8 message.
    raise eddy.Failed(f"not a timestamp: {json.dumps(arg)}")


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def command_of(value):
    """The command: the `cmd` string of a JSON object value, else the value itself."""
    if value.startswith("{"):
        try:
            # json.loads takes NaN and Infinity, which are not JSON.
            doc = json.loads(value, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return value
        if isinstance(doc, dict) and isinstance(doc.get("cmd"), str):
            return doc["cmd"]
    return value


class TimerProbe(eddy.Operator):
    """See the module docs."""

    name = "timer-probe"
    version = "0.1.0"

    def open(self, states):
        self.records = states.value("records")
        self.fired = states.value("fired")
        self.fail = states.value("fail")
        self.chains = states.value("chains")
        self.show_watermark = states.value("show-watermark")

    def process(self, ctx, record):
        n = self.records.get(0) + 1
        self.records.set(n)
        command = command_of(record.value_str())
        name, colon, arg = command.partition(":")
        if colon and name == "event":
            ctx.register_event_time_timer(parse(arg))
        elif colon and name == "unevent":
            ctx.delete_event_time_timer(parse(arg))
        elif colon and name == "processing":
            ctx.register_processing_time_timer(parse(arg))
        elif colon and name == "unprocessing":
            ctx.delete_processing_time_timer(parse(arg))
        elif colon and name == "after":
            ctx.register_event_time_timer(wrap_i64(record.timestamp + parse(arg)))
        elif colon and name == "chain":
            self.chains.set(parse(arg) % _I64)  # `as u64`
        elif command == "fail-timer":
            self.fail.set(True)
        elif command == "show-watermark":
            self.show_watermark.set(True)

    def on_timer(self, ctx, timer):
        if self.fail.get(False):
            self.fail.clear()
            raise eddy.Failed("asked to fail this timer")
        fired = self.fired.get(0) + 1
        self.fired.set(fired)
        records = self.records.get(0)
        domain = "event" if timer.domain is eddy.TimeDomain.EVENT_TIME else "processing"
        watermark = f" watermark={ctx.watermark}" if self.show_watermark.get(False) else ""
        ctx.emit(ctx.key, f"fired {domain} {timer.timestamp} records={records} fired={fired}{watermark}")
        chains = self.chains.get(0)
        if timer.domain is eddy.TimeDomain.EVENT_TIME and chains > 0:
            self.chains.set(chains - 1)
            ctx.register_event_time_timer(wrap_i64(timer.timestamp + 1_000))


Operator = eddy.export(TimerProbe)
