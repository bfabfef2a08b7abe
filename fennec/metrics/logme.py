"""LogME: the log maximum evidence of a Bayesian linear model on the features.

You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning". ICML 2021. https://arxiv.org/abs/2102.11005 ; fixed-point algorithm from
"Ranking and Tuning Pre-trained Models: A New Paradigm for Exploiting Model Hubs", JMLR 2022,
https://arxiv.org/abs/2110.10545

Per class c, a one-vs-rest target t = 1[y = c] is regressed on the features with a Gaussian
prior of precision α on the weights and noise precision β; α and β maximise the evidence
p(t | F, α, β) by the fixed-point iteration of the authors' code (at most 11 steps from
α = β = 1, stop when α/β changes by ≤ 1e-3 relative, 1e-5 added to both denominators).
The score is the mean over classes of the log evidence divided by N.

One correction to the authors' code (thuml/LogME issue #23, PR #24): the determinant term
``½ log|αI + βFᵀF|`` must run over all D eigenvalues of FᵀF. The authors' code sums only the
non-zero spectrum, which drops (D − rank)·log α when N < D or the features are
rank-deficient and inflates the score with D. Where FᵀF has full rank (N > D, independent
features) the two are identical, which tests/test_metrics_logme.py checks against
:func:`fennec.metrics._reference.logme_fixed_point`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._common import one_hot
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, ldexp_, normalise_scale, scale_error

__all__ = ["logme"]

_NAME = "logme"
_MAX_ITERATIONS = 11
_TOLERANCE = 1e-3
_EPS = 1e-5
# Eigenvalues of FᵀF below this are treated as exact zeros (singular values below 1e-10,
# the authors' rank threshold).
_ZERO_EIGENVALUE = 1e-20


def _spectrum(f: torch.Tensor, targets: torch.Tensor, scale_exponent: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-zero eigenvalues σ (k,) of FᵀF and the targets in the matching left singular basis (k, C).

    Uses the smaller Gram matrix: FᵀF (D×D) when N > D, FFᵀ (N×N) otherwise. Both share the
    non-zero eigenvalues; for FᵀF = V Σ Vᵀ the left singular vectors are U = F V Σ^-½.
    ``f`` may be the features divided by ``2**scale_exponent``: the basis does not depend on
    it, and σ (and the zero threshold) are in the features' own scale.
    """
    n, d = f.shape
    if n > d:
        evals, evecs = torch.linalg.eigh(f.T @ f)  # (D,), (D, D)
        keep = ldexp_(evals.clone(), 2 * scale_exponent) > _ZERO_EIGENVALUE
        sigma, v = evals[keep], evecs[:, keep]  # (k,), (D, k)
        x = (v.T @ (f.T @ targets)) / sigma.sqrt()[:, None]  # Uᵀt = Σ^-½ Vᵀ Fᵀ t, (k, C)
    else:
        evals, evecs = torch.linalg.eigh(f @ f.T)  # (N,), (N, N)
        keep = ldexp_(evals.clone(), 2 * scale_exponent) > _ZERO_EIGENVALUE
        sigma, u = evals[keep], evecs[:, keep]  # (k,), (N, k)
        x = u.T @ targets  # (k, C)
    return ldexp_(sigma, 2 * scale_exponent), x


