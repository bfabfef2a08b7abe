"""Re-rank the transfer-space shortlist with a forward-pass transferability metric.

Step 4 of :func:`fennec.recommend`: the FAISS index proposes the models closest to the task in
the transfer space; :func:`score_candidates` runs each of the top few on the user's sampled
images (:func:`fennec.features.model_features`) and scores them with a metric from
:mod:`fennec.metrics`; :func:`fuse` combines the two signals into the final ranking.

Example:
    >>> scores = score_candidates(["org/a", "org/b"], sample, hub=hub)  # doctest: +SKIP
    >>> final = fuse({"org/a": 0.91, "org/b": 0.88},
    ...              {s.model_id: s.score for s in scores})  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from fennec import _progress
from fennec.errors import CandidateFailedWarning, FeatureExtractionError, InvalidInputError
from fennec.features.cache import FeatureCache, check_sample, features_of, resolve_cache
from fennec.features.extraction import SampleLike
from fennec.metrics import metric_info
from fennec.recommendation.options import DEFAULT_BATCH_SIZE, DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC
from fennec.validation import check_fraction, check_positive_int, is_number

if TYPE_CHECKING:
    from fennec.engine import Executor
    from fennec.hub.protocol import Hub

__all__ = ["CANDIDATE_MEMORY", "DEFAULT_METRIC", "CandidateScore", "check_weight", "choose_candidates", "fuse",
           "fuse_placed", "observed_scores", "score_candidates", "score_remotely", "zscore"]

LOG = logging.getLogger(__name__)

#: Prior scores of candidates closer than this (relative to the scores' magnitude, at least 1) are
#: ties: the index's inner products are float32, whose rounding is ~1e-7 of the score.
_TIE = 1e-6



@dataclasses.dataclass(frozen=True)
class CandidateScore:
    """One candidate's transferability score on the user's sample.

    Attributes:
        model_id: ``org/name``.
        sha: the commit scored (None when the model could not even be fetched).
        metric: the metric's registry name.
        score: higher = more transferable; None when the model failed.
        error: ``"<ExceptionType>: <message>"`` when the model failed, else None.
        forward_passes: images run through the model (0 when the features were cached).
        seconds: wall time for this model (fetch, extraction and scoring).
        cached: the features came from the cache.
    """

    model_id: str
    sha: str | None
    metric: str
    score: float | None
    error: str | None
    forward_passes: int
    seconds: float
    cached: bool


def score_candidates(model_ids: Iterable[str], sample: SampleLike, *, hub: Hub, metric: str = DEFAULT_METRIC,
                     device: str | torch.device | None = None, cache: FeatureCache | bool | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False,
                     executor: Executor | None = None) -> list[CandidateScore]:
    """Score each candidate model with a transferability metric on the sample.

    A model that cannot be fetched, loaded, run or scored is recorded with ``score=None`` and
    its ``error`` (and a :class:`~fennec.errors.CandidateFailedWarning`); the others go on.

    Args:
        model_ids: candidate ``org/name`` ids, in shortlist order; duplicates are scored once.
        sample: images, labels and fingerprint (:class:`fennec.features.SampleLike`).
        hub: ``fennec.hub.open_hub(...)``.
        metric: a registered metric name (:func:`fennec.metrics.list_metrics`); metrics taking
            probabilities (LEEP, NCE) use the pre-trained head's softmax, the others the
            penultimate features.
        device: where models run and metrics compute (None: CUDA when available).
        cache: a FeatureCache, None/True for the default one, False for none.
        batch_size: images per forward pass.
        progress: report the models scored on stderr (:mod:`fennec._progress`).
        executor: where the candidates run (:mod:`fennec.engine`): in this process, one after
            the other, by default; on a :class:`~fennec.engine.RayExecutor` each candidate
            (fetch, forward passes, score) is a Ray task given the sample once (a GPU each when
            the cluster has them), with the feature cache of its worker's ``FENNEC_HOME``
            (``cache=False``: none).

    Returns:
        One :class:`CandidateScore` per distinct model id, in input order.

    Raises:
        UnknownMetricError: ``metric`` is not registered (before any model is loaded).
        InvalidInputError: a malformed sample or model id list.
    """
    metric_info(metric)  # an unknown metric fails before any model is loaded
    if isinstance(model_ids, str):
        raise InvalidInputError(f"model_ids must be a list of model ids, got the string {model_ids!r}; "
                                f"pass [{model_ids!r}].")
    ids = list(dict.fromkeys(model_ids))
    bad = [m for m in ids if not isinstance(m, str) or not m]
    if bad:
        raise InvalidInputError(f"model_ids must be non-empty strings like 'org/name'; got {bad[:3]}.")
    check_sample(sample)
    store = resolve_cache(cache)
    if executor is not None and executor.kind != "local":
        return _warned(_score_elsewhere(ids, sample, hub=hub, metric=metric, device=device, cache=store is not None,
                                        batch_size=batch_size, progress=progress, executor=executor))
    iterator: Iterable[str] = _progress.track(ids, desc=f"scoring candidates ({metric})", unit="models",
                                              enabled=progress)
    results = []
    for model_id in iterator:
        results.extend(_warned([_score_one(model_id, sample, hub=hub, metric=metric, store=store,
                                           device=device, batch_size=batch_size)]))
    return results


def _warned(scores: list[CandidateScore]) -> list[CandidateScore]:
    """``scores``, after a :class:`CandidateFailedWarning` for each failed one."""
    for c in scores:
        if c.error is not None:
            warnings.warn(f"{c.model_id} could not be scored with {c.metric}: {c.error}", CandidateFailedWarning,
                          stacklevel=3)
    return scores


def _score_one(model_id: str, sample: SampleLike, *, hub: Any, metric: str, store: FeatureCache | None,
               device: Any, batch_size: int) -> CandidateScore:
    """One candidate: fetched, run on the sample (or read from ``store``) and scored."""
    info = metric_info(metric)
    t0 = time.perf_counter()
    sha, passes, cached = None, 0, False
    try:
        files = hub.fetch(model_id, weights=False)
        sha = files.sha
        out = features_of(files, sample, hub=hub, store=store, device=device, batch_size=batch_size,
                           progress=False, started=t0)
        passes, cached = out.forward_passes, out.cached
        inputs = out.probabilities if info.input == "probabilities" else out.features
        if inputs is None:
            raise FeatureExtractionError(
                f"the model has no pre-trained classification head, and {metric} needs source-class "
                "probabilities; use a feature metric such as sfda or logme", model_id=model_id)
        score: float | None = float(info.func(inputs, np.asarray(sample.labels), device=device))
        error = None
    except Exception as exc:  # one broken candidate must not abort the ranking;
        # its error is reported in the result. KeyboardInterrupt (BaseException) still stops.
        score, error = None, f"{type(exc).__name__}: {exc}"
    result = CandidateScore(model_id, sha, metric, score, error, passes, time.perf_counter() - t0, cached)
    LOG.info("%s: %s=%s (%s, %.2fs)", model_id, metric, score,
             "cached" if cached else f"{passes} forward passes", result.seconds)
    return result


#: Memory a candidate reserves on a Ray node: a model of a few hundred million parameters and
#: the features of a 1000-image sample.
CANDIDATE_MEMORY = 4 * 2**30


def score_remotely(model_id: str, sample: SampleLike, hub: Any, metric: str, device: Any, cache: bool,
                   batch_size: int) -> CandidateScore:
    """:func:`_score_one` on a worker (a unit of ``score_candidates(..., executor=...)``): the
    hub from :func:`fennec.engine.hub_for_workers`, the worker's default feature cache."""
    from fennec.engine import hub_on_worker

    return _score_one(model_id, sample, hub=hub_on_worker(hub), metric=metric,
                      store=resolve_cache(None) if cache else None, device=device, batch_size=batch_size)


