//! [`ReducingState`] and [`AggregatingState`]: value states that fold what is added into one
//! value, as in Flink.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ValueState;
use crate::context::Context;
use crate::error::Error;

/// A value state that folds every added value into one with a reduce function, e.g. a sum.
///
/// Under a TTL with [`TtlUpdate::OnReadAndWrite`](crate::TtlUpdate::OnReadAndWrite),
/// [`get`](Self::get) restarts the value's time to live as
/// [`ValueState::get`](crate::ValueState::get) does, by writing it back.
pub struct ReducingState<T> {
    value: ValueState<T>,
    reduce: fn(&T, &T) -> T,
}

impl<T> Clone for ReducingState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ReducingState<T> {}

impl<T> fmt::Debug for ReducingState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingState")
            .field("handle", &self.value.handle())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> ReducingState<T> {
    pub(crate) fn new(value: ValueState<T>, reduce: fn(&T, &T) -> T) -> Self {
        Self { value, reduce }
    }

    /// The state's handle (its index in `operator-info.states`).
    pub fn handle(&self) -> u32 {
        self.value.handle()
    }

    /// Folds `value` into the current key's value (which becomes `value` when there is none).
    pub fn add(&self, ctx: &mut Context<'_>, value: T) -> Result<(), Error> {
        let reduced = match self.value.get(ctx)? {
            Some(current) => (self.reduce)(&current, &value),
            None => value,
        };
        self.value.set(ctx, &reduced)
    }

    /// The current key's reduced value, if anything was added.
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Option<T>, Error> {
        self.value.get(ctx)
    }

    /// Forgets the current key's value.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<(), Error> {
        self.value.clear(ctx)
    }
}

/// An incremental aggregation, as Flink's `AggregateFunction`: inputs are added to an
/// accumulator (the stored state), from which a result is computed on read.
///
/// ```
/// use eddy_sdk::AggregateFunction;
///
/// /// The mean of the inputs.
/// #[derive(Clone, Copy)]
/// struct Average;
///
/// impl AggregateFunction for Average {
///     type Input = i64;
///     type Accumulator = (i64, u64); // (sum, count)
///     type Output = f64;
///
///     fn create_accumulator(&self) -> (i64, u64) {
///         (0, 0)
///     }
///     fn add(&self, value: i64, acc: &mut (i64, u64)) {
///         acc.0 += value;
///         acc.1 += 1;
///     }
///     fn get_result(&self, acc: &(i64, u64)) -> f64 {
///         acc.0 as f64 / acc.1.max(1) as f64
///     }
/// }
/// ```
pub trait AggregateFunction: 'static {
    /// What is added.
    type Input;
    /// What is stored.
    type Accumulator: Serialize + DeserializeOwned;
    /// What is read.
    type Output;

    /// A new, empty accumulator.
    fn create_accumulator(&self) -> Self::Accumulator;
    /// Adds one input to the accumulator.
    fn add(&self, value: Self::Input, accumulator: &mut Self::Accumulator);
    /// The result of the accumulator.
    fn get_result(&self, accumulator: &Self::Accumulator) -> Self::Output;
}

/// A value state holding an [`AggregateFunction`]'s accumulator.
///
/// Under a TTL with [`TtlUpdate::OnReadAndWrite`](crate::TtlUpdate::OnReadAndWrite),
/// [`get`](Self::get) and [`accumulator`](Self::accumulator) restart the accumulator's time
/// to live as [`ValueState::get`](crate::ValueState::get) does, by writing it back.
///
/// The handle is `Copy` when the function is (a unit struct, or one of `Copy` parameters).
pub struct AggregatingState<A: AggregateFunction> {
    value: ValueState<A::Accumulator>,
    function: A,
}

impl<A: AggregateFunction + Clone> Clone for AggregatingState<A> {
    fn clone(&self) -> Self {
        Self {
            value: self.value,
            function: self.function.clone(),
        }
    }
}

impl<A: AggregateFunction + Copy> Copy for AggregatingState<A> {}

impl<A: AggregateFunction> fmt::Debug for AggregatingState<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingState")
            .field("handle", &self.value.handle())
            .finish()
    }
}

impl<A: AggregateFunction> AggregatingState<A> {
    pub(crate) fn new(value: ValueState<A::Accumulator>, function: A) -> Self {
        Self { value, function }
    }

    /// The state's handle (its index in `operator-info.states`).
    pub fn handle(&self) -> u32 {
        self.value.handle()
    }

    /// The aggregate function.
    pub fn function(&self) -> &A {
        &self.function
    }

    /// Adds `value` to the current key's accumulator (a new one when there is none).
    pub fn add(&self, ctx: &mut Context<'_>, value: A::Input) -> Result<(), Error> {
        let mut accumulator = match self.value.get(ctx)? {
            Some(accumulator) => accumulator,
            None => self.function.create_accumulator(),
        };
        self.function.add(value, &mut accumulator);
        self.value.set(ctx, &accumulator)
    }

    /// The current key's result, if anything was added.
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Option<A::Output>, Error> {
        Ok(self
            .value
            .get(ctx)?
            .map(|accumulator| self.function.get_result(&accumulator)))
    }

    /// The current key's accumulator, if anything was added.
    pub fn accumulator(&self, ctx: &mut Context<'_>) -> Result<Option<A::Accumulator>, Error> {
        self.value.get(ctx)
    }

    /// Forgets the current key's accumulator.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<(), Error> {
        self.value.clear(ctx)
    }
}
