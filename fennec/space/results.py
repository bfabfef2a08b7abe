"""The results table the transfer space learns from: checked, normalised per task, as a matrix.

Fine-tuning results come as ``{task: {model: accuracy}}`` with many cells missing;
:func:`normalise_results` makes tasks comparable (only the order within a task matters to a
recommender) and :func:`results_matrix` lays them out as the ``(models, tasks)`` matrix that
:class:`fennec.space.transfer.TransferSpace` and :class:`fennec.space.baseline.FennecBaseline`
factorise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.stats

from fennec.errors import FennecWarning, InvalidInputError

__all__ = ["NORMALISATIONS", "normalise_results", "results_matrix"]

NORMALISATIONS = ("zscore", "rank", "minmax", "none")


def _check_results(results: Any) -> dict[str, dict[str, float]]:
    """``results`` as a fresh ``{task: {model: float}}`` with every value finite."""
    hint = "Pass {task_id: {model_id: fine-tune accuracy}} with at least one value."
    if not isinstance(results, Mapping):
        raise InvalidInputError(f"results must be a mapping task -> model -> accuracy, got "
                                f"{type(results).__name__}. {hint}")
    clean: dict[str, dict[str, float]] = {}
    for task, row in results.items():
        if not isinstance(task, str) or not task:
            raise InvalidInputError(f"results has a task key {task!r}; task ids must be non-empty strings.")
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"results[{task!r}] is a {type(row).__name__}, expected a mapping "
                                    f"model -> accuracy. {hint}")
        clean_row: dict[str, float] = {}
        for model, value in row.items():
            if not isinstance(model, str) or not model:
                raise InvalidInputError(f"results[{task!r}] has a model key {model!r}; model ids must be "
                                        "non-empty strings.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidInputError(f"results[{task!r}][{model!r}] = {value!r} is not a number.") from None
            if not math.isfinite(number):
                raise InvalidInputError(
                    f"results[{task!r}][{model!r}] = {number} is not finite. Leave a failed or missing "
                    "run out of the mapping instead of writing NaN/inf.")
            clean_row[model] = number
        if clean_row:
            clean[task] = clean_row
    if not clean:
        raise InvalidInputError(f"results is empty (no task has any model value). {hint}")
    return clean


def normalise_results(results: Mapping[str, Mapping[str, float]], *,
                      method: str = "zscore") -> dict[str, dict[str, float]]:
    """Normalise accuracies within each task so that tasks are comparable.

    Args:
        results: ``{task: {model: accuracy}}``; missing cells are simply absent.
        method: ``"zscore"`` (subtract the task mean, divide by its population std; a task
            whose models all tie gets zeros), ``"rank"`` (average ranks mapped uniformly onto
            [-1, 1], ties share a rank), ``"minmax"`` (onto [0, 1]; a tie gets 0.5) or
            ``"none"``.

    Returns:
        ``{task: {model: normalised value}}``. Tasks with fewer than 2 models say nothing
        about an order and are dropped with a :class:`~fennec.errors.FennecWarning`.

    Raises:
        InvalidInputError: unknown method, malformed or non-finite results, or no task left.

    Example:
        >>> normalise_results({"t": {"a": 0.5, "b": 0.7, "c": 0.9}}, method="rank")
        {'t': {'a': -1.0, 'b': 0.0, 'c': 1.0}}
    """
    if method not in NORMALISATIONS:
        raise InvalidInputError(f"Unknown normalisation method {method!r}; use one of {', '.join(NORMALISATIONS)}.")
    clean = _check_results(results)
    out: dict[str, dict[str, float]] = {}
    dropped = [task for task, row in clean.items() if len(row) < 2]
    if dropped:
        warnings.warn(f"Dropped {len(dropped)} task(s) with fewer than 2 models (no order to learn from): "
                      f"{', '.join(sorted(dropped)[:10])}", FennecWarning, stacklevel=2)
    for task, row in clean.items():
        if len(row) < 2:
            continue
        names = list(row)
        x = np.array([row[name] for name in names], dtype=np.float64)
        if method == "zscore":  # ptp, not std > 0: the std of equal floats can be 5.6e-17, not 0
            y = (x - x.mean()) / x.std() if np.ptp(x) > 0 else np.zeros_like(x)
        elif method == "rank":
            y = 2.0 * (scipy.stats.rankdata(x) - 1.0) / (len(x) - 1) - 1.0
        elif method == "minmax":
            span = x.max() - x.min()
            y = (x - x.min()) / span if span > 0 else np.full_like(x, 0.5)
        else:
            y = x
        out[task] = {name: float(value) for name, value in zip(names, y, strict=True)}
    if not out:
        raise InvalidInputError("No task has results for at least 2 models; nothing to learn a ranking from.")
    return out


def results_matrix(normalised: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[str], np.ndarray]:
    """Sorted model ids, sorted task ids and the ``(M, T)`` matrix with NaN for missing cells."""
    task_ids = sorted(normalised)
    model_ids = sorted({m for row in normalised.values() for m in row})
    row_of = {m: i for i, m in enumerate(model_ids)}
    y = np.full((len(model_ids), len(task_ids)), np.nan)
    for j, task in enumerate(task_ids):
        for model, value in normalised[task].items():
            y[row_of[model], j] = value
    return model_ids, task_ids, y
