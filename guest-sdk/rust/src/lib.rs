//! The Rust guest SDK for Eddy operators.
//!
//! An operator is a type implementing [`Operator`]: it declares its keyed and operator state
//! in [`open`](Operator::open), reads its configuration in [`init`](Operator::init) (and, if
//! it needs to, its operator state in [`init_state`](Operator::init_state)) and handles one
//! record at a time in [`process`](Operator::process). [`export_operator!`] turns it into
//! a WebAssembly component of the `eddy:operator/operator-world` contract
//! (`wit/operator.wit`): build the crate as a `cdylib` with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! The SDK hides the contract's batching: the host hands over a whole batch of records in
//! one call, with the value state of the batch's keys prefetched (docs/batch-format.md);
//! the SDK decodes it, calls `process` per record, and returns every emitted record and
//! value-state write in one result. Map and list state are reached through host calls.
//!
//! ```
//! use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, ValueState};
//!
//! /// Counts records per key and emits the running count.
//! struct WordCount {
//!     count: ValueState<u64>,
//! }
//!
//! impl Operator for WordCount {
//!     const NAME: &'static str = "word-count";
//!     const VERSION: &'static str = "0.1.0";
//!
//!     fn open(states: &mut StateRegistry) -> Self {
//!         Self { count: states.value("count") }
//!     }
//!
//!     fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
//!         let count = self.count.get_or_default(ctx)? + 1;
//!         self.count.set(ctx, &count)?;
//!         ctx.emit(record.key(), count.to_string());
//!         Ok(())
//!     }
//! }
//!
//! eddy_sdk::export_operator!(WordCount);
//!
//! // Natively, the test harness runs it on in-memory state:
//! let mut harness = eddy_sdk::testing::Harness::<WordCount>::new();
//! harness.process("rust", "").unwrap();
//! let emitted = harness.process_utf8("rust", "").unwrap();
//! assert_eq!(emitted, [("rust".to_owned(), "2".to_owned())]);
//! ```
//!
//! State values are encoded with postcard; see [`state`] for the kinds of state and their
//! costs, [`window`] for event-time windows built on state and timers, and the `testing`
//! module (native targets only) for the harness.

// The bindings refer to the runtime as `eddy_sdk::...`, which must resolve inside this crate
// too.
extern crate self as eddy_sdk;

mod batch;
mod context;
mod error;
mod host;
mod record;
mod runtime;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod time;
#[cfg(target_arch = "wasm32")]
mod wasm;
pub mod window;

pub use context::{Context, InitContext, LogLevel, OperatorStateAccess, log};
pub use error::{Error, ErrorKind, StateError};
pub use record::{Headers, Record};
pub use state::{
    AggregateFunction, AggregatingState, Codec, ListState, MapEntries, MapKeys, MapState,
    OperatorInfo, OperatorListState, OperatorStateBuilder, OperatorStateDescriptor, Redistribution,
    ReducingState, StateBuilder, StateDescriptor, StateKind, StateRegistry, TtlConfig, TtlUpdate,
    ValueState, encode_value, migrate_value,
};
pub use time::{NO_WATERMARK, TimeDomain, Timer};
pub use window::{
    MergingAggregateFunction, ProcessWindowFunction, SessionWindows, SlidingWindows,
    TumblingWindows, Window, Windows,
};

/// The generated bindings of the operator contract (one place owns them; operator crates
/// reach them only through [`export_operator!`]).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        // The contract, from the repository's `wit/` (relative to this crate's Cargo.toml).
        path: "../../wit",
        world: "operator-world",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "eddy_sdk::bindings",
        runtime_path: "eddy_sdk::__private::wit_bindgen::rt",
    });
}

/// What the [`export_operator!`] expansion needs; not a public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::export;
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::exports::eddy::operator::operator::{
        Guest, OperatorError, OperatorInfo, StateDescriptor,
    };
    pub use crate::runtime::Runtime;
    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{describe, init, migrate, on_timer, process};
    pub use wit_bindgen;
}

