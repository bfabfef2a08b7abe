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
from ._validation import check_features_labels, finite_score

__all__ = ["transrate"]

_NAME = "transrate"


def _coding_rate(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``R(Z) = ½ log det(I_D + ZᵀZ / (n ε))`` for ``z`` of shape (n, D), as a 0-d tensor.

    Sylvester's determinant identity det(I_D + ZᵀZ/c) = det(I_n + ZZᵀ/c) lets us factor the
    smaller Gram. The matrix is I + PSD, so its eigenvalues are >= 1 and a Cholesky factor
    always exists: log det = 2 Σ log diag(L).
    """
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T  # (min(n, D), min(n, D))
    gram = gram / (n * eps)
    gram.diagonal().add_(1.0)
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return torch.log(chol.diagonal()).sum()
    # Only reachable through extreme magnitudes (overflow); slogdet reports that as inf/nan.
    return 0.5 * torch.linalg.slogdet(gram).logabsdet


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

    Parameters
    ----------
    features : array-like or torch.Tensor
        ``(N, D)`` penultimate features of the target samples.
    labels : array-like or torch.Tensor
        ``(N,)`` class labels, integers or strings.
    eps : float, default 1e-4
        Distortion ε of the coding rate (tllib's default). Must be positive and finite. The
        score depends on the feature scale relative to ε.
    device : str or torch.device, optional
        Where to compute. Default: the device of ``features`` when it is a tensor,
        otherwise CUDA when available, otherwise the CPU.

    Returns
    -------
    float
        The TransRate score; higher means more transferable.

    Raises
    ------
    InvalidInputError
        On malformed input (see :func:`fennec.metrics._validation.check_features_labels`),
        or when ``eps`` is not a positive finite number.

    Shape
    -----
    - features: ``(N, D)``
    - labels: ``(N,)``
    - score: scalar

    Notes
    -----
    Same quantity as tllib ``transrate``. Differences of method only: float64 throughout
    (tllib forms ``fᵀf`` in the caller's dtype), and ``log det`` by a Cholesky factor of
    the smaller Gram matrix, ``I_n + Z Zᵀ/(nε)`` when n < D (Sylvester's identity:
    ``det(I_D + ZᵀZ/c) = det(I_n + ZZᵀ/c)``) instead of ``slogdet`` of the D × D matrix.
    Tests check both against a direct D × D ``slogdet``.

    Examples
    --------
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
    rate_all = _coding_rate(xc, eps)
    order = torch.argsort(y, stable=True)
    per_class = torch.split(xc[order], checked.class_counts.tolist())  # C blocks (n_c, D)
    rate_classes = torch.stack([_coding_rate(block, eps) for block in per_class])
    score = rate_all - rate_classes.mean()
    return finite_score(score, metric=_NAME)
