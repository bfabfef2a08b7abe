"""New-task vectors from proxy descriptors: the task predictors the transfer space chooses
among by leave-one-task-out (:mod:`fennec.space`). Private."""

from __future__ import annotations

import math

import numpy as np

from fennec.errors import InvalidInputError

_KNN_TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)  # softmax temperatures over cosine similarity
_RIDGE_ALPHAS = (0.1, 1.0, 10.0)  # × mean self-similarity of the standardised descriptors


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-12, std, 1.0)


def _task_weights(kind: str, param: float, z_train: np.ndarray, z: np.ndarray, n_neighbors: int) -> np.ndarray:
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


def _candidates() -> list[tuple[str, float]]:
    return ([("knn", tau) for tau in _KNN_TEMPERATURES] + [("ridge", a) for a in _RIDGE_ALPHAS]
            + [("mean", 0.0)])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0
