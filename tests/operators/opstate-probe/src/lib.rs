//! `opstate-probe`: non-keyed operator state, for the host's operator-state calls,
//! checkpoints and redistribution.
//!
//! Operator states (lists of strings, JSON codec, schema version 1):
//! - `buffer`, redistributed by even split;
//! - `rules`, redistributed by union.
//!
//! Input: JSON records `{"key": …, "op": …, "item": …}`:
//!
//! | op | does | emits |
//! |----|------|-------|
//! | `buffer` | adds `item` to `buffer` | nothing |
//! | `rule` | adds `item` to `rules` | nothing |
//! | `clear-buffer` | empties `buffer` (an update with an empty list) | nothing |
//! | `dump` | reads both | `{"buffer":[…],"rules":[…]}` under the record key, each list sorted |
//! | `fail` | adds `item` to `buffer`, then returns an error | nothing (the call fails) |
//!
//! When an instance starts, `init_state` reads both lists and logs
//! `opstate-probe: init sees buffer=<n> rules=<m>` at info. No config.

use eddy_sdk::{
    Codec, Context, Error, InitContext, LogLevel, Operator, OperatorListState, Record,
    Redistribution, StateRegistry,
};
use serde::{Deserialize, Serialize};

/// One record.
#[derive(Debug, Deserialize)]
struct Command {
    op: String,
    #[serde(default)]
    item: Option<String>,
}

/// What `dump` emits.
#[derive(Debug, Serialize)]
struct Dump {
    buffer: Vec<String>,
    rules: Vec<String>,
}

/// See the crate docs.
pub struct OpstateProbe {
    buffer: OperatorListState<String>,
    rules: OperatorListState<String>,
}

fn item(command: Command) -> Result<String, Error> {
    command.item.ok_or_else(|| {
        Error::failed(format!(
            "opstate-probe: `{}` needs a string `item`",
            command.op
        ))
    })
}

impl Operator for OpstateProbe {
    const NAME: &'static str = "opstate-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            buffer: states
                .declare_operator("buffer")
                .redistribution(Redistribution::EvenSplit)
                .codec(Codec::Json)
                .list(),
            rules: states
                .declare_operator("rules")
                .redistribution(Redistribution::Union)
                .codec(Codec::Json)
                .list(),
        }
    }

    fn init_state(&mut self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
        let buffer = self.buffer.get(ctx)?.len();
        let rules = self.rules.get(ctx)?.len();
        ctx.log(
            LogLevel::Info,
            &format!("opstate-probe: init sees buffer={buffer} rules={rules}"),
        );
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command: Command = serde_json::from_slice(record.value())?;
        match command.op.as_str() {
            "buffer" => self.buffer.add(ctx, &item(command)?)?,
            "rule" => self.rules.add(ctx, &item(command)?)?,
            "clear-buffer" => self.buffer.clear(ctx)?,
            "dump" => {
                let mut dump = Dump {
                    buffer: self.buffer.get(ctx)?,
                    rules: self.rules.get(ctx)?,
                };
                dump.buffer.sort();
                dump.rules.sort();
                ctx.emit(record.key(), serde_json::to_vec(&dump)?);
            }
            "fail" => {
                self.buffer.add(ctx, &item(command)?)?;
                return Err(Error::failed("opstate-probe: asked to fail"));
            }
            other => {
                return Err(Error::failed(format!(
                    "opstate-probe: unknown op {other:?}"
                )));
            }
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(OpstateProbe);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};
    use serde_json::json;

    use super::*;

    fn send(
        h: &mut Harness<OpstateProbe>,
        key: &str,
        op: &str,
        item: &str,
    ) -> Vec<(String, String)> {
        let record = json!({ "key": key, "op": op, "item": item });
        h.process_utf8(key, &record.to_string()).unwrap()
    }

    #[test]
    fn states_are_declared_as_documented() {
        let h = Harness::<OpstateProbe>::new();
        assert!(h.info().states.is_empty());
        let states: Vec<(&str, Redistribution, Option<&str>)> = h
            .info()
            .operator_states
            .iter()
            .map(|s| (s.name.as_str(), s.redistribution, s.codec.as_deref()))
            .collect();
        assert_eq!(
            states,
            [
                ("buffer", Redistribution::EvenSplit, Some("json")),
                ("rules", Redistribution::Union, Some("json")),
            ]
        );
    }

    #[test]
    fn items_are_added_whatever_the_key_and_dumped_sorted() {
        let mut h = Harness::<OpstateProbe>::new();
        assert!(send(&mut h, "a", "buffer", "y").is_empty());
        send(&mut h, "b", "buffer", "x");
        send(&mut h, "a", "rule", "r2");
        send(&mut h, "c", "rule", "r1");
        assert_eq!(
            send(&mut h, "z", "dump", ""),
            [(
                "z".to_owned(),
                r#"{"buffer":["x","y"],"rules":["r1","r2"]}"#.to_owned()
            )]
        );
        assert_eq!(
            h.operator_list::<String>("buffer").unwrap(),
            ["y", "x"] // in insertion order; `dump` sorts
        );
        send(&mut h, "a", "clear-buffer", "");
        assert_eq!(
            send(&mut h, "a", "dump", "")[0].1,
            r#"{"buffer":[],"rules":["r1","r2"]}"#
        );
    }

    #[test]
    fn a_failing_record_leaves_no_trace() {
        let mut h = Harness::<OpstateProbe>::new();
        send(&mut h, "a", "buffer", "kept");
        let error = h
            .process_batch([
                RecordBuilder::new("a", r#"{"key":"a","op":"buffer","item":"lost"}"#),
                RecordBuilder::new("b", r#"{"key":"b","op":"fail","item":"lost too"}"#),
            ])
            .unwrap_err();
        assert_eq!(error.message(), "record 1: opstate-probe: asked to fail");
        assert_eq!(h.operator_list::<String>("buffer").unwrap(), ["kept"]);
        assert!(h.process("a", r#"{"key":"a","op":"buffer"}"#).is_err());
    }

    #[test]
    fn a_new_instance_logs_what_it_starts_with() {
        let mut h = Harness::<OpstateProbe>::new();
        h.set_operator_list("rules", &["r".to_owned()]).unwrap();
        send(&mut h, "a", "buffer", "x");
        send(&mut h, "a", "buffer", "y");
        let h = h.with_config("{}");
        assert_eq!(
            h.logs().last().unwrap().message,
            "opstate-probe: init sees buffer=2 rules=1"
        );
    }
}
