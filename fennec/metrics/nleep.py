"""NLEEP: LEEP with Gaussian-mixture posteriors as pseudo source probabilities.

Li, Jia, Sang, Zhu, Green, Wang, Gong. "Ranking Neural Checkpoints". CVPR 2021.
https://arxiv.org/abs/2011.11200

The features are reduced by PCA (keeping 80 % of the variance), a Gaussian mixture with
``component_ratio · C`` components is fitted to them, and its posteriors p(component | x)
play the role of the source classifier's probabilities in LEEP. The mixture is fitted with
scikit-learn on the CPU; PCA and the LEEP part run in torch on ``device``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from ..errors import FallbackWarning, InvalidInputError, MetricComputationError
from ._registry import register_metric
from ._validation import check_features_labels, finite_score, normalise_scale, scale_error
from .leep import log_eep_score

__all__ = ["nleep"]

_NAME = "nleep"
# reg_covar of the fallback mixtures, relative to the mean per-dimension variance of the
# PCA features (scikit-learn's default 1e-6 is absolute, so it depends on the feature scale).
_FALLBACK_RELATIVE_REG = 1e-3
# scikit-learn's default reg_covar, the reference setting: added to every covariance, in the
# features' own units.
_REFERENCE_REG = 1e-6


def _pca_scores(x: torch.Tensor, variance: float) -> torch.Tensor:
    """PCA scores ``(N, k)`` of ``x`` keeping the fewest components explaining ``variance``.

    Same rule as ``sklearn.decomposition.PCA(n_components=variance)`` with its exact
    solver: k = 1 + the number of cumulative explained-variance ratios <= ``variance``
    (all components when ``variance`` is 1). The eigendecomposition is taken on the smaller
    of the two Gram matrices XᵀX (D, D) or XXᵀ (N, N). Signs are fixed so that the entry
    of largest magnitude in each column of the scores is positive (any fixed rule works:
    the mixture fit only depends on it through its random initialisation).
    """
    n, d = x.shape
    xc = x - x.mean(dim=0)
    if d <= n:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)  # ascending; evecs (D, D)
        evals, evecs = evals.flip(0), evecs.flip(1)
        scores_of = lambda k: xc @ evecs[:, :k]  # noqa: E731  (N, k)
    else:
        evals, evecs = torch.linalg.eigh(xc @ xc.T)  # evecs (N, N): left singular vectors
        evals, evecs = evals.flip(0), evecs.flip(1)
        scores_of = lambda k: evecs[:, :k] * evals[:k].clamp(min=0).sqrt()  # noqa: E731
    evals = evals.clamp(min=0)
    total = evals.sum()
    if float(total) <= 0:
        raise MetricComputationError(
            _NAME, "all feature vectors are identical, so PCA has no variance to keep."
        )
    rank = int((evals > evals[0] * max(n, d) * torch.finfo(evals.dtype).eps).sum())
    if variance >= 1:
        k = rank
    else:
        cumulative = torch.cumsum(evals, 0) / total
        k = min(int((cumulative <= variance).sum()) + 1, rank)
    scores = scores_of(k)
    pivot = scores.abs().argmax(dim=0)  # (k,)
    signs = torch.sign(scores[pivot, torch.arange(k, device=scores.device)])
    signs[signs == 0] = 1
    return scores * signs


def _fit_mixture_posteriors(z: np.ndarray, n_components: int, seed: int, scale_exponent: int = 0) -> np.ndarray:
    """Posteriors ``(N, K)`` of a Gaussian mixture fitted to ``z`` (N, k), with fallbacks.

    Tries, in order: full covariance with scikit-learn's default reg_covar=1e-6 (the
    reference setting); full covariance with reg_covar = 1e-3 · mean feature variance;
    diagonal covariance with that reg_covar. Each fallback emits a ``UserWarning`` naming it.

    ``z`` may be the PCA features divided by ``2**scale_exponent``: the mixture's posteriors
    are unchanged when the data and every covariance are scaled together, so the reference
    reg_covar is divided by ``4**scale_exponent`` (messages give it in the features' units).
    """
    from sklearn.mixture import GaussianMixture  # deferred: scikit-learn is slow to import
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # scikit-learn's EM loops over components with small triangular solves; below ~10 MFLOP
    # per solve, multi-threaded BLAS/OpenMP only adds synchronisation (5-7x slower measured
    # on 2 busy cores), so small problems run single-threaded (same result up to round-off).
    n, k = z.shape
    threads = 1 if n * k * k <= 10_000_000 else None
    scale = float(z.var(axis=0).mean())
    reg = _FALLBACK_RELATIVE_REG * scale if scale > 0 else _FALLBACK_RELATIVE_REG
    attempts = [("full", math.ldexp(_REFERENCE_REG, -2 * scale_exponent)), ("full", reg), ("diag", reg)]
    errors: list[str] = []
    for i, (covariance_type, fit_reg) in enumerate(attempts):
        reg_covar = math.ldexp(fit_reg, 2 * scale_exponent) if i else _REFERENCE_REG  # features' units
        gmm = GaussianMixture(n_components=n_components, covariance_type=covariance_type,
                              reg_covar=fit_reg, random_state=seed)
        try:
            with threadpool_limits(limits=threads):
                gmm.fit(z)
                posteriors = gmm.predict_proba(z)
        except (ValueError, np.linalg.LinAlgError) as exc:
            errors.append(f"covariance_type={covariance_type!r}, reg_covar={reg_covar:.3g}: {exc}")
            continue
        if not np.isfinite(posteriors).all():
            errors.append(f"covariance_type={covariance_type!r}, reg_covar={reg_covar:.3g}: non-finite posteriors")
            continue
        if i > 0:
            warnings.warn(
                f"{_NAME}: the Gaussian mixture with covariance_type='full', reg_covar=1e-06 "
                f"(the reference setting) failed ({errors[0]}); fell back to "
                f"covariance_type={covariance_type!r} with reg_covar={reg_covar:.3g}. "
                "Scores computed with a fallback are not directly comparable to reference NLEEP "
                "scores; more samples per mixture component (or a smaller component_ratio) avoid it.",
                FallbackWarning,
                stacklevel=3,
            )
        return posteriors
    raise MetricComputationError(
        _NAME,
        "the Gaussian mixture could not be fitted with any covariance setting "
        f"({'; '.join(errors)}). Use more samples or a smaller component_ratio.",
    )


@register_metric(
    _NAME,
    paper=(
        "Li, Jia, Sang, Zhu, Green, Wang, Gong. Ranking Neural Checkpoints. CVPR 2021. "
        "https://arxiv.org/abs/2011.11200"
    ),
)
def nleep(features: Any, labels: Any, *, component_ratio: int = 5, pca_variance: float = 0.8,
          seed: int = 0, device: str | torch.device | None = None) -> float:
    """NLEEP: LEEP on the posteriors of a Gaussian mixture fitted to PCA features (higher is better).

    Li, Jia, Sang, Zhu, Green, Wang, Gong. "Ranking Neural Checkpoints". CVPR 2021.
    https://arxiv.org/abs/2011.11200

    1. PCA of the centred features, keeping the fewest components that explain
       ``pca_variance`` of the variance (as ``sklearn.decomposition.PCA(n_components=0.8)``).
    2. A Gaussian mixture with ``K = component_ratio · C`` components (full covariances,
       k-means initialisation, ``random_state=seed``) on the PCA features; its posteriors
       ``θ(x_i)_k = p(k | x_i)`` replace the source classifier's probabilities.
    3. LEEP (log version, as :func:`fennec.metrics.leep`) on those posteriors:

    .. math::

        \\mathrm{NLEEP} = \\frac{1}{N} \\sum_{i=1}^{N}
            \\log \\Big( \\sum_{k=1}^{K} \\hat P(y_i \\mid k)\\, p(k \\mid x_i) \\Big)

    Args:
        features: ``(N, D)`` penultimate features of the target samples.
        labels: ``(N,)`` class labels, integers or strings. Each class needs at least 2 samples.
        component_ratio: Mixture components per class (the reference uses 5; its scripts use 1 for Food and
            Pets). The number of components is capped at N, with a warning.
        pca_variance: Fraction of variance the PCA keeps, in (0, 1]; 1 keeps every non-null component.
        seed: ``random_state`` of the mixture (its k-means initialisation). The score is a
            deterministic function of the input and the seed.
        device: Where the PCA and LEEP parts run. Default: the device of ``features`` when it is a
            tensor, otherwise CUDA when available, otherwise the CPU. The mixture is always
            fitted by scikit-learn on the CPU.

    Returns:
        The NLEEP score, ``<= 0``; higher means more transferable.

    Raises:
        InvalidInputError: On malformed input (see :func:`fennec.metrics._validation.check_features_labels`),
            a class with fewer than 2 samples, or invalid options.
        MetricComputationError: When no mixture could be fitted (see Note) or all features are identical.

    Warns:
        FallbackWarning: (a UserWarning) when the number of components is capped at N, or when
            the full-covariance mixture fails and a fallback is used.

    Shape:
        - features: ``(N, D)``
        - labels: ``(N,)``
        - score: scalar

    Note:
        **Log or not.** The NLEEP paper defines the score as LEEP on mixture posteriors, i.e.
        the mean *log* EEP. The SFDA / PED reference code (``metrics.NLEEP``) returns the mean
        EEP *without* the log, like its own LEEP variant. fennec returns the log version, to
        match the paper and :func:`fennec.metrics.leep` (both metrics are then the same
        function of their pseudo-probabilities). The two are not monotone transforms of each
        other across models (mean of logs vs. log of means), so rankings can differ from the
        SFDA/PED tables, which use the no-log version.

        **Determinism.** The reference uses ``random_state=None`` and so is not reproducible;
        here the mixture is seeded. Because the k-means initialisation draws sample positions,
        permuting the samples can change the score slightly; relabelling the classes cannot.

        **Fallbacks.** With many components per sample (the reference's 5 · C components in a
        space of dozens of PCA dimensions) the full-covariance fit can fail with "ill-defined
        empirical covariance". Instead of failing, fennec retries with full covariance and
        ``reg_covar = 1e-3 · mean variance of the PCA features``, then with diagonal
        covariance and that ``reg_covar``, warning each time; if all fail,
        :class:`~fennec.errors.MetricComputationError` is raised.

        **PCA.** Computed exactly from the eigendecomposition of the smaller Gram matrix
        (what scikit-learn's exact solver gives, up to column signs and round-off).

    Example:
        >>> import numpy as np
        >>> from fennec.metrics import nleep
        >>> rng = np.random.default_rng(0)
        >>> labels = np.repeat(np.arange(3), 50)
        >>> features = rng.normal(size=(150, 8)) + 1.0 * labels[:, None]
        >>> score = nleep(features, labels, component_ratio=5, seed=0)
        >>> bool(score > nleep(features, rng.permutation(labels), component_ratio=5, seed=0))
        True
    """
    if isinstance(component_ratio, bool) or not isinstance(component_ratio, (int, np.integer)) \
            or component_ratio < 1:
        raise InvalidInputError(
            f"{_NAME}: component_ratio must be a positive integer (mixture components per class), "
            f"got {component_ratio!r}. The reference uses 5."
        )
    if isinstance(pca_variance, bool) or not isinstance(pca_variance, (int, float)) \
            or not math.isfinite(pca_variance) or not 0 < pca_variance <= 1:
        raise InvalidInputError(
            f"{_NAME}: pca_variance must be a fraction in (0, 1], got {pca_variance!r}. The reference uses 0.8."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InvalidInputError(
            f"{_NAME}: seed must be an integer in [0, 2**32), got {seed!r}; it seeds the mixture's initialisation."
        )
    checked = check_features_labels(features, labels, metric=_NAME, min_per_class=2, device=device)
    x, y = checked.values, checked.labels
    n = x.shape[0]
    e = normalise_scale(x)  # at extreme scales, x / 2**e: the PCA is exact, reg_covar is rescaled
    z = _pca_scores(x, float(pca_variance))  # (N, k)
    variance = math.ldexp(float(z.var(dim=0).mean()), 2 * e) if e < 512 else math.inf
    if variance < _REFERENCE_REG:
        shown = f"{variance:.1e}" if variance > 0 else "below 1e-308 (it underflows float64)"
        raise scale_error(_NAME, x, e, f"the PCA features' mean variance, {shown}, is below the mixture's "
                          f"reg_covar={_REFERENCE_REG:g} (the reference's absolute regularisation, added to "
                          "every covariance), so every component would cover every sample and the score "
                          "would only reflect the class frequencies (about log(1/C) = "
                          f"{math.log(1 / checked.n_classes):.3f})")
    n_components = int(component_ratio) * checked.n_classes
    if n_components > n:
        warnings.warn(
            f"{_NAME}: component_ratio={component_ratio} x {checked.n_classes} classes = {n_components} "
            f"mixture components exceeds the {n} samples; using {n} components.",
            FallbackWarning,
            stacklevel=2,
        )
        n_components = n
    posteriors = _fit_mixture_posteriors(z.cpu().numpy(), n_components, int(seed), e)  # (N, K)
    theta = torch.as_tensor(posteriors, dtype=torch.float64, device=x.device)
    score = log_eep_score(theta, y, checked.n_classes)
    return finite_score(score, metric=_NAME)
