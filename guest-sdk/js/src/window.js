// Event-time windows, built on keyed state and timers only (a port of the Rust SDK's
// `eddy_sdk::window`, with the same semantics): TumblingWindows, SlidingWindows and
// SessionWindows, finished with a window function — `reduce`, `aggregate` or `process` —
// into a Windows handle. An operator declares it in `open(states)`, feeds it from `process`
// with `add` and lets it handle its timers in `onTimer` with `onTimer`; both hand back the
// windows that fired, and the operator emits what it wants from them.
//
// Semantics (Flink's event-time windows):
// - A Window `[start, end)` holds the elements whose timestamps fall in it; its last
//   timestamp is `end - 1`. It fires once when the watermark reaches `end - 1`.
// - Allowed lateness `L` (default 0): a window's state is kept until the watermark reaches
//   `end - 1 + L`, when a cleanup timer removes it. An element that arrives after the window
//   fired but before its cleanup is added and fires the window again at once (from `add`,
//   `late: true`), with everything the window holds.
// - An element whose every window has been cleaned up is dropped: `add` changes nothing and
//   says so (`dropped: true`).
// - Sessions: an element at `t` opens `[t, t + gap)`; sessions that overlap merge, so an
//   element between two sessions bridges them. Elements less than `gap` apart share a
//   session; `gap` or more apart (sessions that only touch), they do not.
//
// State (JSON, schema version 1), for windows named `name`, declared in this order:
// - `{name}/windows`: a value state per key, the key's live windows in order as
//   `[start, end, pending, accumulator]` (`pending`: not fired since its last element; the
//   accumulator is the reduced value, the aggregate's accumulator, or null for process).
// - `{name}/elements`, process windows only: a list state per key of `[timestamp, element]`,
//   each element once, removed when its last window is cleaned up.
//
// Timers: whenever they write a key's windows, the windows register an event-time timer at
// `end - 1` of every pending window and at `end - 1 + L` of every live one — except when an
// element only adds to windows that were pending already and every live window is pending
// (their timers are registered) — and never delete one. A timer is (key, domain, timestamp)
// alone, shared with the operator's own timers and every other Windows of the operator: a
// timer nothing is due at makes `onTimer` answer null, and `onTimer` does whatever is due at
// any event-time timer of the key, whoever registered it.
//
// Costs: the window value state is prefetched, so `add` and `onTimer` of reduce and
// aggregate windows make no host call, but decode and rewrite the key's whole list of live
// windows: keep accumulators small. A process window makes one host call per `add` and
// reads the key's element list once per call that fires or cleans up.

import { OperatorError } from './errors.js';
import { NO_WATERMARK } from './runtime.js';

/**
 * The most sliding windows one element may belong to (`size / slide`, rounded up); larger
 * ratios make the declaration fail `check()`.
 */
export const MAX_WINDOWS_PER_ELEMENT = 1000;

const TUMBLING = 0;
const SLIDING = 1;
const SESSION = 2;

/** A window of event time: the timestamps from `start` (included) to `end` (excluded), in ms. */
export class Window {
  /**
   * @param {number} start the first timestamp in the window
   * @param {number} end the first timestamp after it
   */
  constructor(start, end) {
    this.start = start;
    this.end = end;
  }

  /** The last timestamp in the window, `end - 1`: it fires when the watermark reaches it. */
  maxTimestamp() {
    return this.end - 1;
  }

  /** Whether `timestamp` is in the window. */
  contains(timestamp) {
    return this.start <= timestamp && timestamp < this.end;
  }

  /** `[start, end)`. */
  toString() {
    return `[${this.start}, ${this.end})`;
  }
}

/**
 * What `Windows.add` did with an element: `fired`, the windows it fired at once because
 * the watermark had already passed their end (late firings, within the allowed lateness;
 * usually none), and `dropped`, whether it came too late for every window it belongs to
 * (each was cleaned up already) and changed nothing. Iterating it goes over `fired`.
 * @template O
 */
