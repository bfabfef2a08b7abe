"""How well a transferability metric ranks models: correlations and top-k regret.

Each function compares a metric's ``scores`` for a set of candidate models with the
``accuracies`` those models reach after fine-tuning on the target dataset (the ground truth).
Both are given either as sequences in the same model order, or as dicts keyed by model name,
which are aligned by key (the SFDA / PED evaluation scripts align by model name the same way).

* :func:`weighted_tau` is the benchmark statistic of SFDA, PED and tllib:
  ``scipy.stats.weightedtau(scores, accuracies)`` with all defaults (hyperbolic weigher
  ``1/(r+1)``, additive weights, ``rank=True``, i.e. the average of the weighted τ computed
  with the ranking of each argument, so it is symmetric in its two arguments).
* :func:`kendall_tau` (τ-b) and :func:`pearson` are the other correlations those scripts report.
* :func:`top_k_regret` and :func:`relative_top_k_accuracy` measure what a user loses by
  fine-tuning only the k models the metric ranks highest.

Every input problem raises :class:`~fennec.errors.InvalidInputError` with a message that
says what was found and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

from .errors import InvalidInputError
from .validation import check_int

__all__ = [
    "weighted_tau",
    "kendall_tau",
    "pearson",
    "top_k_regret",
    "relative_top_k_accuracy",
]

Values = Mapping[Any, float] | Sequence[float] | np.ndarray


def _as_vector(values: Any, *, name: str, func: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{func}: {name} must be numbers, one per model, got {type(values).__name__} that could not "
            f"be read as a float array ({exc})."
        ) from None
    if arr.ndim != 1:
        raise InvalidInputError(
            f"{func}: {name} must be 1-D (one value per model), got shape {arr.shape}. "
            "Pass a list, a 1-D array, or a dict {model_name: value}."
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidInputError(
            f"{func}: {name} contain {bad.size} NaN or infinite value(s) (positions {bad[:5].tolist()}). "
            "Every model needs a finite value: drop models that failed to score or to fine-tune."
        )
    return arr


def _aligned(scores: Values, accuracies: Values, *, func: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 vectors ``(scores, accuracies)``, aligned by model."""
    scores_is_map, acc_is_map = isinstance(scores, Mapping), isinstance(accuracies, Mapping)
    if scores_is_map != acc_is_map:
        raise InvalidInputError(
            f"{func}: scores is a {'dict' if scores_is_map else 'sequence'} but accuracies is a "
            f"{'dict' if acc_is_map else 'sequence'}. Pass both as dicts keyed by model name "
            "(aligned by key) or both as sequences in the same model order."
        )
    if scores_is_map:
        missing_acc = [k for k in scores if k not in accuracies]
        missing_scores = [k for k in accuracies if k not in scores]
        if missing_acc or missing_scores:
            parts = []
            if missing_acc:
                parts.append(f"{len(missing_acc)} model(s) have a score but no accuracy: {missing_acc[:5]!r}")
            if missing_scores:
                parts.append(f"{len(missing_scores)} model(s) have an accuracy but no score: {missing_scores[:5]!r}")
            raise InvalidInputError(
                f"{func}: the model names of scores and accuracies differ; " + "; ".join(parts)
                + ". Both dicts must have the same keys (check the spelling of model names)."
            )
        keys = list(scores)
        s = _as_vector([scores[k] for k in keys], name="scores", func=func)
        a = _as_vector([accuracies[k] for k in keys], name="accuracies", func=func)
    else:
        s = _as_vector(scores, name="scores", func=func)
        a = _as_vector(accuracies, name="accuracies", func=func)
        if s.shape[0] != a.shape[0]:
            raise InvalidInputError(
                f"{func}: scores have {s.shape[0]} values but accuracies have {a.shape[0]}. "
                "They must have one value per model, in the same model order."
            )
    if s.shape[0] < 2:
        raise InvalidInputError(
            f"{func}: got {s.shape[0]} model(s); ranking quality needs at least 2 models."
        )
    return s, a


def _check_not_constant(values: np.ndarray, *, name: str, func: str) -> None:
    if np.all(values == values[0]):
        raise InvalidInputError(
            f"{func}: all {name} are equal ({values[0]!r}), so the correlation is undefined. "
            "A metric that gives every model the same score cannot rank them."
        )


def _statistic(result: Any) -> float:
    value = getattr(result, "statistic", None)
    return float(result[0] if value is None else value)


def weighted_tau(scores: Values, accuracies: Values) -> float:
    """Weighted Kendall τ between metric scores and fine-tuned accuracies, as in SFDA/PED/tllib.

    Exactly ``scipy.stats.weightedtau(scores, accuracies)`` with all defaults: hyperbolic
    weights ``1/(r+1)`` on rank r (so disagreements among the top-ranked models cost more),
    additive pair weights, and ``rank=True``, which averages the statistic computed with
    the decreasing-order ranking of each argument (so the result is symmetric).

    Args:
        scores: Metric score per model (higher = predicted more transferable).
        accuracies: Fine-tuned accuracy (or any ground-truth performance) per model. Same type as
            ``scores``; dicts are aligned by model name.

    Returns:
        τ_w in [-1, 1].

    Raises:
        InvalidInputError: Mismatched lengths or model names, fewer than 2 models, NaN or infinite values, a
            sequence mixed with a dict, or constant scores or accuracies (τ_w is undefined).

    Example:
        >>> round(weighted_tau([0.9, 0.5, 0.1], [80.0, 70.0, 60.0]), 3)
        1.0
        >>> weighted_tau({"resnet50": 1.2, "vit_b16": 0.7}, {"vit_b16": 91.0, "resnet50": 93.5})
        1.0
    """
    s, a = _aligned(scores, accuracies, func="weighted_tau")
    _check_not_constant(s, name="scores", func="weighted_tau")
    _check_not_constant(a, name="accuracies", func="weighted_tau")
    return _statistic(scipy.stats.weightedtau(s, a))


