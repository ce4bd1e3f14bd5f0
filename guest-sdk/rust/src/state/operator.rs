//! [`OperatorListState`]: non-keyed state, one list of items per worker.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::OperatorStateAccess;
use crate::error::{Error, StateError};
use crate::host::HostState;

/// A list of `T` per worker, not scoped to a key: Flink's operator `ListState`.
///
/// Declared in [`Operator::open`](crate::Operator::open) with
/// [`StateRegistry::operator_list`](crate::StateRegistry::operator_list) or
/// [`declare_operator`](crate::StateRegistry::declare_operator), and reached through the
/// [`Context`](crate::Context) in `process` and `on_timer`, and through the
/// [`InitContext`](crate::InitContext) in
/// [`Operator::init_state`](crate::Operator::init_state), e.g. to rebuild an in-memory
/// structure from it when an instance starts. Each worker has its own list; when a job
/// starts (after a restart, a restore, a change of parallelism) the host hands the items
/// out again by the state's [`Redistribution`](crate::Redistribution). Changes made during a
/// call that fails are undone with the rest of the call's effects.
///
/// Every call crosses to the host. There is no TTL for operator state.
///
/// ```
/// use eddy_sdk::{Context, Error, InitContext, Operator, OperatorListState, Record, StateRegistry};
///
/// /// Remembers the last records of this worker, whatever their key.
/// struct Recent {
///     recent: OperatorListState<String>,
///     seen_at_start: usize,
/// }
///
/// impl Operator for Recent {
///     const NAME: &'static str = "recent";
///     const VERSION: &'static str = "0.1.0";
///
///     fn open(states: &mut StateRegistry) -> Self {
///         Self { recent: states.operator_list("recent"), seen_at_start: 0 }
///     }
///
///     fn init_state(&mut self, ctx: &mut InitContext<'_>) -> Result<(), Error> {
///         self.seen_at_start = self.recent.get(ctx)?.len();
///         Ok(())
///     }
///
///     fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
///         let mut recent = self.recent.get(ctx)?;
///         recent.push(record.value_str()?.to_owned());
///         if recent.len() > 3 {
///             recent.remove(0);
///         }
///         self.recent.update(ctx, &recent)
///     }
/// }
///
/// let mut harness = eddy_sdk::testing::Harness::<Recent>::new();
/// for value in ["a", "b", "c", "d"] {
///     harness.process("k", value).unwrap();
/// }
/// assert_eq!(harness.operator_list::<String>("recent").unwrap(), ["b", "c", "d"]);
/// ```
pub struct OperatorListState<T> {
    handle: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for OperatorListState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for OperatorListState<T> {}

impl<T> OperatorListState<T> {
    /// The state's handle (its index in `operator-info.operator-states`).
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

impl<T> fmt::Debug for OperatorListState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorListState")
            .field("handle", &self.handle)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> OperatorListState<T> {
    pub(crate) fn new(handle: u32) -> Self {
        Self {
            handle,
            _type: PhantomData,
        }
    }

    fn error(&self, ctx: &impl OperatorStateAccess, what: &str, error: impl fmt::Display) -> Error {
        match ctx.operator_states().get(self.handle as usize) {
            Some(state) => {
                Error::failed(format!("operator state `{}`: {what}: {error}", state.name))
            }
            None => Error::failed(format!(
                "operator state handle {}: {what}: {error}",
                self.handle
            )),
        }
    }

    fn encode(&self, ctx: &impl OperatorStateAccess, value: &T) -> Result<Vec<u8>, Error> {
        let codec = ctx
            .operator_states()
            .get(self.handle as usize)
            .map(|state| state.codec())
            .unwrap_or_default();
        codec
            .encode(value)
            .map_err(|error| self.error(ctx, "cannot encode item", error))
    }

    fn call<R>(
        &self,
        ctx: &mut impl OperatorStateAccess,
        what: &str,
        call: impl FnOnce(&mut dyn HostState, u32) -> Result<R, StateError>,
    ) -> Result<R, Error> {
        call(ctx.operator_host(), self.handle).map_err(|error| self.error(ctx, what, error))
    }

    /// This worker's items, oldest first (empty when there are none).
    pub fn get(&self, ctx: &mut impl OperatorStateAccess) -> Result<Vec<T>, Error> {
        let items = self.call(ctx, "get", |host, handle| host.operator_list_get(handle))?;
        let codec = ctx
            .operator_states()
            .get(self.handle as usize)
            .map(|state| state.codec())
            .unwrap_or_default();
        items
            .iter()
            .map(|bytes| {
                codec
                    .decode(bytes)
                    .map_err(|error| self.error(ctx, "cannot decode item", error))
            })
            .collect()
    }

    /// Appends one item.
    pub fn add(&self, ctx: &mut impl OperatorStateAccess, value: &T) -> Result<(), Error> {
        let bytes = self.encode(ctx, value)?;
        self.call(ctx, "add", |host, handle| {
            host.operator_list_add(handle, &bytes)
        })
    }

    /// Appends every item of `values`, in order (one host call per item: the contract has
    /// no add-all for operator state; use [`update`](Self::update) to write many at once).
    pub fn add_all(&self, ctx: &mut impl OperatorStateAccess, values: &[T]) -> Result<(), Error> {
        let encoded = values
            .iter()
            .map(|value| self.encode(ctx, value))
            .collect::<Result<Vec<_>, _>>()?;
        for bytes in &encoded {
            self.call(ctx, "add-all", |host, handle| {
                host.operator_list_add(handle, bytes)
            })?;
        }
        Ok(())
    }

    /// Replaces this worker's items with `values` (an empty slice clears them).
    pub fn update(&self, ctx: &mut impl OperatorStateAccess, values: &[T]) -> Result<(), Error> {
        let encoded = values
            .iter()
            .map(|value| self.encode(ctx, value))
            .collect::<Result<Vec<_>, _>>()?;
        self.call(ctx, "update", |host, handle| {
            host.operator_list_update(handle, &encoded)
        })
    }

    /// Removes this worker's items.
    pub fn clear(&self, ctx: &mut impl OperatorStateAccess) -> Result<(), Error> {
        self.call(ctx, "clear", |host, handle| {
            host.operator_list_update(handle, &[])
        })
    }
}
