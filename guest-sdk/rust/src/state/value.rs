//! [`ValueState`]: one value per key.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::encode;
use crate::context::Context;
use crate::error::Error;

/// One value of type `T` per key.
///
/// The host prefetches value state into the batch, so reads cost no boundary crossing; writes
/// are collected and returned with the batch result (only the last write per key), so they
/// cost none either.
///
/// With a TTL whose [`TtlUpdate`](crate::TtlUpdate) is `OnReadAndWrite`, a read restarts the
/// value's time to live, which costs a write: see [`get`](Self::get).
pub struct ValueState<T> {
    handle: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for ValueState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ValueState<T> {}

impl<T> ValueState<T> {
    /// The state's handle (its index in `operator-info.states`).
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

impl<T> fmt::Debug for ValueState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueState")
            .field("handle", &self.handle)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> ValueState<T> {
    pub(crate) fn new(handle: u32) -> Self {
        Self {
            handle,
            _type: PhantomData,
        }
    }

    /// The current key's value, if it has one (an expired value is none: the host does not
    /// prefetch it).
    ///
    /// # Reads that restart the TTL
    /// Under [`TtlUpdate::OnReadAndWrite`](crate::TtlUpdate::OnReadAndWrite) a read must
    /// restart the value's time to live, but the host cannot see it: the value came
    /// prefetched in the batch. So a read of a **present** value makes the SDK write the
    /// same bytes back, an ordinary value-state write in the batch result, which the host
    /// stamps with the call's processing time. A write or clear of the value later in the
    /// batch replaces that write-back (the last write wins), and so does one made before
    /// the read (the read then returns the written value, which goes out anyway). A read of
    /// an absent value writes nothing. Like every effect, the write-back is discarded when
    /// the call fails. [`ReducingState`](crate::ReducingState) and
    /// [`AggregatingState`](crate::AggregatingState) are value states and read the same way.
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Option<T>, Error> {
        // Decoded straight from the batch buffer (or the batch's own write): no copy.
        let codec = ctx.codec(self.handle);
        let decoded = match ctx.value_get(self.handle) {
            Ok(Some(bytes)) => codec.decode::<T>(bytes).map(Some),
            Ok(None) => Ok(None),
            Err(error) => return Err(ctx.state_error(self.handle, "get", error)),
        };
        decoded.map_err(|error| ctx.state_error(self.handle, "cannot decode value", error))
    }

    /// The current key's value, or `T::default()` when it has none.
    pub fn get_or_default(&self, ctx: &mut Context<'_>) -> Result<T, Error>
    where
        T: Default,
    {
        Ok(self.get(ctx)?.unwrap_or_default())
    }

    /// Sets the current key's value.
    pub fn set(&self, ctx: &mut Context<'_>, value: &T) -> Result<(), Error> {
        let bytes = encode(ctx, self.handle, "cannot encode value", value)?;
        ctx.value_write(self.handle, Some(bytes))
            .map_err(|error| ctx.state_error(self.handle, "set", error))
    }

    /// Removes the current key's value.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<(), Error> {
        ctx.value_write(self.handle, None)
            .map_err(|error| ctx.state_error(self.handle, "clear", error))
    }
}
