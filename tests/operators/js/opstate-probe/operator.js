// `opstate-probe` in JavaScript: non-keyed operator state, for the host's operator-state
// calls, checkpoints and redistribution. A port of the Rust fixture
// tests/operators/opstate-probe/src/lib.rs (the integration tests in
// tests/tests/integration/operator_state.rs run unchanged against both).
//
// Operator states (lists of strings, JSON codec, schema version 1):
// - `buffer`, redistributed by even split;
// - `rules`, redistributed by union.
//
// Input: JSON records `{"key": …, "op": …, "item": …}`:
//
// | op | does | emits |
// |----|------|-------|
// | `buffer` | adds `item` to `buffer` | nothing |
// | `rule` | adds `item` to `rules` | nothing |
// | `clear-buffer` | empties `buffer` (an update with an empty list) | nothing |
// | `dump` | reads both | `{"buffer":[…],"rules":[…]}` under the record key, each list sorted |
// | `fail` | adds `item` to `buffer`, then returns an error | nothing (the call fails) |
//
// When an instance starts, `initState` reads both lists and logs
// `opstate-probe: init sees buffer=<n> rules=<m>` at info. No config.
//
// The command is checked as the Rust fixture's serde derive checks it (`op` a string, `item`
// a string or null, other fields ignored), with serde's messages minus serde_json's
// ` at line L column C` suffix.

import { Codec, OperatorError, Redistribution, defineOperator } from 'eddy-sdk';

// -- serde, as far as the command needs it ------------------------------------------------

const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Mn}\p{Me}]/u;

/** `format!("{text:?}")` of a Rust `str`. */
export function rustDebug(text) {
  let out = '"';
  for (const c of text) {
    if (c === '\0') out += '\\0';
    else if (c === '\t') out += '\\t';
    else if (c === '\r') out += '\\r';
    else if (c === '\n') out += '\\n';
    else if (c === '\\') out += '\\\\';
    else if (c === '"') out += '\\"';
    else if (c >= ' ' && c <= '~') out += c;
    else if (NOT_PRINTABLE.test(c)) out += `\\u{${c.codePointAt(0).toString(16)}}`;
    else out += c;
  }
  return `${out}"`;
}

/** How serde_json names a JSON value of the wrong type. */
function unexpected(value) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return `boolean \`${value}\``;
    case 'number':
      return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
    case 'string':
      return `string ${rustDebug(value)}`;
    default:
      return Array.isArray(value) ? 'sequence' : 'map';
  }
}

/** A `String` field (`Option<String>` when `optional`). */
function checkField(value, optional) {
  if (value === null && optional) return null;
  if (typeof value !== 'string') throw OperatorError.failed(`invalid type: ${unexpected(value)}, expected a string`);
  return value;
}

/**
 * The fields of a serde-derived struct of `String` / `Option<String>` fields (`fields`:
 * name -> optional), from a JSON object (or array, as serde accepts), in serde's order of
 * checks: each entry in document order, then the missing fields. `text`: the JSON text of
 * `doc`, for repeated fields.
 */
export function decodeStruct(doc, struct, fields, denyUnknown = false, text = null) {
  const names = Object.keys(fields);
  const out = {};
  if (Array.isArray(doc)) {
    if (doc.length > names.length) throw OperatorError.failed('trailing characters');
    names.forEach((name, i) => {
      if (i < doc.length) out[name] = checkField(doc[i], fields[name]);
      else if (fields[name]) out[name] = null;
      else {
        throw OperatorError.failed(
          `invalid length ${doc.length}, expected struct ${struct} with ${names.length} elements`,
        );
      }
    });
    return out;
  }
  if (doc === null || typeof doc !== 'object') {
    throw OperatorError.failed(`invalid type: ${unexpected(doc)}, expected struct ${struct}`);
  }
  const entries = text !== null && mayRepeat(text, names) ? objectEntries(text) : Object.entries(doc);
  for (const [key, value] of entries) {
    if (Object.hasOwn(fields, key)) {
      if (Object.hasOwn(out, key)) throw OperatorError.failed(`duplicate field \`${key}\``);
      out[key] = checkField(value, fields[key]);
    } else if (denyUnknown) {
      throw OperatorError.failed(`unknown field \`${key}\`, expected ${names.map((n) => `\`${n}\``).join(' or ')}`);
    }
  }
  for (const name of names) {
    if (!Object.hasOwn(out, name)) {
      if (!fields[name]) throw OperatorError.failed(`missing field \`${name}\``);
      out[name] = null;
    }
  }
  return out;
}

