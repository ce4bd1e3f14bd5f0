//! `word-count-v2`: the word-count example's next version, for hot-swap tests. Same state
//! (`count`, a `u64` per word, schema 1), so it can take over a running word count; it
//! emits JSON instead of bare numbers: `{"count":3,"v":2,"word":"the"}`.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// Counts records per key, JSON output.
pub struct WordCountV2 {
    count: ValueState<u64>,
}

impl Operator for WordCountV2 {
    const NAME: &'static str = "word-count";
    const VERSION: &'static str = "2.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let count = self.count.get_or_default(ctx)? + 1;
        self.count.set(ctx, &count)?;
        let word = String::from_utf8_lossy(record.key());
        let out = serde_json::json!({ "word": word, "count": count, "v": 2 });
        ctx.emit(record.key(), out.to_string());
        Ok(())
    }
}

eddy_sdk::export_operator!(WordCountV2);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

    #[test]
    fn emits_json_counts() {
        let mut h = Harness::<WordCountV2>::new();
        h.process_utf8("a", "").unwrap_or_default();
        let out = h.process_utf8("a", "").unwrap_or_default();
        assert_eq!(
            out,
            [(
                "a".to_string(),
                r#"{"count":2,"v":2,"word":"a"}"#.to_string()
            )]
        );
    }
}
