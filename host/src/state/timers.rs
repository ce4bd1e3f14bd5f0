//! Timers: per key, per time domain, at a timestamp; one timer per (key, domain, timestamp).
//!
//! Timers are stored as a map state that the host keeps for every operator (`eddy.timers`,
//! the last state handle; operators cannot reach it): per record key, map key
//! `[domain u8][timestamp as u64 with the sign bit flipped, big-endian]`, value the
//! timer's *origin* (below). So timers go through the same write-back cache, per-call undo,
//! checkpoint drains, savepoints and key-group moves as the operator's own state, and a
//! checkpoint holds exactly the timers of its positions.
//!
//! Firing needs timestamp order across keys, which that layout does not give; each worker
//! keeps an index of its key groups' timers, ordered by (domain, timestamp, key), and the
//! event-time timers by key (which records must wait for a firing), built by one scan when
//! the worker starts (or its cache is reset to the last checkpoint) and kept in step with
//! every change. It holds each timer's origin too (the map state's value), so that firing
//! reads no map state. The index costs memory per timer (about 100 bytes plus twice the
//! key, plus the origin: 8 bytes and the stream's name); see docs/ARCHITECTURE.md.
//!
//! The origin is the source record whose handling registered the timer (its stream and
//! position), inherited by timers registered while handling a fired timer: it names the
//! outputs of the timer (`{stream}@{e|p}{timestamp}` / position / emit index), so that a
//! replay after a crash publishes them under the same ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::ops::Bound;

use super::keyed::{KeyedError, KeyedState};
use super::{CacheKey, Descriptor, StateError, StateKind, keys};

/// The name of the host's timer state of every operator.
pub const STATE_NAME: &str = "eddy.timers";

/// Event time: fires when the watermark reaches the timestamp.
pub const EVENT_TIME: u8 = 0;
/// Processing time: fires when the wall clock reaches the timestamp.
pub const PROCESSING_TIME: u8 = 1;

/// The descriptor of the timer state the host appends to every operator's states.
pub fn descriptor() -> Descriptor {
    Descriptor {
        name: STATE_NAME.to_string(),
        kind: StateKind::Map,
        schema_version: 1,
        ttl: None,
        codec: Some("eddy-timer".to_string()),
    }
}

/// The map key of a timer: domain, then the timestamp in an order-preserving encoding.
pub fn map_key(domain: u8, timestamp: i64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = domain;
    k[1..].copy_from_slice(&((timestamp as u64) ^ (1 << 63)).to_be_bytes());
    k
}

/// The inverse of [`map_key`].
pub fn parse_map_key(k: &[u8]) -> Option<(u8, i64)> {
    let (&domain, ts) = k.split_first()?;
    let ts: [u8; 8] = ts.try_into().ok()?;
    Some((domain, (u64::from_be_bytes(ts) ^ (1 << 63)) as i64))
}

/// Encodes a timer's origin: the stream and position of the record it goes back to.
pub fn encode_origin(stream: &str, position: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + stream.len());
    v.extend_from_slice(&position.to_le_bytes());
    v.extend_from_slice(stream.as_bytes());
    v
}

/// The inverse of [`encode_origin`].
pub fn decode_origin(v: &[u8]) -> Option<(&str, u64)> {
    let (pos, stream) = v.split_first_chunk::<8>()?;
    Some((std::str::from_utf8(stream).ok()?, u64::from_le_bytes(*pos)))
}

/// A timer that fired: its key, timestamp and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The record key.
    pub key: CacheKey,
    /// When it was set to fire.
    pub timestamp: i64,
    /// The origin bytes ([`decode_origin`]).
    pub origin: Vec<u8>,
}

type ByKey = HashMap<CacheKey, BTreeSet<i64>, foldhash::fast::RandomState>;

/// A timer in firing order: domain, timestamp, key.
type Entry = (u8, i64, CacheKey);

/// A timer's origin ([`encode_origin`]), inline when short, as keys are.
type Origin = smallvec::SmallVec<[u8; 24]>;

/// One worker's timer index (see the module docs).
#[derive(Debug, Default)]
pub struct Timers {
    /// Every timer, in firing order, with its origin.
    index: BTreeMap<Entry, Origin>,
    /// Event-time timers by key: which records must wait for a firing.
    by_key: ByKey,
}

