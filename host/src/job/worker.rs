//! A worker: owns an operator instance and the keyed state of its key groups, runs batches
//! through `process`, and isolates failures.
//!
//! A batch's effects (value-state writes, map/list calls, emits) are applied only when the
//! call succeeds. When it fails (trap, error, timeout, memory limit, malformed result), the
//! worker undoes the state changes, builds a fresh instance and re-runs the batch one
//! record at a time; a record that fails alone goes to the dead-letter output. No record's
//! effects are ever half applied, and the other records of the batch are not lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;

use super::swap::Migration;
use super::{JobError, Stats};
use crate::io::{Durable, Origin, OutputRecord, Sink, SourceRecord};
use crate::runtime::batch::{self, Encoder};
use crate::runtime::{CallError, Instance, Prepared};
use crate::state::host::OperatorContext;
use crate::state::timers::{self, Fired, Timers};
use crate::state::{OperatorStates, RegisteredState, StateKind, WriteOp, wall_clock_ms};

/// Messages from the coordinator to a worker, in stream order.
#[derive(Debug)]
pub enum ToWorker {
    /// Records of this worker's key groups (each carries the watermark it sees: the
    /// event-time timers due at it fire before it).
    Batch(Vec<SourceRecord>),
    /// The job's watermark advanced: fire the event-time timers due at it.
    Watermark(i64),
    /// Everything before this is processed: hand over the dirty state for checkpoint `id`.
    Barrier(u64),
    /// Checkpoint `id` is durable: drained entries may be evicted.
    Committed(u64),
    /// Replace the instance with one of another module (a hot swap, right after a
    /// barrier); answered with [`FromWorker::Swapped`].
    Swap(Arc<SwapTo>),
    /// The end of the swapped-in module's probation: answered with
    /// [`FromWorker::CutPassed`].
    Cut,
    /// The swap stands: write the held outputs and leave probation.
    Release,
    /// The swap is rolled back: forget every state change since the last checkpoint and the
    /// held outputs, and run this (the previous) module again; answered with
    /// [`FromWorker::RolledBack`].
    Rollback(Arc<SwapTo>),
}

impl std::fmt::Debug for SwapTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapTo")
            .field("registered", &self.registered)
            .field("probation", &self.probation)
            .finish()
    }
}

/// The module a worker is to run after a swap or rollback.
pub struct SwapTo {
    /// The linked module.
    pub prepared: Arc<Prepared<OperatorContext>>,
    /// Its states, by handle.
    pub registered: Vec<RegisteredState>,
    /// Its operator states, by handle.
    pub operator_states: OperatorStates,
    /// States whose values the new module migrates before it processes a record.
    pub migrations: Vec<Migration>,
    /// For a swap: the failed calls so far over all workers, and how many are allowed.
    pub probation: Option<(Arc<AtomicU64>, u64)>,
}

/// Firings one pass allows beyond the timers registered when it starts (see
/// `Worker::fire`).
const MAX_FIRINGS_PER_PASS: usize = 1_000_000;

/// Entries a worker drains per step while it goes on processing: a few milliseconds.
const DRAIN_STEP: usize = 8192;

/// A worker's state writes for a checkpoint, sent in steps after its ack.
pub enum Drained {
    /// Some of the writes.
    Ops(Vec<WriteOp>),
    /// All writes are sent; the longest drain step took this long.
    Done(Duration),
}

/// Messages from a worker to the coordinator.
pub enum FromWorker {
    /// The worker's part of checkpoint `id`.
    Ack {
        /// Checkpoint id.
        id: u64,
        /// Worker index.
        worker: usize,
        /// The state writes as of the barrier, drained in steps between batches (copy on
        /// write keeps them as of the barrier); complete once [`Drained::Done`] arrives.
        ops: Receiver<Drained>,
        /// What makes the worker's outputs up to the barrier durable; the checkpoint runs
        /// it before it completes.
        durable: Vec<Durable>,
        /// How long the worker stopped processing for the barrier.
        pause: std::time::Duration,
    },
    /// The cache is over budget: please checkpoint soon so that it can evict.
    WantCheckpoint,
    /// The worker runs the swapped-in module (`Ok`, with how long it stopped), or could not
    /// start it and runs the previous one still (`Err`, why).
    Swapped {
        /// Worker index.
        worker: usize,
        /// The pause, or why the new module could not start.
        result: Result<Duration, String>,
    },
    /// The swapped-in module failed more calls than allowed on probation; the worker
    /// processes nothing more until it is rolled back.
    Misbehaved {
        /// Worker index.
        worker: usize,
        /// What the module did.
        error: String,
    },
    /// The answer to [`ToWorker::Cut`]: everything before it is processed (a worker that
    /// misbehaved sent [`FromWorker::Misbehaved`] before this).
    CutPassed {
        /// Worker index.
        worker: usize,
    },
    /// The worker runs the previous module again, from the last checkpoint's state.
    RolledBack {
        /// Worker index.
        worker: usize,
    },
    /// The worker stopped on an error it cannot isolate.
    Fatal(JobError),
}

