//! Guards non-keyed operator state, natively: declaration (own handles, names unique across
//! keyed and operator state), every list call from `process`, `on_timer` and `init_state`,
//! the undo of a failing call, and `migrate` of its items.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use eddy_sdk::testing::{Harness, RecordBuilder};
use eddy_sdk::{
    Codec, Context, Error, ErrorKind, InitContext, LogLevel, Operator, OperatorListState,
    OperatorStateDescriptor, Record, Redistribution, StateDescriptor, StateKind, StateRegistry,
    Timer, ValueState,
};

/// Commands are `verb[ arg]`; `dump` emits both lists.
struct Probe {
    count: ValueState<u64>,
    buffer: OperatorListState<String>,
    rules: OperatorListState<u32>,
    /// How many buffered items `init_state` found.
    restored: usize,
    /// From the config: `init_state` adds an item, then fails.
    fail_init_state: bool,
}

impl Operator for Probe {
    const NAME: &'static str = "opstate";
    const VERSION: &'static str = "0.0.1";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
            buffer: states.operator_list("buffer"),
            rules: states
                .declare_operator("rules")
                .schema_version(2)
                .redistribution(Redistribution::Union)
                .codec(Codec::Json)
                .list(),
            restored: 0,
            fail_init_state: false,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        self.fail_init_state = config.contains("fail");
        Ok(())
    }

    fn init_state(&mut self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
        self.restored = self.buffer.get(ctx)?.len();
        ctx.log(LogLevel::Info, &format!("restored {}", self.restored));
        if self.fail_init_state {
            self.buffer.add(ctx, &"from a failed init".to_owned())?;
            return Err(Error::failed("asked to fail"));
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let count = self.count.get_or_default(ctx)? + 1;
        self.count.set(ctx, &count)?;
        let command = record.value_str()?;
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let items = || arg.split(',').map(str::to_owned).collect::<Vec<_>>();
        match verb {
            "add" => self.buffer.add(ctx, &arg.to_owned())?,
            "add-all" => self.buffer.add_all(ctx, &items())?,
            "update" => self.buffer.update(ctx, &items())?,
            "clear" => self.buffer.clear(ctx)?,
            "rule" => self.rules.add(ctx, &arg.parse()?)?,
            "add-fail" => {
                self.buffer.add(ctx, &arg.to_owned())?;
                return Err(Error::failed("asked to fail"));
            }
            "timer" => ctx.register_event_time_timer(arg.parse()?),
            "dump" => {
                let dump = format!(
                    "{:?} {:?} restored={}",
                    self.buffer.get(ctx)?,
                    self.rules.get(ctx)?,
                    self.restored
                );
                ctx.emit(record.key(), dump);
            }
            other => return Err(Error::failed(format!("unknown command {other}"))),
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let key = ctx.key_str()?.to_owned();
        self.buffer.add(ctx, &format!("{key}@{}", timer.timestamp))
    }

    fn migrate(state: &StateDescriptor, from_version: u32, value: &[u8]) -> Result<Vec<u8>, Error> {
        match (state.name.as_str(), state.kind, from_version) {
            // Schema 1 kept rules as decimal strings.
            ("rules", StateKind::List, 1) => {
                let old: String = state.codec().decode(value)?;
                state.codec().encode(&old.parse::<u32>()?)
            }
            _ => Err(Error::unsupported(format!(
                "no migration for {}",
                state.name
            ))),
        }
    }
}

fn run(h: &mut Harness<Probe>, command: &str) -> String {
    let emitted = h.process_utf8("k", command).unwrap();
    emitted.into_iter().map(|(_, v)| v).collect()
}

fn buffer(h: &Harness<Probe>) -> Vec<String> {
    h.operator_list("buffer").unwrap()
}

#[test]
fn operator_states_are_described_apart_from_keyed_ones() {
    let h = Harness::<Probe>::new();
    assert_eq!(h.info().states.len(), 1);
    assert_eq!(
        h.info().operator_states,
        [
            OperatorStateDescriptor {
                name: "buffer".into(),
                schema_version: 1,
                redistribution: Redistribution::EvenSplit,
                codec: Some("postcard".into()),
            },
            OperatorStateDescriptor {
                name: "rules".into(),
                schema_version: 2,
                redistribution: Redistribution::Union,
                codec: Some("json".into()),
            },
        ]
    );
}

#[test]
fn list_calls_change_the_workers_list_whatever_the_key() {
    let mut h = Harness::<Probe>::new();
    run(&mut h, "add a");
    h.process_utf8("other key", "add-all b,c").unwrap();
    run(&mut h, "rule 7");
    assert_eq!(run(&mut h, "dump"), r#"["a", "b", "c"] [7] restored=0"#);
    assert_eq!(buffer(&h), ["a", "b", "c"]);
    assert_eq!(h.operator_list::<u32>("rules").unwrap(), [7]);
    run(&mut h, "update x,y");
    assert_eq!(buffer(&h), ["x", "y"]);
    run(&mut h, "clear");
    assert!(buffer(&h).is_empty());
    assert_eq!(run(&mut h, "dump"), "[] [7] restored=0");
}

#[test]
fn a_failing_call_leaves_no_trace() {
    let mut h = Harness::<Probe>::new();
    run(&mut h, "add a");
    let error = h.process("k", "add-fail b").unwrap_err();
    assert_eq!(error.message(), "record 0: asked to fail");
    assert_eq!(buffer(&h), ["a"]);
    // The whole batch is undone, the records before the failing one too.
    let error = h
        .process_batch([
            RecordBuilder::new("j", "add c"),
            RecordBuilder::new("k", "clear"),
            RecordBuilder::new("k", "add-fail d"),
        ])
        .unwrap_err();
    assert_eq!(error.message(), "record 2: asked to fail");
    assert_eq!(buffer(&h), ["a"]);
    assert_eq!(h.value::<u64>("count", "k").unwrap(), Some(1));
}

#[test]
fn timers_reach_the_operator_state() {
    let mut h = Harness::<Probe>::new();
    run(&mut h, "timer 10");
    h.process_utf8("j", "timer 5").unwrap();
    h.advance_watermark(20).unwrap();
    assert_eq!(buffer(&h), ["j@5", "k@10"]);
}

#[test]
fn init_state_sees_the_list_a_new_instance_starts_with() {
    let mut h = Harness::<Probe>::new();
    h.set_operator_list("buffer", &["p".to_owned(), "q".to_owned()])
        .unwrap();
    // The running instance sees the seeded list from its next call...
    assert_eq!(run(&mut h, "dump"), r#"["p", "q"] [] restored=0"#);
    // ... and a new one in `init_state`.
    let mut h = h.with_config("{}");
    assert_eq!(run(&mut h, "dump"), r#"["p", "q"] [] restored=2"#);
    assert_eq!(h.logs().last().unwrap().message, "restored 2");
    assert_eq!(h.logs().last().unwrap().key, None);
}

#[test]
fn a_failing_init_state_fails_the_start_and_changes_nothing() {
    let mut h = Harness::<Probe>::new();
    run(&mut h, "add a");
    let mut h = h.with_config(r#"{"fail":true}"#);
    let error = h.init_result().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert_eq!(error.message(), "init_state: asked to fail");
    assert_eq!(buffer(&h), ["a"]);
    assert!(h.process("k", "dump").is_err());
}

#[test]
fn the_harness_names_the_operator_states_it_has() {
    let mut h = Harness::<Probe>::new();
    let error = h.operator_list::<String>("nope").unwrap_err();
    assert_eq!(
        error.message(),
        "no operator state named `nope`; the operator declares: buffer, rules"
    );
    assert!(h.set_operator_list("count", &[1u8]).is_err());
}

#[test]
fn items_migrate_through_a_list_descriptor_named_like_the_state() {
    let info = Harness::<Probe>::new().info().clone();
    let rules = info.operator_states[1].as_list_state();
    let old = Codec::Json.encode("42").unwrap();
    let new = Probe::migrate(&rules, 1, &old).unwrap();
    assert_eq!(new, b"42");
    let buffer = info.operator_states[0].as_list_state();
    let error = Probe::migrate(&buffer, 1, &old).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
}

/// Declares `name` as keyed state and again as operator state.
struct Clash;

impl Operator for Clash {
    const NAME: &'static str = "clash";
    const VERSION: &'static str = "0.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        states.map::<u8, u8>("seen");
        states.operator_list::<u8>("seen");
        Self
    }

    fn process(&mut self, _: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn a_name_used_by_keyed_and_operator_state_fails_init() {
    let mut h = Harness::<Clash>::new();
    let error = h.init_result().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(
        error.message().starts_with(
            "state `seen` is declared twice (the first time as a keyed state); state names \
             must be unique across keyed and operator states"
        ),
        "{error}"
    );
    assert!(h.process("k", "").is_err());
}
