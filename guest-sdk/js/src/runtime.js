// The operator lifecycle behind the component exports: describe, init (+ initState),
// process and onTimer (one encoded batch in, one encoded result out), migrate. The
// component glue and the Node test harness both drive an operator through this one
// Runtime class, so they cannot disagree.

import { BatchState, MIN_RECORD_SIZE, Reader, TIMER_SIZE, VERSION, Writer, i64At, malformed } from './batch.js';
import { OperatorError, Trap, messageOf, toOperatorError } from './errors.js';
import { StateRegistry } from './state.js';
import { decodeUtf8 } from './utf8.js';

/** The watermark before any record has set one (i64::MIN). */
export const NO_WATERMARK = -9223372036854775808;

/** The clocks a timer can follow. */
export const TimeDomain = Object.freeze({ EventTime: 'event-time', ProcessingTime: 'processing-time' });

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** The host outside the component and the harness: state is out of reach, logs go to stderr. */
const detachedHost = {
  log(level, key, message) {
    if (typeof console !== 'undefined') console.error(`[${level}] ${message}`);
  },
};
const STATE_CALLS = [
  'valueGet',
  'mapGet',
  'mapPut',
  'mapRemove',
  'mapContains',
  'mapIsEmpty',
  'mapClear',
  'mapEntries',
  'mapKeys',
  'listGet',
  'listAdd',
  'listAddAll',
  'listUpdate',
  'listClear',
  'operatorListGet',
  'operatorListAdd',
  'operatorListUpdate',
];
for (const call of STATE_CALLS) {
  detachedHost[call] = () => {
    throw OperatorError.failed(
      `state call \`${call}\` without a host: run the operator in the test harness (eddy-sdk/testing) or as a component`,
    );
  };
}

let defaultHost = detachedHost;

/** Sets the host the exported operators use (the component's imports); the SDK's own glue calls it. */
export function setDefaultHost(host) {
  defaultHost = host;
}

/** The runtime whose call is in progress (for the module-level `log`). */
let activeRuntime = null;

function checkLevel(level) {
  if (!LEVELS.includes(level)) {
    throw new TypeError(`log level ${JSON.stringify(level)} is not one of ${LEVELS.join(', ')}`);
  }
}

/**
 * Logs a line into the host's structured logging, not tagged with a key (inside the
 * component; natively it goes to the harness's logs, or to standard error).
 * @param {'trace' | 'debug' | 'info' | 'warn' | 'error'} level
 * @param {string} message
 */
export function log(level, message) {
  checkLevel(level);
  (activeRuntime === null ? defaultHost : activeRuntime.host).log(level, null, String(message));
}

function isThenable(value) {
  return value !== null && value !== undefined && typeof value.then === 'function';
}

function notUtf8(bytes, what, error) {
  const shown = Array.from(bytes.subarray(0, 32), (b) => b.toString(16).padStart(2, '0')).join('');
  return OperatorError.failed(`record ${what} 0x${shown} is not UTF-8: ${error.message}`);
}

function textOf(bytes, what) {
  try {
    return decodeUtf8(bytes);
  } catch (error) {
    throw notUtf8(bytes, what, error);
  }
}

/** Bytes to write for an emitted key or value. */
function bytesOf(x, what) {
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  throw new TypeError(`emit: the ${what} must be a string or a Uint8Array, not ${x === null ? 'null' : typeof x}`);
}

/**
 * One input record, read lazily from the batch buffer. Its `key` and `value` are views of
 * the batch: copy them (`.slice()`) to keep them beyond the call.
 */
export class Record {
  constructor(batch, at, headersAt, nHeaders) {
    this._batch = batch;
    /** Where the record starts in the batch (key index, timestamp, watermark, value). */
    this._at = at;
    this._headersAt = headersAt;
    this._nHeaders = nHeaders;
    this._headers = null;
  }

  /** The key (the bytes state is scoped to). */
  get key() {
    return this._batch.key(this._batch.dv.getUint32(this._at, true));
  }

  /** The key as text; an error when it is not UTF-8. */
  get keyText() {
    return keyTextOf(this._batch, this._batch.dv.getUint32(this._at, true));
  }

  /** The event timestamp (ms since the Unix epoch). */
  get timestamp() {
    return i64At(this._batch.dv, this._at + 4);
  }

