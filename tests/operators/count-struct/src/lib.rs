//! `count-struct`: word count, version 2 of an upgrade: the count of each word is kept as
//! `{count: u64, last_seen: i64}` (state `count`, schema 2); `migrate` turns version 1's
//! four little-endian bytes into it. Emits the count as decimal text, as version 1 did.

use eddy_sdk::{
    Context, Error, Operator, Record, StateDescriptor, StateRegistry, ValueState, migrate_value,
};

/// What schema 2 keeps per word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    /// Records of the word so far.
    pub count: u64,
    /// Event time of the last one (0 when it came from schema 1).
    pub last_seen: i64,
}

/// Counts records per key in a struct.
pub struct CountStruct {
    count: ValueState<Counted>,
}

impl Operator for CountStruct {
    const NAME: &'static str = "count";
    const VERSION: &'static str = "2.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.declare("count").schema_version(2).value(),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let mut c = self.count.get(ctx)?.unwrap_or_default();
        c.count += 1;
        c.last_seen = record.timestamp();
        self.count.set(ctx, &c)?;
        ctx.emit(record.key(), c.count.to_string());
        Ok(())
    }

    fn migrate(state: &StateDescriptor, from_version: u32, value: &[u8]) -> Result<Vec<u8>, Error> {
        match (state.name.as_str(), from_version) {
            ("count", 1) => migrate_value(value, |old: [u8; 4]| Counted {
                count: u64::from(u32::from_le_bytes(old)),
                last_seen: 0,
            }),
            _ => Err(Error::unsupported(format!(
                "count 2.0.0 cannot migrate state `{}` from schema version {from_version}",
                state.name
            ))),
        }
    }
}

eddy_sdk::export_operator!(CountStruct);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_four_le_bytes_into_the_struct() {
        let d = StateDescriptor {
            name: "count".into(),
            kind: eddy_sdk::StateKind::Value,
            schema_version: 2,
            ttl: None,
            codec: None,
        };
        let old = eddy_sdk::encode_value(&41u32.to_le_bytes()).unwrap_or_default();
        let new = CountStruct::migrate(&d, 1, &old).unwrap_or_default();
        assert_eq!(
            new,
            eddy_sdk::encode_value(&Counted {
                count: 41,
                last_seen: 0
            })
            .unwrap_or_default()
        );
        assert!(CountStruct::migrate(&d, 7, &old).is_err());
    }
}
