// Native tests of the operator (Node, no Wasm): `eddy test`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Harness, runJsonLines } from 'eddy-sdk/testing';
import { operator } from './operator.js';

test('counts per key', () => {
  const h = new Harness(operator);
  h.processText('to', '');
  h.processText('be', '');
  assert.deepEqual(h.processText('to', ''), [['to', '2']]);
});

test('the input gives the expected output', () => {
  const read = (name) => readFileSync(new URL(name, import.meta.url), 'utf8');
  assert.equal(runJsonLines(new Harness(operator), read('input.jsonl')), read('expected-output.jsonl'));
});
