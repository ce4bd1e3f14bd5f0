//! The input record handed to [`Operator::process`](crate::Operator::process), borrowed from
//! the batch buffer without copying.

use std::fmt;

use crate::batch::{RawRecord, Reader};
use crate::error::Error;

/// One input record: key, value, event timestamp and headers, all borrowed from the batch.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    key: &'a [u8],
    raw: RawRecord<'a>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(key: &'a [u8], raw: RawRecord<'a>) -> Self {
        Self { key, raw }
    }

    /// The record's key (the bytes state is scoped to).
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The key as UTF-8 text; an error names the key's bytes when they are not UTF-8.
    pub fn key_str(&self) -> Result<&'a str, Error> {
        utf8(self.key, "key")
    }

    /// The record's value.
    pub fn value(&self) -> &'a [u8] {
        self.raw.value
    }

    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<&'a str, Error> {
        utf8(self.raw.value, "value")
    }

    /// The event timestamp in milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.raw.timestamp
    }

    /// The headers, in record order (names may repeat).
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            reader: Reader::new(self.raw.headers),
            remaining: self.raw.n_headers,
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value)
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key", &String::from_utf8_lossy(self.key))
            .field("value", &String::from_utf8_lossy(self.raw.value))
            .field("timestamp", &self.raw.timestamp)
            .field("headers", &self.headers().collect::<Vec<_>>())
            .finish()
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|error| {
        let shown: String = String::from_utf8_lossy(bytes).chars().take(64).collect();
        Error::failed(format!("record {what} {shown:?} is not UTF-8: {error}"))
    })
}

/// Iterator over a record's headers as `(name, value)` pairs.
#[derive(Clone)]
pub struct Headers<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The batch reader checked every header when it read the record.
        let name = self.reader.str("header name").ok()?;
        let value = self.reader.str("header value").ok()?;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}
