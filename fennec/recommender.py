"""``fennec.recommend()``: rank a hub's vision models for a labelled image dataset.

The path of one call (DESIGN.md):

1. :func:`fennec.data.load_sample` draws a stratified sample of the dataset;
2. the workspace's proxy model embeds it once and :func:`fennec.task.describe` turns the
   embeddings into a task descriptor, which the fitted transfer space
   (:class:`fennec.space.TransferSpace`) maps to a task vector — by way of the closest
   historical tasks, which are returned as evidence;
3. the FAISS index of model vectors returns the ``candidates`` models with the highest
   predicted transferability ``u_m · v_task`` (every indexed model has a vector: from its
   fine-tuning history, or placed from its architecture and metadata when it has none);
4. with ``refine=True`` those candidates are re-ranked: their penultimate features on the
   sample are scored with a transferability metric (:mod:`fennec.refine`) and the metric
   score is fused with the index score.

What it ranks with is a *workspace* (:mod:`fennec.workspace`): ``FENNEC_HOME`` once
``fennec fit`` has fitted it, otherwise the embedded zoo, built offline on first use.

Example:
    >>> import fennec
    >>> recs = fennec.recommend("zoo/datasets/t-digits-fewshot", top_k=3)  # doctest: +SKIP
    >>> recs[0].model_id                                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec.errors import InvalidInputError
from fennec.workspace import DEFAULT_MAX_SAMPLES, Workspace, _workspace_for

__all__ = [
    "DEFAULT_FUSION_WEIGHT",
    "KnownTask",
    "Recommendation",
    "Recommendations",
    "recommend",
]

#: Weight of the metric in the fusion (``fennec.refine.fuse``); the zoo benchmark's
#: leave-one-task-out choice is reported in benchmark/results/zoo_recommend.md.
DEFAULT_FUSION_WEIGHT = 0.5


# -- recommendations -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One recommended model.

    Attributes:
        rank: 1 = best.
        model_id, sha: the model and the commit that was scored.
        predicted_score: the transfer space's ``u_m · v_task`` (normalised-accuracy units:
            0 = an average model on a task, 1 = one standard deviation better).
        metric_score: the transferability metric on the sample (None when not refined).
        metric: its name (None when not refined).
        final_score: what the ranking sorts by: the fused score for refined models, the
            predicted score otherwise (refined models rank before the others).
        parameters, family: from the catalog.
        reason: a one-line human explanation.
    """

    rank: int
    model_id: str
    sha: str | None
    predicted_score: float
    metric_score: float | None
    metric: str | None
    final_score: float
    parameters: int | None
    family: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class KnownTask:
    """A historical task close to the new one: the evidence behind its task vector.

    Attributes:
        task_id: the task.
        similarity: cosine similarity of the standardised descriptors.
        best_model, best_value: the model that fine-tuned best on it, and its result.
    """

    task_id: str
    similarity: float
    best_model: str | None
    best_value: float | None


