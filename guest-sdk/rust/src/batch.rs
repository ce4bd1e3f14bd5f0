//! The batch codec of docs/batch-format.md (version 2): reading the `process` and
//! `on-timer` arguments, keeping the batch's value state (prefetched values with the
//! batch's own writes on top), and writing the result with its timer changes.
//!
//! Everything read here comes from the host, so every length and count is checked against the
//! bytes actually left before it is used: a malformed batch is an error, never a panic or an
//! unbounded allocation.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::StateError;
use crate::host::HostState;
use crate::state::{StateDescriptor, StateKind, TtlUpdate};

/// The only batch format version this SDK reads and writes.
pub(crate) const VERSION: u8 = 2;

/// A batch that does not follow docs/batch-format.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecError {
    at: usize,
    what: String,
}

impl CodecError {
    pub(crate) fn new(at: usize, what: impl Into<String>) -> Self {
        Self {
            at,
            what: what.into(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed batch at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for CodecError {}

/// A range of the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// A bounds-checked little-endian cursor over a byte buffer.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(CodecError::new(
                self.pos,
                format!(
                    "{what} needs {n} bytes but only {} are left",
                    self.remaining()
                ),
            ));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], CodecError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, CodecError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, CodecError> {
        self.array(what).map(i64::from_le_bytes)
    }

    /// A `u32` count of items that each take at least `min_size` bytes, refused when the
    /// bytes left cannot hold that many (so a count never drives an allocation on its own).
    pub(crate) fn count(&mut self, min_size: usize, what: &str) -> Result<u32, CodecError> {
        let at = self.pos;
        let count = self.u32(what)?;
        let needed = (count as usize).saturating_mul(min_size);
        if needed > self.remaining() {
            return Err(CodecError::new(
                at,
                format!(
                    "{what} is {count}, more than the {} bytes left can hold",
                    self.remaining()
                ),
            ));
        }
        Ok(count)
    }

    /// A `bytes` field (u32 length, then the bytes), as a span of the buffer.
    pub(crate) fn span(&mut self, what: &str) -> Result<Span, CodecError> {
        let len = self.u32(what)? as usize;
        let start = self.pos;
        self.take(len, what)?;
        Ok(Span {
            start,
            end: self.pos,
        })
    }

    /// A `bytes` field.
    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], CodecError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A `string` field (UTF-8 `bytes`).
    pub(crate) fn str(&mut self, what: &str) -> Result<&'a str, CodecError> {
        let at = self.pos;
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|error| CodecError::new(at, format!("{what} is not UTF-8: {error}")))
    }
}

/// Appends a little-endian `u32`.
pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a `bytes` field; refuses more than `u32::MAX` bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), CodecError> {
    let len = u32::try_from(bytes.len()).map_err(|_| {
        CodecError::new(
            out.len(),
            format!("{} bytes do not fit a u32 length", bytes.len()),
        )
    })?;
    put_u32(out, len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Overwrites the `u32` at `at` (a count reserved before the counted items were written).
pub(crate) fn patch_u32(out: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// One input record, borrowed from the batch buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) key_index: u32,
    pub(crate) timestamp: i64,
    pub(crate) watermark: i64,
    pub(crate) value: &'a [u8],
    /// The encoded headers, already checked to be `n_headers` pairs of UTF-8 strings.
    pub(crate) headers: &'a [u8],
    pub(crate) n_headers: u32,
}

/// Reads one `record` of the input; `n_keys` bounds its key index.
pub(crate) fn read_record<'a>(
    reader: &mut Reader<'a>,
    n_keys: usize,
) -> Result<RawRecord<'a>, CodecError> {
    let at = reader.pos();
    let key_index = reader.u32("record key index")?;
    if key_index as usize >= n_keys {
        return Err(CodecError::new(
            at,
            format!("record key index {key_index} is outside the key table of {n_keys} keys"),
        ));
    }
    let timestamp = reader.i64("record timestamp")?;
    let watermark = reader.i64("record watermark")?;
    let value = reader.bytes("record value")?;
    let n_headers = reader.count(8, "record header count")?;
    let start = reader.pos();
    for _ in 0..n_headers {
        reader.str("header name")?;
        reader.str("header value")?;
    }
    let headers = reader.buf.get(start..reader.pos()).unwrap_or_default();
    Ok(RawRecord {
        key_index,
        timestamp,
        watermark,
        value,
        headers,
        n_headers,
    })
}

/// One fired timer of an `on-timer` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawTimer {
    pub(crate) key_index: u32,
    pub(crate) timer: crate::Timer,
    pub(crate) watermark: i64,
}

