// `top-n` in JavaScript: keeps the `n` best-scoring items of every category and emits the
// ranking when it changes. A port of examples/top-n (Rust); same input, same output.
//
// Input: key = the category; value = `{"category":"c","item":"x","score":12}`. Output, keyed
// by the category, whenever the ranking changes:
// `{"category":"c","top":[{"item":"x","score":12},{"item":"y","score":7}]}` — best first,
// equal scores by item name. An item already ranked keeps its best score; an item that
// dropped out of the ranking is forgotten. Config: `{"n": 3}` (the default; 1 to 1000).
//
// State: `top`, a list per category of `[item, score]`, best first (JSON).

import { OperatorError, compareUtf8, decodeUtf8Lossy, defineOperator, encodeUtf8 } from 'eddy-sdk';

/** The default `n`. */
export const DEFAULT_N = 3;
/** The largest `n` accepted (the whole ranking is read and written per record). */
export const MAX_N = 1000;

/**
 * `ranking` with `item` scored `score`: best first, ties by item name, at most `n` long.
 * @param {Array<[string, number]>} ranking
 */
export function rank(ranking, item, score, n) {
  const next = ranking.map(([i, s]) => /** @type {[string, number]} */ ([i, s]));
  const ranked = next.find(([i]) => i === item);
  if (ranked !== undefined) ranked[1] = Math.max(ranked[1], score);
  else next.push([item, score]);
  next.sort((a, b) => b[1] - a[1] || compareUtf8(a[0], b[0]));
  return next.slice(0, n);
}

function sameRanking(a, b) {
  return a.length === b.length && a.every(([i, s], k) => i === b[k][0] && s === b[k][1]);
}

/** Reads `{"n": …}` (1 to MAX_N, default 3); anything else is an invalid config. */
export function parseConfig(config) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw OperatorError.invalidConfig('top-n config: expected a table');
  }
  for (const key of Object.keys(config)) {
    if (key !== 'n') throw OperatorError.invalidConfig(`top-n config: unknown field \`${key}\`, expected \`n\``);
  }
  const n = config.n ?? DEFAULT_N;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_N) {
    throw OperatorError.invalidConfig(`top-n config: n must be between 1 and ${MAX_N}, got ${JSON.stringify(n)}`);
  }
  return { n };
}

/** The record's value as `{category, item, score}`; anything else is an error. */
function parseInput(record) {
  const input = record.json();
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TypeError('expected an object {"category", "item", "score"}');
  }
  for (const field of ['category', 'item']) {
    if (typeof input[field] !== 'string') throw new TypeError(`missing or invalid field \`${field}\` (a string)`);
  }
  if (!Number.isSafeInteger(input.score)) throw new TypeError('missing or invalid field `score` (an integer)');
  return input;
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export const operator = defineOperator({
  name: 'top-n',
  version: '0.1.0',
  open(states) {
    const top = states.list('top');
    let n = DEFAULT_N;
    return {
      init(config) {
        ({ n } = parseConfig(config));
      },
      process(ctx, record) {
        const { category, item, score } = parseInput(record);
        if (!sameBytes(encodeUtf8(category), record.key)) {
          const key = decodeUtf8Lossy(record.key);
          throw OperatorError.failed(
            `category ${JSON.stringify(category)} does not match the record key ${JSON.stringify(key)}; key the stream by category`,
          );
        }
        const before = top.get();
        const after = rank(before, item, score, n);
        if (sameRanking(after, before)) return;
        top.update(after);
        const ranking = { category, top: after.map(([i, s]) => ({ item: i, score: s })) };
        ctx.emit(record.key, JSON.stringify(ranking));
      },
    };
  },
});
