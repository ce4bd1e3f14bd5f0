//! `faulty`: a per-key counter (like `word-count`: emits the key and its running count) that
//! misbehaves on request, for testing the host's fault isolation. By record value:
//! - `"trap"`: panics, which traps the instance;
//! - `"loop"`: spins forever (the host's timeout must stop it);
//! - `"oom"`: allocates 16 MiB blocks until allocation fails (the host's memory limit);
//! - `"error"`: returns an error (the host dead-letters the record);
//! - anything else: counts the record.
//!
//! The count is only incremented by well-behaved records, so a test can check that a
//! failing record in a batch left the others' effects exactly once.

use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};

/// The misbehaving counter.
pub struct Faulty {
    count: ValueState<u64>,
}

impl Operator for Faulty {
    const NAME: &'static str = "faulty";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            count: states.value("count"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        match record.value() {
            b"trap" => trap(),
            b"loop" => spin(),
            b"oom" => exhaust_memory(),
            b"error" => Err(Error::failed("faulty: asked to fail")),
            _ => {
                let count = self.count.get_or_default(ctx)? + 1;
                self.count.set(ctx, &count)?;
                ctx.emit(record.key(), count.to_string());
                Ok(())
            }
        }
    }
}

/// Panics; on Wasm a panic aborts, which traps the instance.
#[allow(clippy::panic)] // the whole point of this fixture
fn trap() -> ! {
    panic!("faulty: asked to trap")
}

/// Never returns; `black_box` keeps the optimizer from reasoning the loop away.
fn spin() -> ! {
    let mut spins = 0u64;
    loop {
        spins = core::hint::black_box(spins.wrapping_add(1));
    }
}

/// Allocates (and touches) 16 MiB at a time until allocation fails, which aborts.
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xa5; 16 << 20]);
        core::hint::black_box(&hoard);
    }
}

eddy_sdk::export_operator!(Faulty);

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::{Harness, RecordBuilder};

    use super::*;

    #[test]
    fn counts_well_behaved_records() {
        let mut h = Harness::<Faulty>::new();
        assert_eq!(
            h.process_utf8("a", "x").unwrap(),
            [("a".into(), "1".into())]
        );
        assert_eq!(
            h.process_utf8("a", "y").unwrap(),
            [("a".into(), "2".into())]
        );
        assert_eq!(
            h.process_utf8("b", "z").unwrap(),
            [("b".into(), "1".into())]
        );
    }

    #[test]
    fn error_fails_the_batch_and_discards_its_effects() {
        let mut h = Harness::<Faulty>::new();
        let error = h
            .process_batch([
                RecordBuilder::new("a", "x"),
                RecordBuilder::new("a", "error"),
            ])
            .unwrap_err();
        assert_eq!(error.message(), "record 1: faulty: asked to fail");
        assert_eq!(h.value::<u64>("count", "a").unwrap(), None);
    }
}