export class Added {
  /**
   * @param {Array<{window: Window, result: O, late: boolean}>} fired
   * @param {boolean} dropped
   */
  constructor(fired, dropped) {
    this.fired = fired;
    this.dropped = dropped;
  }

  [Symbol.iterator]() {
    return this.fired[Symbol.iterator]();
  }
}

// -- window functions (internal): what a window keeps, and how it makes its result --------

/** Reduce windows: the accumulator is the elements folded with `reduce(a, b)`. */
class ReduceFunction {
  constructor(reduce) {
    this.reduce = reduce;
    this.canMerge = true;
  }

  create(input) {
    return input;
  }

  accumulate(accumulator, input) {
    return this.reduce(accumulator, input);
  }

  merge(a, b) {
    return this.reduce(a, b);
  }

  begin() {}

  store() {}

  result(ctx, window, accumulator) {
    return accumulator;
  }

  retain() {}
}

/** Aggregate windows: the accumulator is an aggregate function's. */
class AggregateFunction {
  constructor(fn) {
    this.fn = fn;
    this.canMerge = fn != null && typeof fn.merge === 'function';
  }

  create(input) {
    return this.accumulate(this.fn.createAccumulator(), input);
  }

  accumulate(accumulator, input) {
    const next = this.fn.add(input, accumulator);
    return next === undefined ? accumulator : next;
  }

  merge(a, b) {
    if (!this.canMerge) {
      throw OperatorError.failed('aggregate windows cannot merge without an aggregate function that has `merge`');
    }
    const merged = this.fn.merge(a, b);
    return merged === undefined ? a : merged;
  }

  begin() {}

  store() {}

  result(ctx, window, accumulator) {
    return this.fn.getResult(accumulator);
  }

  retain() {}
}

/** Process windows: the elements are kept in list state; the function sees them all. */
class ProcessFunction {
  constructor(fn, elements) {
    this.fn = fn;
    this.elements = elements;
    this.canMerge = true;
    /** The key's element list, read once per call (null: not read yet). */
    this.list = null;
  }

  create() {
    return null;
  }

  accumulate() {
    return null;
  }

  merge() {
    return null;
  }

  begin() {
    this.list = null;
  }

  store(ctx, timestamp, input) {
    this.elements.add([timestamp, input]);
    this.list = null;
  }

  read() {
    if (this.list === null) this.list = this.elements.get();
    return this.list;
  }

  result(ctx, window, accumulator) {
    const all = this.read();
    const start = window.start;
    const end = window.end;
    const elements = [];
    for (let i = 0; i < all.length; i++) {
      const t = all[i][0];
      if (start <= t && t < end) elements.push(all[i]);
    }
    // Array sort is stable: equal timestamps keep the order they were added in.
    elements.sort(byTimestamp);
    return this.fn(ctx.key, window, elements);
  }

  retain(ctx, live) {
    if (live.length === 0) {
      this.elements.clear();
      this.list = [];
      return;
    }
    const all = this.read();
    const kept = all.filter((element) => {
      const t = element[0];
      for (let i = 0; i < live.length; i++) if (live[i][0] <= t && t < live[i][1]) return true;
      return false;
    });
    if (kept.length !== all.length) this.elements.update(kept);
    this.list = kept;
  }
}

function byTimestamp(a, b) {
  return a[0] - b[0];
}

function bySpan(a, b) {
  return a[0] - b[0] || a[1] - b[1];
}

// -- declarations ----------------------------------------------------------------------------

/** What is wrong with `value` as a number of milliseconds named `what`, if anything. */
function notWhole(what, value) {
  return Number.isSafeInteger(value) ? null : `${what} must be a whole number of milliseconds, got ${String(value)}`;
}

/** How many sliding windows hold each element: `size / slide` rounded up (both positive). */
function windowsPerElement(size, slide) {
  // Exact for safe integers: the division of a multiple of `slide`.
  const rest = size % slide;
  return (size - rest) / slide + (rest === 0 ? 0 : 1);
}

