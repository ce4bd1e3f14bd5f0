//! Checkpoints: the record that binds the state in RocksDB to the source positions it
//! reflects, written in the same atomic, synced RocksDB batch as the state changes.
//!
//! Format (docs/state-format.md): metadata key `checkpoint` holds the sha256 of the JSON
//! that follows it, then the JSON of [`CheckpointRecord`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{Descriptor, OperatorStateDescriptor, StateDb, StateError, WriteOp};

/// Version of the checkpoint record's format.
pub const CHECKPOINT_FORMAT: u32 = 1;

const META_NAME: &str = "checkpoint";

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The record does not match its checksum or does not parse.
    #[error(
        "the checkpoint record in {dir} is corrupt ({why}); the state cannot be trusted: move the state directory away to start from scratch"
    )]
    Corrupt {
        /// The state directory.
        dir: std::path::PathBuf,
        /// What failed.
        why: String,
    },
    /// A retained copy could not be written or removed (the state itself is intact).
    #[error(
        "cannot keep a copy of checkpoint in {dir}: {source}; check free space and permissions there, or set [state] retained-checkpoints = 0"
    )]
    Retain {
        /// The folder of retained copies.
        dir: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Written by a newer eddy.
    #[error(
        "the checkpoint in {dir} has format version {found}; this eddy reads version {CHECKPOINT_FORMAT}"
    )]
    Version {
        /// The state directory.
        dir: std::path::PathBuf,
        /// The version found.
        found: u32,
    },
}

/// What a completed checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckpointRecord {
    /// Format version ([`CHECKPOINT_FORMAT`]).
    pub format: u32,
    /// Increasing id.
    pub id: u64,
    /// Job name.
    pub job: String,
    /// Operator uid.
    pub operator_uid: String,
    /// sha256 of the module that produced the state.
    pub module_sha256: String,
    /// The module's state descriptors.
    pub states: Vec<Descriptor>,
    /// The module's operator (non-keyed) state descriptors. Absent when it has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_states: Vec<OperatorStateDescriptor>,
    /// Position of the last record whose effects the state holds, per source.
    pub positions: BTreeMap<String, u64>,
    /// Wall-clock time of the commit, ms since the epoch.
    pub created_at_ms: u64,
    /// The modules the operator has run, oldest first; the last is the one that produced
    /// this state (`module_sha256`). Absent in records of eddy before hot swap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleRecord>,
    /// The largest event timestamp routed per source, up to `positions` (what the
    /// watermarks resume from). Absent in records of eddy before event time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_timestamps: BTreeMap<String, i64>,
    /// The job's watermark at those positions (it never goes back, also across a restart,
    /// even when idle sources let it pass the sources' own). Absent before there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
}

/// How a module came to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleChange {
    /// Named by the job file when the job started.
    JobFile,
    /// Swapped in while the job ran.
    Swap,
    /// Reinstated after the swapped-in module misbehaved on probation.
    Rollback,
}

/// One entry of an operator's module history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ModuleRecord {
    /// sha256 of the component, hex.
    pub sha256: String,
    /// The operator's version (from `describe`).
    pub version: String,
    /// The file it was loaded from (for swapped-in modules, eddy's own copy).
    pub path: std::path::PathBuf,
    /// How it came to run.
    pub change: ModuleChange,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Who asked (from the swap request), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Why (for rollbacks: what the swapped-in module did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Reads the newest completed checkpoint, if any.
pub fn read_latest(db: &StateDb) -> Result<Option<CheckpointRecord>, CheckpointError> {
    let Some(bytes) = db.get_meta(META_NAME)? else {
        return Ok(None);
    };
    let corrupt = |why: String| CheckpointError::Corrupt {
        dir: db.dir().to_path_buf(),
        why,
    };
    let (sum, json) = bytes
        .split_at_checked(32)
        .ok_or_else(|| corrupt("record shorter than its checksum".into()))?;
    if Sha256::digest(json).as_slice() != sum {
        return Err(corrupt("checksum mismatch".into()));
    }
    let record: CheckpointRecord =
        serde_json::from_slice(json).map_err(|e| corrupt(format!("does not parse: {e}")))?;
    if record.format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Version {
            dir: db.dir().to_path_buf(),
            found: record.format,
        });
    }
    Ok(Some(record))
}

