// The JavaScript timer probe through the SDK's harness: the Rust probe's unit test, and the
// timer script of tests/tests/integration/event_time.rs.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Harness } from 'eddy-sdk/testing';
import { commandOf, operator, parse } from './operator.js';

function lines(emitted) {
  return emitted.map((e) => `${e.keyText}: ${e.valueText}`);
}

test('states are declared', () => {
  const h = new Harness(operator);
  assert.equal(h.info.name, 'timer-probe');
  assert.equal(h.info.version, '0.1.0');
  assert.deepEqual(
    h.info.states.map((s) => [s.name, s.kind, s.ttl]),
    [
      ['records', 'value', null],
      ['fired', 'value', null],
      ['fail', 'value', null],
      ['chains', 'value', null],
      ['show-watermark', 'value', null],
    ],
  );
});

test('timers fire in order once with their key’s state', () => {
  const h = new Harness(operator);
  h.process('a', 'event:300');
  h.process('b', 'event:100');
  h.process('a', 'event:300'); // twice: fires once
  h.process('b', 'event:200');
  h.process('b', 'unevent:200');
  assert.deepEqual(lines(h.advanceWatermark(1_000)), [
    'b: fired event 100 records=3 fired=1',
    'a: fired event 300 records=2 fired=1',
  ]);
  assert.deepEqual(h.advanceWatermark(5_000), []);
});

test('the integration timer script', () => {
  // event_time.rs, timers_fire_in_timestamp_order_once_each_with_their_keys_state: the
  // watermark before each record is the previous record's timestamp - 1.
  const script = [
    ['a', 'event:3000', 1000],
    ['b', 'event:2000', 1100],
    ['a', 'event:3000', 1200],
    ['c', 'event:2500', 1300],
    ['c', 'unevent:2500', 1400],
    ['d', 'chain:2', 1450],
    ['d', 'event:2000', 1500],
    ['e', 'processing:0', 1600],
    ['b', 'x', 2500],
    ['b', 'y', 5000],
    ['a', 'z', 9000],
  ];
  const h = new Harness(operator);
  const out = [];
  let previous = null;
  for (const [key, value, timestamp] of script) {
    if (previous !== null) out.push(...h.advanceWatermark(previous - 1));
    out.push(...h.processRecord({ key, value, timestamp }));
    previous = timestamp;
  }
  out.push(...h.advanceWatermark(Number.MAX_SAFE_INTEGER));
  assert.deepEqual(
    lines(out).filter((l) => l.includes(' event ')),
    [
      'b: fired event 2000 records=2 fired=1',
      'd: fired event 2000 records=2 fired=1',
      'a: fired event 3000 records=2 fired=1',
      'd: fired event 3000 records=2 fired=2',
      'd: fired event 4000 records=2 fired=3',
    ],
  );
  assert.deepEqual(lines(h.advanceProcessingTime(1)), ['e: fired processing 0 records=1 fired=1']);
});

test('a failing timer fails, naming the timer', () => {
  const h = new Harness(operator);
  h.processRecord({ key: 'f', value: 'fail-timer', timestamp: 100 });
  h.processRecord({ key: 'f', value: 'event:500', timestamp: 200 });
  h.processRecord({ key: 'g', value: 'event:500', timestamp: 300 });
  assert.throws(
    () => h.advanceWatermark(999),
    (e) => e.kind === 'failed' && e.message === 'timer 0 (EventTime 500): asked to fail this timer',
  );
});

test('JSON values, show-watermark and after', () => {
  const h = new Harness(operator);
  h.processRecord({ key: 'k', value: '{"cmd":"show-watermark"}', timestamp: 10 });
  h.processRecord({ key: 'k', value: '{"k":"k","ts":20,"cmd":"after:1000"}', timestamp: 20 });
  h.processRecord({ key: 'k', value: '{"no":"cmd"}', timestamp: 30 }); // only counts
  assert.deepEqual(lines(h.advanceWatermark(1_500)), ['k: fired event 1020 records=3 fired=1 watermark=1500']);
  h.process('p', 'show-watermark');
  h.process('p', 'processing:5');
  assert.deepEqual(lines(h.advanceProcessingTime(10)), ['p: fired processing 5 records=2 fired=1 watermark=1500']);
  assert.equal(h.value('records', 'k'), 3);
  assert.equal(h.value('show-watermark', 'k'), true);
});

test('a processing-time timer before any watermark shows i64::MIN as Rust writes it', () => {
  const h = new Harness(operator);
  h.process('p', 'show-watermark');
  h.process('p', 'processing:5');
  assert.deepEqual(lines(h.advanceProcessingTime(10)), [
    'p: fired processing 5 records=2 fired=1 watermark=-9223372036854775808',
  ]);
});

test('arguments are read as Rust reads them', () => {
  const h = new Harness(operator);
  for (const bad of ['event:', 'event:1.5', 'event: 5', 'after:x', 'chain:9223372036854775808', 'event:1_0']) {
    assert.throws(() => h.process('k', bad), (e) => e.kind === 'failed', bad);
  }
  // A failing record leaves no trace: not counted, no timer.
  assert.equal(h.value('records', 'k'), undefined);
  assert.deepEqual(h.timers(), []);
  assert.equal(parse('+0007'), 7n);
  assert.equal(parse('-9223372036854775808'), -(2n ** 63n));
  assert.equal(parse('00000000000000000000000000001'), 1n);
  h.process('k', 'event:+0007');
  assert.deepEqual(
    h.timers().map((t) => t.timestamp),
    [7],
  );
  h.process('k', 'chain:-1');
  assert.equal(h.value('chains', 'k'), 2 ** 64); // u64::MAX, as near as a number gets
  // Values that are not a JSON object with a string `cmd` are commands as they are.
  for (const value of ['{"cmd":"event:1"} x', '{"cmd":"event:1","x":NaN}', '{"cmd":5}', ' {"cmd":"event:1"}']) {
    assert.equal(commandOf(value), value);
  }
  assert.equal(commandOf('{"cmd":"event:1","x":[1]} \n'), 'event:1');
});
