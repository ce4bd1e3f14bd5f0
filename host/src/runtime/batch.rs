//! The host side of the batch format (docs/batch-format.md): encoding a batch for `process`
//! or `on-timer` and decoding, with every bound checked, what it returns. Nothing a guest returns can
//! make the decoder panic or allocate beyond the size of the returned buffer.

/// The version byte of both frames.
pub const VERSION: u8 = 2;

/// Writes an input frame section by section, in the order the format gives.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a frame at wall-clock time `processing_time` (ms since the epoch), reusing
    /// the buffer of the previous one.
    pub fn start(&mut self, processing_time: i64) {
        self.buf.clear();
        self.buf.push(VERSION);
        self.i64(processing_time);
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// An `i64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }

    /// A prefetch slot.
    pub fn slot(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.buf.push(0),
            Some(b) => {
                self.buf.push(1);
                self.bytes(b);
            }
        }
    }

    /// A record: key index, timestamp, the watermark it sees, value and headers.
    pub fn record(
        &mut self,
        key_index: u32,
        timestamp: i64,
        watermark: i64,
        value: &[u8],
        headers: &[(String, String)],
    ) {
        self.u32(key_index);
        self.i64(timestamp);
        self.i64(watermark);
        self.bytes(value);
        self.u32(headers.len() as u32);
        for (n, v) in headers {
            self.bytes(n.as_bytes());
            self.bytes(v.as_bytes());
        }
    }

    /// A fired timer: key index, timestamp, domain (0 event time, 1 processing time), and
    /// the watermark it fires at.
    pub fn timer(&mut self, key_index: u32, timestamp: i64, domain: u8, watermark: i64) {
        self.u32(key_index);
        self.i64(timestamp);
        self.buf.push(domain);
        self.i64(watermark);
    }

    /// The encoded frame.
    pub fn finish(&self) -> &[u8] {
        &self.buf
    }
}

/// One emitted record, borrowing the result buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emit<'a> {
    /// Index of the input record that emitted it.
    pub record: u32,
    /// Its index among that record's emits.
    pub index: u32,
    /// Key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
    /// Headers.
    pub headers: Vec<(&'a str, &'a str)>,
}

/// One value-state write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    /// Index in the batch's key table.
    pub key_index: u32,
    /// State handle.
    pub handle: u32,
    /// New value; `None` clears.
    pub value: Option<&'a [u8]>,
}

/// One timer change, made while handling input `item` (a record or a fired timer), for
/// that input's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerOp {
    /// Index of the input.
    pub item: u32,
    /// Register (true) or delete.
    pub register: bool,
    /// 0 event time, 1 processing time.
    pub domain: u8,
    /// When it fires.
    pub timestamp: i64,
}

/// A decoded result frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Emits in input order.
    pub emits: Vec<Emit<'a>>,
    /// Writes in the order to apply them.
    pub writes: Vec<Write<'a>>,
    /// Timer changes in the order to apply them.
    pub timer_ops: Vec<TimerOp>,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or_else(|| {
            format!(
                "result is truncated (wanted {n} more bytes, {} left)",
                self.buf.len()
            )
        })?;
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a header is not UTF-8".to_string())
    }
}

