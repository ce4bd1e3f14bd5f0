// Types of eddy-sdk/testing, the Node test harness.
import type { ExportedOperator, LogLevel, OperatorError, TimeDomainName } from './index.js';

/** The most entries or keys one map page holds (1024). */
export const MAX_PAGE: number;
/** The most timers one firing fires before it fails. */
export const MAX_FIRINGS: number;

/** A record an operator emitted. */
export class Emitted {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly headers: Array<[string, string]>;
  readonly keyText: string;
  readonly valueText: string;
  json(): any;
}

export interface InputRecord {
  key: string | Uint8Array;
  value?: string | Uint8Array;
  /** Event timestamp, ms (default 0). */
  timestamp?: number;
  headers?: Record<string, string> | Map<string, string> | Array<[string, string]>;
}

export interface LogLine {
  level: LogLevel;
  /** The key of the record being handled, for lines logged through a Context. */
  key: Uint8Array | null;
  message: string;
}

/**
 * Runs an operator in Node on in-memory state with the host's semantics (prefetched value
 * state, a failing call leaves nothing behind, map order by encoded key bytes, timers,
 * watermark, TTL against a processing-time clock, operator state, a fresh instance after a
 * trap). Calls throw an OperatorError when the operator fails.
 */
export class Harness {
  constructor(operator: ExportedOperator, options?: { config?: object | string; prefetchValues?: boolean });
  /** What `describe` returns. */
  readonly info: { name: string; version: string; states: any[]; operatorStates: any[] };
  /** The error of the last `init`, or null. */
  readonly initError: OperatorError | null;
  initResult(): void;
  /** Re-opens the operator with `config`, keeping the state. */
  withConfig(config: object | string): this;
  readonly logs: LogLine[];
  readonly states: any[];
  process(key: string | Uint8Array, value: string | Uint8Array, options?: Omit<InputRecord, 'key' | 'value'>): Emitted[];
  /** `process` as `[keyText, valueText]` pairs. */
  processText(key: string | Uint8Array, value: string | Uint8Array, options?: Omit<InputRecord, 'key' | 'value'>): Array<[string, string]>;
  processRecord(record: InputRecord): Emitted[];
  /** One `process` call; what each record emitted. */
  processBatch(records: InputRecord[]): Emitted[][];
  readonly watermark: number;
  advanceWatermark(watermark: number): Emitted[];
  readonly processingTime: number;
  advanceProcessingTime(now: number): Emitted[];
  timers(): Array<{ key: Uint8Array; timestamp: number; domain: TimeDomainName }>;
  value(state: string, key: string | Uint8Array): any;
  setValue(state: string, key: string | Uint8Array, value: any): void;
  mapGet(state: string, key: string | Uint8Array, mapKey: any): any;
  mapEntries(state: string, key: string | Uint8Array): Array<[any, any]>;
  list(state: string, key: string | Uint8Array): any[];
  operatorList(state: string): any[];
  setOperatorList(state: string, items: any[]): void;
  hasState(key: string | Uint8Array): boolean;
}

/** Encodes a `process` / `on-timer` input as the host does. */
export function encodeInput(batch: {
  processingTime?: number;
  keys: Uint8Array[];
  handles: number[];
  slots: Array<Uint8Array | null>;
  records?: Array<{ keyIndex: number; timestamp: number; watermark: number; value: Uint8Array; headers: Array<[string, string]> }>;
  timers?: Array<{ keyIndex: number; timestamp: number; domain: 0 | 1; watermark: number }>;
}): Uint8Array;

/** Decodes a `process` / `on-timer` result as the host does. */
export function decodeOutput(bytes: Uint8Array): {
  emits: Emitted[][];
  writes: Array<{ keyIndex: number; handle: number; value: Uint8Array | null }>;
  timerOps: Array<{ item: number; register: boolean; domain: number; timestamp: number }>;
};

/** One file-sink line `{"key":…,"value":…}` (+ `"headers"` sorted by name when there are any). */
export function sinkLine(key: Uint8Array, value: Uint8Array, headers?: Array<[string, string]>): string;

/** What an operator emits for `input` (file-source JSON lines), one sink line per record. */
export function runJsonLines(harness: Harness, input: string): string;

/** The `[event-time]` table of a job file's text, or null. */
export function eventTimeOf(jobToml: string): { maxOutOfOrdernessMs: number; allowedLatenessMs: number } | null;

/** Runs `input` as the host runs a file source with event time: `{output, late}` sink lines. */
export function runEventTime(
  harness: Harness,
  input: string,
  eventTime: { maxOutOfOrdernessMs: number; allowedLatenessMs: number } | null,
): { output: string; late: string };
