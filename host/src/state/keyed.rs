//! The keyed state of one worker: a write-back cache over [`StateDb`], with an undo log
//! that makes each `process` call all-or-nothing.
//!
//! - Reads go to the cache, then RocksDB (the answer, present or absent, is cached).
//! - Writes go to the cache only and mark the entry dirty. [`KeyedState::drain_dirty`] turns
//!   every dirty entry into [`WriteOp`]s for the next checkpoint and marks it clean.
//! - Between [`KeyedState::begin`] and [`KeyedState::commit`] every change is undo-logged;
//!   [`KeyedState::rollback`] restores the cache as it was at `begin`, so a trapped call
//!   leaves no trace.
//! - Clean entries are evicted when the cache passes its budget (second-chance sweep), only
//!   after the checkpoint that wrote them is durable (the caller's duty, see
//!   `job::worker`).
//!
//! Map state caches only changed entries (an overlay over RocksDB, `None` = removed) plus a
//! `cleared` flag; unchanged map entries are read from RocksDB. A drain writes only the
//! entries changed since the slot's last drain, so a map with many entries and a few
//! changes per checkpoint costs a few writes. List state is cached whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::keys::{self, StateId};
use super::{
    CacheKey, OperatorStates, Redistribution, RegisteredState, StateDb, StateError, StateKind, Ttl,
    TtlUpdate, WriteOp, stamp,
};

type Map<V> = HashMap<CacheKey, V, RandomState>;

/// A page of map entries and whether more follow.
pub type MapPage = (Vec<(Vec<u8>, Vec<u8>)>, bool);

/// Per-entry cost of the cache beyond the key and value bytes, for the memory budget: the
/// hash-table slot (~56 bytes at its load factor) and the two heap blocks of key and value
/// (~32 bytes of allocator overhead each), rounded up.
const ENTRY_OVERHEAD: usize = 128;

#[derive(Debug, Clone)]
struct ValueSlot {
    value: Option<Vec<u8>>,
    /// The epoch in which the entry last changed (0: clean, as in RocksDB).
    dirty: u64,
    referenced: bool,
}

#[derive(Debug, Clone, Default)]
struct MapSlot {
    /// Changed entries since the slot was loaded: `Some` = put, `None` = removed.
    overlay: BTreeMap<CacheKey, Option<Vec<u8>>>,
    /// RocksDB's entries for this key are gone (the overlay is the whole map).
    cleared: bool,
    /// The clear is not drained yet (the next drain deletes the stored entries first).
    clear_pending: bool,
    /// Map keys changed since the slot's last drain.
    changed: BTreeSet<CacheKey>,
    /// The epoch in which the entry last changed (0: clean).
    dirty: u64,
}

#[derive(Debug, Clone)]
struct ListSlot {
    items: Vec<Vec<u8>>,
    /// The epoch in which the entry last changed (0: clean).
    dirty: u64,
    referenced: bool,
}

/// The operator (non-keyed) state of one worker: one list per declared state.
#[derive(Debug, Default)]
struct OperatorLists {
    /// This worker's index: the row of table `0x05` it writes.
    worker: u32,
    /// The job's worker count: rows at and above it are stale after a rescale.
    workers: u32,
    /// Per handle (index in `operator-info.operator-states`).
    lists: Vec<OperatorList>,
    /// Lists as they were before the current call first changed them.
    undo: Vec<(usize, Vec<Vec<u8>>)>,
}

#[derive(Debug)]
struct OperatorList {
    id: StateId,
    how: Redistribution,
    items: Vec<Vec<u8>>,
    /// Changed since the last drain (or loaded, and not written as this worker's row yet).
    dirty: bool,
    /// Loaded at a start: the first drain also deletes the rows of workers that no longer
    /// exist (worker 0 does).
    fresh: bool,
}

/// The items worker `worker` of `workers` starts with, from the rows every worker wrote
/// at the last checkpoint (index = writer): Flink's redistribution of operator list state.
pub fn redistribute(
    rows: Vec<Vec<Vec<u8>>>,
    how: Redistribution,
    worker: u32,
    workers: u32,
) -> Vec<Vec<u8>> {
    let (worker, workers) = (worker as usize, workers.max(1) as usize);
    match how {
        Redistribution::Union => rows.concat(),
        Redistribution::EvenSplit if rows.len() == workers => {
            rows.into_iter().nth(worker).unwrap_or_default()
        }
        Redistribution::EvenSplit => {
            let all = rows.concat();
            let (q, r) = (all.len() / workers, all.len() % workers);
            let start = worker * q + worker.min(r);
            let len = q + usize::from(worker < r);
            all.into_iter().skip(start).take(len).collect()
        }
    }
}

/// A change to a list.
#[derive(Debug)]
pub enum ListOp {
    /// Append an item.
    Add(Vec<u8>),
    /// Append items.
    AddAll(Vec<Vec<u8>>),
    /// Replace the list (empty: clear it).
    Update(Vec<Vec<u8>>),
}

/// What to put back on rollback.
enum Undo {
    Value {
        handle: u32,
        key: CacheKey,
        prev: Option<ValueSlot>,
    },
    MapEntry {
        handle: u32,
        key: CacheKey,
        map_key: CacheKey,
        prev: Option<Option<Vec<u8>>>,
        prev_dirty: u64,
        /// Whether the entry was among the slot's changes before.
        was_changed: bool,
    },
    MapSlot {
        handle: u32,
        key: CacheKey,
        prev: Option<MapSlot>,
    },
    List {
        handle: u32,
        key: CacheKey,
        prev: Option<ListSlot>,
    },
}

/// The keyed state of one worker (see the module docs).
pub struct KeyedState {
    db: Arc<StateDb>,
    states: Vec<RegisteredState>,
    max_key_groups: u32,
    values: Vec<Map<ValueSlot>>,
    maps: Vec<Map<MapSlot>>,
    lists: Vec<Map<ListSlot>>,
    undo: Vec<Undo>,
    in_call: bool,
    bytes: usize,
    budget: usize,
    scratch: Vec<u8>,
    /// The epoch that changes are marked with; a drain starts the next one.
    epoch: u64,
    /// The epoch being drained (entries dirty in it or before are pending).
    draining: u64,
    drain_active: bool,
    /// Entries that became dirty in the current epoch (may hold stale ones).
    dirty_keys: Vec<(u32, CacheKey)>,
    /// Entries left to drain.
    drain_list: Vec<(u32, CacheKey)>,
    /// Writes drained so far, including copies made on write.
    drain_out: Vec<WriteOp>,
    /// Processing time (ms) of the call being made: what TTL stamps and expiry use.
    now: i64,
    /// The worker's operator (non-keyed) state.
    operator: OperatorLists,
}

/// The operator's bytes of a stored value, or None when it is absent or expired (a state
/// with a TTL stores a [`stamp`] before them).
fn live(ttl: Option<Ttl>, now: i64, raw: Option<&[u8]>) -> Option<&[u8]> {
    let raw = raw?;
    match ttl {
        None => Some(raw),
        Some(t) => match stamp::split(raw) {
            Some((at, user)) if !t.expired(at, now) => Some(user),
            _ => None,
        },
    }
}

/// Whether a slot dirty in epoch `dirty` still waits for the active drain.
fn pending(dirty: u64, drain_active: bool, draining: u64) -> bool {
    drain_active && dirty != 0 && dirty <= draining
}

/// Where drained writes go and how keys are laid out: what encoding needs of a
/// [`KeyedState`] while one of its slot maps is borrowed.
struct Drain<'a> {
    out: &'a mut Vec<WriteOp>,
    max_key_groups: u32,
    k: Vec<u8>,
}

impl Drain<'_> {
    fn value(&mut self, id: StateId, key: &[u8], slot: &ValueSlot) {
        let kg = keys::key_group(key, self.max_key_groups);
        keys::value_key(&mut self.k, kg, id, key);
        self.out.push(match &slot.value {
            Some(v) => WriteOp::Put(self.k.clone(), v.clone()),
            None => WriteOp::Delete(self.k.clone()),
        });
    }

    /// The slot's changes since its last drain; the slot then has none.
    fn map(&mut self, id: StateId, key: &[u8], slot: &mut MapSlot) {
        let kg = keys::key_group(key, self.max_key_groups);
        keys::map_prefix(&mut self.k, kg, id, key);
        if std::mem::take(&mut slot.clear_pending)
            && let Some(end) = keys::prefix_end(&self.k)
        {
            self.out.push(WriteOp::DeleteRange(self.k.clone(), end));
        }
        for mk in std::mem::take(&mut slot.changed) {
            let mut full = self.k.clone();
            full.extend_from_slice(&mk);
            self.out.push(match slot.overlay.get(&mk) {
                Some(Some(v)) => WriteOp::Put(full, v.clone()),
                // Removed (or gone with a clear since: the range delete covers it).
                _ => WriteOp::Delete(full),
            });
        }
    }

    fn list(&mut self, id: StateId, key: &[u8], slot: &ListSlot) {
        let kg = keys::key_group(key, self.max_key_groups);
        keys::list_key(&mut self.k, kg, id, key);
        self.out.push(if slot.items.is_empty() {
            WriteOp::Delete(self.k.clone())
        } else {
            WriteOp::Put(self.k.clone(), keys::encode_list(&slot.items))
        });
    }
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("states", &self.states)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// A handle or kind that does not fit the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("state handle {0} names no state of that kind")]
pub struct BadHandle(pub u32);

