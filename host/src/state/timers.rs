//! Timers: per key, per time domain, at a timestamp; one timer per (key, domain, timestamp).
//!
//! Timers are stored as a map state that the host keeps for every operator (`eddy.timers`,
//! the last state handle; operators cannot reach it): per record key, map key
//! `[domain u8][timestamp as u64 with the sign bit flipped, big-endian]`, value the
//! timer's *origin* (below). So savepoints, key-group moves and crash recovery treat them
//! as the operator's own state, and a checkpoint holds exactly the timers of its positions.
//!
//! Firing needs timestamp order across keys, which that layout does not give; each worker
//! keeps [`Timers`], the timers of its key groups in memory, built by one scan when the
//! worker starts (or its state is reset to the last checkpoint):
//! - by key, each timer with its origin: the authority on which timers exist;
//! - a queue of *buckets*, one per (domain, timestamp), each the keys of its timers,
//!   sorted only when the bucket fires (registering a timer is a push: a window operator
//!   registers one per key and window, thousands at the same timestamp). An entry whose
//!   timer was deleted is stale and skipped when its bucket fires; a bucket whose entries
//!   are mostly stale is compacted, so deleted timers do not pile up;
//! - the changes since the last checkpoint, as a log that a checkpoint drains into writes
//!   of the map state. A timer registered and removed between two checkpoints cancels out
//!   and is never written.
//!
//! The index costs memory per timer; see docs/ARCHITECTURE.md.
//!
//! The origin is the source record whose handling registered the timer (its stream and
//! position), inherited by timers registered while handling a fired timer: it names the
//! outputs of the timer (`{stream}@{e|p}{timestamp}` / position / emit index), so that a
//! replay after a crash publishes them under the same ids.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

use smallvec::SmallVec;

use super::keyed::KeyedState;
use super::{CacheKey, Descriptor, StateError, StateId, StateKind, WriteOp, keys};

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
pub fn encode_origin(stream: &str, position: u64) -> Origin {
    let mut v = Origin::with_capacity(8 + stream.len());
    v.extend_from_slice(&position.to_le_bytes());
    v.extend_from_slice(stream.as_bytes());
    v
}

/// The inverse of [`encode_origin`].
pub fn decode_origin(v: &[u8]) -> Option<(&str, u64)> {
    let (pos, stream) = v.split_first_chunk::<8>()?;
    Some((std::str::from_utf8(stream).ok()?, u64::from_le_bytes(*pos)))
}

/// A timer's origin ([`encode_origin`]), inline when short, as keys are.
pub type Origin = SmallVec<[u8; 24]>;

/// A timer that fired: its key, timestamp and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The record key.
    pub key: CacheKey,
    /// When it was set to fire.
    pub timestamp: i64,
    /// The origin bytes ([`decode_origin`]).
    pub origin: Origin,
}

/// One timer of a key.
#[derive(Debug, Clone)]
struct KeyTimer {
    domain: u8,
    timestamp: i64,
    origin: Origin,
    /// Where its registration is in the change log, while that log is the current one:
    /// (log generation, index). Removing the timer then cancels that entry.
    logged: Option<(u64, u32)>,
}

/// A key's timers (few: usually one or two).
type KeyTimers = SmallVec<[KeyTimer; 2]>;

/// The keys with a timer at one (domain, timestamp).
#[derive(Debug, Default)]
struct Bucket {
    /// Once `sorted`, in descending order: the next to fire is the last.
    keys: Vec<CacheKey>,
    sorted: bool,
    /// Entries known to be stale (their timer deleted since they were pushed).
    stale: usize,
}

/// A change to the stored timers, waiting for a checkpoint.
#[derive(Debug)]
struct Change {
    key: CacheKey,
    domain: u8,
    timestamp: i64,
    /// The origin of a timer put; `None` for a timer removed.
    put: Option<Origin>,
    /// A put undone before any checkpoint wrote it (the timer was removed since).
    cancelled: bool,
}

/// Where a checkpoint writes the timers: the timer state's id and the key-group count.
#[derive(Debug, Default, Clone, Copy)]
struct Target {
    state: StateId,
    max_key_groups: u32,
}

