"""The component side, imported only inside a component built by componentize-py (the
``wit_world`` bindings exist only there): the ``state`` and ``log`` imports behind the host
interface the runtime uses, and the class that implements the ``operator`` export.

Every error leaves an export as ``Err(operator-error)``, never as an uncaught exception
(which componentize-py turns into a trap); only a ``BaseException`` that is not an
``Exception`` (see ``eddy_sdk.trap``) gets through.
"""

from __future__ import annotations

from typing import Any, List, Optional

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import log as _log
from wit_world.imports import state as _state
from wit_world.imports import types as _types

from . import runtime as _runtime
from .errors import StateError, as_operator_error
from .state import (
    OperatorInfo,
    Redistribution,
    StateDescriptor,
    StateKind,
    TtlConfig,
    TtlUpdate,
)

_STATE_ERROR_CASES = {
    _types.StateError_BadHandle: "bad-handle",
    _types.StateError_BadKey: "bad-key",
    _types.StateError_TooLarge: "too-large",
    _types.StateError_Backend: "backend",
}

_LEVELS = (
    _log.Level.TRACE,
    _log.Level.DEBUG,
    _log.Level.INFO,
    _log.Level.WARN,
    _log.Level.ERROR,
)


def _state_error(error: Err) -> StateError:
    value = error.value
    return StateError(_STATE_ERROR_CASES.get(type(value), "backend"), getattr(value, "value", value))


class WasmHost:
    """The host, reached through the component's imports."""

    def value_get(self, state: int, key: int) -> Optional[bytes]:
        try:
            return _state.value_get(state, key)
        except Err as error:
            raise _state_error(error) from None

    def map_get(self, state: int, key: int, map_key: bytes) -> Optional[bytes]:
        try:
            return _state.map_get(state, key, map_key)
        except Err as error:
            raise _state_error(error) from None

    def map_put(self, state: int, key: int, map_key: bytes, value: bytes) -> None:
        try:
            _state.map_put(state, key, map_key, value)
        except Err as error:
            raise _state_error(error) from None

    def map_remove(self, state: int, key: int, map_key: bytes) -> None:
        try:
            _state.map_remove(state, key, map_key)
        except Err as error:
            raise _state_error(error) from None

    def map_contains(self, state: int, key: int, map_key: bytes) -> bool:
        try:
            return _state.map_contains(state, key, map_key)
        except Err as error:
            raise _state_error(error) from None

    def map_is_empty(self, state: int, key: int) -> bool:
        try:
            return _state.map_is_empty(state, key)
        except Err as error:
            raise _state_error(error) from None

    def map_clear(self, state: int, key: int) -> None:
        try:
            _state.map_clear(state, key)
        except Err as error:
            raise _state_error(error) from None

    def map_entries(self, state: int, key: int, cursor: Optional[bytes], limit: int) -> tuple:
        try:
            page = _state.map_entries(state, key, cursor, limit)
        except Err as error:
            raise _state_error(error) from None
        return page.entries, page.next

    def map_keys(self, state: int, key: int, cursor: Optional[bytes], limit: int) -> tuple:
        try:
            page = _state.map_keys(state, key, cursor, limit)
        except Err as error:
            raise _state_error(error) from None
        return page.keys, page.next

    def list_get(self, state: int, key: int) -> List[bytes]:
        try:
            return _state.list_get(state, key)
        except Err as error:
            raise _state_error(error) from None

    def list_add(self, state: int, key: int, value: bytes) -> None:
        try:
            _state.list_add(state, key, value)
        except Err as error:
            raise _state_error(error) from None

    def list_add_all(self, state: int, key: int, values: List[bytes]) -> None:
        try:
            _state.list_add_all(state, key, values)
        except Err as error:
            raise _state_error(error) from None

    def list_update(self, state: int, key: int, values: List[bytes]) -> None:
        try:
            _state.list_update(state, key, values)
        except Err as error:
            raise _state_error(error) from None

    def list_clear(self, state: int, key: int) -> None:
        try:
            _state.list_clear(state, key)
        except Err as error:
            raise _state_error(error) from None

    def operator_list_get(self, state: int) -> List[bytes]:
        try:
            return _state.operator_list_get(state)
        except Err as error:
            raise _state_error(error) from None

    def operator_list_add(self, state: int, value: bytes) -> None:
        try:
            _state.operator_list_add(state, value)
        except Err as error:
            raise _state_error(error) from None

    def operator_list_update(self, state: int, values: List[bytes]) -> None:
        try:
            _state.operator_list_update(state, values)
        except Err as error:
            raise _state_error(error) from None

    def log(self, level: int, key: Optional[int], message: str) -> None:
        _log.log(_LEVELS[level], key, message)