/** What is wrong with `spec` for windows named `name`, or null. */
function problemOf(spec, name) {
  if (typeof name !== 'string' || name.length === 0) return 'the windows need a name (it names their state)';
  const lateness = spec.allowedLateness;
  const problem = notWhole('the allowed lateness', lateness);
  if (problem !== null) return problem;
  if (lateness < 0) return `the allowed lateness must not be negative, got ${lateness} ms`;
  switch (spec.kind) {
    case TUMBLING:
      return (
        notWhole('the window size', spec.size) ??
        notWhole('the window offset', spec.offset) ??
        (spec.size <= 0 ? `the window size must be positive, got ${spec.size} ms` : null)
      );
    case SLIDING: {
      const { size, slide } = spec;
      const whole =
        notWhole('the window size', size) ??
        notWhole('the window slide', slide) ??
        notWhole('the window offset', spec.offset);
      if (whole !== null) return whole;
      if (size <= 0 || slide <= 0) return `the window size and slide must be positive, got ${size} ms and ${slide} ms`;
      const n = windowsPerElement(size, slide);
      if (n > MAX_WINDOWS_PER_ELEMENT) {
        return (
          `a size of ${size} ms sliding by ${slide} ms puts every element in ${n} windows, ` +
          `more than the ${MAX_WINDOWS_PER_ELEMENT} allowed; slide by more`
        );
      }
      return null;
    }
    default:
      return (
        notWhole('the session gap', spec.gap) ??
        (spec.gap <= 0 ? `the session gap must be positive, got ${spec.gap} ms` : null)
      );
  }
}

/** Reports a bad declaration to the registry, so that `init` fails with `invalid-config`. */
function declarationProblem(states, problem) {
  states.problems.push(problem);
}

/** Declares the states of windows named `name` and makes the handle. */
function build(spec, states, name, makeFunction) {
  const windows = states.value(`${name}/windows`);
  const fn = makeFunction(states);
  return new Windows(name, spec, windows, fn);
}

function reduceWith(spec, states, name, reduce) {
  if (typeof reduce !== 'function') {
    declarationProblem(states, `windows \`${name}\` need a reduce function (a, b) => combined`);
  }
  return build(spec, states, name, () => new ReduceFunction(reduce));
}

function aggregateWith(spec, states, name, fn, needsMerge) {
  if (
    fn == null ||
    typeof fn.createAccumulator !== 'function' ||
    typeof fn.add !== 'function' ||
    typeof fn.getResult !== 'function'
  ) {
    declarationProblem(states, `windows \`${name}\` need an aggregate function with createAccumulator, add and getResult`);
  } else if (needsMerge && typeof fn.merge !== 'function') {
    declarationProblem(
      states,
      `session windows \`${name}\` merge their accumulators: the aggregate function needs merge(a, b)`,
    );
  }
  return build(spec, states, name, () => new AggregateFunction(fn));
}

function processWith(spec, states, name, fn) {
  if (typeof fn !== 'function') {
    declarationProblem(states, `windows \`${name}\` need a process function (key, window, elements) => result`);
  }
  return build(spec, states, name, (registry) => new ProcessFunction(fn, registry.list(`${name}/elements`)));
}

/**
 * What the three kinds of windows share: the window functions that finish a declaration
 * into a `Windows` handle.
 */
class WindowAssigner {
  /**
   * Finishes the declaration with a reduce function `(a, b) => combined` (which must not
   * change `b`, the element): each window's result is its elements folded into one. `name`
   * names the state (`{name}/windows`): keep it across versions.
   * @param {import('./state.js').StateRegistry} states
   * @param {string} name
   * @param {(a: any, b: any) => any} reduce
   * @returns {Windows}
   */
  reduce(states, name, reduce) {
    return reduceWith(this._spec, states, name, reduce);
  }

  /**
   * Finishes the declaration with an aggregate function `{createAccumulator, add(value,
   * acc), getResult(acc)}` (`add` returns the new accumulator, or nothing having changed it
   * in place), as `states.aggregating` takes; with `merge(a, b)` too, the windows can be
   * reconfigured into sessions. Session windows need `merge(a, b)`: the accumulator of
   * everything both hold (`a` is the earlier session's; return the merged accumulator, or
   * nothing having merged `b` into `a`); without it `init` fails. State: `{name}/windows`.
   * @returns {Windows}
   */
  aggregate(states, name, fn) {
    return aggregateWith(this._spec, states, name, fn, this._spec.kind === SESSION);
  }

