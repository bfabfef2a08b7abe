"""Every exception archi2vec raises on purpose.

Each one subclasses the builtin it refines (``ValueError``, ``TimeoutError``), so callers
that do not know archi2vec's types keep working, and carries the model id and the reason.
"""

from __future__ import annotations

__all__ = [
    "Archi2VecError",
    "UnsupportedModelError",
    "RemoteCodeRefusedError",
    "TraceTimeoutError",
]


class Archi2VecError(Exception):
    """Base class of every error archi2vec raises on purpose."""


class UnsupportedModelError(Archi2VecError, ValueError):
    """An architecture that cannot be built, traced or embedded.

    Attributes:
        model_id: the source as the caller named it (Hub id, timm name, config path, class).
        reason: what went wrong and, where known, how to fix it.
    """

    def __init__(self, model_id: str, reason: str):
        self.model_id = str(model_id)
        self.reason = str(reason)
        super().__init__(f"{self.model_id}: {self.reason}")


class RemoteCodeRefusedError(UnsupportedModelError):
    """A config that needs code from the Hub (``auto_map``) while the caller did not opt in."""


class TraceTimeoutError(UnsupportedModelError, TimeoutError):
    """Graph capture did not finish within the time limit. ``timeout`` is in seconds."""

    def __init__(self, model_id: str, timeout: float):
        self.timeout = float(timeout)
        super().__init__(model_id, f"graph capture did not finish within {timeout:g} s")
