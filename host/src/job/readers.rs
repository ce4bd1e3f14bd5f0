//! Source readers: one thread per source polls it and hands chunks of records to the
//! coordinator through one bounded channel, so reading (a NATS pull, parsing a file)
//! overlaps routing and processing, and several sources merge into one job.
//!
//! Invariant: the chunks of one source arrive in its order, and its `Done` after its last
//! chunk; a reader stops at the first error and reports it. Records still in the channel
//! when the job stops were never routed, so no checkpoint covers them: the next run reads
//! them again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::JobError;
use crate::io::{IoError, SourceRecord, source::Source};

/// Chunks in flight per source: enough that a reader polls while the coordinator routes.
const CHUNKS_PER_SOURCE: usize = 2;

/// How often a reader asks its source for the lag.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// "Not known" in a lag slot.
const UNKNOWN: u64 = u64::MAX;

/// What a reader sends.
enum FromReader {
    /// Records of source `source`, in order.
    Records(usize, Vec<SourceRecord>),
    /// One source is exhausted.
    Done,
    /// Source `source` failed.
    Failed(usize, IoError),
}

/// What [`Readers::next`] gives the coordinator.
pub enum Next {
    /// Records of one source, in its order; each record's `source` is set.
    Records(usize, Vec<SourceRecord>),
    /// Nothing arrived within the wait.
    Idle,
    /// Every source is exhausted.
    Exhausted,
}

/// The reader threads of a job's sources.
pub struct Readers {
    rx: Option<Receiver<FromReader>>,
    names: Vec<Arc<str>>,
    lags: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
    open: usize,
}

impl Readers {
    /// Starts one reader per source; each polls up to `max` records at a time.
    pub fn start(sources: Vec<Box<dyn Source>>, max: usize) -> Result<Readers, JobError> {
        let n = sources.len();
        let (tx, rx) = mpsc::sync_channel(CHUNKS_PER_SOURCE * n.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Readers {
            rx: Some(rx),
            names: sources.iter().map(|s| Arc::from(s.name())).collect(),
            lags: (0..n).map(|_| Arc::new(AtomicU64::new(UNKNOWN))).collect(),
            stop: stop.clone(),
            handles: Vec::with_capacity(n),
            open: n,
        };
        for (index, src) in sources.into_iter().enumerate() {
            let (tx, lag, stop) = (tx.clone(), readers.lags[index].clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name(format!("eddy-source-{index}"))
                .spawn(move || read(index, src, max, &tx, &lag, &stop))
                .map_err(|e| JobError::Worker(format!("cannot start a source thread: {e}")))?;
            readers.handles.push(handle);
        }
        Ok(readers)
    }

    /// The sources' names, by index (the keys of checkpoint positions).
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// The next chunk, waiting up to `wait`.
    pub fn next(&mut self, wait: Duration) -> Result<Next, JobError> {
        loop {
            if self.open == 0 {
                return Ok(Next::Exhausted);
            }
            let Some(rx) = &self.rx else {
                return Ok(Next::Exhausted);
            };
            match rx.recv_timeout(wait) {
                Ok(FromReader::Records(i, records)) => return Ok(Next::Records(i, records)),
                Ok(FromReader::Done) => self.open -= 1,
                Ok(FromReader::Failed(i, e)) => {
                    return Err(JobError::Source(self.names[i].to_string(), e));
                }
                Err(RecvTimeoutError::Timeout) => return Ok(Next::Idle),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(JobError::Worker(
                        "the source threads stopped without saying why".into(),
                    ));
                }
            }
        }
    }

    /// Records available but not yet read, summed over the sources that can tell.
    pub fn lag(&self) -> Option<u64> {
        let known: Vec<u64> = self
            .lags
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .filter(|l| *l != UNKNOWN)
            .collect();
        (!known.is_empty()).then(|| known.iter().sum())
    }

    /// Stops the readers and waits for them (each finishes its current poll).
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblocks readers waiting for room in the channel.
        self.rx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn read(
    index: usize,
    mut src: Box<dyn Source>,
    max: usize,
    tx: &SyncSender<FromReader>,
    lag: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut lag_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut records = Vec::with_capacity(max);
        let more = match src.poll(&mut records, max) {
            Ok(more) => more,
            Err(e) => {
                let _ = tx.send(FromReader::Failed(index, e));
                return;
            }
        };
        for r in &mut records {
            r.source = index as u32;
        }
        if lag_at.is_none_or(|t| t.elapsed() >= LAG_EVERY) {
            lag.store(src.lag().unwrap_or(UNKNOWN), Ordering::Relaxed);
            lag_at = Some(Instant::now());
        }
        if !records.is_empty() && tx.send(FromReader::Records(index, records)).is_err() {
            return;
        }
        if !more {
            let _ = tx.send(FromReader::Done);
            return;
        }
    }
}
