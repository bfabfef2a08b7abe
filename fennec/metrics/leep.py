"""LEEP: Log Expected Empirical Prediction.

Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability of
Learned Representations". ICML 2020. https://arxiv.org/abs/2002.12462

fennec computes the official log version (thuml/LogME ``LEEP.py``, tllib
``ranking/leep.py: log_expected_empirical_prediction``): the mean over samples of the log
expected empirical prediction. The SFDA code base has a variant that returns the mean EEP
*without* the log; fennec does not use it (see :func:`leep`).

The private :func:`log_eep_score` is shared with :mod:`fennec.metrics.nleep`, which feeds it
Gaussian-mixture posteriors instead of source-model probabilities.
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import one_hot
from ._registry import register_metric
from ._validation import check_probabilities, finite_score

__all__ = ["leep"]

_NAME = "leep"


def log_eep_score(theta: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean log expected empirical prediction, a 0-d float64 tensor.

    Args:
        theta: ``(N, Z)`` float64, each row a distribution over the Z source (or mixture) classes.
        y: ``(N,)`` int64 target labels in ``0..n_classes-1``.
        n_classes: Number of target classes C.

    Note:
        A source class ``z`` that receives zero probability from every sample has an undefined
        conditional ``P̂(y|z) = 0/0``; the reference code returns NaN then. Such a column
        contributes ``θ_iz · P̂(y|z) = 0`` to every EEP whatever value it is given, so it is set
        to 0 here and the score stays finite.
    """
    n = theta.shape[0]
    joint = one_hot(y, n_classes, dtype=theta.dtype).T @ theta  # (C, Z): Σ_{i: y_i = y} θ_iz
    joint /= n
    marginal = joint.sum(dim=0)  # (Z,): P̂(z)
    safe = torch.where(marginal > 0, marginal, torch.ones_like(marginal))
    conditional = torch.where(marginal > 0, joint / safe, torch.zeros_like(joint))  # (C, Z): P̂(y|z)
    # EEP_i = Σ_z θ_iz P̂(y_i|z); gathering the row of each sample's own label avoids the
    # (N, C) product θ P̂ᵀ, whose cost grows with C.
    eep = (theta * conditional[y]).sum(dim=1)  # (N,)
    return torch.log(eep).mean()


@register_metric(
    _NAME,
    input="probabilities",
    paper=(
        "Nguyen, Hassner, Seeger, Archambeau. LEEP: A New Measure to Evaluate Transferability of "
        "Learned Representations. ICML 2020. https://arxiv.org/abs/2002.12462"
    ),
)
def leep(probabilities: Any, labels: Any, *, device: str | torch.device | None = None) -> float:
    """LEEP: mean log expected empirical prediction of the source classifier (higher is better).

    Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations". ICML 2020. https://arxiv.org/abs/2002.12462

    With θ(x_i) the source model's softmax output on target sample ``x_i`` (over the C_s
    source classes ``z``) and ``y_i`` its target label:

    .. math::

        \\hat P(y, z) = \\frac{1}{N} \\sum_{i: y_i = y} \\theta(x_i)_z, \\qquad
        \\hat P(y \\mid z) = \\frac{\\hat P(y, z)}{\\sum_{y'} \\hat P(y', z)}

        \\mathrm{LEEP} = \\frac{1}{N} \\sum_{i=1}^{N}
            \\log \\Big( \\sum_{z} \\hat P(y_i \\mid z)\\, \\theta(x_i)_z \\Big)

    The score is at most 0 (reached when the source classes determine the target labels).

    Args:
        probabilities: ``(N, C_s)`` source-model class probabilities on the target samples: non-negative,
            each row summing to 1 (apply a softmax to the logits first).
        labels: ``(N,)`` target class labels, integers or strings; any values (remapped internally).
        device: Where to compute. Default: the device of ``probabilities`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The LEEP score, ``<= 0``; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_probabilities`):
            wrong shapes, NaN/inf, negative values, rows not summing to 1, fewer than 2 classes.

    Shape:
        - probabilities: ``(N, C_s)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Follows the official log version (thuml/LogME ``LEEP.py``, tllib
        ``log_expected_empirical_prediction``), in float64. Deviation from that code: a source
        class with zero probability on every sample would make the reference return NaN (0/0
        in ``P̂(y|z)``); here it contributes nothing, as it does mathematically. The SFDA
        repository's ``LEEP`` returns the mean EEP without the log; that is a different number
        (and can rank models differently) and is not what this function returns.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import leep
        >>> p = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
        >>> round(leep(p, [0, 0, 1, 1], device="cpu"), 6)
        -0.613951
    """
    checked = check_probabilities(probabilities, labels, metric=_NAME, device=device)
    score = log_eep_score(checked.values, checked.labels, checked.n_classes)
    return finite_score(score, metric=_NAME)
