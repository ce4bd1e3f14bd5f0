//! Hot swap: replacing the running operator's module without stopping the job.
//!
//! The [`JobControl`] does everything that can fail off the processing path: it stores the
//! component in the job's module folder (`modules/<sha256>.wasm` beside the state, so that
//! a restart can load it again), compiles it, checks its state descriptors against the
//! running module's ([`check_compatible`]), runs its `init` with the job's configuration on
//! a stateless instance, registers new states and links it. Only then does the request
//! reach the coordinator, which swaps at its next checkpoint barrier:
//!
//! 1. It waits until no checkpoint is in flight, then takes one (the rollback point; its
//!    record names the old module).
//! 2. Every worker replaces its instance, keeping its cached state (moved to the new
//!    handles) and the drain of that checkpoint in progress, and migrates the states whose
//!    schema version changed ([`Migration`]: every value of its key groups through the new
//!    module's `migrate`). If any worker cannot start the new module or migrate, every
//!    worker goes back to the rollback point and the old module (no record was processed
//!    in between; what some worker migrated is forgotten) and the request is refused.
//! 3. Probation: for its first `swap-probation-records` records the new module's outputs
//!    are held back in the workers, no checkpoint is taken, and the coordinator keeps a
//!    copy of every record it routes. A failed call beyond `swap-max-failures` rolls back:
//!    every worker forgets its state changes since the rollback point and runs the old
//!    module again, the held outputs are dropped, and the kept records are sent again. Since
//!    nothing of the new module left the host and the state is the checkpoint's, the
//!    replay is exact.
//! 4. At the end of probation (its record count, a due checkpoint, or the end of the run)
//!    every worker confirms it is still good, then writes its held outputs; a checkpoint
//!    follows at once so that the swap is durable, with the module history in its record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::admin::{Control, SavepointTaken, SwapModule, SwapOutcome};
use crate::config::Limits;
use crate::metrics::Stats;
use crate::runtime::{LoadedModule, NoState, Prepared, Runtime};
use crate::state::host::OperatorContext;
use crate::state::{Descriptor, OperatorStates, RegisteredState, StateDb};

/// Longest a swap request waits for the job to reach a barrier.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// A validated swap, on its way to the coordinator.
pub struct SwapRequest {
    /// The new module.
    pub module: LoadedModule,
    /// It, linked for the workers.
    pub prepared: Arc<Prepared<OperatorContext>>,
    /// Its states, by handle.
    pub registered: Vec<RegisteredState>,
    /// Its operator states, by handle.
    pub operator_states: OperatorStates,
    /// Who asked.
    pub requested_by: Option<String>,
    /// Where the outcome goes.
    pub reply: Sender<SwapOutcome>,
}

/// A savepoint asked of the running job.
pub struct SavepointRequest {
    /// Where to write it.
    pub dir: PathBuf,
    /// Whether the job ends at it.
    pub stop: bool,
    /// Where the outcome goes.
    pub reply: Sender<Result<SavepointTaken, String>>,
}

/// What the admin API asks of the coordinator.
pub enum Request {
    /// A validated swap.
    Swap(Box<SwapRequest>),
    /// A savepoint.
    Savepoint(SavepointRequest),
}

/// Swaps the module of a running job and takes its savepoints; cheap to clone. See the
/// module docs.
#[derive(Clone)]
pub struct JobControl {
    pub(super) tx: Sender<Request>,
    pub(super) runtime: Arc<Runtime>,
    pub(super) db: Arc<StateDb>,
    pub(super) uid: String,
    pub(super) limits: Limits,
    pub(super) config_json: Arc<str>,
    pub(super) modules_dir: PathBuf,
    pub(super) stats: Arc<Stats>,
}

impl std::fmt::Debug for JobControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobControl")
            .field("uid", &self.uid)
            .finish()
    }
}

