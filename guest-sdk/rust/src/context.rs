//! The per-record [`Context`]: the current key and time, emitting output records, logging,
//! and (through the typed state handles) the current key's state and the operator state;
//! the [`InitContext`] of [`Operator::init_state`](crate::Operator::init_state), which
//! reaches the operator state only.

use crate::batch::{BatchState, patch_u32, put_bytes, put_u32};
use crate::error::{Error, StateError};
use crate::host::HostState;
use crate::state::{Codec, Declared, OperatorStateDescriptor, StateDescriptor};
use crate::time::{TimeDomain, Timer};

/// Severity of a log line (the WIT `log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the operator handled.
    Warn,
    /// Something failed.
    Error,
}

/// What an operator can do while it processes one record: emit records, log, and reach the
/// state of the record's key through the state handles it declared in
/// [`Operator::open`](crate::Operator::open).
///
/// Keyed state calls made through a `Context` are scoped to the current record's key; there
/// is no way to reach another key's state. Operator state
/// ([`OperatorListState`](crate::OperatorListState)) is the worker's, whatever the key.
pub struct Context<'a> {
    input: &'a [u8],
    batch: &'a mut BatchState,
    host: &'a mut dyn HostState,
    out: &'a mut Vec<u8>,
    declared: &'a Declared,
    key_index: u32,
    key: &'a [u8],
    timestamp: i64,
    /// Index of the record (or timer) being handled in its batch.
    item: u32,
    watermark: i64,
    n_emits: u32,
    deferred: Option<Error>,
}

/// Where a [`Context`] is: which key, which item of the batch, at what time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position<'a> {
    pub(crate) key_index: u32,
    pub(crate) key: &'a [u8],
    pub(crate) timestamp: i64,
    pub(crate) item: u32,
    pub(crate) watermark: i64,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        input: &'a [u8],
        batch: &'a mut BatchState,
        host: &'a mut dyn HostState,
        out: &'a mut Vec<u8>,
        declared: &'a Declared,
        at: Position<'a>,
    ) -> Self {
        Self {
            input,
            batch,
            host,
            out,
            declared,
            key_index: at.key_index,
            key: at.key,
            timestamp: at.timestamp,
            item: at.item,
            watermark: at.watermark,
            n_emits: 0,
            deferred: None,
        }
    }

    /// The number of records emitted, or the first error an emit could not report itself.
    pub(crate) fn finish(self) -> Result<u32, Error> {
        match self.deferred {
            Some(error) => Err(error),
            None => Ok(self.n_emits),
        }
    }

    /// The current record's key.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The current record's key as UTF-8 text.
    pub fn key_str(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.key).map_err(|error| {
            Error::failed(format!(
                "record key {:?} is not UTF-8: {error}",
                String::from_utf8_lossy(self.key)
            ))
        })
    }

    /// The current record's event timestamp (milliseconds since the Unix epoch); in
    /// [`on_timer`](crate::Operator::on_timer), the timer's timestamp.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The job's event-time watermark as this record (or timer) is handled: no record with
    /// a timestamp at or below it is still to come, except late ones within the job's
    /// allowed lateness. [`NO_WATERMARK`](crate::NO_WATERMARK) before any.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The host's wall clock at the call (ms since the Unix epoch). Not deterministic: a
    /// replay after a crash sees another time.
    pub fn processing_time(&self) -> i64 {
        self.batch.processing_time()
    }

    /// Registers an event-time timer for the current key: `on_timer` runs once the
    /// watermark reaches `timestamp` — right away (before the key's next record) when it has
    /// already. Registering the same timestamp twice fires once. The key's
    /// [`Windows`](crate::window::Windows) use the same timers.
    pub fn register_event_time_timer(&mut self, timestamp: i64) {
        self.timer_op(true, TimeDomain::EventTime, timestamp);
    }

    /// Deletes the current key's event-time timer at `timestamp`, if there is one — also
    /// for the key's [`Windows`](crate::window::Windows), which may need that timestamp.
    pub fn delete_event_time_timer(&mut self, timestamp: i64) {
        self.timer_op(false, TimeDomain::EventTime, timestamp);
    }

    /// Registers a processing-time timer for the current key: `on_timer` runs once the
    /// host's wall clock reaches `timestamp`.
    pub fn register_processing_time_timer(&mut self, timestamp: i64) {
        self.timer_op(true, TimeDomain::ProcessingTime, timestamp);
    }

    /// Deletes the current key's processing-time timer at `timestamp`, if there is one.
    pub fn delete_processing_time_timer(&mut self, timestamp: i64) {
        self.timer_op(false, TimeDomain::ProcessingTime, timestamp);
    }

    fn timer_op(&mut self, register: bool, domain: TimeDomain, timestamp: i64) {
        self.batch
            .timer_op(self.item, register, Timer { timestamp, domain });
    }

    /// Emits an output record with no headers.
    pub fn emit(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.emit_with_headers(key, value, std::iter::empty::<(&str, &str)>());
    }

    /// Emits an output record with headers.
    ///
    /// Emitted records are encoded straight into the batch result; an emit that cannot be
    /// encoded (a key, value or header over 4 GiB) fails the record when `process` returns.
    pub fn emit_with_headers<I, N, V>(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        headers: I,
    ) where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        if self.deferred.is_some() {
            return;
        }
        let out = &mut *self.out;
        let result = (|| {
            put_bytes(out, key.as_ref())?;
            put_bytes(out, value.as_ref())?;
            let count_at = out.len();
            put_u32(out, 0);
            let mut n_headers = 0u32;
            for (name, value) in headers {
                put_bytes(out, name.as_ref().as_bytes())?;
                put_bytes(out, value.as_ref().as_bytes())?;
                n_headers = n_headers.saturating_add(1);
            }
            patch_u32(out, count_at, n_headers);
            Ok::<_, crate::batch::CodecError>(())
        })();
        match result {
            Ok(()) => self.n_emits = self.n_emits.saturating_add(1),
            Err(error) => {
                self.deferred = Some(Error::failed(format!("cannot emit record: {error}")));
            }
        }
    }

    /// Logs a line into the host's structured logging, tagged with the current key.
    pub fn log(&mut self, level: LogLevel, message: &str) {
        self.host.log(level, Some(self.key_index), message);
    }

    // -- state plumbing for the typed handles ------------------------------------------

    /// The codec of state `handle`.
    pub(crate) fn codec(&self, handle: u32) -> Codec {
        self.declared
            .states
            .get(handle as usize)
            .map(StateDescriptor::codec)
            .unwrap_or_default()
    }

    /// The error for a failed call on state `handle`, naming the state.
    pub(crate) fn state_error(
        &self,
        handle: u32,
        what: &str,
        error: impl std::fmt::Display,
    ) -> Error {
        match self.declared.states.get(handle as usize) {
            Some(state) => Error::failed(format!("state `{}`: {what}: {error}", state.name)),
            None => Error::failed(format!("state handle {handle}: {what}: {error}")),
        }
    }

    pub(crate) fn value_get(&mut self, handle: u32) -> Result<Option<&[u8]>, StateError> {
        self.batch
            .value_get(self.input, &mut *self.host, handle, self.key_index)
    }

    pub(crate) fn value_write(
        &mut self,
        handle: u32,
        value: Option<Vec<u8>>,
    ) -> Result<(), StateError> {
        self.batch.value_write(handle, self.key_index, value)
    }

    /// The host and the current key index, for map and list state calls.
    pub(crate) fn host(&mut self) -> (&mut dyn HostState, u32) {
        (&mut *self.host, self.key_index)
    }
}

