//! Event-time windows, built on keyed state and timers only (no host machinery of their own):
//! [`TumblingWindows`], [`SlidingWindows`] and [`SessionWindows`], each finished with a
//! window function — [`reduce`](TumblingWindows::reduce),
//! [`aggregate`](TumblingWindows::aggregate) or [`process`](TumblingWindows::process) — into a
//! [`Windows`] handle. An operator declares it in [`Operator::open`](crate::Operator::open),
//! keeps it as a field, feeds it from `process` with [`Windows::add`] and lets it handle its
//! timers in `on_timer` with [`Windows::on_timer`]. Both hand back the windows that fired, as
//! [`Fired`] results; the operator emits what it wants from them.
//!
//! ```
//! use eddy_sdk::testing::{Harness, RecordBuilder};
//! use eddy_sdk::window::{Fired, Reduce, TumblingWindows, Windows};
//! use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer};
//!
//! /// Sums the numbers of every key per minute of event time.
//! struct MinuteSums {
//!     sums: Windows<Reduce<i64>>,
//! }
//!
//! fn emit(ctx: &mut Context<'_>, fired: Fired<i64>) {
//!     ctx.emit(ctx.key(), format!("{}: {}", fired.window, fired.result));
//! }
//!
//! impl Operator for MinuteSums {
//!     const NAME: &'static str = "minute-sums";
//!     const VERSION: &'static str = "0.1.0";
//!
//!     fn open(states: &mut StateRegistry) -> Self {
//!         Self { sums: TumblingWindows::of(60_000).reduce(states, "sums", |a, b| a + b) }
//!     }
//!
//!     fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
//!         let number: i64 = record.value_str()?.parse()?;
//!         for fired in self.sums.add(ctx, number)? {
//!             emit(ctx, fired); // a late element re-fires its window at once
//!         }
//!         Ok(())
//!     }
//!
//!     fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
//!         // `None`: nothing of the windows was due (this operator has no timers of its own).
//!         for fired in self.sums.on_timer(ctx, timer)?.unwrap_or_default() {
//!             emit(ctx, fired);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut h = Harness::<MinuteSums>::new();
//! h.process_record(RecordBuilder::new("a", "5").timestamp(1_000)).unwrap();
//! h.process_record(RecordBuilder::new("a", "7").timestamp(59_999)).unwrap();
//! h.process_record(RecordBuilder::new("a", "1").timestamp(60_000)).unwrap();
//! // The first minute's last millisecond is 59 999: it fires when the watermark gets there.
//! assert!(h.advance_watermark(59_998).unwrap().is_empty());
//! let fired = h.advance_watermark(59_999).unwrap();
//! assert_eq!(fired[0].value_str().unwrap(), "[0, 60000): 12");
//! ```
//!
//! # Semantics
//! They are Flink's event-time windows:
//! - A [`Window`] `[start, end)` holds the elements whose timestamps fall in it; its last
//!   timestamp is `end - 1` ([`Window::max_timestamp`]).
//! - A window fires once when the watermark reaches `end - 1`: the key's timer then hands the
//!   result back from `on_timer`.
//! - **Allowed lateness** `L` (default 0): a window's state is kept until the watermark reaches
//!   `end - 1 + L`, when a cleanup timer removes it. An element that arrives after the window
//!   fired but before its cleanup is added and fires the window again at once (from `add`,
//!   with [`Fired::late`] set), with everything the window holds.
//! - An element whose every window has been cleaned up is **dropped**: `add` changes nothing
//!   and says so in [`Added::dropped`], and the operator decides what to do with it (count it,
//!   log it, emit it under a side key). With the job's `[event-time] allowed-lateness` at least
//!   the window's, the host keeps such records from the operator (they go to the late-data
//!   output), so the window seldom sees one.
//! - **Sessions**: an element at `t` opens the session `[t, t + gap)`; sessions that overlap
//!   merge into one that covers them, their contents merged, so an element that falls between
//!   two sessions bridges them. Elements less than `gap` apart share a session; `gap` or more
//!   apart, they do not (Flink also merges sessions that only touch, which makes the result
//!   depend on when the watermark passed; here it cannot).
//!
//! Timestamps are the records' ([`Context::timestamp`]) unless given with
//! [`Windows::add_at`]; the watermark is the one the record sees ([`Context::watermark`]).
//!
//! # State and timers
//! A `Windows` named `name` declares, in this order:
//! - `{name}/windows`: a value state per key holding the key's live windows as a list of
//!   `(start, end, pending, accumulator)` (postcard, schema version 1), `pending` being "not
//!   fired since the last element". The accumulator is the reduced value (reduce), the
//!   [`AggregateFunction`]'s accumulator (aggregate), or `()` (process).
//! - `{name}/elements`, for `process` only: a list state per key of `(timestamp, element)`,
//!   each element stored once (however many sliding windows it is in) and removed when its
//!   last window is cleaned up.
//!
//! The names are the state's identity across versions of the operator: keep `name`.
//!
//! Whenever they write a key's windows, the windows register an event-time timer of the key at
//! `end - 1` of every pending window and at `end - 1 + L` of every live one (registering a
//! timer that exists changes nothing) — except when an element only adds to windows that
//! were pending already and all the key's live windows are pending: their timers were
//! registered when they became pending — and they never delete one. A timer is identified by
//! (key, domain, timestamp) alone, so it is shared by everything that runs for the key —
//! the operator's own event-time timers and every `Windows` of the operator: a timer the
//! windows no longer need (a session that merged into a longer one, a window another timer
//! already handled) fires as a no-op, and [`Windows::on_timer`] does whatever is due at
//! the time of any timer, whoever registered it. So an operator must not delete an
//! event-time timer at a timestamp its windows may use, and handles a timer both as its own
//! and with its windows when it may be both.
//!
//! # Costs
//! The window value state is prefetched: `add` and `on_timer` of reduce and aggregate
//! windows make no host call at all, but rewrite the key's whole list of live windows (and,
//! when a window is created, fires or is cleaned up, register its timers again, one or two
//! per live window, in the call's result), so keep
//! accumulators small (a sliding window of size `s` and slide `d` keeps about `s / d`
//! windows per key, sessions one or two). A process window makes one host call per `add`
//! and reads the key's whole element list for every firing and cleanup.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use crate::context::Context;
use crate::error::Error;
use crate::state::{AggregateFunction, ListState, StateRegistry, ValueState};
use crate::time::{NO_WATERMARK, TimeDomain, Timer};

/// The most sliding windows one element may belong to (`size / slide`, rounded up); larger
/// ratios make a declaration fail [`Windows::check`].
pub const MAX_WINDOWS_PER_ELEMENT: i64 = 1000;

/// A window of event time: the timestamps from `start` (included) to `end` (excluded), in ms.
///
/// ```
/// use eddy_sdk::window::Window;
///
/// let minute = Window::new(60_000, 120_000);
/// assert!(minute.contains(60_000) && minute.contains(119_999) && !minute.contains(120_000));
/// assert_eq!(minute.max_timestamp(), 119_999);
/// assert_eq!(minute.to_string(), "[60000, 120000)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// The first timestamp in the window.
    pub start: i64,
    /// The first timestamp after the window.
    pub end: i64,
}