impl Timers {
    /// The index of every timer stored for the states' timer state (the last of
    /// `keyed.states()`) in key groups `groups`, read from RocksDB. Call it only when the
    /// cache holds no timer changes (at start, or right after a reset).
    ///
    /// The timer state is write-only in the cache from then on
    /// ([`KeyedState::set_write_only`]): the index answers every question about timers, so
    /// the cache keeps a timer change only until a checkpoint drains it.
    pub fn load(
        keyed: &mut KeyedState,
        groups: std::ops::Range<u32>,
    ) -> Result<Timers, StateError> {
        let mut timers = Timers::default();
        let Some(state) = keyed.states().last().copied() else {
            return Ok(timers);
        };
        keyed.set_write_only(state.id);
        let db = keyed.db();
        let mut prefix = Vec::new();
        let mut corrupt = None;
        for kg in groups {
            keys::keyed_prefix(&mut prefix, keys::TABLE_MAP, kg as u16, state.id);
            db.scan_prefix(&prefix, &prefix, |k, origin| {
                let parsed = keys::split_keyed(k)
                    .and_then(|(_, _, rest)| keys::split_map_rest(rest))
                    .and_then(|(key, mk)| Some((key, parse_map_key(mk)?)));
                match parsed {
                    Some((key, (domain, ts))) => {
                        timers.insert(domain, ts, key, origin);
                        true
                    }
                    None => {
                        corrupt = Some(kg);
                        false
                    }
                }
            })?;
            if let Some(kg) = corrupt {
                return Err(StateError::Corrupt {
                    dir: db.dir().to_path_buf(),
                    what: format!("a timer of key group {kg}"),
                });
            }
        }
        Ok(timers)
    }

    fn handle(keyed: &KeyedState) -> u32 {
        keyed.states().len().saturating_sub(1) as u32
    }

    fn insert(&mut self, domain: u8, timestamp: i64, key: &[u8], origin: &[u8]) {
        if self
            .index
            .insert((domain, timestamp, key.into()), origin.into())
            .is_none()
            && domain == EVENT_TIME
        {
            match self.by_key.get_mut(key) {
                Some(set) => {
                    set.insert(timestamp);
                }
                None => {
                    self.by_key.insert(key.into(), BTreeSet::from([timestamp]));
                }
            }
        }
    }

    fn remove(&mut self, domain: u8, timestamp: i64, key: &[u8]) -> bool {
        let removed = self
            .index
            .remove(&(domain, timestamp, key.into()))
            .is_some();
        if removed
            && domain == EVENT_TIME
            && let Some(set) = self.by_key.get_mut(key)
        {
            set.remove(&timestamp);
            if set.is_empty() {
                self.by_key.remove(key);
            }
        }
        removed
    }

    /// How many timers are registered.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Registers `key`'s timer, with its origin; a timer that exists already stays as it
    /// is (it fires once, under its first origin).
    pub fn register(
        &mut self,
        keyed: &mut KeyedState,
        key: &[u8],
        domain: u8,
        timestamp: i64,
        origin: &[u8],
    ) -> Result<(), KeyedError> {
        let exists = if domain == EVENT_TIME {
            // No allocation: operators (windows) register their timers again and again.
            self.by_key
                .get(key)
                .is_some_and(|set| set.contains(&timestamp))
        } else {
            self.index.contains_key(&(domain, timestamp, key.into()))
        };
        if exists {
            return Ok(());
        }
        let h = Self::handle(keyed);
        keyed.map_put(h, key, &map_key(domain, timestamp), Some(origin))?;
        self.insert(domain, timestamp, key, origin);
        Ok(())
    }

    /// Whether `key` has this timer.
    pub fn contains(&self, key: &[u8], domain: u8, timestamp: i64) -> bool {
        if domain == EVENT_TIME {
            // No allocation: operators (windows) register their timers again and again.
            self.by_key
                .get(key)
                .is_some_and(|set| set.contains(&timestamp))
        } else {
            self.index.contains_key(&(domain, timestamp, key.into()))
        }
    }