/// What [`Operator::init_state`](crate::Operator::init_state) can do: reach the worker's
/// operator state ([`OperatorListState`](crate::OperatorListState)) and log. Keyed state is
/// out of reach: there is no current key.
pub struct InitContext<'a> {
    host: &'a mut dyn HostState,
    operator_states: &'a [OperatorStateDescriptor],
}

impl<'a> InitContext<'a> {
    pub(crate) fn new(
        host: &'a mut dyn HostState,
        operator_states: &'a [OperatorStateDescriptor],
    ) -> Self {
        Self {
            host,
            operator_states,
        }
    }

    /// Logs a line into the host's structured logging, not tagged with a key.
    pub fn log(&mut self, level: LogLevel, message: &str) {
        self.host.log(level, None, message);
    }
}

/// A context in which operator state ([`OperatorListState`](crate::OperatorListState)) is
/// reachable: [`Context`] (in `process` and `on_timer`) and [`InitContext`] (in
/// [`Operator::init_state`](crate::Operator::init_state)). Sealed: implemented by those two
/// only.
pub trait OperatorStateAccess: sealed::OperatorScope {}

impl OperatorStateAccess for Context<'_> {}
impl OperatorStateAccess for InitContext<'_> {}

pub(crate) mod sealed {
    use crate::host::HostState;
    use crate::state::OperatorStateDescriptor;

    /// What the operator state handles need of a context.
    pub trait OperatorScope {
        /// The host, for the `operator-list-*` calls.
        fn operator_host(&mut self) -> &mut dyn HostState;
        /// The declared operator states, in handle order.
        fn operator_states(&self) -> &[OperatorStateDescriptor];
    }
}

impl sealed::OperatorScope for Context<'_> {
    fn operator_host(&mut self) -> &mut dyn HostState {
        &mut *self.host
    }

    fn operator_states(&self) -> &[OperatorStateDescriptor] {
        &self.declared.operator_states
    }
}

impl sealed::OperatorScope for InitContext<'_> {
    fn operator_host(&mut self) -> &mut dyn HostState {
        &mut *self.host
    }

    fn operator_states(&self) -> &[OperatorStateDescriptor] {
        self.operator_states
    }
}

/// Logs a line into the host's structured logging outside of `process` (e.g. from `init`),
/// not tagged with a key. Natively it goes to standard error.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::wasm::log(level, None, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}
