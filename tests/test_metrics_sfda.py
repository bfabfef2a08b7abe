"""SFDA: parity with the eigensolver form, a hand-worked example, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_blobs
from fennec.errors import InvalidInputError, MetricComputationError
from fennec.metrics import sfda
from fennec.metrics._reference import _power_iteration, sfda_eigen
from fennec.metrics.sfda import _largest_eigenvalue_estimate, sfda_shrinkage


@pytest.mark.parametrize(
    "n, d, c, separation",
    [(600, 32, 5, 0.3), (400, 16, 2, 1.0), (300, 64, 10, 0.2), (120, 200, 4, 0.5), (500, 8, 20, 2.0)],
)
def test_matches_eigensolver_form(n, d, c, separation):
    x, y = make_blobs(n, d, c, separation=separation, seed=n + d)
    fast = sfda(x, y)
    slow = sfda_eigen(x.astype(np.float64), y)
    assert fast == pytest.approx(slow, rel=1e-6)


def test_matches_eigensolver_form_at_feature_scale_where_lambda_is_not_at_the_floor():
    # Small-scale features give a small σ, so λ = exp(-5σ) is far from the 1e-10 floor and the
    # shrinkage really matters.
    x, y = make_blobs(400, 24, 6, separation=0.5, seed=3)
    x = x * 0.05
    s_w = np.cov(x.T, bias=True)  # a rough check that λ is substantial here
    assert sfda_shrinkage(float(np.linalg.eigvalsh(s_w)[-1])) > 0.5
    assert sfda(x, y) == pytest.approx(sfda_eigen(x.astype(np.float64), y), rel=1e-6)


def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def test_hand_worked_two_class_example():
    # D = 1, two classes of two samples: class 0 = {-1.5, -0.5}, class 1 = {0.5, 1.5}.
    # Each class has biased variance 0.25, so S_w = 0.5*0.25 + 0.5*0.25 = 0.25. In 1-D the power
    # iteration returns S_w itself: σ = 0.25, λ = exp(-1.25), and the shrunk S̃_w = 0.25 too
    # (tr/D = S_w). With means ∓1 and equal priors, logit_1 - logit_0 = x·(μ1-μ0)/S̃_w = 8x, so
    # p(1|x) = sigmoid(8x).
    x = np.array([[-1.5], [-0.5], [0.5], [1.5]])
    y = np.array([0, 0, 1, 1])
    lam = math.exp(-1.25)
    p_true = [_sigmoid(-8 * v) if k == 0 else _sigmoid(8 * v) for v, k in zip(x[:, 0], y, strict=True)]
    # ConfMix: softmax over the two probabilities gives w = sigmoid(p_true - p_other)
    #          = sigmoid(2 p_true - 1); each sample moves towards the other class's mean (±1).
    w = [_sigmoid(2 * p - 1) for p in p_true]
    other_mean = [1.0, 1.0, -1.0, -1.0]
    mixed = [wi * v + (1 - wi) * m for wi, v, m in zip(w, x[:, 0], other_mean, strict=True)]
    # Second fit on the mixed points with the same λ: in 1-D S̃_w = S_w again.
    m0, m1 = (mixed[0] + mixed[1]) / 2, (mixed[2] + mixed[3]) / 2
    s_w2 = (0.5 * ((mixed[0] - m0) ** 2 + (mixed[1] - m0) ** 2) / 2
            + 0.5 * ((mixed[2] - m1) ** 2 + (mixed[3] - m1) ** 2) / 2)
    s_w2 = (1 - lam) * s_w2 + lam * s_w2

    def logit_diff(v):  # logit_1 - logit_0 of the second LDA
        return v * (m1 - m0) / s_w2 - 0.5 * (m1**2 - m0**2) / s_w2

    p2 = [_sigmoid(-logit_diff(v)) if k == 0 else _sigmoid(logit_diff(v)) for v, k in zip(mixed, y, strict=True)]
    expected = sum(p2) / 4
    assert sfda(x, y) == pytest.approx(expected, rel=1e-12)


def test_power_iteration_is_the_reference_estimate_not_the_exact_eigenvalue():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    # Two nearly equal top eigenvalues: 3 power steps do not converge, and the estimate differs.
    a = q @ np.diag(np.r_[10.0, 9.9, np.linspace(0.1, 1.0, 28)]) @ q.T
    estimate = _largest_eigenvalue_estimate(torch.from_numpy(a))
    assert estimate == pytest.approx(_power_iteration(a), rel=1e-12)
    assert abs(estimate - 10.0) > 1e-4


def test_shrinkage_formula_and_floor():
    assert sfda_shrinkage(0.0) == 1.0
    assert sfda_shrinkage(0.1) == pytest.approx(math.exp(-0.5))
    assert sfda_shrinkage(100.0) == 1e-10


def test_translation_invariant_and_float32_input():
    x, y = make_blobs(300, 16, 4, separation=0.5, seed=7)
    base = sfda(x, y)
    x64 = x.astype(np.float64)  # shift in float64: float32 would round the shifted values
    assert sfda(x64 + 100.0, y) == pytest.approx(base, rel=1e-9)
    assert sfda(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(base, rel=1e-12)


def test_does_not_modify_input():
    x, y = make_blobs(200, 8, 4, seed=2)
    x_before, y_before = x.copy(), y.copy()
    sfda(x, y)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)


def test_more_separable_scores_higher():
    x_hard, y = make_blobs(400, 16, 5, separation=0.2, seed=4)
    x_easy, _ = make_blobs(400, 16, 5, separation=2.0, seed=4)
    assert sfda(x_easy, y) > sfda(x_hard, y)


def test_rank_deficient_features_with_fewer_samples_than_dimensions():
    x, y = make_blobs(60, 200, 3, separation=0.5, seed=5)
    score = sfda(x, y)
    assert 0 < score <= 1


def test_zero_within_class_scatter_raises_clearly():
    x = np.repeat(np.eye(3), 4, axis=0)  # every sample equals its class mean
    y = np.repeat(np.arange(3), 4)
    with pytest.raises(MetricComputationError, match="within-class scatter is zero"):
        sfda(x, y)


def test_needs_two_samples_per_class():
    x, y = make_blobs(20, 4, 3, seed=0)
    y = y.copy()
    y[0] = 7  # a class with one sample
    with pytest.raises(InvalidInputError, match="fewer than 2 samples"):
        sfda(x, y)


def test_solver_falls_back_to_lu_when_cholesky_fails_and_raises_when_singular():
    from fennec.errors import FallbackWarning
    from fennec.metrics.sfda import _solve_spd

    indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    with pytest.warns(FallbackWarning, match="LU instead of Cholesky"):
        solution = _solve_spd(indefinite, b)
    torch.testing.assert_close(indefinite @ solution, b)
    singular = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    with pytest.warns(FallbackWarning), pytest.raises(MetricComputationError, match="singular"):
        _solve_spd(singular, b)
