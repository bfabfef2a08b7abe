"""``fennec bench``: the end-to-end leave-one-task-out benchmark on the embedded zoo.

For every zoo target with ground truth (``benchmark/results/zoo_ground_truth.json``), the
target is held out: the transfer space is fitted on the other targets' fine-tuning results
only, then every method ranks the zoo's models for the held-out target from its training
split, and the ranking is compared with the held-out ground truth (seed-0 test accuracy).

Methods, side by side:

- ``random``: expected value over 200 seeded random orders (0 forward passes);
- ``history-mean``: the data-free baseline (:func:`history_mean`): each model's mean z-scored
  fine-tuning result over the training targets, without looking at the new data (0);
- ``largest``: by parameter count (0);
- ``metric:<name>``: every transferability metric of :mod:`fennec.metrics`, scoring every
  model (one forward pass per model and image);
- ``metric-ensemble``: the mean z-score of the three metrics with the best mean weighted τ
  over the training targets (chosen without the held-out target), scoring every model;
- ``fennec-paper``: the Fennec paper's recipe (:class:`fennec.space.baseline.FennecBaseline`: NMF k=5,
  a random forest from proxy image embeddings to task vectors, meta-features; proxy only);
- ``fennec-index``: fennec's transfer space and proxy descriptor alone (proxy only), the task
  placement shrunk toward the mean task by the nearest known task's dissimilarity
  (:class:`fennec.space.TransferSpace` ``shrink``); ``fennec-index (no shrinkage)`` without it;
- ``fennec-refine``: fennec-index, then the top ``C`` candidates re-ranked with a scorer and
  fused (proxy + C models). The scorer (the best single metric over the training targets, or
  the ensemble of the best three, computed over the candidates alone) and the fusion weight are
  chosen for each C by an inner leave-one-task-out on the training targets, without the held-out
  target; the whole curve over C is reported too. ``fennec-refine (no shrinkage, metric alone)``
  is the pipeline before both choices, ``fennec-refine (package defaults)`` what
  :func:`fennec.recommend` does with its defaults.

Measures per target: weighted τ, Kendall τ, top-1 regret, top-3 hit (the true best model is
among the first three), the difference in weighted τ to ``history-mean`` (summarised per method
as wins / losses / ties and the mean difference), forward passes (images through any network,
as a multiple of the sample size) and wall time (proxy/feature extraction and metric time, measured once per
(model, target) and summed per method; space fitting and index search measured per run).

The noise ceiling beside every figure is the same measure of the ground truth's own repeat: the
seed-1 fine-tuning accuracies, which exist for a seeded subset of the models on each target
(``scripts/build_ground_truth.py``), ranked against seed 0 over that subset; its weighted τ is
the ``noise_ceiling`` of ``zoo_ground_truth.json`` (``zoo_report.md``). It measures how well two
fine-tuning runs agree; it is not a bound, since seed 1 has noise of its own and a ranking that
follows the models' expected accuracy can agree with seed 0 better. Every method is therefore
also measured on the ceiling's footing, over the models with a seed-1 run alone
(``weighted_tau_ceiling_models``).

Writes ``zoo_recommend.{json,md}`` and plots ``zoo_recommend_tau.png`` (weighted τ per target
and method) and ``zoo_recommend_budget.png`` (quality against forward passes) into
``benchmark/results`` of a source checkout, or ``./fennec-bench`` for an installed fennec
(:func:`default_out`). Feature extraction and metric scores are cached under the zoo's
``cache/bench`` (``FENNEC_HOME/zoo/cache/bench`` for the zoo packaged with an installed
fennec, which is never written to), keyed by model sha, sample fingerprint and metric, so a
re-run after new ground truth only re-evaluates.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec import _progress, constants
from fennec._io import save_json_atomic
from fennec.bench.report import CEILING_MODELS_TAU, markdown_report, plot_report
from fennec.errors import InvalidInputError

if TYPE_CHECKING:
    from fennec.hub.protocol import Hub

__all__ = ["ZooData", "default_out", "history_curve", "history_mean", "load_zoo_data", "run_benchmark", "score_zoo",
           "summarise_curve"]

LOG = logging.getLogger(__name__)

MIN_MODELS = 5
RANDOM_DRAWS = 200
#: Candidate counts on the quality-against-forward-passes curve.
BUDGETS = (2, 4, 6, 8, 12, 18, 24)
#: The headline configuration: proxy + 6 candidates = 7/36 of scoring every zoo model.
HEADLINE_CANDIDATES = 6
FUSION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Metrics averaged (z-scores) by the ``metric-ensemble`` method.
ENSEMBLE_SIZE = 3
#: The data-free baseline every method is compared with, per target.
BASELINE = "history-mean"
#: Weighted τ differences smaller than this count as ties (equal at the report's 3 decimals).
TIE = 5e-4
#: Refinement scorers ``fennec bench`` chooses between by inner leave-one-task-out (ties: the first).
SCORERS = ("metric", "ensemble")
#: :func:`history_curve`'s in-sample upper bound of any placement (it looks at the held-out results,
#: each model's own included, so it also fits their noise).
ORACLE_PLACEMENT = "oracle placement"
#: ... and its cross-fitted version: each model predicted from the held-out results of the *other* models.
ORACLE_CROSS_FITTED = "oracle placement, cross-fitted"
#: Prior strengths of the placement update (:meth:`fennec.space.TransferSpace.update_task_vector`,
#: in observations of an average model) the inner leave-one-task-out chooses from; inf: no update.
STRENGTH_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, math.inf)


@dataclasses.dataclass
class ZooData:
    """Everything the benchmark needs about the zoo, loaded once.

    Attributes:
        models: the candidate models (the zoo minus the proxy), sorted.
        truth: ``{target: {model: seed-0 test accuracy}}``.
        samples: ``{target: DatasetSample}`` of each target's training split.
        descriptors: ``{target: TaskDescriptor}`` from the proxy.
        embeddings: ``{target: (N, D) proxy embeddings}`` (the Fennec recipe's RF input).
        sides: ``{model: ModelSide}`` from the zoo workspace's catalog.
        proxy_seconds: ``{target: seconds of the proxy's forward passes}`` (first extraction).
        hub: the zoo hub.
        coverage: ground-truth coverage as recorded in the ground-truth file.
        repeat: ``{target: {model: seed-1 test accuracy}}``, the ground truth's repeat on a
            seeded subset of the models (the noise ceiling); empty when it has none.
    """

    models: list[str]
    truth: dict[str, dict[str, float]]
    samples: dict[str, Any]
    descriptors: dict[str, Any]
    embeddings: dict[str, np.ndarray]
    sides: dict[str, Any]
    proxy_seconds: dict[str, float]
    hub: Hub
    coverage: dict[str, Any]
    repeat: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def default_out() -> Path:
    """Where the results go by default: ``benchmark/results`` of the source checkout fennec runs
    from (the committed results), else ``./fennec-bench`` (an installed fennec writes nothing
    outside the current folder and ``FENNEC_HOME``)."""
    from fennec._paths import source_root

    root = source_root()
    return root / "benchmark" / "results" if root is not None else Path.cwd() / "fennec-bench"


def _cache_dir() -> Path:
    """The scores cache: in the zoo's folder, except for the zoo packaged with fennec (package
    data is read-only): then under ``FENNEC_HOME/zoo``, beside the zoo's workspace."""
    from fennec._paths import PACKAGED_ZOO
    from fennec.workspace.layout import zoo_dir

    zoo = zoo_dir()
    base = constants.fennec_home() / constants.ZOO_HOME_DIR if zoo.resolve() == PACKAGED_ZOO else zoo
    return base / "cache" / "bench"


def _load_json(path: Path) -> dict[str, Any]:
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            LOG.warning("Ignoring unreadable cache %s", path)
    return {}


def _save_json(path: Path, data: Any) -> None:
    save_json_atomic(path, data, sort_keys=True)


def load_zoo_data(*, max_samples: int, seed: int = 0, device: Any = None, targets: Sequence[str] | None = None,
                  progress: bool = False) -> ZooData:
    """Load the zoo: workspace catalog (archi2vec side info), ground truth, target samples,
    proxy descriptors."""
    from fennec.catalog import Catalog
    from fennec.data import load_sample
    from fennec.features import model_features
    from fennec.hub import open_hub
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY, TaskDescriptor, describe
    from fennec.workspace.fitting import model_sides
    from fennec.workspace.layout import catalog_path, zoo_dir, zoo_ground_truth
    from fennec.workspace.zoo import zoo_workspace

    zoo = zoo_dir()
    home = zoo_workspace(progress=progress, device=device)
    with Catalog(catalog_path(home)) as catalog:
        sides = model_sides(catalog)
    sides.pop(OFFLINE_PROXY, None)
    gt = json.loads(zoo_ground_truth().read_text(encoding="utf-8"))
    truth = {t: {m: float(v) for m, v in row.items() if m in sides}
             for t, row in gt.get("test_accuracy_seed0", {}).items()}
    truth = {t: row for t, row in truth.items()
             if len(row) >= MIN_MODELS and (zoo / constants.ZOO_DATASETS_DIR / t).is_dir()}
    if targets:
        unknown = sorted(set(targets) - set(truth))
        if unknown:
            raise InvalidInputError(f"Targets {unknown} have no ground truth for {MIN_MODELS}+ models; "
                                    f"available: {sorted(truth)}.")
    hub = open_hub(str(zoo / constants.ZOO_HUB_DIR))
    samples, descriptors, embeddings, proxy_seconds = {}, {}, {}, {}
    timing_cache = _load_json(_cache_dir() / "proxy_seconds.json")
    for t in sorted(truth):
        sample = load_sample(zoo / constants.ZOO_DATASETS_DIR / t, max_samples=max_samples, seed=seed)
        feats = model_features(OFFLINE_PROXY, sample, hub=hub, device=device)
        key = f"{feats.sha}|{sample.fingerprint}"
        if not feats.cached:
            timing_cache[key] = feats.seconds
        elif key not in timing_cache:  # cached by someone else: time one real extraction
            timing_cache[key] = model_features(OFFLINE_PROXY, sample, hub=hub, device=device, cache=False).seconds
        samples[t] = sample
        embeddings[t] = feats.features
        proxy_seconds[t] = float(timing_cache.get(key, feats.seconds))
        labels = np.asarray(sample.labels)
        descriptors[t] = TaskDescriptor(describe(feats.features, labels), OFFLINE_PROXY, feats.sha,
                                        DESCRIPTOR_VERSION, len(labels), int(len(np.unique(labels))))
    _save_json(_cache_dir() / "proxy_seconds.json", timing_cache)
    repeat = {t: {m: float(v) for m, v in row.items() if m in truth[t]}
              for t, row in (gt.get("test_accuracy_seed1") or {}).items() if t in truth}
    return ZooData(sorted(sides), truth, samples, descriptors, embeddings, sides, proxy_seconds, hub,
                   gt.get("coverage", {}), repeat)


def score_zoo(data: ZooData, metrics: Sequence[str], *, device: Any = None,
              progress: bool = False) -> tuple[dict, dict, dict, dict]:
    """Every metric on every (target, model): ``(scores, extract_seconds, metric_seconds, errors)``.

    ``scores[t][m][metric]`` is a float or None (the metric failed: ``errors[t][m][metric]``
    says why, and the error is logged). Cached in ``<zoo>/cache/bench/scores.json`` by model
    sha and sample fingerprint, with a hash of each metric's source file: a changed metric is
    recomputed, and so is a failure (it is never served from the cache).
    """
    from fennec.features import model_features
    from fennec.metrics import metric_info

    path = _cache_dir() / "scores.json"
    cache = _load_json(path)
    scores: dict = {}
    extract_s: dict = {}
    metric_s: dict = {}
    errors: dict = {}
    code = {x: _metric_code(x) for x in metrics}
    pairs = [(t, m) for t in sorted(data.truth) for m in data.models]
    dirty = 0
    for t, m in _progress.track(pairs, desc="scoring the zoo", unit="(model, target) pairs", enabled=progress):
        sample = data.samples[t]
        sha = data.hub.model_info(m).sha
        key = f"{sha}|{sample.fingerprint}"
        entry = cache.setdefault(key, {"model": m, "target": t, "metrics": {}, "seconds": {}})
        stored_code = entry.setdefault("code", {})
        missing = [x for x in metrics if entry["metrics"].get(x) is None or stored_code.get(x) != code[x]]
        if missing or "extract_seconds" not in entry:
            feats = model_features(m, sample, hub=data.hub, device=device)
            if not feats.cached:
                entry["extract_seconds"] = feats.seconds
            elif "extract_seconds" not in entry:  # cached by someone else: time one real extraction
                entry["extract_seconds"] = model_features(m, sample, hub=data.hub, device=device,
                                                          cache=False).seconds
            for name in missing:
                info = metric_info(name)
                x = feats.probabilities if info.input == "probabilities" else feats.features
                t0 = time.perf_counter()
                stored_code[name] = code[name]
                entry.setdefault("errors", {}).pop(name, None)
                try:
                    if x is None:
                        raise InvalidInputError(f"{m} has no classification head for {name}")
                    entry["metrics"][name] = float(info.func(x, sample.labels, device=device))
                except Exception as e:  # a metric failing on one model is a result
                    LOG.warning("%s on %s / %s failed: %s", name, m, t, e)
                    entry["metrics"][name] = None
                    entry.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"[:300]
                entry["seconds"][name] = time.perf_counter() - t0
            dirty += 1
            if dirty % 20 == 0:
                _save_json(path, cache)
        scores.setdefault(t, {})[m] = {x: entry["metrics"].get(x) for x in metrics}
        errors.setdefault(t, {})[m] = {x: entry.get("errors", {}).get(x) for x in metrics
                                       if entry["metrics"].get(x) is None}
        extract_s.setdefault(t, {})[m] = float(entry["extract_seconds"])
        metric_s.setdefault(t, {})[m] = {x: float(entry["seconds"].get(x, 0.0)) for x in metrics}
    if dirty:
        _save_json(path, cache)
    return scores, extract_s, metric_s, errors


def _metric_code(name: str) -> str:
    """sha256 (12 hex) of the source file that defines a metric: the cache key of its scores."""
    import inspect

    from fennec._io import sha256_file
    from fennec.metrics import metric_info

    source = inspect.getsourcefile(metric_info(name).func)
    if source is None:  # e.g. a metric registered from an interactive session
        raise InvalidInputError(f"The metric {name!r} has no source file, which fennec bench keys its cached "
                                "scores by; register it from a module file.")
    return sha256_file(source)[:12]


# -- evaluation ------------------------------------------------------------------------


def _comparable(ranking: Mapping[str, float], truth: Mapping[str, float]) -> dict[str, float] | None:
    """The finite scores of the models with truth, or None when they are too few or all tie."""
    s = {m: float(v) for m, v in ranking.items() if m in truth and v is not None and np.isfinite(v)}
    return None if len(s) < MIN_MODELS or len(set(s.values())) == 1 else s


def _weighted_tau(ranking: Mapping[str, float], truth: Mapping[str, float]) -> float | None:
    """:func:`_evaluate`'s weighted τ alone (the inner selections need nothing else)."""
    from fennec import evaluation as ev

    s = _comparable(ranking, truth)
    return None if s is None else float(ev.weighted_tau(s, {m: truth[m] for m in s}))


def _evaluate(ranking: Mapping[str, float], truth: Mapping[str, float], *,
              subset: Sequence[str] | None = None) -> dict[str, float | None]:
    """weighted τ, Kendall τ, top-1 regret, top-3 hit of a score map over the models with truth;
    with ``subset`` (the noise ceiling's models) also ``weighted_tau_ceiling_models``, the weighted τ
    over those models alone, the noise ceiling's own footing."""
    from fennec import evaluation as ev

    s = _comparable(ranking, truth)
    out: dict[str, float | None]
    if s is None:
        out = {"weighted_tau": None, "kendall_tau": None, "top1_regret": None, "top3_hit": None}
    else:
        a = {m: truth[m] for m in s}
        order = sorted(s, key=lambda m: (-s[m], m))
        best = max(a.values())
        out = {"weighted_tau": float(ev.weighted_tau(s, a)), "kendall_tau": float(ev.kendall_tau(s, a)),
               "top1_regret": float(ev.top_k_regret(s, a, k=1)),
               "top3_hit": float(any(a[m] == best for m in order[:3]))}
    if subset is not None:
        out[CEILING_MODELS_TAU] = _weighted_tau(ranking, {m: truth[m] for m in subset if m in truth})
    return out


def history_mean(results: Mapping[str, Mapping[str, float]], models: Sequence[str]) -> dict[str, float]:
    """The data-free baseline: rank models by their mean normalised result over the known tasks.

    Each known task's accuracies are z-scored over the models that have a result on it
    (:func:`fennec.space.normalise_results`, the transfer space's own normalisation: the task's
    mean and spread removed, so an easy task and a hard one weigh the same; a task whose models
    all tie contributes zeros, one with a single model is dropped). A model's score is the mean
    of its z-scores over the tasks where it has a result; a model with no result on any known task
    gets 0, the average model of every task, so it is neither promoted nor buried. Nothing of the
    new task is looked at: no forward pass.

    Args:
        results: ``{task: {model: accuracy}}`` of the known tasks, missing cells absent.
        models: the models to score.

    Returns:
        ``{model: score}`` for every model of ``models``; higher is better.

    Example:
        >>> s = history_mean({"t1": {"a": 0.9, "b": 0.7, "c": 0.5}, "t2": {"a": 0.6, "b": 0.8}}, ["a", "b", "c", "d"])
        >>> {m: round(v, 3) for m, v in s.items()}  # a: (1.225 - 1) / 2, c: t1 only, d: no history
        {'a': 0.112, 'b': 0.5, 'c': -1.225, 'd': 0.0}
    """
    from fennec.space import normalise_results

    z = normalise_results(results, method="zscore")
    out = {}
    for m in models:
        seen = [row[m] for row in z.values() if m in row]
        out[m] = float(np.mean(seen)) if seen else 0.0
    return out


def _noise_ceiling(repeat: Mapping[str, float], truth: Mapping[str, float]) -> dict[str, float | None] | None:
    """The measures of the ground truth's repeat (seed 1, a subset of the models) ranked against
    seed 0 over that subset, or None when the target has no repeat on enough models."""
    both = {m: v for m, v in repeat.items() if m in truth}
    if len(both) < MIN_MODELS:
        return None
    return _evaluate(both, {m: truth[m] for m in both}) | {"n_models": len(both)}


def _versus(rows: Mapping[str, Mapping[str, Mapping[str, Any]]], base: str = BASELINE) -> dict[str, dict[str, Any]]:
    """Every method against ``base``, target by target, on weighted τ: wins, losses, ties
    (differences below :data:`TIE`), the mean difference and the targets where it is below."""
    methods = list(next(iter(rows.values())))
    out: dict[str, dict[str, Any]] = {}
    for meth in methods:
        diffs = {t: r[meth]["weighted_tau"] - r[base]["weighted_tau"] for t, r in rows.items()
                 if r[meth].get("weighted_tau") is not None and r[base].get("weighted_tau") is not None}
        out[meth] = {"wins": sum(d >= TIE for d in diffs.values()), "losses": sum(d <= -TIE for d in diffs.values()),
                     "ties": sum(abs(d) < TIE for d in diffs.values()),
                     "mean_diff": float(np.mean(list(diffs.values()))) if diffs else None,
                     "below": sorted(t for t, d in diffs.items() if d <= -TIE), "targets": len(diffs)}
    return out


def _order_scores(order: Sequence[str]) -> dict[str, float]:
    """A ranking as scores (first = highest)."""
    n = len(order)
    return {m: float(n - i) for i, m in enumerate(order)}


def _fit_space(data: ZooData, train: Sequence[str], *, use_archi2vec: bool = True, shrink: bool = True,
               dim: int | None = None, columns: np.ndarray | None = None) -> Any:
    """The transfer space of ``train`` (``dim``: the package's default dimension when None), its tasks
    described by their proxy descriptors, or by the descriptors' ``columns`` alone when given."""
    from fennec.space import TaskSide, TransferSpace
    from fennec.workspace.fitting import DEFAULT_DIM

    results = {t: data.truth[t] for t in train}
    tasks = {t: TaskSide(t, _descriptor(data, t, columns), data.descriptors[t].n_classes,
                         data.descriptors[t].n_samples) for t in train}
    return TransferSpace(dim=DEFAULT_DIM if dim is None else dim, use_archi2vec=use_archi2vec, seed=0,
                         shrink=shrink).fit(results, models=data.sides, tasks=tasks)


def _descriptor(data: ZooData, target: str, columns: np.ndarray | None = None) -> np.ndarray:
    """A target's proxy descriptor, or its ``columns`` alone."""
    vector = data.descriptors[target].vector
    return vector if columns is None else vector[columns]


def _index_scores(space: Any, data: ZooData, target: str) -> tuple[dict[str, float], list[tuple[str, float]]]:
    vec, neighbours = space.task_vector(data.descriptors[target].vector)
    mv = space.model_vectors([data.sides[m] for m in data.models])
    scores = space.score(mv, vec)
    return {m: float(s) for m, s in zip(data.models, scores, strict=True)}, neighbours


def _refined(index: Mapping[str, float], metric: Mapping[str, float | None], n_candidates: int,
             weight: float) -> dict[str, float]:
    from fennec.recommendation.refine import fuse

    ranked = sorted(index, key=lambda m: (-index[m], m))
    pool = ranked[:n_candidates]
    fused = fuse({m: index[m] for m in pool}, {m: metric.get(m) for m in pool}, weight=weight)
    order = sorted(pool, key=lambda m: (-fused[m], m)) + ranked[n_candidates:]
    return _order_scores(order)


@dataclasses.dataclass(frozen=True)
class _Prior:
    """A space's placement of one target: the models (index order), their vectors, the task vector."""

    space: Any
    ranked: list[str]
    vectors: np.ndarray  # (M, dim+1), rows in ``ranked`` order
    task: np.ndarray  # (dim+1,)


def _prior(space: Any, data: ZooData, target: str, *, columns: np.ndarray | None = None) -> _Prior:
    """The target's placement in ``space`` from its proxy descriptor (its ``columns`` alone when given, as
    the space was fitted with them: :func:`_fit_space`)."""
    vec, _ = space.task_vector(_descriptor(data, target, columns))
    mv = space.model_vectors([data.sides[m] for m in data.models])
    scores = space.score(mv, vec)
    order = sorted(range(len(data.models)), key=lambda i: (-scores[i], data.models[i]))
    return _Prior(space, [data.models[i] for i in order], mv[order], vec)


def _placed_scores(prior: _Prior, model_scores: Mapping[str, Mapping[str, float | None]], names: Sequence[str],
                   n_candidates: int, weight: float, strength: float, *, diverse: bool = True) -> dict[str, float]:
    """The default pipeline of :func:`fennec.recommend` on one target: the candidates (the index's best
    half and a diverse half, :func:`~fennec.recommendation.refine.choose_candidates`; or the index's
    best with ``diverse=False``) scored by one metric or the mean z-score of several over the candidates,
    the placement updated by their scores (``strength``; inf: not at all), every model re-predicted,
    and the candidates fused among them (:func:`~fennec.recommendation.refine.fuse_placed`)."""
    return _placed_grid(prior, model_scores, names, n_candidates, [weight], [strength], diverse=diverse)[
        weight, strength]


def _placed_grid(prior: _Prior, model_scores: Mapping[str, Mapping[str, float | None]], names: Sequence[str],
                 n_candidates: int, weights: Sequence[float], strengths: Sequence[float], *,
                 diverse: bool = True) -> dict[tuple[float, float], dict[str, float]]:
    """:func:`_placed_scores` for every (fusion weight, strength) of a grid, ``{(w, r): scores}``: the
    candidates, their scores and the observations do not depend on either, the updated placement
    only on the strength, so each is computed once."""
    from fennec.recommendation.refine import choose_candidates, fuse_placed, observed_scores

    c = min(n_candidates, len(prior.ranked))
    pool = choose_candidates(prior.ranked, prior.vectors, c) if diverse else prior.ranked[:c]
    metric: Mapping[str, float | None]
    if len(names) == 1:
        metric = {m: model_scores[m][names[0]] for m in pool}
    else:
        metric = _ensemble({m: model_scores[m] for m in pool}, names)
    row = {m: i for i, m in enumerate(prior.ranked)}
    prior_scores = prior.vectors @ prior.task
    observed = observed_scores({m: float(prior_scores[row[m]]) for m in pool}, metric)
    out = {}
    for strength in strengths:
        task = prior.task
        if observed and math.isfinite(strength):
            task = prior.space.update_task_vector(prior.task, prior.vectors[[row[m] for m in observed]],
                                                  np.array(list(observed.values())), strength=strength)
        scores = prior.vectors @ task
        updated = {m: float(scores[i]) for i, m in enumerate(prior.ranked)}
        for weight in weights:
            out[weight, strength] = fuse_placed(updated, metric, weight=weight)
    return out


def _inner_placed_choices(data: ZooData, train: Sequence[str], scores: dict, metric_tau: dict,
                          metrics: Sequence[str], budgets: Sequence[int], spaces: dict[tuple[str, ...], Any], *,
                          diverse: bool = True, strengths: Sequence[float] = STRENGTH_GRID,
                          kinds: Sequence[str] = SCORERS) -> dict[int, tuple[str, float, float]]:
    """For each candidate budget, the scorer, fusion weight and prior strength of :func:`_placed_scores`
    with the best mean weighted τ of leave-one-out over ``train`` (as :func:`_inner_choices`; the
    held-out target is never seen). Ties: the single metric, the weight nearest 0.5, the stronger prior."""
    grid = [(k, w, r) for k in kinds for w in FUSION_GRID for r in strengths]
    per: dict[tuple[int, str, float, float], list[float]] = {(c, *g): [] for c in budgets for g in grid}
    for inner in train:
        rest = tuple(x for x in train if x != inner)
        if rest not in spaces:
            spaces[rest] = _fit_space(data, rest)
        prior = _prior(spaces[rest], data, inner)
        ranked = _inner_metrics(metric_tau, rest, metrics, k=ENSEMBLE_SIZE)
        names = {"metric": ranked[:1], "ensemble": ranked}
        for c in budgets:
            for k in kinds:
                placed = _placed_grid(prior, scores[inner], names[k], c, FUSION_GRID, strengths, diverse=diverse)
                for (w, r), ranking in placed.items():
                    tau = _weighted_tau(ranking, data.truth[inner])
                    if tau is not None:
                        per[c, k, w, r].append(tau)
    means = {key: float(np.mean(v)) if v else -np.inf for key, v in per.items()}
    return {c: max(grid, key=lambda g: (means[(c, *g)], g[0] == kinds[0], -abs(g[1] - 0.5), g[2])) for c in budgets}


def run_benchmark(*, targets: Sequence[str] | None = None, out: str | Path | None = None,
                  max_samples: int | None = None, seed: int = 0, device: Any = None,
                  progress: bool = False) -> str:
    """Run the leave-one-task-out benchmark; write the results into ``out`` (default
    :func:`default_out`); return the markdown report."""
    from fennec.metrics import list_metrics
    from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC, DEFAULT_PLACEMENT_STRENGTH
    from fennec.recommendation.recommender import LOW_SIMILARITY
    from fennec.recommendation.refine import choose_candidates
    from fennec.space import TaskSide
    from fennec.space.baseline import FennecBaseline
    from fennec.workspace.fitting import DEFAULT_MAX_SAMPLES

    t_start = time.perf_counter()
    max_samples = max_samples or DEFAULT_MAX_SAMPLES
    data = load_zoo_data(max_samples=max_samples, seed=seed, device=device, targets=targets, progress=progress)
    metrics = list_metrics()
    scores, extract_s, metric_s, _ = score_zoo(data, metrics, device=device, progress=progress)
    all_targets = sorted(data.truth)
    held = sorted(targets) if targets else all_targets
    n_models = len(data.models)
    params = {m: data.sides[m].parameters or 0 for m in data.models}
    headline = min(HEADLINE_CANDIDATES, n_models)

    # Each metric alone, on every target: the inner selection of the refinement metric uses these.
    metric_tau = {x: {name: _evaluate({m: scores[x][m][name] for m in data.models}, data.truth[x])["weighted_tau"]
                      for name in metrics} for x in all_targets}
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    chosen_metrics: dict[str, str] = {}
    curve: dict[str, dict[int, dict[str, Any]]] = {}
    evidence: dict[str, list] = {}
    chosen_weights: dict[str, float] = {}
    chosen_strengths: dict[str, float] = {}
    spaces: dict[tuple[str, ...], Any] = {}  # spaces of the inner folds, by training targets (shared across folds)
    chosen_ensembles: dict[str, list[str]] = {}
    no_history: dict[str, list[str]] = {}
    nearest: dict[str, float | None] = {}
    noise = {t: _noise_ceiling(data.repeat.get(t, {}), data.truth[t]) for t in held}
    rng = np.random.default_rng(seed)
    for t in held:
        truth = data.truth[t]
        rep = sorted(data.repeat.get(t, {})) if noise[t] is not None else None  # the noise ceiling's models
        evaluate = functools.partial(_evaluate, truth=truth, subset=rep)  # every method's measures on this target
        n_img = len(data.samples[t].labels)
        train = [x for x in all_targets if x != t]
        row: dict[str, dict[str, Any]] = {}

        draws = [evaluate(_order_scores(list(rng.permutation(data.models)))) for _ in range(RANDOM_DRAWS)]
        row["random"] = {k: float(np.mean([d[k] for d in draws if d[k] is not None])) for k in draws[0]}
        row["random"] |= {"forward_passes": 0.0, "seconds": 0.0}
        row["largest"] = evaluate({m: float(params[m]) for m in data.models}) | {
            "forward_passes": 0.0, "seconds": 0.0}
        t0 = time.perf_counter()
        hist = history_mean({x: data.truth[x] for x in train}, data.models)
        row[BASELINE] = evaluate(hist) | {"forward_passes": 0.0, "seconds": time.perf_counter() - t0}
        no_history[t] = sorted(m for m in data.models if not any(m in data.truth[x] for x in train))
        for name in metrics:
            ms = {m: scores[t][m][name] for m in data.models}
            row[f"metric:{name}"] = evaluate(ms) | {
                "forward_passes": float(n_models),
                "seconds": sum(extract_s[t].values()) + sum(metric_s[t][m][name] for m in data.models)}

        t0 = time.perf_counter()
        baseline = FennecBaseline(seed=2023).fit(
            {x: data.truth[x] for x in train}, data.sides,
            {x: _subsample(data.embeddings[x], 100, seed) for x in train},
            {x: TaskSide(x, None, data.descriptors[x].n_classes, data.descriptors[x].n_samples) for x in train})
        paper = baseline.predict(_subsample(data.embeddings[t], 100, seed), n_samples=n_img,
                                 n_classes=data.descriptors[t].n_classes, models=data.models)
        row["fennec-paper"] = evaluate(paper) | {
            "forward_passes": 1.0, "seconds": data.proxy_seconds[t] + time.perf_counter() - t0}

        t0 = time.perf_counter()
        space = _fit_space(data, train)
        index, neighbours = _index_scores(space, data, t)
        fit_s = time.perf_counter() - t0
        evidence[t] = [(n, round(float(w), 3)) for n, w in neighbours[:3]]
        nearest[t] = _nearest(space, data, t)
        row["fennec-index"] = evaluate(index) | {"forward_passes": 1.0, "seconds": data.proxy_seconds[t] + fit_s}
        space_nosides = _fit_space(data, train, use_archi2vec=False)
        row["fennec-index (no archi2vec)"] = evaluate(_index_scores(space_nosides, data, t)[0]) | {
            "forward_passes": 1.0, "seconds": data.proxy_seconds[t] + fit_s}
        index_plain = _index_scores(_fit_space(data, train, shrink=False), data, t)[0]
        row["fennec-index (no shrinkage)"] = evaluate(index_plain) | {
            "forward_passes": 1.0, "seconds": data.proxy_seconds[t] + fit_s}

        top3 = _inner_metrics(metric_tau, train, metrics, k=ENSEMBLE_SIZE)
        ensemble = _ensemble({m: scores[t][m] for m in data.models}, top3)
        row["metric-ensemble"] = evaluate(ensemble) | {
            "forward_passes": float(n_models),
            "seconds": sum(extract_s[t].values()) + sum(metric_s[t][m][x] for m in data.models for x in top3)}
        chosen_ensembles[t] = top3

        budgets = sorted({min(c, n_models) for c in (*BUDGETS, headline, n_models)})
        inner_ok = len(train) >= 3
        choices = (_inner_placed_choices(data, train, scores, metric_tau, metrics, budgets, spaces) if inner_ok
                   else dict.fromkeys(budgets, (SCORERS[0], 0.5, math.inf)))
        scorers = {"metric": top3[:1], "ensemble": top3}
        chosen_weights[t] = choices[headline][1]
        chosen_strengths[t] = choices[headline][2]
        chosen_metrics[t] = _scorer_label(choices[headline][0], scorers)
        prior = _prior(space, data, t)

        def cost(pool: Sequence[str], names: Sequence[str]) -> float:
            return (data.proxy_seconds[t] + fit_s + sum(extract_s[t][m] for m in pool)  # noqa: B023 - used at once
                    + sum(metric_s[t][m][x] for m in pool for x in names))  # noqa: B023

        curve[t] = {}
        for c in budgets:
            kind, w, r = choices[c]
            pool = choose_candidates(prior.ranked, prior.vectors, c)
            res = evaluate(_placed_scores(prior, scores[t], scorers[kind], c, w, r))
            curve[t][c] = res | {"fusion_weight": w, "strength": _strength(r), "scorer": kind,
                                 "forward_passes": 1.0 + c, "seconds": cost(pool, scorers[kind])}
        row["fennec-refine"] = dict(curve[t][headline])
        top_pool = prior.ranked[:headline]
        # ablations, each with its own inner choices: the index's top candidates instead of a diverse half;
        # no placement update (strength inf); the pipeline before the update (top candidates fused ahead of
        # the rest, as fennec 0.x did); and before shrinkage and the scorer choice as well
        for label, diverse, strengths in (("placement update, index's top candidates", False, STRENGTH_GRID),
                                          ("diverse candidates, no placement update", True, (math.inf,))):
            ch = (_inner_placed_choices(data, train, scores, metric_tau, metrics, [headline], spaces,
                                        diverse=diverse, strengths=strengths)
                  if inner_ok else {headline: (SCORERS[0], 0.5, math.inf)})
            kind, w, r = ch[headline]
            row[f"fennec-refine ({label})"] = evaluate(
                _placed_scores(prior, scores[t], scorers[kind], headline, w, r, diverse=diverse)) | {
                "forward_passes": 1.0 + headline, "seconds": row["fennec-refine"]["seconds"]}
        before = (_inner_choices(data, train, scores, metric_tau, metrics, [headline]) if inner_ok
                  else {headline: (SCORERS[0], 0.5)})
        kind, w = before[headline]
        row["fennec-refine (no placement update, top candidates fused ahead)"] = evaluate(
            _refine_scores(index, scores[t], scorers[kind], headline, w)) | {
            "forward_passes": 1.0 + headline, "seconds": cost(top_pool, scorers[kind])}
        plain = (_inner_choices(data, train, scores, metric_tau, metrics, [headline], shrink=False,
                                kinds=SCORERS[:1]) if inner_ok else {headline: (SCORERS[0], 0.5)})
        row["fennec-refine (no shrinkage, metric alone)"] = evaluate(
            _refine_scores(index_plain, scores[t], top3[:1], headline, plain[headline][1])) | {
            "forward_passes": 1.0 + headline, "seconds": cost(top_pool, top3[:1])}
        row["fennec-refine (package defaults)"] = evaluate(
            _placed_scores(prior, scores[t], [DEFAULT_METRIC], headline, DEFAULT_FUSION_WEIGHT,
                           DEFAULT_PLACEMENT_STRENGTH)) | {
            "forward_passes": 1.0 + headline, "seconds": row["fennec-refine"]["seconds"]}
        LOG.info("%s: index τw %s, refine τw %s (%s, w=%.2f, strength %s)", t, row["fennec-index"]["weighted_tau"],
                 row["fennec-refine"]["weighted_tau"], chosen_metrics[t], chosen_weights[t], chosen_strengths[t])
        rows[t] = row

    summary = _summarise(rows, n_models)
    versus = _versus(rows)
    for meth, agg in summary.items():
        agg["vs_" + BASELINE] = versus[meth]
    measured = [n for n in noise.values() if n is not None]
    noise_mean = {k: float(np.mean([n[k] for n in measured if n[k] is not None])) if measured else None
                  for k in ("weighted_tau", "kendall_tau", "top1_regret", "top3_hit")}
    # what the inner leave-one-task-out chooses with every target: the package's default strength
    on_all = _inner_placed_choices(data, all_targets, scores, metric_tau, metrics, [headline], spaces)[headline]
    result = {
        "generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "fennec bench", "protocol": "leave-one-task-out over the zoo targets with ground truth",
        "ground_truth_coverage": data.coverage, "targets": held, "n_models": n_models,
        "max_samples": max_samples, "seed": seed, "default_metric": DEFAULT_METRIC,
        "default_fusion_weight": DEFAULT_FUSION_WEIGHT,
        "headline_candidates": headline, "fusion_weights": chosen_weights, "refine_metrics": chosen_metrics,
        "placement_strengths": {t: _strength(r) for t, r in chosen_strengths.items()},
        "default_placement_strength": _strength(DEFAULT_PLACEMENT_STRENGTH),
        "placement_chosen_on_all_targets": {"scorer": on_all[0], "fusion_weight": on_all[1],
                                            "strength": _strength(on_all[2])},
        "ensemble_metrics": chosen_ensembles,
        "metric_chosen_on_all_targets": _inner_metric(metric_tau, all_targets, metrics),
        "forward_passes_unit": "images through one network, as a multiple of the sample size; scoring every "
                               f"candidate = {n_models}",
        "summary": summary, "per_target": rows, "baseline": BASELINE, "tie": TIE,
        "baseline_definition": "each model's mean z-scored (per training target, over the models with a result "
                               "there) seed-0 test accuracy over the training targets; a model without any "
                               "result scores 0; no forward pass",
        "models_without_history": no_history,
        "noise_ceiling": noise, "noise_ceiling_mean": noise_mean | {"targets": len(measured)},
        "budget_curve": {t: {str(c): v for c, v in cv.items()} for t, cv in curve.items()},
        "closest_tasks": evidence, "nearest_similarity": nearest, "seconds": round(time.perf_counter() - t_start, 1),
    }
    result["targets_check"] = _targets_check(summary, n_models)
    result["confidence_calibration"] = _calibration(rows, nearest, LOW_SIMILARITY)
    out = Path(out) if out is not None else default_out()
    out.mkdir(parents=True, exist_ok=True)
    _save_json(out / "zoo_recommend.json", result)
    report = markdown_report(result)
    (out / "zoo_recommend.md").write_text(report, encoding="utf-8")
    try:
        plot_report(result, out)
    except ImportError:
        LOG.warning("matplotlib is not installed (pip install 'fennec[plots]'): no plots written")
    return report


def history_curve(data: ZooData, scores: Mapping[str, Mapping[str, Mapping[str, float | None]]], *,
                  sizes: Sequence[int], repeats: int = 5, seed: int = 0,
                  progress: bool = False) -> list[dict[str, Any]]:
    """Ranking quality against the amount of history: leave-one-task-out with fewer training targets.

    For every held-out target and every history size ``k`` of ``sizes``, ``repeats`` random sets
    of ``k`` other targets (all of them, once, when ``k`` is the number of other targets) are the
    only known tasks: the transfer space is fitted on their results and descriptors, and these
    rankings of the held-out target's models are compared with its ground truth:

    - ``history-mean``: the data-free baseline over the same ``k`` targets (:func:`history_mean`);
    - ``fennec-index``: the space's placement from the proxy descriptor (1 forward pass);
    - ``oracle placement`` (:data:`ORACLE_PLACEMENT`, not a method: it looks at the held-out results):
      the same space with the task vector that fits the target's own z-scored results best (least
      squares), in sample: each model's score comes from a vector fitted to its own result too, so
      this bound also fits the results' noise (it can exceed the noise ceiling);
    - ``oracle placement, cross-fitted`` (:data:`ORACLE_CROSS_FITTED`): each model scored by the
      task vector fitted (least squares) to the held-out results of all the *other* models
      (leave-one-model-out), so a model's own noise does not reach its score. It is what a perfect
      placement could do in this space given almost every answer: the gap between it and
      ``fennec-index`` is the descriptor placement's shortfall, its lead over ``history-mean`` about
      all that placing the task in this space can add to the data-free ranking;
    - ``fennec-refine``: the package's default pipeline with its default settings
      (:data:`~fennec.recommendation.options.DEFAULT_METRIC`, fusion weight and placement strength
      on :data:`HEADLINE_CANDIDATES` candidates; the settings are not re-chosen per fold, so this
      row is the package as shipped, not a held-out choice of them).

    The same training sets serve all of them, so their differences are paired.

    Args:
        data: the zoo (:func:`load_zoo_data`).
        scores: ``scores[target][model][metric]`` (:func:`score_zoo`), with the default metric.
        sizes: history sizes, each at least 2 (the space's placement needs 2 known tasks to
            standardise descriptors) and at most the number of targets minus one.
        repeats: random training sets per (target, size) below the full size.
        seed: of the training sets' draws.
        progress: show a progress bar.

    Returns:
        One row per (target, size, draw): ``{"target", "size", "draw", "train", "nearest_similarity"
        (of the target to its closest training target, as ``fennec bench`` reports it), <method>:
        weighted τ or None}``.

    Raises:
        InvalidInputError: a size outside ``[2, targets - 1]``, or ``repeats`` < 1.
    """
    from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC, DEFAULT_PLACEMENT_STRENGTH

    targets = sorted(data.truth)
    bad = [k for k in sizes if not 2 <= int(k) <= len(targets) - 1]
    if bad or not sizes:
        raise InvalidInputError(f"history sizes {list(sizes)} must each lie in [2, {len(targets) - 1}] "
                                f"({len(targets)} targets, one held out); pass sizes in that range.")
    if repeats < 1:
        raise InvalidInputError(f"repeats must be at least 1, got {repeats}.")
    rows = []
    folds = _history_folds(targets, sizes, repeats, seed)
    for t, k, r, train in _progress.track(folds, desc="history curve", unit="folds", enabled=progress):
        truth = data.truth[t]
        space = _fit_space(data, train)
        prior = _prior(space, data, t)
        index = {m: float(v) for m, v in zip(prior.ranked, prior.vectors @ prior.task, strict=True)}
        refined = _placed_scores(prior, scores[t], [DEFAULT_METRIC], HEADLINE_CANDIDATES,
                                 DEFAULT_FUSION_WEIGHT, DEFAULT_PLACEMENT_STRENGTH)
        hist = history_mean({x: data.truth[x] for x in train}, data.models)
        rows.append({"target": t, "size": k, "draw": r, "train": train, "nearest_similarity": _nearest(space, data, t),
                     BASELINE: _weighted_tau(hist, truth), "fennec-index": _weighted_tau(index, truth),
                     "fennec-refine": _weighted_tau(refined, truth),
                     ORACLE_PLACEMENT: _weighted_tau(_oracle_placement(prior, truth), truth),
                     ORACLE_CROSS_FITTED: _weighted_tau(_oracle_placement(prior, truth, cross_fitted=True), truth)})
    return rows


def _oracle_placement(prior: _Prior, truth: Mapping[str, float], *, cross_fitted: bool = False) -> dict[str, float]:
    """Every model's score ``u_m·v* + b_m`` under the task vector ``v*`` that fits the target's own
    results best: least squares (minimum norm) of its z-scored accuracies on ``u_m·v + b_m`` over
    the models with a result, the space's normalisation (:func:`fennec.space.normalise_results`).
    With ``cross_fitted``, each model with a result is scored by the ``v*`` fitted to the *other*
    models' results (leave one model out), so its own result's noise is not fitted into its score;
    models without a result are scored by the ``v*`` of every result. An upper bound of the
    placement for :func:`history_curve`, never a ranking for a new task."""
    from fennec.space import normalise_results

    z = normalise_results({"target": dict(truth)}, method="zscore").get("target", {})
    rows = [i for i, m in enumerate(prior.ranked) if m in z]
    u, b = prior.vectors[:, :-1], prior.vectors[:, -1]
    y = np.array([z[prior.ranked[i]] for i in rows]) - b[rows]

    def fit(keep: Sequence[int]) -> np.ndarray:
        return (np.linalg.lstsq(u[[rows[j] for j in keep]], y[list(keep)], rcond=None)[0] if len(keep)
                else np.zeros(u.shape[1]))

    scores = u @ fit(range(len(rows))) + b
    if cross_fitted:
        for j, i in enumerate(rows):
            scores[i] = u[i] @ fit([k for k in range(len(rows)) if k != j]) + b[i]
    return {m: float(x) for m, x in zip(prior.ranked, scores, strict=True)}


def _history_folds(targets: Sequence[str], sizes: Sequence[int], repeats: int,
                   seed: int) -> list[tuple[str, int, int, list[str]]]:
    """``(held-out target, k, draw, training targets)`` of :func:`history_curve`: ``repeats`` seeded
    draws of ``k`` other targets, one draw (every other target) at the full size."""
    import random

    rng = random.Random(seed)
    folds = []
    for t in targets:
        others = [x for x in targets if x != t]
        for k in sorted({int(k) for k in sizes}):
            for r in range(1 if k == len(others) else repeats):
                folds.append((t, k, r, sorted(others if k == len(others) else rng.sample(others, k))))
    return folds


def summarise_curve(rows: Sequence[Mapping[str, Any]], methods: Sequence[str] = ("fennec-index", "fennec-refine")
                    ) -> list[dict[str, Any]]:
    """:func:`history_curve`'s rows per history size: each method's mean weighted τ and its paired
    difference to ``history-mean``, with the difference's standard error over targets (each
    target's draws averaged first, so a target weighs the same at every size) and the targets
    where the method is above / below the baseline by at least :data:`TIE`."""
    out = []
    for k in sorted({int(r["size"]) for r in rows}):
        per: dict[str, dict[str, list[float]]] = {}
        for r in rows:
            if int(r["size"]) != k:
                continue
            for meth in (BASELINE, *methods):
                if r.get(meth) is not None:
                    per.setdefault(meth, {}).setdefault(r["target"], []).append(float(r[meth]))
        base = {t: float(np.mean(v)) for t, v in per.get(BASELINE, {}).items()}
        entry: dict[str, Any] = {"size": k, "targets": len(base), BASELINE: float(np.mean(list(base.values())))
                                 if base else None}
        for meth in methods:
            mean_t = {t: float(np.mean(v)) for t, v in per.get(meth, {}).items() if t in base}
            diffs = np.array([mean_t[t] - base[t] for t in mean_t])
            entry[meth] = float(np.mean(list(mean_t.values()))) if mean_t else None
            entry[f"{meth} - {BASELINE}"] = float(diffs.mean()) if len(diffs) else None
            entry[f"{meth} - {BASELINE} s.e."] = (float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
                                                 if len(diffs) > 1 else None)
            entry[f"{meth} above/below"] = [int((diffs >= TIE).sum()), int((diffs <= -TIE).sum())]
        out.append(entry)
    return out


def _strength(r: float) -> float | str:
    """A prior strength for JSON: ``"inf"`` (no placement update) or the number."""
    return "inf" if math.isinf(r) else float(r)


def _subsample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(x) <= n:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
    return x[idx]


def _inner_metric(metric_tau: Mapping[str, Mapping[str, float | None]], train: Sequence[str],
                  metrics: Sequence[str]) -> str:
    """The metric with the highest mean weighted τ (alone, every model) over ``train``."""
    return _inner_metrics(metric_tau, train, metrics, k=1)[0]


def _inner_metrics(metric_tau: Mapping[str, Mapping[str, float | None]], train: Sequence[str],
                   metrics: Sequence[str], *, k: int) -> list[str]:
    """The ``k`` metrics with the highest mean weighted τ (alone, every model) over ``train``, best first."""
    def mean(name: str) -> float:
        v = [tau for x in train if (tau := metric_tau[x][name]) is not None]
        return float(np.mean(v)) if v else -np.inf
    return sorted(sorted(metrics), key=lambda name: -mean(name))[:k]


def _ensemble(model_scores: Mapping[str, Mapping[str, float | None]], names: Sequence[str]) -> dict[str, float]:
    """Mean z-score (over the models) of several metrics; a model's failed metric counts as 0."""
    from fennec.recommendation.refine import zscore

    out = dict.fromkeys(model_scores, 0.0)
    for name in names:
        ok = [m for m in model_scores if model_scores[m].get(name) is not None]
        z = zscore(np.array([model_scores[m][name] for m in ok], dtype=np.float64))
        for m, v in zip(ok, z, strict=True):
            out[m] += float(v) / len(names)
    return out


def _inner_choices(data: ZooData, train: Sequence[str], scores: dict, metric_tau: dict, metrics: Sequence[str],
                   budgets: Sequence[int], *, shrink: bool = True,
                   kinds: Sequence[str] = SCORERS) -> dict[int, tuple[str, float]]:
    """For each candidate budget, the refinement scorer (``"metric"``: the best single metric;
    ``"ensemble"``: the mean z-score of the best :data:`ENSEMBLE_SIZE`, computed over the
    candidates only) and fusion weight that maximise the mean weighted τ of leave-one-out over
    ``train``. Each inner target's metrics are ranked on the other inner targets, and its space
    is fitted on them (once for all budgets). Ties go to the single metric, then to the weight
    nearest 0.5."""
    per: dict[tuple[str, int, float], list[float]] = {(k, c, w): [] for k in kinds for c in budgets
                                                      for w in FUSION_GRID}
    for inner in train:
        rest = [x for x in train if x != inner]
        index, _ = _index_scores(_fit_space(data, rest, shrink=shrink), data, inner)
        ranked = _inner_metrics(metric_tau, rest, metrics, k=ENSEMBLE_SIZE)
        names = {"metric": ranked[:1], "ensemble": ranked}
        for k in kinds:
            for c in budgets:
                for w in FUSION_GRID:
                    tau = _weighted_tau(_refine_scores(index, scores[inner], names[k], c, w), data.truth[inner])
                    if tau is not None:
                        per[k, c, w].append(tau)
    means = {key: float(np.mean(v)) if v else -np.inf for key, v in per.items()}
    return {c: max(((k, w) for k in kinds for w in FUSION_GRID),
                   key=lambda kw: (means[kw[0], c, kw[1]], kw[0] == kinds[0], -abs(kw[1] - 0.5)))
            for c in budgets}


def _refine_scores(index: Mapping[str, float], model_scores: Mapping[str, Mapping[str, float | None]],
                   names: Sequence[str], n_candidates: int, weight: float) -> dict[str, float]:
    """:func:`_refined` with the candidates scored by one metric, or by the mean z-score of several
    computed over the candidates alone (what refining them measures; no other model is run)."""
    pool = sorted(index, key=lambda m: (-index[m], m))[:n_candidates]
    metric: Mapping[str, float | None]
    if len(names) == 1:
        metric = {m: model_scores[m][names[0]] for m in pool}
    else:
        metric = _ensemble({m: model_scores[m] for m in pool}, names)
    return _refined(index, metric, n_candidates, weight)


def _scorer_label(kind: str, scorers: Mapping[str, Sequence[str]]) -> str:
    return scorers[kind][0] if kind == "metric" else "ensemble(" + "+".join(scorers[kind]) + ")"


def _nearest(space: Any, data: ZooData, target: str) -> float | None:
    """Cosine similarity of the target's standardised descriptor to the nearest training task (the
    ``closest_tasks`` similarity of a recommendation for it), or None for a space without descriptors."""
    from fennec.space.tasks import nearest_similarity

    if getattr(space, "_descriptors", None) is None:
        return None
    z_train = (space._descriptors - space._desc_mean) / space._desc_scale
    return nearest_similarity(z_train, (data.descriptors[target].vector - space._desc_mean) / space._desc_scale)


def _summarise(rows: dict, n_models: int) -> dict[str, dict[str, Any]]:
    methods = list(next(iter(rows.values())))
    out = {}
    for meth in methods:
        vals = [rows[t][meth] for t in rows]
        agg = {}
        for key in ("weighted_tau", "kendall_tau", "top1_regret", "top3_hit", CEILING_MODELS_TAU, "forward_passes",
                    "seconds"):
            v = [r[key] for r in vals if r.get(key) is not None]
            agg[key] = float(np.mean(v)) if v else None
        agg["targets"] = sum(1 for r in vals if r.get("weighted_tau") is not None)
        agg["forward_fraction"] = agg["forward_passes"] / n_models if agg["forward_passes"] is not None else None
        out[meth] = agg
    return out


def _calibration(rows: Mapping[str, Mapping[str, Mapping[str, Any]]], nearest: Mapping[str, float | None],
                 threshold: float) -> dict[str, Any]:
    """How ranking quality follows the closest known task's similarity, held out: the evidence
    behind the low-confidence note of :func:`fennec.recommend` (``LOW_SIMILARITY``). Per target:
    its nearest training task's similarity and the weighted τ of the default, the index and
    history-mean; per side of ``threshold``: their means and the default's mean difference to
    history-mean; over all targets: the Spearman correlation of similarity and default τ."""
    import scipy.stats

    per = sorted(({"target": t, "similarity": nearest[t], "default": rows[t]["fennec-refine"]["weighted_tau"],
                   "index": rows[t]["fennec-index"]["weighted_tau"],
                   "history_mean": rows[t][BASELINE]["weighted_tau"]}
                  for t in rows if nearest.get(t) is not None), key=lambda r: -r["similarity"])
    ok = [r for r in per if None not in (r["default"], r["history_mean"])]

    def group(sel: list[dict]) -> dict[str, Any]:
        def mean(k: str) -> float | None:
            return float(np.mean([r[k] for r in sel])) if sel else None

        return {"n": len(sel), "default": mean("default"), "index": mean("index"), "history_mean": mean("history_mean"),
                "default_minus_history_mean": float(np.mean([r["default"] - r["history_mean"] for r in sel]))
                if sel else None}

    rho = (float(scipy.stats.spearmanr([r["similarity"] for r in ok], [r["default"] for r in ok]).statistic)
           if len(ok) >= 3 else None)
    return {"threshold": threshold, "per_target": per, "near": group([r for r in ok if r["similarity"] >= threshold]),
            "far": group([r for r in ok if r["similarity"] < threshold]), "spearman_similarity_default": rho}


def _targets_check(summary: dict, n_models: int) -> dict[str, Any]:
    """The issue's targets for the default pipeline (``fennec-refine``: proxy + the headline
    candidates, every choice made without the held-out target), measured, not asserted."""
    metric_rows = {k: v for k, v in summary.items() if k.startswith("metric:") and v["weighted_tau"] is not None}
    best_metric = max(metric_rows, key=lambda k: metric_rows[k]["weighted_tau"]) if metric_rows else None
    default, index, base = summary["fennec-refine"], summary["fennec-index"], summary[BASELINE]
    full, idx, hist = default["weighted_tau"], index["weighted_tau"], base["weighted_tau"]
    best = metric_rows[best_metric]["weighted_tau"] if best_metric else None
    best_regret = metric_rows[best_metric]["top1_regret"] if best_metric else None
    vs = default["vs_" + BASELINE]
    frac = default["forward_fraction"]

    def check(ok: bool, *values: Any) -> bool | None:
        return None if any(v is None for v in values) else bool(ok)

    return {
        "best_single_metric": best_metric, "best_single_metric_tau": best, "best_single_metric_regret": best_regret,
        "default_tau": full, "default_regret": default["top1_regret"], "index_only_tau": idx,
        "history_mean_tau": hist, "default_below_history_mean": vs["losses"], "targets": vs["targets"],
        "forward_fraction": frac,
        "default_at_least_history_mean_plus_0.05": check(full is not None and hist is not None
                                                         and full >= hist + 0.05, full, hist),
        "default_at_least_best_metric": check(full is not None and best is not None and full >= best, full, best),
        "default_below_history_mean_on_at_most_a_fifth": check(vs["losses"] <= vs["targets"] / 5,
                                                               vs["mean_diff"]),
        "index_only_at_least_history_mean": check(idx is not None and hist is not None and idx >= hist, idx, hist),
        "default_regret_at_most_best_metric": check(default["top1_regret"] is not None and best_regret is not None
                                                    and default["top1_regret"] <= best_regret,
                                                    default["top1_regret"], best_regret),
        "forward_passes_at_most_one_fifth": check(frac is not None and frac <= 0.2, frac),
    }
