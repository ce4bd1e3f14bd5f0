// `state-probe` in JavaScript: an exact port of tests/operators/state-probe (Rust). It runs
// one state operation per record, through the SDK, and emits the answer, so that an
// integration test can run the same script against this component and the Rust one.
//
// Input: key = the state key; value = a JSON command `{"op": …, …}`. Every command emits
// exactly one record (same key) whose value is `{"ok":true}` or `{"value":…}` (compact JSON
// as serde_json writes it), except `emit-many` (emits `n` records `{"index":i}`), `fail`
// (throws: a `failed` error) and `trap` (traps the instance).
//
// | op | fields | answer |
// |----|--------|--------|
// | `value-set` / `value-get` / `value-clear` | `v` (set) | `value`: string or null |
// | `map-put` / `map-get` / `map-remove` / `map-contains` | `k`, `v` (put) | `value`: string or null / bool |
// | `map-is-empty` / `map-clear` | | `value`: bool / ok |
// | `map-entries` / `map-keys` | `page` (optional page size) | `value`: `[[k,v],…]` / `[k,…]` |
// | `list-add` / `list-add-all` / `list-update` / `list-get` / `list-clear` | `v` / `vs` | `value`: `[…]` |
// | `reducing-add` / `reducing-get` | `n` (i64) | `value`: sum or null |
// | `aggregating-add` / `aggregating-get` | `n` (i64) | `value`: mean (f64) or null |
// | `log` | `v` (message, logged at info) | ok |
// | `timestamp` / `headers` | | `value`: the record's timestamp / headers object |
// | `emit-headers` | `headers` (object) | ok, emitted with those headers |
// | `emit-many` | `n` | `n` records `{"index":i}` |
// | `fail` / `trap` | | an error / a trap |
// | `write-then-fail` / `write-then-trap` | `v` | sets `value`, puts `map[v] = v`, adds `v` to `list`, then fails / traps |
//
// States: `value` (value, string), `map` (map, string → string), `list` (list, string),
// `sum` (reducing, i64), `average` (aggregating, accumulator `[sum, count]`). The codec is
// JSON (the Rust probe's is postcard): map keys are JSON strings, so entries come in the
// byte order of `"k"` texts — the same order as the Rust probe's for keys of equal length
// and for keys that are prefixes of one another.

import { OperatorError, compareUtf8, defineOperator, trap } from 'eddy-sdk';

const I64_MAX = 9223372036854775807;
const I64_MIN = -9223372036854775808;

function saturatingAdd(a, b) {
  const sum = a + b;
  return sum > I64_MAX ? I64_MAX : sum < I64_MIN ? I64_MIN : sum;
}

/** The mean of the inputs; the accumulator is `[sum, count]`. */
export const average = {
  createAccumulator: () => [0, 0],
  add: (value, [sum, count]) => [saturatingAdd(sum, value), count + 1],
  getResult: ([sum, count]) => sum / Math.max(count, 1),
};

/**
 * An f64 as serde_json (1.0.154, zmij) writes it: `1.5`, `2.0`, `1e+16`, `1.5e-7` (fixed
 * notation for decimal exponents -5 to 15); NaN and infinities as `null`.
 */
export function formatF64(x) {
  if (!Number.isFinite(x)) return 'null';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exponent] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const length = digits.length;
  const kk = Number(exponent) + 1; // 10^(kk-1) <= |x| < 10^kk
  const k = kk - length; // |x| = digits × 10^k
  let text;
  if (k >= 0 && kk <= 16) text = `${digits}${'0'.repeat(k)}.0`;
  else if (kk > 0 && kk <= 16) text = `${digits.slice(0, kk)}.${digits.slice(kk)}`;
  else if (kk > -5 && kk <= 0) text = `0.${'0'.repeat(-kk)}${digits}`;
  else {
    const e = kk - 1;
    const mantissa = length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    text = `${mantissa}e${e >= 0 ? '+' : '-'}${Math.abs(e)}`;
  }
  return x < 0 ? `-${text}` : text;
}

/** `pairs` (last value per name) as a JSON object with names in byte order, as serde_json writes a BTreeMap. */
function sortedObject(pairs) {
  const map = new Map(pairs);
  const names = [...map.keys()].sort(compareUtf8);
  return `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(map.get(n))}`).join(',')}}`;
}

// -- the commands' fields, checked as serde would ---------------------------------------

function bad(message) {
  return new TypeError(message);
}

function field(cmd, name) {
  if (!Object.hasOwn(cmd, name)) throw bad(`missing field \`${name}\``);
  return cmd[name];
}

function string(cmd, name) {
  const v = field(cmd, name);
  if (typeof v !== 'string') throw bad(`invalid type for \`${name}\`: expected a string`);
  return v;
}

function i64(cmd, name) {
  const v = field(cmd, name);
  if (!Number.isInteger(v) || v < I64_MIN || v > I64_MAX) throw bad(`invalid value for \`${name}\`: expected i64`);
  return v;
}

function u32(v, name) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`invalid value for \`${name}\`: expected u32`);
  return v;
}