  /**
   * Finishes the declaration with a process function `(key, window, elements) => result`
   * that sees a window's elements when it fires: `[timestamp, element]` pairs in timestamp
   * order (equal timestamps in the order they were added; read-only: the pairs may be shared
   * with other windows firing in the same call). State: `{name}/windows` and
   * `{name}/elements`.
   * @returns {Windows}
   */
  process(states, name, fn) {
    return processWith(this._spec, states, name, fn);
  }
}

/**
 * Tumbling event-time windows: back-to-back windows of one size, e.g. every minute
 * (`[0, 60000)`, `[60000, 120000)`, …); each element is in exactly one. Immutable: each
 * method returns a new declaration.
 *
 * ```js
 * // Hourly sums, hours starting at 15 minutes past, kept a minute for late data.
 * const hourly = TumblingWindows.of(3_600_000).offset(900_000).allowedLateness(60_000)
 *   .reduce(states, 'hourly', (a, b) => a + b);
 * ```
 */
export class TumblingWindows extends WindowAssigner {
  /** Use `TumblingWindows.of`. */
  constructor(size, offset, allowedLateness) {
    super();
    this._spec = Object.freeze({ kind: TUMBLING, size, offset, allowedLateness });
    Object.freeze(this);
  }

  /**
   * Windows of `sizeMs` milliseconds (positive), starting at multiples of it plus `offsetMs`
   * (default 0).
   * @param {number} sizeMs
   * @param {number} [offsetMs]
   */
  static of(sizeMs, offsetMs = 0) {
    return new TumblingWindows(sizeMs, offsetMs, 0);
  }

  /** Windows start at `offsetMs` plus multiples of the size instead (e.g. days in a time zone). */
  offset(offsetMs) {
    return new TumblingWindows(this._spec.size, offsetMs, this._spec.allowedLateness);
  }

  /** How long after a window's end (in event time) its state is kept for late elements (default 0). */
  allowedLateness(latenessMs) {
    return new TumblingWindows(this._spec.size, this._spec.offset, latenessMs);
  }
}

/**
 * Sliding event-time windows: windows of one size that start every `slide`, e.g. the last
 * 10 minutes every minute; an element is in `size / slide` of them (rounded up; in none when
 * it falls in a gap of a slide larger than the size). Immutable.
 *
 * ```js
 * const last10 = SlidingWindows.of(600_000, 60_000).reduce(states, 'last-10-minutes', (a, b) => a + b);
 * ```
 */
export class SlidingWindows extends WindowAssigner {
  /** Use `SlidingWindows.of`. */
  constructor(size, slide, offset, allowedLateness) {
    super();
    this._spec = Object.freeze({ kind: SLIDING, size, slide, offset, allowedLateness });
    Object.freeze(this);
  }

  /**
   * Windows of `sizeMs` milliseconds starting every `slideMs` (both positive, at most
   * MAX_WINDOWS_PER_ELEMENT windows per element).
   */
  static of(sizeMs, slideMs) {
    return new SlidingWindows(sizeMs, slideMs, 0, 0);
  }

  /** Windows start at `offsetMs` plus multiples of the slide instead. */
  offset(offsetMs) {
    const s = this._spec;
    return new SlidingWindows(s.size, s.slide, offsetMs, s.allowedLateness);
  }

  /** How long after a window's end (in event time) its state is kept for late elements (default 0). */
  allowedLateness(latenessMs) {
    const s = this._spec;
    return new SlidingWindows(s.size, s.slide, s.offset, latenessMs);
  }
}

/**
 * Session windows: a key's elements less than `gap` apart form one session, which ends
 * `gap` after its last element; a session grows with every element, and two sessions merge
 * when an element bridges them. Sessions exactly `gap` apart stay apart. Immutable.
 *
 * ```js
 * const visits = SessionWindows.withGap(30 * 60_000).reduce(states, 'clicks', (a, b) => a + b);
 * ```
 */
