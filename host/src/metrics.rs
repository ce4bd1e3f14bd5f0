//! The live figures of a running job: counters and histograms that the coordinator and the
//! workers update with relaxed atomics, and the admin API reads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::checkpoint::ModuleRecord;
use crate::state::Descriptor;

/// "Not known" in a gauge.
pub const UNKNOWN: u64 = u64::MAX;

/// Upper bounds of the histogram buckets, in seconds (Prometheus `le`).
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram of durations with fixed buckets ([`BUCKETS`]); lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is `+Inf`, the total), and the sum in
    /// seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            cumulative,
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// Counters of a running job, shared by its coordinator and workers.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records processed by the operator.
    pub records_in: AtomicU64,
    /// Records emitted.
    pub records_out: AtomicU64,
    /// Records sent to the dead-letter output.
    pub dead_letters: AtomicU64,
    /// Fresh instances built after failures (traps, timeouts, errors).
    pub restarts: AtomicU64,
    /// Checkpoints completed.
    pub checkpoints: AtomicU64,
    /// Id of the last completed checkpoint (0: none yet).
    pub last_checkpoint: AtomicU64,
    /// When the last checkpoint completed, ms since the epoch.
    pub last_checkpoint_at_ms: AtomicU64,
    /// Records available in the sources but not yet read ([`UNKNOWN`] when no source can
    /// tell).
    pub lag: AtomicU64,
    /// Approximate bytes of state on disk and in RocksDB's memtables, as of the last
    /// checkpoint.
    pub state_bytes: AtomicU64,
    /// Duration of `process` calls (one per batch).
    pub process_seconds: Histogram,
    /// Duration of checkpoints, barrier to durable.
    pub checkpoint_seconds: Histogram,
    /// The last checkpoint's positions, per source.
    pub positions: Mutex<BTreeMap<String, u64>>,
    /// Modules swapped in.
    pub swaps: AtomicU64,
    /// Swaps rolled back.
    pub rollbacks: AtomicU64,
    /// The longest a worker stopped processing for each swap (its barrier and its new
    /// instance).
    pub swap_pause_seconds: Histogram,
    /// The module running now and the operator's module history.
    pub module: Mutex<ModuleView>,
    /// Timers fired.
    pub timers_fired: AtomicU64,
    /// Records kept from the operator as late (sent to the late-data output).
    pub late_records: AtomicU64,
    /// The job's event-time watermark (ms since the epoch; `i64::MIN`: none yet).
    pub watermark: std::sync::atomic::AtomicI64,
    /// The watermark of each source (ms since the epoch; absent: none yet), and whether it
    /// is idle.
    pub source_watermarks: Mutex<BTreeMap<String, (i64, bool)>>,
}

/// The running module, as the admin API shows it.
#[derive(Debug, Clone, Default)]
pub struct ModuleView {
    /// The operator's name (from `describe`).
    pub name: String,
    /// The operator's version.
    pub version: String,
    /// sha256 of the component.
    pub sha256: String,
    /// Its state descriptors.
    pub states: Vec<Descriptor>,
    /// Every module the operator has run, oldest first.
    pub history: Vec<ModuleRecord>,
    /// What happened to the last swap request, when it did not end in a swap: refused
    /// (and why) or rolled back (and why).
    pub last_swap_problem: Option<String>,
}

impl Stats {
    /// Fresh counters (the lag not known yet).
    pub fn new() -> Stats {
        Stats {
            lag: AtomicU64::new(UNKNOWN),
            watermark: std::sync::atomic::AtomicI64::new(i64::MIN),
            ..Stats::default()
        }
    }
}
