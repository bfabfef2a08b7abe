"""PARC: Pairwise Annotation Representation Comparison.

Bolya, Mittapalli, Hoffman. "Scalable Diverse Model Selection for Accessible Transfer
Learning". NeurIPS 2021. https://arxiv.org/abs/2111.06977

fennec follows dbolya/parc (``methods.py: PARC``, ``feature_reduce``): randomized PCA to 32
dimensions (seed 1919, one power iteration), standardisation, sample-by-sample
dissimilarity matrices of the features and of the one-hot labels, and the Spearman
correlation of their strict upper triangles, ×100.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError, MetricComputationError
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, normalise_scale

__all__ = ["parc"]

_NAME = "parc"
# Extra random directions of the randomized range finder (scikit-learn's n_oversamples).
_N_OVERSAMPLES = 10


def _randomized_pca(x: torch.Tensor, n_components: int, seed: int) -> torch.Tensor:
    """PCA scores ``(N, n_components)`` by the randomized SVD of Halko, Martinsson & Tropp.

    The algorithm and conventions of ``sklearn.decomposition.PCA(svd_solver='randomized',
    iterated_power=1, random_state=seed)`` as the PARC reference calls it:

    * centre X; work on M = X, or on M = Xᵀ when N < D;
    * Ω = ``numpy.random.RandomState(seed).normal(size=(M.shape[1], n_components + 10))``;
    * one un-normalised power iteration, Q = M (Mᵀ (M Ω)), then an orthonormal basis
      Q = qr(Q);
    * SVD of the small matrix B = Qᵀ M; keep the leading ``n_components`` triplets;
    * signs: the largest-magnitude entry of each principal axis (row of ``components_``)
      is made positive (scikit-learn >= 1.5; older releases used the scores' columns);
    * scores = U · S.
    """
    n, d = x.shape
    xc = x - x.mean(dim=0)
    transpose = n < d
    m = xc.T if transpose else xc  # (rows, cols)
    size = n_components + _N_OVERSAMPLES
    omega = np.random.RandomState(seed).normal(size=(m.shape[1], size))  # same draws as scikit-learn
    q = m @ torch.as_tensor(omega, dtype=m.dtype, device=m.device)  # (rows, size)
    q = m @ (m.T @ q)  # one power iteration, no normaliser (scikit-learn's 'auto' for n_iter <= 2)
    q, _ = torch.linalg.qr(q, mode="reduced")  # (rows, r)
    b = q.T @ m  # (r, cols)
    u_hat, s, vt = torch.linalg.svd(b, full_matrices=False)
    u = q @ u_hat  # (rows, r)
    if transpose:  # M = Xᵀ: its left vectors are the principal axes, its right ones the scores
        axes, left = u[:, :n_components].T, vt[:n_components].T  # (k, D), (N, k)
    else:
        axes, left = vt[:n_components], u[:, :n_components]
    s = s[:n_components]
    pivot = axes.abs().argmax(dim=1)  # (k,)
    signs = torch.sign(axes[torch.arange(axes.shape[0], device=axes.device), pivot])
    signs[signs == 0] = 1
    return left * (s * signs)


def _standardize(x: torch.Tensor) -> torch.Tensor:
    """Column z-scores with the population std, leaving (numerically) constant columns unscaled.

    Like ``sklearn.preprocessing.StandardScaler``: a column whose variance is within the
    round-off bound ``N·eps·var + (N·|mean|·eps)²`` of zero is only centred.
    """
    n = x.shape[0]
    mean = x.mean(dim=0)
    var = x.var(dim=0, correction=0)
    eps = torch.finfo(x.dtype).eps
    constant = var <= n * eps * var + (n * mean.abs() * eps) ** 2
    scale = torch.where(constant, torch.ones_like(var), var.sqrt())
    return (x - mean) / scale


def _sort_values(v: torch.Tensor) -> torch.Tensor:
    """Sorted copy of a 1-D tensor. On the CPU, numpy's value-only sort is several times
    faster than ``torch.sort``, which always computes the permutation too."""
    if v.device.type == "cpu":
        return torch.from_numpy(np.sort(v.numpy()))
    return torch.sort(v).values


def _rank_correlation_with_indicator(values: torch.Tensor, indicator: torch.Tensor) -> float:
    """Spearman correlation of non-negative ``values`` with a boolean ``indicator`` (1-D, length M).

    The ranks of ``values`` are 1-based with ties sharing their average rank (as
    ``scipy.stats.rankdata`` / ``spearmanr``). The ranks of a 0/1 vector are an affine
    function of it, so Spearman = Pearson(ranks(values), indicator):

    * Σ_i (r_i - r̄)(d_i - d̄) = Σ_{i: d_i = 1} r_i - n_1 r̄, with r̄ = (M + 1) / 2;
    * Σ_i (r_i - r̄)² = (M³ - M)/12 - Σ_ties (t³ - t)/12 over tie groups of size t;
    * Σ_i (d_i - d̄)² = n_1 (M - n_1) / M.

    One sort gives both the ranks and which of them are flagged: the float64 values, halved
    (exact, and it frees the top bit), have bit patterns ordered like the values when
    non-negative, so ``2·bits + flag`` sorts by value and carries the flag in its last bit.
    Rank sums are accumulated exactly in integers. Returns NaN when either side is constant.
    """
    m = values.shape[0]
    n_flagged = int(indicator.sum())
    if n_flagged in (0, m):
        return math.nan
    # + 0.0 turns -0.0 into +0.0, whose bit pattern differs; values / 2 < 2**62 as bits.
    bits = (values / 2 + 0.0).view(torch.int64)
    keys = _sort_values(bits * 2 + indicator.to(torch.int64))
    del bits
    value_bits = keys >> 1
    flagged_positions = torch.nonzero(keys & 1).flatten()  # 0-based sorted positions
    del keys
    new_group = torch.ones(m, dtype=torch.bool, device=values.device)
    new_group[1:] = value_bits[1:] != value_bits[:-1]
    del value_bits
    rank_ss = (m**3 - m) / 12
    if bool(new_group.all()):  # no ties: rank = position + 1
        twice_rank_sum = 2 * int(flagged_positions.sum()) + 2 * n_flagged
    else:
        group = torch.cumsum(new_group, 0) - 1  # (M,) tie-group id of each sorted position
        counts = torch.bincount(group)
        ends = torch.cumsum(counts, 0)  # last 1-based rank of each group
        twice_average = 2 * ends - counts + 1  # twice the average rank, an integer
        twice_rank_sum = int(twice_average[group[flagged_positions]].sum())
        ties = counts[counts > 1].to(torch.float64)
        rank_ss -= float((ties**3 - ties).sum()) / 12
    covariance = twice_rank_sum / 2 - n_flagged * (m + 1) / 2
    indicator_ss = n_flagged * (m - n_flagged) / m
    if rank_ss <= 0:
        return math.nan
    return covariance / math.sqrt(rank_ss * indicator_ss)


def _balanced_subsample(y: np.ndarray, counts: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of a class-balanced subsample of ``max_samples`` rows.

    Every class gets an equal share; classes smaller than their share keep all their
    samples and the rest is shared among the larger ones (water-filling), the remainder
    of the integer division going to the lowest label indices. Within a class, the rows
    kept are the first ones of a permutation drawn by ``numpy.random.default_rng(seed)``.
    """
    n_classes = len(counts)
    quota = np.zeros(n_classes, dtype=np.int64)
    remaining, open_classes = max_samples, np.arange(n_classes)
    while open_classes.size:
        share = remaining // open_classes.size
        small = open_classes[counts[open_classes] - quota[open_classes] <= share]
        if small.size == 0:
            quota[open_classes] += share
            extra = remaining - share * open_classes.size
            quota[open_classes[:extra]] += 1
            break
        remaining -= int((counts[small] - quota[small]).sum())
        quota[small] = counts[small]
        open_classes = np.setdiff1d(open_classes, small)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[: quota[c]] for c in range(n_classes)]
    return np.sort(np.concatenate(keep))


