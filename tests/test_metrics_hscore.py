"""H-score and regularised H-score: hand-worked answers and parity with the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf

from conftest import make_blobs
from fennec.metrics import hscore, hscore_regularized
from fennec.metrics.hscore import _ledoit_wolf

F1 = np.array([[0.0], [2.0], [4.0], [6.0]])
Y1 = np.array([0, 0, 1, 1])


def _class_mean_features(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return g


def slow_hscore(f: np.ndarray, y: np.ndarray) -> float:
    """tr(pinv(cov(f)) cov(g)), np.cov unbiased, pinv rcond=1e-15 (tllib h_score)."""
    f = f.astype(np.float64)
    cov_f = np.cov(f, rowvar=False)
    cov_g = np.cov(_class_mean_features(f, y), rowvar=False)
    return float(np.trace(np.linalg.pinv(np.atleast_2d(cov_f), rcond=1e-15) @ np.atleast_2d(cov_g)))


def slow_ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf (2004), Lemma 3.2 / Theorem 3.1, with a loop over samples; x centred."""
    n, d = x.shape
    s = x.T @ x / n
    m = np.trace(s) / d
    d2 = np.sum((s - m * np.eye(d)) ** 2) / d
    b_bar2 = sum(np.sum((np.outer(x[i], x[i]) - s) ** 2) / d for i in range(n)) / n**2
    b2 = min(b_bar2, d2)
    alpha = b2 / d2 if d2 > 0 else 0.0
    return alpha * m * np.eye(d) + (1 - alpha) * s, alpha


def slow_hscore_regularized(f: np.ndarray, y: np.ndarray) -> float:
    f = f.astype(np.float64)
    f = f - f.mean(axis=0)
    cov_alpha, alpha = slow_ledoit_wolf(f)
    cov_g = np.cov(_class_mean_features(f, y), rowvar=False)
    return float(np.trace(np.linalg.pinv(cov_alpha, rcond=1e-15) @ ((1 - alpha) * np.atleast_2d(cov_g))))


def test_known_answers_by_hand():
    # f = (0, 2, 4, 6), mean 3: cov(f) = (9 + 1 + 1 + 9) / 3 = 20/3 (unbiased).
    # g = (1, 1, 5, 5), mean 3: cov(g) = (4 + 4 + 4 + 4) / 3 = 16/3.  H = (16/3) / (20/3) = 0.8.
    assert hscore(F1, Y1) == pytest.approx(0.8, rel=1e-14)
    # D = 1: S = 20/4 = 5 (biased) is already a multiple of I, so the shrinkage α = 0 and
    # H_α = (1 - 0) · (16/3) / 5 = 16/15.
    assert hscore_regularized(F1, Y1) == pytest.approx(16 / 15, rel=1e-14)


@pytest.mark.parametrize("n,d,c,seed", [(200, 10, 4, 0), (500, 32, 10, 1), (120, 40, 3, 2)])
def test_hscore_parity(n, d, c, seed):
    x, y = make_blobs(n, d, c, separation=1.0, seed=seed, dtype=np.float64)
    assert hscore(x, y) == pytest.approx(slow_hscore(x, y), rel=1e-9)


@pytest.mark.parametrize("n,d,c,seed", [(200, 10, 4, 0), (60, 80, 3, 1), (300, 25, 6, 2)])
def test_hscore_regularized_parity(n, d, c, seed):
    x, y = make_blobs(n, d, c, separation=1.0, seed=seed, dtype=np.float64)
    assert hscore_regularized(x, y) == pytest.approx(slow_hscore_regularized(x, y), rel=1e-9)


@pytest.mark.parametrize("n,d,seed", [(100, 5, 0), (40, 60, 1), (500, 20, 2), (30, 1, 3)])
def test_ledoit_wolf_matches_formula_and_sklearn(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.5, 3, d)
    xc = x - x.mean(axis=0)
    cov, alpha = _ledoit_wolf(torch.tensor(xc))
    slow_cov, slow_alpha = slow_ledoit_wolf(xc)
    lw = LedoitWolf(assume_centered=False).fit(xc)
    assert alpha == pytest.approx(slow_alpha, rel=1e-10, abs=1e-14)
    assert alpha == pytest.approx(lw.shrinkage_, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(cov.numpy(), slow_cov, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cov.numpy(), lw.covariance_, rtol=1e-10, atol=1e-14)


def test_regularized_is_stable_when_n_below_d():
    """With N < D, cov(f) is singular; the shrunk version gives close scores for close inputs."""
    x, y = make_blobs(40, 100, 4, separation=1.0, seed=4, dtype=np.float64)
    noise = np.random.default_rng(5).normal(size=x.shape) * 1e-9
    a, b = hscore_regularized(x, y), hscore_regularized(x + noise, y)
    assert np.isfinite(a) and a == pytest.approx(b, rel=1e-6)


def test_scale_invariance():
    x, y = make_blobs(150, 8, 3, seed=6, dtype=np.float64)
    assert hscore(x * 1000, y) == pytest.approx(hscore(x, y), rel=1e-9)
    assert hscore_regularized(x * 1000, y) == pytest.approx(hscore_regularized(x, y), rel=1e-9)
