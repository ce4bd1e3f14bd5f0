//! State: the descriptors an operator declares in [`Operator::open`](crate::Operator::open)
//! through a [`StateRegistry`], and the typed handles it gets back — keyed state
//! ([`ValueState`], [`MapState`], [`ListState`], [`ReducingState`], [`AggregatingState`]),
//! scoped to the current record's key, and non-keyed operator state
//! ([`OperatorListState`]), one list per worker.
//!
//! Values (and map keys) are encoded with the state's [`Codec`]: [postcard](https://docs.rs/postcard),
//! a compact serde format, unless the declaration asks for JSON
//! ([`StateBuilder::codec`]), which tools (`eddy savepoint dump` and `bootstrap`) and
//! operators in other languages read. Changing the Rust type or the codec of a state
//! changes its bytes: bump the state's [`schema_version`](StateBuilder::schema_version)
//! and implement [`Operator::migrate`](crate::Operator::migrate).
//!
//! # Time to live
//! Keyed state may expire ([`StateBuilder::ttl`]): the host drops each value, map entry and
//! list item separately once [`TtlConfig::ttl_ms`] of processing time have passed since its
//! last update, and never returns an expired one. What counts as an update is the
//! [`TtlUpdate`]: writes only ([`TtlUpdate::OnCreateAndWrite`], the default), or reads too
//! ([`TtlUpdate::OnReadAndWrite`]). Map and list reads cross to the host, which restamps
//! what they return; value state is prefetched into the batch, where the host cannot see a
//! read, so under `OnReadAndWrite` the SDK turns a read of a present value into a write of
//! the same bytes (see [`ValueState::get`]).

mod aggregate;
mod list;
mod map;
mod operator;
mod value;

pub use aggregate::{AggregateFunction, AggregatingState, ReducingState};
pub use list::ListState;
pub use map::{DEFAULT_PAGE_SIZE, MapEntries, MapKeys, MapState};
pub use operator::OperatorListState;
pub use value::ValueState;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::Error;

/// The kinds of keyed state (the WIT `state-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// One value per key.
    Value,
    /// A map per key.
    Map,
    /// A list per key.
    List,
}

/// Declares one keyed state (the WIT `state-descriptor`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateDescriptor {
    /// Stable name; the identity of the state across module versions.
    pub name: String,
    /// What kind of state it is.
    pub kind: StateKind,
    /// Version of the bytes' schema; a change asks the new module to `migrate`.
    pub schema_version: u32,
    /// When values expire (see [the module docs](self#time-to-live)); `None`: never.
    pub ttl: Option<TtlConfig>,
    /// The name of the codec of the bytes ([`Codec::name`]); the Rust SDK always says.
    pub codec: Option<String>,
}

impl StateDescriptor {
    /// The codec the descriptor names (postcard when it names none or one the SDK does not
    /// know).
    pub fn codec(&self) -> Codec {
        codec_named(self.codec.as_deref())
    }
}

/// What restarts a value's time to live (the WIT `ttl-update`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TtlUpdate {
    /// Creating or writing the value; a read does not. The default.
    #[default]
    OnCreateAndWrite,
    /// Creating, writing or reading it. For value state the SDK makes a read count by
    /// writing the value back in the batch result (see [`ValueState::get`]).
    OnReadAndWrite,
}

/// The time to live of a keyed state's values (the WIT `ttl-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtlConfig {
    /// Milliseconds of processing time after its last update at which a value (a map entry,
    /// a list item) expires.
    pub ttl_ms: u64,
    /// What counts as an update.
    pub update: TtlUpdate,
}

impl TtlConfig {
    /// The time to live as a [`Duration`].
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
}

/// How the items of an operator state are spread over the workers when a job starts (the
/// WIT `redistribution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Redistribution {
    /// The items of all workers, in worker order, split into contiguous parts of nearly
    /// equal size, one per worker; with the parallelism unchanged each worker gets its own
    /// items back. The default.
    #[default]
    EvenSplit,
    /// Every worker gets the items of all workers, in worker order.
    Union,
}

/// Declares one non-keyed operator state: a list of items per worker (the WIT
/// `operator-state-descriptor`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperatorStateDescriptor {
    /// Stable name; the identity of the state across module versions. Unique among the
    /// operator's keyed and operator states.
    pub name: String,
    /// Version of the items' schema; a change asks the new module to `migrate` each item.
    pub schema_version: u32,
    /// How the items move between workers at a start.
    pub redistribution: Redistribution,
    /// The name of the codec of the items ([`Codec::name`]); the Rust SDK always says.
    pub codec: Option<String>,
}

