"""SFDA: Self-challenging Fisher Discriminant Analysis.

Shao, Zhao, Xie, Zhang, Luo. "Not All Models Are Equal: Predicting Model Transferability in
a Self-challenging Fisher Space". ECCV 2022. https://arxiv.org/abs/2207.03036

The score follows the published algorithm and the authors' code (TencentARC/SFDA) step by
step, with one change of *method*, not of result: the reference solves the generalised
eigenproblem ``eigh(S_b, S̃_w)`` and keeps all D eigenvectors W, so its classifier is
``μ W Wᵀ = μ S̃_w⁻¹`` (W is S̃_w-orthonormal). We compute ``S̃_w⁻¹ μᵀ`` with one Cholesky
solve instead of an O(D³) generalised eigensolve; S_b drops out. The two agree to ~1e-9
relative (tests/test_metrics_sfda.py; benchmark/metrics_speed.py measures both).

Departures from the reference code, all deliberate:
  * the caller's features are never modified (the reference's ConfMix writes into X);
  * ConfMix is done in float64 (the reference writes the mixed features back into the
    caller's dtype, e.g. float32), which changes scores by ~1e-7 relative;
  * a within-class scatter that is exactly zero raises MetricComputationError (the
    reference divides by zero and returns NaN).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..errors import FallbackWarning, MetricComputationError
from ._common import class_means
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, normalise_scale

__all__ = ["sfda", "sfda_shrinkage"]

_NAME = "sfda"
# λ = max(exp(-A · σ), 1e-10): A = 5 is the "a" of eq. 3 (authors, TencentARC/SFDA issue #3).
_SHRINKAGE_A = 5.0
_SHRINKAGE_FLOOR = 1e-10
_POWER_ITERATIONS = 3


def _within_scatter(x: torch.Tensor, y: torch.Tensor,
                    n_classes: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``S_w = Σ_c π_c · cov_bias(X_c)`` (D, D), the class means (C, D) and tr(XᵀX)/N.

    Σ_c (n_c/N)(1/n_c) Σ_{i∈c} (x_i-μ_c)(x_i-μ_c)ᵀ = (XᵀX − Σ_c n_c μ_c μ_cᵀ) / N: one Gram
    product of the features and a rank-C correction, instead of C covariances (or a class-
    centred copy of X). ``x`` must be globally centred (the caller ensures it), which keeps the
    subtraction well conditioned: the correction is then the between-class scatter only.
    """
    means, counts = class_means(x, y, n_classes)  # (C, D), (C,)
    scatter = x.T @ x  # (D, D)
    total_trace = float(torch.trace(scatter)) / x.shape[0]
    weighted_means = means * counts[:, None]
    scatter -= means.T @ weighted_means
    scatter /= x.shape[0]
    return scatter, means, total_trace


def _largest_eigenvalue_estimate(a: torch.Tensor) -> float:
    """The reference's 3-step power iteration (``utils.iterative_A``), not the exact eigenvalue.

    Start from the row sums; each iteration does two normalised mat-vecs; return xᵀ A y.
    The published λ depends on this estimate, so we reproduce it rather than calling eigvalsh.
    """
    x = a.sum(dim=1)
    v = x
    for _ in range(_POWER_ITERATIONS):
        t = a @ x
        norm = torch.linalg.vector_norm(t)
        if norm == 0:
            return 0.0
        v = t / norm
        t = a @ v
        norm = torch.linalg.vector_norm(t)
        if norm == 0:
            return 0.0
        x = t / norm
    return float(x @ (a @ v))


def sfda_shrinkage(within_scatter_largest_eigenvalue: float) -> float:
    """SFDA's adaptive regularisation ``λ = max(exp(-5σ), 1e-10)`` (eq. 3)."""
    return max(math.exp(-_SHRINKAGE_A * within_scatter_largest_eigenvalue), _SHRINKAGE_FLOOR)


def _solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a⁻¹ b`` for a symmetric positive definite ``a``: Cholesky, LU if that fails."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b, chol)
    # Numerically indefinite (tiny λ on rank-deficient features). The reference's eigh would
    # raise here; an LU solve of the same system still gives the LDA coefficients.
    warnings.warn(
        "sfda: the regularised within-class scatter is not numerically positive definite "
        "(rank-deficient features with a tiny adaptive λ); solving with LU instead of Cholesky.",
        FallbackWarning,
        stacklevel=3,
    )
    try:
        return torch.linalg.solve(a, b)
    except RuntimeError as exc:  # torch.linalg.LinAlgError subclasses RuntimeError
        raise MetricComputationError(
            _NAME, f"the regularised within-class scatter is singular ({exc}). "
            "Reduce the feature dimension (e.g. PCA) or pass more samples than dimensions."
        ) from None


