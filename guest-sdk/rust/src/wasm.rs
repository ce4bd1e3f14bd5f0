//! The component side, compiled for Wasm only: the `state` and `log` imports behind
//! [`HostState`], and the functions the [`export_operator!`](crate::export_operator) glue
//! calls, translating between the SDK's types and the generated WIT types.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::Operator;
use crate::bindings::eddy::operator::{log as wit_log, state as wit_state, types as wit_types};
use crate::context::LogLevel;
use crate::error::{Error, ErrorKind, StateError};
use crate::host::{EntryPage, HostState, KeyPage};
use crate::runtime::Runtime;
use crate::state::{
    OperatorStateDescriptor, Redistribution, StateDescriptor, StateKind, TtlConfig, TtlUpdate,
};

/// The host, reached through the component's imports.
pub(crate) struct WasmHost;

fn state_error(error: wit_types::StateError) -> StateError {
    match error {
        wit_types::StateError::BadHandle(handle) => StateError::BadHandle(handle),
        wit_types::StateError::BadKey(key) => StateError::BadKey(key),
        wit_types::StateError::TooLarge(size) => StateError::TooLarge(size),
        wit_types::StateError::Backend(message) => StateError::Backend(message),
    }
}

impl HostState for WasmHost {
    fn value_get(&mut self, state: u32, key: u32) -> Result<Option<Vec<u8>>, StateError> {
        wit_state::value_get(state, key).map_err(state_error)
    }

