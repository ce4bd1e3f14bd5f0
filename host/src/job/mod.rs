//! The job: loads the module, opens the state, restores the last checkpoint, and runs the
//! coordinator loop — source → key-group routing → workers → sinks — with checkpoint
//! barriers on an interval.
//!
//! Architecture invariant: a checkpoint's positions are those of the last record the
//! coordinator routed before the barrier; since each worker's channel is FIFO, every
//! worker has processed exactly the records up to those positions when it hands over its
//! state. The state writes of all workers and the checkpoint record are committed in one
//! synced RocksDB batch (C1), on a committer thread while processing goes on: the pause is
//! the barrier pass, not the write. The committer first waits until every output the
//! checkpoint covers is durable (acknowledged by the output stream), then commits. Commits happen in checkpoint order, one at a time, and
//! a worker evicts drained entries only once their commit is durable.

pub mod fault;
pub mod journal;
pub mod readers;
pub mod swap;
pub mod watermarks;
pub mod worker;

/// Least records the coordinator reads per poll and sends per message to a worker.
const POLL_RECORDS: usize = 1024;

/// Longest the coordinator waits for records before it looks at checkpoints and stops.
const IDLE_WAIT: Duration = Duration::from_millis(50);

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use crate::admin::SwapOutcome;
use crate::checkpoint::{self, CheckpointError, CheckpointRecord, ModuleChange, ModuleRecord};
use crate::config::JobConfig;
use crate::io::key::KeyExtractor;
use crate::io::nats::{LocalServer, NatsConn};
use crate::io::{IoError, Origin, OutputRecord, Sink, SinkFactory, SourceRecord, source};
use crate::metrics::ModuleView;
use crate::runtime::{CallError, LoadedModule, ModuleError, Prepared, Runtime};
use crate::state::host::OperatorContext;
use crate::state::keys::key_group;
use crate::state::{KeyedState, OperatorStates, RegisteredState, StateDb, StateError, WriteOp};
use swap::{JobControl, Request, SavepointRequest, SwapRequest, short};
use worker::{Drained, FromWorker, SwapTo, ToWorker, Worker};

/// Why a job stopped or could not start. Each names the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The module could not be loaded.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A source or sink failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A source failed while the job ran.
    #[error("source `{0}`: {1}")]
    Source(String, IoError),
    /// The operator failed to start (`init` or instantiation).
    #[error("operator `{0}` failed to start: {1}")]
    Init(String, CallError),
    /// A worker failed in a way that cannot be isolated to a record.
    #[error("worker failed: {0}")]
    Worker(String),
    /// A savepoint could not be written or restored.
    #[error(transparent)]
    Savepoint(#[from] crate::savepoint::SavepointError),
}

/// Restores savepoint `dir` into the job's state directory (which must be empty), for the
/// job file's module: states matched by operator uid and name, `migrate` called for every
/// value of a state whose schema version changed. [`Job::open`] then resumes from it.
pub fn restore_savepoint(
    cfg: &JobConfig,
    runtime: &Runtime,
    dir: &std::path::Path,
    allow_non_restored: bool,
) -> Result<(CheckpointRecord, crate::savepoint::Summary), JobError> {
    use crate::runtime::NoState;
    // What an earlier run left beside its state would be taken for this state's: retained
    // copies (a fallback to them would resume at the old run's positions) and the order
    // journal.
    let leftover = [cfg.state.retained_dir(), cfg.state.journal_path()]
        .into_iter()
        .find(|p| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()) || p.is_file());
    if let Some(p) = leftover {
        return Err(crate::savepoint::SavepointError::Refused(format!(
            "{} belongs to an earlier run of this job's state; a savepoint restores into fresh state: move it away with that state, or give the job another [state] dir",
            p.display()
        ))
        .into());
    }
    let module = runtime.load(&cfg.operator.module)?;
    let prepared = runtime.prepare::<NoState>(&module, cfg.operator.limits)?;
    let mut instance = None;
    let mut migrate = |d: &crate::state::Descriptor, from: u32, bytes: &[u8]| {
        let inst = match instance.as_mut() {
            Some(i) => i,
            None => instance.insert(prepared.instantiate(NoState).map_err(|e| e.to_string())?),
        };
        inst.migrate(d, from, bytes).map_err(|e| {
            // A failed call leaves the instance unusable.
            instance = None;
            e.to_string()
        })
    };
    let target = crate::savepoint::RestoreTarget {
        job: &cfg.name,
        uid: &cfg.operator.uid,
        module_sha256: &module.sha256,
        states: &module.info.states,
        operator_states: &module.info.operator_states,
        max_key_groups: cfg.state.max_key_groups,
        allow_non_restored,
    };
    Ok(crate::savepoint::restore(
        dir,
        &cfg.state.dir,
        &target,
        &mut migrate,
    )?)
}

pub use crate::metrics::Stats;

/// How to run a job (besides its job file).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Set to stop the job (with a final checkpoint).
    pub stop: Arc<AtomicBool>,
    /// Log progress every this often.
    pub progress_every: Option<Duration>,
}

/// What a finished job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Records processed in this run.
    pub records_in: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Records emitted in this run.
    pub records_out: u64,
    /// Records dead-lettered in this run.
    pub dead_letters: u64,
    /// Fresh instances built after failures.
    pub restarts: u64,
    /// Checkpoints completed in this run.
    pub checkpoints: u64,
    /// The checkpoint the run resumed from.
    pub resumed_from: Option<CheckpointRecord>,
    /// The last completed checkpoint.
    pub last_checkpoint: Option<CheckpointRecord>,
    /// Longest time a worker stopped processing for a checkpoint barrier (flushing its
    /// sinks' buffers and draining its dirty state).
    pub max_checkpoint_pause: Duration,
    /// Per completed checkpoint, in order: the time from its barrier to its record being
    /// durable (barrier pass, outputs acknowledged, state and positions committed).
    pub checkpoint_durations: Vec<Duration>,
    /// Per checkpoint, in order: the longest time a worker stopped processing for it (at
    /// the barrier, or for one step of draining its state).
    pub checkpoint_pauses: Vec<Duration>,
    /// Wall time from the first record to the final checkpoint.
    pub elapsed: Duration,
    /// Per swap, in order: the longest a worker stopped processing for it (its barrier,
    /// then its new instance).
    pub swap_pauses: Vec<Duration>,
    /// Per swap, in order: how long the coordinator stopped routing for it (the barrier
    /// pass — workers finish the records already queued to them — and every worker's new
    /// instance).
    pub swap_routing_stops: Vec<Duration>,
    /// Per probation that ended, in order: how long routing stopped for every worker to
    /// confirm (or for the rollback).
    pub probation_end_pauses: Vec<Duration>,
}