  /** The value. */
  get value() {
    const start = this._at + 24;
    return this._batch.input.subarray(start, this._headersAt - 4);
  }

  /** The value as text; an error when it is not UTF-8. */
  get valueText() {
    const batch = this._batch;
    try {
      return decodeUtf8(batch.input, this._at + 24, this._headersAt - 4);
    } catch (error) {
      throw notUtf8(this.value, 'value', error);
    }
  }

  /** The value parsed as JSON text. */
  json() {
    return JSON.parse(this.valueText);
  }

  /** The headers as `[name, value]` pairs, in record order (names may repeat). */
  get headers() {
    if (this._headers === null) {
      const input = this._batch.input;
      const r = new Reader(input);
      r.pos = this._headersAt;
      const headers = new Array(this._nHeaders);
      for (let i = 0; i < this._nHeaders; i++) {
        const ns = r.span('header name');
        const ne = r.pos;
        const vs = r.span('header value');
        headers[i] = [textOf(input.subarray(ns, ne), 'header name'), textOf(input.subarray(vs, r.pos), 'header value')];
      }
      this._headers = headers;
    }
    return this._headers;
  }

  /** The value of the first header called `name`, or `undefined`. */
  header(name) {
    for (const [n, v] of this.headers) if (n === name) return v;
    return undefined;
  }
}

function keyTextOf(batch, index) {
  let text = batch.keyText[index];
  if (text === undefined) {
    text = textOf(batch.key(index), 'key');
    batch.keyText[index] = text;
  }
  return text;
}

/**
 * What an operator can do while it handles one record or timer: emit records, register
 * timers, log, and read the current key and time. State handles reach the current key's
 * state by themselves.
 */
export class Context {
  constructor(runtime) {
    this._runtime = runtime;
    this._out = null;
    /** Index of the current key in the batch's key table. */
    this.keyIndex = 0;
    /** Where the current record or timer starts in the batch. */
    this._at = 0;
    /** Where its watermark is, relative to `_at` (12 for records, 13 for timers). */
    this._watermarkAt = 12;
    this._item = 0;
    this._nEmits = 0;
  }

  /** The current record's event timestamp (ms since the Unix epoch); in `onTimer`, the timer's. */
  get timestamp() {
    return i64At(this._runtime.batch.dv, this._at + 4);
  }

  /**
   * The job's event-time watermark as this record (or timer) is handled: no record with a
   * timestamp at or below it is still to come (except late ones within the allowed
   * lateness). `NO_WATERMARK` before any.
   */
  get watermark() {
    return i64At(this._runtime.batch.dv, this._at + this._watermarkAt);
  }

  /** The current key. */
  get key() {
    return this._runtime.batch.key(this.keyIndex);
  }

  /** The current key as text. */
  get keyText() {
    return keyTextOf(this._runtime.batch, this.keyIndex);
  }

  /** The host's wall clock at the call (ms since the epoch); not deterministic on replay. */
  get processingTime() {
    return this._runtime.batch.processingTime;
  }

  /**
   * Emits an output record. `key` and `value` are strings (written as UTF-8) or bytes;
   * `headers` an object, a Map or `[name, value]` pairs of strings.
   * @param {string | Uint8Array} key
   * @param {string | Uint8Array} value
   * @param {Record<string, string> | Map<string, string> | Array<[string, string]>} [headers]
   */
  emit(key, value, headers) {
    const out = this._out;
    const start = out.len;
    try {
      if (typeof key === 'string') out.str(key);
      else out.bytes(bytesOf(key, 'key'));
      if (typeof value === 'string') out.str(value);
      else out.bytes(bytesOf(value, 'value'));
      if (headers === undefined || headers === null) {
        out.u32(0);
      } else {
        const countAt = out.len;
        out.u32(0);
        let n = 0;
        const pairs =
          Array.isArray(headers) || headers instanceof Map ? headers : Object.entries(headers);
        for (const [name, v] of pairs) {
          if (typeof name !== 'string' || typeof v !== 'string') {
            throw new TypeError('emit: header names and values must be strings');
          }
          out.str(name);
          out.str(v);
          n++;
        }
        out.patchU32(countAt, n);
      }
    } catch (error) {
      out.len = start;
      throw error;
    }
    this._nEmits++;
  }

