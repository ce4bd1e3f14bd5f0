// The batch codec of docs/batch-format.md (version 2): reading the `process` and
// `on-timer` arguments with one DataView, keeping the batch's value state (prefetched
// values with the batch's own writes on top), and writing the result into one growing
// Uint8Array. Everything read here comes from the host, so every length and count is
// checked against the bytes left before it is used: a malformed batch is an error.

import { OperatorError, StateError } from './errors.js';
import { writeUtf8 } from './utf8.js';

/** The only batch format version this SDK reads and writes. */
export const VERSION = 2;

const TWO_32 = 4294967296;
const I64_MAX = 9223372036854775807; // rounds to 2^63 as a double
const I64_MIN = -9223372036854775808; // -2^63, exact

/** The i64 at `pos` of `dv`, as a number (exact within ±2^53). */
export function i64At(dv, pos) {
  return dv.getInt32(pos + 4, true) * TWO_32 + dv.getUint32(pos, true);
}

/** @returns {OperatorError} */
export function malformed(at, what) {
  return OperatorError.failed(`malformed batch at byte ${at}: ${what}`);
}

/** A bounds-checked little-endian cursor over a byte buffer. */
export class Reader {
  /** @param {Uint8Array} buf */
  constructor(buf) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.end = buf.length;
  }

  remaining() {
    return this.end - this.pos;
  }

  need(n, what) {
    if (n > this.end - this.pos) {
      throw malformed(this.pos, `${what} needs ${n} bytes but only ${this.end - this.pos} are left`);
    }
  }

  u8(what) {
    if (this.pos >= this.end) this.need(1, what);
    return this.buf[this.pos++];
  }

  u32(what) {
    if (this.pos + 4 > this.end) this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An i64 as a number (exact within ±2^53). */
  i64(what) {
    if (this.pos + 8 > this.end) this.need(8, what);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getInt32(this.pos + 4, true);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  /**
   * A u32 count of items that each take at least `minSize` bytes, refused when the bytes
   * left cannot hold that many.
   */
  count(minSize, what) {
    const at = this.pos;
    const count = this.u32(what);
    if (count * minSize > this.end - this.pos) {
      throw malformed(at, `${what} is ${count}, more than the ${this.end - this.pos} bytes left can hold`);
    }
    return count;
  }

  /** Skips a `bytes` field and returns where its bytes start (its end is `this.pos`). */
  span(what) {
    const len = this.u32(what);
    if (len > this.end - this.pos) this.need(len, what);
    const start = this.pos;
    this.pos += len;
    return start;
  }
}

/** A growing output buffer. */
export class Writer {
  /** @param {number} [capacity] */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(capacity, 64));
    this.dv = new DataView(this.buf.buffer);
    this.len = 0;
  }

  reserve(n) {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const buf = new Uint8Array(cap);
    buf.set(this.buf.subarray(0, this.len));
    this.buf = buf;
    this.dv = new DataView(buf.buffer);
  }

  u8(v) {
    if (this.len + 1 > this.buf.length) this.reserve(1);
    this.buf[this.len++] = v;
  }

  u32(v) {
    if (this.len + 4 > this.buf.length) this.reserve(4);
    this.dv.setUint32(this.len, v, true);
    this.len += 4;
  }

  /** Overwrites the u32 at `at` (a count reserved before the counted items). */
  patchU32(at, v) {
    this.dv.setUint32(at, v, true);
  }

  /** An i64 from a number (truncated, saturated at the i64 range) or a bigint. */
  i64(v) {
    if (this.len + 8 > this.buf.length) this.reserve(8);
    let lo;
    let hi;
    if (typeof v === 'bigint') {
      if (v > 9223372036854775807n) v = 9223372036854775807n;
      if (v < -9223372036854775808n) v = -9223372036854775808n;
      this.dv.setBigInt64(this.len, v, true);
      this.len += 8;
      return;
    }
    if (typeof v !== 'number' || Number.isNaN(v)) {
      throw new TypeError(`a timestamp must be a number of milliseconds, not ${String(v)}`);
    }
    if (v >= I64_MAX) {
      lo = 0xffffffff;
      hi = 0x7fffffff;
    } else if (v <= I64_MIN) {
      lo = 0;
      hi = -0x80000000;
    } else {
      v = Math.trunc(v);
      hi = Math.floor(v / TWO_32);
      lo = v - hi * TWO_32;
    }
    this.dv.setUint32(this.len, lo, true);
    this.dv.setInt32(this.len + 4, hi, true);
    this.len += 8;
  }

  /** A `bytes` field. */
  bytes(b) {
    const n = b.length;
    if (this.len + 4 + n > this.buf.length) this.reserve(4 + n);
    this.dv.setUint32(this.len, n, true);
    this.buf.set(b, this.len + 4);
    this.len += 4 + n;
  }

  /** A `string` field: UTF-8 `bytes`. */
  str(s) {
    const n = s.length;
    if (this.len + 4 + 3 * n > this.buf.length) this.reserve(4 + 3 * n);
    const buf = this.buf;
    const start = this.len + 4;
    // ASCII inline (the common case); the rest through writeUtf8.
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    const written = i === n ? n : i + writeUtf8(buf, start + i, i === 0 ? s : s.slice(i));
    this.dv.setUint32(this.len, written, true);
    this.len = start + written;
  }

  /** The bytes written (a view, not a copy). */
  finish() {
    return this.buf.subarray(0, this.len);
  }
}

