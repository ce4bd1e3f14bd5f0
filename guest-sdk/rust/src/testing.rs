//! A native test harness: runs an operator in-process, without a host or Wasm, with the
//! host's state semantics kept in memory. Compiled for non-Wasm targets only.
//!
//! Records go through the same batch codec and the same runtime as on Wasm (the harness
//! encodes a batch as the host would, and decodes the result), so what passes here exercises
//! the code that runs in the component. Like the host, the harness:
//! - prefetches every value state of the batch's keys into the batch;
//! - applies a batch's effects (value-state writes, map and list calls, timer changes) only
//!   when `process` succeeds: an error discards all of them;
//! - iterates maps in the byte order of the encoded map keys, in pages;
//! - fires event-time timers when the watermark reaches them, from the front of the due
//!   timers, and a timer registered at or below the watermark before its key's next record;
//! - enforces state TTLs in processing time (the harness's clock, which
//!   [`advance_processing_time`](Harness::advance_processing_time) moves): each value, map
//!   entry and list item is stamped with the clock when written, and expires once
//!   `stamp + ttl_ms <= clock`; an expired one is never returned (nor prefetched) and is
//!   dropped when the clock moves. Under [`TtlUpdate::OnReadAndWrite`] the reads made
//!   through host calls restamp what they return — `map-get`, `map-contains` (when
//!   present), `map-entries` and `map-keys` (the page's entries), `list-get` (every item),
//!   `value-get` — while `map-is-empty` restamps nothing; a prefetched value's read is
//!   restamped by the SDK's write-back, as on the host;
//! - keeps one list per operator state (one worker's), reachable in `init_state`,
//!   `process` and `on_timer`; a failing call leaves no trace in them either. Seed and
//!   inspect them with [`set_operator_list`](Harness::set_operator_list) and
//!   [`operator_list`](Harness::operator_list).
//!
//! ```
//! use eddy_sdk::testing::Harness;
//! use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};
//!
//! struct Count {
//!     count: ValueState<u64>,
//! }
//!
//! impl Operator for Count {
//!     const NAME: &'static str = "count";
//!     const VERSION: &'static str = "0.1.0";
//!
//!     fn open(states: &mut StateRegistry) -> Self {
//!         Self { count: states.value("count") }
//!     }
//!
//!     fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
//!         let count = self.count.get_or_default(ctx)? + 1;
//!         self.count.set(ctx, &count)?;
//!         ctx.emit(record.key(), count.to_string());
//!         Ok(())
//!     }
//! }
//!
//! let mut harness = Harness::<Count>::new();
//! harness.process("a", "").unwrap();
//! assert_eq!(
//!     harness.process_utf8("a", "").unwrap(),
//!     [("a".to_owned(), "2".to_owned())]
//! );
//! assert_eq!(harness.value::<u64>("count", "a").unwrap(), Some(2));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Operator;
use crate::batch::host_side::{InputBatch, InputRecord, InputTimer, OutputBatch, decode_output};
use crate::context::LogLevel;
use crate::error::{Error, StateError};
use crate::host::{EntryPage, HostState, KeyPage};
use crate::runtime::Runtime;
use crate::state::{Codec, OperatorInfo, StateDescriptor, StateKind, TtlConfig, TtlUpdate};
use crate::time::{NO_WATERMARK, TimeDomain, Timer};

/// The most entries or keys one map page holds, whatever the operator asks for (the host
/// caps pages too).
pub const MAX_PAGE: u32 = 1024;

/// The most timers one firing (an advance of the watermark or the clock, or the timers due
/// around one [`Harness::process_batch`]) fires before it fails: an operator that registers
/// the timer it handles again, at or below the watermark, would otherwise fire it forever.
pub const MAX_FIRINGS: u64 = 1_000_000;

/// An emitted (key, value) pair, as [`Harness::process`] returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One map state of one key: encoded map key to encoded value, in byte order.
type Map = BTreeMap<Vec<u8>, Stamped>;

/// A value, map value or list item, with the processing time of its last update (for TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamped {
    bytes: Vec<u8>,
    updated: i64,
}

/// An input record for [`Harness::process_record`] and [`Harness::process_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBuilder {
    key: Vec<u8>,
    value: Vec<u8>,
    timestamp: i64,
    headers: Vec<(String, String)>,
}

impl RecordBuilder {
    /// A record with timestamp 0 and no headers.
    pub fn new(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        Self {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
            timestamp: 0,
            headers: Vec::new(),
        }
    }

    /// Sets the event timestamp (milliseconds since the Unix epoch).
    #[must_use]
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = timestamp_ms;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A record an operator emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emitted {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The headers, in emit order.
    pub headers: Vec<(String, String)>,
}

impl Emitted {
    /// The key as UTF-8 text.
    pub fn key_str(&self) -> Result<&str, Error> {
        Ok(std::str::from_utf8(&self.key)?)
    }

    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<&str, Error> {
        Ok(std::str::from_utf8(&self.value)?)
    }
}

/// A line an operator logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The severity.
    pub level: LogLevel,
    /// The key of the record being processed, for lines logged through a `Context`.
    pub key: Option<Vec<u8>>,
    /// The message.
    pub message: String,
}

