//! `count-as-map`: declares `count` as map state where the word-count example keeps value
//! state: a module a hot swap must refuse before anything changes.

use eddy_sdk::{Context, Error, MapState, Operator, Record, StateRegistry};

/// Counts per key and sub-key.
pub struct CountAsMap {
    count: MapState<String, u64>,
}

impl Operator for CountAsMap {
    const NAME: &'static str = "word-count";
    const VERSION: &'static str = "3.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.map("count"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let sub = String::from_utf8_lossy(record.value()).into_owned();
        let n = self.count.get(ctx, &sub)?.unwrap_or(0) + 1;
        self.count.put(ctx, &sub, &n)?;
        Ok(())
    }
}

eddy_sdk::export_operator!(CountAsMap);
