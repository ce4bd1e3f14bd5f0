//! `windowed-top-n`: the most viewed products of each category per minute of event time.
//!
//! Input: key = the category; value = the product's name (plain text); the record's
//! timestamp is when the product was viewed. Each category's views are counted per product
//! in tumbling one-minute windows (`[0, 60000)`, `[60000, 120000)`, … in ms since the
//! epoch).
//!
//! Output, keyed by the category, when the watermark passes a minute's end:
//! `{"category":"books","start":…,"end":…,"late":false,"top":[{"product":"dune","count":3},…]}`
//! — the `n` most viewed products of the minute, most views first, equal counts by name.
//! A view that arrives after its minute was emitted but within the allowed lateness counts
//! too, and the minute is emitted again at once with `"late":true`. Views later than that
//! are the host's to divert (with the job's `[event-time] allowed-lateness` equal to the
//! operator's, none reaches it).
//!
//! Config: `{"n": 10, "allowed-lateness-ms": 0}` (the defaults; `n` from 1 to 1000,
//! lateness not negative).
//!
//! State: the tumbling windows of [`eddy_sdk::window`] named `views`: `views/windows`, per
//! category its open minutes with a count per product.

use std::collections::BTreeMap;

use eddy_sdk::window::{Aggregate, TumblingWindows, Windows};
use eddy_sdk::{AggregateFunction, Context, Error, Operator, Record, StateRegistry, Timer};
use serde::{Deserialize, Serialize};

/// The length of a window: one minute.
pub const WINDOW_MS: i64 = 60_000;

/// The default `n`.
pub const DEFAULT_N: usize = 10;

/// The largest `n` accepted.
pub const MAX_N: usize = 1000;

/// The operator's configuration (the job's `[operator] config` table).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// How many products to emit per category and minute.
    #[serde(default = "default_n")]
    pub n: usize,
    /// How long after a minute's end its counts are kept for late views, in ms; keep it
    /// equal to the job's `[event-time] allowed-lateness`.
    #[serde(default)]
    pub allowed_lateness_ms: i64,
}

fn default_n() -> usize {
    DEFAULT_N
}

/// Counts views per product; the result is every product with its count, most views first,
/// equal counts by name.
#[derive(Debug, Clone, Copy)]
pub struct CountViews;

impl AggregateFunction for CountViews {
    type Input = String;
    type Accumulator = BTreeMap<String, u64>;
    type Output = Vec<(String, u64)>;

    fn create_accumulator(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    fn add(&self, product: String, counts: &mut BTreeMap<String, u64>) {
        *counts.entry(product).or_default() += 1;
    }

    fn get_result(&self, counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
        let mut ranked: Vec<(String, u64)> = counts
            .iter()
            .map(|(product, count)| (product.clone(), *count))
            .collect();
        // Stable, and the map is in name order: equal counts stay by name.
        ranked.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        ranked
    }
}

#[derive(Serialize)]
struct Viewed<'a> {
    product: &'a str,
    count: u64,
}

#[derive(Serialize)]
struct Ranking<'a> {
    category: &'a str,
    start: i64,
    end: i64,
    late: bool,
    top: Vec<Viewed<'a>>,
}

/// Ranks products per category and minute.
pub struct WindowedTopN {
    views: Windows<Aggregate<CountViews>>,
    n: usize,
}

impl WindowedTopN {
    fn emit(
        &self,
        ctx: &mut Context<'_>,
        fired: Vec<eddy_sdk::window::Fired<Vec<(String, u64)>>>,
    ) -> Result<(), Error> {
        for fired in fired {
            let category = ctx.key_str()?;
            let ranking = Ranking {
                category,
                start: fired.window.start,
                end: fired.window.end,
                late: fired.late,
                top: fired
                    .result
                    .iter()
                    .take(self.n)
                    .map(|(product, count)| Viewed {
                        product,
                        count: *count,
                    })
                    .collect(),
            };
            ctx.emit(category, serde_json::to_vec(&ranking)?);
        }
        Ok(())
    }
}

