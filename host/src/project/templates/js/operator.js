// `{{name}}`: counts the records of every key and emits the running count.

import { defineOperator } from 'eddy-sdk';

export const operator = defineOperator({
  name: '{{name}}',
  version: '0.1.0',
  open(states) {
    const count = states.value('count');
    return {
      process(ctx, record) {
        const n = count.getOr(0) + 1;
        count.set(n);
        ctx.emit(record.key, String(n));
      },
    };
  },
});
