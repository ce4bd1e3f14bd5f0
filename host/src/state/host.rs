//! The host side of the `state` and `log` imports for one worker: the keyed state plus the
//! key table of the batch being processed (state calls name keys by index in it).

use std::sync::Arc;

use super::keyed::{KeyedError, KeyedState, ListOp};
use crate::runtime::{
    EntryPage, GuestStateError, HostFailure, KeyPage, Level, LogHost, StateHost, TypesHost,
};

/// Largest value, map key or list item a guest may store (bytes).
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Largest page of map entries or keys one call returns.
pub const MAX_PAGE: u32 = 4096;

/// The keys of the current batch, in one buffer.
#[derive(Debug, Default)]
pub struct KeyTable {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyTable {
    /// Empties the table (after a batch: state calls outside a batch fail).
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Appends a key; its index is the previous length.
    pub fn push(&mut self, key: &[u8]) {
        self.data.extend_from_slice(key);
        self.ends.push(self.data.len());
    }

    /// Key `i`, if there is one.
    pub fn get(&self, i: u32) -> Option<&[u8]> {
        let i = i as usize;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The import context of one worker's instances.
#[derive(Debug)]
pub struct OperatorContext {
    /// The worker's keyed state.
    pub keyed: KeyedState,
    /// The keys of the batch being processed.
    pub keys: KeyTable,
    uid: Arc<str>,
}

type GuestResult<T> = wasmtime::Result<Result<T, GuestStateError>>;

impl OperatorContext {
    /// A context for operator `uid` over `keyed`.
    pub fn new(uid: Arc<str>, keyed: KeyedState) -> OperatorContext {
        OperatorContext {
            keyed,
            keys: KeyTable::default(),
            uid,
        }
    }

    /// Runs `f` on state `s` with key `k` of the batch; maps errors to what the guest sees
    /// (bad handle, bad key) or to a trap (backend failure: not the guest's fault). The
    /// host's own state (the timers, the last handle) is not the guest's to reach.
    fn with_key<T>(
        &mut self,
        s: u32,
        k: u32,
        f: impl FnOnce(&mut KeyedState, &[u8]) -> Result<T, KeyedError>,
    ) -> GuestResult<T> {
        if s as usize + 1 >= self.keyed.states().len() {
            return Ok(Err(GuestStateError::BadHandle(s)));
        }
        let Some(key) = self.keys.get(k) else {
            return Ok(Err(GuestStateError::BadKey(k)));
        };
        // The key table and the keyed state are disjoint fields.
        match f(&mut self.keyed, key) {
            Ok(v) => Ok(Ok(v)),
            Err(KeyedError::BadHandle(h)) => Ok(Err(GuestStateError::BadHandle(h.0))),
            Err(KeyedError::Backend(e)) => Err(HostFailure(e.to_string()).into()),
        }
    }
}

fn too_large(len: usize) -> Option<GuestStateError> {
    (len > MAX_VALUE_BYTES).then_some(GuestStateError::TooLarge(len as u64))
}

impl TypesHost for OperatorContext {}

impl StateHost for OperatorContext {
    fn value_get(&mut self, s: u32, k: u32) -> GuestResult<Option<Vec<u8>>> {
        self.with_key(s, k, |st, key| {
            st.value_with(s, key, |v| v.map(<[u8]>::to_vec))
        })
    }
    fn value_set(&mut self, s: u32, k: u32, value: Vec<u8>) -> GuestResult<()> {
        if let Some(e) = too_large(value.len()) {
            return Ok(Err(e));
        }
        self.with_key(s, k, |st, key| st.value_put(s, key, Some(&value)))
    }
    fn value_clear(&mut self, s: u32, k: u32) -> GuestResult<()> {
        self.with_key(s, k, |st, key| st.value_put(s, key, None))
    }
    fn map_get(&mut self, s: u32, k: u32, mk: Vec<u8>) -> GuestResult<Option<Vec<u8>>> {
        self.with_key(s, k, |st, key| st.map_get(s, key, &mk))
    }
    fn map_put(&mut self, s: u32, k: u32, mk: Vec<u8>, value: Vec<u8>) -> GuestResult<()> {
        if let Some(e) = too_large(value.len().max(mk.len())) {
            return Ok(Err(e));
        }
        self.with_key(s, k, |st, key| st.map_put(s, key, &mk, Some(&value)))
    }
    fn map_remove(&mut self, s: u32, k: u32, mk: Vec<u8>) -> GuestResult<()> {
        self.with_key(s, k, |st, key| st.map_put(s, key, &mk, None))
    }
    fn map_contains(&mut self, s: u32, k: u32, mk: Vec<u8>) -> GuestResult<bool> {
        self.with_key(s, k, |st, key| st.map_contains(s, key, &mk))
    }
    fn map_is_empty(&mut self, s: u32, k: u32) -> GuestResult<bool> {
        self.with_key(s, k, |st, key| st.map_is_empty(s, key))
    }
    fn map_clear(&mut self, s: u32, k: u32) -> GuestResult<()> {
        self.with_key(s, k, |st, key| st.map_clear(s, key))
    }
    fn map_entries(
        &mut self,
        s: u32,
        k: u32,
        cursor: Option<Vec<u8>>,
        max: u32,
    ) -> GuestResult<EntryPage> {
        self.with_key(s, k, |st, key| {
            let (entries, more) =
                st.map_page(s, key, cursor.as_deref(), max.min(MAX_PAGE) as usize)?;
            let next = if more {
                entries.last().map(|(k, _)| k.clone())
            } else {
                None
            };
            Ok(EntryPage { entries, next })
        })
    }
    fn map_keys(
        &mut self,
        s: u32,
        k: u32,
        cursor: Option<Vec<u8>>,
        max: u32,
    ) -> GuestResult<KeyPage> {
        self.with_key(s, k, |st, key| {
            let (entries, more) =
                st.map_page(s, key, cursor.as_deref(), max.min(MAX_PAGE) as usize)?;
            let keys: Vec<Vec<u8>> = entries.into_iter().map(|(k, _)| k).collect();
            let next = if more { keys.last().cloned() } else { None };
            Ok(KeyPage { keys, next })
        })
    }
    fn list_get(&mut self, s: u32, k: u32) -> GuestResult<Vec<Vec<u8>>> {
        self.with_key(s, k, |st, key| st.list_get(s, key))
    }
    fn list_add(&mut self, s: u32, k: u32, value: Vec<u8>) -> GuestResult<()> {
        if let Some(e) = too_large(value.len()) {
            return Ok(Err(e));
        }
        self.with_key(s, k, |st, key| st.list_change(s, key, ListOp::Add(value)))
    }
    fn list_add_all(&mut self, s: u32, k: u32, values: Vec<Vec<u8>>) -> GuestResult<()> {
        if let Some(e) = too_large(values.iter().map(Vec::len).sum()) {
            return Ok(Err(e));
        }
        self.with_key(s, k, |st, key| {
            st.list_change(s, key, ListOp::AddAll(values))
        })
    }
    fn list_update(&mut self, s: u32, k: u32, values: Vec<Vec<u8>>) -> GuestResult<()> {
        if let Some(e) = too_large(values.iter().map(Vec::len).sum()) {
            return Ok(Err(e));
        }
        self.with_key(s, k, |st, key| {
            st.list_change(s, key, ListOp::Update(values))
        })
    }
    fn list_clear(&mut self, s: u32, k: u32) -> GuestResult<()> {
        self.with_key(s, k, |st, key| {
            st.list_change(s, key, ListOp::Update(Vec::new()))
        })
    }
    fn operator_list_get(&mut self, s: u32) -> GuestResult<Vec<Vec<u8>>> {
        Ok(self
            .keyed
            .operator_list(s)
            .map(<[Vec<u8>]>::to_vec)
            .map_err(|h| GuestStateError::BadHandle(h.0)))
    }
    fn operator_list_add(&mut self, s: u32, value: Vec<u8>) -> GuestResult<()> {
        if let Some(e) = too_large(value.len()) {
            return Ok(Err(e));
        }
        Ok(self
            .keyed
            .operator_change(s, ListOp::Add(value))
            .map_err(|h| GuestStateError::BadHandle(h.0)))
    }
    fn operator_list_update(&mut self, s: u32, values: Vec<Vec<u8>>) -> GuestResult<()> {
        if let Some(e) = too_large(values.iter().map(Vec::len).sum()) {
            return Ok(Err(e));
        }
        Ok(self
            .keyed
            .operator_change(s, ListOp::Update(values))
            .map_err(|h| GuestStateError::BadHandle(h.0)))
    }
}

impl LogHost for OperatorContext {
    fn log(&mut self, level: Level, key: Option<u32>, message: String) -> wasmtime::Result<()> {
        let key = key.and_then(|k| self.keys.get(k));
        // Bound what one line may put into the host's logs.
        let message = match message.char_indices().nth(4096) {
            Some((cut, _)) => &message[..cut],
            None => &message,
        };
        crate::runtime::log_line(&self.uid, level, key, message);
        Ok(())
    }
}
