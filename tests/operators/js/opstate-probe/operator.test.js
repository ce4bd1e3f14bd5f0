// The JavaScript opstate probe through the SDK's harness: the Rust probe's unit tests, and
// what tests/tests/integration/operator_state.rs expects of one worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Harness } from 'eddy-sdk/testing';
import { operator } from './operator.js';

function send(h, key, op, item) {
  return h.processText(key, JSON.stringify({ key, op, item }));
}

function fails(message) {
  return (error) => error.kind === 'failed' && error.message === message;
}

test('states are declared as documented', () => {
  const h = new Harness(operator);
  assert.equal(h.info.name, 'opstate-probe');
  assert.equal(h.info.version, '0.1.0');
  assert.deepEqual(h.info.states, []);
  assert.deepEqual(
    h.info.operatorStates.map((s) => [s.name, s.redistribution, s.codec, s.schemaVersion]),
    [
      ['buffer', 'even-split', 'json', 1],
      ['rules', 'union', 'json', 1],
    ],
  );
});

test('items are added whatever the key and dumped sorted', () => {
  const h = new Harness(operator);
  assert.deepEqual(send(h, 'a', 'buffer', 'y'), []);
  send(h, 'b', 'buffer', 'x');
  send(h, 'a', 'rule', 'r2');
  send(h, 'c', 'rule', 'r1');
  assert.deepEqual(send(h, 'z', 'dump', ''), [['z', '{"buffer":["x","y"],"rules":["r1","r2"]}']]);
  assert.deepEqual(h.operatorList('buffer'), ['y', 'x']); // insertion order; dump sorts
  send(h, 'a', 'clear-buffer', '');
  assert.equal(send(h, 'a', 'dump', '')[0][1], '{"buffer":[],"rules":["r1","r2"]}');
});

test('dump sorts by code point (as Rust sorts Strings) and writes JSON as serde does', () => {
  const h = new Harness(operator);
  for (const it of ['b', '\u{1F600}', '\uFB01', 'B', 'a"b', 'é']) send(h, 'k', 'buffer', it);
  assert.equal(send(h, 'k', 'dump', '')[0][1], '{"buffer":["B","a\\"b","b","é","\uFB01","\u{1F600}"],"rules":[]}');
});

test('a failing record leaves no trace', () => {
  const h = new Harness(operator);
  send(h, 'a', 'buffer', 'kept');
  assert.throws(
    () =>
      h.processBatch([
        { key: 'a', value: '{"key":"a","op":"buffer","item":"lost"}' },
        { key: 'b', value: '{"key":"b","op":"fail","item":"lost too"}' },
      ]),
    fails('record 1: opstate-probe: asked to fail'),
  );
  assert.deepEqual(h.operatorList('buffer'), ['kept']);
  assert.throws(() => h.process('a', '{"key":"a","op":"buffer"}'), fails('record 0: opstate-probe: `buffer` needs a string `item`'));
});

test('malformed commands fail the record', () => {
  const h = new Harness(operator);
  for (const value of ['{"op":"nope"}', '{"item":"x"}', '{"op":5}', '{"op":"buffer","item":true}', '"dump"', '[]', 'not json']) {
    assert.throws(() => h.process('k', value), /record 0: /, value);
  }
  assert.deepEqual(h.processText('k', '{"op":"dump","other":[1]}'), [['k', '{"buffer":[],"rules":[]}']]);
});

test('a new instance logs what it starts with', () => {
  const h = new Harness(operator);
  assert.equal(h.logs.at(-1).message, 'opstate-probe: init sees buffer=0 rules=0');
  assert.equal(h.logs.at(-1).level, 'info');
  h.setOperatorList('rules', ['r']);
  send(h, 'a', 'buffer', 'x');
  send(h, 'a', 'buffer', 'y');
  h.withConfig('{}');
  assert.equal(h.logs.at(-1).message, 'opstate-probe: init sees buffer=2 rules=1');
});

test('the integration script of one worker', () => {
  // operator_state.rs, operator_state_survives_a_restart_and_a_failing_call_leaves_no_trace
  const h = new Harness(operator);
  send(h, 'a', 'buffer', 'b1');
  send(h, 'b', 'rule', 'r1');
  send(h, 'c', 'buffer', 'b2');
  assert.throws(() => send(h, 'a', 'fail', 'never'), fails('record 0: opstate-probe: asked to fail'));
  const want = '{"buffer":["b1","b2"],"rules":["r1"]}';
  assert.deepEqual(send(h, 'd', 'dump', ''), [['d', want]]);
  h.withConfig('{}'); // a restart
  assert.equal(h.logs.at(-1).message, 'opstate-probe: init sees buffer=2 rules=1');
  assert.deepEqual(send(h, 'e', 'dump', ''), [['e', want]]);
});