impl OperatorStateDescriptor {
    /// The codec the descriptor names (postcard when it names none or one the SDK does not
    /// know).
    pub fn codec(&self) -> Codec {
        codec_named(self.codec.as_deref())
    }

    /// The descriptor [`Operator::migrate`](crate::Operator::migrate) gets for each item of
    /// this state when its schema version changes: a [`StateKind::List`] state of the same
    /// name, schema version and codec, without TTL. (Names are unique across keyed and
    /// operator state, so the name alone tells `migrate` which state an item is of.)
    pub fn as_list_state(&self) -> StateDescriptor {
        StateDescriptor {
            name: self.name.clone(),
            kind: StateKind::List,
            schema_version: self.schema_version,
            ttl: None,
            codec: self.codec.clone(),
        }
    }
}

/// The bytes an encoding starts with room for.
const ENCODE_CAPACITY: usize = 64;

fn codec_named(name: Option<&str>) -> Codec {
    match name {
        Some(name) if name == Codec::Json.name() => Codec::Json,
        _ => Codec::Postcard,
    }
}

/// How a state's values and map keys become bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact and fast, not self-describing. The
    /// default.
    #[default]
    Postcard,
    /// JSON text ([serde_json](https://docs.rs/serde_json)): larger and slower, but
    /// readable by `eddy savepoint dump`, writable by `bootstrap`, and shared with
    /// operators in other languages.
    Json,
}

impl Codec {
    /// The name in the state descriptor (`postcard`, `json`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Postcard => "postcard",
            Codec::Json => "json",
        }
    }

    /// Encodes a value.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, Error> {
        match self {
            // Room for most values at once: growing from empty reallocates twice for a
            // 20-byte value.
            Codec::Postcard => postcard::to_extend(value, Vec::with_capacity(ENCODE_CAPACITY))
                .map_err(|e| e.to_string()),
            Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        }
        .map_err(|e| Error::failed(format!("cannot encode ({}): {e}", self.name())))
    }

    /// Decodes a value.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, Error> {
        match self {
            Codec::Postcard => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        }
        .map_err(|e| {
            Error::failed(format!(
                "cannot decode {} ({}): {e}",
                std::any::type_name::<T>(),
                self.name()
            ))
        })
    }
}

/// What an operator says about itself (the WIT `operator-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    /// [`Operator::NAME`](crate::Operator::NAME).
    pub name: String,
    /// [`Operator::VERSION`](crate::Operator::VERSION).
    pub version: String,
    /// The declared keyed states, in handle order.
    pub states: Vec<StateDescriptor>,
    /// The declared operator states, in handle order (their own handles, from 0).
    pub operator_states: Vec<OperatorStateDescriptor>,
}

/// Everything an operator declared, as the runtime keeps it for its calls.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    /// Keyed states, in handle order.
    pub(crate) states: Vec<StateDescriptor>,
    /// Operator states, in handle order.
    pub(crate) operator_states: Vec<OperatorStateDescriptor>,
}

/// The schema version a state gets unless its builder says otherwise.
pub const DEFAULT_SCHEMA_VERSION: u32 = 1;

/// Where an operator declares its state, in [`Operator::open`](crate::Operator::open).
///
/// Each declaration returns a typed handle. Keyed states are numbered in declaration order,
/// which is the order of `operator-info.states`; operator states
/// ([`operator_list`](Self::operator_list), [`declare_operator`](Self::declare_operator))
/// have their own numbering, the order of `operator-info.operator-states`. Names must be
/// non-empty and unique across keyed and operator states: a bad declaration makes `init`
/// fail with a message naming it.
///
/// ```
/// # use std::time::Duration;
/// # use eddy_sdk::{Codec, MapState, OperatorListState, Redistribution, StateRegistry, TtlUpdate, ValueState};
/// fn declare(
///     states: &mut StateRegistry,
/// ) -> (ValueState<u64>, MapState<String, i64>, OperatorListState<String>) {
///     let count = states.value::<u64>("count");
///     // Entries expire a minute after they were last written or read.
///     let seen = states
///         .declare("seen")
///         .schema_version(2)
///         .ttl(Duration::from_secs(60))
///         .ttl_update(TtlUpdate::OnReadAndWrite)
///         .map::<String, i64>();
///     // Not keyed: one list per worker, every worker gets all of them at a start.
///     let rules = states
///         .declare_operator("rules")
///         .redistribution(Redistribution::Union)
///         .codec(Codec::Json)
///         .list::<String>();
///     (count, seen, rules)
/// }
/// ```
#[derive(Debug, Default)]
pub struct StateRegistry {
    states: Vec<StateDescriptor>,
    operator_states: Vec<OperatorStateDescriptor>,
    problems: Vec<String>,
}

