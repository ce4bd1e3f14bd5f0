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

use crate::checkpoint::{self, CheckpointError, CheckpointRecord};
use crate::config::JobConfig;
use crate::io::key::KeyExtractor;
use crate::io::nats::{LocalServer, NatsConn};
use crate::io::{IoError, Origin, OutputRecord, Sink, SinkFactory, SourceRecord, source};
use crate::runtime::{CallError, LoadedModule, ModuleError, Runtime};
use crate::state::host::OperatorContext;
use crate::state::keys::key_group;
use crate::state::{KeyedState, StateDb, StateError, WriteOp};
use worker::{Drained, FromWorker, ToWorker, Worker};

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
}

/// A job ready to run: module loaded, state opened, checkpoint restored.
pub struct Job {
    cfg: JobConfig,
    module: LoadedModule,
    db: Arc<StateDb>,
    resumed_from: Option<CheckpointRecord>,
    runtime: Arc<Runtime>,
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

/// Where compiled modules are cached for a job: beside its state.
pub fn module_cache_dir(cfg: &JobConfig) -> PathBuf {
    cfg.state
        .dir
        .parent()
        .map(|p| p.join("module-cache"))
        .unwrap_or_else(|| PathBuf::from("module-cache"))
}

impl Job {
    /// Loads the module, opens (or creates) the state and reads its last checkpoint.
    pub fn open(cfg: JobConfig, runtime: Arc<Runtime>) -> Result<Job, JobError> {
        let module = runtime.load(&cfg.operator.module)?;
        let (db, resumed_from) = checkpoint::open_or_fall_back(
            &cfg.state.dir,
            &cfg.state.retained_dir(),
            cfg.state.max_key_groups,
        )?;
        let db = Arc::new(db);
        db.register(&cfg.operator.uid, &module.info.states)?;
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
        Ok(Job {
            cfg,
            module,
            db,
            resumed_from,
            runtime,
            nats,
            _local_server: local,
        })
    }

    /// The loaded module.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// Runs the job until its source is exhausted or `opts.stop` is set; ends with a
    /// checkpoint.
    pub fn run(self, opts: &RunOptions) -> Result<JobReport, JobError> {
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
        let registered = self
            .db
            .register(&cfg.operator.uid, &self.module.info.states)?;
        let prepared = Arc::new(
            self.runtime
                .prepare::<OperatorContext>(&self.module, cfg.operator.limits)?,
        );
        let config_json: Arc<str> = cfg.operator.config_json.as_str().into();
        let stats = Arc::new(Stats::new());
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
                        operator_name: self.module.info.name.clone(),
                        operator_version: self.module.info.version.clone(),
                        module_sha256: self.module.sha256.clone(),
                        sources: streams.iter().map(|s| s.to_string()).collect(),
                        started_at_ms: checkpoint::now_ms(),
                    },
                    stats.clone(),
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
            let keyed = KeyedState::new(self.db.clone(), registered.clone(), budget);
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
            );
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

        let mut coord = Coordinator {
            job: self,
            to_workers,
            ack_rx,
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
        let Coordinator {
            job,
            to_workers,
            last,
            checkpoints,
            max_pause,
            durations,
            pauses,
            ..
        } = coord;
        drop(to_workers);
        for h in handles {
            let _ = h.join();
        }
        result?;
        Ok(JobReport {
            records_in: stats.records_in.load(Ordering::Relaxed),
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
        })
    }
}

struct Coordinator {
    job: Job,
    to_workers: Vec<SyncSender<ToWorker>>,
    ack_rx: Receiver<FromWorker>,
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
            for r in polled {
                if let Some(why) = &r.poison {
                    let stream = self.streams[r.source as usize].clone();
                    poison_to_dead_letter(dead_letter, &stream, &r, why)?;
                    stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let w = if p == 1 {
                    0
                } else {
                    // Flink's assignment: contiguous key-group ranges per worker.
                    key_group(&r.key, groups) as usize * p / groups as usize
                };
                routed[w].push(r);
            }
            for (w, records) in routed.into_iter().enumerate() {
                if !records.is_empty() {
                    self.send(w, ToWorker::Batch(records))?;
                }
            }
            self.poll_acks()?;
            if let Some(c) = &self.committing {
                if c.handle.is_finished() {
                    self.finish_commit()?;
                    last_done = Instant::now();
                } else if let Some(e) = self.overdue() {
                    return Err(e);
                }
            }
            let stop = opts.stop.load(Ordering::Relaxed);
            if !more || stop {
                break;
            }
            // One checkpoint in flight at a time (as Flink's default): while the previous
            // commit runs, processing goes on and the next barrier waits.
            if (self.want_checkpoint || last_cp.elapsed() >= interval)
                && self.committing.is_none()
                && last_done.elapsed() >= min_pause
            {
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
                    lag = %lag,
                    last_checkpoint = self.last.as_ref().map_or(0, |c| c.id),
                    last_commit_ms = self.last_commit.as_secs_f64() * 1e3,
                    "progress"
                );
            }
        }
        self.checkpoint(dead_letter)
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
            match m {
                FromWorker::WantCheckpoint => self.want_checkpoint = true,
                FromWorker::Fatal(e) => return Err(e),
                FromWorker::Ack { .. } => {
                    return Err(JobError::Worker("unexpected checkpoint ack".into()));
                }
            }
        }
        Ok(())
    }

    /// A barrier pass: every worker hands over its dirty state, then all of it and the
    /// positions are committed in one synced batch on the committer thread.
    fn checkpoint(&mut self, dead_letter: &mut dyn Sink) -> Result<(), JobError> {
        // One commit at a time, in order: the previous one must be durable first (and
        // the workers told, so that no drain is in progress at the barrier).
        self.finish_commit()?;
        let started = Instant::now();
        let id = self.next_id;
        for w in 0..self.to_workers.len() {
            self.send(w, ToWorker::Barrier(id))?;
        }
        let mut drains: Vec<Receiver<Drained>> = Vec::new();
        let mut durable = vec![dead_letter.durable()?];
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
                Ok(FromWorker::WantCheckpoint) => {}
                Ok(FromWorker::Fatal(e)) => return Err(e),
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
            positions: self
                .streams
                .iter()
                .zip(&self.positions)
                .map(|(s, p)| (s.to_string(), *p))
                .collect(),
            created_at_ms: checkpoint::now_ms(),
        };
        let db = self.job.db.clone();
        let to_write = record.clone();
        let state = &self.job.cfg.state;
        let retain = (state.retained_checkpoints > 0
            && id.is_multiple_of(u64::from(state.retain_every)))
        .then(|| (state.retained_dir(), state.retained_checkpoints));
        let retained = retain.is_some();
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
        Ok(())
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
