//! Guards the SDK's state semantics end to end, natively: typed state of every kind through
//! the batch codec and the runtime, batch-local value overlays, paging, error isolation,
//! headers, logs and the lifecycle (describe, init, migrate).

#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use eddy_sdk::testing::{Harness, RecordBuilder};
use eddy_sdk::{
    AggregateFunction, AggregatingState, Context, Error, ErrorKind, ListState, LogLevel, MapState,
    Operator, Record, ReducingState, StateDescriptor, StateKind, StateRegistry, TtlConfig,
    TtlUpdate, ValueState,
};

#[derive(Clone, Copy)]
struct Average;

impl AggregateFunction for Average {
    type Input = i64;
    type Accumulator = (i64, u64);
    type Output = i64;

    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }

    fn add(&self, value: i64, acc: &mut (i64, u64)) {
        acc.0 += value;
        acc.1 += 1;
    }

    fn get_result(&self, acc: &(i64, u64)) -> i64 {
        acc.0 / acc.1.max(1) as i64
    }
}

/// Commands are `verb[ arg[ arg]]`; each emits one record with the answer.
struct Probe {
    text: ValueState<String>,
    map: MapState<String, u32>,
    list: ListState<String>,
    sum: ReducingState<i64>,
    avg: AggregatingState<Average>,
    page: u32,
}

impl Operator for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "1.2.3";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            text: states.value("text"),
            map: states
                .declare("map")
                .schema_version(2)
                .ttl(std::time::Duration::from_millis(5))
                .map(),
            list: states.list("list"),
            sum: states.reducing("sum", |a: &i64, b: &i64| a + b),
            avg: states.aggregating("avg", Average),
            page: 256,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        match config.trim() {
            "{}" => Ok(()),
            other => match other.strip_prefix("page=") {
                Some(page) => {
                    self.page = page
                        .parse()
                        .map_err(|_| Error::invalid_config("page must be a number"))?;
                    Ok(())
                }
                None => Err(Error::invalid_config(format!("unknown config {other}"))),
            },
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command = record.value_str()?;
        let mut words = command.split(' ');
        let verb = words.next().unwrap_or_default();
        let a = words.next().unwrap_or_default();
        let b = words.next().unwrap_or_default();
        let answer = match verb {
            "set" => {
                self.text.set(ctx, &a.to_owned())?;
                "ok".to_owned()
            }
            "get" => format!("{:?}", self.text.get(ctx)?),
            "append" => {
                let text = self.text.get_or_default(ctx)? + a;
                self.text.set(ctx, &text)?;
                text
            }
            "clear" => {
                self.text.clear(ctx)?;
                "ok".to_owned()
            }
            "put" => {
                self.map.put(ctx, a, &b.parse()?)?;
                "ok".to_owned()
            }
            "mget" => format!("{:?}", self.map.get(ctx, a)?),
            "remove" => {
                self.map.remove(ctx, a)?;
                "ok".to_owned()
            }
            "contains" => self.map.contains(ctx, a)?.to_string(),
            "empty" => self.map.is_empty(ctx)?.to_string(),
            "mclear" => {
                self.map.clear(ctx)?;
                "ok".to_owned()
            }
            "entries" => {
                let entries = self
                    .map
                    .entries(ctx)
                    .page_size(self.page)
                    .collect::<Result<Vec<_>, _>>()?;
                format!("{entries:?}")
            }
            "keys" => {
                let keys = self
                    .map
                    .keys(ctx)
                    .page_size(self.page)
                    .collect::<Result<Vec<_>, _>>()?;
                format!("{keys:?}")
            }
            "add" => {
                self.list.add(ctx, &a.to_owned())?;
                "ok".to_owned()
            }
            "add-all" => {
                self.list.add_all(ctx, &[a.to_owned(), b.to_owned()])?;
                "ok".to_owned()
            }
            "update" => {
                self.list.update(ctx, &[a.to_owned()])?;
                "ok".to_owned()
            }
            "list" => format!("{:?}", self.list.get(ctx)?),
            "lclear" => {
                self.list.clear(ctx)?;
                "ok".to_owned()
            }
            "sum" => {
                self.sum.add(ctx, a.parse()?)?;
                format!("{:?}", self.sum.get(ctx)?)
            }
            "avg" => {
                self.avg.add(ctx, a.parse()?)?;
                format!("{:?}", self.avg.get(ctx)?)
            }
            "headers" => {
                let headers: Vec<_> = record.headers().collect();
                ctx.emit_with_headers(record.key(), "headers", headers.iter().rev().copied());
                return Ok(());
            }
            "log" => {
                ctx.log(LogLevel::Warn, a);
                "ok".to_owned()
            }
            "time" => ctx.timestamp().to_string(),
            "nothing" => return Ok(()),
            "twice" => {
                ctx.emit(record.key(), "1");
                ctx.emit(record.key(), "2");
                return Ok(());
            }
            "fail-after-writes" => {
                self.text.set(ctx, &"doomed".to_owned())?;
                self.map.put(ctx, "doomed", &1)?;
                self.list.add(ctx, &"doomed".to_owned())?;
                ctx.emit(record.key(), "doomed");
                return Err(Error::failed("asked to fail"));
            }
            other => return Err(Error::failed(format!("unknown command {other:?}"))),
        };
        ctx.emit(ctx.key(), answer);
        Ok(())
    }
}

