//! `word-count`: counts the records of every key (a word) and emits the running count.
//!
//! Input: key = the word (the value is ignored). Output: key = the word, value = how many
//! times it has been seen so far, as decimal text. State: `count`, a `u64` per word.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// Counts records per key.
pub struct WordCount {
    count: ValueState<u64>,
    emit_every: u64,
}

/// `init` configuration: `{"emit-every": n}` emits a word's count only on every n-th
/// occurrence (an aggregating job); the default, 1, emits on every record.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Config {
    #[serde(default = "one")]
    emit_every: u64,
}

fn one() -> u64 {
    1
}

impl Operator for WordCount {
    const NAME: &'static str = "word-count";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
            emit_every: 1,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = serde_json::from_str(config)
            .map_err(|error| Error::invalid_config(format!("word-count config: {error}")))?;
        if config.emit_every == 0 {
            return Err(Error::invalid_config(
                "word-count config: emit-every must be at least 1",
            ));
        }
        self.emit_every = config.emit_every;
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let count = self.count.get_or_default(ctx)? + 1;
        self.count.set(ctx, &count)?;
        if count % self.emit_every == 0 {
            ctx.emit(record.key(), count.to_string());
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(WordCount);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

    #[test]
    fn emit_every_aggregates() {
        let mut harness = Harness::<WordCount>::new().with_config(r#"{"emit-every": 2}"#);
        let mut emitted = Vec::new();
        for word in ["a", "a", "b", "a", "a", "b"] {
            emitted.extend(harness.process_utf8(word, word).unwrap());
        }
        let expected: Vec<(String, String)> = [("a", "2"), ("a", "4"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(emitted, expected);
        let bad = Harness::<WordCount>::new().with_config(r#"{"emit-every": 0}"#);
        assert!(bad.init_result().is_err());
    }

    #[test]
    fn counts_per_word() {
        let mut harness = Harness::<WordCount>::new();
        let mut emitted = Vec::new();
        for word in ["the", "cat", "the", "hat", "the"] {
            emitted.extend(harness.process_utf8(word, word).unwrap());
        }
        let expected = [
            ("the", "1"),
            ("cat", "1"),
            ("the", "2"),
            ("hat", "1"),
            ("the", "3"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(emitted, expected);
        assert_eq!(harness.value::<u64>("count", "the").unwrap(), Some(3));
        assert_eq!(harness.value::<u64>("count", "dog").unwrap(), None);
    }

    #[test]
    fn counts_within_one_batch_see_each_other() {
        use eddy_sdk::testing::RecordBuilder;
        let mut harness = Harness::<WordCount>::new();
        let batch = harness
            .process_batch(["a", "b", "a", "a"].map(|word| RecordBuilder::new(word, "")))
            .unwrap();
        let counts: Vec<&str> = batch
            .iter()
            .map(|emits| emits[0].value_str().unwrap())
            .collect();
        assert_eq!(counts, ["1", "1", "2", "3"]);
    }

    #[test]
    fn binary_keys_are_fine() {
        let mut harness = Harness::<WordCount>::new();
        let emitted = harness.process([0xff, 0x00], "").unwrap();
        assert_eq!(emitted, [(vec![0xff, 0x00], b"1".to_vec())]);
    }

    #[test]
    fn golden_input_gives_expected_output() {
        golden::check(Harness::<WordCount>::new(), env!("CARGO_MANIFEST_DIR"));
    }
}