impl std::fmt::Debug for FromWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FromWorker::Ack { id, worker, .. } => {
                write!(f, "Ack(checkpoint {id}, worker {worker})")
            }
            FromWorker::WantCheckpoint => f.write_str("WantCheckpoint"),
            FromWorker::Swapped { worker, result } => write!(f, "Swapped({worker}, {result:?})"),
            FromWorker::Misbehaved { worker, error } => {
                write!(f, "Misbehaved({worker}, {error})")
            }
            FromWorker::CutPassed { worker } => write!(f, "CutPassed({worker})"),
            FromWorker::RolledBack { worker } => write!(f, "RolledBack({worker})"),
            FromWorker::Fatal(e) => write!(f, "Fatal({e})"),
        }
    }
}

/// What a worker needs to run.
pub struct Worker {
    /// Index among the job's workers.
    pub index: usize,
    /// Operator uid.
    pub uid: Arc<str>,
    /// Source names by index (the `stream` of output and dead-letter origins).
    pub streams: Arc<[Arc<str>]>,
    /// For fresh instances.
    pub prepared: Arc<Prepared<OperatorContext>>,
    /// The live instance (taken while being rebuilt).
    pub instance: Option<Instance<OperatorContext>>,
    /// `init` configuration.
    pub config_json: Arc<str>,
    /// Output.
    pub sink: Box<dyn Sink>,
    /// Dead-letter output.
    pub dead_letter: Box<dyn Sink>,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// Records per `process` call.
    pub batch_size: usize,
    /// The key groups this worker owns (the coordinator routes their records here).
    pub key_groups: std::ops::Range<u32>,
    /// How many workers the job has.
    pub workers: usize,
    encoder: Encoder,
    value_handles: Vec<u32>,
    is_value: Vec<bool>,
    asked_for_checkpoint: bool,
    /// The drain in progress: where its writes go, and its longest step so far.
    draining: Option<(Sender<Drained>, Duration)>,
    /// A swapped-in module on probation: its outputs are held here.
    probation: Option<Probation>,
    /// The module on probation misbehaved: batches are dropped until the rollback (the
    /// coordinator sends them again).
    halted: bool,
    /// The index of this worker's timers.
    timers: Timers,
    /// Between the end of probation (`Cut`) and the coordinator's decision (`Release` or
    /// `Rollback`): nothing runs, not even processing-time timers.
    cut: bool,
    /// The highest watermark seen.
    watermark: i64,
}

/// What one operator call handles: records (`process`) or fired timers of one timestamp
/// (`on-timer`).
#[derive(Clone, Copy)]
enum Items<'a> {
    Records(&'a [SourceRecord]),
    Timers {
        fired: &'a [Fired],
        domain: u8,
        watermark: i64,
    },
}

impl Items<'_> {
    fn len(&self) -> usize {
        match self {
            Items::Records(r) => r.len(),
            Items::Timers { fired, .. } => fired.len(),
        }
    }

    fn key(&self, i: usize) -> &[u8] {
        match self {
            Items::Records(r) => &r[i].key,
            Items::Timers { fired, .. } => &fired[i].key,
        }
    }
}

/// The stream part of the output ids of a fired timer's emits: its origin's stream, the
/// domain and the timestamp (`nats:clicks@e1700000060000`).
fn timer_stream(stream: &str, domain: u8, timestamp: i64) -> String {
    let d = if domain == timers::EVENT_TIME {
        'e'
    } else {
        'p'
    };
    format!("{stream}@{d}{timestamp}")
}

/// A swapped-in module's probation in one worker.
struct Probation {
    /// Failed calls over all workers since the swap.
    failures: Arc<AtomicU64>,
    /// How many are allowed.
    max_failures: u64,
    /// Outputs held back, with whether each goes to the dead-letter output.
    held: Vec<(bool, HeldOutput)>,
}

/// An output record held back during probation.
struct HeldOutput {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, String)>,
    stream: String,
    position: u64,
    index: u32,
}