fn answer(harness: &mut Harness<Probe>, key: &str, command: &str) -> String {
    let emitted = harness.process_utf8(key, command).unwrap();
    assert_eq!(emitted.len(), 1, "{command} emitted {emitted:?}");
    assert_eq!(emitted[0].0, key);
    emitted[0].1.clone()
}

#[test]
fn describe_lists_states_in_declaration_order() {
    let harness = Harness::<Probe>::new();
    let info = harness.info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("probe", "1.2.3")
    );
    let names: Vec<_> = info
        .states
        .iter()
        .map(|s| (s.name.as_str(), s.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("text", StateKind::Value),
            ("map", StateKind::Map),
            ("list", StateKind::List),
            ("sum", StateKind::Value),
            ("avg", StateKind::Value),
        ]
    );
    assert_eq!(info.states[1].schema_version, 2);
    assert_eq!(
        info.states[1].ttl,
        Some(TtlConfig {
            ttl_ms: 5,
            update: TtlUpdate::OnCreateAndWrite
        })
    );
    assert_eq!(info.states[0].schema_version, 1);
    assert_eq!(info.states[0].ttl, None);
    assert!(info.operator_states.is_empty());
}

#[test]
fn value_state_is_per_key() {
    let mut h = Harness::<Probe>::new();
    assert_eq!(answer(&mut h, "k", "get"), "None");
    assert_eq!(answer(&mut h, "k", "set x"), "ok");
    assert_eq!(answer(&mut h, "k", "get"), "Some(\"x\")");
    assert_eq!(answer(&mut h, "other", "get"), "None");
    assert_eq!(answer(&mut h, "k", "append y"), "xy");
    assert_eq!(h.value::<String>("text", "k").unwrap(), Some("xy".into()));
    assert_eq!(answer(&mut h, "k", "clear"), "ok");
    assert_eq!(answer(&mut h, "k", "get"), "None");
    assert_eq!(h.value::<String>("text", "k").unwrap(), None);
    assert!(!h.has_state("k"));
}

#[test]
fn value_state_without_prefetch_goes_through_value_get() {
    let mut h = Harness::<Probe>::new().prefetch_values(false);
    assert_eq!(answer(&mut h, "k", "set x"), "ok");
    assert_eq!(answer(&mut h, "k", "append y"), "xy");
    assert_eq!(answer(&mut h, "k", "get"), "Some(\"xy\")");
    let batch = h
        .process_batch([
            RecordBuilder::new("k", "append 1"),
            RecordBuilder::new("k", "append 2"),
            RecordBuilder::new("k", "clear"),
            RecordBuilder::new("k", "get"),
        ])
        .unwrap();
    assert_eq!(batch[1][0].value_str().unwrap(), "xy12");
    assert_eq!(batch[3][0].value_str().unwrap(), "None");
    assert_eq!(h.value::<String>("text", "k").unwrap(), None);
}

#[test]
fn a_batch_sees_its_own_earlier_writes() {
    let mut h = Harness::<Probe>::new();
    h.set_value("text", "a", &"start-".to_owned()).unwrap();
    let batch = h
        .process_batch([
            RecordBuilder::new("a", "append 1"),
            RecordBuilder::new("b", "append x"),
            RecordBuilder::new("a", "append 2"),
            RecordBuilder::new("b", "clear"),
            RecordBuilder::new("b", "get"),
            RecordBuilder::new("a", "nothing"),
        ])
        .unwrap();
    let values: Vec<Vec<&str>> = batch
        .iter()
        .map(|emits| emits.iter().map(|e| e.value_str().unwrap()).collect())
        .collect();
    assert_eq!(
        values,
        [
            vec!["start-1"],
            vec!["x"],
            vec!["start-12"],
            vec!["ok"],
            vec!["None"],
            vec![]
        ]
    );
    assert_eq!(
        h.value::<String>("text", "a").unwrap(),
        Some("start-12".into())
    );
    assert_eq!(h.value::<String>("text", "b").unwrap(), None);
}