impl Window {
    /// The window `[start, end)`.
    ///
    /// ```
    /// # use eddy_sdk::window::Window;
    /// assert_eq!(Window::new(0, 10), Window { start: 0, end: 10 });
    /// ```
    pub const fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }

    /// The last timestamp in the window, `end - 1`: the window fires when the watermark
    /// reaches it.
    ///
    /// ```
    /// # use eddy_sdk::window::Window;
    /// assert_eq!(Window::new(0, 10).max_timestamp(), 9);
    /// ```
    pub const fn max_timestamp(&self) -> i64 {
        self.end.saturating_sub(1)
    }

    /// Whether `timestamp` is in the window.
    ///
    /// ```
    /// # use eddy_sdk::window::Window;
    /// assert!(Window::new(0, 10).contains(0));
    /// assert!(!Window::new(0, 10).contains(10));
    /// ```
    pub const fn contains(&self, timestamp: i64) -> bool {
        self.start <= timestamp && timestamp < self.end
    }

    /// Whether the two windows share a timestamp.
    fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The smallest window covering both.
    fn cover(&self, other: &Window) -> Window {
        Window::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// A window that fired, with the window function's result.
///
/// ```
/// use eddy_sdk::window::{Fired, Window};
///
/// let fired = Fired { window: Window::new(0, 60_000), result: 12, late: false };
/// assert_eq!(fired.window.max_timestamp(), 59_999);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired<O> {
    /// The window.
    pub window: Window,
    /// What the window function made of the window's contents.
    pub result: O,
    /// Whether an element that arrived after the window's end (within the allowed lateness)
    /// fired it, from [`Windows::add`]; such a firing repeats the window with that element
    /// added. False for the firings of `on_timer`.
    pub late: bool,
}

/// What [`Windows::add`] did with an element: the windows it fired, and whether it was
/// dropped. Iterating it goes over the fired windows.
///
/// ```
/// use eddy_sdk::window::Added;
///
/// let added = Added::<u64>::default();
/// assert!(!added.dropped);
/// assert_eq!(added.into_iter().count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an element arriving late fires its windows at once: emit what `add` returns"]
pub struct Added<O> {
    /// The windows the element fired at once because the watermark had already passed their
    /// end (late firings, within the allowed lateness). Usually empty.
    pub fired: Vec<Fired<O>>,
    /// Whether the element came too late for every window it belongs to (each was already
    /// cleaned up) and was dropped, changing nothing.
    pub dropped: bool,
}

impl<O> Default for Added<O> {
    fn default() -> Self {
        Self {
            fired: Vec::new(),
            dropped: false,
        }
    }
}

impl<O> IntoIterator for Added<O> {
    type Item = Fired<O>;
    type IntoIter = std::vec::IntoIter<Fired<O>>;

    fn into_iter(self) -> Self::IntoIter {
        self.fired.into_iter()
    }
}

/// A window function that sees all the elements of a window at once, when it fires (as
/// Flink's `ProcessWindowFunction`). The elements are stored in list state until their last
/// window is cleaned up.
///
/// ```
/// use eddy_sdk::window::{ProcessWindowFunction, Window};
///
/// /// The window's elements, in timestamp order, joined with commas.
/// struct Join;
///
/// impl ProcessWindowFunction for Join {
///     type Input = String;
///     type Output = String;
///
///     fn process(&self, _key: &[u8], _window: &Window, elements: Vec<(i64, String)>) -> String {
///         elements.into_iter().map(|(_, word)| word).collect::<Vec<_>>().join(",")
///     }
/// }
///
/// let words = vec![(1, "a".to_owned()), (2, "b".to_owned())];
/// assert_eq!(Join.process(b"k", &Window::new(0, 10), words), "a,b");
/// ```
pub trait ProcessWindowFunction: 'static {
    /// The elements.
    type Input: Serialize + DeserializeOwned;
    /// What a firing hands back.
    type Output;

    /// Makes the result of `window` of `key` from its elements: `(timestamp, element)` in
    /// timestamp order, elements of equal timestamps in the order they were added.
    fn process(
        &self,
        key: &[u8],
        window: &Window,
        elements: Vec<(i64, Self::Input)>,
    ) -> Self::Output;
}

/// An [`AggregateFunction`] whose accumulators merge, which session windows need (two
/// sessions that an element bridges become one).
///
/// ```
/// use eddy_sdk::AggregateFunction;
/// use eddy_sdk::window::MergingAggregateFunction;
///
/// /// Counts elements.
/// #[derive(Clone, Copy)]
/// struct Count;
///
/// impl AggregateFunction for Count {
///     type Input = ();
///     type Accumulator = u64;
///     type Output = u64;
///
///     fn create_accumulator(&self) -> u64 {
///         0
///     }
///     fn add(&self, _: (), count: &mut u64) {
///         *count += 1;
///     }
///     fn get_result(&self, count: &u64) -> u64 {
///         *count
///     }
/// }
///
/// impl MergingAggregateFunction for Count {
///     fn merge(&self, a: u64, b: u64) -> u64 {
///         a + b
///     }
/// }
///
/// assert_eq!(Count.merge(2, 3), 5);
/// ```
pub trait MergingAggregateFunction: AggregateFunction {
    /// The accumulator of everything both `a` and `b` hold (`a` is the earlier window's).
    fn merge(&self, a: Self::Accumulator, b: Self::Accumulator) -> Self::Accumulator;
}

mod sealed {
    /// Seals [`WindowFunction`](super::WindowFunction).
    pub trait Sealed {}

    /// Seals [`WindowAssigner`](super::WindowAssigner) and carries its parameters.
    pub trait SealedAssigner {
        fn spec(self) -> Spec;
    }

    /// The parameters every window builder has.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Spec {
        pub(super) assigner: super::Assigner,
        pub(super) allowed_lateness: i64,
    }
}

use sealed::Spec;

/// How a window turns its elements into a result: [`Reduce`], [`Aggregate`] or [`Process`],
/// made by the `reduce`, `aggregate` and `process` methods of the window builders. Sealed:
/// its hidden methods are the windows' plumbing.
///
/// ```
/// use eddy_sdk::window::{Reduce, WindowFunction};
///
/// fn output_of<F: WindowFunction<Output = i64>>() {}
/// output_of::<Reduce<i64>>();
/// ```
pub trait WindowFunction: sealed::Sealed + 'static {
    /// What [`Windows::add`] takes.
    type Input;
    /// What a firing hands back.
    type Output;
    /// What the window state keeps per window.
    #[doc(hidden)]
    type Accumulator: Serialize + DeserializeOwned;

    /// A window's accumulator holding only `input`.
    #[doc(hidden)]
    fn create(&self, input: &Self::Input) -> Self::Accumulator;
    /// Adds `input` to a window's accumulator.
    #[doc(hidden)]
    fn accumulate(&self, accumulator: &mut Self::Accumulator, input: &Self::Input);
    /// The accumulator of two merged windows.
    #[doc(hidden)]
    fn merge(&self, a: Self::Accumulator, b: Self::Accumulator)
    -> Result<Self::Accumulator, Error>;
    /// Stores `input` itself when the function needs the elements; once per element.
    #[doc(hidden)]
    fn store(&self, ctx: &mut Context<'_>, timestamp: i64, input: Self::Input)
    -> Result<(), Error>;
    /// The result of `window`.
    #[doc(hidden)]
    fn result(
        &self,
        ctx: &mut Context<'_>,
        window: &Window,
        accumulator: &Self::Accumulator,
    ) -> Result<Self::Output, Error>;
    /// Forgets the stored elements that are in none of the `live` windows.
    #[doc(hidden)]
    fn retain(&self, ctx: &mut Context<'_>, live: &[Window]) -> Result<(), Error>;
    /// Whether [`merge`](Self::merge) works, as session windows need.
    #[doc(hidden)]
    fn can_merge(&self) -> bool;
}

/// Reduce windows: each window folds its elements into one with a reduce function (its
/// result is that value). Made by the builders' `reduce`.
///
/// ```
/// use eddy_sdk::StateRegistry;
/// use eddy_sdk::window::{Reduce, SessionWindows, Windows};
///
/// fn declare(states: &mut StateRegistry) -> Windows<Reduce<u64>> {
///     SessionWindows::with_gap(60_000).reduce(states, "longest", |a: &u64, b: &u64| *a.max(b))
/// }
/// ```
pub struct Reduce<T> {
    reduce: fn(&T, &T) -> T,
}

impl<T> fmt::Debug for Reduce<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reduce").finish_non_exhaustive()
    }
}

impl<T> sealed::Sealed for Reduce<T> {}

