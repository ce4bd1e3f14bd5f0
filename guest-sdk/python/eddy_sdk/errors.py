"""Errors: what an operator raises to fail a call, and what a state call can fail with.

Raising :class:`Failed` (or any other ``Exception``) from ``process`` or ``on_timer`` fails
the whole batch the record came in; the SDK names the record (``record 2: ...``) and the
host re-runs the batch one record at a time, so only the failing record goes to the
dead-letter output. :class:`InvalidConfig` from ``init`` refuses the job's configuration;
:class:`Unsupported` from ``migrate`` refuses a schema upgrade.
"""

from __future__ import annotations

import traceback

__all__ = ["OperatorError", "Failed", "InvalidConfig", "Unsupported", "StateError"]


class OperatorError(Exception):
    """An error an operator callback ends with; its class decides the WIT ``operator-error``
    case (``kind``: ``"failed"``, ``"invalid-config"`` or ``"unsupported"``)."""

    #: The WIT ``operator-error`` case.
    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The message, without the kind.
        self.message = str(message)

    def with_context(self, context: str) -> "OperatorError":
        """The same kind of error with ``context`` put in front of its message
        (``"{context}: {message}"``)."""
        return type(self)(f"{context}: {self.message}")

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class Failed(OperatorError):
    """Processing failed (``operator-error::failed``): the host sends the record (or timer)
    to the dead-letter output, with the message."""

    kind = "failed"


class InvalidConfig(OperatorError):
    """The configuration given to ``init`` cannot be used (``operator-error::invalid-config``)."""

    kind = "invalid-config"


class Unsupported(OperatorError):
    """The operation is not supported, e.g. a ``migrate`` the operator has no upgrade for
    (``operator-error::unsupported``)."""

    kind = "unsupported"


class StateError(Exception):
    """An error the host returned from a state call (the WIT ``state-error``).

    ``case`` is one of ``"bad-handle"``, ``"bad-key"``, ``"too-large"``, ``"backend"``;
    ``value`` its payload. The typed state handles turn it into :class:`Failed` naming the
    state, so operators rarely see it.
    """

    def __init__(self, case: str, value: object) -> None:
        self.case = case
        self.value = value
        super().__init__(self._text())

    def _text(self) -> str:
        if self.case == "bad-handle":
            return f"state handle {self.value} names no declared state of the kind this call needs"
        if self.case == "bad-key":
            return (
                f"key index {self.value} names no key of the current batch (keyed state is "
                "only reachable inside `process` and `on_timer`)"
            )
        if self.case == "too-large":
            return f"{self.value} bytes exceed the host's state limits"
        return f"state backend failed: {self.value}"


def describe_exception(error: BaseException) -> str:
    """The message an exception becomes at the boundary: an :class:`OperatorError`'s (or
    :class:`StateError`'s) own message; for any other exception its type, message and the innermost frame of operator
    code, e.g. ``KeyError: 'user' (main.py:31 in process)``."""
    if isinstance(error, OperatorError):
        return error.message
    if isinstance(error, StateError):
        return str(error)
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)
    # The innermost frame outside the SDK says where the operator went wrong.
    for frame in reversed(frames):
        if "eddy_sdk" not in frame.filename.replace("\\", "/").split("/"):
            name = frame.filename.replace("\\", "/").rsplit("/", 1)[-1]
            return f"{text} ({name}:{frame.lineno} in {frame.name})"
    return text


def as_operator_error(error: BaseException, default: type = Failed) -> OperatorError:
    """``error`` as an :class:`OperatorError` (of class ``default`` unless it is one)."""
    if isinstance(error, OperatorError):
        return error
    return default(describe_exception(error))
