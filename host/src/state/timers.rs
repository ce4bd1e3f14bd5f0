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
//! every change. The index costs memory per timer (about 100 bytes plus twice the key);
//! see docs/ARCHITECTURE.md.
//!
//! The origin is the source record whose handling registered the timer (its stream and
//! position), inherited by timers registered while handling a fired timer: it names the
//! outputs of the timer (`{stream}@{e|p}{timestamp}` / position / emit index), so that a
//! replay after a crash publishes them under the same ids.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use super::keyed::{KeyedError, KeyedState};
use super::{Descriptor, StateError, StateKind, keys};

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
    pub key: Box<[u8]>,
    /// When it was set to fire.
    pub timestamp: i64,
    /// The origin bytes ([`decode_origin`]).
    pub origin: Vec<u8>,
}

type ByKey = HashMap<Box<[u8]>, BTreeSet<i64>, foldhash::fast::RandomState>;

/// One worker's timer index (see the module docs).
#[derive(Debug, Default)]
pub struct Timers {
    /// Every timer, in firing order.
    index: BTreeSet<(u8, i64, Box<[u8]>)>,
    /// Event-time timers by key: which records must wait for a firing.
    by_key: ByKey,
}

impl Timers {
    /// The index of every timer stored for the states' timer state (the last of
    /// `keyed.states()`) in key groups `groups`, read from RocksDB. Call it only when the
    /// cache holds no timer changes (at start, or right after a reset).
    pub fn load(keyed: &KeyedState, groups: std::ops::Range<u32>) -> Result<Timers, StateError> {
        let mut timers = Timers::default();
        let Some(state) = keyed.states().last().copied() else {
            return Ok(timers);
        };
        let db = keyed.db();
        let mut prefix = Vec::new();
        let mut corrupt = None;
        for kg in groups {
            keys::keyed_prefix(&mut prefix, keys::TABLE_MAP, kg as u16, state.id);
            db.scan_prefix(&prefix, &prefix, |k, _| {
                let parsed = keys::split_keyed(k)
                    .and_then(|(_, _, rest)| keys::split_map_rest(rest))
                    .and_then(|(key, mk)| Some((key, parse_map_key(mk)?)));
                match parsed {
                    Some((key, (domain, ts))) => {
                        timers.insert(domain, ts, key);
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

    fn insert(&mut self, domain: u8, timestamp: i64, key: &[u8]) {
        if self.index.insert((domain, timestamp, key.into())) && domain == EVENT_TIME {
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
        let removed = self.index.remove(&(domain, timestamp, key.into()));
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
            self.index.contains(&(domain, timestamp, key.into()))
        };
        if exists {
            return Ok(());
        }
        let h = Self::handle(keyed);
        keyed.map_put(h, key, &map_key(domain, timestamp), Some(origin))?;
        self.insert(domain, timestamp, key);
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
            self.index.contains(&(domain, timestamp, key.into()))
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
        !self.by_key.is_empty()
            && self
                .by_key
                .get(key)
                .and_then(|set| set.first())
                .is_some_and(|ts| *ts <= watermark)
    }

    /// The earliest timer of `domain`.
    pub fn earliest(&self, domain: u8) -> Option<i64> {
        self.index
            .range((
                Bound::Included((domain, i64::MIN, Box::<[u8]>::default())),
                Bound::Unbounded,
            ))
            .next()
            .filter(|(d, _, _)| *d == domain)
            .map(|(_, ts, _)| *ts)
    }

    /// The latest timer of `domain`.
    pub fn latest(&self, domain: u8) -> Option<i64> {
        self.index
            .range((
                Bound::Unbounded,
                Bound::Excluded((domain + 1, i64::MIN, Box::<[u8]>::default())),
            ))
            .next_back()
            .filter(|(d, _, _)| *d == domain)
            .map(|(_, ts, _)| *ts)
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
        let start = Bound::Included((domain, i64::MIN, Box::<[u8]>::default()));
        let mut run: Vec<(i64, Box<[u8]>)> = Vec::new();
        let mut keys: std::collections::HashSet<&[u8], foldhash::fast::RandomState> =
            Default::default();
        for (d, ts, key) in self.index.range((start, Bound::Unbounded)) {
            if *d != domain || *ts > upto || run.len() >= max || !keys.insert(key) {
                break;
            }
            run.push((*ts, key.clone()));
        }
        let mut out = Vec::with_capacity(run.len());
        for (timestamp, key) in run {
            self.remove(domain, timestamp, &key);
            let mk = map_key(domain, timestamp);
            let origin = keyed.map_get(h, &key, &mk)?.unwrap_or_default();
            keyed.map_put(h, &key, &mk, None)?;
            out.push(Fired {
                key,
                timestamp,
                origin,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
