//! `word-count`: counts the records of every key (a word) and emits the running count.
//!
//! Input: key = the word (the value is ignored). Output: key = the word, value = how many
//! times it has been seen so far, as decimal text. State: `count`, a `u64` per word.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// Counts records per key.
pub struct WordCount {
    count: ValueState<u64>,
}

impl Operator for WordCount {
    const NAME: &'static str = "word-count";
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

eddy_sdk::export_operator!(WordCount);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

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