impl HeldOutput {
    fn new(r: &OutputRecord<'_>) -> HeldOutput {
        HeldOutput {
            key: r.key.to_vec(),
            value: r.value.to_vec(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stream: r.origin.stream.to_string(),
            position: r.origin.position,
            index: r.origin.index,
        }
    }
}

/// Runs a swap's migrations on the new instance (see [`Migration`]): every value of each
/// state in `groups` goes through the instance's `migrate`, as ordinary cache changes. On
/// an error the instance's host comes back with it, its cache partly migrated: the
/// coordinator then rolls every worker back to the swap's checkpoint.
#[allow(clippy::type_complexity)]
fn migrate(
    mut inst: Instance<OperatorContext>,
    migrations: &[Migration],
    groups: std::ops::Range<u32>,
) -> Result<Instance<OperatorContext>, (String, Box<OperatorContext>)> {
    if migrations.is_empty() {
        return Ok(inst);
    }
    let started = Instant::now();
    // The state leaves the instance while `migrate` calls run on it.
    let db = inst.host().keyed.db().clone();
    let empty = crate::state::KeyedState::new(db, Vec::new(), 0);
    let mut keyed = std::mem::replace(&mut inst.host().keyed, empty);
    let result = (|| {
        if super::fault::fails("fail-migrate") {
            return Err("the migration failed (EDDY_FAULT)".to_string());
        }
        let mut n = 0;
        for m in migrations {
            n += keyed
                .migrate(m.handle, groups.clone(), |v| {
                    inst.migrate(&m.state, m.from, v).map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    format!(
                        "its `migrate` failed on state `{}` (schema version {} to {}): {e}",
                        m.state.name, m.from, m.state.schema_version
                    )
                })?;
        }
        Ok(n)
    })();
    inst.host().keyed = keyed;
    match result {
        Ok(n) => {
            tracing::info!(
                values = n,
                ms = started.elapsed().as_secs_f64() * 1e3,
                first_group = groups.start,
                end_group = groups.end,
                "state migrated"
            );
            Ok(inst)
        }
        Err(why) => Err((why, Box::new(inst.into_host()))),
    }
}

impl Worker {
    /// A worker around an instance that has already run `init`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        uid: Arc<str>,
        streams: Arc<[Arc<str>]>,
        prepared: Arc<Prepared<OperatorContext>>,
        instance: Instance<OperatorContext>,
        config_json: Arc<str>,
        sink: Box<dyn Sink>,
        dead_letter: Box<dyn Sink>,
        stats: Arc<Stats>,
        batch_size: usize,
        key_groups: std::ops::Range<u32>,
        workers: usize,
    ) -> Result<Worker, JobError> {
        let mut instance = instance;
        let timers = Timers::load(&instance.host().keyed, key_groups.clone())
            .map_err(|e| JobError::Worker(format!("cannot read the timers: {e}")))?;
        let mut w = Worker {
            index,
            uid,
            streams,
            prepared,
            instance: Some(instance),
            config_json,
            sink,
            dead_letter,
            stats,
            batch_size: batch_size.max(1),
            key_groups,
            workers,
            encoder: Encoder::default(),
            value_handles: Vec::new(),
            is_value: Vec::new(),
            asked_for_checkpoint: false,
            draining: None,
            probation: None,
            halted: false,
            timers,
            cut: false,
            watermark: i64::MIN,
        };
        w.set_handles();
        Ok(w)
    }

    /// Recomputes the value-state handles from the states of the instance.
    fn set_handles(&mut self) {
        let Some(i) = self.instance.as_mut() else {
            return;
        };
        self.is_value = i
            .host()
            .keyed
            .states()
            .iter()
            .map(|s| s.kind == StateKind::Value)
            .collect();
        let is_value = &self.is_value;
        self.value_handles = (0..is_value.len() as u32)
            .filter(|h| is_value[*h as usize])
            .collect();
    }

    /// An instance of `prepared` around `host`, `init` done; or why not, with `host` back.
    #[allow(clippy::type_complexity)]
    fn build(
        &self,
        prepared: &Prepared<OperatorContext>,
        host: OperatorContext,
    ) -> Result<Instance<OperatorContext>, (String, Box<OperatorContext>)> {
        match prepared.instantiate_or_return(host) {
            Err((e, host)) => Err((format!("cannot be instantiated: {e}"), host)),
            Ok(mut inst) => match inst.init(&self.config_json) {
                Ok(()) => Ok(inst),
                Err(e) => Err((format!("failed `init`: {e}"), Box::new(inst.into_host()))),
            },
        }
    }

    /// Swaps in another module, keeping the state (see [`ToWorker::Swap`]).
    fn swap(&mut self, to: &SwapTo) -> Result<Duration, String> {
        let started = Instant::now();
        let Some(old) = self.instance.take() else {
            return Err("worker has no instance".into());
        };
        let mut host = old.into_host();
        host.keys.clear();
        let old_states = host.keyed.states().to_vec();
        let old_operator_states = host.keyed.operator_states();
        let (worker, workers) = (self.index as u32, self.workers as u32);
        let result = match host
            .keyed
            .remap(to.registered.clone())
            .map_err(|id| format!("state id {id} is not among the new module's states"))
            .and_then(|()| {
                host.keyed
                    .load_operator_states(&to.operator_states, worker, workers)
                    .map_err(|e| format!("cannot read the operator state: {e}"))
            }) {
            Err(why) => Err((why, Box::new(host))),
            Ok(()) => self
                .build(&to.prepared, host)
                .and_then(|inst| migrate(inst, &to.migrations, self.key_groups.clone())),
        };
        match result {
            Ok(inst) => {
                self.instance = Some(inst);
                self.prepared = to.prepared.clone();
                self.set_handles();
                self.probation = to.probation.as_ref().map(|(failures, max)| Probation {
                    failures: failures.clone(),
                    max_failures: *max,
                    held: Vec::new(),
                });
                Ok(started.elapsed())
            }
            Err((why, mut host)) => {
                // Back to the module that ran: no record was processed in between.
                let back = host.keyed.remap(old_states).and_then(|()| {
                    host.keyed
                        .load_operator_states(&old_operator_states, worker, workers)
                        .map_err(|_| 0)
                });
                let restored = match back {
                    Ok(()) => self.build(&self.prepared, *host).map_err(|(e, _)| e),
                    Err(id) => Err(format!("state id {id} cannot be mapped back")),
                };
                match restored {
                    Ok(inst) => self.instance = Some(inst),
                    Err(e) => {
                        return Err(format!(
                            "{why}; and the previous module could not be started again: {e}"
                        ));
                    }
                }
                Err(why)
            }
        }
    }

