//! Keyed state: the RocksDB backend ([`StateDb`]), its key layout ([`keys`]), the per-worker
//! write-back cache with per-batch isolation ([`KeyedState`]), and the host side of the
//! `state` and `log` imports ([`host`]).
//!
//! Architecture invariant: RocksDB only ever holds state that a checkpoint committed together
//! with the source positions it reflects. Between checkpoints, changes live in the cache;
//! the cache is never written back on its own (see `docs/ARCHITECTURE.md`).

pub mod host;
pub mod keyed;
pub mod keys;
pub mod timers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rocksdb::compaction_filter::Decision;
use rocksdb::{DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

pub use keyed::KeyedState;
pub use keys::StateId;

/// A record key as the caches and the timer index hold it: up to 24 bytes inline (most
/// keys are shorter), so that a hash or tree lookup compares bytes held in the table's own
/// memory instead of following a pointer, a likely cache miss, at every comparison.
pub type CacheKey = smallvec::SmallVec<[u8; 24]>;

/// The version of the on-disk layout (docs/state-format.md). Bumped on any incompatible
/// change; a state directory of another version is refused, never misread.
pub const FORMAT_VERSION: u32 = 1;

/// What can go wrong in the state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB failed.
    #[error("state store {dir}: {source}")]
    Db {
        /// The state directory.
        dir: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The directory belongs to a state of another shape.
    #[error("state store {dir}: {message}")]
    Incompatible {
        /// The state directory.
        dir: PathBuf,
        /// What differs and what to do.
        message: String,
    },
    /// Stored bytes do not decode.
    #[error("state store {dir}: corrupt entry {what}")]
    Corrupt {
        /// The state directory.
        dir: PathBuf,
        /// Which entry.
        what: String,
    },
}

/// The kinds of keyed state (mirrors the WIT `state-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateKind {
    /// One value per key.
    Value,
    /// A map per key.
    Map,
    /// A list per key.
    List,
}

impl StateKind {
    /// The RocksDB table this kind of state lives in (docs/state-format.md).
    pub fn table(self) -> u8 {
        match self {
            StateKind::Value => keys::TABLE_VALUE,
            StateKind::Map => keys::TABLE_MAP,
            StateKind::List => keys::TABLE_LIST,
        }
    }
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StateKind::Value => "value",
            StateKind::Map => "map",
            StateKind::List => "list",
        })
    }
}

/// A state as an operator declares it in `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Descriptor {
    /// Stable name.
    pub name: String,
    /// Kind.
    pub kind: StateKind,
    /// Schema version of the stored bytes.
    pub schema_version: u32,
    /// Time to live of each value (map entry, list item), in processing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// The encoding of the bytes by name (`json`, `postcard`, …), when the module says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
}

/// Milliseconds since the Unix epoch on the wall clock: the processing time TTLs follow.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What restarts a value's time to live (the WIT `ttl-update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TtlUpdate {
    /// Creating or writing the value.
    OnCreateAndWrite,
    /// Creating, writing or reading it.
    OnReadAndWrite,
}

/// The time to live of a state's values (the WIT `ttl-config`). Expiry follows processing
/// time: a value written (or, with [`TtlUpdate::OnReadAndWrite`], read) at `t` is gone for
/// every read at or after `t + ttl_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ttl {
    /// Milliseconds after the last update.
    pub ttl_ms: u64,
    /// What counts as an update.
    pub update: TtlUpdate,
}

impl Ttl {
    /// Whether a value last updated at `stamp` is expired at `now` (ms).
    pub fn expired(self, stamp: i64, now: i64) -> bool {
        stamp.saturating_add(i64::try_from(self.ttl_ms).unwrap_or(i64::MAX)) <= now
    }
}

/// The bytes of a value under a TTL: its last-update time (`i64` little-endian, ms), then
/// the operator's bytes (docs/state-format.md).
pub mod stamp {
    /// Bytes the stamp takes.
    pub const LEN: usize = 8;

    /// `value` stamped with `at`.
    pub fn put(at: i64, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN + value.len());
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    /// The stamp and the operator's bytes; None when too short to hold a stamp.
    pub fn split(raw: &[u8]) -> Option<(i64, &[u8])> {
        let (at, value) = raw.split_first_chunk::<LEN>()?;
        Some((i64::from_le_bytes(*at), value))
    }
}

