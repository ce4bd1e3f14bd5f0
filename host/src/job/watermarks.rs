//! Event time in the coordinator: each record's timestamp (from the source, a JSON field or
//! a header), the watermark of each source and of the job, idle sources, and which records
//! are late.
//!
//! Rules (docs/ARCHITECTURE.md, decision 12):
//! - A source's watermark is the largest timestamp routed from it, minus
//!   `max-out-of-orderness`, minus 1 ms (Flink's bounded out-of-orderness): no record at or
//!   below it is expected any more.
//! - The job's watermark is the minimum over the sources that are not idle; it never goes
//!   back. Until every such source has given a record there is none (`i64::MIN`).
//! - A source that gave no record for `idle-timeout` (wall clock) is idle and holds
//!   nothing back; its next record makes it active again. When every source is idle the
//!   watermark holds.
//! - Each record carries the job's watermark from before it; with an `[event-time]` table
//!   a record whose `timestamp + allowed-lateness` is at or below that watermark is late.
//!
//! The coordinator routes records in an order a replay reproduces (the journal, for
//! several sources), so the watermark each record carries is the same on a replay, and so
//! is the point at which each event-time timer fires. Idleness follows the wall clock and
//! is the exception: a replay may see a source idle at another record.

use std::time::{Duration, Instant};

use crate::config::{EventTimeConfig, TimestampConfig};
use crate::io::SourceRecord;

/// Per-source event-time bookkeeping and the job's watermark.
#[derive(Debug)]
pub struct Watermarks {
    timestamp: TimestampConfig,
    out_of_orderness: i64,
    lateness: i64,
    diverts_late: bool,
    idle_timeout: Option<Duration>,
    /// The largest timestamp routed, per source.
    max_ts: Vec<Option<i64>>,
    last_record: Vec<Instant>,
    idle: Vec<bool>,
    current: i64,
}

impl Watermarks {
    /// For `n` sources, starting from the largest timestamps and the watermark a
    /// checkpoint recorded.
    pub fn new(
        cfg: &EventTimeConfig,
        restored: Vec<Option<i64>>,
        watermark: Option<i64>,
    ) -> Watermarks {
        let n = restored.len();
        let mut w = Watermarks {
            timestamp: cfg.timestamp.clone(),
            out_of_orderness: cfg.max_out_of_orderness_ms,
            lateness: cfg.allowed_lateness_ms,
            diverts_late: cfg.configured,
            idle_timeout: cfg.idle_timeout,
            max_ts: restored,
            last_record: vec![Instant::now(); n],
            idle: vec![false; n],
            current: watermark.unwrap_or(i64::MIN),
        };
        w.recompute();
        w
    }

    /// The job's watermark.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// The largest timestamp routed per source (what a checkpoint keeps).
    pub fn max_timestamps(&self) -> &[Option<i64>] {
        &self.max_ts
    }

