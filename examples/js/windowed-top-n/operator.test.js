// The windowed-top-n operator through the SDK's harness: unit tests and the golden files of
// the Rust example (examples/windowed-top-n), which this port must reproduce byte for byte,
// the late-data output included.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Harness, eventTimeOf, runEventTime } from 'eddy-sdk/testing';
import { countViews, operator } from './operator.js';

const example = new URL('../../windowed-top-n/', import.meta.url);
const MAX = 9223372036854775807; // the watermark at the end of the input

function view(h, category, at, product) {
  return h.processRecord({ key: category, value: product, timestamp: at }).map((e) => e.valueText);
}

function rankings(h, watermark) {
  return h.advanceWatermark(watermark).map((e) => `${e.keyText}: ${e.valueText}`);
}

test('ranks each minute by count, then name', () => {
  const h = new Harness(operator, { config: { n: 2 } });
  for (const [at, product] of [[1, 'b'], [2, 'c'], [3, 'a'], [4, 'c'], [59999, 'a']]) {
    assert.deepEqual(view(h, 'x', at, product), []);
  }
  view(h, 'x', 60000, 'z');
  view(h, 'y', 5, 'q');
  assert.deepEqual(rankings(h, 59999), [
    'x: {"category":"x","start":0,"end":60000,"late":false,"top":[{"product":"a","count":2},{"product":"c","count":2}]}',
    'y: {"category":"y","start":0,"end":60000,"late":false,"top":[{"product":"q","count":1}]}',
  ]);
  assert.deepEqual(rankings(h, MAX), [
    'x: {"category":"x","start":60000,"end":120000,"late":false,"top":[{"product":"z","count":1}]}',
  ]);
  assert.deepEqual(h.timers(), []);
});

test('a late view within the lateness emits the minute again', () => {
  const h = new Harness(operator, { config: { 'allowed-lateness-ms': 1000 } });
  view(h, 'x', 10, 'a');
  assert.equal(rankings(h, 59999).length, 1);
  assert.deepEqual(view(h, 'x', 20, 'b'), [
    '{"category":"x","start":0,"end":60000,"late":true,"top":[{"product":"a","count":1},{"product":"b","count":1}]}',
  ]);
  rankings(h, 60999);
  assert.deepEqual(view(h, 'x', 30, 'c'), [], 'dropped');
  assert.ok(h.logs.some((l) => l.level === 'warn' && l.message === 'view of "c" at 30 dropped as too late'));
  assert.ok(!h.hasState('x'));
});

test('the minutes are the state `views/windows`, a count per product', () => {
  const h = new Harness(operator);
  view(h, 'x', 10, 'a');
  view(h, 'x', 11, ' a ');
  view(h, 'x', 12, 'b');
  assert.deepEqual(h.value('views/windows', 'x'), [[0, 60000, true, { a: 2, b: 1 }]]);
});

test('any product name counts, in byte order', () => {
  const counts = countViews.createAccumulator();
  for (const product of ['__proto__', 'toString', '__proto__', 'constructor', '10', '9', '\u{1F600}', '\uFF5A']) {
    countViews.add(product, counts);
  }
  assert.deepEqual(countViews.getResult(JSON.parse(JSON.stringify(counts))), [
    ['__proto__', 2],
    ['10', 1],
    ['9', 1],
    ['constructor', 1],
    ['toString', 1],
    ['\uFF5A', 1],
    ['\u{1F600}', 1],
  ]);
  // Through the state too (JSON: an own `__proto__` key stays one).
  const h = new Harness(operator);
  view(h, 'x', 1, '__proto__');
  view(h, 'x', 2, '__proto__');
  view(h, 'x', 3, 'hasOwnProperty');
  assert.deepEqual(rankings(h, MAX), [
    'x: {"category":"x","start":0,"end":60000,"late":false,"top":[{"product":"__proto__","count":2},{"product":"hasOwnProperty","count":1}]}',
  ]);
});

test('config is checked', () => {
  for (const bad of ['{"n": 0}', '{"n": 1001}', '{"allowed-lateness-ms": -1}', '{"allowed-lateness-ms": 0.5}', '{"size": 1}', '[]']) {
    assert.equal(new Harness(operator, { config: bad }).initError?.kind, 'invalid-config', bad);
  }
  assert.equal(
    new Harness(operator, { config: '{"allowed-lateness-ms": -1}' }).initError.message,
    'windowed-top-n config: window `views`: the allowed lateness must not be negative, got -1 ms',
  );
});

test('an empty product is an error', () => {
  const h = new Harness(operator);
  assert.throws(() => h.process('x', ' '), /record 0: the value must name a product/);
});

test('golden input gives the Rust example expected output and late data', () => {
  const job = readFileSync(new URL('job.toml', import.meta.url), 'utf8');
  // runEventTime reads `[event-time]` but not `[operator] config`: the same config here.
  assert.ok(job.includes('config = { n = 10, allowed-lateness-ms = 30000 }'));
  const h = new Harness(operator, { config: { n: 10, 'allowed-lateness-ms': 30000 } });
  const input = readFileSync(new URL('input.jsonl', example), 'utf8');
  const { output, late } = runEventTime(h, input, eventTimeOf(job));
  assert.equal(output, readFileSync(new URL('expected-output.jsonl', example), 'utf8'));
  assert.equal(late, readFileSync(new URL('expected-late.jsonl', example), 'utf8'));
  assert.deepEqual(h.timers(), []);
  for (const category of ['books', 'games']) assert.ok(!h.hasState(category));
});
