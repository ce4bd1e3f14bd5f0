// UTF-8 for every engine: TextEncoder/TextDecoder where the engine has them (Node,
// SpiderMonkey), and a small codec of our own where it does not (QuickJS).

const nativeEncoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;
const nativeDecoder = (() => {
  if (typeof TextDecoder !== 'function') return null;
  try {
    return new TextDecoder('utf-8', { fatal: true });
  } catch {
    return null;
  }
})();

/**
 * Writes `s` as UTF-8 into `buf` at `pos` (lone surrogates become U+FFFD, as TextEncoder
 * does) and returns the number of bytes written. `buf` must have room for `3 * s.length`
 * bytes after `pos`: no UTF-16 code unit takes more than three.
 * @param {Uint8Array} buf
 * @param {number} pos
 * @param {string} s
 * @returns {number}
 */
export function writeUtf8(buf, pos, s) {
  const n = s.length;
  let p = pos;
  let i = 0;
  // ASCII fast path.
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    buf[p++] = c;
  }
  if (i === n) return p - pos;
  if (nativeEncoder !== null && typeof nativeEncoder.encodeInto === 'function') {
    const { written } = nativeEncoder.encodeInto(i === 0 ? s : s.slice(i), buf.subarray(p));
    return p + written - pos;
  }
  return writeUtf8Js(buf, p, s, i) - pos;
}

/** Encodes `s` from code unit `i` at `buf[p]`; returns the position after the last byte. */
function writeUtf8Js(buf, p, s, i) {
  const n = s.length;
  for (; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        // A lone surrogate: U+FFFD, as TextEncoder writes it.
        buf[p++] = 0xef;
        buf[p++] = 0xbf;
        buf[p++] = 0xbd;
      }
    } else {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/**
 * `s` as UTF-8 bytes.
 * @param {string} s
 * @returns {Uint8Array}
 */
export function encodeUtf8(s) {
  if (nativeEncoder !== null) return nativeEncoder.encode(s);
  const buf = new Uint8Array(s.length * 3);
  const n = writeUtf8(buf, 0, s);
  return buf.slice(0, n);
}

const ASCII_CHUNK = 1024;

/** `bytes[start, end)` as text when it is all ASCII, else `null`. */
function decodeAsciiChunks(bytes, start, end) {
  const parts = [];
  for (let at = start; at < end; at += ASCII_CHUNK) {
    const part = String.fromCharCode.apply(null, bytes.subarray(at, Math.min(end, at + ASCII_CHUNK)));
    if (NON_ASCII.test(part)) return null;
    parts.push(part);
  }
  return parts.join('');
}

/** Thrown for bytes that are not UTF-8. */
export class Utf8Error extends TypeError {
  constructor(message) {
    super(message);
    this.name = 'Utf8Error';
  }
}

function invalid(at) {
  throw new Utf8Error(`invalid UTF-8 at byte ${at}`);
}

/**
 * Compares two strings in the byte order of their UTF-8 (code point order), the order of
 * Rust's strings; JavaScript's `<` and default sort compare UTF-16 units instead, which
 * puts characters beyond U+FFFF before U+E000–U+FFFF. For `sort`: negative, 0 or positive.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
export function compareUtf8(a, b) {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * Decodes UTF-8, replacing each invalid byte with U+FFFD, e.g.
 * to show a key in a message.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function decodeUtf8Lossy(bytes) {
  try {
    return decodeUtf8(bytes);
  } catch {
    return decodeSlow(bytes, 0, bytes.length, true);
  }
}

/**
 * Decodes the UTF-8 in `bytes[start, end)`; throws a `Utf8Error` on invalid UTF-8 (no
 * replacement characters: bytes that are not text are an error, as in the Rust SDK).
 * @param {Uint8Array} bytes
 * @param {number} [start]
 * @param {number} [end]
 * @returns {string}
 */
export function decodeUtf8(bytes, start = 0, end = bytes.length) {
  // ASCII, decoded by native calls of at most ASCII_CHUNK bytes each (engines without
  // TextDecoder run JS loops slowly; one call per chunk keeps the argument list short).
  if (end - start <= ASCII_CHUNK) {
    const text = String.fromCharCode.apply(null, bytes.subarray(start, end));
    if (!NON_ASCII.test(text)) return text;
  } else {
    const text = decodeAsciiChunks(bytes, start, end);
    if (text !== null) return text;
  }
  if (nativeDecoder !== null) {
    try {
      return nativeDecoder.decode(bytes.subarray(start, end));
    } catch {
      // Fall through for the position of the error.
    }
  }
  return decodeSlow(bytes, start, end);
}

const NON_ASCII = /[\x80-\xff]/;

/** The length of the valid UTF-8 sequence at `bytes[i]` (before `end`), or 0 if there is none. */
function sequenceLength(bytes, i, end) {
  const b = bytes[i];
  if (b < 0x80) return 1;
  const cont = (k) => i + k < end && (bytes[i + k] & 0xc0) === 0x80;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = bytes[i + 1];
    if (b === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b === 0xed && b1 >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const b1 = bytes[i + 1];
    if (b === 0xf0 && b1 < 0x90) return 0; // overlong
    if (b === 0xf4 && b1 >= 0x90) return 0; // past U+10FFFF
    return 4;
  }
  return 0;
}

/** Decodes `bytes[start, end)`: invalid sequences throw, or with `lossy` become U+FFFD. */
function decodeSlow(bytes, start, end, lossy = false) {
  const parts = [];
  let codes = [];
  let i = start;
  while (i < end) {
    const n = sequenceLength(bytes, i, end);
    const b = bytes[i];
    if (n === 1) {
      codes.push(b);
    } else if (n === 2) {
      codes.push(((b & 0x1f) << 6) | (bytes[i + 1] & 0x3f));
    } else if (n === 3) {
      codes.push(((b & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f));
    } else if (n === 4) {
      const c =
        (((b & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f)) -
        0x10000;
      codes.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else if (lossy) {
      codes.push(0xfffd);
      i += 1;
      continue;
    } else {
      invalid(i);
    }
    i += n;
    if (codes.length >= 4096) {
      parts.push(String.fromCharCode.apply(null, codes));
      codes = [];
    }
  }
  parts.push(String.fromCharCode.apply(null, codes));
  return parts.join('');
}

/** The engine-independent codec (what QuickJS uses), for the SDK's own tests. */
export const fallback = {
  /** @param {string} s */
  encode(s) {
    const buf = new Uint8Array(s.length * 3);
    return buf.slice(0, writeUtf8Js(buf, 0, s, 0));
  },
  /** @param {Uint8Array} bytes */
  decode(bytes) {
    return decodeSlow(bytes, 0, bytes.length);
  },
};