/// Runs an operator natively on in-memory state; see the [module docs](self).
///
/// An operator whose `init` fails still makes a harness: every `process` call then returns
/// the init error, and [`init_result`](Self::init_result) shows it.
pub struct Harness<Op: Operator> {
    runtime: Runtime<Op>,
    info: OperatorInfo,
    init_error: Option<Error>,
    store: MemoryStore,
    logs: Vec<LogLine>,
    prefetch_values: bool,
    watermark: i64,
}

impl<Op: Operator> Default for Harness<Op> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Op: Operator> Harness<Op> {
    /// Opens the operator and initializes it with the config `{}`.
    pub fn new() -> Self {
        let info = Runtime::<Op>::describe();
        let store = MemoryStore {
            kinds: info.states.iter().map(|state| state.kind).collect(),
            ttls: info.states.iter().map(|state| state.ttl).collect(),
            operator_lists: vec![Vec::new(); info.operator_states.len()],
            ..MemoryStore::default()
        };
        let mut harness = Self {
            runtime: Runtime::new(),
            info,
            init_error: None,
            store,
            logs: Vec::new(),
            prefetch_values: true,
            watermark: NO_WATERMARK,
        };
        harness.init("{}");
        harness
    }

    /// Re-opens the operator with `config` (JSON text), keeping the state: as a new instance
    /// of the same worker, it sees the operator state (e.g. what
    /// [`set_operator_list`](Self::set_operator_list) seeded) in `init_state`.
    #[must_use]
    pub fn with_config(mut self, config: &str) -> Self {
        self.init(config);
        self
    }

    /// Whether the host prefetches value state into batches (default true, as the host
    /// does). With false, every value read goes through the `value-get` call instead.
    #[must_use]
    pub fn prefetch_values(mut self, prefetch: bool) -> Self {
        self.prefetch_values = prefetch;
        self
    }

    /// Initializes a new instance; a failing `init` (or `init_state`) changes no state.
    fn init(&mut self, config: &str) {
        self.runtime = Runtime::new();
        let snapshot = self.store.clone();
        let mut host = MemoryHost {
            store: &mut self.store,
            keys: &[],
            logs: &mut self.logs,
        };
        self.init_error = self.runtime.init(config, &mut host).err();
        if self.init_error.is_some() {
            self.store = snapshot;
        }
    }