impl Operator for WindowedTopN {
    const NAME: &'static str = "windowed-top-n";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            views: TumblingWindows::of(WINDOW_MS).aggregate(states, "views", CountViews),
            n: DEFAULT_N,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let invalid = |error: &dyn std::fmt::Display| {
            Error::invalid_config(format!("windowed-top-n config: {error}"))
        };
        let config: Config = serde_json::from_str(config).map_err(|e| invalid(&e))?;
        if !(1..=MAX_N).contains(&config.n) {
            return Err(invalid(&format_args!(
                "n must be between 1 and {MAX_N}, got {}",
                config.n
            )));
        }
        self.n = config.n;
        self.views
            .reconfigure(
                TumblingWindows::of(WINDOW_MS).allowed_lateness(config.allowed_lateness_ms),
            )
            .map_err(|e| invalid(&e))
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let product = record.value_str()?.trim();
        if product.is_empty() {
            return Err(Error::failed("the value must name a product"));
        }
        let added = self.views.add(ctx, product.to_owned())?;
        if added.dropped {
            // Later than the allowed lateness, yet not diverted by the host: its
            // `[event-time] allowed-lateness` is larger than the operator's.
            ctx.log(
                eddy_sdk::LogLevel::Warn,
                &format!(
                    "view of {product:?} at {} dropped as too late",
                    record.timestamp()
                ),
            );
        }
        self.emit(ctx, added.fired)
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let fired = self.views.on_timer(ctx, timer)?.unwrap_or_default();
        self.emit(ctx, fired)
    }
}

eddy_sdk::export_operator!(WindowedTopN);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::ErrorKind;
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    fn view(h: &mut Harness<WindowedTopN>, category: &str, at: i64, product: &str) -> Vec<String> {
        let record = RecordBuilder::new(category, product).timestamp(at);
        h.process_record(record)
            .unwrap()
            .iter()
            .map(|e| e.value_str().unwrap().to_owned())
            .collect()
    }

    fn rankings(h: &mut Harness<WindowedTopN>, watermark: i64) -> Vec<String> {
        h.advance_watermark(watermark)
            .unwrap()
            .iter()
            .map(|e| format!("{}: {}", e.key_str().unwrap(), e.value_str().unwrap()))
            .collect()
    }

    #[test]
    fn ranks_each_minute_by_count_then_name() {
        let mut h = Harness::<WindowedTopN>::new().with_config(r#"{"n": 2}"#);
        for (at, product) in [(1, "b"), (2, "c"), (3, "a"), (4, "c"), (59_999, "a")] {
            assert!(view(&mut h, "x", at, product).is_empty());
        }
        view(&mut h, "x", 60_000, "z");
        view(&mut h, "y", 5, "q");
        assert_eq!(
            rankings(&mut h, 59_999),
            [
                r#"x: {"category":"x","start":0,"end":60000,"late":false,"top":[{"product":"a","count":2},{"product":"c","count":2}]}"#,
                r#"y: {"category":"y","start":0,"end":60000,"late":false,"top":[{"product":"q","count":1}]}"#,
            ]
        );
        assert_eq!(
            rankings(&mut h, i64::MAX),
            [
                r#"x: {"category":"x","start":60000,"end":120000,"late":false,"top":[{"product":"z","count":1}]}"#
            ]
        );
    }

    #[test]
    fn a_late_view_within_the_lateness_emits_the_minute_again() {
        let mut h = Harness::<WindowedTopN>::new().with_config(r#"{"allowed-lateness-ms": 1000}"#);
        view(&mut h, "x", 10, "a");
        assert_eq!(rankings(&mut h, 59_999).len(), 1);
        assert_eq!(
            view(&mut h, "x", 20, "b"),
            [
                r#"{"category":"x","start":0,"end":60000,"late":true,"top":[{"product":"a","count":1},{"product":"b","count":1}]}"#
            ]
        );
        rankings(&mut h, 60_999);
        assert!(view(&mut h, "x", 30, "c").is_empty(), "dropped");
        assert!(
            h.logs()
                .iter()
                .any(|l| l.message.contains("dropped as too late"))
        );
        assert!(!h.has_state("x"));
    }

    #[test]
    fn config_is_checked() {
        for bad in [
            r#"{"n": 0}"#,
            r#"{"n": 1001}"#,
            r#"{"allowed-lateness-ms": -1}"#,
            r#"{"size": 1}"#,
        ] {
            let h = Harness::<WindowedTopN>::new().with_config(bad);
            assert_eq!(
                h.init_result().unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_empty_product_is_an_error() {
        let mut h = Harness::<WindowedTopN>::new();
        assert!(h.process("x", " ").is_err());
    }

    #[test]
    fn golden_input_gives_expected_output() {
        // The golden runner reads `[event-time]` but not `[operator] config`: the same here.
        assert!(
            include_str!("../job.toml")
                .contains("config = { n = 10, allowed-lateness-ms = 30000 }")
        );
        let config = r#"{"n": 10, "allowed-lateness-ms": 30000}"#;
        let h = Harness::<WindowedTopN>::new().with_config(config);
        golden::check_event_time(h, env!("CARGO_MANIFEST_DIR"));
    }
}