impl<T: Serialize + DeserializeOwned + Clone + 'static> WindowFunction for Reduce<T> {
    type Input = T;
    type Output = T;
    type Accumulator = T;

    fn create(&self, input: &T) -> T {
        input.clone()
    }

    fn accumulate(&self, accumulator: &mut T, input: &T) {
        *accumulator = (self.reduce)(accumulator, input);
    }

    fn merge(&self, a: T, b: T) -> Result<T, Error> {
        Ok((self.reduce)(&a, &b))
    }

    fn store(&self, _: &mut Context<'_>, _: i64, _: T) -> Result<(), Error> {
        Ok(())
    }

    fn result(&self, _: &mut Context<'_>, _: &Window, accumulator: &T) -> Result<T, Error> {
        Ok(accumulator.clone())
    }

    fn retain(&self, _: &mut Context<'_>, _: &[Window]) -> Result<(), Error> {
        Ok(())
    }

    fn can_merge(&self) -> bool {
        true
    }
}

/// Aggregate windows: each window keeps an [`AggregateFunction`]'s accumulator (its result is
/// the function's result). Made by the builders' `aggregate`; session windows need a
/// [`MergingAggregateFunction`]. The input is cloned into each window it belongs to.
///
/// ```
/// use eddy_sdk::{AggregateFunction, StateRegistry};
/// use eddy_sdk::window::{Aggregate, SlidingWindows, Windows};
///
/// /// The largest input.
/// struct Max;
///
/// impl AggregateFunction for Max {
///     type Input = i64;
///     type Accumulator = i64;
///     type Output = i64;
///     fn create_accumulator(&self) -> i64 { i64::MIN }
///     fn add(&self, value: i64, max: &mut i64) { *max = (*max).max(value) }
///     fn get_result(&self, max: &i64) -> i64 { *max }
/// }
///
/// fn declare(states: &mut StateRegistry) -> Windows<Aggregate<Max>> {
///     SlidingWindows::of(60_000, 10_000).aggregate(states, "max", Max)
/// }
/// ```
pub struct Aggregate<A: AggregateFunction> {
    function: A,
    /// Set for session windows (their builder asks for a [`MergingAggregateFunction`]).
    merge: Option<MergeFn<A>>,
}

/// [`MergingAggregateFunction::merge`] of `A`.
type MergeFn<A> = fn(
    &A,
    <A as AggregateFunction>::Accumulator,
    <A as AggregateFunction>::Accumulator,
) -> <A as AggregateFunction>::Accumulator;

impl<A: AggregateFunction> fmt::Debug for Aggregate<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregate")
            .field("merges", &self.merge.is_some())
            .finish_non_exhaustive()
    }
}

impl<A: AggregateFunction> sealed::Sealed for Aggregate<A> {}

impl<A> WindowFunction for Aggregate<A>
where
    A: AggregateFunction,
    A::Input: Clone,
{
    type Input = A::Input;
    type Output = A::Output;
    type Accumulator = A::Accumulator;

    fn create(&self, input: &A::Input) -> A::Accumulator {
        let mut accumulator = self.function.create_accumulator();
        self.function.add(input.clone(), &mut accumulator);
        accumulator
    }

    fn accumulate(&self, accumulator: &mut A::Accumulator, input: &A::Input) {
        self.function.add(input.clone(), accumulator);
    }

    fn merge(&self, a: A::Accumulator, b: A::Accumulator) -> Result<A::Accumulator, Error> {
        match self.merge {
            Some(merge) => Ok(merge(&self.function, a, b)),
            None => Err(Error::failed(
                "aggregate windows cannot merge without a MergingAggregateFunction",
            )),
        }
    }

    fn store(&self, _: &mut Context<'_>, _: i64, _: A::Input) -> Result<(), Error> {
        Ok(())
    }

    fn result(
        &self,
        _: &mut Context<'_>,
        _: &Window,
        accumulator: &A::Accumulator,
    ) -> Result<A::Output, Error> {
        Ok(self.function.get_result(accumulator))
    }

    fn retain(&self, _: &mut Context<'_>, _: &[Window]) -> Result<(), Error> {
        Ok(())
    }

    fn can_merge(&self) -> bool {
        self.merge.is_some()
    }
}

/// Process windows: the elements are kept, and a [`ProcessWindowFunction`] makes the result
/// from all of a window's elements when it fires. Made by the builders' `process`.
///
/// ```
/// use eddy_sdk::StateRegistry;
/// use eddy_sdk::window::{Process, ProcessWindowFunction, TumblingWindows, Window, Windows};
///
/// /// The median of the window's numbers.
/// struct Median;
///
/// impl ProcessWindowFunction for Median {
///     type Input = i64;
///     type Output = i64;
///     fn process(&self, _: &[u8], _: &Window, elements: Vec<(i64, i64)>) -> i64 {
///         let mut numbers: Vec<i64> = elements.into_iter().map(|(_, n)| n).collect();
///         numbers.sort_unstable();
///         numbers[numbers.len() / 2]
///     }
/// }
///
/// fn declare(states: &mut StateRegistry) -> Windows<Process<Median>> {
///     TumblingWindows::of(60_000).process(states, "median", Median)
/// }
/// ```
pub struct Process<P: ProcessWindowFunction> {
    function: P,
    elements: ListState<(i64, P::Input)>,
}

impl<P: ProcessWindowFunction> fmt::Debug for Process<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("elements", &self.elements)
            .finish_non_exhaustive()
    }
}

impl<P: ProcessWindowFunction> sealed::Sealed for Process<P> {}

impl<P: ProcessWindowFunction> WindowFunction for Process<P> {
    type Input = P::Input;
    type Output = P::Output;
    type Accumulator = ();

    fn create(&self, _: &P::Input) {}

    fn accumulate(&self, _: &mut (), _: &P::Input) {}

    fn merge(&self, (): (), (): ()) -> Result<(), Error> {
        Ok(())
    }

    fn store(&self, ctx: &mut Context<'_>, timestamp: i64, input: P::Input) -> Result<(), Error> {
        self.elements.add(ctx, &(timestamp, input))
    }

    fn result(&self, ctx: &mut Context<'_>, window: &Window, (): &()) -> Result<P::Output, Error> {
        let mut elements: Vec<(i64, P::Input)> = self
            .elements
            .get(ctx)?
            .into_iter()
            .filter(|(timestamp, _)| window.contains(*timestamp))
            .collect();
        // Stable: equal timestamps keep the order they were added in.
        elements.sort_by_key(|(timestamp, _)| *timestamp);
        Ok(self.function.process(ctx.key(), window, elements))
    }

    fn retain(&self, ctx: &mut Context<'_>, live: &[Window]) -> Result<(), Error> {
        if live.is_empty() {
            return self.elements.clear(ctx);
        }
        let elements = self.elements.get(ctx)?;
        let before = elements.len();
        let kept: Vec<(i64, P::Input)> = elements
            .into_iter()
            .filter(|(timestamp, _)| live.iter().any(|window| window.contains(*timestamp)))
            .collect();
        if kept.len() == before {
            return Ok(());
        }
        self.elements.update(ctx, &kept)
    }

    fn can_merge(&self) -> bool {
        true
    }
}

/// How elements are assigned to windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assigner {
    Tumbling { size: i64, offset: i64 },
    Sliding { size: i64, slide: i64, offset: i64 },
    Session { gap: i64 },
}

impl Assigner {
    /// What is wrong with the parameters, if anything.
    fn problem(&self) -> Option<String> {
        match *self {
            Assigner::Tumbling { size, .. } if size <= 0 => {
                Some(format!("the window size must be positive, got {size} ms"))
            }
            Assigner::Sliding { size, slide, .. } if size <= 0 || slide <= 0 => Some(format!(
                "the window size and slide must be positive, got {size} ms and {slide} ms"
            )),
            Assigner::Sliding { size, slide, .. }
                if windows_per_element(size, slide) > MAX_WINDOWS_PER_ELEMENT =>
            {
                Some(format!(
                    "a size of {size} ms sliding by {slide} ms puts every element in {} windows, \
                     more than the {MAX_WINDOWS_PER_ELEMENT} allowed; slide by more",
                    windows_per_element(size, slide)
                ))
            }
            Assigner::Session { gap } if gap <= 0 => {
                Some(format!("the session gap must be positive, got {gap} ms"))
            }
            _ => None,
        }
    }

