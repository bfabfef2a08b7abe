"""NLEEP: parity with the reference pipeline, determinism, fallbacks and option checks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from conftest import make_blobs
from fennec.errors import FallbackWarning, InvalidInputError, MetricComputationError
from fennec.metrics import leep, nleep
from fennec.metrics.nleep import _pca_scores


def slow_log_leep(theta: np.ndarray, labels: np.ndarray) -> float:
    n, k = theta.shape
    joint = np.zeros((labels.max() + 1, k))
    for i in range(n):
        joint[labels[i]] += theta[i] / n
    conditional = joint / joint.sum(axis=0, keepdims=True)
    return float(np.mean([math.log(theta[i] @ conditional[labels[i]]) for i in range(n)]))


def reference_pipeline(x: np.ndarray, y: np.ndarray, ratio: int, seed: int) -> float:
    """SFDA/PED ``NLEEP`` (PCA 0.8, GaussianMixture(ratio·C)) seeded, then the *log* LEEP."""
    z = PCA(n_components=0.8).fit_transform(x)
    with threadpool_limits(1):  # tiny problems: threads only add overhead (results unchanged)
        gmm = GaussianMixture(n_components=ratio * (y.max() + 1), random_state=seed).fit(z)
        return slow_log_leep(gmm.predict_proba(z), y)


@pytest.mark.parametrize("n,d,c,ratio,seed", [(150, 20, 3, 5, 0), (60, 100, 4, 5, 1), (200, 10, 5, 1, 2)])
def test_parity_with_reference_pipeline(n, d, c, ratio, seed):
    x, y = make_blobs(n, d, c, separation=0.5, seed=seed, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the mixture, if any
        expected = reference_pipeline(x, y, ratio, seed)
        got = nleep(x, y, component_ratio=ratio, seed=seed)
    assert got == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("n,d", [(80, 12), (30, 50)])
def test_pca_keeps_same_components_as_sklearn(n, d):
    x = np.random.default_rng(0).normal(size=(n, d)) * np.linspace(3, 0.1, d)
    ours = _pca_scores(torch.tensor(x), 0.8).numpy()
    ref = PCA(n_components=0.8).fit_transform(x)
    assert ours.shape == ref.shape
    # Same scores up to the sign of each component.
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-8, atol=1e-10)


def test_equals_leep_of_the_mixture_posteriors():
    """NLEEP is the log LEEP, the same function fennec.metrics.leep computes."""
    x, y = make_blobs(90, 6, 3, separation=1.0, seed=4, dtype=np.float64)
    z = _pca_scores(torch.tensor(x), 0.8).numpy()
    with threadpool_limits(1):
        posteriors = GaussianMixture(15, random_state=0).fit(z).predict_proba(z)
    assert nleep(x, y, seed=0) == pytest.approx(leep(posteriors, y), rel=1e-10)


def test_deterministic_given_seed():
    x, y = make_blobs(120, 10, 4, separation=0.7, seed=5)
    scores = {nleep(x, y, seed=3) for _ in range(3)}
    assert len(scores) == 1
    assert nleep(torch.tensor(x), torch.tensor(y), seed=3) == scores.pop()


def test_fallback_when_full_covariance_fails():
    # Features of magnitude ~1e6 with ~4 samples per component: the round-off of each
    # component's covariance (~1e12 · 1e-16) exceeds scikit-learn's reg_covar=1e-6, so the
    # full-covariance fit reports "ill-defined empirical covariance".
    x, y = make_blobs(60, 16, 3, separation=0.5, seed=0, dtype=np.float64)
    with pytest.warns(FallbackWarning, match="fell back to covariance_type="):
        score = nleep(x * 1e6, y)
    assert math.isfinite(score)
    # The relative reg_covar of the fallback makes it scale-free: same as the unscaled data.
    assert score == pytest.approx(nleep(x, y), abs=1e-3)


def test_every_mixture_failing_raises(monkeypatch):
    def failing_fit(self, X, y=None):
        raise ValueError("Fitting the mixture model failed because some components have ill-defined covariance")

    monkeypatch.setattr(GaussianMixture, "fit", failing_fit)
    x, y = make_blobs(60, 8, 3)
    with pytest.raises(MetricComputationError, match="could not be fitted with any covariance setting"):
        nleep(x, y)


def test_components_capped_at_sample_count():
    x, y = make_blobs(10, 4, 5, separation=3.0, seed=1)  # 2 samples per class, 25 > 10 components
    with pytest.warns(FallbackWarning, match="exceeds the 10 samples; using 10 components"):
        score = nleep(x, y)
    assert math.isfinite(score)


def test_needs_two_samples_per_class():
    x, y = make_blobs(30, 4, 3)
    y = y.copy()
    y[0] = 7
    with pytest.raises(InvalidInputError, match="fewer than 2 samples: 7"):
        nleep(x, y)


def test_separable_scores_near_zero():
    x, y = make_blobs(150, 10, 3, separation=6.0, seed=2)
    assert -0.05 < nleep(x, y) <= 0.0


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"component_ratio": 0}, "component_ratio must be a positive integer"),
        ({"component_ratio": 2.5}, "component_ratio must be a positive integer"),
        ({"pca_variance": 0.0}, "pca_variance must be a fraction in (0, 1]"),
        ({"pca_variance": 1.5}, "pca_variance must be a fraction in (0, 1]"),
        ({"seed": -1}, "seed must be an integer"),
        ({"seed": None}, "seed must be an integer"),
    ],
)
def test_bad_options(kwargs, fragment):
    x, y = make_blobs(30, 4, 3)
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace("]", r"\]")):
        nleep(x, y, **kwargs)


def test_full_variance_keeps_all_components():
    x, y = make_blobs(60, 5, 3, separation=1.0, seed=3, dtype=np.float64)
    assert _pca_scores(torch.tensor(x), 1.0).shape == (60, 5)
    assert math.isfinite(nleep(x, y, pca_variance=1.0, component_ratio=1))
