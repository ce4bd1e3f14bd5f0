//! Savepoints: portable, versioned snapshots of a job's state and source positions, for
//! upgrades to new module versions, rescaling and state tools (docs/savepoint-format.md).
//!
//! A savepoint is a folder: `manifest.json` (what is inside, with a checksum per data
//! file), `manifest.json.sha256`, and data files `op<i>/s<j>-kg<from>-<to>.bin` holding the
//! entries of one state over a key-group range. It is written from a state directory's
//! last checkpoint by one streaming scan of RocksDB, and restored into a fresh state
//! directory by one streaming pass over the files; neither holds more than one entry and
//! one write batch in memory (a bootstrap, which sorts the entries it is given, holds
//! them all). Nothing in it depends on RocksDB's files or on a module.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, CheckpointError, CheckpointRecord, ModuleRecord};
use crate::state::keys::{self, StateId};
use crate::state::{
    Descriptor, OperatorStateDescriptor, StateDb, StateError, StateKind, WriteOp, stamp,
    wall_clock_ms,
};

/// Version of the savepoint format this eddy writes and reads.
pub const SAVEPOINT_FORMAT: u32 = 1;

/// First bytes of every data file.
const MAGIC: &[u8; 8] = b"EDDYSP1\n";

/// Key groups per data file (the unit a restore with more hosts could split on).
const GROUPS_PER_FILE: u32 = 32;

/// Writes per restore batch.
const RESTORE_BATCH: usize = 65_536;

/// The manifest file's name.
pub const MANIFEST: &str = "manifest.json";

/// What can go wrong with a savepoint. Each names the file or thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum SavepointError {
    /// A file could not be read or written.
    #[error("savepoint file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not match its checksum or does not parse.
    #[error("savepoint file {path} is corrupt ({why}); the savepoint cannot be used")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The checkpoint record could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The savepoint cannot be taken or restored as asked; the message says why and what
    /// to do.
    #[error("{0}")]
    Refused(String),
}

/// The manifest: everything about a savepoint but the entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    /// Format version ([`SAVEPOINT_FORMAT`]).
    pub format: u32,
    /// Job name.
    pub job: String,
    /// When it was written, ms since the epoch.
    pub created_at_ms: u64,
    /// The checkpoint it was taken from.
    pub checkpoint: u64,
    /// Key groups of the job's state (fixed for the life of a job's state).
    pub max_key_groups: u32,
    /// Position of the last record whose effects the state holds, per source.
    pub positions: BTreeMap<String, u64>,
    /// The largest event timestamp routed per source up to `positions` (the watermarks
    /// resume from it). Absent in savepoints of eddy before event time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_timestamps: BTreeMap<String, i64>,
    /// Outputs not yet durable in the output when the savepoint was taken: always empty,
    /// since a checkpoint completes only once its outputs are stored.
    pub pending_output: Vec<serde_json::Value>,
    /// The operators, each by its stable uid.
    pub operators: Vec<OperatorEntry>,
}

/// One operator in a savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorEntry {
    /// Stable id (the job file's `[operator] uid`).
    pub uid: String,
    /// sha256 of the module that produced the state.
    pub module_sha256: String,
    /// Its version, when known.
    pub module_version: String,
    /// Its states.
    pub states: Vec<StateEntry>,
    /// Its operator (non-keyed) states. Absent when it has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_states: Vec<OperatorStateEntry>,
}

/// One operator state of an operator in a savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorStateEntry {
    /// The descriptor the module declared.
    pub descriptor: OperatorStateDescriptor,
    /// Its data file: one entry per worker that wrote a list, the key being the worker's
    /// index (`u32` big-endian) and the value its list; `key-groups` holds `[0, workers]`.
    pub file: FileEntry,
}

/// One state of an operator in a savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StateEntry {
    /// The descriptor the module declared.
    pub descriptor: Descriptor,
    /// Its data files, by key-group range.
    pub files: Vec<FileEntry>,
}

impl StateEntry {
    /// Entries over all files.
    pub fn entries(&self) -> u64 {
        self.files.iter().map(|f| f.entries).sum()
    }