/// A stream operator: state declared up front, and a function called for every record.
///
/// # Lifecycle
/// 1. [`open`](Self::open) declares the states and builds the operator. The host calls it for
///    `describe` (the instance is then dropped) and again before `init`; it must not do I/O.
///    It cannot depend on the configuration: the host reads the declarations through
///    `describe`, which gets none.
/// 2. [`init`](Self::init) gets the job's `config` table as JSON text, once per instance.
/// 3. [`init_state`](Self::init_state) reaches the worker's operator state, once per
///    instance, right after `init` (in the same host call).
/// 4. [`process`](Self::process) is called for every record, in stream order, and
///    [`on_timer`](Self::on_timer) for every timer that fires.
///
/// # Errors and isolation
/// Returning `Err` from `process` fails the **whole batch** the record came in: the SDK stops
/// and the `process` export returns `operator-error::failed` naming the record's position.
/// The host then discards every effect of the batch (emits, value writes, map and list
/// calls), builds a fresh instance, and re-runs the batch one record at a time, so only the
/// failing record goes to the dead-letter output and the others are processed exactly as if
/// nothing had happened. A panic traps the instance and is handled the same way. So
/// `process` may return early at any point without leaving half-applied state, but it runs
/// again for the batch's other records: keep it deterministic and free of side effects other
/// than through the [`Context`].
pub trait Operator: Sized + 'static {
    /// Human name of the operator, e.g. `"word-count"`.
    const NAME: &'static str;
    /// The operator's own version (semver).
    const VERSION: &'static str;

    /// Declares the keyed and operator states and builds the operator. Handles are numbered
    /// in declaration order, which must not depend on anything but the code.
    fn open(states: &mut StateRegistry) -> Self;

    /// Reads the configuration (the job's `config` table as JSON text; `{}` when none).
    /// An error fails the job's start with `invalid-config`.
    fn init(&mut self, config: &str) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Reads (or changes) the worker's operator state when an instance starts, after a
    /// successful [`init`](Self::init): e.g. rebuilds an in-memory structure from an
    /// [`OperatorListState`], which the host has already redistributed. Keyed state is out of
    /// reach here (there is no key). An error fails the instance's start with the error's
    /// kind (`failed` unless it says otherwise; an error of `init` is `invalid-config`), and
    /// the changes made here are undone. The default does nothing.
    fn init_state(&mut self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record. See the trait docs for what an error does.
    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error>;

    /// Handles a timer of the current key ([`Context::key`]) that fired. The context reaches
    /// the key's state, emits, and may register or delete timers, as in `process`;
    /// [`Context::timestamp`] is the timer's timestamp. An error is handled as in `process`:
    /// the call's effects are discarded and the timer goes to the dead-letter output. The
    /// default does nothing.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let _ = (ctx, timer);
        Ok(())
    }

    /// Rewrites one stored value of `state` from schema `from_version` to the version this
    /// operator declares for it. The default refuses with [`ErrorKind::Unsupported`].
    ///
    /// For keyed state, `state` is the state's descriptor and `value` one value, one map
    /// value or one list item. For an operator state, `state` is a [`StateKind::List`]
    /// descriptor with the operator state's name, new schema version and codec
    /// ([`OperatorStateDescriptor::as_list_state`]), and `value` one of its items: match on
    /// `state.name`, which is unique across keyed and operator states.
    fn migrate(state: &StateDescriptor, from_version: u32, value: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = value;
        Err(Error::unsupported(format!(
            "operator `{}` {} cannot migrate state `{}` from schema version {from_version} to {}",
            Self::NAME,
            Self::VERSION,
            state.name,
            state.schema_version
        )))
    }
}

/// Exports an [`Operator`] as the component's `eddy:operator/operator` interface.
///
/// Use it once, in the crate built as the component (`crate-type = ["cdylib", "rlib"]`).
/// On Wasm it generates the export glue, which keeps the operator instance and the batch
/// buffers in a thread-local; on other targets it only checks that the type is an operator,
/// so the same crate also builds natively for `cargo test`.
#[macro_export]
macro_rules! export_operator {
    ($operator:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct EddyOperatorExport;

            ::std::thread_local! {
                static EDDY_RUNTIME: ::core::cell::RefCell<$crate::__private::Runtime<$operator>> =
                    ::core::cell::RefCell::new($crate::__private::Runtime::new());
            }

            impl $crate::__private::Guest for EddyOperatorExport {
                fn describe() -> $crate::__private::OperatorInfo {
                    $crate::__private::describe::<$operator>()
                }

                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__private::OperatorError> {
                    $crate::__private::init(&EDDY_RUNTIME, config)
                }

                fn process(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::OperatorError>
                {
                    $crate::__private::process(&EDDY_RUNTIME, batch)
                }

                fn on_timer(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::OperatorError>
                {
                    $crate::__private::on_timer(&EDDY_RUNTIME, batch)
                }

                fn migrate(
                    state: $crate::__private::StateDescriptor,
                    from_version: u32,
                    value: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::OperatorError>
                {
                    $crate::__private::migrate::<$operator>(state, from_version, value)
                }
            }

    $crate::__private::export!(EddyOperatorExport with_types_in $crate::bindings);
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn assert_operator<T: $crate::Operator>() {}
            let _ = assert_operator::<$operator>;
        };
    };
}
