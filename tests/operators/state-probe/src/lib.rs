//! `state-probe`: runs one state operation per record, through the SDK, and emits the
//! answer, so an integration test can check every state call end to end.
//!
//! Input: key = the state key; value = a JSON command `{"op": …, …}`. Every command emits
//! exactly one record (same key) whose value is `{"ok":true}` or `{"value":…}`, except
//! `emit-many` (emits `n` records `{"index":i}`), `fail` (returns an error) and `trap`
//! (panics).
//!
//! | op | fields | answer |
//! |----|--------|--------|
//! | `value-set` / `value-get` / `value-clear` | `v` (set) | `value`: string or null |
//! | `map-put` / `map-get` / `map-remove` / `map-contains` | `k`, `v` (put) | `value`: string or null / bool |
//! | `map-is-empty` / `map-clear` | | `value`: bool / ok |
//! | `map-entries` / `map-keys` | `page` (optional page size) | `value`: `[[k,v],…]` / `[k,…]` |
//! | `list-add` / `list-add-all` / `list-update` / `list-get` / `list-clear` | `v` / `vs` | `value`: `[…]` |
//! | `reducing-add` / `reducing-get` | `n` (i64) | `value`: sum or null |
//! | `aggregating-add` / `aggregating-get` | `n` (i64) | `value`: mean (f64) or null |
//! | `log` | `v` (message, logged at info) | ok |
//! | `timestamp` / `headers` | | `value`: the record's timestamp / headers object |
//! | `emit-headers` | `headers` (object) | ok, emitted with those headers |
//! | `emit-many` | `n` | `n` records `{"index":i}` |
//! | `fail` / `trap` | | an error / a trap |
//! | `write-then-fail` / `write-then-trap` | `v` | sets `value`, puts `map[v] = v`, adds `v` to `list`, then fails / traps |
//!
//! States: `value` (value, string), `map` (map, string → string), `list` (list, string),
//! `sum` (reducing, i64), `average` (aggregating, accumulator `(sum i64, count u64)`).
//! Map keys are postcard-encoded strings, so entries come in that byte order (shorter keys
//! first).

use std::collections::BTreeMap;

use eddy_sdk::{
    AggregateFunction, AggregatingState, Context, Error, ListState, LogLevel, MapState, Operator,
    Record, ReducingState, StateRegistry, ValueState,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// One command, the record's value.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Command {
    ValueSet { v: String },
    ValueGet,
    ValueClear,
    MapPut { k: String, v: String },
    MapGet { k: String },
    MapRemove { k: String },
    MapContains { k: String },
    MapIsEmpty,
    MapClear,
    MapEntries { page: Option<u32> },
    MapKeys { page: Option<u32> },
    ListAdd { v: String },
    ListAddAll { vs: Vec<String> },
    ListUpdate { vs: Vec<String> },
    ListGet,
    ListClear,
    ReducingAdd { n: i64 },
    ReducingGet,
    AggregatingAdd { n: i64 },
    AggregatingGet,
    Log { v: String },
    Timestamp,
    Headers,
    EmitHeaders { headers: BTreeMap<String, String> },
    EmitMany { n: u32 },
    Fail,
    Trap,
    WriteThenFail { v: String },
    WriteThenTrap { v: String },
}

/// The mean of the inputs.
#[derive(Debug, Clone, Copy)]
pub struct Average;

impl AggregateFunction for Average {
    type Input = i64;
    type Accumulator = (i64, u64);
    type Output = f64;

    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }

    fn add(&self, value: i64, accumulator: &mut (i64, u64)) {
        accumulator.0 = accumulator.0.saturating_add(value);
        accumulator.1 += 1;
    }

    fn get_result(&self, accumulator: &(i64, u64)) -> f64 {
        accumulator.0 as f64 / accumulator.1.max(1) as f64
    }
}

/// The probe.
pub struct StateProbe {
    value: ValueState<String>,
    map: MapState<String, String>,
    list: ListState<String>,
    sum: ReducingState<i64>,
    average: AggregatingState<Average>,
}

impl StateProbe {
    /// Touches every kind of state and emits: none of it may survive a failure after it.
    fn write_everything(
        &self,
        ctx: &mut Context<'_>,
        record: &Record<'_>,
        v: &String,
    ) -> Result<(), Error> {
        self.value.set(ctx, v)?;
        self.map.put(ctx, v, v)?;
        self.list.add(ctx, v)?;
        ctx.emit(record.key(), "must not be emitted");
        Ok(())
    }
}

fn ok() -> Value {
    json!({ "ok": true })
}

fn answer(value: impl Into<Value>) -> Value {
    json!({ "value": value.into() })
}

