//! `{{name}}`: counts the records of every key and emits the running count.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// Counts records per key.
pub struct Counter {
    count: ValueState<u64>,
}

impl Operator for Counter {
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let count = self.count.get_or_default(ctx)? + 1;
        self.count.set(ctx, &count)?;
        ctx.emit(record.key(), count.to_string());
        Ok(())
    }
}

eddy_sdk::export_operator!(Counter);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

    #[test]
    fn counts_per_key() {
        let mut harness = Harness::<Counter>::new();
        harness.process("to", "").unwrap();
        harness.process("be", "").unwrap();
        let emitted = harness.process_utf8("to", "").unwrap();
        assert_eq!(emitted, [("to".to_owned(), "2".to_owned())]);
    }
}