#[test]
fn map_state_operations() {
    let mut h = Harness::<Probe>::new();
    assert_eq!(answer(&mut h, "k", "empty"), "true");
    assert_eq!(answer(&mut h, "k", "put a 1"), "ok");
    assert_eq!(answer(&mut h, "k", "put b 2"), "ok");
    assert_eq!(answer(&mut h, "k", "put a 3"), "ok");
    assert_eq!(answer(&mut h, "k", "mget a"), "Some(3)");
    assert_eq!(answer(&mut h, "k", "mget z"), "None");
    assert_eq!(answer(&mut h, "k", "contains b"), "true");
    assert_eq!(answer(&mut h, "k", "contains z"), "false");
    assert_eq!(answer(&mut h, "k", "empty"), "false");
    assert_eq!(answer(&mut h, "other", "empty"), "true");
    assert_eq!(h.map_get::<str, u32>("map", "k", "b").unwrap(), Some(2));
    assert_eq!(answer(&mut h, "k", "remove b"), "ok");
    assert_eq!(answer(&mut h, "k", "contains b"), "false");
    assert_eq!(answer(&mut h, "k", "entries"), r#"[("a", 3)]"#);
    assert_eq!(answer(&mut h, "k", "mclear"), "ok");
    assert_eq!(answer(&mut h, "k", "empty"), "true");
    assert_eq!(answer(&mut h, "k", "entries"), "[]");
    assert!(!h.has_state("k"));
}

#[test]
fn map_iteration_pages_in_encoded_key_order() {
    for page in [1, 2, 3, 256] {
        let mut h = Harness::<Probe>::new().with_config(&format!("page={page}"));
        // Postcard encodes a string as its length then its bytes: shorter keys sort first.
        for (key, value) in [
            ("bb", 1),
            ("a", 2),
            ("c", 3),
            ("aaa", 4),
            ("ab", 5),
            ("b", 6),
        ] {
            answer(&mut h, "k", &format!("put {key} {value}"));
        }
        let expected = r#"[("a", 2), ("b", 6), ("c", 3), ("ab", 5), ("bb", 1), ("aaa", 4)]"#;
        assert_eq!(answer(&mut h, "k", "entries"), expected, "page size {page}");
        assert_eq!(
            answer(&mut h, "k", "keys"),
            r#"["a", "b", "c", "ab", "bb", "aaa"]"#,
            "page size {page}"
        );
        let entries: Vec<(String, u32)> = h.map_entries("map", "k").unwrap();
        assert_eq!(entries.len(), 6);
    }
}

#[test]
fn list_state_operations() {
    let mut h = Harness::<Probe>::new();
    assert_eq!(answer(&mut h, "k", "list"), "[]");
    assert_eq!(answer(&mut h, "k", "add x"), "ok");
    assert_eq!(answer(&mut h, "k", "add-all y z"), "ok");
    assert_eq!(answer(&mut h, "k", "list"), r#"["x", "y", "z"]"#);
    assert_eq!(h.list::<String>("list", "k").unwrap(), ["x", "y", "z"]);
    assert_eq!(answer(&mut h, "k", "update w"), "ok");
    assert_eq!(answer(&mut h, "k", "list"), r#"["w"]"#);
    assert_eq!(answer(&mut h, "k", "lclear"), "ok");
    assert_eq!(answer(&mut h, "k", "list"), "[]");
    assert!(!h.has_state("k"));
}

#[test]
fn reducing_and_aggregating_state() {
    let mut h = Harness::<Probe>::new();
    assert_eq!(answer(&mut h, "k", "sum 5"), "Some(5)");
    assert_eq!(answer(&mut h, "k", "sum -2"), "Some(3)");
    assert_eq!(answer(&mut h, "j", "sum 1"), "Some(1)");
    assert_eq!(h.value::<i64>("sum", "k").unwrap(), Some(3));
    assert_eq!(answer(&mut h, "k", "avg 10"), "Some(10)");
    assert_eq!(answer(&mut h, "k", "avg 20"), "Some(15)");
    assert_eq!(h.value::<(i64, u64)>("avg", "k").unwrap(), Some((30, 2)));
}

#[test]
fn an_error_discards_every_effect_of_the_batch() {
    let mut h = Harness::<Probe>::new();
    answer(&mut h, "k", "set before");
    answer(&mut h, "k", "put a 1");
    answer(&mut h, "k", "add x");
    let error = h.process("k", "fail-after-writes").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert_eq!(error.message(), "record 0: asked to fail");
    assert_eq!(
        h.value::<String>("text", "k").unwrap(),
        Some("before".into())
    );
    assert_eq!(
        h.map_entries::<String, u32>("map", "k").unwrap(),
        [("a".into(), 1)]
    );
    assert_eq!(h.list::<String>("list", "k").unwrap(), ["x"]);

    let error = h
        .process_batch([
            RecordBuilder::new("k", "set good"),
            RecordBuilder::new("k", "put b 2"),
            RecordBuilder::new("k", "bogus"),
        ])
        .unwrap_err();
    assert_eq!(error.message(), "record 2: unknown command \"bogus\"");
    assert_eq!(
        h.value::<String>("text", "k").unwrap(),
        Some("before".into())
    );
    assert_eq!(h.map_get::<str, u32>("map", "k", "b").unwrap(), None);
}

#[test]
fn std_errors_convert_with_question_mark() {
    let mut h = Harness::<Probe>::new();
    let error = h.process("k", "sum x").unwrap_err();
    assert_eq!(error.message(), "record 0: invalid digit found in string");
    let error = h.process("k", [0xff, 0xfe]).unwrap_err();
    assert!(error.message().contains("is not UTF-8"), "{error}");
}

#[test]
fn headers_timestamps_multiple_emits_and_logs() {
    let mut h = Harness::<Probe>::new();
    let emitted = h
        .process_record(
            RecordBuilder::new("k", "headers")
                .header("a", "1")
                .header("b", "é"),
        )
        .unwrap();
    assert_eq!(
        emitted[0].headers,
        [
            ("b".to_owned(), "é".to_owned()),
            ("a".to_owned(), "1".to_owned())
        ]
    );
    let emitted = h
        .process_record(RecordBuilder::new("k", "time").timestamp(-42))
        .unwrap();
    assert_eq!(emitted[0].value_str().unwrap(), "-42");
    assert_eq!(
        h.process_utf8("k", "twice").unwrap(),
        [
            ("k".to_owned(), "1".to_owned()),
            ("k".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(h.process("k", "nothing").unwrap(), []);
    answer(&mut h, "k", "log hello");
    let line = h.logs().last().unwrap();
    assert_eq!(line.level, LogLevel::Warn);
    assert_eq!(line.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(line.message, "hello");
}

#[test]
fn init_errors_are_kept_and_block_processing() {
    let mut h = Harness::<Probe>::new().with_config("page=x");
    let error = h.init_result().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    let error = h.process("k", "get").unwrap_err();
    assert_eq!(error.message(), "init failed: page must be a number");
    let h = h.with_config("{}");
    assert!(h.init_result().is_ok());
}

#[test]
fn state_inspection_names_the_wrong_state() {
    let h = Harness::<Probe>::new();
    let error = h.value::<String>("map", "k").unwrap_err();
    assert!(
        error.message().contains("no Value state named `map`"),
        "{error}"
    );
    assert!(
        error.message().contains("text (Value), map (Map)"),
        "{error}"
    );
}

#[test]
fn migrate_is_unsupported_by_default() {
    let state = StateDescriptor {
        name: "text".into(),
        kind: StateKind::Value,
        schema_version: 2,
        ttl: None,
        codec: None,
    };
    let error = Probe::migrate(&state, 1, b"").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(
        error.message(),
        "operator `probe` 1.2.3 cannot migrate state `text` from schema version 1 to 2"
    );
}

struct Duplicate;

impl Operator for Duplicate {
    const NAME: &'static str = "duplicate";
    const VERSION: &'static str = "0.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        states.value::<u8>("x");
        states.map::<u8, u8>("x");
        Self
    }

    fn process(&mut self, _: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn duplicate_state_names_fail_init() {
    let h = Harness::<Duplicate>::new();
    let error = h.init_result().unwrap_err();
    assert!(error.message().contains("`x` is declared twice"), "{error}");
}
