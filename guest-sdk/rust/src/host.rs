//! The state and log calls an operator makes into its host, behind one small trait so the
//! same SDK code runs on the `state`/`log` imports (on Wasm) and on the in-memory store of
//! the native test harness.

use crate::context::LogLevel;
use crate::error::StateError;

/// A page of map entries and the cursor to continue from (`None` at the end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPage {
    pub(crate) entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) next: Option<Vec<u8>>,
}

/// A page of map keys and the cursor to continue from (`None` at the end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) next: Option<Vec<u8>>,
}

/// The host side of the `state` and `log` interfaces (value-set/clear are absent: the SDK
/// returns value-state writes in the batch result instead).
///
/// Nominally `pub` (in a private module), for the sealed
/// [`OperatorStateAccess`](crate::OperatorStateAccess) trait to name it.
pub trait HostState {
    fn value_get(&mut self, state: u32, key: u32) -> Result<Option<Vec<u8>>, StateError>;

    fn map_get(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError>;
    fn map_put(
        &mut self,
        state: u32,
        key: u32,
        map_key: &[u8],
        value: &[u8],
    ) -> Result<(), StateError>;
    fn map_remove(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<(), StateError>;
    fn map_contains(&mut self, state: u32, key: u32, map_key: &[u8]) -> Result<bool, StateError>;
    fn map_is_empty(&mut self, state: u32, key: u32) -> Result<bool, StateError>;
    fn map_clear(&mut self, state: u32, key: u32) -> Result<(), StateError>;
    fn map_entries(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<EntryPage, StateError>;
    fn map_keys(
        &mut self,
        state: u32,
        key: u32,
        cursor: Option<&[u8]>,
        max: u32,
    ) -> Result<KeyPage, StateError>;

    fn list_get(&mut self, state: u32, key: u32) -> Result<Vec<Vec<u8>>, StateError>;
    fn list_add(&mut self, state: u32, key: u32, value: &[u8]) -> Result<(), StateError>;
    fn list_add_all(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError>;
    fn list_update(&mut self, state: u32, key: u32, values: &[Vec<u8>]) -> Result<(), StateError>;
    fn list_clear(&mut self, state: u32, key: u32) -> Result<(), StateError>;

    /// This worker's items of operator state `state` (a handle into `operator-states`).
    fn operator_list_get(&mut self, state: u32) -> Result<Vec<Vec<u8>>, StateError>;
    fn operator_list_add(&mut self, state: u32, value: &[u8]) -> Result<(), StateError>;
    /// Replaces the list; an empty one clears it.
    fn operator_list_update(&mut self, state: u32, values: &[Vec<u8>]) -> Result<(), StateError>;

    fn log(&mut self, level: LogLevel, key: Option<u32>, message: &str);
}
