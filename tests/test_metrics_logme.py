"""LogME: parity with the authors' fixed-point algorithm where it is right, correctness where it is not."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from conftest import make_blobs
from fennec.metrics import logme
from fennec.metrics._common import one_hot
from fennec.metrics._reference import logme_fixed_point, logme_icml
from fennec.metrics.logme import _log_evidence, _spectrum


@pytest.mark.parametrize("n, d, c", [(600, 32, 5), (2000, 256, 20), (300, 64, 10), (100, 3, 2)])
def test_equals_reference_fixed_point_when_n_exceeds_d(n, d, c):
    x, y = make_blobs(n, d, c, separation=0.3, seed=n)
    assert logme(x, y) == pytest.approx(logme_fixed_point(x, y), rel=1e-9)


def test_fewer_samples_than_dimensions_matches_icml_form_not_the_buggy_fixed_point():
    # thuml/LogME #23: with N < D the fixed-point code drops (D - N)·log α from the determinant.
    x, y = make_blobs(150, 400, 5, separation=0.3, seed=11)
    ours = logme(x, y)
    icml = logme_icml(x, y)
    buggy = logme_fixed_point(x, y)
    assert ours == pytest.approx(icml, abs=2e-3)  # the ICML iteration stops at 1 % instead of 0.1 %
    assert buggy - ours > 1.0  # the reference score is inflated


def test_rank_deficient_features_with_more_samples_than_dimensions():
    x, y = make_blobs(500, 20, 4, separation=0.3, seed=12)
    x = np.hstack([x, x[:, :10] * 2.0, np.zeros((500, 5), dtype=x.dtype)])  # rank 20 of D = 35
    # The determinant must count the zero eigenvalues (log α each), as the ICML form does.
    assert logme(x, y) == pytest.approx(logme_icml(x, y), abs=2e-3)


def test_evidence_is_the_marginal_likelihood_of_the_bayesian_linear_model():
    # The evidence formula must equal log N(t | 0, β⁻¹ I + α⁻¹ F Fᵀ) / N at the fitted α, β.
    # (The fitted value evaluates m² and ‖Fm - t‖² at the previous iterate, exactly as the
    # authors' code does, so it matches the density to the iteration's tolerance.)
    x, y = make_blobs(60, 5, 2, separation=0.5, seed=13)
    f = torch.from_numpy(x.astype(np.float64))
    targets = one_hot(torch.from_numpy(y), 2)
    sigma, proj = _spectrum(f, targets)
    evidence, alpha, beta = _log_evidence(sigma, proj, targets, d=5)
    for c in range(2):
        cov = np.eye(60) / float(beta[c]) + x.astype(np.float64) @ x.T.astype(np.float64) / float(alpha[c])
        density = scipy.stats.multivariate_normal(mean=np.zeros(60), cov=cov).logpdf(targets[:, c].numpy()) / 60
        assert float(evidence[c]) == pytest.approx(density, abs=1e-3)


def test_more_separable_scores_higher_and_scale_matters_as_in_reference():
    x_hard, y = make_blobs(500, 16, 5, separation=0.1, seed=4)
    x_easy, _ = make_blobs(500, 16, 5, separation=2.0, seed=4)
    assert logme(x_easy, y) > logme(x_hard, y)


def test_torch_and_numpy_agree():
    x, y = make_blobs(300, 16, 4, seed=1)
    assert logme(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(logme(x, y), rel=1e-12)
