// The operator lifecycle and the SDK's API, through the harness (which drives the same
// Runtime as the component) and through the exported WIT object.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  NO_WATERMARK,
  OperatorError,
  Trap,
  defineOperator,
  json,
  log,
  migrateValue,
  trap,
} from '../src/index.js';
import { Harness } from '../src/testing.js';

const te = new TextEncoder();

/** An operator whose `process` is `body(ctx, record, states)` over a standard set of states. */
function probe(body, extra = {}) {
  return defineOperator({
    name: 'probe',
    version: '1.2.3',
    open(states) {
      const s = {
        count: states.value('count'),
        seen: states.map('seen'),
        items: states.list('items'),
        sum: states.reducing('sum', (a, b) => a + b),
        mean: states.aggregating('mean', {
          createAccumulator: () => ({ sum: 0, n: 0 }),
          add(v, acc) {
            acc.sum += v; // changed in place: add returns nothing
            acc.n += 1;
          },
          getResult: (acc) => acc.sum / acc.n,
        }),
        recent: states.operatorList('recent', { redistribution: 'union' }),
      };
      return {
        ...extra,
        process: (ctx, record) => body(ctx, record, s),
        onTimer: extra.onTimer ? (ctx, timer) => extra.onTimer(ctx, timer, s) : undefined,
        initState: extra.initState ? (ctx) => extra.initState(ctx, s) : undefined,
      };
    },
  });
}

test('describe lists the states with their options, in handle order', () => {
  const op = defineOperator({
    name: 'described',
    version: '0.2.0',
    open(states) {
      states.value('a');
      states.map('b', { schemaVersion: 3, ttl: 60000, ttlUpdate: 'on-read-and-write' });
      states.list('c', { ttl: 1500.7 });
      states.operatorList('d', { schemaVersion: 2, redistribution: 'union' });
      return { process() {} };
    },
  });
  assert.deepEqual(op.describe(), {
    name: 'described',
    version: '0.2.0',
    states: [
      { name: 'a', kind: 'value', schemaVersion: 1, ttl: null, codec: 'json' },
      { name: 'b', kind: 'map', schemaVersion: 3, ttl: { ttlMs: 60000, update: 'on-read-and-write' }, codec: 'json' },
      { name: 'c', kind: 'list', schemaVersion: 1, ttl: { ttlMs: 1500, update: 'on-create-and-write' }, codec: 'json' },
    ],
    operatorStates: [{ name: 'd', schemaVersion: 2, redistribution: 'union', codec: 'json' }],
  });
});

test('bad declarations make init fail with invalid-config, naming them; describe still answers', () => {
  const cases = [
    [(s) => [s.value('x'), s.map('x')], 'state `x` is declared twice'],
    [(s) => [s.value('x'), s.operatorList('x')], 'state `x` is declared twice (the first time as a keyed state)'],
    [(s) => s.value(''), 'state #0 has an empty name'],
    [(s) => s.value('t', { ttl: 0 }), 'state `t` has a TTL of 0 ms'],
    [(s) => s.value('t', { ttlUpdate: 'on-read-and-write' }), 'without a TTL'],
    [(s) => s.value('t', { schemaVersion: -1 }), 'schema version -1'],
    [(s) => s.value('t', { ttl: 5, ttlUpdate: 'sometimes' }), 'ttlUpdate "sometimes"'],
    [(s) => s.value('t', { tll: 5 }), 'unknown option `tll`'],
    [(s) => s.value('t', { codec: { name: 'x' } }), 'a codec needs'],
    [(s) => s.operatorList('o', { redistribution: 'round-robin' }), 'redistribution "round-robin"'],
  ];
  for (const [declare, message] of cases) {
    const op = defineOperator({
      name: 'bad',
      version: '0',
      open(states) {
        declare(states);
        return { process() {} };
      },
    });
    assert.doesNotThrow(() => op.describe());
    const h = new Harness(op);
    assert.equal(h.initError?.kind, 'invalid-config', message);
    assert.ok(h.initError.message.includes(message), `${h.initError.message} / ${message}`);
    assert.throws(() => h.process('k', ''), /init failed/);
  }
});

