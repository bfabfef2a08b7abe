"""H-score and its shrinkage-regularised version.

* H-score: Bao, Li, Huang, Zheng. "An Information-Theoretic Approach to Transferability in
  Task Transfer Learning". ICIP 2019. https://ieeexplore.ieee.org/document/8803726
* Regularised H-score: Ibrahim, Ponomareva, Mazumder. "Newer is not always better:
  Rethinking transferability metrics, their peculiarities, stability and performance".
  ECML PKDD 2022. https://arxiv.org/abs/2110.06893

Both follow tllib (``ranking/hscore.py``: ``h_score`` and ``regularized_h_score``) in
float64. The Ledoit–Wolf shrinkage is computed here from its closed form (Ledoit & Wolf,
"A well-conditioned estimator for large-dimensional covariance matrices", J. Multivariate
Analysis 2004), which is what ``sklearn.covariance.LedoitWolf`` implements; tests check the
two agree.
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import class_means
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, normalise_scale

__all__ = ["hscore", "hscore_regularized"]

# numpy.linalg.pinv(cov, rcond=1e-15) in tllib: singular values below 1e-15 · σ_max are dropped.
_PINV_RCOND = 1e-15


def _between_trace(precision: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``tr(precision · cov(g))`` with g_i the mean feature of x_i's class, cov unbiased (np.cov).

    cov(g) = Σ_c n_c/(N-1) (μ_c - μ)(μ_c - μ)ᵀ, so the trace is a weighted sum of C quadratic
    forms: no (N, D) matrix g and no (D, D) product are formed.
    """
    n = x.shape[0]
    means, counts = class_means(x, y, n_classes)  # (C, D), (C,)
    centred_means = means - x.mean(dim=0)  # (C, D); the mean of g is the mean of x
    quad = ((centred_means @ precision) * centred_means).sum(dim=1)  # (C,)
    return (counts * quad).sum() / (n - 1)


