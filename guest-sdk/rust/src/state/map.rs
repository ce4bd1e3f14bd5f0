//! [`MapState`]: a map per key, iterated in pages.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{decode, encode};
use crate::context::Context;
use crate::error::{Error, StateError};
use crate::host::HostState;

/// How many entries [`MapState::entries`] and [`MapState::keys`] ask the host for at a time,
/// unless told otherwise with `page_size`.
pub const DEFAULT_PAGE_SIZE: u32 = 256;

/// A map from `K` to `V` per key.
///
/// Every call crosses to the host (map state is not prefetched). Map keys are encoded with
/// postcard, and the host orders entries by those **encoded bytes**, which is not the natural
/// order of `K`: a `String` encodes as its length (a varint) then its bytes, so shorter
/// strings come first; integers encode as varints (signed ones zigzagged). Sort what you
/// iterate if you need another order.
///
/// Lookups take any borrowed form of the key that serializes the same way, e.g. `&str` for a
/// `String` key.
pub struct MapState<K, V> {
    handle: u32,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for MapState<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for MapState<K, V> {}

impl<K, V> MapState<K, V> {
    /// The state's handle (its index in `operator-info.states`).
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

impl<K, V> fmt::Debug for MapState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapState")
            .field("handle", &self.handle)
            .finish()
    }
}