function optionalU32(cmd, name) {
  const v = cmd[name];
  return v === undefined || v === null ? undefined : u32(v, name);
}

function strings(cmd, name) {
  const v = field(cmd, name);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw bad(`invalid type for \`${name}\`: expected a sequence of strings`);
  }
  return v;
}

function stringMap(cmd, name) {
  const v = field(cmd, name);
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((s) => typeof s === 'string')) {
    throw bad(`invalid type for \`${name}\`: expected a map of strings`);
  }
  return Object.entries(v);
}

const OK = '{"ok":true}';

function answer(json) {
  return `{"value":${json}}`;
}

/** A JSON value of `v`, `null` for undefined (serde's None). */
function jsonOf(v) {
  return v === undefined ? 'null' : JSON.stringify(v);
}

export const operator = defineOperator({
  name: 'state-probe',
  version: '0.1.0',
  open(states) {
    const value = states.value('value');
    const map = states.map('map');
    const list = states.list('list');
    const sum = states.reducing('sum', saturatingAdd);
    const avg = states.aggregating('average', average);

    /** Touches every kind of state and emits: none of it may survive a failure after it. */
    function writeEverything(ctx, record, v) {
      value.set(v);
      map.put(v, v);
      list.add(v);
      ctx.emit(record.key, 'must not be emitted');
    }

    return {
      process(ctx, record) {
        const cmd = record.json();
        if (cmd === null || typeof cmd !== 'object' || Array.isArray(cmd)) throw bad('expected a command object');
        const op = field(cmd, 'op');
        let result;
        switch (op) {
          case 'write-then-fail':
            writeEverything(ctx, record, string(cmd, 'v'));
            throw OperatorError.failed('state-probe: asked to fail after writing');
          case 'write-then-trap':
            writeEverything(ctx, record, string(cmd, 'v'));
            trap('state-probe: asked to trap');
            break;
          case 'value-set':
            value.set(string(cmd, 'v'));
            result = OK;
            break;
          case 'value-get':
            result = answer(jsonOf(value.get()));
            break;
          case 'value-clear':
            value.clear();
            result = OK;
            break;
          case 'map-put':
            map.put(string(cmd, 'k'), string(cmd, 'v'));
            result = OK;
            break;
          case 'map-get':
            result = answer(jsonOf(map.get(string(cmd, 'k'))));
            break;
          case 'map-remove':
            map.remove(string(cmd, 'k'));
            result = OK;
            break;
          case 'map-contains':
            result = answer(jsonOf(map.contains(string(cmd, 'k'))));
            break;
          case 'map-is-empty':
            result = answer(jsonOf(map.isEmpty()));
            break;
          case 'map-clear':
            map.clear();
            result = OK;
            break;
          case 'map-entries': {
            const page = optionalU32(cmd, 'page');
            result = answer(JSON.stringify(map.entriesArray(page === undefined ? undefined : { pageSize: page })));
            break;
          }
          case 'map-keys': {
            const page = optionalU32(cmd, 'page');
            result = answer(JSON.stringify(map.keysArray(page === undefined ? undefined : { pageSize: page })));
            break;
          }
          case 'list-add':
            list.add(string(cmd, 'v'));
            result = OK;
            break;
          case 'list-add-all':
            list.addAll(strings(cmd, 'vs'));
            result = OK;
            break;
          case 'list-update':
            list.update(strings(cmd, 'vs'));
            result = OK;
            break;
          case 'list-get':
            result = answer(JSON.stringify(list.get()));
            break;
          case 'list-clear':
            list.clear();
            result = OK;
            break;
          case 'reducing-add':
            sum.add(i64(cmd, 'n'));
            result = OK;
            break;
          case 'reducing-get':
            result = answer(jsonOf(sum.get()));
            break;
          case 'aggregating-add':
            avg.add(i64(cmd, 'n'));
            result = OK;
            break;
          case 'aggregating-get': {
            const mean = avg.get();
            result = answer(mean === undefined ? 'null' : formatF64(mean));
            break;
          }
          case 'log':
            ctx.log('info', string(cmd, 'v'));
            result = OK;
            break;
          case 'timestamp':
            result = answer(JSON.stringify(record.timestamp));
            break;
          case 'headers':
            result = answer(sortedObject(record.headers));
            break;
          case 'emit-headers': {
            const headers = stringMap(cmd, 'headers');
            const sorted = [...new Map(headers)].sort(([a], [b]) => compareUtf8(a, b));
            ctx.emit(record.key, OK, sorted);
            return;
          }
          case 'emit-many': {
            const n = u32(field(cmd, 'n'), 'n');
            for (let index = 0; index < n; index++) ctx.emit(record.key, `{"index":${index}}`);
            return;
          }
          case 'fail':
            throw OperatorError.failed('state-probe: asked to fail');
          case 'trap':
            trap('state-probe: asked to trap');
            break;
          default:
            throw bad(`unknown variant \`${String(op)}\``);
        }
        ctx.emit(record.key, result);
      },
    };
  },
});
