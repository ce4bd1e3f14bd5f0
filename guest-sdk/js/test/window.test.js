// Guards the event-time windows (src/window.js) through the harness, as the Rust SDK's
// tests/windows.rs guards its `window` module: when windows fire, allowed lateness and
// cleanup, dropped elements, session merging, the timers and state they leave, sharing
// timers with the operator's own, and — on pseudo-random out-of-order input run the way the
// host runs it — the same results as a straightforward batch computation.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MAX_WINDOWS_PER_ELEMENT,
  OperatorError,
  SessionWindows,
  SlidingWindows,
  StateRegistry,
  TumblingWindows,
  Window,
  defineOperator,
  NO_WATERMARK,
} from '../src/index.js';
import { Harness, decodeOutput, encodeInput } from '../src/testing.js';

const MAX = 9223372036854775807; // i64::MAX (2^63 as a number): the watermark at the end

/** Counts elements; merges for sessions. */
const count = {
  createAccumulator: () => 0,
  add: (_, n) => n + 1,
  getResult: (n) => n,
  merge: (a, b) => a + b,
};

/** The windows a config names: `{"shape": "tumbling" | "sliding" | "session", …}`. */
function shapeOf(config) {
  const lateness = config.lateness ?? 0;
  switch (config.shape) {
    case 'tumbling':
      return TumblingWindows.of(config.size).offset(config.offset ?? 0).allowedLateness(lateness);
    case 'sliding':
      return SlidingWindows.of(config.size, config.slide).allowedLateness(lateness);
    case 'session':
      return SessionWindows.withGap(config.gap).allowedLateness(lateness);
    default:
      throw OperatorError.invalidConfig(`probe config: unknown shape ${config.shape}`);
  }
}

/** `"{function} {start} {end} {result}[ late]"` per fired window. */
function emitFired(ctx, name, fired) {
  for (const f of fired) {
    const result = Array.isArray(f.result) ? JSON.stringify(f.result) : String(f.result);
    ctx.emit(ctx.key, `${name} ${f.window.start} ${f.window.end} ${result}${f.late ? ' late' : ''}`);
  }
}

/**
 * Puts every record (value: an integer id) in three windows of one shape — process (`ids`),
 * reduce (`sum`) and aggregate (`count`) — and emits what fires, and `"dropped {id}"` for a
 * dropped element. A value `own T` registers an event-time timer of the operator's own at
 * `T`; it emits `"own T"` when it fires.
 */
const probe = defineOperator({
  name: 'window-probe',
  version: '0.1.0',
  open(states) {
    // Sessions by default, so that `count` is declared able to merge.
    const sessions = SessionWindows.withGap(10);
    const ids = sessions.process(states, 'ids', (key, window, elements) => {
      assert.ok(key.length > 0);
      assert.ok(elements.every(([t]) => window.contains(t)));
      return elements.map(([, id]) => id);
    });
    const sum = sessions.reduce(states, 'sum', (a, b) => a + b);
    const counts = sessions.aggregate(states, 'count', count);
    const own = states.value('own');
    return {
      init(config) {
        if (config.shape === undefined) return;
        const shape = shapeOf(config);
        ids.reconfigure(shape);
        sum.reconfigure(shape);
        counts.reconfigure(shape);
      },
      process(ctx, record) {
        const value = record.valueText;
        if (value.startsWith('own ')) {
          const at = Number(value.slice(4));
          own.set([...own.getOr([]), at]);
          ctx.registerEventTimeTimer(at);
          return;
        }
        const id = Number(value);
        const a = ids.add(ctx, id);
        const b = sum.add(ctx, id);
        const c = counts.add(ctx, id);
        assert.deepEqual([b.dropped, c.dropped], [a.dropped, a.dropped]);
        if (a.dropped) ctx.emit(ctx.key, `dropped ${id}`);
        emitFired(ctx, 'ids', a.fired);
        emitFired(ctx, 'sum', b.fired);
        emitFired(ctx, 'count', c.fired);
      },
      onTimer(ctx, timer) {
        for (const [name, windows] of [['ids', ids], ['sum', sum], ['count', counts]]) {
          const fired = windows.onTimer(ctx, timer);
          if (fired !== null) emitFired(ctx, name, fired);
        }
        const mine = own.getOr([]);
        const at = mine.indexOf(timer.timestamp);
        if (at >= 0) {
          mine.splice(at, 1);
          if (mine.length === 0) own.clear();
          else own.set(mine);
          ctx.emit(ctx.key, `own ${timer.timestamp}`);
        }
      },
    };
  },
});

function probeHarness(config, options = {}) {
  const h = new Harness(probe, { config, ...options });
  h.initResult();
  return h;
}

/** Every emitted record as `key: value`. */
function allLines(emitted) {
  return emitted.map((e) => `${e.keyText}: ${e.valueText}`);
}

/** Only the `ids` lines (and `own`, `dropped`): the others are checked apart. */
function lines(emitted) {
  return allLines(emitted).filter((l) => !l.includes(': sum ') && !l.includes(': count '));
}

/** Processes `value` for `key` at `timestamp` (at the harness's watermark). */
function add(h, key, timestamp, value) {
  return lines(h.processRecord({ key, value, timestamp }));
}

function advance(h, watermark) {
  return lines(h.advanceWatermark(watermark));
}

function eventTimers(h, key) {
  return h
    .timers()
    .filter((t) => Buffer.from(t.key).toString() === key && t.domain === 'event-time')
    .map((t) => t.timestamp);
}

test('the window state has stable names, in declaration order', () => {
  const h = new Harness(probe);
  assert.deepEqual(
    h.states.map((s) => [s.name, s.kind, s.schemaVersion, s.codec]),
    [
      ['ids/windows', 'value', 1, 'json'],
      ['ids/elements', 'list', 1, 'json'],
      ['sum/windows', 'value', 1, 'json'],
      ['count/windows', 'value', 1, 'json'],
      ['own', 'value', 1, 'json'],
    ],
  );
});

test('a window is [start, end) and fires at end - 1', () => {
  const minute = new Window(60000, 120000);
  assert.ok(minute.contains(60000) && minute.contains(119999) && !minute.contains(120000));
  assert.equal(minute.maxTimestamp(), 119999);
  assert.equal(String(minute), '[60000, 120000)');
  assert.equal(`${new Window(-10, 0)}`, '[-10, 0)');
});