/// A job ready to run: module loaded, state opened, checkpoint restored.
pub struct Job {
    cfg: JobConfig,
    module: LoadedModule,
    db: Arc<StateDb>,
    resumed_from: Option<CheckpointRecord>,
    runtime: Arc<Runtime>,
    stats: Arc<Stats>,
    swaps: (mpsc::Sender<Request>, Option<Receiver<Request>>),
    nats: Option<Arc<NatsConn>>,
    // Dropped after `nats`: the local server outlives the connection.
    _local_server: Option<LocalServer>,
}

/// Connects to the job's NATS server; without `[nats] url`, starts a local one with its data
/// beside the job's state (returned, to keep it running).
pub fn connect_nats(cfg: &JobConfig) -> Result<(Arc<NatsConn>, Option<LocalServer>), IoError> {
    match &cfg.nats.url {
        Some(url) => Ok((NatsConn::connect(url)?, None)),
        None => {
            let store = cfg
                .state
                .dir
                .parent()
                .map(|p| p.join("nats"))
                .unwrap_or_else(|| PathBuf::from("nats"));
            let server = LocalServer::start(&store)?;
            tracing::info!(url = server.url(), store = %store.display(), "started a local nats-server");
            Ok((NatsConn::connect(server.url())?, Some(server)))
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("name", &self.cfg.name).finish()
    }
}

fn taken(
    dir: &std::path::Path,
    m: &crate::savepoint::Manifest,
    summary: crate::savepoint::Summary,
    stopped: bool,
) -> crate::admin::SavepointTaken {
    crate::admin::SavepointTaken {
        dir: dir.to_path_buf(),
        checkpoint: m.checkpoint,
        positions: m.positions.clone(),
        entries: summary.entries,
        bytes: summary.bytes,
        stopped,
    }
}

/// Snapshots `db` (just committed) into `copy` (hard links) and writes the savepoint from
/// it on a thread of its own, so that neither the committer nor processing waits for it.
fn write_savepoint_from_copy(db: &StateDb, req: SavepointRequest, copy: PathBuf) {
    if let Err(e) = db.copy_to(&copy) {
        let _ = req
            .reply
            .send(Err(format!("cannot snapshot the state: {e}")));
        return;
    }
    let groups = db.max_key_groups();
    let spawned = std::thread::Builder::new()
        .name("eddy-savepoint".into())
        .spawn(move || {
            let result = StateDb::open(&copy, groups)
                .map_err(|e| e.to_string())
                .and_then(|db| crate::savepoint::write(&db, &req.dir).map_err(|e| e.to_string()));
            let _ = std::fs::remove_dir_all(&copy);
            let _ = req
                .reply
                .send(result.map(|(m, summary)| taken(&req.dir, &m, summary, false)));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the savepoint thread; the savepoint request goes unanswered");
    }
}

/// The environment variable that names a compiled-module cache folder shared by every job
/// (and `eddy inspect-module`) of a machine, instead of one beside each job's state.
pub const MODULE_CACHE_ENV: &str = "EDDY_MODULE_CACHE";

/// Where compiled modules are cached for a job: the folder `EDDY_MODULE_CACHE` names, else
/// `module-cache` beside the job's state.
pub fn module_cache_dir(cfg: &JobConfig) -> PathBuf {
    if let Some(dir) = std::env::var_os(MODULE_CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    cfg.state
        .dir
        .parent()
        .map(|p| p.join("module-cache"))
        .unwrap_or_else(|| PathBuf::from("module-cache"))
}

/// Where a job keeps the modules swapped in while it ran: beside its state.
pub fn modules_dir(cfg: &JobConfig) -> PathBuf {
    cfg.state
        .dir
        .parent()
        .map(|p| p.join("modules"))
        .unwrap_or_else(|| PathBuf::from("modules"))
}

/// A module history entry for `m`, now.
fn module_record(
    m: &LoadedModule,
    change: ModuleChange,
    requested_by: Option<String>,
    reason: Option<String>,
) -> ModuleRecord {
    ModuleRecord {
        sha256: m.sha256.clone(),
        version: m.info.version.clone(),
        path: m.path.clone(),
        change,
        at_ms: checkpoint::now_ms(),
        requested_by,
        reason,
    }
}

/// The worker (of `p`) that owns key group `kg` (of `groups`): contiguous ranges.
fn worker_of(kg: u16, p: usize, groups: u32) -> usize {
    kg as usize * p / groups as usize
}

/// The key groups worker `w` (of `p`) owns: those with [`worker_of`] = `w`.
fn key_groups_of(w: usize, p: usize, groups: u32) -> std::ops::Range<u32> {
    let first = |w: usize| (w * groups as usize).div_ceil(p) as u32;
    first(w)..first(w + 1)
}

/// The module the last checkpoint says was swapped in, when the job file still names a
/// module that the swap replaced (the job file is then outdated, not a new choice).
fn swapped_in<'a>(cp: &'a CheckpointRecord, from_job_file: &str) -> Option<&'a ModuleRecord> {
    let (last, earlier) = cp.modules.split_last()?;
    (last.sha256 == cp.module_sha256
        && last.sha256 != from_job_file
        && last.change != ModuleChange::JobFile
        && earlier.iter().any(|m| m.sha256 == from_job_file))
    .then_some(last)
}

impl Job {
    /// Loads the module, opens (or creates) the state and reads its last checkpoint.
    pub fn open(cfg: JobConfig, runtime: Arc<Runtime>) -> Result<Job, JobError> {
        let mut module = runtime.load(&cfg.operator.module)?;
        let (db, resumed_from) = checkpoint::open_or_fall_back(
            &cfg.state.dir,
            &cfg.state.retained_dir(),
            cfg.state.max_key_groups,
        )?;
        if let Some(rec) = resumed_from
            .as_ref()
            .and_then(|cp| swapped_in(cp, &module.sha256))
        {
            tracing::info!(module = %rec.path.display(), sha256 = short(&rec.sha256), version = rec.version,
                "running the module swapped in while the job ran, not the job file's (which it replaced)");
            module = runtime.load(&rec.path).map_err(|e| match e {
                ModuleError::Read { path, source } => ModuleError::Invalid {
                    path,
                    message: format!(
                        "was swapped in while the job ran and its state needs it, but cannot be read ({source}); put it back, or name the module to run in the job file"
                    ),
                },
                other => other,
            })?;
        }
        let db = Arc::new(db);
        db.register(&cfg.operator.uid, &module.info.states)?;
        db.register_operator_states(&cfg.operator.uid, &module.info.operator_states)?;
        if let Some(cp) = &resumed_from {
            if cp.module_sha256 != module.sha256 {
                tracing::info!(was = %cp.module_sha256, now = %module.sha256,
                    "the operator module changed since the last checkpoint; its state descriptors are compatible");
            }
            tracing::info!(checkpoint = cp.id, positions = ?cp.positions, "resuming from checkpoint");
        }
        let (nats, local) = if cfg.uses_nats() {
            let (c, s) = connect_nats(&cfg)?;
            (Some(c), s)
        } else {
            (None, None)
        };
        let (tx, rx) = mpsc::channel();
        Ok(Job {
            cfg,
            module,
            db,
            resumed_from,
            runtime,
            stats: Arc::new(Stats::new()),
            swaps: (tx, Some(rx)),
            nats,
            _local_server: local,
        })
    }

    /// The loaded module.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// The live figures of the job (also while it runs).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// What swaps the running job's module and takes its savepoints (see [`swap`]); usable
    /// from any thread while [`Job::run`] runs.
    pub fn control(&self) -> JobControl {
        JobControl {
            tx: self.swaps.0.clone(),
            runtime: self.runtime.clone(),
            db: self.db.clone(),
            uid: self.cfg.operator.uid.clone(),
            limits: self.cfg.operator.limits,
            config_json: self.cfg.operator.config_json.as_str().into(),
            modules_dir: modules_dir(&self.cfg),
            stats: self.stats.clone(),
        }
    }

    /// Runs the job until its source is exhausted or `opts.stop` is set; ends with a
    /// checkpoint.
    pub fn run(mut self, opts: &RunOptions) -> Result<JobReport, JobError> {
        let swaps = self
            .swaps
            .1
            .take()
            .ok_or_else(|| JobError::Worker("the job ran already".into()))?;
        let mut history = self
            .resumed_from
            .as_ref()
            .map(|c| c.modules.clone())
            .unwrap_or_default();
        if history.last().map(|m| &m.sha256) != Some(&self.module.sha256) {
            history.push(module_record(
                &self.module,
                ModuleChange::JobFile,
                None,
                None,
            ));
        }
        let cfg = &self.cfg;
        let uid: Arc<str> = cfg.operator.uid.as_str().into();
        let nats = self.nats.as_ref();
        let p = cfg.operator.parallelism as usize;
        // Records per poll and per channel message, whatever the batch size: a hand-off
        // between threads costs microseconds, so it must not happen per record.
        let poll = (cfg.operator.batch_size as usize).max(POLL_RECORDS) * p;
        let mut sources = Vec::with_capacity(cfg.sources.len());
        let mut positions = Vec::with_capacity(cfg.sources.len());
        for s in &cfg.sources {
            let after = self
                .resumed_from
                .as_ref()
                .and_then(|c| c.positions.get(&source::source_name(s)).copied())
                .unwrap_or(0);
            sources.push(source::open(
                s,
                KeyExtractor::new(cfg.key_for(s)),
                after,
                nats,
            )?);
            positions.push(after);
        }
        let sinks = SinkFactory::open(&cfg.sink, nats, &cfg.name, &cfg.operator.uid)?;
        let dead_letters = SinkFactory::open(&cfg.dead_letter, nats, &cfg.name, &cfg.operator.uid)?;
        let mut dead_letter = dead_letters.make();
        let late = if cfg.event_time.configured {
            Some(
                SinkFactory::open(
                    &cfg.event_time.late_data,
                    nats,
                    &cfg.name,
                    &cfg.operator.uid,
                )?
                .make(),
            )
        } else {
            None
        };
        let registered = self
            .db
            .register(&cfg.operator.uid, &self.module.info.states)?;
        let operator_states = self
            .db
            .register_operator_states(&cfg.operator.uid, &self.module.info.operator_states)?;
        let prepared = Arc::new(
            self.runtime
                .prepare::<OperatorContext>(&self.module, cfg.operator.limits)?,
        );
        let config_json: Arc<str> = cfg.operator.config_json.as_str().into();
        let stats = self.stats.clone();
        if let Ok(mut m) = stats.module.lock() {
            *m = ModuleView {
                name: self.module.info.name.clone(),
                version: self.module.info.version.clone(),
                sha256: self.module.sha256.clone(),
                states: self.module.info.states.clone(),
                history: history.clone(),
                last_swap_problem: None,
            };
        }
        let mut readers = readers::Readers::start(sources, poll)?;
        let streams: Arc<[Arc<str>]> = readers.names().into();
        // Kept until the run ends: dropping it stops the server.
        let _admin = match &cfg.admin {
            Some(a) => Some(
                crate::admin::serve(
                    a.listen,
                    crate::admin::JobInfo {
                        name: cfg.name.clone(),
                        operator_uid: cfg.operator.uid.clone(),
                        sources: streams.iter().map(|s| s.to_string()).collect(),
                        started_at_ms: checkpoint::now_ms(),
                    },
                    stats.clone(),
                    Arc::new(self.control()),
                )
                .map_err(JobError::Worker)?,
            ),
            None => None,
        };
        let order = journal::Order::new(
            &streams,
            &cfg.state.journal_path(),
            self.resumed_from.as_ref().map(|c| &c.positions),
            cfg.state.retained_checkpoints,
        )?;
        let budget = cfg.state.cache_bytes / p;

        let (ack_tx, ack_rx) = mpsc::channel::<FromWorker>();
        let mut to_workers: Vec<SyncSender<ToWorker>> = Vec::with_capacity(p);
        let mut handles = Vec::with_capacity(p);
        for index in 0..p {
            let mut keyed = KeyedState::new(self.db.clone(), registered.clone(), budget);
            keyed.load_operator_states(&operator_states, index as u32, p as u32)?;
            let mut instance = prepared
                .instantiate(OperatorContext::new(uid.clone(), keyed))
                .map_err(|e| JobError::Init(uid.to_string(), e))?;
            instance
                .init(&config_json)
                .map_err(|e| JobError::Init(uid.to_string(), e))?;
            let w = Worker::new(
                index,
                uid.clone(),
                streams.clone(),
                prepared.clone(),
                instance,
                config_json.clone(),
                sinks.make(),
                dead_letters.make(),
                stats.clone(),
                cfg.operator.batch_size as usize,
                key_groups_of(index, p, cfg.state.max_key_groups),
                p,
            )?;
            let (tx, rx) = mpsc::sync_channel::<ToWorker>(4);
            let ack = ack_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("eddy-worker-{index}"))
                .spawn(move || w.run(rx, ack))
                .map_err(|e| JobError::Worker(format!("cannot start a worker thread: {e}")))?;
            to_workers.push(tx);
            handles.push(handle);
        }
        drop(ack_tx);
        let restored_ts = streams
            .iter()
            .map(|s| {
                self.resumed_from
                    .as_ref()
                    .and_then(|c| c.max_timestamps.get(&**s).copied())
            })
            .collect();
        let wm = watermarks::Watermarks::new(
            &cfg.event_time,
            restored_ts,
            self.resumed_from.as_ref().and_then(|c| c.watermark),
        );

        let mut coord = Coordinator {
            wm,
            sent_wm: vec![i64::MIN; p],
            late,
            job: self,
            to_workers,
            ack_rx,
            swaps,
            pending_savepoint: None,
            savepoint_at_next: None,
            final_savepoint: None,
            pending_swap: None,
            probation: None,
            misbehaved: None,
            prepared,
            registered,
            operator_states,
            history,
            swap_pauses: Vec::new(),
            ttl_cleaned_at: Instant::now(),
            swap_routing_stops: Vec::new(),
            probation_end_pauses: Vec::new(),
            stats: stats.clone(),
            streams,
            positions,
            order,
            next_id: 0,
            checkpoints: 0,
            last: None,
            max_pause: Duration::ZERO,
            durations: Vec::new(),
            pauses: Vec::new(),
            want_checkpoint: false,
            committing: None,
            last_commit: Duration::ZERO,
        };
        coord.next_id = coord.job.resumed_from.as_ref().map_or(0, |c| c.id) + 1;
        let started = Instant::now();
        let result = coord.pump(&mut readers, &mut *dead_letter, &stats, opts);
        readers.shutdown();
        // Hang up: workers drain their channels and end.
        let result = result.and_then(|()| coord.finish_commit());
        if result.is_ok() {
            fault::hit("after-last-commit");
        }
        if let Some(req) = coord.final_savepoint.take() {
            let answer = match &result {
                Ok(()) => crate::savepoint::write(&coord.job.db, &req.dir)
                    .map(|(m, summary)| taken(&req.dir, &m, summary, true))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("the job failed before the savepoint: {e}")),
            };
            if let Err(e) = &answer {
                tracing::error!(dir = %req.dir.display(), error = %e, "the final savepoint failed");
            } else {
                tracing::info!(dir = %req.dir.display(), "savepoint written; the job stops at it");
            }
            let _ = req.reply.send(answer);
        }
        let Coordinator {
            job,
            to_workers,
            last,
            checkpoints,
            max_pause,
            durations,
            pauses,
            swap_pauses,
            swap_routing_stops,
            probation_end_pauses,
            ..
        } = coord;
        drop(to_workers);
        for h in handles {
            let _ = h.join();
        }
        result?;
        Ok(JobReport {
            records_in: stats.records_in.load(Ordering::Relaxed),
            timers_fired: stats.timers_fired.load(Ordering::Relaxed),
            records_out: stats.records_out.load(Ordering::Relaxed),
            dead_letters: stats.dead_letters.load(Ordering::Relaxed),
            restarts: stats.restarts.load(Ordering::Relaxed),
            checkpoints,
            resumed_from: job.resumed_from,
            last_checkpoint: last,
            max_checkpoint_pause: max_pause,
            checkpoint_durations: durations,
            checkpoint_pauses: pauses,
            elapsed: started.elapsed(),
            swap_pauses,
            swap_routing_stops,
            probation_end_pauses,
        })
    }
}

