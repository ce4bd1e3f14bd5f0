// State: the declarations an operator makes in `open(states)` through a StateRegistry, and
// the typed handles it gets back. Keyed state (ValueState, MapState, ListState,
// ReducingState, AggregatingState) is scoped to the current record's key; operator state
// (OperatorListState) is one list per worker. Handles reach the state of the call in
// progress: they need no context argument, and fail outside `process` / `onTimer` (keyed)
// or outside `initState` / `process` / `onTimer` (operator state).

import { decodeJsonRange, decodeWith, encodeWith, isCodec, json } from './codec.js';
import { OperatorError, StateError, messageOf } from './errors.js';

/** The schema version a state gets unless declared otherwise. */
export const DEFAULT_SCHEMA_VERSION = 1;
/** How many entries `MapState.entries` and `keys` fetch per host call by default. */
export const DEFAULT_PAGE_SIZE = 256;

const TTL_UPDATES = ['on-create-and-write', 'on-read-and-write'];
const REDISTRIBUTIONS = ['even-split', 'union'];
const KEYED_OPTIONS = ['schemaVersion', 'ttl', 'ttlUpdate', 'codec'];
const OPERATOR_OPTIONS = ['schemaVersion', 'redistribution', 'codec'];

function isU32(n) {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Whether JSON gives `v` back unchanged (so the batch can keep it instead of decoding). */
function jsonRoundTrips(v) {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    default:
      return v === null;
  }
}

/** A failed state call, naming the state (as the Rust SDK words it). */
function failure(kind, name, what, error) {
  if (error instanceof StateError) {
    return OperatorError.failed(`${kind} \`${name}\`: ${what}: ${error.message}`);
  }
  if (error instanceof OperatorError) {
    return OperatorError.failed(`${kind} \`${name}\`: ${what}: ${error.message}`);
  }
  return error;
}

/**
 * Where an operator declares its state, in `open(states)`. Keyed states are numbered in
 * declaration order (their handles); operator states have their own numbering. Names must
 * be non-empty and unique across keyed and operator states; a bad declaration makes `init`
 * fail with `invalid-config`, naming it.
 */
export class StateRegistry {
  /** @param {import('./runtime.js').Runtime | null} runtime */
  constructor(runtime) {
    this.runtime = runtime;
    /** WIT `state-descriptor`s, in handle order. */
    this.states = [];
    this.codecs = [];
    /** WIT `operator-state-descriptor`s, in handle order. */
    this.operatorStates = [];
    this.operatorCodecs = [];
    this.problems = [];
  }

  /**
   * Declares a value state: one value per key.
   * @param {string} name
   * @param {object} [options] `schemaVersion`, `ttl` (ms), `ttlUpdate`, `codec`
   */
  value(name, options) {
    const [handle, codec] = this.declare(name, 'value', options);
    return new ValueState(this.runtime, handle, name, codec);
  }

  /** Declares a map state: a map per key, iterated in the byte order of the encoded keys. */
  map(name, options) {
    const [handle, codec] = this.declare(name, 'map', options);
    return new MapState(this.runtime, handle, name, codec);
  }

  /** Declares a list state: a list per key. */
  list(name, options) {
    const [handle, codec] = this.declare(name, 'list', options);
    return new ListState(this.runtime, handle, name, codec);
  }

  /**
   * Declares a reducing state: a value state that folds every added value into one with
   * `reduce(accumulated, added)`, e.g. `(a, b) => a + b`.
   */
  reducing(name, reduce, options) {
    if (typeof reduce !== 'function') {
      this.problems.push(`reducing state \`${name}\` needs a reduce function`);
    }
    return new ReducingState(this.value(name, options), reduce);
  }

  /**
   * Declares an aggregating state: a value state holding the accumulator of `fn`
   * (`createAccumulator()`, `add(value, accumulator)` returning the new accumulator — or
   * nothing, having changed it in place — and `getResult(accumulator)`).
   */
  aggregating(name, fn, options) {
    if (
      fn == null ||
      typeof fn.createAccumulator !== 'function' ||
      typeof fn.add !== 'function' ||
      typeof fn.getResult !== 'function'
    ) {
      this.problems.push(
        `aggregating state \`${name}\` needs an aggregate function with createAccumulator, add and getResult`,
      );
    }
    return new AggregatingState(this.value(name, options), fn);
  }