test('tumbling windows fire when the watermark reaches their last timestamp', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10 });
  assert.deepEqual(add(h, 'a', 3, '1'), []);
  assert.deepEqual(add(h, 'a', 9, '2'), []);
  assert.deepEqual(add(h, 'b', 5, '3'), []);
  assert.deepEqual(add(h, 'a', 10, '4'), []);
  assert.deepEqual(add(h, 'a', 0, '5'), []);
  assert.deepEqual(eventTimers(h, 'a'), [9, 19]);
  assert.deepEqual(h.value('ids/windows', 'a'), [
    [0, 10, true, null],
    [10, 20, true, null],
  ]);

  assert.deepEqual(advance(h, 8), []);
  assert.deepEqual(allLines(h.advanceWatermark(9)), [
    'a: ids 0 10 [5,1,2]',
    'a: sum 0 10 8',
    'a: count 0 10 3',
    'b: ids 0 10 [3]',
    'b: sum 0 10 3',
    'b: count 0 10 1',
  ]);
  // Lateness 0: fired and cleaned up at once.
  assert.ok(!h.hasState('b'));
  assert.deepEqual(h.value('ids/windows', 'a'), [[10, 20, true, null]]);
  assert.deepEqual(h.list('ids/elements', 'a'), [[10, 4]]);
  assert.deepEqual(eventTimers(h, 'a'), [19]);

  assert.deepEqual(advance(h, MAX), ['a: ids 10 20 [4]']);
  assert.ok(!h.hasState('a'));
  assert.deepEqual(h.timers(), []);
});

test('tumbling windows follow their offset', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10, offset: 3 });
  add(h, 'a', 2, '1');
  add(h, 'a', 3, '2');
  add(h, 'a', 12, '3');
  assert.deepEqual(advance(h, MAX), ['a: ids -7 3 [1]', 'a: ids 3 13 [2,3]']);
  // An offset beyond the size is the same as its remainder; negative times align too.
  const far = probeHarness({ shape: 'tumbling', size: 60, offset: 615 });
  add(far, 'a', 14, '1');
  add(far, 'a', -1, '2');
  assert.deepEqual(far.value('sum/windows', 'a'), [
    [-45, 15, true, 3],
  ]);
  const plain = probeHarness({ shape: 'tumbling', size: 60 });
  add(plain, 'a', -1, '1');
  add(plain, 'a', 60, '2');
  assert.deepEqual(
    plain.value('sum/windows', 'a').map(([s, e]) => [s, e]),
    [
      [-60, 0],
      [60, 120],
    ],
  );
});

test('equal timestamps keep the order they came in', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10 });
  for (const id of ['3', '1', '2']) add(h, 'a', 5, id);
  add(h, 'a', 4, '9');
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [9,3,1,2]']);
});

test('a late element within the lateness fires its window again at once', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10, lateness: 5 });
  add(h, 'a', 1, '1');
  // Fire timer at 9, cleanup timer at 14.
  assert.deepEqual(eventTimers(h, 'a'), [9, 14]);
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [1]']);
  assert.deepEqual(eventTimers(h, 'a'), [14]);
  assert.deepEqual(h.value('ids/windows', 'a'), [[0, 10, false, null]]);

  // The watermark is 9: a record at 2 is late, but the window is kept until 14.
  assert.deepEqual(allLines(h.processRecord({ key: 'a', value: '2', timestamp: 2 })), [
    'a: ids 0 10 [1,2] late',
    'a: sum 0 10 3 late',
    'a: count 0 10 2 late',
  ]);
  assert.deepEqual(advance(h, 13), []);
  assert.deepEqual(add(h, 'a', 9, '3'), ['a: ids 0 10 [1,2,3] late']);
  // On-time elements of the next window are unaffected.
  assert.deepEqual(add(h, 'a', 12, '4'), []);

  // Cleanup at 14: nothing fires, the state goes.
  assert.deepEqual(advance(h, 14), []);
  assert.deepEqual(h.value('ids/windows', 'a'), [[10, 20, true, null]]);
  assert.deepEqual(h.list('ids/elements', 'a'), [[12, 4]]);
  // Later than the lateness: dropped, nothing changes.
  assert.deepEqual(add(h, 'a', 5, '5'), ['a: dropped 5']);
  assert.deepEqual(h.list('ids/elements', 'a'), [[12, 4]]);
  assert.deepEqual(eventTimers(h, 'a'), [19, 24]);
  assert.deepEqual(advance(h, MAX), ['a: ids 10 20 [4]']);
  assert.ok(!h.hasState('a'));
});

test('without lateness an element behind the watermark is dropped', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10 });
  add(h, 'a', 1, '1');
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [1]']);
  assert.deepEqual(add(h, 'a', 9, '2'), ['a: dropped 2']);
  assert.ok(!h.hasState('a'));
  // An element behind the watermark whose window is not over is on time.
  add(h, 'b', 10, '3');
  advance(h, 15);
  assert.deepEqual(add(h, 'b', 11, '4'), []);
  assert.deepEqual(advance(h, 19), ['b: ids 10 20 [3,4]']);
});

test('sliding windows share elements and keep them until their last window goes', () => {
  const h = probeHarness({ shape: 'sliding', size: 30, slide: 10 });
  add(h, 'a', 5, '1');
  add(h, 'a', 25, '2');
  assert.deepEqual(h.value('count/windows', 'a'), [
    [-20, 10, true, 1],
    [-10, 20, true, 1],
    [0, 30, true, 2],
    [10, 40, true, 1],
    [20, 50, true, 1],
  ]);
  // Each element is stored once, however many windows hold it.
  assert.deepEqual(h.list('ids/elements', 'a'), [
    [5, 1],
    [25, 2],
  ]);
  assert.deepEqual(eventTimers(h, 'a'), [9, 19, 29, 39, 49]);
  assert.deepEqual(advance(h, 29), ['a: ids -20 10 [1]', 'a: ids -10 20 [1]', 'a: ids 0 30 [1,2]']);
  // Element 1 is in no live window any more; element 2 is.
  assert.deepEqual(h.list('ids/elements', 'a'), [[25, 2]]);
  assert.deepEqual(advance(h, MAX), ['a: ids 10 40 [2]', 'a: ids 20 50 [2]']);
  assert.ok(!h.hasState('a'));
});

