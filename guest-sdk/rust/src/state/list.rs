//! [`ListState`]: a list per key.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{decode, encode};
use crate::context::Context;
use crate::error::{Error, StateError};
use crate::host::HostState;

/// A list of `T` per key. Every call crosses to the host (list state is not prefetched).
pub struct ListState<T> {
    handle: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for ListState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ListState<T> {}

impl<T> ListState<T> {
    /// The state's handle (its index in `operator-info.states`).
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

impl<T> fmt::Debug for ListState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListState")
            .field("handle", &self.handle)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> ListState<T> {
    pub(crate) fn new(handle: u32) -> Self {
        Self {
            handle,
            _type: PhantomData,
        }
    }

    fn call<R>(
        &self,
        ctx: &mut Context<'_>,
        what: &str,
        call: impl FnOnce(&mut dyn HostState, u32) -> Result<R, StateError>,
    ) -> Result<R, Error> {
        let (host, key) = ctx.host();
        call(host, key).map_err(|error| ctx.state_error(self.handle, what, error))
    }

    fn encode_all(&self, ctx: &Context<'_>, values: &[T]) -> Result<Vec<Vec<u8>>, Error> {
        values
            .iter()
            .map(|value| encode(ctx, self.handle, "cannot encode list element", value))
            .collect()
    }

    /// The whole list (empty when the key has none).
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Vec<T>, Error> {
        let handle = self.handle;
        let elements = self.call(ctx, "get", |host, k| host.list_get(handle, k))?;
        elements
            .iter()
            .map(|bytes| decode(ctx, handle, "cannot decode list element", bytes))
            .collect()
    }

    /// Appends one element.
    pub fn add(&self, ctx: &mut Context<'_>, value: &T) -> Result<(), Error> {
        let bytes = encode(ctx, self.handle, "cannot encode list element", value)?;
        let handle = self.handle;
        self.call(ctx, "add", |host, k| host.list_add(handle, k, &bytes))
    }

    /// Appends every element of `values`, in one host call.
    pub fn add_all(&self, ctx: &mut Context<'_>, values: &[T]) -> Result<(), Error> {
        if values.is_empty() {
            return Ok(());
        }
        let encoded = self.encode_all(ctx, values)?;
        let handle = self.handle;
        self.call(ctx, "add-all", |host, k| {
            host.list_add_all(handle, k, &encoded)
        })
    }

    /// Replaces the whole list with `values`.
    pub fn update(&self, ctx: &mut Context<'_>, values: &[T]) -> Result<(), Error> {
        let encoded = self.encode_all(ctx, values)?;
        let handle = self.handle;
        self.call(ctx, "update", |host, k| {
            host.list_update(handle, k, &encoded)
        })
    }

    /// Removes the list.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<(), Error> {
        let handle = self.handle;
        self.call(ctx, "clear", |host, k| host.list_clear(handle, k))
    }
}