    /// The windows `timestamp` belongs to, by start (none when the parameters are bad).
    fn assign(&self, timestamp: i64) -> Assigned {
        match *self {
            Assigner::Tumbling { size, offset } => window_start(timestamp, offset, size)
                .map(|start| Assigned::from_elem(Window::new(start, start.saturating_add(size)), 1))
                .unwrap_or_default(),
            Assigner::Sliding {
                size,
                slide,
                offset,
            } => {
                let Some(mut start) = window_start(timestamp, offset, slide) else {
                    return Assigned::new();
                };
                let mut windows = Assigned::new();
                while start.saturating_add(size) > timestamp
                    && windows.len() < MAX_WINDOWS_PER_ELEMENT as usize
                {
                    windows.push(Window::new(start, start.saturating_add(size)));
                    match start.checked_sub(slide) {
                        Some(earlier) => start = earlier,
                        None => break,
                    }
                }
                windows.reverse();
                windows
            }
            Assigner::Session { gap } => {
                Assigned::from_elem(Window::new(timestamp, timestamp.saturating_add(gap)), 1)
            }
        }
    }
}

/// The windows an element goes into: inline up to two (an element is in one tumbling or
/// session window, and in `size / slide` sliding ones), so that adding one allocates none.
type Assigned = SmallVec<[Window; 2]>;

/// How many sliding windows hold each element: `size / slide` rounded up (both positive).
fn windows_per_element(size: i64, slide: i64) -> i64 {
    size / slide + i64::from(size % slide != 0)
}

/// The start of the window of length `size` (aligned to `offset`) that holds `timestamp`.
fn window_start(timestamp: i64, offset: i64, size: i64) -> Option<i64> {
    let into = match timestamp.checked_sub(offset) {
        Some(since) => since.checked_rem_euclid(size)?,
        // Only near the ends of time: 128-bit arithmetic (slow in Wasm) then.
        None => i64::try_from(
            (i128::from(timestamp) - i128::from(offset)).checked_rem_euclid(i128::from(size))?,
        )
        .ok()?,
    };
    Some(timestamp.saturating_sub(into))
}

impl Spec {
    fn build<F: WindowFunction>(
        self,
        states: &mut StateRegistry,
        name: &str,
        function: impl FnOnce(&mut StateRegistry) -> F,
    ) -> Windows<F> {
        let windows = states.value(&format!("{name}/windows"));
        let function = function(states);
        let problem = self.problem(name);
        Windows {
            name: name.to_owned(),
            assigner: self.assigner,
            allowed_lateness: self.allowed_lateness,
            windows,
            function,
            problem,
        }
    }

    /// What is wrong with these parameters for windows named `name`, if anything.
    fn problem(&self, name: &str) -> Option<String> {
        if name.is_empty() {
            Some("the windows need a name (it names their state)".to_owned())
        } else if self.allowed_lateness < 0 {
            Some(format!(
                "the allowed lateness must not be negative, got {} ms",
                self.allowed_lateness
            ))
        } else {
            self.assigner.problem()
        }
    }

    fn reduce<T>(
        self,
        states: &mut StateRegistry,
        name: &str,
        reduce: fn(&T, &T) -> T,
    ) -> Windows<Reduce<T>>
    where
        T: Serialize + DeserializeOwned + Clone + 'static,
    {
        self.build(states, name, |_| Reduce { reduce })
    }

    fn aggregate<A>(
        self,
        states: &mut StateRegistry,
        name: &str,
        function: A,
        merge: Option<MergeFn<A>>,
    ) -> Windows<Aggregate<A>>
    where
        A: AggregateFunction,
        A::Input: Clone,
    {
        self.build(states, name, |_| Aggregate { function, merge })
    }

    fn process<P: ProcessWindowFunction>(
        self,
        states: &mut StateRegistry,
        name: &str,
        function: P,
    ) -> Windows<Process<P>> {
        self.build(states, name, |states| Process {
            function,
            elements: states.list(&format!("{name}/elements")),
        })
    }
}

/// The shape of windows with their allowed lateness: [`TumblingWindows`], [`SlidingWindows`]
/// or [`SessionWindows`]. Sealed; it lets [`Windows::reconfigure`] take any of them.
///
/// ```
/// use eddy_sdk::window::{SessionWindows, TumblingWindows, WindowAssigner};
///
/// fn describe(windows: impl WindowAssigner) -> String {
///     format!("{windows:?}")
/// }
/// assert!(describe(TumblingWindows::of(1_000)).starts_with("TumblingWindows"));
/// assert!(describe(SessionWindows::with_gap(1_000)).starts_with("SessionWindows"));
/// ```
pub trait WindowAssigner: sealed::SealedAssigner + Copy + fmt::Debug {}

/// Tumbling event-time windows: back-to-back windows of one size, e.g. every minute
/// (`[0, 60000)`, `[60000, 120000)`, …); each element is in exactly one.
///
/// ```
/// use eddy_sdk::StateRegistry;
/// use eddy_sdk::window::{Reduce, TumblingWindows, Windows};
///
/// fn declare(states: &mut StateRegistry) -> Windows<Reduce<u64>> {
///     // Hourly counts, hours starting at 15 minutes past, kept a minute for late data.
///     TumblingWindows::of(3_600_000)
///         .offset(900_000)
///         .allowed_lateness(60_000)
///         .reduce(states, "hourly", |a: &u64, b: &u64| a + b)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "finish the declaration with `reduce`, `aggregate` or `process`"]
pub struct TumblingWindows {
    size: i64,
    offset: i64,
    allowed_lateness: i64,
}

impl sealed::SealedAssigner for TumblingWindows {
    fn spec(self) -> Spec {
        Spec {
            assigner: Assigner::Tumbling {
                size: self.size,
                offset: self.offset,
            },
            allowed_lateness: self.allowed_lateness,
        }
    }
}

impl WindowAssigner for TumblingWindows {}

impl TumblingWindows {
    /// Windows of `size_ms` milliseconds (positive), starting at multiples of it.
    ///
    /// ```
    /// # use eddy_sdk::window::TumblingWindows;
    /// let minutes = TumblingWindows::of(60_000);
    /// ```
    pub const fn of(size_ms: i64) -> Self {
        Self {
            size: size_ms,
            offset: 0,
            allowed_lateness: 0,
        }
    }

    /// Windows start at `offset_ms` plus multiples of the size instead (e.g. days in a time
    /// zone).
    ///
    /// ```
    /// # use eddy_sdk::window::TumblingWindows;
    /// // Days from midnight in UTC+2.
    /// let days = TumblingWindows::of(86_400_000).offset(-7_200_000);
    /// ```
    pub const fn offset(mut self, offset_ms: i64) -> Self {
        self.offset = offset_ms;
        self
    }

    /// How long after a window's end (in event time) its state is kept for late elements
    /// (default 0, not negative); see the [module docs](self).
    ///
    /// ```
    /// # use eddy_sdk::window::TumblingWindows;
    /// let minutes = TumblingWindows::of(60_000).allowed_lateness(30_000);
    /// ```
    pub const fn allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.allowed_lateness = lateness_ms;
        self
    }
}

