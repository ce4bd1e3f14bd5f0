//! The operator lifecycle behind the component exports: `describe`, `init`, `process` (one
//! batch in, one batch result out) and `migrate`. The export glue of
//! [`export_operator!`](crate::export_operator) and the native test harness both drive an
//! operator through this one type, so they cannot disagree.

use crate::Operator;
use crate::batch::{BatchState, VERSION, patch_u32, put_u32, read_record, read_timer};
use crate::context::{Context, InitContext, Position};
use crate::error::{Error, ErrorKind};
use crate::host::HostState;
use crate::record::Record;
use crate::state::{Declared, OperatorInfo, StateDescriptor, StateRegistry};

/// The smallest encoded input record: key index, timestamp, watermark, value length,
/// header count.
const MIN_RECORD_SIZE: usize = 4 + 8 + 8 + 4 + 4;
/// An encoded fired timer: key index, timestamp, domain, watermark.
const TIMER_SIZE: usize = 4 + 8 + 1 + 8;

/// One input of a batch, as the operator gets it.
enum Item<'a> {
    Record(Record<'a>),
    Timer(crate::Timer),
}

/// What a batch carries: records for `process`, fired timers for `on-timer`.
#[derive(Debug, Clone, Copy)]
enum Items {
    Records,
    Timers,
}

impl Items {
    fn min_size(self) -> usize {
        match self {
            Items::Records => MIN_RECORD_SIZE,
            Items::Timers => TIMER_SIZE,
        }
    }
    fn count_name(self) -> &'static str {
        match self {
            Items::Records => "record count",
            Items::Timers => "timer count",
        }
    }
    fn item_name(self) -> &'static str {
        match self {
            Items::Records => "record",
            Items::Timers => "timer",
        }
    }
    fn export(self) -> &'static str {
        match self {
            Items::Records => "process",
            Items::Timers => "on-timer",
        }
    }
}

/// One operator instance and the buffers it reuses from batch to batch.
#[doc(hidden)]
pub struct Runtime<Op> {
    operator: Option<Op>,
    declared: Declared,
    batch: BatchState,
    /// The size of the last result, to allocate the next one at once.
    output_capacity: usize,
}

impl<Op: Operator> Default for Runtime<Op> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Op: Operator> Runtime<Op> {
    /// A runtime with no operator yet (`init` makes one).
    pub fn new() -> Self {
        Self {
            operator: None,
            declared: Declared::default(),
            batch: BatchState::default(),
            output_capacity: 0,
        }
    }

    /// The operator's name, version and states (opens a throw-away instance).
    pub fn describe() -> OperatorInfo {
        let mut registry = StateRegistry::new();
        let _operator = Op::open(&mut registry);
        let declared = registry.into_declared();
        OperatorInfo {
            name: Op::NAME.to_owned(),
            version: Op::VERSION.to_owned(),
            states: declared.states,
            operator_states: declared.operator_states,
        }
    }

    /// Opens a new operator instance, initializes it with `config` (JSON text) and lets it
    /// reach its operator state through `host`.
    ///
    /// A bad declaration or an error of [`Operator::init`] is `invalid-config` (unless it is
    /// `unsupported`); an error of [`Operator::init_state`] keeps its kind.
    pub(crate) fn init(&mut self, config: &str, host: &mut dyn HostState) -> Result<(), Error> {
        self.operator = None;
        let mut registry = StateRegistry::new();
        let mut operator = Op::open(&mut registry);
        registry
            .check()
            .and_then(|()| operator.init(config))
            .map_err(|error| match error.kind() {
                ErrorKind::Unsupported | ErrorKind::InvalidConfig => error,
                _ => Error::invalid_config(error.message()),
            })?;
        let declared = registry.into_declared();
        let mut ctx = InitContext::new(host, &declared.operator_states);
        operator
            .init_state(&mut ctx)
            .map_err(|error| error.context("init_state"))?;
        self.declared = declared;
        self.operator = Some(operator);
        Ok(())
    }