test('sliding windows of a size that is not a multiple of the slide', () => {
  const h = probeHarness({ shape: 'sliding', size: 25, slide: 10 });
  add(h, 'a', 4, '1');
  add(h, 'b', 5, '1');
  const spans = (key) => h.value('sum/windows', key).map(([s, e]) => [s, e]);
  assert.deepEqual(spans('a'), [
    [-20, 5],
    [-10, 15],
    [0, 25],
  ]);
  assert.deepEqual(spans('b'), [
    [-10, 15],
    [0, 25],
  ]);
});

test('sliding windows take a late element in the windows still open', () => {
  const h = probeHarness({ shape: 'sliding', size: 20, slide: 10 });
  add(h, 'a', 12, '1');
  assert.deepEqual(advance(h, 19), ['a: ids 0 20 [1]']);
  // 15 is in [0, 20) (gone) and [10, 30) (open): it goes to the open one only.
  assert.deepEqual(add(h, 'a', 15, '2'), []);
  assert.deepEqual(advance(h, 29), ['a: ids 10 30 [1,2]']);
});

test('sliding windows with gaps ignore elements in the gaps', () => {
  const h = probeHarness({ shape: 'sliding', size: 5, slide: 10 });
  assert.deepEqual(add(h, 'a', 7, '1'), []);
  assert.ok(!h.hasState('a'));
  add(h, 'a', 12, '2');
  assert.deepEqual(advance(h, MAX), ['a: ids 10 15 [2]']);
});

test('an element bridging two sessions merges them', () => {
  const h = probeHarness({ shape: 'session', gap: 10 });
  add(h, 'a', 0, '1');
  add(h, 'a', 5, '2'); // [0, 15)
  add(h, 'a', 20, '3'); // [20, 30)
  add(h, 'a', 35, '4'); // [35, 45)
  add(h, 'b', 12, '9');
  // [0, 10) grew to [0, 15): its timer at 9 stays, to find nothing due.
  assert.deepEqual(eventTimers(h, 'a'), [9, 14, 29, 44]);
  assert.deepEqual(h.value('count/windows', 'a'), [
    [0, 15, true, 2],
    [20, 30, true, 1],
    [35, 45, true, 1],
  ]);
  // 12 is less than the gap from 5 and from 20: [0, 15) + [12, 22) + [20, 30) = [0, 30).
  add(h, 'a', 12, '5');
  assert.deepEqual(h.value('count/windows', 'a'), [
    [0, 30, true, 4],
    [35, 45, true, 1],
  ]);
  assert.deepEqual(h.value('sum/windows', 'a'), [
    [0, 30, true, 11],
    [35, 45, true, 4],
  ]);
  // The timers of the merged sessions stay, and find nothing due.
  assert.deepEqual(eventTimers(h, 'a'), [9, 14, 29, 44]);
  assert.deepEqual(advance(h, 28), ['b: ids 12 22 [9]']);
  assert.deepEqual(eventTimers(h, 'a'), [29, 44]);
  assert.deepEqual(allLines(h.advanceWatermark(29)), ['a: ids 0 30 [1,2,5,3]', 'a: sum 0 30 11', 'a: count 0 30 4']);
  assert.deepEqual(h.list('ids/elements', 'a'), [[35, 4]]);
  assert.deepEqual(advance(h, MAX), ['a: ids 35 45 [4]']);
  assert.deepEqual(h.timers(), []);
  assert.ok(!h.hasState('a') && !h.hasState('b'));
});

test('sessions exactly a gap apart stay apart', () => {
  const h = probeHarness({ shape: 'session', gap: 10 });
  add(h, 'a', 0, '1');
  add(h, 'a', 10, '2');
  add(h, 'a', 19, '3');
  assert.deepEqual(advance(h, MAX), ['a: ids 0 10 [1]', 'a: ids 10 29 [2,3]']);
  // An element exactly a gap before a session does not join it either; one less than a
  // gap after the earlier one bridges them.
  const h2 = probeHarness({ shape: 'session', gap: 10 });
  add(h2, 'a', 20, '1');
  add(h2, 'a', 10, '2');
  assert.deepEqual(h2.value('sum/windows', 'a'), [
    [10, 20, true, 2],
    [20, 30, true, 1],
  ]);
  add(h2, 'a', 11, '3');
  assert.deepEqual(advance(h2, MAX), ['a: ids 10 30 [2,3,1]']);
});

test('a late element extends a fired session within the lateness', () => {
  const h = probeHarness({ shape: 'session', gap: 10, lateness: 20 });
  add(h, 'a', 0, '1'); // [0, 10): fires at 9, cleaned up at 29
  assert.deepEqual(advance(h, 12), ['a: ids 0 10 [1]']);
  assert.deepEqual(eventTimers(h, 'a'), [29]);

  // At watermark 12, an element at 5 makes [0, 15): its end is not reached yet, so it
  // fires when it is, not at once.
  assert.deepEqual(add(h, 'a', 5, '2'), []);
  // The cleanup timer of [0, 10) stays, to find nothing due.
  assert.deepEqual(eventTimers(h, 'a'), [14, 29, 34]);
  assert.deepEqual(advance(h, 14), ['a: ids 0 15 [1,2]']);

  // At watermark 14, an element at 1 is inside the fired session: it fires again at once.
  assert.deepEqual(add(h, 'a', 1, '3'), ['a: ids 0 15 [1,3,2] late']);
  // Past the cleanup (34), an element that would have joined it opens a new session,
  // which is itself late: dropped.
  assert.deepEqual(advance(h, 34), []);
  assert.ok(!h.hasState('a'));
  assert.deepEqual(add(h, 'a', 3, '4'), ['a: dropped 4']);
  assert.ok(!h.hasState('a'));
  // One whose own session is not over is taken.
  assert.deepEqual(add(h, 'a', 30, '5'), []);
  assert.deepEqual(advance(h, MAX), ['a: ids 30 40 [5]']);
});

test('before any watermark nothing is late', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10 });
  assert.equal(h.watermark, NO_WATERMARK);
  // Timestamps are exact within ±2^53.
  const early = -(2 ** 53) + 5;
  assert.deepEqual(add(h, 'a', early, '1'), []);
  assert.deepEqual(add(h, 'a', -100, '2'), []);
  assert.deepEqual(advance(h, -91), [`a: ids ${early - 3} ${early + 7} [1]`, 'a: ids -100 -90 [2]']);
});