impl<K, V> MapState<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    pub(crate) fn new(handle: u32) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }

    fn call<R>(
        &self,
        ctx: &mut Context<'_>,
        what: &str,
        call: impl FnOnce(&mut dyn HostState, u32) -> Result<R, StateError>,
    ) -> Result<R, Error> {
        let (host, key) = ctx.host();
        call(host, key).map_err(|error| ctx.state_error(self.handle, what, error))
    }

    /// The value under `key`, if any.
    pub fn get<Q>(&self, ctx: &mut Context<'_>, key: &Q) -> Result<Option<V>, Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let map_key = encode(ctx, self.handle, "cannot encode map key", key)?;
        let handle = self.handle;
        match self.call(ctx, "get", |host, k| host.map_get(handle, k, &map_key))? {
            Some(bytes) => decode(ctx, handle, "cannot decode map value", &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Puts `value` under `key`, replacing any value there.
    pub fn put<Q>(&self, ctx: &mut Context<'_>, key: &Q, value: &V) -> Result<(), Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let map_key = encode(ctx, self.handle, "cannot encode map key", key)?;
        let value = encode(ctx, self.handle, "cannot encode map value", value)?;
        let handle = self.handle;
        self.call(ctx, "put", |host, k| {
            host.map_put(handle, k, &map_key, &value)
        })
    }

    /// Removes `key` (nothing happens when it is absent).
    pub fn remove<Q>(&self, ctx: &mut Context<'_>, key: &Q) -> Result<(), Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let map_key = encode(ctx, self.handle, "cannot encode map key", key)?;
        let handle = self.handle;
        self.call(ctx, "remove", |host, k| {
            host.map_remove(handle, k, &map_key)
        })
    }

    /// Whether the map holds `key`.
    pub fn contains<Q>(&self, ctx: &mut Context<'_>, key: &Q) -> Result<bool, Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let map_key = encode(ctx, self.handle, "cannot encode map key", key)?;
        let handle = self.handle;
        self.call(ctx, "contains", |host, k| {
            host.map_contains(handle, k, &map_key)
        })
    }

    /// Whether the map is empty.
    pub fn is_empty(&self, ctx: &mut Context<'_>) -> Result<bool, Error> {
        let handle = self.handle;
        self.call(ctx, "is-empty", |host, k| host.map_is_empty(handle, k))
    }

    /// Removes every entry.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<(), Error> {
        let handle = self.handle;
        self.call(ctx, "clear", |host, k| host.map_clear(handle, k))
    }

    /// The entries, in the byte order of the encoded keys, fetched from the host a page
    /// ([`DEFAULT_PAGE_SIZE`] entries, or [`MapEntries::page_size`]) at a time, so a large
    /// map never crosses the boundary at once.
    ///
    /// The iterator borrows the context: to change the map while iterating, collect what to
    /// change first. (Changes behind the cursor are safe: each page starts after the last key
    /// of the previous one.)
    pub fn entries<'c, 'a>(&self, ctx: &'c mut Context<'a>) -> MapEntries<'c, 'a, K, V> {
        MapEntries {
            pages: Pages::new(ctx, self.handle),
            page: Vec::new().into_iter(),
            _types: PhantomData,
        }
    }

    /// The keys, in the byte order of their encoding, paged like [`entries`](Self::entries).
    pub fn keys<'c, 'a>(&self, ctx: &'c mut Context<'a>) -> MapKeys<'c, 'a, K> {
        MapKeys {
            pages: Pages::new(ctx, self.handle),
            page: Vec::new().into_iter(),
            _types: PhantomData,
        }
    }
}

/// The cursor bookkeeping shared by [`MapEntries`] and [`MapKeys`].
struct Pages<'c, 'a> {
    ctx: &'c mut Context<'a>,
    handle: u32,
    page_size: u32,
    cursor: Option<Vec<u8>>,
    done: bool,
}

impl<'c, 'a> Pages<'c, 'a> {
    fn new(ctx: &'c mut Context<'a>, handle: u32) -> Self {
        Self {
            ctx,
            handle,
            page_size: DEFAULT_PAGE_SIZE,
            cursor: None,
            done: false,
        }
    }

    /// Fetches the next page with `fetch`, which gets (host, handle, key index, cursor, max)
    /// and returns the page's items and next cursor. `None` at the end.
    fn next_page<T>(
        &mut self,
        what: &str,
        fetch: impl FnOnce(
            &mut dyn HostState,
            u32,
            u32,
            Option<&[u8]>,
            u32,
        ) -> Result<(Vec<T>, Option<Vec<u8>>), StateError>,
    ) -> Option<Result<Vec<T>, Error>> {
        if self.done {
            return None;
        }
        let (host, key) = self.ctx.host();
        match fetch(
            host,
            self.handle,
            key,
            self.cursor.as_deref(),
            self.page_size,
        ) {
            Ok((items, next)) => {
                if items.is_empty() && next.is_some() && next == self.cursor {
                    self.done = true;
                    return Some(Err(self.ctx.state_error(
                        self.handle,
                        what,
                        "the host returned an empty page that does not advance the cursor",
                    )));
                }
                self.done = next.is_none();
                self.cursor = next;
                Some(Ok(items))
            }
            Err(error) => {
                self.done = true;
                Some(Err(self.ctx.state_error(self.handle, what, error)))
            }
        }
    }
}

/// Iterator over a map's entries; see [`MapState::entries`].
pub struct MapEntries<'c, 'a, K, V> {
    pages: Pages<'c, 'a>,
    page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> MapEntries<'_, '_, K, V> {
    /// How many entries to fetch per host call (at least 1; the host may cap it).
    #[must_use]
    pub fn page_size(mut self, entries: u32) -> Self {
        self.pages.page_size = entries.max(1);
        self
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned> Iterator for MapEntries<'_, '_, K, V> {
    type Item = Result<(K, V), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((key, value)) = self.page.next() {
                let ctx = &*self.pages.ctx;
                let handle = self.pages.handle;
                return Some(
                    decode(ctx, handle, "cannot decode map key", &key).and_then(|key| {
                        decode(ctx, handle, "cannot decode map value", &value)
                            .map(|value| (key, value))
                    }),
                );
            }
            let page = self
                .pages
                .next_page("entries", |host, handle, key, cursor, max| {
                    host.map_entries(handle, key, cursor, max)
                        .map(|page| (page.entries, page.next))
                })?;
            match page {
                Ok(entries) => self.page = entries.into_iter(),
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// Iterator over a map's keys; see [`MapState::keys`].
pub struct MapKeys<'c, 'a, K> {
    pages: Pages<'c, 'a>,
    page: std::vec::IntoIter<Vec<u8>>,
    _types: PhantomData<fn() -> K>,
}

impl<K> MapKeys<'_, '_, K> {
    /// How many keys to fetch per host call (at least 1; the host may cap it).
    #[must_use]
    pub fn page_size(mut self, keys: u32) -> Self {
        self.pages.page_size = keys.max(1);
        self
    }
}

impl<K: DeserializeOwned> Iterator for MapKeys<'_, '_, K> {
    type Item = Result<K, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(decode(
                    self.pages.ctx,
                    self.pages.handle,
                    "cannot decode map key",
                    &key,
                ));
            }
            let page = self
                .pages
                .next_page("keys", |host, handle, key, cursor, max| {
                    host.map_keys(handle, key, cursor, max)
                        .map(|page| (page.keys, page.next))
                })?;
            match page {
                Ok(keys) => self.page = keys.into_iter(),
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
