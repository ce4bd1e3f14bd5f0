// The JavaScript TTL probe through the SDK's harness: the Rust probe's unit tests (its
// clock, in processing-time milliseconds, set by the harness).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Codec } from 'eddy-sdk';
import { Harness } from 'eddy-sdk/testing';
import { memoJson, operator } from './operator.js';

function send(h, op, value) {
  const record = { key: 'k', op };
  if (value !== undefined) record.value = value;
  return h.processText('k', JSON.stringify(record)).map(([key, v]) => {
    assert.equal(key, 'k');
    return v;
  });
}

function get(h) {
  const emitted = send(h, 'get');
  assert.equal(emitted.length, 1);
  return emitted[0];
}

function fails(message) {
  return (error) => error.kind === 'failed' && error.message === message;
}

test('states are declared with the TTL and JSON', () => {
  const h = new Harness(operator);
  assert.equal(h.info.name, 'ttl-probe');
  assert.equal(h.info.version, '0.1.0');
  const w = 'on-create-and-write';
  const r = 'on-read-and-write';
  assert.deepEqual(
    h.info.states.map((s) => [s.name, s.kind, s.ttl.update]),
    [
      ['v', 'value', w],
      ['m', 'map', w],
      ['l', 'list', w],
      ['v-rw', 'value', r],
      ['m-rw', 'map', r],
      ['l-rw', 'list', r],
    ],
  );
  assert.ok(h.info.states.every((s) => s.ttl.ttlMs === 4_000 && s.codec === 'json' && s.schemaVersion === 1));
  assert.deepEqual(h.info.operatorStates, []);
});

test('get reports every state and put emits nothing', () => {
  const h = new Harness(operator);
  assert.equal(get(h), '{"key":"k","v":null,"m":[],"l":[]}');
  assert.deepEqual(send(h, 'put', 'b'), []);
  send(h, 'put', 'a');
  assert.equal(get(h), '{"key":"k","v":"a","m":["a","b"],"l":["b","a"]}');
  assert.deepEqual(send(h, 'touch-v'), []);
  assert.throws(() => h.process('k', '{"key":"k","op":"put"}'), fails('record 0: ttl-probe: `put` needs a string `value`'));
  assert.throws(() => h.process('k', '{"key":"k","op":"nope"}'), fails('record 0: ttl-probe: unknown op "nope"'));
  for (const [bad, message] of [
    ['{"value":"x"}', 'ttl-probe: unknown op null'],
    ['{"op":"put","value":7}', 'field `value`: expected a string'],
    ['[]', 'expected a JSON object'],
  ]) {
    assert.throws(() => h.process('k', bad), fails(`record 0: ${message}`), bad);
  }
});

test('get writes the key and the sorted keys as serde does', () => {
  const h = new Harness(operator);
  for (const value of ['é', 'b', '\u{1F600}', '\uFB01', 'a"\n']) send(h, 'put', value);
  assert.equal(
    get(h),
    '{"key":"k","v":"a\\"\\n","m":["a\\"\\n","b","é","\uFB01","\u{1F600}"],"l":["é","b","\u{1F600}","\uFB01","a\\"\\n"]}',
  );
});

test('on-create-and-write expires each value after its last write', () => {
  const h = new Harness(operator);
  send(h, 'put', 'x');
  h.advanceProcessingTime(2_000);
  send(h, 'put', 'y');
  h.advanceProcessingTime(3_600);
  send(h, 'touch-v'); // restarts nothing
  send(h, 'touch-m');
  send(h, 'touch-l');
  h.advanceProcessingTime(4_000); // x's entry and item expire, v (= y, written at 2000) lives
  assert.equal(get(h), '{"key":"k","v":"y","m":["y"],"l":["y"]}');
  h.advanceProcessingTime(6_000);
  assert.equal(get(h), '{"key":"k","v":null,"m":[],"l":[]}');
});

