"""`ttl-probe` in Python: keyed state with a time to live, for the host's TTL enforcement. A
port of the Rust fixture `tests/operators/ttl-probe/src/lib.rs` (the integration tests in
tests/tests/integration/state_ttl.rs run unchanged against both).

Input: JSON records `{"key": …, "op": …, …}`, keyed by `key`. Every op works on the
record key's state:

| op | fields | does | emits |
|----|--------|------|-------|
| `put` | `value` (string) | sets `v` to it, puts `m[value] = value`, adds it to `l` | nothing |
| `get` | | reads `v`, the keys of `m`, the items of `l` | `{"key":…,"v":…,"m":[…],"l":[…]}` |
| `touch-v` | | reads `v` | nothing |
| `touch-m` | | reads every entry of `m` (through `map-keys`) | nothing |
| `touch-l` | | reads `l` (through `list-get`) | nothing |

`get` emits, under the record key, `{"key":<record key>,"v":<value or null>,"m":[<map
keys, sorted>],"l":[<list items, oldest first>]}`, fields in that order. Every read
restarts the TTL under `on-read-and-write`, `get`'s too.

Config: `{"update": "on-create-and-write" | "on-read-and-write"}` (default
`on-create-and-write`). The host reads state descriptors through `describe`, which gets
no config, so the TTL is declared, not configured: every state lives 4,000 ms of
processing time after its last update. `update` picks the states the ops use:

| update | value (string) | map (string → string) | list (string) |
|--------|----------------|-----------------------|---------------|
| `on-create-and-write` | `v` | `m` | `l` |
| `on-read-and-write` | `v-rw` | `m-rw` | `l-rw` |

All six use the JSON codec (as the Rust fixture's do, so the stored bytes are the same).
Commands and the config are checked for what the probe needs (no test reads the messages
of malformed ones).
"""

import json
from datetime import timedelta

import eddy_sdk as eddy

#: The TTL every state of the probe is declared with.
TTL_MS = 4_000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- the command ----------------------------------------------------------------------------

def string_fields(doc, names):
    """The string fields `names` of a JSON object (None when absent); anything else fails."""
    if not isinstance(doc, dict):
        raise eddy.Failed("expected a JSON object")
    out = {}
    for name in names:
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise eddy.Failed(f"field `{name}`: expected a string")
        out[name] = value
    return out


# -- the probe ------------------------------------------------------------------------------

class States:
    """The states of one TTL update policy."""

    def __init__(self, states, suffix, update):
        ttl = timedelta(milliseconds=TTL_MS)
        options = {"ttl": ttl, "ttl_update": update, "codec": eddy.JSON}
        self.v = states.value(f"v{suffix}", **options)
        self.m = states.map(f"m{suffix}", **options)
        self.l = states.list(f"l{suffix}", **options)  # noqa: E741


class TtlProbe(eddy.Operator):
    """See the module docs."""

    name = "ttl-probe"
    version = "0.1.0"

    def open(self, states):
        self.on_write = States(states, "", eddy.TtlUpdate.ON_CREATE_AND_WRITE)
        self.on_read = States(states, "-rw", eddy.TtlUpdate.ON_READ_AND_WRITE)
        self.read_too = False

    def init(self, config):
        try:
            update = string_fields(config, ["update"])["update"]
            unknown = [name for name in config if name != "update"]
            if unknown:
                raise eddy.Failed(f"unknown field `{unknown[0]}`")
        except eddy.Failed as error:
            raise eddy.InvalidConfig(f"ttl-probe config: {error.message}") from None
        if update is None or update == "on-create-and-write":
            self.read_too = False
        elif update == "on-read-and-write":
            self.read_too = True
        else:
            raise eddy.InvalidConfig(
                f"ttl-probe config: update {json.dumps(update)} is neither "
                '"on-create-and-write" nor "on-read-and-write"')

    def process(self, ctx, record):
        command = string_fields(record.json(), ["op", "value"])
        states = self.on_read if self.read_too else self.on_write
        v, m, l = states.v, states.m, states.l  # noqa: E741
        op = command["op"]
        if op == "put":
            value = command["value"]
            if value is None:
                raise eddy.Failed("ttl-probe: `put` needs a string `value`")
            v.set(value)
            m.put(value, value)
            l.add(value)
        elif op == "get":
            got_v = v.get()
            got_m = sorted(m.keys())
            got = {"key": ctx.key_str(), "v": got_v, "m": got_m, "l": l.get()}
            ctx.emit(record.key, _dumps(got))
        elif op == "touch-v":
            v.get()
        elif op == "touch-m":
            for _ in m.keys():
                pass
        elif op == "touch-l":
            l.get()
        else:
            # json.dumps, not _dumps: it escapes what is not ASCII, so a lone surrogate
            # (`"\ud800"` in the record) still makes a UTF-8 message.
            raise eddy.Failed(f"ttl-probe: unknown op {json.dumps(op)}")


Operator = eddy.export(TtlProbe)
