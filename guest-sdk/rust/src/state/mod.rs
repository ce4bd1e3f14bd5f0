//! Keyed state: the descriptors an operator declares in [`Operator::open`](crate::Operator::open)
//! through a [`StateRegistry`], and the typed handles it gets back.
//!
//! Values (and map keys) are encoded with the state's [`Codec`]: [postcard](https://docs.rs/postcard),
//! a compact serde format, unless the declaration asks for JSON
//! ([`StateBuilder::codec`]), which tools (`eddy savepoint dump` and `bootstrap`) and
//! operators in other languages read. Changing the Rust type or the codec of a state
//! changes its bytes: bump the state's [`schema_version`](StateBuilder::schema_version)
//! and implement [`Operator::migrate`](crate::Operator::migrate).

mod aggregate;
mod list;
mod map;
mod value;

pub use aggregate::{AggregateFunction, AggregatingState, ReducingState};
pub use list::ListState;
pub use map::{DEFAULT_PAGE_SIZE, MapEntries, MapKeys, MapState};
pub use value::ValueState;

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
    /// Time to live in milliseconds. Carried to the host, which does not enforce it yet.
    pub ttl_ms: Option<u64>,
    /// The name of the codec of the bytes ([`Codec::name`]); the Rust SDK always says.
    pub codec: Option<String>,
}

impl StateDescriptor {
    /// The codec the descriptor names (postcard when it names none or one the SDK does not
    /// know).
    pub fn codec(&self) -> Codec {
        match self.codec.as_deref() {
            Some(name) if name == Codec::Json.name() => Codec::Json,
            _ => Codec::Postcard,
        }
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
            Codec::Postcard => postcard::to_allocvec(value).map_err(|e| e.to_string()),
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
    /// The declared states, in handle order.
    pub states: Vec<StateDescriptor>,
}

/// The schema version a state gets unless its builder says otherwise.
pub const DEFAULT_SCHEMA_VERSION: u32 = 1;

/// Where an operator declares its keyed state, in [`Operator::open`](crate::Operator::open).
///
/// Each declaration returns a typed handle; handles are numbered in declaration order, which
/// is the order of `operator-info.states`. Names must be unique and non-empty: a bad
/// declaration makes `init` fail with a message naming it.
///
/// ```
/// # use eddy_sdk::{StateRegistry, ValueState, MapState};
/// fn declare(states: &mut StateRegistry) -> (ValueState<u64>, MapState<String, i64>) {
///     let count = states.value::<u64>("count");
///     let seen = states
///         .declare("seen")
///         .schema_version(2)
///         .ttl_ms(60_000)
///         .map::<String, i64>();
///     (count, seen)
/// }
/// ```
#[derive(Debug, Default)]
pub struct StateRegistry {
    states: Vec<StateDescriptor>,
    problems: Vec<String>,
}

impl StateRegistry {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts a declaration with options (schema version, TTL); finish it with one of the
    /// builder's kind methods.
    pub fn declare(&mut self, name: &str) -> StateBuilder<'_> {
        StateBuilder {
            registry: self,
            name: name.to_owned(),
            schema_version: DEFAULT_SCHEMA_VERSION,
            ttl_ms: None,
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

    /// The states declared so far, in handle order.
    pub fn descriptors(&self) -> &[StateDescriptor] {
        &self.states
    }

    /// What is wrong with the declarations, if anything.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.problems.first() {
            None => Ok(()),
            Some(problem) => Err(Error::failed(problem.clone())),
        }
    }

    pub(crate) fn into_descriptors(self) -> Vec<StateDescriptor> {
        self.states
    }

    fn push(&mut self, descriptor: StateDescriptor) -> u32 {
        if descriptor.name.is_empty() {
            self.problems.push(format!(
                "state #{} has an empty name; give every state a stable, unique name",
                self.states.len()
            ));
        } else if self
            .states
            .iter()
            .any(|state| state.name == descriptor.name)
        {
            self.problems.push(format!(
                "state `{}` is declared twice; state names must be unique",
                descriptor.name
            ));
        }
        let handle = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        self.states.push(descriptor);
        handle
    }
}

/// A state declaration in progress; see [`StateRegistry::declare`].
#[derive(Debug)]
#[must_use = "a declaration takes effect only when finished with a kind method, e.g. `.value()`"]
pub struct StateBuilder<'r> {
    registry: &'r mut StateRegistry,
    name: String,
    schema_version: u32,
    ttl_ms: Option<u64>,
    codec: Codec,
}

impl StateBuilder<'_> {
    /// The version of the state's byte schema (default [`DEFAULT_SCHEMA_VERSION`]).
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Time to live in milliseconds (carried to the host, which does not enforce it yet).
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }

    /// How values and map keys become bytes (default [`Codec::Postcard`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    fn finish(self, kind: StateKind) -> u32 {
        self.registry.push(StateDescriptor {
            name: self.name,
            kind,
            schema_version: self.schema_version,
            ttl_ms: self.ttl_ms,
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
    postcard::to_allocvec(value).map_err(|e| Error::failed(format!("cannot encode: {e}")))
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
            .ttl_ms(10)
            .codec(Codec::Json)
            .map::<String, u8>();
        let c = states.list::<String>("c");
        assert_eq!((a.handle(), b.handle(), c.handle()), (0, 1, 2));
        assert_eq!(
            states.descriptors()[1],
            StateDescriptor {
                name: "b".into(),
                kind: StateKind::Map,
                schema_version: 3,
                ttl_ms: Some(10),
                codec: Some("json".into()),
            }
        );
        assert_eq!(
            states.descriptors()[2].schema_version,
            DEFAULT_SCHEMA_VERSION
        );
        assert_eq!(states.descriptors()[2].codec(), Codec::Postcard);
        assert_eq!(states.descriptors()[2].codec.as_deref(), Some("postcard"));
        assert!(states.check().is_ok());
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
    }
}