/// Sliding event-time windows: windows of one size that start every `slide`, e.g. the last
/// 10 minutes every minute; an element is in `size / slide` of them (rounded up; none when
/// it falls in a gap of a slide larger than the size).
///
/// ```
/// use eddy_sdk::StateRegistry;
/// use eddy_sdk::window::{Reduce, SlidingWindows, Windows};
///
/// fn declare(states: &mut StateRegistry) -> Windows<Reduce<u64>> {
///     SlidingWindows::of(600_000, 60_000).reduce(states, "last-10-minutes", |a: &u64, b: &u64| a + b)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "finish the declaration with `reduce`, `aggregate` or `process`"]
pub struct SlidingWindows {
    size: i64,
    slide: i64,
    offset: i64,
    allowed_lateness: i64,
}

impl sealed::SealedAssigner for SlidingWindows {
    fn spec(self) -> Spec {
        Spec {
            assigner: Assigner::Sliding {
                size: self.size,
                slide: self.slide,
                offset: self.offset,
            },
            allowed_lateness: self.allowed_lateness,
        }
    }
}

impl WindowAssigner for SlidingWindows {}

impl SlidingWindows {
    /// Windows of `size_ms` milliseconds starting every `slide_ms` (both positive, at most
    /// [`MAX_WINDOWS_PER_ELEMENT`] windows per element).
    ///
    /// ```
    /// # use eddy_sdk::window::SlidingWindows;
    /// let last_hour_every_5_minutes = SlidingWindows::of(3_600_000, 300_000);
    /// ```
    pub const fn of(size_ms: i64, slide_ms: i64) -> Self {
        Self {
            size: size_ms,
            slide: slide_ms,
            offset: 0,
            allowed_lateness: 0,
        }
    }

    /// Windows start at `offset_ms` plus multiples of the slide instead.
    ///
    /// ```
    /// # use eddy_sdk::window::SlidingWindows;
    /// let shifted = SlidingWindows::of(60_000, 10_000).offset(5_000);
    /// ```
    pub const fn offset(mut self, offset_ms: i64) -> Self {
        self.offset = offset_ms;
        self
    }

    /// How long after a window's end (in event time) its state is kept for late elements
    /// (default 0, not negative); see the [module docs](self).
    ///
    /// ```
    /// # use eddy_sdk::window::SlidingWindows;
    /// let windows = SlidingWindows::of(60_000, 10_000).allowed_lateness(5_000);
    /// ```
    pub const fn allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.allowed_lateness = lateness_ms;
        self
    }
}

/// Session windows of event time: a key's elements less than `gap` apart form one session,
/// which ends `gap` after its last element. A session grows with every element, and two
/// sessions merge when an element bridges them.
///
/// ```
/// use eddy_sdk::StateRegistry;
/// use eddy_sdk::window::{Reduce, SessionWindows, Windows};
///
/// fn declare(states: &mut StateRegistry) -> Windows<Reduce<u64>> {
///     SessionWindows::with_gap(30 * 60_000).reduce(states, "clicks", |a: &u64, b: &u64| a + b)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "finish the declaration with `reduce`, `aggregate` or `process`"]
pub struct SessionWindows {
    gap: i64,
    allowed_lateness: i64,
}

impl sealed::SealedAssigner for SessionWindows {
    fn spec(self) -> Spec {
        Spec {
            assigner: Assigner::Session { gap: self.gap },
            allowed_lateness: self.allowed_lateness,
        }
    }
}

impl WindowAssigner for SessionWindows {}

impl SessionWindows {
    /// Sessions that close after `gap_ms` milliseconds (positive) without elements.
    ///
    /// ```
    /// # use eddy_sdk::window::SessionWindows;
    /// let visits = SessionWindows::with_gap(30 * 60_000);
    /// ```
    pub const fn with_gap(gap_ms: i64) -> Self {
        Self {
            gap: gap_ms,
            allowed_lateness: 0,
        }
    }

    /// How long after a session's end (in event time) its state is kept for late elements
    /// (default 0, not negative); see the [module docs](self).
    ///
    /// ```
    /// # use eddy_sdk::window::SessionWindows;
    /// let visits = SessionWindows::with_gap(30 * 60_000).allowed_lateness(60_000);
    /// ```
    pub const fn allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.allowed_lateness = lateness_ms;
        self
    }

    /// Finishes the declaration with an aggregate function, which must merge accumulators;
    /// see [`Aggregate`] and [`MergingAggregateFunction`].
    ///
    /// ```
    /// # use eddy_sdk::{AggregateFunction, StateRegistry, window::*};
    /// struct Count;
    /// impl AggregateFunction for Count {
    ///     type Input = ();
    ///     type Accumulator = u64;
    ///     type Output = u64;
    ///     fn create_accumulator(&self) -> u64 { 0 }
    ///     fn add(&self, _: (), n: &mut u64) { *n += 1 }
    ///     fn get_result(&self, n: &u64) -> u64 { *n }
    /// }
    /// impl MergingAggregateFunction for Count {
    ///     fn merge(&self, a: u64, b: u64) -> u64 { a + b }
    /// }
    /// fn declare(states: &mut StateRegistry) -> Windows<Aggregate<Count>> {
    ///     SessionWindows::with_gap(60_000).aggregate(states, "counts", Count)
    /// }
    /// ```
    pub fn aggregate<A>(
        self,
        states: &mut StateRegistry,
        name: &str,
        function: A,
    ) -> Windows<Aggregate<A>>
    where
        A: MergingAggregateFunction,
        A::Input: Clone,
    {
        let merge: MergeFn<A> = <A as MergingAggregateFunction>::merge;
        sealed::SealedAssigner::spec(self).aggregate(states, name, function, Some(merge))
    }
}

/// The ways to finish a window declaration, the same for every assigner: `reduce` and
/// `process`, and `aggregate` when its name is given (assigners whose windows never merge;
/// sessions have their own, which needs a merge). `$new` builds the assigner in the doc
/// tests.
macro_rules! finishers {
    ($assigner:ty, $new:literal $(, $aggregate:ident)?) => {
        impl $assigner {
            /// Finishes the declaration with a reduce function (which also merges windows
            /// that merge); see [`Reduce`]. `name` names the windows' state
            /// (`{name}/windows`).
            ///
            #[doc = concat!(
                "```\n# use eddy_sdk::{StateRegistry, window::*};\n",
                "fn declare(states: &mut StateRegistry) -> Windows<Reduce<i64>> {\n    ",
                $new, ".reduce(states, \"sums\", |a, b| a + b)\n}\n```"
            )]
            pub fn reduce<T>(
                self,
                states: &mut StateRegistry,
                name: &str,
                reduce: fn(&T, &T) -> T,
            ) -> Windows<Reduce<T>>
            where
                T: Serialize + DeserializeOwned + Clone + 'static,
            {
                sealed::SealedAssigner::spec(self).reduce(states, name, reduce)
            }

            /// Finishes the declaration with a process-window function; see [`Process`].
            /// `name` names the windows' state (`{name}/windows` and `{name}/elements`).
            ///
            #[doc = concat!(
                "```\n# use eddy_sdk::{StateRegistry, window::*};\n",
                "struct Count;\n",
                "impl ProcessWindowFunction for Count {\n",
                "    type Input = ();\n    type Output = usize;\n",
                "    fn process(&self, _: &[u8], _: &Window, elements: Vec<(i64, ())>) -> usize {\n",
                "        elements.len()\n    }\n}\n",
                "fn declare(states: &mut StateRegistry) -> Windows<Process<Count>> {\n    ",
                $new, ".process(states, \"counts\", Count)\n}\n```"
            )]
            pub fn process<P: ProcessWindowFunction>(
                self,
                states: &mut StateRegistry,
                name: &str,
                function: P,
            ) -> Windows<Process<P>> {
                sealed::SealedAssigner::spec(self).process(states, name, function)
            }

            $(
            /// Finishes the declaration with an aggregate function; see [`Aggregate`].
            /// `name` names the windows' state (`{name}/windows`).
            ///
            #[doc = concat!(
                "```\n# use eddy_sdk::{AggregateFunction, StateRegistry, window::*};\n",
                "struct Count;\n",
                "impl AggregateFunction for Count {\n",
                "    type Input = ();\n    type Accumulator = u64;\n    type Output = u64;\n",
                "    fn create_accumulator(&self) -> u64 { 0 }\n",
                "    fn add(&self, _: (), n: &mut u64) { *n += 1 }\n",
                "    fn get_result(&self, n: &u64) -> u64 { *n }\n}\n",
                "fn declare(states: &mut StateRegistry) -> Windows<Aggregate<Count>> {\n    ",
                $new, ".aggregate(states, \"counts\", Count)\n}\n```"
            )]
            pub fn $aggregate<A>(
                self,
                states: &mut StateRegistry,
                name: &str,
                function: A,
            ) -> Windows<Aggregate<A>>
            where
                A: AggregateFunction,
                A::Input: Clone,
            {
                sealed::SealedAssigner::spec(self).aggregate(states, name, function, None)
            }
            )?
        }
    };
}

