//! `ttl-probe`: keyed state with a time to live, for the host's TTL enforcement.
//!
//! Input: JSON records `{"key": …, "op": …, …}`, keyed by `key`. Every op works on the
//! record key's state:
//!
//! | op | fields | does | emits |
//! |----|--------|------|-------|
//! | `put` | `value` (string) | sets `v` to it, puts `m[value] = value`, adds it to `l` | nothing |
//! | `get` | | reads `v`, the keys of `m`, the items of `l` | `{"key":…,"v":…,"m":[…],"l":[…]}` |
//! | `touch-v` | | reads `v` | nothing |
//! | `touch-m` | | reads every entry of `m` (through `map-keys`) | nothing |
//! | `touch-l` | | reads `l` (through `list-get`) | nothing |
//!
//! `get` emits, under the record key, `{"key":<record key>,"v":<value or null>,"m":[<map
//! keys, sorted>],"l":[<list items, oldest first>]}`, fields in that order. Every read
//! restarts the TTL under `on-read-and-write`, `get`'s too.
//!
//! Config: `{"update": "on-create-and-write" | "on-read-and-write"}` (default
//! `on-create-and-write`). The host reads state descriptors through `describe`, which gets
//! no config, so the TTL is declared, not configured: every state lives 4,000 ms of
//! processing time after its last update. `update` picks the states the ops use:
//!
//! | update | value (string) | map (string → string) | list (string) |
//! |--------|----------------|-----------------------|---------------|
//! | `on-create-and-write` | `v` | `m` | `l` |
//! | `on-read-and-write` | `v-rw` | `m-rw` | `l-rw` |
//!
//! All six use the JSON codec.

use std::time::Duration;

use eddy_sdk::{
    Codec, Context, Error, ListState, MapState, Operator, Record, StateRegistry, TtlUpdate,
    ValueState,
};
use serde::{Deserialize, Serialize};

/// The TTL every state of the probe is declared with.
pub const TTL_MS: u64 = 4_000;

/// One record.
#[derive(Debug, Deserialize)]
struct Command {
    op: String,
    #[serde(default)]
    value: Option<String>,
}

/// What `get` emits.
#[derive(Debug, Serialize)]
struct Got<'a> {
    key: &'a str,
    v: Option<String>,
    m: Vec<String>,
    l: Vec<String>,
}

/// The config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    update: Option<String>,
}

/// The states of one TTL update policy.
#[derive(Debug, Clone, Copy)]
struct States {
    v: ValueState<String>,
    m: MapState<String, String>,
    l: ListState<String>,
}

impl States {
    fn declare(states: &mut StateRegistry, suffix: &str, update: TtlUpdate) -> Self {
        let ttl = Duration::from_millis(TTL_MS);
        Self {
            v: states
                .declare(&format!("v{suffix}"))
                .ttl(ttl)
                .ttl_update(update)
                .codec(Codec::Json)
                .value(),
            m: states
                .declare(&format!("m{suffix}"))
                .ttl(ttl)
                .ttl_update(update)
                .codec(Codec::Json)
                .map(),
            l: states
                .declare(&format!("l{suffix}"))
                .ttl(ttl)
                .ttl_update(update)
                .codec(Codec::Json)
                .list(),
        }
    }
}

/// See the crate docs.
pub struct TtlProbe {
    on_write: States,
    on_read: States,
    read_too: bool,
}

impl TtlProbe {
    fn states(&self) -> States {
        if self.read_too {
            self.on_read
        } else {
            self.on_write
        }
    }
}

impl Operator for TtlProbe {
    const NAME: &'static str = "ttl-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            on_write: States::declare(states, "", TtlUpdate::OnCreateAndWrite),
            on_read: States::declare(states, "-rw", TtlUpdate::OnReadAndWrite),
            read_too: false,
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| Error::invalid_config(format!("ttl-probe config: {e}")))?;
        self.read_too = match config.update.as_deref() {
            None | Some("on-create-and-write") => false,
            Some("on-read-and-write") => true,
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "ttl-probe config: update {other:?} is neither \"on-create-and-write\" \
                     nor \"on-read-and-write\""
                )));
            }
        };
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command: Command = serde_json::from_slice(record.value())?;
        let States { v, m, l } = self.states();
        match command.op.as_str() {
            "put" => {
                let value = command
                    .value
                    .ok_or_else(|| Error::failed("ttl-probe: `put` needs a string `value`"))?;
                v.set(ctx, &value)?;
                m.put(ctx, &value, &value)?;
                l.add(ctx, &value)?;
            }
            "get" => {
                let got_v = v.get(ctx)?;
                let mut got_m = m.keys(ctx).collect::<Result<Vec<_>, _>>()?;
                got_m.sort();
                let got = Got {
                    key: ctx.key_str()?,
                    v: got_v,
                    m: got_m,
                    l: l.get(ctx)?,
                };
                ctx.emit(record.key(), serde_json::to_vec(&got)?);
            }
            "touch-v" => {
                v.get(ctx)?;
            }
            "touch-m" => {
                for key in m.keys(ctx) {
                    key?;
                }
            }
            "touch-l" => {
                l.get(ctx)?;
            }
            other => return Err(Error::failed(format!("ttl-probe: unknown op {other:?}"))),
        }
        Ok(())
    }
}

