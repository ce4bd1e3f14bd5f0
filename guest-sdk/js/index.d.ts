// Types of eddy-sdk, the JavaScript SDK for Eddy operators (eddy:operator@0.4.0).

/** A codec: how state values and map keys become bytes. `name` goes into the state descriptor. */
export interface Codec<T = any> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** UTF-8 JSON text (descriptor codec `"json"`), the SDK's default. */
export const json: Codec;
/** The codecs the SDK ships. */
export const Codec: { readonly json: Codec };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type TimeDomainName = 'event-time' | 'processing-time';
export type TtlUpdateName = 'on-create-and-write' | 'on-read-and-write';
export type RedistributionName = 'even-split' | 'union';
export type OperatorErrorKind = 'failed' | 'invalid-config' | 'unsupported';

export const TimeDomain: { readonly EventTime: 'event-time'; readonly ProcessingTime: 'processing-time' };
export const TtlUpdate: { readonly OnCreateAndWrite: 'on-create-and-write'; readonly OnReadAndWrite: 'on-read-and-write' };
export const Redistribution: { readonly EvenSplit: 'even-split'; readonly Union: 'union' };

/** The watermark before any record has set one (i64::MIN, -2^63). */
export const NO_WATERMARK: number;
/** The schema version a state gets unless declared otherwise (1). */
export const DEFAULT_SCHEMA_VERSION: number;
/** How many entries `MapState.entries` / `keys` fetch per host call by default (256). */
export const DEFAULT_PAGE_SIZE: number;

/**
 * An error with the `operator-error` case it becomes: `failed` (the record is
 * dead-lettered), `invalid-config` (from `init`) or `unsupported` (e.g. `migrate`). Any other
 * thrown value becomes `failed` (in `init`: `invalid-config`) with its message.
 */
export class OperatorError extends Error {
  constructor(kind: OperatorErrorKind, message: string);
  readonly kind: OperatorErrorKind;
  static failed(message: string): OperatorError;
  static invalidConfig(message: string): OperatorError;
  static unsupported(message: string): OperatorError;
  /** The same error with `context: ` put in front of its message. */
  withContext(context: string): OperatorError;
}

/** An error the host returned from a state call (the WIT `state-error`). */
export class StateError extends Error {
  constructor(tag: 'bad-handle' | 'bad-key' | 'too-large' | 'backend', val: unknown);
  readonly tag: 'bad-handle' | 'bad-key' | 'too-large' | 'backend';
  readonly val: unknown;
}

/** What `trap` throws; the SDK lets it through so that the engine traps the instance. */
export class Trap extends Error {}

/**
 * Traps the instance, as a Rust panic does: the batch's effects are discarded, the host
 * builds a fresh instance and the record that traps alone is dead-lettered with
 * `operator trapped: …` (the message is logged at `error` first). Prefer throwing.
 */
export function trap(message?: string): never;

/** Logs a line into the host's structured logging, not tagged with a key. */
export function log(level: LogLevel, message: string): void;

/** Options of a keyed state declaration. */
export interface StateOptions<T = any> {
  /** Version of the bytes' schema (default 1); a change makes the host call `migrate`. */
  schemaVersion?: number;
  /** Time to live of each value (map entry, list item), in whole milliseconds of processing time. */
  ttl?: number;
  /** What restarts the time to live (default `'on-create-and-write'`); only with `ttl`. */
  ttlUpdate?: TtlUpdateName;
  /** How values (and map keys) become bytes (default JSON). */
  codec?: Codec<T>;
}

/** Options of an operator state declaration. */
export interface OperatorStateOptions<T = any> {
  schemaVersion?: number;
  /** How the items are spread over the workers at a start (default `'even-split'`). */
  redistribution?: RedistributionName;
  codec?: Codec<T>;
}

/** An incremental aggregation (Flink's AggregateFunction). */
export interface AggregateFunction<In, Acc, Out> {
  createAccumulator(): Acc;
  /** Adds `value`; returns the new accumulator, or nothing having changed it in place. */
  add(value: In, accumulator: Acc): Acc | void;
  getResult(accumulator: Acc): Out;
}

/** Where an operator declares its state, in `open(states)`. Handles are numbered in declaration order. */
export class StateRegistry {
  value<T = any>(name: string, options?: StateOptions<T>): ValueState<T>;
  map<K = any, V = any>(name: string, options?: StateOptions<K | V>): MapState<K, V>;
  list<T = any>(name: string, options?: StateOptions<T>): ListState<T>;
  reducing<T = any>(name: string, reduce: (accumulated: T, added: T) => T, options?: StateOptions<T>): ReducingState<T>;
  aggregating<In, Acc, Out>(
    name: string,
    fn: AggregateFunction<In, Acc, Out>,
    options?: StateOptions<Acc>,
  ): AggregatingState<In, Acc, Out>;
  operatorList<T = any>(name: string, options?: OperatorStateOptions<T>): OperatorListState<T>;
}