class Recommendations(Sequence[Recommendation]):
    """The ranked :class:`Recommendation` records of one call, with their evidence.

    A sequence (``recs[0]`` is the best model); also carries ``dataset`` (the sample's
    summary), ``closest_tasks`` (:class:`KnownTask`), ``n_candidates`` and ``n_refined``,
    ``forward_passes`` (images run through the proxy and the refined models, cache misses
    only), ``timings`` (seconds per step) and ``workspace``.
    """

    def __init__(self, items: list[Recommendation], *, dataset: str, closest_tasks: list[KnownTask],
                 n_candidates: int, n_refined: int, metric: str | None, forward_passes: int,
                 timings: dict[str, float], workspace: str, n_indexed: int):
        self._items = items
        self.dataset = dataset
        self.closest_tasks = closest_tasks
        self.n_candidates = n_candidates
        self.n_refined = n_refined
        self.metric = metric
        self.forward_passes = forward_passes
        self.timings = timings
        self.workspace = workspace
        self.n_indexed = n_indexed

    def __getitem__(self, i: Any) -> Any:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self._items)

    def __repr__(self) -> str:
        top = ", ".join(r.model_id for r in self._items[:3])
        return f"Recommendations({len(self)} models: {top}{', …' if len(self) > 3 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "workspace": self.workspace, "n_indexed": self.n_indexed,
                "n_candidates": self.n_candidates, "n_refined": self.n_refined, "metric": self.metric,
                "forward_passes": self.forward_passes, "timings": self.timings,
                "closest_tasks": [dataclasses.asdict(t) for t in self.closest_tasks],
                "recommendations": [r.to_dict() for r in self._items]}

    def table(self) -> str:
        """A readable ranked table with the evidence under it."""
        width = max([len(r.model_id) for r in self._items] + [5])
        head = f"{'rank':>4}  {'model':<{width}}  {'params':>8}  {'predicted':>9}  {'metric':>9}  {'final':>7}"
        lines = [head, "-" * len(head)]
        for r in self._items:
            metric = f"{r.metric_score:9.3f}" if r.metric_score is not None else f"{'-':>9}"
            lines.append(f"{r.rank:>4}  {r.model_id:<{width}}  {_fmt_params(r.parameters):>8}  "
                         f"{r.predicted_score:9.3f}  {metric}  {r.final_score:7.3f}")
        lines.append("")
        lines.append(f"dataset: {self.dataset}")
        lines.append(f"ranked {self.n_indexed} indexed models; {self.n_candidates} candidates from the index, "
                     f"{self.n_refined} re-ranked with {self.metric or 'no metric'}; "
                     f"{self.forward_passes} image forward passes; {sum(self.timings.values()):.1f} s")
        if self.closest_tasks:
            lines.append("closest known tasks: " + "; ".join(
                f"{t.task_id} ({'the same data as this dataset, ' if t.similarity >= 0.999 else ''}"
                f"similarity {t.similarity:.2f}"
                + (f", best: {t.best_model} {t.best_value:.3f})" if t.best_model else ")")
                for t in self.closest_tasks))
        return "\n".join(lines)


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def recommend(dataset: str | Path | Any, *, top_k: int = 5, candidates: int = 20, refine: bool = True,
              metric: str | None = None, hub: str | None = None, home: str | Path | None = None,
              device: Any = None, split: str | None = None, config: str | None = None,
              image_column: str | None = None, label_column: str | None = None,
              max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0,
              fusion_weight: float = DEFAULT_FUSION_WEIGHT, cache: Any = None,
              progress: bool = False) -> Recommendations:
    """Rank the workspace's models by how well they are expected to fine-tune on ``dataset``.

    Args:
        dataset: a Hub dataset id, a local image folder (one sub-folder per class), a parquet
            file or folder, a ``save_to_disk`` folder (:func:`fennec.data.load_sample`), or an
            already loaded :class:`fennec.data.DatasetSample`.
        top_k: how many recommendations to return.
        candidates: how many models the index proposes (and, with ``refine``, re-ranks with
            forward passes). Cost grows linearly with it when refining.
        refine: re-rank the candidates with a transferability metric on the sample.
        metric: the metric for refinement (default :data:`fennec.refine.DEFAULT_METRIC`).
        hub: ``"zoo"`` for the embedded offline zoo; None for the workspace in ``home`` (or
            ``FENNEC_HOME``), falling back to the embedded zoo when nothing is fitted there.
        home: a workspace folder fitted with :func:`fit`.
        device: ``"cuda"``, ``"cpu"`` … for forward passes and scoring (default: CUDA if
            available).
        split, config, image_column, label_column, max_samples, seed: how the dataset is read and
            sampled (:func:`fennec.data.load_sample`).
        fusion_weight: weight of the metric in the fused score (:func:`fennec.refine.fuse`).
        cache: feature cache (:class:`fennec.features.FeatureCache`; None = the default
            folder, False = none).
        progress: progress bars for the long steps.

    Returns:
        :class:`Recommendations` (best first), with the closest known tasks as evidence.

    Raises:
        InvalidInputError / DatasetError: bad arguments or an unusable dataset.
        WorkspaceError: no fitted workspace (run ``fennec fit``).
    """
    from fennec.data import load_sample
    from fennec.metrics import metric_info
    from fennec.refine import DEFAULT_METRIC, fuse, score_candidates
    from fennec.task import task_descriptor

    top_k = _check_positive("top_k", top_k)
    candidates = _check_positive("candidates", candidates)
    if not 0.0 <= float(fusion_weight) <= 1.0:
        raise InvalidInputError(f"fusion_weight must be in [0, 1], got {fusion_weight!r}.")
    metric = metric or DEFAULT_METRIC
    metric_info(metric)  # an unknown metric fails before any work
    timings: dict[str, float] = {}

    t = time.perf_counter()
    ws = _workspace_for(hub, home, progress=progress, device=device)
    timings["workspace"] = time.perf_counter() - t

    t = time.perf_counter()
    if hasattr(dataset, "images") and hasattr(dataset, "fingerprint"):
        sample = dataset
    else:
        sample = load_sample(dataset, split=split, config=config, image_column=image_column,
                             label_column=label_column, max_samples=max_samples, seed=seed, progress=progress)
    timings["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    desc = task_descriptor(sample, proxy=ws.manifest["proxy"], hub=ws.hub, device=device, cache=cache,
                           progress=progress)
    task_vec, _ = ws.space.task_vector(desc.vector)
    timings["task"] = time.perf_counter() - t

    t = time.perf_counter()
    hits = ws.index.search(np.asarray(task_vec, dtype=np.float32), k=max(candidates, top_k))
    predicted = dict(hits)
    timings["index"] = time.perf_counter() - t

    forward = desc.forward_passes
    metric_scores: dict[str, float | None] = {}
    shas: dict[str, str | None] = {}
    if refine:
        t = time.perf_counter()
        pool = [m for m, _ in hits[:candidates]]
        for c in score_candidates(pool, sample, hub=ws.hub, metric=metric, device=device, cache=cache,
                                  progress=progress):
            metric_scores[c.model_id] = c.score
            shas[c.model_id] = c.sha
            forward += c.forward_passes
        timings["refine"] = time.perf_counter() - t

    t = time.perf_counter()
    if metric_scores:
        fused = fuse({m: predicted[m] for m in metric_scores}, metric_scores, weight=fusion_weight)
        refined = sorted(fused, key=lambda m: (-fused[m], m))
        rest = [m for m, _ in hits if m not in fused]
        order = [(m, fused[m]) for m in refined] + [(m, predicted[m]) for m in rest]
    else:
        order = [(m, s) for m, s in hits]
    records = _records(ws, order[:top_k], predicted, metric_scores, shas, metric if refine else None)
    closest = _closest_tasks(ws, desc.vector)
    timings["rank"] = time.perf_counter() - t
    return Recommendations(records, dataset=_dataset_summary(sample), closest_tasks=closest,
                           n_candidates=min(candidates, len(hits)), n_refined=len(metric_scores),
                           metric=metric if refine else None, forward_passes=forward,
                           timings={k: round(v, 4) for k, v in timings.items()}, workspace=str(ws.home),
                           n_indexed=len(ws.index))


