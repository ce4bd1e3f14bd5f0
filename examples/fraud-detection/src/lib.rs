//! `fraud-detection`: flags an account whose small transaction is followed, within one
//! minute of event time, by a large one — the classic Flink fraud-detection walkthrough,
//! with an event-time timer.
//!
//! Input: key = the account; value = `{"amount":0.5}`; the record's timestamp is when the
//! transaction happened. A transaction under [`SMALL_AMOUNT`] sets the account's flag and
//! registers an event-time timer [`ONE_MINUTE_MS`] later, which clears the flag. The
//! account's next transaction, whatever it is, clears the flag too (and deletes the timer);
//! when it is over [`LARGE_AMOUNT`] and at most a minute after the small one, it raises an
//! alert, keyed by the account:
//! `{"account":"a","small-amount":0.5,"small-at":…,"large-amount":725.0,"large-at":…}`.
//!
//! The timer fires once the watermark reaches the small transaction's time plus a minute,
//! which can be after a later transaction of the account arrived (the watermark follows the
//! whole stream, not the account): so the minute is also checked on the timestamps.
//!
//! State: `flag`, the account's last small transaction while it can still start an alert.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, TimeDomain, Timer, ValueState};
use serde::{Deserialize, Serialize};

/// A transaction under this amount can start an alert.
pub const SMALL_AMOUNT: f64 = 1.00;

/// A transaction over this amount, soon after a small one, is an alert.
pub const LARGE_AMOUNT: f64 = 500.00;

/// How long after a small transaction a large one raises an alert, in ms (inclusive).
pub const ONE_MINUTE_MS: i64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transaction {
    amount: f64,
}

/// The account's last small transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// Its amount.
    pub amount: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Alert<'a> {
    account: &'a str,
    small_amount: f64,
    small_at: i64,
    large_amount: f64,
    large_at: i64,
}

/// Flags small-then-large transaction pairs per account.
pub struct FraudDetection {
    flag: ValueState<Flag>,
}

impl Operator for FraudDetection {
    const NAME: &'static str = "fraud-detection";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            flag: states.value("flag"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let transaction: Transaction = serde_json::from_slice(record.value())?;
        let amount = transaction.amount;
        if !amount.is_finite() || amount < 0.0 {
            return Err(Error::failed(format!(
                "amount {amount} is not a non-negative number"
            )));
        }
        let at = record.timestamp();

        if let Some(flag) = self.flag.get(ctx)? {
            let within_a_minute = flag.at <= at && at - flag.at <= ONE_MINUTE_MS;
            if amount > LARGE_AMOUNT && within_a_minute {
                let alert = Alert {
                    account: record.key_str()?,
                    small_amount: flag.amount,
                    small_at: flag.at,
                    large_amount: amount,
                    large_at: at,
                };
                ctx.emit(record.key(), serde_json::to_vec(&alert)?);
            }
            // Any transaction ends the pattern.
            ctx.delete_event_time_timer(flag.at + ONE_MINUTE_MS);
            self.flag.clear(ctx)?;
        }

        if amount < SMALL_AMOUNT {
            self.flag.set(ctx, &Flag { at, amount })?;
            ctx.register_event_time_timer(at + ONE_MINUTE_MS);
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        // A minute after the small transaction: it can no longer start an alert.
        if timer.domain == TimeDomain::EventTime
            && let Some(flag) = self.flag.get(ctx)?
            && flag.at + ONE_MINUTE_MS == timer.timestamp
        {
            self.flag.clear(ctx)?;
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(FraudDetection);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    const T: i64 = 1_700_000_000_000;

    /// Sends a transaction of `account` at `T + seconds` and returns the alert, if any.
    fn send(
        h: &mut Harness<FraudDetection>,
        account: &str,
        seconds: i64,
        amount: f64,
    ) -> Option<String> {
        let value = format!(r#"{{"amount":{amount}}}"#);
        let record = RecordBuilder::new(account, value).timestamp(T + seconds * 1000);
        let mut emitted = h.process_record(record).unwrap();
        assert!(emitted.len() <= 1);
        emitted.pop().map(|e| e.value_str().unwrap().to_owned())
    }

    fn flag(h: &Harness<FraudDetection>, account: &str) -> Option<Flag> {
        h.value("flag", account).unwrap()
    }

    #[test]
    fn small_then_large_within_a_minute_is_an_alert() {
        let mut h = Harness::<FraudDetection>::new();
        assert_eq!(send(&mut h, "a", 0, 0.5), None);
        assert_eq!(flag(&h, "a"), Some(Flag { at: T, amount: 0.5 }));
        assert_eq!(
            send(&mut h, "a", 60, 500.01).as_deref(),
            Some(
                r#"{"account":"a","small-amount":0.5,"small-at":1700000000000,"large-amount":500.01,"large-at":1700000060000}"#
            )
        );
        assert_eq!(flag(&h, "a"), None);
        assert!(h.timers().is_empty(), "the timer is deleted with the flag");
    }

    #[test]
    fn the_thresholds_are_strict() {
        let mut h = Harness::<FraudDetection>::new();
        send(&mut h, "a", 0, 1.0);
        assert_eq!(flag(&h, "a"), None, "1.00 is not small");
        send(&mut h, "a", 1, 0.99);
        assert_eq!(send(&mut h, "a", 2, 500.0), None, "500.00 is not large");
        // 500.00 ended the pattern.
        assert_eq!(send(&mut h, "a", 3, 900.0), None);
    }

    #[test]
    fn the_timer_clears_the_flag_a_minute_later() {
        let mut h = Harness::<FraudDetection>::new();
        send(&mut h, "a", 0, 0.1);
        assert_eq!(h.timers().len(), 1);
        h.advance_watermark(T + 59_999).unwrap();
        assert!(flag(&h, "a").is_some());
        h.advance_watermark(T + 60_000).unwrap();
        assert_eq!(flag(&h, "a"), None);
        assert_eq!(send(&mut h, "a", 60, 999.0), None);
    }

    #[test]
    fn the_minute_is_checked_even_before_the_timer_fires() {
        let mut h = Harness::<FraudDetection>::new();
        send(&mut h, "a", 0, 0.1);
        // The watermark is still before T + 60 s: the flag is there, but 61 s is too late.
        assert_eq!(send(&mut h, "a", 61, 999.0), None);
        assert_eq!(flag(&h, "a"), None);
    }

    #[test]
    fn another_small_transaction_restarts_the_minute() {
        let mut h = Harness::<FraudDetection>::new();
        send(&mut h, "a", 0, 0.1);
        send(&mut h, "a", 50, 0.2);
        let timers: Vec<i64> = h.timers().iter().map(|(_, t)| t.timestamp).collect();
        assert_eq!(timers, [T + 110_000]);
        assert!(send(&mut h, "a", 100, 600.0).is_some());
    }

    #[test]
    fn accounts_are_apart() {
        let mut h = Harness::<FraudDetection>::new();
        send(&mut h, "a", 0, 0.1);
        assert_eq!(send(&mut h, "b", 1, 600.0), None);
        assert!(send(&mut h, "a", 2, 600.0).is_some());
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut h = Harness::<FraudDetection>::new();
        for bad in [r#"{"amount":"1"}"#, r#"{"amount":-1}"#, r#"{}"#, "x"] {
            assert!(h.process("a", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn golden_input_gives_expected_output() {
        golden::check_event_time(Harness::<FraudDetection>::new(), env!("CARGO_MANIFEST_DIR"));
    }
}
