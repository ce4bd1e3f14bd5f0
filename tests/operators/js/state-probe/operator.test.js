// The JavaScript state probe through the SDK's harness: the Rust probe's unit tests, and
// the script of tests/tests/integration/state_semantics.rs with its expected answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Harness } from 'eddy-sdk/testing';
import { formatF64, operator } from './operator.js';

function run(h, key, command) {
  const emitted = h.process(key, JSON.stringify(command));
  assert.equal(emitted.length, 1, JSON.stringify(command));
  return emitted[0].valueText;
}

test('value commands', () => {
  const h = new Harness(operator);
  assert.equal(run(h, 'k', { op: 'value-get' }), '{"value":null}');
  assert.equal(run(h, 'k', { op: 'value-set', v: 'x' }), '{"ok":true}');
  assert.equal(run(h, 'k', { op: 'value-get' }), '{"value":"x"}');
  assert.equal(run(h, 'j', { op: 'value-get' }), '{"value":null}');
  run(h, 'k', { op: 'value-clear' });
  assert.equal(run(h, 'k', { op: 'value-get' }), '{"value":null}');
});

test('map commands page through entries in the byte order of the JSON keys', () => {
  const h = new Harness(operator);
  assert.equal(run(h, 'k', { op: 'map-is-empty' }), '{"value":true}');
  for (const [k, v] of [['b', '2'], ['a', '1'], ['cc', '3'], ['d', '4'], ['e', '5']]) {
    run(h, 'k', { op: 'map-put', k, v });
  }
  assert.equal(run(h, 'k', { op: 'map-get', k: 'a' }), '{"value":"1"}');
  assert.equal(run(h, 'k', { op: 'map-get', k: 'z' }), '{"value":null}');
  assert.equal(run(h, 'k', { op: 'map-contains', k: 'cc' }), '{"value":true}');
  // JSON keys: "a" < "b" < "cc" < "d" < "e" (the postcard-encoded Rust probe puts "cc" last).
  const all = '{"value":[["a","1"],["b","2"],["cc","3"],["d","4"],["e","5"]]}';
  assert.equal(run(h, 'k', { op: 'map-entries' }), all);
  for (const page of [0, 1, 2, 4]) assert.equal(run(h, 'k', { op: 'map-entries', page }), all);
  assert.equal(run(h, 'k', { op: 'map-keys', page: 2 }), '{"value":["a","b","cc","d","e"]}');
  run(h, 'k', { op: 'map-remove', k: 'a' });
  assert.equal(run(h, 'k', { op: 'map-contains', k: 'a' }), '{"value":false}');
  run(h, 'k', { op: 'map-clear' });
  assert.equal(run(h, 'k', { op: 'map-is-empty' }), '{"value":true}');
  assert.equal(run(h, 'k', { op: 'map-keys' }), '{"value":[]}');
});

test('list commands', () => {
  const h = new Harness(operator);
  run(h, 'k', { op: 'list-add', v: 'a' });
  run(h, 'k', { op: 'list-add-all', vs: ['b', 'c'] });
  assert.equal(run(h, 'k', { op: 'list-get' }), '{"value":["a","b","c"]}');
  run(h, 'k', { op: 'list-update', vs: ['z'] });
  assert.equal(run(h, 'k', { op: 'list-get' }), '{"value":["z"]}');
  run(h, 'k', { op: 'list-clear' });
  assert.equal(run(h, 'k', { op: 'list-get' }), '{"value":[]}');
});

test('reducing and aggregating commands', () => {
  const h = new Harness(operator);
  assert.equal(run(h, 'k', { op: 'reducing-get' }), '{"value":null}');
  run(h, 'k', { op: 'reducing-add', n: 5 });
  run(h, 'k', { op: 'reducing-add', n: -7 });
  assert.equal(run(h, 'k', { op: 'reducing-get' }), '{"value":-2}');
  assert.equal(run(h, 'k', { op: 'aggregating-get' }), '{"value":null}');
  run(h, 'k', { op: 'aggregating-add', n: 1 });
  run(h, 'k', { op: 'aggregating-add', n: 2 });
  assert.equal(run(h, 'k', { op: 'aggregating-get' }), '{"value":1.5}');
  run(h, 'k', { op: 'aggregating-add', n: 3 });
  assert.equal(run(h, 'k', { op: 'aggregating-get' }), '{"value":2.0}', 'an integral mean is a float, as serde_json writes it');
});

test('floats are written as serde_json writes them', () => {
  const cases = [
    [1.5, '1.5'], [2, '2.0'], [-2, '-2.0'], [0, '0.0'], [0.1, '0.1'], [1e15, '1000000000000000.0'],
    [1e16, '1e+16'], [1.5e16, '1.5e+16'], [-1.5e300, '-1.5e+300'], [123456.789, '123456.789'], [0.0001, '0.0001'],
    [0.00001, '0.00001'], [0.000001, '1e-6'], [-0, '-0.0'], [1.25e-7, '1.25e-7'], [1 / 3, '0.3333333333333333'], [NaN, 'null'],
  ];
  for (const [x, text] of cases) assert.equal(formatF64(x), text, String(x));
});