test('init gets the parsed config; its errors are invalid-config unless they say otherwise', () => {
  const seen = [];
  const op = defineOperator({
    name: 'cfg',
    version: '0',
    open() {
      return {
        init(config, text) {
          seen.push([config, text]);
          if (config.fail === 'plain') throw new Error('no good');
          if (config.fail === 'unsupported') throw OperatorError.unsupported('not here');
          if (config.fail === 'promise') return Promise.resolve();
        },
        process() {},
      };
    },
  });
  new Harness(op, { config: { a: 1 } });
  assert.deepEqual(seen.pop(), [{ a: 1 }, '{"a":1}']);
  assert.deepEqual(
    [new Harness(op, { config: { fail: 'plain' } }).initError.kind, new Harness(op, { config: { fail: 'plain' } }).initError.message],
    ['invalid-config', 'no good'],
  );
  assert.equal(new Harness(op, { config: { fail: 'unsupported' } }).initError.kind, 'unsupported');
  assert.match(new Harness(op, { config: { fail: 'promise' } }).initError.message, /Promise/);
  assert.match(new Harness(op, { config: '{"broken' }).initError.message, /not JSON/);
});

test('the exported object speaks WIT: results, error variants and traps', () => {
  let initialized = 0;
  const op = defineOperator({
    name: 'wit',
    version: '0',
    open() {
      return {
        init(config) {
          initialized++;
          if (config.bad) throw new Error('bad config');
          if (config.trap) trap('init trap');
        },
        process() {},
      };
    },
  });
  const batch = new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => op.process(batch), (e) => e.tag === 'failed' && /before a successful `init`/.test(e.val));
  assert.throws(() => op.init('{"bad":true}'), (e) => e.tag === 'invalid-config' && e.val === 'bad config');
  assert.throws(() => op.init('{"trap":true}'), (e) => e instanceof Trap);
  op.init('{}');
  assert.deepEqual([...op.process(batch)], [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => op.process(new Uint8Array([9])), (e) => e.tag === 'failed' && /version 9/.test(e.val));
  assert.throws(
    () => op.migrate({ name: 's', kind: 'value', schemaVersion: 2, ttl: null, codec: 'json' }, 1, new Uint8Array()),
    (e) => e.tag === 'unsupported' && e.val === 'operator `wit` 0 cannot migrate state `s` from schema version 1 to 2',
  );
  assert.equal(initialized, 3);
});

test('migrate rewrites values; what it throws keeps its kind', () => {
  const op = defineOperator({
    name: 'm',
    version: '2',
    open: () => ({ process() {} }),
    migrate(state, from, bytes) {
      if (state.name === 'count' && from === 1) return migrateValue(bytes, (n) => ({ count: n }));
      if (state.name === 'wrong') return 'not bytes';
      throw OperatorError.unsupported(`no upgrade for ${state.name}`);
    },
  });
  const state = (name) => ({ name, kind: 'value', schemaVersion: 2, ttl: null, codec: 'json' });
  assert.equal(new TextDecoder().decode(op.migrate(state('count'), 1, te.encode('7'))), '{"count":7}');
  assert.throws(() => op.migrate(state('count'), 1, te.encode('{')), (e) => e.tag === 'failed' && /does not decode/.test(e.val));
  assert.throws(() => op.migrate(state('wrong'), 1, te.encode('1')), (e) => e.tag === 'failed' && /Uint8Array/.test(e.val));
  assert.throws(() => op.migrate(state('other'), 1, te.encode('1')), (e) => e.tag === 'unsupported');
});

test('records: key, value, timestamp, headers, JSON; emits with headers', () => {
  const op = probe((ctx, record) => {
    ctx.emit(record.key, record.value, record.headers);
    ctx.emit(record.keyText, JSON.stringify({ ts: record.timestamp, wm: ctx.watermark, h: record.header('b') ?? null, v: record.json() }));
    ctx.emit('m', 'x', new Map([['k', 'v']]));
    ctx.emit(new Uint8Array([1, 2]), new Uint16Array([0x0201]));
  });
  const h = new Harness(op);
  const out = h.processRecord({ key: 'k', value: '{"a":1}', timestamp: 42, headers: [['b', '2'], ['b', '3']] });
  assert.deepEqual(out.map((e) => e.headers), [[['b', '2'], ['b', '3']], [], [['k', 'v']], []]);
  assert.equal(out[0].valueText, '{"a":1}');
  assert.deepEqual(out[1].json(), { ts: 42, wm: NO_WATERMARK, h: '2', v: { a: 1 } });
  assert.deepEqual([...out[3].value], [1, 2]);
});

