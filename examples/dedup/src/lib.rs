//! `dedup`: drops an event a user repeats within a time window.
//!
//! Input: key = the user; value = `{"user":"u1","event":"e17"}` (other fields are allowed
//! and passed through). A record is emitted unchanged unless the same user's same event id
//! was seen less than `window-ms` before the record's timestamp (every sighting counts, the
//! dropped ones too). Config: `{"window-ms": 60000}` (the default).
//!
//! State: `seen`, a map per user from event id to the timestamp it was last seen, and
//! `swept-at`, when that map was last swept. At most once per window per user, the map is
//! iterated (in pages) and entries older than the window are removed, so it holds about two
//! windows of events. Both states live [`QUIET_USER_TTL`] of processing time after their last
//! write: the state of a user who stops sending is gone a day later.

use std::time::Duration;

use eddy_sdk::{Context, Error, MapState, Operator, Record, StateRegistry, ValueState};
use serde::Deserialize;

/// How long a user's state outlives their last event (processing time): one day.
pub const QUIET_USER_TTL: Duration = Duration::from_secs(24 * 3600);

/// The default `window-ms`: one minute.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;

/// The operator's configuration (the job's `[operator] config` table).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// How long an event id stays a duplicate after it was seen, in milliseconds (> 0).
    #[serde(default = "default_window_ms")]
    pub window_ms: i64,
}

fn default_window_ms() -> i64 {
    DEFAULT_WINDOW_MS
}

#[derive(Deserialize)]
struct Input {
    user: String,
    event: String,
}

/// Drops repeated events per user.
pub struct Dedup {
    seen: MapState<String, i64>,
    swept_at: ValueState<i64>,
    window_ms: i64,
}

impl Operator for Dedup {
    const NAME: &'static str = "dedup";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            seen: states.declare("seen").ttl(QUIET_USER_TTL).map(),
            swept_at: states.declare("swept-at").ttl(QUIET_USER_TTL).value(),
            window_ms: DEFAULT_WINDOW_MS,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = serde_json::from_str(config)
            .map_err(|error| Error::invalid_config(format!("dedup config: {error}")))?;
        if config.window_ms <= 0 {
            return Err(Error::invalid_config(format!(
                "dedup config: window-ms must be positive, got {}",
                config.window_ms
            )));
        }
        self.window_ms = config.window_ms;
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let input: Input = serde_json::from_slice(record.value())?;
        if input.user.as_bytes() != record.key() {
            return Err(Error::failed(format!(
                "user {:?} does not match the record key {:?}; key the stream by user",
                input.user,
                String::from_utf8_lossy(record.key())
            )));
        }
        let now = record.timestamp();
        self.sweep(ctx, now)?;
        let last_seen = self.seen.get(ctx, &input.event)?;
        let duplicate = last_seen.is_some_and(|seen| now.saturating_sub(seen) < self.window_ms);
        let seen = last_seen.map_or(now, |seen| seen.max(now));
        self.seen.put(ctx, &input.event, &seen)?;
        if !duplicate {
            ctx.emit(record.key(), record.value());
        }
        Ok(())
    }
}

impl Dedup {
    /// Removes the entries that can no longer make a record a duplicate, at most once per
    /// window per user.
    fn sweep(&self, ctx: &mut Context<'_>, now: i64) -> Result<(), Error> {
        match self.swept_at.get(ctx)? {
            Some(swept_at) if now.saturating_sub(swept_at) < self.window_ms => return Ok(()),
            Some(_) => {}
            None => return self.swept_at.set(ctx, &now),
        }
        // The iterator borrows the context: collect first, then remove.
        let mut expired = Vec::new();
        for entry in self.seen.entries(ctx) {
            let (event, seen) = entry?;
            if now.saturating_sub(seen) >= self.window_ms {
                expired.push(event);
            }
        }
        for event in &expired {
            self.seen.remove(ctx, event)?;
        }
        self.swept_at.set(ctx, &now)
    }
}

eddy_sdk::export_operator!(Dedup);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::ErrorKind;
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    fn event(user: &str, event: &str) -> String {
        format!(r#"{{"user":"{user}","event":"{event}"}}"#)
    }

    /// Whether the record was emitted.
    fn send(harness: &mut Harness<Dedup>, user: &str, id: &str, at: i64) -> bool {
        let value = event(user, id);
        let emitted = harness
            .process_record(RecordBuilder::new(user, &value).timestamp(at))
            .unwrap();
        match emitted.as_slice() {
            [] => false,
            [one] => {
                assert_eq!(one.value_str().unwrap(), value);
                assert_eq!(one.key_str().unwrap(), user);
                true
            }
            more => unreachable!("{more:?}"),
        }
    }

    #[test]
    fn repeats_within_the_default_window_are_dropped() {
        let mut h = Harness::<Dedup>::new();
        assert!(send(&mut h, "u1", "e1", 0));
        assert!(!send(&mut h, "u1", "e1", 59_999));
        assert!(send(&mut h, "u2", "e1", 59_999));
        // Every sighting counts: the drop at 59 999 keeps e1 a duplicate until 119 999.
        assert!(!send(&mut h, "u1", "e1", 119_998));
        assert!(send(&mut h, "u1", "e1", 119_998 + DEFAULT_WINDOW_MS));
    }

    #[test]
    fn config_sets_and_checks_the_window() {
        let mut h = Harness::<Dedup>::new().with_config(r#"{"window-ms": 10}"#);
        assert!(send(&mut h, "u", "e", 100));
        assert!(!send(&mut h, "u", "e", 109));
        assert!(send(&mut h, "u", "e", 119));

        for bad in [r#"{"window-ms": 0}"#, r#"{"window": 5}"#, "not json"] {
            let h = Harness::<Dedup>::new().with_config(bad);
            assert_eq!(
                h.init_result().unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn sweeping_removes_expired_entries_across_pages() {
        let mut h = Harness::<Dedup>::new().with_config(r#"{"window-ms": 1000}"#);
        // 600 events: more than two pages of the default page size.
        let records =
            (0..600).map(|i| RecordBuilder::new("u", event("u", &format!("e{i}"))).timestamp(i));
        let batches = h.process_batch(records).unwrap();
        assert!(batches.iter().all(|emitted| emitted.len() == 1));
        assert_eq!(
            h.map_entries::<String, i64>("seen", "u").unwrap().len(),
            600
        );
        assert_eq!(h.value::<i64>("swept-at", "u").unwrap(), Some(0));

        // At 1 300, everything seen at 300 or before has expired: e0..=e300 go.
        assert!(send(&mut h, "u", "new", 1300));
        let seen: Vec<(String, i64)> = h.map_entries("seen", "u").unwrap();
        assert_eq!(seen.len(), 300);
        assert!(seen.iter().all(|(_, at)| *at >= 301));
        assert_eq!(h.value::<i64>("swept-at", "u").unwrap(), Some(1300));
        // e301 is still a duplicate, e300 no longer is.
        assert!(!send(&mut h, "u", "e301", 1300));
        assert!(send(&mut h, "u", "e300", 1300));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut h = Harness::<Dedup>::new();
        assert!(h.process("u1", r#"{"user":"u1"}"#).is_err());
        let error = h.process("u2", event("u1", "e")).unwrap_err();
        assert!(
            error.message().contains("does not match the record key"),
            "{error}"
        );
    }

    #[test]
    fn golden_input_gives_expected_output() {
        // The same config as job.toml.
        let harness = Harness::<Dedup>::new().with_config(r#"{"window-ms": 10000}"#);
        golden::check(harness, env!("CARGO_MANIFEST_DIR"));
    }
}