/// Decodes and checks a result frame against the batch it answers: `n_records` inputs
/// (records or timers), `n_keys` keys, and `is_value_state(handle)` for the declared states. Any
/// inconsistency is an error naming what is wrong (the host treats it as an operator
/// failure).
pub fn decode<'a>(
    buf: &'a [u8],
    n_records: u32,
    n_keys: u32,
    is_value_state: impl Fn(u32) -> bool,
) -> Result<Decoded<'a>, String> {
    let mut r = Reader { buf };
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!(
            "result has format version {version}; this host reads {VERSION}"
        ));
    }
    let n = r.u32()?;
    if n != n_records {
        return Err(format!(
            "result covers {n} records; the batch had {n_records}"
        ));
    }
    let mut out = Decoded::default();
    for record in 0..n {
        let n_emits = r.u32()?;
        for index in 0..n_emits {
            let key = r.bytes()?;
            let value = r.bytes()?;
            let n_headers = r.u32()?;
            // Each header takes at least 8 bytes: a bound that needs no trust.
            if n_headers as usize > r.buf.len() / 8 {
                return Err(format!(
                    "emit declares {n_headers} headers, more than the result holds"
                ));
            }
            let mut headers = Vec::with_capacity(n_headers as usize);
            for _ in 0..n_headers {
                headers.push((r.str()?, r.str()?));
            }
            out.emits.push(Emit {
                record,
                index,
                key,
                value,
                headers,
            });
        }
    }
    let n_writes = r.u32()?;
    if n_writes as usize > r.buf.len() / 9 {
        return Err(format!(
            "result declares {n_writes} writes, more than it holds"
        ));
    }
    out.writes.reserve(n_writes as usize);
    for _ in 0..n_writes {
        let key_index = r.u32()?;
        let handle = r.u32()?;
        if key_index >= n_keys {
            return Err(format!(
                "a write names key index {key_index}; the batch has {n_keys} keys"
            ));
        }
        if !is_value_state(handle) {
            return Err(format!(
                "a write names state handle {handle}, which is not a value state"
            ));
        }
        let value = match r.u8()? {
            0 => None,
            1 => Some(r.bytes()?),
            op => {
                return Err(format!(
                    "a write has op {op}; expected 0 (clear) or 1 (set)"
                ));
            }
        };
        out.writes.push(Write {
            key_index,
            handle,
            value,
        });
    }
    let n_ops = r.u32()?;
    if n_ops as usize > r.buf.len() / 14 {
        return Err(format!(
            "result declares {n_ops} timer changes, more than it holds"
        ));
    }
    out.timer_ops.reserve(n_ops as usize);
    for _ in 0..n_ops {
        let item = r.u32()?;
        if item >= n_records {
            return Err(format!(
                "a timer change names input {item}; the batch had {n_records}"
            ));
        }
        let register = match r.u8()? {
            0 => false,
            1 => true,
            op => {
                return Err(format!(
                    "a timer change has op {op}; expected 0 (delete) or 1 (register)"
                ));
            }
        };
        let domain = r.u8()?;
        if domain > 1 {
            return Err(format!(
                "a timer change has domain {domain}; expected 0 (event time) or 1 (processing time)"
            ));
        }
        let timestamp = r.i64()?;
        out.timer_ops.push(TimerOp {
            item,
            register,
            domain,
            timestamp,
        });
    }
    if !r.buf.is_empty() {
        return Err(format!("result has {} bytes after its end", r.buf.len()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn result_frame() -> Vec<u8> {
        let mut b = vec![VERSION];
        b.extend(2u32.to_le_bytes());
        // record 0: one emit with a header
        b.extend(1u32.to_le_bytes());
        for f in [&b"k"[..], b"v"] {
            b.extend((f.len() as u32).to_le_bytes());
            b.extend(f);
        }
        b.extend(1u32.to_le_bytes());
        for f in [&b"h"[..], b"x"] {
            b.extend((f.len() as u32).to_le_bytes());
            b.extend(f);
        }
        // record 1: none
        b.extend(0u32.to_le_bytes());
        // one set, one clear
        b.extend(2u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.push(1);
        b.extend(1u32.to_le_bytes());
        b.push(7);
        b.extend(0u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.push(0);
        // one timer registered by record 1
        b.extend(1u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.push(1);
        b.push(0);
        b.extend(60_000i64.to_le_bytes());
        b
    }

    #[test]
    fn decodes_emits_and_writes() {
        let frame = result_frame();
        let d = decode(&frame, 2, 1, |h| h == 0).unwrap();
        assert_eq!(d.emits.len(), 1);
        assert_eq!(d.emits[0].key, b"k");
        assert_eq!(d.emits[0].headers, vec![("h", "x")]);
        assert_eq!(d.writes[0].value, Some(&[7u8][..]));
        assert_eq!(d.writes[1].value, None);
        assert_eq!(
            d.timer_ops,
            vec![TimerOp {
                item: 1,
                register: true,
                domain: 0,
                timestamp: 60_000
            }]
        );
    }

    #[test]
    fn every_truncation_and_bad_reference_is_an_error() {
        let frame = result_frame();
        for cut in 0..frame.len() {
            assert!(
                decode(&frame[..cut], 2, 1, |h| h == 0).is_err(),
                "cut at {cut}"
            );
        }
        assert!(decode(&frame, 3, 1, |h| h == 0).is_err());
        assert!(decode(&frame, 2, 0, |h| h == 0).is_err());
        assert!(decode(&frame, 2, 1, |_| false).is_err());
        let mut long = frame.clone();
        long.push(0);
        assert!(decode(&long, 2, 1, |h| h == 0).is_err());
        // A huge count must not allocate: it is refused against the bytes left.
        let mut huge = vec![VERSION];
        huge.extend(0u32.to_le_bytes());
        huge.extend(u32::MAX.to_le_bytes());
        assert!(decode(&huge, 0, 1, |_| true).is_err());
        // A timer change of an input the batch does not have, or of an unknown domain.
        let mut bad = frame.clone();
        let at = bad.len() - 14;
        bad[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
        assert!(decode(&bad, 2, 1, |h| h == 0).is_err());
        let mut bad = frame.clone();
        let at = bad.len() - 9;
        bad[at] = 2;
        assert!(decode(&bad, 2, 1, |h| h == 0).is_err());
    }
}