def _score_elsewhere(ids: list[str], sample: SampleLike, *, hub: Any, metric: str, device: Any, cache: bool,
                     batch_size: int, progress: bool, executor: Executor) -> list[CandidateScore]:
    """Every candidate as a unit of ``executor``; a candidate lost with its worker is failed."""
    from fennec.engine import Resources, Unit, hub_for_workers

    shared, recipe = executor.share(sample), hub_for_workers(hub)
    resources = Resources(num_cpus=1, memory=CANDIDATE_MEMORY, num_gpus=executor.gpus_per_unit(device))
    units = [Unit(m, score_remotely, (m, shared, recipe, metric, device, cache, batch_size), resources=resources)
             for m in ids]
    scores: dict[str, CandidateScore] = {}
    bar = _progress.bar(total=len(ids), desc=f"scoring candidates ({metric})", unit="models", enabled=progress)
    try:
        for r in executor.map(units):
            model_id = cast(str, r.key)  # units are keyed by model id
            if r.ok:
                scores[model_id] = r.value
            else:
                why = "its worker was lost: " if r.lost else ""
                scores[model_id] = CandidateScore(model_id, None, metric, None,
                                                  f"{why}{type(r.error).__name__}: {r.error}", 0, r.seconds, False)
            bar.update(1)
    finally:
        bar.close()
    return [scores[m] for m in ids]


