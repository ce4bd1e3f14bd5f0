// eddy-sdk: Eddy stream operators in JavaScript. See README.md and index.d.ts.

import { json } from './codec.js';

export { defineOperator, log, NO_WATERMARK, TimeDomain, Context, InitContext, Record } from './runtime.js';
export { OperatorError, StateError, Trap, trap } from './errors.js';
export { json, migrateValue } from './codec.js';
export {
  AggregatingState,
  DEFAULT_PAGE_SIZE,
  DEFAULT_SCHEMA_VERSION,
  ListState,
  MapState,
  OperatorListState,
  ReducingState,
  StateRegistry,
  ValueState,
} from './state.js';
export { compareUtf8, decodeUtf8, decodeUtf8Lossy, encodeUtf8 } from './utf8.js';
export {
  Added,
  MAX_WINDOWS_PER_ELEMENT,
  SessionWindows,
  SlidingWindows,
  TumblingWindows,
  Window,
  Windows,
} from './window.js';

/** The codecs the SDK ships (state descriptors name them: "json"). */
export const Codec = Object.freeze({ json });

/** What restarts a state value's time to live. */
export const TtlUpdate = Object.freeze({
  OnCreateAndWrite: 'on-create-and-write',
  OnReadAndWrite: 'on-read-and-write',
});

/** How an operator state's items are spread over the workers at a start. */
export const Redistribution = Object.freeze({ EvenSplit: 'even-split', Union: 'union' });