  /**
   * Declares an operator (non-keyed) list state: one list per worker, handed out again
   * at every start by its `redistribution` (`'even-split'`, the default, or `'union'`).
   * @param {string} name
   * @param {object} [options] `schemaVersion`, `redistribution`, `codec`
   */
  operatorList(name, options = {}) {
    this.checkOptions(name, options, OPERATOR_OPTIONS);
    this.checkName(name, 'operator state', this.operatorStates.length);
    const schemaVersion = this.schemaVersion(name, options.schemaVersion);
    let redistribution = options.redistribution ?? 'even-split';
    if (!REDISTRIBUTIONS.includes(redistribution)) {
      this.problems.push(
        `operator state \`${name}\` has redistribution ${JSON.stringify(redistribution)}; use 'even-split' or 'union'`,
      );
      redistribution = 'even-split';
    }
    const codec = this.codec(name, options.codec);
    const handle = this.operatorStates.length;
    this.operatorStates.push({ name: String(name), schemaVersion, redistribution, codec: codec.name });
    this.operatorCodecs.push(codec);
    return new OperatorListState(this.runtime, handle, name, codec);
  }

  /** The first problem with the declarations, thrown as an error. */
  check() {
    if (this.problems.length > 0) throw OperatorError.failed(this.problems[0]);
  }

  declare(name, kind, options = {}) {
    this.checkOptions(name, options, KEYED_OPTIONS);
    this.checkName(name, 'state', this.states.length);
    const schemaVersion = this.schemaVersion(name, options.schemaVersion);
    let ttl = null;
    if (options.ttl != null) {
      const ms = Math.floor(Number(options.ttl));
      if (!(ms >= 1) || !Number.isSafeInteger(ms)) {
        this.problems.push(
          `state \`${name}\` has a TTL of ${String(options.ttl)} ms, not a whole number of milliseconds of 1 or more; every value would expire at once`,
        );
      }
      let update = options.ttlUpdate ?? 'on-create-and-write';
      if (!TTL_UPDATES.includes(update)) {
        this.problems.push(
          `state \`${name}\` has ttlUpdate ${JSON.stringify(update)}; use 'on-create-and-write' or 'on-read-and-write'`,
        );
        update = 'on-create-and-write';
      }
      ttl = { ttlMs: Number.isSafeInteger(ms) && ms >= 1 ? ms : 1, update };
    } else if (options.ttlUpdate != null) {
      this.problems.push(
        `state \`${name}\` sets ttlUpdate ${JSON.stringify(options.ttlUpdate)} without a TTL; add \`ttl\` or drop the update policy`,
      );
    }
    const codec = this.codec(name, options.codec);
    const handle = this.states.length;
    this.states.push({ name: String(name), kind, schemaVersion, ttl, codec: codec.name });
    this.codecs.push(codec);
    return [handle, codec];
  }

  checkOptions(name, options, known) {
    if (options === null || typeof options !== 'object') {
      this.problems.push(`state \`${name}\`: options must be an object`);
      return;
    }
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) {
        this.problems.push(`state \`${name}\`: unknown option \`${key}\` (known: ${known.join(', ')})`);
      }
    }
  }

  schemaVersion(name, version) {
    if (version === undefined) return DEFAULT_SCHEMA_VERSION;
    if (!isU32(version)) {
      this.problems.push(`state \`${name}\` has schema version ${String(version)}, not an integer from 0 to 2^32 - 1`);
      return DEFAULT_SCHEMA_VERSION;
    }
    return version;
  }

  codec(name, codec) {
    if (codec === undefined) return json;
    if (!isCodec(codec)) {
      this.problems.push(`state \`${name}\`: a codec needs a name, encode(value) and decode(bytes)`);
      return json;
    }
    return codec;
  }

  checkName(name, what, index) {
    if (typeof name !== 'string' || name.length === 0) {
      this.problems.push(`${what} #${index} has an empty name; give every state a stable, unique name`);
    } else if (this.states.some((state) => state.name === name)) {
      this.problems.push(
        `state \`${name}\` is declared twice (the first time as a keyed state); state names must be unique across keyed and operator states`,
      );
    } else if (this.operatorStates.some((state) => state.name === name)) {
      this.problems.push(
        `state \`${name}\` is declared twice (the first time as an operator state); state names must be unique across keyed and operator states`,
      );
    }
  }
}

/** The context of the call in progress, or an error for a keyed state used outside one. */
function keyed(runtime, name) {
  const ctx = runtime === null ? null : runtime.ctx;
  if (ctx === null) {
    throw OperatorError.failed(
      `state \`${name}\`: keyed state is only reachable inside \`process\` and \`onTimer\``,
    );
  }
  return ctx;
}

/** What every state handle has: the runtime, its handle, its name and its codec. */
class StateHandle {
  constructor(runtime, handle, name, codec) {
    this.runtime = runtime;
    /** The state's handle (its index in the operator's states, or operator states). */
    this.handle = handle;
    this.name = name;
    this.codec = codec;
  }
}