struct Coordinator {
    /// When expired state was last cleaned up (or the run started).
    ttl_cleaned_at: Instant,
    /// Timestamps, watermarks, late records.
    wm: watermarks::Watermarks,
    /// The watermark each worker has been given (with a record or on its own).
    sent_wm: Vec<i64>,
    /// Where late records go (with an `[event-time]` table).
    late: Option<Box<dyn Sink>>,
    job: Job,
    to_workers: Vec<SyncSender<ToWorker>>,
    ack_rx: Receiver<FromWorker>,
    /// Validated swap requests and savepoint requests.
    swaps: Receiver<Request>,
    /// A savepoint waiting for the checkpoint in flight (or the probation) to end.
    pending_savepoint: Option<SavepointRequest>,
    /// The savepoint the next checkpoint's committer writes.
    savepoint_at_next: Option<SavepointRequest>,
    /// A savepoint to take at the end of the run (`stop`).
    final_savepoint: Option<SavepointRequest>,
    /// A swap waiting for the checkpoint in flight to complete.
    pending_swap: Option<SwapRequest>,
    /// The swapped-in module's probation, while it lasts.
    probation: Option<Probation>,
    /// What the module on probation did, once a worker said it misbehaved.
    misbehaved: Option<String>,
    /// The running module, linked, and its states by handle.
    prepared: Arc<Prepared<OperatorContext>>,
    registered: Vec<RegisteredState>,
    /// The running module's operator states by handle.
    operator_states: OperatorStates,
    /// The operator's module history (carried in every checkpoint record).
    history: Vec<ModuleRecord>,
    swap_pauses: Vec<Duration>,
    swap_routing_stops: Vec<Duration>,
    probation_end_pauses: Vec<Duration>,
    /// Source names, by index.
    streams: Arc<[Arc<str>]>,
    /// Per source: the position of the last record routed.
    positions: Vec<u64>,
    /// The order of the sources' chunks (journaled when there are several).
    order: journal::Order,
    /// The live figures (for the admin API).
    stats: Arc<Stats>,
    next_id: u64,
    checkpoints: u64,
    last: Option<CheckpointRecord>,
    max_pause: Duration,
    durations: Vec<Duration>,
    pauses: Vec<Duration>,
    want_checkpoint: bool,
    committing: Option<Commit>,
    last_commit: Duration,
}

