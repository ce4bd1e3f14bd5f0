// A test harness in plain Node: runs an operator without a host or Wasm, with the host's
// state semantics kept in memory (a port of the Rust SDK's `testing` module).
//
// Records go through the same batch codec and the same Runtime as in the component: the
// harness encodes a batch as the host would, calls the operator's `process` with the
// bytes, and decodes the result. Like the host, the harness:
// - prefetches every value state of the batch's keys into the batch;
// - applies a batch's effects (value-state writes, map and list calls, timer changes) only
//   when the call succeeds: an error (or a trap) discards all of them;
// - iterates maps in the byte order of the encoded map keys, in pages (at most 1024);
// - fires event-time timers when the watermark reaches them, and a timer registered at or
//   below the watermark before its key's next record;
// - enforces state TTLs against its processing-time clock (`advanceProcessingTime`);
// - keeps one list per operator state (one worker's), reachable in `initState`,
//   `process` and `onTimer`;
// - after a trap, builds a fresh instance (open + init with the same config).

import { Reader, VERSION, Writer } from './batch.js';
import { clocklessDate } from './clock.js';
import { OperatorError, StateError, Trap, messageOf } from './errors.js';
import { NO_WATERMARK, Runtime, SPEC } from './runtime.js';
import { compareUtf8, decodeUtf8, encodeUtf8 } from './utf8.js';

/** The most entries or keys one map page holds, whatever the operator asks for. */
export const MAX_PAGE = 1024;

/** The most timers one firing fires before it fails (an operator re-registering the timer it handles). */
export const MAX_FIRINGS = 1_000_000;

const EVENT_TIME = 0;
const PROCESSING_TIME = 1;
const DOMAIN_NAMES = ['event-time', 'processing-time'];

/** Bytes as a "binary string" (one char per byte): such strings sort in byte order. */
function bin(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096));
  }
  return s;
}

function unbin(s) {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function toBytes(x, what) {
  if (typeof x === 'string') return encodeUtf8(x);
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`${what} must be a string or a Uint8Array`);
}

function headerPairs(headers) {
  if (headers == null) return [];
  const pairs = Array.isArray(headers) || headers instanceof Map ? [...headers] : Object.entries(headers);
  return pairs.map(([n, v]) => [String(n), String(v)]);
}

/** A record an operator emitted. */
export class Emitted {
  constructor(key, value, headers) {
    /** @type {Uint8Array} */
    this.key = key;
    /** @type {Uint8Array} */
    this.value = value;
    /** @type {Array<[string, string]>} */
    this.headers = headers;
  }

  /** The key as UTF-8 text. */
  get keyText() {
    return decodeUtf8(this.key);
  }

  /** The value as UTF-8 text. */
  get valueText() {
    return decodeUtf8(this.value);
  }

  /** The value parsed as JSON. */
  json() {
    return JSON.parse(this.valueText);
  }
}

// -- the host's side of the batch format ---------------------------------------------------

/**
 * Encodes a `process` (or, with `timers`, an `on-timer`) input as the host does.
 * @param {{processingTime: number, keys: Uint8Array[], handles: number[],
 *   slots: Array<Uint8Array|null>, records?: any[], timers?: any[]}} batch
 */
export function encodeInput(batch) {
  const w = new Writer(256);
  w.u8(VERSION);
  w.i64(batch.processingTime ?? 0);
  w.u32(batch.keys.length);
  for (const key of batch.keys) w.bytes(key);
  w.u32(batch.handles.length);
  for (const handle of batch.handles) w.u32(handle);
  for (const slot of batch.slots) {
    if (slot === null || slot === undefined) {
      w.u8(0);
    } else {
      w.u8(1);
      w.bytes(slot);
    }
  }
  if (batch.timers && batch.timers.length > 0) {
    w.u32(batch.timers.length);
    for (const t of batch.timers) {
      w.u32(t.keyIndex);
      w.i64(t.timestamp);
      w.u8(t.domain);
      w.i64(t.watermark);
    }
    return w.finish().slice();
  }
  const records = batch.records ?? [];
  w.u32(records.length);
  for (const r of records) {
    w.u32(r.keyIndex);
    w.i64(r.timestamp);
    w.i64(r.watermark);
    w.bytes(r.value);
    w.u32(r.headers.length);
    for (const [name, value] of r.headers) {
      w.str(name);
      w.str(value);
    }
  }
  return w.finish().slice();
}

function fail(what) {
  return OperatorError.failed(`malformed result: ${what}`);
}

