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
// Commands and the config are checked for what the probe needs (no test reads the
// messages of malformed ones).
//
// Speed (state_ttl.rs writes 4,000 values of 2,000 characters in one run and needs them
// still alive, TTL 4 s, when the run ends): under QuickJS the SDK's UTF-8 codec is a loop
// in JavaScript, about 0.5 ms per 2 KB string, and a `put` encodes the same string four
// times (v, m's key and value, l) and decodes a record of over 1,024 bytes on the SDK's
// slow path. That made the run take ~25 s (batches overran max-call-time and were re-run).
// So the states' codec is JSON that keeps its last encoding (same bytes, same descriptor
// codec "json"), and ASCII text is decoded with String.fromCharCode in chunks.

import { Codec, OperatorError, TtlUpdate, compareUtf8, defineOperator } from 'eddy-sdk';

/** The TTL every state of the probe is declared with. */
export const TTL_MS = 4_000;

// -- the command ----------------------------------------------------------------------------

/** The string fields `names` of a JSON object (`null` when absent); anything else fails. */
export function stringFields(doc, names) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw OperatorError.failed('expected a JSON object');
  }
  const out = {};
  for (const name of names) {
    const value = doc[name] ?? null;
    if (value !== null && typeof value !== 'string') {
      throw OperatorError.failed(`field \`${name}\`: expected a string`);
    }
    out[name] = value;
  }
  return out;
}

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
          const unknown = Object.keys(config ?? {}).filter((name) => name !== 'update');
          if (unknown.length > 0) throw OperatorError.failed(`unknown field \`${unknown[0]}\``);
          ({ update } = stringFields(config ?? {}, ['update']));
        } catch (error) {
          throw OperatorError.invalidConfig(`ttl-probe config: ${error.message}`);
        }
        if (update === null || update === 'on-create-and-write') readToo = false;
        else if (update === 'on-read-and-write') readToo = true;
        else {
          throw OperatorError.invalidConfig(
            `ttl-probe config: update ${JSON.stringify(update)} is neither "on-create-and-write" nor "on-read-and-write"`,
          );
        }
      },
      process(ctx, record) {
        const text = asciiText(record.value) ?? record.valueText;
        const command = stringFields(JSON.parse(text), ['op', 'value']);
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
            const gotM = m.keysArray().sort(compareUtf8);
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
            throw OperatorError.failed(`ttl-probe: unknown op ${JSON.stringify(command.op)}`);
        }
      },
    };
  },
});