/// One worker's timers (see the module docs).
#[derive(Debug, Default)]
pub struct Timers {
    by_key: ByKey,
    /// Buckets in firing order (event time sorts first).
    queue: BTreeMap<(u8, i64), Bucket>,
    log: ChangeLog,
    /// The changes of the checkpoint being drained, and how many are written.
    draining: Vec<Change>,
    drained: usize,
    target: Option<Target>,
}

/// Timers by key, and how many there are.
#[derive(Debug, Default)]
struct ByKey {
    map: HashMap<CacheKey, KeyTimers, foldhash::fast::RandomState>,
    len: usize,
}

impl ByKey {
    fn has(&self, key: &[u8], domain: u8, timestamp: i64) -> bool {
        self.map.get(key).is_some_and(|ts| {
            ts.iter()
                .any(|t| t.domain == domain && t.timestamp == timestamp)
        })
    }

    /// Adds a timer unless the key has it; whether it did.
    fn add(&mut self, key: &[u8], timer: KeyTimer) -> bool {
        let timers = self.map.entry(key.into()).or_default();
        if timers
            .iter()
            .any(|t| t.domain == timer.domain && t.timestamp == timer.timestamp)
        {
            return false;
        }
        timers.push(timer);
        self.len += 1;
        true
    }

    fn remove(&mut self, key: &[u8], domain: u8, timestamp: i64) -> Option<KeyTimer> {
        let timers = self.map.get_mut(key)?;
        let i = timers
            .iter()
            .position(|t| t.domain == domain && t.timestamp == timestamp)?;
        let timer = timers.swap_remove(i);
        if timers.is_empty() {
            self.map.remove(key);
        }
        self.len -= 1;
        Some(timer)
    }
}

/// The changes since the last checkpoint barrier.
#[derive(Debug, Default)]
struct ChangeLog {
    changes: Vec<Change>,
    /// Counts barriers: tells an entry of this log from one of a log drained since.
    generation: u64,
}

impl ChangeLog {
    /// Where the next change goes (for [`removed`](Self::removed) to cancel a put).
    fn next(&self) -> Option<(u64, u32)> {
        let at = u32::try_from(self.changes.len()).ok()?;
        Some((self.generation, at))
    }

    /// Logs a timer put, at [`next`](Self::next).
    fn put(&mut self, key: &[u8], domain: u8, timestamp: i64, origin: &[u8]) {
        self.changes.push(Change {
            key: key.into(),
            domain,
            timestamp,
            put: Some(origin.into()),
            cancelled: false,
        });
    }

    /// Logs the removal of a timer whose put was logged at `logged`: cancels that put if it
    /// is in this log (the stored timers never had it: a timer is put only when it does
    /// not exist), else logs a delete.
    fn removed(&mut self, key: &[u8], domain: u8, timestamp: i64, logged: Option<(u64, u32)>) {
        if let Some((generation, at)) = logged
            && generation == self.generation
            && let Some(change) = self.changes.get_mut(at as usize)
        {
            change.cancelled = true;
            return;
        }
        self.changes.push(Change {
            key: key.into(),
            domain,
            timestamp,
            put: None,
            cancelled: false,
        });
    }
}