test('timers of the windows and the operator are told apart and shared', () => {
  const h = probeHarness({ shape: 'tumbling', size: 10 });
  add(h, 'a', 1, '1');
  add(h, 'a', 0, 'own 5');
  add(h, 'a', 0, 'own 9'); // the windows' timestamp too
  add(h, 'b', 0, 'own 9');
  assert.deepEqual(advance(h, 5), ['a: own 5']);
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [1]', 'a: own 9', 'b: own 9']);

  // Processing-time timers are never the windows'.
  const only = defineOperator({
    name: 'only',
    version: '0.1.0',
    open(states) {
      const w = TumblingWindows.of(10).reduce(states, 'w', (a, b) => a + b);
      return {
        process(ctx) {
          ctx.registerProcessingTimeTimer(9);
          w.add(ctx, 1);
        },
        onTimer(ctx, timer) {
          const fired = w.onTimer(ctx, timer);
          ctx.emit(ctx.key, fired === null ? 'mine' : `windows ${fired.length}`);
        },
      };
    },
  });
  const o = new Harness(only);
  o.processRecord({ key: 'k', value: '', timestamp: 1 });
  assert.equal(o.advanceProcessingTime(9)[0].valueText, 'mine');
  assert.equal(o.advanceWatermark(9)[0].valueText, 'windows 1');
});

test('cleanup timers say they are the windows with nothing fired', () => {
  const lateness = defineOperator({
    name: 'lateness',
    version: '0.1.0',
    open(states) {
      const w = TumblingWindows.of(10).allowedLateness(10).reduce(states, 'w', (a, b) => a + b);
      return {
        process(ctx) {
          w.add(ctx, 1);
        },
        onTimer(ctx, timer) {
          const fired = w.onTimer(ctx, timer);
          ctx.emit(ctx.key, `${timer.timestamp} ${fired === null ? 'null' : fired.length}`);
        },
      };
    },
  });
  const h = new Harness(lateness);
  h.processRecord({ key: 'k', value: '', timestamp: 1 });
  assert.deepEqual(
    h.advanceWatermark(MAX).map((e) => e.valueText),
    ['9 1', '19 0'],
  );
});

/**
 * Minute counts (tumbling) and visit counts (sessions, 30 s gap) of every key in one
 * operator: both use the key's timers, and neither may take away one the other needs.
 */
const minutesAndVisits = defineOperator({
  name: 'minutes-and-visits',
  version: '0.1.0',
  open(states) {
    const minutes = TumblingWindows.of(60000).reduce(states, 'minutes', (a, b) => a + b);
    const visits = SessionWindows.withGap(30000).reduce(states, 'visits', (a, b) => a + b);
    return {
      process(ctx) {
        const m = minutes.add(ctx, 1);
        const v = visits.add(ctx, 1);
        emitFired(ctx, 'minute', m.fired);
        emitFired(ctx, 'visit', v.fired);
      },
      onTimer(ctx, timer) {
        emitFired(ctx, 'minute', minutes.onTimer(ctx, timer) ?? []);
        emitFired(ctx, 'visit', visits.onTimer(ctx, timer) ?? []);
      },
    };
  },
});

test("windows of different shapes share their key's timers", () => {
  const h = new Harness(minutesAndVisits);
  const at = (timestamp) => h.processRecord({ key: 'k', value: '', timestamp });
  assert.deepEqual(at(30000), []);
  // The minute ends at 59 999, and so does the visit [30000, 60000) so far.
  assert.deepEqual(at(40000), []);
  // The visit grew to [30000, 70000): the minute still needs the timer at 59 999.
  assert.deepEqual(allLines(h.advanceWatermark(59999)), ['k: minute 0 60000 2']);
  assert.deepEqual(allLines(h.advanceWatermark(MAX)), ['k: visit 30000 70000 2']);
  assert.ok(!h.hasState('k'));
  assert.deepEqual(h.timers(), []);
});

/**
 * Sessions (gap 10) that answer every timer with what `onTimer` said: `"{timestamp} {n}"`,
 * `n` the number of windows fired, or `null`. A value `own T` registers an event-time timer
 * at `T` instead of adding an element.
 */
const answers = defineOperator({
  name: 'answers',
  version: '0.1.0',
  open(states) {
    const w = SessionWindows.withGap(10).reduce(states, 'w', (a, b) => a + b);
    return {
      process(ctx, record) {
        if (record.valueText.startsWith('own ')) {
          ctx.registerEventTimeTimer(Number(record.valueText.slice(4)));
          return;
        }
        w.add(ctx, 1);
      },
      onTimer(ctx, timer) {
        const fired = w.onTimer(ctx, timer);
        ctx.emit(ctx.key, `${timer.timestamp} ${fired === null ? 'null' : fired.length}`);
      },
    };
  },
});

function answered(h, watermark) {
  return h.advanceWatermark(watermark).map((e) => e.valueText);
}

test('a timer with nothing due is null to the windows', () => {
  const h = new Harness(answers);
  h.processRecord({ key: 'k', value: '', timestamp: 0 });
  // [0, 10) grows to [0, 15): the timer at 9 is left registered, and finds nothing due.
  h.processRecord({ key: 'k', value: '', timestamp: 5 });
  h.processRecord({ key: 'k', value: 'own 12', timestamp: 5 });
  assert.deepEqual(answered(h, 12), ['9 null', '12 null']);
  assert.deepEqual(answered(h, MAX), ['14 1']);
  assert.deepEqual(h.timers(), []);
  assert.ok(!h.hasState('k'));
});

test('any timer of the key fires the windows it finds overdue', () => {
  const h = new Harness(answers);
  // A session whose timer is missing.
  h.setValue('w/windows', 'k', [[0, 10, true, 3]]);
  h.processRecord({ key: 'k', value: 'own 20', timestamp: 0 });
  assert.deepEqual(answered(h, 19), []);
  assert.deepEqual(answered(h, 20), ['20 1']);
  assert.ok(!h.hasState('k'));
});

test('raising the allowed lateness between runs keeps windows until the new cleanup', () => {
  let h = probeHarness({ shape: 'tumbling', size: 10, lateness: 5 });
  add(h, 'a', 1, '1');
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [1]']);
  assert.deepEqual(eventTimers(h, 'a'), [14]);

  // Restarted with a lateness of 20: [0, 10) is kept until 29, not 14.
  h = h.withConfig({ shape: 'tumbling', size: 10, lateness: 20 });
  h.initResult();
  assert.deepEqual(advance(h, 14), []);
  assert.deepEqual(eventTimers(h, 'a'), [29]);
  assert.deepEqual(add(h, 'a', 2, '2'), ['a: ids 0 10 [1,2] late']);
  assert.deepEqual(advance(h, 28), []);
  assert.ok(h.hasState('a'));
  assert.deepEqual(advance(h, 29), []);
  assert.ok(!h.hasState('a'));
  assert.deepEqual(h.timers(), []);
});