    /// Deletes `key`'s timer, if there is one.
    pub fn delete(
        &mut self,
        keyed: &mut KeyedState,
        key: &[u8],
        domain: u8,
        timestamp: i64,
    ) -> Result<(), KeyedError> {
        if self.remove(domain, timestamp, key) {
            let h = Self::handle(keyed);
            keyed.map_put(h, key, &map_key(domain, timestamp), None)?;
        }
        Ok(())
    }

    /// Whether `key` has an event-time timer at or below `watermark`.
    pub fn key_due(&self, key: &[u8], watermark: i64) -> bool {
        // Asked before every record: the earliest timer of all (event time sorts first)
        // answers most of them without hashing the key.
        matches!(self.index.first_key_value(), Some(((EVENT_TIME, ts, _), _)) if *ts <= watermark)
            && self
                .by_key
                .get(key)
                .and_then(|set| set.first())
                .is_some_and(|ts| *ts <= watermark)
    }

    /// The earliest timer of `domain`.
    pub fn earliest(&self, domain: u8) -> Option<i64> {
        self.front(domain).map(|(_, ts, _)| *ts)
    }

    /// The first timer of `domain` in firing order.
    fn front(&self, domain: u8) -> Option<&Entry> {
        if domain == EVENT_TIME {
            // It sorts first.
            return self
                .index
                .first_key_value()
                .map(|(k, _)| k)
                .filter(|(d, _, _)| *d == domain);
        }
        self.index
            .range((
                Bound::Included((domain, i64::MIN, CacheKey::new())),
                Bound::Unbounded,
            ))
            .next()
            .map(|(k, _)| k)
            .filter(|(d, _, _)| *d == domain)
    }

    /// The latest timer of `domain`.
    pub fn latest(&self, domain: u8) -> Option<i64> {
        self.index
            .range((
                Bound::Unbounded,
                Bound::Excluded((domain + 1, i64::MIN, CacheKey::new())),
            ))
            .next_back()
            .filter(|((d, _, _), _)| *d == domain)
            .map(|((_, ts, _), _)| *ts)
    }

