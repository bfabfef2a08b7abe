"""Every exception archi2vec raises on purpose.

Each one subclasses the builtin it refines (``ValueError``, ``TimeoutError``), so callers
that do not know archi2vec's types keep working, and carries the model id and the reason.

``UnsupportedModelError`` is the deprecated name of :class:`UnsupportedArchitectureError`
(renamed so that it no longer collides with :class:`fennec.errors.UnsupportedModelError`);
it still names the same class, with a ``DeprecationWarning``, and goes in the next release.
"""

from __future__ import annotations

import warnings

__all__ = [
    "Archi2VecError",
    "InvalidArgumentError",
    "UnsupportedArchitectureError",
    "RemoteCodeRefusedError",
    "TraceTimeoutError",
    "ImplausibleConfigError",
    "BudgetExceededError",
    "SandboxError",
]


class Archi2VecError(Exception):
    """Base class of every error archi2vec raises on purpose."""


class InvalidArgumentError(Archi2VecError, ValueError):
    """An argument outside what the function accepts (a capture method, a timeout, an input
    size, a vector length, a budget, a pair of vectors); the message names the argument,
    what was given and what is accepted. Not a verdict on any model."""


class UnsupportedArchitectureError(Archi2VecError, ValueError):
    """An architecture that cannot be built, traced or embedded.

    Attributes:
        model_id: the source as the caller named it (Hub id, timm name, config path, class).
        reason: what went wrong and, where known, how to fix it.
    """

    def __init__(self, model_id: str, reason: str):
        self.model_id = str(model_id)
        self.reason = str(reason)
        super().__init__(f"{self.model_id}: {self.reason}")


class RemoteCodeRefusedError(UnsupportedArchitectureError):
    """A config that needs code from the Hub (``auto_map``) while the caller did not opt in."""


class TraceTimeoutError(UnsupportedArchitectureError, TimeoutError):
    """Building the model and capturing its graph did not finish within the time limit.
    ``timeout`` is in seconds."""

    def __init__(self, model_id: str, timeout: float):
        self.timeout = float(timeout)
        super().__init__(model_id, f"building the model and capturing its graph did not finish "
                                   f"within {timeout:g} s")


class ImplausibleConfigError(UnsupportedArchitectureError):
    """A config refused before its model is built: a size field that is not a non-negative
    number (NaN, negative, a string), a layer count above ``MAX_LAYERS``, a model estimated
    above ``MAX_PARAMETERS`` parameters, a timm argument outside the allow-list (a path, a
    URL, a file option), or an attention implementation that is not built in (a Hub kernel).
    See :mod:`archi2vec._config_checks`."""


class BudgetExceededError(UnsupportedArchitectureError):
    """Building, tracing and embedding a model needed more time or memory than its budget
    (:class:`archi2vec.Sandbox`). ``budget`` is ``"time"`` or ``"memory"``."""

    def __init__(self, model_id: str, reason: str, *, budget: str):
        self.budget = budget
        super().__init__(model_id, reason)


class SandboxError(Archi2VecError, RuntimeError):
    """The sandbox's worker process could not be started or answered out of protocol; not a
    verdict on any model (retry later)."""


# Old names that still resolve, with a DeprecationWarning, until the next release.
_DEPRECATED = {"UnsupportedModelError": "UnsupportedArchitectureError"}


def deprecated_name(module: str, name: str) -> type[Exception]:
    """The class an old name of :data:`_DEPRECATED` stands for, with a ``DeprecationWarning``
    (the module ``__getattr__`` of ``archi2vec`` and ``archi2vec.errors``; not in ``__all__``).

    Raises:
        AttributeError: ``name`` is not an old name (what Python raises for a missing name).
    """
    new = _DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"archi2vec.{name} is deprecated and will be removed in the next release: "
                  f"use archi2vec.{new} (the same class)", DeprecationWarning, stacklevel=3)
    return globals()[new]


def __getattr__(name: str) -> type[Exception]:
    return deprecated_name(__name__, name)