/// Errors of keyed state calls.
#[derive(Debug, thiserror::Error)]
pub enum KeyedError {
    /// The guest named a state that does not exist or has another kind.
    #[error(transparent)]
    BadHandle(#[from] BadHandle),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] StateError),
}

impl KeyedState {
    /// A worker's keyed state over `db`, for the states of one operator (by handle), with a
    /// cache budget in bytes.
    pub fn new(db: Arc<StateDb>, states: Vec<RegisteredState>, budget: usize) -> KeyedState {
        let n = states.len();
        let max_key_groups = db.max_key_groups();
        KeyedState {
            db,
            states,
            max_key_groups,
            values: (0..n).map(|_| Map::default()).collect(),
            maps: (0..n).map(|_| Map::default()).collect(),
            lists: (0..n).map(|_| Map::default()).collect(),
            undo: Vec::new(),
            in_call: false,
            bytes: 0,
            budget,
            scratch: Vec::with_capacity(64),
            epoch: 1,
            draining: 0,
            drain_active: false,
            dirty_keys: Vec::new(),
            drain_list: Vec::new(),
            drain_out: Vec::new(),
            now: super::wall_clock_ms(),
            operator: OperatorLists::default(),
        }
    }

    /// Sets the processing time (ms) that TTL stamps and expiry checks use until the next
    /// call: the worker sets it once per operator call.
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    /// The time to live of state `handle`, if it has one.
    fn ttl(&self, handle: u32) -> Option<Ttl> {
        self.states.get(handle as usize).and_then(|s| s.ttl)
    }