impl Timers {
    /// The timers stored for the states' timer state (the last of `keyed.states()`) in key
    /// groups `groups`, read from RocksDB, with no changes pending.
    pub fn load(keyed: &KeyedState, groups: std::ops::Range<u32>) -> Result<Timers, StateError> {
        let mut timers = Timers::default();
        let Some(state) = keyed.states().last().copied() else {
            return Ok(timers);
        };
        let db = keyed.db();
        timers.target = Some(Target {
            state: state.id,
            max_key_groups: db.max_key_groups(),
        });
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
                        timers.add(key, domain, ts, origin, None);
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

    /// Adds a timer unless it exists; whether it did. `logged`: where its put is logged.
    fn add(
        &mut self,
        key: &[u8],
        domain: u8,
        timestamp: i64,
        origin: &[u8],
        logged: Option<(u64, u32)>,
    ) -> bool {
        let timer = KeyTimer {
            domain,
            timestamp,
            origin: origin.into(),
            logged,
        };
        if !self.by_key.add(key, timer) {
            return false;
        }
        let bucket = self.queue.entry((domain, timestamp)).or_default();
        // Descending order holds while each key pushed is at most the last.
        if bucket.keys.last().is_some_and(|last| &**last < key) {
            bucket.sorted = false;
        }
        bucket.keys.push(key.into());
        true
    }

    /// How many timers are registered.
    pub fn len(&self) -> usize {
        self.by_key.len
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.by_key.len == 0
    }

    /// Registers `key`'s timer, with its origin; a timer that exists already stays as it
    /// is (it fires once, under its first origin).
    pub fn register(&mut self, key: &[u8], domain: u8, timestamp: i64, origin: &[u8]) {
        if self.add(key, domain, timestamp, origin, self.log.next()) {
            self.log.put(key, domain, timestamp, origin);
        }
    }

    /// Whether `key` has this timer.
    #[cfg(test)]
    pub fn contains(&self, key: &[u8], domain: u8, timestamp: i64) -> bool {
        self.by_key.has(key, domain, timestamp)
    }

    /// Deletes `key`'s timer, if there is one.
    pub fn delete(&mut self, key: &[u8], domain: u8, timestamp: i64) {
        let Some(timer) = self.by_key.remove(key, domain, timestamp) else {
            return;
        };
        self.log.removed(key, domain, timestamp, timer.logged);
        let at = (domain, timestamp);
        let Some(bucket) = self.queue.get_mut(&at) else {
            return;
        };
        // Its entry stays in the bucket, stale; most of a bucket stale, it is compacted (so
        // at least half of every bucket's entries are live timers).
        bucket.stale += 1;
        if bucket.stale * 2 > bucket.keys.len() {
            bucket.keys.sort_unstable_by(|a, b| b.cmp(a));
            bucket.keys.dedup();
            bucket
                .keys
                .retain(|k| self.by_key.has(k, domain, timestamp));
            bucket.sorted = true;
            bucket.stale = 0;
            if bucket.keys.is_empty() {
                self.queue.remove(&at);
            }
        }
    }

    /// Whether `key` has an event-time timer at or below `watermark`.
    pub fn key_due(&self, key: &[u8], watermark: i64) -> bool {
        // Asked before every record: the earliest timer of all (event time sorts first)
        // answers most of them without hashing the key.
        matches!(self.queue.first_key_value(), Some(((EVENT_TIME, ts), _)) if *ts <= watermark)
            && self.by_key.map.get(key).is_some_and(|timers| {
                timers
                    .iter()
                    .any(|t| t.domain == EVENT_TIME && t.timestamp <= watermark)
            })
    }

    /// The earliest timer of `domain`: exact, or (for a while after a run stopped in a
    /// bucket whose entries left are stale) a time before it, when firing finds nothing
    /// and drops the bucket.
    pub fn earliest(&self, domain: u8) -> Option<i64> {
        self.front(domain).map(|(_, ts)| ts)
    }

    /// The (domain, timestamp) of the first bucket of `domain` in firing order.
    fn front(&self, domain: u8) -> Option<(u8, i64)> {
        let first = if domain == EVENT_TIME {
            // It sorts first.
            self.queue.first_key_value()
        } else {
            self.queue.range((domain, i64::MIN)..).next()
        };
        first.map(|(k, _)| *k).filter(|(d, _)| *d == domain)
    }

    /// The latest timer of `domain`.
    pub fn latest(&self, domain: u8) -> Option<i64> {
        self.queue
            .range(..=(domain, i64::MAX))
            .next_back()
            .filter(|((d, _), _)| *d == domain)
            .map(|((_, ts), _)| *ts)
    }

    /// Removes and returns (in firing order: timestamp, then key) the next run of timers
    /// of `domain` due at `upto`: from the earliest, up to `max`, ending before a key that
    /// is in the run already (so one call handles a key once, and a key's timers fire in
    /// timestamp order across calls).
    pub fn take_run(&mut self, domain: u8, upto: i64, max: usize) -> Vec<Fired> {
        let mut out: Vec<Fired> = Vec::new();
        // The hashes of the run's keys (a match is checked against the run itself).
        let hasher = foldhash::fast::FixedState::default();
        let mut hashes: HashSet<u64, foldhash::fast::RandomState> = HashSet::default();
        'buckets: while out.len() < max {
            let Some(at) = self.front(domain).filter(|(_, ts)| *ts <= upto) else {
                break;
            };
            let Some(bucket) = self.queue.get_mut(&at) else {
                break;
            };
            if !bucket.sorted {
                bucket.keys.sort_unstable_by(|a, b| b.cmp(a));
                let before = bucket.keys.len();
                bucket.keys.dedup();
                // Of two entries of one key, one at least is stale.
                bucket.stale = bucket.stale.saturating_sub(before - bucket.keys.len());
                bucket.sorted = true;
            }
            let (d, timestamp) = at;
            let mut stop = false;
            while out.len() < max {
                let Some(key) = bucket.keys.pop() else {
                    break;
                };
                let Some(timer) = self.by_key.remove(&key, d, timestamp) else {
                    // Stale: its timer was deleted since the entry was pushed.
                    bucket.stale = bucket.stale.saturating_sub(1);
                    continue;
                };
                if !hashes.insert(hasher.hash_one(&key)) && out.iter().any(|f| f.key == key) {
                    // In the run already: back where it was, for the next run.
                    self.by_key.add(&key, timer);
                    bucket.keys.push(key);
                    stop = true;
                    break;
                }
                self.log.removed(&key, d, timestamp, timer.logged);
                out.push(Fired {
                    key,
                    timestamp,
                    origin: timer.origin,
                });
            }
            if bucket.keys.is_empty() {
                self.queue.remove(&at);
            }
            if stop {
                break 'buckets;
            }
        }
        out
    }