impl StateRegistry {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts a keyed state declaration with options (schema version, TTL, codec); finish
    /// it with one of the builder's kind methods.
    pub fn declare(&mut self, name: &str) -> StateBuilder<'_> {
        StateBuilder {
            registry: self,
            name: name.to_owned(),
            schema_version: DEFAULT_SCHEMA_VERSION,
            ttl: None,
            ttl_update: None,
            codec: Codec::default(),
        }
    }

    /// Starts an operator state declaration with options (schema version, redistribution,
    /// codec); finish it with [`list`](OperatorStateBuilder::list).
    pub fn declare_operator(&mut self, name: &str) -> OperatorStateBuilder<'_> {
        OperatorStateBuilder {
            registry: self,
            name: name.to_owned(),
            schema_version: DEFAULT_SCHEMA_VERSION,
            redistribution: Redistribution::default(),
            codec: Codec::default(),
        }
    }

    /// Declares a value state.
    pub fn value<T: Serialize + DeserializeOwned>(&mut self, name: &str) -> ValueState<T> {
        self.declare(name).value()
    }

    /// Declares a map state.
    pub fn map<K, V>(&mut self, name: &str) -> MapState<K, V>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.declare(name).map()
    }

    /// Declares a list state.
    pub fn list<T: Serialize + DeserializeOwned>(&mut self, name: &str) -> ListState<T> {
        self.declare(name).list()
    }

    /// Declares a reducing state: a value state that folds every added value into one with
    /// `reduce` (e.g. `|a, b| a + b`).
    pub fn reducing<T: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        reduce: fn(&T, &T) -> T,
    ) -> ReducingState<T> {
        self.declare(name).reducing(reduce)
    }

    /// Declares an aggregating state: a value state holding `function`'s accumulator.
    pub fn aggregating<A: AggregateFunction>(
        &mut self,
        name: &str,
        function: A,
    ) -> AggregatingState<A> {
        self.declare(name).aggregating(function)
    }

    /// Declares an operator list state with the defaults ([`Redistribution::EvenSplit`],
    /// postcard, schema version [`DEFAULT_SCHEMA_VERSION`]).
    pub fn operator_list<T: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> OperatorListState<T> {
        self.declare_operator(name).list()
    }

    /// The keyed states declared so far, in handle order.
    pub fn descriptors(&self) -> &[StateDescriptor] {
        &self.states
    }

    /// The operator states declared so far, in handle order.
    pub fn operator_descriptors(&self) -> &[OperatorStateDescriptor] {
        &self.operator_states
    }

    /// What is wrong with the declarations, if anything.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.problems.first() {
            None => Ok(()),
            Some(problem) => Err(Error::failed(problem.clone())),
        }
    }

    pub(crate) fn into_declared(self) -> Declared {
        Declared {
            states: self.states,
            operator_states: self.operator_states,
        }
    }

    /// Notes what is wrong with a new state's name: empty, or taken by a keyed or an
    /// operator state (the host keeps both under the same names).
    fn check_name(&mut self, name: &str, what: &str, index: usize) {
        if name.is_empty() {
            self.problems.push(format!(
                "{what} #{index} has an empty name; give every state a stable, unique name"
            ));
        } else if self.states.iter().any(|state| state.name == name) {
            self.problems.push(format!(
                "state `{name}` is declared twice (the first time as a keyed state); state \
                 names must be unique across keyed and operator states"
            ));
        } else if self.operator_states.iter().any(|state| state.name == name) {
            self.problems.push(format!(
                "state `{name}` is declared twice (the first time as an operator state); \
                 state names must be unique across keyed and operator states"
            ));
        }
    }

    fn push(&mut self, descriptor: StateDescriptor) -> u32 {
        self.check_name(&descriptor.name, "state", self.states.len());
        let handle = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        self.states.push(descriptor);
        handle
    }

    fn push_operator(&mut self, descriptor: OperatorStateDescriptor) -> u32 {
        self.check_name(
            &descriptor.name,
            "operator state",
            self.operator_states.len(),
        );
        let handle = u32::try_from(self.operator_states.len()).unwrap_or(u32::MAX);
        self.operator_states.push(descriptor);
        handle
    }
}

