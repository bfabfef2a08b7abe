"""TransRate: mutual information between features and labels, estimated by coding rates.

Huang, Huang, Rong, Yang, Wei. "Frustratingly Easy Transferability Estimation". ICML 2022.
https://arxiv.org/abs/2106.09362

fennec follows tllib ``ranking/transrate.py`` in float64, with the log-determinants taken on
the smaller of the two Gram matrices (Sylvester's identity), so the cost is
O(N · D · min(N, D)) rather than O(D³) per class.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import InvalidInputError
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, normalise_scale, scale_error

__all__ = ["transrate"]

_NAME = "transrate"
# The Cholesky form is used while the largest entry of ZᵀZ/(nε) lies in this range; below it
# 1 + a loses a's digits (the features are tiny against ε), above it I + ZᵀZ/(nε) could overflow.
_CHOLESKY_RANGE = (1e-3, 1e250)
# The largest term of a coding rate below exp(-690) (~1e-300): the rates, and the score, are
# beneath float64's resolution.
_LOG_UNDERFLOW = -690.0
# A score below this fraction of the rates it is the difference of has lost its digits to
# cancellation (features tiny against ε, where both rates are ≈ ½ tr(ZᵀZ)/(nε)).
_CANCELLATION = 1e-9


def _coding_rate(z: torch.Tensor, eps: float, scale_exponent: int = 0) -> tuple[torch.Tensor, float]:
    """``R(Z) = ½ log det(I_D + ZᵀZ / (n ε))`` for ``Z = z · 2**scale_exponent`` of shape (n, D).

    Sylvester's determinant identity det(I_D + ZᵀZ/c) = det(I_n + ZZᵀ/c) lets us factor the
    smaller Gram. The matrix is I + PSD, so its eigenvalues are >= 1 and a Cholesky factor
    always exists: log det = 2 Σ log diag(L). When ZᵀZ/(nε) is tiny (1 + a would round a away)
    or huge, the rate is ½ Σ log(1 + λ_i) over the eigenvalues of z's Gram scaled by
    c = 4**e / (n ε), each term as ``logaddexp(0, log λ_i + log c)``, exact at any scale.

    Returns:
        The rate (0-d tensor) and the log of its largest term's argument (``log(c · max
        diag)``; -inf for Z = 0), which tells whether the rate underflowed.
    """
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T  # (min(n, D), min(n, D))
    log_c = 2 * scale_exponent * math.log(2.0) - math.log(n * eps)
    top = float(gram.diagonal().max())
    log_top = math.log(top) + log_c if top > 0 else -math.inf
    if _CHOLESKY_RANGE[0] <= math.exp(min(log_top, 700.0)) <= _CHOLESKY_RANGE[1]:
        a = gram / (n * eps) if scale_exponent == 0 else gram * math.exp(log_c)
        a.diagonal().add_(1.0)
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) == 0:
            return torch.log(chol.diagonal()).sum(), log_top
    evals = torch.linalg.eigvalsh(gram)
    log_terms = torch.log(evals.clamp_min(0)) + log_c  # log 0 = -inf: a null direction adds 0
    return 0.5 * torch.logaddexp(torch.zeros_like(log_terms), log_terms).sum(), log_top


@register_metric(
    _NAME,
    paper=(
        "Huang, Huang, Rong, Yang, Wei. Frustratingly Easy Transferability Estimation. ICML 2022. "
        "https://arxiv.org/abs/2106.09362"
    ),
)
def transrate(features: Any, labels: Any, *, eps: float = 1e-4,
              device: str | torch.device | None = None) -> float:
    """TransRate: coding rate of all features minus the mean per-class coding rate (higher is better).

    Huang, Huang, Rong, Yang, Wei. "Frustratingly Easy Transferability Estimation".
    ICML 2022. https://arxiv.org/abs/2106.09362

    Features are centred once, globally (``f ← f - mean(f)``). With ``f_c`` the rows of class
    c (``n_c`` of them) and the coding rate

    .. math::

        R(Z) = \\tfrac{1}{2} \\log\\det\\Big(I_D + \\frac{Z^\\top Z}{n\\,\\varepsilon}\\Big),
        \\qquad Z \\in \\mathbb{R}^{n \\times D}

        \\mathrm{TrR}(f, y) = R(f) - \\frac{1}{C} \\sum_{c=1}^{C} R(f_c)

    The class term is a plain average over classes, not weighted by ``n_c``, and each
    ``R(f_c)`` uses its own ``n = n_c``.

    Args:
        features: ``(N, D)`` penultimate features of the target samples.
        labels: ``(N,)`` class labels, integers or strings.
        eps: Distortion ε of the coding rate (tllib's default). Must be positive and finite. The
            score depends on the feature scale relative to ε.
        device: Where to compute. Default: the device of ``features`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The TransRate score; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_features_labels`),
            or when ``eps`` is not a positive finite number.

    Shape:
        - features: ``(N, D)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Same quantity as tllib ``transrate``. Differences of method only: float64 throughout
        (tllib forms ``fᵀf`` in the caller's dtype), and ``log det`` by a Cholesky factor of
        the smaller Gram matrix, ``I_n + Z Zᵀ/(nε)`` when n < D (Sylvester's identity:
        ``det(I_D + ZᵀZ/c) = det(I_n + ZZᵀ/c)``) instead of ``slogdet`` of the D × D matrix.
        Tests check both against a direct D × D ``slogdet``.

    Example:
        >>> from fennec.metrics import transrate
        >>> # centred f = [-3, -2, 1, 4]: R(f) = ½ log 16, R(f_0) = ½ log 14, R(f_1) = ½ log 18
        >>> round(transrate([[0.0], [1.0], [4.0], [7.0]], [0, 0, 1, 1], eps=0.5, device="cpu"), 6)
        0.003937
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise InvalidInputError(
            f"{_NAME}: eps must be a positive finite number, got {eps!r}. The default is 1e-4."
        )
    checked = check_features_labels(features, labels, metric=_NAME, device=device)
    x, y = checked.values, checked.labels
    xc = x - x.mean(dim=0)  # (N, D), centred once, globally
    e = normalise_scale(xc)  # xc · 2**e are the centred features; ε's role is kept in _coding_rate
    rate_all, log_top = _coding_rate(xc, eps, e)
    order = torch.argsort(y, stable=True)
    per_class = torch.split(xc[order], checked.class_counts.tolist())  # C blocks (n_c, D)
    rate_classes = torch.stack([_coding_rate(block, eps, e)[0] for block in per_class]).mean()
    score = rate_all - rate_classes
    size = max(abs(float(rate_all)), abs(float(rate_classes)))
    # Features tiny against ε (not constant ones: log_top = -inf, rates and score exactly 0)
    tiny = -math.inf < log_top < math.log(_CHOLESKY_RANGE[0])
    if tiny and abs(float(score)) <= _CANCELLATION * size:
        if log_top < _LOG_UNDERFLOW:
            what = (f"the coding rates ½ log det(I + ZᵀZ/(nε)) with eps={eps:g} underflow float64 (their "
                    f"largest term is about exp({log_top:.0f})), so the score would come out as 0.0")
        else:
            what = (f"the score, the difference of two coding rates of about {size:.1e}, is {float(score):.1e}: "
                    "below the precision float64 keeps for that difference (the features are tiny "
                    f"against eps={eps:g})")
        raise scale_error(_NAME, xc, e, what + "; a smaller eps would also bring them into range")
    return finite_score(score, metric=_NAME)