finishers!(TumblingWindows, "TumblingWindows::of(60_000)", aggregate);
finishers!(
    SlidingWindows,
    "SlidingWindows::of(60_000, 20_000)",
    aggregate
);
finishers!(SessionWindows, "SessionWindows::with_gap(60_000)");

/// A live window of a key; the window value state stores it as the tuple
/// `(start, end, pending, accumulator)`.
struct Slot<A> {
    window: Window,
    /// Holds elements not yet in a firing: it fires when the watermark reaches its end.
    pending: bool,
    accumulator: A,
}

/// A key's live windows, in order: inline up to two (a tumbling or session window and the
/// next, the usual case), so that loading them allocates nothing. Stored as a sequence,
/// as a `Vec` would be.
type Slots<A> = SmallVec<[Slot<A>; 2]>;

impl<A: Serialize> Serialize for Slot<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            self.window.start,
            self.window.end,
            self.pending,
            &self.accumulator,
        )
            .serialize(serializer)
    }
}

impl<'de, A: Deserialize<'de>> Deserialize<'de> for Slot<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (start, end, pending, accumulator) = <(i64, i64, bool, A)>::deserialize(deserializer)?;
        Ok(Slot {
            window: Window::new(start, end),
            pending,
            accumulator,
        })
    }
}

/// Event-time windows over the current key's elements, with a window function `F`; made by
/// the `reduce`, `aggregate` and `process` methods of [`TumblingWindows`],
/// [`SlidingWindows`] and [`SessionWindows`] in [`Operator::open`](crate::Operator::open).
/// See the [module docs](self) for the semantics, the state and the timers.
///
/// ```
/// use eddy_sdk::testing::{Harness, RecordBuilder};
/// use eddy_sdk::window::{Process, ProcessWindowFunction, SessionWindows, Window, Windows};
/// use eddy_sdk::{Context, Error, Operator, Record, StateRegistry, Timer};
///
/// /// The pages of a visit, in order.
/// struct Path;
///
/// impl ProcessWindowFunction for Path {
///     type Input = String;
///     type Output = String;
///     fn process(&self, _: &[u8], _: &Window, pages: Vec<(i64, String)>) -> String {
///         pages.into_iter().map(|(_, page)| page).collect::<Vec<_>>().join(" > ")
///     }
/// }
///
/// struct Visits {
///     visits: Windows<Process<Path>>,
/// }
///
/// impl Operator for Visits {
///     const NAME: &'static str = "visits";
///     const VERSION: &'static str = "0.1.0";
///
///     fn open(states: &mut StateRegistry) -> Self {
///         Self { visits: SessionWindows::with_gap(2_000).process(states, "visits", Path) }
///     }
///
///     fn init(&mut self, _config: &str) -> Result<(), Error> {
///         self.visits.check() // bad window parameters fail the start, not every record
///     }
///
///     fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
///         let page = record.value_str()?.to_owned();
///         for fired in self.visits.add(ctx, page)? {
///             ctx.emit(ctx.key(), fired.result);
///         }
///         Ok(())
///     }
///
///     fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
///         for fired in self.visits.on_timer(ctx, timer)?.unwrap_or_default() {
///             ctx.emit(ctx.key(), fired.result);
///         }
///         Ok(())
///     }
/// }
///
/// let mut h = Harness::<Visits>::new();
/// for (page, at) in [("/", 0), ("/cart", 2_500), ("/shop", 1_800), ("/pay", 5_000)] {
///     h.process_record(RecordBuilder::new("ann", page).timestamp(at)).unwrap();
/// }
/// let visits = h.advance_watermark(i64::MAX).unwrap();
/// let visits: Vec<&str> = visits.iter().map(|e| e.value_str().unwrap()).collect();
/// // `/shop` came late but bridged `/` and `/cart` into one visit.
/// assert_eq!(visits, ["/ > /shop > /cart", "/pay"]);
/// ```
pub struct Windows<F: WindowFunction> {
    name: String,
    assigner: Assigner,
    allowed_lateness: i64,
    windows: ValueState<Slots<F::Accumulator>>,
    function: F,
    problem: Option<String>,
}