    /// `value` as stored for state `handle`: stamped with the current time under a TTL.
    fn stored<'a>(&self, handle: u32, value: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match self.ttl(handle) {
            Some(_) => std::borrow::Cow::Owned(stamp::put(self.now, value)),
            None => std::borrow::Cow::Borrowed(value),
        }
    }

    /// Whether a read of state `handle` restarts its values' TTL.
    fn read_refreshes(&self, handle: u32) -> bool {
        self.ttl(handle)
            .is_some_and(|t| t.update == TtlUpdate::OnReadAndWrite)
    }

    /// Before a change to an entry: if the active drain still waits for it, its content
    /// (as of the barrier) goes to the drained writes now, and it counts as clean.
    fn copy_on_write(&mut self, handle: u32, key: &[u8]) {
        if !self.drain_active {
            return;
        }
        let Some(st) = self.states.get(handle as usize).copied() else {
            return;
        };
        let (active, draining) = (self.drain_active, self.draining);
        let mut d = Drain {
            out: &mut self.drain_out,
            max_key_groups: self.max_key_groups,
            k: std::mem::take(&mut self.scratch),
        };
        let h = handle as usize;
        match st.kind {
            StateKind::Value => {
                if let Some(slot) = self.values[h].get_mut(key)
                    && pending(slot.dirty, active, draining)
                {
                    d.value(st.id, key, slot);
                    slot.dirty = 0;
                }
            }
            StateKind::Map => {
                if let Some(slot) = self.maps[h].get_mut(key)
                    && pending(slot.dirty, active, draining)
                {
                    d.map(st.id, key, slot);
                    slot.dirty = 0;
                }
            }
            StateKind::List => {
                if let Some(slot) = self.lists[h].get_mut(key)
                    && pending(slot.dirty, active, draining)
                {
                    d.list(st.id, key, slot);
                    slot.dirty = 0;
                }
            }
        }
        self.scratch = d.k;
    }

    /// Marks a slot changed in the current epoch (and lists it for the next drain).
    fn mark(
        dirty: &mut u64,
        epoch: u64,
        dirty_keys: &mut Vec<(u32, CacheKey)>,
        handle: u32,
        key: &[u8],
    ) {
        if *dirty != epoch {
            *dirty = epoch;
            dirty_keys.push((handle, key.into()));
        }
    }

    /// Takes a new module's states (a hot swap): the cached entries, dirty or clean, and a
    /// drain in progress stay, moved to the handles the new module gives each state (matched
    /// by id); states new in this module start empty. Every current state that holds
    /// entries must be among `states` with the same kind (the swap validated that); one that
    /// is not is an error naming it, and nothing changes.
    pub fn remap(&mut self, states: Vec<RegisteredState>) -> Result<(), StateId> {
        let mut to_new = Vec::with_capacity(self.states.len());
        for (h, old) in self.states.iter().enumerate() {
            match states
                .iter()
                .position(|s| s.id == old.id && s.kind == old.kind)
            {
                Some(h) => to_new.push(h as u32),
                // A state that holds nothing here may go (a swap back to a module without
                // it, before any record was processed).
                None if self.values[h].is_empty()
                    && self.maps[h].is_empty()
                    && self.lists[h].is_empty() =>
                {
                    to_new.push(u32::MAX)
                }
                None => return Err(old.id),
            }
        }
        let n = states.len();
        let mut values: Vec<Map<ValueSlot>> = (0..n).map(|_| Map::default()).collect();
        let mut maps: Vec<Map<MapSlot>> = (0..n).map(|_| Map::default()).collect();
        let mut lists: Vec<Map<ListSlot>> = (0..n).map(|_| Map::default()).collect();
        for (old, new) in to_new.iter().enumerate() {
            let new = *new as usize;
            if new >= n {
                continue;
            }
            values[new] = std::mem::take(&mut self.values[old]);
            maps[new] = std::mem::take(&mut self.maps[old]);
            lists[new] = std::mem::take(&mut self.lists[old]);
        }
        (self.values, self.maps, self.lists) = (values, maps, lists);
        for (h, _) in self.dirty_keys.iter_mut().chain(self.drain_list.iter_mut()) {
            if let Some(new) = to_new.get(*h as usize) {
                *h = *new;
            }
        }
        self.states = states;
        Ok(())
    }

    /// Forgets everything cached, dirty or not, and takes `states` (a rollback to the last
    /// checkpoint, whose state is RocksDB's). A drain in progress is finished first; its
    /// writes stay to be taken.
    pub fn reset(&mut self, states: Vec<RegisteredState>) {
        while !self.drain_some(usize::MAX) {}
        let n = states.len();
        self.values = (0..n).map(|_| Map::default()).collect();
        self.maps = (0..n).map(|_| Map::default()).collect();
        self.lists = (0..n).map(|_| Map::default()).collect();
        self.states = states;
        self.undo.clear();
        self.operator.lists.clear();
        self.operator.undo.clear();
        self.in_call = false;
        self.bytes = 0;
        self.dirty_keys.clear();
        self.drain_list.clear();
    }

    /// The states, by handle.
    pub fn states(&self) -> &[RegisteredState] {
        &self.states
    }

    /// The database.
    pub fn db(&self) -> &Arc<StateDb> {
        &self.db
    }

    fn check(&self, handle: u32, kind: StateKind) -> Result<StateId, BadHandle> {
        match self.states.get(handle as usize) {
            Some(s) if s.kind == kind => Ok(s.id),
            _ => Err(BadHandle(handle)),
        }
    }

    fn kg(&self, key: &[u8]) -> u16 {
        keys::key_group(key, self.max_key_groups)
    }

    // ---- transactions -------------------------------------------------------------------

    /// Starts undo-logging (one `process` call).
    pub fn begin(&mut self) {
        self.undo.clear();
        self.operator.undo.clear();
        self.in_call = true;
    }

    /// Keeps every change since [`begin`](Self::begin).
    pub fn commit(&mut self) {
        self.undo.clear();
        self.operator.undo.clear();
        self.in_call = false;
    }

    /// Undoes every change since [`begin`](Self::begin), newest first.
    pub fn rollback(&mut self) {
        for (h, items) in std::mem::take(&mut self.operator.undo) {
            if let Some(l) = self.operator.lists.get_mut(h) {
                l.items = items;
            }
        }
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Value { handle, key, prev } => {
                    let m = &mut self.values[handle as usize];
                    match prev {
                        Some(p) => {
                            m.insert(key, p);
                        }
                        None => {
                            m.remove(&key);
                        }
                    }
                }
                Undo::MapEntry {
                    handle,
                    key,
                    map_key,
                    prev,
                    prev_dirty,
                    was_changed,
                } => {
                    if let Some(slot) = self.maps[handle as usize].get_mut(&key) {
                        if !was_changed {
                            slot.changed.remove(&map_key);
                        }
                        match prev {
                            Some(p) => {
                                slot.overlay.insert(map_key, p);
                            }
                            None => {
                                slot.overlay.remove(&map_key);
                            }
                        }
                        slot.dirty = prev_dirty;
                    }
                }
                Undo::MapSlot { handle, key, prev } => {
                    let m = &mut self.maps[handle as usize];
                    match prev {
                        Some(p) => {
                            m.insert(key, p);
                        }
                        None => {
                            m.remove(&key);
                        }
                    }
                }
                Undo::List { handle, key, prev } => {
                    let m = &mut self.lists[handle as usize];
                    match prev {
                        Some(p) => {
                            m.insert(key, p);
                        }
                        None => {
                            m.remove(&key);
                        }
                    }
                }
            }
        }
        self.in_call = false;
    }

    // ---- value state ----------------------------------------------------------------------

    /// The value of `key` in value state `handle`; `f` sees it without a copy.
    pub fn value_with<R>(
        &mut self,
        handle: u32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, KeyedError> {
        let id = self.check(handle, StateKind::Value)?;
        let (ttl, now) = (self.ttl(handle), self.now);
        let map = &mut self.values[handle as usize];
        if let Some(slot) = map.get_mut(key) {
            slot.referenced = true;
            return Ok(f(live(ttl, now, slot.value.as_deref())));
        }
        let kg = keys::key_group(key, self.max_key_groups);
        keys::value_key(&mut self.scratch, kg, id, key);
        let loaded = self.db.get_with(&self.scratch, |v| v.map(<[u8]>::to_vec))?;
        self.bytes += ENTRY_OVERHEAD + key.len() + loaded.as_ref().map_or(0, Vec::len);
        let slot = map.entry(key.into()).or_insert(ValueSlot {
            value: loaded,
            dirty: 0,
            referenced: true,
        });
        Ok(f(live(ttl, now, slot.value.as_deref())))
    }

    /// Sets (`Some`) or clears (`None`) the value of `key` in value state `handle` (under
    /// a TTL, stamped with the current time).
    pub fn value_put(
        &mut self,
        handle: u32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), KeyedError> {
        let stored = value.map(|v| self.stored(handle, v));
        self.value_put_raw(handle, key, stored.as_deref())
    }

    /// Sets the stored bytes (stamp included) of `key` in value state `handle`.
    fn value_put_raw(
        &mut self,
        handle: u32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), KeyedError> {
        self.check(handle, StateKind::Value)?;
        self.copy_on_write(handle, key);
        let (epoch, dirty_keys) = (self.epoch, &mut self.dirty_keys);
        let map = &mut self.values[handle as usize];
        let new_len = value.map_or(0, <[u8]>::len);
        match map.get_mut(key) {
            Some(slot) => {
                if self.in_call {
                    self.undo.push(Undo::Value {
                        handle,
                        key: key.into(),
                        prev: Some(slot.clone()),
                    });
                }
                let old_len = slot.value.as_ref().map_or(0, Vec::len);
                match (value, &mut slot.value) {
                    (Some(v), Some(buf)) => {
                        buf.clear();
                        buf.extend_from_slice(v);
                    }
                    (v, stored) => *stored = v.map(<[u8]>::to_vec),
                }
                Self::mark(&mut slot.dirty, epoch, dirty_keys, handle, key);
                slot.referenced = true;
                self.bytes = self.bytes + new_len - old_len.min(self.bytes + new_len);
            }
            None => {
                if self.in_call {
                    self.undo.push(Undo::Value {
                        handle,
                        key: key.into(),
                        prev: None,
                    });
                }
                self.bytes += ENTRY_OVERHEAD + key.len() + new_len;
                let mut slot = ValueSlot {
                    value: value.map(<[u8]>::to_vec),
                    dirty: 0,
                    referenced: true,
                };
                Self::mark(&mut slot.dirty, epoch, dirty_keys, handle, key);
                map.insert(key.into(), slot);
            }
        }
        Ok(())
    }

    // ---- map state ------------------------------------------------------------------------

    fn map_slot(&mut self, handle: u32, key: &[u8]) -> &mut MapSlot {
        let map = &mut self.maps[handle as usize];
        if !map.contains_key(key) {
            self.bytes += ENTRY_OVERHEAD + key.len();
            map.insert(key.into(), MapSlot::default());
        }
        // Inserted just above when absent.
        #[allow(clippy::unwrap_used)]
        map.get_mut(key).unwrap()
    }

    /// The value under `map_key` of `key`'s map (a read: under a TTL that reads restart,
    /// the entry's TTL restarts).
    pub fn map_get(
        &mut self,
        handle: u32,
        key: &[u8],
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, KeyedError> {
        let raw = self.map_get_raw(handle, key, map_key)?;
        let (ttl, now) = (self.ttl(handle), self.now);
        let value = live(ttl, now, raw.as_deref()).map(<[u8]>::to_vec);
        if let Some(v) = &value
            && self.read_refreshes(handle)
        {
            self.map_put(handle, key, map_key, Some(v))?;
        }
        Ok(value)
    }

    /// The stored bytes under `map_key` of `key`'s map, expired or not.
    fn map_get_raw(
        &mut self,
        handle: u32,
        key: &[u8],
        map_key: &[u8],
    ) -> Result<Option<Vec<u8>>, KeyedError> {
        let id = self.check(handle, StateKind::Map)?;
        if let Some(slot) = self.maps[handle as usize].get(key) {
            if let Some(v) = slot.overlay.get(map_key) {
                return Ok(v.clone());
            }
            if slot.cleared {
                return Ok(None);
            }
        }
        let kg = self.kg(key);
        keys::map_prefix(&mut self.scratch, kg, id, key);
        self.scratch.extend_from_slice(map_key);
        Ok(self.db.get_with(&self.scratch, |v| v.map(<[u8]>::to_vec))?)
    }

    /// Puts (`Some`) or removes (`None`) `map_key` in `key`'s map (under a TTL, stamped
    /// with the current time).
    pub fn map_put(
        &mut self,
        handle: u32,
        key: &[u8],
        map_key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), KeyedError> {
        let stored = value.map(|v| self.stored(handle, v));
        self.map_put_raw(handle, key, map_key, stored.as_deref())
    }

    /// Puts or removes the stored bytes (stamp included) under `map_key`.
    fn map_put_raw(
        &mut self,
        handle: u32,
        key: &[u8],
        map_key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), KeyedError> {
        self.check(handle, StateKind::Map)?;
        self.copy_on_write(handle, key);
        let in_call = self.in_call;
        let existed = self.maps[handle as usize].contains_key(key);
        if in_call && !existed {
            self.undo.push(Undo::MapSlot {
                handle,
                key: key.into(),
                prev: None,
            });
        }
        let added = map_key.len() + value.map_or(0, <[u8]>::len);
        let epoch = self.epoch;
        let mut dirty_keys = std::mem::take(&mut self.dirty_keys);
        let slot = self.map_slot(handle, key);
        let prev_dirty = slot.dirty;
        let was_changed = !slot.changed.insert(map_key.into());
        let prev = slot
            .overlay
            .insert(map_key.into(), value.map(<[u8]>::to_vec));
        Self::mark(&mut slot.dirty, epoch, &mut dirty_keys, handle, key);
        self.dirty_keys = dirty_keys;
        if in_call && existed {
            self.undo.push(Undo::MapEntry {
                handle,
                key: key.into(),
                map_key: map_key.into(),
                prev,
                prev_dirty,
                was_changed,
            });
        }
        self.bytes += added;
        Ok(())
    }

    /// Whether `key`'s map holds `map_key` (a read, as [`map_get`](Self::map_get)).
    pub fn map_contains(
        &mut self,
        handle: u32,
        key: &[u8],
        map_key: &[u8],
    ) -> Result<bool, KeyedError> {
        Ok(self.map_get(handle, key, map_key)?.is_some())
    }

    /// Removes every entry of `key`'s map.
    pub fn map_clear(&mut self, handle: u32, key: &[u8]) -> Result<(), KeyedError> {
        self.check(handle, StateKind::Map)?;
        self.copy_on_write(handle, key);
        let in_call = self.in_call;
        let prev = self.maps[handle as usize].remove(key);
        if in_call {
            self.undo.push(Undo::MapSlot {
                handle,
                key: key.into(),
                prev,
            });
        }
        self.bytes += ENTRY_OVERHEAD + key.len();
        let mut slot = MapSlot {
            overlay: BTreeMap::new(),
            cleared: true,
            clear_pending: true,
            changed: BTreeSet::new(),
            dirty: 0,
        };
        Self::mark(
            &mut slot.dirty,
            self.epoch,
            &mut self.dirty_keys,
            handle,
            key,
        );
        self.maps[handle as usize].insert(key.into(), slot);
        Ok(())
    }

    /// Up to `max` entries of `key`'s map in map-key byte order, strictly after `after`
    /// (from the start when `None`), and whether more follow. Expired entries are left
    /// out; under a TTL that reads restart, the entries returned restart theirs.
    pub fn map_page(
        &mut self,
        handle: u32,
        key: &[u8],
        after: Option<&[u8]>,
        max: usize,
    ) -> Result<MapPage, KeyedError> {
        let (mut page, more) = self.map_page_raw(handle, key, after, max)?;
        if self.ttl(handle).is_some() {
            let refresh = self.read_refreshes(handle);
            for (mk, v) in &mut page {
                v.drain(..stamp::LEN);
                if refresh {
                    self.map_put(handle, key, mk, Some(v))?;
                }
            }
        }
        Ok((page, more))
    }

    /// As [`map_page`](Self::map_page), with the stored bytes (stamps included) of the
    /// live entries.
    fn map_page_raw(
        &mut self,
        handle: u32,
        key: &[u8],
        after: Option<&[u8]>,
        max: usize,
    ) -> Result<MapPage, KeyedError> {
        let id = self.check(handle, StateKind::Map)?;
        let (ttl, now) = (self.ttl(handle), self.now);
        let alive = |raw: &[u8]| live(ttl, now, Some(raw)).is_some();
        let want = max.max(1);
        let kg = self.kg(key);
        let empty = MapSlot::default();
        let slot = self.maps[handle as usize].get(key).unwrap_or(&empty);
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        // Collect one more than wanted from each side, then merge: the overlay wins.
        let mut from_db: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if !slot.cleared {
            let mut prefix = Vec::new();
            keys::map_prefix(&mut prefix, kg, id, key);
            let mut start = prefix.clone();
            if let Some(a) = after {
                start.extend_from_slice(a);
                start.push(0); // the smallest key strictly after `a`
            }
            let plen = prefix.len();
            // Entries removed in the overlay do not count toward the page; keep reading.
            let mut found = 0usize;
            self.db.scan_prefix(&prefix, &start, |k, v| {
                let mk = &k[plen..];
                let shadowed = slot.overlay.contains_key(mk);
                if !shadowed && !alive(v) {
                    return true;
                }
                from_db.push((mk.to_vec(), v.to_vec()));
                if !shadowed {
                    found += 1;
                }
                found <= want
            })?;
        }
        let mut overlay = slot
            .overlay
            .range::<[u8], _>((lower, Bound::Unbounded))
            .peekable();
        let mut db_iter = from_db.into_iter().peekable();
        let mut out = Vec::with_capacity(want.min(1024));
        loop {
            let take_overlay = match (overlay.peek(), db_iter.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((ok, _)), Some((dk, _))) => ok.as_slice() <= dk.as_slice(),
            };
            let (mk, v) = if take_overlay {
                let Some((ok, ov)) = overlay.next() else {
                    break;
                };
                if db_iter
                    .peek()
                    .is_some_and(|(dk, _)| dk.as_slice() == ok.as_slice())
                {
                    db_iter.next();
                }
                match ov {
                    Some(v) if alive(v) => (ok.to_vec(), v.clone()),
                    _ => continue,
                }
            } else {
                let Some(e) = db_iter.next() else { break };
                e
            };
            if out.len() == want {
                return Ok((out, true));
            }
            out.push((mk, v));
        }
        Ok((out, false))
    }

    /// Whether `key`'s map has no live entries.
    pub fn map_is_empty(&mut self, handle: u32, key: &[u8]) -> Result<bool, KeyedError> {
        Ok(self.map_page_raw(handle, key, None, 1)?.0.is_empty())
    }

    // ---- list state -----------------------------------------------------------------------

    fn list_slot(&mut self, handle: u32, key: &[u8]) -> Result<&mut ListSlot, KeyedError> {
        let id = self.check(handle, StateKind::List)?;
        if !self.lists[handle as usize].contains_key(key) {
            let kg = self.kg(key);
            keys::list_key(&mut self.scratch, kg, id, key);
            let raw = self.db.get_with(&self.scratch, |v| v.map(<[u8]>::to_vec))?;
            let items = match raw {
                None => Vec::new(),
                Some(b) => keys::decode_list(&b).ok_or_else(|| StateError::Corrupt {
                    dir: self.db.dir().to_path_buf(),
                    what: format!("list state {id} of key {}", String::from_utf8_lossy(key)),
                })?,
            };
            self.bytes +=
                ENTRY_OVERHEAD + key.len() + items.iter().map(|i| i.len() + 24).sum::<usize>();
            self.lists[handle as usize].insert(
                key.into(),
                ListSlot {
                    items,
                    dirty: 0,
                    referenced: true,
                },
            );
        }
        #[allow(clippy::unwrap_used)] // present: inserted just above when absent
        let slot = self.lists[handle as usize].get_mut(key).unwrap();
        slot.referenced = true;
        Ok(slot)
    }

    /// The items of `key`'s list (under a TTL, the live ones; when reads restart the TTL,
    /// they restart theirs).
    pub fn list_get(&mut self, handle: u32, key: &[u8]) -> Result<Vec<Vec<u8>>, KeyedError> {
        let (ttl, now) = (self.ttl(handle), self.now);
        let items = &self.list_slot(handle, key)?.items;
        if ttl.is_none() {
            return Ok(items.clone());
        }
        let live_items: Vec<Vec<u8>> = items
            .iter()
            .filter_map(|i| live(ttl, now, Some(i)).map(<[u8]>::to_vec))
            .collect();
        if self.read_refreshes(handle) && !live_items.is_empty() {
            self.list_change(handle, key, ListOp::Update(live_items.clone()))?;
        }
        Ok(live_items)
    }

    /// Changes `key`'s list (undo-logged). Under a TTL, new items are stamped with the
    /// current time, and the expired items go with the change.
    pub fn list_change(&mut self, handle: u32, key: &[u8], op: ListOp) -> Result<(), KeyedError> {
        let (ttl, now) = (self.ttl(handle), self.now);
        let stamped = |items: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
            match ttl {
                None => items,
                Some(_) => items.iter().map(|i| stamp::put(now, i)).collect(),
            }
        };
        let keep_live = move |l: &mut Vec<Vec<u8>>| {
            if ttl.is_some() {
                l.retain(|i| live(ttl, now, Some(i)).is_some());
            }
        };
        match op {
            ListOp::Add(item) => {
                let item = stamped(vec![item]);
                self.list_change_raw(handle, key, |l| {
                    keep_live(l);
                    l.extend(item);
                })
            }
            ListOp::AddAll(items) => {
                let items = stamped(items);
                self.list_change_raw(handle, key, |l| {
                    keep_live(l);
                    l.extend(items);
                })
            }
            ListOp::Update(items) => {
                let items = stamped(items);
                self.list_change_raw(handle, key, |l| *l = items)
            }
        }
    }

    /// Changes the stored items (stamps included) of `key`'s list with `f` (undo-logged).
    fn list_change_raw(
        &mut self,
        handle: u32,
        key: &[u8],
        f: impl FnOnce(&mut Vec<Vec<u8>>),
    ) -> Result<(), KeyedError> {
        let in_call = self.in_call;
        self.list_slot(handle, key)?;
        self.copy_on_write(handle, key);
        let epoch = self.epoch;
        let mut dirty_keys = std::mem::take(&mut self.dirty_keys);
        let (prev, before, after) = match self.list_slot(handle, key) {
            Ok(slot) => {
                let prev = in_call.then(|| slot.clone());
                let before: usize = slot.items.iter().map(|i| i.len() + 24).sum();
                f(&mut slot.items);
                Self::mark(&mut slot.dirty, epoch, &mut dirty_keys, handle, key);
                let after: usize = slot.items.iter().map(|i| i.len() + 24).sum();
                (prev, before, after)
            }
            Err(e) => {
                self.dirty_keys = dirty_keys;
                return Err(e);
            }
        };
        self.dirty_keys = dirty_keys;
        if let Some(prev) = prev {
            self.undo.push(Undo::List {
                handle,
                key: key.into(),
                prev: Some(prev),
            });
        }
        self.bytes = (self.bytes + after).saturating_sub(before);
        Ok(())
    }

    // ---- operator state --------------------------------------------------------------------

    /// Takes the operator states `states` (id and redistribution, by handle) of worker
    /// `worker` of `workers`: a list already held (same id) stays, the others start as
    /// [`redistribute`] makes them from the rows of the last checkpoint. Called at a start,
    /// after [`reset`](Self::reset) (which forgets the lists) and at a swap.
    pub fn load_operator_states(
        &mut self,
        states: &[(StateId, Redistribution)],
        worker: u32,
        workers: u32,
    ) -> Result<(), StateError> {
        let mut held = std::mem::take(&mut self.operator.lists);
        let mut lists = Vec::with_capacity(states.len());
        for &(id, how) in states {
            match held.iter().position(|l| l.id == id) {
                Some(i) => lists.push(held.swap_remove(i)),
                None => {
                    let rows = self.db.operator_lists(id)?;
                    lists.push(OperatorList {
                        id,
                        how,
                        items: redistribute(rows, how, worker, workers),
                        dirty: true,
                        fresh: true,
                    });
                }
            }
        }
        self.operator = OperatorLists {
            worker,
            workers,
            lists,
            undo: Vec::new(),
        };
        Ok(())
    }

    /// The operator states held, by handle: id and redistribution.
    pub fn operator_states(&self) -> OperatorStates {
        self.operator.lists.iter().map(|l| (l.id, l.how)).collect()
    }

    /// The items of this worker's operator state `handle`.
    pub fn operator_list(&self, handle: u32) -> Result<&[Vec<u8>], BadHandle> {
        self.operator
            .lists
            .get(handle as usize)
            .map(|l| l.items.as_slice())
            .ok_or(BadHandle(handle))
    }

    /// Changes this worker's operator state `handle` (undone by
    /// [`rollback`](Self::rollback)).
    pub fn operator_change(&mut self, handle: u32, op: ListOp) -> Result<(), BadHandle> {
        let h = handle as usize;
        let ops = &mut self.operator;
        let Some(l) = ops.lists.get_mut(h) else {
            return Err(BadHandle(handle));
        };
        if self.in_call && !ops.undo.iter().any(|(u, _)| *u == h) {
            ops.undo.push((h, l.items.clone()));
        }
        match op {
            ListOp::Add(item) => l.items.push(item),
            ListOp::AddAll(items) => l.items.extend(items),
            ListOp::Update(items) => l.items = items,
        }
        l.dirty = true;
        Ok(())
    }

    // ---- migration ---------------------------------------------------------------------------

    /// The record keys that hold an entry of state `handle` in the key groups `groups`:
    /// those in RocksDB and those cached (which may be newer), each once, in no order.
    fn keys_of(
        &mut self,
        handle: u32,
        groups: std::ops::Range<u32>,
    ) -> Result<Vec<CacheKey>, KeyedError> {
        let st = self.states[handle as usize];
        let mut seen: std::collections::HashSet<CacheKey, RandomState> =
            std::collections::HashSet::default();
        let h = handle as usize;
        let cached: Vec<&CacheKey> = match st.kind {
            StateKind::Value => self.values[h].keys().collect(),
            StateKind::Map => self.maps[h].keys().collect(),
            StateKind::List => self.lists[h].keys().collect(),
        };
        let mine = |k: &[u8]| groups.contains(&u32::from(keys::key_group(k, self.max_key_groups)));
        seen.extend(cached.into_iter().filter(|k| mine(k)).cloned());
        let mut prefix = Vec::new();
        for kg in groups {
            keys::keyed_prefix(&mut prefix, st.kind.table(), kg as u16, st.id);
            let plen = prefix.len();
            let mut last: Option<Vec<u8>> = None;
            self.db.scan_prefix(&prefix, &prefix, |k, _| {
                let rest = &k[plen..];
                let key = if st.kind == StateKind::Map {
                    match keys::split_map_rest(rest) {
                        Some((key, _)) => key,
                        None => return true,
                    }
                } else {
                    rest
                };
                if last.as_deref() != Some(key) {
                    seen.insert(key.into());
                    last = Some(key.to_vec());
                }
                true
            })?;
        }
        Ok(seen.into_iter().collect())
    }

    /// Rewrites every value of state `handle` in the key groups `groups` with `f` (every
    /// map value, every list item): a hot swap's eager migration to a new schema version.
    /// The new values are ordinary changes, dirty in the current epoch (a drain in progress
    /// keeps the old ones, copy on write) and undo-logged when inside
    /// [`begin`](Self::begin). Returns how many values were rewritten, or the first error:
    /// the backend's, or `f`'s (with the key).
    pub fn migrate(
        &mut self,
        handle: u32,
        groups: std::ops::Range<u32>,
        mut f: impl FnMut(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<u64, String> {
        let (kind, ttl) = match self.states.get(handle as usize) {
            Some(s) => (s.kind, s.ttl),
            None => return Err(BadHandle(handle).to_string()),
        };
        // `f` sees the operator's bytes; a value's TTL stamp stays as it was.
        let mut f = move |raw: &[u8]| -> Result<Vec<u8>, String> {
            match ttl {
                None => f(raw),
                Some(_) => {
                    let (at, user) = stamp::split(raw)
                        .ok_or_else(|| "a stored value lacks its TTL stamp".to_string())?;
                    Ok(stamp::put(at, &f(user)?))
                }
            }
        };
        let backend = |e: KeyedError| e.to_string();
        if kind == StateKind::Value {
            // The common case, without a point read per key: cached values, then the
            // stored values of keys not cached, from one scan per key group.
            let h = handle as usize;
            let id = self.states[h].id;
            let groups_of = self.max_key_groups;
            let mut todo: Vec<(CacheKey, Vec<u8>)> = self.values[h]
                .iter()
                .filter(|(k, _)| groups.contains(&u32::from(keys::key_group(k, groups_of))))
                .filter_map(|(k, slot)| slot.value.clone().map(|v| (k.clone(), v)))
                .collect();
            let mut prefix = Vec::new();
            for kg in groups {
                keys::keyed_prefix(&mut prefix, StateKind::Value.table(), kg as u16, id);
                let (plen, cached) = (prefix.len(), &self.values[h]);
                self.db
                    .scan_prefix(&prefix, &prefix, |k, v| {
                        if !cached.contains_key(&k[plen..]) {
                            todo.push((k[plen..].into(), v.to_vec()));
                        }
                        true
                    })
                    .map_err(|e| e.to_string())?;
            }
            for (key, old) in &todo {
                let new =
                    f(old).map_err(|e| format!("key {}: {e}", String::from_utf8_lossy(key)))?;
                self.value_put_raw(handle, key, Some(&new))
                    .map_err(backend)?;
            }
            return Ok(todo.len() as u64);
        }
        let mut n = 0u64;
        for key in self.keys_of(handle, groups).map_err(backend)? {
            let at = |e: String| format!("key {}: {e}", String::from_utf8_lossy(&key));
            match kind {
                StateKind::Map => {
                    let mut entries = Vec::new();
                    let mut after: Option<Vec<u8>> = None;
                    loop {
                        let (page, more) = self
                            .map_page_raw(handle, &key, after.as_deref(), 4096)
                            .map_err(backend)?;
                        after = page.last().map(|(k, _)| k.clone());
                        entries.extend(page);
                        if !more {
                            break;
                        }
                    }
                    for (mk, old) in entries {
                        let new = f(&old).map_err(at)?;
                        self.map_put_raw(handle, &key, &mk, Some(&new))
                            .map_err(backend)?;
                        n += 1;
                    }
                }
                // Returned above.
                StateKind::Value => {}
                StateKind::List => {
                    let items = self.list_slot(handle, &key).map_err(backend)?.items.clone();
                    if items.is_empty() {
                        continue;
                    }
                    let new = items
                        .iter()
                        .map(|i| f(i))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(at)?;
                    n += new.len() as u64;
                    self.list_change_raw(handle, &key, |l| *l = new)
                        .map_err(backend)?;
                }
            }
        }
        Ok(n)
    }

    // ---- checkpoints and memory -------------------------------------------------------------

    /// Turns every dirty entry into writes for the next checkpoint and marks it clean, at
    /// once ([`begin_drain`](Self::begin_drain) and [`drain_some`](Self::drain_some) do
    /// the same in steps).
    pub fn drain_dirty(&mut self, out: &mut Vec<WriteOp>) {
        self.begin_drain();
        while !self.drain_some(usize::MAX) {}
        out.extend(self.take_drained());
    }

    /// Starts draining the entries changed so far (a checkpoint barrier): O(1). Until
    /// [`drain_some`](Self::drain_some) says it is done, changes to those entries first
    /// copy their content as of now into the drained writes (copy on write), so the
    /// drain yields exactly the state at this instant while processing goes on.
    pub fn begin_drain(&mut self) {
        if self.drain_active {
            // Finish the previous drain first (its writes stay in `drain_out`).
            while !self.drain_some(usize::MAX) {}
        }
        self.draining = self.epoch;
        self.epoch += 1;
        self.drain_list = std::mem::take(&mut self.dirty_keys);
        self.drain_active = true;
        // Operator state is small and in memory: its rows go now, as of the barrier.
        let (worker, workers) = (self.operator.worker, self.operator.workers);
        for l in &mut self.operator.lists {
            if l.dirty {
                self.drain_out.push(WriteOp::Put(
                    keys::operator_key(l.id, worker),
                    keys::encode_list(&l.items),
                ));
                l.dirty = false;
            }
            if std::mem::take(&mut l.fresh)
                && worker == 0
                && let Some(end) = keys::prefix_end(&keys::operator_prefix(l.id))
            {
                self.drain_out
                    .push(WriteOp::DeleteRange(keys::operator_key(l.id, workers), end));
            }
        }
    }

    /// Drains up to `max` listed entries; returns whether the drain is complete.
    pub fn drain_some(&mut self, max: usize) -> bool {
        if !self.drain_active {
            return true;
        }
        let (active, draining) = (self.drain_active, self.draining);
        let mut d = Drain {
            out: &mut self.drain_out,
            max_key_groups: self.max_key_groups,
            k: std::mem::take(&mut self.scratch),
        };
        for _ in 0..max {
            let Some((h, key)) = self.drain_list.pop() else {
                break;
            };
            let Some(st) = self.states.get(h as usize).copied() else {
                continue;
            };
            let h = h as usize;
            match st.kind {
                StateKind::Value => {
                    if let Some(slot) = self.values[h].get_mut(&key)
                        && pending(slot.dirty, active, draining)
                    {
                        d.value(st.id, &key, slot);
                        slot.dirty = 0;
                    }
                }
                StateKind::Map => {
                    if let Some(slot) = self.maps[h].get_mut(&key)
                        && pending(slot.dirty, active, draining)
                    {
                        d.map(st.id, &key, slot);
                        slot.dirty = 0;
                    }
                }
                StateKind::List => {
                    if let Some(slot) = self.lists[h].get_mut(&key)
                        && pending(slot.dirty, active, draining)
                    {
                        d.list(st.id, &key, slot);
                        slot.dirty = 0;
                    }
                }
            }
        }
        self.scratch = d.k;
        if self.drain_list.is_empty() {
            self.drain_active = false;
            self.drain_list = Vec::new();
            return true;
        }
        false
    }

    /// The writes drained since the last call.
    pub fn take_drained(&mut self) -> Vec<WriteOp> {
        std::mem::take(&mut self.drain_out)
    }

    /// Approximate bytes held by the cache.
    pub fn cached_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the cache is over its budget (the caller then checkpoints and evicts).
    pub fn over_budget(&self) -> bool {
        self.over_budget_with(0)
    }

    /// Whether the cache and `extra` bytes held elsewhere for the next checkpoint (the
    /// timers' changes) are over the cache's budget.
    pub fn over_budget_with(&self, extra: usize) -> bool {
        self.bytes.saturating_add(extra) > self.budget
    }

    /// Evicts clean entries not used since the last sweep (second chance), and clean map
    /// overlays. Call only when every drained write is durable.
    pub fn evict_clean(&mut self) {
        let mut bytes = 0usize;
        for m in &mut self.values {
            m.retain(|k, s| {
                let keep = s.dirty != 0 || std::mem::take(&mut s.referenced);
                if keep {
                    bytes += ENTRY_OVERHEAD + k.len() + s.value.as_ref().map_or(0, Vec::len);
                }
                keep
            });
        }
        for m in &mut self.maps {
            m.retain(|k, s| {
                if s.dirty != 0 {
                    bytes += ENTRY_OVERHEAD
                        + k.len()
                        + s.overlay
                            .iter()
                            .map(|(a, b)| a.len() + b.as_ref().map_or(0, Vec::len))
                            .sum::<usize>();
                }
                s.dirty != 0
            });
        }
        for m in &mut self.lists {
            m.retain(|k, s| {
                let keep = s.dirty != 0 || std::mem::take(&mut s.referenced);
                if keep {
                    bytes += ENTRY_OVERHEAD
                        + k.len()
                        + s.items.iter().map(|i| i.len() + 24).sum::<usize>();
                }
                keep
            });
        }
        self.bytes = bytes;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::Descriptor;

    fn open(dir: &std::path::Path) -> KeyedState {
        open_with(dir, None)
    }

    /// Value `v`, map `m` and list `l` of operator `op`, with `ttl`.
    fn open_with(dir: &std::path::Path, ttl: Option<Ttl>) -> KeyedState {
        let db = Arc::new(StateDb::open(dir, 16).unwrap());
        let descs = [
            ("v", StateKind::Value),
            ("m", StateKind::Map),
            ("l", StateKind::List),
        ]
        .map(|(n, k)| Descriptor {
            name: n.into(),
            kind: k,
            schema_version: 1,
            ttl,
            codec: None,
        });
        let reg = db.register("op", &descs).unwrap();
        KeyedState::new(db, reg, 1 << 20)
    }

    fn get(s: &mut KeyedState, key: &[u8]) -> Option<Vec<u8>> {
        s.value_with(0, key, |v| v.map(<[u8]>::to_vec)).unwrap()
    }

    fn commit(s: &mut KeyedState) {
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        s.db().commit(ops, &[]).unwrap();
    }

    #[test]
    fn remap_moves_entries_and_a_drain_to_the_new_handles() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.value_put(0, b"k", Some(b"1")).unwrap();
        s.map_put(1, b"k", b"a", Some(b"x")).unwrap();
        s.begin_drain();
        let old = s.states().to_vec();
        // The new module lists the states in another order and adds one.
        let extra = RegisteredState {
            id: 99,
            kind: StateKind::Value,
            ttl: None,
        };
        s.remap(vec![extra, old[2], old[1], old[0]]).unwrap();
        assert_eq!(get_at(&mut s, 3, b"k"), Some(b"1".to_vec()));
        assert_eq!(s.map_get(2, b"k", b"a").unwrap(), Some(b"x".to_vec()));
        assert_eq!(get_at(&mut s, 0, b"k"), None);
        // The drain begun before the swap still yields the writes as of its barrier.
        s.value_put(3, b"k", Some(b"2")).unwrap();
        while !s.drain_some(1) {}
        let ops = s.take_drained();
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(
            ops.iter()
                .any(|o| matches!(o, WriteOp::Put(_, v) if v == b"1"))
        );
        // A state with entries missing from the new module is refused, and nothing
        // changes; an empty one may go.
        let states = s.states().to_vec();
        assert_eq!(s.remap(vec![states[0], states[3]]), Err(states[2].id));
        assert_eq!(s.states(), &states[..]);
        s.remap(vec![states[0], states[2], states[3]]).unwrap();
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn migrate_rewrites_stored_and_cached_values_and_undoes_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        for k in [&b"a"[..], b"b", b"c"] {
            s.value_put(0, k, Some(b"1")).unwrap();
            s.map_put(1, k, b"x", Some(b"1")).unwrap();
            s.map_put(1, k, b"y", Some(b"2")).unwrap();
            s.list_change(2, k, ListOp::Add(b"1".to_vec())).unwrap();
        }
        commit(&mut s);
        s.evict_clean();
        s.evict_clean(); // second chance: now nothing is cached
        // Newer than RocksDB: a cached change, a removal, a cleared map.
        s.value_put(0, b"b", Some(b"5")).unwrap();
        s.value_put(0, b"c", None).unwrap();
        s.map_clear(1, b"c").unwrap();
        s.map_put(1, b"d", b"z", Some(b"3")).unwrap();
        // A drain in progress keeps the state as of its barrier.
        s.begin_drain();
        let all = 0..16;
        let twice = |v: &[u8]| Ok([v, v].concat());
        assert_eq!(s.migrate(0, all.clone(), twice).unwrap(), 2);
        assert_eq!(s.migrate(1, all.clone(), twice).unwrap(), 5);
        assert_eq!(s.migrate(2, all.clone(), twice).unwrap(), 3);
        assert_eq!(get(&mut s, b"a"), Some(b"11".to_vec()));
        assert_eq!(get(&mut s, b"b"), Some(b"55".to_vec()));
        assert_eq!(get(&mut s, b"c"), None);
        assert_eq!(s.map_get(1, b"b", b"y").unwrap(), Some(b"22".to_vec()));
        assert_eq!(s.map_get(1, b"c", b"x").unwrap(), None);
        assert_eq!(s.map_get(1, b"d", b"z").unwrap(), Some(b"33".to_vec()));
        assert_eq!(s.list_get(2, b"a").unwrap(), vec![b"11".to_vec()]);
        while !s.drain_some(usize::MAX) {}
        let drained = applied(s.take_drained());
        assert!(
            drained.values().any(|v| v == b"5")
                && !drained.values().any(|v| v == b"55" || v == b"33"),
            "{drained:?}"
        );
        // Only the given key groups.
        assert_eq!(s.migrate(0, 0..0, twice).unwrap(), 0);
        // An error names the key; inside `begin` the changes so far are undone.
        s.begin();
        let e = s
            .migrate(0, all, |v| {
                if v == b"11" {
                    Err("no".into())
                } else {
                    Ok(b"x".to_vec())
                }
            })
            .unwrap_err();
        assert!(e.contains("key a: no"), "{e}");
        s.rollback();
        assert_eq!(get(&mut s, b"a"), Some(b"11".to_vec()));
        assert_eq!(get(&mut s, b"b"), Some(b"55".to_vec()));
    }

    #[test]
    fn reset_forgets_uncommitted_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.value_put(0, b"k", Some(b"1")).unwrap();
        commit(&mut s);
        s.value_put(0, b"k", Some(b"2")).unwrap();
        s.value_put(0, b"j", Some(b"3")).unwrap();
        let states = s.states().to_vec();
        s.reset(states);
        assert_eq!(get(&mut s, b"k"), Some(b"1".to_vec()));
        assert_eq!(get(&mut s, b"j"), None);
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        assert!(ops.is_empty(), "{ops:?}");
    }

    fn get_at(s: &mut KeyedState, h: u32, key: &[u8]) -> Option<Vec<u8>> {
        s.value_with(h, key, |v| v.map(<[u8]>::to_vec)).unwrap()
    }

    #[test]
    fn rollback_restores_values_maps_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.value_put(0, b"k", Some(b"1")).unwrap();
        s.map_put(1, b"k", b"a", Some(b"x")).unwrap();
        s.list_change(2, b"k", ListOp::Add(b"i".to_vec())).unwrap();
        s.begin();
        s.value_put(0, b"k", Some(b"2")).unwrap();
        s.value_put(0, b"new", Some(b"n")).unwrap();
        s.map_put(1, b"k", b"a", None).unwrap();
        s.map_put(1, b"k", b"b", Some(b"y")).unwrap();
        s.map_clear(1, b"k2").unwrap();
        s.list_change(2, b"k", ListOp::Update(Vec::new())).unwrap();
        s.rollback();
        assert_eq!(get(&mut s, b"k").unwrap(), b"1");
        assert_eq!(get(&mut s, b"new"), None);
        assert_eq!(s.map_get(1, b"k", b"a").unwrap().unwrap(), b"x");
        assert_eq!(s.map_get(1, b"k", b"b").unwrap(), None);
        assert_eq!(s.list_get(2, b"k").unwrap(), vec![b"i".to_vec()]);
    }

    /// The drained writes applied to an empty map: key → value.
    fn applied(ops: Vec<WriteOp>) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut m = BTreeMap::new();
        for op in ops {
            match op {
                WriteOp::Put(k, v) => {
                    m.insert(k, v);
                }
                WriteOp::Delete(k) => {
                    m.remove(&k);
                }
                WriteOp::DeleteRange(a, b) => m.retain(|k, _| *k < a || *k >= b),
            }
        }
        m
    }

    #[test]
    fn a_drain_in_steps_yields_the_state_at_its_start_while_changes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        for i in 0..100u32 {
            let k = format!("k{i}");
            s.value_put(0, k.as_bytes(), Some(&i.to_le_bytes()))
                .unwrap();
            s.map_put(1, k.as_bytes(), b"a", Some(b"x")).unwrap();
            s.list_change(2, k.as_bytes(), ListOp::Add(b"i".to_vec()))
                .unwrap();
        }
        // The reference: the same state drained at once, in a second store.
        let dir2 = tempfile::tempdir().unwrap();
        let mut r = open(dir2.path());
        for i in 0..100u32 {
            let k = format!("k{i}");
            r.value_put(0, k.as_bytes(), Some(&i.to_le_bytes()))
                .unwrap();
            r.map_put(1, k.as_bytes(), b"a", Some(b"x")).unwrap();
            r.list_change(2, k.as_bytes(), ListOp::Add(b"i".to_vec()))
                .unwrap();
        }
        let mut expected = Vec::new();
        r.drain_dirty(&mut expected);

        s.begin_drain();
        assert!(!s.drain_some(30));
        // Changes after the barrier, some in a call that is rolled back.
        for i in (0..100u32).step_by(3) {
            let k = format!("k{i}");
            s.value_put(0, k.as_bytes(), Some(b"later")).unwrap();
            s.map_clear(1, k.as_bytes()).unwrap();
            s.list_change(2, k.as_bytes(), ListOp::Update(Vec::new()))
                .unwrap();
        }
        s.begin();
        s.value_put(0, b"k1", Some(b"undone")).unwrap();
        s.map_put(1, b"k1", b"b", Some(b"y")).unwrap();
        s.rollback();
        s.value_put(0, b"fresh", Some(b"f")).unwrap();
        while !s.drain_some(7) {}
        assert_eq!(applied(s.take_drained()), applied(expected.clone()));

        // The next drain holds exactly the changes made after the barrier.
        let mut next = Vec::new();
        s.drain_dirty(&mut next);
        let mut all = expected;
        all.extend(next);
        let mut r2 = open(dir2.path().join("x").as_path());
        for i in 0..100u32 {
            let k = format!("k{i}");
            let later = i % 3 == 0;
            let v = if later {
                b"later".to_vec()
            } else {
                i.to_le_bytes().to_vec()
            };
            r2.value_put(0, k.as_bytes(), Some(&v)).unwrap();
            if later {
                r2.map_clear(1, k.as_bytes()).unwrap();
                r2.list_change(2, k.as_bytes(), ListOp::Update(Vec::new()))
                    .unwrap();
            } else {
                r2.map_put(1, k.as_bytes(), b"a", Some(b"x")).unwrap();
                r2.list_change(2, k.as_bytes(), ListOp::Add(b"i".to_vec()))
                    .unwrap();
            }
        }
        r2.value_put(0, b"fresh", Some(b"f")).unwrap();
        let mut want = Vec::new();
        r2.drain_dirty(&mut want);
        assert_eq!(applied(all), applied(want));
    }

    #[test]
    fn drained_state_survives_reopen_and_eviction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = open(dir.path());
            s.value_put(0, b"k", Some(b"1")).unwrap();
            s.map_put(1, b"k", b"a", Some(b"x")).unwrap();
            s.list_change(2, b"k", ListOp::Add(b"i".to_vec())).unwrap();
            commit(&mut s);
            s.value_put(0, b"k", Some(b"uncommitted")).unwrap();
        }
        let mut s = open(dir.path());
        assert_eq!(get(&mut s, b"k").unwrap(), b"1");
        assert_eq!(s.map_get(1, b"k", b"a").unwrap().unwrap(), b"x");
        assert_eq!(s.list_get(2, b"k").unwrap(), vec![b"i".to_vec()]);
        s.evict_clean();
        s.evict_clean();
        assert_eq!(s.cached_bytes(), 0);
        assert_eq!(get(&mut s, b"k").unwrap(), b"1");
    }

    #[test]
    fn a_map_drain_writes_only_the_entries_changed_since_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        for i in 0..100u8 {
            s.map_put(1, b"k", &[i], Some(b"x")).unwrap();
        }
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        assert_eq!(ops.len(), 100);
        s.db().commit(ops, &[]).unwrap();
        // One change (undone changes do not count), one removal: two writes.
        s.map_put(1, b"k", &[7], Some(b"y")).unwrap();
        s.begin();
        s.map_put(1, b"k", &[8], Some(b"undone")).unwrap();
        s.rollback();
        s.map_put(1, b"k", &[9], None).unwrap();
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        assert_eq!(ops.len(), 2, "{ops:?}");
        s.db().commit(ops, &[]).unwrap();
        // A clear deletes the stored entries once, then only changes follow.
        s.map_clear(1, b"k").unwrap();
        s.map_put(1, b"k", &[1], Some(b"z")).unwrap();
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        assert!(matches!(ops[0], WriteOp::DeleteRange(..)) && ops.len() == 2);
        s.db().commit(ops, &[]).unwrap();
        s.map_put(1, b"k", &[2], Some(b"w")).unwrap();
        let mut ops = Vec::new();
        s.drain_dirty(&mut ops);
        assert_eq!(ops.len(), 1, "{ops:?}");
        s.db().commit(ops, &[]).unwrap();
        drop(s);
        let mut fresh = open(dir.path());
        let (page, _) = fresh.map_page(1, b"k", None, 10).unwrap();
        assert_eq!(
            page,
            vec![(vec![1], b"z".to_vec()), (vec![2], b"w".to_vec())]
        );
    }

    #[test]
    fn map_pages_merge_overlay_and_disk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        for k in [b"a", b"c", b"e", b"g"] {
            s.map_put(1, b"k", k, Some(k)).unwrap();
        }
        commit(&mut s);
        s.evict_clean();
        s.map_put(1, b"k", b"b", Some(b"B")).unwrap();
        s.map_put(1, b"k", b"c", None).unwrap();
        s.map_put(1, b"k", b"e", Some(b"E")).unwrap();
        let mut all = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let (page, more) = s.map_page(1, b"k", cursor.as_deref(), 2).unwrap();
            cursor = page.last().map(|(k, _)| k.clone());
            all.extend(page);
            if !more {
                break;
            }
        }
        let got: Vec<(&[u8], &[u8])> = all
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], &b"a"[..]),
                (b"b", b"B"),
                (b"e", b"E"),
                (b"g", b"g")
            ]
        );
        s.map_clear(1, b"k").unwrap();
        assert!(s.map_is_empty(1, b"k").unwrap());
        commit(&mut s);
        s.evict_clean();
        assert!(s.map_is_empty(1, b"k").unwrap());
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), None);
    }

    #[test]
    fn operators_and_keys_do_not_see_each_others_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open(dir.path());
        let db = a.db().clone();
        let desc = [Descriptor {
            name: "v".into(),
            kind: StateKind::Value,
            schema_version: 1,
            ttl: None,
            codec: None,
        }];
        let reg = db.register("other-op", &desc).unwrap();
        assert_ne!(
            reg[0].id,
            a.states()[0].id,
            "same state name, other operator: other id"
        );
        let mut b = KeyedState::new(db, reg, 1 << 20);
        a.value_put(0, b"k", Some(b"a")).unwrap();
        b.value_put(0, b"k", Some(b"b")).unwrap();
        commit(&mut a);
        commit(&mut b);
        a.evict_clean();
        a.evict_clean();
        b.evict_clean();
        b.evict_clean();
        assert_eq!(get(&mut a, b"k").unwrap(), b"a");
        assert_eq!(get(&mut b, b"k").unwrap(), b"b");
        assert_eq!(get(&mut a, b"k2"), None);
    }

    #[test]
    fn wrong_kind_is_a_bad_handle() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        assert!(matches!(
            s.map_get(0, b"k", b"a"),
            Err(KeyedError::BadHandle(BadHandle(0)))
        ));
        assert!(matches!(
            s.value_put(7, b"k", None),
            Err(KeyedError::BadHandle(BadHandle(7)))
        ));
    }

    fn open_ttl(dir: &std::path::Path, update: TtlUpdate) -> KeyedState {
        open_with(
            dir,
            Some(Ttl {
                ttl_ms: 1_000,
                update,
            }),
        )
    }

    fn keys_of_map(s: &mut KeyedState, key: &[u8]) -> Vec<Vec<u8>> {
        let (page, _) = s.map_page(1, key, None, 100).unwrap();
        page.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn values_entries_and_items_expire_each_after_their_own_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_ttl(dir.path(), TtlUpdate::OnCreateAndWrite);
        s.set_now(10_000);
        s.value_put(0, b"k", Some(b"1")).unwrap();
        s.map_put(1, b"k", b"a", Some(b"x")).unwrap();
        s.list_change(2, b"k", ListOp::Add(b"i".to_vec())).unwrap();
        s.set_now(10_600);
        s.map_put(1, b"k", b"b", Some(b"y")).unwrap();
        s.list_change(2, b"k", ListOp::Add(b"j".to_vec())).unwrap();
        // Reads do not renew under on-create-and-write.
        s.set_now(10_999);
        assert_eq!(get(&mut s, b"k"), Some(b"1".to_vec()));
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), Some(b"x".to_vec()));
        assert_eq!(s.list_get(2, b"k").unwrap(), [b"i".to_vec(), b"j".to_vec()]);
        // Through a checkpoint and a cold cache: the stamps are stored with the values.
        commit(&mut s);
        s.evict_clean();
        s.evict_clean();
        s.set_now(11_000);
        assert_eq!(get(&mut s, b"k"), None);
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), None);
        assert!(!s.map_contains(1, b"k", b"a").unwrap());
        assert_eq!(keys_of_map(&mut s, b"k"), [b"b".to_vec()]);
        assert_eq!(s.list_get(2, b"k").unwrap(), [b"j".to_vec()]);
        assert!(!s.map_is_empty(1, b"k").unwrap());
        s.set_now(11_600);
        assert!(s.map_is_empty(1, b"k").unwrap());
        assert!(s.list_get(2, b"k").unwrap().is_empty());
        // A write brings a key back, with a new TTL.
        s.value_put(0, b"k", Some(b"2")).unwrap();
        s.set_now(12_599);
        assert_eq!(get(&mut s, b"k"), Some(b"2".to_vec()));
    }

    #[test]
    fn reads_renew_under_on_read_and_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_ttl(dir.path(), TtlUpdate::OnReadAndWrite);
        s.set_now(0);
        s.map_put(1, b"k", b"a", Some(b"x")).unwrap();
        s.map_put(1, b"k", b"b", Some(b"y")).unwrap();
        s.list_change(2, b"k", ListOp::AddAll(vec![b"i".to_vec()]))
            .unwrap();
        s.set_now(900);
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), Some(b"x".to_vec()));
        assert_eq!(s.list_get(2, b"k").unwrap(), [b"i".to_vec()]);
        commit(&mut s);
        s.set_now(1_500);
        // `a` and the item were read at 900; `b` was not.
        assert_eq!(keys_of_map(&mut s, b"k"), [b"a".to_vec()]);
        assert_eq!(s.list_get(2, b"k").unwrap(), [b"i".to_vec()]);
        // The page read at 1500 renewed `a` again.
        s.set_now(2_400);
        assert_eq!(s.map_get(1, b"k", b"a").unwrap(), Some(b"x".to_vec()));
        // Prefetched value state cannot renew here: the SDK writes a read value back.
        s.value_put(0, b"k", Some(b"1")).unwrap();
        s.set_now(3_300);
        assert_eq!(get(&mut s, b"k"), Some(b"1".to_vec()));
        s.set_now(3_400);
        assert_eq!(get(&mut s, b"k"), None);
    }

    #[test]
    fn a_migration_of_a_state_with_a_ttl_keeps_each_values_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open_ttl(dir.path(), TtlUpdate::OnCreateAndWrite);
        s.set_now(0);
        s.value_put(0, b"k", Some(b"1")).unwrap();
        s.list_change(2, b"k", ListOp::Add(b"i".to_vec())).unwrap();
        commit(&mut s);
        s.set_now(500);
        for h in [0, 2] {
            s.migrate(h, 0..16, |v| {
                assert!(v == b"1" || v == b"i", "migrate sees the operator's bytes");
                Ok([v, b"!"].concat())
            })
            .unwrap();
        }
        s.set_now(999);
        assert_eq!(get(&mut s, b"k"), Some(b"1!".to_vec()));
        assert_eq!(s.list_get(2, b"k").unwrap(), [b"i!".to_vec()]);
        s.set_now(1_000);
        assert_eq!(get(&mut s, b"k"), None);
        assert!(s.list_get(2, b"k").unwrap().is_empty());
    }

    #[test]
    fn redistribution_splits_evenly_or_hands_everything_to_everyone() {
        let rows = |lists: &[&[&str]]| -> Vec<Vec<Vec<u8>>> {
            lists
                .iter()
                .map(|l| l.iter().map(|i| i.as_bytes().to_vec()).collect())
                .collect()
        };
        let items = |l: Vec<Vec<u8>>| -> Vec<String> {
            l.into_iter()
                .map(|i| String::from_utf8(i).unwrap())
                .collect()
        };
        let stored = rows(&[&["a", "b"], &["c"], &["d", "e", "f", "g"]]);
        // The same parallelism: each worker its own list, even an uneven one.
        for w in 0..3 {
            let mine = redistribute(stored.clone(), Redistribution::EvenSplit, w, 3);
            assert_eq!(mine, stored[w as usize]);
        }
        // Another: contiguous parts of the concatenation, sizes 3, 2, 2 … of 7 items.
        let parts: Vec<Vec<String>> = (0..2)
            .map(|w| {
                items(redistribute(
                    stored.clone(),
                    Redistribution::EvenSplit,
                    w,
                    2,
                ))
            })
            .collect();
        assert_eq!(parts, [vec!["a", "b", "c", "d"], vec!["e", "f", "g"]]);
        let parts: Vec<Vec<String>> = (0..4)
            .map(|w| {
                items(redistribute(
                    stored.clone(),
                    Redistribution::EvenSplit,
                    w,
                    4,
                ))
            })
            .collect();
        assert_eq!(
            parts,
            [vec!["a", "b"], vec!["c", "d"], vec!["e", "f"], vec!["g"]]
        );
        for w in 0..5 {
            assert_eq!(
                items(redistribute(stored.clone(), Redistribution::Union, w, 5)),
                ["a", "b", "c", "d", "e", "f", "g"]
            );
        }
        assert!(redistribute(Vec::new(), Redistribution::EvenSplit, 1, 2).is_empty());
    }

    #[test]
    fn operator_lists_are_undone_with_a_failed_call_and_checkpointed_per_worker() {
        let dir = tempfile::tempdir().unwrap();
        let mut workers: Vec<KeyedState> = Vec::new();
        let db = Arc::new(StateDb::open(dir.path(), 16).unwrap());
        let ids = db
            .register_operator_states(
                "op",
                &[crate::state::OperatorStateDescriptor {
                    name: "buffer".into(),
                    schema_version: 1,
                    redistribution: Redistribution::EvenSplit,
                    codec: None,
                }],
            )
            .unwrap();
        // Rows of five workers, from an earlier run with more of them.
        let (id, _) = ids[0];
        let old: Vec<WriteOp> = (0..5)
            .map(|w| {
                WriteOp::Put(
                    keys::operator_key(id, w),
                    keys::encode_list(&[format!("old{w}").into_bytes()]),
                )
            })
            .collect();
        db.commit(old, &[]).unwrap();
        for w in 0..2 {
            let mut s = KeyedState::new(db.clone(), Vec::new(), 1 << 20);
            s.load_operator_states(&ids, w, 2).unwrap();
            workers.push(s);
        }
        assert_eq!(workers[0].operator_list(0).unwrap().len(), 3);
        assert_eq!(workers[1].operator_list(0).unwrap().len(), 2);
        assert!(workers[0].operator_list(1).is_err());
        let s = &mut workers[1];
        s.begin();
        s.operator_change(0, ListOp::Add(b"new".to_vec())).unwrap();
        s.rollback();
        assert_eq!(s.operator_list(0).unwrap().len(), 2, "undone");
        s.begin();
        s.operator_change(0, ListOp::Update(vec![b"only".to_vec()]))
            .unwrap();
        s.commit();
        // One checkpoint of both: each writes its row; worker 0 deletes the stale ones.
        let mut ops = Vec::new();
        for s in &mut workers {
            s.drain_dirty(&mut ops);
        }
        db.commit(ops, &[]).unwrap();
        let rows = db.operator_lists(id).unwrap();
        assert_eq!(rows.len(), 2, "rows of workers 2..5 are gone");
        assert_eq!(rows[1], [b"only".to_vec()]);
        // A restart with the same parallelism gives each worker its own list back.
        let mut again = KeyedState::new(db.clone(), Vec::new(), 1 << 20);
        again.load_operator_states(&ids, 1, 2).unwrap();
        assert_eq!(again.operator_list(0).unwrap(), [b"only".to_vec()]);
    }
}