/// Commits state changes and their checkpoint record atomically and durably (fsync).
pub fn commit(
    db: &StateDb,
    ops: Vec<WriteOp>,
    record: &CheckpointRecord,
) -> Result<(), CheckpointError> {
    let json = serde_json::to_vec(record).map_err(|e| CheckpointError::Corrupt {
        dir: db.dir().to_path_buf(),
        why: format!("cannot encode: {e}"),
    })?;
    let mut value = Sha256::digest(&json).to_vec();
    value.extend_from_slice(&json);
    // A swap that migrated state: the registry takes the new schema versions together
    // with the migrated values.
    let schema = db.schema_updates(&record.operator_uid, &record.states)?;
    let mut meta: Vec<(&str, Vec<u8>)> = vec![(META_NAME, value)];
    meta.extend(schema.iter().map(|(name, e)| (name.as_str(), e.clone())));
    db.commit(ops, &meta)?;
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Keeps a copy of the database as checkpoint `id` under `retained` and deletes all but the
/// newest `keep` copies. Copies are named by zero-padded id so that name order is age order.
pub fn retain(
    db: &StateDb,
    retained: &std::path::Path,
    id: u64,
    keep: u32,
) -> Result<(), CheckpointError> {
    let io = |source: std::io::Error| CheckpointError::Retain {
        dir: retained.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(retained).map_err(io)?;
    let path = retained.join(format!("{id:020}"));
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(io)?;
    }
    db.copy_to(&path)?;
    let mut copies = retained_copies(retained);
    while copies.len() > keep as usize {
        let oldest = copies.remove(0);
        std::fs::remove_dir_all(&oldest).map_err(io)?;
    }
    Ok(())
}

/// The retained copies under `retained`, oldest first.
pub fn retained_copies(retained: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut copies: Vec<std::path::PathBuf> = std::fs::read_dir(retained)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.len() == 20))
                .collect()
        })
        .unwrap_or_default();
    copies.sort();
    copies
}

/// Opens the state at `dir` and reads its checkpoint. When that fails — the database does
/// not open, or its checkpoint record fails its checksum — the damaged directory is moved
/// aside and the newest retained copy that opens and verifies takes its place. Every step
/// is logged with the directories involved.
pub fn open_or_fall_back(
    dir: &std::path::Path,
    retained: &std::path::Path,
    max_key_groups: u32,
) -> Result<(StateDb, Option<CheckpointRecord>), CheckpointError> {
    let first = match StateDb::open(dir, max_key_groups) {
        Ok(db) => match read_latest(&db) {
            Ok(cp) => return Ok((db, cp)),
            Err(e) => e,
        },
        // Refusals that are not damage (in use, other key-group count) stand.
        Err(e @ StateError::Incompatible { .. }) => return Err(e.into()),
        Err(e) => e.into(),
    };
    let copies = retained_copies(retained);
    if copies.is_empty() {
        return Err(first);
    }
    let aside = crate::config::beside(dir, &format!(".damaged-{}", now_ms()));
    tracing::error!(state = %dir.display(), error = %first, moved_to = %aside.display(),
        "the newest checkpoint is damaged; falling back to a retained one");
    std::fs::rename(dir, &aside).map_err(|e| CheckpointError::Corrupt {
        dir: dir.to_path_buf(),
        why: format!(
            "cannot move the damaged state aside to {}: {e}",
            aside.display()
        ),
    })?;
    for copy in copies.iter().rev() {
        if let Err(e) = copy_dir(copy, dir) {
            tracing::error!(copy = %copy.display(), error = %e, "cannot restore this retained checkpoint");
            let _ = std::fs::remove_dir_all(dir);
            continue;
        }
        match StateDb::open(dir, max_key_groups)
            .map_err(CheckpointError::from)
            .and_then(|db| {
                let cp = read_latest(&db)?;
                Ok((db, cp))
            }) {
            Ok((db, cp)) => {
                tracing::warn!(copy = %copy.display(), checkpoint = cp.as_ref().map_or(0, |c| c.id),
                    "restored a retained checkpoint; records after it are processed again");
                return Ok((db, cp));
            }
            Err(e) => {
                tracing::error!(copy = %copy.display(), error = %e, "this retained checkpoint is damaged too");
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    Err(first)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        // Copies, not links: the restored database will write to its files.
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(id: u64) -> CheckpointRecord {
        CheckpointRecord {
            format: CHECKPOINT_FORMAT,
            id,
            job: "j".into(),
            operator_uid: "op".into(),
            module_sha256: "ab".into(),
            states: Vec::new(),
            operator_states: Vec::new(),
            positions: [("s".to_string(), 42)].into(),
            created_at_ms: 1,
            modules: Vec::new(),
            max_timestamps: Default::default(),
            watermark: None,
        }
    }

    #[test]
    fn commit_then_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), 8).unwrap();
        assert_eq!(read_latest(&db).unwrap(), None);
        commit(&db, vec![WriteOp::Put(vec![1, 0], vec![9])], &record(3)).unwrap();
        assert_eq!(read_latest(&db).unwrap().unwrap(), record(3));
        // Damage the record behind the store's back: it must be refused, not trusted.
        let mut bad = db.get_meta(META_NAME).unwrap().unwrap();
        let last = bad.len() - 3;
        bad[last] ^= 0x55;
        db.commit(Vec::new(), &[(META_NAME, bad)]).unwrap();
        let err = read_latest(&db).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("checksum"), "{err}");
    }
}