export class SessionWindows extends WindowAssigner {
  /** Use `SessionWindows.withGap`. */
  constructor(gap, allowedLateness) {
    super();
    this._spec = Object.freeze({ kind: SESSION, gap, allowedLateness });
    Object.freeze(this);
  }

  /** Sessions that close after `gapMs` milliseconds (positive) without elements. */
  static withGap(gapMs) {
    return new SessionWindows(gapMs, 0);
  }

  /** How long after a session's end (in event time) its state is kept for late elements (default 0). */
  allowedLateness(latenessMs) {
    return new SessionWindows(this._spec.gap, latenessMs);
  }
}

// -- the windows -------------------------------------------------------------------------------

/**
 * Event-time windows over the current key's elements, made by the `reduce`, `aggregate`
 * and `process` methods of TumblingWindows, SlidingWindows and SessionWindows in
 * `open(states)`. See the module comment of window.js (or the README) for the semantics,
 * state and timers.
 *
 * ```js
 * open(states) {
 *   const sums = TumblingWindows.of(60_000).reduce(states, 'sums', (a, b) => a + b);
 *   const emit = (ctx, fired) => ctx.emit(ctx.key, `${fired.window}: ${fired.result}`);
 *   return {
 *     init() { sums.check(); },
 *     process(ctx, record) {
 *       for (const fired of sums.add(ctx, Number(record.valueText))) emit(ctx, fired);
 *     },
 *     onTimer(ctx, timer) {
 *       for (const fired of sums.onTimer(ctx, timer) ?? []) emit(ctx, fired);
 *     },
 *   };
 * }
 * ```
 */
export class Windows {
  /** Made by the declarations' `reduce`, `aggregate` and `process`. */
  constructor(name, spec, state, fn) {
    this._name = name;
    this._state = state;
    this._fn = fn;
    this._setSpec(spec);
  }

  _setSpec(spec) {
    this._kind = spec.kind;
    this._size = spec.size;
    this._slide = spec.kind === SLIDING ? spec.slide : spec.size;
    this._offset = spec.offset;
    this._gap = spec.gap;
    this._lateness = spec.allowedLateness;
    this._problem = problemOf(spec, this._name);
  }

  /** The name the windows were declared with (their state is `{name}/…`). */
  get name() {
    return this._name;
  }

  /**
   * Throws an `invalid-config` OperatorError when the declaration is not sound (an empty
   * name, a size, slide or gap that is not a positive whole number of ms, more than
   * MAX_WINDOWS_PER_ELEMENT sliding windows per element, a negative lateness), e.g.
   * "window `sums`: the window size must be positive, got 0 ms". Call it from `init` so that
   * bad parameters fail the start; otherwise `add` and `onTimer` fail with it.
   */
  check() {
    if (this._problem !== null) throw OperatorError.invalidConfig(`window \`${this._name}\`: ${this._problem}`);
  }

  /**
   * Replaces the shape and allowed lateness (a TumblingWindows, SlidingWindows or
   * SessionWindows declaration), keeping the name and state: for parameters from the
   * operator's config, in `init`. Windows already in the state keep their bounds; new
   * elements go to windows of the new shape. The new lateness applies to every window: the
   * cleanup timers it needs are registered at the key's next element or timer. Throws as
   * `check` does, and when asked for sessions by aggregate windows whose function has no
   * `merge` (then nothing changes).
   * @param {TumblingWindows | SlidingWindows | SessionWindows} windows
   */
  reconfigure(windows) {
    if (!(windows instanceof TumblingWindows || windows instanceof SlidingWindows || windows instanceof SessionWindows)) {
      throw new TypeError(`window \`${this._name}\`: reconfigure takes a TumblingWindows, SlidingWindows or SessionWindows`);
    }
    const spec = windows._spec;
    if (spec.kind === SESSION && !this._fn.canMerge) {
      throw OperatorError.invalidConfig(
        `window \`${this._name}\`: session windows merge their accumulators, ` +
          'which this aggregate function cannot; give it merge(a, b)',
      );
    }
    this._setSpec(spec);
    this.check();
  }