    /// What the last `init` returned.
    pub fn init_result(&self) -> Result<(), Error> {
        match &self.init_error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// What `describe` returns.
    pub fn info(&self) -> &OperatorInfo {
        &self.info
    }

    /// The lines logged so far.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// Processes one record (timestamp 0, no headers) and returns the emitted (key, value)
    /// pairs, as [`process_record`](Self::process_record) does. On error the record's effects
    /// are discarded.
    pub fn process(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Vec<KeyValue>, Error> {
        let emitted = self.process_record(RecordBuilder::new(key, value))?;
        Ok(emitted
            .into_iter()
            .map(|emitted| (emitted.key, emitted.value))
            .collect())
    }

    /// Like [`process`](Self::process), with text keys and values.
    pub fn process_utf8(&mut self, key: &str, value: &str) -> Result<Vec<(String, String)>, Error> {
        self.process_record(RecordBuilder::new(key, value))?
            .into_iter()
            .map(|emitted| {
                Ok((
                    emitted.key_str()?.to_owned(),
                    emitted.value_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// Processes one record and returns what it emitted, headers included, with what the
    /// event-time timers that fired around it emitted (see
    /// [`process_batch`](Self::process_batch)).
    pub fn process_record(&mut self, record: RecordBuilder) -> Result<Vec<Emitted>, Error> {
        Ok(self
            .process_batch([record])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Processes records as one batch, as the host does: one `process` call whose effects
    /// are applied together. Every record sees the harness's [`watermark`](Self::watermark).
    /// Returns what each record emitted.
    ///
    /// Event-time timers due at the watermark fire as on the host: before a record whose key
    /// has one (all the due timers fire there, as
    /// [`advance_watermark`](Self::advance_watermark) fires them), and after the batch when
    /// one of its keys has one. So a timer that a record registers at or below the watermark
    /// fires before the next record of its key — the call is split there — or after the
    /// batch. What those timers emit comes first in the list of the record they fired
    /// before, or last in the last record's list when they fired after the batch.
    ///
    /// On an error (a record's, or a timer's that fired within) nothing of the call is
    /// applied: the state and the timers are as before it.
    pub fn process_batch(
        &mut self,
        records: impl IntoIterator<Item = RecordBuilder>,
    ) -> Result<Vec<Vec<Emitted>>, Error> {
        if let Some(error) = &self.init_error {
            return Err(error.clone().context("init failed"));
        }
        let records: Vec<RecordBuilder> = records.into_iter().collect();
        let snapshot = self.store.clone();
        let result = self.run_records(&records);
        if result.is_err() {
            self.store = snapshot;
        }
        result
    }

    /// [`process_batch`](Self::process_batch) without its undo on error.
    fn run_records(&mut self, records: &[RecordBuilder]) -> Result<Vec<Vec<Emitted>>, Error> {
        let mut emitted = vec![Vec::new(); records.len()];
        let mut start = 0;
        while let Some(first) = records.get(start) {
            if self.key_due(&first.key) {
                let fired = self.fire(TimeDomain::EventTime, self.watermark)?;
                emitted[start].extend(fired);
            }
            // Up to the next record whose key has a timer due already (after a failure).
            let end = (start + 1..records.len())
                .find(|&j| self.key_due(&records[j].key))
                .unwrap_or(records.len());
            let run = &records[start..end];
            let done = match self.call(self.record_batch(run), true)? {
                Called::Done(out) => {
                    for (slot, out) in emitted[start..].iter_mut().zip(out) {
                        slot.extend(out);
                    }
                    run.len()
                }
                Called::Split(j) => {
                    // The records before `j` register no timer due at one of them.
                    let Called::Done(out) = self.call(self.record_batch(&run[..j]), false)? else {
                        return Err(Error::failed("a call split twice"));
                    };
                    for (slot, out) in emitted[start..].iter_mut().zip(out) {
                        slot.extend(out);
                    }
                    j
                }
            };
            start += done;
        }
        if records.iter().any(|record| self.key_due(&record.key)) {
            let fired = self.fire(TimeDomain::EventTime, self.watermark)?;
            if let Some(last) = emitted.last_mut() {
                last.extend(fired);
            }
        }
        Ok(emitted)
    }

    /// The `process` input of `records`, at the harness's watermark.
    fn record_batch(&self, records: &[RecordBuilder]) -> InputBatch {
        let mut batch = InputBatch::default();
        for record in records {
            let key_index = match batch.keys.iter().position(|key| *key == record.key) {
                Some(index) => index,
                None => {
                    batch.keys.push(record.key.clone());
                    batch.keys.len() - 1
                }
            };
            batch.records.push(InputRecord {
                key_index: index_u32(key_index),
                timestamp: record.timestamp,
                watermark: self.watermark,
                value: record.value.clone(),
                headers: record.headers.clone(),
            });
        }
        batch
    }

    /// Whether `key` has an event-time timer due at the watermark.
    fn key_due(&self, key: &[u8]) -> bool {
        self.store
            .timers
            .range((TimeDomain::EventTime, i64::MIN, Vec::new())..)
            .take_while(|(domain, timestamp, _)| {
                *domain == TimeDomain::EventTime && *timestamp <= self.watermark
            })
            .any(|(_, _, k)| k == key)
    }

    /// Encodes `batch` (records or timers) with its prefetched values, runs it, and applies
    /// its effects only when it succeeds — and, with `split`, when no record registers an
    /// event-time timer due at a later record of its key in the batch: the call is then
    /// undone and says where to split it, as the host does.
    fn call(&mut self, mut batch: InputBatch, split: bool) -> Result<Called, Error> {
        batch.processing_time = self.store.now;
        if self.prefetch_values {
            batch.handles = (0..self.runtime.states().len())
                .filter(|handle| self.store.kinds.get(*handle) == Some(&StateKind::Value))
                .map(index_u32)
                .collect();
        }
        for key in &batch.keys {
            for handle in &batch.handles {
                let value = self
                    .store
                    .values
                    .get(&(*handle, key.clone()))
                    .map(|value| value.bytes.clone());
                batch.slots.push(value);
            }
        }
        let input = batch.encode()?;

        let snapshot = self.store.clone();
        let logged = self.logs.len();
        let result = self.run(&input, &batch, split);
        match &result {
            Ok(Called::Done(_)) => {}
            // The part before the split runs again, and logs again.
            Ok(Called::Split(_)) => {
                self.store = snapshot;
                self.logs.truncate(logged);
            }
            Err(_) => self.store = snapshot,
        }
        result
    }

    fn run(&mut self, input: &[u8], batch: &InputBatch, split: bool) -> Result<Called, Error> {
        let mut host = MemoryHost {
            store: &mut self.store,
            keys: &batch.keys,
            logs: &mut self.logs,
        };
        let (output, items) = if batch.timers.is_empty() {
            (
                self.runtime.process(input, &mut host)?,
                batch
                    .records
                    .iter()
                    .map(|r| r.key_index)
                    .collect::<Vec<_>>(),
            )
        } else {
            (
                self.runtime.on_timer(input, &mut host)?,
                batch.timers.iter().map(|t| t.key_index).collect(),
            )
        };
        let output = decode_output(&output)?;
        if output.emits.len() != items.len() {
            return Err(Error::failed(format!(
                "the result holds {} items for {} inputs",
                output.emits.len(),
                items.len()
            )));
        }
        if split
            && batch.timers.is_empty()
            && let Some(j) = first_due_within(&items, &output, self.watermark)
        {
            return Ok(Called::Split(j));
        }
        self.store.apply(&batch.keys, &items, &output)?;
        Ok(Called::Done(output.emits))
    }

    /// The watermark the next records see, and up to which event-time timers fired.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Advances the watermark to `watermark` (a lower one changes nothing) and fires every
    /// event-time timer at or below it, as the host does: each `on-timer` call takes the due
    /// timers from the front, in (timestamp, key) order, up to the first key it holds
    /// already (so a key's timers fire in timestamp order, one per call), and the calls go
    /// on until none is due — timers that they register at or below the watermark fire in
    /// the same advance, in their place in that order. Returns what the timers emitted, in
    /// firing order.
    ///
    /// On an error the failing call's effects are discarded, the calls before it stay, and
    /// the timers not yet fired stay registered. Past [`MAX_FIRINGS`] timers in one advance
    /// (an operator that keeps registering the timer it handles) it fails, the timers fired
    /// until then staying fired.
    pub fn advance_watermark(&mut self, watermark: i64) -> Result<Vec<Emitted>, Error> {
        self.watermark = self.watermark.max(watermark);
        self.fire(TimeDomain::EventTime, self.watermark)
    }

    /// Sets the wall clock the operator sees (default 0; it never goes back), drops the state
    /// whose TTL has run out by then, and fires every processing-time timer at or below it,
    /// as [`advance_watermark`](Self::advance_watermark) fires event-time timers.
    pub fn advance_processing_time(&mut self, now: i64) -> Result<Vec<Emitted>, Error> {
        self.store.now = self.store.now.max(now);
        self.store.expire();
        self.fire(TimeDomain::ProcessingTime, self.store.now)
    }

    /// The wall clock the operator sees (ms; see
    /// [`advance_processing_time`](Self::advance_processing_time)).
    pub fn processing_time(&self) -> i64 {
        self.store.now
    }

    /// The registered timers, as (key, timer), in (domain, timestamp, key) order.
    pub fn timers(&self) -> Vec<(Vec<u8>, Timer)> {
        self.store
            .timers
            .iter()
            .map(|(domain, timestamp, key)| {
                (
                    key.clone(),
                    Timer {
                        timestamp: *timestamp,
                        domain: *domain,
                    },
                )
            })
            .collect()
    }

    /// Fires the timers of `domain` at or below `upto`; see
    /// [`advance_watermark`](Self::advance_watermark).
    fn fire(&mut self, domain: TimeDomain, upto: i64) -> Result<Vec<Emitted>, Error> {
        if let Some(error) = &self.init_error {
            return Err(error.clone().context("init failed"));
        }
        let mut emitted = Vec::new();
        let mut fired: u64 = 0;
        loop {
            let mut taken = BTreeSet::new();
            let run: Vec<(i64, Vec<u8>)> = self
                .store
                .timers
                .range((domain, i64::MIN, Vec::new())..)
                .take_while(|(d, timestamp, key)| {
                    *d == domain && *timestamp <= upto && taken.insert(key.as_slice())
                })
                .map(|(_, timestamp, key)| (*timestamp, key.clone()))
                .collect();
            if run.is_empty() {
                return Ok(emitted);
            }
            fired = fired.saturating_add(run.len() as u64);
            if fired > MAX_FIRINGS {
                return Err(Error::failed(format!(
                    "more than {MAX_FIRINGS} timers fired in one go: `on_timer` keeps \
                     registering timers at or below the {domain:?} time {upto} (the one it \
                     handles?); register a later one"
                )));
            }
            let mut batch = InputBatch::default();
            for (timestamp, key) in &run {
                self.store.timers.remove(&(domain, *timestamp, key.clone()));
                batch.keys.push(key.clone());
                batch.timers.push(InputTimer {
                    key_index: index_u32(batch.keys.len() - 1),
                    timer: Timer {
                        timestamp: *timestamp,
                        domain,
                    },
                    watermark: self.watermark,
                });
            }
            match self.call(batch, false) {
                Ok(Called::Done(out)) => emitted.extend(out.into_iter().flatten()),
                Ok(Called::Split(_)) => return Err(Error::failed("an on-timer call split")),
                Err(error) => {
                    // The fired timers come back with the rest of the state (which the
                    // call's undo restored as it was after they were taken).
                    for (timestamp, key) in run {
                        self.store.timers.insert((domain, timestamp, key));
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The codec of state `name` (postcard when undeclared; `handle` reports that).
    fn codec(&self, name: &str) -> Codec {
        self.info
            .states
            .iter()
            .find(|state| state.name == name)
            .map(StateDescriptor::codec)
            .unwrap_or_default()
    }

    fn handle(&self, name: &str, kind: StateKind) -> Result<u32, Error> {
        let declared = || {
            self.info
                .states
                .iter()
                .map(|state| format!("{} ({:?})", state.name, state.kind))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.info.states.iter().position(|state| state.name == name) {
            Some(handle) if self.info.states[handle].kind == kind => Ok(index_u32(handle)),
            Some(_) | None => Err(Error::failed(format!(
                "no {kind:?} state named `{name}`; the operator declares: {}",
                declared()
            ))),
        }
    }

    /// The value of value state `state` for `key` (also reads reducing and aggregating
    /// states, whose value is the reduced value or the accumulator).
    pub fn value<T: DeserializeOwned>(
        &self,
        state: &str,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, Error> {
        let handle = self.handle(state, StateKind::Value)?;
        self.store
            .values
            .get(&(handle, key.as_ref().to_vec()))
            .map(|value| decode(self.codec(state), state, &value.bytes))
            .transpose()
    }

    /// Sets the value of value state `state` for `key`, e.g. to start a test from a state
    /// (stamped with the current [`processing_time`](Self::processing_time) for its TTL).
    pub fn set_value<T: Serialize>(
        &mut self,
        state: &str,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), Error> {
        let handle = self.handle(state, StateKind::Value)?;
        let bytes = self.codec(state).encode(value)?;
        let value = self.store.stamp(bytes);
        self.store
            .values
            .insert((handle, key.as_ref().to_vec()), value);
        Ok(())
    }

    /// The value under `map_key` in map state `state` for `key`.
    pub fn map_get<Q: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        state: &str,
        key: impl AsRef<[u8]>,
        map_key: &Q,
    ) -> Result<Option<V>, Error> {
        let handle = self.handle(state, StateKind::Map)?;
        let map_key = self.codec(state).encode(map_key)?;
        self.store
            .maps
            .get(&(handle, key.as_ref().to_vec()))
            .and_then(|map| map.get(&map_key))
            .map(|value| decode(self.codec(state), state, &value.bytes))
            .transpose()
    }

    /// Every entry of map state `state` for `key`, in the byte order of the encoded keys.
    pub fn map_entries<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        state: &str,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<(K, V)>, Error> {
        let handle = self.handle(state, StateKind::Map)?;
        self.store
            .maps
            .get(&(handle, key.as_ref().to_vec()))
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                Ok((
                    decode(self.codec(state), state, k)?,
                    decode(self.codec(state), state, &v.bytes)?,
                ))
            })
            .collect()
    }

    /// The list state `state` for `key` (empty when it has none).
    pub fn list<T: DeserializeOwned>(
        &self,
        state: &str,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<T>, Error> {
        let handle = self.handle(state, StateKind::List)?;
        self.store
            .lists
            .get(&(handle, key.as_ref().to_vec()))
            .into_iter()
            .flatten()
            .map(|item| decode(self.codec(state), state, &item.bytes))
            .collect()
    }

    /// The handle of operator state `name`, or an error listing the declared ones.
    fn operator_handle(&self, name: &str) -> Result<usize, Error> {
        self.info
            .operator_states
            .iter()
            .position(|state| state.name == name)
            .ok_or_else(|| {
                let declared: Vec<&str> = self
                    .info
                    .operator_states
                    .iter()
                    .map(|state| state.name.as_str())
                    .collect();
                Error::failed(format!(
                    "no operator state named `{name}`; the operator declares: {}",
                    declared.join(", ")
                ))
            })
    }

    /// The items of operator list state `state` (this harness is one worker), oldest first.
    pub fn operator_list<T: DeserializeOwned>(&self, state: &str) -> Result<Vec<T>, Error> {
        let handle = self.operator_handle(state)?;
        let codec = self.info.operator_states[handle].codec();
        self.store
            .operator_lists
            .get(handle)
            .into_iter()
            .flatten()
            .map(|bytes| decode(codec, state, bytes))
            .collect()
    }

    /// Replaces the items of operator list state `state`, e.g. to start a test from what
    /// the host would hand this worker after a redistribution. The running instance sees
    /// them from its next call; [`with_config`](Self::with_config) starts a new instance,
    /// whose `init_state` sees them.
    pub fn set_operator_list<T: Serialize>(
        &mut self,
        state: &str,
        items: &[T],
    ) -> Result<(), Error> {
        let handle = self.operator_handle(state)?;
        let codec = self.info.operator_states[handle].codec();
        let items = items
            .iter()
            .map(|item| codec.encode(item))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(list) = self.store.operator_lists.get_mut(handle) {
            *list = items;
        }
        Ok(())
    }

    /// Whether `key` has any state at all (a value, a non-empty map or a non-empty list).
    pub fn has_state(&self, key: impl AsRef<[u8]>) -> bool {
        let key = key.as_ref();
        self.store.values.keys().any(|(_, k)| k == key)
            || self.store.maps.keys().any(|(_, k)| k == key)
            || self.store.lists.keys().any(|(_, k)| k == key)
    }

    /// The declared states, in handle order.
    pub fn states(&self) -> &[StateDescriptor] {
        &self.info.states
    }
}

fn decode<T: DeserializeOwned>(codec: Codec, state: &str, bytes: &[u8]) -> Result<T, Error> {
    codec
        .decode(bytes)
        .map_err(|error| Error::failed(format!("state `{state}`: {error}")))
}

fn index_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// What a call did.
enum Called {
    /// It ran and its effects were applied: what each input emitted.
    Done(Vec<Vec<Emitted>>),
    /// It was undone: a timer that a record registered is due at record `j` of its key.
    Split(usize),
}

/// The first record before which an event-time timer that an earlier record of its key
/// registered in the same call is due; `items` are the records' key indexes, and every
/// record sees `watermark`.
fn first_due_within(items: &[u32], output: &OutputBatch, watermark: i64) -> Option<usize> {
    output
        .timer_ops
        .iter()
        .filter(|op| {
            op.register
                && op.timer.domain == TimeDomain::EventTime
                && op.timer.timestamp <= watermark
        })
        .filter_map(|op| {
            let i = op.item as usize;
            let key = items.get(i)?;
            (i + 1..items.len()).find(|&j| items[j] == *key)
        })
        .min()
}

/// The state of every key, by (handle, key), and the operator state. Empty maps and lists
/// are removed, as a host that stores entries rather than containers would.
#[derive(Debug, Clone, Default)]
struct MemoryStore {
    kinds: Vec<StateKind>,
    /// The TTL of each keyed state, by handle.
    ttls: Vec<Option<TtlConfig>>,
    /// The processing-time clock: what writes are stamped with and TTLs run against.
    now: i64,
    values: BTreeMap<(u32, Vec<u8>), Stamped>,
    maps: BTreeMap<(u32, Vec<u8>), Map>,
    lists: BTreeMap<(u32, Vec<u8>), Vec<Stamped>>,
    /// Registered timers: (domain, timestamp, key).
    timers: BTreeSet<(TimeDomain, i64, Vec<u8>)>,
    /// The items of each operator state, by handle.
    operator_lists: Vec<Vec<Vec<u8>>>,
}

impl MemoryStore {
    /// `bytes`, updated now.
    fn stamp(&self, bytes: Vec<u8>) -> Stamped {
        Stamped {
            bytes,
            updated: self.now,
        }
    }

    /// Whether reads through host calls restamp the values of state `handle`.
    fn refreshes_on_read(&self, handle: u32) -> bool {
        self.ttls
            .get(handle as usize)
            .copied()
            .flatten()
            .is_some_and(|ttl| ttl.update == TtlUpdate::OnReadAndWrite)
    }

    /// Drops every value, map entry and list item whose TTL has run out (and the maps and
    /// lists left empty). Expiry only moves with the clock, so doing this whenever the
    /// clock moves keeps anything expired from being seen.
    fn expire(&mut self) {
        let now = self.now;
        let ttls = &self.ttls;
        // Whether a value of state `handle` last updated at `updated` has expired.
        let expired = |handle: u32, updated: i64| match ttls.get(handle as usize) {
            Some(Some(ttl)) => {
                let ttl_ms = i64::try_from(ttl.ttl_ms).unwrap_or(i64::MAX);
                updated.saturating_add(ttl_ms) <= now
            }
            _ => false,
        };
        self.values
            .retain(|(handle, _), value| !expired(*handle, value.updated));
        self.maps.retain(|(handle, _), map| {
            map.retain(|_, value| !expired(*handle, value.updated));
            !map.is_empty()
        });
        self.lists.retain(|(handle, _), list| {
            list.retain(|item| !expired(*handle, item.updated));
            !list.is_empty()
        });
    }

    /// Applies the value writes and timer changes of a call's `output` (`keys` the call's
    /// keys, `items` the key index of each input), after checking every one of them: a bad
    /// one fails the call with nothing applied.
    fn apply(
        &mut self,
        keys: &[Vec<u8>],
        items: &[u32],
        output: &OutputBatch,
    ) -> Result<(), Error> {
        let mut writes = Vec::with_capacity(output.writes.len());
        for write in &output.writes {
            let key = keys.get(write.key_index as usize).ok_or_else(|| {
                Error::failed(format!(
                    "write to key index {} outside the batch",
                    write.key_index
                ))
            })?;
            if self.kinds.get(write.handle as usize) != Some(&StateKind::Value) {
                return Err(Error::failed(format!(
                    "write to handle {} that is not a value state",
                    write.handle
                )));
            }
            writes.push(((write.handle, key.clone()), write.value.clone()));
        }
        let mut timer_ops = Vec::with_capacity(output.timer_ops.len());
        for op in &output.timer_ops {
            let key = items
                .get(op.item as usize)
                .and_then(|k| keys.get(*k as usize))
                .ok_or_else(|| Error::failed(format!("a timer change names input {}", op.item)))?;
            timer_ops.push((
                op.register,
                (op.timer.domain, op.timer.timestamp, key.clone()),
            ));
        }
        for (at, value) in writes {
            match value {
                Some(value) => {
                    let value = self.stamp(value);
                    self.values.insert(at, value);
                }
                None => {
                    self.values.remove(&at);
                }
            }
        }
        for (register, timer) in timer_ops {
            if register {
                self.timers.insert(timer);
            } else {
                self.timers.remove(&timer);
            }
        }
        Ok(())
    }
}

/// The store, seen from inside one call: key indexes name the batch's keys (none in
/// `init`).
struct MemoryHost<'s> {
    store: &'s mut MemoryStore,
    keys: &'s [Vec<u8>],
    logs: &'s mut Vec<LogLine>,
}

impl MemoryHost<'_> {
    fn locate(&self, state: u32, key: u32, kind: StateKind) -> Result<(u32, Vec<u8>), StateError> {
        if self.store.kinds.get(state as usize) != Some(&kind) {
            return Err(StateError::BadHandle(state));
        }
        let key = self.keys.get(key as usize).ok_or(StateError::BadKey(key))?;
        Ok((state, key.clone()))
    }

    /// The map of `state` for `key`, restamping the entry under `map_key` when given and
    /// reads restart the state's TTL.
    fn map(
        &mut self,
        state: u32,
        key: u32,
        read: Option<&[u8]>,
    ) -> Result<Option<&Map>, StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        if let Some(map_key) = read
            && self.store.refreshes_on_read(state)
        {
            let now = self.store.now;
            if let Some(value) = self
                .store
                .maps
                .get_mut(&at)
                .and_then(|map| map.get_mut(map_key))
            {
                value.updated = now;
            }
        }
        Ok(self.store.maps.get(&at))
    }

    /// The entries after `cursor`, at most `max` (capped at [`MAX_PAGE`]) of them; restamps
    /// them when reads restart the state's TTL.
    fn page(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<EntryPage, StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        let refresh = self.store.refreshes_on_read(state);
        let now = self.store.now;
        let Some(map) = self.store.maps.get_mut(&at) else {
            return Ok(EntryPage::default());
        };
        let max = max.clamp(1, MAX_PAGE) as usize;
        let start = match cursor {
            Some(cursor) => Bound::Excluded(cursor.to_vec()),
            None => Bound::Unbounded,
        };
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut next = None;
        for (key, value) in map.range_mut((start, Bound::Unbounded)) {
            if entries.len() == max {
                next = entries.last().map(|(key, _)| key.clone());
                break;
            }
            if refresh {
                value.updated = now;
            }
            entries.push((key.clone(), value.bytes.clone()));
        }
        Ok(EntryPage { entries, next })
    }

    fn operator_list(&mut self, state: u32) -> Result<&mut Vec<Vec<u8>>, StateError> {
        self.store
            .operator_lists
            .get_mut(state as usize)
            .ok_or(StateError::BadHandle(state))
    }
}

impl HostState for MemoryHost<'_> {
    fn value_get(&mut self, state: u32, key: u32) -> Result<Option<Vec<u8>>, StateError> {
        let at = self.locate(state, key, StateKind::Value)?;
        let refresh = self.store.refreshes_on_read(state);
        let now = self.store.now;
        Ok(self.store.values.get_mut(&at).map(|value| {
            if refresh {
                value.updated = now;
            }
            value.bytes.clone()
        }))
    }

    fn map_get(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .map(state, key, Some(map_key))?
            .and_then(|map| map.get(map_key))
            .map(|value| value.bytes.clone()))
    }

    fn map_put(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
        value: &[u8],
    ) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        let value = self.store.stamp(value.to_vec());
        self.store
            .maps
            .entry(at)
            .or_default()
            .insert(map_key.to_vec(), value);
        Ok(())
    }

    fn map_remove(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        if let Some(map) = self.store.maps.get_mut(&at) {
            map.remove(map_key);
            if map.is_empty() {
                self.store.maps.remove(&at);
            }
        }
        Ok(())
    }

    fn map_contains(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<bool, StateError> {
        Ok(self
            .map(state, key, Some(map_key))?
            .is_some_and(|map| map.contains_key(map_key)))
    }

    fn map_is_empty(&mut self, state: u32, key: u32) -> Result<bool, StateError> {
        Ok(self.map(state, key, None)?.is_none_or(BTreeMap::is_empty))
    }

    fn map_clear(&mut self, state: u32, key: u32) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        self.store.maps.remove(&at);
        Ok(())
    }

    fn map_entries(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<EntryPage, StateError> {
        self.page(state, key, cursor, max)
    }

    fn map_keys(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<KeyPage, StateError> {
        let page = self.page(state, key, cursor, max)?;
        Ok(KeyPage {
            keys: page.entries.into_iter().map(|(key, _)| key).collect(),
            next: page.next,
        })
    }

    fn list_get(&mut self, state: u32, key: u32) -> Result<Vec<Vec<u8>>, StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        let refresh = self.store.refreshes_on_read(state);
        let now = self.store.now;
        Ok(self
            .store
            .lists
            .get_mut(&at)
            .into_iter()
            .flatten()
            .map(|item| {
                if refresh {
                    item.updated = now;
                }
                item.bytes.clone()
            })
            .collect())
    }

    fn list_add(&mut self, state: u32, key: u32, value: &[u8]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        let item = self.store.stamp(value.to_vec());
        self.store.lists.entry(at).or_default().push(item);
        Ok(())
    }

    fn list_add_all(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        if !values.is_empty() {
            let items: Vec<Stamped> = values
                .iter()
                .map(|value| self.store.stamp(value.clone()))
                .collect();
            self.store.lists.entry(at).or_default().extend(items);
        }
        Ok(())
    }

    fn list_update(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        if values.is_empty() {
            self.store.lists.remove(&at);
        } else {
            let items = values
                .iter()
                .map(|value| self.store.stamp(value.clone()))
                .collect();
            self.store.lists.insert(at, items);
        }
        Ok(())
    }

    fn list_clear(&mut self, state: u32, key: u32) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        self.store.lists.remove(&at);
        Ok(())
    }

    fn operator_list_get(&mut self, state: u32) -> Result<Vec<Vec<u8>>, StateError> {
        self.operator_list(state).map(|list| list.clone())
    }

    fn operator_list_add(&mut self, state: u32, value: &[u8]) -> Result<(), StateError> {
        self.operator_list(state)?.push(value.to_vec());
        Ok(())
    }

    fn operator_list_update(&mut self, state: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        *self.operator_list(state)? = values.to_vec();
        Ok(())
    }

    fn log(&mut self, level: LogLevel, key: Option<u32>, message: &str) {
        self.logs.push(LogLine {
            level,
            key: key.and_then(|key| self.keys.get(key as usize).cloned()),
            message: message.to_owned(),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::batch::host_side::{TimerOp, ValueWrite};

    fn with_a_timer() -> MemoryStore {
        let mut store = MemoryStore {
            kinds: vec![StateKind::Value, StateKind::List],
            ..MemoryStore::default()
        };
        store
            .timers
            .insert((TimeDomain::EventTime, 5, b"k".to_vec()));
        store
    }

    fn timer_op(register: bool, timestamp: i64) -> TimerOp {
        TimerOp {
            item: 0,
            register,
            timer: Timer {
                timestamp,
                domain: TimeDomain::EventTime,
            },
        }
    }

    fn write(handle: u32) -> ValueWrite {
        ValueWrite {
            key_index: 0,
            handle,
            value: Some(b"v".to_vec()),
        }
    }

    #[test]
    fn a_bad_write_applies_no_timer_change() {
        let keys = [b"k".to_vec()];
        for bad in [
            // A list state's handle.
            write(1),
            // A key outside the call.
            ValueWrite {
                key_index: 1,
                ..write(0)
            },
        ] {
            let mut store = with_a_timer();
            let output = OutputBatch {
                emits: vec![Vec::new()],
                writes: vec![write(0), bad],
                timer_ops: vec![timer_op(true, 10), timer_op(false, 5)],
            };
            store.apply(&keys, &[0], &output).unwrap_err();
            assert!(store.values.is_empty());
            assert_eq!(
                store.timers.into_iter().collect::<Vec<_>>(),
                [(TimeDomain::EventTime, 5, b"k".to_vec())]
            );
        }
        // A timer change naming no input applies no write either.
        let mut store = with_a_timer();
        let output = OutputBatch {
            emits: vec![Vec::new()],
            writes: vec![write(0)],
            timer_ops: vec![TimerOp {
                item: 1,
                ..timer_op(true, 10)
            }],
        };
        store.apply(&keys, &[0], &output).unwrap_err();
        assert!(store.values.is_empty());

        // A good output applies all of it.
        let mut store = with_a_timer();
        let output = OutputBatch {
            emits: vec![Vec::new()],
            writes: vec![write(0)],
            timer_ops: vec![timer_op(true, 10), timer_op(false, 5)],
        };
        store.apply(&keys, &[0], &output).unwrap();
        assert_eq!(store.values.len(), 1);
        assert_eq!(
            store.timers.into_iter().collect::<Vec<_>>(),
            [(TimeDomain::EventTime, 10, b"k".to_vec())]
        );
    }
}