impl Control for JobControl {
    fn savepoint(&self, dir: PathBuf, stop: bool) -> Result<SavepointTaken, String> {
        crate::savepoint::check_folder(&dir).map_err(|e| e.to_string())?;
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Request::Savepoint(SavepointRequest { dir, stop, reply }))
            .map_err(|_| "the job is stopping".to_string())?;
        answer.recv_timeout(ANSWER_WITHIN).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!(
                "no savepoint within {ANSWER_WITHIN:?}; it may still be written: see the job's log"
            ),
            mpsc::RecvTimeoutError::Disconnected => "the job stopped before the savepoint".into(),
        })?
    }

    fn swap(&self, module: SwapModule, requested_by: Option<String>) -> SwapOutcome {
        let outcome = self
            .try_swap(module, requested_by)
            .unwrap_or_else(|reason| SwapOutcome::Refused { reason });
        if let SwapOutcome::Refused { reason } = &outcome {
            tracing::warn!(operator = %self.uid, reason, "swap refused");
            if let Ok(mut m) = self.stats.module.lock() {
                m.last_swap_problem = Some(format!("refused: {reason}"));
            }
        }
        outcome
    }
}

impl JobControl {
    fn try_swap(
        &self,
        module: SwapModule,
        requested_by: Option<String>,
    ) -> Result<SwapOutcome, String> {
        let bytes = match module {
            SwapModule::Bytes(b) => b,
            SwapModule::Path(p) => std::fs::read(&p)
                .map_err(|e| format!("cannot read the module {}: {e}", p.display()))?,
        };
        let path = store_module(&self.modules_dir, &bytes)?;
        let module = self.runtime.load(&path).map_err(|e| e.to_string())?;
        let running = self
            .stats
            .module
            .lock()
            .map_err(|_| "the job's module view is poisoned".to_string())?
            .clone();
        if module.sha256 == running.sha256 {
            return Err(format!(
                "module {} is the one running already",
                short(&module.sha256)
            ));
        }
        let migrations = check_compatible(&running.states, &module.info.states)?;
        // `init` with the job's configuration, on an instance without state: a module
        // that cannot start is refused before anything changes.
        let probe = self
            .runtime
            .prepare::<NoState>(&module, self.limits)
            .map_err(|e| e.to_string())?;
        let mut instance = probe
            .instantiate(NoState)
            .map_err(|e| format!("the new module cannot be instantiated: {e}"))?;
        instance.init(&self.config_json).map_err(|e| {
            format!("the new module fails `init` with the job's [operator] config: {e}")
        })?;
        // A schema change: `migrate` is tried on some stored values first, so that a
        // module that cannot migrate is refused here rather than rolled back.
        for m in &migrations {
            let Some(stored) = self
                .db
                .lookup(&self.uid, &m.state.name)
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let samples = self
                .db
                .sample_values(stored, MIGRATION_SAMPLES)
                .map_err(|e| e.to_string())?;
            for v in samples {
                instance.migrate(&m.state, m.from, &v).map_err(|e| {
                    format!(
                        "the new module cannot migrate state `{}` from schema version {} to {}: {e}; give it a `migrate` that covers version {}, or keep schema version {}",
                        m.state.name, m.from, m.state.schema_version, m.from, m.from
                    )
                })?;
            }
        }
        let registered = self
            .db
            .register_migrating(&self.uid, &module.info.states)
            .map_err(|e| e.to_string())?;
        let operator_states = self
            .db
            .register_operator_states(&self.uid, &module.info.operator_states)
            .map_err(|e| e.to_string())?;
        let prepared = Arc::new(
            self.runtime
                .prepare::<OperatorContext>(&module, self.limits)
                .map_err(|e| e.to_string())?,
        );
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Request::Swap(Box::new(SwapRequest {
                module,
                prepared,
                registered,
                operator_states,
                requested_by,
                reply,
            })))
            .map_err(|_| "the job is stopping".to_string())?;
        answer.recv_timeout(ANSWER_WITHIN).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!(
                "the job did not reach a checkpoint barrier within {ANSWER_WITHIN:?}; the swap may still happen: see GET /jobs"
            ),
            mpsc::RecvTimeoutError::Disconnected => "the job stopped before the swap".into(),
        })
    }
}

