//! `window-count`: the benchmark's event-time operators, by `config`:
//! - `{"mode": "window"}` (default): a tumbling one-minute count per key, the windowed
//!   twin of `word-count`; emits `(key, "<window start> <count>")` when a window fires.
//! - `{"mode": "timers"}`: registers an event-time timer 1 s after every record's
//!   timestamp and counts the firings per key (`fired`), emitting nothing: the cost of
//!   registering and firing one timer per record.

use eddy_sdk::window::{Reduce, TumblingWindows, Windows};
use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer, ValueState};

/// See the crate docs.
pub struct WindowCount {
    windows: Windows<Reduce<u64>>,
    fired: ValueState<u64>,
    timers: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mode: Option<String>,
}

impl Operator for WindowCount {
    const NAME: &'static str = "window-count";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            windows: TumblingWindows::of(60_000).reduce(states, "counts", |a, b| a + b),
            fired: states.value("fired"),
            timers: false,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let c: Config = serde_json::from_str(config)
            .map_err(|e| Error::invalid_config(format!("window-count config: {e}")))?;
        self.timers = match c.mode.as_deref() {
            None | Some("window") => false,
            Some("timers") => true,
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "window-count config: mode {other:?} is neither \"window\" nor \"timers\""
                )));
            }
        };
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, _record: &Record<'_>) -> Result<(), Error> {
        if self.timers {
            ctx.register_event_time_timer(ctx.timestamp() + 1_000);
            return Ok(());
        }
        for fired in self.windows.add(ctx, 1)? {
            ctx.emit(
                ctx.key(),
                format!("{} {}", fired.window.start, fired.result),
            );
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        if self.timers {
            let n = self.fired.get_or_default(ctx)? + 1;
            return self.fired.set(ctx, &n);
        }
        for fired in self.windows.on_timer(ctx, timer)?.unwrap_or_default() {
            ctx.emit(
                ctx.key(),
                format!("{} {}", fired.window.start, fired.result),
            );
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(WindowCount);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    #[test]
    fn counts_per_minute_and_fires_timers() -> Result<(), Error> {
        let mut h = Harness::<WindowCount>::new();
        for ts in [1_000, 2_000, 61_000] {
            h.process_record(RecordBuilder::new("a", "").timestamp(ts))?;
        }
        let fired = h.advance_watermark(i64::MAX)?;
        let got: Vec<&str> = fired.iter().map(|e| e.value_str().unwrap_or("?")).collect();
        assert_eq!(got, ["0 2", "60000 1"]);

        let mut h = Harness::<WindowCount>::new().with_config(r#"{"mode": "timers"}"#);
        for ts in [1_000, 2_000] {
            h.process_record(RecordBuilder::new("a", "").timestamp(ts))?;
        }
        assert_eq!(h.timers().len(), 2);
        h.advance_watermark(i64::MAX)?;
        assert_eq!(h.value::<u64>("fired", "a")?, Some(2));
        Ok(())
    }
}