/// How the items of an operator state are spread over the workers at a start (the WIT
/// `redistribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redistribution {
    /// All workers' items in worker order, split into contiguous parts of nearly equal
    /// size; with the parallelism unchanged, each worker gets its own back.
    EvenSplit,
    /// Every worker gets every worker's items.
    Union,
}

impl std::fmt::Display for Redistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Redistribution::EvenSplit => "even-split",
            Redistribution::Union => "union",
        })
    }
}

/// A non-keyed operator state as an operator declares it (the WIT
/// `operator-state-descriptor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorStateDescriptor {
    /// Stable name.
    pub name: String,
    /// Schema version of the items.
    pub schema_version: u32,
    /// How items move between workers at a start.
    pub redistribution: Redistribution,
    /// The encoding of the items by name, when the module says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
}

impl OperatorStateDescriptor {
    /// The descriptor `migrate` sees for this state: a list state of the same name.
    pub fn as_list(&self) -> Descriptor {
        Descriptor {
            name: self.name.clone(),
            kind: StateKind::List,
            schema_version: self.schema_version,
            ttl: None,
            codec: self.codec.clone(),
        }
    }
}

/// The codec whose bytes the host reads and writes as JSON (`eddy savepoint dump` and
/// `bootstrap`).
pub const JSON_CODEC: &str = "json";

impl Descriptor {
    /// Whether the state's bytes are JSON text (its codec says so).
    pub fn is_json(&self) -> bool {
        self.codec.as_deref() == Some(JSON_CODEC)
    }

    /// Why this declaration cannot take over `stored`'s bytes as they are: it names another
    /// codec under the same schema version (the bytes would be misread, and no `migrate`
    /// runs without a version change). None when it can.
    pub fn codec_conflict(&self, stored: &Descriptor) -> Option<String> {
        match (&stored.codec, &self.codec) {
            (Some(was), Some(now))
                if was != now && stored.schema_version == self.schema_version =>
            {
                Some(format!(
                    "state `{}` is stored with codec {was}, and the new module declares codec {now} under the same schema version {}; bump the schema version and convert the bytes in `migrate`, or keep codec {was}",
                    self.name, self.schema_version
                ))
            }
            _ => None,
        }
    }
}

/// An operator's non-keyed states, by handle: id and redistribution.
pub type OperatorStates = Vec<(StateId, Redistribution)>;

/// A state known to the store: its id and the descriptor it was registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredState {
    /// Id used in keys.
    pub id: StateId,
    /// Kind.
    pub kind: StateKind,
    /// Time to live; when set, every stored value carries a [`stamp`].
    pub ttl: Option<Ttl>,
}

#[derive(Serialize, Deserialize)]
struct RegistryEntry {
    id: StateId,
    kind: StateKind,
    schema_version: u32,
    /// The TTL of the module that registered (or last re-registered) the state: whether
    /// its values carry a stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<Ttl>,
}

/// One write of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Put a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Delete(Vec<u8>),
    /// Delete every key in `[from, to)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

fn batch_of(ops: Vec<WriteOp>) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for op in ops {
        match op {
            WriteOp::Put(k, v) => batch.put(k, v),
            WriteOp::Delete(k) => batch.delete(k),
            WriteOp::DeleteRange(from, to) => batch.delete_range(from, to),
        }
    }
    batch
}

/// The RocksDB database of one job's state.
pub struct StateDb {
    db: DB,
    dir: PathBuf,
    max_key_groups: u32,
    /// The TTL (ms) of every registered state that has one, by id: what the compaction
    /// filter drops expired values by.
    ttls: Arc<RwLock<HashMap<StateId, u64>>>,
}