test('a bad emit, a non-UTF-8 key read as text or a thrown value fail the record, naming it', () => {
  const op = probe((ctx, record) => {
    if (record.valueText === 'emit-number') ctx.emit('k', 5);
    if (record.valueText === 'emit-header') ctx.emit('k', 'v', { n: 1 });
    if (record.valueText === 'key-text') return record.keyText;
    if (record.valueText === 'throw-string') throw 'just a string';
    if (record.valueText === 'type-error') return null.x;
    if (record.valueText === 'promise') return Promise.resolve();
  });
  const h = new Harness(op);
  const cases = [
    ['emit-number', 'k', 'record 0: TypeError: emit: the value must be a string or a Uint8Array, not number'],
    ['emit-header', 'k', 'record 0: TypeError: emit: header names and values must be strings'],
    ['key-text', new Uint8Array([0xff]), 'record 0: record key 0xff is not UTF-8: invalid UTF-8 at byte 0'],
    ['throw-string', 'k', 'record 0: just a string'],
    ['type-error', 'k', /^record 0: TypeError: /],
    ['promise', 'k', 'record 0: TypeError: process returned a Promise: operators are synchronous'],
  ];
  for (const [value, key, message] of cases) {
    assert.throws(
      () => h.process(key, value),
      (e) => e instanceof OperatorError && e.kind === 'failed' && (typeof message === 'string' ? e.message === message : message.test(e.message)),
      value,
    );
  }
});

test('value state: reads see the batch writes; a failing batch leaves nothing behind', () => {
  const op = probe((ctx, record, s) => {
    const obj = s.count.getOr({ n: 0 });
    obj.n += 1; // not stored until set
    if (record.valueText === 'set') s.count.set(obj);
    if (record.valueText === 'clear') s.count.clear();
    if (record.valueText === 'fail') throw new Error('boom');
    ctx.emit('k', JSON.stringify(s.count.get() ?? null));
  });
  const h = new Harness(op);
  const emits = h.processBatch(['set', 'get', 'set', 'clear', 'get'].map((value) => ({ key: 'a', value })));
  assert.deepEqual(emits.map((e) => e[0].valueText), ['{"n":1}', '{"n":1}', '{"n":2}', 'null', 'null']);
  h.process('a', 'set');
  assert.deepEqual(h.value('count', 'a'), { n: 1 });
  assert.throws(() => h.processBatch([{ key: 'a', value: 'set' }, { key: 'b', value: 'set' }, { key: 'a', value: 'fail' }]), /record 2: boom/);
  assert.deepEqual(h.value('count', 'a'), { n: 1 });
  assert.equal(h.value('count', 'b'), undefined);
});

test('value state without prefetching goes through value-get', () => {
  const op = probe((ctx, record, s) => {
    s.count.set(s.count.getOr(0) + 1);
    ctx.emit('k', String(s.count.get()));
  });
  const h = new Harness(op, { prefetchValues: false });
  assert.deepEqual(h.processBatch([{ key: 'a', value: '' }, { key: 'a', value: '' }]).map((e) => e[0].valueText), ['1', '2']);
  assert.equal(h.value('count', 'a'), 2);
});

test('map state iterates in the byte order of the JSON keys, in pages', () => {
  const op = probe((ctx, record, s) => {
    const cmd = record.json();
    if (cmd.put) for (const [k, v] of cmd.put) s.seen.put(k, v);
    if (cmd.remove !== undefined) s.seen.remove(cmd.remove);
    ctx.emit(
      'k',
      JSON.stringify({
        entries: s.seen.entriesArray({ pageSize: cmd.page }),
        keys: s.seen.keysArray({ pageSize: cmd.page }),
        empty: s.seen.isEmpty(),
        has9: s.seen.contains(9),
        get: s.seen.get('b') ?? null,
      }),
    );
  });
  const h = new Harness(op);
  let [e] = h.process('a', JSON.stringify({ put: [['b', 1], [10, 'ten'], [9, 'nine'], ['a', 2]], page: 1 }));
  // JSON texts: "a" < "b" < 10 < 9 (a quote is 0x22, digits 0x30 to 0x39)
  assert.deepEqual(e.json(), {
    entries: [['a', 2], ['b', 1], [10, 'ten'], [9, 'nine']],
    keys: ['a', 'b', 10, 9],
    empty: false,
    has9: true,
    get: 1,
  });
  assert.deepEqual(h.mapEntries('seen', 'a'), [['a', 2], ['b', 1], [10, 'ten'], [9, 'nine']]);
  assert.equal(h.mapGet('seen', 'a', 9), 'nine');
  [e] = h.process('a', JSON.stringify({ remove: 9 }));
  assert.equal(e.json().has9, false);
  [e] = h.process('b', JSON.stringify({}));
  assert.deepEqual(e.json(), { entries: [], keys: [], empty: true, has9: false, get: null });
});

