import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compareUtf8, decodeUtf8, decodeUtf8Lossy, encodeUtf8, fallback, writeUtf8 } from '../src/utf8.js';

const samples = ['', 'ascii', 'héllo', '€uro', '𝄞 clef', 'mixed é € 𝄞 x', 'a'.repeat(100) + 'é'];

test('the fallback codec (QuickJS) agrees with TextEncoder / TextDecoder', () => {
  for (const s of samples) {
    const bytes = new TextEncoder().encode(s);
    assert.deepEqual(fallback.encode(s), bytes, s);
    assert.equal(fallback.decode(bytes), s);
    assert.deepEqual(encodeUtf8(s), bytes);
    assert.equal(decodeUtf8(bytes), s);
  }
  // Lone surrogates become U+FFFD, as TextEncoder writes them.
  for (const s of ['\ud800', 'x\udc00y', '\ud83d']) {
    assert.deepEqual(fallback.encode(s), new TextEncoder().encode(s));
  }
});

test('invalid UTF-8 is an error (no replacement), in both codecs', () => {
  const cases = [[0xff], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xe2, 0x82]];
  for (const bytes of cases) {
    const b = new Uint8Array(bytes);
    assert.throws(() => fallback.decode(b), /invalid UTF-8/, String(bytes));
    assert.throws(() => decodeUtf8(b), /invalid UTF-8/, String(bytes));
  }
  assert.equal(decodeUtf8Lossy(new Uint8Array([0x61, 0xff, 0x62])), 'a\ufffdb');
});

test('the strict fallback decoder matches a fatal TextDecoder on random bytes', () => {
  const fatal = new TextDecoder('utf-8', { fatal: true });
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let t = 0; t < 20000; t++) {
    const b = new Uint8Array(next() % 8).map(() => [next() % 128, 0x80 + (next() % 64), 0xc0 + (next() % 64)][next() % 3]);
    let want = null;
    let got = null;
    try {
      want = fatal.decode(b);
    } catch {}
    try {
      got = fallback.decode(b);
    } catch {}
    assert.equal(got, want, String([...b]));
  }
});

test('writeUtf8 writes in place and returns the length', () => {
  const buf = new Uint8Array(40);
  const n = writeUtf8(buf, 3, 'é𝄞x');
  assert.deepEqual(buf.subarray(3, 3 + n), new TextEncoder().encode('é𝄞x'));
});

test('compareUtf8 orders strings as their UTF-8 bytes, unlike the default sort', () => {
  const words = ['\u{1d11e}', '\uffff', 'b', 'a\u{1d11e}', 'a', '', 'ab', '\ue000'];
  const bytes = (s) => Buffer.from(new TextEncoder().encode(s));
  const want = [...words].sort((a, b) => Buffer.compare(bytes(a), bytes(b)));
  assert.deepEqual([...words].sort(compareUtf8), want);
  // UTF-16 units put the clef (a surrogate pair) before U+E000 and U+FFFF.
  assert.notDeepEqual([...words].sort(), want);
  assert.equal(compareUtf8('x', 'x'), 0);
});
