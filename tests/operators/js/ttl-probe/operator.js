// `ttl-probe` in JavaScript: keyed state with a time to live, for the host's TTL
// enforcement. A port of the Rust fixture tests/operators/ttl-probe/src/lib.rs (the
// integration tests in tests/tests/integration/state_ttl.rs run unchanged against both).
//
// Input: JSON records `{"key": …, "op": …, …}`, keyed by `key`. Every op works on the
// record key's state:
//
// | op | fields | does | emits |
// |----|--------|------|-------|
// | `put` | `value` (string) | sets `v` to it, puts `m[value] = value`, adds it to `l` | nothing |
// | `get` | | reads `v`, the keys of `m`, the items of `l` | `{"key":…,"v":…,"m":[…],"l":[…]}` |
// | `touch-v` | | reads `v` | nothing |
// | `touch-m` | | reads every entry of `m` (through `map-keys`) | nothing |
// | `touch-l` | | reads `l` (through `list-get`) | nothing |
//
// `get` emits, under the record key, `{"key":<record key>,"v":<value or null>,"m":[<map
// keys, sorted>],"l":[<list items, oldest first>]}`, fields in that order. Every read
// restarts the TTL under `on-read-and-write`, `get`'s too.
//
// Config: `{"update": "on-create-and-write" | "on-read-and-write"}` (default
// `on-create-and-write`). The host reads state descriptors through `describe`, which gets
// no config, so the TTL is declared, not configured: every state lives 4,000 ms of
// processing time after its last update. `update` picks the states the ops use:
//
// | update | value (string) | map (string → string) | list (string) |
// |--------|----------------|-----------------------|---------------|
// | `on-create-and-write` | `v` | `m` | `l` |
// | `on-read-and-write` | `v-rw` | `m-rw` | `l-rw` |
//
// All six use the JSON codec (as the Rust fixture's do, so the stored bytes are the same).
// Commands and the config are checked as the Rust fixture's serde derives check them, with
// serde's messages minus serde_json's ` at line L column C` suffix.
//
// Speed (state_ttl.rs writes 4,000 values of 2,000 characters in one run and needs them
// still alive, TTL 4 s, when the run ends): under QuickJS the SDK's UTF-8 codec is a loop
// in JavaScript, about 0.5 ms per 2 KB string, and a `put` encodes the same string four
// times (v, m's key and value, l) and decodes a record of over 1,024 bytes on the SDK's
// slow path. That made the run take ~25 s (batches overran max-call-time and were re-run).
// So the states' codec is JSON that keeps its last encoding (same bytes, same descriptor
// codec "json"), and ASCII text is decoded with String.fromCharCode in chunks.

import { Codec, OperatorError, TtlUpdate, defineOperator } from 'eddy-sdk';

/** The TTL every state of the probe is declared with. */
export const TTL_MS = 4_000;

// -- serde, as far as the command and the config need it ----------------------------------

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

// -- speed (see the top) ----------------------------------------------------------------

const NON_ASCII = /[\x80-\xff]/;

/** `bytes` as text when they are all ASCII, else null. */
function asciiText(bytes) {
  let text = '';
  for (let at = 0; at < bytes.length; at += 1024) {
    text += String.fromCharCode.apply(null, bytes.subarray(at, Math.min(at + 1024, bytes.length)));
  }
  return NON_ASCII.test(text) ? null : text;
}

/** `Codec.json`, keeping the bytes of the last string it encoded (strings are immutable). */
export function memoJson() {
  let lastText = null;
  let lastBytes = null;
  return {
    name: Codec.json.name,
    encode(value) {
      if (typeof value === 'string' && value === lastText) return lastBytes;
      const bytes = Codec.json.encode(value);
      if (typeof value === 'string') {
        lastText = value;
        lastBytes = bytes;
      }
      return bytes;
    },
    decode(bytes) {
      const text = asciiText(bytes);
      return text === null ? Codec.json.decode(bytes) : JSON.parse(text);
    },
  };
}

// -- the probe ------------------------------------------------------------------------------

/** The states of one TTL update policy. */
function declare(states, suffix, ttlUpdate) {
  const options = { ttl: TTL_MS, ttlUpdate, codec: memoJson() };
  return {
    v: states.value(`v${suffix}`, options),
    m: states.map(`m${suffix}`, options),
    l: states.list(`l${suffix}`, options),
  };
}

export const operator = defineOperator({
  name: 'ttl-probe',
  version: '0.1.0',
  open(states) {
    const onWrite = declare(states, '', TtlUpdate.OnCreateAndWrite);
    const onRead = declare(states, '-rw', TtlUpdate.OnReadAndWrite);
    let readToo = false;
    return {
      init(config) {
        let update;
        try {
          ({ update } = decodeStruct(config, 'Config', { update: true }, true));
        } catch (error) {
          throw OperatorError.invalidConfig(`ttl-probe config: ${error.message}`);
        }
        if (update === null || update === 'on-create-and-write') readToo = false;
        else if (update === 'on-read-and-write') readToo = true;
        else {
          throw OperatorError.invalidConfig(
            `ttl-probe config: update ${rustDebug(update)} is neither "on-create-and-write" nor "on-read-and-write"`,
          );
        }
      },
      process(ctx, record) {
        const text = asciiText(record.value) ?? record.valueText;
        const command = decodeStruct(JSON.parse(text), 'Command', { op: false, value: true }, false, text);
        const { v, m, l } = readToo ? onRead : onWrite;
        switch (command.op) {
          case 'put': {
            const value = command.value;
            if (value === null) throw OperatorError.failed('ttl-probe: `put` needs a string `value`');
            v.set(value);
            m.put(value, value);
            l.add(value);
            break;
          }
          case 'get': {
            const gotV = v.get();
            const gotM = m.keysArray().sort(byCodePoint);
            const got = { key: ctx.keyText, v: gotV === undefined ? null : gotV, m: gotM, l: l.get() };
            ctx.emit(record.key, JSON.stringify(got));
            break;
          }
          case 'touch-v':
            v.get();
            break;
          case 'touch-m':
            for (const _ of m.keys()) {
              // every page is fetched: each read restarts the entries' TTL when asked
            }
            break;
          case 'touch-l':
            l.get();
            break;
          default:
            throw OperatorError.failed(`ttl-probe: unknown op ${rustDebug(command.op)}`);
        }
      },
    };
  },
});