// JSON.parse keeps the last of repeated names, where serde refuses a repeated field: the
// entries of the top-level object are read again in document order when a repeat is
// possible.

function skipSpace(t, i) {
  while (i < t.length && (t[i] === ' ' || t[i] === '\t' || t[i] === '\n' || t[i] === '\r')) i++;
  return i;
}

/** The end of the JSON string that starts at `t[i]`. */
function stringEnd(t, i) {
  let j = i + 1;
  for (;;) {
    j = t.indexOf('"', j);
    let k = j - 1;
    while (t[k] === '\\') k--;
    if ((j - 1 - k) % 2 === 0) return j + 1;
    j++;
  }
}

/** The end of the JSON value that starts at `t[i]`. */
function valueEnd(t, i) {
  const c = t[i];
  if (c === '"') return stringEnd(t, i);
  let j = i;
  if (c === '{' || c === '[') {
    let depth = 0;
    for (;;) {
      const d = t[j];
      if (d === '"') {
        j = stringEnd(t, j);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if ((d === '}' || d === ']') && --depth === 0) return j + 1;
      j++;
    }
  }
  while (j < t.length && !',}] \t\n\r'.includes(t[j])) j++;
  return j;
}

/** The `[name, value]` entries of the JSON object text `t` (valid JSON), in order, repeats included. */
export function objectEntries(t) {
  const out = [];
  let i = skipSpace(t, 0) + 1;
  for (;;) {
    i = skipSpace(t, i);
    if (t[i] === ',') i = skipSpace(t, i + 1);
    if (t[i] === '}') return out;
    const keyEnd = stringEnd(t, i);
    const key = JSON.parse(t.slice(i, keyEnd));
    i = skipSpace(t, skipSpace(t, keyEnd) + 1);
    const end = valueEnd(t, i);
    out.push([key, JSON.parse(t.slice(i, end))]);
    i = end;
  }
}

/** Whether a name of `names` may be repeated in the JSON text `t`. */
function mayRepeat(t, names) {
  if (t.includes('\\u')) return true;
  return names.some((name) => {
    const quoted = `"${name}"`;
    const first = t.indexOf(quoted);
    return first >= 0 && t.indexOf(quoted, first + 1) >= 0;
  });
}

/** Code point (UTF-8 byte) order, as Rust sorts `String`s. */
export function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

// -- the probe ------------------------------------------------------------------------------

/** The command's `item`, which its op needs. */
function item(command) {
  if (command.item === null) {
    throw OperatorError.failed(`opstate-probe: \`${command.op}\` needs a string \`item\``);
  }
  return command.item;
}

export const operator = defineOperator({
  name: 'opstate-probe',
  version: '0.1.0',
  open(states) {
    const buffer = states.operatorList('buffer', { redistribution: Redistribution.EvenSplit, codec: Codec.json });
    const rules = states.operatorList('rules', { redistribution: Redistribution.Union, codec: Codec.json });
    return {
      initState(ctx) {
        const b = buffer.get().length;
        const r = rules.get().length;
        ctx.log('info', `opstate-probe: init sees buffer=${b} rules=${r}`);
      },
      process(ctx, record) {
        const text = record.valueText;
        const command = decodeStruct(JSON.parse(text), 'Command', { op: false, item: true }, false, text);
        switch (command.op) {
          case 'buffer':
            buffer.add(item(command));
            break;
          case 'rule':
            rules.add(item(command));
            break;
          case 'clear-buffer':
            buffer.clear();
            break;
          case 'dump': {
            const dump = { buffer: buffer.get().sort(byCodePoint), rules: rules.get().sort(byCodePoint) };
            ctx.emit(record.key, JSON.stringify(dump));
            break;
          }
          case 'fail':
            buffer.add(item(command));
            throw OperatorError.failed('opstate-probe: asked to fail');
          default:
            throw OperatorError.failed(`opstate-probe: unknown op ${rustDebug(command.op)}`);
        }
      },
    };
  },
});