def kendall_tau(scores: Values, accuracies: Values) -> float:
    """Kendall τ-b between metric scores and fine-tuned accuracies (``scipy.stats.kendalltau``).

    Parameters and errors as :func:`weighted_tau`; ties are handled by the τ-b correction.

    Example:
        >>> kendall_tau([3.0, 2.0, 1.0], [0.9, 0.8, 0.7])
        1.0
    """
    s, a = _aligned(scores, accuracies, func="kendall_tau")
    _check_not_constant(s, name="scores", func="kendall_tau")
    _check_not_constant(a, name="accuracies", func="kendall_tau")
    return _statistic(scipy.stats.kendalltau(s, a))


def pearson(scores: Values, accuracies: Values) -> float:
    """Pearson correlation between metric scores and fine-tuned accuracies (``scipy.stats.pearsonr``).

    Parameters and errors as :func:`weighted_tau`. The PARC benchmark reports this ×100,
    averaged over target datasets.

    Example:
        >>> round(pearson([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]), 6)
        1.0
    """
    s, a = _aligned(scores, accuracies, func="pearson")
    _check_not_constant(s, name="scores", func="pearson")
    _check_not_constant(a, name="accuracies", func="pearson")
    return _statistic(scipy.stats.pearsonr(s, a))


def _best_of_top_k(s: np.ndarray, a: np.ndarray, k: int, *, func: str) -> float:
    k = check_int(k, f"{func}: k", minimum=1, maximum=s.shape[0], hint="at most the number of models")
    # Rank by score, descending; among equal scores the lower accuracy comes first, so ties
    # straddling the k-th position are resolved against the metric (pessimistically) and the
    # result does not depend on the order in which the models were given.
    order = np.lexsort((a, -s))
    return float(a[order[:k]].max())


def top_k_regret(scores: Values, accuracies: Values, k: int = 1) -> float:
    """Absolute top-k regret: best accuracy minus the best accuracy among the k top-scored models.

    ``regret_k = max_m acc_m - max_{m in top-k by score} acc_m``, in the units of
    ``accuracies`` (percentage points when they are in %). 0 means the metric's top k
    contains the best model. This is the *absolute* regret; the relative version
    ``regret_k / max_m acc_m`` equals ``1 - relative_top_k_accuracy(...)``.

    Args:
        scores, accuracies: As in :func:`weighted_tau`. Constant scores are allowed.
        k: How many top-scored models one would fine-tune, ``1 <= k <= n_models``.

    Returns:
        The regret, ``>= 0``.

    Note:
        Ties: models with equal scores that straddle the k-th position are resolved
        pessimistically (the lower-accuracy ones are taken first), so a metric gains nothing
        by giving models equal scores and the result does not depend on input order.

    Raises:
        InvalidInputError: As :func:`weighted_tau`, or ``k`` not an integer in ``1..n_models``.

    Example:
        >>> top_k_regret({"a": 0.9, "b": 0.5, "c": 0.1}, {"a": 70.0, "b": 80.0, "c": 60.0}, k=1)
        10.0
        >>> top_k_regret({"a": 0.9, "b": 0.5, "c": 0.1}, {"a": 70.0, "b": 80.0, "c": 60.0}, k=2)
        0.0
    """
    s, a = _aligned(scores, accuracies, func="top_k_regret")
    return float(a.max()) - _best_of_top_k(s, a, k, func="top_k_regret")


def relative_top_k_accuracy(scores: Values, accuracies: Values, k: int = 1) -> float:
    """Best accuracy among the k top-scored models divided by the best accuracy overall.

    ``rel_k = max_{m in top-k by score} acc_m / max_m acc_m``, in (0, 1]; 1 means the
    metric's top k contains the best model. Equals ``1 - top_k_regret(...) / max_m acc_m``
    (the relative regret). Requires a positive best accuracy. Ties are resolved as in
    :func:`top_k_regret`.

    Raises:
        InvalidInputError: As :func:`top_k_regret`, or when the best accuracy is not positive.

    Example:
        >>> relative_top_k_accuracy([0.9, 0.5, 0.1], [70.0, 80.0, 60.0], k=1)
        0.875
    """
    s, a = _aligned(scores, accuracies, func="relative_top_k_accuracy")
    best = float(a.max())
    if not best > 0:
        raise InvalidInputError(
            f"relative_top_k_accuracy: the best accuracy is {best!r}; a ratio to it needs a positive "
            "value. Use top_k_regret for the absolute difference."
        )
    return _best_of_top_k(s, a, k, func="relative_top_k_accuracy") / best
