"""Every exception fennec raises on purpose.

Each one subclasses the builtin it refines, so ``except ValueError`` keeps working for
callers that do not know fennec's types, and carries enough context to act on.
"""

from __future__ import annotations

__all__ = [
    "FallbackWarning",
    "FennecError",
    "FennecWarning",
    "InvalidInputError",
    "MetricComputationError",
    "UnknownMetricError",
]


class FennecError(Exception):
    """Base class of every error fennec raises on purpose."""


# ---------------------------------------------------------------------------------------
# INPUT ERRORS
# ---------------------------------------------------------------------------------------


class InvalidInputError(FennecError, ValueError):
    """An argument has the wrong shape, type or content.

    The message says what was found, what is required and how to fix it.
    """


class UnknownMetricError(FennecError, KeyError):
    """A metric name that is not registered. ``available`` lists the valid names."""

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = list(available)
        super().__init__(name)

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return (
            f"Unknown transferability metric {self.name!r}. "
            f"Available metrics: {', '.join(self.available)}. "
            "Use fennec.metrics.list_metrics() to see them with their descriptions."
        )


# ---------------------------------------------------------------------------------------
# COMPUTATION ERRORS
# ---------------------------------------------------------------------------------------


class MetricComputationError(FennecError, ArithmeticError):
    """A metric could not produce a finite score on otherwise valid input.

    Raised instead of returning NaN or inf. ``metric`` names the metric.
    """

    def __init__(self, metric: str, message: str):
        self.metric = metric
        super().__init__(f"{metric}: {message}")


# ---------------------------------------------------------------------------------------
# WARNINGS
# ---------------------------------------------------------------------------------------


class FennecWarning(UserWarning):
    """Base class of fennec's warnings."""


class FallbackWarning(FennecWarning):
    """A computation took its documented fallback path (e.g. a more robust solver)."""
