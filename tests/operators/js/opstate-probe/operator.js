// `opstate-probe` in JavaScript: non-keyed operator state, for the host's operator-state
// calls, checkpoints and redistribution. A port of the Rust fixture
// tests/operators/opstate-probe/src/lib.rs (the integration tests in
// tests/tests/integration/operator_state.rs run unchanged against both).
//
// Operator states (lists of strings, JSON codec, schema version 1):
// - `buffer`, redistributed by even split;
// - `rules`, redistributed by union.
//
// Input: JSON records `{"key": …, "op": …, "item": …}`:
//
// | op | does | emits |
// |----|------|-------|
// | `buffer` | adds `item` to `buffer` | nothing |
// | `rule` | adds `item` to `rules` | nothing |
// | `clear-buffer` | empties `buffer` (an update with an empty list) | nothing |
// | `dump` | reads both | `{"buffer":[…],"rules":[…]}` under the record key, each list sorted |
// | `fail` | adds `item` to `buffer`, then returns an error | nothing (the call fails) |
//
// When an instance starts, `initState` reads both lists and logs
// `opstate-probe: init sees buffer=<n> rules=<m>` at info. No config.
//
// The command is checked for what the probe needs (`op` a string, `item` a string or null,
// other fields ignored); no test reads the messages of malformed ones.

import { Codec, OperatorError, Redistribution, compareUtf8, defineOperator } from 'eddy-sdk';

// -- the command ----------------------------------------------------------------------------

/** The string fields `names` of a JSON object (`null` when absent); anything else fails. */
export function stringFields(doc, names) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw OperatorError.failed('expected a JSON object');
  }
  const out = {};
  for (const name of names) {
    const value = doc[name] ?? null;
    if (value !== null && typeof value !== 'string') {
      throw OperatorError.failed(`field \`${name}\`: expected a string`);
    }
    out[name] = value;
  }
  return out;
}

// -- the probe ------------------------------------------------------------------------------

/** The command's `item`, which its op needs. */
function item(command) {
  if (command.item === null) {
    throw OperatorError.failed(`opstate-probe: \`${command.op}\` needs a string \`item\``);
  }
  return command.item;
}

export const operator = defineOperator({
  name: 'opstate-probe',
  version: '0.1.0',
  open(states) {
    const buffer = states.operatorList('buffer', { redistribution: Redistribution.EvenSplit, codec: Codec.json });
    const rules = states.operatorList('rules', { redistribution: Redistribution.Union, codec: Codec.json });
    return {
      initState(ctx) {
        const b = buffer.get().length;
        const r = rules.get().length;
        ctx.log('info', `opstate-probe: init sees buffer=${b} rules=${r}`);
      },
      process(ctx, record) {
        const text = record.valueText;
        const command = stringFields(JSON.parse(text), ['op', 'item']);
        switch (command.op) {
          case 'buffer':
            buffer.add(item(command));
            break;
          case 'rule':
            rules.add(item(command));
            break;
          case 'clear-buffer':
            buffer.clear();
            break;
          case 'dump': {
            const dump = { buffer: buffer.get().sort(compareUtf8), rules: rules.get().sort(compareUtf8) };
            ctx.emit(record.key, JSON.stringify(dump));
            break;
          }
          case 'fail':
            buffer.add(item(command));
            throw OperatorError.failed('opstate-probe: asked to fail');
          default:
            throw OperatorError.failed(`opstate-probe: unknown op ${JSON.stringify(command.op)}`);
        }
      },
    };
  },
});
