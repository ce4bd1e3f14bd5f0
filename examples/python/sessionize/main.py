"""`sessionize`: cuts each user's clickstream into sessions — runs of clicks less than 30
minutes apart, in event time — and emits one summary per session when it is over (a port of
examples/sessionize).

Input: key = the user; value = `{"user":"u1","page":"/home"}`; the record's timestamp is
when the click happened. Clicks may arrive out of order (the job's `max-out-of-orderness`
says how far); a late click can still extend a session, or bridge two into one, until the
watermark passes the session's end.

Output, keyed by the user, once per session when the watermark passes 30 minutes after its
last click: `{"user":"u1","start":…,"end":…,"clicks":7,"pages":["/home","/cart"]}` —
`start` and `end` the timestamps of its first and last click, `pages` the pages visited,
each once, in the order of their first visit.

Config: `{"gap-ms": 1800000}` (the default; positive).

State: the session windows of `eddy_sdk.window` named `sessions`: `sessions/windows` (the
user's open sessions) and `sessions/elements` (their clicks' pages).
"""

import json

import eddy_sdk as eddy
from eddy_sdk.window import SessionWindows

#: The default `gap-ms`: 30 minutes without a click end a session.
DEFAULT_GAP_MS = 30 * 60_000

# What the Rust example's serde_json writes: compact, non-ASCII unescaped.
_SUMMARY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def summarize(key, window, clicks):
    """One session's summary from its clicks' `(timestamp, page)`, in timestamp order."""
    pages = []
    for _, page in clicks:
        if page not in pages:
            pages.append(page)
    return {
        "user": key.decode(errors="replace"),
        "start": clicks[0][0],
        "end": clicks[-1][0],
        "clicks": len(clicks),
        "pages": pages,
    }


def emit(ctx, fired):
    """Emits the summaries of the sessions that fired."""
    for session in fired:
        ctx.emit(ctx.key, _SUMMARY.encode(session.result))


class Sessionize(eddy.Operator):
    """Sessionizes clicks per user."""

    name = "sessionize"
    version = "0.1.0"

    def open(self, states):
        self.sessions = SessionWindows.with_gap(DEFAULT_GAP_MS).process(
            states, "sessions", summarize)

    def init(self, config):
        unknown = sorted(set(config) - {"gap-ms"})
        if unknown:
            raise eddy.InvalidConfig(
                f"sessionize config: unknown field `{unknown[0]}`, expected `gap-ms`")
        try:
            self.sessions.reconfigure(SessionWindows.with_gap(config.get("gap-ms", DEFAULT_GAP_MS)))
        except eddy.InvalidConfig as error:
            raise error.with_context("sessionize config") from None

    def process(self, ctx, record):
        click = record.json()
        user = click.get("user") if isinstance(click, dict) else None
        page = click.get("page") if isinstance(click, dict) else None
        if not isinstance(user, str) or not isinstance(page, str):
            raise eddy.Failed(
                'the value must be a JSON object with string fields "user" and "page"')
        if user.encode() != record.key:
            raise eddy.Failed(
                f"user {json.dumps(user)} does not match the record key "
                f"{json.dumps(record.key.decode(errors='replace'))}; key the stream by user")
        # Without allowed lateness a session never fires twice, and the host keeps late
        # clicks from the operator: nothing fires or drops here, but handle it anyway.
        emit(ctx, self.sessions.add(ctx, page))

    def on_timer(self, ctx, timer):
        emit(ctx, self.sessions.on_timer(ctx, timer) or [])


Operator = eddy.export(Sessionize)
