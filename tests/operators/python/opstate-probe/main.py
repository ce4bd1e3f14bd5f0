"""`opstate-probe` in Python: non-keyed operator state, for the host's operator-state
calls, checkpoints and redistribution. A port of the Rust fixture
`tests/operators/opstate-probe/src/lib.rs` (the integration tests in
tests/tests/integration/operator_state.rs run unchanged against both).

Operator states (lists of strings, JSON codec, schema version 1):
- `buffer`, redistributed by even split;
- `rules`, redistributed by union.

Input: JSON records `{"key": …, "op": …, "item": …}`:

| op | does | emits |
|----|------|-------|
| `buffer` | adds `item` to `buffer` | nothing |
| `rule` | adds `item` to `rules` | nothing |
| `clear-buffer` | empties `buffer` (an update with an empty list) | nothing |
| `dump` | reads both | `{"buffer":[…],"rules":[…]}` under the record key, each list sorted |
| `fail` | adds `item` to `buffer`, then returns an error | nothing (the call fails) |

When an instance starts, `init_state` reads both lists and logs
`opstate-probe: init sees buffer=<n> rules=<m>` at info. No config.

The command is checked as the Rust fixture's serde derive checks it (`op` a string, `item`
a string or null, other fields ignored), with serde's messages minus serde_json's
` at line L column C` suffix.
"""

import json
import unicodedata

import eddy_sdk as eddy

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- serde, as far as the command needs it ------------------------------------------------

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


def parse_json(data):
    """The JSON document in `data` (UTF-8), as serde_json reads it (no NaN / Infinity)."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise eddy.Failed(str(error)) from None


def check_field(name, value, optional):
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
                seen[key] = check_field(key, value, fields[key])
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
                seen[name] = check_field(name, doc[index], fields[name])
            elif fields[name]:
                seen[name] = None
            else:
                raise eddy.Failed(
                    f"invalid length {len(doc)}, expected struct {struct} with {len(names)} elements")
        return seen
    raise eddy.Failed(f"invalid type: {unexpected(doc)}, expected struct {struct}")


# -- the probe ------------------------------------------------------------------------------

def item(command):
    """The command's `item`, which its op needs."""
    if command["item"] is None:
        raise eddy.Failed(f"opstate-probe: `{command['op']}` needs a string `item`")
    return command["item"]


class OpstateProbe(eddy.Operator):
    """See the module docs."""

    name = "opstate-probe"
    version = "0.1.0"

    def open(self, states):
        self.buffer = states.operator_list(
            "buffer", redistribution=eddy.Redistribution.EVEN_SPLIT, codec=eddy.JSON)
        self.rules = states.operator_list(
            "rules", redistribution=eddy.Redistribution.UNION, codec=eddy.JSON)

    def init_state(self, ctx):
        buffer = len(self.buffer.get())
        rules = len(self.rules.get())
        ctx.log(eddy.LogLevel.INFO, f"opstate-probe: init sees buffer={buffer} rules={rules}")

    def process(self, ctx, record):
        command = decode_struct(parse_json(record.value), "Command", {"op": False, "item": True})
        op = command["op"]
        if op == "buffer":
            self.buffer.add(item(command))
        elif op == "rule":
            self.rules.add(item(command))
        elif op == "clear-buffer":
            self.buffer.clear()
        elif op == "dump":
            buffer = sorted(self.buffer.get())
            rules = sorted(self.rules.get())
            ctx.emit(record.key, _dumps({"buffer": buffer, "rules": rules}))
        elif op == "fail":
            self.buffer.add(item(command))
            raise eddy.Failed("opstate-probe: asked to fail")
        else:
            raise eddy.Failed(f"opstate-probe: unknown op {rust_debug(op)}")


Operator = eddy.export(OpstateProbe)