    /// Bytes over all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// One data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileEntry {
    /// Path relative to the savepoint folder.
    pub path: String,
    /// Key groups `[from, to)` whose entries it holds.
    pub key_groups: [u32; 2],
    /// Entries (values; map entries; lists).
    pub entries: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the whole file, hex.
    pub sha256: String,
}

/// One entry of a data file: a record key, the map key for map state, and the value (for
/// list state, the list encoding of docs/state-format.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Record key.
    pub key: Vec<u8>,
    /// Map key (map state only).
    pub map_key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// What writing or restoring a savepoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries.
    pub entries: u64,
    /// Bytes of data files.
    pub bytes: u64,
    /// Values rewritten by `migrate` (restore only).
    pub migrated: u64,
}

/// One stored value, map key or list item of state `d` as `eddy savepoint dump` prints
/// it: the JSON it holds when the state's codec is JSON; else its bytes, as a string when
/// they are UTF-8 and `{"base64": …}` otherwise.
pub fn bytes_to_dump(d: &Descriptor, b: &[u8]) -> Result<serde_json::Value, String> {
    if d.is_json() {
        serde_json::from_slice(b).map_err(|e| {
            format!(
                "state `{}` declares codec json, but holds bytes that are not JSON ({e}): {}",
                d.name,
                crate::io::bytes_to_json(b)
            )
        })
    } else {
        Ok(crate::io::bytes_to_json(b))
    }
}

/// The operator's bytes of a saved value (map value, list item) of state `d`: without
/// the TTL stamp a state with a TTL stores before them.
pub fn unstamped<'a>(d: &Descriptor, raw: &'a [u8]) -> Result<&'a [u8], String> {
    match d.ttl {
        None => Ok(raw),
        Some(_) => stamp::split(raw)
            .map(|(_, user)| user)
            .ok_or_else(|| format!("a value of state `{}` lacks its TTL stamp", d.name)),
    }
}

/// The saved bytes of a value (map value, list item) of state `d` written now: stamped
/// with the current time when the state has a TTL.
pub fn stamped(d: &Descriptor, user: Vec<u8>) -> Vec<u8> {
    match d.ttl {
        None => user,
        Some(_) => stamp::put(wall_clock_ms(), &user),
    }
}