test('list, reducing and aggregating state', () => {
  const op = probe((ctx, record, s) => {
    const n = Number(record.valueText);
    s.items.add(n);
    s.items.addAll([n, n]);
    s.sum.add(n);
    s.mean.add(n);
    ctx.emit('k', JSON.stringify([s.items.get(), s.sum.get(), s.mean.get(), s.mean.accumulator()]));
  });
  const h = new Harness(op);
  h.process('a', '1');
  const [e] = h.process('a', '4');
  assert.deepEqual(e.json(), [[1, 1, 1, 4, 4, 4], 5, 2.5, { sum: 5, n: 2 }]);
  assert.deepEqual(h.list('items', 'a'), [1, 1, 1, 4, 4, 4]);
  assert.ok(h.hasState('a'));
  assert.ok(!h.hasState('b'));
});

test('state errors and state used outside its scope name the state', () => {
  let states;
  const op = defineOperator({
    name: 'scope',
    version: '0',
    open(s) {
      states = { count: s.value('count'), opl: s.operatorList('opl') };
      return {
        init() {
          states.count.get();
        },
        process() {},
      };
    },
  });
  const h = new Harness(op);
  assert.equal(h.initError.message, 'state `count`: keyed state is only reachable inside `process` and `onTimer`');
  assert.throws(() => states.opl.get(), /operator state `opl`: reachable only inside/);
  const enc = probe((ctx, record, s) => s.count.set(undefined));
  assert.throws(() => new Harness(enc).process('k', ''), /record 0: state `count`: cannot encode value: cannot encode \(json\): undefined has no JSON form/);
});

test('operator list state: seeded, read in initState, changed in process, undone on failure', () => {
  const op = probe(
    (ctx, record, s) => {
      s.recent.add(record.valueText);
      if (record.valueText === 'fail') throw new Error('no');
    },
    {
      initState(ctx, s) {
        ctx.log('info', `restored ${s.recent.get().length}`);
      },
    },
  );
  const h = new Harness(op);
  h.setOperatorList('recent', ['x', 'y']);
  h.withConfig({});
  assert.equal(h.logs.at(-1).message, 'restored 2');
  h.process('k', 'z');
  assert.throws(() => h.process('k', 'fail'));
  assert.deepEqual(h.operatorList('recent'), ['x', 'y', 'z']);
});

test('logging: with the key in a context, without outside', () => {
  const op = probe((ctx, record) => {
    ctx.log('warn', 'from ctx');
    log('debug', 'from log');
    if (record.valueText === 'bad') ctx.log('loud', 'x');
  });
  const h = new Harness(op);
  h.process('k', '');
  assert.deepEqual(
    h.logs.map((l) => [l.level, l.key === null ? null : new TextDecoder().decode(l.key), l.message]),
    [['warn', 'k', 'from ctx'], ['debug', null, 'from log']],
  );
  assert.throws(() => h.process('k', 'bad'), /log level "loud"/);
});

test('a trap fails the record and the harness builds a fresh instance, as the host does', () => {
  let opened = 0;
  const op = defineOperator({
    name: 't',
    version: '0',
    open(states) {
      opened++;
      const count = states.value('count');
      let local = 0;
      return {
        process(ctx, record) {
          local++;
          count.set(count.getOr(0) + 1);
          if (record.valueText === 'trap') trap('asked to');
          ctx.emit('k', `${count.get()}/${local}`);
        },
      };
    },
  });
  const h = new Harness(op);
  const before = opened;
  assert.equal(h.process('k', '')[0].valueText, '1/1');
  assert.throws(() => h.process('k', 'trap'), (e) => e.kind === 'failed' && e.message === 'operator trapped: asked to');
  assert.equal(opened, before + 1);
  assert.equal(h.process('k', '')[0].valueText, '2/1');
});

