//! A native test harness: runs an operator in-process, without a host or Wasm, with the
//! host's state semantics kept in memory. Compiled for non-Wasm targets only.
//!
//! Records go through the same batch codec and the same runtime as on Wasm (the harness
//! encodes a batch as the host would, and decodes the result), so what passes here exercises
//! the code that runs in the component. Like the host, the harness:
//! - prefetches every value state of the batch's keys into the batch;
//! - applies a batch's effects (value-state writes, map and list calls) only when `process`
//!   succeeds: an error discards all of them;
//! - iterates maps in the byte order of the encoded map keys, in pages.
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

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Operator;
use crate::batch::host_side::{InputBatch, InputRecord, decode_output};
use crate::context::LogLevel;
use crate::error::{Error, StateError};
use crate::host::{EntryPage, HostState, KeyPage};
use crate::runtime::Runtime;
use crate::state::{Codec, OperatorInfo, StateDescriptor, StateKind};

/// The most entries or keys one map page holds, whatever the operator asks for (the host
/// caps pages too).
pub const MAX_PAGE: u32 = 1024;

/// An emitted (key, value) pair, as [`Harness::process`] returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One map state of one key: encoded map key to encoded value, in byte order.
type Map = BTreeMap<Vec<u8>, Vec<u8>>;

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
            ..MemoryStore::default()
        };
        let mut harness = Self {
            runtime: Runtime::new(),
            info,
            init_error: None,
            store,
            logs: Vec::new(),
            prefetch_values: true,
        };
        harness.init("{}");
        harness
    }

    /// Re-opens the operator with `config` (JSON text), keeping the state.
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

    fn init(&mut self, config: &str) {
        self.runtime = Runtime::new();
        self.init_error = self.runtime.init(config).err();
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
    /// pairs. On error the record's effects are discarded.
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

    /// Processes one record and returns what it emitted, headers included.
    pub fn process_record(&mut self, record: RecordBuilder) -> Result<Vec<Emitted>, Error> {
        Ok(self
            .process_batch([record])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Processes records as one batch, as the host does: one `process` call whose effects
    /// are applied together, or (on an error in any record) not at all. Returns what each
    /// record emitted.
    pub fn process_batch(
        &mut self,
        records: impl IntoIterator<Item = RecordBuilder>,
    ) -> Result<Vec<Vec<Emitted>>, Error> {
        if let Some(error) = &self.init_error {
            return Err(error.clone().context("init failed"));
        }
        let mut batch = InputBatch::default();
        for record in records {
            let key_index = match batch.keys.iter().position(|key| *key == record.key) {
                Some(index) => index,
                None => {
                    batch.keys.push(record.key);
                    batch.keys.len() - 1
                }
            };
            batch.records.push(InputRecord {
                key_index: index_u32(key_index),
                timestamp: record.timestamp,
                value: record.value,
                headers: record.headers,
            });
        }
        if self.prefetch_values {
            batch.handles = (0..self.runtime.states().len())
                .filter(|handle| self.store.kinds.get(*handle) == Some(&StateKind::Value))
                .map(index_u32)
                .collect();
        }
        for key in &batch.keys {
            for handle in &batch.handles {
                let value = self.store.values.get(&(*handle, key.clone())).cloned();
                batch.slots.push(value);
            }
        }
        let input = batch.encode()?;

        let snapshot = self.store.clone();
        let result = self.run(&input, &batch);
        if result.is_err() {
            self.store = snapshot;
        }
        result
    }

    fn run(&mut self, input: &[u8], batch: &InputBatch) -> Result<Vec<Vec<Emitted>>, Error> {
        let mut host = MemoryHost {
            store: &mut self.store,
            keys: &batch.keys,
            logs: &mut self.logs,
        };
        let output = self.runtime.process(input, &mut host)?;
        let output = decode_output(&output)?;
        if output.emits.len() != batch.records.len() {
            return Err(Error::failed(format!(
                "the result holds {} records for {} input records",
                output.emits.len(),
                batch.records.len()
            )));
        }
        for write in &output.writes {
            let key = batch.keys.get(write.key_index as usize).ok_or_else(|| {
                Error::failed(format!(
                    "write to key index {} outside the batch",
                    write.key_index
                ))
            })?;
            if self.store.kinds.get(write.handle as usize) != Some(&StateKind::Value) {
                return Err(Error::failed(format!(
                    "write to handle {} that is not a value state",
                    write.handle
                )));
            }
            match &write.value {
                Some(value) => {
                    self.store
                        .values
                        .insert((write.handle, key.clone()), value.clone());
                }
                None => {
                    self.store.values.remove(&(write.handle, key.clone()));
                }
            }
        }
        Ok(output.emits)
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
            .map(|bytes| decode(self.codec(state), state, bytes))
            .transpose()
    }

    /// Sets the value of value state `state` for `key`, e.g. to start a test from a state.
    pub fn set_value<T: Serialize>(
        &mut self,
        state: &str,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), Error> {
        let handle = self.handle(state, StateKind::Value)?;
        let bytes = self.codec(state).encode(value)?;
        self.store
            .values
            .insert((handle, key.as_ref().to_vec()), bytes);
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
            .map(|bytes| decode(self.codec(state), state, bytes))
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
                    decode(self.codec(state), state, v)?,
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
            .map(|bytes| decode(self.codec(state), state, bytes))
            .collect()
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

/// The state of every key, by (handle, key). Empty maps and lists are removed, as a host
/// that stores entries rather than containers would.
#[derive(Debug, Clone, Default)]
struct MemoryStore {
    kinds: Vec<StateKind>,
    values: BTreeMap<(u32, Vec<u8>), Vec<u8>>,
    maps: BTreeMap<(u32, Vec<u8>), Map>,
    lists: BTreeMap<(u32, Vec<u8>), Vec<Vec<u8>>>,
}

/// The store, seen from inside one `process` call: key indexes name the batch's keys.
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

    fn map(&mut self, state: u32, key: u32) -> Result<Option<&Map>, StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        Ok(self.store.maps.get(&at))
    }

    /// The entries after `cursor`, at most `max` (capped at [`MAX_PAGE`]) of them.
    fn page_of(map: Option<&Map>, cursor: Option<&[u8]>, max: u32) -> EntryPage {
        let Some(map) = map else {
            return EntryPage::default();
        };
        let max = max.clamp(1, MAX_PAGE) as usize;
        let start = match cursor {
            Some(cursor) => Bound::Excluded(cursor.to_vec()),
            None => Bound::Unbounded,
        };
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = map
            .range((start, Bound::Unbounded))
            .take(max + 1)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let next = if entries.len() > max {
            entries.truncate(max);
            entries.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        EntryPage { entries, next }
    }
}

impl HostState for MemoryHost<'_> {
    fn value_get(&mut self, state: u32, key: u32) -> Result<Option<Vec<u8>>, StateError> {
        let at = self.locate(state, key, StateKind::Value)?;
        Ok(self.store.values.get(&at).cloned())
    }

    fn map_get(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .map(state, key)?
            .and_then(|map| map.get(map_key))
            .cloned())
    }

    fn map_put(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
        value: &[u8],
    ) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::Map)?;
        self.store
            .maps
            .entry(at)
            .or_default()
            .insert(map_key.to_vec(), value.to_vec());
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
            .map(state, key)?
            .is_some_and(|map| map.contains_key(map_key)))
    }

    fn map_is_empty(&mut self, state: u32, key: u32) -> Result<bool, StateError> {
        Ok(self.map(state, key)?.is_none_or(BTreeMap::is_empty))
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
        Ok(Self::page_of(self.map(state, key)?, cursor, max))
    }

    fn map_keys(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<KeyPage, StateError> {
        let page = Self::page_of(self.map(state, key)?, cursor, max);
        Ok(KeyPage {
            keys: page.entries.into_iter().map(|(key, _)| key).collect(),
            next: page.next,
        })
    }

    fn list_get(&mut self, state: u32, key: u32) -> Result<Vec<Vec<u8>>, StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        Ok(self.store.lists.get(&at).cloned().unwrap_or_default())
    }

    fn list_add(&mut self, state: u32, key: u32, value: &[u8]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        self.store.lists.entry(at).or_default().push(value.to_vec());
        Ok(())
    }

    fn list_add_all(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        if !values.is_empty() {
            self.store
                .lists
                .entry(at)
                .or_default()
                .extend_from_slice(values);
        }
        Ok(())
    }

    fn list_update(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        if values.is_empty() {
            self.store.lists.remove(&at);
        } else {
            self.store.lists.insert(at, values.to_vec());
        }
        Ok(())
    }

    fn list_clear(&mut self, state: u32, key: u32) -> Result<(), StateError> {
        let at = self.locate(state, key, StateKind::List)?;
        self.store.lists.remove(&at);
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