test('record and emit commands', () => {
  const h = new Harness(operator);
  let [e] = h.processRecord({ key: 'k', value: '{"op":"headers"}', headers: [['b', '2'], ['a', '1'], ['10', 'x'], ['9', 'y']] });
  assert.equal(e.valueText, '{"value":{"10":"x","9":"y","a":"1","b":"2"}}');
  [e] = h.processRecord({ key: 'k', value: '{"op":"timestamp"}', timestamp: 77 });
  assert.equal(e.valueText, '{"value":77}');
  [e] = h.process('k', '{"op":"emit-headers","headers":{"x":"1","b":"2"}}');
  assert.deepEqual(e.headers, [['b', '2'], ['x', '1']]);
  assert.equal(e.valueText, '{"ok":true}');
  const many = h.process('k', '{"op":"emit-many","n":3}').map((x) => x.valueText);
  assert.deepEqual(many, ['{"index":0}', '{"index":1}', '{"index":2}']);
  run(h, 'k', { op: 'log', v: 'hi' });
  assert.equal(h.logs.at(-1).message, 'hi');
  assert.equal(h.logs.at(-1).level, 'info');
});

test('fail discards the batch', () => {
  const h = new Harness(operator);
  assert.throws(
    () =>
      h.processBatch([
        { key: 'k', value: '{"op":"value-set","v":"x"}' },
        { key: 'k', value: '{"op":"map-put","k":"a","v":"1"}' },
        { key: 'k', value: '{"op":"fail"}' },
      ]),
    (error) => error.kind === 'failed' && error.message === 'record 2: state-probe: asked to fail',
  );
  assert.equal(run(h, 'k', { op: 'value-get' }), '{"value":null}');
  assert.equal(run(h, 'k', { op: 'map-is-empty' }), '{"value":true}');
  for (const nonsense of ['{"op":"nonsense"}', 'not json', '{"op":"value-set"}', '{"op":"reducing-add","n":1.5}']) {
    assert.throws(() => h.process('k', nonsense), /record 0: /);
  }
});

test('write-then-trap traps, and the harness rebuilds the instance', () => {
  const h = new Harness(operator);
  run(h, 'a', { op: 'value-set', v: 'before' });
  assert.throws(() => h.process('a', '{"op":"write-then-trap","v":"bad"}'), /operator trapped: state-probe: asked to trap/);
  assert.throws(() => h.process('a', '{"op":"write-then-fail","v":"bad"}'), /asked to fail after writing/);
  assert.equal(run(h, 'a', { op: 'value-get' }), '{"value":"before"}');
  assert.equal(run(h, 'a', { op: 'list-get' }), '{"value":[]}');
  assert.equal(run(h, 'a', { op: 'map-entries' }), '{"value":[]}');
});

test('the integration script gives the expected answers in batches of 4', () => {
  const value = (v) => ({ value: v });
  const ok = { ok: true };
  const script = [
    ['a', { op: 'value-get' }, value(null)],
    ['a', { op: 'value-set', v: 'x' }, ok],
    ['a', { op: 'value-get' }, value('x')],
    ['b', { op: 'value-get' }, value(null)],
    ['a', { op: 'value-clear' }, ok],
    ['a', { op: 'value-get' }, value(null)],
    ['a', { op: 'value-set', v: 'kept' }, ok],
    ['a', { op: 'map-put', k: 'k1', v: 'v1' }, ok],
    ['a', { op: 'map-put', k: 'k2', v: 'v2' }, ok],
    ['a', { op: 'map-put', k: 'k10', v: 'v10' }, ok],
    ['a', { op: 'map-put', k: 'k1', v: 'v1b' }, ok],
    ['a', { op: 'map-get', k: 'k1' }, value('v1b')],
    ['b', { op: 'map-get', k: 'k1' }, value(null)],
    ['a', { op: 'map-contains', k: 'k2' }, value(true)],
    ['a', { op: 'map-remove', k: 'k2' }, ok],
    ['a', { op: 'map-contains', k: 'k2' }, value(false)],
    ['a', { op: 'map-entries', page: 1 }, value([['k1', 'v1b'], ['k10', 'v10']])],
    ['a', { op: 'map-keys' }, value(['k1', 'k10'])],
    ['a', { op: 'map-is-empty' }, value(false)],
    ['b', { op: 'map-is-empty' }, value(true)],
    ['c', { op: 'map-put', k: 'z', v: '1' }, ok],
    ['c', { op: 'map-clear' }, ok],
    ['c', { op: 'map-is-empty' }, value(true)],
    ['c', { op: 'map-entries' }, value([])],
    ['a', { op: 'list-get' }, value([])],
    ['a', { op: 'list-add', v: 'x' }, ok],
    ['a', { op: 'list-add-all', vs: ['y', 'z'] }, ok],
    ['a', { op: 'list-get' }, value(['x', 'y', 'z'])],
    ['b', { op: 'list-get' }, value([])],
    ['c', { op: 'list-update', vs: ['q'] }, ok],
    ['c', { op: 'list-get' }, value(['q'])],
    ['c', { op: 'list-clear' }, ok],
    ['c', { op: 'list-get' }, value([])],
    ['a', { op: 'reducing-get' }, value(null)],
    ['a', { op: 'reducing-add', n: 5 }, ok],
    ['a', { op: 'reducing-add', n: 7 }, ok],
    ['a', { op: 'reducing-get' }, value(12)],
    ['a', { op: 'aggregating-add', n: 1 }, ok],
    ['a', { op: 'aggregating-add', n: 2 }, ok],
    ['a', { op: 'aggregating-get' }, value(1.5)],
  ];
  const h = new Harness(operator);
  const answers = [];
  for (let i = 0; i < script.length; i += 4) {
    const batch = script.slice(i, i + 4).map(([key, c]) => ({ key, value: JSON.stringify(c) }));
    for (const emits of h.processBatch(batch)) answers.push(...emits.map((e) => [e.keyText, e.json()]));
  }
  assert.deepEqual(
    answers,
    script.map(([key, , want]) => [key, want]),
  );
});
