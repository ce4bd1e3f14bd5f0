//! Fault injection for crash tests: `EDDY_FAULT=<point>:<n>` aborts the process (as
//! `kill -9` would: no cleanup, no final checkpoint) the n-th time execution reaches the
//! named point. Read once; when unset, a hit costs one relaxed atomic load.
//!
//! Points: `after-process` (a batch's `process` returned, its effects not yet applied),
//! `after-emit` (a batch's outputs handed to the sink, not yet checkpointed),
//! `before-commit` (a checkpoint's outputs are durable, its state write not yet made),
//! `after-commit` (the checkpoint is durable, the workers not yet told), `after-last-commit`
//! (the final checkpoint of a run is durable, the job not yet closed), `after-swap` (the
//! workers run a swapped-in module, on probation), `after-release` (its probation passed
//! and its held outputs went out, no checkpoint names it yet).
//!
//! `EDDY_FAULT=stall-commit:<n>` instead makes the n-th checkpoint's committer hang before
//! its write (a stalled disk or output stream), for the `checkpoint-timeout` test;
//! `EDDY_FAULT=fail-migrate:<n>` makes the n-th worker migration pass of a swap fail, as a
//! failing `migrate` would, while the other workers' passes succeed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Fault {
    point: String,
    at: u64,
    hits: AtomicU64,
}

fn fault() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("EDDY_FAULT").ok()?;
            let (point, at) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
            Some(Fault {
                point: point.to_string(),
                at: at.parse().ok()?,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Marks reaching `point`; aborts the process if `EDDY_FAULT` says so.
pub fn hit(point: &str) {
    if fails(point) {
        eprintln!("EDDY_FAULT: aborting at {point}");
        std::process::abort();
    }
}

/// Whether `EDDY_FAULT` names `point` for this hit (for `fail-…` points the caller then
/// fails as it would on bad input).
pub fn fails(point: &str) -> bool {
    fault().is_some_and(|f| f.point == point && f.hits.fetch_add(1, Ordering::Relaxed) + 1 == f.at)
}

/// Hangs the calling thread for good if `EDDY_FAULT` names `point` for this hit.
pub fn stall(point: &str) {
    if fails(point) {
        eprintln!("EDDY_FAULT: stalling at {point}");
        loop {
            std::thread::park();
        }
    }
}
