//! Guards state TTL, natively: values, map entries and list items expire in processing time
//! one by one, `OnReadAndWrite` restarts them on reads (a prefetched value through the SDK's
//! write-back, the rest through the host calls), `OnCreateAndWrite` does not, and a failed
//! call restarts nothing.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eddy_sdk::testing::{Harness, RecordBuilder};
use eddy_sdk::{
    Context, Error, ListState, MapState, Operator, Record, ReducingState, StateRegistry, TtlConfig,
    TtlUpdate, ValueState,
};

const TTL_MS: i64 = 1_000;

/// Commands are `verb[ arg]`; reads emit what they read, writes emit nothing.
/// `READ` picks the TTL update policy of every state.
struct Probe<const READ: bool> {
    v: ValueState<String>,
    m: MapState<String, u32>,
    l: ListState<String>,
    sum: ReducingState<i64>,
}

impl<const READ: bool> Operator for Probe<READ> {
    const NAME: &'static str = "ttl";
    const VERSION: &'static str = "0.0.1";

    fn open(states: &mut StateRegistry) -> Self {
        let update = if READ {
            TtlUpdate::OnReadAndWrite
        } else {
            TtlUpdate::OnCreateAndWrite
        };
        let ttl = Duration::from_millis(TTL_MS as u64);
        Self {
            v: states.declare("v").ttl(ttl).ttl_update(update).value(),
            m: states.declare("m").ttl(ttl).ttl_update(update).map(),
            l: states.declare("l").ttl(ttl).ttl_update(update).list(),
            sum: states
                .declare("sum")
                .ttl(ttl)
                .ttl_update(update)
                .reducing(|a: &i64, b: &i64| a + b),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command = record.value_str()?;
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let answer = match verb {
            "set" => return self.v.set(ctx, &arg.to_owned()),
            "get" => format!("{:?}", self.v.get(ctx)?),
            "get-set" => {
                let old = self.v.get(ctx)?;
                self.v.set(ctx, &arg.to_owned())?;
                format!("{old:?}")
            }
            "get-clear" => {
                self.v.get(ctx)?;
                return self.v.clear(ctx);
            }
            "get-fail" => {
                self.v.get(ctx)?;
                return Err(Error::failed("asked to fail"));
            }
            "put" => return self.m.put(ctx, arg, &1),
            "mget" => format!("{:?}", self.m.get(ctx, arg)?),
            "contains" => format!("{:?}", self.m.contains(ctx, arg)?),
            "empty" => format!("{:?}", self.m.is_empty(ctx)?),
            "keys" => format!("{:?}", self.m.keys(ctx).collect::<Result<Vec<_>, _>>()?),
            "entries" => {
                let entries = self
                    .m
                    .entries(ctx)
                    .page_size(1)
                    .collect::<Result<Vec<_>, _>>()?;
                format!("{entries:?}")
            }
            "add" => return self.l.add(ctx, &arg.to_owned()),
            "update" => {
                let items: Vec<String> = arg.split(',').map(str::to_owned).collect();
                return self.l.update(ctx, &items);
            }
            "list" => format!("{:?}", self.l.get(ctx)?),
            "sum-add" => return self.sum.add(ctx, arg.parse()?),
            "sum" => format!("{:?}", self.sum.get(ctx)?),
            other => return Err(Error::failed(format!("unknown command {other}"))),
        };
        ctx.emit(record.key(), answer);
        Ok(())
    }
}

type WriteOnly = Probe<false>;
type ReadToo = Probe<true>;

fn run<const READ: bool>(h: &mut Harness<Probe<READ>>, command: &str) -> String {
    let emitted = h.process_utf8("k", command).unwrap();
    emitted.into_iter().map(|(_, v)| v).collect()
}

fn at<const READ: bool>(h: &mut Harness<Probe<READ>>, now: i64) {
    h.advance_processing_time(now).unwrap();
}

fn value<const READ: bool>(h: &Harness<Probe<READ>>) -> Option<String> {
    h.value::<String>("v", "k").unwrap()
}

#[test]
fn descriptors_carry_the_ttl() {
    let h = Harness::<ReadToo>::new();
    for state in h.states() {
        assert_eq!(
            state.ttl,
            Some(TtlConfig {
                ttl_ms: 1_000,
                update: TtlUpdate::OnReadAndWrite
            }),
            "{}",
            state.name
        );
    }
    assert_eq!(
        Harness::<WriteOnly>::new().states()[0].ttl.unwrap().update,
        TtlUpdate::OnCreateAndWrite
    );
}

#[test]
fn a_value_expires_ttl_after_its_last_write() {
    let mut h = Harness::<WriteOnly>::new();
    at(&mut h, 100);
    run(&mut h, "set a");
    at(&mut h, 600);
    run(&mut h, "set b"); // a write restarts the TTL
    at(&mut h, 1_599);
    // A read does not restart it under on-create-and-write.
    assert_eq!(run(&mut h, "get"), r#"Some("b")"#);
    assert_eq!(value(&h), Some("b".into()));
    at(&mut h, 1_600); // 600 + 1000 <= 1600: expired
    assert_eq!(value(&h), None);
    assert_eq!(run(&mut h, "get"), "None");
    assert!(!h.has_state("k"));
}

#[test]
fn a_value_read_restarts_its_ttl_under_on_read_and_write() {
    let mut h = Harness::<ReadToo>::new();
    run(&mut h, "set a");
    at(&mut h, 900);
    assert_eq!(run(&mut h, "get"), r#"Some("a")"#);
    at(&mut h, 1_899); // read at 900: alive until 1900
    assert_eq!(value(&h), Some("a".into()));
    at(&mut h, 1_900);
    assert_eq!(value(&h), None);
    // Reading an absent value writes nothing.
    assert_eq!(run(&mut h, "get"), "None");
    assert_eq!(value(&h), None);
    assert!(!h.has_state("k"));
}

#[test]
fn a_write_in_the_same_record_wins_over_the_write_back() {
    let mut h = Harness::<ReadToo>::new();
    run(&mut h, "set a");
    assert_eq!(run(&mut h, "get-set b"), r#"Some("a")"#);
    assert_eq!(value(&h), Some("b".into()));
    run(&mut h, "get-clear");
    assert_eq!(value(&h), None);
    // Reads and a write of one key in one batch: the last write wins, after or before.
    h.process_batch([
        RecordBuilder::new("k", "set c"),
        RecordBuilder::new("k", "get"),
        RecordBuilder::new("k", "get-set d"),
        RecordBuilder::new("k", "get"),
    ])
    .unwrap();
    assert_eq!(value(&h), Some("d".into()));
}

#[test]
fn a_failed_call_restarts_nothing() {
    let mut h = Harness::<ReadToo>::new();
    run(&mut h, "set a");
    at(&mut h, 900);
    assert!(h.process("k", "get-fail").is_err());
    at(&mut h, 1_000);
    assert_eq!(value(&h), None);
}

#[test]
fn reads_through_value_get_restart_the_ttl_too() {
    let mut h = Harness::<ReadToo>::new().prefetch_values(false);
    run(&mut h, "set a");
    at(&mut h, 900);
    assert_eq!(run(&mut h, "get"), r#"Some("a")"#);
    at(&mut h, 1_899);
    assert_eq!(value(&h), Some("a".into()));
    at(&mut h, 1_900);
    assert_eq!(run(&mut h, "get"), "None");

    let mut h = Harness::<WriteOnly>::new().prefetch_values(false);
    run(&mut h, "set a");
    at(&mut h, 900);
    run(&mut h, "get");
    at(&mut h, 1_000);
    assert_eq!(value(&h), None);
}

#[test]
fn reducing_state_reads_restart_the_ttl_like_value_reads() {
    let mut h = Harness::<ReadToo>::new();
    run(&mut h, "sum-add 2");
    at(&mut h, 900);
    assert_eq!(run(&mut h, "sum"), "Some(2)");
    at(&mut h, 1_500);
    run(&mut h, "sum-add 3"); // adds to 2: it is still there
    assert_eq!(h.value::<i64>("sum", "k").unwrap(), Some(5));
    at(&mut h, 2_500);
    assert_eq!(run(&mut h, "sum"), "None");

    let mut h = Harness::<WriteOnly>::new();
    run(&mut h, "sum-add 2");
    at(&mut h, 900);
    run(&mut h, "sum");
    at(&mut h, 1_000);
    assert_eq!(run(&mut h, "sum"), "None");
}

#[test]
fn map_entries_expire_one_by_one() {
    let mut h = Harness::<WriteOnly>::new();
    run(&mut h, "put a");
    at(&mut h, 500);
    run(&mut h, "put b");
    at(&mut h, 999);
    assert_eq!(run(&mut h, "mget a"), "Some(1)"); // a read does not restart it
    assert_eq!(run(&mut h, "keys"), r#"["a", "b"]"#);
    at(&mut h, 1_000);
    assert_eq!(run(&mut h, "mget a"), "None");
    assert_eq!(run(&mut h, "contains a"), "false");
    assert_eq!(run(&mut h, "entries"), r#"[("b", 1)]"#);
    assert_eq!(
        h.map_entries::<String, u32>("m", "k").unwrap(),
        [("b".to_owned(), 1)]
    );
    run(&mut h, "put b"); // rewritten at 1000
    at(&mut h, 1_999);
    assert_eq!(run(&mut h, "empty"), "false");
    at(&mut h, 2_000);
    assert_eq!(run(&mut h, "empty"), "true");
    assert!(!h.has_state("k"));
}

#[test]
fn map_reads_restart_what_they_return_under_on_read_and_write() {
    let mut h = Harness::<ReadToo>::new();
    for key in ["a", "b", "c", "d"] {
        run(&mut h, &format!("put {key}"));
    }
    at(&mut h, 900);
    assert_eq!(run(&mut h, "mget a"), "Some(1)");
    assert_eq!(run(&mut h, "contains b"), "true");
    assert_eq!(run(&mut h, "mget z"), "None");
    assert_eq!(run(&mut h, "empty"), "false"); // restarts nothing
    at(&mut h, 1_000);
    assert_eq!(
        h.map_entries::<String, u32>("m", "k").unwrap(),
        [("a".to_owned(), 1), ("b".to_owned(), 1)]
    );
    run(&mut h, "put c");
    run(&mut h, "put d");
    at(&mut h, 1_800);
    // Paged iteration restarts every entry it returns.
    assert_eq!(run(&mut h, "keys"), r#"["a", "b", "c", "d"]"#);
    at(&mut h, 2_700);
    assert_eq!(
        run(&mut h, "entries"),
        r#"[("a", 1), ("b", 1), ("c", 1), ("d", 1)]"#
    );
    at(&mut h, 3_699);
    assert_eq!(h.map_entries::<String, u32>("m", "k").unwrap().len(), 4);
    at(&mut h, 3_700);
    assert_eq!(run(&mut h, "empty"), "true");
}

#[test]
fn list_items_expire_one_by_one() {
    let mut h = Harness::<WriteOnly>::new();
    run(&mut h, "add x");
    at(&mut h, 400);
    run(&mut h, "add y");
    at(&mut h, 999);
    assert_eq!(run(&mut h, "list"), r#"["x", "y"]"#);
    at(&mut h, 1_000);
    assert_eq!(run(&mut h, "list"), r#"["y"]"#);
    assert_eq!(h.list::<String>("l", "k").unwrap(), ["y"]);
    run(&mut h, "add z");
    at(&mut h, 1_400);
    assert_eq!(run(&mut h, "list"), r#"["z"]"#);
    // An update writes every item anew.
    run(&mut h, "update p,q");
    at(&mut h, 2_399);
    assert_eq!(run(&mut h, "list"), r#"["p", "q"]"#);
    at(&mut h, 2_400);
    assert_eq!(run(&mut h, "list"), "[]");
    assert!(!h.has_state("k"));
}

#[test]
fn list_reads_restart_every_item_under_on_read_and_write() {
    let mut h = Harness::<ReadToo>::new();
    run(&mut h, "add x");
    at(&mut h, 400);
    run(&mut h, "add y");
    at(&mut h, 900);
    assert_eq!(run(&mut h, "list"), r#"["x", "y"]"#);
    at(&mut h, 1_899);
    assert_eq!(h.list::<String>("l", "k").unwrap(), ["x", "y"]);
    at(&mut h, 1_900);
    assert!(h.list::<String>("l", "k").unwrap().is_empty());
}

#[test]
fn state_set_by_a_test_is_stamped_with_the_clock() {
    let mut h = Harness::<WriteOnly>::new();
    at(&mut h, 5_000);
    assert_eq!(h.processing_time(), 5_000);
    h.set_value("v", "k", &"seeded".to_owned()).unwrap();
    at(&mut h, 5_999);
    assert_eq!(value(&h), Some("seeded".into()));
    at(&mut h, 6_000);
    assert_eq!(value(&h), None);
}