    /// The keyed states of the initialized operator, in handle order.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn states(&self) -> &[StateDescriptor] {
        &self.declared.states
    }

    /// Processes one encoded batch and returns the encoded result. Any record's error fails
    /// the whole batch, naming the record's position.
    pub(crate) fn process(
        &mut self,
        input: &[u8],
        host: &mut dyn HostState,
    ) -> Result<Vec<u8>, Error> {
        let result = self.run(input, host, Items::Records);
        self.batch.end();
        result
    }

    /// Handles one encoded batch of fired timers (`on-timer`); as [`process`](Self::process).
    pub(crate) fn on_timer(
        &mut self,
        input: &[u8],
        host: &mut dyn HostState,
    ) -> Result<Vec<u8>, Error> {
        let result = self.run(input, host, Items::Timers);
        self.batch.end();
        result
    }

    fn run(
        &mut self,
        input: &[u8],
        host: &mut dyn HostState,
        items: Items,
    ) -> Result<Vec<u8>, Error> {
        let Some(operator) = self.operator.as_mut() else {
            return Err(Error::failed(format!(
                "`{}` was called before a successful `init`",
                items.export()
            )));
        };
        let mut reader = self.batch.begin(input, &self.declared.states)?;
        let n_items = reader.count(items.min_size(), items.count_name())?;

        let mut out = Vec::with_capacity(self.output_capacity);
        out.push(VERSION);
        put_u32(&mut out, n_items);
        for index in 0..n_items {
            let count_at = out.len();
            put_u32(&mut out, 0);
            // Read the item, then call the operator with the one context both kinds use.
            let (item, key_index, timestamp, watermark) = match items {
                Items::Records => {
                    let raw = read_record(&mut reader, self.batch.n_keys())?;
                    let key = self.batch.key(input, raw.key_index);
                    let record = Record::new(key, raw);
                    (
                        Item::Record(record),
                        raw.key_index,
                        raw.timestamp,
                        raw.watermark,
                    )
                }
                Items::Timers => {
                    let raw = read_timer(&mut reader, self.batch.n_keys())?;
                    let t = raw.timer;
                    (Item::Timer(t), raw.key_index, t.timestamp, raw.watermark)
                }
            };
            let at = Position {
                key_index,
                key: self.batch.key(input, key_index),
                timestamp,
                item: index,
                watermark,
            };
            let mut ctx = Context::new(
                input,
                &mut self.batch,
                &mut *host,
                &mut out,
                &self.declared,
                at,
            );
            let called = match &item {
                Item::Record(record) => operator.process(&mut ctx, record),
                Item::Timer(timer) => operator.on_timer(&mut ctx, timer),
            };
            let n_emits = called
                .and_then(|()| ctx.finish())
                .map_err(|error| match item {
                    Item::Timer(t) => error.context(format_args!(
                        "timer {index} ({:?} {})",
                        t.domain, t.timestamp
                    )),
                    Item::Record(_) => error.context(format_args!("record {index}")),
                })?;
            patch_u32(&mut out, count_at, n_emits);
        }
        if reader.remaining() != 0 {
            return Err(Error::failed(format!(
                "malformed batch: {} bytes after the last {}",
                reader.remaining(),
                items.item_name()
            )));
        }
        self.batch.write_output(input, &mut out)?;
        self.output_capacity = out.len();
        Ok(out)
    }

    /// Rewrites one stored value to the schema version this module declares.
    pub fn migrate(
        state: &StateDescriptor,
        from_version: u32,
        value: &[u8],
    ) -> Result<Vec<u8>, Error> {
        Op::migrate(state, from_version, value)
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use crate::batch::host_side::{InputBatch, InputRecord};
    use crate::batch::put_bytes;
    use crate::context::LogLevel;
    use crate::error::StateError;
    use crate::host::{EntryPage, KeyPage};
    use crate::state::ValueState;

    /// Emits `(key, value + count)` with header `n: count`; counts in value state `n`.
    struct Echo {
        n: ValueState<u32>,
    }

    impl Operator for Echo {
        const NAME: &'static str = "echo";
        const VERSION: &'static str = "0.0.1";

        fn open(states: &mut StateRegistry) -> Self {
            states.list::<u8>("unused");
            Self {
                n: states.value("n"),
            }
        }

        fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
            if record.value() == b"fail" {
                return Err(Error::failed("no"));
            }
            let n = self.n.get_or_default(ctx)? + 1;
            self.n.set(ctx, &n)?;
            let value = [record.value(), n.to_string().as_bytes()].concat();
            ctx.emit_with_headers(record.key(), value, [("n", n.to_string())]);
            Ok(())
        }
    }

    /// Value state only: every other call is a test failure.
    struct ValuesOnly;

    impl HostState for ValuesOnly {
        fn value_get(&mut self, _: u32, _: u32) -> Result<Option<Vec<u8>>, StateError> {
            unreachable!("value state is prefetched")
        }
        fn map_get(&mut self, _: u32, _: u32, _: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn map_put(&mut self, _: u32, _: u32, _: &[u8], _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_remove(&mut self, _: u32, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_contains(&mut self, _: u32, _: u32, _: &[u8]) -> Result<bool, StateError> {
            unreachable!()
        }
        fn map_is_empty(&mut self, _: u32, _: u32) -> Result<bool, StateError> {
            unreachable!()
        }
        fn map_clear(&mut self, _: u32, _: u32) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_entries(
            &mut self,
            _: u32,
            _: u32,
            _: Option<&[u8]>,
            _: u32,
        ) -> Result<EntryPage, StateError> {
            unreachable!()
        }
        fn map_keys(
            &mut self,
            _: u32,
            _: u32,
            _: Option<&[u8]>,
            _: u32,
        ) -> Result<KeyPage, StateError> {
            unreachable!()
        }
        fn list_get(&mut self, _: u32, _: u32) -> Result<Vec<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn list_add(&mut self, _: u32, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_add_all(&mut self, _: u32, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_update(&mut self, _: u32, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_clear(&mut self, _: u32, _: u32) -> Result<(), StateError> {
            unreachable!()
        }
        fn operator_list_get(&mut self, _: u32) -> Result<Vec<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn operator_list_add(&mut self, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn operator_list_update(&mut self, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn log(&mut self, _: LogLevel, _: Option<u32>, _: &str) {}
    }

    fn input() -> Vec<u8> {
        InputBatch {
            processing_time: 0,
            timers: Vec::new(),
            keys: vec![b"k0".to_vec(), b"k1".to_vec()],
            handles: vec![1],
            // k0 has n = 7 (postcard: varint 7), k1 has none.
            slots: vec![Some(vec![7]), None],
            records: vec![
                InputRecord {
                    watermark: 0,
                    key_index: 1,
                    timestamp: 5,
                    value: b"a".to_vec(),
                    headers: vec![],
                },
                InputRecord {
                    watermark: 0,
                    key_index: 0,
                    timestamp: 6,
                    value: b"b".to_vec(),
                    headers: vec![("h".into(), "v".into())],
                },
                InputRecord {
                    watermark: 0,
                    key_index: 1,
                    timestamp: 7,
                    value: b"c".to_vec(),
                    headers: vec![],
                },
            ],
        }
        .encode()
        .unwrap()
    }

    fn runtime() -> Runtime<Echo> {
        let mut runtime = Runtime::<Echo>::new();
        runtime.init("{}", &mut ValuesOnly).unwrap();
        runtime
    }

    #[test]
    fn output_bytes_follow_the_documented_layout() {
        let output = runtime().process(&input(), &mut ValuesOnly).unwrap();

        // Written out by hand from docs/batch-format.md.
        let mut expected = vec![2];
        expected.extend(3u32.to_le_bytes());
        for (key, value, n) in [("k1", "a1", "1"), ("k0", "b8", "8"), ("k1", "c2", "2")] {
            expected.extend(1u32.to_le_bytes()); // one emit
            put_bytes(&mut expected, key.as_bytes()).unwrap();
            put_bytes(&mut expected, value.as_bytes()).unwrap();
            expected.extend(1u32.to_le_bytes()); // one header
            put_bytes(&mut expected, b"n").unwrap();
            put_bytes(&mut expected, n.as_bytes()).unwrap();
        }
        expected.extend(2u32.to_le_bytes()); // the last write per key: k0 = 8, k1 = 2
        for (key_index, n) in [(0u32, 8u8), (1, 2)] {
            expected.extend(key_index.to_le_bytes());
            expected.extend(1u32.to_le_bytes()); // handle
            expected.push(1); // set
            put_bytes(&mut expected, &[n]).unwrap();
        }
        expected.extend(0u32.to_le_bytes()); // no timer changes
        assert_eq!(output, expected);
    }

    #[test]
    fn batches_are_independent() {
        let mut runtime = runtime();
        let first = runtime.process(&input(), &mut ValuesOnly).unwrap();
        let second = runtime.process(&input(), &mut ValuesOnly).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn a_failing_record_fails_the_batch_with_its_position() {
        let mut batch = InputBatch {
            processing_time: 0,
            timers: Vec::new(),
            keys: vec![b"k".to_vec()],
            handles: vec![1],
            slots: vec![None],
            records: vec![InputRecord::default(), InputRecord::default()],
        };
        batch.records[1].value = b"fail".to_vec();
        let error = runtime()
            .process(&batch.encode().unwrap(), &mut ValuesOnly)
            .unwrap_err();
        assert_eq!(error.message(), "record 1: no");
    }

    #[test]
    fn malformed_batches_are_errors() {
        let mut runtime = runtime();
        let input = input();
        for len in 0..input.len() {
            assert!(
                runtime.process(&input[..len], &mut ValuesOnly).is_err(),
                "{len}"
            );
        }
        let mut trailing = input.clone();
        trailing.push(0);
        let error = runtime.process(&trailing, &mut ValuesOnly).unwrap_err();
        assert_eq!(
            error.message(),
            "malformed batch: 1 bytes after the last record"
        );
        // The list state (handle 0) cannot be prefetched.
        let mut wrong = input;
        wrong[1 + 8 + 4 + 6 + 6 + 4] = 0;
        let error = runtime.process(&wrong, &mut ValuesOnly).unwrap_err();
        assert!(
            error.message().contains("handle 0 is not a value state"),
            "{error}"
        );
    }

    #[test]
    fn process_before_init_is_an_error() {
        let error = Runtime::<Echo>::new()
            .process(&input(), &mut ValuesOnly)
            .unwrap_err();
        assert!(error.message().contains("before a successful `init`"));
    }
}