    /// Starts draining the changes so far into writes for the next checkpoint (a
    /// barrier): O(1); [`drain_some`](Self::drain_some) makes the writes.
    pub fn begin_drain(&mut self) {
        let changes = std::mem::take(&mut self.log.changes);
        self.log.generation += 1;
        if self.drained == self.draining.len() {
            self.draining = changes;
            self.drained = 0;
        } else {
            // A drain not finished (its changes go first).
            self.draining.extend(changes);
        }
    }

    /// Turns up to `max` drained changes into writes of the timer state; returns whether
    /// the drain is complete.
    pub fn drain_some(&mut self, max: usize, out: &mut Vec<WriteOp>) -> bool {
        let end = self.drained.saturating_add(max).min(self.draining.len());
        if let Some(t) = self.target {
            let mut k = Vec::new();
            for c in &self.draining[self.drained..end] {
                if c.cancelled {
                    continue;
                }
                keys::map_prefix(
                    &mut k,
                    keys::key_group(&c.key, t.max_key_groups),
                    t.state,
                    &c.key,
                );
                k.extend_from_slice(&map_key(c.domain, c.timestamp));
                out.push(match &c.put {
                    Some(origin) => WriteOp::Put(k.clone(), origin.to_vec()),
                    None => WriteOp::Delete(k.clone()),
                });
            }
        }
        self.drained = end;
        if self.drained < self.draining.len() {
            return false;
        }
        self.draining = Vec::new();
        self.drained = 0;
        true
    }