    /// Rolls a swap back (see [`ToWorker::Rollback`]).
    fn rollback(&mut self, to: &SwapTo) -> Result<(), JobError> {
        // The checkpoint taken at the swap needs this worker's writes as of its barrier.
        while self.draining.is_some() {
            self.drain_step()?;
        }
        self.probation = None;
        self.halted = false;
        let Some(old) = self.instance.take() else {
            return Err(JobError::Worker("worker has no instance".into()));
        };
        let mut host = old.into_host();
        host.keys.clear();
        host.keyed.reset(to.registered.clone());
        host.keyed
            .load_operator_states(&to.operator_states, self.index as u32, self.workers as u32)
            .map_err(|e| JobError::Worker(format!("cannot read the operator state: {e}")))?;
        // The timers are back to the last checkpoint's, as the rest of the state.
        self.timers = Timers::load(&host.keyed, self.key_groups.clone())
            .map_err(|e| JobError::Worker(format!("cannot read the timers: {e}")))?;
        let inst = self.build(&to.prepared, host).map_err(|(e, _)| {
            JobError::Worker(format!(
                "operator `{}`: the previous module could not be started again after a rollback: {e}",
                self.uid
            ))
        })?;
        self.instance = Some(inst);
        self.prepared = to.prepared.clone();
        self.set_handles();
        Ok(())
    }

    /// Writes the outputs held during probation and leaves it.
    fn release(&mut self) -> Result<(), JobError> {
        let Some(p) = self.probation.take() else {
            return Ok(());
        };
        for (dead, h) in &p.held {
            let headers: Vec<(&str, &str)> = h
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = OutputRecord {
                key: &h.key,
                value: &h.value,
                headers: &headers,
                origin: Origin {
                    stream: &h.stream,
                    position: h.position,
                    index: h.index,
                },
            };
            if *dead {
                self.dead_letter.write(&[r])?;
            } else {
                self.sink.write(&[r])?;
            }
        }
        Ok(())
    }

    /// Counts a failed call on probation; true when it is one too many (the worker then
    /// halts and says so).
    fn misbehaved(&mut self, err: &CallError, tx: &Sender<FromWorker>) -> bool {
        let Some(p) = &self.probation else {
            return false;
        };
        if p.failures.fetch_add(1, Ordering::Relaxed) < p.max_failures {
            return false;
        }
        self.halted = true;
        tracing::warn!(operator = %self.uid, worker = self.index, error = %err,
            "the swapped-in module failed on probation; rolling the swap back");
        let _ = tx.send(FromWorker::Misbehaved {
            worker: self.index,
            error: err.to_string(),
        });
        true
    }

    /// Runs until the coordinator hangs up or a fatal error.
    pub fn run(mut self, rx: Receiver<ToWorker>, tx: Sender<FromWorker>) {
        loop {
            // While a drain is in progress, messages are taken as they come and the drain
            // goes on between them; otherwise the worker waits for the next message.
            let msg = if self.draining.is_some() {
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        while self.draining.is_some() {
                            if self.drain_step().is_err() {
                                return;
                            }
                        }
                        return;
                    }
                }
            } else {
                match self
                    .timers
                    .earliest(timers::PROCESSING_TIME)
                    .filter(|_| !self.cut)
                {
                    // Wake for the next processing-time timer.
                    Some(at) => {
                        let wait = Duration::from_millis(
                            at.saturating_sub(wall_clock_ms()).clamp(0, 1000) as u64,
                        );
                        match rx.recv_timeout(wait) {
                            Ok(m) => Some(m),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    None => match rx.recv() {
                        Ok(m) => Some(m),
                        Err(_) => return,
                    },
                }
            };
            let mut res = match msg {
                Some(ToWorker::Batch(records)) => self.process(&records, &tx),
                Some(ToWorker::Watermark(wm)) => {
                    self.watermark = self.watermark.max(wm);
                    self.fire(timers::EVENT_TIME, wm, &tx)
                }
                Some(ToWorker::Barrier(id)) => self.barrier(id, &tx),
                Some(ToWorker::Committed(_)) => {
                    self.evict_if_needed();
                    Ok(())
                }
                Some(ToWorker::Swap(to)) => {
                    let result = self.swap(&to);
                    let _ = tx.send(FromWorker::Swapped {
                        worker: self.index,
                        result,
                    });
                    Ok(())
                }
                Some(ToWorker::Cut) => {
                    self.cut = true;
                    let _ = tx.send(FromWorker::CutPassed { worker: self.index });
                    Ok(())
                }
                Some(ToWorker::Release) => {
                    self.cut = false;
                    self.release()
                }
                Some(ToWorker::Rollback(to)) => {
                    self.cut = false;
                    self.rollback(&to).map(|()| {
                        let _ = tx.send(FromWorker::RolledBack { worker: self.index });
                    })
                }
                None => Ok(()),
            };
            if res.is_ok() && !self.cut && !self.timers.is_empty() {
                res = self.fire(timers::PROCESSING_TIME, wall_clock_ms(), &tx);
            }
            if res.is_ok() && self.draining.is_some() {
                res = self.drain_step();
            }
            if let Err(e) = res {
                let _ = tx.send(FromWorker::Fatal(e));
                return;
            }
        }
    }