test('event-time timers fire when the watermark reaches them, in (timestamp, key) order', () => {
  const op = probe(
    (ctx, record) => {
      const cmd = record.json();
      if (cmd.at !== undefined) ctx.registerEventTimeTimer(cmd.at);
      if (cmd.delete !== undefined) ctx.deleteEventTimeTimer(cmd.delete);
      ctx.emit(record.key, `record ${record.valueText}`);
    },
    {
      onTimer(ctx, timer, s) {
        s.count.set(s.count.getOr(0) + 1);
        ctx.emit(ctx.key, `timer ${timer.domain} ${timer.timestamp} ts=${ctx.timestamp} wm=${ctx.watermark} n=${s.count.get()}`);
      },
    },
  );
  const h = new Harness(op);
  h.process('b', '{"at":10}');
  h.process('a', '{"at":10}');
  h.process('a', '{"at":5}');
  h.process('a', '{"at":7}');
  h.process('a', '{"delete":7}');
  assert.deepEqual(
    h.timers().map((t) => [new TextDecoder().decode(t.key), t.timestamp, t.domain]),
    [['a', 5, 'event-time'], ['a', 10, 'event-time'], ['b', 10, 'event-time']],
  );
  assert.deepEqual(h.advanceWatermark(9).map((e) => e.valueText), ['timer event-time 5 ts=5 wm=9 n=1']);
  assert.deepEqual(
    h.advanceWatermark(20).map((e) => `${e.keyText}: ${e.valueText}`),
    ['a: timer event-time 10 ts=10 wm=20 n=2', 'b: timer event-time 10 ts=10 wm=20 n=1'],
  );
  assert.deepEqual(h.timers(), []);
  // A timer at or below the watermark fires before the key's next record (the batch splits there).
  const out = h.processBatch([
    { key: 'a', value: '{"at":15}' },
    { key: 'b', value: '{}' },
    { key: 'a', value: '{}' },
  ]);
  assert.deepEqual(
    out.map((emits) => emits.map((e) => e.valueText)),
    [['record {"at":15}'], ['record {}'], ['timer event-time 15 ts=15 wm=20 n=3', 'record {}']],
  );
});

test('processing-time timers fire as the clock advances; ctx.processingTime is the call clock', () => {
  const op = probe(
    (ctx) => {
      ctx.registerProcessingTimeTimer(ctx.processingTime + 100);
      ctx.registerProcessingTimeTimer(ctx.processingTime + 200);
      ctx.deleteProcessingTimeTimer(ctx.processingTime + 200);
    },
    {
      onTimer(ctx, timer) {
        ctx.emit(ctx.key, `${timer.domain} ${timer.timestamp} at ${ctx.processingTime}`);
      },
    },
  );
  const h = new Harness(op);
  h.advanceProcessingTime(1000);
  h.process('k', '');
  assert.deepEqual(h.advanceProcessingTime(1099), []);
  assert.deepEqual(h.advanceProcessingTime(1150).map((e) => e.valueText), ['processing-time 1100 at 1150']);
});

test('TTL: values expire with the processing-time clock; reads renew them under on-read-and-write', () => {
  const op = defineOperator({
    name: 'ttl',
    version: '0',
    open(states) {
      const plain = states.value('plain', { ttl: 100 });
      const renewed = states.value('renewed', { ttl: 100, ttlUpdate: 'on-read-and-write' });
      const items = states.list('items', { ttl: 100 });
      return {
        process(ctx, record) {
          if (record.valueText === 'write') {
            plain.set(1);
            renewed.set(1);
            items.add(1);
          }
          ctx.emit('k', JSON.stringify([plain.get() ?? null, renewed.get() ?? null, items.get()]));
        },
      };
    },
  });
  const h = new Harness(op);
  h.process('k', 'write');
  h.advanceProcessingTime(60);
  assert.equal(h.process('k', 'read')[0].valueText, '[1,1,[1]]'); // renews `renewed` at 60
  h.advanceProcessingTime(120);
  assert.equal(h.process('k', 'read')[0].valueText, '[null,1,[]]');
  h.advanceProcessingTime(400);
  assert.equal(h.process('k', 'read')[0].valueText, '[null,null,[]]');
  assert.ok(!h.hasState('k'));
});

test('custom codecs are named in the descriptor and used for the bytes', () => {
  const text = { name: 'utf8-text', encode: (s) => te.encode(s), decode: (b) => new TextDecoder().decode(b) };
  const op = defineOperator({
    name: 'codec',
    version: '0',
    open(states) {
      const name = states.value('name', { codec: text });
      return {
        process(ctx, record) {
          name.set(record.valueText);
        },
      };
    },
  });
  assert.equal(op.describe().states[0].codec, 'utf8-text');
  const h = new Harness(op);
  h.process('k', 'plain');
  assert.equal(h.value('name', 'k'), 'plain');
  assert.equal(json.decode(json.encode({ a: [1] })).a[0], 1);
});

test('the clock is out of reach, as in the component (where QuickJS would trap)', () => {
  const op = probe((ctx, record) => {
    if (record.valueText === 'now') Date.now();
    if (record.valueText === 'new') new Date();
    ctx.emit('k', new Date(0).toISOString());
  });
  const h = new Harness(op);
  assert.equal(h.process('k', '')[0].valueText, '1970-01-01T00:00:00.000Z');
  for (const v of ['now', 'new']) assert.throws(() => h.process('k', v), /record 0: an Eddy operator has no clock/);
  assert.ok(Date.now() > 0, 'the clock is back outside the call');
});