/// Reads one `timer` of an `on-timer` input; `n_keys` bounds its key index.
pub(crate) fn read_timer(reader: &mut Reader<'_>, n_keys: usize) -> Result<RawTimer, CodecError> {
    let at = reader.pos();
    let key_index = reader.u32("timer key index")?;
    if key_index as usize >= n_keys {
        return Err(CodecError::new(
            at,
            format!("timer key index {key_index} is outside the key table of {n_keys} keys"),
        ));
    }
    let timestamp = reader.i64("timer timestamp")?;
    let at = reader.pos();
    let domain = match reader.u8("timer domain")? {
        0 => crate::TimeDomain::EventTime,
        1 => crate::TimeDomain::ProcessingTime,
        other => {
            return Err(CodecError::new(
                at,
                format!("timer domain {other} is neither 0 (event time) nor 1 (processing time)"),
            ));
        }
    };
    let watermark = reader.i64("timer watermark")?;
    Ok(RawTimer {
        key_index,
        timer: crate::Timer { timestamp, domain },
        watermark,
    })
}

/// A batch-local write of one value state of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    Untouched,
    /// A read of a present value of a state whose TTL restarts on reads: written back
    /// unchanged (the prefetched bytes), so the host restamps it.
    Refresh,
    Cleared,
    Set(Vec<u8>),
}

/// A value state the host did not prefetch, read through `value-get` once per batch.
#[derive(Debug)]
struct Fetched {
    value: Option<Vec<u8>>,
    written: bool,
}

const NOT_VALUE: u32 = u32::MAX;
const NOT_PREFETCHED: u32 = u32::MAX - 1;

/// The per-batch tables: the key table and every value state of every key of the batch.
///
/// Reads see the prefetched value with the batch's own earlier writes on top; writes are kept
/// so the output carries exactly the last write per (key index, handle). The vectors live in
/// the runtime and keep their capacity from batch to batch.
///
/// # Reads that restart a TTL
/// The host restamps a value's time to live on writes, and for a state declared with
/// [`TtlUpdate::OnReadAndWrite`] also on reads made through its imports. A value state is
/// prefetched into the batch, so the host cannot see it read: a read of a present value of
/// such a state, which the batch has not written, becomes a write of the same bytes (the
/// prefetched ones, copied only into the result). A later write or clear in the batch
/// replaces it (the last write wins); a read of an absent value writes nothing. A value
/// read through `value-get` (not prefetched) is written back the same way.
#[derive(Debug, Default)]
pub(crate) struct BatchState {
    keys: Vec<Span>,
    /// Prefetched handles, in the order of the input.
    handles: Vec<u32>,
    /// Per declared handle: its position in `handles`, or `NOT_VALUE` / `NOT_PREFETCHED`.
    position: Vec<u32>,
    /// Per declared handle: whether a read restarts the value's TTL.
    refresh_on_read: Vec<bool>,
    /// Key-major: `prefetched[key * handles.len() + position]`.
    prefetched: Vec<Option<Span>>,
    written: Vec<Write>,
    /// Value states of handles the host did not prefetch, by (key index, handle).
    fetched: BTreeMap<(u32, u32), Fetched>,
    /// The host's wall clock at the call (ms since the Unix epoch).
    processing_time: i64,
    /// Timer changes, encoded as the result carries them, and how many.
    timer_ops: Vec<u8>,
    n_timer_ops: u32,
}

