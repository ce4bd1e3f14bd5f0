// The batch codec: layouts written out by hand from docs/batch-format.md, the value-state
// write rules (last write wins, TTL write-back), and malformed inputs.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BatchState, Reader, Writer } from '../src/batch.js';
import { OperatorError, StateError } from '../src/errors.js';
import { Runtime, SPEC, defineOperator } from '../src/runtime.js';
import { decodeOutput, encodeInput } from '../src/testing.js';

const te = new TextEncoder();
const bytes = (s) => te.encode(s);

function le32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return [...b];
}

function field(s) {
  const b = typeof s === 'string' ? bytes(s) : s;
  return [...le32(b.length), ...b];
}

/** Emits `(key, value + count)` with header `n: count`; counts in value state `n` (handle 1). */
const echo = defineOperator({
  name: 'echo',
  version: '0.0.1',
  open(states) {
    states.list('unused');
    const n = states.value('n');
    return {
      process(ctx, record) {
        if (record.valueText === 'fail') throw new Error('no');
        const count = n.getOr(0) + 1;
        n.set(count);
        ctx.emit(record.key, record.valueText + count, { n: String(count) });
      },
    };
  },
});

/** A host with value state only: any other call fails the test. */
const valuesOnly = new Proxy(
  { log() {} },
  {
    get(target, prop) {
      return prop in target ? target[prop] : () => assert.fail(`unexpected host call ${String(prop)}`);
    },
  },
);

function input() {
  return encodeInput({
    processingTime: 0,
    keys: [bytes('k0'), bytes('k1')],
    handles: [1],
    slots: [bytes('7'), null],
    records: [
      { keyIndex: 1, timestamp: 5, watermark: 0, value: bytes('a'), headers: [] },
      { keyIndex: 0, timestamp: 6, watermark: 0, value: bytes('b'), headers: [['h', 'v']] },
      { keyIndex: 1, timestamp: 7, watermark: 0, value: bytes('c'), headers: [] },
    ],
  });
}

function runtime(host = valuesOnly) {
  const rt = new Runtime(echo[SPEC], host);
  rt.init('{}');
  return rt;
}

test('output bytes follow the documented layout', () => {
  const output = runtime().process(input());
  const expected = [2, ...le32(3)];
  for (const [key, value, n] of [['k1', 'a1', '1'], ['k0', 'b8', '8'], ['k1', 'c2', '2']]) {
    expected.push(...le32(1), ...field(key), ...field(value), ...le32(1), ...field('n'), ...field(n));
  }
  expected.push(...le32(2)); // the last write per key: k0 = 8, k1 = 2
  for (const [key, n] of [[0, '8'], [1, '2']]) expected.push(...le32(key), ...le32(1), 1, ...field(n));
  expected.push(...le32(0)); // no timer changes
  assert.deepEqual([...output], expected);
});

test('batches are independent', () => {
  const rt = runtime();
  assert.deepEqual(rt.process(input()), rt.process(input()));
});

test('an error names the record and fails the batch', () => {
  const bad = encodeInput({
    processingTime: 0,
    keys: [bytes('k')],
    handles: [1],
    slots: [null],
    records: ['ok', 'fail'].map((v) => ({ keyIndex: 0, timestamp: 0, watermark: 0, value: bytes(v), headers: [] })),
  });
  assert.throws(
    () => runtime().process(bad),
    (e) => e instanceof OperatorError && e.kind === 'failed' && e.message === 'record 1: no',
  );
});

function states(ttlUpdate) {
  const ttl = ttlUpdate ? { ttlMs: 1000, update: ttlUpdate } : null;
  return [
    { name: 'count', kind: 'value', ttl },
    { name: 'm', kind: 'map', ttl: null },
    { name: 'total', kind: 'value', ttl },
  ];
}

function sample() {
  return encodeInput({
    processingTime: 0,
    keys: [bytes('a'), bytes('bb')],
    handles: [2, 0],
    slots: [bytes('a-total'), null, null, bytes('bb-count')],
    records: [],
  });
}

/** The writes of `BatchState.writeOutput`: [key, handle, value text or null]. */
function writesOf(batch) {
  const out = new Writer();
  batch.writeOutput(out);
  const r = new Reader(out.finish());
  const n = r.u32('n');
  const writes = [];
  for (let i = 0; i < n; i++) {
    const key = r.u32();
    const handle = r.u32();
    const op = r.u8();
    if (op === 0) writes.push([key, handle, null]);
    else {
      const start = r.span();
      writes.push([key, handle, new TextDecoder().decode(out.finish().subarray(start, r.pos))]);
    }
  }
  assert.equal(r.u32('timer ops'), 0);
  return writes;
}

const text = (b) => (b === null ? null : new TextDecoder().decode(b));

test('writes keep only the last one per key and handle', () => {
  const batch = new BatchState();
  batch.begin(sample(), states());
  batch.writeSlot(batch.slot(0, 1), bytes('x'));
  batch.writeSlot(batch.slot(0, 1), bytes('y'));
  batch.writeSlot(batch.slot(2, 0), null);
  assert.equal(text(batch.slotBytes(batch.slot(0, 1), 0)), 'y');
  assert.equal(batch.slotBytes(batch.slot(2, 0), 2), null);
  assert.deepEqual(writesOf(batch), [[0, 2, null], [1, 0, 'y']]);
  assert.throws(() => batch.slot(1, 0), (e) => e instanceof StateError && e.tag === 'bad-handle');
  assert.throws(() => batch.slot(0, 2), (e) => e instanceof StateError && e.tag === 'bad-key');
});