  /**
   * Registers an event-time timer for the current key: `onTimer` runs once the watermark
   * reaches `timestamp` (before the key's next record when it has already). Registering the
   * same timestamp twice fires once.
   * @param {number} timestamp
   */
  registerEventTimeTimer(timestamp) {
    this._runtime.batch.timerOp(this._item, true, 0, timestamp);
  }

  /** Deletes the current key's event-time timer at `timestamp`, if there is one. */
  deleteEventTimeTimer(timestamp) {
    this._runtime.batch.timerOp(this._item, false, 0, timestamp);
  }

  /** Registers a processing-time timer: `onTimer` runs once the host's clock reaches `timestamp`. */
  registerProcessingTimeTimer(timestamp) {
    this._runtime.batch.timerOp(this._item, true, 1, timestamp);
  }

  /** Deletes the current key's processing-time timer at `timestamp`, if there is one. */
  deleteProcessingTimeTimer(timestamp) {
    this._runtime.batch.timerOp(this._item, false, 1, timestamp);
  }

  /**
   * Logs a line, tagged with the current key.
   * @param {'trace' | 'debug' | 'info' | 'warn' | 'error'} level
   * @param {string} message
   */
  log(level, message) {
    checkLevel(level);
    this._runtime.host.log(level, this.keyIndex, String(message));
  }
}

/** What `initState` can do: reach operator state (through its handles) and log. */
export class InitContext {
  constructor(runtime) {
    this._runtime = runtime;
  }

  /** Logs a line, not tagged with a key. */
  log(level, message) {
    checkLevel(level);
    this._runtime.host.log(level, null, String(message));
  }
}

/** Opens an instance of `spec` on `registry`. */
function open(spec, registry) {
  const instance = spec.open(registry);
  if (instance === null || typeof instance !== 'object') {
    throw new TypeError(`open() of operator \`${spec.name}\` must return an object with a process method`);
  }
  return instance;
}

/**
 * One operator instance: the object `open` returned, its declarations, and the buffers of
 * the batch in progress.
 */
export class Runtime {
  /**
   * @param {object} spec what `defineOperator` got
   * @param {object} host the state and log calls (the component's imports, or the harness)
   */
  constructor(spec, host) {
    this.spec = spec;
    this.host = host;
    this.instance = null;
    this.states = [];
    this.operatorStates = [];
    this.batch = new BatchState();
    /** The context of the `process` / `onTimer` call in progress, else null. */
    this.ctx = null;
    /** The context of the `initState` call in progress, else null. */
    this.initCtx = null;
    this._context = new Context(this);
    this._outputCapacity = 256;
  }

  /** The operator's name, version and states, in the WIT `operator-info` shape. */
  static describe(spec) {
    return Runtime.declare(spec).info;
  }

  /** What `describe` returns, with the codec objects of the states (for the harness). */
  static declare(spec) {
    const registry = new StateRegistry(null);
    open(spec, registry);
    return {
      info: {
        name: spec.name,
        version: spec.version,
        states: registry.states,
        operatorStates: registry.operatorStates,
      },
      codecs: registry.codecs,
      operatorCodecs: registry.operatorCodecs,
    };
  }

  /**
   * Opens a new instance, initializes it with `config` (JSON text) and lets it reach its
   * operator state. A bad declaration or an error of `init` is `invalid-config` (unless it
   * says `unsupported`); an error of `initState` keeps its kind.
   * @param {string} config
   */
  init(config) {
    this.instance = null;
    const registry = new StateRegistry(this);
    let instance;
    activeRuntime = this;
    try {
      try {
        instance = open(this.spec, registry);
        registry.check();
        if (typeof instance.process !== 'function') {
          throw new TypeError(`the object open() returned has no process method`);
        }
        let parsed;
        try {
          parsed = JSON.parse(config);
        } catch (error) {
          throw OperatorError.invalidConfig(`the configuration is not JSON: ${messageOf(error)}`);
        }
        if (typeof instance.init === 'function') {
          if (isThenable(instance.init(parsed, config))) {
            throw new TypeError('init returned a Promise: operators are synchronous');
          }
        }
      } catch (error) {
        if (error instanceof Trap) throw error;
        const e = toOperatorError(error);
        throw e.kind === 'failed' ? OperatorError.invalidConfig(e.message) : e;
      }
      this.states = registry.states;
      this.operatorStates = registry.operatorStates;
      if (typeof instance.initState === 'function') {
        this.initCtx = new InitContext(this);
        try {
          if (isThenable(instance.initState(this.initCtx))) {
            throw new TypeError('initState returned a Promise: operators are synchronous');
          }
        } catch (error) {
          if (error instanceof Trap) throw error;
          throw toOperatorError(error).withContext('initState');
        } finally {
          this.initCtx = null;
        }
      }
    } finally {
      activeRuntime = null;
    }
    this.instance = instance;
  }

