// `timer-probe` in JavaScript: a test operator for timers. A port of the Rust fixture
// tests/operators/timer-probe/src/lib.rs (the integration tests in
// tests/tests/integration/event_time.rs run unchanged against both).
//
// Each record's value is a command for the record's key (the value itself, or the `cmd`
// field of a JSON object value):
// - `event:<ts>` / `processing:<ts>` registers a timer, `unevent:<ts>` /
//   `unprocessing:<ts>` deletes one;
// - `after:<ms>` registers an event-time timer `ms` after the record's timestamp;
// - `chain:<n>`: the key's next `n` event-time firings each register another timer
//   1,000 ms later;
// - `fail-timer` makes the key's next firing fail;
// - anything else only counts.
//
// Every record adds one to the key's `records` count. A firing adds one to the key's
// `fired` count and emits `fired <domain> <ts> records=<n> fired=<m>` for the timer's
// key, and ` watermark=<wm>` when the record said `show-watermark` (the watermark at a
// firing depends on where the watermark advanced, which a replay need not repeat).
//
// States (value states): `records`, `fired`, `chains` (u64), `fail`, `show-watermark`
// (bool). The Rust fixture stores them with postcard (the Rust SDK's default); this port with
// JSON, the JavaScript SDK's codec. Numbers follow Rust's: `<ts>` and `<ms>` are parsed as an
// i64 (`str::parse`, exactly, as a BigInt), sums wrap around as i64 (a release build does
// not check overflow), and `chain:<n>` is that i64 cast to u64. An argument that is not such
// a number fails the record; no test reads the message. The SDK hands timestamps and
// watermarks over as numbers, exact within ±2^53 ms (and for NO_WATERMARK, -2^63).

import { OperatorError, defineOperator } from 'eddy-sdk';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const INTEGER = /^[+-]?[0-9]+$/;
/** `arg.parse::<i64>()` as a BigInt: an optional sign and ASCII digits, within the i64 range. */
export function parse(arg) {
  if (INTEGER.test(arg)) {
    const negative = arg[0] === '-';
    const digits = arg[0] === '-' || arg[0] === '+' ? arg.slice(1) : arg;
    const n = negative ? -BigInt(digits) : BigInt(digits);
    if (n >= I64_MIN && n <= I64_MAX) return n;
  }
  throw OperatorError.failed(`not a timestamp: ${JSON.stringify(arg)}`);
}

/** An i64 the SDK handed over as a number, as Rust's `Display` writes it. */
function i64Text(n) {
  return BigInt(n).toString();
}

/** The command: the `cmd` string of a JSON object value, else the value itself. */
export function commandOf(value) {
  if (value.startsWith('{')) {
    let doc;
    try {
      doc = JSON.parse(value);
    } catch {
      return value;
    }
    if (doc !== null && typeof doc === 'object' && typeof doc.cmd === 'string') return doc.cmd;
  }
  return value;
}

export const operator = defineOperator({
  name: 'timer-probe',
  version: '0.1.0',
  open(states) {
    const records = states.value('records');
    const fired = states.value('fired');
    const fail = states.value('fail');
    const chains = states.value('chains');
    const showWatermark = states.value('show-watermark');
    return {
      process(ctx, record) {
        records.set(records.getOr(0) + 1);
        const command = commandOf(record.valueText);
        const colon = command.indexOf(':');
        const name = colon < 0 ? null : command.slice(0, colon);
        const arg = colon < 0 ? null : command.slice(colon + 1);
        if (name === 'event') ctx.registerEventTimeTimer(parse(arg));
        else if (name === 'unevent') ctx.deleteEventTimeTimer(parse(arg));
        else if (name === 'processing') ctx.registerProcessingTimeTimer(parse(arg));
        else if (name === 'unprocessing') ctx.deleteProcessingTimeTimer(parse(arg));
        else if (name === 'after') ctx.registerEventTimeTimer(BigInt.asIntN(64, BigInt(record.timestamp) + parse(arg)));
        else if (name === 'chain') chains.set(Number(BigInt.asUintN(64, parse(arg)))); // `as u64`
        else if (command === 'fail-timer') fail.set(true);
        else if (command === 'show-watermark') showWatermark.set(true);
      },
      onTimer(ctx, timer) {
        if (fail.getOr(false)) {
          fail.clear();
          throw OperatorError.failed('asked to fail this timer');
        }
        const n = fired.getOr(0) + 1;
        fired.set(n);
        const count = records.getOr(0);
        const eventTime = timer.domain === 'event-time';
        const domain = eventTime ? 'event' : 'processing';
        const watermark = showWatermark.getOr(false) ? ` watermark=${i64Text(ctx.watermark)}` : '';
        ctx.emit(ctx.key, `fired ${domain} ${i64Text(timer.timestamp)} records=${count} fired=${n}${watermark}`);
        const left = chains.getOr(0);
        if (eventTime && left > 0) {
          chains.set(left - 1);
          ctx.registerEventTimeTimer(BigInt.asIntN(64, BigInt(timer.timestamp) + 1000n));
        }
      },
    };
  },
});
