// The word-count operator through the SDK's harness: unit tests and the golden files of the
// Rust example (examples/word-count), which this port must reproduce byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Harness, runJsonLines } from 'eddy-sdk/testing';
import { operator } from './operator.js';

const example = new URL('../../word-count/', import.meta.url);

test('counts per word', () => {
  const h = new Harness(operator);
  const emitted = ['the', 'cat', 'the', 'hat', 'the'].flatMap((w) => h.processText(w, w));
  assert.deepEqual(emitted, [
    ['the', '1'],
    ['cat', '1'],
    ['the', '2'],
    ['hat', '1'],
    ['the', '3'],
  ]);
  assert.equal(h.value('count', 'the'), 3);
  assert.equal(h.value('count', 'dog'), undefined);
});

test('emit-every aggregates, and bad configs are refused', () => {
  const h = new Harness(operator, { config: { 'emit-every': 2 } });
  const emitted = ['a', 'a', 'b', 'a', 'a', 'b'].flatMap((w) => h.processText(w, w));
  assert.deepEqual(emitted, [
    ['a', '2'],
    ['a', '4'],
    ['b', '2'],
  ]);
  for (const bad of [{ 'emit-every': 0 }, { 'emit-every': -1 }, { 'emit-every': 1.5 }, { 'emit-every': 'x' }, { other: 1 }]) {
    const h = new Harness(operator, { config: bad });
    assert.equal(h.initError?.kind, 'invalid-config', JSON.stringify(bad));
  }
});

test('counts within one batch see each other', () => {
  const h = new Harness(operator);
  const batch = h.processBatch(['a', 'b', 'a', 'a'].map((key) => ({ key, value: '' })));
  assert.deepEqual(
    batch.map((emits) => emits[0].valueText),
    ['1', '1', '2', '3'],
  );
});

test('binary keys are fine', () => {
  const h = new Harness(operator);
  const [e] = h.process(new Uint8Array([0xff, 0x00]), '');
  assert.deepEqual([...e.key], [0xff, 0x00]);
  assert.equal(e.valueText, '1');
});

test('golden input gives the Rust example expected output', () => {
  const input = readFileSync(new URL('input.jsonl', example), 'utf8');
  const expected = readFileSync(new URL('expected-output.jsonl', example), 'utf8');
  assert.equal(runJsonLines(new Harness(operator), input), expected);
});
