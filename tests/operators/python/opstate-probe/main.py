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

The command is checked for what the probe needs (`op` a string, `item` a string or null,
other fields ignored); no test reads the messages of malformed ones.
"""

import json

import eddy_sdk as eddy

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
        command = string_fields(record.json(), ["op", "item"])
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
            # json.dumps, not _dumps: it escapes what is not ASCII, so a lone surrogate
            # (`"\ud800"` in the record) still makes a UTF-8 message.
            raise eddy.Failed(f"opstate-probe: unknown op {json.dumps(op)}")


Operator = eddy.export(OpstateProbe)
