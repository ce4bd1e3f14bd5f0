//! Time: fired [`Timer`]s and their [`TimeDomain`]s.
//!
//! An operator registers timers for the current key through the
//! [`Context`](crate::Context) (`register_event_time_timer` and friends) and handles them in
//! [`Operator::on_timer`](crate::Operator::on_timer). Event-time timers fire when the job's
//! watermark reaches their timestamp; processing-time timers when the host's wall clock does.
//! A timer is identified by (key, domain, timestamp): registering it again changes nothing,
//! and it fires once.

/// The clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeDomain {
    /// The job's watermark: derived from record timestamps, deterministic on replay.
    EventTime,
    /// The host's wall clock.
    ProcessingTime,
}

/// A timer that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// When it was set to fire (ms since the Unix epoch, in its domain's clock).
    pub timestamp: i64,
    /// Which clock.
    pub domain: TimeDomain,
}

/// The watermark before any record has set one: no time has passed.
pub const NO_WATERMARK: i64 = i64::MIN;
