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
Commands and the config are checked as the Rust fixture's serde derives check them, with
serde's messages minus serde_json's ` at line L column C` suffix.
"""

import json
import unicodedata
from datetime import timedelta

import eddy_sdk as eddy

#: The TTL every state of the probe is declared with.
TTL_MS = 4_000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- serde, as far as the command and the config need it ----------------------------------

def rust_debug(text):
    """`format!("{text:?}")` of a Rust `str`."""
    out = ['"']
    for c in text:
        if c == "\0":
            out.append("\\0")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif " " <= c <= "~":
            out.append(c)
        elif not c.isprintable() or unicodedata.category(c) in ("Mn", "Me"):
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def unexpected(value):
    """How serde_json names a JSON value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {rust_debug(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


class _Object(dict):
    """A JSON object that remembers its entries in document order (duplicates too)."""

    pairs = ()


def _object(pairs):
    obj = _Object(pairs)
    obj.pairs = pairs
    return obj


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(data, error=eddy.Failed):
    """The JSON document in `data` (UTF-8), as serde_json reads it (no NaN / Infinity)."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise error(str(e)) from None


def check_field(value, optional):
    """A `String` field (`Option<String>` when `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise eddy.Failed(f"invalid type: {unexpected(value)}, expected a string")
    return value


def decode_struct(doc, struct, fields, deny_unknown=False):
    """The fields of a serde-derived struct of `String` / `Option<String>` fields (`fields`:
    name -> optional), from a JSON object (or array, as serde accepts), in serde's order of
    checks: each entry in document order, then the missing fields."""
    if isinstance(doc, dict):
        seen = {}
        for key, value in getattr(doc, "pairs", None) or doc.items():
            if key in fields:
                if key in seen:
                    raise eddy.Failed(f"duplicate field `{key}`")
                seen[key] = check_field(value, fields[key])
            elif deny_unknown:
                expected = " or ".join(f"`{n}`" for n in fields)
                raise eddy.Failed(f"unknown field `{key}`, expected {expected}")
        for name, optional in fields.items():
            if name not in seen:
                if not optional:
                    raise eddy.Failed(f"missing field `{name}`")
                seen[name] = None
        return seen
    if isinstance(doc, list):
        names = list(fields)
        if len(doc) > len(names):
            raise eddy.Failed("trailing characters")
        seen = {}
        for index, name in enumerate(names):
            if index < len(doc):
                seen[name] = check_field(doc[index], fields[name])
            elif fields[name]:
                seen[name] = None
            else:
                raise eddy.Failed(
                    f"invalid length {len(doc)}, expected struct {struct} with {len(names)} elements")
        return seen
    raise eddy.Failed(f"invalid type: {unexpected(doc)}, expected struct {struct}")


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
        # The SDK hands over the parsed config; serde would have read the same JSON text.
        try:
            update = decode_struct(config, "Config", {"update": True}, deny_unknown=True)["update"]
        except eddy.Failed as error:
            raise eddy.InvalidConfig(f"ttl-probe config: {error.message}") from None
        if update is None or update == "on-create-and-write":
            self.read_too = False
        elif update == "on-read-and-write":
            self.read_too = True
        else:
            raise eddy.InvalidConfig(
                f"ttl-probe config: update {rust_debug(update)} is neither "
                '"on-create-and-write" nor "on-read-and-write"')

    def process(self, ctx, record):
        command = decode_struct(parse_json(record.value), "Command", {"op": False, "value": True})
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
            raise eddy.Failed(f"ttl-probe: unknown op {rust_debug(op)}")


Operator = eddy.export(TtlProbe)
