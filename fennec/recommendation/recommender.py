"""``fennec.recommend()``: rank a hub's vision models for a labelled image dataset.

The path of one call (docs/design.md, with the file that owns each step):

1. :func:`fennec.data.load_sample` draws a stratified sample of the dataset;
2. the workspace's proxy model embeds it once and :func:`fennec.task.describe` turns the
   embeddings into a task descriptor, which the fitted transfer space
   (:class:`fennec.space.TransferSpace`) maps to a task vector as a weighted combination of
   the historical tasks' vectors (``placement``: the weights that were used); the
   historical tasks with the most similar descriptors come back as evidence
   (``closest_tasks``), with the model that fine-tuned best on each;
3. the FAISS index of model vectors returns the ``candidates`` models with the highest
   predicted transferability ``u_m · v_task`` (every indexed model has a vector: from its
   fine-tuning history, or placed from its architecture and metadata when it has none);
4. with ``refine=True`` those candidates are re-ranked: their penultimate features on the
   sample are scored with a transferability metric (:mod:`fennec.recommendation.refine`) and the metric
   score is fused with the index score.

What it ranks with is a *workspace* (:mod:`fennec.workspace`): ``FENNEC_HOME`` once
``fennec fit`` has fitted it, otherwise the embedded demo zoo, built offline on first use
(the result says so first: :attr:`Recommendations.notes`, :class:`WorkspaceInfo`).

The result never contradicts its own evidence: when the dataset *is* a known task (closest
descriptor similarity >= :data:`SAME_DATA_SIMILARITY`), that task's recorded fine-tuning
results are the best estimate there is, so the models are ranked by them
(:attr:`Recommendation.known_result`) and a note says so; when even the closest known task is
far (similarity < :data:`LOW_SIMILARITY`, a threshold read off the zoo benchmark in
docs/recommend.md), a note says the ranking is low-confidence; when it is nearly this dataset
(another split or sample of it: similarity >= :data:`NEAR_SIMILARITY`) without being the same
data, a note says why its recorded results do not rank the models directly.

Example:
    >>> import fennec
    >>> recs = fennec.recommend("zoo/datasets/t-digits-fewshot", top_k=3)  # doctest: +SKIP
    >>> recs[0].model_id                                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from fennec.errors import FallbackWarning, InvalidInputError
from fennec.recommendation.options import (
    DEFAULT_CANDIDATES,
    DEFAULT_FUSION_WEIGHT,
    DEFAULT_METRIC,
    RefineOptions,
    SamplingOptions,
)
from fennec.recommendation.records import (
    SAME_DATA_SIMILARITY,
    KnownTask,
    Recommendation,
    Recommendations,
    WorkspaceInfo,
)
from fennec.validation import check_positive_int
from fennec.workspace.fitting import DEFAULT_MAX_SAMPLES, base_chain
from fennec.workspace.layout import ZOO_HUB, catalog_path
from fennec.workspace.load import Workspace, read_catalog, workspace_for

if TYPE_CHECKING:
    import torch

    from fennec.engine import Executor
    from fennec.features import FeatureCache, SampleLike

__all__ = [
    "DEFAULT_FUSION_WEIGHT",
    "KnownTask",
    "LOW_SIMILARITY",
    "NEAR_SIMILARITY",
    "Recommendation",
    "Recommendations",
    "RefineOptions",
    "SAME_DATA_SIMILARITY",
    "SamplingOptions",
    "WorkspaceInfo",
    "recommend",
]

LOG = logging.getLogger(__name__)

#: Below this similarity of the closest known task the ranking is flagged as low-confidence.
#: Calibrated on ``fennec bench``'s leave-one-task-out results (zoo_recommend.md, "Confidence"):
#: held out, 7 zoo targets had a nearest other task at >= 0.36 (default weighted tau 0.71-0.90,
#: mean 0.81) and 3 at <= 0.18 (tau 0.11-0.64, mean 0.46); 0.25 lies in that gap
#: (docs/recommend.md "How far is far"). Ten targets are few: it marks "nothing like this dataset
#: has been fine-tuned on", not a calibrated probability.
LOW_SIMILARITY = 0.25
#: From this similarity up to :data:`SAME_DATA_SIMILARITY` the closest known task is nearly this
#: dataset without being it (another split or a subsample: the zoo's test splits and a 300-image
#: sample of t-digits score 0.995-0.998 against their known task, the few-shot subset t-digits-fewshot
#: 0.99 against t-digits, while distinct zoo tasks reach at most 0.87; docs/recommend.md): a note
#: then says why the ranking does not follow its recorded results.
NEAR_SIMILARITY = 0.98


#: The keyword arguments of :func:`recommend` before its options were grouped (issue 13), each
#: with the options class that holds it now; accepted with a DeprecationWarning for one release.
_LEGACY = {**{name: RefineOptions for name in ("metric", "fusion_weight")},
           **{f.name: SamplingOptions for f in dataclasses.fields(SamplingOptions)}}


def recommend(dataset: str | Path | SampleLike, *, top_k: int = 5, candidates: int = DEFAULT_CANDIDATES,
              refine: bool | RefineOptions = True, sampling: SamplingOptions | None = None,
              hub: str | None = None, home: str | Path | None = None, device: str | torch.device | None = None,
              cache: FeatureCache | bool | None = None,
              progress: bool = False, executor: Executor | None = None, **legacy: Any) -> Recommendations:
    """Rank the workspace's models by how well they are expected to fine-tune on ``dataset``.

    Args:
        dataset: a Hub dataset id (read from the workspace's hub, e.g. the endpoint
            ``fennec init --hub`` built it for), a local image folder (one sub-folder per
            class), a parquet file or folder, a ``save_to_disk`` folder
            (:func:`fennec.data.load_sample`), or an already loaded :class:`fennec.data.DatasetSample`.
        top_k: how many recommendations to return.
        candidates: how many models the index proposes (and, when refining, re-ranks with
            forward passes). Cost grows linearly with it when refining.
        refine: re-rank the candidates with a transferability metric on the sample: True (the
            defaults), False (the transfer space's ranking alone), or a
            :class:`~fennec.recommendation.options.RefineOptions` (metric, fusion weight, batch size).
        sampling: how the dataset is read and sampled
            (:class:`~fennec.recommendation.options.SamplingOptions`: split, config, columns,
            ``max_samples``, ``seed``, ``min_per_class``); None: detected, with the sample size and
            seed the workspace's known tasks were described with.
        hub: as in :func:`fennec.fit`: ``"zoo"`` (the embedded offline zoo), a local folder hub or
            a Hub endpoint URL. ``"zoo"`` ranks the embedded zoo's workspace; a folder or URL ranks
            the workspace in ``home`` (or ``FENNEC_HOME``), which must have been fitted with that
            hub, and fetches the proxy, the candidates and Hub datasets from it. None: the workspace
            in ``home`` with the hub it was fitted with, falling back to the embedded zoo when
            nothing is fitted in ``FENNEC_HOME``.
        home: a workspace folder fitted with :func:`fit`.
        device: ``"cuda"``, ``"cpu"`` … for forward passes and scoring (default: CUDA if
            available); a device this machine does not have is refused before any work.
        cache: feature cache (:class:`fennec.features.FeatureCache`; None = the default
            folder, False = none).
        progress: report the long steps on stderr: bars on a terminal, one line per step (counts,
            seconds) otherwise (:mod:`fennec._progress`).
        executor: where the refinement's candidates run
            (:func:`fennec.recommendation.refine.score_candidates`):
            in this process by default, or as Ray tasks (:class:`fennec.engine.RayExecutor`).
        **legacy: the keyword arguments of earlier releases (``metric``, ``fusion_weight``,
            ``split``, ``config``, ``image_column``, ``label_column``, ``max_samples``, ``seed``,
            ``min_per_class``): still accepted, with a :class:`DeprecationWarning` naming the
            options class that holds each now; they go in the next release.

    Returns:
        :class:`Recommendations` (best first), with the closest known tasks as evidence. When
        the closest known task is this very dataset (similarity >= :data:`SAME_DATA_SIMILARITY`),
        the models are ranked by its recorded fine-tuning results (``known_result``).

    Raises:
        InvalidInputError / DatasetError: bad arguments or an unusable dataset.
        WorkspaceError: no fitted workspace (run ``fennec fit``), or one fitted with another hub.
    """
    from fennec.data import check_sampling, load_sample
    from fennec.metrics import metric_info
    from fennec.task import task_descriptor
    from fennec.validation import resolve_device

    top_k = check_positive_int(top_k, "top_k")
    candidates = check_positive_int(candidates, "candidates")
    options, do_refine = _refine_options(refine, legacy)
    sampling = _sampling_options(sampling, legacy)
    if legacy:  # what Python says of an unknown keyword argument
        raise TypeError(f"recommend() got an unexpected keyword argument {sorted(legacy)[0]!r}")
    check_sampling(max_samples=sampling.max_samples, min_per_class=sampling.min_per_class,
                   seed=0 if sampling.seed is None else sampling.seed)  # before any work
    if device is not None:
        resolve_device(device)  # a device this machine lacks fails now, not once per candidate
    metric = options.metric
    metric_info(metric)  # an unknown metric fails before any work
    timings: dict[str, float] = {}

    t = time.perf_counter()
    ws = workspace_for(hub, home, progress=progress, device=device)
    timings["workspace"] = time.perf_counter() - t

    t = time.perf_counter()
    max_samples, seed = _sampling(ws, sampling.max_samples, sampling.seed)
    sample: SampleLike
    if hasattr(dataset, "images") and hasattr(dataset, "fingerprint"):
        sample = cast("SampleLike", dataset)  # an already loaded sample
    else:  # a Hub dataset id is read through the workspace's hub when it serves datasets
        sample = load_sample(dataset, split=sampling.split, config=sampling.config,
                             image_column=sampling.image_column, label_column=sampling.label_column,
                             max_samples=max_samples, seed=seed, min_per_class=sampling.min_per_class,
                             hub=ws.hub if hasattr(ws.hub, "dataset_files") else None, progress=progress)
    timings["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    desc = task_descriptor(sample, proxy=ws.manifest["proxy"], hub=ws.hub, revision=ws.manifest.get("proxy_sha"),
                           device=device, cache=cache, progress=progress)
    task_vec, weights = ws.space.task_vector(desc.vector)
    placement = _placement(ws, weights)
    timings["task"] = time.perf_counter() - t

    t = time.perf_counter()
    query = np.asarray(task_vec, dtype=np.float32)
    hits = ws.index.search(query, k=max(candidates, top_k))
    closest = _closest_tasks(ws, desc.vector)
    known = _known_results(ws, closest)
    if known:  # every model with a result on this very dataset can rank: each gets its index score too
        found = set(m for m, _ in hits)
        scores = {m: float(ws.index.vector(m) @ query)  # the index's own inner product
                  for m in known[1] if m not in found and m in ws.index}
        hits += sorted(scores.items(), key=lambda ms: (-ms[1], ms[0]))
    predicted = dict(hits)
    timings["index"] = time.perf_counter() - t

    forward = desc.forward_passes
    metric_scores: dict[str, float | None] = {}
    shas: dict[str, str | None] = {}
    strength = options.placement_strength if do_refine else None  # None: no placement update
    if do_refine:
        from fennec.recommendation.refine import choose_candidates, score_candidates

        t = time.perf_counter()
        pool = [m for m, _ in hits[:candidates]]
        if strength is not None:  # half the index's best, half chosen to make the placement update well-posed
            shortlist = [m for m, _ in ws.index.search(query, k=3 * candidates)]
            pool = choose_candidates(shortlist, np.stack([ws.index.vector(m) for m in shortlist]), candidates)
        for c in score_candidates(pool, sample, hub=ws.hub, metric=metric, device=device, cache=cache,
                                  batch_size=options.batch_size, progress=progress, executor=executor):
            metric_scores[c.model_id] = c.score
            shas[c.model_id] = c.sha
            forward += c.forward_passes
        timings["refine"] = time.perf_counter() - t

    t = time.perf_counter()
    n_scored = sum(1 for v in metric_scores.values() if v is not None)
    n_failed = len(metric_scores) - n_scored
    if metric_scores and not n_scored:
        warnings.warn(f"{metric} failed on all {len(metric_scores)} candidates (see the warnings above): the "
                      "ranking is the transfer space's alone.", FallbackWarning, stacklevel=2)
    if n_scored and strength is not None:
        predicted, moved = _updated(ws, task_vec, metric_scores, strength, k=max(candidates, top_k),
                                    also=known[1] if known else {})
        from fennec.recommendation.refine import fuse_placed

        order = list(fuse_placed(predicted, metric_scores, weight=options.fusion_weight).items())
        if moved is not None:  # the top the first placement shows (recorded results first on a known task)
            placement["update"] = moved | {"before": [m for m, _ in _known_first(hits, known)[:top_k]]}
    elif n_scored:
        from fennec.recommendation.refine import fuse

        fused = fuse({m: predicted[m] for m in metric_scores}, metric_scores, weight=options.fusion_weight)
        rest = [m for m, _ in hits if m not in fused]
        order = list(fused.items()) + [(m, predicted[m]) for m in rest]  # fuse's order and tie-break
    else:
        order = [(m, s) for m, s in hits]
    order = _known_first(order, known)
    if "update" in placement:  # what the update brought into the top that is shown
        placement["update"]["new_in_top"] = [m for m, _ in order[:top_k] if m not in placement["update"]["before"]]
    records = _records(ws, order[:top_k], predicted, metric_scores, shas, metric if do_refine else None,
                       known=known)
    timings["rank"] = time.perf_counter() - t
    info = _workspace_info(ws, fell_back=hub != ZOO_HUB)
    return Recommendations(records, dataset=_dataset_summary(sample), closest_tasks=closest,
                           n_candidates=min(candidates, len(hits)), n_refined=n_scored, n_failed=n_failed,
                           metric=metric if n_scored else None, forward_passes=forward, placement=placement,
                           timings={k: round(v, 4) for k, v in timings.items()}, workspace=info,
                           n_indexed=len(ws.index), notes=_notes(info, closest, known, refined=n_scored > 0),
                           same_task=known[0] if known else None)


def _refine_options(refine: Any, legacy: dict[str, Any]) -> tuple[RefineOptions, bool]:
    """``refine=`` as options and whether to refine; a legacy ``metric=`` / ``fusion_weight=``
    (popped from ``legacy``) overrides the options' field, with a DeprecationWarning."""
    if isinstance(refine, RefineOptions):
        options, do_refine = refine, True
    elif isinstance(refine, (bool, np.bool_)):
        options, do_refine = RefineOptions(), bool(refine)
    else:
        raise InvalidInputError(f"refine must be True, False or a fennec.recommendation.RefineOptions, got "
                                f"{refine!r} (a {type(refine).__name__}).")
    changes = _legacy(legacy, RefineOptions, "refine")
    if "metric" in changes and changes["metric"] is None:
        changes["metric"] = DEFAULT_METRIC  # metric=None meant the default
    return (dataclasses.replace(options, **changes) if changes else options), do_refine


def _sampling_options(sampling: Any, legacy: dict[str, Any]) -> SamplingOptions:
    """``sampling=`` as options; legacy ``split=`` … ``min_per_class=`` override its fields."""
    if sampling is None:
        sampling = SamplingOptions()
    elif not isinstance(sampling, SamplingOptions):
        raise InvalidInputError(f"sampling must be a fennec.recommendation.SamplingOptions or None, got "
                                f"{sampling!r} (a {type(sampling).__name__}).")
    changes = _legacy(legacy, SamplingOptions, "sampling")
    return dataclasses.replace(sampling, **changes) if changes else sampling


def _legacy(legacy: dict[str, Any], cls: type, argument: str) -> dict[str, Any]:
    """Pop the legacy keyword arguments that are fields of ``cls``, warning once for them."""
    found = {name: legacy.pop(name) for name in list(legacy) if _LEGACY.get(name) is cls}
    if found:
        given = ", ".join(f"{k}={v!r}" for k, v in found.items())
        warnings.warn(f"recommend({', '.join(f'{k}=' for k in found)}) is deprecated and will be removed in the "
                      f"next release; pass {argument}={cls.__name__}({given}) (fennec.recommendation."
                      f"{cls.__name__}) instead.", DeprecationWarning, stacklevel=4)
    return found


def _workspace_info(ws: Workspace, *, fell_back: bool) -> WorkspaceInfo:
    """What the call ranked with; for the embedded zoo's models, the note that says so first."""
    n = len(ws.index)
    if ws.manifest.get("hub") != ZOO_HUB:
        return WorkspaceInfo(str(ws.home), "fitted", n)
    why = ("nothing is fitted in FENNEC_HOME yet" if fell_back and "zoo_stamp" in ws.manifest
           else "hub='zoo'" if "zoo_stamp" in ws.manifest else f"{ws.home} was fitted with hub='zoo'")
    return WorkspaceInfo(str(ws.home), "demo-zoo", n, note=(
        f"ranked the embedded demo zoo ({n} small models), not the Hugging Face Hub ({why}). To rank the Hub's "
        "models instead, build your workspace once: `fennec reindex`, `fennec import-results`, "
        "`fennec fit` (docs/recommend.md)."))


def _known_results(ws: Workspace, closest: list[KnownTask]) -> tuple[str, dict[str, float]] | None:
    """``(task, {model: result})`` when the closest known task is this very dataset and has
    results for indexed models; else None."""
    if not closest or closest[0].similarity < SAME_DATA_SIMILARITY:
        return None
    row = ws.results().get(closest[0].task_id)
    return (closest[0].task_id, row) if row else None


def _notes(info: WorkspaceInfo, closest: list[KnownTask], known: tuple[str, dict[str, float]] | None, *,
           refined: bool) -> list[str]:
    """What a reader must know before the ranking, most important first."""
    notes = [info.note] if info.note else []
    if known is not None:
        task, row = known
        notes.append(f"this dataset is the known task {task} (descriptor similarity {closest[0].similarity:.3f}): the "
                     f"models are ranked by their recorded fine-tuning results on it (known_result, {len(row)} "
                     "models; the table's 'known' column), the best estimate there is; predicted and metric scores "
                     "are shown for comparison.")
    elif closest and closest[0].similarity >= NEAR_SIMILARITY:  # nearly, but not, this very dataset
        near = closest[0]
        best = f" (best there: {near.best_model} {near.best_value:.3f})" if near.best_model else ""
        notes.append(f"the closest known task {near.task_id} (similarity {near.similarity:.3f}) is nearly this "
                     f"dataset but not the same data (that scores >= {SAME_DATA_SIMILARITY}; e.g. another split or "
                     f"sample of it): its recorded results{best} shape the predicted scores through the transfer "
                     "space, blended with other tasks and with the metric, but do not rank the models directly.")
    elif closest and closest[0].similarity < LOW_SIMILARITY:
        notes.append(f"low confidence: even the closest known task ({closest[0].task_id}, similarity "
                     f"{closest[0].similarity:.2f}) is far from this dataset (below {LOW_SIMILARITY}), so the "
                     "task placement leans on the models' overall record over the known tasks rather than on "
                     "similar tasks; on the zoo benchmark such targets were ranked much worse "
                     "(docs/recommend.md). "
                     + ("Weigh the metric column, or fine-tune the top few to check." if refined else
                        "No metric was run (refine=False): refine the candidates, or fine-tune the top few "
                        "to check."))
    return notes


def _sampling(ws: Workspace, max_samples: int | None, seed: int | None) -> tuple[int, int]:
    """The sample size and seed: the caller's, else the ones the known tasks were described with."""
    fitted_n = ws.manifest.get("max_samples", DEFAULT_MAX_SAMPLES)
    fitted_seed = ws.manifest.get("seed", 0)
    if max_samples is not None and max_samples != fitted_n:
        LOG.warning("Sampling at most %d images, but the workspace's known tasks were described from samples of "
                    "at most %d: the descriptor's sample-size statistics differ, which can shift the task's "
                    "placement. Leave max_samples= unset to match them.", max_samples, fitted_n)
    return (fitted_n if max_samples is None else max_samples), (fitted_seed if seed is None else seed)


def _placement(ws: Workspace, weights: list[tuple[str, float]]) -> dict[str, Any]:
    predictor = getattr(ws.space, "task_predictor_", None) or {}
    kind = predictor.get("kind") if weights else None
    n_tasks = len(ws.tasks) if ws.tasks is not None else 0
    top = sorted(weights, key=lambda tw: -abs(tw[1]))
    return {"predictor": kind, "n_tasks": n_tasks, "shrink": bool(getattr(ws.space, "shrink", False)),
            "weights": [(t, round(float(w), 4)) for t, w in top if math.isfinite(w)]}


def _known_first(order: list[tuple[str, float]],
                 known: tuple[str, dict[str, float]] | None) -> list[tuple[str, float]]:
    """``order`` with this very dataset's recorded results first (best first), when it is a known
    task; models without one keep their order after them."""
    if not known:
        return list(order)
    position = {m: i for i, (m, _) in enumerate(order)}
    return sorted(order, key=lambda ms: (ms[0] not in known[1], -known[1].get(ms[0], 0.0), position[ms[0]]))


def _updated(ws: Workspace, prior: np.ndarray, metric_scores: dict[str, float | None], strength: float, *,
             k: int, also: dict[str, float]) -> tuple[dict[str, float], dict[str, Any] | None]:
    """The placement moved by the candidates' metric scores (docs/recommend.md "Placement update").

    The scored candidates' metric scores, mapped onto the prior's scale over them
    (:func:`~fennec.recommendation.refine.observed_scores`), update the task vector
    (:meth:`fennec.space.TransferSpace.update_task_vector`); the index is searched again with
    the posterior vector. Returns every model to rank with its updated score (the index's best
    ``k`` beyond the candidates, the candidates, and the models of ``also``), and the update's
    evidence: the models observed, the strength, the posterior task vector; None, and the prior's
    scores, when the metric scores have no order to tell (none finite, or all equal)."""
    from fennec.recommendation.refine import observed_scores

    candidates = list(metric_scores)
    vectors = {m: np.asarray(ws.index.vector(m), dtype=np.float64) for m in candidates}
    prior_scores = {m: float(vectors[m] @ prior) for m in candidates}
    observed = observed_scores(prior_scores, metric_scores)
    posterior = prior
    if observed:  # else nothing moves the placement (as in fennec bench)
        posterior = ws.space.update_task_vector(prior, np.stack([vectors[m] for m in observed]),
                                                np.array(list(observed.values())), strength=strength)
    query = np.asarray(posterior, dtype=np.float32)
    scores = dict(ws.index.search(query, k=k + len(candidates)))
    for m in [*candidates, *also]:
        if m not in scores and m in ws.index:
            scores[m] = float(ws.index.vector(m) @ query)  # the index's own inner product
    if not observed:
        return scores, None
    evidence = {"observed": list(observed), "strength": strength,
                "task_vector": [round(float(x), 4) for x in posterior]}
    return scores, evidence


def _dataset_summary(sample: Any) -> str:
    summary = getattr(sample, "summary", None)
    if callable(summary):
        return summary()
    return f"{len(sample.labels)} images"


def _records(ws: Workspace, order: list[tuple[str, float]], predicted: dict[str, float],
             metric_scores: dict[str, float | None], shas: dict[str, str | None], metric: str | None, *,
             known: tuple[str, dict[str, float]] | None = None) -> list[Recommendation]:
    task, results = known if known is not None else (None, {})
    out = []
    pred_rank = {m: i + 1 for i, m in enumerate(sorted(predicted, key=lambda m: (-predicted[m], m)))}
    scored = {m: s for m, s in metric_scores.items() if s is not None}
    metric_rank = {m: i + 1 for i, m in enumerate(sorted(scored, key=lambda m: (-scored[m], m)))}
    with read_catalog(catalog_path(ws.home)) as catalog:
        for rank, (model, final) in enumerate(order, start=1):
            info = catalog.get_model(model)
            parts = []
            if model in results:
                parts.append(f"fine-tuned on this very dataset (known task {task}): {results[model]:.3f}")
            elif known is not None:
                parts.append(f"no recorded result on the known task {task}")
            parts.append(f"transfer space #{pred_rank[model]} of {len(predicted)} candidates")
            if model in metric_scores:
                if metric_scores[model] is None:
                    parts.append(f"{metric} failed on this model (ranked by the transfer space only)")
                else:
                    parts.append(f"{metric} #{metric_rank[model]} of {len(scored)} re-ranked")
            history = ws.space.model_ids_ if hasattr(ws.space, "model_ids_") else ()
            parts.append("has fine-tuning history" if model in history else _cold_evidence(ws, catalog, info))
            out.append(Recommendation(
                rank=rank, model_id=model, sha=shas.get(model) or (info.sha if info else None),
                predicted_score=float(predicted[model]), metric_score=metric_scores.get(model),
                metric=metric if model in metric_scores else None, final_score=float(final),
                parameters=info.parameters if info else None, family=info.family if info else None,
                reason="; ".join(parts), known_result=results.get(model)))
    return out


def _cold_evidence(ws: Workspace, catalog: Any, info: Any) -> str:
    """How a model without history was placed: near its base model (the first of its card's
    base-model chain with a vector in the space, as :meth:`TransferSpace.base_of` picks it), or
    from its architecture and metadata."""
    base_of = getattr(ws.space, "base_of", None)
    if info is not None and base_of is not None:
        from fennec.space import ModelSide

        def card_of(repo_id: str) -> Any:
            row = info if repo_id == info.repo_id else catalog.get_model(repo_id)
            return row.card if row is not None else None

        base = base_of(ModelSide(info.repo_id, base_models=base_chain(info.repo_id, card_of)))
        if base is not None:
            return (f"placed near its base model {base} (model card base_model; "
                    f"weight {ws.space.base_weight:g} on the base's vector)")
    return "placed from its architecture"


def _closest_tasks(ws: Workspace, descriptor: np.ndarray, k: int = 3) -> list[KnownTask]:
    if ws.tasks is None:
        return []
    results = ws.results()
    out = []
    for task_id, sim in ws.tasks.search(descriptor, k=k):
        row = results.get(task_id)  # the indexed model that fine-tuned best there
        model, value = max(row.items(), key=lambda mv: (mv[1], mv[0])) if row else (None, None)
        out.append(KnownTask(task_id, round(float(sim), 4), model, value))
    return out