impl BatchState {
    /// Reads the batch header (version, key table, prefetched value states) of `input` and
    /// returns the reader, positioned at `n_records`.
    pub(crate) fn begin<'a>(
        &mut self,
        input: &'a [u8],
        states: &[StateDescriptor],
    ) -> Result<Reader<'a>, CodecError> {
        self.keys.clear();
        self.handles.clear();
        self.position.clear();
        self.refresh_on_read.clear();
        self.prefetched.clear();
        self.written.clear();
        self.fetched.clear();
        self.timer_ops.clear();
        self.n_timer_ops = 0;
        self.refresh_on_read.extend(states.iter().map(|state| {
            state.kind == StateKind::Value
                && state
                    .ttl
                    .is_some_and(|ttl| ttl.update == TtlUpdate::OnReadAndWrite)
        }));
        self.position.extend(states.iter().map(|state| {
            if state.kind == StateKind::Value {
                NOT_PREFETCHED
            } else {
                NOT_VALUE
            }
        }));

        let mut reader = Reader::new(input);
        let version = reader.u8("version")?;
        if version != VERSION {
            return Err(CodecError::new(
                0,
                format!("version {version} is not the supported version {VERSION}"),
            ));
        }
        self.processing_time = reader.i64("processing time")?;
        let n_keys = reader.count(4, "key count")?;
        for _ in 0..n_keys {
            let key = reader.span("key")?;
            self.keys.push(key);
        }
        let n_handles = reader.count(4, "value state count")?;
        for position in 0..n_handles {
            let at = reader.pos();
            let handle = reader.u32("value state handle")?;
            match self.position.get_mut(handle as usize) {
                Some(slot) if *slot == NOT_PREFETCHED => *slot = position,
                Some(slot) if *slot == NOT_VALUE => {
                    return Err(CodecError::new(
                        at,
                        format!("prefetched handle {handle} is not a value state"),
                    ));
                }
                Some(_) => {
                    return Err(CodecError::new(
                        at,
                        format!("value state handle {handle} is prefetched twice"),
                    ));
                }
                None => {
                    return Err(CodecError::new(
                        at,
                        format!(
                            "prefetched handle {handle} names no state (the operator declares {})",
                            states.len()
                        ),
                    ));
                }
            }
            self.handles.push(handle);
        }
        let n_slots = (n_keys as usize).saturating_mul(n_handles as usize);
        if n_slots > reader.remaining() {
            return Err(CodecError::new(
                reader.pos(),
                format!(
                    "{n_keys} keys × {n_handles} value states need more slots than the {} bytes left",
                    reader.remaining()
                ),
            ));
        }
        for _ in 0..n_slots {
            let at = reader.pos();
            let slot = match reader.u8("slot present flag")? {
                0 => None,
                1 => Some(reader.span("prefetched value")?),
                other => {
                    return Err(CodecError::new(
                        at,
                        format!("slot present flag is {other}, not 0 or 1"),
                    ));
                }
            };
            self.prefetched.push(slot);
        }
        self.written.resize(n_slots, Write::Untouched);
        Ok(reader)
    }

    /// Forgets the batch (keeping the capacity for the next one), so no value outlives the
    /// call that wrote it.
    pub(crate) fn end(&mut self) {
        self.keys.clear();
        self.prefetched.clear();
        self.written.clear();
        self.fetched.clear();
        self.timer_ops.clear();
        self.n_timer_ops = 0;
    }

    pub(crate) fn n_keys(&self) -> usize {
        self.keys.len()
    }

    /// The host's wall clock at the call.
    pub(crate) fn processing_time(&self) -> i64 {
        self.processing_time
    }

    /// Records a timer change made while handling input `item` (a record or a timer), for
    /// that item's key.
    pub(crate) fn timer_op(&mut self, item: u32, register: bool, timer: crate::Timer) {
        put_u32(&mut self.timer_ops, item);
        self.timer_ops.push(u8::from(register));
        self.timer_ops.push(match timer.domain {
            crate::TimeDomain::EventTime => 0,
            crate::TimeDomain::ProcessingTime => 1,
        });
        self.timer_ops
            .extend_from_slice(&timer.timestamp.to_le_bytes());
        self.n_timer_ops = self.n_timer_ops.saturating_add(1);
    }

    pub(crate) fn key<'a>(&self, input: &'a [u8], key_index: u32) -> &'a [u8] {
        self.keys
            .get(key_index as usize)
            .map(|span| span.of(input))
            .unwrap_or_default()
    }

    /// Where `(key, handle)` lives: `Ok(Some(slot))` in the dense prefetched table,
    /// `Ok(None)` for a value state that was not prefetched.
    fn slot(&self, handle: u32, key: u32) -> Result<Option<usize>, StateError> {
        if key as usize >= self.keys.len() {
            return Err(StateError::BadKey(key));
        }
        match self.position.get(handle as usize) {
            None => Err(StateError::BadHandle(handle)),
            Some(&NOT_VALUE) => Err(StateError::BadHandle(handle)),
            Some(&NOT_PREFETCHED) => Ok(None),
            Some(&position) => Ok(Some(key as usize * self.handles.len() + position as usize)),
        }
    }

    /// The value of `handle` for `key`: the batch's last write, else the value before the
    /// batch (prefetched, or read once through the host's `value-get`). A read of a present
    /// value that restarts its TTL is written back (see the type docs).
    pub(crate) fn value_get<'s>(
        &'s mut self,
        input: &'s [u8],
        host: &mut dyn HostState,
        handle: u32,
        key: u32,
    ) -> Result<Option<&'s [u8]>, StateError> {
        let refresh = self
            .refresh_on_read
            .get(handle as usize)
            .copied()
            .unwrap_or(false);
        match self.slot(handle, key)? {
            Some(slot) => {
                let prefetched = self.prefetched.get(slot).copied().flatten();
                let write = self.written.get_mut(slot);
                if refresh
                    && prefetched.is_some()
                    && let Some(write @ Write::Untouched) = write
                {
                    *write = Write::Refresh;
                }
                Ok(match self.written.get(slot) {
                    Some(Write::Set(value)) => Some(value.as_slice()),
                    Some(Write::Cleared) => None,
                    Some(Write::Untouched | Write::Refresh) | None => {
                        prefetched.map(|span| span.of(input))
                    }
                })
            }
            None => {
                let fetched = match self.fetched.entry((key, handle)) {
                    std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        let value = host.value_get(handle, key)?;
                        entry.insert(Fetched {
                            value,
                            written: false,
                        })
                    }
                };
                if refresh && fetched.value.is_some() {
                    fetched.written = true;
                }
                Ok(fetched.value.as_deref())
            }
        }
    }

    /// Records a write (`Some` = set, `None` = clear) of `handle` for `key`.
    pub(crate) fn value_write(
        &mut self,
        handle: u32,
        key: u32,
        value: Option<Vec<u8>>,
    ) -> Result<(), StateError> {
        match self.slot(handle, key)? {
            Some(slot) => {
                if let Some(write) = self.written.get_mut(slot) {
                    *write = match value {
                        Some(value) => Write::Set(value),
                        None => Write::Cleared,
                    };
                }
            }
            None => {
                self.fetched.insert(
                    (key, handle),
                    Fetched {
                        value,
                        written: true,
                    },
                );
            }
        }
        Ok(())
    }

    /// What the result says of a slot: `None` nothing, `Some(None)` a clear, `Some(Some(v))`
    /// a set.
    fn write_of<'s>(
        &'s self,
        input: &'s [u8],
        slot: usize,
        write: &'s Write,
    ) -> Option<Option<&'s [u8]>> {
        match write {
            Write::Untouched => None,
            // Only a present value is refreshed: there is nothing to write back otherwise.
            Write::Refresh => self
                .prefetched
                .get(slot)
                .copied()
                .flatten()
                .map(|span| Some(span.of(input))),
            Write::Cleared => Some(None),
            Write::Set(value) => Some(Some(value.as_slice())),
        }
    }

    /// Appends `n_writes` and the writes: the last write per (key index, handle), in key
    /// index then handle-position order. `input` is the batch the values were prefetched
    /// from (a refreshing read writes those bytes back).
    pub(crate) fn write_output(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n_written = self
            .written
            .iter()
            .enumerate()
            .filter(|(slot, write)| self.write_of(input, *slot, write).is_some())
            .count()
            + self
                .fetched
                .values()
                .filter(|fetched| fetched.written)
                .count();
        let n_written = u32::try_from(n_written)
            .map_err(|_| CodecError::new(out.len(), "more than u32::MAX writes"))?;
        put_u32(out, n_written);
        let n_handles = self.handles.len().max(1);
        for (slot, write) in self.written.iter().enumerate() {
            let Some(value) = self.write_of(input, slot, write) else {
                continue;
            };
            // Both fit a u32: slots are n_keys × n_handles, each of them read as a u32 count.
            let key = (slot / n_handles) as u32;
            let handle = self
                .handles
                .get(slot % n_handles)
                .copied()
                .unwrap_or_default();
            put_write(out, key, handle, value)?;
        }
        for (&(key, handle), fetched) in &self.fetched {
            if fetched.written {
                put_write(out, key, handle, fetched.value.as_deref())?;
            }
        }
        put_u32(out, self.n_timer_ops);
        out.extend_from_slice(&self.timer_ops);
        Ok(())
    }
}