/**
 * Decodes a `process` / `on-timer` result as the host does.
 * @param {Uint8Array} buf
 * @returns {{emits: Emitted[][], writes: Array<{keyIndex: number, handle: number, value: Uint8Array|null}>,
 *   timerOps: Array<{item: number, register: boolean, domain: number, timestamp: number}>}}
 */
export function decodeOutput(buf) {
  const r = new Reader(buf);
  const version = r.u8('version');
  if (version !== VERSION) throw fail(`version ${version}`);
  const bytes = (what) => {
    const start = r.span(what);
    return buf.slice(start, r.pos);
  };
  const str = (what) => {
    const start = r.span(what);
    try {
      return decodeUtf8(buf, start, r.pos);
    } catch (error) {
      throw fail(`${what} is not UTF-8: ${messageOf(error)}`);
    }
  };
  const emits = [];
  const nRecords = r.count(4, 'record count');
  for (let i = 0; i < nRecords; i++) {
    const n = r.count(12, 'emit count');
    const list = [];
    for (let j = 0; j < n; j++) {
      const key = bytes('emit key');
      const value = bytes('emit value');
      const nh = r.count(8, 'emit header count');
      const headers = [];
      for (let h = 0; h < nh; h++) headers.push([str('emit header name'), str('emit header value')]);
      list.push(new Emitted(key, value, headers));
    }
    emits.push(list);
  }
  const writes = [];
  const nWrites = r.count(9, 'write count');
  for (let i = 0; i < nWrites; i++) {
    const keyIndex = r.u32('write key index');
    const handle = r.u32('write handle');
    const op = r.u8('write op');
    if (op === 0) writes.push({ keyIndex, handle, value: null });
    else if (op === 1) writes.push({ keyIndex, handle, value: bytes('write value') });
    else throw fail(`write op ${op}`);
  }
  const timerOps = [];
  const nOps = r.count(14, 'timer op count');
  for (let i = 0; i < nOps; i++) {
    const item = r.u32('timer op item');
    const op = r.u8('timer op');
    if (op > 1) throw fail(`timer op ${op}`);
    const domain = r.u8('timer domain');
    if (domain > 1) throw fail(`timer domain ${domain}`);
    const timestamp = r.i64('timer timestamp');
    timerOps.push({ item, register: op === 1, domain, timestamp });
  }
  if (r.remaining() !== 0) throw fail('trailing bytes');
  return { emits, writes, timerOps };
}

// -- the in-memory store -------------------------------------------------------------------

function id(handle, keyBin) {
  return `${handle}:${keyBin}`;
}

function timerId(domain, timestamp, keyBin) {
  return `${domain}:${timestamp}:${keyBin}`;
}

