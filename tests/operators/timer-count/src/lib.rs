//! `timer-count`: the benchmark's timer operator. Registers an event-time timer 1 s after
//! every record's timestamp and counts the firings per key (`fired`), emitting nothing: the
//! cost of registering and firing one timer per record.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer, ValueState};

/// See the crate docs.
pub struct TimerCount {
    fired: ValueState<u64>,
}

impl Operator for TimerCount {
    const NAME: &'static str = "timer-count";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            fired: states.value("fired"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, _record: &Record<'_>) -> Result<(), Error> {
        ctx.register_event_time_timer(ctx.timestamp() + 1_000);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &Timer) -> Result<(), Error> {
        let n = self.fired.get_or_default(ctx)? + 1;
        self.fired.set(ctx, &n)
    }
}

eddy_sdk::export_operator!(TimerCount);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    #[test]
    fn registers_a_timer_per_record_and_counts_the_firings() -> Result<(), Error> {
        let mut h = Harness::<TimerCount>::new();
        for ts in [1_000, 2_000] {
            h.process_record(RecordBuilder::new("a", "").timestamp(ts))?;
        }
        assert_eq!(h.timers().len(), 2);
        h.advance_watermark(i64::MAX)?;
        assert_eq!(h.value::<u64>("fired", "a")?, Some(2));
        Ok(())
    }
}