def _fit_predict(x: torch.Tensor, y: torch.Tensor, n_classes: int, log_priors: torch.Tensor,
                 shrinkage: float | None, scale_exponent: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One regularised-LDA fit and its posteriors on the same samples.

    ``x`` are the features divided by ``2**scale_exponent`` (:func:`normalise_scale`): the
    posteriors do not depend on that factor for a given λ (S̃_w⁻¹ scales by 4**e, μ and x by
    2**-e), but λ does, so it is computed from the eigenvalue in the features' own scale.

    Returns (posteriors (N, C), class means (C, D), the shrinkage used).
    """
    d = x.shape[1]
    s_w, means, total_trace = _within_scatter(x, y, n_classes)  # (D, D), (C, D), float
    mu = torch.trace(s_w) / d
    # Rounding in the Gram form leaves ~1e-16 of the total scatter where S_w is exactly zero.
    if mu * d <= 1e-12 * total_trace:
        raise MetricComputationError(
            _NAME, "the within-class scatter is zero: every sample equals its class mean. "
            "Such features separate the classes perfectly but give SFDA nothing to measure; "
            "check that the features are not constant per class by construction."
        )
    if shrinkage is None:
        sigma = _largest_eigenvalue_estimate(s_w)
        try:
            sigma = math.ldexp(sigma, 2 * scale_exponent)  # back to the features' own scale
        except OverflowError:
            sigma = math.inf  # exp(-5σ) = 0: λ is at its floor
        shrinkage = sfda_shrinkage(sigma)
    s_w_shrunk = s_w.mul_(1.0 - shrinkage)
    s_w_shrunk.diagonal().add_(shrinkage * mu)
    coef = _solve_spd(s_w_shrunk, means.T.contiguous()).T  # (C, D) = μ S̃_w⁻¹
    intercept = -0.5 * (means * coef).sum(dim=1) + log_priors  # (C,)
    logits = torch.addmm(intercept, x, coef.T)  # (N, C)
    return torch.softmax(logits, dim=1), means, shrinkage


@register_metric(_NAME, paper="Shao et al., Not All Models Are Equal, ECCV 2022, https://arxiv.org/abs/2207.03036")
def sfda(features: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    r"""SFDA score: mean posterior of the true class under a self-challenged Fisher classifier.

    1. Fit shrinkage-LDA on the features: within scatter :math:`S_w = \sum_c \pi_c\,\mathrm{cov}(X_c)`,
       :math:`\lambda = \max(e^{-5\sigma}, 10^{-10})` with :math:`\sigma` the 3-step power-iteration
       estimate of the largest eigenvalue of :math:`S_w`,
       :math:`\tilde S_w = (1-\lambda) S_w + \lambda \frac{\mathrm{tr} S_w}{D} I`, posteriors
       :math:`p(c|x) = \mathrm{softmax}_c(x^\top \tilde S_w^{-1}\mu_c - \tfrac12 \mu_c^\top \tilde S_w^{-1}\mu_c + \log\pi_c)`.
    2. ConfMix: soften :math:`\tilde p = \mathrm{softmax}(p)` (a softmax of probabilities), and move
       each sample of class c towards the mean of the other classes' means:
       :math:`x \leftarrow \tilde p_c(x)\,x + (1-\tilde p_c(x))\,\bar\mu_{-c}`.
    3. Refit on the mixed features with the same :math:`\lambda`;
       score :math:`= \frac1N \sum_i p(y_i|x_i)` (no log, as in the reference).

    Shape:
        features: (N, D) penultimate features. labels: (N,) class labels (any values; remapped).

    Args:
        features: penultimate features of the model on the target samples.
        labels: class label of each sample; at least 2 classes, 2 samples per class.
        device: compute device; default the input tensor's device, else CUDA if available.

    Returns:
        The score in (0, 1]; higher means more transferable.

    Raises:
        InvalidInputError: bad shapes, non-finite values, fewer than 2 classes or a class with
            fewer than 2 samples.
        MetricComputationError: degenerate features with zero within-class scatter.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import sfda
        >>> x = np.random.default_rng(0).normal(size=(200, 16)); y = np.arange(200) % 4
        >>> 0 < sfda(x, y) <= 1
        True
    """  # noqa: E501 - one formula per line
    checked = check_features_labels(features, labels, metric=_NAME, min_per_class=2, device=device)
    x, y, c = checked.values, checked.labels, checked.n_classes
    # The score is translation invariant (shifting every x and μ_c by b adds only class-
    # independent terms to the logits, and ConfMix is affine): centre once, in place on our
    # private copy, so the scatter's Gram form stays well conditioned.
    x -= x.mean(dim=0)
    # Extreme scales (1e-300, 1e150) would underflow / overflow the scatter: compute on x / 2**e
    # (exact) and put the scale back into λ, the one scale-dependent quantity.
    scale_exponent = normalise_scale(x)
    log_priors = torch.log(torch.as_tensor(checked.class_counts / len(y), dtype=x.dtype, device=x.device))

    prob, means, shrinkage = _fit_predict(x, y, c, log_priors, shrinkage=None, scale_exponent=scale_exponent)

    # ConfMix, with the double softmax of the reference.
    soft = torch.softmax(prob, dim=1)
    w = soft.gather(1, y[:, None])  # (N, 1) softened p(y_i|x_i)
    outer_means = (means.sum(dim=0, keepdim=True) - means) / (c - 1)  # (C, D) mean of the other classes' means
    mixed = torch.addcmul(outer_means[y] * (1 - w), x, w)  # w·x + (1-w)·μ̄_{-y}
    mixed -= mixed.mean(dim=0)

    prob, _, _ = _fit_predict(mixed, y, c, log_priors, shrinkage=shrinkage)
    return finite_score(prob.gather(1, y[:, None]).mean(), metric=_NAME)