impl<F: WindowFunction + fmt::Debug> fmt::Debug for Windows<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Windows")
            .field("name", &self.name)
            .field("assigner", &self.assigner)
            .field("allowed_lateness", &self.allowed_lateness)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl<F: WindowFunction> Windows<F> {
    /// The name the windows were declared with (their state is `{name}/…`).
    ///
    /// ```
    /// # use eddy_sdk::{StateRegistry, window::*};
    /// # fn declare(states: &mut StateRegistry) {
    /// let sums = TumblingWindows::of(1_000).reduce(states, "sums", |a: &i64, b: &i64| a + b);
    /// assert_eq!(sums.name(), "sums");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the declaration is sound: a name, a positive size, slide or gap (and at most
    /// [`MAX_WINDOWS_PER_ELEMENT`] sliding windows per element), and a lateness that is not
    /// negative. The error is [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig),
    /// so an operator whose window parameters come from its config returns it from `init`;
    /// otherwise `add` and `on_timer` fail with it.
    ///
    /// ```
    /// # use eddy_sdk::{ErrorKind, StateRegistry, window::*};
    /// # fn declare(states: &mut StateRegistry) {
    /// let bad = TumblingWindows::of(0).reduce(states, "sums", |a: &i64, b: &i64| a + b);
    /// let error = bad.check().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    /// assert_eq!(error.message(), "window `sums`: the window size must be positive, got 0 ms");
    /// # }
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        match &self.problem {
            Some(problem) => Err(Error::invalid_config(format!(
                "window `{}`: {problem}",
                self.name
            ))),
            None => Ok(()),
        }
    }

    /// Replaces the shape and allowed lateness of the windows, keeping their name and state:
    /// for parameters that come from the operator's config, in `init` (declarations in
    /// `open` cannot read it). Windows already in the state keep their bounds; new elements
    /// go to windows of the new shape. The new lateness applies to every window: the
    /// cleanup timers it needs are registered at the key's next element or timer — so a
    /// window kept longer is not cleaned up at its old time, and one whose new cleanup time
    /// has passed is cleaned up then (at the latest at its old cleanup time). Fails like [`check`](Self::check), and
    /// when asked for sessions by aggregate windows not declared with
    /// [`SessionWindows::aggregate`] (they cannot merge).
    ///
    /// ```
    /// # use eddy_sdk::{Error, StateRegistry, window::*};
    /// # fn declare(states: &mut StateRegistry) -> Result<(), Error> {
    /// let mut sums = TumblingWindows::of(60_000).reduce(states, "sums", |a: &i64, b: &i64| a + b);
    /// // In `init`, with `size_ms` and `lateness_ms` read from the config:
    /// # let (size_ms, lateness_ms) = (10_000, 1_000);
    /// sums.reconfigure(TumblingWindows::of(size_ms).allowed_lateness(lateness_ms))?;
    /// assert!(sums.reconfigure(TumblingWindows::of(-1)).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconfigure<W: WindowAssigner>(&mut self, windows: W) -> Result<(), Error> {
        let spec = sealed::SealedAssigner::spec(windows);
        if matches!(spec.assigner, Assigner::Session { .. }) && !self.function.can_merge() {
            return Err(Error::invalid_config(format!(
                "window `{}`: session windows merge their accumulators, which this aggregate \
                 function cannot; declare the windows with `SessionWindows::aggregate` and a \
                 `MergingAggregateFunction`",
                self.name
            )));
        }
        self.assigner = spec.assigner;
        self.allowed_lateness = spec.allowed_lateness;
        self.problem = spec.problem(&self.name);
        self.check()
    }

    fn ready(&self) -> Result<(), Error> {
        self.check().map_err(|error| Error::failed(error.message()))
    }

    /// Adds an element at the current record's timestamp ([`Context::timestamp`]); see
    /// [`add_at`](Self::add_at).
    ///
    /// ```
    /// # use eddy_sdk::{Context, Error, window::*};
    /// fn process(sums: &Windows<Reduce<i64>>, ctx: &mut Context<'_>, n: i64) -> Result<(), Error> {
    ///     for fired in sums.add(ctx, n)? {
    ///         ctx.emit(ctx.key(), fired.result.to_string());
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn add(&self, ctx: &mut Context<'_>, element: F::Input) -> Result<Added<F::Output>, Error> {
        let timestamp = ctx.timestamp();
        self.add_at(ctx, timestamp, element)
    }

    /// Adds an element at `timestamp` to the current key's windows that hold it, creating
    /// them (and merging sessions) as needed, and registers their timers.
    ///
    /// A window whose end the watermark ([`Context::watermark`]) has already passed, but
    /// which is still within its allowed lateness, fires at once: it is in the returned
    /// [`Added::fired`]. An element for which every window was already cleaned up changes
    /// nothing and comes back as [`Added::dropped`].
    ///
    /// ```
    /// # use eddy_sdk::{Context, Error, window::*};
    /// /// Adds a click at the time the click names; counts the ones dropped as too late.
    /// fn click(
    ///     clicks: &Windows<Reduce<u64>>,
    ///     ctx: &mut Context<'_>,
    ///     at: i64,
    /// ) -> Result<bool, Error> {
    ///     let added = clicks.add_at(ctx, at, 1)?;
    ///     let dropped = added.dropped;
    ///     for fired in added {
    ///         ctx.emit(ctx.key(), fired.result.to_string());
    ///     }
    ///     Ok(dropped)
    /// }
    /// ```
    pub fn add_at(
        &self,
        ctx: &mut Context<'_>,
        timestamp: i64,
        element: F::Input,
    ) -> Result<Added<F::Output>, Error> {
        self.ready()?;
        let watermark = ctx.watermark();
        let assigned = self.assigner.assign(timestamp);
        if assigned.is_empty() {
            // In the gap between sliding windows: in no window, and not late either.
            return Ok(Added::default());
        }
        let mut slots = self.load(ctx)?;

        let mut took = Assigned::new();
        // Whether the element only went into windows that were pending already, and every
        // live window is pending: their timers were registered when they became pending
        // (a cleanup time moved by a new allowed lateness is registered when the window
        // fires), so none is sent again. A live window that fired already may need its
        // cleanup timer registered under a new lateness: then they all are.
        let mut same_timers = true;
        if let Assigner::Session { .. } = self.assigner {
            same_timers = false;
            for new in assigned {
                let mut merged = new;
                let mut accumulator = None;
                let mut rest = Slots::with_capacity(slots.len() + 1);
                // Live sessions are disjoint and in order: the new one overlaps a run of
                // them, and covering that run overlaps no other.
                for slot in slots {
                    if slot.window.overlaps(&new) {
                        merged = merged.cover(&slot.window);
                        accumulator = Some(match accumulator {
                            None => slot.accumulator,
                            Some(earlier) => self.function.merge(earlier, slot.accumulator)?,
                        });
                    } else {
                        rest.push(slot);
                    }
                }
                if self.expired(&merged, watermark) {
                    // Only a session that merged with none can be expired (a live one is
                    // not): nothing changed.
                    return Ok(Added {
                        fired: Vec::new(),
                        dropped: true,
                    });
                }
                let accumulator = match accumulator {
                    Some(mut accumulator) => {
                        self.function.accumulate(&mut accumulator, &element);
                        accumulator
                    }
                    None => self.function.create(&element),
                };
                rest.push(Slot {
                    window: merged,
                    pending: false,
                    accumulator,
                });
                slots = rest;
                took.push(merged);
            }
        } else {
            for window in assigned {
                if self.expired(&window, watermark) {
                    continue;
                }
                match slots.iter_mut().find(|slot| slot.window == window) {
                    Some(slot) => {
                        same_timers &= slot.pending;
                        self.function.accumulate(&mut slot.accumulator, &element);
                    }
                    None => {
                        same_timers = false;
                        slots.push(Slot {
                            window,
                            pending: false,
                            accumulator: self.function.create(&element),
                        });
                    }
                }
                took.push(window);
            }
        }
        if took.is_empty() {
            return Ok(Added {
                fired: Vec::new(),
                dropped: true,
            });
        }
        slots.sort_by_key(|slot| slot.window);
        self.function.store(ctx, timestamp, element)?;

        let mut fired = Vec::new();
        for slot in slots.iter_mut().filter(|slot| took.contains(&slot.window)) {
            if watermark != NO_WATERMARK && slot.window.max_timestamp() <= watermark {
                let result = self.function.result(ctx, &slot.window, &slot.accumulator)?;
                fired.push(Fired {
                    window: slot.window,
                    result,
                    late: true,
                });
                slot.pending = false;
            } else {
                slot.pending = true;
            }
        }
        if fired.is_empty() && same_timers && slots.iter().all(|slot| slot.pending) {
            self.save(ctx, slots)?;
        } else {
            self.save_and_register(ctx, slots)?;
        }
        Ok(Added {
            fired,
            dropped: false,
        })
    }

    /// Handles a fired timer of the current key — any of its event-time timers, whoever
    /// registered it: fires every pending window whose end the timer's time reached (in
    /// window order) and cleans up every window whose allowed lateness is over at that
    /// time. A window is due when both the timer's timestamp and the watermark
    /// ([`Context::watermark`]) have reached its time, so a timer never fires a window early,
    /// and a window whose own timer is missing or was registered by someone else is handled
    /// by the key's first timer at or after its time.
    ///
    /// Returns `Some` with the windows that fired when anything of these windows was due:
    /// a window fired or was cleaned up (a cleanup alone gives `Some` of an empty list).
    /// Returns `None` when nothing of them was due: a processing-time timer, a timer of the
    /// operator's own, or one these windows registered but no longer need (they never delete
    /// their timers, so one left by a merged session or an earlier cleanup fires this way).
    /// A timestamp can be both the windows' and the operator's: `Some` does not mean the
    /// timer is not also the operator's, so an operator with timers of its own recognizes
    /// them by its own state, whatever the windows answer.
    ///
    /// ```
    /// # use eddy_sdk::{Context, Error, Timer, window::*};
    /// fn on_timer(
    ///     sums: &Windows<Reduce<i64>>,
    ///     ctx: &mut Context<'_>,
    ///     timer: &Timer,
    /// ) -> Result<(), Error> {
    ///     match sums.on_timer(ctx, timer)? {
    ///         Some(fired) => {
    ///             for fired in fired {
    ///                 ctx.emit(ctx.key(), fired.result.to_string());
    ///             }
    ///         }
    ///         None => { /* nothing of the windows was due */ }
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn on_timer(
        &self,
        ctx: &mut Context<'_>,
        timer: &Timer,
    ) -> Result<Option<Vec<Fired<F::Output>>>, Error> {
        if timer.domain != TimeDomain::EventTime {
            return Ok(None);
        }
        self.ready()?;
        let time = timer.timestamp.min(ctx.watermark());
        let mut slots = self.load(ctx)?;
        if slots.is_empty() {
            return Ok(None);
        }
        let mut fired = Vec::new();
        for slot in slots
            .iter_mut()
            .filter(|slot| slot.pending && slot.window.max_timestamp() <= time)
        {
            let result = self.function.result(ctx, &slot.window, &slot.accumulator)?;
            fired.push(Fired {
                window: slot.window,
                result,
                late: false,
            });
            slot.pending = false;
        }
        let live = slots.len();
        slots.retain(|slot| self.cleanup_time(&slot.window) > time);
        let cleaned = slots.len() < live;
        if cleaned {
            let windows: Vec<Window> = slots.iter().map(|slot| slot.window).collect();
            self.function.retain(ctx, &windows)?;
        }
        if fired.is_empty() && !cleaned {
            // Nothing changed; the timers are registered still, as they may not be when the
            // allowed lateness grew since they were.
            self.register_timers(ctx, &slots);
            return Ok(None);
        }
        self.save_and_register(ctx, slots)?;
        Ok(Some(fired))
    }

    /// The current key's live windows (those holding state), in order.
    ///
    /// ```
    /// # use eddy_sdk::{Context, Error, window::*};
    /// fn open_windows(sums: &Windows<Reduce<i64>>, ctx: &mut Context<'_>) -> Result<usize, Error> {
    ///     Ok(sums.windows(ctx)?.len())
    /// }
    /// ```
    pub fn windows(&self, ctx: &mut Context<'_>) -> Result<Vec<Window>, Error> {
        Ok(self
            .load(ctx)?
            .into_iter()
            .map(|slot| slot.window)
            .collect())
    }

    /// When a window's state goes: `end - 1 + allowed lateness`.
    fn cleanup_time(&self, window: &Window) -> i64 {
        window.max_timestamp().saturating_add(self.allowed_lateness)
    }

    /// Whether `window` is past its allowed lateness at `watermark`.
    fn expired(&self, window: &Window, watermark: i64) -> bool {
        watermark != NO_WATERMARK && self.cleanup_time(window) <= watermark
    }

    /// Registers every event-time timer `slots` need: the end of every pending window and the
    /// cleanup time of every live one. Those that exist stay as they are (the host
    /// changes nothing for them), which keeps the timers right after a change of the allowed
    /// lateness without knowing which ones the key has.
    fn register_timers(&self, ctx: &mut Context<'_>, slots: &[Slot<F::Accumulator>]) {
        let mut timers = Vec::with_capacity(slots.len() * 2);
        for slot in slots {
            timers.push(self.cleanup_time(&slot.window));
            if slot.pending {
                timers.push(slot.window.max_timestamp());
            }
        }
        timers.sort_unstable();
        timers.dedup();
        for time in timers {
            ctx.register_event_time_timer(time);
        }
    }

    /// Writes the key's windows and registers the timers they need.
    fn save_and_register(
        &self,
        ctx: &mut Context<'_>,
        slots: Slots<F::Accumulator>,
    ) -> Result<(), Error> {
        self.register_timers(ctx, &slots);
        self.save(ctx, slots)
    }

    fn load(&self, ctx: &mut Context<'_>) -> Result<Slots<F::Accumulator>, Error> {
        Ok(self.windows.get(ctx)?.unwrap_or_default())
    }

    fn save(&self, ctx: &mut Context<'_>, slots: Slots<F::Accumulator>) -> Result<(), Error> {
        if slots.is_empty() {
            return self.windows.clear(ctx);
        }
        self.windows.set(ctx, &slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_window_is_stored_as_its_tuple_in_both_codecs() -> Result<(), Error> {
        let slots = vec![Slot {
            window: Window::new(-60, 60),
            pending: true,
            accumulator: 7u64,
        }];
        let tuples: Vec<(i64, i64, bool, u64)> = vec![(-60, 60, true, 7)];
        for codec in [crate::Codec::Postcard, crate::Codec::Json] {
            let bytes = codec.encode(&slots)?;
            assert_eq!(bytes, codec.encode(&tuples)?);
            let back: Slots<u64> = codec.decode(&bytes)?;
            assert_eq!(
                (back[0].window, back[0].pending, back[0].accumulator),
                (Window::new(-60, 60), true, 7)
            );
        }
        Ok(())
    }

    fn assign(assigner: Assigner, timestamp: i64) -> Vec<(i64, i64)> {
        assigner
            .assign(timestamp)
            .into_iter()
            .map(|w| (w.start, w.end))
            .collect()
    }

    #[test]
    fn tumbling_windows_align_to_size_and_offset() {
        let minutes = Assigner::Tumbling {
            size: 60,
            offset: 0,
        };
        assert_eq!(assign(minutes, 0), [(0, 60)]);
        assert_eq!(assign(minutes, 59), [(0, 60)]);
        assert_eq!(assign(minutes, 60), [(60, 120)]);
        assert_eq!(assign(minutes, -1), [(-60, 0)]);
        let shifted = Assigner::Tumbling {
            size: 60,
            offset: 15,
        };
        assert_eq!(assign(shifted, 14), [(-45, 15)]);
        assert_eq!(assign(shifted, 15), [(15, 75)]);
        // An offset beyond the size is the same as its remainder.
        let far = Assigner::Tumbling {
            size: 60,
            offset: 615,
        };
        assert_eq!(assign(far, 14), [(-45, 15)]);
        // Extreme timestamps saturate instead of overflowing.
        assert_eq!(assign(minutes, i64::MAX).len(), 1);
        assert_eq!(assign(minutes, i64::MIN).len(), 1);
    }

    #[test]
    fn sliding_windows_hold_each_element_size_over_slide_times() {
        let sliding = Assigner::Sliding {
            size: 30,
            slide: 10,
            offset: 0,
        };
        assert_eq!(assign(sliding, 0), [(-20, 10), (-10, 20), (0, 30)]);
        assert_eq!(assign(sliding, 29), [(0, 30), (10, 40), (20, 50)]);
        let uneven = Assigner::Sliding {
            size: 25,
            slide: 10,
            offset: 0,
        };
        assert_eq!(assign(uneven, 4), [(-20, 5), (-10, 15), (0, 25)]);
        assert_eq!(assign(uneven, 5), [(-10, 15), (0, 25)]);
        // A slide larger than the size leaves gaps.
        let gappy = Assigner::Sliding {
            size: 5,
            slide: 10,
            offset: 0,
        };
        assert_eq!(assign(gappy, 3), [(0, 5)]);
        assert_eq!(assign(gappy, 7), []);
        assert!(assign(sliding, i64::MIN).len() <= 3);
    }

    #[test]
    fn sessions_overlap_only_when_they_share_a_timestamp() {
        let a = Window::new(0, 10);
        assert!(a.overlaps(&Window::new(9, 19)));
        assert!(!a.overlaps(&Window::new(10, 20)));
        assert!(!Window::new(10, 20).overlaps(&a));
        assert_eq!(a.cover(&Window::new(5, 30)), Window::new(0, 30));
    }

    #[test]
    fn bad_parameters_are_problems() {
        let problem = |assigner: Assigner| assigner.problem().unwrap_or_default();
        assert!(problem(Assigner::Tumbling { size: 0, offset: 0 }).contains("size"));
        assert!(
            problem(Assigner::Sliding {
                size: 10,
                slide: -1,
                offset: 0
            })
            .contains("slide")
        );
        assert!(
            problem(Assigner::Sliding {
                size: 1001,
                slide: 1,
                offset: 0
            })
            .contains("1001 windows")
        );
        assert!(problem(Assigner::Session { gap: 0 }).contains("gap"));
        assert_eq!(
            Assigner::Sliding {
                size: 1000,
                slide: 1,
                offset: 0
            }
            .problem(),
            None
        );
        // Bad parameters assign nothing rather than dividing by zero.
        assert!(
            Assigner::Tumbling { size: 0, offset: 0 }
                .assign(5)
                .is_empty()
        );
    }
}