impl Operator for StateProbe {
    const NAME: &'static str = "state-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            value: states.value("value"),
            map: states.map("map"),
            list: states.list("list"),
            sum: states.reducing("sum", |a: &i64, b: &i64| a.saturating_add(*b)),
            average: states.aggregating("average", Average),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command: Command = serde_json::from_slice(record.value())?;
        let result = match command {
            Command::WriteThenFail { v } => {
                self.write_everything(ctx, record, &v)?;
                return Err(Error::failed("state-probe: asked to fail after writing"));
            }
            Command::WriteThenTrap { v } => {
                self.write_everything(ctx, record, &v)?;
                trap()
            }
            Command::ValueSet { v } => {
                self.value.set(ctx, &v)?;
                ok()
            }
            Command::ValueGet => answer(self.value.get(ctx)?),
            Command::ValueClear => {
                self.value.clear(ctx)?;
                ok()
            }
            Command::MapPut { k, v } => {
                self.map.put(ctx, &k, &v)?;
                ok()
            }
            Command::MapGet { k } => answer(self.map.get(ctx, &k)?),
            Command::MapRemove { k } => {
                self.map.remove(ctx, &k)?;
                ok()
            }
            Command::MapContains { k } => answer(self.map.contains(ctx, &k)?),
            Command::MapIsEmpty => answer(self.map.is_empty(ctx)?),
            Command::MapClear => {
                self.map.clear(ctx)?;
                ok()
            }
            Command::MapEntries { page } => {
                let mut entries = self.map.entries(ctx);
                if let Some(page) = page {
                    entries = entries.page_size(page);
                }
                let entries = entries.collect::<Result<Vec<(String, String)>, _>>()?;
                answer(json!(entries))
            }
            Command::MapKeys { page } => {
                let mut keys = self.map.keys(ctx);
                if let Some(page) = page {
                    keys = keys.page_size(page);
                }
                answer(keys.collect::<Result<Vec<String>, _>>()?)
            }
            Command::ListAdd { v } => {
                self.list.add(ctx, &v)?;
                ok()
            }
            Command::ListAddAll { vs } => {
                self.list.add_all(ctx, &vs)?;
                ok()
            }
            Command::ListUpdate { vs } => {
                self.list.update(ctx, &vs)?;
                ok()
            }
            Command::ListGet => answer(self.list.get(ctx)?),
            Command::ListClear => {
                self.list.clear(ctx)?;
                ok()
            }
            Command::ReducingAdd { n } => {
                self.sum.add(ctx, n)?;
                ok()
            }
            Command::ReducingGet => answer(self.sum.get(ctx)?),
            Command::AggregatingAdd { n } => {
                self.average.add(ctx, n)?;
                ok()
            }
            Command::AggregatingGet => answer(self.average.get(ctx)?),
            Command::Log { v } => {
                ctx.log(LogLevel::Info, &v);
                ok()
            }
            Command::Timestamp => answer(record.timestamp()),
            Command::Headers => {
                let headers: serde_json::Map<String, Value> = record
                    .headers()
                    .map(|(name, value)| (name.to_owned(), Value::from(value)))
                    .collect();
                answer(headers)
            }
            Command::EmitHeaders { headers } => {
                ctx.emit_with_headers(record.key(), ok().to_string(), &headers);
                return Ok(());
            }
            Command::EmitMany { n } => {
                for index in 0..n {
                    ctx.emit(record.key(), json!({ "index": index }).to_string());
                }
                return Ok(());
            }
            Command::Fail => return Err(Error::failed("state-probe: asked to fail")),
            Command::Trap => trap(),
        };
        ctx.emit(record.key(), result.to_string());
        Ok(())
    }
}

/// Panics; on Wasm a panic aborts, which traps the instance.
#[allow(clippy::panic)] // the whole point of this command
fn trap() -> ! {
    panic!("state-probe: asked to trap")
}