/// The compaction filter's verdict on one stored entry: expired values of states with a
/// TTL go (a list when all of its items have expired), everything else stays.
fn ttl_filter(ttls: &RwLock<HashMap<StateId, u64>>, key: &[u8], value: &[u8]) -> Decision {
    let table = key.first().copied();
    if !matches!(
        table,
        Some(keys::TABLE_VALUE | keys::TABLE_MAP | keys::TABLE_LIST)
    ) {
        return Decision::Keep;
    }
    let Some((_, id, _)) = keys::split_keyed(key) else {
        return Decision::Keep;
    };
    let ttl_ms = match ttls.read() {
        Ok(map) => map.get(&id).copied(),
        Err(_) => None,
    };
    let Some(ttl_ms) = ttl_ms else {
        return Decision::Keep;
    };
    let ttl = Ttl {
        ttl_ms,
        update: TtlUpdate::OnCreateAndWrite,
    };
    let now = wall_clock_ms();
    let gone = |raw: &[u8]| stamp::split(raw).is_some_and(|(at, _)| ttl.expired(at, now));
    let expired = if table == Some(keys::TABLE_LIST) {
        keys::decode_list(value).is_some_and(|items| items.iter().all(|i| gone(i)))
    } else {
        gone(value)
    };
    if expired {
        Decision::Remove
    } else {
        Decision::Keep
    }
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("dir", &self.dir).finish()
    }
}