/// A keyed state declaration in progress; see [`StateRegistry::declare`].
#[derive(Debug)]
#[must_use = "a declaration takes effect only when finished with a kind method, e.g. `.value()`"]
pub struct StateBuilder<'r> {
    registry: &'r mut StateRegistry,
    name: String,
    schema_version: u32,
    ttl: Option<Duration>,
    ttl_update: Option<TtlUpdate>,
    codec: Codec,
}

impl StateBuilder<'_> {
    /// The version of the state's byte schema (default [`DEFAULT_SCHEMA_VERSION`]).
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Gives every value (map entry, list item) of the state a time to live, in whole
    /// milliseconds of processing time: the host drops it once `ttl` has passed since its
    /// last update (see [`ttl_update`](Self::ttl_update) for what counts as one), and never
    /// returns an expired value. Default: values live until cleared. A TTL under 1 ms makes
    /// `init` fail.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use eddy_sdk::{StateRegistry, TtlConfig, TtlUpdate, ValueState};
    /// fn declare(states: &mut StateRegistry) -> ValueState<String> {
    ///     states.declare("session").ttl(Duration::from_secs(30 * 60)).value()
    /// }
    /// # let mut states = StateRegistry::default();
    /// # declare(&mut states);
    /// # assert_eq!(
    /// #     states.descriptors()[0].ttl,
    /// #     Some(TtlConfig { ttl_ms: 1_800_000, update: TtlUpdate::OnCreateAndWrite })
    /// # );
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// What restarts a value's time to live (default [`TtlUpdate::OnCreateAndWrite`]); only
    /// with [`ttl`](Self::ttl), or `init` fails. Under [`TtlUpdate::OnReadAndWrite`] a read
    /// of a value state writes it back (see [`ValueState::get`]).
    pub fn ttl_update(mut self, update: TtlUpdate) -> Self {
        self.ttl_update = Some(update);
        self
    }

    /// How values and map keys become bytes (default [`Codec::Postcard`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    fn finish(self, kind: StateKind) -> u32 {
        let ttl = match (self.ttl, self.ttl_update) {
            (Some(ttl), update) => {
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                if ttl_ms == 0 {
                    self.registry.problems.push(format!(
                        "state `{}` has a TTL of {ttl:?}, under a millisecond: every value \
                         would expire at once; give a TTL of 1 ms or more",
                        self.name
                    ));
                }
                Some(TtlConfig {
                    ttl_ms,
                    update: update.unwrap_or_default(),
                })
            }
            (None, Some(update)) => {
                self.registry.problems.push(format!(
                    "state `{}` sets `ttl_update({update:?})` without a TTL; add `.ttl(…)` \
                     or drop the update policy",
                    self.name
                ));
                None
            }
            (None, None) => None,
        };
        self.registry.push(StateDescriptor {
            name: self.name,
            kind,
            schema_version: self.schema_version,
            ttl,
            codec: Some(self.codec.name().to_owned()),
        })
    }

    /// Declares a value state.
    pub fn value<T: Serialize + DeserializeOwned>(self) -> ValueState<T> {
        ValueState::new(self.finish(StateKind::Value))
    }

    /// Declares a map state.
    pub fn map<K, V>(self) -> MapState<K, V>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        MapState::new(self.finish(StateKind::Map))
    }

    /// Declares a list state.
    pub fn list<T: Serialize + DeserializeOwned>(self) -> ListState<T> {
        ListState::new(self.finish(StateKind::List))
    }

    /// Declares a reducing state (see [`StateRegistry::reducing`]).
    pub fn reducing<T: Serialize + DeserializeOwned>(
        self,
        reduce: fn(&T, &T) -> T,
    ) -> ReducingState<T> {
        ReducingState::new(self.value(), reduce)
    }

    /// Declares an aggregating state (see [`StateRegistry::aggregating`]).
    pub fn aggregating<A: AggregateFunction>(self, function: A) -> AggregatingState<A> {
        AggregatingState::new(self.value(), function)
    }
}

/// An operator state declaration in progress; see [`StateRegistry::declare_operator`].
#[derive(Debug)]
#[must_use = "a declaration takes effect only when finished with `.list()`"]
pub struct OperatorStateBuilder<'r> {
    registry: &'r mut StateRegistry,
    name: String,
    schema_version: u32,
    redistribution: Redistribution,
    codec: Codec,
}

