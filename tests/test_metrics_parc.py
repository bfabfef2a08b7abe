"""PARC: hand-worked answers, parity with the reference pipeline, subsampling, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from conftest import make_blobs
from fennec.errors import InvalidInputError, MetricComputationError
from fennec.metrics import parc
from fennec.metrics.parc import _balanced_subsample, _randomized_pca, _rank_correlation_with_indicator


def slow_parc(x: np.ndarray, y: np.ndarray, n_dims: int = 32) -> float:
    """dbolya/parc's pipeline with scikit-learn / numpy / scipy, label RDM from its exact values.

    The label RDM of one-hot rows is 1 - corr(e_a, e_b): 0 within a class and 1 + 1/(C-1)
    across classes. (``1 - np.corrcoef(one_hot)`` gives these values only up to round-off
    that differs between classes, which would break their ties at random.)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] > n_dims:
        x = PCA(n_components=min(n_dims, x.shape[0] - 1), svd_solver="randomized", random_state=1919,
                iterated_power=1).fit_transform(x)
    x = StandardScaler().fit_transform(x)
    n_classes = len(np.unique(y))
    rdm_f = 1 - np.corrcoef(x)
    rdm_y = np.where(y[:, None] == y[None, :], 0.0, n_classes / (n_classes - 1))
    upper = np.triu_indices(len(y), 1)
    return float(spearmanr(rdm_f[upper], rdm_y[upper])[0] * 100)


# Columns already standardised (mean 0, population std 1), so the scaler leaves them as is;
# D = 2 <= 32, so no PCA. Rows 1, 2 are (1, -1) and rows 3, 4 are (-1, 1).
F = np.array([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]])


def test_known_answers_by_hand():
    # Row correlations: rows 1, 2 identical (corr 1), 3, 4 identical, 1-2 vs 3-4 opposite (corr -1).
    # Pairs in triu order (12, 13, 14, 23, 24, 34): RDM_f = (0, 2, 2, 2, 2, 0).
    # Labels (0, 0, 1, 1): RDM_y = (0, 2, 2, 2, 2, 0) -> identical rankings, Spearman 1 -> 100.
    assert parc(F, [0, 0, 1, 1]) == pytest.approx(100.0, abs=1e-12)
    # Labels (0, 1, 0, 1): RDM_y = (2, 0, 2, 2, 0, 2).
    # Average ranks: RDM_f -> (1.5, 4.5, 4.5, 4.5, 4.5, 1.5), RDM_y -> (4.5, 1.5, 4.5, 4.5, 1.5, 4.5),
    # both with mean 3.5; deviations (-2, 1, 1, 1, 1, -2) and (1, -2, 1, 1, -2, 1):
    # Σ products = -2 - 2 + 1 + 1 - 2 - 2 = -6, Σ squares = 12 each -> ρ = -6/12 = -0.5 -> -50.
    assert parc(F, [0, 1, 0, 1]) == pytest.approx(-50.0, abs=1e-12)
    assert slow_parc(F, np.array([0, 1, 0, 1])) == pytest.approx(-50.0, abs=1e-12)


@pytest.mark.parametrize(
    "n,d,c,sep,seed",
    [
        (200, 64, 5, 0.3, 0),   # PCA on X (N > D)
        (50, 100, 4, 0.3, 1),   # PCA on Xᵀ (N < D), as scikit-learn's randomized SVD transposes
        (300, 16, 7, 0.2, 2),   # D <= 32: no PCA
        (20, 40, 3, 0.5, 3),    # N - 1 = 19 < 32 PCA dimensions
    ],
)
def test_parity_with_reference_pipeline(n, d, c, sep, seed):
    x, y = make_blobs(n, d, c, separation=sep, seed=seed, dtype=np.float64)
    assert parc(x, y) == pytest.approx(slow_parc(x, y), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n,d,k", [(200, 64, 32), (50, 100, 32), (40, 33, 32)])
def test_randomized_pca_matches_sklearn(n, d, k):
    x = np.random.default_rng(n).normal(size=(n, d)) * np.linspace(2, 0.2, d)
    ref = PCA(n_components=k, svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform(x)
    np.testing.assert_allclose(_randomized_pca(torch.tensor(x), k, 1919).numpy(), ref, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_rank_correlation_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 15, size=500) / 7.0  # many ties
    flags = rng.random(500) < (0.2 if seed % 2 else 0.7)
    got = _rank_correlation_with_indicator(torch.tensor(values), torch.tensor(flags))
    assert got == pytest.approx(spearmanr(values, flags)[0], rel=1e-12)
    continuous = rng.random(500)
    got = _rank_correlation_with_indicator(torch.tensor(continuous), torch.tensor(flags))
    assert got == pytest.approx(spearmanr(continuous, flags)[0], rel=1e-12)


def test_balanced_subsample_quotas():
    y = np.repeat([0, 1, 2], [100, 3, 50])
    keep = _balanced_subsample(y, np.bincount(y), 60, 0)
    # Equal share 20; class 1 has only 3, the 57 left go 29 / 28 to classes 0 and 2.
    assert np.bincount(y[keep]).tolist() == [29, 3, 28]
    assert len(set(keep.tolist())) == 60 and np.all(np.diff(keep) > 0)
    np.testing.assert_array_equal(keep, _balanced_subsample(y, np.bincount(y), 60, 0))


def test_subsample_above_cap_is_deterministic_and_consistent():
    x, y = make_blobs(300, 8, 3, separation=0.5, seed=4, dtype=np.float64)
    score = parc(x, y, max_samples=90)
    assert score == parc(x, y, max_samples=90)
    keep = _balanced_subsample(y, np.bincount(y), 90, 1919)
    # The subsample applies to features and labels alike (the reference copy took labels from X).
    assert score == pytest.approx(parc(x[keep], y[keep]), rel=1e-12)
    assert score != parc(x, y, max_samples=90, seed=7)


def test_order_invariant_below_cap():
    x, y = make_blobs(120, 50, 4, separation=0.5, seed=5, dtype=np.float64)
    perm = np.random.default_rng(0).permutation(120)
    assert parc(x[perm], y[perm]) == pytest.approx(parc(x, y), rel=1e-9)


def test_errors():
    x, y = make_blobs(30, 4, 3)
    with pytest.raises(InvalidInputError, match="at least 2 dimensions"):
        parc(x[:, :1], y)
    with pytest.raises(InvalidInputError, match="every class has a single sample"):
        parc(x[:3], [0, 1, 2])
    with pytest.raises(InvalidInputError, match="n_dims must be an integer >= 2"):
        parc(x, y, n_dims=1)
    with pytest.raises(InvalidInputError, match="max_samples"):
        parc(x, y, max_samples=5)
    with pytest.raises(InvalidInputError, match="seed must be an integer"):
        parc(x, y, seed=-3)


def test_constant_sample_is_a_computation_error():
    # The two columns are permutations of each other, so they standardise identically and
    # rows 3 and 4, equal across columns, become constant vectors with no correlation.
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 3.0]])
    with pytest.raises(MetricComputationError, match="constant standardised feature vector"):
        parc(x, [0, 0, 1, 1])


def test_range():
    x, y = make_blobs(100, 40, 4, separation=5.0, seed=6)
    assert 0 < parc(x, y) <= 100
    assert math.isfinite(parc(x, np.random.default_rng(0).permutation(y)))
