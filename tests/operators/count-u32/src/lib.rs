//! `count-u32`: word count, version 1 of an upgrade: the count of each word is kept as four
//! little-endian bytes (state `count`, schema 1) and emitted as decimal text.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// Counts records per key in a `u32`.
pub struct CountU32 {
    count: ValueState<[u8; 4]>,
}

impl Operator for CountU32 {
    const NAME: &'static str = "count";
    const VERSION: &'static str = "1.0.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.declare("count").schema_version(1).value(),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let count = self.count.get(ctx)?.map_or(0, u32::from_le_bytes) + 1;
        self.count.set(ctx, &count.to_le_bytes())?;
        ctx.emit(record.key(), count.to_string());
        Ok(())
    }
}

eddy_sdk::export_operator!(CountU32);