impl OperatorStateBuilder<'_> {
    /// The version of the items' byte schema (default [`DEFAULT_SCHEMA_VERSION`]).
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// How the items move between workers when a job starts (default
    /// [`Redistribution::EvenSplit`]).
    pub fn redistribution(mut self, redistribution: Redistribution) -> Self {
        self.redistribution = redistribution;
        self
    }

    /// How the items become bytes (default [`Codec::Postcard`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Declares an operator list state.
    pub fn list<T: Serialize + DeserializeOwned>(self) -> OperatorListState<T> {
        OperatorListState::new(self.registry.push_operator(OperatorStateDescriptor {
            name: self.name,
            schema_version: self.schema_version,
            redistribution: self.redistribution,
            codec: Some(self.codec.name().to_owned()),
        }))
    }
}

/// The typed body of [`Operator::migrate`](crate::Operator::migrate): decodes `bytes` as the
/// `Old` type the state held (in the SDK's encoding), turns it into the `New` type with `f`
/// and encodes that. For map state it rewrites one map value; for list state, one item.
///
/// ```
/// # use eddy_sdk::migrate_value;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Counted { count: u64, last_seen: i64 }
/// // Schema 1 kept the count as four little-endian bytes.
/// let old = eddy_sdk::encode_value(&7u32.to_le_bytes()).unwrap();
/// let new = migrate_value(&old, |b: [u8; 4]| Counted {
///     count: u64::from(u32::from_le_bytes(b)),
///     last_seen: 0,
/// })
/// .unwrap();
/// let back: Counted = postcard::from_bytes(&new).unwrap();
/// assert_eq!(back.count, 7);
/// ```
pub fn migrate_value<Old: DeserializeOwned, New: Serialize>(
    bytes: &[u8],
    f: impl FnOnce(Old) -> New,
) -> Result<Vec<u8>, Error> {
    let old: Old = postcard::from_bytes(bytes).map_err(|e| {
        Error::failed(format!(
            "migrate: the stored value does not decode as {}: {e}",
            std::any::type_name::<Old>()
        ))
    })?;
    encode_value(&f(old))
}

/// Encodes a value as the SDK's state stores it (postcard).
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    Codec::Postcard.encode(value)
}

/// Encodes a state value or map key with the state's codec.
pub(crate) fn encode<T: Serialize + ?Sized>(
    ctx: &Context<'_>,
    handle: u32,
    what: &str,
    value: &T,
) -> Result<Vec<u8>, Error> {
    ctx.codec(handle)
        .encode(value)
        .map_err(|error| ctx.state_error(handle, what, error))
}