/**
 * One value per key, prefetched into the batch (reads and writes cost no host call). Under
 * `ttlUpdate: 'on-read-and-write'` a read of a present value writes it back.
 */
export class ValueState<T = any> {
  readonly handle: number;
  readonly name: string;
  /** The current key's value, or `undefined`. */
  get(): T | undefined;
  /** The current key's value, or `fallback`. */
  getOr(fallback: T): T;
  set(value: T): void;
  clear(): void;
}

/** A map per key; every call crosses to the host. Iteration is in the byte order of the encoded keys. */
export class MapState<K = any, V = any> {
  readonly handle: number;
  readonly name: string;
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  remove(key: K): void;
  contains(key: K): boolean;
  isEmpty(): boolean;
  clear(): void;
  /** `[key, value]` entries, fetched `pageSize` (default 256) at a time. */
  entries(options?: { pageSize?: number }): Generator<[K, V], void, undefined>;
  keys(options?: { pageSize?: number }): Generator<K, void, undefined>;
  entriesArray(options?: { pageSize?: number }): Array<[K, V]>;
  keysArray(options?: { pageSize?: number }): K[];
}

/** A list per key; every call crosses to the host. */
export class ListState<T = any> {
  readonly handle: number;
  readonly name: string;
  get(): T[];
  add(value: T): void;
  addAll(values: Iterable<T>): void;
  /** Replaces the list (an empty one clears it). */
  update(values: Iterable<T>): void;
  clear(): void;
}

/** A value state folding every added value into one. */
export class ReducingState<T = any> {
  readonly handle: number;
  readonly name: string;
  add(value: T): void;
  get(): T | undefined;
  clear(): void;
}

/** A value state holding an aggregate function's accumulator. */
export class AggregatingState<In = any, Acc = any, Out = any> {
  readonly handle: number;
  readonly name: string;
  add(value: In): void;
  get(): Out | undefined;
  accumulator(): Acc | undefined;
  clear(): void;
}

/** A list per worker (not keyed), reachable in `initState`, `process` and `onTimer`. */
export class OperatorListState<T = any> {
  readonly handle: number;
  readonly name: string;
  get(): T[];
  add(value: T): void;
  /** One host call per item. */
  addAll(values: Iterable<T>): void;
  update(values: Iterable<T>): void;
  clear(): void;
}

export type Headers = { [name: string]: string } | Map<string, string> | Array<[string, string]>;

/** One input record; `key` and `value` are views of the batch, valid during the call. */
export class Record {
  readonly key: Uint8Array;
  /** The key as text (throws when it is not UTF-8). */
  readonly keyText: string;
  readonly value: Uint8Array;
  readonly valueText: string;
  /** Event timestamp, ms since the Unix epoch. */
  readonly timestamp: number;
  /** `[name, value]` pairs in record order (names may repeat). */
  readonly headers: Array<[string, string]>;
  header(name: string): string | undefined;
  /** The value parsed as JSON. */
  json(): any;
}

/** What an operator can do while it handles a record or a timer. */
export class Context {
  readonly keyIndex: number;
  readonly key: Uint8Array;
  readonly keyText: string;
  /** The record's timestamp; in `onTimer`, the timer's. */
  readonly timestamp: number;
  /** The job's watermark as this record or timer is handled (`NO_WATERMARK` before any). */
  readonly watermark: number;
  /** The host's wall clock at the call (not deterministic on replay). */
  readonly processingTime: number;
  emit(key: string | Uint8Array, value: string | Uint8Array, headers?: Headers): void;
  registerEventTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
  registerProcessingTimeTimer(timestamp: number): void;
  deleteProcessingTimeTimer(timestamp: number): void;
  log(level: LogLevel, message: string): void;
}

/** What `initState` can do: reach operator state (through its handles) and log. */
export class InitContext {
  log(level: LogLevel, message: string): void;
}

export interface Timer {
  timestamp: number;
  domain: TimeDomainName;
}

/** The WIT `state-descriptor`, as `migrate` gets it. */
export interface StateDescriptor {
  name: string;
  kind: 'value' | 'map' | 'list';
  schemaVersion: number;
  ttl: { ttlMs: number; update: TtlUpdateName } | null | undefined;
  codec: string | null | undefined;
}

