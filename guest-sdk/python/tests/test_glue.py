"""The component glue (`eddy_sdk._wasm`), run natively against the bindings componentize-py
generates (`componentize-py bindings`), with the `state` and `log` imports faked: the
WIT records it returns, the `operator-error` cases it raises, and the `state-error`s it
converts. Skipped when componentize-py is not found (set EDDY_COMPONENTIZE_PY, or build
the tools into target/tools/venv)."""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from datetime import timedelta
from pathlib import Path

import eddy_sdk as eddy
from eddy_sdk import runtime as sdk_runtime
from eddy_sdk.testing import _Batch, _decode_output, _MemoryHost, _Store

REPO = Path(__file__).resolve().parents[3]


def componentize_py():
    candidates = [os.environ.get("EDDY_COMPONENTIZE_PY"),
                  str(REPO / "target/tools/venv/bin/componentize-py"),
                  shutil.which("componentize-py")]
    return next((c for c in candidates if c and os.path.exists(c)), None)


class Probe(eddy.Operator):
    name = "glue-probe"
    version = "1.2.3"

    def open(self, states):
        self.count = states.value("count")
        self.seen = states.map("seen", schema_version=2, ttl=timedelta(seconds=1),
                               ttl_update=eddy.TtlUpdate.ON_READ_AND_WRITE)
        self.items = states.operator_list("items", redistribution=eddy.Redistribution.UNION)

    def init(self, config):
        if "bad" in config:
            raise eddy.InvalidConfig("bad config")

    def process(self, ctx, record):
        if record.value == b"trap":
            eddy.trap()
        if record.value == b"fail":
            raise ValueError("no")
        self.seen.put(record.value_str(), 1)
        self.count.set(self.count.get(0) + 1)
        ctx.log(eddy.LogLevel.DEBUG, "hi")
        ctx.emit(record.key, str(self.seen.contains(record.value_str())))


@unittest.skipUnless(componentize_py(), "componentize-py not found")
class Glue(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        subprocess.run([componentize_py(), "-d", str(REPO / "wit"), "-w", "operator-world",
                        "bindings", cls.dir], check=True, capture_output=True)
        sys.path.insert(0, cls.dir)
        cls.default_host = sdk_runtime.default_host
        from componentize_py_types import Err
        from wit_world.imports import log, state, types

        cls.Err, cls.types, cls.state, cls.log = Err, types, state, log
        cls.wasm = importlib.import_module("eddy_sdk._wasm")

    @classmethod
    def tearDownClass(cls):
        sys.path.remove(cls.dir)
        for name in list(sys.modules):
            if name.split(".")[0] in ("wit_world", "componentize_py_types") or name == "eddy_sdk._wasm":
                del sys.modules[name]
        if hasattr(eddy, "_wasm"):
            delattr(eddy, "_wasm")
        sdk_runtime.default_host = cls.default_host
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        info = sdk_runtime.Runtime.describe(Probe)
        self.store = _Store([s.kind for s in info.states], [s.ttl for s in info.states], 1)
        self.memory = _MemoryHost(self.store, [b"k"], [])
        types, Err = self.types, self.Err
        cases = {"bad-handle": types.StateError_BadHandle, "bad-key": types.StateError_BadKey,
                 "too-large": types.StateError_TooLarge, "backend": types.StateError_Backend}
        self.patched = []

        def fake(name):
            def call(*args):
                try:
                    return getattr(self.memory, name)(*args)
                except eddy.StateError as error:
                    raise Err(cases[error.case](error.value)) from None
            return call

        for name in ("value_get", "map_get", "map_put", "map_contains", "map_entries",
                     "operator_list_get", "operator_list_add"):
            self.patched.append((self.state, name, getattr(self.state, name)))
            setattr(self.state, name, fake(name))
        self.logged = []
        self.patched.append((self.log, "log", self.log.log))
        self.log.log = lambda level, key, message: self.logged.append((level, key, message))

    def tearDown(self):
        for module, name, original in self.patched:
            setattr(module, name, original)

    def export(self):
        exported = eddy.export(Probe)
        self.assertIn(sys.modules["wit_world.exports"].Operator, exported.__mro__)
        return exported()

    def test_describe_returns_the_wit_records(self):
        types = self.types
        info = self.export().describe()
        self.assertEqual(info, types.OperatorInfo(
            name="glue-probe",
            version="1.2.3",
            states=[
                types.StateDescriptor("count", types.StateKind.VALUE, 1, None, "json"),
                types.StateDescriptor("seen", types.StateKind.MAP, 2,
                                      types.TtlConfig(1000, types.TtlUpdate.ON_READ_AND_WRITE), "json"),
            ],
            operator_states=[types.OperatorStateDescriptor("items", 1, types.Redistribution.UNION, "json")],
        ))

    def test_init_process_and_errors(self):
        types, Err = self.types, self.Err
        operator = self.export()
        with self.assertRaises(Err) as caught:
            operator.init('{"bad": 1}')
        self.assertEqual(caught.exception.value, types.OperatorError_InvalidConfig("bad config"))
        with self.assertRaises(Err) as caught:
            operator.process(b"")
        self.assertIsInstance(caught.exception.value, types.OperatorError_Failed)
        operator.init("{}")

        batch = _Batch(keys=[b"k"], handles=[0], slots=[b"41"], records=[(0, 0, 0, b"v", [])])
        out = _decode_output(operator.process(batch.encode()))
        self.assertEqual([e.value for e in out.emits[0]], [b"True"])
        self.assertEqual(out.writes, [(0, 0, b"42")])
        self.assertEqual(self.logged, [(self.log.Level.DEBUG, 0, "hi")])

        batch.records = [(0, 0, 0, b"fail", [])]
        with self.assertRaises(Err) as caught:
            operator.process(batch.encode())
        self.assertTrue(caught.exception.value.value.startswith("record 0: ValueError: no"))

        # A state error from the host names the state.
        batch.records = [(0, 0, 0, b"v", [])]
        self.memory.keys = []
        with self.assertRaises(Err) as caught:
            operator.process(batch.encode())
        self.assertIn("record 0: state `seen`: put: key index 0 names no key",
                      caught.exception.value.value)

        with self.assertRaises(eddy.Trap):
            batch.records = [(0, 0, 0, b"trap", [])]
            operator.process(batch.encode())

    def test_migrate_is_unsupported(self):
        types, Err = self.types, self.Err
        descriptor = types.StateDescriptor("count", types.StateKind.VALUE, 2, None, "json")
        with self.assertRaises(Err) as caught:
            self.export().migrate(descriptor, 1, b"1")
        self.assertEqual(caught.exception.value, types.OperatorError_Unsupported(
            "operator `glue-probe` 1.2.3 cannot migrate state `count` from schema version 1 to 2"))


class NativeExport(unittest.TestCase):
    def test_without_bindings_export_returns_a_stand_in(self):
        if "wit_world" in sys.modules:
            self.skipTest("bindings are loaded")
        exported = eddy.export(Probe)
        self.assertIs(exported.operator_class, Probe)
        with self.assertRaises(RuntimeError):
            exported().process(b"")
        with self.assertRaises(TypeError):
            eddy.export(object)


if __name__ == "__main__":
    unittest.main()
