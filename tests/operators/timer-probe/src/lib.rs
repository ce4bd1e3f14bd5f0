//! `timer-probe`: a test operator for timers. Each record's value is a command for the
//! record's key (the value itself, or the `cmd` field of a JSON object value):
//! - `event:<ts>` / `processing:<ts>` registers a timer, `unevent:<ts>` /
//!   `unprocessing:<ts>` deletes one;
//! - `after:<ms>` registers an event-time timer `ms` after the record's timestamp;
//! - `chain:<n>`: the key's next `n` event-time firings each register another timer
//!   1,000 ms later;
//! - `fail-timer` makes the key's next firing fail;
//! - anything else only counts.
//!
//! Every record adds one to the key's `records` count. A firing adds one to the key's
//! `fired` count and emits `fired <domain> <ts> records=<n> fired=<m>` for the timer's
//! key, and ` watermark=<wm>` when the record said `show-watermark` (the watermark at a
//! firing depends on where the watermark advanced, which a replay need not repeat).

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, TimeDomain, Timer, ValueState};

/// See the crate docs.
pub struct TimerProbe {
    records: ValueState<u64>,
    fired: ValueState<u64>,
    fail: ValueState<bool>,
    chains: ValueState<u64>,
    show_watermark: ValueState<bool>,
}

fn parse(arg: &str) -> Result<i64, Error> {
    arg.parse()
        .map_err(|_| Error::failed(format!("not a timestamp: {arg:?}")))
}

impl Operator for TimerProbe {
    const NAME: &'static str = "timer-probe";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            records: states.value("records"),
            fired: states.value("fired"),
            fail: states.value("fail"),
            chains: states.value("chains"),
            show_watermark: states.value("show-watermark"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let n = self.records.get_or_default(ctx)? + 1;
        self.records.set(ctx, &n)?;
        let value = record.value_str()?;
        let json: Option<serde_json::Value> = value
            .starts_with('{')
            .then(|| serde_json::from_str(value).ok())
            .flatten();
        let command = json
            .as_ref()
            .and_then(|j| j.get("cmd"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or(value);
        match command.split_once(':') {
            Some(("event", ts)) => ctx.register_event_time_timer(parse(ts)?),
            Some(("unevent", ts)) => ctx.delete_event_time_timer(parse(ts)?),
            Some(("processing", ts)) => ctx.register_processing_time_timer(parse(ts)?),
            Some(("unprocessing", ts)) => ctx.delete_processing_time_timer(parse(ts)?),
            Some(("after", ms)) => ctx.register_event_time_timer(record.timestamp() + parse(ms)?),
            Some(("chain", n)) => self.chains.set(ctx, &(parse(n)? as u64))?,
            _ if command == "fail-timer" => self.fail.set(ctx, &true)?,
            _ if command == "show-watermark" => self.show_watermark.set(ctx, &true)?,
            _ => {}
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        if self.fail.get(ctx)?.unwrap_or(false) {
            self.fail.clear(ctx)?;
            return Err(Error::failed("asked to fail this timer"));
        }
        let fired = self.fired.get_or_default(ctx)? + 1;
        self.fired.set(ctx, &fired)?;
        let records = self.records.get_or_default(ctx)?;
        let domain = match timer.domain {
            TimeDomain::EventTime => "event",
            TimeDomain::ProcessingTime => "processing",
        };
        let watermark = if self.show_watermark.get(ctx)?.unwrap_or(false) {
            format!(" watermark={}", ctx.watermark())
        } else {
            String::new()
        };
        ctx.emit(
            ctx.key(),
            format!(
                "fired {domain} {} records={records} fired={fired}{watermark}",
                timer.timestamp,
            ),
        );
        let chains = self.chains.get_or_default(ctx)?;
        if timer.domain == TimeDomain::EventTime && chains > 0 {
            self.chains.set(ctx, &(chains - 1))?;
            ctx.register_event_time_timer(timer.timestamp + 1_000);
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(TimerProbe);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

    #[test]
    fn timers_fire_in_order_once_with_their_keys_state() -> Result<(), Error> {
        let mut h = Harness::<TimerProbe>::new();
        h.process_utf8("a", "event:300")?;
        h.process_utf8("b", "event:100")?;
        h.process_utf8("a", "event:300")?; // twice: fires once
        h.process_utf8("b", "event:200")?;
        h.process_utf8("b", "unevent:200")?;
        let fired = h.advance_watermark(1_000)?;
        let got: Vec<String> = fired
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.key_str().unwrap_or("?"),
                    e.value_str().unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "b: fired event 100 records=3 fired=1",
                "a: fired event 300 records=2 fired=1",
            ]
        );
        assert!(h.advance_watermark(5_000)?.is_empty());
        Ok(())
    }
}