/// The inverse of [`bytes_to_dump`], for `eddy savepoint bootstrap`.
pub fn dump_to_bytes(d: &Descriptor, v: &serde_json::Value) -> Result<Vec<u8>, String> {
    if d.is_json() {
        serde_json::to_vec(v).map_err(|e| e.to_string())
    } else {
        crate::io::json_to_bytes(v).ok_or_else(|| {
            format!(
                "state `{}` (codec {}) takes bytes: a string or {{\"base64\": …}}",
                d.name,
                d.codec.as_deref().unwrap_or("unknown")
            )
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SavepointError + '_ {
    move |source| SavepointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A data file being written, with its running checksum.
struct FileWriter {
    path: PathBuf,
    rel: String,
    out: BufWriter<std::fs::File>,
    hash: Sha256,
    entries: u64,
    bytes: u64,
    key_groups: [u32; 2],
}

impl FileWriter {
    /// The data file of state `state` for key-group range number `range`.
    fn for_range(
        dir: &Path,
        state: usize,
        range: u32,
        max_key_groups: u32,
    ) -> Result<FileWriter, SavepointError> {
        let from = range * GROUPS_PER_FILE;
        let to = (from + GROUPS_PER_FILE).min(max_key_groups);
        FileWriter::create(
            dir,
            format!("op0/s{state}-kg{from:05}-{to:05}.bin"),
            [from, to],
        )
    }

    fn create(dir: &Path, rel: String, key_groups: [u32; 2]) -> Result<FileWriter, SavepointError> {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        let mut w = FileWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            rel,
            hash: Sha256::new(),
            entries: 0,
            bytes: 0,
            key_groups,
        };
        w.put(MAGIC)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), SavepointError> {
        self.hash.update(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b).map_err(io_err(&self.path))
    }

    fn field(&mut self, b: &[u8]) -> Result<(), SavepointError> {
        self.put(&(b.len() as u32).to_le_bytes())?;
        self.put(b)
    }

    fn entry(
        &mut self,
        key: &[u8],
        map_key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), SavepointError> {
        self.field(key)?;
        if let Some(mk) = map_key {
            self.field(mk)?;
        }
        self.field(value)?;
        self.entries += 1;
        Ok(())
    }

    fn finish(self) -> Result<FileEntry, SavepointError> {
        let file = self.out.into_inner().map_err(|e| SavepointError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&self.path))?;
        Ok(FileEntry {
            path: self.rel,
            key_groups: self.key_groups,
            entries: self.entries,
            bytes: self.bytes,
            sha256: hex::encode(self.hash.finalize()),
        })
    }
}

/// Refuses a folder that holds a savepoint already (checked again when writing starts).
pub fn check_folder(dir: &Path) -> Result<(), SavepointError> {
    if dir.join(MANIFEST).exists() {
        return Err(SavepointError::Refused(format!(
            "{} holds a savepoint already; give another folder",
            dir.display()
        )));
    }
    Ok(())
}

/// Creates the savepoint folder, refusing one that holds a savepoint already.
fn start_folder(dir: &Path) -> Result<(), SavepointError> {
    check_folder(dir)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Writes a savepoint of `db`'s last checkpoint into `dir` (which must not hold one).
pub fn write(db: &StateDb, dir: &Path) -> Result<(Manifest, Summary), SavepointError> {
    let record = checkpoint::read_latest(db)?.ok_or_else(|| {
        SavepointError::Refused(format!(
            "the state in {} has no checkpoint yet: there is nothing to save; run the job first",
            db.dir().display()
        ))
    })?;
    start_folder(dir)?;
    let uid = &record.operator_uid;
    // State id → index among the checkpoint's states; states of no descriptor (left over
    // from older module versions) are not part of the job's state and are left out.
    let mut by_id: HashMap<StateId, usize> = HashMap::new();
    for (i, d) in record.states.iter().enumerate() {
        if let Some(r) = db.lookup(uid, &d.name)? {
            by_id.insert(r.id, i);
        }
    }
    let mut files: Vec<Vec<FileEntry>> = vec![Vec::new(); record.states.len()];
    // Expired values of states with a TTL are not saved (a restore would drop them).
    let now = wall_clock_ms();
    for table in [keys::TABLE_VALUE, keys::TABLE_MAP, keys::TABLE_LIST] {
        let mut open: HashMap<usize, FileWriter> = HashMap::new();
        let mut range = u32::MAX;
        let mut failed: Option<SavepointError> = None;
        db.scan_prefix(&[table], &[table], |k, v| {
            let mut step = || -> Result<(), SavepointError> {
                let (kg, id, rest) =
                    keys::split_keyed(k).ok_or_else(|| SavepointError::Corrupt {
                        path: db.dir().to_path_buf(),
                        why: format!("a state key of {} bytes is too short", k.len()),
                    })?;
                let Some(&state) = by_id.get(&id) else {
                    return Ok(());
                };
                let live_list;
                let v = match record.states[state].ttl {
                    None => v,
                    Some(ttl) => {
                        let alive = |raw: &[u8]| {
                            stamp::split(raw).is_some_and(|(at, _)| !ttl.expired(at, now))
                        };
                        if table == keys::TABLE_LIST {
                            let items =
                                keys::decode_list(v).ok_or_else(|| SavepointError::Corrupt {
                                    path: db.dir().to_path_buf(),
                                    why: "a list does not decode".into(),
                                })?;
                            let items: Vec<Vec<u8>> =
                                items.into_iter().filter(|i| alive(i)).collect();
                            if items.is_empty() {
                                return Ok(());
                            }
                            live_list = keys::encode_list(&items);
                            &live_list[..]
                        } else if alive(v) {
                            v
                        } else {
                            return Ok(());
                        }
                    }
                };
                let r = u32::from(kg) / GROUPS_PER_FILE;
                if r != range {
                    for (s, w) in open.drain() {
                        files[s].push(w.finish()?);
                    }
                    range = r;
                }
                let w = match open.entry(state) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(FileWriter::for_range(dir, state, r, db.max_key_groups())?)
                    }
                };
                if table == keys::TABLE_MAP {
                    let (key, map_key) =
                        keys::split_map_rest(rest).ok_or_else(|| SavepointError::Corrupt {
                            path: db.dir().to_path_buf(),
                            why: "a map state key has a bad length".into(),
                        })?;
                    w.entry(key, Some(map_key), v)
                } else {
                    w.entry(rest, None, v)
                }
            };
            match step() {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for (s, w) in open.drain() {
            files[s].push(w.finish()?);
        }
    }
    // The module history's last entry is the running module (empty only in checkpoints
    // of an eddy that kept no history).
    let version = record
        .modules
        .last()
        .map(|m: &ModuleRecord| m.version.clone())
        .unwrap_or_default();
    let states: Vec<StateEntry> = record
        .states
        .iter()
        .zip(files)
        .map(|(d, mut files)| {
            files.sort_by_key(|f| f.key_groups[0]);
            StateEntry {
                descriptor: d.clone(),
                files,
            }
        })
        .collect();
    let mut operator_states = Vec::with_capacity(record.operator_states.len());
    for (j, d) in record.operator_states.iter().enumerate() {
        let rows = match db.lookup_operator_state(uid, &d.name)? {
            Some(id) => db.operator_lists(id)?,
            None => Vec::new(),
        };
        let mut w = FileWriter::create(dir, format!("op0/o{j}.bin"), [0, rows.len() as u32])?;
        for (worker, items) in rows.iter().enumerate() {
            w.entry(
                &(worker as u32).to_be_bytes(),
                None,
                &keys::encode_list(items),
            )?;
        }
        operator_states.push(OperatorStateEntry {
            descriptor: d.clone(),
            file: w.finish()?,
        });
    }
    seal(
        dir,
        Manifest {
            format: SAVEPOINT_FORMAT,
            job: record.job.clone(),
            created_at_ms: checkpoint::now_ms(),
            checkpoint: record.id,
            max_key_groups: db.max_key_groups(),
            positions: record.positions.clone(),
            max_timestamps: record.max_timestamps.clone(),
            pending_output: Vec::new(),
            operators: vec![OperatorEntry {
                uid: uid.clone(),
                module_sha256: record.module_sha256.clone(),
                module_version: version,
                states,
                operator_states,
            }],
        },
    )
}

/// What a bootstrapped savepoint is for: the job, its operator and module, its key-group
/// count and the positions the state reflects.
pub struct BootstrapTarget<'a> {
    /// Job name.
    pub job: &'a str,
    /// Operator uid.
    pub uid: &'a str,
    /// sha256 of the module the state is for.
    pub module_sha256: &'a str,
    /// Its version.
    pub module_version: &'a str,
    /// The job's key-group count.
    pub max_key_groups: u32,
    /// Per source, the position the state reflects (sources resume after it).
    pub positions: BTreeMap<String, u64>,
}

/// Writes a savepoint from entries given per state, without running any operator (the
/// State Processor API, from the command line): `states` pairs each descriptor with its
/// entries, in any order.
pub fn bootstrap(
    dir: &Path,
    target: &BootstrapTarget<'_>,
    states: Vec<(Descriptor, Vec<Entry>)>,
) -> Result<(Manifest, Summary), SavepointError> {
    start_folder(dir)?;
    let mut entries_out = Vec::with_capacity(states.len());
    for (i, (d, mut entries)) in states.into_iter().enumerate() {
        // Key-group order, as a scan of the state store would give.
        entries.sort_by_cached_key(|e| {
            (
                keys::key_group(&e.key, target.max_key_groups),
                e.key.clone(),
                e.map_key.clone(),
            )
        });
        let mut files = Vec::new();
        let mut open: Option<(u32, FileWriter)> = None;
        for e in &entries {
            if (d.kind == StateKind::Map) != e.map_key.is_some() {
                return Err(SavepointError::Refused(format!(
                    "an entry of {} state `{}` {} a map key",
                    d.kind,
                    d.name,
                    if e.map_key.is_some() { "has" } else { "lacks" }
                )));
            }
            let r = u32::from(keys::key_group(&e.key, target.max_key_groups)) / GROUPS_PER_FILE;
            if open.as_ref().is_none_or(|(at, _)| *at != r) {
                if let Some((_, w)) = open.take() {
                    files.push(w.finish()?);
                }
                open = Some((r, FileWriter::for_range(dir, i, r, target.max_key_groups)?));
            }
            if let Some((_, w)) = open.as_mut() {
                w.entry(&e.key, e.map_key.as_deref(), &e.value)?;
            }
        }
        if let Some((_, w)) = open.take() {
            files.push(w.finish()?);
        }
        entries_out.push(StateEntry {
            descriptor: d,
            files,
        });
    }
    seal(
        dir,
        Manifest {
            format: SAVEPOINT_FORMAT,
            job: target.job.to_string(),
            created_at_ms: checkpoint::now_ms(),
            checkpoint: 0,
            max_key_groups: target.max_key_groups,
            positions: target.positions.clone(),
            max_timestamps: BTreeMap::new(),
            pending_output: Vec::new(),
            operators: vec![OperatorEntry {
                uid: target.uid.to_string(),
                module_sha256: target.module_sha256.to_string(),
                module_version: target.module_version.to_string(),
                states: entries_out,
                operator_states: Vec::new(),
            }],
        },
    )
}

/// Completes a savepoint whose data files are written: writes its manifest; returns it
/// with what it holds.
fn seal(dir: &Path, manifest: Manifest) -> Result<(Manifest, Summary), SavepointError> {
    write_manifest(dir, &manifest)?;
    let mut summary = Summary::default();
    for s in manifest.operators.iter().flat_map(|o| &o.states) {
        summary.entries += s.entries();
        summary.bytes += s.bytes();
    }
    for s in manifest.operators.iter().flat_map(|o| &o.operator_states) {
        summary.entries += s.file.entries;
        summary.bytes += s.file.bytes;
    }
    Ok((manifest, summary))
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), SavepointError> {
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| SavepointError::Io {
        path: path.clone(),
        source: std::io::Error::other(format!("cannot encode the manifest: {e}")),
    })?;
    let sum = hex::encode(Sha256::digest(&json));
    // The checksum first: a manifest without one is never taken for complete.
    for (name, bytes) in [
        (format!("{MANIFEST}.sha256"), sum.into_bytes()),
        (MANIFEST.to_string(), json),
    ] {
        let path = dir.join(&name);
        crate::io::write_file_durably(&path, &bytes).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Reads and checks a savepoint's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, SavepointError> {
    let path = dir.join(MANIFEST);
    let json = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SavepointError::Refused(format!(
                "{} is not a savepoint (no {MANIFEST}); give the folder `eddy savepoint` wrote",
                dir.display()
            ))
        } else {
            SavepointError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let sum_path = dir.join(format!("{MANIFEST}.sha256"));
    let sum = std::fs::read_to_string(&sum_path).map_err(io_err(&sum_path))?;
    if hex::encode(Sha256::digest(&json)) != sum.trim() {
        return Err(SavepointError::Corrupt {
            path,
            why: format!("its sha256 does not match {MANIFEST}.sha256"),
        });
    }
    let m: Manifest = serde_json::from_slice(&json).map_err(|e| SavepointError::Corrupt {
        path: path.clone(),
        why: format!("does not parse: {e}"),
    })?;
    if m.format != SAVEPOINT_FORMAT {
        return Err(SavepointError::Refused(format!(
            "{} has savepoint format {}; this eddy reads format {SAVEPOINT_FORMAT}",
            path.display(),
            m.format
        )));
    }
    Ok(m)
}

/// Reads the entries of one data file, checking its size and checksum at the end: `f`
/// sees each entry; an error of `f` stops the read.
pub fn read_file(
    dir: &Path,
    file: &FileEntry,
    map: bool,
    mut f: impl FnMut(Entry) -> Result<(), SavepointError>,
) -> Result<(), SavepointError> {
    let path = dir.join(&file.path);
    let corrupt = |why: String| SavepointError::Corrupt {
        path: path.clone(),
        why,
    };
    let handle = std::fs::File::open(&path).map_err(io_err(&path))?;
    let mut r = HashingReader {
        inner: BufReader::with_capacity(1 << 20, handle),
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| corrupt("shorter than its header".into()))?;
    if &magic != MAGIC {
        return Err(corrupt("not a savepoint data file (bad header)".into()));
    }
    let read_field = |r: &mut HashingReader,
                      first: bool|
     -> Result<Option<Vec<u8>>, SavepointError> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if first && e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(_) => return Err(corrupt("ends inside an entry".into())),
        }
        let len = u32::from_le_bytes(len) as u64;
        if len > file.bytes {
            return Err(corrupt(format!("an entry claims {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        r.read_exact(&mut buf)
            .map_err(|_| corrupt("ends inside an entry".into()))?;
        Ok(Some(buf))
    };
    let mut entries = 0u64;
    while let Some(key) = read_field(&mut r, true)? {
        let map_key = if map {
            Some(read_field(&mut r, false)?.ok_or_else(|| corrupt("ends inside an entry".into()))?)
        } else {
            None
        };
        let value =
            read_field(&mut r, false)?.ok_or_else(|| corrupt("ends inside an entry".into()))?;
        entries += 1;
        f(Entry {
            key,
            map_key,
            value,
        })?;
    }
    if r.bytes != file.bytes || hex::encode(r.hash.finalize()) != file.sha256 {
        return Err(corrupt("its sha256 does not match the manifest".into()));
    }
    if entries != file.entries {
        return Err(corrupt(format!(
            "{entries} entries where the manifest says {}",
            file.entries
        )));
    }
    Ok(())
}

struct HashingReader {
    inner: BufReader<std::fs::File>,
    hash: Sha256,
    bytes: u64,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Rewrites one value of a state from a schema version to the one the module declares
/// (the module's `migrate`); the error says why not.
pub type Migrate<'a> = &'a mut dyn FnMut(&Descriptor, u32, &[u8]) -> Result<Vec<u8>, String>;

/// How a restore treats the savepoint's states.
pub struct RestoreTarget<'a> {
    /// Job name (for the checkpoint record).
    pub job: &'a str,
    /// The job's operator uid.
    pub uid: &'a str,
    /// The module that will run: its sha256 and states.
    pub module_sha256: &'a str,
    /// Its states.
    pub states: &'a [Descriptor],
    /// Its operator (non-keyed) states.
    pub operator_states: &'a [OperatorStateDescriptor],
    /// The job's key-group count.
    pub max_key_groups: u32,
    /// Whether states no operator claims may be left behind.
    pub allow_non_restored: bool,
}

/// Restores savepoint `dir` into a fresh state directory `state_dir` for `target`, calling
/// `migrate(state, from-version, bytes)` for every value (map entry, list item) of a state
/// whose schema version changed. Written to a temporary folder beside `state_dir` and
/// renamed into place at the end, so a failed restore leaves nothing behind.
pub fn restore(
    dir: &Path,
    state_dir: &Path,
    target: &RestoreTarget<'_>,
    migrate: Migrate<'_>,
) -> Result<(CheckpointRecord, Summary), SavepointError> {
    let m = read_manifest(dir)?;
    if m.max_key_groups != target.max_key_groups {
        return Err(SavepointError::Refused(format!(
            "the savepoint's state has {} key groups, the job file says [state] max-key-groups = {}; the key-group count is fixed for the life of a job's state: set it to {}",
            m.max_key_groups, target.max_key_groups, m.max_key_groups
        )));
    }
    if state_dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(SavepointError::Refused(format!(
            "the state directory {} is not empty; a savepoint restores into fresh state: move it away or give the job another [state] dir",
            state_dir.display()
        )));
    }
    // Match states by operator uid and state name.
    let mut plan: Vec<(&StateEntry, usize)> = Vec::new();
    let mut op_plan: Vec<(&OperatorStateEntry, usize)> = Vec::new();
    let mut unclaimed: Vec<String> = Vec::new();
    for op in &m.operators {
        for s in &op.states {
            let claim = target
                .states
                .iter()
                .enumerate()
                .find(|(_, d)| op.uid == target.uid && d.name == s.descriptor.name);
            match claim {
                Some((_, d)) if d.kind != s.descriptor.kind => {
                    return Err(SavepointError::Refused(format!(
                        "operator `{}` declares state `{}` as {} state, but the savepoint holds it as {} state; keep the kind, or give the new state another name",
                        op.uid, d.name, d.kind, s.descriptor.kind
                    )));
                }
                Some((h, d)) => {
                    if let Some(why) = d.codec_conflict(&s.descriptor) {
                        return Err(SavepointError::Refused(format!(
                            "operator `{}`: {why}",
                            op.uid
                        )));
                    }
                    plan.push((s, h));
                }
                None => unclaimed.push(format!("`{}` of operator `{}`", s.descriptor.name, op.uid)),
            }
        }
        for s in &op.operator_states {
            let claim = target
                .operator_states
                .iter()
                .position(|d| op.uid == target.uid && d.name == s.descriptor.name);
            match claim {
                Some(h) => op_plan.push((s, h)),
                None => unclaimed.push(format!(
                    "operator state `{}` of operator `{}`",
                    s.descriptor.name, op.uid
                )),
            }
        }
    }
    if !unclaimed.is_empty() && !target.allow_non_restored {
        return Err(SavepointError::Refused(format!(
            "no operator of the job claims state {} in the savepoint; rename it back, or pass --allow-non-restored-state to leave it behind",
            unclaimed.join(", ")
        )));
    }
    let tmp = crate::config::beside(state_dir, ".restoring");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let plan = Plan {
        keyed: &plan,
        operator: &op_plan,
    };
    let result = load(dir, &tmp, &m, target, plan, migrate);
    let (record, summary) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if state_dir.exists() {
        std::fs::remove_dir(state_dir).map_err(io_err(state_dir))?;
    }
    std::fs::rename(&tmp, state_dir).map_err(io_err(state_dir))?;
    crate::io::sync_parent(state_dir).map_err(io_err(state_dir))?;
    Ok((record, summary))
}

/// What a restore loads: each saved state with the handle of the state that claims it.
struct Plan<'a> {
    keyed: &'a [(&'a StateEntry, usize)],
    operator: &'a [(&'a OperatorStateEntry, usize)],
}