    fn map_get(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError> {
        wit_state::map_get(state, key, map_key).map_err(state_error)
    }

    fn map_put(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
        value: &[u8],
    ) -> Result<(), StateError> {
        wit_state::map_put(state, key, map_key, value).map_err(state_error)
    }

    fn map_remove(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<(), StateError> {
        wit_state::map_remove(state, key, map_key).map_err(state_error)
    }

    fn map_contains(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<bool, StateError> {
        wit_state::map_contains(state, key, map_key).map_err(state_error)
    }

    fn map_is_empty(&mut self, state: u32, key: u32) -> Result<bool, StateError> {
        wit_state::map_is_empty(state, key).map_err(state_error)
    }

    fn map_clear(&mut self, state: u32, key: u32) -> Result<(), StateError> {
        wit_state::map_clear(state, key).map_err(state_error)
    }

    fn map_entries(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<EntryPage, StateError> {
        wit_state::map_entries(state, key, cursor, max)
            .map(|page| EntryPage {
                entries: page.entries,
                next: page.next,
            })
            .map_err(state_error)
    }

    fn map_keys(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<KeyPage, StateError> {
        wit_state::map_keys(state, key, cursor, max)
            .map(|page| KeyPage {
                keys: page.keys,
                next: page.next,
            })
            .map_err(state_error)
    }

    fn list_get(&mut self, state: u32, key: u32) -> Result<Vec<Vec<u8>>, StateError> {
        wit_state::list_get(state, key).map_err(state_error)
    }

    fn list_add(&mut self, state: u32, key: u32, value: &[u8]) -> Result<(), StateError> {
        wit_state::list_add(state, key, value).map_err(state_error)
    }

    fn list_add_all(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        wit_state::list_add_all(state, key, values).map_err(state_error)
    }

    fn list_update(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        wit_state::list_update(state, key, values).map_err(state_error)
    }

    fn list_clear(&mut self, state: u32, key: u32) -> Result<(), StateError> {
        wit_state::list_clear(state, key).map_err(state_error)
    }

    fn operator_list_get(&mut self, state: u32) -> Result<Vec<Vec<u8>>, StateError> {
        wit_state::operator_list_get(state).map_err(state_error)
    }

    fn operator_list_add(&mut self, state: u32, value: &[u8]) -> Result<(), StateError> {
        wit_state::operator_list_add(state, value).map_err(state_error)
    }

    fn operator_list_update(&mut self, state: u32, values: &[Vec<u8>]) -> Result<(), StateError> {
        wit_state::operator_list_update(state, values).map_err(state_error)
    }

    fn log(&mut self, level: LogLevel, key: Option<u32>, message: &str) {
        log(level, key, message);
    }
}

/// Calls the `log` import.
pub(crate) fn log(level: LogLevel, key: Option<u32>, message: &str) {
    let level = match level {
        LogLevel::Trace => wit_log::Level::Trace,
        LogLevel::Debug => wit_log::Level::Debug,
        LogLevel::Info => wit_log::Level::Info,
        LogLevel::Warn => wit_log::Level::Warn,
        LogLevel::Error => wit_log::Level::Error,
    };
    wit_log::log(level, key, message);
}

fn operator_error(error: Error) -> wit_types::OperatorError {
    let message = error.message().to_owned();
    match error.kind() {
        ErrorKind::InvalidConfig => wit_types::OperatorError::InvalidConfig(message),
        ErrorKind::Unsupported => wit_types::OperatorError::Unsupported(message),
        _ => wit_types::OperatorError::Failed(message),
    }
}

fn to_wit(state: StateDescriptor) -> wit_types::StateDescriptor {
    wit_types::StateDescriptor {
        name: state.name,
        kind: match state.kind {
            StateKind::Value => wit_types::StateKind::Value,
            StateKind::Map => wit_types::StateKind::Map,
            StateKind::List => wit_types::StateKind::List,
        },
        schema_version: state.schema_version,
        ttl: state.ttl.map(|ttl| wit_types::TtlConfig {
            ttl_ms: ttl.ttl_ms,
            update: match ttl.update {
                TtlUpdate::OnCreateAndWrite => wit_types::TtlUpdate::OnCreateAndWrite,
                TtlUpdate::OnReadAndWrite => wit_types::TtlUpdate::OnReadAndWrite,
            },
        }),
        codec: state.codec,
    }
}

fn operator_state_to_wit(state: OperatorStateDescriptor) -> wit_types::OperatorStateDescriptor {
    wit_types::OperatorStateDescriptor {
        name: state.name,
        schema_version: state.schema_version,
        redistribution: match state.redistribution {
            Redistribution::EvenSplit => wit_types::Redistribution::EvenSplit,
            Redistribution::Union => wit_types::Redistribution::Union,
        },
        codec: state.codec,
    }
}

/// The descriptor `migrate` gets: a keyed state's, or (kind list, named like it) an
/// operator state's.
fn from_wit(state: wit_types::StateDescriptor) -> StateDescriptor {
    StateDescriptor {
        name: state.name,
        kind: match state.kind {
            wit_types::StateKind::Value => StateKind::Value,
            wit_types::StateKind::Map => StateKind::Map,
            wit_types::StateKind::List => StateKind::List,
        },
        schema_version: state.schema_version,
        ttl: state.ttl.map(|ttl| TtlConfig {
            ttl_ms: ttl.ttl_ms,
            update: match ttl.update {
                wit_types::TtlUpdate::OnCreateAndWrite => TtlUpdate::OnCreateAndWrite,
                wit_types::TtlUpdate::OnReadAndWrite => TtlUpdate::OnReadAndWrite,
            },
        }),
        codec: state.codec,
    }
}

/// The runtime of an exported operator, kept in a thread-local of the operator's crate.
pub type RuntimeCell<Op> = LocalKey<RefCell<Runtime<Op>>>;

fn with_runtime<Op: Operator, R>(
    runtime: &'static RuntimeCell<Op>,
    call: impl FnOnce(&mut Runtime<Op>) -> Result<R, Error>,
) -> Result<R, wit_types::OperatorError> {
    runtime
        .with(|cell| match cell.try_borrow_mut() {
            Ok(mut runtime) => call(&mut runtime),
            Err(_) => Err(Error::failed("the operator was re-entered")),
        })
        .map_err(operator_error)
}

/// The `describe` export.
pub fn describe<Op: Operator>() -> wit_types::OperatorInfo {
    let info = Runtime::<Op>::describe();
    wit_types::OperatorInfo {
        name: info.name,
        version: info.version,
        states: info.states.into_iter().map(to_wit).collect(),
        operator_states: info
            .operator_states
            .into_iter()
            .map(operator_state_to_wit)
            .collect(),
    }
}

/// The `init` export (see [`Runtime::init`] for which errors are `invalid-config`).
pub fn init<Op: Operator>(
    runtime: &'static RuntimeCell<Op>,
    config: String,
) -> Result<(), wit_types::OperatorError> {
    with_runtime(runtime, |runtime| runtime.init(&config, &mut WasmHost))
}

/// The `process` export.
pub fn process<Op: Operator>(
    runtime: &'static RuntimeCell<Op>,
    batch: Vec<u8>,
) -> Result<Vec<u8>, wit_types::OperatorError> {
    with_runtime(runtime, |runtime| runtime.process(&batch, &mut WasmHost))
}

/// The `on-timer` export.
pub fn on_timer<Op: Operator>(
    runtime: &'static RuntimeCell<Op>,
    batch: Vec<u8>,
) -> Result<Vec<u8>, wit_types::OperatorError> {
    with_runtime(runtime, |runtime| runtime.on_timer(&batch, &mut WasmHost))
}

/// The `migrate` export.
pub fn migrate<Op: Operator>(
    state: wit_types::StateDescriptor,
    from_version: u32,
    value: Vec<u8>,
) -> Result<Vec<u8>, wit_types::OperatorError> {
    Runtime::<Op>::migrate(&from_wit(state), from_version, &value).map_err(operator_error)
}
