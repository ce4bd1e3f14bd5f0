//! `trap-on-tenth`: word count with JSON output (as `word-count-v2`) that traps on the tenth
//! record an instance processes: a swapped-in module that must be rolled back.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// A counter that breaks after nine records.
pub struct TrapOnTenth {
    count: ValueState<u64>,
    seen: u64,
}

impl Operator for TrapOnTenth {
    const NAME: &'static str = "word-count";
    const VERSION: &'static str = "2.0.1-broken";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
            seen: 0,
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        self.seen += 1;
        if self.seen == 10 {
            trap();
        }
        let count = self.count.get_or_default(ctx)? + 1;
        self.count.set(ctx, &count)?;
        let word = String::from_utf8_lossy(record.key());
        let out = serde_json::json!({ "word": word, "count": count, "v": 2 });
        ctx.emit(record.key(), out.to_string());
        Ok(())
    }
}

/// Panics; on Wasm a panic aborts, which traps the instance.
#[allow(clippy::panic)] // the whole point of this fixture
fn trap() -> ! {
    panic!("trap-on-tenth: the tenth record")
}

eddy_sdk::export_operator!(TrapOnTenth);