/**
 * One value per key. The host prefetches value state into the batch, so a read costs no
 * host call; writes go back in the batch result (only the last one per key), so they cost
 * none either. Under a TTL renewed on reads (`ttlUpdate: 'on-read-and-write'`) a read of a
 * present value writes it back, which restarts its time to live.
 */
export class ValueState extends StateHandle {
  /** The current key's value, or `undefined` when it has none. */
  get() {
    const rt = this.runtime;
    const ctx = rt === null ? null : rt.ctx;
    if (ctx === null) keyed(rt, this.name);
    const batch = rt.batch;
    // The prefetched slot, inline (this is the per-record path); else the general one.
    const p = batch.position[this.handle];
    const key = ctx.keyIndex;
    if (p >= 0 && key < batch.nKeys) {
      const slot = key * batch.handles.length + p;
      const cached = batch.decoded[slot];
      if (cached !== undefined) {
        if (batch.written[slot] === 0 && batch.refreshOnRead[this.handle]) batch.cached(slot, this.handle);
        return cached;
      }
      return this.read(batch, slot);
    }
    let slot;
    try {
      slot = batch.slot(this.handle, key);
    } catch (error) {
      throw failure('state', this.name, 'get', error);
    }
    if (slot >= 0) return this.read(batch, slot);
    let bytes;
    try {
      bytes = batch.fetchedBytes(this.handle, key, rt.host);
    } catch (error) {
      throw failure('state', this.name, 'get', error);
    }
    return bytes === null ? undefined : this.decode(bytes);
  }

  /** Decodes the current value of a prefetched slot (and keeps it when it is a primitive). */
  read(batch, slot) {
    if (!batch.slotRange(slot, this.handle)) return undefined;
    let value;
    try {
      value =
        this.codec === json
          ? decodeJsonRange(batch.rangeBuf, batch.rangeStart, batch.rangeEnd)
          : this.codec.decode(batch.rangeBuf.subarray(batch.rangeStart, batch.rangeEnd));
    } catch (error) {
      throw OperatorError.failed(
        `state \`${this.name}\`: cannot decode value: cannot decode (${this.codec.name}): ${messageOf(error)}`,
      );
    }
    // An immutable value can be handed out again by the next read of the batch.
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) batch.cache(slot, value);
    return value;
  }

  /** The current key's value, or `fallback` when it has none. */
  getOr(fallback) {
    const value = this.get();
    return value === undefined ? fallback : value;
  }

  /** Sets the current key's value. */
  set(value) {
    const rt = this.runtime;
    const ctx = rt === null ? null : rt.ctx;
    if (ctx === null) keyed(rt, this.name);
    const batch = rt.batch;
    const deferred = this.codec === json && jsonRoundTrips(value);
    const p = batch.position[this.handle];
    const key = ctx.keyIndex;
    if (deferred && p >= 0 && key < batch.nKeys) {
      batch.writeSlotJson(key * batch.handles.length + p, value);
      return;
    }
    let bytes = null;
    if (!deferred) {
      try {
        bytes = encodeWith(this.codec, value);
      } catch (error) {
        throw failure('state', this.name, 'cannot encode value', error);
      }
    }
    try {
      const slot = batch.slot(this.handle, key);
      if (slot < 0) batch.writeFetched(this.handle, key, bytes ?? json.encode(value));
      else if (deferred) batch.writeSlotJson(slot, value);
      else batch.writeSlot(slot, bytes);
    } catch (error) {
      throw failure('state', this.name, 'set', error);
    }
  }

  /** Removes the current key's value. */
  clear() {
    const rt = this.runtime;
    const ctx = keyed(rt, this.name);
    const batch = rt.batch;
    try {
      const slot = batch.slot(this.handle, ctx.keyIndex);
      if (slot < 0) batch.writeFetched(this.handle, ctx.keyIndex, null);
      else batch.writeSlot(slot, null);
    } catch (error) {
      throw failure('state', this.name, 'clear', error);
    }
  }

  decode(bytes) {
    try {
      return decodeWith(this.codec, bytes);
    } catch (error) {
      throw failure('state', this.name, 'cannot decode value', error);
    }
  }
}

/** Calls `fn(host, keyIndex)` for a keyed state, naming the state in errors. */
function hostCall(state, what, fn) {
  const rt = state.runtime;
  const ctx = keyed(rt, state.name);
  try {
    return fn(rt.host, ctx.keyIndex);
  } catch (error) {
    throw failure('state', state.name, what, error);
  }
}