def _ledoit_wolf(xc: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Ledoit–Wolf shrunk covariance of *centred* ``xc`` (N, D) and its shrinkage α in [0, 1].

    With S = XᵀX/N (biased), m = tr(S)/D, d² = ‖S - mI‖²_F / D and
    b̄² = (1/(N D)) · ((1/N) Σ_i ‖x_i‖⁴ - ‖S‖²_F):  α = min(b̄², d²) / d²,
    Σ_α = (1 - α) S + α m I. When d² = 0 (S already a multiple of I, e.g. D = 1) α = 0.
    """
    n, d = xc.shape
    s = xc.T @ xc / n  # (D, D)
    mu = torch.trace(s) / d
    s_fro2 = (s * s).sum()
    delta2 = (s_fro2 - 2 * mu * torch.trace(s) + d * mu * mu) / d  # ‖S - mI‖²_F / D
    row_norm4 = (xc * xc).sum(dim=1).square().sum()  # Σ_i ‖x_i‖⁴
    beta2_bar = (row_norm4 / n - s_fro2) / (n * d)
    delta2_f, beta2_f = float(delta2), float(beta2_bar)
    alpha = 0.0 if delta2_f <= 0 else min(max(beta2_f, 0.0), delta2_f) / delta2_f
    shrunk = (1 - alpha) * s
    shrunk.diagonal().add_(alpha * mu)
    return shrunk, alpha


@register_metric(
    "hscore",
    scale_invariant=True,
    paper=(
        "Bao, Li, Huang, Zheng. An Information-Theoretic Approach to Transferability in Task "
        "Transfer Learning. ICIP 2019. https://ieeexplore.ieee.org/document/8803726"
    ),
)
def hscore(features: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    """H-score: class-mean covariance measured in the inverse feature covariance (higher is better).

    Bao, Li, Huang, Zheng. "An Information-Theoretic Approach to Transferability in Task
    Transfer Learning". ICIP 2019. https://ieeexplore.ieee.org/document/8803726

    With ``g_i = μ_{y_i}`` the mean feature of sample i's class and ``cov`` the unbiased
    covariance (``numpy.cov``, divisor N - 1):

    .. math::

        H(f) = \\operatorname{tr}\\big(\\operatorname{cov}(f)^{+} \\operatorname{cov}(g)\\big)

    where ``⁺`` is the Moore–Penrose pseudo-inverse with relative cutoff ``1e-15``.

    Args:
        features: ``(N, D)`` penultimate features of the target samples.
        labels: ``(N,)`` class labels, integers or strings.
        device: Where to compute. Default: the device of ``features`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The H-score, ``>= 0``; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_features_labels`).

    Shape:
        - features: ``(N, D)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Same formula and cutoff as tllib ``h_score``; differences: computed in float64 (tllib
        keeps the caller's dtype, e.g. float32), the pseudo-inverse is taken with a symmetric
        eigendecomposition (``cov(f)`` is symmetric PSD, so its singular values are its
        eigenvalues), and ``tr(cov(f)⁺ cov(g))`` is evaluated as a weighted sum over the C class
        means instead of forming the (N, D) matrix g. When N ≤ D (or features are
        rank-deficient), ``cov(f)`` is singular and the tiny cutoff keeps round-off eigenvalues,
        so the score is numerically unstable, as in the reference: prefer
        :func:`hscore_regularized` there.

    Example:
        >>> from fennec.metrics import hscore
        >>> round(hscore([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1], device="cpu"), 6)  # 16/3 / 20/3
        0.8
    """
    checked = check_features_labels(features, labels, metric="hscore", device=device)
    x, y = checked.values, checked.labels
    normalise_scale(x)  # scale-invariant: cov(f)⁺ scales by 1/s², cov(g) by s²
    xc = x - x.mean(dim=0)
    cov_f = xc.T @ xc / (x.shape[0] - 1)  # (D, D), unbiased like np.cov
    precision = torch.linalg.pinv(cov_f, rtol=_PINV_RCOND, hermitian=True)  # (D, D)
    score = _between_trace(precision, x, y, checked.n_classes)
    return finite_score(score, metric="hscore")


@register_metric(
    "hscore_regularized",
    scale_invariant=True,
    paper=(
        "Ibrahim, Ponomareva, Mazumder. Newer is not always better: Rethinking transferability "
        "metrics, their peculiarities, stability and performance. ECML PKDD 2022. "
        "https://arxiv.org/abs/2110.06893"
    ),
)
def hscore_regularized(features: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    """Regularised H-score: H-score with a Ledoit–Wolf shrunk feature covariance (higher is better).

    Ibrahim, Ponomareva, Mazumder. "Newer is not always better: Rethinking transferability
    metrics, their peculiarities, stability and performance". ECML PKDD 2022.
    https://arxiv.org/abs/2110.06893

    On the centred features, with ``Σ_α`` the Ledoit–Wolf covariance (biased empirical
    covariance S shrunk towards ``(tr S / D) I`` with the data-driven intensity α) and
    ``cov(g)`` the unbiased covariance of the class-mean features:

    .. math::

        H_\\alpha(f) = \\operatorname{tr}\\big(\\Sigma_\\alpha^{+} (1 - \\alpha)
            \\operatorname{cov}(g)\\big), \\qquad
        \\Sigma_\\alpha = (1 - \\alpha) S + \\alpha \\frac{\\operatorname{tr} S}{D} I

    Args:
        features: ``(N, D)`` penultimate features of the target samples.
        labels: ``(N,)`` class labels, integers or strings.
        device: Where to compute. Default: the device of ``features`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The regularised H-score, ``>= 0``; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_features_labels`).

    Shape:
        - features: ``(N, D)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Same as tllib ``regularized_h_score`` (float64, centred features, Ledoit–Wolf with the
        biased covariance as in ``sklearn.covariance.LedoitWolf(assume_centered=False)``,
        ``cov(g)`` unbiased, pseudo-inverse cutoff 1e-15). The shrinkage is computed in closed
        form in torch rather than by scikit-learn; the two agree to round-off. When the
        empirical covariance is already a multiple of the identity (e.g. D = 1) the shrinkage
        is 0, as in scikit-learn.

    Example:
        >>> from fennec.metrics import hscore_regularized
        >>> round(hscore_regularized([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1], device="cpu"), 6)  # 16/3 / 5
        1.066667
    """
    checked = check_features_labels(features, labels, metric="hscore_regularized", device=device)
    x, y = checked.values, checked.labels
    normalise_scale(x)  # scale-invariant (α is a ratio of s⁴ terms); keeps Σ‖x‖⁴ in range
    xc = x - x.mean(dim=0)  # centre first: Ledoit–Wolf's intensity assumes centred data
    cov_alpha, alpha = _ledoit_wolf(xc)
    precision = torch.linalg.pinv(cov_alpha, rtol=_PINV_RCOND, hermitian=True)
    score = (1 - alpha) * _between_trace(precision, xc, y, checked.n_classes)
    return finite_score(score, metric="hscore_regularized")
