// `word-count` in JavaScript: counts the records of every key (a word) and emits the
// running count. A port of examples/word-count (Rust); same input, same output.
//
// Input: key = the word (the value is ignored). Output: key = the word, value = how many
// times it has been seen so far, as decimal text. State: `count`, a number per word (JSON).
// Config: `{"emit-every": n}` emits a word's count only on every n-th occurrence; the
// default, 1, emits on every record.

import { defineOperator, OperatorError } from 'eddy-sdk';

/** Reads `{"emit-every": n}` (n >= 1, default 1); anything else is an invalid config. */
export function parseConfig(config) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw OperatorError.invalidConfig('word-count config: expected a table');
  }
  for (const key of Object.keys(config)) {
    if (key !== 'emit-every') {
      throw OperatorError.invalidConfig(`word-count config: unknown field \`${key}\`, expected \`emit-every\``);
    }
  }
  const emitEvery = config['emit-every'] ?? 1;
  if (!Number.isSafeInteger(emitEvery) || emitEvery < 0) {
    throw OperatorError.invalidConfig(
      `word-count config: emit-every must be a whole number, got ${JSON.stringify(emitEvery)}`,
    );
  }
  if (emitEvery === 0) {
    throw OperatorError.invalidConfig('word-count config: emit-every must be at least 1');
  }
  return { emitEvery };
}

export const operator = defineOperator({
  name: 'word-count',
  version: '0.1.0',
  open(states) {
    const count = states.value('count');
    let emitEvery = 1;
    return {
      init(config) {
        ({ emitEvery } = parseConfig(config));
      },
      process(ctx, record) {
        const n = count.getOr(0) + 1;
        count.set(n);
        if (n % emitEvery === 0) ctx.emit(record.key, String(n));
      },
    };
  },
});