fn put_write(
    out: &mut Vec<u8>,
    key: u32,
    handle: u32,
    value: Option<&[u8]>,
) -> Result<(), CodecError> {
    put_u32(out, key);
    put_u32(out, handle);
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put_bytes(out, value)?;
        }
    }
    Ok(())
}

/// The other direction of the codec — writing inputs and reading outputs, as the host does —
/// for the native test harness and the codec's own tests.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod host_side {
    use super::{CodecError, Reader, VERSION, put_bytes, put_u32};
    use crate::testing::Emitted;

    /// A batch to encode as the host would.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct InputBatch {
        pub(crate) keys: Vec<Vec<u8>>,
        pub(crate) handles: Vec<u32>,
        /// Key-major, `keys.len() × handles.len()`.
        pub(crate) slots: Vec<Option<Vec<u8>>>,
        /// The wall clock of the call.
        pub(crate) processing_time: i64,
        /// The records of a `process` input (ignored when `timers` has any).
        pub(crate) records: Vec<InputRecord>,
        /// The timers of an `on-timer` input.
        pub(crate) timers: Vec<InputTimer>,
    }

    /// One fired timer of an `on-timer` [`InputBatch`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct InputTimer {
        pub(crate) key_index: u32,
        pub(crate) timer: crate::Timer,
        pub(crate) watermark: i64,
    }

    /// One record of an [`InputBatch`].
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct InputRecord {
        pub(crate) key_index: u32,
        pub(crate) timestamp: i64,
        pub(crate) watermark: i64,
        pub(crate) value: Vec<u8>,
        pub(crate) headers: Vec<(String, String)>,
    }

    fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), CodecError> {
        let len = u32::try_from(len)
            .map_err(|_| CodecError::new(out.len(), format!("count {len} exceeds u32")))?;
        put_u32(out, len);
        Ok(())
    }

    impl InputBatch {
        pub(crate) fn encode(&self) -> Result<Vec<u8>, CodecError> {
            let mut out = vec![VERSION];
            out.extend_from_slice(&self.processing_time.to_le_bytes());
            put_len(&mut out, self.keys.len())?;
            for key in &self.keys {
                put_bytes(&mut out, key)?;
            }
            put_len(&mut out, self.handles.len())?;
            for handle in &self.handles {
                put_u32(&mut out, *handle);
            }
            for slot in &self.slots {
                match slot {
                    None => out.push(0),
                    Some(value) => {
                        out.push(1);
                        put_bytes(&mut out, value)?;
                    }
                }
            }
            if !self.timers.is_empty() {
                put_len(&mut out, self.timers.len())?;
                for t in &self.timers {
                    put_u32(&mut out, t.key_index);
                    out.extend_from_slice(&t.timer.timestamp.to_le_bytes());
                    out.push(match t.timer.domain {
                        crate::TimeDomain::EventTime => 0,
                        crate::TimeDomain::ProcessingTime => 1,
                    });
                    out.extend_from_slice(&t.watermark.to_le_bytes());
                }
                return Ok(out);
            }
            put_len(&mut out, self.records.len())?;
            for record in &self.records {
                put_u32(&mut out, record.key_index);
                out.extend_from_slice(&record.timestamp.to_le_bytes());
                out.extend_from_slice(&record.watermark.to_le_bytes());
                put_bytes(&mut out, &record.value)?;
                put_len(&mut out, record.headers.len())?;
                for (name, value) in &record.headers {
                    put_bytes(&mut out, name.as_bytes())?;
                    put_bytes(&mut out, value.as_bytes())?;
                }
            }
            Ok(out)
        }
    }

    /// A decoded `process` result.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct OutputBatch {
        pub(crate) emits: Vec<Vec<Emitted>>,
        pub(crate) writes: Vec<ValueWrite>,
        pub(crate) timer_ops: Vec<TimerOp>,
    }

    /// One timer change of an [`OutputBatch`], made while handling input `item`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct TimerOp {
        pub(crate) item: u32,
        pub(crate) register: bool,
        pub(crate) timer: crate::Timer,
    }

    /// One value-state write of an [`OutputBatch`] (`value: None` = clear).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct ValueWrite {
        pub(crate) key_index: u32,
        pub(crate) handle: u32,
        pub(crate) value: Option<Vec<u8>>,
    }

    pub(crate) fn decode_output(buf: &[u8]) -> Result<OutputBatch, CodecError> {
        let mut reader = Reader::new(buf);
        let version = reader.u8("version")?;
        if version != VERSION {
            return Err(CodecError::new(0, format!("version {version}")));
        }
        let mut output = OutputBatch::default();
        let n_records = reader.count(4, "record count")?;
        for _ in 0..n_records {
            let n_emits = reader.count(12, "emit count")?;
            let mut emits = Vec::new();
            for _ in 0..n_emits {
                let key = reader.bytes("emit key")?.to_vec();
                let value = reader.bytes("emit value")?.to_vec();
                let n_headers = reader.count(8, "emit header count")?;
                let mut headers = Vec::new();
                for _ in 0..n_headers {
                    let name = reader.str("emit header name")?.to_owned();
                    let value = reader.str("emit header value")?.to_owned();
                    headers.push((name, value));
                }
                emits.push(Emitted {
                    key,
                    value,
                    headers,
                });
            }
            output.emits.push(emits);
        }
        let n_writes = reader.count(9, "write count")?;
        for _ in 0..n_writes {
            let key_index = reader.u32("write key index")?;
            let handle = reader.u32("write handle")?;
            let at = reader.pos();
            let value = match reader.u8("write op")? {
                0 => None,
                1 => Some(reader.bytes("write value")?.to_vec()),
                op => return Err(CodecError::new(at, format!("write op {op}"))),
            };
            output.writes.push(ValueWrite {
                key_index,
                handle,
                value,
            });
        }
        let n_ops = reader.count(14, "timer op count")?;
        for _ in 0..n_ops {
            let item = reader.u32("timer op item")?;
            let at = reader.pos();
            let register = match reader.u8("timer op")? {
                0 => false,
                1 => true,
                op => return Err(CodecError::new(at, format!("timer op {op}"))),
            };
            let at = reader.pos();
            let domain = match reader.u8("timer domain")? {
                0 => crate::TimeDomain::EventTime,
                1 => crate::TimeDomain::ProcessingTime,
                d => return Err(CodecError::new(at, format!("timer domain {d}"))),
            };
            let timestamp = reader.i64("timer timestamp")?;
            output.timer_ops.push(TimerOp {
                item,
                register,
                timer: crate::Timer { timestamp, domain },
            });
        }
        if reader.remaining() != 0 {
            return Err(CodecError::new(reader.pos(), "trailing bytes"));
        }
        Ok(output)
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::host_side::{InputBatch, InputRecord};
    use super::*;

    fn states() -> Vec<StateDescriptor> {
        ["count", "seen", "total"]
            .iter()
            .zip([StateKind::Value, StateKind::Map, StateKind::Value])
            .map(|(name, kind)| StateDescriptor {
                name: (*name).to_owned(),
                kind,
                schema_version: 1,
                ttl: None,
                codec: None,
            })
            .collect()
    }

    /// [`states`] with `count` (handle 0) and `total` (handle 2) refreshed on reads.
    fn refreshing_states() -> Vec<StateDescriptor> {
        let mut states = states();
        for handle in [0, 2] {
            states[handle].ttl = Some(crate::state::TtlConfig {
                ttl_ms: 1_000,
                update: TtlUpdate::OnReadAndWrite,
            });
        }
        states
    }

    fn sample() -> InputBatch {
        InputBatch {
            processing_time: 0,
            timers: Vec::new(),
            keys: vec![b"a".to_vec(), b"bb".to_vec()],
            handles: vec![2, 0],
            slots: vec![
                Some(b"a-total".to_vec()),
                None,
                None,
                Some(b"bb-count".to_vec()),
            ],
            records: vec![
                InputRecord {
                    watermark: 0,
                    key_index: 1,
                    timestamp: -5,
                    value: b"v1".to_vec(),
                    headers: vec![("h".into(), "x".into()), ("é".into(), String::new())],
                },
                InputRecord {
                    watermark: 0,
                    key_index: 0,
                    timestamp: 1_700_000_000_000,
                    value: Vec::new(),
                    headers: Vec::new(),
                },
            ],
        }
    }

    struct NoHost;

    impl HostState for NoHost {
        fn value_get(&mut self, _: u32, key: u32) -> Result<Option<Vec<u8>>, StateError> {
            Ok(Some(format!("fetched-{key}").into_bytes()))
        }
        fn map_get(&mut self, _: u32, _: u32, _: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn map_put(&mut self, _: u32, _: u32, _: &[u8], _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_remove(&mut self, _: u32, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_contains(&mut self, _: u32, _: u32, _: &[u8]) -> Result<bool, StateError> {
            unreachable!()
        }
        fn map_is_empty(&mut self, _: u32, _: u32) -> Result<bool, StateError> {
            unreachable!()
        }
        fn map_clear(&mut self, _: u32, _: u32) -> Result<(), StateError> {
            unreachable!()
        }
        fn map_entries(
            &mut self,
            _: u32,
            _: u32,
            _: Option<&[u8]>,
            _: u32,
        ) -> Result<crate::host::EntryPage, StateError> {
            unreachable!()
        }
        fn map_keys(
            &mut self,
            _: u32,
            _: u32,
            _: Option<&[u8]>,
            _: u32,
        ) -> Result<crate::host::KeyPage, StateError> {
            unreachable!()
        }
        fn list_get(&mut self, _: u32, _: u32) -> Result<Vec<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn list_add(&mut self, _: u32, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_add_all(&mut self, _: u32, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_update(&mut self, _: u32, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn list_clear(&mut self, _: u32, _: u32) -> Result<(), StateError> {
            unreachable!()
        }
        fn operator_list_get(&mut self, _: u32) -> Result<Vec<Vec<u8>>, StateError> {
            unreachable!()
        }
        fn operator_list_add(&mut self, _: u32, _: &[u8]) -> Result<(), StateError> {
            unreachable!()
        }
        fn operator_list_update(&mut self, _: u32, _: &[Vec<u8>]) -> Result<(), StateError> {
            unreachable!()
        }
        fn log(&mut self, _: crate::context::LogLevel, _: Option<u32>, _: &str) {}
    }

    #[test]
    fn input_round_trips_through_the_reader() {
        let batch = sample();
        let input = batch.encode().unwrap();
        let mut state = BatchState::default();
        let mut reader = state.begin(&input, &states()).unwrap();
        assert_eq!(state.n_keys(), 2);
        assert_eq!(state.key(&input, 1), b"bb");
        let mut host = NoHost;
        assert_eq!(
            state.value_get(&input, &mut host, 2, 0).unwrap(),
            Some(&b"a-total"[..])
        );
        assert_eq!(state.value_get(&input, &mut host, 0, 0).unwrap(), None);
        assert_eq!(state.value_get(&input, &mut host, 2, 1).unwrap(), None);
        assert_eq!(
            state.value_get(&input, &mut host, 0, 1).unwrap(),
            Some(&b"bb-count"[..])
        );
        assert_eq!(
            state.value_get(&input, &mut host, 1, 0),
            Err(StateError::BadHandle(1))
        );
        assert_eq!(
            state.value_get(&input, &mut host, 0, 2),
            Err(StateError::BadKey(2))
        );

        assert_eq!(reader.u32("n").unwrap(), 2);
        let first = read_record(&mut reader, 2).unwrap();
        assert_eq!(first.key_index, 1);
        assert_eq!(first.timestamp, -5);
        assert_eq!(first.value, b"v1");
        assert_eq!(first.n_headers, 2);
        let second = read_record(&mut reader, 2).unwrap();
        assert_eq!(second.timestamp, 1_700_000_000_000);
        assert_eq!(second.n_headers, 0);
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn writes_keep_only_the_last_one_per_key_and_handle() {
        let input = sample().encode().unwrap();
        let mut state = BatchState::default();
        state.begin(&input, &states()).unwrap();
        let mut host = NoHost;
        state.value_write(0, 1, Some(b"x".to_vec())).unwrap();
        state.value_write(0, 1, Some(b"y".to_vec())).unwrap();
        state.value_write(2, 0, None).unwrap();
        assert_eq!(
            state.value_get(&input, &mut host, 0, 1).unwrap(),
            Some(&b"y"[..])
        );
        assert_eq!(state.value_get(&input, &mut host, 2, 0).unwrap(), None);

        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        let mut expected = Vec::new();
        put_u32(&mut expected, 2);
        // key 0, handle 2 (position 0): clear
        put_u32(&mut expected, 0);
        put_u32(&mut expected, 2);
        expected.push(0);
        // key 1, handle 0 (position 1): set "y"
        put_u32(&mut expected, 1);
        put_u32(&mut expected, 0);
        expected.push(1);
        put_bytes(&mut expected, b"y").unwrap();
        put_u32(&mut expected, 0); // no timer changes
        assert_eq!(out, expected);
    }

    /// The writes of a result made by `write_output`: (key index, handle, value).
    fn writes_of(out: &[u8]) -> Vec<(u32, u32, Option<Vec<u8>>)> {
        let mut reader = Reader::new(out);
        let n = reader.u32("n").unwrap();
        let writes = (0..n)
            .map(|_| {
                let key = reader.u32("key").unwrap();
                let handle = reader.u32("handle").unwrap();
                let value = match reader.u8("op").unwrap() {
                    0 => None,
                    _ => Some(reader.bytes("value").unwrap().to_vec()),
                };
                (key, handle, value)
            })
            .collect();
        assert_eq!(reader.u32("timer ops").unwrap(), 0);
        writes
    }

    #[test]
    fn reads_that_restart_a_ttl_write_present_values_back() {
        let input = sample().encode().unwrap();
        let mut state = BatchState::default();
        state.begin(&input, &refreshing_states()).unwrap();
        let mut host = NoHost;
        // Present: `total` of "a", `count` of "bb". Absent: `count` of "a", `total` of "bb".
        for (handle, key) in [(2, 0), (0, 0), (2, 1), (0, 1), (0, 1)] {
            state.value_get(&input, &mut host, handle, key).unwrap();
        }
        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        assert_eq!(
            writes_of(&out),
            [
                (0, 2, Some(b"a-total".to_vec())),
                (1, 0, Some(b"bb-count".to_vec())),
            ]
        );

        // The batch's own writes win, whichever comes first; a read after a clear writes
        // nothing back.
        state.begin(&input, &refreshing_states()).unwrap();
        state.value_get(&input, &mut host, 2, 0).unwrap();
        state.value_write(2, 0, Some(b"new".to_vec())).unwrap();
        state.value_write(0, 1, None).unwrap();
        assert_eq!(state.value_get(&input, &mut host, 0, 1).unwrap(), None);
        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        assert_eq!(
            writes_of(&out),
            [(0, 2, Some(b"new".to_vec())), (1, 0, None)]
        );

        // Without on-read-and-write, reads write nothing.
        state.begin(&input, &states()).unwrap();
        state.value_get(&input, &mut host, 2, 0).unwrap();
        state.value_get(&input, &mut host, 0, 1).unwrap();
        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        assert_eq!(writes_of(&out), []);
    }

    #[test]
    fn reads_through_value_get_that_restart_a_ttl_write_back_too() {
        let mut batch = sample();
        batch.handles = vec![2];
        batch.slots = vec![None, None];
        let input = batch.encode().unwrap();
        let mut state = BatchState::default();
        state.begin(&input, &refreshing_states()).unwrap();
        let mut host = NoHost;
        assert_eq!(
            state.value_get(&input, &mut host, 0, 1).unwrap(),
            Some(&b"fetched-1"[..])
        );
        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        assert_eq!(writes_of(&out), [(1, 0, Some(b"fetched-1".to_vec()))]);
    }

    #[test]
    fn value_states_not_prefetched_are_read_through_the_host_once() {
        let mut batch = sample();
        batch.handles = vec![2];
        batch.slots = vec![None, None];
        let input = batch.encode().unwrap();
        let mut state = BatchState::default();
        state.begin(&input, &states()).unwrap();
        let mut host = NoHost;
        assert_eq!(
            state.value_get(&input, &mut host, 0, 1).unwrap(),
            Some(&b"fetched-1"[..])
        );
        state.value_write(0, 1, Some(b"z".to_vec())).unwrap();
        assert_eq!(
            state.value_get(&input, &mut host, 0, 1).unwrap(),
            Some(&b"z"[..])
        );
        let mut out = Vec::new();
        state.write_output(&input, &mut out).unwrap();
        assert_eq!(out[..4], 1u32.to_le_bytes());
        assert_eq!(out[4..12], [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_of_a_valid_batch_is_rejected() {
        let input = sample().encode().unwrap();
        for len in 0..input.len() {
            let truncated = &input[..len];
            let mut state = BatchState::default();
            let result = state.begin(truncated, &states()).and_then(|mut reader| {
                let n = reader.count(28, "record count")?;
                for _ in 0..n {
                    read_record(&mut reader, state.n_keys())?;
                }
                Ok(())
            });
            assert!(result.is_err(), "truncated to {len} bytes was accepted");
        }
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let mut state = BatchState::default();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1], "version 1"),
            (
                vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
                "key count is 4294967295",
            ),
            (
                [
                    vec![2, 0, 0, 0, 0, 0, 0, 0, 0],
                    0u32.to_le_bytes().to_vec(),
                    1u32.to_le_bytes().to_vec(),
                    1u32.to_le_bytes().to_vec(),
                ]
                .concat(),
                "prefetched handle 1 is not a value state",
            ),
            (
                [
                    vec![2, 0, 0, 0, 0, 0, 0, 0, 0],
                    0u32.to_le_bytes().to_vec(),
                    1u32.to_le_bytes().to_vec(),
                    9u32.to_le_bytes().to_vec(),
                ]
                .concat(),
                "prefetched handle 9 names no state",
            ),
            (
                [
                    vec![2, 0, 0, 0, 0, 0, 0, 0, 0],
                    0u32.to_le_bytes().to_vec(),
                    2u32.to_le_bytes().to_vec(),
                    0u32.to_le_bytes().to_vec(),
                    0u32.to_le_bytes().to_vec(),
                ]
                .concat(),
                "prefetched twice",
            ),
            (
                [
                    vec![2, 0, 0, 0, 0, 0, 0, 0, 0],
                    1u32.to_le_bytes().to_vec(),
                    0u32.to_le_bytes().to_vec(),
                    1u32.to_le_bytes().to_vec(),
                    0u32.to_le_bytes().to_vec(),
                    vec![7],
                ]
                .concat(),
                "slot present flag is 7",
            ),
        ];
        for (input, message) in cases {
            let error = state.begin(&input, &states()).err().unwrap();
            assert!(
                error.to_string().contains(message),
                "{error} does not mention {message}"
            );
        }
    }

    #[test]
    fn records_with_bad_key_indexes_or_utf8_are_rejected() {
        let mut batch = sample();
        batch.records[0].key_index = 2;
        let input = batch.encode().unwrap();
        let mut state = BatchState::default();
        let mut reader = state.begin(&input, &states()).unwrap();
        reader.u32("n").unwrap();
        let error = read_record(&mut reader, state.n_keys()).unwrap_err();
        assert!(error.to_string().contains("outside the key table"));

        let mut buf = Vec::new();
        put_u32(&mut buf, 0);
        buf.extend_from_slice(&0i64.to_le_bytes());
        buf.extend_from_slice(&0i64.to_le_bytes());
        put_bytes(&mut buf, b"").unwrap();
        put_u32(&mut buf, 1);
        put_bytes(&mut buf, &[0xff]).unwrap();
        put_bytes(&mut buf, b"v").unwrap();
        let error = read_record(&mut Reader::new(&buf), 1).unwrap_err();
        assert!(error.to_string().contains("header name is not UTF-8"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic fuzz: xorshift-generated buffers, and mutations of a valid one.
        let valid = sample().encode().unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut input = if round % 2 == 0 {
                valid.clone()
            } else {
                (0..(next() % 64)).map(|_| next() as u8).collect()
            };
            if !input.is_empty() {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
            }
            let mut state = BatchState::default();
            if let Ok(mut reader) = state.begin(&input, &states())
                && let Ok(n) = reader.count(20, "record count")
            {
                for _ in 0..n {
                    if read_record(&mut reader, state.n_keys()).is_err() {
                        break;
                    }
                }
            }
            let _ = host_side::decode_output(&input);
        }
    }
}
