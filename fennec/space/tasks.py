"""New-task vectors from proxy descriptors: the task predictors (``knn``, ``ridge``, ``mean``)
and their chooser, leave-one-task-out (:func:`choose_task_predictor`), for
:class:`fennec.space.transfer.TransferSpace` (its module docstring, step 5, says why)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fennec.errors import InvalidInputError

__all__ = ["candidates", "choose_task_predictor", "nearest_similarity", "posterior_task_vector", "shrunk",
           "standardiser", "task_weights"]

_KNN_TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)  # softmax temperatures over cosine similarity
_RIDGE_ALPHAS = (0.1, 1.0, 10.0)  # × mean self-similarity of the standardised descriptors


def standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and scale of descriptors ``(T, D)`` (a constant dimension keeps scale 1)."""
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-12, std, 1.0)


def task_weights(kind: str, param: float, z_train: np.ndarray, z: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Weights ``(T,)`` over the historical tasks (summing to 1) for a standardised query ``z``."""
    t = len(z_train)
    if kind == "mean":
        return np.full(t, 1.0 / t)
    if kind == "knn":
        norms = np.linalg.norm(z_train, axis=1) * np.linalg.norm(z)
        sims = np.divide(z_train @ z, norms, out=np.zeros(t), where=norms > 0)  # cosine (T,)
        top = np.argsort(-sims, kind="stable")[:n_neighbors]
        logits = sims[top] / param
        w_top = np.exp(logits - logits.max())
        weights = np.zeros(t)
        weights[top] = w_top / w_top.sum()
        return weights
    if kind == "ridge":
        gram = z_train @ z_train.T  # (T, T)
        alpha = param * max(float(np.mean(np.diag(gram))), 1e-12)
        dual = np.linalg.solve(gram + alpha * np.eye(t), z_train @ z)  # (T,)
        return dual + (1.0 - dual.sum()) / t  # re-centred on the mean task vector
    raise InvalidInputError(f"Unknown task predictor {kind!r}.")


def nearest_similarity(z_train: np.ndarray, z: np.ndarray) -> float:
    """Cosine similarity of the standardised query ``z`` to its nearest historical task, clipped to [0, 1]."""
    norms = np.linalg.norm(z_train, axis=1) * np.linalg.norm(z)
    sims = np.divide(z_train @ z, norms, out=np.zeros(len(z_train)), where=norms > 0)
    return float(np.clip(sims.max(), 0.0, 1.0)) if len(sims) else 0.0


def shrunk(weights: np.ndarray, similarity: float) -> np.ndarray:
    """Weights pulled toward the mean historical task by how far the nearest known task is:
    ``s·w + (1 − s)/T``, with ``s`` the nearest task's similarity (:func:`nearest_similarity`)."""
    return similarity * weights + (1.0 - similarity) / len(weights)


def posterior_task_vector(prior: np.ndarray, model_vectors: np.ndarray, observed: np.ndarray,
                          precision: float) -> np.ndarray:
    """A task vector ``[v, 1]`` updated by observed scores of some models on the task.

    The prior is the task's placement ``[v0, 1]`` (from its descriptor); the observations are
    scores ``y_m`` of ``k`` models with vectors ``[u_m, b_m]``, read as noisy linear measurements
    of the space's own score: ``y_m = u_m·v + b_m + ε_m``, ``ε_m ~ N(0, σ²)``, with the prior
    ``v ~ N(v0, (σ²/ρ)·I)``. The posterior of ``v`` is Gaussian with mean (Bayesian linear
    regression, i.e. ridge regression toward ``v0``)::

        v̂ = (UᵀU + ρ·I)⁻¹ (Uᵀ(y − b) + ρ·v0)

    ``ρ`` (``precision``) is the prior's weight in units of one observation of a unit-norm
    model vector: ``ρ → ∞`` keeps the prior, ``ρ → 0`` fits the observations alone (least
    squares, exact when ``k ≥ dim`` observations of linearly independent models are exact).
    Zero observations give the prior.

    Args:
        prior: ``(dim+1,)`` the prior task vector ``[v0, 1]``.
        model_vectors: ``(k, dim+1)`` rows ``[u_m, b_m]`` of the observed models.
        observed: ``(k,)`` their scores, on the space's score scale.
        precision: ``ρ`` > 0, or ``math.inf`` (the prior alone).

    Returns:
        ``(dim+1,)`` the posterior mean ``[v̂, 1]``.

    Raises:
        InvalidInputError: mismatched shapes, non-finite values, a prior whose last entry is not
            1, or a precision that is not a number > 0.

    Example:
        >>> u = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]])  # two models [u, b] in a 2-d space
        >>> posterior_task_vector(np.array([0.0, 0.0, 1.0]), u, np.array([2.5, 1.5]), 1e-9).round(6)
        array([2., 2., 1.])
    """
    t0 = np.asarray(prior, dtype=np.float64)
    mv = np.asarray(model_vectors, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    if t0.ndim != 1 or t0.size < 2:
        raise InvalidInputError(f"prior must be a task vector [v0, 1] of shape (dim+1,), got shape {t0.shape}.")
    if mv.ndim != 2 or mv.shape[1] != t0.size or y.shape != (mv.shape[0],):
        raise InvalidInputError(
            f"model_vectors must be (k, {t0.size}) rows [u, b] and observed (k,) scores of the same k models; "
            f"got {mv.shape} and {y.shape}.")
    if not (np.all(np.isfinite(t0)) and np.all(np.isfinite(mv)) and np.all(np.isfinite(y))):
        raise InvalidInputError("prior, model_vectors and observed must be finite; drop the models whose score "
                                "failed (None/NaN) before updating the placement.")
    if t0[-1] != 1.0:
        raise InvalidInputError(f"prior must end with the task's constant 1 (a [v0, 1] task vector), got {t0[-1]!r}.")
    if isinstance(precision, bool) or not isinstance(precision, (int, float, np.floating)) or not precision > 0:
        raise InvalidInputError(f"precision must be a number > 0 (math.inf: the prior alone), got {precision!r}.")
    if len(y) == 0 or math.isinf(precision):
        return t0.copy()
    u, b = mv[:, :-1], mv[:, -1]
    # v̂ = v0 + δ, δ = (UᵀU + ρI)⁻¹ Uᵀ r with r = y − b − U·v0 the residual of the prior; through
    # the SVD U = P·diag(s)·Qᵀ, δ = Q·diag(s / (s² + ρ))·Pᵀ r: the same posterior mean without
    # forming UᵀU (which squares U's condition number and is singular to rounding for k < dim
    # and a small ρ). Singular values at rounding level count as 0, so ρ → 0 tends to the
    # minimum-norm least-squares move (numpy.linalg.pinv's cutoff).
    p, s, qt = np.linalg.svd(u, full_matrices=False)
    s = np.where(s > np.finfo(np.float64).eps * max(u.shape) * (s[0] if s.size else 0.0), s, 0.0)
    delta = qt.T @ (s / (s**2 + precision) * (p.T @ (y - b - u @ t0[:-1])))
    return np.append(t0[:-1] + delta, 1.0)


def candidates() -> list[tuple[str, float]]:
    """Every ``(kind, parameter)`` the chooser tries, in its order of preference among equals."""
    return ([("knn", tau) for tau in _KNN_TEMPERATURES] + [("ridge", a) for a in _RIDGE_ALPHAS]
            + [("mean", 0.0)])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0


def choose_task_predictor(y: np.ndarray, u: np.ndarray, bias: np.ndarray, v: np.ndarray, x: np.ndarray,
                          described: np.ndarray, *, n_neighbors: int) -> tuple[dict[str, Any], dict[str, float]]:
    """The task predictor that best predicts each described task from the others.

    Each candidate (:func:`candidates`) predicts every described task's vector from the other
    tasks' descriptors and vectors; the predicted model scores are correlated (Pearson) with
    the task's observed normalised results, and the best mean correlation wins.

    Args:
        y: ``(M, T)`` normalised results, NaN where missing.
        u, bias: ``(M, dim)`` model factors and ``(M,)`` model biases.
        v: ``(T_d, dim)`` task factors of the described tasks.
        x: ``(T_d, D)`` their descriptors.
        described: ``(T_d,)`` the described tasks' columns in ``y``.
        n_neighbors: for ``knn``.

    Returns:
        ``({"kind": ..., "param": ...}, {"kind:param": mean correlation})``; with fewer than
        three described tasks, nothing to cross-validate: the plain kNN average and no scores.
    """
    t = len(x)
    scores: dict[str, float] = {}
    if t >= 3:  # leave one task out: predict each task's vector from the others
        for kind, param in candidates():
            per_task = []
            for j in range(t):
                others = np.delete(np.arange(t), j)
                mean, scale = standardiser(x[others])
                weights = task_weights(kind, param, (x[others] - mean) / scale, (x[j] - mean) / scale, n_neighbors)
                observed = np.isfinite(y[:, described[j]])
                if observed.sum() >= 3:
                    pred = u[observed] @ (weights @ v[others]) + bias[observed]
                    per_task.append(_corr(pred, y[observed, described[j]]))
            if per_task:
                scores[f"{kind}:{param:g}"] = float(np.mean(per_task))
    if scores:
        best = max(scores, key=lambda k: scores[k])  # first of equals: knn, then ridge, then mean
        best_kind, best_param = best.split(":")
        return {"kind": best_kind, "param": float(best_param)}, scores
    return {"kind": "knn", "param": 0.1}, scores  # too few tasks to cross-validate: the plain kNN average
