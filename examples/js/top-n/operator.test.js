// The top-n operator through the SDK's harness: unit tests and the golden files of the Rust
// example (examples/top-n), which this port must reproduce byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Harness, runJsonLines } from 'eddy-sdk/testing';
import { operator, rank } from './operator.js';

const example = new URL('../../top-n/', import.meta.url);

function score(h, category, item, s) {
  const emitted = h.process(category, JSON.stringify({ category, item, score: s }));
  assert.ok(emitted.length <= 1);
  return emitted[0]?.valueText;
}

test('ranks best first and emits only changes', () => {
  const h = new Harness(operator);
  assert.equal(score(h, 'c', 'a', 1), '{"category":"c","top":[{"item":"a","score":1}]}');
  score(h, 'c', 'b', 3);
  score(h, 'c', 'c', 2);
  assert.equal(score(h, 'c', 'd', 0), undefined);
  assert.equal(score(h, 'c', 'b', 1), undefined, 'an item keeps its best score');
  assert.equal(
    score(h, 'c', 'd', 5),
    '{"category":"c","top":[{"item":"d","score":5},{"item":"b","score":3},{"item":"c","score":2}]}',
  );
  assert.deepEqual(h.list('top', 'c'), [['d', 5], ['b', 3], ['c', 2]]);
  assert.deepEqual(h.list('top', 'other'), []);
});

test('ties go by item name, in byte order', () => {
  let ranking = rank([], 'z', 1, 2);
  ranking = rank(ranking, 'y', 1, 2);
  ranking = rank(ranking, 'x', 1, 2);
  assert.deepEqual(ranking, [['x', 1], ['y', 1]]);
  // U+FF5A sorts before U+1F600 in UTF-8 (and in Rust), though not in UTF-16.
  assert.deepEqual(rank(rank([], '\u{1F600}', 1, 2), '\uFF5A', 1, 2), [['\uFF5A', 1], ['\u{1F600}', 1]]);
});

test('config sets and checks n', () => {
  const h = new Harness(operator, { config: { n: 1 } });
  score(h, 'c', 'a', 1);
  assert.equal(score(h, 'c', 'b', 0), undefined);
  score(h, 'c', 'b', 2);
  assert.deepEqual(h.list('top', 'c'), [['b', 2]]);
  for (const bad of ['{"n": 0}', '{"n": 1001}', '{"m": 2}', '{"n": -1}', '{"n": 1.5}']) {
    assert.equal(new Harness(operator, { config: bad }).initError?.kind, 'invalid-config', bad);
  }
});

test('bad input is an error', () => {
  const h = new Harness(operator);
  assert.throws(() => h.process('c', '{"category":"c","item":"a"}'), /record 0: .*score/);
  assert.throws(
    () => h.process('d', '{"category":"c","item":"a","score":1}'),
    /category "c" does not match the record key "d"/,
  );
  assert.throws(() => h.process('c', 'not json'), /record 0: SyntaxError/);
});

test('golden input gives the Rust example expected output', () => {
  const input = readFileSync(new URL('input.jsonl', example), 'utf8');
  const expected = readFileSync(new URL('expected-output.jsonl', example), 'utf8');
  assert.equal(runJsonLines(new Harness(operator), input), expected);
});