test("lowering the allowed lateness between runs cleans up at the key's next element", () => {
  let h = probeHarness({ shape: 'tumbling', size: 10, lateness: 20 });
  add(h, 'a', 1, '1');
  assert.deepEqual(advance(h, 9), ['a: ids 0 10 [1]']);
  assert.deepEqual(eventTimers(h, 'a'), [29]);

  // Restarted with a lateness of 5: [0, 10) is over at 14. Its key's next element
  // registers that, which is due: the window goes before the key's next record.
  h = h.withConfig({ shape: 'tumbling', size: 10, lateness: 5 });
  h.initResult();
  assert.deepEqual(advance(h, 15), []);
  assert.deepEqual(add(h, 'a', 3, '2'), ['a: dropped 2']);
  assert.deepEqual(add(h, 'a', 12, '3'), []);
  assert.deepEqual(h.value('ids/windows', 'a'), [[10, 20, true, null]]);
  assert.deepEqual(h.list('ids/elements', 'a'), [[12, 3]]);
  assert.deepEqual(advance(h, MAX), ['a: ids 10 20 [3]']);
  assert.ok(!h.hasState('a'));
  assert.deepEqual(h.timers(), []);
});

test('bad parameters fail init or the calls', () => {
  for (const [config, problem] of [
    [{ shape: 'tumbling', size: 0 }, 'window `ids`: the window size must be positive, got 0 ms'],
    [{ shape: 'sliding', size: 10, slide: 0 }, 'window `ids`: the window size and slide must be positive, got 10 ms and 0 ms'],
    [{ shape: 'session', gap: -1 }, 'window `ids`: the session gap must be positive, got -1 ms'],
    [{ shape: 'tumbling', size: 10, lateness: -1 }, 'window `ids`: the allowed lateness must not be negative, got -1 ms'],
    [{ shape: 'tumbling', size: 1.5 }, 'window `ids`: the window size must be a whole number of milliseconds, got 1.5'],
    [{ shape: 'tumbling', size: 10, offset: '3' }, 'window `ids`: the window offset must be a whole number of milliseconds, got 3'],
    [{ shape: 'session', gap: 10, lateness: '5' }, 'window `ids`: the allowed lateness must be a whole number of milliseconds, got 5'],
    [
      { shape: 'sliding', size: 1001, slide: 1 },
      'window `ids`: a size of 1001 ms sliding by 1 ms puts every element in 1001 windows, more than the 1000 allowed; slide by more',
    ],
  ]) {
    const h = new Harness(probe, { config });
    assert.equal(h.initError?.kind, 'invalid-config', JSON.stringify(config));
    assert.equal(h.initError.message, problem);
  }
  assert.equal(MAX_WINDOWS_PER_ELEMENT, 1000);
  assert.equal(new Harness(probe, { config: { shape: 'sliding', size: 1000, slide: 1 } }).initError, null);

  // Declared bad in `open` and never checked: the calls fail.
  const bad = defineOperator({
    name: 'bad',
    version: '0.1.0',
    open(states) {
      const w = SlidingWindows.of(100000, 10).reduce(states, 'w', (a, b) => a + b);
      return {
        process(ctx) {
          w.add(ctx, 1);
        },
      };
    },
  });
  const h = new Harness(bad);
  assert.throws(
    () => h.process('k', ''),
    (error) =>
      error.kind === 'failed' &&
      error.message.includes('window `w`: a size of 100000 ms sliding by 10 ms puts every element in 10000 windows'),
  );
  // A nameless declaration.
  const states = new StateRegistry(null);
  assert.throws(
    () => TumblingWindows.of(10).reduce(states, '', (a, b) => a + b).check(),
    /the windows need a name/,
  );
});

test('sessions need an aggregate function that merges', () => {
  const plain = { createAccumulator: () => 0, add: (_, n) => n + 1, getResult: (n) => n };
  const states = new StateRegistry(null);
  const windows = TumblingWindows.of(10).aggregate(states, 'w', plain);
  assert.throws(
    () => windows.reconfigure(SessionWindows.withGap(10)),
    (error) => error.kind === 'invalid-config' && /merge\(a, b\)/.test(error.message),
  );
  // Still tumbling.
  windows.reconfigure(TumblingWindows.of(20));
  assert.throws(() => windows.reconfigure({ size: 10 }), TypeError);

  // Declared as sessions without merge: init fails, naming the windows.
  const op = defineOperator({
    name: 'no-merge',
    version: '0.1.0',
    open(states) {
      SessionWindows.withGap(10).aggregate(states, 'visits', plain);
      return { process() {} };
    },
  });
  const h = new Harness(op);
  assert.equal(h.initError?.kind, 'invalid-config');
  assert.match(h.initError.message, /session windows `visits` merge their accumulators/);
  // So do window functions of the wrong shape.
  for (const declare of [
    (s) => TumblingWindows.of(10).reduce(s, 'w', 'sum'),
    (s) => TumblingWindows.of(10).aggregate(s, 'w', { add() {} }),
    (s) => TumblingWindows.of(10).process(s, 'w', null),
  ]) {
    const wrong = defineOperator({
      name: 'wrong',
      version: '0.1.0',
      open(s) {
        declare(s);
        return { process() {} };
      },
    });
    assert.match(new Harness(wrong).initError?.message ?? '', /windows `w` need/);
  }
});

test('an error after add discards the window changes', () => {
  const fails = defineOperator({
    name: 'fails',
    version: '0.1.0',
    open(states) {
      const w = TumblingWindows.of(10).reduce(states, 'w', (a, b) => a + b);
      return {
        process(ctx, record) {
          w.add(ctx, 1);
          if (record.valueText === 'fail') throw new Error('asked to');
        },
      };
    },
  });
  const h = new Harness(fails);
  assert.throws(() => h.processRecord({ key: 'k', value: 'fail', timestamp: 1 }), /record 0: asked to/);
  assert.ok(!h.hasState('k'));
  assert.deepEqual(h.timers(), []);
});

// -- what the JavaScript API adds ------------------------------------------------------------

/**
 * Sums per 10 ms, with the element's time given explicitly (`at T` in the value) or the
 * record's; emits `fired` through the iterator of `add`'s result, and each key's live
 * windows on request (`windows`).
 */
