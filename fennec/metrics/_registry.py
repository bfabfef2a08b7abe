"""The metric registry: ``@register_metric`` fills it, ``list_metrics`` / ``get_metric`` read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import UnknownMetricError

__all__ = ["MetricInfo", "register_metric", "list_metrics", "get_metric", "metric_info"]

MetricInput = Literal["features", "probabilities"]


@dataclass(frozen=True)
class MetricInfo:
    """What the registry knows about a metric.

    Attributes:
        name: registry name, e.g. ``"sfda"``.
        func: the metric function, ``func(inputs, labels, *, ...) -> float``.
        input: ``"features"`` for penultimate features ``(N, D)``, or ``"probabilities"`` for
            source-model class probabilities ``(N, C_s)`` (LEEP, NCE).
        summary: first line of the function's docstring.
        paper: citation with link.
        scale_invariant: True when multiplying the features by any constant s > 0 leaves the
            score unchanged by definition; fennec then gives the same score (to round-off)
            for features scaled by 1e-300 or 1e150. False for scale-dependent metrics and for
            probability metrics (whose inputs must sum to 1).
    """

    name: str
    func: Callable[..., float]
    input: MetricInput
    summary: str
    paper: str
    scale_invariant: bool = False


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(name: str, *, input: MetricInput = "features", paper: str = "",
                    scale_invariant: bool = False):
    """Decorator that registers a metric function under ``name``.

    Registering the same name twice is an error: it would silently shadow a metric.
    """

    def decorator(func: Callable[..., float]) -> Callable[..., float]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"A transferability metric named {name!r} is already registered.")
        summary = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        _REGISTRY[name] = MetricInfo(name=name, func=func, input=input, summary=summary, paper=paper,
                                     scale_invariant=scale_invariant)
        return func

    return decorator


def list_metrics(input: MetricInput | None = None) -> list[str]:
    """Sorted names of the registered metrics, optionally only those taking ``input``."""
    return sorted(n for n, info in _REGISTRY.items() if input is None or info.input == input)


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; raises :class:`UnknownMetricError` listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMetricError(name, list_metrics()) from None


def get_metric(name: str) -> Callable[..., float]:
    """The metric function registered as ``name``.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import get_metric
        >>> features, labels = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2
        >>> score = get_metric("logme")(features, labels)
        >>> type(score).__name__
        'float'
    """
    return metric_info(name).func