test('reads that restart a TTL write present values back', () => {
  const batch = new BatchState();
  batch.begin(sample(), states('on-read-and-write'));
  // Present: `total` of "a", `count` of "bb". Absent: `count` of "a", `total` of "bb".
  for (const [handle, key] of [[2, 0], [0, 0], [2, 1], [0, 1], [0, 1]]) batch.slotBytes(batch.slot(handle, key), handle);
  assert.deepEqual(writesOf(batch), [[0, 2, 'a-total'], [1, 0, 'bb-count']]);

  // The batch's own writes win, whichever comes first; a read after a clear writes nothing back.
  batch.begin(sample(), states('on-read-and-write'));
  batch.slotBytes(batch.slot(2, 0), 2);
  batch.writeSlot(batch.slot(2, 0), bytes('new'));
  batch.writeSlot(batch.slot(0, 1), null);
  assert.equal(batch.slotBytes(batch.slot(0, 1), 0), null);
  assert.deepEqual(writesOf(batch), [[0, 2, 'new'], [1, 0, null]]);

  // Without on-read-and-write, reads write nothing.
  batch.begin(sample(), states('on-create-and-write'));
  batch.slotBytes(batch.slot(2, 0), 2);
  batch.slotBytes(batch.slot(0, 1), 0);
  assert.deepEqual(writesOf(batch), []);
});

test('value states not prefetched are read through the host once, and written back under a refreshing TTL', () => {
  const input = encodeInput({ processingTime: 0, keys: [bytes('a'), bytes('bb')], handles: [2], slots: [null, null], records: [] });
  let calls = 0;
  const host = {
    valueGet(handle, key) {
      calls++;
      return bytes(`fetched-${key}`);
    },
  };
  let batch = new BatchState();
  batch.begin(input, states());
  assert.equal(text(batch.fetchedBytes(0, 1, host)), 'fetched-1');
  batch.writeFetched(0, 1, bytes('z'));
  assert.equal(text(batch.fetchedBytes(0, 1, host)), 'z');
  assert.equal(calls, 1);
  assert.deepEqual(writesOf(batch), [[1, 0, 'z']]);

  batch = new BatchState();
  batch.begin(input, states('on-read-and-write'));
  batch.fetchedBytes(0, 1, host);
  assert.deepEqual(writesOf(batch), [[1, 0, 'fetched-1']]);
});

test('every truncation of a valid batch is refused with an OperatorError', () => {
  const full = input();
  for (let len = 0; len < full.length; len++) {
    assert.throws(() => runtime().process(full.subarray(0, len)), OperatorError, `truncated to ${len}`);
  }
});

test('malformed headers are refused', () => {
  const header = (...parts) => new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0, ...parts.flat()]);
  const cases = [
    [new Uint8Array([1]), 'version 1'],
    [header([0xff, 0xff, 0xff, 0xff]), 'key count is 4294967295'],
    [header(le32(0), le32(1), le32(0)), 'prefetched handle 0 is not a value state'],
    [header(le32(0), le32(1), le32(9)), 'prefetched handle 9 names no state'],
    [header(le32(0), le32(2), le32(1), le32(1)), 'prefetched twice'],
    [header(le32(1), le32(0), le32(1), le32(1), [7]), 'slot present flag is 7'],
  ];
  for (const [bad, message] of cases) {
    assert.throws(() => runtime().process(bad), (e) => e instanceof OperatorError && e.message.includes(message), message);
  }
});

test('a record key index outside the key table is refused', () => {
  const bad = encodeInput({
    processingTime: 0,
    keys: [bytes('k')],
    handles: [],
    slots: [],
    records: [{ keyIndex: 1, timestamp: 0, watermark: 0, value: bytes(''), headers: [] }],
  });
  assert.throws(() => runtime().process(bad), /outside the key table/);
});

test('arbitrary bytes never throw anything but an OperatorError', () => {
  const valid = input();
  let seed = 0x9e3779b9;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const rt = runtime();
  for (let round = 0; round < 3000; round++) {
    const buf = round % 2 === 0 ? valid.slice() : new Uint8Array(next() % 64).map(() => next() & 0xff);
    if (buf.length > 0) buf[next() % buf.length] = next() & 0xff;
    try {
      decodeOutput(rt.process(buf));
    } catch (error) {
      assert.ok(error instanceof OperatorError, `${error}`);
    }
  }
});

test('i64 fields keep their values, and saturate at the i64 range', () => {
  for (const v of [0, 1, -1, 1700000000000, -5, 2 ** 53 - 1, -(2 ** 53), -9223372036854775808]) {
    const w = new Writer();
    w.i64(v);
    assert.equal(new Reader(w.finish()).i64(), v, String(v));
  }
  const w = new Writer();
  w.i64(Infinity);
  w.i64(-Infinity);
  w.i64(9223372036854775807n);
  const view = new DataView(w.finish().buffer);
  assert.equal(view.getBigInt64(0, true), 9223372036854775807n);
  assert.equal(view.getBigInt64(8, true), -9223372036854775808n);
  assert.equal(view.getBigInt64(16, true), 9223372036854775807n);
  assert.throws(() => new Writer().i64(NaN), TypeError);
});