eddy_sdk::export_operator!(StateProbe);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    fn run(h: &mut Harness<StateProbe>, key: &str, command: Value) -> String {
        let emitted = h.process_utf8(key, &command.to_string()).unwrap();
        assert_eq!(emitted.len(), 1, "{command}");
        emitted[0].1.clone()
    }

    #[test]
    fn value_commands() {
        let mut h = Harness::<StateProbe>::new();
        assert_eq!(
            run(&mut h, "k", json!({"op": "value-get"})),
            r#"{"value":null}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "value-set", "v": "x"})),
            r#"{"ok":true}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "value-get"})),
            r#"{"value":"x"}"#
        );
        assert_eq!(
            run(&mut h, "j", json!({"op": "value-get"})),
            r#"{"value":null}"#
        );
        run(&mut h, "k", json!({"op": "value-clear"}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "value-get"})),
            r#"{"value":null}"#
        );
    }

    #[test]
    fn map_commands_page_through_entries() {
        let mut h = Harness::<StateProbe>::new();
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-is-empty"})),
            r#"{"value":true}"#
        );
        for (k, v) in [("b", "2"), ("a", "1"), ("cc", "3"), ("d", "4"), ("e", "5")] {
            run(&mut h, "k", json!({"op": "map-put", "k": k, "v": v}));
        }
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-get", "k": "a"})),
            r#"{"value":"1"}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-get", "k": "z"})),
            r#"{"value":null}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-contains", "k": "cc"})),
            r#"{"value":true}"#
        );
        let all = r#"{"value":[["a","1"],["b","2"],["d","4"],["e","5"],["cc","3"]]}"#;
        assert_eq!(run(&mut h, "k", json!({"op": "map-entries"})), all);
        for page in [1, 2, 4] {
            assert_eq!(
                run(&mut h, "k", json!({"op": "map-entries", "page": page})),
                all
            );
        }
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-keys", "page": 2})),
            r#"{"value":["a","b","d","e","cc"]}"#
        );
        run(&mut h, "k", json!({"op": "map-remove", "k": "a"}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-contains", "k": "a"})),
            r#"{"value":false}"#
        );
        run(&mut h, "k", json!({"op": "map-clear"}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-is-empty"})),
            r#"{"value":true}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-keys"})),
            r#"{"value":[]}"#
        );
    }

    #[test]
    fn list_commands() {
        let mut h = Harness::<StateProbe>::new();
        run(&mut h, "k", json!({"op": "list-add", "v": "a"}));
        run(&mut h, "k", json!({"op": "list-add-all", "vs": ["b", "c"]}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "list-get"})),
            r#"{"value":["a","b","c"]}"#
        );
        run(&mut h, "k", json!({"op": "list-update", "vs": ["z"]}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "list-get"})),
            r#"{"value":["z"]}"#
        );
        run(&mut h, "k", json!({"op": "list-clear"}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "list-get"})),
            r#"{"value":[]}"#
        );
    }

    #[test]
    fn reducing_and_aggregating_commands() {
        let mut h = Harness::<StateProbe>::new();
        assert_eq!(
            run(&mut h, "k", json!({"op": "reducing-get"})),
            r#"{"value":null}"#
        );
        run(&mut h, "k", json!({"op": "reducing-add", "n": 5}));
        run(&mut h, "k", json!({"op": "reducing-add", "n": -7}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "reducing-get"})),
            r#"{"value":-2}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "aggregating-get"})),
            r#"{"value":null}"#
        );
        run(&mut h, "k", json!({"op": "aggregating-add", "n": 1}));
        run(&mut h, "k", json!({"op": "aggregating-add", "n": 2}));
        assert_eq!(
            run(&mut h, "k", json!({"op": "aggregating-get"})),
            r#"{"value":1.5}"#
        );
    }

    #[test]
    fn record_and_emit_commands() {
        let mut h = Harness::<StateProbe>::new();
        let emitted = h
            .process_record(
                RecordBuilder::new("k", r#"{"op":"headers"}"#)
                    .header("b", "2")
                    .header("a", "1"),
            )
            .unwrap();
        assert_eq!(
            emitted[0].value_str().unwrap(),
            r#"{"value":{"a":"1","b":"2"}}"#
        );
        let emitted = h
            .process_record(RecordBuilder::new("k", r#"{"op":"timestamp"}"#).timestamp(77))
            .unwrap();
        assert_eq!(emitted[0].value_str().unwrap(), r#"{"value":77}"#);
        let emitted = h
            .process_record(RecordBuilder::new(
                "k",
                r#"{"op":"emit-headers","headers":{"x":"1"}}"#,
            ))
            .unwrap();
        assert_eq!(emitted[0].headers, [("x".to_owned(), "1".to_owned())]);
        let emitted = h.process_utf8("k", r#"{"op":"emit-many","n":3}"#).unwrap();
        let values: Vec<&str> = emitted.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [r#"{"index":0}"#, r#"{"index":1}"#, r#"{"index":2}"#]
        );
        run(&mut h, "k", json!({"op": "log", "v": "hi"}));
        assert_eq!(h.logs().last().unwrap().message, "hi");
    }

    #[test]
    fn fail_discards_the_batch() {
        let mut h = Harness::<StateProbe>::new();
        let error = h
            .process_batch([
                RecordBuilder::new("k", r#"{"op":"value-set","v":"x"}"#),
                RecordBuilder::new("k", r#"{"op":"map-put","k":"a","v":"1"}"#),
                RecordBuilder::new("k", r#"{"op":"fail"}"#),
            ])
            .unwrap_err();
        assert_eq!(error.message(), "record 2: state-probe: asked to fail");
        assert_eq!(
            run(&mut h, "k", json!({"op": "value-get"})),
            r#"{"value":null}"#
        );
        assert_eq!(
            run(&mut h, "k", json!({"op": "map-is-empty"})),
            r#"{"value":true}"#
        );
        assert!(h.process("k", r#"{"op":"nonsense"}"#).is_err());
    }
}
