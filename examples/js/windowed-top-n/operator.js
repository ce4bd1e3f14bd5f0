// `windowed-top-n` in JavaScript: the most viewed products of each category per minute of
// event time. A port of examples/windowed-top-n (Rust); same input, same output.
//
// Input: key = the category; value = the product's name (plain text); the record's
// timestamp is when the product was viewed. Each category's views are counted per product
// in tumbling one-minute windows (`[0, 60000)`, `[60000, 120000)`, … in ms since the epoch).
//
// Output, keyed by the category, when the watermark passes a minute's end:
// `{"category":"books","start":…,"end":…,"late":false,"top":[{"product":"dune","count":3},…]}`
// — the `n` most viewed products of the minute, most views first, equal counts by name. A
// view that arrives after its minute was emitted but within the allowed lateness counts too,
// and the minute is emitted again at once with `"late":true`. Views later than that are the
// host's to divert (with the job's `[event-time] allowed-lateness` equal to the operator's,
// none reaches it).
//
// Config: `{"n": 10, "allowed-lateness-ms": 0}` (the defaults; `n` from 1 to 1000, the
// lateness a whole number of ms, not negative).
//
// State: the SDK's tumbling windows named `views`: `views/windows`, per category its open
// minutes with a count per product (a JSON object `{product: count}` per minute).

import { OperatorError, TumblingWindows, compareUtf8, defineOperator } from 'eddy-sdk';

/** The length of a window: one minute. */
export const WINDOW_MS = 60000;
/** The default `n`. */
export const DEFAULT_N = 10;
/** The largest `n` accepted. */
export const MAX_N = 1000;

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Counts views per product; the result is every product with its count, `[product, count]`,
 * most views first, equal counts by name.
 */
export const countViews = {
  createAccumulator() {
    return {};
  },
  /** Counts `product` in place (an own property per product, whatever its name). */
  add(product, counts) {
    if (hasOwn.call(counts, product)) {
      counts[product] += 1;
    } else if (product === '__proto__') {
      Object.defineProperty(counts, product, { value: 1, writable: true, enumerable: true, configurable: true });
    } else {
      counts[product] = 1;
    }
  },
  getResult(counts) {
    return Object.entries(counts).sort((a, b) => b[1] - a[1] || compareUtf8(a[0], b[0]));
  },
};

/** Reads `{"n": …, "allowed-lateness-ms": …}`; anything else is an invalid config. */
export function parseConfig(config) {
  const invalid = (message) => OperatorError.invalidConfig(`windowed-top-n config: ${message}`);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw invalid('expected a table');
  for (const key of Object.keys(config)) {
    if (key !== 'n' && key !== 'allowed-lateness-ms') {
      throw invalid(`unknown field \`${key}\`, expected \`n\` or \`allowed-lateness-ms\``);
    }
  }
  const n = config.n ?? DEFAULT_N;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_N) {
    throw invalid(`n must be between 1 and ${MAX_N}, got ${JSON.stringify(n)}`);
  }
  const allowedLatenessMs = config['allowed-lateness-ms'] ?? 0;
  return { n, allowedLatenessMs };
}

export const operator = defineOperator({
  name: 'windowed-top-n',
  version: '0.1.0',
  open(states) {
    const views = TumblingWindows.of(WINDOW_MS).aggregate(states, 'views', countViews);
    let n = DEFAULT_N;

    function emit(ctx, fired) {
      const category = ctx.keyText;
      for (const { window, result, late } of fired) {
        const top = [];
        for (let i = 0; i < result.length && i < n; i++) top.push({ product: result[i][0], count: result[i][1] });
        ctx.emit(category, JSON.stringify({ category, start: window.start, end: window.end, late, top }));
      }
    }

    return {
      init(config) {
        const parsed = parseConfig(config);
        n = parsed.n;
        try {
          views.reconfigure(TumblingWindows.of(WINDOW_MS).allowedLateness(parsed.allowedLatenessMs));
        } catch (error) {
          throw OperatorError.invalidConfig(`windowed-top-n config: ${error.message}`);
        }
      },
      process(ctx, record) {
        const product = record.valueText.trim();
        if (product === '') throw OperatorError.failed('the value must name a product');
        const added = views.add(ctx, product);
        if (added.dropped) {
          // Later than the allowed lateness, yet not diverted by the host: its
          // `[event-time] allowed-lateness` is larger than the operator's.
          ctx.log('warn', `view of ${JSON.stringify(product)} at ${record.timestamp} dropped as too late`);
        }
        emit(ctx, added.fired);
      },
      onTimer(ctx, timer) {
        const fired = views.onTimer(ctx, timer);
        if (fired !== null) emit(ctx, fired);
      },
    };
  },
});