impl StateDb {
    /// Opens (or creates) the state directory. Refuses a directory written with another
    /// format version or key-group count.
    pub fn open(dir: &Path, max_key_groups: u32) -> Result<StateDb, StateError> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(StateError::Incompatible {
                dir: dir.to_path_buf(),
                message: format!("cannot create the state directory: {e}"),
            });
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        // Every write is a checkpoint batch made durable by a flush (see `write_batch`):
        // the WAL is not used, so a restart has nothing to replay. A memtable only ever
        // holds the batch being flushed.
        opts.set_write_buffer_size(64 * 1024 * 1024);
        opts.set_max_write_buffer_number(3);
        opts.set_atomic_flush(true);
        let ttls: Arc<RwLock<HashMap<StateId, u64>>> = Arc::default();
        let filter_ttls = ttls.clone();
        opts.set_compaction_filter("eddy-ttl", move |_level: u32, k: &[u8], v: &[u8]| {
            ttl_filter(&filter_ttls, k, v)
        });
        let db = DB::open(&opts, dir).map_err(|source| {
            let text = source.to_string();
            if text.contains("lock") {
                StateError::Incompatible {
                    dir: dir.to_path_buf(),
                    message: format!(
                        "the state directory is in use by another process ({text}); stop it or give this job another [state] dir"
                    ),
                }
            } else {
                StateError::Db {
                    dir: dir.to_path_buf(),
                    source,
                }
            }
        })?;
        let store = StateDb {
            db,
            dir: dir.to_path_buf(),
            max_key_groups,
            ttls,
        };
        store.check_or_init_header()?;
        Ok(store)
    }

    fn check_or_init_header(&self) -> Result<(), StateError> {
        let version = self.get_meta_u32("format-version")?;
        let groups = self.get_meta_u32("max-key-groups")?;
        match (version, groups) {
            (None, None) => {
                let mut batch = WriteBatch::default();
                batch.put(keys::meta_key("format-version"), FORMAT_VERSION.to_le_bytes());
                batch.put(
                    keys::meta_key("max-key-groups"),
                    self.max_key_groups.to_le_bytes(),
                );
                self.write_batch(batch)
            }
            (Some(FORMAT_VERSION), Some(g)) if g == self.max_key_groups => Ok(()),
            (Some(FORMAT_VERSION), Some(g)) => Err(self.incompatible(format!(
                "it holds state with max-key-groups = {g}, the job file says {}; the key-group count is fixed for the life of a job's state, so set [state] max-key-groups = {g}",
                self.max_key_groups
            ))),
            (Some(v), _) => Err(self.incompatible(format!(
                "it was written with state format version {v}; this eddy reads version {FORMAT_VERSION}"
            ))),
            (None, Some(_)) => Err(self.incompatible(
                "its header is incomplete (no format version); it was not written by eddy".into(),
            )),
        }
    }

    fn incompatible(&self, message: String) -> StateError {
        StateError::Incompatible {
            dir: self.dir.clone(),
            message,
        }
    }

    fn db_err(&self, source: rocksdb::Error) -> StateError {
        StateError::Db {
            dir: self.dir.clone(),
            source,
        }
    }

    fn get_meta_u32(&self, name: &str) -> Result<Option<u32>, StateError> {
        match self.get_meta(name)? {
            None => Ok(None),
            Some(b) => match <[u8; 4]>::try_from(b.as_slice()) {
                Ok(a) => Ok(Some(u32::from_le_bytes(a))),
                Err(_) => Err(StateError::Corrupt {
                    dir: self.dir.clone(),
                    what: format!("meta {name}"),
                }),
            },
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Key groups of this state.
    pub fn max_key_groups(&self) -> u32 {
        self.max_key_groups
    }

    /// Reads a metadata entry.
    pub fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.db
            .get(keys::meta_key(name))
            .map_err(|e| self.db_err(e))
    }

    /// Reads one key; `f` sees the bytes without a copy.
    pub fn get_with<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StateError> {
        let v = self.db.get_pinned(key).map_err(|e| self.db_err(e))?;
        Ok(f(v.as_deref()))
    }

    /// Visits the entries whose keys start with `prefix`, from `start` (inclusive; ≥ prefix)
    /// on, in key order, until `f` returns false.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        start: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let mut ro = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            ro.set_iterate_upper_bound(end);
        }
        let iter = self
            .db
            .iterator_opt(IteratorMode::From(start, Direction::Forward), ro);
        for item in iter {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            if !k.starts_with(prefix) || !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Up to `n` stored values of `state` (map values and list items one by one), from the
    /// first key groups on: samples to try a migration on before it runs.
    pub fn sample_values(
        &self,
        state: RegisteredState,
        n: usize,
    ) -> Result<Vec<Vec<u8>>, StateError> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        let mut corrupt = false;
        for kg in 0..self.max_key_groups {
            if out.len() >= n {
                break;
            }
            keys::keyed_prefix(&mut prefix, state.kind.table(), kg as u16, state.id);
            self.scan_prefix(&prefix, &prefix, |_, v| {
                // The operator's bytes, without the stamp of a state with a TTL.
                let user = |raw: &[u8]| -> Option<Vec<u8>> {
                    match state.ttl {
                        None => Some(raw.to_vec()),
                        Some(_) => stamp::split(raw).map(|(_, u)| u.to_vec()),
                    }
                };
                if state.kind == StateKind::List {
                    match keys::decode_list(v) {
                        Some(items) => out.extend(items.iter().filter_map(|i| user(i))),
                        None => corrupt = true,
                    }
                } else {
                    out.extend(user(v));
                }
                out.len() < n && !corrupt
            })?;
            if corrupt {
                return Err(StateError::Corrupt {
                    dir: self.dir.clone(),
                    what: format!("a list of state {} in key group {kg}", state.id),
                });
            }
        }
        out.truncate(n);
        Ok(out)
    }

    /// The id and kind of operator `uid`'s state `name`, if it was ever registered.
    pub fn lookup(&self, uid: &str, name: &str) -> Result<Option<RegisteredState>, StateError> {
        Ok(self
            .registry_entry(&format!("state/{uid}/{name}"))?
            .map(|e| RegisteredState {
                id: e.id,
                kind: e.kind,
                ttl: e.ttl,
            }))
    }

    /// The id of operator `uid`'s operator state `name`, if it was ever registered.
    pub fn lookup_operator_state(
        &self,
        uid: &str,
        name: &str,
    ) -> Result<Option<StateId>, StateError> {
        Ok(self
            .registry_entry(&format!("operator-state/{uid}/{name}"))?
            .map(|e| e.id))
    }

    /// Assigns ids to an operator's states (by uid and name), or finds the ids they have.
    /// A state whose kind changed is refused: its bytes would be misread; so is one whose
    /// schema version changed (see [`register_migrating`](Self::register_migrating)).
    pub fn register(
        &self,
        uid: &str,
        states: &[Descriptor],
    ) -> Result<Vec<RegisteredState>, StateError> {
        self.register_with(uid, states, false)
    }

    /// As [`register`](Self::register), but a state whose schema version changed keeps its
    /// id: a hot swap migrates its values. The registry keeps the stored version until a
    /// checkpoint that names the new one commits ([`schema_updates`](Self::schema_updates)),
    /// so that a crash before it restarts on the old schema.
    pub fn register_migrating(
        &self,
        uid: &str,
        states: &[Descriptor],
    ) -> Result<Vec<RegisteredState>, StateError> {
        self.register_with(uid, states, true)
    }

    /// The registry entries to rewrite so that they record the schema versions of
    /// `states` (operator `uid`'s, all registered): none unless a migrating swap changed
    /// one. Written in the batch of the checkpoint whose state holds the migrated values.
    pub fn schema_updates(
        &self,
        uid: &str,
        states: &[Descriptor],
    ) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let mut out = Vec::new();
        for d in states {
            let name = format!("state/{uid}/{}", d.name);
            let Some(mut e) = self.registry_entry(&name)? else {
                continue;
            };
            if e.schema_version != d.schema_version {
                e.schema_version = d.schema_version;
                out.push((name, self.encode_entry(&e)?));
            }
        }
        Ok(out)
    }

    fn registry_entry(&self, name: &str) -> Result<Option<RegistryEntry>, StateError> {
        match self.get_meta(name)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|_| StateError::Corrupt {
                    dir: self.dir.clone(),
                    what: format!("registry entry {name}"),
                }),
        }
    }

    fn encode_entry(&self, e: &RegistryEntry) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec(e).map_err(|err| StateError::Corrupt {
            dir: self.dir.clone(),
            what: format!("registry entry: {err}"),
        })
    }

    fn register_with(
        &self,
        uid: &str,
        states: &[Descriptor],
        migrating: bool,
    ) -> Result<Vec<RegisteredState>, StateError> {
        let mut next = self.get_meta_u32("next-state-id")?.unwrap_or(1);
        let mut batch = WriteBatch::default();
        let mut out = Vec::with_capacity(states.len());
        for d in states {
            let name = format!("state/{uid}/{}", d.name);
            match self.registry_entry(&name)? {
                Some(e) if e.kind != d.kind => {
                    return Err(self.incompatible(format!(
                        "operator `{uid}` declares state `{}` as {} state, but it is stored as {} state; rename the state or start from an empty state directory",
                        d.name, d.kind, e.kind
                    )));
                }
                Some(e) if e.schema_version != d.schema_version && !migrating => {
                    return Err(self.incompatible(format!(
                        "operator `{uid}` declares state `{}` with schema version {}, but it is stored with version {}; upgrade it through a savepoint so that the module's `migrate` runs",
                        d.name, d.schema_version, e.schema_version
                    )));
                }
                Some(e) if e.ttl.is_some() != d.ttl.is_some() => {
                    let (was, now) = if e.ttl.is_some() {
                        ("with", "without")
                    } else {
                        ("without", "with")
                    };
                    return Err(self.incompatible(format!(
                        "operator `{uid}` declares state `{}` {now} a TTL, but it is stored {was} one (a TTL stores a timestamp with every value); upgrade through a savepoint, whose restore converts the values, or keep the state's TTL setting",
                        d.name
                    )));
                }
                Some(mut e) => {
                    if e.ttl != d.ttl {
                        // Only the parameters changed: the bytes stay as they are.
                        e.ttl = d.ttl;
                        batch.put(keys::meta_key(&name), self.encode_entry(&e)?);
                    }
                    out.push(RegisteredState {
                        id: e.id,
                        kind: e.kind,
                        ttl: d.ttl,
                    });
                }
                None => {
                    let entry = RegistryEntry {
                        id: next,
                        kind: d.kind,
                        schema_version: d.schema_version,
                        ttl: d.ttl,
                    };
                    batch.put(keys::meta_key(&name), self.encode_entry(&entry)?);
                    out.push(RegisteredState {
                        id: next,
                        kind: d.kind,
                        ttl: d.ttl,
                    });
                    next += 1;
                }
            }
            if let Some(t) = d.ttl {
                self.ttls_mut().insert(out[out.len() - 1].id, t.ttl_ms);
            }
        }
        if !batch.is_empty() {
            batch.put(keys::meta_key("next-state-id"), next.to_le_bytes());
            self.write_batch(batch)?;
        }
        Ok(out)
    }

    /// Assigns ids to an operator's non-keyed states (by uid and name, in a namespace of
    /// their own), or finds the ids they have. A changed schema version is refused: a
    /// restore from a savepoint migrates operator state.
    pub fn register_operator_states(
        &self,
        uid: &str,
        states: &[OperatorStateDescriptor],
    ) -> Result<OperatorStates, StateError> {
        let mut next = self.get_meta_u32("next-state-id")?.unwrap_or(1);
        let mut batch = WriteBatch::default();
        let mut out = Vec::with_capacity(states.len());
        for d in states {
            let name = format!("operator-state/{uid}/{}", d.name);
            match self.registry_entry(&name)? {
                Some(e) if e.schema_version != d.schema_version => {
                    return Err(self.incompatible(format!(
                        "operator `{uid}` declares operator state `{}` with schema version {}, but it is stored with version {}; upgrade it through a savepoint so that the module's `migrate` runs",
                        d.name, d.schema_version, e.schema_version
                    )));
                }
                Some(e) => out.push((e.id, d.redistribution)),
                None => {
                    let entry = RegistryEntry {
                        id: next,
                        kind: StateKind::List,
                        schema_version: d.schema_version,
                        ttl: None,
                    };
                    batch.put(keys::meta_key(&name), self.encode_entry(&entry)?);
                    out.push((next, d.redistribution));
                    next += 1;
                }
            }
        }
        if !batch.is_empty() {
            batch.put(keys::meta_key("next-state-id"), next.to_le_bytes());
            self.write_batch(batch)?;
        }
        Ok(out)
    }

    /// The stored lists of operator state `id`, by the index of the worker that wrote
    /// each (docs/state-format.md, table `0x05`).
    pub fn operator_lists(&self, id: StateId) -> Result<Vec<Vec<Vec<u8>>>, StateError> {
        let prefix = keys::operator_prefix(id);
        let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut corrupt = None;
        self.scan_prefix(&prefix, &prefix, |k, v| {
            let worker = k
                .get(prefix.len()..)
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map(u32::from_be_bytes);
            match (worker, keys::decode_list(v)) {
                (Some(w), Some(items)) => {
                    let w = w as usize;
                    if out.len() <= w {
                        out.resize(w + 1, Vec::new());
                    }
                    out[w] = items;
                    true
                }
                _ => {
                    corrupt = Some(format!("operator state {id}"));
                    false
                }
            }
        })?;
        match corrupt {
            Some(what) => Err(StateError::Corrupt {
                dir: self.dir.clone(),
                what,
            }),
            None => Ok(out),
        }
    }

    fn ttls_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<StateId, u64>> {
        // A poisoned lock only means a panic elsewhere; the map itself is always whole.
        self.ttls.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any registered state has a TTL (so that a cleanup compaction has work).
    pub fn has_ttl(&self) -> bool {
        !self
            .ttls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Compacts the whole database, which drops every expired value of a state with a TTL
    /// (the compaction filter): the background cleanup of expired state. Runs on the
    /// caller's thread; reads and commits go on meanwhile.
    pub fn compact_all(&self) {
        self.db.compact_range::<&[u8], &[u8]>(None, None);
    }

    /// Writes `ops` and the metadata entries `meta` in one atomic, synced batch: either all
    /// of it survives a crash or none of it.
    pub fn commit(&self, ops: Vec<WriteOp>, meta: &[(&str, Vec<u8>)]) -> Result<(), StateError> {
        let mut batch = batch_of(ops);
        for (name, value) in meta {
            batch.put(keys::meta_key(name), value);
        }
        self.write_batch(batch)
    }

    /// Writes `ops` into the memtables without the WAL and without waiting for a flush:
    /// nothing of it is durable until the next [`commit`](Self::commit) (which flushes
    /// everything). For bulk loads into a state that is not live yet (a savepoint
    /// restore), where a crash discards the whole load anyway.
    pub fn load(&self, ops: Vec<WriteOp>) -> Result<(), StateError> {
        let batch = batch_of(ops);
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db.write_opt(batch, &wo).map_err(|e| self.db_err(e))
    }

    /// Writes `batch` durably: into the memtable without the WAL, then flushed to an SST
    /// file and recorded in the MANIFEST (both synced). A crash before the flush ends
    /// leaves the store as it was before the batch; after it, the batch is there, and a
    /// restart opens it without replaying anything. Writing the batch once as an SST costs
    /// no more than writing it to the WAL and flushing it later, which a WAL would also
    /// have needed; it is how a restart at 10M keys stays well under a second.
    fn write_batch(&self, batch: WriteBatch) -> Result<(), StateError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        // Checkpoint batches are large and written in key order: the hint makes each
        // memtable insert start where the previous one ended.
        wo.set_memtable_insert_hint_per_batch(true);
        self.db.write_opt(batch, &wo).map_err(|e| self.db_err(e))?;
        self.flush()
    }

    /// Writes a consistent, openable copy of the database to `path` (hard links to the
    /// immutable SST files, copies of the rest): a retained checkpoint.
    pub fn copy_to(&self, path: &Path) -> Result<(), StateError> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(|e| self.db_err(e))?;
        cp.create_checkpoint(path).map_err(|e| self.db_err(e))
    }

    /// Writes the memtables to SST files and waits until they are recorded.
    pub fn flush(&self) -> Result<(), StateError> {
        let mut fo = rocksdb::FlushOptions::default();
        fo.set_wait(true);
        self.db.flush_opt(&fo).map_err(|e| self.db_err(e))
    }

    /// Approximate bytes of live state on disk (SST files and memtables).
    pub fn approximate_size(&self) -> u64 {
        let sst = self
            .db
            .property_int_value("rocksdb.live-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0);
        let mem = self
            .db
            .property_int_value("rocksdb.cur-size-all-mem-tables")
            .ok()
            .flatten()
            .unwrap_or(0);
        sst + mem
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(version: u32) -> Descriptor {
        Descriptor {
            name: "count".into(),
            kind: StateKind::Value,
            schema_version: version,
            ttl: None,
            codec: None,
        }
    }

    #[test]
    fn a_migrating_registration_keeps_the_id_until_a_commit_names_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), 16).unwrap();
        let v1 = db.register("op", &[d(1)]).unwrap();
        // A job that opens its state with another schema version is refused.
        let e = db.register("op", &[d(2)]).unwrap_err().to_string();
        assert!(
            e.contains("schema version 2") && e.contains("savepoint"),
            "{e}"
        );
        // A swap keeps the id and leaves the registry as it was.
        assert_eq!(db.register_migrating("op", &[d(2)]).unwrap(), v1);
        assert!(db.register("op", &[d(1)]).is_ok());
        // The checkpoint that names the new version rewrites the entry in its batch.
        let updates = db.schema_updates("op", &[d(2)]).unwrap();
        assert_eq!(updates.len(), 1);
        assert!(db.schema_updates("op", &[d(1)]).unwrap().is_empty());
        let meta: Vec<(&str, Vec<u8>)> = updates
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        db.commit(Vec::new(), &meta).unwrap();
        assert_eq!(db.register("op", &[d(2)]).unwrap(), v1);
        assert!(db.register("op", &[d(1)]).is_err());
    }

    #[test]
    fn a_ttl_that_comes_or_goes_is_refused_and_a_changed_ttl_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), 16).unwrap();
        let with = |ms| Descriptor {
            ttl: Some(Ttl {
                ttl_ms: ms,
                update: TtlUpdate::OnCreateAndWrite,
            }),
            ..d(1)
        };
        let first = db.register("op", &[with(1_000)]).unwrap();
        assert!(db.has_ttl());
        let e = db.register("op", &[d(1)]).unwrap_err().to_string();
        assert!(
            e.contains("without a TTL") && e.contains("savepoint"),
            "{e}"
        );
        assert!(db.register_migrating("op", &[d(1)]).is_err(), "a swap too");
        // Another TTL keeps the bytes: the new one applies.
        let again = db.register("op", &[with(5_000)]).unwrap();
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].ttl.map(|t| t.ttl_ms), Some(5_000));
        assert_eq!(
            db.lookup("op", "count").unwrap().and_then(|r| r.ttl),
            again[0].ttl
        );
        // The other way round.
        let plain = db.register("other", &[d(1)]).unwrap();
        assert!(plain[0].ttl.is_none());
        assert!(db.register("other", &[with(1)]).is_err());
    }
}