def _dataset_summary(sample: Any) -> str:
    summary = getattr(sample, "summary", None)
    if callable(summary):
        return summary()
    return f"{len(sample.labels)} images"


def _records(ws: Workspace, order: list[tuple[str, float]], predicted: dict[str, float],
             metric_scores: dict[str, float | None], shas: dict[str, str | None], metric: str | None) -> list[Recommendation]:
    from fennec.catalog import Catalog

    out = []
    pred_rank = {m: i + 1 for i, m in enumerate(sorted(predicted, key=lambda m: (-predicted[m], m)))}
    scored = {m: s for m, s in metric_scores.items() if s is not None}
    metric_rank = {m: i + 1 for i, m in enumerate(sorted(scored, key=lambda m: (-scored[m], m)))}
    with Catalog(ws.home / "catalog.sqlite") as catalog:
        for rank, (model, final) in enumerate(order, start=1):
            info = catalog.get_model(model)
            parts = [f"transfer space #{pred_rank[model]} of {len(predicted)} candidates"]
            if model in metric_scores:
                if metric_scores[model] is None:
                    parts.append(f"{metric} failed on this model (ranked by the transfer space only)")
                else:
                    parts.append(f"{metric} #{metric_rank[model]} of {len(scored)} re-ranked")
            history = ws.space.model_ids_ if hasattr(ws.space, "model_ids_") else ()
            parts.append("has fine-tuning history" if model in history else "placed from its architecture")
            out.append(Recommendation(
                rank=rank, model_id=model, sha=shas.get(model) or (info.sha if info else None),
                predicted_score=float(predicted[model]), metric_score=metric_scores.get(model),
                metric=metric if model in metric_scores else None, final_score=float(final),
                parameters=info.parameters if info else None, family=info.family if info else None,
                reason="; ".join(parts)))
    return out


def _closest_tasks(ws: Workspace, descriptor: np.ndarray, k: int = 3) -> list[KnownTask]:
    from fennec.catalog import Catalog

    if ws.tasks is None:
        return []
    out = []
    with Catalog(ws.home / "catalog.sqlite") as catalog:
        for task_id, sim in ws.tasks.search(descriptor, k=k):
            rows = [r for r in catalog.transfer_results(task=task_id) if r.variant in ("seed0", "results")]
            best = max(rows, key=lambda r: r.value) if rows else None
            out.append(KnownTask(task_id, round(float(sim), 4), best.model if best else None,
                                 float(best.value) if best else None))
    return out