function encodeFor(state, value, what) {
  try {
    return encodeWith(state.codec, value);
  } catch (error) {
    throw failure('state', state.name, what, error);
  }
}

function decodeFor(state, bytes, what) {
  try {
    return decodeWith(state.codec, bytes);
  } catch (error) {
    throw failure('state', state.name, what, error);
  }
}

function pageSizeOf(options) {
  const size = options == null || options.pageSize == null ? DEFAULT_PAGE_SIZE : Number(options.pageSize);
  if (Number.isNaN(size)) throw new TypeError(`pageSize must be a number, not ${String(options.pageSize)}`);
  return Math.min(Math.max(1, Math.floor(size)), 0xffffffff);
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A map per key. Every call crosses to the host (map state is not prefetched). The host
 * orders entries by the **encoded** map keys' bytes: with JSON, strings sort by their JSON
 * text (`"a"` < `"ab"` < `"b"`), before all numbers, which sort by their digits as text
 * (`10` < `9`).
 */
export class MapState extends StateHandle {
  /** The value under `key`, or `undefined`. */
  get(key) {
    const k = encodeFor(this, key, 'cannot encode map key');
    const bytes = hostCall(this, 'get', (host, index) => host.mapGet(this.handle, index, k));
    return bytes == null ? undefined : decodeFor(this, bytes, 'cannot decode map value');
  }

  /** Puts `value` under `key`, replacing any value there. */
  put(key, value) {
    const k = encodeFor(this, key, 'cannot encode map key');
    const v = encodeFor(this, value, 'cannot encode map value');
    hostCall(this, 'put', (host, index) => host.mapPut(this.handle, index, k, v));
  }

  /** Removes `key` (nothing happens when it is absent). */
  remove(key) {
    const k = encodeFor(this, key, 'cannot encode map key');
    hostCall(this, 'remove', (host, index) => host.mapRemove(this.handle, index, k));
  }

  /** Whether the map holds `key`. */
  contains(key) {
    const k = encodeFor(this, key, 'cannot encode map key');
    return hostCall(this, 'contains', (host, index) => host.mapContains(this.handle, index, k));
  }

  /** Whether the map is empty. */
  isEmpty() {
    return hostCall(this, 'is-empty', (host, index) => host.mapIsEmpty(this.handle, index));
  }

  /** Removes every entry. */
  clear() {
    hostCall(this, 'clear', (host, index) => host.mapClear(this.handle, index));
  }

  /**
   * The `[key, value]` entries in the byte order of the encoded keys, fetched from the host
   * a page (`pageSize`, default 256) at a time. Changes behind the cursor are safe: each
   * page starts after the last key of the previous one.
   * @param {{pageSize?: number}} [options]
   */
  *entries(options) {
    const max = pageSizeOf(options);
    let cursor = null;
    for (;;) {
      const page = hostCall(this, 'entries', (host, index) => host.mapEntries(this.handle, index, cursor, max));
      const next = page.next == null ? null : page.next;
      this.checkAdvance(page.entries.length, cursor, next, 'entries');
      for (const [k, v] of page.entries) {
        yield [decodeFor(this, k, 'cannot decode map key'), decodeFor(this, v, 'cannot decode map value')];
      }
      if (next === null) return;
      cursor = next;
    }
  }

  /**
   * The keys, in the byte order of their encoding, paged like `entries`.
   * @param {{pageSize?: number}} [options]
   */
  *keys(options) {
    const max = pageSizeOf(options);
    let cursor = null;
    for (;;) {
      const page = hostCall(this, 'keys', (host, index) => host.mapKeys(this.handle, index, cursor, max));
      const next = page.next == null ? null : page.next;
      this.checkAdvance(page.keys.length, cursor, next, 'keys');
      for (const k of page.keys) yield decodeFor(this, k, 'cannot decode map key');
      if (next === null) return;
      cursor = next;
    }
  }

  /** `[...entries(options)]`. */
  entriesArray(options) {
    return [...this.entries(options)];
  }

  /** `[...keys(options)]`. */
  keysArray(options) {
    return [...this.keys(options)];
  }

  checkAdvance(n, cursor, next, what) {
    if (n === 0 && next !== null && cursor !== null && sameBytes(next, cursor)) {
      throw OperatorError.failed(
        `state \`${this.name}\`: ${what}: the host returned an empty page that does not advance the cursor`,
      );
    }
  }
}

/** A list per key. Every call crosses to the host (list state is not prefetched). */
export class ListState extends StateHandle {
  /** The whole list (empty when the key has none). */
  get() {
    const items = hostCall(this, 'get', (host, index) => host.listGet(this.handle, index));
    const out = new Array(items.length);
    for (let i = 0; i < items.length; i++) out[i] = decodeFor(this, items[i], 'cannot decode list element');
    return out;
  }

  /** Appends one element. */
  add(value) {
    const bytes = encodeFor(this, value, 'cannot encode list element');
    hostCall(this, 'add', (host, index) => host.listAdd(this.handle, index, bytes));
  }

  /** Appends every element of `values`, in one host call. */
  addAll(values) {
    const encoded = Array.from(values, (v) => encodeFor(this, v, 'cannot encode list element'));
    if (encoded.length === 0) return;
    hostCall(this, 'add-all', (host, index) => host.listAddAll(this.handle, index, encoded));
  }

  /** Replaces the whole list with `values` (an empty one clears it). */
  update(values) {
    const encoded = Array.from(values, (v) => encodeFor(this, v, 'cannot encode list element'));
    hostCall(this, 'update', (host, index) => host.listUpdate(this.handle, index, encoded));
  }

  /** Removes the list. */
  clear() {
    hostCall(this, 'clear', (host, index) => host.listClear(this.handle, index));
  }
}

/** A value state that folds every added value into one with a reduce function. */
export class ReducingState {
  constructor(value, reduce) {
    this.value = value;
    this.reduce = reduce;
    this.handle = value.handle;
    this.name = value.name;
  }

  /** Folds `value` into the current key's value (which becomes `value` when there is none). */
  add(value) {
    const current = this.value.get();
    this.value.set(current === undefined ? value : this.reduce(current, value));
  }

  /** The current key's reduced value, or `undefined` when nothing was added. */
  get() {
    return this.value.get();
  }

  /** Forgets the current key's value. */
  clear() {
    this.value.clear();
  }
}

/** A value state holding an aggregate function's accumulator. */
export class AggregatingState {
  constructor(value, fn) {
    this.value = value;
    this.fn = fn;
    this.handle = value.handle;
    this.name = value.name;
  }

  /** Adds `value` to the current key's accumulator (a new one when there is none). */
  add(value) {
    let accumulator = this.value.get();
    if (accumulator === undefined) accumulator = this.fn.createAccumulator();
    const next = this.fn.add(value, accumulator);
    this.value.set(next === undefined ? accumulator : next);
  }

  /** The current key's result, or `undefined` when nothing was added. */
  get() {
    const accumulator = this.value.get();
    return accumulator === undefined ? undefined : this.fn.getResult(accumulator);
  }

  /** The current key's accumulator, or `undefined`. */
  accumulator() {
    return this.value.get();
  }

  /** Forgets the current key's accumulator. */
  clear() {
    this.value.clear();
  }
}

/**
 * A list per worker, not scoped to a key (Flink's operator ListState): reachable in
 * `initState`, `process` and `onTimer`. Every call crosses to the host; there is no TTL.
 * Changes made during a call that fails are undone with the call's other effects.
 */
export class OperatorListState extends StateHandle {
  call(what, fn) {
    const rt = this.runtime;
    if (rt === null || (rt.ctx === null && rt.initCtx === null)) {
      throw OperatorError.failed(
        `operator state \`${this.name}\`: reachable only inside \`initState\`, \`process\` and \`onTimer\``,
      );
    }
    try {
      return fn(rt.host);
    } catch (error) {
      throw failure('operator state', this.name, what, error);
    }
  }

  encode(value) {
    try {
      return encodeWith(this.codec, value);
    } catch (error) {
      throw failure('operator state', this.name, 'cannot encode item', error);
    }
  }

  /** This worker's items, oldest first. */
  get() {
    const items = this.call('get', (host) => host.operatorListGet(this.handle));
    return items.map((bytes) => {
      try {
        return decodeWith(this.codec, bytes);
      } catch (error) {
        throw failure('operator state', this.name, 'cannot decode item', error);
      }
    });
  }

  /** Appends one item. */
  add(value) {
    const bytes = this.encode(value);
    this.call('add', (host) => host.operatorListAdd(this.handle, bytes));
  }

  /** Appends every item of `values`, in order (one host call per item). */
  addAll(values) {
    const encoded = Array.from(values, (v) => this.encode(v));
    for (const bytes of encoded) this.call('add-all', (host) => host.operatorListAdd(this.handle, bytes));
  }

  /** Replaces this worker's items (an empty list clears them). */
  update(values) {
    const encoded = Array.from(values, (v) => this.encode(v));
    this.call('update', (host) => host.operatorListUpdate(this.handle, encoded));
  }

  /** Removes this worker's items. */
  clear() {
    this.call('clear', (host) => host.operatorListUpdate(this.handle, []));
  }
}
