"""`state-probe` in Python: runs one state operation per record, through the SDK, and emits
the answer, so an integration test can check every state call end to end. A port of the
Rust fixture `tests/operators/state-probe/src/lib.rs`: the same commands, states and
answers (the integration tests run the same script against both components).

Input: key = the state key; value = a JSON command `{"op": …, …}`. Every command emits
exactly one record (same key) whose value is `{"ok":true}` or `{"value":…}` (compact JSON,
as serde_json writes it), except `emit-many` (emits `n` records `{"index":i}`), `fail`
(returns an error) and `trap` (traps the instance).

| op | fields | answer |
|----|--------|--------|
| `value-set` / `value-get` / `value-clear` | `v` (set) | `value`: string or null |
| `map-put` / `map-get` / `map-remove` / `map-contains` | `k`, `v` (put) | `value`: string or null / bool |
| `map-is-empty` / `map-clear` | | `value`: bool / ok |
| `map-entries` / `map-keys` | `page` (optional page size) | `value`: `[[k,v],…]` / `[k,…]` |
| `list-add` / `list-add-all` / `list-update` / `list-get` / `list-clear` | `v` / `vs` | `value`: `[…]` |
| `reducing-add` / `reducing-get` | `n` (i64) | `value`: sum or null |
| `aggregating-add` / `aggregating-get` | `n` (i64) | `value`: mean (float) or null |
| `log` | `v` (message, logged at info) | ok |
| `timestamp` / `headers` | | `value`: the record's timestamp / headers object |
| `emit-headers` | `headers` (object) | ok, emitted with those headers |
| `emit-many` | `n` | `n` records `{"index":i}` |
| `fail` / `trap` | | an error / a trap |
| `write-then-fail` / `write-then-trap` | `v` | sets `value`, puts `map[v] = v`, adds `v` to `list`, then fails / traps |

States: `value` (value, string), `map` (map, string → string), `list` (list, string),
`sum` (reducing, i64), `average` (aggregating, accumulator `[sum, count]`). The codec is
JSON (the Rust probe's is postcard), so map entries come in the byte order of the quoted
keys: `"k1"` < `"k10"` < `"k2"`, where the Rust probe puts shorter keys first. The
integration scripts use keys on which both orders agree.
"""

import json

import eddy_sdk as eddy

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U32_MAX = 2**32 - 1

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def saturating_add(a, b):
    """`i64::saturating_add`."""
    return max(I64_MIN, min(I64_MAX, a + b))


class Average(eddy.AggregateFunction):
    """The mean of the inputs; the accumulator is `[sum, count]`."""

    def create_accumulator(self):
        return [0, 0]

    def add(self, value, accumulator):
        return [saturating_add(accumulator[0], value), accumulator[1] + 1]

    def get_result(self, accumulator):
        return accumulator[0] / max(accumulator[1], 1)


def field(command, name, kind, optional=False):
    """Field `name` of the command, checked as serde would check it."""
    if name not in command or (optional and command[name] is None):
        if optional:
            return None
        raise eddy.Failed(f"missing field `{name}`")
    value = command[name]
    ok = {
        "string": lambda v: isinstance(v, str),
        "strings": lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
        "i64": lambda v: type(v) is int and I64_MIN <= v <= I64_MAX,
        "u32": lambda v: type(v) is int and 0 <= v <= U32_MAX,
        "headers": lambda v: isinstance(v, dict) and all(isinstance(s, str) for s in v.values()),
    }[kind](value)
    if not ok:
        raise eddy.Failed(f"invalid type for field `{name}`: expected {kind}, got {value!r}")
    return value


def ok():
    return {"ok": True}


def answer(value):
    return {"value": value}


class StateProbe(eddy.Operator):
    """The probe."""

    name = "state-probe"
    version = "0.1.0"

    def open(self, states):
        self.value = states.value("value")
        self.map = states.map("map")
        self.list = states.list("list")
        self.sum = states.reducing("sum", saturating_add)
        self.average = states.aggregating("average", Average())

    def write_everything(self, ctx, record, v):
        """Touches every kind of state and emits: none of it may survive a failure after it."""
        self.value.set(v)
        self.map.put(v, v)
        self.list.add(v)
        ctx.emit(record.key, "must not be emitted")

    def process(self, ctx, record):
        command = json.loads(record.value)
        if not isinstance(command, dict) or not isinstance(command.get("op"), str):
            raise eddy.Failed("a command is an object with a string field `op`")
        op = command["op"]
        if op == "write-then-fail":
            self.write_everything(ctx, record, field(command, "v", "string"))
            raise eddy.Failed("state-probe: asked to fail after writing")
        if op == "write-then-trap":
            self.write_everything(ctx, record, field(command, "v", "string"))
            eddy.trap("state-probe: asked to trap")
        if op == "value-set":
            self.value.set(field(command, "v", "string"))
            result = ok()
        elif op == "value-get":
            result = answer(self.value.get())
        elif op == "value-clear":
            self.value.clear()
            result = ok()
        elif op == "map-put":
            k, v = field(command, "k", "string"), field(command, "v", "string")
            self.map.put(k, v)
            result = ok()
        elif op == "map-get":
            result = answer(self.map.get(field(command, "k", "string")))
        elif op == "map-remove":
            self.map.remove(field(command, "k", "string"))
            result = ok()
        elif op == "map-contains":
            result = answer(self.map.contains(field(command, "k", "string")))
        elif op == "map-is-empty":
            result = answer(self.map.is_empty())
        elif op == "map-clear":
            self.map.clear()
            result = ok()
        elif op == "map-entries":
            page = field(command, "page", "u32", optional=True)
            entries = self.map.entries() if page is None else self.map.entries(page)
            result = answer([[k, v] for k, v in entries])
        elif op == "map-keys":
            page = field(command, "page", "u32", optional=True)
            keys = self.map.keys() if page is None else self.map.keys(page)
            result = answer(list(keys))
        elif op == "list-add":
            self.list.add(field(command, "v", "string"))
            result = ok()
        elif op == "list-add-all":
            self.list.add_all(field(command, "vs", "strings"))
            result = ok()
        elif op == "list-update":
            self.list.update(field(command, "vs", "strings"))
            result = ok()
        elif op == "list-get":
            result = answer(self.list.get())
        elif op == "list-clear":
            self.list.clear()
            result = ok()
        elif op == "reducing-add":
            self.sum.add(field(command, "n", "i64"))
            result = ok()
        elif op == "reducing-get":
            result = answer(self.sum.get())
        elif op == "aggregating-add":
            self.average.add(field(command, "n", "i64"))
            result = ok()
        elif op == "aggregating-get":
            result = answer(self.average.get())
        elif op == "log":
            ctx.log(eddy.LogLevel.INFO, field(command, "v", "string"))
            result = ok()
        elif op == "timestamp":
            result = answer(record.timestamp)
        elif op == "headers":
            # serde_json's map: sorted by name, the last of a repeated name wins.
            result = answer(dict(sorted(dict(record.headers).items())))
        elif op == "emit-headers":
            headers = field(command, "headers", "headers")
            ctx.emit(record.key, _dumps(ok()), sorted(headers.items()))
            return
        elif op == "emit-many":
            for index in range(field(command, "n", "u32")):
                ctx.emit(record.key, _dumps({"index": index}))
            return
        elif op == "fail":
            raise eddy.Failed("state-probe: asked to fail")
        elif op == "trap":
            eddy.trap("state-probe: asked to trap")
        else:
            raise eddy.Failed(f"unknown variant `{op}`")
        ctx.emit(record.key, _dumps(result))


Operator = eddy.export(StateProbe)