/// Decodes a state value or map key with the state's codec.
pub(crate) fn decode<T: DeserializeOwned>(
    ctx: &Context<'_>,
    handle: u32,
    what: &str,
    bytes: &[u8],
) -> Result<T, Error> {
    ctx.codec(handle)
        .decode(bytes)
        .map_err(|error| ctx.state_error(handle, what, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_follow_declaration_order_and_carry_options() {
        let mut states = StateRegistry::new();
        let a = states.value::<u64>("a");
        let b = states
            .declare("b")
            .schema_version(3)
            .ttl(Duration::from_millis(10))
            .codec(Codec::Json)
            .map::<String, u8>();
        let c = states.list::<String>("c");
        let d = states.operator_list::<String>("d");
        let e = states
            .declare("e")
            .ttl_update(TtlUpdate::OnReadAndWrite)
            .ttl(Duration::from_secs(2))
            .value::<u8>();
        let f = states
            .declare_operator("f")
            .schema_version(4)
            .redistribution(Redistribution::Union)
            .codec(Codec::Json)
            .list::<u8>();
        assert_eq!((a.handle(), b.handle(), c.handle()), (0, 1, 2));
        // Operator states are numbered apart from keyed ones.
        assert_eq!((d.handle(), e.handle(), f.handle()), (0, 3, 1));
        assert_eq!(
            states.descriptors()[1],
            StateDescriptor {
                name: "b".into(),
                kind: StateKind::Map,
                schema_version: 3,
                ttl: Some(TtlConfig {
                    ttl_ms: 10,
                    update: TtlUpdate::OnCreateAndWrite
                }),
                codec: Some("json".into()),
            }
        );
        assert_eq!(
            states.descriptors()[3].ttl,
            Some(TtlConfig {
                ttl_ms: 2_000,
                update: TtlUpdate::OnReadAndWrite
            })
        );
        assert_eq!(states.descriptors()[2].ttl, None);
        assert_eq!(
            states.descriptors()[2].schema_version,
            DEFAULT_SCHEMA_VERSION
        );
        assert_eq!(states.descriptors()[2].codec(), Codec::Postcard);
        assert_eq!(states.descriptors()[2].codec.as_deref(), Some("postcard"));
        assert_eq!(
            states.operator_descriptors(),
            [
                OperatorStateDescriptor {
                    name: "d".into(),
                    schema_version: DEFAULT_SCHEMA_VERSION,
                    redistribution: Redistribution::EvenSplit,
                    codec: Some("postcard".into()),
                },
                OperatorStateDescriptor {
                    name: "f".into(),
                    schema_version: 4,
                    redistribution: Redistribution::Union,
                    codec: Some("json".into()),
                },
            ]
        );
        assert_eq!(states.operator_descriptors()[1].codec(), Codec::Json);
        assert!(states.check().is_ok());
    }

    #[test]
    fn operator_state_items_migrate_as_a_list_state_of_the_same_name() {
        let mut states = StateRegistry::new();
        states
            .declare_operator("rules")
            .schema_version(2)
            .codec(Codec::Json)
            .list::<String>();
        assert_eq!(
            states.operator_descriptors()[0].as_list_state(),
            StateDescriptor {
                name: "rules".into(),
                kind: StateKind::List,
                schema_version: 2,
                ttl: None,
                codec: Some("json".into()),
            }
        );
    }

    #[test]
    fn bad_ttls_are_reported() {
        let mut states = StateRegistry::new();
        states
            .declare("z")
            .ttl(Duration::from_micros(999))
            .value::<u8>();
        let error = states.check().unwrap_err();
        assert!(
            error.message().contains("state `z` has a TTL of 999µs"),
            "{error}"
        );

        let mut states = StateRegistry::new();
        states
            .declare("u")
            .ttl_update(TtlUpdate::OnReadAndWrite)
            .list::<u8>();
        let error = states.check().unwrap_err();
        assert!(
            error
                .message()
                .contains("state `u` sets `ttl_update(OnReadAndWrite)` without a TTL"),
            "{error}"
        );
        assert_eq!(states.descriptors()[0].ttl, None);
    }

    #[test]
    fn codecs_round_trip_and_json_is_text() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Counted {
            count: u64,
        }
        let v = Counted { count: 3 };
        for codec in [Codec::Postcard, Codec::Json] {
            let bytes = codec.encode(&v).unwrap();
            assert_eq!(codec.decode::<Counted>(&bytes).unwrap(), v);
        }
        assert_eq!(Codec::Json.encode(&v).unwrap(), br#"{"count":3}"#);
        let e = Codec::Json.decode::<Counted>(b"\x03").unwrap_err();
        assert!(
            e.message().contains("cannot decode") && e.message().contains("json"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_and_empty_names_are_reported() {
        let mut states = StateRegistry::new();
        states.value::<u64>("a");
        states.list::<u64>("a");
        let error = states.check().unwrap_err();
        assert!(error.message().contains("`a` is declared twice"), "{error}");

        let mut states = StateRegistry::new();
        states.value::<u64>("");
        assert!(states.check().unwrap_err().message().contains("empty name"));

        let mut states = StateRegistry::new();
        states.operator_list::<u64>("");
        let error = states.check().unwrap_err();
        assert!(
            error
                .message()
                .contains("operator state #0 has an empty name"),
            "{error}"
        );
    }

    #[test]
    fn names_are_unique_across_keyed_and_operator_states() {
        let mut states = StateRegistry::new();
        states.value::<u64>("x");
        states.operator_list::<u64>("x");
        let error = states.check().unwrap_err();
        assert_eq!(
            error.message(),
            "state `x` is declared twice (the first time as a keyed state); state names \
             must be unique across keyed and operator states"
        );

        let mut states = StateRegistry::new();
        states.operator_list::<u64>("y");
        states.map::<u64, u64>("y");
        let error = states.check().unwrap_err();
        assert!(
            error
                .message()
                .contains("`y` is declared twice (the first time as an operator state)"),
            "{error}"
        );

        let mut states = StateRegistry::new();
        states.operator_list::<u64>("w");
        states.declare_operator("w").list::<u8>();
        assert!(states.check().is_err());
    }
}