    /// Drains one step of the checkpoint in progress and sends its writes.
    fn drain_step(&mut self) -> Result<(), JobError> {
        let started = Instant::now();
        let Some(instance) = self.instance.as_mut() else {
            return Err(JobError::Worker("worker has no instance".into()));
        };
        let keyed = &mut instance.host().keyed;
        let done = keyed.drain_some(DRAIN_STEP);
        let mut ops = keyed.take_drained();
        let done = self.timers.drain_some(DRAIN_STEP, &mut ops) && done;
        let Some((to, longest)) = self.draining.as_mut() else {
            return Ok(());
        };
        *longest = (*longest).max(started.elapsed());
        let lost = || JobError::Worker("the checkpoint stopped taking this worker's state".into());
        if !ops.is_empty() {
            to.send(Drained::Ops(ops)).map_err(|_| lost())?;
        }
        if done {
            let longest = *longest;
            to.send(Drained::Done(longest)).map_err(|_| lost())?;
            self.draining = None;
        }
        Ok(())
    }

    fn host(&mut self) -> Result<&mut OperatorContext, JobError> {
        self.instance
            .as_mut()
            .map(Instance::host)
            .ok_or_else(|| JobError::Worker("worker has no instance".into()))
    }

    fn barrier(&mut self, id: u64, tx: &Sender<FromWorker>) -> Result<(), JobError> {
        let started = Instant::now();
        // The coordinator starts a checkpoint only once the previous one is committed, so
        // no drain is in progress here; finish one anyway rather than mix two.
        while self.draining.is_some() {
            self.drain_step()?;
        }
        let durable = vec![self.sink.durable()?, self.dead_letter.durable()?];
        self.host()?.keyed.begin_drain();
        self.timers.begin_drain();
        let (to, ops) = std::sync::mpsc::channel();
        self.draining = Some((to, Duration::ZERO));
        let _ = tx.send(FromWorker::Ack {
            id,
            worker: self.index,
            ops,
            durable,
            pause: started.elapsed(),
        });
        Ok(())
    }

    fn evict_if_needed(&mut self) {
        self.asked_for_checkpoint = false;
        if let Some(i) = self.instance.as_mut() {
            let keyed = &mut i.host().keyed;
            if keyed.over_budget() {
                keyed.evict_clean();
            }
        }
    }

    /// Processes records of this worker's key groups, `batch_size` per `process` call, and
    /// fires event-time timers as the records' watermarks make them due.
    ///
    /// A timer of key `k` at `T` fires after the record that registered it and before the
    /// first later record of `k` whose watermark is at or past `T`: that is what makes the
    /// state each timer and each record sees the same on a replay, whatever the batches.
    /// Timers already registered are checked before each record (all that are due fire
    /// there); a timer registered during a call and due at a later record of its key in the
    /// same call undoes the call, which is then split at that record.
    pub fn process(
        &mut self,
        records: &[SourceRecord],
        tx: &Sender<FromWorker>,
    ) -> Result<(), JobError> {
        self.run_records(records, tx)?;
        // Timer changes count too: they wait for a checkpoint as dirty state does.
        let pending = self.timers.pending_bytes();
        let over = self.host()?.keyed.over_budget_with(pending);
        if over && !self.asked_for_checkpoint {
            self.asked_for_checkpoint = true;
            let _ = tx.send(FromWorker::WantCheckpoint);
        }
        Ok(())
    }

    fn run_records(
        &mut self,
        records: &[SourceRecord],
        tx: &Sender<FromWorker>,
    ) -> Result<(), JobError> {
        let mut rest = records;
        while let Some(first) = rest.first() {
            if self.halted {
                break;
            }
            if self.timers.key_due(&first.key, first.watermark) {
                self.fire(timers::EVENT_TIME, first.watermark, tx)?;
            }
            // The longest run (up to a batch) in which no record's key has a registered
            // timer due at the record's watermark.
            let n = rest.len().min(self.batch_size);
            let end = rest[1..n]
                .iter()
                .position(|r| self.timers.key_due(&r.key, r.watermark))
                .map_or(n, |p| p + 1);
            let batch = &rest[..end];
            let done = match self.run_batch(Items::Records(batch), true)? {
                Ok(None) => end,
                Ok(Some(j)) => {
                    // No timer the first `j` records register is due at any of them; the
                    // ones due at record `j` fire at the top of the loop.
                    self.call_isolated(Items::Records(&batch[..j]), tx)?;
                    j
                }
                Err(err) => {
                    self.isolate(Items::Records(batch), err, tx)?;
                    end
                }
            };
            self.watermark = self.watermark.max(batch[done - 1].watermark);
            rest = &rest[done..];
        }
        Ok(())
    }