    /// Approximate bytes of changes waiting for a checkpoint.
    pub fn pending_bytes(&self) -> usize {
        (self.log.changes.len() + self.draining.len() - self.drained)
            * std::mem::size_of::<Change>()
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

    /// Drains every change so far, as a checkpoint would, and commits the writes.
    fn checkpoint(t: &mut Timers, keyed: &KeyedState) -> Vec<WriteOp> {
        t.begin_drain();
        let mut ops = Vec::new();
        while !t.drain_some(2, &mut ops) {}
        keyed.db().commit(ops.clone(), &[]).unwrap();
        ops
    }

    /// The (key, domain, timestamp, origin) of every stored timer, in RocksDB's order.
    fn stored(keyed: &KeyedState) -> Vec<(Vec<u8>, u8, i64, Vec<u8>)> {
        let t = Timers::load(keyed, 0..16).unwrap();
        let mut all: Vec<_> = t
            .by_key
            .map
            .iter()
            .flat_map(|(k, ts)| {
                ts.iter()
                    .map(|t| (k.to_vec(), t.domain, t.timestamp, t.origin.to_vec()))
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn runs_come_in_firing_order_with_each_key_once_per_domain() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = keyed(dir.path());
        let mut t = Timers::load(&keyed, 0..16).unwrap();
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
            t.register(key, domain, ts, &origin);
        }
        assert_eq!(t.len(), 6);
        assert!(!t.key_due(b"a", 4));
        assert!(t.key_due(b"a", 5));
        assert!(!t.key_due(b"b", 5));
        assert!(!t.key_due(b"z", 100));
        assert_eq!(t.earliest(PROCESSING_TIME), Some(1));
        assert_eq!(t.earliest(EVENT_TIME), Some(5));
        assert_eq!(t.latest(EVENT_TIME), Some(30));
        assert_eq!(t.latest(PROCESSING_TIME), Some(2));

        // Processing-time timers are reached behind the event-time ones.
        let run = t.take_run(PROCESSING_TIME, 1, 10);
        assert_eq!(taken(&run), [(&b"a"[..], 1, Some(("s", 7)))]);
        // The run ends before a key it has (`a` at 10 waits for the next call, and so does
        // `b`, behind it).
        let run = t.take_run(EVENT_TIME, 20, 10);
        assert_eq!(taken(&run), [(&b"a"[..], 5, Some(("s", 7)))]);
        assert!(t.key_due(b"a", 10));
        let run = t.take_run(EVENT_TIME, 20, 10);
        assert_eq!(
            taken(&run),
            [(&b"a"[..], 10, Some(("s", 7))), (b"b", 10, Some(("s", 7)))]
        );
        assert!(!t.key_due(b"a", i64::MAX));
        assert!(t.take_run(EVENT_TIME, 20, 10).is_empty());
        // At most `max`.
        assert!(t.take_run(EVENT_TIME, 30, 0).is_empty());
        assert_eq!(t.len(), 2);
        assert!(t.contains(b"b", PROCESSING_TIME, 2));
        assert!(t.contains(b"c", EVENT_TIME, 30));

        // What a checkpoint stores: the timers left, none of those that came and went.
        checkpoint(&mut t, &keyed);
        assert_eq!(
            stored(&keyed),
            [
                (b"b".to_vec(), PROCESSING_TIME, 2, origin.to_vec()),
                (b"c".to_vec(), EVENT_TIME, 30, origin.to_vec()),
            ]
        );
    }

    #[test]
    fn a_bucket_sorts_its_keys_when_it_fires_and_takes_timers_registered_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = keyed(dir.path());
        let mut t = Timers::load(&keyed, 0..16).unwrap();
        for key in ["k3", "k1", "k4", "k2", "k0"] {
            t.register(key.as_bytes(), EVENT_TIME, 100, &encode_origin(key, 1));
        }
        let run = t.take_run(EVENT_TIME, 100, 2);
        assert_eq!(
            taken(&run)[..],
            [
                (&b"k0"[..], 100, Some(("k0", 1))),
                (b"k1", 100, Some(("k1", 1)))
            ]
        );
        // Registered while the bucket fires: below and above the keys left.
        t.register(b"k00", EVENT_TIME, 100, &encode_origin("x", 2));
        t.register(b"k9", EVENT_TIME, 100, &encode_origin("x", 3));
        // And one fired already, registered again: it fires again.
        t.register(b"k0", EVENT_TIME, 100, &encode_origin("x", 4));
        let run = t.take_run(EVENT_TIME, 100, 10);
        let keys: Vec<&[u8]> = run.iter().map(|f| &*f.key).collect();
        assert_eq!(keys, [&b"k0"[..], b"k00", b"k2", b"k3", b"k4", b"k9"]);
        assert!(t.is_empty());
        assert_eq!(t.earliest(EVENT_TIME), None);
    }

    #[test]
    fn deleted_timers_do_not_fire_and_do_not_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = keyed(dir.path());
        let mut t = Timers::load(&keyed, 0..16).unwrap();
        let o = encode_origin("s", 1);
        for i in 0..10 {
            t.register(format!("k{i}").as_bytes(), EVENT_TIME, 50, &o);
        }
        t.register(b"k1", EVENT_TIME, 60, &o);
        // Deleted, and deleted and registered again, many times over: the bucket keeps at
        // most twice its live timers.
        for _ in 0..100 {
            for i in 0..6 {
                t.delete(format!("k{i}").as_bytes(), EVENT_TIME, 50);
            }
            t.register(b"k3", EVENT_TIME, 50, &o);
            let bucket = &t.queue[&(EVENT_TIME, 50)];
            assert!(bucket.keys.len() <= 2 * 5, "{}", bucket.keys.len());
        }
        t.delete(b"nope", EVENT_TIME, 50);
        t.delete(b"k1", EVENT_TIME, 61);
        assert_eq!(t.len(), 6);
        assert!(!t.contains(b"k0", EVENT_TIME, 50));
        assert!(t.contains(b"k3", EVENT_TIME, 50));
        assert!(!t.key_due(b"k1", 55));
        assert!(t.key_due(b"k1", 60));
        let run = t.take_run(EVENT_TIME, i64::MAX, 100);
        let got: Vec<(&[u8], i64)> = run.iter().map(|f| (&*f.key, f.timestamp)).collect();
        assert_eq!(
            got,
            [
                (&b"k3"[..], 50),
                (b"k6", 50),
                (b"k7", 50),
                (b"k8", 50),
                (b"k9", 50),
                (b"k1", 60)
            ]
        );
        assert!(t.queue.is_empty());
        // Every timer of a bucket deleted: the bucket goes.
        t.register(b"a", PROCESSING_TIME, 5, &o);
        t.register(b"b", PROCESSING_TIME, 5, &o);
        t.delete(b"a", PROCESSING_TIME, 5);
        assert_eq!(t.earliest(PROCESSING_TIME), Some(5));
        t.delete(b"b", PROCESSING_TIME, 5);
        assert_eq!(t.earliest(PROCESSING_TIME), None);
        assert!(t.is_empty() && t.queue.is_empty());
    }

