//! `window-count`: the benchmark's windowed operator, a tumbling one-minute count per key,
//! the windowed twin of `word-count`; emits `(key, "<window start> <count>")` when a window
//! fires. It declares only the windows' state (every declared value state is prefetched,
//! so a state it does not use would cost it; `timer-count` is the timer benchmark).

use eddy_sdk::window::{Reduce, TumblingWindows, Windows};
use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer};

/// See the crate docs.
pub struct WindowCount {
    windows: Windows<Reduce<u64>>,
}

impl Operator for WindowCount {
    const NAME: &'static str = "window-count";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            windows: TumblingWindows::of(60_000).reduce(states, "counts", |a, b| a + b),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, _record: &Record<'_>) -> Result<(), Error> {
        for fired in self.windows.add(ctx, 1)? {
            ctx.emit(
                ctx.key(),
                format!("{} {}", fired.window.start, fired.result),
            );
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
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
    fn counts_per_minute() -> Result<(), Error> {
        let mut h = Harness::<WindowCount>::new();
        for ts in [1_000, 2_000, 61_000] {
            h.process_record(RecordBuilder::new("a", "").timestamp(ts))?;
        }
        let fired = h.advance_watermark(i64::MAX)?;
        let got: Vec<&str> = fired.iter().map(|e| e.value_str().unwrap_or("?")).collect();
        assert_eq!(got, ["0 2", "60000 1"]);
        Ok(())
    }
}
