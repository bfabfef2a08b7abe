"""TransRate: a hand-worked answer and parity with a direct D x D log-determinant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import make_blobs
from fennec.errors import InvalidInputError, MetricComputationError
from fennec.metrics import transrate


def slow_coding_rate(z: np.ndarray, eps: float) -> float:
    n, d = z.shape
    sign, logdet = np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))
    assert sign > 0
    return 0.5 * logdet


def slow_transrate(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    """tllib transrate: centre once, R(f) - (1/C) Σ_c R(f_c), each R on the D x D matrix."""
    f = f.astype(np.float64)
    f = f - f.mean(axis=0)
    classes = np.unique(y)
    return slow_coding_rate(f, eps) - sum(slow_coding_rate(f[y == c], eps) for c in classes) / len(classes)


def test_known_answer_by_hand():
    # f = (0, 1, 4, 7), mean 3, centred (-3, -2, 1, 4); ε = 0.5, D = 1 so R(Z) = ½ log(1 + Σz²/(n ε)).
    # R(f)   = ½ log(1 + 30 / (4·0.5)) = ½ log 16
    # R(f_0) = ½ log(1 + (9 + 4) / (2·0.5)) = ½ log 14      (class rows stay globally centred)
    # R(f_1) = ½ log(1 + (1 + 16) / (2·0.5)) = ½ log 18
    # TrR = ½ log 16 - ½ (½ log 14 + ½ log 18) = ½ log 16 - ¼ log 252 = 0.0039371...
    expected = 0.5 * math.log(16) - 0.25 * math.log(252)
    f, y = np.array([[0.0], [1.0], [4.0], [7.0]]), np.array([0, 0, 1, 1])
    assert transrate(f, y, eps=0.5) == pytest.approx(expected, rel=1e-12)
    assert slow_transrate(f, y, eps=0.5) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "n,d,c,seed",
    [
        (300, 16, 4, 0),   # N > D and every n_c > D: D x D Grams everywhere
        (120, 64, 6, 1),   # N > D but n_c = 20 < D: per-class n_c x n_c Grams (Sylvester)
        (40, 128, 4, 2),   # N < D: n x n Grams everywhere
    ],
)
@pytest.mark.parametrize("eps", [1e-4, 1e-2])
def test_parity_with_direct_logdet(n, d, c, seed, eps):
    x, y = make_blobs(n, d, c, separation=0.5, seed=seed, dtype=np.float64)
    assert transrate(x, y, eps=eps) == pytest.approx(slow_transrate(x, y, eps), rel=1e-10)


def test_unbalanced_classes_are_averaged_not_weighted():
    x, y = make_blobs(100, 5, 2, seed=3, dtype=np.float64)
    y = np.where(np.arange(100) < 90, 0, 1)
    assert transrate(x, y) == pytest.approx(slow_transrate(x, y), rel=1e-10)


@pytest.mark.parametrize("eps", [0, -1e-4, float("nan"), float("inf"), "1e-4", True])
def test_bad_eps(eps):
    x, y = make_blobs(20, 3, 2)
    with pytest.raises(InvalidInputError, match="eps must be a positive finite number"):
        transrate(x, y, eps=eps)


def test_features_tiny_against_eps_follow_the_fourth_power_law():
    """With balanced classes the first-order terms of the two rates cancel, so the score is
    ∝ s⁴ for features x s small against ε: computed from the eigenvalues (log(1 + λ) exact),
    not from 1 + λ, it keeps that law down to where float64 can hold it, then says so."""
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = rng.normal(size=(120, 8)) + y[:, None] * 0.8
    s5, s6 = transrate(x * 1e-5, y, device="cpu"), transrate(x * 1e-6, y, device="cpu")
    assert s5 > 0 and s6 == pytest.approx(s5 * 1e-4, rel=1e-4)
    with pytest.raises(MetricComputationError,
                       match=r"largest \|value\| about 1e-19\), the score, .* below the precision float64 keeps"):
        transrate(x * 1e-20, y, device="cpu")