    /// Per source: its watermark (`i64::MIN`: none yet) and whether it is idle.
    pub fn sources(&self) -> impl Iterator<Item = (i64, bool)> + '_ {
        self.max_ts
            .iter()
            .zip(&self.idle)
            .map(|(m, idle)| (m.map_or(i64::MIN, |m| self.source_watermark(m)), *idle))
    }

    fn source_watermark(&self, max_ts: i64) -> i64 {
        max_ts
            .saturating_sub(self.out_of_orderness)
            .saturating_sub(1)
    }

    /// Sets the record's timestamp from where the job file says it is; an error says why
    /// the record has none (it then goes to the dead-letter output).
    pub fn assign(&self, r: &mut SourceRecord) -> Result<(), String> {
        match &self.timestamp {
            TimestampConfig::Record => Ok(()),
            TimestampConfig::JsonField { field } => {
                let v: serde_json::Value = serde_json::from_slice(&r.value).map_err(|e| {
                    format!("the value is not JSON ({e}); [event-time] takes the timestamp from its field `{field}`")
                })?;
                let ts = v.get(field).and_then(serde_json::Value::as_i64).ok_or_else(|| {
                    format!("the value has no integer field `{field}` (the event timestamp in ms, as [event-time] says)")
                })?;
                r.timestamp = ts;
                Ok(())
            }
            TimestampConfig::Header { name } => {
                let h = r
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("the record has no header `{name}` (the event timestamp, as [event-time] says)"))?;
                r.timestamp = h.1.trim().parse().map_err(|_| {
                    format!(
                        "header `{name}` = {:?} is not an integer timestamp in ms",
                        h.1
                    )
                })?;
                Ok(())
            }
        }
    }

    /// Whether a record with timestamp `ts` is late (and kept from the operator).
    pub fn is_late(&self, ts: i64) -> bool {
        self.diverts_late
            && self.current != i64::MIN
            && ts.saturating_add(self.lateness) <= self.current
    }

    /// Takes a routed record of source `source` into account.
    pub fn observe(&mut self, source: usize, ts: i64, now: Instant) {
        let Some(max) = self.max_ts.get_mut(source) else {
            return;
        };
        self.last_record[source] = now;
        let was_idle = std::mem::replace(&mut self.idle[source], false);
        if max.is_none_or(|m| ts > m) {
            *max = Some(ts);
            self.recompute();
        } else if was_idle {
            self.recompute();
        }
    }

    /// Marks sources idle that gave nothing for the idle timeout.
    pub fn tick(&mut self, now: Instant) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        let mut changed = false;
        for (idle, last) in self.idle.iter_mut().zip(&self.last_record) {
            if !*idle && now.duration_since(*last) >= timeout {
                *idle = true;
                changed = true;
            }
        }
        if changed {
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        let mut min: Option<i64> = None;
        for (m, idle) in self.max_ts.iter().zip(&self.idle) {
            if *idle {
                continue;
            }
            let Some(m) = m else {
                // An active source without a record holds the watermark back.
                return;
            };
            let wm = self.source_watermark(*m);
            min = Some(min.map_or(wm, |x| x.min(wm)));
        }
        if let Some(min) = min {
            self.current = self.current.max(min);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(ooo: i64, lateness: i64, idle: Option<Duration>) -> EventTimeConfig {
        EventTimeConfig {
            configured: true,
            timestamp: TimestampConfig::Record,
            max_out_of_orderness_ms: ooo,
            allowed_lateness_ms: lateness,
            idle_timeout: idle,
            late_data: crate::config::SinkConfig::Discard,
            end_of_input: crate::config::EndOfInput::FireTimers,
        }
    }

    #[test]
    fn the_slowest_active_source_holds_the_watermark() {
        let t0 = Instant::now();
        let mut w = Watermarks::new(
            &cfg(100, 0, Some(Duration::from_secs(5))),
            vec![None, None],
            None,
        );
        w.observe(0, 1_000, t0);
        assert_eq!(w.current(), i64::MIN, "source 1 has given nothing yet");
        w.observe(1, 500, t0);
        assert_eq!(w.current(), 399);
        w.observe(0, 2_000, t0 + Duration::from_secs(4));
        assert_eq!(w.current(), 399);
        // Source 1 goes quiet: once idle it holds nothing back.
        w.tick(t0 + Duration::from_secs(6));
        assert_eq!(w.current(), 1_899);
        // Its next record makes it active again; the watermark does not go back.
        w.observe(1, 600, t0 + Duration::from_secs(7));
        assert_eq!(w.current(), 1_899);
        assert!(w.is_late(1_899) && !w.is_late(1_900));
    }

    #[test]
    fn lateness_and_restored_timestamps() {
        let w = Watermarks::new(&cfg(0, 1_000, None), vec![Some(10_000)], None);
        assert_eq!(w.current(), 9_999);
        assert!(w.is_late(8_999) && !w.is_late(9_000));
        let mut off = cfg(0, 0, None);
        off.configured = false;
        assert!(!Watermarks::new(&off, vec![Some(10_000)], None).is_late(0));
        // A checkpointed watermark above the sources' own (idle sources let it pass them)
        // does not go back on a restart.
        let w = Watermarks::new(&cfg(0, 0, None), vec![Some(100)], Some(500));
        assert_eq!(w.current(), 500);
    }

    #[test]
    fn timestamps_come_from_a_field_or_a_header() {
        let mut c = cfg(0, 0, None);
        c.timestamp = TimestampConfig::JsonField { field: "ts".into() };
        let w = Watermarks::new(&c, vec![None], None);
        let mut r = SourceRecord {
            value: br#"{"ts": 1234}"#.to_vec(),
            ..SourceRecord::default()
        };
        w.assign(&mut r).unwrap();
        assert_eq!(r.timestamp, 1234);
        r.value = b"{}".to_vec();
        assert!(w.assign(&mut r).unwrap_err().contains("`ts`"));
        c.timestamp = TimestampConfig::Header { name: "t".into() };
        let w = Watermarks::new(&c, vec![None], None);
        r.headers = vec![("t".into(), "77".into())];
        w.assign(&mut r).unwrap();
        assert_eq!(r.timestamp, 77);
    }
}