/** An operator instance: what `open` returns. */
export interface OperatorInstance {
  /** Reads the job's `[operator] config` (parsed; the JSON text too). Throws are `invalid-config`. */
  init?(config: any, configText: string): void;
  /** Reaches the worker's operator state when an instance starts, after `init`. */
  initState?(ctx: InitContext): void;
  /** Handles one record. A throw fails the record (and its batch; the host isolates it). */
  process(ctx: Context, record: Record): void;
  /** Handles a timer of the current key that fired. */
  onTimer?(ctx: Context, timer: Timer): void;
}

export interface OperatorSpec {
  /** Human name, e.g. "word-count". */
  name: string;
  /** The operator's version (semver). */
  version: string;
  /** Declares the states (the same ones every time) and returns an instance. */
  open(states: StateRegistry): OperatorInstance;
  /** Rewrites a stored value whose schema version changed; the default refuses (`unsupported`). */
  migrate?(state: StateDescriptor, fromVersion: number, value: Uint8Array): Uint8Array;
}

/** The `eddy:operator/operator` export: export it as `operator`. */
export interface ExportedOperator {
  describe(): object;
  init(config: string): void;
  process(batch: Uint8Array): Uint8Array;
  onTimer(batch: Uint8Array): Uint8Array;
  migrate(state: StateDescriptor, fromVersion: number, value: Uint8Array): Uint8Array;
}

/** Declares an operator: `export const operator = defineOperator({...})`. */
export function defineOperator(spec: OperatorSpec): ExportedOperator;

/** Decodes `bytes` with `from` (JSON by default), maps with `f`, encodes with `to` (default: `from`). */
export function migrateValue<Old = any, New = any>(
  bytes: Uint8Array,
  f: (old: Old) => New,
  codecs?: { from?: Codec<Old>; to?: Codec<New> },
): Uint8Array;

export function encodeUtf8(text: string): Uint8Array;
/** Throws on invalid UTF-8. */
export function decodeUtf8(bytes: Uint8Array, start?: number, end?: number): string;
/** Replaces invalid bytes with U+FFFD. */
export function decodeUtf8Lossy(bytes: Uint8Array): string;
/**
 * Orders strings by the bytes of their UTF-8 (code point order), as Rust orders strings;
 * `<` and the default sort use UTF-16 units, which differ beyond U+FFFF.
 */
export function compareUtf8(a: string, b: string): number;

// -- event-time windows (src/window.js; the Rust SDK's `window` module) --------------------

/** The most sliding windows one element may belong to (1000); more makes `check()` fail. */
export const MAX_WINDOWS_PER_ELEMENT: number;

/** A window of event time: the timestamps from `start` (included) to `end` (excluded), in ms. */
export class Window {
  constructor(start: number, end: number);
  readonly start: number;
  readonly end: number;
  /** `end - 1`: the window fires when the watermark reaches it. */
  maxTimestamp(): number;
  contains(timestamp: number): boolean;
  /** `[start, end)`. */
  toString(): string;
}

/** A window that fired, with the window function's result. */
export interface Fired<O> {
  window: Window;
  result: O;
  /**
   * Whether an element that arrived after the window's end (within the allowed lateness)
   * fired it, from `add`: the window again, with that element added. False from `onTimer`.
   */
  late: boolean;
}

/** What `Windows.add` did with an element; iterating it goes over `fired`. */
export class Added<O = any> implements Iterable<Fired<O>> {
  /** The windows the element fired at once (late firings, within the allowed lateness). Usually empty. */
  readonly fired: Array<Fired<O>>;
  /** Whether every window of the element was already cleaned up: it was dropped, changing nothing. */
  readonly dropped: boolean;
  [Symbol.iterator](): Iterator<Fired<O>>;
}

/** An aggregate function whose accumulators merge (`a` the earlier session's), as session windows need. */
export interface MergingAggregateFunction<In, Acc, Out> extends AggregateFunction<In, Acc, Out> {
  /** The accumulator of everything both hold; or nothing, having merged `b` into `a`. */
  merge(a: Acc, b: Acc): Acc | void;
}

/**
 * Makes a window's result from all its elements when it fires: `[timestamp, element]` pairs
 * in timestamp order (equal timestamps in the order they were added). Read-only: the pairs
 * may be shared with other windows firing in the same call.
 */
export type ProcessWindowFunction<In, Out> = (
  key: Uint8Array,
  window: Window,
  elements: Array<[number, In]>,
) => Out;

/** A shape of windows with its allowed lateness, as `Windows.reconfigure` takes it. */
export type WindowAssigner = TumblingWindows | SlidingWindows | SessionWindows;