@register_metric(
    _NAME,
    scale_invariant=True,
    paper=(
        "Bolya, Mittapalli, Hoffman. Scalable Diverse Model Selection for Accessible Transfer "
        "Learning. NeurIPS 2021. https://arxiv.org/abs/2111.06977"
    ),
)
def parc(features: Any, labels: Any, *, n_dims: int = 32, seed: int = 1919, max_samples: int = 5000,
         device: str | torch.device | None = None) -> float:
    """PARC: Spearman correlation (×100) of feature and label dissimilarity matrices (higher is better).

    Bolya, Mittapalli, Hoffman. "Scalable Diverse Model Selection for Accessible Transfer
    Learning". NeurIPS 2021. https://arxiv.org/abs/2111.06977

    1. If D > ``n_dims``: PCA to ``k = min(n_dims, N - 1)`` dimensions with the randomized
       solver of the reference (``random_state=seed``, one power iteration).
    2. Standardise each dimension (population std).
    3. Dissimilarity matrices over samples, with ``corr`` the Pearson correlation between
       two samples' vectors (``numpy.corrcoef`` of the rows) and ``e_{y_i}`` the one-hot
       label: ``RDM_f[i, j] = 1 - corr(f_i, f_j)``, ``RDM_y[i, j] = 1 - corr(e_{y_i}, e_{y_j})``.
    4. The Spearman correlation of their strict upper triangles:

    .. math::

        \\mathrm{PARC} = 100 \\cdot \\rho_{\\mathrm{Spearman}}\\big(
            \\{\\mathrm{RDM}_f[i, j]\\}_{i<j},\\ \\{\\mathrm{RDM}_y[i, j]\\}_{i<j}\\big)

    Args:
        features: ``(N, D)`` penultimate features of the target samples, ``D >= 2``.
        labels: ``(N,)`` class labels, integers or strings.
        n_dims: PCA dimension (the reference's 32); no PCA when D <= ``n_dims``. At least 2.
        seed: Seed of the randomized PCA (the reference's ``random_state=1919``) and of the
            subsample drawn when N > ``max_samples``.
        max_samples: Cap on the samples compared. The dissimilarity matrices are N × N, so time and memory
            grow as N²: at 5000 samples, 12.5 million pairs and about 1 GB of float64
            temporaries. Above the cap, a class-balanced subsample of ``max_samples`` rows is
            drawn deterministically from ``seed`` (every class an equal share, small classes
            kept whole); it must then be at least 2 · C. At the cap the score takes a few
            seconds on a CPU.
        device: Where to compute. Default: the device of ``features`` when it is a tensor,
            otherwise CUDA when available, otherwise the CPU.

    Returns:
        The PARC score in [-100, 100]; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_features_labels`),
            D < 2, no class with 2 samples, or invalid options.
        MetricComputationError: When a sample's standardised feature vector is constant (its correlation with the
            others is undefined) or all dissimilarities are equal.

    Shape:
        - features: ``(N, D)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        Computation: the label RDM of one-hot vectors takes exactly two values, 0 for a pair in
        the same class and ``C/(C-1)`` otherwise, so its ranks are those of the indicator
        "different class", and the Spearman correlation is the Pearson correlation of the
        feature-RDM ranks (ties averaged, as ``scipy.stats.spearmanr``) with that indicator.
        No N × N label matrix is built, and the ranking is a torch sort.

        Deviations from the reference code:

        * the label RDM's two values are exact; ``numpy.corrcoef`` of one-hot rows can differ
          in the last bits between classes, which breaks some of its ties at random;
        * the PCA keeps at most N - 1 dimensions (the reference allows N, whose last component
          is round-off noise that standardisation then blows up to unit variance);
        * the PCA sign convention is scikit-learn's current one (>= 1.5); versions of 2021, which
          the published numbers used, fixed signs on the scores instead, and since the
          standardised dimensions enter a per-sample correlation, signs change the score
          slightly;
        * the SFDA/PED copies subsample with a bug (the targets are taken from the features)
          or not at all; here the subsample is class-balanced, seeded, and applied to features
          and labels alike. Below the cap the score is invariant to the order of the samples;
          above it, the subsample depends on that order.

    Example:
        >>> from fennec.metrics import parc
        >>> f = [[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]]
        >>> parc(f, [0, 0, 1, 1], device="cpu")
        100.0
    """
    for name, value, low in (("n_dims", n_dims, 2), ("max_samples", max_samples, 4)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidInputError(f"{_NAME}: {name} must be an integer >= {low}, got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InvalidInputError(f"{_NAME}: seed must be an integer in [0, 2**32), got {seed!r}.")
    checked = check_features_labels(features, labels, metric=_NAME, device=device)
    x, y = checked.values, checked.labels
    normalise_scale(x)  # scale-invariant: the PCA scores are standardised
    if x.shape[1] < 2:
        raise InvalidInputError(
            f"{_NAME}: features have {x.shape[1]} dimension; PARC compares samples by the correlation "
            "of their feature vectors, which needs at least 2 dimensions."
        )
    if checked.class_counts.max() < 2:
        raise InvalidInputError(
            f"{_NAME}: every class has a single sample, so no pair of samples shares a label and the "
            "label dissimilarity matrix is constant. At least one class needs 2 samples."
        )
    if x.shape[0] > max_samples:
        if max_samples < 2 * checked.n_classes:
            raise InvalidInputError(
                f"{_NAME}: max_samples={max_samples} is less than 2 x {checked.n_classes} classes; "
                f"raise it to at least {2 * checked.n_classes} so the subsample keeps pairs within classes."
            )
        keep = _balanced_subsample(y.cpu().numpy(), checked.class_counts, int(max_samples), int(seed))
        keep_t = torch.as_tensor(keep, device=x.device)
        x, y = x[keep_t], y[keep_t]
    n, d = x.shape
    if d > n_dims:
        x = _randomized_pca(x, min(int(n_dims), n - 1), int(seed))  # (N, k)
    z = _standardize(x)  # (N, k)
    # Row-wise Pearson correlation (numpy.corrcoef of the rows): centre and normalise each row.
    z = z - z.mean(dim=1, keepdim=True)
    norms = torch.linalg.vector_norm(z, dim=1)  # (N,)
    if bool((norms == 0).any()):
        raise MetricComputationError(
            _NAME,
            f"{int((norms == 0).sum())} sample(s) have a constant standardised feature vector, so their "
            "correlation with other samples is undefined (the reference returns NaN).",
        )
    z = z / norms[:, None]
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu_(1)
    rdm_f = 1 - (z @ z.T).clamp_(-1.0, 1.0)[upper]  # (N(N-1)/2,), row-major like np.triu_indices
    different = (y[:, None] != y[None, :])[upper]  # (N(N-1)/2,) bool
    del upper
    rho = _rank_correlation_with_indicator(rdm_f, different)
    if not math.isfinite(rho):
        raise MetricComputationError(
            _NAME, "all feature dissimilarities are equal, so their rank correlation is undefined."
        )
    return finite_score(100 * rho, metric=_NAME)