HOST = WasmHost()
_runtime.default_host = HOST


def _err(error: BaseException) -> Err:
    error = as_operator_error(error)
    if error.kind == "invalid-config":
        return Err(_types.OperatorError_InvalidConfig(error.message))
    if error.kind == "unsupported":
        return Err(_types.OperatorError_Unsupported(error.message))
    return Err(_types.OperatorError_Failed(error.message))


_KINDS = {
    StateKind.VALUE: _types.StateKind.VALUE,
    StateKind.MAP: _types.StateKind.MAP,
    StateKind.LIST: _types.StateKind.LIST,
}
_KINDS_BACK = {wit: sdk for sdk, wit in _KINDS.items()}
_UPDATES = {
    TtlUpdate.ON_CREATE_AND_WRITE: _types.TtlUpdate.ON_CREATE_AND_WRITE,
    TtlUpdate.ON_READ_AND_WRITE: _types.TtlUpdate.ON_READ_AND_WRITE,
}
_UPDATES_BACK = {wit: sdk for sdk, wit in _UPDATES.items()}
_REDISTRIBUTIONS = {
    Redistribution.EVEN_SPLIT: _types.Redistribution.EVEN_SPLIT,
    Redistribution.UNION: _types.Redistribution.UNION,
}


def _info_to_wit(info: OperatorInfo) -> Any:
    return _types.OperatorInfo(
        name=info.name,
        version=info.version,
        states=[
            _types.StateDescriptor(
                name=state.name,
                kind=_KINDS[state.kind],
                schema_version=state.schema_version,
                ttl=None if state.ttl is None else _types.TtlConfig(
                    ttl_ms=state.ttl.ttl_ms, update=_UPDATES[state.ttl.update]),
                codec=state.codec,
            )
            for state in info.states
        ],
        operator_states=[
            _types.OperatorStateDescriptor(
                name=state.name,
                schema_version=state.schema_version,
                redistribution=_REDISTRIBUTIONS[state.redistribution],
                codec=state.codec,
            )
            for state in info.operator_states
        ],
    )


def _descriptor_from_wit(state: Any) -> StateDescriptor:
    ttl = None
    if state.ttl is not None:
        ttl = TtlConfig(state.ttl.ttl_ms, _UPDATES_BACK[state.ttl.update])
    return StateDescriptor(state.name, _KINDS_BACK[state.kind], state.schema_version, ttl, state.codec)


def export(operator_class: type) -> type:
    """The class componentize-py calls for the ``operator`` export, bound to one runtime
    (the instance's only one: componentize-py may make a new export object per call)."""
    runtime = _runtime.Runtime(operator_class)

    class Operator(_exports.Operator):
        def describe(self) -> Any:
            return _info_to_wit(_runtime.Runtime.describe(operator_class))

        def init(self, config: str) -> None:
            try:
                runtime.init(config, HOST)
            except Exception as error:
                raise _err(error) from None

        def process(self, batch: bytes) -> bytes:
            try:
                return runtime.process(batch, HOST)
            except Exception as error:
                raise _err(error) from None

        def on_timer(self, batch: bytes) -> bytes:
            try:
                return runtime.on_timer(batch, HOST)
            except Exception as error:
                raise _err(error) from None

        def migrate(self, state: Any, from_version: int, value: bytes) -> bytes:
            try:
                return runtime.migrate(_descriptor_from_wit(state), from_version, value)
            except Exception as error:
                raise _err(error) from None

    Operator.__qualname__ = Operator.__name__ = "Operator"
    return Operator


__all__ = ["export", "WasmHost", "HOST"]
