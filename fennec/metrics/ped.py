"""PED: potential-energy descent in front of a base transferability metric.

Li, Hu, Ge, Ji, Chen, Tan, Li. "Exploring Model Transferability through the Lens of Potential
Energy". ICCV 2023. https://arxiv.org/abs/2308.15074

Fine-tuning pushes overlapping classes apart. PED simulates a few steps of that: classes are
balls (centre = class mean, radius = √tr(class covariance)) that repel each other where they
overlap; every sample of a class moves with its class. The base metric (SFDA by default) then
scores the moved features. Dynamics follow the authors' code (``One_Step_PED``, ``PED_Score``):
per step, in a space rescaled per dimension by reference statistics,

* overlap ``F_ij = max(ν R_i + ν R_j − ‖m_i − m_j‖, 0)`` with ν = |nsigma|,
* displacement ``s_ij = min(½ Δt² · constant · F_ij, F_ij)`` along ``(m_i − m_j)/‖m_i − m_j‖``
  (class i away from j, j away from i),
* a step is kept while its total movement Σ|shift| is more than ``exit_ratio`` times the first
  step's; at most ``max_steps`` steps (6, hard-coded in the reference).

Departures from the reference code:
  * the reference needs the same model's ImageNet features for the rescaling and raises
    without them. ``reference_features=None`` here rescales by the target features' own
    per-dimension mean and standard deviation instead (fixed before the first step), so PED
    works on any model without an extra dataset; pass ImageNet (or any general-domain)
    features of the same model to reproduce the paper's setting;
  * two classes with identical means have no repulsion direction; the reference divides by
    zero (NaN), here the pair exerts no force;
  * the base metric is any registered feature metric, with its own options (``base_kwargs``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import InvalidInputError
from ._registry import metric_info, register_metric
from ._validation import check_features, check_features_labels, finite_score, ldexp_, normalise_scale

__all__ = ["ped", "ped_transform"]

_NAME = "ped"
_STD_FLOOR = 1e-3  # the reference's eps: per-dimension std is clamped below by this


def _class_shift(means: torch.Tensor, radius: torch.Tensor, *, time_step: float, nsigma: float,
                 constant: float) -> torch.Tensor:
    """Displacement (C, D) of each class in one PED step, from class means (C, D) and radii (C,)."""
    dist = torch.cdist(means, means, compute_mode="donot_use_mm_for_euclid_dist")  # (C, C)
    reach = abs(nsigma) * radius
    force = (reach[:, None] + reach[None, :] - dist).clamp_min(0)  # (C, C) overlap F_ij
    force.fill_diagonal_(0)
    step = torch.minimum(0.5 * time_step**2 * constant * force, force)  # s_ij
    # shift_i = Σ_j s_ij (m_i − m_j)/d_ij = (Σ_j a_ij) m_i − Σ_j a_ij m_j  with a_ij = s_ij/d_ij
    a = torch.where(dist > 0, step / dist.clamp_min(torch.finfo(dist.dtype).tiny), torch.zeros_like(step))
    return a.sum(dim=1, keepdim=True) * means - a @ means


def ped_transform(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    reference_features: torch.Tensor | None = None,
    time_step: float = 0.1,
    nsigma: float = 0.6,
    exit_ratio: float = 0.5,
    max_steps: int = 6,
    constant: float = 1.0,
    std_floor: float = _STD_FLOOR,
) -> tuple[torch.Tensor, int]:
    """Run the PED dynamics on validated tensors.

    The reference moves every sample at every step and recomputes the class statistics from
    the moved samples. Since a step translates all samples of a class by one vector, the
    class variances never change and the class means move by exactly that vector; so the
    dynamics run on the C class means alone and the samples are translated once at the end.
    Same result, O(C²D) per step instead of O(ND).

    Args:
        features: (N, D) float64. labels: (N,) int64 in 0..C-1.
        reference_features: (M, D) float64 general-domain features of the same model, or None
            to rescale by ``features``' own statistics.
        std_floor: the per-dimension std is clamped below by this (the reference's 1e-3, in
            the features' units: divide it by s when the features were divided by s).

    Returns:
        The moved features (N, D) in the original scale, and the number of accepted steps.
    """
    # Class sums of x and x² give every statistic in two passes over the samples: the class
    # means, the per-dimension class scatter, and (without reference features) the global mean
    # and std. float64 keeps E[x²] − E[x]² accurate for features whose offset is ~1e4 x their
    # spread; beyond that the reference's own float32 statistics are no better.
    class_sum = torch.zeros(n_classes, features.shape[1], dtype=features.dtype,
                            device=features.device).index_add_(0, labels, features)  # (C, D)
    class_sumsq = torch.zeros_like(class_sum).index_add_(0, labels, features.square())  # (C, D)
    counts = torch.bincount(labels, minlength=n_classes).to(features.dtype)  # (C,)
    class_mean = class_sum / counts[:, None]
    if reference_features is None:
        n = features.shape[0]
        mean = class_sum.sum(dim=0) / n
        var = class_sumsq.sum(dim=0) / n - mean.square()
    else:
        mean = reference_features.mean(dim=0)
        var = (reference_features - mean).square().mean(dim=0)
    std = var.clamp_min(0).sqrt().clamp_min(std_floor)  # (D,) the reference's np.std floored at eps
    # The dynamics are homogeneous of degree 1 in (class means, radii): dividing std by a power of
    # two multiplies both by it and the final shift (total · std) is unchanged. Done when std is
    # extreme (a floor of 1e-3 under features of 1e-300), whose square would overflow.
    normalise_scale(std)
    # √tr(class covariance) in rescaled units: Σ_d (Σ_i x_id² − n_c μ_cd²) / std_d², per class.
    scatter = (class_sumsq - counts[:, None] * class_mean.square()) @ std.square().reciprocal()
    radius = (scatter.clamp_min(0) / counts).sqrt()  # (C,)
    m = (class_mean - mean) / std  # (C, D) class means in rescaled units
    total = torch.zeros_like(m)
    first_change = None
    accepted = 0
    for _ in range(max_steps):
        shift = _class_shift(m, radius, time_step=time_step, nsigma=nsigma, constant=constant)
        change = float(shift.abs().sum())  # Σ|shift| over classes x dimensions
        if first_change is None:
            first_change = change
        # The first step has ratio 1 unless nothing overlaps (the reference's 0/0 ends the loop).
        if first_change == 0 or change / first_change <= exit_ratio:
            break
        m += shift
        total += shift
        accepted += 1
    # x_i + shift[y_i] as one GEMM with the one-hot label matrix (exact: one 1.0 per row),
    # which beats a gather and an add over the (N, D) features.
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(features.dtype)  # (N, C)
    return torch.addmm(features, one_hot, total * std), accepted


def _check_options(base: str, time_step: float, nsigma: float, exit_ratio: float, max_steps: int,
                   constant: float) -> None:
    info = metric_info(base)  # raises UnknownMetricError listing the valid names
    if info.input != "features" or base == _NAME:
        raise InvalidInputError(
            f"ped: base={base!r} cannot follow PED: PED moves features, so the base metric must "
            f"score features. Choose a feature metric other than 'ped', e.g. 'sfda', 'logme' or 'nleep'."
        )
    for name, value in (("time_step", time_step), ("constant", constant)):
        if not value > 0:
            raise InvalidInputError(f"ped: {name} must be > 0, got {value!r}. The paper uses {name}=" +
                                    ("0.1." if name == "time_step" else "1.0."))
    if not 0 <= exit_ratio < 1:
        raise InvalidInputError(f"ped: exit_ratio must be in [0, 1), got {exit_ratio!r}. The paper uses 0.5.")
    if not (isinstance(max_steps, int) and max_steps >= 0):
        raise InvalidInputError(f"ped: max_steps must be a non-negative int, got {max_steps!r}. The paper uses 6.")
    if nsigma == 0:
        raise InvalidInputError("ped: nsigma must be non-zero (0 disables every force). The paper uses 0.6.")


@register_metric(_NAME, paper="Li et al., Exploring Model Transferability through the Lens of Potential "
                              "Energy, ICCV 2023, https://arxiv.org/abs/2308.15074")
def ped(
    features: Any,
    labels: Any,
    *,
    reference_features: Any = None,
    base: str = "sfda",
    time_step: float = 0.1,
    nsigma: float = 0.6,
    exit_ratio: float = 0.5,
    max_steps: int = 6,
    constant: float = 1.0,
    base_kwargs: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> float:
    r"""PED score: the base metric on features moved by simulated class repulsion.

    Shape:
        features: (N, D). labels: (N,). reference_features: (M, D), same D.

    Args:
        features: penultimate features of the model on the target samples.
        labels: class label of each sample; at least 2 classes.
        reference_features: the same model's features on a general-domain set (the paper uses
            ImageNet val) for the per-dimension rescaling. None: use the target features' own
            statistics (see the module docstring).
        base: registered feature metric that scores the moved features (default ``"sfda"``).
        time_step: Δt of the dynamics (paper: 0.1).
        nsigma: radius multiplier ν (paper: 0.6; the code default 2.0 is not the paper's).
        exit_ratio: stop when a step moves ≤ this fraction of the first step (paper: 0.5).
        max_steps: most steps (reference: 6).
        constant: force constant (paper: 1.0).
        base_kwargs: extra keyword options for the base metric.
        device: compute device; default the input tensor's device, else CUDA if available.

    Returns:
        The base metric's score on the moved features; higher is better.

    Raises:
        InvalidInputError: bad inputs, reference features of another dimension, or a base
            metric that does not take features.
        UnknownMetricError: ``base`` is not registered.

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import ped
        >>> x = np.random.default_rng(0).normal(size=(200, 16)); y = np.arange(200) % 4
        >>> 0 < ped(x, y, base="sfda") <= 1
        True
    """
    _check_options(base, time_step, nsigma, exit_ratio, max_steps, constant)
    base_fn = metric_info(base).func
    checked = check_features_labels(features, labels, metric=_NAME, device=device)
    ref = None
    if reference_features is not None:
        ref = check_features(reference_features, metric=_NAME, name="reference_features", device=checked.device)
        if ref.shape[1] != checked.values.shape[1]:
            raise InvalidInputError(
                f"ped: reference_features have {ref.shape[1]} dimensions but features have "
                f"{checked.values.shape[1]}. Both must come from the same layer of the same model."
            )
    # Not scale-invariant (the std floor is absolute), but exactly equivariant once the floor is
    # scaled with the features: at extreme scales run the dynamics on x / 2**e, then scale back.
    e = normalise_scale(checked.values)
    if ref is not None:
        ldexp_(ref, -e)
    moved, _ = ped_transform(
        checked.values, checked.labels, checked.n_classes, reference_features=ref, time_step=time_step,
        nsigma=nsigma, exit_ratio=exit_ratio, max_steps=max_steps, constant=constant,
        std_floor=math.ldexp(_STD_FLOOR, -e),
    )
    ldexp_(moved, e)
    # The caller's labels, not the remapped ones: a base-metric error then names their classes.
    score = base_fn(moved, labels, device=checked.device, **(base_kwargs or {}))
    return finite_score(score, metric=_NAME)
