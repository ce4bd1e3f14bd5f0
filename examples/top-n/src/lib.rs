//! `top-n`: keeps the `n` best-scoring items of every category and emits the ranking when
//! it changes.
//!
//! Input: key = the category; value = `{"category":"c","item":"x","score":12}`. Output, keyed
//! by the category, whenever the ranking changes:
//! `{"category":"c","top":[{"item":"x","score":12},{"item":"y","score":7}]}` — best first,
//! equal scores by item name. An item already ranked keeps its best score; an item that
//! dropped out of the ranking is forgotten. Config: `{"n": 3}` (the default; 1 to 1000).
//!
//! State: `top`, a list per category of `(item, score)`, best first.

use eddy_sdk::{Context, Error, ListState, Operator, Record, StateRegistry};
use serde::{Deserialize, Serialize};

/// The default `n`.
pub const DEFAULT_N: usize = 3;

/// The largest `n` accepted (the whole ranking is read and written per record).
pub const MAX_N: usize = 1000;

/// The operator's configuration (the job's `[operator] config` table).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// How many items to rank per category.
    #[serde(default = "default_n")]
    pub n: usize,
}

fn default_n() -> usize {
    DEFAULT_N
}

#[derive(Deserialize)]
struct Input {
    category: String,
    item: String,
    score: i64,
}

#[derive(Serialize)]
struct Ranked<'a> {
    item: &'a str,
    score: i64,
}

#[derive(Serialize)]
struct Ranking<'a> {
    category: &'a str,
    top: Vec<Ranked<'a>>,
}

/// Ranks items per category.
pub struct TopN {
    top: ListState<(String, i64)>,
    n: usize,
}

/// `ranking` with `item` scored `score`: best first, ties by item name, at most `n` long.
pub fn rank(
    mut ranking: Vec<(String, i64)>,
    item: &str,
    score: i64,
    n: usize,
) -> Vec<(String, i64)> {
    match ranking.iter_mut().find(|(ranked, _)| ranked == item) {
        Some((_, best)) => *best = (*best).max(score),
        None => ranking.push((item.to_owned(), score)),
    }
    ranking.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranking.truncate(n);
    ranking
}

impl Operator for TopN {
    const NAME: &'static str = "top-n";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            top: states.list("top"),
            n: DEFAULT_N,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = serde_json::from_str(config)
            .map_err(|error| Error::invalid_config(format!("top-n config: {error}")))?;
        if !(1..=MAX_N).contains(&config.n) {
            return Err(Error::invalid_config(format!(
                "top-n config: n must be between 1 and {MAX_N}, got {}",
                config.n
            )));
        }
        self.n = config.n;
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let input: Input = serde_json::from_slice(record.value())?;
        if input.category.as_bytes() != record.key() {
            return Err(Error::failed(format!(
                "category {:?} does not match the record key {:?}; key the stream by category",
                input.category,
                String::from_utf8_lossy(record.key())
            )));
        }
        let before = self.top.get(ctx)?;
        let after = rank(before.clone(), &input.item, input.score, self.n);
        if after == before {
            return Ok(());
        }
        self.top.update(ctx, &after)?;
        let ranking = Ranking {
            category: &input.category,
            top: after
                .iter()
                .map(|(item, score)| Ranked {
                    item,
                    score: *score,
                })
                .collect(),
        };
        ctx.emit(record.key(), serde_json::to_vec(&ranking)?);
        Ok(())
    }
}

eddy_sdk::export_operator!(TopN);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::ErrorKind;
    use eddy_sdk::testing::Harness;

    use super::*;

    fn score(h: &mut Harness<TopN>, category: &str, item: &str, score: i64) -> Option<String> {
        let value = format!(r#"{{"category":"{category}","item":"{item}","score":{score}}}"#);
        let mut emitted = h.process_utf8(category, &value).unwrap();
        assert!(emitted.len() <= 1);
        emitted.pop().map(|(_, value)| value)
    }

    fn top(h: &Harness<TopN>, category: &str) -> Vec<(String, i64)> {
        h.list("top", category).unwrap()
    }

    #[test]
    fn ranks_best_first_and_emits_only_changes() {
        let mut h = Harness::<TopN>::new();
        assert_eq!(
            score(&mut h, "c", "a", 1).as_deref(),
            Some(r#"{"category":"c","top":[{"item":"a","score":1}]}"#)
        );
        score(&mut h, "c", "b", 3);
        score(&mut h, "c", "c", 2);
        assert_eq!(score(&mut h, "c", "d", 0), None);
        assert_eq!(
            score(&mut h, "c", "b", 1),
            None,
            "an item keeps its best score"
        );
        assert_eq!(
            score(&mut h, "c", "d", 5).as_deref(),
            Some(
                r#"{"category":"c","top":[{"item":"d","score":5},{"item":"b","score":3},{"item":"c","score":2}]}"#
            )
        );
        assert_eq!(
            top(&h, "c"),
            [("d".into(), 5), ("b".into(), 3), ("c".into(), 2)]
        );
        assert!(top(&h, "other").is_empty());
    }

    #[test]
    fn ties_go_by_item_name() {
        let ranking = rank(Vec::new(), "z", 1, 2);
        let ranking = rank(ranking, "y", 1, 2);
        let ranking = rank(ranking, "x", 1, 2);
        assert_eq!(ranking, [("x".into(), 1), ("y".into(), 1)]);
    }

    #[test]
    fn config_sets_and_checks_n() {
        let mut h = Harness::<TopN>::new().with_config(r#"{"n": 1}"#);
        score(&mut h, "c", "a", 1);
        assert_eq!(score(&mut h, "c", "b", 0), None);
        score(&mut h, "c", "b", 2);
        assert_eq!(top(&h, "c"), [("b".into(), 2)]);
        for bad in [
            r#"{"n": 0}"#,
            r#"{"n": 1001}"#,
            r#"{"m": 2}"#,
            r#"{"n": -1}"#,
        ] {
            let h = Harness::<TopN>::new().with_config(bad);
            assert_eq!(
                h.init_result().unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut h = Harness::<TopN>::new();
        assert!(h.process("c", r#"{"category":"c","item":"a"}"#).is_err());
        assert!(
            h.process("d", r#"{"category":"c","item":"a","score":1}"#)
                .is_err()
        );
    }

    #[test]
    fn golden_input_gives_expected_output() {
        golden::check(Harness::<TopN>::new(), env!("CARGO_MANIFEST_DIR"));
    }
}
