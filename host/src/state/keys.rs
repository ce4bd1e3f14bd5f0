//! The RocksDB key layout (docs/state-format.md). Every key starts with a one-byte table
//! prefix; a retired prefix is never reused, so old bytes can never be misread.
//!
//! Keyed tables then carry the key group (u16, big-endian) so that a key-group range is one
//! contiguous scan, then the state id (u32, big-endian), then the record key.

use xxhash_rust::xxh3::xxh3_64;

/// Job metadata: format version, key-group count, state registry, checkpoint record.
pub const TABLE_META: u8 = 0x00;
/// Value state: `[0x01][kg][state][key]` → value.
pub const TABLE_VALUE: u8 = 0x01;
/// Map state: `[0x02][kg][state][key len u32][key][map key]` → value.
pub const TABLE_MAP: u8 = 0x02;
/// List state: `[0x03][kg][state][key]` → list encoding (docs/state-format.md).
pub const TABLE_LIST: u8 = 0x03;
// 0x04 is reserved for timers.
/// Operator (non-keyed) state: `[0x05][state u32 BE][worker u32 BE]` → list encoding.
pub const TABLE_OPERATOR: u8 = 0x05;

/// Identifies one declared state (operator uid + state name) inside a state directory.
pub type StateId = u32;

/// The key group of a record key: `xxh3_64(key) mod max_key_groups`. Stable across
/// platforms and versions; part of the on-disk format.
pub fn key_group(key: &[u8], max_key_groups: u32) -> u16 {
    // max_key_groups ≤ 32768 (checked by config), so the result fits u16.
    (xxh3_64(key) % u64::from(max_key_groups)) as u16
}

/// Prefix of every entry of one state in one key group of a keyed table.
pub fn keyed_prefix(out: &mut Vec<u8>, table: u8, kg: u16, state: StateId) {
    out.clear();
    out.push(table);
    out.extend_from_slice(&kg.to_be_bytes());
    out.extend_from_slice(&state.to_be_bytes());
}

/// Key of a value-state entry.
pub fn value_key(out: &mut Vec<u8>, kg: u16, state: StateId, key: &[u8]) {
    keyed_prefix(out, TABLE_VALUE, kg, state);
    out.extend_from_slice(key);
}

/// A keyed table's key `[table][kg u16][state u32][rest]` as (kg, state, rest).
pub fn split_keyed(k: &[u8]) -> Option<(u16, StateId, &[u8])> {
    let kg = u16::from_be_bytes(k.get(1..3)?.try_into().ok()?);
    let id = u32::from_be_bytes(k.get(3..7)?.try_into().ok()?);
    Some((kg, id, k.get(7..)?))
}

/// The rest of a map-state key, `[key len u32 BE][key][map key]` (see [`map_prefix`]), as
/// (record key, map key).
pub fn split_map_rest(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    Some((tail.get(..len)?, tail.get(len..)?))
}

/// Key of a list-state entry.
pub fn list_key(out: &mut Vec<u8>, kg: u16, state: StateId, key: &[u8]) {
    keyed_prefix(out, TABLE_LIST, kg, state);
    out.extend_from_slice(key);
}

/// Prefix of every worker's list of operator state `state`.
pub fn operator_prefix(state: StateId) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(TABLE_OPERATOR);
    out.extend_from_slice(&state.to_be_bytes());
    out
}

/// Key of worker `worker`'s list of operator state `state`.
pub fn operator_key(state: StateId, worker: u32) -> Vec<u8> {
    let mut out = operator_prefix(state);
    out.extend_from_slice(&worker.to_be_bytes());
    out
}

/// Prefix shared by every entry of one record key's map.
pub fn map_prefix(out: &mut Vec<u8>, kg: u16, state: StateId, key: &[u8]) {
    keyed_prefix(out, TABLE_MAP, kg, state);
    // The length keeps key "a" from prefix-matching key "ab".
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
}

/// The smallest key above every key that starts with `prefix` (for range deletes), or
/// `None` if there is none (a prefix of all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Metadata key: `[0x00]` + name.
pub fn meta_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(TABLE_META);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Encodes a list state value: u32 LE count, then (u32 LE length, bytes) per item.
pub fn encode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let len = 4 + items.iter().map(|i| 4 + i.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Decodes a list state value; `None` if the bytes are not a valid encoding.
pub fn decode_list(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut items = Vec::with_capacity(count.min(bytes.len() / 4));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        items.push(take(len)?.to_vec());
    }
    if !rest.is_empty() {
        return None;
    }
    Some(items)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_group_is_stable() {
        // Part of the on-disk format: these must never change.
        assert_eq!(key_group(b"w1", 128), key_group(b"w1", 128));
        assert_eq!(u64::from(key_group(b"hello", 128)), xxh3_64(b"hello") % 128);
        assert!(key_group(b"", 1) == 0);
    }

    #[test]
    fn map_prefix_separates_keys_that_prefix_each_other() {
        let (mut a, mut ab) = (Vec::new(), Vec::new());
        map_prefix(&mut a, 3, 7, b"a");
        map_prefix(&mut ab, 3, 7, b"ab");
        assert!(!ab.starts_with(&a));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn list_round_trips_and_rejects_garbage() {
        let items = vec![b"a".to_vec(), Vec::new(), b"ccc".to_vec()];
        assert_eq!(decode_list(&encode_list(&items)).unwrap(), items);
        assert_eq!(
            decode_list(&encode_list(&[])).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        assert!(decode_list(&[5, 0, 0, 0, 1]).is_none());
        assert!(decode_list(&[0, 0, 0, 0, 9]).is_none());
        assert!(decode_list(&[0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