function compareTimers(a, b) {
  return a.domain - b.domain || a.timestamp - b.timestamp || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * The state of every key, by (handle, key), and the operator state. Empty maps and lists
 * are removed, as a host that stores entries rather than containers would.
 */
class MemoryStore {
  constructor(states, nOperatorStates) {
    this.kinds = states.map((s) => s.kind);
    this.ttls = states.map((s) => s.ttl ?? null);
    /** The processing-time clock: what writes are stamped with and TTLs run against. */
    this.now = 0;
    /** `handle:keyBin` -> {bytes, updated} */
    this.values = new Map();
    /** `handle:keyBin` -> Map(mapKeyBin -> {bytes, updated}) */
    this.maps = new Map();
    /** `handle:keyBin` -> [{bytes, updated}] */
    this.lists = new Map();
    /** `domain:timestamp:keyBin` -> {domain, timestamp, key (binary string)} */
    this.timers = new Map();
    this.operatorLists = Array.from({ length: nOperatorStates }, () => []);
  }

  clone() {
    const copy = Object.create(MemoryStore.prototype);
    copy.kinds = this.kinds;
    copy.ttls = this.ttls;
    copy.now = this.now;
    copy.values = new Map(this.values);
    copy.maps = new Map([...this.maps].map(([k, m]) => [k, new Map(m)]));
    copy.lists = new Map([...this.lists].map(([k, l]) => [k, l.slice()]));
    copy.timers = new Map(this.timers);
    copy.operatorLists = this.operatorLists.map((l) => l.slice());
    return copy;
  }

  stamp(bytes) {
    return { bytes, updated: this.now };
  }

  refreshesOnRead(handle) {
    const ttl = this.ttls[handle];
    return ttl != null && ttl.update === 'on-read-and-write';
  }

  expired(handle, updated) {
    const ttl = this.ttls[handle];
    return ttl != null && updated + ttl.ttlMs <= this.now;
  }

  /** Drops every value, map entry and list item whose TTL has run out. */
  expire() {
    const handleOf = (key) => Number(key.slice(0, key.indexOf(':')));
    for (const [key, value] of this.values) {
      if (this.expired(handleOf(key), value.updated)) this.values.delete(key);
    }
    for (const [key, map] of this.maps) {
      const handle = handleOf(key);
      for (const [k, v] of map) if (this.expired(handle, v.updated)) map.delete(k);
      if (map.size === 0) this.maps.delete(key);
    }
    for (const [key, list] of this.lists) {
      const handle = handleOf(key);
      const kept = list.filter((item) => !this.expired(handle, item.updated));
      if (kept.length === 0) this.lists.delete(key);
      else this.lists.set(key, kept);
    }
  }

  /** The registered timers of `domain` at or below `upto`, in (timestamp, key) order. */
  due(domain, upto) {
    const due = [];
    for (const t of this.timers.values()) if (t.domain === domain && t.timestamp <= upto) due.push(t);
    return due.sort(compareTimers);
  }

  /**
   * Applies the value writes and timer changes of a call's output (`keys` the call's keys,
   * `items` the key index of each input), after checking every one of them.
   */
  apply(keys, items, output) {
    const writes = output.writes.map((write) => {
      const key = keys[write.keyIndex];
      if (key === undefined) throw OperatorError.failed(`write to key index ${write.keyIndex} outside the batch`);
      if (this.kinds[write.handle] !== 'value') {
        throw OperatorError.failed(`write to handle ${write.handle} that is not a value state`);
      }
      return [id(write.handle, bin(key)), write.value];
    });
    const ops = output.timerOps.map((op) => {
      const k = items[op.item];
      const key = k === undefined ? undefined : keys[k];
      if (key === undefined) throw OperatorError.failed(`a timer change names input ${op.item}`);
      return [op.register, { domain: op.domain, timestamp: op.timestamp, key: bin(key) }];
    });
    for (const [at, value] of writes) {
      if (value === null) this.values.delete(at);
      else this.values.set(at, this.stamp(value));
    }
    for (const [register, timer] of ops) {
      const tid = timerId(timer.domain, timer.timestamp, timer.key);
      if (register) this.timers.set(tid, timer);
      else this.timers.delete(tid);
    }
  }
}

/** The store seen from inside one call: key indexes name the call's keys (none in init). */
class MemoryHost {
  constructor(harness) {
    this.harness = harness;
    /** @type {Uint8Array[]} */
    this.keys = [];
  }

  get store() {
    return this.harness._store;
  }

  locate(state, key, kind) {
    if (this.store.kinds[state] !== kind) throw new StateError('bad-handle', state);
    const k = this.keys[key];
    if (k === undefined) throw new StateError('bad-key', key);
    return id(state, bin(k));
  }

  valueGet(state, key) {
    const at = this.locate(state, key, 'value');
    const value = this.store.values.get(at);
    if (value === undefined) return null;
    if (this.store.refreshesOnRead(state)) this.store.values.set(at, this.store.stamp(value.bytes));
    return value.bytes.slice();
  }

  /** The map of `state` for `key`, restamping the entry under `read` when reads restart the TTL. */
  map(state, key, read) {
    const at = this.locate(state, key, 'map');
    const map = this.store.maps.get(at);
    if (map !== undefined && read !== undefined && this.store.refreshesOnRead(state)) {
      const k = bin(read);
      const v = map.get(k);
      if (v !== undefined) map.set(k, this.store.stamp(v.bytes));
    }
    return map;
  }

  mapGet(state, key, mapKey) {
    const map = this.map(state, key, mapKey);
    const v = map === undefined ? undefined : map.get(bin(mapKey));
    return v === undefined ? null : v.bytes.slice();
  }

  mapPut(state, key, mapKey, value) {
    const at = this.locate(state, key, 'map');
    let map = this.store.maps.get(at);
    if (map === undefined) {
      map = new Map();
      this.store.maps.set(at, map);
    }
    map.set(bin(mapKey), this.store.stamp(value.slice()));
  }

  mapRemove(state, key, mapKey) {
    const at = this.locate(state, key, 'map');
    const map = this.store.maps.get(at);
    if (map !== undefined) {
      map.delete(bin(mapKey));
      if (map.size === 0) this.store.maps.delete(at);
    }
  }

  mapContains(state, key, mapKey) {
    const map = this.map(state, key, mapKey);
    return map !== undefined && map.has(bin(mapKey));
  }

  mapIsEmpty(state, key) {
    const map = this.map(state, key, undefined);
    return map === undefined || map.size === 0;
  }

  mapClear(state, key) {
    this.store.maps.delete(this.locate(state, key, 'map'));
  }

  /** The entries after `cursor`, at most `max` (capped at MAX_PAGE). */
  page(state, key, cursor, max) {
    const at = this.locate(state, key, 'map');
    const map = this.store.maps.get(at);
    if (map === undefined) return { entries: [], next: null };
    const limit = Math.min(Math.max(max, 1), MAX_PAGE);
    const after = cursor == null ? null : bin(cursor);
    const keys = [...map.keys()].filter((k) => after === null || k > after).sort();
    const refresh = this.store.refreshesOnRead(state);
    const entries = [];
    let next = null;
    for (const k of keys) {
      if (entries.length === limit) {
        next = entries[entries.length - 1][0].slice();
        break;
      }
      const v = map.get(k);
      if (refresh) map.set(k, this.store.stamp(v.bytes));
      entries.push([unbin(k), v.bytes.slice()]);
    }
    return { entries, next };
  }

  mapEntries(state, key, cursor, max) {
    return this.page(state, key, cursor, max);
  }

  mapKeys(state, key, cursor, max) {
    const page = this.page(state, key, cursor, max);
    return { keys: page.entries.map(([k]) => k), next: page.next };
  }

  listGet(state, key) {
    const at = this.locate(state, key, 'list');
    const list = this.store.lists.get(at);
    if (list === undefined) return [];
    if (this.store.refreshesOnRead(state)) {
      this.store.lists.set(
        at,
        list.map((item) => this.store.stamp(item.bytes)),
      );
    }
    return list.map((item) => item.bytes.slice());
  }

  listAdd(state, key, value) {
    const at = this.locate(state, key, 'list');
    const list = this.store.lists.get(at) ?? [];
    list.push(this.store.stamp(value.slice()));
    this.store.lists.set(at, list);
  }

  listAddAll(state, key, values) {
    const at = this.locate(state, key, 'list');
    if (values.length === 0) return;
    const list = this.store.lists.get(at) ?? [];
    for (const value of values) list.push(this.store.stamp(value.slice()));
    this.store.lists.set(at, list);
  }

  listUpdate(state, key, values) {
    const at = this.locate(state, key, 'list');
    if (values.length === 0) this.store.lists.delete(at);
    else this.store.lists.set(at, values.map((value) => this.store.stamp(value.slice())));
  }

  listClear(state, key) {
    this.store.lists.delete(this.locate(state, key, 'list'));
  }

  operatorList(state) {
    const list = this.store.operatorLists[state];
    if (list === undefined) throw new StateError('bad-handle', state);
    return list;
  }

  operatorListGet(state) {
    return this.operatorList(state).map((item) => item.slice());
  }

  operatorListAdd(state, value) {
    this.operatorList(state).push(value.slice());
  }

  operatorListUpdate(state, values) {
    this.operatorList(state);
    this.store.operatorLists[state] = values.map((value) => value.slice());
  }

  log(level, key, message) {
    const k = key === null || key === undefined ? null : (this.keys[key] ?? null);
    this.harness._logs.push({ level, key: k, message });
  }
}

/** The first record before which an event-time timer that an earlier record of its key registered in the same call is due. */
function firstDueWithin(items, output, watermark) {
  let first = null;
  for (const op of output.timerOps) {
    if (!op.register || op.domain !== EVENT_TIME || op.timestamp > watermark) continue;
    const key = items[op.item];
    if (key === undefined) continue;
    for (let j = op.item + 1; j < items.length; j++) {
      if (items[j] === key) {
        if (first === null || j < first) first = j;
        break;
      }
    }
  }
  return first;
}

/** Runs `fn` with the clock out of reach, as in the component. */
function withoutClock(fn) {
  const RealDate = globalThis.Date;
  globalThis.Date = clocklessDate(RealDate);
  try {
    return fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

function configText(config) {
  if (config === undefined) return '{}';
  return typeof config === 'string' ? config : JSON.stringify(config);
}

/**
 * Runs an operator in Node on in-memory state. An operator whose `init` fails still makes
 * a harness: every call then throws the init error, and `initError` shows it.
 *
 * ```js
 * import { Harness } from 'eddy-sdk/testing';
 * import { operator } from './operator.js';
 *
 * const h = new Harness(operator);
 * h.process('a', '');
 * assert.deepEqual(h.process('a', '').map((e) => e.valueText), ['2']);
 * assert.equal(h.value('count', 'a'), 2);
 * ```
 */
export class Harness {
  /**
   * @param {object} operator what `defineOperator` returned
   * @param {{config?: object | string, prefetchValues?: boolean}} [options]
   */
  constructor(operator, options = {}) {
    const spec = operator !== null && typeof operator === 'object' ? operator[SPEC] : undefined;
    if (spec === undefined) throw new TypeError('Harness needs the object defineOperator returned');
    this._spec = spec;
    const declared = Runtime.declare(spec);
    /** What `describe` returns. */
    this.info = declared.info;
    this._codecs = declared.codecs;
    this._operatorCodecs = declared.operatorCodecs;
    this._store = new MemoryStore(this.info.states, this.info.operatorStates.length);
    this._logs = [];
    this._host = new MemoryHost(this);
    this._prefetch = options.prefetchValues ?? true;
    this._watermark = NO_WATERMARK;
    /** The error of the last `init`, or null. @type {OperatorError | null} */
    this.initError = null;
    this._init(configText(options.config));
  }

  /**
   * Re-opens the operator with `config` (an object or JSON text), keeping the state: as a
   * new instance of the same worker, it sees the operator state in `initState`.
   */
  withConfig(config) {
    this._init(configText(config));
    return this;
  }

  _init(config) {
    this._config = config;
    this._runtime = new Runtime(this._spec, this._host);
    const snapshot = this._store.clone();
    this._host.keys = [];
    try {
      withoutClock(() => this._runtime.init(config));
      this.initError = null;
    } catch (error) {
      this._store = snapshot;
      this.initError =
        error instanceof Trap
          ? OperatorError.failed(`operator trapped: ${error.message}`)
          : error instanceof OperatorError
            ? error
            : OperatorError.failed(messageOf(error));
    }
  }

  /** Throws the error of the last `init`, if it failed. */
  initResult() {
    if (this.initError !== null) throw this.initError;
  }

  /** The lines logged so far: `{level, key (Uint8Array or null), message}`. */
  get logs() {
    return this._logs;
  }

  /** The declared keyed states, in handle order. */
  get states() {
    return this.info.states;
  }

  /**
   * Processes one record and returns what it emitted (with what event-time timers that
   * fired around it emitted). On error nothing of the record is applied.
   * @param {string | Uint8Array} key
   * @param {string | Uint8Array} value
   * @param {{timestamp?: number, headers?: object}} [options]
   * @returns {Emitted[]}
   */
  process(key, value, options = {}) {
    return this.processRecord({ key, value, ...options });
  }

  /** `process` as `[keyText, valueText]` pairs. */
  processText(key, value, options) {
    return this.process(key, value, options).map((e) => [e.keyText, e.valueText]);
  }

  /** Processes one record `{key, value, timestamp?, headers?}`. */
  processRecord(record) {
    return this.processBatch([record])[0];
  }

  /**
   * Processes records as one batch, as the host does: one `process` call whose effects
   * are applied together; every record sees the harness's watermark. Returns what each
   * record emitted. Event-time timers due at the watermark fire as on the host: before a
   * record whose key has one, and after the batch when one of its keys has one (a record
   * that registers a timer at or below the watermark splits the call before the next
   * record of its key). On an error nothing of the call is applied.
   * @param {Array<{key: string | Uint8Array, value: string | Uint8Array, timestamp?: number, headers?: object}>} records
   * @returns {Emitted[][]}
   */
  processBatch(records) {
    if (this.initError !== null) throw this.initError.withContext('init failed');
    const normalized = records.map((r) => ({
      key: toBytes(r.key, 'a record key'),
      keyBin: bin(toBytes(r.key, 'a record key')),
      value: toBytes(r.value ?? '', 'a record value'),
      timestamp: r.timestamp ?? 0,
      headers: headerPairs(r.headers),
    }));
    const snapshot = this._store.clone();
    try {
      return this._runRecords(normalized);
    } catch (error) {
      this._store = snapshot;
      throw error;
    }
  }

  _runRecords(records) {
    const emitted = records.map(() => []);
    let start = 0;
    while (start < records.length) {
      if (this._keyDue(records[start].keyBin)) {
        emitted[start].push(...this._fire(EVENT_TIME, this._watermark));
      }
      let end = start + 1;
      while (end < records.length && !this._keyDue(records[end].keyBin)) end++;
      const run = records.slice(start, end);
      let called = this._call(this._recordBatch(run), true);
      let done = run.length;
      if (called.split !== undefined) {
        done = called.split;
        called = this._call(this._recordBatch(run.slice(0, done)), false);
      }
      called.out.forEach((out, i) => emitted[start + i].push(...out));
      start += done;
    }
    if (records.some((r) => this._keyDue(r.keyBin))) {
      emitted[emitted.length - 1].push(...this._fire(EVENT_TIME, this._watermark));
    }
    return emitted;
  }

  _recordBatch(records) {
    const keys = [];
    const index = new Map();
    const batchRecords = records.map((r) => {
      let k = index.get(r.keyBin);
      if (k === undefined) {
        k = keys.length;
        keys.push(r.key);
        index.set(r.keyBin, k);
      }
      return { keyIndex: k, timestamp: r.timestamp, watermark: this._watermark, value: r.value, headers: r.headers };
    });
    return { keys, records: batchRecords, timers: [] };
  }

  _keyDue(keyBin) {
    for (const t of this._store.timers.values()) {
      if (t.domain === EVENT_TIME && t.timestamp <= this._watermark && t.key === keyBin) return true;
    }
    return false;
  }

  /**
   * Runs `batch` with its prefetched values and applies its effects only when it
   * succeeds — and, with `split`, when no record registers an event-time timer due at a
   * later record of its key in the batch: the call is then undone and says where to split.
   */
  _call(batch, split) {
    const store = this._store;
    batch.processingTime = store.now;
    batch.handles = this._prefetch
      ? this.info.states.flatMap((s, handle) => (s.kind === 'value' ? [handle] : []))
      : [];
    batch.slots = [];
    for (const key of batch.keys) {
      const keyBin = bin(key);
      for (const handle of batch.handles) {
        const value = store.values.get(id(handle, keyBin));
        batch.slots.push(value === undefined ? null : value.bytes);
      }
    }
    const input = encodeInput(batch);
    const snapshot = store.clone();
    const logged = this._logs.length;
    let result;
    try {
      result = this._run(input, batch, split);
    } catch (error) {
      this._store = snapshot;
      throw error;
    }
    if (result.split !== undefined) {
      this._store = snapshot;
      this._logs.length = logged;
    }
    return result;
  }

  _run(input, batch, split) {
    const timers = batch.timers.length > 0;
    this._host.keys = batch.keys;
    let bytes;
    try {
      bytes = withoutClock(() => (timers ? this._runtime.onTimer(input) : this._runtime.process(input)));
    } catch (error) {
      if (error instanceof Trap) {
        // The host builds a fresh instance after a trap.
        this._init(this._config);
        throw OperatorError.failed(`operator trapped: ${error.message}`);
      }
      throw error instanceof OperatorError ? error : OperatorError.failed(messageOf(error));
    } finally {
      this._host.keys = [];
    }
    const output = decodeOutput(bytes);
    const items = timers ? batch.timers.map((t) => t.keyIndex) : batch.records.map((r) => r.keyIndex);
    if (output.emits.length !== items.length) {
      throw OperatorError.failed(`the result holds ${output.emits.length} items for ${items.length} inputs`);
    }
    if (split && !timers) {
      const j = firstDueWithin(items, output, this._watermark);
      if (j !== null) return { split: j };
    }
    this._store.apply(batch.keys, items, output);
    return { out: output.emits };
  }

  /** The watermark the next records see, and up to which event-time timers fired. */
  get watermark() {
    return this._watermark;
  }

  /**
   * Advances the watermark (a lower one changes nothing) and fires every event-time timer
   * at or below it, as the host does. Returns what the timers emitted, in firing order.
   */
  advanceWatermark(watermark) {
    this._watermark = Math.max(this._watermark, watermark);
    return this._fire(EVENT_TIME, this._watermark);
  }

  /**
   * Sets the wall clock the operator sees (default 0; it never goes back), drops the state
   * whose TTL has run out by then, and fires every processing-time timer at or below it.
   */
  advanceProcessingTime(now) {
    this._store.now = Math.max(this._store.now, now);
    this._store.expire();
    return this._fire(PROCESSING_TIME, this._store.now);
  }

  /** The wall clock the operator sees (ms). */
  get processingTime() {
    return this._store.now;
  }

  /** The registered timers, as `{key, timestamp, domain}`, in (domain, timestamp, key) order. */
  timers() {
    return [...this._store.timers.values()]
      .sort(compareTimers)
      .map((t) => ({ key: unbin(t.key), timestamp: t.timestamp, domain: DOMAIN_NAMES[t.domain] }));
  }

  _fire(domain, upto) {
    if (this.initError !== null) throw this.initError.withContext('init failed');
    const emitted = [];
    let fired = 0;
    for (;;) {
      const taken = new Set();
      const run = [];
      for (const t of this._store.due(domain, upto)) {
        if (taken.has(t.key)) break;
        taken.add(t.key);
        run.push(t);
      }
      if (run.length === 0) return emitted;
      fired += run.length;
      if (fired > MAX_FIRINGS) {
        throw OperatorError.failed(
          `more than ${MAX_FIRINGS} timers fired in one go: \`onTimer\` keeps registering timers at or below the ${DOMAIN_NAMES[domain]} time ${upto} (the one it handles?); register a later one`,
        );
      }
      const batch = { keys: [], records: [], timers: [] };
      for (const t of run) {
        this._store.timers.delete(timerId(t.domain, t.timestamp, t.key));
        batch.keys.push(unbin(t.key));
        batch.timers.push({ keyIndex: batch.keys.length - 1, timestamp: t.timestamp, domain, watermark: this._watermark });
      }
      try {
        const called = this._call(batch, false);
        for (const out of called.out) emitted.push(...out);
      } catch (error) {
        for (const t of run) this._store.timers.set(timerId(t.domain, t.timestamp, t.key), t);
        throw error;
      }
    }
  }

  _handle(name, kind) {
    const handle = this.info.states.findIndex((s) => s.name === name);
    if (handle < 0 || this.info.states[handle].kind !== kind) {
      const declared = this.info.states.map((s) => `${s.name} (${s.kind})`).join(', ');
      throw OperatorError.failed(`no ${kind} state named \`${name}\`; the operator declares: ${declared}`);
    }
    return handle;
  }

  _decode(handle, bytes) {
    return this._codecs[handle].decode(bytes);
  }

  /** The value of value state `state` for `key` (reducing and aggregating states too), or undefined. */
  value(state, key) {
    const handle = this._handle(state, 'value');
    const value = this._store.values.get(id(handle, bin(toBytes(key, 'a key'))));
    return value === undefined ? undefined : this._decode(handle, value.bytes);
  }

  /** Sets the value of value state `state` for `key`, e.g. to start a test from a state. */
  setValue(state, key, value) {
    const handle = this._handle(state, 'value');
    const bytes = this._codecs[handle].encode(value);
    this._store.values.set(id(handle, bin(toBytes(key, 'a key'))), this._store.stamp(bytes));
  }

  /** The value under `mapKey` in map state `state` for `key`, or undefined. */
  mapGet(state, key, mapKey) {
    const handle = this._handle(state, 'map');
    const map = this._store.maps.get(id(handle, bin(toBytes(key, 'a key'))));
    const v = map === undefined ? undefined : map.get(bin(this._codecs[handle].encode(mapKey)));
    return v === undefined ? undefined : this._decode(handle, v.bytes);
  }

  /** Every `[key, value]` of map state `state` for `key`, in the byte order of the encoded keys. */
  mapEntries(state, key) {
    const handle = this._handle(state, 'map');
    const map = this._store.maps.get(id(handle, bin(toBytes(key, 'a key'))));
    if (map === undefined) return [];
    return [...map.keys()].sort().map((k) => [this._decode(handle, unbin(k)), this._decode(handle, map.get(k).bytes)]);
  }

  /** The list state `state` for `key` (empty when it has none). */
  list(state, key) {
    const handle = this._handle(state, 'list');
    const list = this._store.lists.get(id(handle, bin(toBytes(key, 'a key'))));
    return list === undefined ? [] : list.map((item) => this._decode(handle, item.bytes));
  }

  _operatorHandle(name) {
    const handle = this.info.operatorStates.findIndex((s) => s.name === name);
    if (handle < 0) {
      const declared = this.info.operatorStates.map((s) => s.name).join(', ');
      throw OperatorError.failed(`no operator state named \`${name}\`; the operator declares: ${declared}`);
    }
    return handle;
  }

  /** The items of operator list state `state` (this harness is one worker), oldest first. */
  operatorList(state) {
    const handle = this._operatorHandle(state);
    return this._store.operatorLists[handle].map((bytes) => this._operatorCodecs[handle].decode(bytes));
  }

  /** Replaces the items of operator list state `state`. */
  setOperatorList(state, items) {
    const handle = this._operatorHandle(state);
    this._store.operatorLists[handle] = items.map((item) => this._operatorCodecs[handle].encode(item));
  }

  /** Whether `key` has any state at all (a value, a non-empty map or a non-empty list). */
  hasState(key) {
    const suffix = `:${bin(toBytes(key, 'a key'))}`;
    const has = (m) => [...m.keys()].some((k) => k.endsWith(suffix) && /^\d+$/.test(k.slice(0, k.length - suffix.length)));
    return has(this._store.values) || has(this._store.maps) || has(this._store.lists);
  }
}

// -- golden files (the examples' input.jsonl / expected-output.jsonl) ------------------------

function sinkText(bytes) {
  try {
    return decodeUtf8(bytes);
  } catch {
    return { base64: Buffer.from(bytes).toString('base64') };
  }
}

/** One file-sink line: `{"key":…,"value":…}` plus `"headers"` (sorted by name) when there are any. */
export function sinkLine(key, value, headers = []) {
  const line = { key: sinkText(key), value: sinkText(value) };
  let text = JSON.stringify(line);
  if (headers.length > 0) {
    const sorted = new Map();
    for (const [n, v] of headers) sorted.set(n, v);
    const names = [...sorted.keys()].sort(compareUtf8);
    const body = names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(sorted.get(n))}`).join(',');
    text = `${text.slice(0, -1)},"headers":{${body}}}`;
  }
  return text;
}

function inputLines(input) {
  return input
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const parsed = JSON.parse(line);
      return {
        key: parsed.key,
        value: parsed.value,
        timestamp: parsed.timestamp,
        headers: parsed.headers ?? {},
      };
    });
}

function writeEmitted(lines, emitted) {
  for (const e of emitted) lines.push(sinkLine(e.key, e.value, e.headers));
}

/**
 * What an operator emits for `input` (the file source's JSON lines), one sink line per
 * emitted record, feeding the records one by one as a job without event time does.
 * @returns {string}
 */
export function runJsonLines(harness, input) {
  const lines = [];
  for (const line of inputLines(input)) {
    writeEmitted(lines, harness.processRecord({ ...line, timestamp: line.timestamp ?? 0, headers: sortedHeaders(line.headers) }));
  }
  return lines.map((l) => `${l}\n`).join('');
}

function sortedHeaders(headers) {
  return Object.keys(headers)
    .sort(compareUtf8)
    .map((n) => [n, headers[n]]);
}

/** A quoted human duration (`"5s"`, `"500ms"`, `"1m 30s"`, `"2h"`) in ms. */
function durationMs(quoted) {
  const text = quoted.replace(/^"|"$/g, '').trim();
  let total = 0;
  const re = /(\d+)\s*(ms|s|min|m|h)\s*/y;
  let m;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60000, min: 60000, h: 3600000 }[m[2]];
  }
  if (re.lastIndex !== text.length) throw new Error(`duration ${quoted}`);
  return total;
}

/**
 * The `[event-time]` table of a job file's text (`{maxOutOfOrdernessMs, allowedLatenessMs}`),
 * or null when it has none.
 */
export function eventTimeOf(jobToml) {
  const lines = jobToml.split('\n').map((l) => l.trim());
  const at = lines.indexOf('[event-time]');
  if (at < 0) return null;
  const settings = { maxOutOfOrdernessMs: 0, allowedLatenessMs: 0 };
  for (const raw of lines.slice(at + 1)) {
    if (raw.startsWith('[')) break;
    const line = raw.split(' #')[0].trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (name === 'max-out-of-orderness') settings.maxOutOfOrdernessMs = durationMs(value);
    else if (name === 'allowed-lateness') settings.allowedLatenessMs = durationMs(value);
  }
  return settings;
}

/**
 * Runs `input` the way the host runs a file source with event time: the watermark is the
 * largest timestamp so far minus the out-of-orderness minus 1 ms; the event-time timers
 * due at it fire before each record; with `[event-time]`, a record at or below the
 * watermark minus the allowed lateness is late; at the end the watermark jumps to the
 * maximum. Returns `{output, late}`, sink lines each.
 * @param {Harness} harness
 * @param {string} input
 * @param {{maxOutOfOrdernessMs: number, allowedLatenessMs: number} | null} eventTime
 */
export function runEventTime(harness, input, eventTime) {
  const settings = eventTime ?? { maxOutOfOrdernessMs: 0, allowedLatenessMs: 0 };
  const output = [];
  const late = [];
  let max = null;
  for (const line of inputLines(input)) {
    const watermark = max === null ? NO_WATERMARK : max - settings.maxOutOfOrdernessMs - 1;
    writeEmitted(output, harness.advanceWatermark(watermark));
    const timestamp = line.timestamp ?? 0;
    if (eventTime !== null && timestamp + settings.allowedLatenessMs <= watermark) {
      const headers = { ...line.headers, 'eddy-late-timestamp': String(timestamp), 'eddy-late-watermark': String(watermark) };
      late.push(sinkLine(encodeUtf8(line.key), encodeUtf8(line.value), Object.entries(headers)));
      continue;
    }
    writeEmitted(output, harness.processRecord({ ...line, timestamp, headers: sortedHeaders(line.headers) }));
    max = max === null ? timestamp : Math.max(max, timestamp);
  }
  writeEmitted(output, harness.advanceWatermark(9223372036854775807));
  return { output: output.map((l) => `${l}\n`).join(''), late: late.map((l) => `${l}\n`).join('') };
}