    #[test]
    fn a_checkpoint_writes_the_changes_before_its_barrier_and_only_those_that_last() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = keyed(dir.path());
        let mut t = Timers::load(&keyed, 0..16).unwrap();
        let (o1, o2) = (encode_origin("s", 1), encode_origin("s", 2));
        // Came and went between two checkpoints: nothing to write.
        t.register(b"a", EVENT_TIME, 10, &o1);
        t.register(b"b", EVENT_TIME, 10, &o1);
        t.delete(b"a", EVENT_TIME, 10);
        assert_eq!(t.take_run(EVENT_TIME, 10, 10).len(), 1);
        assert!(checkpoint(&mut t, &keyed).is_empty());

        t.register(b"c", EVENT_TIME, 20, &o1);
        t.register(b"d", PROCESSING_TIME, 20, &o1);
        assert_eq!(checkpoint(&mut t, &keyed).len(), 2);
        // Stored before: removing it is a delete, and registering it again a put.
        t.delete(b"c", EVENT_TIME, 20);
        t.register(b"c", EVENT_TIME, 20, &o2);
        // A barrier while changes go on: the drain holds those before it.
        t.begin_drain();
        t.delete(b"d", PROCESSING_TIME, 20);
        t.register(b"e", EVENT_TIME, 30, &o2);
        let mut ops = Vec::new();
        while !t.drain_some(1, &mut ops) {}
        assert_eq!(ops.len(), 2);
        assert!(matches!(ops[0], WriteOp::Delete(_)));
        assert!(matches!(ops[1], WriteOp::Put(..)));
        keyed.db().commit(ops, &[]).unwrap();
        assert_eq!(
            stored(&keyed),
            [
                (b"c".to_vec(), EVENT_TIME, 20, o2.to_vec()),
                (b"d".to_vec(), PROCESSING_TIME, 20, o1.to_vec()),
            ]
        );
        assert!(t.pending_bytes() > 0);
        checkpoint(&mut t, &keyed);
        assert_eq!(t.pending_bytes(), 0);
        assert_eq!(
            stored(&keyed),
            [
                (b"c".to_vec(), EVENT_TIME, 20, o2.to_vec()),
                (b"e".to_vec(), EVENT_TIME, 30, o2.to_vec()),
            ]
        );
        // A fired timer stored before is deleted; loaded again, the index is what it was.
        let run = t.take_run(EVENT_TIME, 25, 10);
        assert_eq!(taken(&run), [(&b"c"[..], 20, Some(("s", 2)))]);
        checkpoint(&mut t, &keyed);
        let again = Timers::load(&keyed, 0..16).unwrap();
        assert_eq!(again.len(), 1);
        assert!(again.contains(b"e", EVENT_TIME, 30));
        assert_eq!(again.earliest(EVENT_TIME), Some(30));
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