eddy_sdk::export_operator!(TtlProbe);

#[cfg(test)]
mod tests {
    use eddy_sdk::ErrorKind;
    use eddy_sdk::testing::Harness;
    use serde_json::json;

    use super::*;

    fn send(h: &mut Harness<TtlProbe>, op: &str, value: Option<&str>) -> Vec<String> {
        let mut record = json!({ "key": "k", "op": op });
        if let Some(value) = value {
            record["value"] = json!(value);
        }
        h.process_utf8("k", &record.to_string())
            .unwrap()
            .into_iter()
            .map(|(key, value)| {
                assert_eq!(key, "k");
                value
            })
            .collect()
    }

    fn get(h: &mut Harness<TtlProbe>) -> String {
        let emitted = send(h, "get", None);
        assert_eq!(emitted.len(), 1);
        emitted[0].clone()
    }

    fn at(h: &mut Harness<TtlProbe>, now: i64) {
        h.advance_processing_time(now).unwrap();
    }

    #[test]
    fn states_are_declared_with_the_ttl_and_json() {
        let h = Harness::<TtlProbe>::new();
        let names: Vec<(&str, Option<TtlUpdate>)> = h
            .states()
            .iter()
            .map(|s| (s.name.as_str(), s.ttl.map(|t| t.update)))
            .collect();
        let (w, r) = (
            Some(TtlUpdate::OnCreateAndWrite),
            Some(TtlUpdate::OnReadAndWrite),
        );
        assert_eq!(
            names,
            [
                ("v", w),
                ("m", w),
                ("l", w),
                ("v-rw", r),
                ("m-rw", r),
                ("l-rw", r)
            ]
        );
        assert!(
            h.states()
                .iter()
                .all(|s| s.ttl.map(|t| t.ttl_ms) == Some(4_000)
                    && s.codec.as_deref() == Some("json"))
        );
    }

    #[test]
    fn get_reports_every_state_and_put_emits_nothing() {
        let mut h = Harness::<TtlProbe>::new();
        assert_eq!(get(&mut h), r#"{"key":"k","v":null,"m":[],"l":[]}"#);
        assert!(send(&mut h, "put", Some("b")).is_empty());
        send(&mut h, "put", Some("a"));
        assert_eq!(
            get(&mut h),
            r#"{"key":"k","v":"a","m":["a","b"],"l":["b","a"]}"#
        );
        assert!(send(&mut h, "touch-v", None).is_empty());
        assert!(h.process("k", r#"{"key":"k","op":"put"}"#).is_err());
        assert!(h.process("k", r#"{"key":"k","op":"nope"}"#).is_err());
    }

    #[test]
    fn on_create_and_write_expires_each_value_after_its_last_write() {
        let mut h = Harness::<TtlProbe>::new();
        send(&mut h, "put", Some("x"));
        at(&mut h, 2_000);
        send(&mut h, "put", Some("y"));
        at(&mut h, 3_600);
        send(&mut h, "touch-v", None); // restarts nothing
        send(&mut h, "touch-m", None);
        send(&mut h, "touch-l", None);
        at(&mut h, 4_000); // x's entry and item expire, v (= y, written at 2000) lives
        assert_eq!(get(&mut h), r#"{"key":"k","v":"y","m":["y"],"l":["y"]}"#);
        at(&mut h, 6_000);
        assert_eq!(get(&mut h), r#"{"key":"k","v":null,"m":[],"l":[]}"#);
    }

    #[test]
    fn on_read_and_write_restarts_what_each_touch_reads() {
        let mut h = Harness::<TtlProbe>::new().with_config(r#"{"update":"on-read-and-write"}"#);
        send(&mut h, "put", Some("x"));
        at(&mut h, 2_400);
        send(&mut h, "touch-v", None);
        at(&mut h, 4_800); // v read at 2400 lives, m and l expired
        assert_eq!(h.value::<String>("v-rw", "k").unwrap(), Some("x".into()));
        assert_eq!(get(&mut h), r#"{"key":"k","v":"x","m":[],"l":[]}"#);
        send(&mut h, "put", Some("y")); // at 4800
        at(&mut h, 8_000);
        send(&mut h, "touch-m", None);
        send(&mut h, "touch-l", None);
        at(&mut h, 11_999); // v (4800) expired, m and l (read at 8000) live
        assert_eq!(get(&mut h), r#"{"key":"k","v":null,"m":["y"],"l":["y"]}"#);
        at(&mut h, 15_999); // that get restarted them at 11999
        assert_eq!(get(&mut h), r#"{"key":"k","v":null,"m":[],"l":[]}"#);
        // The other policy's states are untouched.
        assert!(!h.states().is_empty() && h.value::<String>("v", "k").unwrap().is_none());
    }

    #[test]
    fn configs_are_checked() {
        let ok = Harness::<TtlProbe>::new().with_config(r#"{"update":"on-create-and-write"}"#);
        assert!(ok.init_result().is_ok());
        for bad in [
            r#"{"ttl-ms":4000}"#,
            r#"{"update":"sometimes"}"#,
            r#"{"ttl":1000}"#,
        ] {
            let h = Harness::<TtlProbe>::new().with_config(bad);
            let error = h.init_result().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{bad}");
        }
    }
}