fn load(
    dir: &Path,
    tmp: &Path,
    m: &Manifest,
    target: &RestoreTarget<'_>,
    Plan {
        keyed: plan,
        operator: op_plan,
    }: Plan<'_>,
    migrate: Migrate<'_>,
) -> Result<(CheckpointRecord, Summary), SavepointError> {
    let db = StateDb::open(tmp, target.max_key_groups)?;
    let registered = db.register(target.uid, target.states)?;
    let now = wall_clock_ms();
    let mut summary = Summary::default();
    let mut ops: Vec<WriteOp> = Vec::with_capacity(RESTORE_BATCH);
    let mut k = Vec::new();
    for &(saved, handle) in plan {
        let d = &target.states[handle];
        let id = registered[handle].id;
        let from = saved.descriptor.schema_version;
        let migrating = from != d.schema_version;
        let map = d.kind == StateKind::Map;
        // Values move as they are unless they migrate or their TTL stamp comes or goes.
        let saved_ttl = saved.descriptor.ttl.is_some();
        let as_is = !migrating && !saved_ttl && d.ttl.is_none();
        for file in &saved.files {
            let path = dir.join(&file.path);
            read_file(dir, file, map, |e| {
                let kg = keys::key_group(&e.key, target.max_key_groups);
                if u32::from(kg) < file.key_groups[0] || u32::from(kg) >= file.key_groups[1] {
                    return Err(SavepointError::Corrupt {
                        path: path.clone(),
                        why: format!("holds a key of key group {kg}, outside its range"),
                    });
                }
                let mut mig = |bytes: &[u8]| -> Result<Vec<u8>, SavepointError> {
                    summary.migrated += 1;
                    migrate(d, from, bytes).map_err(|why| {
                        SavepointError::Refused(format!(
                            "`migrate` of state `{}` from schema version {from} to {} failed for key {:?}: {why}",
                            d.name,
                            d.schema_version,
                            String::from_utf8_lossy(&e.key)
                        ))
                    })
                };
                // One stored value as the module will store it: without the stamp, through
                // `migrate`, stamped again (with its own time, or now when it had none);
                // None when it has expired.
                let mut convert = |raw: &[u8]| -> Result<Option<Vec<u8>>, SavepointError> {
                    let (at, user) = if saved_ttl {
                        let (at, user) =
                            stamp::split(raw).ok_or_else(|| SavepointError::Corrupt {
                                path: path.clone(),
                                why: format!("a value of state `{}` lacks its TTL stamp", d.name),
                            })?;
                        (Some(at), user)
                    } else {
                        (None, raw)
                    };
                    let user = if migrating { mig(user)? } else { user.to_vec() };
                    Ok(match d.ttl {
                        None => Some(user),
                        Some(ttl) => {
                            let at = at.unwrap_or(now);
                            (!ttl.expired(at, now)).then(|| stamp::put(at, &user))
                        }
                    })
                };
                let value = match d.kind {
                    _ if as_is => e.value,
                    StateKind::List => {
                        let items =
                            keys::decode_list(&e.value).ok_or_else(|| SavepointError::Corrupt {
                                path: path.clone(),
                                why: "holds a list that does not decode".into(),
                            })?;
                        let mut out = Vec::with_capacity(items.len());
                        for i in &items {
                            out.extend(convert(i)?);
                        }
                        if out.is_empty() {
                            return Ok(());
                        }
                        keys::encode_list(&out)
                    }
                    _ => match convert(&e.value)? {
                        Some(v) => v,
                        None => return Ok(()),
                    },
                };
                match d.kind {
                    StateKind::Value => keys::value_key(&mut k, kg, id, &e.key),
                    StateKind::List => keys::list_key(&mut k, kg, id, &e.key),
                    StateKind::Map => {
                        keys::map_prefix(&mut k, kg, id, &e.key);
                        k.extend_from_slice(e.map_key.as_deref().unwrap_or_default());
                    }
                }
                summary.entries += 1;
                ops.push(WriteOp::Put(k.clone(), value));
                if ops.len() >= RESTORE_BATCH {
                    // Not durable yet: the checkpoint record's commit flushes it all.
                    db.load(std::mem::take(&mut ops))?;
                }
                Ok(())
            })?;
            summary.bytes += file.bytes;
        }
    }
    let operator_ids = db.register_operator_states(target.uid, target.operator_states)?;
    for &(saved, handle) in op_plan {
        let d = &target.operator_states[handle];
        let (id, _) = operator_ids[handle];
        let from = saved.descriptor.schema_version;
        let as_list = d.as_list();
        let path = dir.join(&saved.file.path);
        read_file(dir, &saved.file, false, |e| {
            let corrupt = |why: &str| SavepointError::Corrupt {
                path: path.clone(),
                why: why.to_string(),
            };
            let worker = <[u8; 4]>::try_from(e.key.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| corrupt("an operator state entry's key is not a worker index"))?;
            let mut items = keys::decode_list(&e.value)
                .ok_or_else(|| corrupt("holds a list that does not decode"))?;
            if from != d.schema_version {
                summary.migrated += items.len() as u64;
                items = items
                    .iter()
                    .map(|i| migrate(&as_list, from, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|why| {
                        SavepointError::Refused(format!(
                            "`migrate` of operator state `{}` from schema version {from} to {} failed: {why}",
                            d.name, d.schema_version
                        ))
                    })?;
            }
            summary.entries += 1;
            ops.push(WriteOp::Put(
                keys::operator_key(id, worker),
                keys::encode_list(&items),
            ));
            Ok(())
        })?;
        summary.bytes += saved.file.bytes;
    }
    let record = CheckpointRecord {
        format: checkpoint::CHECKPOINT_FORMAT,
        id: m.checkpoint,
        job: target.job.to_string(),
        operator_uid: target.uid.to_string(),
        module_sha256: target.module_sha256.to_string(),
        states: target.states.to_vec(),
        operator_states: target.operator_states.to_vec(),
        positions: m.positions.clone(),
        created_at_ms: checkpoint::now_ms(),
        modules: Vec::new(),
        max_timestamps: m.max_timestamps.clone(),
        watermark: None,
    };
    checkpoint::commit(&db, ops, &record)?;
    Ok((record, summary))
}
