// Codecs: how state values and map keys become bytes. The SDK's codec is JSON (descriptor
// codec "json"), which `eddy savepoint dump` and `bootstrap` read and write and which the
// Rust SDK reads with `Codec::Json`.

import { OperatorError, messageOf } from './errors.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';

/**
 * @typedef {object} Codec
 * @property {string} name the codec's name in the state descriptor
 * @property {(value: any) => Uint8Array} encode
 * @property {(bytes: Uint8Array) => any} decode
 */

/**
 * UTF-8 JSON text (`JSON.stringify` / `JSON.parse`). Values that have no JSON form
 * (`undefined`, functions, symbols, bigints) cannot be stored; `NaN` and infinities become
 * `null`, as in JSON.stringify.
 * @type {Codec}
 */
export const json = Object.freeze({
  name: 'json',
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new Error(`${typeof value} has no JSON form`);
    return encodeUtf8(text);
  },
  decode(bytes) {
    return JSON.parse(decodeUtf8(bytes));
  },
});

/**
 * `json.decode` of `buf[start, end)`, without a view of it.
 * @param {Uint8Array} buf
 * @param {number} start
 * @param {number} end
 */
export function decodeJsonRange(buf, start, end) {
  // A short integer (a count, the commonest state) without making a string.
  const n = end - start;
  if (n > 0 && n <= 15) {
    let i = buf[start] === 0x2d ? start + 1 : start;
    if (i < end && (buf[i] !== 0x30 || i + 1 === end)) {
      let value = 0;
      for (; i < end; i++) {
        const d = buf[i] - 0x30;
        if (d < 0 || d > 9) break;
        value = value * 10 + d;
      }
      if (i === end) return buf[start] === 0x2d ? -value : value;
    }
  }
  return JSON.parse(decodeUtf8(buf, start, end));
}

/** Whether `codec` looks like a codec. */
export function isCodec(codec) {
  return (
    codec != null &&
    typeof codec.name === 'string' &&
    codec.name.length > 0 &&
    typeof codec.encode === 'function' &&
    typeof codec.decode === 'function'
  );
}

/** Encodes with `codec`; an error says which codec failed. */
export function encodeWith(codec, value) {
  let bytes;
  try {
    bytes = codec.encode(value);
  } catch (error) {
    throw OperatorError.failed(`cannot encode (${codec.name}): ${messageOf(error)}`);
  }
  if (!(bytes instanceof Uint8Array)) {
    throw OperatorError.failed(`cannot encode (${codec.name}): the codec did not return a Uint8Array`);
  }
  return bytes;
}

/** Decodes with `codec`; an error says which codec failed. */
export function decodeWith(codec, bytes) {
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw OperatorError.failed(`cannot decode (${codec.name}): ${messageOf(error)}`);
  }
}

/**
 * The typical body of a `migrate`: decodes `bytes` (as `from` encoded them, JSON by
 * default), turns the value into the new one with `f`, and encodes that (with `to`,
 * by default the same codec).
 * @param {Uint8Array} bytes
 * @param {(old: any) => any} f
 * @param {{from?: Codec, to?: Codec}} [codecs]
 * @returns {Uint8Array}
 */
export function migrateValue(bytes, f, codecs = {}) {
  const from = codecs.from ?? json;
  const to = codecs.to ?? from;
  let old;
  try {
    old = from.decode(bytes);
  } catch (error) {
    throw OperatorError.failed(`migrate: the stored value does not decode (${from.name}): ${messageOf(error)}`);
  }
  return encodeWith(to, f(old));
}