const explicit = defineOperator({
  name: 'explicit',
  version: '0.1.0',
  open(states) {
    const w = TumblingWindows.of(10).allowedLateness(5).reduce(states, 'w', (a, b) => a + b);
    return {
      init() {
        w.check();
      },
      process(ctx, record) {
        const text = record.valueText;
        if (text === 'windows') {
          ctx.emit(ctx.key, w.windows(ctx).join(' '));
          return;
        }
        const added = text.startsWith('at ') ? w.add(ctx, 1, Number(text.slice(3))) : w.add(ctx, 1);
        for (const fired of added) ctx.emit(ctx.key, `${fired.window} ${fired.result}${fired.late ? ' late' : ''}`);
        if (added.dropped) ctx.emit(ctx.key, 'dropped');
      },
      onTimer(ctx, timer) {
        for (const fired of w.onTimer(ctx, timer) ?? []) ctx.emit(ctx.key, `${fired.window} ${fired.result}`);
      },
    };
  },
});

test('add takes an explicit timestamp, and its result iterates over the fired windows', () => {
  for (const prefetchValues of [true, false]) {
    const h = new Harness(explicit, { prefetchValues });
    assert.equal(h.initError, null);
    const send = (value, timestamp = 1000) =>
      h.processRecord({ key: 'k', value, timestamp }).map((e) => e.valueText);
    assert.deepEqual(send('at 3'), []);
    assert.deepEqual(send('at 25'), []);
    assert.deepEqual(send('windows'), ['[0, 10) [20, 30)']);
    assert.deepEqual(h.advanceWatermark(9).map((e) => e.valueText), ['[0, 10) 1']);
    assert.deepEqual(send('at 4'), ['[0, 10) 2 late']);
    assert.deepEqual(send('now', 4), ['[0, 10) 3 late'], 'the record timestamp by default');
    h.advanceWatermark(14);
    assert.deepEqual(send('at 4'), ['dropped']);
    assert.deepEqual(send('windows'), ['[20, 30)']);
    assert.throws(() => send('at 1.5'), /window `w`: a timestamp must be a whole number of ms, not 1.5/);
    assert.throws(() => send('at x'), /not NaN/);
    assert.deepEqual(h.advanceWatermark(MAX).map((e) => e.valueText), ['[20, 30) 1']);
    assert.ok(!h.hasState('k'));
    assert.deepEqual(h.timers(), []);
  }
});

test('declarations are immutable and can be shared', () => {
  const minutes = TumblingWindows.of(60000);
  const late = minutes.allowedLateness(1000);
  assert.notEqual(late, minutes);
  assert.ok(Object.isFrozen(minutes));
  const states = new StateRegistry(null);
  const a = minutes.reduce(states, 'a', (x, y) => x + y);
  const b = late.offset(5).reduce(states, 'b', (x, y) => x + y);
  assert.equal(a.name, 'a');
  assert.equal(b.name, 'b');
  a.check();
  b.check();
  assert.deepEqual(
    states.states.map((s) => s.name),
    ['a/windows', 'b/windows'],
  );
  assert.deepEqual(TumblingWindows.of(10, 3)._spec, TumblingWindows.of(10).offset(3)._spec);
});

test('aggregate functions may change their accumulator in place, and merge sessions in order', () => {
  /** The elements of a session in arrival order, merged earlier session first. */
  const collect = {
    createAccumulator: () => [],
    add(value, acc) {
      acc.push(value);
    },
    getResult: (acc) => acc.join(''),
    merge(a, b) {
      a.push('|', ...b);
    },
  };
  const op = defineOperator({
    name: 'collect',
    version: '0.1.0',
    open(states) {
      const w = SessionWindows.withGap(10).aggregate(states, 'w', collect);
      return {
        process(ctx, record) {
          w.add(ctx, record.valueText);
        },
        onTimer(ctx, timer) {
          for (const fired of w.onTimer(ctx, timer) ?? []) ctx.emit(ctx.key, `${fired.window} ${fired.result}`);
        },
      };
    },
  });
  const h = new Harness(op);
  h.processRecord({ key: 'k', value: 'a', timestamp: 0 }); // [0, 10)
  h.processRecord({ key: 'k', value: 'c', timestamp: 25 }); // [25, 35)
  h.processRecord({ key: 'k', value: 'b', timestamp: 20 }); // [20, 30) joins it
  assert.deepEqual(h.value('w/windows', 'k'), [
    [0, 10, true, ['a']],
    [20, 35, true, ['c', 'b']],
  ]);
  h.processRecord({ key: 'k', value: 'x', timestamp: 12 }); // [12, 35)
  // 5 bridges [0, 10) and [12, 35).
  h.processRecord({ key: 'k', value: 'y', timestamp: 5 });
  assert.deepEqual(h.advanceWatermark(MAX).map((e) => e.valueText), ['[0, 35) a|cbxy']);
});

test('process windows see the key, the window and the elements with their timestamps', () => {
  const seen = [];
  const op = defineOperator({
    name: 'visits',
    version: '0.1.0',
    open(states) {
      const visits = SessionWindows.withGap(2000).process(states, 'visits', (key, window, pages) => {
        seen.push([Buffer.from(key).toString(), String(window), pages]);
        return pages.map(([, page]) => page).join(' > ');
      });
      return {
        process(ctx, record) {
          for (const fired of visits.add(ctx, record.valueText)) ctx.emit(ctx.key, fired.result);
        },
        onTimer(ctx, timer) {
          for (const fired of visits.onTimer(ctx, timer) ?? []) ctx.emit(ctx.key, fired.result);
        },
      };
    },
  });
  const h = new Harness(op);
  for (const [page, at] of [['/', 0], ['/cart', 2500], ['/shop', 1800], ['/pay', 5000]]) {
    h.processRecord({ key: 'ann', value: page, timestamp: at });
  }
  // `/shop` came late but bridged `/` and `/cart` into one visit.
  assert.deepEqual(h.advanceWatermark(MAX).map((e) => e.valueText), ['/ > /shop > /cart', '/pay']);
  assert.deepEqual(seen[0], ['ann', '[0, 4500)', [[0, '/'], [1800, '/shop'], [2500, '/cart']]]);
  assert.ok(!h.hasState('ann'));
});

