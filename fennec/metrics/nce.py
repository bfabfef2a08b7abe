"""NCE: Negative Conditional Entropy of the target labels given the source model's predictions.

Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification Tasks".
ICCV 2019. https://arxiv.org/abs/1908.08142

fennec follows tllib (``ranking/nce.py: negative_conditional_entropy``, fed with
``argmax`` pseudo-labels as in its model-selection example) and thuml/LogME ``NCE.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from ._registry import register_metric
from ._validation import check_probabilities, finite_score

__all__ = ["nce"]

_NAME = "nce"
# Added to P̂(y|z) before the entropy, as in the reference code, so that 0·log 0 -> 0.
_LOG_EPS = 1e-20


@register_metric(
    _NAME,
    input="probabilities",
    paper=(
        "Tran, Nguyen, Hassner. Transferability and Hardness of Supervised Classification Tasks. "
        "ICCV 2019. https://arxiv.org/abs/1908.08142"
    ),
)
def nce(probabilities: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    """NCE: negative conditional entropy of target labels given source pseudo-labels (higher is better).

    Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification
    Tasks". ICCV 2019. https://arxiv.org/abs/1908.08142

    Each sample gets the source pseudo-label ``z_i = argmax_z θ(x_i)_z`` (the first maximum
    on ties, like ``numpy.argmax``). With the empirical joint distribution of ``(y, z)``:

    .. math::

        \\hat P(y, z) = \\frac{|\\{i : y_i = y, z_i = z\\}|}{N}, \\qquad
        \\hat P(z) = \\sum_y \\hat P(y, z), \\qquad
        \\hat P(y \\mid z) = \\frac{\\hat P(y, z)}{\\hat P(z)}

        \\mathrm{NCE} = -H(Y \\mid Z) = \\sum_{z:\\, \\hat P(z) > 0} \\hat P(z)
            \\sum_y q_{yz} \\log q_{yz}, \\qquad q_{yz} = \\hat P(y \\mid z) + 10^{-20}

    The score is at most 0 (0 when each pseudo-label determines the target label).

    Args:
        probabilities: ``(N, C_s)`` source-model class probabilities on the target samples: non-negative,
            each row summing to 1. Only their argmax is used.
        labels: ``(N,)`` target class labels, integers or strings.
        device: Where to compute. Default: the device of ``probabilities`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The NCE score, ``<= 0`` (up to ~1e-18 from the 1e-20 offset); higher means more
        transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_probabilities`).

    Shape:
        - probabilities: ``(N, C_s)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Same arithmetic as tllib, including the ``1e-20`` added to ``P̂(y|z)`` inside the entropy
        term (``-q log q`` with ``q = P̂(y|z) + 1e-20``) and the restriction to pseudo-labels that
        occur. The joint is built from integer counts divided by N (tllib accumulates ``1/N``
        per sample), which can change the score in the last few bits only. The reference takes
        hard pseudo-labels from the caller; here the argmax is taken inside, so the input is the
        same probability matrix LEEP takes.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import nce
        >>> p = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
        >>> round(nce(p, [0, 0, 1, 1], device="cpu"), 6)
        -0.477386
    """
    checked = check_probabilities(probabilities, labels, metric=_NAME, device=device)
    p, y = checked.values, checked.labels
    n, n_source = p.shape
    z = torch.argmax(p, dim=1)  # (N,) first maximum on ties
    # Joint counts as a flat bincount over (y, z) pairs: (C, C_s), entries / N.
    counts = torch.bincount(y * n_source + z, minlength=checked.n_classes * n_source)
    joint = counts.reshape(checked.n_classes, n_source).to(torch.float64) / n  # (C, C_s)
    p_z = joint.sum(dim=0)  # (C_s,)
    seen = p_z > 0
    q = joint[:, seen] / p_z[seen] + _LOG_EPS  # (C, Z_seen): P̂(y|z) + 1e-20
    entropy = -(q * torch.log(q)).sum(dim=0)  # (Z_seen,): H(Y | z)
    score = -(p_z[seen] * entropy).sum()
    return finite_score(score, metric=_NAME)