    /// Removes and returns (in firing order) the next run of timers of `domain` due at
    /// `upto`: from the earliest, up to `max`, ending before a key that is in the run
    /// already (so one call handles a key once, and a key's timers fire in timestamp
    /// order across calls).
    pub fn take_run(
        &mut self,
        keyed: &mut KeyedState,
        domain: u8,
        upto: i64,
        max: usize,
    ) -> Result<Vec<Fired>, KeyedError> {
        let h = Self::handle(keyed);
        let mut out: Vec<Fired> = Vec::new();
        // The hashes of the run's keys (a match is checked against the run itself).
        let hasher = foldhash::fast::FixedState::default();
        let mut hashes: std::collections::HashSet<u64, foldhash::fast::RandomState> =
            Default::default();
        // The run is the front of the index: taken off it as it is read (no key copies, no
        // second search to remove them).
        while out.len() < max {
            match self.front(domain) {
                Some((d, ts, key)) if *d == domain && *ts <= upto => {
                    let hash = hasher.hash_one(key);
                    if !hashes.insert(hash) && out.iter().any(|f| f.key == *key) {
                        break;
                    }
                }
                _ => break,
            }
            // Event time sorts first: its front is the index's.
            let taken = if domain == EVENT_TIME {
                self.index.pop_first()
            } else {
                let front = self.front(domain).cloned();
                front.and_then(|f| self.index.remove_entry(&f))
            };
            let Some(((_, timestamp, key), origin)) = taken else {
                break;
            };
            if domain == EVENT_TIME
                && let Some(set) = self.by_key.get_mut(&key)
            {
                set.remove(&timestamp);
                if set.is_empty() {
                    self.by_key.remove(&key);
                }
            }
            keyed.map_put(h, &key, &map_key(domain, timestamp), None)?;
            out.push(Fired {
                key,
                timestamp,
                origin: origin.into_vec(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::StateDb;

    fn keyed(dir: &std::path::Path) -> KeyedState {
        let db = Arc::new(StateDb::open(dir, 16).unwrap());
        let reg = db.register("op", &[descriptor()]).unwrap();
        KeyedState::new(db, reg, 1 << 20)
    }

    /// A fired timer's key, timestamp and decoded origin.
    type Taken<'a> = (&'a [u8], i64, Option<(&'a str, u64)>);

    fn taken(run: &[Fired]) -> Vec<Taken<'_>> {
        run.iter()
            .map(|f| (&*f.key, f.timestamp, decode_origin(&f.origin)))
            .collect()
    }

    #[test]
    fn runs_come_in_firing_order_with_each_key_once_per_domain() {
        let dir = tempfile::tempdir().unwrap();
        let mut keyed = keyed(dir.path());
        let mut t = Timers::default();
        let origin = encode_origin("s", 7);
        for (key, domain, ts) in [
            (&b"b"[..], EVENT_TIME, 10),
            (b"a", EVENT_TIME, 10),
            (b"a", EVENT_TIME, 5),
            (b"c", EVENT_TIME, 30),
            (b"a", PROCESSING_TIME, 1),
            (b"b", PROCESSING_TIME, 2),
            (b"b", EVENT_TIME, 10), // again: no change
        ] {
            t.register(&mut keyed, key, domain, ts, &origin).unwrap();
        }
        assert_eq!(t.len(), 6);
        assert!(!t.key_due(b"a", 4));
        assert!(t.key_due(b"a", 5));
        assert!(!t.key_due(b"b", 5));
        assert!(!t.key_due(b"z", 100));
        assert_eq!(t.earliest(PROCESSING_TIME), Some(1));
        assert_eq!(t.latest(EVENT_TIME), Some(30));

        // Processing-time timers are reached behind the event-time ones.
        let run = t.take_run(&mut keyed, PROCESSING_TIME, 1, 10).unwrap();
        assert_eq!(taken(&run), [(&b"a"[..], 1, Some(("s", 7)))]);
        // The run ends before a key it has (`a` at 10 waits for the next call, and so does
        // `b`, behind it).
        let run = t.take_run(&mut keyed, EVENT_TIME, 20, 10).unwrap();
        assert_eq!(taken(&run), [(&b"a"[..], 5, Some(("s", 7)))]);
        assert!(t.key_due(b"a", 10));
        let run = t.take_run(&mut keyed, EVENT_TIME, 20, 10).unwrap();
        assert_eq!(
            taken(&run),
            [(&b"a"[..], 10, Some(("s", 7))), (b"b", 10, Some(("s", 7)))]
        );
        assert!(!t.key_due(b"a", i64::MAX));
        assert!(
            t.take_run(&mut keyed, EVENT_TIME, 20, 10)
                .unwrap()
                .is_empty()
        );
        // At most `max`, and the taken timers are gone from the map state too.
        let run = t.take_run(&mut keyed, EVENT_TIME, 30, 0).unwrap();
        assert!(run.is_empty());
        let h = Timers::handle(&keyed);
        assert_eq!(
            keyed.map_get(h, b"a", &map_key(EVENT_TIME, 5)).unwrap(),
            None
        );
        assert!(
            keyed
                .map_get(h, b"c", &map_key(EVENT_TIME, 30))
                .unwrap()
                .is_some()
        );
        assert_eq!(t.len(), 2);
        assert!(t.contains(b"b", PROCESSING_TIME, 2));
    }

    #[test]
    fn map_keys_sort_by_domain_then_timestamp() {
        let mut ks: Vec<[u8; 9]> = [
            (1, -5),
            (0, 7),
            (0, -3),
            (0, i64::MIN),
            (1, 0),
            (0, i64::MAX),
        ]
        .iter()
        .map(|(d, t)| map_key(*d, *t))
        .collect();
        ks.sort();
        let back: Vec<(u8, i64)> = ks.iter().map(|k| parse_map_key(k).unwrap()).collect();
        assert_eq!(
            back,
            vec![
                (0, i64::MIN),
                (0, -3),
                (0, 7),
                (0, i64::MAX),
                (1, -5),
                (1, 0)
            ]
        );
        assert_eq!(
            decode_origin(&encode_origin("nats:clicks", 42)),
            Some(("nats:clicks", 42))
        );
    }
}