/// The first 12 hex digits of a sha256, as messages show it.
pub fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Stores a component in the job's module folder under its sha256 (written to a temporary
/// file, synced, renamed), unless it is there already; returns its path.
pub fn store_module(dir: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    let sha = hex::encode(Sha256::digest(bytes));
    let path = dir.join(format!("{sha}.wasm"));
    if path.exists() {
        return Ok(path);
    }
    let failed = |e: std::io::Error| {
        format!(
            "cannot store the module in {}: {e}; check free space and permissions there",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    crate::io::write_file_durably(&path, bytes).map_err(failed)?;
    Ok(path)
}

/// A state whose schema version a swap changes: every worker rewrites its values with the
/// new module's `migrate` right after the swap, before the new module processes a record.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The state's handle in the new module.
    pub handle: u32,
    /// Its descriptor in the new module.
    pub state: Descriptor,
    /// The schema version its values are stored with.
    pub from: u32,
}

/// Whether a module with states `new` can take over from one with states `running`: every
/// running state must be declared again with the same kind; one whose schema version
/// changes is migrated (returned); new states start empty. The error says which state and
/// what to do.
pub fn check_compatible(
    running: &[Descriptor],
    new: &[Descriptor],
) -> Result<Vec<Migration>, String> {
    let mut migrations = Vec::new();
    for r in running {
        let Some((handle, n)) = new.iter().enumerate().find(|(_, n)| n.name == r.name) else {
            return Err(format!(
                "the new module does not declare state `{}` ({} state) that the running module keeps; a swap keeps every state: declare it in the new module (unused if need be)",
                r.name, r.kind
            ));
        };
        if n.kind != r.kind {
            return Err(format!(
                "the new module declares state `{}` as {} state, but it is stored as {} state; a swap cannot convert state: keep the kind, or give the new state another name",
                r.name, n.kind, r.kind
            ));
        }
        if let Some(why) = n.codec_conflict(r) {
            return Err(why);
        }
        if n.schema_version != r.schema_version {
            migrations.push(Migration {
                handle: handle as u32,
                state: n.clone(),
                from: r.schema_version,
            });
        }
    }
    Ok(migrations)
}

/// Stored values a swap's migration is tried on before the swap is accepted.
const MIGRATION_SAMPLES: usize = 64;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::StateKind;

    fn d(name: &str, kind: StateKind, v: u32) -> Descriptor {
        Descriptor {
            name: name.into(),
            kind,
            schema_version: v,
            ttl: None,
            codec: None,
        }
    }

    #[test]
    fn compatibility_names_the_state_and_the_fix() {
        let running = [
            d("count", StateKind::Value, 1),
            d("seen", StateKind::Map, 1),
        ];
        let reordered = [
            d("new", StateKind::List, 1),
            d("seen", StateKind::Map, 1),
            d("count", StateKind::Value, 1),
        ];
        assert!(check_compatible(&running, &reordered).unwrap().is_empty());
        let e = check_compatible(&running, &[d("count", StateKind::Value, 1)]).unwrap_err();
        assert!(
            e.contains("state `seen`") && e.contains("declare it"),
            "{e}"
        );
        let e = check_compatible(
            &running,
            &[d("count", StateKind::Map, 1), d("seen", StateKind::Map, 1)],
        )
        .unwrap_err();
        assert!(
            e.contains("`count` as map state") && e.contains("stored as value state"),
            "{e}"
        );
        let m = check_compatible(
            &running,
            &[
                d("seen", StateKind::Map, 1),
                d("count", StateKind::Value, 2),
            ],
        )
        .unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].handle, m[0].from), (1, 1));
        assert_eq!(m[0].state, d("count", StateKind::Value, 2));
        // A codec change needs a schema-version change (and so a `migrate`).
        let coded = |codec: &str, v| Descriptor {
            codec: Some(codec.into()),
            ..d("count", StateKind::Value, v)
        };
        let e = check_compatible(&[coded("postcard", 1)], &[coded("json", 1)]).unwrap_err();
        assert!(
            e.contains("codec postcard") && e.contains("bump the schema version"),
            "{e}"
        );
        assert_eq!(
            check_compatible(&[coded("postcard", 1)], &[coded("json", 2)])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn modules_are_stored_once_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a = store_module(dir.path(), b"\0asm one").unwrap();
        let b = store_module(dir.path(), b"\0asm one").unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read(&a).unwrap(), b"\0asm one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