/// A worker's answer to a swap: its pause, or why it could not start the module.
type SwapAnswer = Result<Duration, String>;

/// A swapped-in module on probation (see [`swap`]).
struct Probation {
    /// Records routed since the swap.
    routed: u64,
    /// Copies of them, per worker in routing order: sent again after a rollback.
    kept: Vec<Vec<Vec<SourceRecord>>>,
    /// The module that ran before, to go back to.
    old: Arc<SwapTo>,
    old_module: LoadedModule,
}

/// A checkpoint being written on the committer thread.
struct Commit {
    /// When the barrier was sent.
    barrier: Instant,
    /// When the barrier pass ended and the commit started.
    started: Instant,
    record: CheckpointRecord,
    /// The longest a worker stopped at the barrier.
    barrier_pause: Duration,
    /// A copy of it is kept.
    retained: bool,
    handle: std::thread::JoinHandle<Result<Committed, JobError>>,
}

/// What the committer thread reports.
struct Committed {
    /// From the barrier pass to durable.
    took: Duration,
    /// State writes.
    writes: usize,
    /// The longest drain step of a worker (a pause in its processing).
    step: Duration,
}

impl Coordinator {
    fn pump(
        &mut self,
        readers: &mut readers::Readers,
        dead_letter: &mut dyn Sink,
        stats: &Stats,
        opts: &RunOptions,
    ) -> Result<(), JobError> {
        let cfg = &self.job.cfg;
        let p = self.to_workers.len();
        let groups = cfg.state.max_key_groups;
        let interval = cfg.state.checkpoint_interval;
        let min_pause = cfg.state.checkpoint_min_pause;
        let probation_records = cfg.operator.swap_probation_records;
        let fire_at_end = cfg.event_time.end_of_input == crate::config::EndOfInput::FireTimers;
        let mut last_cp = Instant::now();
        let mut last_done = Instant::now();
        let mut last_progress = Instant::now();
        let mut progress_in = 0u64;
        loop {
            stats.lag.store(
                readers.lag().unwrap_or(crate::metrics::UNKNOWN),
                Ordering::Relaxed,
            );
            let (more, polled) = match self.order.next(readers, IDLE_WAIT)? {
                readers::Next::Records(i, records) => {
                    if let Some(last) = records.last() {
                        self.positions[i] = last.position;
                    }
                    (true, records)
                }
                readers::Next::Idle => (true, Vec::new()),
                readers::Next::Exhausted => (false, Vec::new()),
            };
            let mut routed: Vec<Vec<SourceRecord>> = (0..p).map(|_| Vec::new()).collect();
            let now = Instant::now();
            for mut r in polled {
                if r.poison.is_none()
                    && let Err(why) = self.wm.assign(&mut r)
                {
                    r.poison = Some(why);
                }
                if let Some(why) = &r.poison {
                    let stream = self.streams[r.source as usize].clone();
                    poison_to_dead_letter(dead_letter, &stream, &r, why)?;
                    stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if self.wm.is_late(r.timestamp) {
                    self.late_record(&r)?;
                    continue;
                }
                r.watermark = self.wm.current();
                self.wm.observe(r.source as usize, r.timestamp, now);
                let w = if p == 1 {
                    0
                } else {
                    // Flink's assignment: contiguous key-group ranges per worker.
                    worker_of(key_group(&r.key, groups), p, groups)
                };
                self.sent_wm[w] = self.sent_wm[w].max(r.watermark);
                routed[w].push(r);
            }
            self.wm.tick(now);
            for (w, records) in routed.into_iter().enumerate() {
                if !records.is_empty() {
                    if let Some(p) = self.probation.as_mut() {
                        p.routed += records.len() as u64;
                        p.kept[w].push(records.clone());
                    }
                    self.send(w, ToWorker::Batch(records))?;
                }
            }
            self.advance_workers(self.wm.current())?;
            self.poll_acks()?;
            if self.misbehaved.is_some() {
                self.rollback()?;
            }
            if self.pending_swap.is_none() && self.pending_savepoint.is_none() {
                match self.swaps.try_recv() {
                    Ok(Request::Swap(req)) => self.pending_swap = Some(*req),
                    Ok(Request::Savepoint(req)) if req.stop => {
                        if self.final_savepoint.is_none() {
                            self.final_savepoint = Some(req);
                        } else {
                            let _ = req
                                .reply
                                .send(Err("the job is stopping at a savepoint already".into()));
                        }
                    }
                    Ok(Request::Savepoint(req)) => self.pending_savepoint = Some(req),
                    Err(_) => {}
                }
            }
            if let Some(c) = &self.committing {
                if c.handle.is_finished() {
                    self.finish_commit()?;
                    last_done = Instant::now();
                } else if let Some(e) = self.overdue() {
                    return Err(e);
                }
            }
            let stop = opts.stop.load(Ordering::Relaxed) || self.final_savepoint.is_some();
            let due = self.want_checkpoint || last_cp.elapsed() >= interval;
            if let Some(p) = &self.probation
                && (p.routed >= probation_records || due || !more || stop)
            {
                self.end_probation()?;
                continue;
            }
            if !more {
                // The end of a bounded input: no record will come, every event-time timer
                // is due (as Flink's end of input), unless the job file keeps them.
                if fire_at_end {
                    self.advance_workers(i64::MAX)?;
                }
                break;
            }
            if stop {
                break;
            }
            // A savepoint is a checkpoint whose committer also snapshots the state.
            if self.pending_savepoint.is_some()
                && self.committing.is_none()
                && self.probation.is_none()
            {
                self.savepoint_at_next = self.pending_savepoint.take();
                self.checkpoint(dead_letter)?;
                last_cp = Instant::now();
                continue;
            }
            // A swap waits for the checkpoint in flight, so that its pause is one barrier.
            if self.pending_swap.is_some() && self.committing.is_none() && self.probation.is_none()
            {
                if let Some(req) = self.pending_swap.take() {
                    self.swap(req, dead_letter)?;
                }
                last_cp = Instant::now();
                continue;
            }
            // One checkpoint in flight at a time (as Flink's default): while the previous
            // commit runs, processing goes on and the next barrier waits.
            if due && self.committing.is_none() && last_done.elapsed() >= min_pause {
                self.checkpoint(dead_letter)?;
                last_cp = Instant::now();
            }
            if let Some(every) = opts.progress_every
                && last_progress.elapsed() >= every
            {
                let records_in = stats.records_in.load(Ordering::Relaxed);
                let rate =
                    (records_in - progress_in) as f64 / last_progress.elapsed().as_secs_f64();
                (last_progress, progress_in) = (Instant::now(), records_in);
                let lag = readers
                    .lag()
                    .map_or_else(|| "-".to_string(), |l| l.to_string());
                tracing::info!(
                    records_in,
                    records_out = stats.records_out.load(Ordering::Relaxed),
                    dead_letters = stats.dead_letters.load(Ordering::Relaxed),
                    per_second = rate.round(),
                    positions = ?self.positions,
                    watermark = self.wm.current(),
                    lag = %lag,
                    last_checkpoint = self.last.as_ref().map_or(0, |c| c.id),
                    last_commit_ms = self.last_commit.as_secs_f64() * 1e3,
                    "progress"
                );
            }
        }
        if let Some(req) = self.pending_swap.take() {
            let _ = req.reply.send(SwapOutcome::Refused {
                reason: "the job stopped before the swap".into(),
            });
        }
        self.checkpoint(dead_letter)
    }

    /// Swaps the module in at a checkpoint barrier (see [`swap`]).
    fn swap(&mut self, req: SwapRequest, dead_letter: &mut dyn Sink) -> Result<(), JobError> {
        // Checked against the module running now (another swap may have come first).
        let migrations =
            match swap::check_compatible(&self.job.module.info.states, &req.module.info.states) {
                Ok(m) => m,
                Err(reason) => {
                    let _ = req.reply.send(SwapOutcome::Refused { reason });
                    return Ok(());
                }
            };
        let started = Instant::now();
        let p = self.to_workers.len();
        let to = Arc::new(SwapTo {
            prepared: req.prepared.clone(),
            registered: req.registered.clone(),
            operator_states: req.operator_states.clone(),
            migrations,
            probation: Some((
                Arc::new(std::sync::atomic::AtomicU64::new(0)),
                self.job.cfg.operator.swap_max_failures,
            )),
        });
        let old = Arc::new(SwapTo {
            prepared: self.prepared.clone(),
            registered: self.registered.clone(),
            operator_states: self.operator_states.clone(),
            migrations: Vec::new(),
            probation: None,
        });
        // The rollback point: its record names the module that ran so far. Each worker
        // swaps right behind its barrier.
        let (barrier_stop, mut results) = self.checkpoint_then(dead_letter, Some(&to))?;
        let rollback_point = self.next_id - 1;
        let rest = self.collect_swapped(p - results.len())?;
        results.extend(rest);
        // The longest a worker stopped: its barrier, then its new instance.
        let instances = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .max()
            .copied()
            .unwrap_or_default();
        let pause = barrier_stop + instances;
        tracing::debug!(
            routing_stopped_ms = started.elapsed().as_secs_f64() * 1e3,
            pause_ms = pause.as_secs_f64() * 1e3,
            "swap at checkpoint {rollback_point}"
        );
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(w, r)| r.as_ref().err().map(|e| format!("worker {w}: {e}")))
            .collect();
        if !failed.is_empty() {
            // Every worker goes back to the rollback point and the old module, forgetting
            // what it migrated; no record was processed since.
            self.roll_back_workers(&old)?;
            let reason = format!("the new module could not start: {}", failed.join("; "));
            let _ = req.reply.send(SwapOutcome::Refused { reason });
            return Ok(());
        }
        fault::hit("after-swap");
        let old_module = std::mem::replace(&mut self.job.module, req.module);
        self.prepared = req.prepared;
        self.registered = req.registered;
        self.operator_states = req.operator_states;
        let m = &self.job.module;
        self.history.push(module_record(
            m,
            ModuleChange::Swap,
            req.requested_by.clone(),
            None,
        ));
        self.stats.swaps.fetch_add(1, Ordering::Relaxed);
        self.stats.swap_pause_seconds.observe(pause);
        self.swap_pauses.push(pause);
        self.swap_routing_stops.push(started.elapsed());
        self.publish_module(None);
        tracing::info!(operator = %self.job.cfg.operator.uid, from = short(&old_module.sha256),
            to = short(&m.sha256), version = m.info.version, checkpoint = rollback_point,
            pause_ms = pause.as_secs_f64() * 1e3, requested_by = ?req.requested_by,
            "module swapped; on probation");
        let _ = req.reply.send(SwapOutcome::Swapped {
            checkpoint: rollback_point,
            pause_ms: pause.as_secs_f64() * 1e3,
            module_sha256: m.sha256.clone(),
            version: m.info.version.clone(),
        });
        self.probation = Some(Probation {
            routed: 0,
            kept: (0..p).map(|_| Vec::new()).collect(),
            old,
            old_module,
        });
        Ok(())
    }

