"""`dedup`: drops an event a user repeats within a time window (a port of examples/dedup).

Input: key = the user; value = `{"user":"u1","event":"e17"}` (other fields are allowed and
passed through). A record is emitted unchanged unless the same user's same event id was
seen less than `window-ms` before the record's timestamp (every sighting counts, the
dropped ones too). Config: `{"window-ms": 60000}` (the default).

State: `seen`, a map per user from event id to the timestamp it was last seen, and
`swept-at`, when that map was last swept. At most once per window per user, the map is
iterated (in pages) and entries older than the window are removed, so it holds about two
windows of events. Both states live `QUIET_USER_TTL` of processing time after their last
write: the state of a user who stops sending is gone a day later.
"""

import json
from datetime import timedelta

import eddy_sdk as eddy

#: How long a user's state outlives their last event (processing time): one day.
QUIET_USER_TTL = timedelta(days=1)

#: The default `window-ms`: one minute.
DEFAULT_WINDOW_MS = 60_000


class Dedup(eddy.Operator):
    """Drops repeated events per user."""

    name = "dedup"
    version = "0.1.0"

    def open(self, states):
        self.seen = states.map("seen", ttl=QUIET_USER_TTL)
        self.swept_at = states.value("swept-at", ttl=QUIET_USER_TTL)
        self.window_ms = DEFAULT_WINDOW_MS

    def init(self, config):
        unknown = sorted(set(config) - {"window-ms"})
        if unknown:
            raise eddy.InvalidConfig(f"dedup config: unknown field `{unknown[0]}`, expected `window-ms`")
        window_ms = config.get("window-ms", DEFAULT_WINDOW_MS)
        if type(window_ms) is not int:
            raise eddy.InvalidConfig(f"dedup config: window-ms must be an integer, got {window_ms!r}")
        if window_ms <= 0:
            raise eddy.InvalidConfig(f"dedup config: window-ms must be positive, got {window_ms}")
        self.window_ms = window_ms

    def process(self, ctx, record):
        event = record.json()
        user = event.get("user") if isinstance(event, dict) else None
        event_id = event.get("event") if isinstance(event, dict) else None
        if not isinstance(user, str) or not isinstance(event_id, str):
            raise eddy.Failed('the value must be a JSON object with string fields "user" and "event"')
        if user.encode() != record.key:
            raise eddy.Failed(
                f"user {json.dumps(user)} does not match the record key "
                f"{json.dumps(record.key.decode(errors='replace'))}; key the stream by user")
        now = record.timestamp
        self.sweep(now)
        last_seen = self.seen.get(event_id)
        duplicate = last_seen is not None and now - last_seen < self.window_ms
        self.seen.put(event_id, now if last_seen is None else max(last_seen, now))
        if not duplicate:
            ctx.emit(record.key, record.value)

    def sweep(self, now):
        """Removes the entries that can no longer make a record a duplicate, at most once per
        window per user."""
        swept_at = self.swept_at.get()
        if swept_at is None:
            self.swept_at.set(now)
            return
        if now - swept_at < self.window_ms:
            return
        # Collect first, then remove (removing behind the cursor would be safe too).
        expired = [event for event, seen in self.seen.entries() if now - seen >= self.window_ms]
        for event in expired:
            self.seen.remove(event)
        self.swept_at.set(now)


Operator = eddy.export(Dedup)