test('reduce windows make no host call, and register no timer for windows already pending', () => {
  // The exported operator, with no host behind it: a state call would fail the batch.
  const op = defineOperator({
    name: 'lean',
    version: '0.1.0',
    open(states) {
      const w = TumblingWindows.of(10).reduce(states, 'w', (a, b) => a + b);
      return {
        process(ctx) {
          w.add(ctx, 1);
        },
      };
    },
  });
  op.init('{}');
  const record = (timestamp) => ({ keyIndex: 0, timestamp, watermark: NO_WATERMARK, value: new Uint8Array(0), headers: [] });
  const run = (slot, timestamps) =>
    decodeOutput(
      op.process(
        encodeInput({ keys: [new TextEncoder().encode('k')], handles: [0], slots: [slot], records: timestamps.map(record) }),
      ),
    );
  const first = run(null, [1, 2, 3]);
  assert.deepEqual(
    first.timerOps.map((t) => [t.item, t.register, t.timestamp]),
    [[0, true, 9]],
  );
  assert.equal(first.writes.length, 1);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(first.writes[0].value)), [[0, 10, true, 3]]);
  // The next batch, with the window prefetched: a new window registers the timers of both.
  const next = run(first.writes[0].value, [4, 12]);
  assert.deepEqual(
    next.timerOps.map((t) => [t.item, t.timestamp]),
    [
      [1, 9],
      [1, 19],
    ],
  );
});

// -- out-of-order input against a batch computation ------------------------------------------

/** A deterministic pseudo-random sequence (a 64-bit LCG), so failures reproduce. */
class Lcg {
  constructor(seed) {
    this.state = BigInt(seed);
  }