def zscore(values: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the set (population std); all zeros when the values are all equal."""
    if len(values) == 0 or np.ptp(values) == 0:
        return np.zeros_like(values)
    return (values - values.mean()) / values.std()


def check_weight(weight: Any, name: str = "weight") -> float:
    """``weight`` as a float, if it is a number in [0, 1] (the metric's share in :func:`fuse`).

    Raises:
        InvalidInputError: anything else (a bool, a string, a number outside [0, 1]).
    """
    return check_fraction(weight, name, meaning="the metric's share of the fused score")


def fuse(index_scores: Mapping[str, float], metric_scores: Mapping[str, float | None], *,
         weight: float = DEFAULT_FUSION_WEIGHT) -> dict[str, float]:
    """Combine transfer-space and transferability-metric scores into one ranking score.

    The two signals live on unrelated scales: index scores are similarities in the transfer
    space (e.g. cosine in [-1, 1], bunched closely for the shortlist), metric scores are
    log-evidences, accuracies or divergences whose range depends on the metric, the number of
    classes and the sample size. A weighted sum of raw values would let whichever spans more
    dominate and would make ``weight`` meaningless, so each is first standardised over the
    candidate set (z-score, population std; all-equal values give zeros). The result is
    invariant to shifting or positively rescaling either score:

    .. math::
        \\text{final}_m = w \\, z(\\text{metric})_m + (1 - w) \\, z(\\text{index})_m

    A candidate without a metric score (its model failed, or the score is not finite) keeps
    only its index term: its metric z-score is taken as 0, the average of the scored
    candidates, so a failure neither promotes nor buries a model the index ranks well. The
    metric z-scores are computed over the scored candidates only.

    Args:
        index_scores: model id → transfer-space score (higher = closer); defines the candidates.
        metric_scores: model id → metric score or None; every key must be a candidate.
        weight: the metric's share ``w`` in [0, 1] (0: index only, 1: metric only).

    Returns:
        model id → fused score, ordered best first; ties are broken by the index score, then by
        model id (alphabetically), so the order is deterministic.

    Raises:
        InvalidInputError: ``weight`` outside [0, 1], a non-finite index score, or a metric
            score for a model that is not a candidate.

    Example:
        >>> final = fuse({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 1.0, "b": 3.0, "c": None}, weight=0.5)
        >>> {m: round(s, 3) for m, s in final.items()}  # z(index) = (1.22, 0, -1.22), z(metric) = (-1, 1, -)
        {'b': 0.5, 'a': 0.112, 'c': -0.612}
    """
    w = check_weight(weight)
    ids = list(index_scores)
    extra = sorted(set(metric_scores) - set(ids))
    if extra:
        raise InvalidInputError(f"metric_scores has models that are not candidates: {extra[:5]}; every "
                                "model with a metric score must also have an index score.")
    bad = [m for m in ids if not is_number(index_scores[m]) or not math.isfinite(index_scores[m])]
    if bad:
        raise InvalidInputError(f"Index scores must be finite numbers; got {[(m, index_scores[m]) for m in bad[:3]]}.")
    if not ids:
        return {}
    z_index = dict(zip(ids, zscore(np.array([float(index_scores[m]) for m in ids])), strict=True))
    scored = {m: float(s) for m in ids if is_number(s := metric_scores.get(m)) and math.isfinite(s)}
    z_metric = dict(zip(scored, zscore(np.array(list(scored.values()))), strict=True))
    fused = {m: float(w * z_metric.get(m, 0.0) + (1.0 - w) * z_index[m]) for m in ids}
    order = sorted(ids, key=lambda m: (-fused[m], -float(index_scores[m]), m))
    return {m: fused[m] for m in order}


def choose_candidates(ranked: Sequence[str], vectors: np.ndarray, n: int, *, pool: int | None = None) -> list[str]:
    """The models to refine when their metric scores will also move the task's placement.

    The first ``⌈n/2⌉`` are the index's best (the models most likely to be recommended, which
    the fusion re-ranks); the others are chosen greedily from the index's top ``pool`` (default
    ``3n``) to make the placement update (:meth:`fennec.space.TransferSpace.update_task_vector`)
    well-posed: each next one is the model whose score the candidates chosen so far predict
    least, the largest ``u·A⁻¹·u`` with ``A = ū²·I + Σ_chosen u_c u_cᵀ`` (the posterior variance
    of its score under a unit prior; greedy D-optimal design, ``ū²`` the mean of ``‖u‖²/dim``
    over ``vectors``). Ties go to the better index rank. Drawing from the top ``pool`` keeps the
    forward passes on plausible models rather than on the extremes of the space.

    Args:
        ranked: model ids, best index score first.
        vectors: ``(len(ranked), dim+1)`` their vectors ``[u, b]``, in the same order.
        n: how many to choose (all of ``ranked`` when it has fewer).
        pool: how many of the best ``ranked`` the diverse ones are drawn from (at least ``n``).

    Returns:
        ``n`` model ids: the index's best first, then the diverse ones in the order chosen.

    Raises:
        InvalidInputError: mismatched shapes, non-finite vectors, ``n`` or ``pool`` not a positive int.

    Example:
        >>> vecs = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.8, 0.0, 0.0]])
        >>> choose_candidates(["a", "b", "c", "d"], vecs, 2)  # "c" spans what "a" leaves open
        ['a', 'c']
    """
    n = check_positive_int(n, "n")
    pool = 3 * n if pool is None else check_positive_int(pool, "pool")
    ids = list(ranked)
    mv = np.asarray(vectors, dtype=np.float64)
    if mv.ndim != 2 or mv.shape[0] != len(ids) or mv.shape[1] < 2 or not np.all(np.isfinite(mv)):
        raise InvalidInputError(f"vectors must be finite rows [u, b], one per ranked model ({len(ids)}); got an "
                                f"array of shape {mv.shape}.")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("ranked has duplicate model ids; pass each model once, best first.")
    u = mv[:, :-1]
    n = min(n, len(ids))
    chosen = list(range((n + 1) // 2))
    rest = list(range(len(chosen), min(max(pool, n), len(ids))))
    unit = max(float(np.mean(np.sum(u**2, axis=1))) / u.shape[1], 1e-12)
    a = unit * np.eye(u.shape[1]) + u[chosen].T @ u[chosen]
    while len(chosen) < n:
        spread = np.einsum("ij,jk,ik->i", u[rest], np.linalg.inv(a), u[rest])
        pick = rest[int(np.argmax(spread))]  # first of equals: the better index rank
        chosen.append(pick)
        rest.remove(pick)
        a += np.outer(u[pick], u[pick])
    return [ids[i] for i in chosen]


def observed_scores(prior_scores: Mapping[str, float], metric_scores: Mapping[str, float | None]) -> dict[str, float]:
    """The scored candidates' metric scores as observations on the transfer space's score scale.

    A metric's scale is not the accuracy's, so only its order and relative spread over the
    candidates are used: its z-score over the scored candidates, mapped onto the mean and
    spread of the prior's scores over the same candidates,
    ``y_m = mean_C(p0) + std_C(p0) · z(metric)_m``. The affine map is then exactly the one that
    makes the metric agree with the prior on the candidates' average and spread, and the
    update (:meth:`fennec.space.TransferSpace.update_task_vector`) is driven by where the two
    orders differ. Candidates without a finite metric score are left out; finite scores without
    a spread (one of them, or all equal) have no order to tell and give no observation at all
    (not "every candidate scores the prior's mean", which would pull their predictions together).
    Nor do candidates the prior predicts to score alike (their prior scores equal to rounding):
    the metric's order then has no spread of the prior's to be mapped onto, and mapped onto
    none it would only restate the prior, which the update's evidence must not report as a move.

    Args:
        prior_scores: model id → the prior placement's score, for every candidate.
        metric_scores: model id → metric score or None, for the candidates.

    Returns:
        model id → observed score, for the candidates with a finite metric score; empty when
        those scores do not differ.

    Raises:
        InvalidInputError: a metric score for a model without a prior score, or a non-finite
            prior score.

    Example:
        >>> observed_scores({"a": 1.0, "b": 3.0, "c": 0.0}, {"a": 10.0, "b": 5.0, "c": None})  # swapped
        {'a': 3.0, 'b': 1.0}
    """
    extra = sorted(set(metric_scores) - set(prior_scores))
    if extra:
        raise InvalidInputError(f"metric_scores has models without a prior score: {extra[:5]}.")
    scored = {m: float(s) for m, s in metric_scores.items() if is_number(s) and math.isfinite(s)}
    if len(set(scored.values())) < 2:  # no order among the candidates: nothing observed
        return {}
    p0 = np.array([prior_scores[m] for m in scored], dtype=np.float64)
    if not np.all(np.isfinite(p0)):
        raise InvalidInputError("prior scores must be finite numbers.")
    if not p0.std() > _TIE * max(1.0, float(np.abs(p0).max())):  # the prior ties them: no scale to map onto
        return {}
    y = p0.mean() + p0.std() * zscore(np.array(list(scored.values())))
    return {m: float(v) for m, v in zip(scored, y, strict=True)}


def fuse_placed(scores: Mapping[str, float], metric_scores: Mapping[str, float | None], *,
                weight: float = DEFAULT_FUSION_WEIGHT) -> dict[str, float]:
    """:func:`fuse` for the refined candidates, on the scale of every model's (updated) score.

    ``scores`` holds every ranked model's transfer-space score (after the placement update);
    the refined candidates (the keys of ``metric_scores``) are fused as :func:`fuse` does,
    ``f = w·z(metric) + (1 − w)·z(score)`` over the candidates, and ``f`` is mapped back onto
    their scores' mean and spread, ``mean_C + std_C · f``, so that they take their place among
    the models that were not refined instead of ahead of all of them (the candidates need not
    be the index's best: :func:`choose_candidates`). With ``w = 0`` every score is unchanged.

    Args:
        scores: model id → transfer-space score, for every model to rank (candidates included).
        metric_scores: model id → metric score or None, for the refined candidates.
        weight: the metric's share ``w`` in [0, 1].

    Returns:
        model id → final score, best first (ties: the transfer-space score, then the model id).

    Raises:
        InvalidInputError: as :func:`fuse`; a candidate without a score.

    Example:
        >>> final = fuse_placed({"a": 3.0, "b": 2.0, "c": 1.0, "d": 2.5}, {"b": 2.0, "c": 9.0}, weight=1.0)
        >>> {m: round(s, 2) for m, s in final.items()}  # b and c swap within their own range
        {'a': 3.0, 'd': 2.5, 'c': 2.0, 'b': 1.0}
    """
    fused = fuse({m: scores[m] for m in metric_scores if m in scores}, metric_scores, weight=weight)
    if not fused:
        out = dict(scores)
    else:
        base = np.array([float(scores[m]) for m in fused])
        spread = float(base.std()) or 1.0
        out = dict(scores) | {m: float(base.mean() + spread * f) for m, f in fused.items()}
    bad = [m for m, v in out.items() if not is_number(v) or not math.isfinite(v)]
    if bad:
        raise InvalidInputError(f"Scores must be finite numbers; got {[(m, out[m]) for m in bad[:3]]}.")
    return {m: out[m] for m in sorted(out, key=lambda m: (-out[m], -float(scores[m]), m))}