    /// Fires every timer of `domain` due at `upto` (the watermark, or the wall clock), in
    /// (timestamp, key) order, up to `batch_size` per `on-timer` call with each key at most
    /// once per call, so that a key's timers fire in timestamp order. Timers those calls
    /// register fire in the same pass when due, in that order too. At the end of the input
    /// (`upto` = the end of time) only timers up to the latest registered before the pass
    /// fire, so an operator that re-arms its timers cannot make the pass endless; nor can
    /// one that keeps registering the timer it handles: a pass stops after
    /// [`MAX_FIRINGS_PER_PASS`] firings beyond the timers due when it started, and goes on
    /// at the next record or watermark.
    fn fire(&mut self, domain: u8, upto: i64, tx: &Sender<FromWorker>) -> Result<(), JobError> {
        let upto = if upto == i64::MAX {
            match self.timers.latest(domain) {
                Some(latest) => latest,
                None => return Ok(()),
            }
        } else {
            upto
        };
        if domain == timers::EVENT_TIME {
            self.watermark = self.watermark.max(upto);
        }
        // Event-time timers fire at the watermark that made them due.
        let watermark = if domain == timers::EVENT_TIME {
            upto
        } else {
            self.watermark
        };
        let mut budget = self.timers.len() + MAX_FIRINGS_PER_PASS;
        while !self.halted {
            let max = self.batch_size.min(budget);
            if max == 0 {
                tracing::warn!(operator = %self.uid, worker = self.index,
                    "the operator keeps registering timers that are due at once; firing the rest later");
                break;
            }
            let fired = self.timers.take_run(domain, upto, max);
            if fired.is_empty() {
                break;
            }
            budget -= fired.len();
            let items = Items::Timers {
                fired: &fired,
                domain,
                watermark,
            };
            self.call_isolated(items, tx)?;
            self.stats
                .timers_fired
                .fetch_add(fired.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One call, and on its failure the isolation (see [`isolate`](Self::isolate)). The
    /// items must need no split (one record, records checked, or timers).
    fn call_isolated(&mut self, items: Items<'_>, tx: &Sender<FromWorker>) -> Result<(), JobError> {
        match self.run_batch(items, false)? {
            Ok(_) => Ok(()),
            Err(err) => self.isolate(items, err, tx),
        }
    }

    /// After a failed call: a fresh instance, then the items one by one, each that fails
    /// alone to the dead-letter output (records still fire the timers due before them).
    fn isolate(
        &mut self,
        items: Items<'_>,
        err: CallError,
        tx: &Sender<FromWorker>,
    ) -> Result<(), JobError> {
        if self.misbehaved(&err, tx) {
            return Ok(());
        }
        tracing::warn!(operator = %self.uid, worker = self.index, error = %err, items = items.len(),
            "call failed; re-running it item by item");
        self.fresh_instance()?;
        if items.len() == 1 {
            return self.dead_letter_item(items, &err.to_string());
        }
        for i in 0..items.len() {
            let one = match items {
                Items::Records(r) => {
                    if self.timers.key_due(&r[i].key, r[i].watermark) {
                        self.fire(timers::EVENT_TIME, r[i].watermark, tx)?;
                    }
                    Items::Records(&r[i..=i])
                }
                Items::Timers {
                    fired,
                    domain,
                    watermark,
                } => Items::Timers {
                    fired: &fired[i..=i],
                    domain,
                    watermark,
                },
            };
            if self.halted {
                break;
            }
            if let Err(err) = self.run_batch(one, false)? {
                if self.misbehaved(&err, tx) {
                    return Ok(());
                }
                self.fresh_instance()?;
                self.dead_letter_item(one, &err.to_string())?;
            }
        }
        Ok(())
    }

    fn dead_letter_item(&mut self, item: Items<'_>, error: &str) -> Result<(), JobError> {
        match item {
            Items::Records(r) => self.dead_letter(&r[0], error),
            Items::Timers { fired, domain, .. } => {
                let f = &fired[0];
                let timestamp = f.timestamp;
                let (stream, position) = timers::decode_origin(&f.origin).unwrap_or(("", 0));
                let stream = timer_stream(stream, domain, timestamp);
                let what = format!(
                    "{} {timestamp}",
                    if domain == timers::EVENT_TIME {
                        "event-time"
                    } else {
                        "processing-time"
                    }
                );
                tracing::warn!(operator = %self.uid, timer = %what, error,
                    "timer sent to the dead-letter output");
                let uid = self.uid.clone();
                let headers = [
                    ("eddy-error", error),
                    ("eddy-operator", &*uid),
                    ("eddy-timer", what.as_str()),
                ];
                self.write_dead_letter(OutputRecord {
                    key: &f.key,
                    value: &[],
                    headers: &headers,
                    origin: Origin {
                        stream: &stream,
                        position,
                        index: 0,
                    },
                })
            }
        }
    }

    /// Replaces a failed instance (a trapped store cannot be reused), keeping the state.
    fn fresh_instance(&mut self) -> Result<(), JobError> {
        let Some(old) = self.instance.take() else {
            return Err(JobError::Worker("worker has no instance".into()));
        };
        let mut host = old.into_host();
        host.keys.clear();
        let mut inst = self
            .prepared
            .instantiate(host)
            .map_err(|e| JobError::Init(self.uid.to_string(), e))?;
        inst.init(&self.config_json)
            .map_err(|e| JobError::Init(self.uid.to_string(), e))?;
        self.instance = Some(inst);
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn dead_letter(&mut self, r: &SourceRecord, error: &str) -> Result<(), JobError> {
        let stream = self
            .streams
            .get(r.source as usize)
            .cloned()
            .unwrap_or_default();
        tracing::warn!(operator = %self.uid, stream = %stream, position = r.position, error,
            "record sent to the dead-letter output");
        let position = r.position.to_string();
        let uid = self.uid.clone();
        let headers = [
            ("eddy-error", error),
            ("eddy-operator", &*uid),
            ("eddy-stream", &*stream),
            ("eddy-position", position.as_str()),
        ];
        self.write_dead_letter(OutputRecord {
            key: &r.key,
            value: &r.value,
            headers: &headers,
            origin: Origin {
                stream: &stream,
                position: r.position,
                index: 0,
            },
        })
    }

    /// Writes a dead letter (held back while a swapped-in module is on probation).
    fn write_dead_letter(&mut self, out: OutputRecord<'_>) -> Result<(), JobError> {
        match self.probation.as_mut() {
            Some(p) => p.held.push((true, HeldOutput::new(&out))),
            None => self.dead_letter.write(&[out])?,
        }
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One `process` (records) or `on-timer` (fired timers) call. The outer error is fatal
    /// (the job stops); the inner one is the operator's failure, after which nothing of the
    /// call remains applied. With `split`, a call whose records register an event-time
    /// timer due at a later record of the same key is undone too, and `Some(j)` says to
    /// split it before record `j` (the first such record).
    fn run_batch(
        &mut self,
        items: Items<'_>,
        split: bool,
    ) -> Result<Result<Option<usize>, CallError>, JobError> {
        let n = items.len();
        let mut key_index: HashMap<&[u8], u32, RandomState> =
            HashMap::with_capacity_and_hasher(n, RandomState::default());
        let mut item_keys = Vec::with_capacity(n);
        let Some(instance) = self.instance.as_mut() else {
            return Err(JobError::Worker("worker has no instance".into()));
        };
        let host = instance.host();
        host.keys.clear();
        for i in 0..n {
            let key = items.key(i);
            let next = key_index.len() as u32;
            let k = *key_index.entry(key).or_insert_with(|| {
                host.keys.push(key);
                next
            });
            item_keys.push(k);
        }
        let n_keys = host.keys.len() as u32;
        let enc = &mut self.encoder;
        let now = wall_clock_ms();
        host.keyed.set_now(now);
        enc.start(now);
        enc.u32(n_keys);
        for k in 0..n_keys {
            enc.bytes(host.keys.get(k).unwrap_or_default());
        }
        enc.u32(self.value_handles.len() as u32);
        for h in &self.value_handles {
            enc.u32(*h);
        }
        for k in 0..n_keys {
            let key = host.keys.get(k).unwrap_or_default();
            for h in &self.value_handles {
                host.keyed
                    .value_with(*h, key, |v| enc.slot(v))
                    .map_err(|e| JobError::Worker(e.to_string()))?;
            }
        }
        enc.u32(n as u32);
        match items {
            Items::Records(records) => {
                for (r, k) in records.iter().zip(&item_keys) {
                    enc.record(*k, r.timestamp, r.watermark, &r.value, &r.headers);
                }
            }
            Items::Timers {
                fired,
                domain,
                watermark,
            } => {
                for (f, k) in fired.iter().zip(&item_keys) {
                    enc.timer(*k, f.timestamp, domain, watermark);
                }
            }
        }

        host.keyed.begin();
        let started = Instant::now();
        let result = match items {
            Items::Records(_) => instance.process(enc.finish()),
            Items::Timers { .. } => instance.on_timer(enc.finish()),
        };
        self.stats.process_seconds.observe(started.elapsed());
        super::fault::hit("after-process");
        let host = instance.host();
        let out = match result {
            Ok(out) => out,
            Err(CallError::Host(msg)) => {
                host.keyed.rollback();
                return Err(JobError::Worker(format!("state backend failed: {msg}")));
            }
            Err(e) => {
                host.keyed.rollback();
                return Ok(Err(e));
            }
        };
        let is_value = &self.is_value;
        let decoded = match batch::decode(&out, n as u32, n_keys, |h| {
            is_value.get(h as usize).copied().unwrap_or(false)
        }) {
            Ok(d) => d,
            Err(msg) => {
                host.keyed.rollback();
                return Ok(Err(CallError::Trap(format!(
                    "malformed {} result: {msg}",
                    match items {
                        Items::Records(_) => "process",
                        Items::Timers { .. } => "on-timer",
                    }
                ))));
            }
        };
        if split
            && let Items::Records(records) = items
            && let Some(j) = first_due_within(records, &item_keys, &decoded.timer_ops)
        {
            host.keyed.rollback();
            host.keys.clear();
            return Ok(Ok(Some(j)));
        }
        host.keyed.commit();
        for w in &decoded.writes {
            let key = host.keys.get(w.key_index).unwrap_or_default();
            host.keyed
                .value_put(w.handle, key, w.value)
                .map_err(|e| JobError::Worker(e.to_string()))?;
        }
        let streams = &self.streams;
        for op in &decoded.timer_ops {
            let i = op.item as usize;
            let key = items.key(i);
            if !op.register {
                self.timers.delete(key, op.domain, op.timestamp);
                continue;
            }
            // A fired timer's timers inherit its origin.
            let encoded;
            let origin: &[u8] = match items {
                Items::Records(r) => {
                    encoded = timers::encode_origin(
                        streams.get(r[i].source as usize).map_or("", |s| &**s),
                        r[i].position,
                    );
                    &encoded
                }
                Items::Timers { fired, .. } => &fired[i].origin,
            };
            self.timers.register(key, op.domain, op.timestamp, origin);
        }
        host.keys.clear();
        // Each emitting item's output stream (an index into the records' streams, or into
        // the fired timers' names: one per run of timers of one stream and timestamp, a
        // run usually having one) and position.
        // (None needed when nothing was emitted, as with most timers.)
        let named = if decoded.emits.is_empty() { 0 } else { n };
        let mut timer_streams: Vec<String> = Vec::new();
        let names: Vec<(usize, u64)> = match items {
            Items::Records(r) => r[..named]
                .iter()
                .map(|r| (r.source as usize, r.position))
                .collect(),
            Items::Timers { fired, domain, .. } => {
                let mut last: Option<(&str, i64)> = None;
                fired[..named]
                    .iter()
                    .map(|f| {
                        let (stream, position) =
                            timers::decode_origin(&f.origin).unwrap_or(("", 0));
                        if last != Some((stream, f.timestamp)) {
                            last = Some((stream, f.timestamp));
                            timer_streams.push(timer_stream(stream, domain, f.timestamp));
                        }
                        (timer_streams.len() - 1, position)
                    })
                    .collect()
            }
        };
        let stream_names: Vec<&str> = match items {
            Items::Records(_) => streams.iter().map(|s| &**s).collect(),
            Items::Timers { .. } => timer_streams.iter().map(String::as_str).collect(),
        };
        let outputs: Vec<OutputRecord<'_>> = decoded
            .emits
            .iter()
            .map(|e| {
                let (stream, position) = names[e.record as usize];
                OutputRecord {
                    key: e.key,
                    value: e.value,
                    headers: &e.headers,
                    origin: Origin {
                        stream: stream_names.get(stream).copied().unwrap_or(""),
                        position,
                        index: e.index,
                    },
                }
            })
            .collect();
        match self.probation.as_mut() {
            Some(p) => p
                .held
                .extend(outputs.iter().map(|o| (false, HeldOutput::new(o)))),
            None => self.sink.write(&outputs)?,
        }
        super::fault::hit("after-emit");
        if let Items::Records(_) = items {
            self.stats.records_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.stats
            .records_out
            .fetch_add(outputs.len() as u64, Ordering::Relaxed);
        Ok(Ok(None))
    }
}

/// The first record of `records` before which an event-time timer that an earlier record
/// of its key registered in the same call is due (its watermark reached the timer).
fn first_due_within(
    records: &[SourceRecord],
    item_keys: &[u32],
    ops: &[batch::TimerOp],
) -> Option<usize> {
    let mut first: Option<usize> = None;
    // The last record of each key (by key index), computed when first needed.
    let mut last_of: Vec<usize> = Vec::new();
    for op in ops {
        if !op.register || op.domain != timers::EVENT_TIME {
            continue;
        }
        let i = op.item as usize;
        let Some(k) = item_keys.get(i) else { continue };
        if last_of.is_empty() {
            let n_keys = item_keys.iter().max().map_or(0, |m| *m as usize + 1);
            last_of = vec![0; n_keys];
            for (j, key) in item_keys.iter().enumerate() {
                last_of[*key as usize] = j;
            }
        }
        // Watermarks never go down along the records, so the last record of the key tells
        // whether any is due; only then look for the first.
        let last = last_of[*k as usize];
        if last <= i || records[last].watermark < op.timestamp {
            continue;
        }
        if let Some(j) =
            (i + 1..=last).find(|&j| item_keys[j] == *k && records[j].watermark >= op.timestamp)
        {
            first = Some(first.map_or(j, |f| f.min(j)));
        }
    }
    first
}