  _ready() {
    throw OperatorError.failed(`window \`${this._name}\`: ${this._problem}`);
  }

  /**
   * Adds `element` at `timestamp` (default: the record's, `ctx.timestamp`) to the current
   * key's windows that hold it, creating them (and merging sessions) as needed, and
   * registers their timers. A window whose end the watermark (`ctx.watermark`) has passed,
   * but which is still within its allowed lateness, fires at once: it is in the result's
   * `fired`, with `late: true`. An element for which every window was cleaned up changes
   * nothing and comes back with `dropped: true`. An element in the gap between sliding
   * windows is in none: nothing fires, nothing is dropped.
   * @param {import('./runtime.js').Context} ctx
   * @param {any} element
   * @param {number} [timestamp]
   * @returns {Added}
   */
  add(ctx, element, timestamp) {
    if (this._problem !== null) this._ready();
    const t = timestamp === undefined ? ctx.timestamp : timestamp;
    if (!Number.isInteger(t)) {
      throw OperatorError.failed(`window \`${this._name}\`: a timestamp must be a whole number of ms, not ${String(t)}`);
    }
    const watermark = ctx.watermark;
    const hasWatermark = watermark !== NO_WATERMARK;
    const lateness = this._lateness;
    const fn = this._fn;
    fn.begin();
    let slots;
    let took;
    // Whether the element only went into windows that were pending already, and every live
    // window is pending: their timers were registered when they became pending (a cleanup
    // time moved by a new lateness is registered when the window fires), so none is sent
    // again.
    let sameTimers = true;
    if (this._kind === SESSION) {
      sameTimers = false;
      const end = t + this._gap;
      slots = this._load();
      let start = t;
      let mergedEnd = end;
      let accumulator;
      let merged = false;
      let rest = slots;
      // Live sessions are disjoint and in order: the new one overlaps a run of them, and
      // covering that run overlaps no other.
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i];
        if (slot[0] < end && t < slot[1]) {
          if (!merged) rest = slots.slice(0, i);
          if (slot[0] < start) start = slot[0];
          if (slot[1] > mergedEnd) mergedEnd = slot[1];
          accumulator = merged ? fn.merge(accumulator, slot[3]) : slot[3];
          merged = true;
        } else if (merged) {
          rest.push(slot);
        }
      }
      // Only a session that merged with none can be expired (a live one is not).
      if (hasWatermark && mergedEnd - 1 + lateness <= watermark) return new Added([], true);
      accumulator = merged ? fn.accumulate(accumulator, element) : fn.create(element);
      const slot = [start, mergedEnd, false, accumulator];
      rest.push(slot);
      if (rest.length > 1 && rest[rest.length - 2][0] > start) rest.sort(bySpan);
      slots = rest;
      took = [slot];
    } else {
      const size = this._size;
      const step = this._slide;
      const into = (t - this._offset) % step;
      let start = t - (into < 0 ? into + step : into);
      if (start + size <= t) return new Added([], false); // in the gap between sliding windows
      slots = this._load();
      took = [];
      let created = false;
      for (let n = 0; start + size > t && n < MAX_WINDOWS_PER_ELEMENT; n++, start -= step) {
        const end = start + size;
        if (hasWatermark && end - 1 + lateness <= watermark) continue;
        let slot;
        for (let i = 0; i < slots.length; i++) {
          if (slots[i][0] === start && slots[i][1] === end) {
            slot = slots[i];
            break;
          }
        }
        if (slot === undefined) {
          sameTimers = false;
          created = true;
          slot = [start, end, false, fn.create(element)];
          slots.push(slot);
        } else {
          if (!slot[2]) sameTimers = false;
          slot[3] = fn.accumulate(slot[3], element);
        }
        took.push(slot);
      }
      if (took.length === 0) return new Added([], true);
      if (created) slots.sort(bySpan);
    }
    fn.store(ctx, t, element);

    const fired = [];
    let allPending = true;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      if (took.indexOf(slot) >= 0) {
        if (hasWatermark && slot[1] - 1 <= watermark) {
          const window = new Window(slot[0], slot[1]);
          fired.push({ window, result: fn.result(ctx, window, slot[3]), late: true });
          slot[2] = false;
        } else {
          slot[2] = true;
        }
      }
      if (!slot[2]) allPending = false;
    }
    if (!(fired.length === 0 && sameTimers && allPending)) this._registerTimers(ctx, slots);
    this._state.set(slots);
    return new Added(fired, false);
  }

  /**
   * Handles a fired timer of the current key — any event-time timer, whoever registered it:
   * fires every pending window whose end both the timer's timestamp and the watermark have
   * reached (in window order, `late: false`), and cleans up every window whose allowed
   * lateness is over by then. Returns the windows that fired when anything of these windows
   * was due (an empty array for a cleanup alone), and null when nothing was: a
   * processing-time timer, one of the operator's own, or one these windows no longer need
   * (they never delete timers). A timestamp can be both the windows' and the operator's: an
   * operator with timers of its own recognizes them by its own state, whatever this answers.
   * @param {import('./runtime.js').Context} ctx
   * @param {{timestamp: number, domain: string}} timer
   * @returns {Array<{window: Window, result: any, late: boolean}> | null}
   */
  onTimer(ctx, timer) {
    if (timer.domain !== 'event-time') return null;
    if (this._problem !== null) this._ready();
    const watermark = ctx.watermark;
    const time = timer.timestamp < watermark ? timer.timestamp : watermark;
    const slots = this._load();
    if (slots.length === 0) return null;
    const fn = this._fn;
    fn.begin();
    let fired = null;
    let expired = 0;
    const lateness = this._lateness;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const last = slot[1] - 1;
      if (slot[2] && last <= time) {
        const window = new Window(slot[0], slot[1]);
        if (fired === null) fired = [];
        fired.push({ window, result: fn.result(ctx, window, slot[3]), late: false });
        slot[2] = false;
      }
      if (last + lateness <= time) expired++;
    }
    let live = slots;
    if (expired > 0) {
      live = slots.filter((slot) => slot[1] - 1 + lateness > time);
      fn.retain(ctx, live);
    }
    // Nothing changed: the timers are registered still (again, as they may not be when the
    // allowed lateness grew since they were).
    this._registerTimers(ctx, live);
    if (fired === null && expired === 0) return null;
    if (live.length === 0) this._state.clear();
    else this._state.set(live);
    return fired === null ? [] : fired;
  }

  /**
   * The current key's live windows (those holding state), in order.
   * @param {import('./runtime.js').Context} ctx
   * @returns {Window[]}
   */
  windows(ctx) {
    return this._load().map((slot) => new Window(slot[0], slot[1]));
  }

  /** The key's live windows as stored: `[start, end, pending, accumulator]`, in order. */
  _load() {
    const stored = this._state.get();
    if (stored === undefined) return [];
    if (!Array.isArray(stored)) {
      throw OperatorError.failed(`window \`${this._name}\`: state \`${this._state.name}\` does not hold a list of windows`);
    }
    return stored;
  }

  /**
   * Registers every event-time timer `slots` need: the end of every pending window and the
   * cleanup time of every live one. Those that exist stay as they are, which keeps the
   * timers right after a change of the lateness without knowing which ones the key has.
   */
  _registerTimers(ctx, slots) {
    const lateness = this._lateness;
    const times = [];
    for (let i = 0; i < slots.length; i++) {
      const last = slots[i][1] - 1;
      times.push(last + lateness);
      if (slots[i][2]) times.push(last);
    }
    times.sort(byNumber);
    let previous;
    for (let i = 0; i < times.length; i++) {
      if (times[i] !== previous) ctx.registerEventTimeTimer(times[i]);
      previous = times[i];
    }
  }
}

function byNumber(a, b) {
  return a - b;
}