/** A value-state slot the batch has not written. */
const UNTOUCHED = 0;
/** A read of a present value of a state whose TTL restarts on reads: written back as is. */
const REFRESH = 1;
/** A clear. */
const CLEARED = 2;
/** A set: the bytes are in `setValues`. */
const SET = 3;
/**
 * A set of a JSON primitive (number, string, boolean, null) whose bytes are written only
 * when the result is: the value is in `decoded` (immutable, so it cannot change meanwhile),
 * and only the last write of the slot is ever encoded.
 */
const SET_JSON = 4;

const NOT_VALUE = -1;
const NOT_PREFETCHED = -2;

/** `values` grown to hold `n` items (contents kept). */
function grow(values, n) {
  if (values.length >= n) return values;
  const next = new values.constructor(Math.max(n, values.length * 2, 64));
  next.set(values);
  return next;
}

/** The JSON text of a value `json` gives back unchanged (see `SET_JSON`). */
function jsonText(value) {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/**
 * The per-batch tables: the key table and every value state of every key of the batch.
 *
 * Reads see the prefetched value with the batch's own earlier writes on top; writes are
 * kept so that the result carries exactly the last write per (key index, handle). Under
 * `on-read-and-write` TTL a read of a present value the batch has not written becomes a
 * write of the same bytes (see docs/batch-format.md), as in the Rust SDK. The tables are
 * typed arrays that keep their capacity from batch to batch.
 */
export class BatchState {
  constructor() {
    /** @type {Uint8Array} */
    this.input = new Uint8Array(0);
    this.dv = new DataView(this.input.buffer);
    this.nKeys = 0;
    this.keyStart = new Int32Array(64);
    this.keyEnd = new Int32Array(64);
    /** Decoded key texts and key views, by key index (undefined: not made yet). */
    this.keyText = [];
    this.keyViews = [];
    this.handles = [];
    /** Per declared handle: its position in `handles`, or NOT_VALUE / NOT_PREFETCHED. */
    this.position = [];
    /** Per declared handle: whether a read restarts the value's TTL. */
    this.refreshOnRead = [];
    /** The states `position` and `refreshOnRead` were made for. */
    this.states = null;
    this.template = [];
    this.nSlots = 0;
    /** Key-major slots: start of the prefetched value in the input, -1 when absent. */
    this.slotStart = new Int32Array(64);
    this.slotEnd = new Int32Array(64);
    /** Per slot: UNTOUCHED, REFRESH, CLEARED, SET or SET_JSON. */
    this.written = new Uint8Array(64);
    /** Per slot: the bytes of a SET. */
    this.setValues = [];
    /** Per slot: the current value when it is a primitive (undefined: not known). */
    this.decoded = [];
    /** Value states the host did not prefetch, by `key * nStates + handle`. */
    this.fetched = new Map();
    this.nStates = 0;
    this.processingTime = 0;
    this.timerOps = new Writer(64);
    this.nTimerOps = 0;
  }

  /**
   * Reads the batch header of `input` (version, processing time, key table, prefetched
   * value states) and returns the reader, positioned at the item count.
   * @param {Uint8Array} input
   * @param {Array<{kind: string, ttl: {update: string} | null}>} states
   */
  begin(input, states) {
    if (this.states !== states) {
      this.states = states;
      this.nStates = states.length;
      this.refreshOnRead = states.map(
        (state) => state.kind === 'value' && state.ttl != null && state.ttl.update === 'on-read-and-write',
      );
      this.template = states.map((state) => (state.kind === 'value' ? NOT_PREFETCHED : NOT_VALUE));
    }
    this.input = input;
    this.keyText = [];
    this.keyViews = [];
    this.handles = [];
    this.position = this.template.slice();
    this.setValues = [];
    this.decoded = [];
    this.fetched.clear();
    this.timerOps.len = 0;
    this.nTimerOps = 0;

    const r = new Reader(input);
    this.dv = r.dv;
    const version = r.u8('version');
    if (version !== VERSION) {
      throw malformed(0, `version ${version} is not the supported version ${VERSION}`);
    }
    this.processingTime = r.i64('processing time');
    const nKeys = r.count(4, 'key count');
    this.keyStart = grow(this.keyStart, nKeys);
    this.keyEnd = grow(this.keyEnd, nKeys);
    const keyStart = this.keyStart;
    const keyEnd = this.keyEnd;
    for (let i = 0; i < nKeys; i++) {
      keyStart[i] = r.span('key');
      keyEnd[i] = r.pos;
    }
    this.nKeys = nKeys;
    const nHandles = r.count(4, 'value state count');
    for (let p = 0; p < nHandles; p++) {
      const at = r.pos;
      const handle = r.u32('value state handle');
      const slot = this.position[handle];
      if (slot === NOT_PREFETCHED) {
        this.position[handle] = p;
      } else if (slot === NOT_VALUE) {
        throw malformed(at, `prefetched handle ${handle} is not a value state`);
      } else if (slot === undefined) {
        throw malformed(at, `prefetched handle ${handle} names no state (the operator declares ${states.length})`);
      } else {
        throw malformed(at, `value state handle ${handle} is prefetched twice`);
      }
      this.handles.push(handle);
    }
    const nSlots = nKeys * nHandles;
    if (nSlots > r.remaining()) {
      throw malformed(
        r.pos,
        `${nKeys} keys × ${nHandles} value states need more slots than the ${r.remaining()} bytes left`,
      );
    }
    this.slotStart = grow(this.slotStart, nSlots);
    this.slotEnd = grow(this.slotEnd, nSlots);
    this.written = grow(this.written, nSlots);
    this.written.fill(UNTOUCHED, 0, nSlots);
    this.nSlots = nSlots;
    const slotStart = this.slotStart;
    const slotEnd = this.slotEnd;
    const buf = input;
    for (let s = 0; s < nSlots; s++) {
      const present = r.pos < r.end ? buf[r.pos++] : r.u8('slot present flag');
      if (present === 0) {
        slotStart[s] = -1;
      } else if (present === 1) {
        slotStart[s] = r.span('prefetched value');
        slotEnd[s] = r.pos;
      } else {
        throw malformed(r.pos - 1, `slot present flag is ${present}, not 0 or 1`);
      }
    }
    return r;
  }

  /** Forgets the batch, so that no value outlives the call that wrote it. */
  end() {
    this.input = new Uint8Array(0);
    this.setValues = [];
    this.decoded = [];
    this.keyText = [];
    this.keyViews = [];
    this.fetched.clear();
  }

  /** The key at `index` (a view of the input, made once per batch). */
  key(index) {
    let view = this.keyViews[index];
    if (view === undefined) {
      view = this.input.subarray(this.keyStart[index], this.keyEnd[index]);
      this.keyViews[index] = view;
    }
    return view;
  }

  /**
   * Records a timer change made while handling input `item`.
   * @param {number} item
   * @param {boolean} register
   * @param {number} domain 0 event time, 1 processing time
   * @param {number | bigint} timestamp
   */
  timerOp(item, register, domain, timestamp) {
    const w = this.timerOps;
    const at = w.len;
    w.u32(item);
    w.u8(register ? 1 : 0);
    w.u8(domain);
    try {
      w.i64(timestamp);
    } catch (error) {
      w.len = at;
      throw error;
    }
    this.nTimerOps++;
  }

  /**
   * The slot of `(handle, key)`: >= 0 in the prefetched table, -1 for a value state that
   * was not prefetched. Throws the host's errors for a bad handle or key.
   */
  slot(handle, key) {
    if (key >= this.nKeys) throw new StateError('bad-key', key);
    const p = this.position[handle];
    if (p >= 0) return key * this.handles.length + p;
    if (p === NOT_PREFETCHED) return -1;
    throw new StateError('bad-handle', handle);
  }

  /**
   * The current value of a prefetched slot when the batch knows it decoded (a primitive it
   * decoded or wrote), else undefined; marks a TTL-refreshing read.
   */
  cached(slot, handle) {
    const value = this.decoded[slot];
    if (value !== undefined && this.written[slot] === UNTOUCHED && this.refreshOnRead[handle]) {
      this.written[slot] = REFRESH;
    }
    return value;
  }

  /** Remembers the decoded current value of a slot (a primitive). */
  cache(slot, value) {
    this.decoded[slot] = value;
  }

  /**
   * Where the current bytes of a prefetched slot are: `[buffer, start, end]` fields of
   * this object (`rangeBuf`, `rangeStart`, `rangeEnd`), or false when the slot has no
   * value; marks a TTL-refreshing read.
   */
  slotRange(slot, handle) {
    const w = this.written[slot];
    if (w === SET) {
      const bytes = this.setValues[slot];
      this.rangeBuf = bytes;
      this.rangeStart = 0;
      this.rangeEnd = bytes.length;
      return true;
    }
    if (w === SET_JSON) {
      const bytes = encodeUtf8Json(this.decoded[slot]);
      this.rangeBuf = bytes;
      this.rangeStart = 0;
      this.rangeEnd = bytes.length;
      return true;
    }
    if (w === CLEARED) return false;
    const start = this.slotStart[slot];
    if (start < 0) return false;
    if (w === UNTOUCHED && this.refreshOnRead[handle]) this.written[slot] = REFRESH;
    this.rangeBuf = this.input;
    this.rangeStart = start;
    this.rangeEnd = this.slotEnd[slot];
    return true;
  }

  /** The current bytes of a prefetched slot, or null (see `slotRange`). */
  slotBytes(slot, handle) {
    if (!this.slotRange(slot, handle)) return null;
    return this.rangeBuf.subarray(this.rangeStart, this.rangeEnd);
  }

  /** Records a set (`bytes`) or a clear (`null`) of a prefetched slot. */
  writeSlot(slot, bytes) {
    if (bytes === null) {
      this.written[slot] = CLEARED;
      this.setValues[slot] = undefined;
    } else {
      this.written[slot] = SET;
      this.setValues[slot] = bytes;
    }
    this.decoded[slot] = undefined;
  }

  /** Records a set of a JSON primitive, encoded only when the result is written. */
  writeSlotJson(slot, value) {
    this.written[slot] = SET_JSON;
    this.setValues[slot] = undefined;
    this.decoded[slot] = value;
  }

  /** The value of a value state the host did not prefetch, read once through `host`. */
  fetchedBytes(handle, key, host) {
    const id = key * this.nStates + handle;
    let entry = this.fetched.get(id);
    if (entry === undefined) {
      const value = host.valueGet(handle, key);
      entry = { key, handle, value: value == null ? null : value, written: false };
      this.fetched.set(id, entry);
    }
    if (this.refreshOnRead[handle] && entry.value !== null) entry.written = true;
    return entry.value;
  }

  writeFetched(handle, key, bytes) {
    this.fetched.set(key * this.nStates + handle, { key, handle, value: bytes, written: true });
  }

  /**
   * Appends `n_writes` and the writes (the last per key index and handle, in key index then
   * handle-position order, then those of states that were not prefetched), then the timer
   * changes.
   * @param {Writer} out
   */
  writeOutput(out) {
    const n = this.nSlots;
    const written = this.written;
    const slotStart = this.slotStart;
    let count = 0;
    for (let s = 0; s < n; s++) {
      const w = written[s];
      if (w !== UNTOUCHED && (w !== REFRESH || slotStart[s] >= 0)) count++;
    }
    const fetched = [];
    for (const entry of this.fetched.values()) if (entry.written) fetched.push(entry);
    fetched.sort((a, b) => a.key - b.key || a.handle - b.handle);
    out.u32(count + fetched.length);
    const nHandles = this.handles.length || 1;
    for (let s = 0; s < n; s++) {
      const w = written[s];
      if (w === UNTOUCHED) continue;
      const key = Math.floor(s / nHandles);
      const handle = this.handles[s % nHandles];
      if (w === CLEARED) {
        out.u32(key);
        out.u32(handle);
        out.u8(0);
      } else if (w === SET_JSON) {
        out.u32(key);
        out.u32(handle);
        out.u8(1);
        out.str(jsonText(this.decoded[s]));
      } else if (w === SET) {
        out.u32(key);
        out.u32(handle);
        out.u8(1);
        out.bytes(this.setValues[s]);
      } else if (slotStart[s] >= 0) {
        out.u32(key);
        out.u32(handle);
        out.u8(1);
        out.bytes(this.input.subarray(slotStart[s], this.slotEnd[s]));
      }
    }
    for (const entry of fetched) {
      out.u32(entry.key);
      out.u32(entry.handle);
      if (entry.value === null) {
        out.u8(0);
      } else {
        out.u8(1);
        out.bytes(entry.value);
      }
    }
    out.u32(this.nTimerOps);
    const ops = this.timerOps.finish();
    out.reserve(ops.length);
    out.buf.set(ops, out.len);
    out.len += ops.length;
  }
}

function encodeUtf8Json(value) {
  const w = new Writer(16);
  w.str(jsonText(value));
  return w.finish().subarray(4);
}

/** The smallest encoded input record: key index, timestamp, watermark, value length, header count. */
export const MIN_RECORD_SIZE = 4 + 8 + 8 + 4 + 4;
/** An encoded fired timer: key index, timestamp, domain, watermark. */
export const TIMER_SIZE = 4 + 8 + 1 + 8;