  /**
   * Processes one encoded batch of records and returns the encoded result. A record's
   * error fails the whole batch, naming the record's position.
   * @param {Uint8Array} input
   * @returns {Uint8Array}
   */
  process(input) {
    return this.run(input, false);
  }

  /** Handles one encoded batch of fired timers (`on-timer`), as `process` does. */
  onTimer(input) {
    return this.run(input, true);
  }

  run(input, timers) {
    const instance = this.instance;
    if (instance === null) {
      throw OperatorError.failed(`\`${timers ? 'on-timer' : 'process'}\` was called before a successful \`init\``);
    }
    const batch = this.batch;
    const r = batch.begin(input, this.states);
    const n = r.count(timers ? TIMER_SIZE : MIN_RECORD_SIZE, timers ? 'timer count' : 'record count');
    const nKeys = batch.nKeys;
    const out = new Writer(this._outputCapacity);
    out.u8(VERSION);
    out.u32(n);
    const ctx = this._context;
    ctx._out = out;
    ctx._watermarkAt = timers ? 13 : 12;
    this.ctx = ctx;
    activeRuntime = this;
    const dv = r.dv;
    try {
      for (let i = 0; i < n; i++) {
        const countAt = out.len;
        out.u32(0);
        const at = r.pos;
        r.need(timers ? TIMER_SIZE : MIN_RECORD_SIZE, timers ? 'timer' : 'record');
        const keyIndex = dv.getUint32(at, true);
        if (keyIndex >= nKeys) {
          throw malformed(
            at,
            `${timers ? 'timer' : 'record'} key index ${keyIndex} is outside the key table of ${nKeys} keys`,
          );
        }
        ctx.keyIndex = keyIndex;
        ctx._at = at;
        ctx._item = i;
        ctx._nEmits = 0;
        if (timers) {
          const d = input[at + 12];
          if (d > 1) throw malformed(at + 12, `timer domain ${d} is neither 0 (event time) nor 1 (processing time)`);
          r.pos = at + TIMER_SIZE;
          const timestamp = i64At(dv, at + 4);
          const timer = { timestamp, domain: d === 0 ? 'event-time' : 'processing-time' };
          if (typeof instance.onTimer === 'function') {
            try {
              const result = instance.onTimer(ctx, timer);
              if (isThenable(result)) throw new TypeError('onTimer returned a Promise: operators are synchronous');
            } catch (error) {
              if (error instanceof Trap) throw error;
              throw toOperatorError(error).withContext(
                `timer ${i} (${d === 0 ? 'EventTime' : 'ProcessingTime'} ${timestamp})`,
              );
            }
          }
        } else {
          // The value and the header count, read inline (the per-record path).
          const valueEnd = at + 24 + dv.getUint32(at + 20, true);
          if (valueEnd + 4 > r.end) {
            r.pos = at + 20;
            r.span('record value');
            r.u32('record header count');
          }
          const nHeaders = dv.getUint32(valueEnd, true);
          r.pos = valueEnd;
          if (nHeaders !== 0) {
            r.count(8, 'record header count');
            for (let h = 0; h < nHeaders; h++) {
              r.span('header name');
              r.span('header value');
            }
          } else {
            r.pos = valueEnd + 4;
          }
          const headersAt = valueEnd + 4;
          const record = new Record(batch, at, headersAt, nHeaders);
          try {
            const result = instance.process(ctx, record);
            if (isThenable(result)) throw new TypeError('process returned a Promise: operators are synchronous');
          } catch (error) {
            if (error instanceof Trap) throw error;
            throw toOperatorError(error).withContext(`record ${i}`);
          }
        }
        out.patchU32(countAt, ctx._nEmits);
      }
      if (r.remaining() !== 0) {
        throw OperatorError.failed(
          `malformed batch: ${r.remaining()} bytes after the last ${timers ? 'timer' : 'record'}`,
        );
      }
      batch.writeOutput(out);
    } finally {
      this.ctx = null;
      ctx._out = null;
      activeRuntime = null;
      batch.end();
    }
    this._outputCapacity = out.len;
    return out.finish();
  }