test('on-read-and-write restarts what each touch reads', () => {
  const h = new Harness(operator, { config: { update: 'on-read-and-write' } });
  send(h, 'put', 'x');
  h.advanceProcessingTime(2_400);
  send(h, 'touch-v');
  h.advanceProcessingTime(4_800); // v read at 2400 lives, m and l expired
  assert.equal(h.value('v-rw', 'k'), 'x');
  assert.equal(get(h), '{"key":"k","v":"x","m":[],"l":[]}');
  send(h, 'put', 'y'); // at 4800
  h.advanceProcessingTime(8_000);
  send(h, 'touch-m');
  send(h, 'touch-l');
  h.advanceProcessingTime(11_999); // v (4800) expired, m and l (read at 8000) live
  assert.equal(get(h), '{"key":"k","v":null,"m":["y"],"l":["y"]}');
  h.advanceProcessingTime(15_999); // that get restarted them at 11999
  assert.equal(get(h), '{"key":"k","v":null,"m":[],"l":[]}');
  // The other policy's states are untouched.
  assert.equal(h.value('v', 'k'), undefined);
});

test('configs are checked', () => {
  for (const ok of [{ update: 'on-create-and-write' }, { update: 'on-read-and-write' }, {}, { update: null }]) {
    assert.equal(new Harness(operator, { config: ok }).initError, null, JSON.stringify(ok));
  }
  for (const [bad, message] of [
    [{ 'ttl-ms': 4000 }, 'unknown field `ttl-ms`'],
    [{ update: 'sometimes' }, 'update "sometimes" is neither "on-create-and-write" nor "on-read-and-write"'],
    [{ ttl: 1000 }, 'unknown field `ttl`'],
    [{ update: 3 }, 'field `update`: expected a string'],
  ]) {
    const error = new Harness(operator, { config: bad }).initError;
    assert.equal(error.kind, 'invalid-config', JSON.stringify(bad));
    assert.equal(error.message, `ttl-probe config: ${message}`);
  }
});

test('the integration script', () => {
  // state_ttl.rs, a_value_is_invisible_after_its_ttl_and_a_read_renews_it_only_when_asked,
  // on the harness's clock: written at 0, read at 1500, read again at 4100.
  const x = '{"key":"a","v":"x","m":["x"],"l":["x"]}';
  const gone = '{"key":"a","v":null,"m":[],"l":[]}';
  for (const [update, renewed] of [
    ['on-create-and-write', false],
    ['on-read-and-write', true],
  ]) {
    const h = new Harness(operator, { config: { update } });
    const out = [
      ...h.processText('a', '{"key":"a","op":"put","value":"x"}'),
      ...h.processText('a', '{"key":"a","op":"get"}'),
    ];
    h.advanceProcessingTime(1_500);
    out.push(...h.processText('a', '{"key":"a","op":"get"}'));
    h.advanceProcessingTime(4_100);
    out.push(...h.processText('a', '{"key":"a","op":"get"}'));
    assert.deepEqual(
      out.map(([, v]) => v),
      [x, x, renewed ? x : gone],
      update,
    );
  }
});

test('the memoizing codec writes and reads what Codec.json does', () => {
  const codec = memoJson();
  assert.equal(codec.name, 'json');
  const long = 'é"\\'.repeat(700) + 'x'.repeat(1500);
  for (const v of ['x', 'x', long, long, 'a\u{1F600}', 7, null, ['a'], { k: 1 }]) {
    const bytes = codec.encode(v);
    assert.deepEqual([...bytes], [...Codec.json.encode(v)], JSON.stringify(v));
    assert.deepEqual(codec.decode(bytes), v);
  }
  assert.equal(codec.encode(long), codec.encode(long), 'the same bytes for the same string');
  assert.throws(() => codec.decode(new Uint8Array([0x22, 0xff, 0x22])));
  assert.equal(codec.decode(new Uint8Array(2100).fill(0x20).fill(0x31, 1050, 1051)), 1);
});

test('long and non-ASCII commands are read as the SDK reads them', () => {
  const h = new Harness(operator);
  const long = 'y'.repeat(2_000);
  send(h, 'put', long);
  send(h, 'put', `é${long}`);
  assert.equal(get(h), JSON.stringify({ key: 'k', v: `é${long}`, m: [long, `é${long}`], l: [long, `é${long}`] }));
  assert.throws(() => h.process('k', new Uint8Array([0x7b, 0xff, 0x7d])), /record 0: record value .* is not UTF-8/);
});
