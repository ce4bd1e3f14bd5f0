//! `sessionize`: cuts each user's clickstream into sessions — runs of clicks less than 30
//! minutes apart, in event time — and emits one summary per session when it is over.
//!
//! Input: key = the user; value = `{"user":"u1","page":"/home"}`; the record's timestamp is
//! when the click happened. Clicks may arrive out of order (the job's
//! `max-out-of-orderness` says how far); a late click can still extend a session, or bridge
//! two into one, until the watermark passes the session's end.
//!
//! Output, keyed by the user, once per session when the watermark passes 30 minutes after
//! its last click: `{"user":"u1","start":…,"end":…,"clicks":7,"pages":["/home","/cart"]}` —
//! `start` and `end` the timestamps of its first and last click, `pages` the pages visited,
//! each once, in the order of their first visit.
//!
//! Config: `{"gap-ms": 1800000}` (the default; positive).
//!
//! State: the session windows of [`eddy_sdk::window`] named `sessions`: `sessions/windows`
//! (the user's open sessions) and `sessions/elements` (their clicks' pages).

use eddy_sdk::window::{Process, ProcessWindowFunction, SessionWindows, Window, Windows};
use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer};
use serde::{Deserialize, Serialize};

/// The default `gap-ms`: 30 minutes without a click end a session.
pub const DEFAULT_GAP_MS: i64 = 30 * 60_000;

/// The operator's configuration (the job's `[operator] config` table).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// How long without a click ends a session, in milliseconds.
    #[serde(default = "default_gap_ms")]
    pub gap_ms: i64,
}

fn default_gap_ms() -> i64 {
    DEFAULT_GAP_MS
}

#[derive(Deserialize)]
struct Click {
    user: String,
    page: String,
}

/// One session's summary, as emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The user.
    pub user: String,
    /// The first click's timestamp.
    pub start: i64,
    /// The last click's timestamp.
    pub end: i64,
    /// How many clicks.
    pub clicks: usize,
    /// The pages, each once, in the order of their first visit.
    pub pages: Vec<String>,
}

/// Summarizes a session from its clicks' pages (in timestamp order).
pub struct Summarize;

impl ProcessWindowFunction for Summarize {
    type Input = String;
    type Output = Summary;

    fn process(&self, key: &[u8], _: &Window, clicks: Vec<(i64, String)>) -> Summary {
        let start = clicks.first().map_or(0, |(at, _)| *at);
        let end = clicks.last().map_or(0, |(at, _)| *at);
        let count = clicks.len();
        let mut pages: Vec<String> = Vec::new();
        for (_, page) in clicks {
            if !pages.contains(&page) {
                pages.push(page);
            }
        }
        Summary {
            user: String::from_utf8_lossy(key).into_owned(),
            start,
            end,
            clicks: count,
            pages,
        }
    }
}

/// Sessionizes clicks per user.
pub struct Sessionize {
    sessions: Windows<Process<Summarize>>,
}

fn emit(ctx: &mut Context<'_>, summaries: impl IntoIterator<Item = Summary>) -> Result<(), Error> {
    for summary in summaries {
        ctx.emit(ctx.key(), serde_json::to_vec(&summary)?);
    }
    Ok(())
}

impl Operator for Sessionize {
    const NAME: &'static str = "sessionize";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            sessions: SessionWindows::with_gap(DEFAULT_GAP_MS)
                .process(states, "sessions", Summarize),
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = serde_json::from_str(config)
            .map_err(|error| Error::invalid_config(format!("sessionize config: {error}")))?;
        self.sessions
            .reconfigure(SessionWindows::with_gap(config.gap_ms))
            .map_err(|error| Error::invalid_config(format!("sessionize config: {error}")))
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let click: Click = serde_json::from_slice(record.value())?;
        if click.user.as_bytes() != record.key() {
            return Err(Error::failed(format!(
                "user {:?} does not match the record key {:?}; key the stream by user",
                click.user,
                String::from_utf8_lossy(record.key())
            )));
        }
        // Without allowed lateness a session never fires twice, and the host keeps late
        // clicks from the operator: nothing fires or drops here, but handle it anyway.
        let added = self.sessions.add(ctx, click.page)?;
        emit(ctx, added.into_iter().map(|fired| fired.result))
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let fired = self.sessions.on_timer(ctx, timer)?.unwrap_or_default();
        emit(ctx, fired.into_iter().map(|fired| fired.result))
    }
}

eddy_sdk::export_operator!(Sessionize);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::ErrorKind;
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    const MINUTE: i64 = 60_000;

    fn click(h: &mut Harness<Sessionize>, user: &str, minute: i64, page: &str) {
        let value = format!(r#"{{"user":"{user}","page":"{page}"}}"#);
        let record = RecordBuilder::new(user, value).timestamp(minute * MINUTE);
        assert!(h.process_record(record).unwrap().is_empty());
    }

    fn summaries(h: &mut Harness<Sessionize>, watermark: i64) -> Vec<String> {
        h.advance_watermark(watermark)
            .unwrap()
            .iter()
            .map(|e| e.value_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_session_ends_thirty_minutes_after_its_last_click() {
        let mut h = Harness::<Sessionize>::new();
        click(&mut h, "u1", 0, "/home");
        click(&mut h, "u1", 10, "/cart");
        click(&mut h, "u1", 5, "/home");
        assert!(summaries(&mut h, 40 * MINUTE - 2).is_empty());
        assert_eq!(
            summaries(&mut h, 40 * MINUTE - 1),
            [r#"{"user":"u1","start":0,"end":600000,"clicks":3,"pages":["/home","/cart"]}"#]
        );
        assert!(!h.has_state("u1"));
    }

    #[test]
    fn thirty_minutes_apart_is_two_sessions_and_a_click_between_joins_them() {
        let mut h = Harness::<Sessionize>::new();
        click(&mut h, "u1", 0, "/a");
        click(&mut h, "u1", 30, "/b");
        click(&mut h, "u2", 0, "/a");
        click(&mut h, "u2", 30, "/b");
        click(&mut h, "u2", 15, "/c");
        assert_eq!(
            summaries(&mut h, i64::MAX),
            [
                r#"{"user":"u1","start":0,"end":0,"clicks":1,"pages":["/a"]}"#,
                r#"{"user":"u1","start":1800000,"end":1800000,"clicks":1,"pages":["/b"]}"#,
                r#"{"user":"u2","start":0,"end":1800000,"clicks":3,"pages":["/a","/c","/b"]}"#,
            ]
        );
    }

    #[test]
    fn config_sets_and_checks_the_gap() {
        let mut h = Harness::<Sessionize>::new().with_config(r#"{"gap-ms": 60000}"#);
        click(&mut h, "u1", 0, "/a");
        click(&mut h, "u1", 1, "/b");
        assert_eq!(summaries(&mut h, i64::MAX).len(), 2);
        for bad in [r#"{"gap-ms": 0}"#, r#"{"gap": 1}"#] {
            let h = Harness::<Sessionize>::new().with_config(bad);
            assert_eq!(
                h.init_result().unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut h = Harness::<Sessionize>::new();
        assert!(h.process("u1", r#"{"user":"u1"}"#).is_err());
        assert!(h.process("u2", r#"{"user":"u1","page":"/"}"#).is_err());
    }

    #[test]
    fn golden_input_gives_expected_output() {
        golden::check_event_time(Harness::<Sessionize>::new(), env!("CARGO_MANIFEST_DIR"));
    }
}