  /**
   * Rewrites one stored value of `state` (a WIT `state-descriptor`) from schema
   * `fromVersion` to the version this module declares. The default refuses with
   * `unsupported`.
   */
  static migrate(spec, state, fromVersion, value) {
    if (typeof spec.migrate !== 'function') {
      throw OperatorError.unsupported(
        `operator \`${spec.name}\` ${spec.version} cannot migrate state \`${state.name}\` from schema version ${fromVersion} to ${state.schemaVersion}`,
      );
    }
    let result;
    try {
      result = spec.migrate(state, fromVersion, value);
    } catch (error) {
      if (error instanceof Trap) throw error;
      throw toOperatorError(error);
    }
    if (!(result instanceof Uint8Array)) {
      throw OperatorError.failed(`migrate of state \`${state.name}\` must return a Uint8Array`);
    }
    return result;
  }
}

/** Where an exported operator keeps its spec, for the harness. */
export const SPEC = Symbol.for('eddy-sdk.spec');

/** The export's error for a thrown value: Trap is thrown on (the engine traps). */
function witError(error, host) {
  if (error instanceof Trap) {
    try {
      host.log('error', null, `trap: ${error.message}`);
    } catch {
      // The trap matters more than its log line.
    }
    return error;
  }
  const e = toOperatorError(error);
  return { tag: e.kind, val: e.message };
}

/**
 * Declares an operator and returns the object to export as `operator` (the component's
 * `eddy:operator/operator` interface):
 *
 * ```js
 * export const operator = defineOperator({
 *   name: 'word-count',
 *   version: '0.1.0',
 *   open(states) {
 *     const count = states.value('count');
 *     return {
 *       process(ctx, record) {
 *         const n = count.getOr(0) + 1;
 *         count.set(n);
 *         ctx.emit(record.key, String(n));
 *       },
 *     };
 *   },
 * });
 * ```
 *
 * `open(states)` declares the states and returns the instance: an object with
 * `process(ctx, record)` and optionally `init(config, configText)`,
 * `initState(initCtx)` and `onTimer(ctx, timer)`. It is called for `describe` and again
 * for every instance, so it must declare the same states every time and do nothing else.
 * `migrate(state, fromVersion, bytes)` (optional, on the spec) rewrites a stored value
 * whose schema version changed.
 *
 * @param {object} spec
 */
export function defineOperator(spec) {
  if (spec === null || typeof spec !== 'object') throw new TypeError('defineOperator needs an object');
  if (typeof spec.name !== 'string' || spec.name.length === 0) throw new TypeError('defineOperator: `name` must be a non-empty string');
  if (typeof spec.version !== 'string') throw new TypeError('defineOperator: `version` must be a string');
  if (typeof spec.open !== 'function') throw new TypeError('defineOperator: `open(states)` must be a function');
  if (spec.migrate !== undefined && typeof spec.migrate !== 'function') {
    throw new TypeError('defineOperator: `migrate` must be a function');
  }
  let runtime = null;
  const exported = {
    describe() {
      return Runtime.describe(spec);
    },
    init(config) {
      runtime = null;
      const rt = new Runtime(spec, defaultHost);
      try {
        rt.init(config);
      } catch (error) {
        throw witError(error, defaultHost);
      }
      runtime = rt;
    },
    process(batch) {
      if (runtime === null) throw { tag: 'failed', val: '`process` was called before a successful `init`' };
      try {
        return runtime.process(batch);
      } catch (error) {
        throw witError(error, defaultHost);
      }
    },
    onTimer(batch) {
      if (runtime === null) throw { tag: 'failed', val: '`on-timer` was called before a successful `init`' };
      try {
        return runtime.onTimer(batch);
      } catch (error) {
        throw witError(error, defaultHost);
      }
    },
    migrate(state, fromVersion, value) {
      try {
        return Runtime.migrate(spec, state, fromVersion, value);
      } catch (error) {
        throw witError(error, defaultHost);
      }
    },
  };
  Object.defineProperty(exported, SPEC, { value: spec });
  return exported;
}