def _log_evidence(sigma: torch.Tensor, x: torch.Tensor, targets: torch.Tensor,
                  d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-column maximum log evidence / N for targets (N, C) given the spectrum (σ (k,), x (k, C)).

    Returns (evidence / N, α, β), each of shape (C,).

    All C columns iterate together; a column stops updating once it has converged, so the
    result equals running the authors' per-class loop column by column.
    """
    n = targets.shape[0]
    k = sigma.shape[0]
    s = sigma[:, None]  # (k, 1)
    x2 = x.square()  # (k, C)
    res_x2 = targets.square().sum(dim=0) - x2.sum(dim=0)  # (C,) energy of t outside span(F)
    c = targets.shape[1]
    alpha = torch.ones(c, dtype=x.dtype, device=x.device)
    beta = torch.ones_like(alpha)
    m2 = torch.zeros_like(alpha)
    res2 = torch.zeros_like(alpha)
    active = torch.ones(c, dtype=torch.bool, device=x.device)
    for _ in range(_MAX_ITERATIONS):
        t = alpha / beta  # (C,)
        gamma = (s / (s + t)).sum(dim=0)
        new_m2 = (s * x2 / (t + s).square()).sum(dim=0)
        new_res2 = (x2 / (1 + s / t).square()).sum(dim=0) + res_x2
        new_alpha = gamma / (new_m2 + _EPS)
        new_beta = (n - gamma) / (new_res2 + _EPS)
        alpha = torch.where(active, new_alpha, alpha)
        beta = torch.where(active, new_beta, beta)
        m2 = torch.where(active, new_m2, m2)
        res2 = torch.where(active, new_res2, res2)
        active &= (alpha / beta - t).abs() / t > _TOLERANCE
        if not bool(active.any()):
            break
    # ½ log|αI + βFᵀF| over all D eigenvalues: the D − k zero eigenvalues add log α each.
    log_det = torch.log(alpha + beta * s).sum(dim=0) + (d - k) * torch.log(alpha)
    evidence = (
        d / 2.0 * torch.log(alpha)
        + n / 2.0 * torch.log(beta)
        - 0.5 * log_det
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n / 2.0 * math.log(2 * math.pi)
    )
    return evidence / n, alpha, beta


@register_metric(_NAME, paper="You et al., LogME, ICML 2021, https://arxiv.org/abs/2102.11005")
def logme(features: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    r"""LogME score: mean per-class log maximum evidence of a Bayesian linear model, divided by N.

    .. math::
        \mathcal L_c = \frac1N\Big(\frac D2\log\alpha + \frac N2\log\beta
        - \frac12\log|\alpha I + \beta F^\top F| - \frac\beta2\|Fm - t_c\|^2
        - \frac\alpha2\|m\|^2 - \frac N2\log 2\pi\Big), \qquad
        \mathrm{LogME} = \frac1C\sum_c \mathcal L_c

    with :math:`t_c = 1[y=c]`, :math:`m` the posterior mean weights and α, β at the fixed point.

    Shape:
        features: (N, D). labels: (N,) class labels (any values; remapped to 0..C-1).

    Args:
        features: penultimate features of the model on the target samples (not normalised:
            the score depends on the feature scale, as in the reference).
        labels: class label of each sample; at least 2 classes.
        device: compute device; default the input tensor's device, else CUDA if available.

    Returns:
        The score (a log evidence per sample, usually in about [-2, 2]); higher is better.

    Raises:
        InvalidInputError: bad shapes, non-finite values, fewer than 2 classes.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import logme
        >>> x = np.random.default_rng(0).normal(size=(300, 32)); y = np.arange(300) % 3
        >>> isinstance(logme(x, y), float)
        True
    """
    checked = check_features_labels(features, labels, metric=_NAME, device=device)
    f = checked.values
    e = normalise_scale(f)  # the Gram of f / 2**e cannot overflow; σ is put back in scale
    targets = one_hot(checked.labels, checked.n_classes, dtype=f.dtype)  # (N, C)
    sigma, x = _spectrum(f, targets, e)
    if sigma.numel() == 0:
        raise scale_error(_NAME, f, e, "every singular value of the features is below 1e-10, the rank threshold of "
                          "the reference, so they are numerically zero for LogME and its evidence is undefined")
    if not bool(torch.isfinite(sigma).all()):
        raise scale_error(_NAME, f, e, "the eigenvalues of FᵀF overflow float64")
    evidence, _, _ = _log_evidence(sigma, x, targets, f.shape[1])
    score = evidence.mean()
    if not bool(torch.isfinite(score)) and e > 0:
        raise scale_error(_NAME, f, e, f"the evidence overflows float64 (FᵀF's largest eigenvalue is "
                          f"{float(sigma.max()):.1e})")
    return finite_score(score, metric=_NAME)