/**
 * Tumbling event-time windows: back-to-back windows of one size (each element in exactly
 * one). Immutable: every method returns a new declaration.
 */
export class TumblingWindows {
  /** Windows of `sizeMs` (positive), starting at multiples of it plus `offsetMs` (default 0). */
  static of(sizeMs: number, offsetMs?: number): TumblingWindows;
  /** Windows start at `offsetMs` plus multiples of the size. */
  offset(offsetMs: number): TumblingWindows;
  /** How long after a window's end (event time) its state is kept for late elements (default 0). */
  allowedLateness(latenessMs: number): TumblingWindows;
  /** Each window folds its elements with `reduce` (which must not change `b`). State: `{name}/windows`. */
  reduce<T = any>(states: StateRegistry, name: string, reduce: (a: T, b: T) => T): Windows<T, T>;
  /** Each window keeps `fn`'s accumulator (with `merge`, it can be reconfigured into sessions). State: `{name}/windows`. */
  aggregate<In, Acc, Out>(states: StateRegistry, name: string, fn: AggregateFunction<In, Acc, Out>): Windows<In, Out>;
  /** The elements are kept; `fn` sees them all when the window fires. State: `{name}/windows`, `{name}/elements`. */
  process<In, Out>(states: StateRegistry, name: string, fn: ProcessWindowFunction<In, Out>): Windows<In, Out>;
}

/**
 * Sliding event-time windows of `size` starting every `slide`: an element is in
 * `size / slide` of them (rounded up; none when it falls in a gap). Immutable.
 */
export class SlidingWindows {
  static of(sizeMs: number, slideMs: number): SlidingWindows;
  offset(offsetMs: number): SlidingWindows;
  allowedLateness(latenessMs: number): SlidingWindows;
  reduce<T = any>(states: StateRegistry, name: string, reduce: (a: T, b: T) => T): Windows<T, T>;
  aggregate<In, Acc, Out>(states: StateRegistry, name: string, fn: AggregateFunction<In, Acc, Out>): Windows<In, Out>;
  process<In, Out>(states: StateRegistry, name: string, fn: ProcessWindowFunction<In, Out>): Windows<In, Out>;
}

/**
 * Session windows: elements less than `gap` apart share a session, which ends `gap` after
 * its last element; an element between two sessions merges them. Sessions that only touch
 * (`gap` apart) stay apart. Immutable.
 */
export class SessionWindows {
  static withGap(gapMs: number): SessionWindows;
  allowedLateness(latenessMs: number): SessionWindows;
  reduce<T = any>(states: StateRegistry, name: string, reduce: (a: T, b: T) => T): Windows<T, T>;
  /** The aggregate function must merge accumulators; without `merge` `init` fails. */
  aggregate<In, Acc, Out>(states: StateRegistry, name: string, fn: MergingAggregateFunction<In, Acc, Out>): Windows<In, Out>;
  process<In, Out>(states: StateRegistry, name: string, fn: ProcessWindowFunction<In, Out>): Windows<In, Out>;
}

/**
 * Event-time windows over the current key's elements. A window `[start, end)` fires once
 * when the watermark reaches `end - 1` (from `onTimer`); its state is kept until
 * `end - 1 + allowedLateness`, and an element arriving in between fires it again at once
 * (from `add`, `late: true`); an element whose windows are all cleaned up is dropped.
 * State (JSON, schema version 1): `{name}/windows` (value: `[start, end, pending,
 * accumulator]` per live window) and, for process windows, `{name}/elements` (list of
 * `[timestamp, element]`). Timers: event-time timers of the key at `end - 1` and
 * `end - 1 + lateness`, shared with the operator's own (never deleted by the windows).
 */
export class Windows<In = any, Out = any> {
  /** The name the windows were declared with (their state is `{name}/…`). */
  readonly name: string;
  /** Throws an `invalid-config` OperatorError when the parameters are bad; call it in `init`. */
  check(): void;
  /** Replaces the shape and lateness, keeping the name and state (in `init`, from the config). */
  reconfigure(windows: WindowAssigner): void;
  /** Adds `element` at `timestamp` (default `ctx.timestamp`): the windows it fired late, and whether it was dropped. */
  add(ctx: Context, element: In, timestamp?: number): Added<Out>;
  /**
   * Handles any event-time timer of the key: the windows that fired (empty for a cleanup
   * alone), or null when nothing of these windows was due.
   */
  onTimer(ctx: Context, timer: Timer): Array<Fired<Out>> | null;
  /** The current key's live windows, in order. */
  windows(ctx: Context): Window[];
}