    /// Waits for `n` workers' answers to a swap.
    fn collect_swapped(&mut self, n: usize) -> Result<Vec<(usize, SwapAnswer)>, JobError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.ack_rx.recv() {
                Ok(FromWorker::Swapped { worker, result }) => out.push((worker, result)),
                Ok(other) => self.note(other)?,
                Err(_) => return Err(JobError::Worker("all workers stopped".into())),
            }
        }
        Ok(out)
    }

    /// Ends the probation of a swapped-in module: it stands if every worker says it is still
    /// good, and is rolled back otherwise.
    fn end_probation(&mut self) -> Result<(), JobError> {
        if self.probation.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.settle_probation();
        self.probation_end_pauses.push(started.elapsed());
        result
    }

    fn settle_probation(&mut self) -> Result<(), JobError> {
        if self.misbehaved.is_none() {
            let p = self.to_workers.len();
            for w in 0..p {
                self.send(w, ToWorker::Cut)?;
            }
            let mut answers = 0;
            while answers < p {
                match self.ack_rx.recv() {
                    // A worker that misbehaved said so before it answers (one channel).
                    Ok(FromWorker::CutPassed { .. }) => answers += 1,
                    Ok(other) => self.note(other)?,
                    Err(_) => return Err(JobError::Worker("all workers stopped".into())),
                }
            }
            if self.misbehaved.is_none() {
                for w in 0..p {
                    self.send(w, ToWorker::Release)?;
                }
                self.probation = None;
                // Make the swap durable: the next checkpoint's record names the new module.
                self.want_checkpoint = true;
                tracing::info!(operator = %self.job.cfg.operator.uid,
                    sha256 = short(&self.job.module.sha256), "the swapped-in module passed probation");
                fault::hit("after-release");
                return Ok(());
            }
        }
        self.rollback()
    }

    /// Rolls a swap back: the workers forget everything since the rollback point and run the
    /// previous module again, and the records routed since are sent again.
    fn rollback(&mut self) -> Result<(), JobError> {
        let reason = self.misbehaved.take().unwrap_or_default();
        let Some(p) = self.probation.take() else {
            return Ok(());
        };
        self.roll_back_workers(&p.old)?;
        let failed = std::mem::replace(&mut self.job.module, p.old_module);
        self.prepared = p.old.prepared.clone();
        self.registered = p.old.registered.clone();
        self.operator_states = p.old.operator_states.clone();
        let m = &self.job.module;
        let why = format!("module {} {reason}", short(&failed.sha256));
        self.history.push(module_record(
            m,
            ModuleChange::Rollback,
            None,
            Some(why.clone()),
        ));
        self.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
        self.publish_module(Some(format!("rolled back: {why}")));
        tracing::error!(operator = %self.job.cfg.operator.uid, failed = short(&failed.sha256),
            reinstated = short(&m.sha256), reason, records = p.routed,
            "the swapped-in module misbehaved on probation; swap rolled back, its records are processed again");
        for (w, batches) in p.kept.into_iter().enumerate() {
            for records in batches {
                self.send(w, ToWorker::Batch(records))?;
            }
        }
        // The watermarks the workers were given on their own since the rollback point.
        self.sent_wm.iter_mut().for_each(|s| *s = i64::MIN);
        self.advance_workers(self.wm.current())
    }

    /// Gives every worker that has not had it the watermark `wm` (its event-time timers
    /// due at it fire), and shows it in the metrics.
    fn advance_workers(&mut self, wm: i64) -> Result<(), JobError> {
        for w in 0..self.to_workers.len() {
            if wm > self.sent_wm[w] {
                self.sent_wm[w] = wm;
                self.send(w, ToWorker::Watermark(wm))?;
            }
        }
        self.stats.watermark.store(wm, Ordering::Relaxed);
        if let Ok(mut m) = self.stats.source_watermarks.lock() {
            for (s, v) in self.streams.iter().zip(self.wm.sources()) {
                match m.get_mut(&**s) {
                    Some(shown) => *shown = v,
                    None => {
                        m.insert(s.to_string(), v);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends a late record to the late-data output, with why.
    fn late_record(&mut self, r: &SourceRecord) -> Result<(), JobError> {
        let stream = self.streams[r.source as usize].clone();
        let wm = self.wm.current().to_string();
        let ts = r.timestamp.to_string();
        let mut headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.extend([
            ("eddy-late-timestamp", ts.as_str()),
            ("eddy-late-watermark", wm.as_str()),
        ]);
        self.stats.late_records.fetch_add(1, Ordering::Relaxed);
        if let Some(late) = self.late.as_mut() {
            late.write(&[OutputRecord {
                key: &r.key,
                value: &r.value,
                headers: &headers,
                origin: Origin {
                    stream: &stream,
                    position: r.position,
                    index: 0,
                },
            }])?;
        }
        Ok(())
    }

    /// Every worker forgets its state changes since the rollback point (the checkpoint
    /// taken at the swap) and runs `old` again; returns once that checkpoint is durable,
    /// since what the workers process next reads its state.
    fn roll_back_workers(&mut self, old: &Arc<SwapTo>) -> Result<(), JobError> {
        // The rollback point must be durable before the workers read it back (their timer
        // index is rebuilt from RocksDB); they go on draining for it meanwhile.
        self.finish_commit()?;
        let n = self.to_workers.len();
        for w in 0..n {
            self.send(w, ToWorker::Rollback(old.clone()))?;
        }
        let mut answers = 0;
        while answers < n {
            match self.ack_rx.recv() {
                Ok(FromWorker::RolledBack { .. }) => answers += 1,
                // Answers of the module being rolled back.
                Ok(FromWorker::Misbehaved { .. } | FromWorker::CutPassed { .. }) => {}
                Ok(other) => self.note(other)?,
                Err(_) => return Err(JobError::Worker("all workers stopped".into())),
            }
        }
        self.finish_commit()
    }

    /// Shows the running module, its history and the last swap's problem (none after a
    /// swap that stood) in the admin API.
    fn publish_module(&self, problem: Option<String>) {
        let m = &self.job.module;
        if let Ok(mut v) = self.stats.module.lock() {
            v.name.clone_from(&m.info.name);
            v.version.clone_from(&m.info.version);
            v.sha256.clone_from(&m.sha256);
            v.states.clone_from(&m.info.states);
            v.history.clone_from(&self.history);
            v.last_swap_problem = problem;
        }
    }

    fn send(&mut self, w: usize, msg: ToWorker) -> Result<(), JobError> {
        if self.to_workers[w].send(msg).is_err() {
            return Err(self.worker_failure());
        }
        Ok(())
    }

    /// The error a dead worker left behind.
    fn worker_failure(&mut self) -> JobError {
        while let Ok(m) = self.ack_rx.recv() {
            if let FromWorker::Fatal(e) = m {
                return e;
            }
        }
        JobError::Worker("a worker stopped without saying why".into())
    }

    fn poll_acks(&mut self) -> Result<(), JobError> {
        while let Ok(m) = self.ack_rx.try_recv() {
            self.note(m)?;
        }
        Ok(())
    }

    /// Takes a message that may come at any time; an answer nobody waits for is an error.
    fn note(&mut self, m: FromWorker) -> Result<(), JobError> {
        match m {
            FromWorker::WantCheckpoint => self.want_checkpoint = true,
            FromWorker::Misbehaved { worker, error } if self.probation.is_none() => {
                // Cannot happen (a worker does nothing between the end of probation and
                // the coordinator's answer); said loudly rather than dropped if it does.
                return Err(JobError::Worker(format!(
                    "worker {worker} failed after the swap's probation ended: {error}"
                )));
            }
            FromWorker::Misbehaved { worker, error } => {
                if self.misbehaved.is_none() {
                    self.misbehaved =
                        Some(format!("failed on probation (worker {worker}): {error}"));
                }
            }
            FromWorker::Fatal(e) => return Err(e),
            other => {
                return Err(JobError::Worker(format!(
                    "unexpected message from a worker: {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// A barrier pass: every worker hands over its dirty state, then all of it and the
    /// positions are committed in one synced batch on the committer thread.
    fn checkpoint(&mut self, dead_letter: &mut dyn Sink) -> Result<(), JobError> {
        self.checkpoint_then(dead_letter, None).map(|_| ())
    }

    /// A checkpoint; with `swap`, each worker gets it right behind the barrier (so that it
    /// swaps without waiting for the others), and the answers that come during the
    /// barrier pass are returned with the longest barrier stop.
    fn checkpoint_then(
        &mut self,
        dead_letter: &mut dyn Sink,
        swap: Option<&Arc<SwapTo>>,
    ) -> Result<(Duration, Vec<(usize, SwapAnswer)>), JobError> {
        // One commit at a time, in order: the previous one must be durable first (and
        // the workers told, so that no drain is in progress at the barrier).
        self.finish_commit()?;
        let started = Instant::now();
        let id = self.next_id;
        for w in 0..self.to_workers.len() {
            self.send(w, ToWorker::Barrier(id))?;
            if let Some(to) = swap {
                self.send(w, ToWorker::Swap(to.clone()))?;
            }
        }
        let mut swapped = Vec::new();
        let mut drains: Vec<Receiver<Drained>> = Vec::new();
        let mut durable = vec![dead_letter.durable()?];
        if let Some(late) = self.late.as_mut() {
            durable.push(late.durable()?);
        }
        let mut acked = 0;
        let mut longest = Duration::ZERO;
        while acked < self.to_workers.len() {
            match self.ack_rx.recv() {
                Ok(FromWorker::Ack {
                    id: got,
                    ops: part,
                    durable: outputs,
                    pause,
                    ..
                }) if got == id => {
                    longest = longest.max(pause);
                    drains.push(part);
                    durable.extend(outputs);
                    acked += 1;
                }
                Ok(FromWorker::Ack { .. }) => {
                    return Err(JobError::Worker("checkpoint ack out of order".into()));
                }
                Ok(FromWorker::Swapped { worker, result }) if swap.is_some() => {
                    swapped.push((worker, result));
                }
                Ok(other) => self.note(other)?,
                Err(_) => return Err(JobError::Worker("all workers stopped".into())),
            }
        }
        tracing::trace!(
            checkpoint = id,
            barrier_ms = started.elapsed().as_secs_f64() * 1e3,
            "barrier pass"
        );
        let record = CheckpointRecord {
            format: checkpoint::CHECKPOINT_FORMAT,
            id,
            job: self.job.cfg.name.clone(),
            operator_uid: self.job.cfg.operator.uid.clone(),
            module_sha256: self.job.module.sha256.clone(),
            states: self.job.module.info.states.clone(),
            operator_states: self.job.module.info.operator_states.clone(),
            positions: self
                .streams
                .iter()
                .zip(&self.positions)
                .map(|(s, p)| (s.to_string(), *p))
                .collect(),
            created_at_ms: checkpoint::now_ms(),
            modules: self.history.clone(),
            max_timestamps: self
                .streams
                .iter()
                .zip(self.wm.max_timestamps())
                .filter_map(|(s, m)| m.map(|m| (s.to_string(), m)))
                .collect(),
            watermark: Some(self.wm.current()).filter(|w| *w != i64::MIN),
        };
        let db = self.job.db.clone();
        let to_write = record.clone();
        let state = &self.job.cfg.state;
        let retain = (state.retained_checkpoints > 0
            && id.is_multiple_of(u64::from(state.retain_every)))
        .then(|| (state.retained_dir(), state.retained_checkpoints));
        let retained = retain.is_some();
        // The background cleanup of expired state: a compaction (whose filter drops
        // expired values) after this commit, on the committer thread.
        let clean_ttl =
            self.job.db.has_ttl() && self.ttl_cleaned_at.elapsed() >= state.ttl_cleanup_interval;
        if clean_ttl {
            self.ttl_cleaned_at = Instant::now();
        }
        // A savepoint asked for at this checkpoint: written from a RocksDB checkpoint (hard
        // links) taken right after the commit, before any later commit can change it.
        let snapshot = self.savepoint_at_next.take().map(|req| {
            (
                req,
                crate::config::beside(&self.job.cfg.state.dir, &format!(".savepoint-{id}")),
            )
        });
        let handle = std::thread::Builder::new()
            .name("eddy-commit".into())
            .spawn(move || {
                let t = Instant::now();
                // The workers' state as of the barrier, drained while they go on.
                let mut ops: Vec<WriteOp> = Vec::new();
                let mut step = Duration::ZERO;
                for rx in drains {
                    loop {
                        match rx.recv() {
                            Ok(Drained::Ops(part)) => ops.extend(part),
                            Ok(Drained::Done(longest)) => {
                                step = step.max(longest);
                                break;
                            }
                            Err(_) => {
                                return Err(JobError::Worker(
                                    "a worker stopped before handing over its state".into(),
                                ));
                            }
                        }
                    }
                }
                let writes = ops.len();
                // Outputs first: a checkpoint must never cover an output not yet stored.
                for finish in durable {
                    finish()?;
                }
                fault::hit("before-commit");
                fault::stall("stall-commit");
                checkpoint::commit(&db, ops, &to_write)?;
                fault::hit("after-commit");
                if let Some((dir, keep)) = retain {
                    checkpoint::retain(&db, &dir, id, keep)?;
                }
                if let Some((req, copy)) = snapshot {
                    write_savepoint_from_copy(&db, req, copy);
                }
                if clean_ttl {
                    let (t, before) = (Instant::now(), db.approximate_size());
                    db.compact_all();
                    tracing::info!(
                        ms = t.elapsed().as_secs_f64() * 1e3,
                        bytes_before = before,
                        bytes_after = db.approximate_size(),
                        "expired state cleaned up"
                    );
                }
                Ok(Committed {
                    took: t.elapsed(),
                    writes,
                    step,
                })
            })
            .map_err(|e| JobError::Worker(format!("cannot start the committer thread: {e}")))?;
        self.committing = Some(Commit {
            barrier: started,
            started: Instant::now(),
            record,
            barrier_pause: longest,
            retained,
            handle,
        });
        self.next_id += 1;
        self.want_checkpoint = false;
        Ok((longest, swapped))
    }

    /// Waits for the checkpoint being written, if any; then tells the workers it is durable.
    /// The error to stop with when the checkpoint in flight has run past its timeout.
    /// Its writes are already drained from the caches: it cannot be abandoned, only the job
    /// stopped (a restart resumes from the last completed one).
    fn overdue(&self) -> Option<JobError> {
        let c = self.committing.as_ref()?;
        let timeout = self.job.cfg.state.checkpoint_timeout;
        (c.barrier.elapsed() > timeout).then(|| {
            JobError::Worker(format!(
                "checkpoint {} did not complete within checkpoint-timeout ({timeout:?}): is the output stream or the disk stalled? Restart the job to resume from the last completed checkpoint",
                c.record.id
            ))
        })
    }

    fn finish_commit(&mut self) -> Result<(), JobError> {
        while self
            .committing
            .as_ref()
            .is_some_and(|c| !c.handle.is_finished())
        {
            if let Some(e) = self.overdue() {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(c) = self.committing.take() else {
            return Ok(());
        };
        let done = c
            .handle
            .join()
            .map_err(|_| JobError::Worker("the committer thread panicked".into()))??;
        let took = done.took;
        tracing::debug!(checkpoint = c.record.id, writes = done.writes, commit_ms = took.as_secs_f64() * 1e3,
            positions = ?c.record.positions, "checkpoint complete");
        let pause = c.barrier_pause.max(done.step);
        let stats = &self.stats;
        stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        stats.last_checkpoint.store(c.record.id, Ordering::Relaxed);
        stats
            .last_checkpoint_at_ms
            .store(c.record.created_at_ms, Ordering::Relaxed);
        stats
            .checkpoint_seconds
            .observe(c.started.duration_since(c.barrier) + took);
        stats
            .state_bytes
            .store(self.job.db.approximate_size(), Ordering::Relaxed);
        if let Ok(mut p) = stats.positions.lock() {
            p.clone_from(&c.record.positions);
        }
        self.max_pause = self.max_pause.max(pause);
        self.pauses.push(pause);
        let id = c.record.id;
        self.last_commit = took;
        self.durations
            .push(c.started.duration_since(c.barrier) + took);
        self.checkpoints += 1;
        self.order.committed(id, c.retained, &c.record.positions)?;
        self.last = Some(c.record);
        for w in 0..self.to_workers.len() {
            self.send(w, ToWorker::Committed(id))?;
        }
        Ok(())
    }
}

fn poison_to_dead_letter(
    dead_letter: &mut dyn Sink,
    stream: &str,
    r: &SourceRecord,
    why: &str,
) -> Result<(), JobError> {
    tracing::warn!(
        stream,
        position = r.position,
        error = why,
        "unreadable record sent to the dead-letter output"
    );
    let position = r.position.to_string();
    let headers = [
        ("eddy-error", why),
        ("eddy-stream", stream),
        ("eddy-position", position.as_str()),
    ];
    dead_letter.write(&[OutputRecord {
        key: &r.key,
        value: &r.value,
        headers: &headers,
        origin: Origin {
            stream,
            position: r.position,
            index: 0,
        },
    }])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_group_ranges_match_the_routing() {
        for groups in [1u32, 7, 128, 1000] {
            for p in 1..=9usize {
                let mut next = 0;
                for w in 0..p {
                    let r = key_groups_of(w, p, groups);
                    assert_eq!(r.start, next, "contiguous: {groups} groups, {p} workers");
                    next = r.end;
                    for kg in r {
                        assert_eq!(worker_of(kg as u16, p, groups), w);
                    }
                }
                assert_eq!(next, groups);
            }
        }
    }
}