  below(n) {
    this.state = (this.state * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return Number((this.state >> 33n) % BigInt(n));
  }
}

/**
 * `n` records of 4 keys, timestamps rising by about `step` but each up to `disorder`
 * earlier than its place; every `lateEvery`-th record (0: none) is pushed back by up to
 * `lateBy` more.
 */
function input(seed, n, step, disorder, lateEvery, lateBy) {
  const rng = new Lcg(seed);
  const keys = ['a', 'b', 'c', 'd'];
  let base = 1000;
  const records = [];
  for (let id = 0; id < n; id++) {
    base += rng.below(step * 2 + 1);
    let timestamp = base - rng.below(disorder + 1);
    if (lateEvery !== 0 && id % lateEvery === lateEvery - 1) timestamp -= rng.below(lateBy + 1);
    records.push({ key: keys[rng.below(4)], timestamp, id });
  }
  return records;
}

/**
 * Runs `records` the way the host does with `[event-time]`: the watermark a record sees is
 * the largest timestamp before it minus `maxOutOfOrderness` minus 1; timers due at it fire
 * before the record; a record at or below the watermark minus `allowedLateness` is diverted;
 * at the end the watermark goes to the maximum.
 */
function run(h, records, maxOutOfOrderness, allowedLateness) {
  const result = { lines: [], diverted: [], watermarks: [] };
  let max = null;
  for (const record of records) {
    const watermark = max === null ? NO_WATERMARK : max - maxOutOfOrderness - 1;
    result.watermarks.push(watermark);
    result.lines.push(...allLines(h.advanceWatermark(watermark)));
    if (watermark !== NO_WATERMARK && record.timestamp + allowedLateness <= watermark) {
      result.diverted.push(record.id);
      continue;
    }
    result.lines.push(...allLines(h.processRecord({ key: record.key, value: String(record.id), timestamp: record.timestamp })));
    max = max === null ? record.timestamp : Math.max(max, record.timestamp);
  }
  result.lines.push(...allLines(h.advanceWatermark(MAX)));
  return result;
}

/** The windows of `timestamp`, computed the plain way, as [start, end]. */
function windowsOf(shape, timestamp) {
  const mod = (a, b) => ((a % b) + b) % b;
  if (shape.shape === 'tumbling') {
    const start = timestamp - mod(timestamp - (shape.offset ?? 0), shape.size);
    return [[start, start + shape.size]];
  }
  const windows = [];
  for (let start = timestamp - mod(timestamp, shape.slide); start + shape.size > timestamp; start -= shape.slide) {
    windows.push([start, start + shape.size]);
  }
  return windows;
}

/** A window of a key, as a sortable id: (key, start, end). */
const windowId = (key, start, end) => JSON.stringify([key, start, end]);

function compareIds(x, y) {
  const [ka, sa, ea] = JSON.parse(x);
  const [kb, sb, eb] = JSON.parse(y);
  return ka < kb ? -1 : ka > kb ? 1 : sa - sb || ea - eb;
}

/** The `ids` lines a batch computation expects (per window, its `[timestamp, arrival, id]`s), each window once, in (key, window) order. */
function batchLines(expected) {
  return [...expected.keys()].sort(compareIds).map((id) => {
    const [key, start, end] = JSON.parse(id);
    const elements = [...expected.get(id)].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return `${key}: ids ${start} ${end} [${elements.map((e) => e[2]).join(',')}]`;
  });
}

/** The last `ids` firing of every window in a run, in (key, window) order, and how many times each fired. */
function lastFirings(runLines) {
  const last = new Map();
  const counts = new Map();
  for (const line of runLines) {
    const at = line.indexOf(': ids ');
    if (at < 0) continue;
    const key = line.slice(0, at);
    const [start, end, ids] = line.slice(at + 6).split(' ');
    const id = windowId(key, Number(start), Number(end));
    last.set(id, `${key}: ids ${start} ${end} ${ids}`);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const order = [...last.keys()].sort(compareIds);
  return { last: order.map((id) => last.get(id)), counts };
}

/** Every `sum` and `count` firing must agree with the `ids` firing before it. */
function checkFunctionsAgree(runLines) {
  const idsOf = new Map();
  for (const line of runLines) {
    const [key, rest] = [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)];
    const [fn, start, end, result] = rest.split(' ');
    const window = `${key} ${start} ${end}`;
    if (fn === 'ids') idsOf.set(window, JSON.parse(result));
    else if (fn === 'sum') assert.equal(Number(result), idsOf.get(window).reduce((a, b) => a + b, 0), line);
    else if (fn === 'count') assert.equal(Number(result), idsOf.get(window).length, line);
    else assert.fail(`unexpected line ${line}`);
  }
}

test('fixed windows on out-of-order input match a batch computation', () => {
  const shapes = [
    { shape: 'tumbling', size: 100 },
    { shape: 'tumbling', size: 100, offset: 30 },
    { shape: 'sliding', size: 100, slide: 25 },
    { shape: 'sliding', size: 90, slide: 40 },
  ];
  shapes.forEach((shape, seed) => {
    const disorder = 60;
    const records = input(seed + 7, 400, 10, disorder, 0, 0);
    const h = probeHarness(shape);
    const result = run(h, records, disorder, 0);
    const name = JSON.stringify(shape);
    assert.deepEqual(result.diverted, [], `${name}: the input has no late record`);

    const expected = new Map();
    records.forEach((r, arrival) => {
      for (const [start, end] of windowsOf(shape, r.timestamp)) {
        const id = windowId(r.key, start, end);
        if (!expected.has(id)) expected.set(id, []);
        expected.get(id).push([r.timestamp, arrival, r.id]);
      }
    });
    const { last, counts } = lastFirings(result.lines);
    assert.deepEqual(last, batchLines(expected), name);
    assert.ok([...counts.values()].every((n) => n === 1), `${name}: fired once each`);
    checkFunctionsAgree(result.lines);
    assert.deepEqual(h.timers(), [], name);
    for (const key of ['a', 'b', 'c', 'd']) assert.ok(!h.hasState(key), `${name}: ${key} has state left`);
  });
});

test('fixed windows with late records match a batch computation', () => {
  const shapes = [
    { shape: 'tumbling', size: 100, lateness: 150 },
    { shape: 'sliding', size: 100, slide: 50, lateness: 80 },
    { shape: 'tumbling', size: 100 },
  ];
  shapes.forEach((shape, seed) => {
    const lateness = shape.lateness ?? 0;
    const disorder = 30;
    const records = input(seed + 70, 400, 10, disorder, 7, 200);
    const h = probeHarness(shape);
    const result = run(h, records, disorder, lateness);
    const name = JSON.stringify(shape);
    assert.ok(result.diverted.length > 0, `${name}: some records are diverted`);

    const expected = new Map();
    // Per window: whether an element came on time (one firing at the window's end), and
    // how many came late (one firing each).
    const onTime = new Set();
    const late = new Map();
    records.forEach((r, arrival) => {
      if (result.diverted.includes(r.id)) return;
      const watermark = result.watermarks[arrival];
      for (const [start, end] of windowsOf(shape, r.timestamp)) {
        if (watermark !== NO_WATERMARK && end - 1 + lateness <= watermark) continue; // cleaned up
        const id = windowId(r.key, start, end);
        if (!expected.has(id)) expected.set(id, []);
        expected.get(id).push([r.timestamp, arrival, r.id]);
        if (watermark !== NO_WATERMARK && end - 1 <= watermark) late.set(id, (late.get(id) ?? 0) + 1);
        else onTime.add(id);
      }
    });
    const firings = new Map([...expected.keys()].map((id) => [id, (onTime.has(id) ? 1 : 0) + (late.get(id) ?? 0)]));
    assert.ok([...late.values()].some((n) => n > 0) || lateness === 0, `${name}: late firings`);
    const { last, counts } = lastFirings(result.lines);
    assert.deepEqual(last, batchLines(expected), name);
    assert.deepEqual(counts, firings, `${name}: on time once, then once per late element`);
    checkFunctionsAgree(result.lines);
    assert.ok(
      !result.lines.some((l) => l.includes('dropped')),
      `${name}: with the job's lateness the windows', the host diverts every record they would drop`,
    );
    assert.deepEqual(h.timers(), [], name);
  });
});

test('sessions on out-of-order input match a batch computation', () => {
  // [seed, gap, step, disorder]: steps wide enough for sessions to end, disorder large
  // enough for elements to bridge them.
  for (const [seed, gap, step, disorder] of [
    [1, 25, 10, 120],
    [2, 40, 15, 150],
    [3, 15, 5, 80],
  ]) {
    const records = input(seed, 300, step, disorder, 0, 0);
    const h = probeHarness({ shape: 'session', gap });
    const result = run(h, records, disorder, 0);
    assert.deepEqual(result.diverted, []);

    const byKey = new Map();
    records.forEach((r, arrival) => {
      if (!byKey.has(r.key)) byKey.set(r.key, []);
      byKey.get(r.key).push([r.timestamp, arrival, r.id]);
    });
    const expected = new Map();
    for (const [key, elements] of byKey) {
      elements.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let session = [];
      const flush = () => {
        if (session.length > 0) {
          expected.set(windowId(key, session[0][0], session[session.length - 1][0] + gap), session);
        }
        session = [];
      };
      for (const element of elements) {
        if (session.length > 0 && element[0] >= session[session.length - 1][0] + gap) flush();
        session.push(element);
      }
      flush();
    }
    // Some element must have bridged two sessions for the test to mean anything: one that
    // came after a later element of its key that was a gap or more after the one before it.
    let merges = 0;
    records.forEach((r, i) => {
      const earlier = records.slice(0, i).filter((o) => o.key === r.key).map((o) => o.timestamp);
      const below = Math.max(...earlier.filter((t) => t <= r.timestamp));
      const above = Math.min(...earlier.filter((t) => t > r.timestamp));
      if (Number.isFinite(below) && Number.isFinite(above) && above - below >= gap && r.timestamp - below < gap && above - r.timestamp < gap) {
        merges++;
      }
    });
    assert.ok(merges > 0, `gap ${gap}: no bridging element`);

    const { last, counts } = lastFirings(result.lines);
    assert.deepEqual(last, batchLines(expected), `gap ${gap}`);
    assert.ok([...counts.values()].every((n) => n === 1), `gap ${gap}: fired once each`);
    checkFunctionsAgree(result.lines);
    assert.deepEqual(h.timers(), []);
    for (const key of ['a', 'b', 'c', 'd']) assert.ok(!h.hasState(key));
  }
});

test('windows fire in watermark order', () => {
  const records = input(11, 300, 10, 40, 0, 0);
  const h = probeHarness({ shape: 'sliding', size: 60, slide: 20 });
  const result = run(h, records, 40, 0);
  // Per key, the ends of the windows as they fire never go back.
  const lastEnd = new Map();
  for (const line of result.lines) {
    const at = line.indexOf(': ids ');
    if (at < 0) continue;
    const key = line.slice(0, at);
    const end = Number(line.slice(at + 6).split(' ')[1]);
    const previous = lastEnd.get(key) ?? -Infinity;
    assert.ok(previous <= end, `${line} after a window ending at ${previous}`);
    lastEnd.set(key, end);
  }
});
