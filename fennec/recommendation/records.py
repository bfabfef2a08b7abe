"""What ``fennec.recommend()`` returns: the ranked models (:class:`Recommendations` of
:class:`Recommendation`), the known tasks that are its evidence (:class:`KnownTask`) and
the workspace it ranked with (:class:`WorkspaceInfo`), each printable as a table."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["SAME_DATA_SIMILARITY", "KnownTask", "Recommendation", "Recommendations", "WorkspaceInfo"]

#: Descriptor similarity from which the closest known task counts as this very dataset: its
#: recorded fine-tuning results then rank the models. The zoo's two closest distinct tasks
#: (t-digits and its few-shot subset) score 0.99 (benchmark/results/task_similarity.md).
SAME_DATA_SIMILARITY = 0.999


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
            predicted score otherwise (refined models rank before the others); for a known
            task, the ranking sorts by ``known_result`` first.
        parameters, family: from the catalog.
        reason: a one-line human explanation.
        known_result: when the dataset is a known task (similarity >= :data:`SAME_DATA_SIMILARITY`),
            this model's recorded fine-tuning result on it; the ranking then sorts by it first
            (models without one follow in ``final_score`` order). None otherwise.
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
    known_result: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class KnownTask:
    """A historical task whose proxy descriptor is close to the new one's (evidence).

    Attributes:
        task_id: the task.
        similarity: cosine similarity of the standardised descriptors (1 = the same data).
        best_model, best_value: the recommendable model that fine-tuned best on it, and its
            result (None when none of its models is in the index).
    """

    task_id: str
    similarity: float
    best_model: str | None
    best_value: float | None


@dataclasses.dataclass(frozen=True)
class WorkspaceInfo:
    """What a call ranked with.

    Attributes:
        home: the workspace folder.
        kind: ``"demo-zoo"`` (the embedded zoo's small models, not the Hub) or ``"fitted"``
            (a workspace fitted with ``fennec fit`` over a catalog).
        n_models: models in its index.
        note: for the demo zoo, the sentence that says so and how to rank the Hub instead.
    """

    home: str
    kind: str
    n_models: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Recommendations(Sequence[Recommendation]):
    """The ranked :class:`Recommendation` records of one call, with their evidence.

    A sequence (``recs[0]`` is the best model); also carries ``dataset`` (the sample's
    summary), ``closest_tasks`` (:class:`KnownTask`), ``placement`` (how the task vector was
    formed: ``{"predictor": "knn" | "ridge" | "mean", "n_tasks": T, "weights": [(task id,
    weight), …] largest first, "shrink": whether they were pulled toward the mean known task by
    the closest known task's dissimilarity, and after refinement with a placement update
    "update": {"observed": the candidates whose metric scores moved it, "strength": the
    prior's weight, "task_vector": the updated vector, "before": the top the first
    placement ranks (recorded results first on a known task), "new_in_top": the models of the
    top shown that are not in it}}``),
    ``n_candidates``, ``n_refined`` (candidates the
    metric scored; failed ones excluded), ``n_failed``, ``forward_passes`` (images run through
    the proxy and the refined models, cache misses only), ``timings`` (seconds per step),
    ``workspace`` (:class:`WorkspaceInfo`: the embedded demo zoo or a fitted workspace),
    ``same_task`` (the known task this dataset is, or None) and ``notes``: what a reader must
    know before the ranking (it ranked the demo zoo, not the Hub; it is ranked by the known
    results of this very dataset; it is low-confidence), first in :meth:`table` and
    :meth:`to_dict`.
    """

    def __init__(self, items: list[Recommendation], *, dataset: str, closest_tasks: list[KnownTask],
                 n_candidates: int, n_refined: int, metric: str | None, forward_passes: int,
                 timings: dict[str, float], workspace: WorkspaceInfo, n_indexed: int,
                 placement: dict[str, Any] | None = None, n_failed: int = 0,
                 notes: Sequence[str] = (), same_task: str | None = None):
        self._items = items
        self.notes = list(notes)
        self.same_task = same_task
        self.dataset = dataset
        self.closest_tasks = closest_tasks
        self.placement = placement or {}
        self.n_failed = n_failed
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
        of = " of the embedded demo zoo" if self.workspace.kind == "demo-zoo" else ""
        return f"Recommendations({len(self)} models{of}: {top}{', …' if len(self) > 3 else ''})"

    def to_dict(self) -> dict[str, Any]:
        """Everything above as plain data for ``json.dumps``: a number that is not finite (a
        metric that returned NaN for a candidate) is None, so the result is valid JSON
        (``fennec recommend --json`` writes it with ``allow_nan=False``)."""
        return _json_safe({"notes": self.notes, "workspace": self.workspace.to_dict(), "same_task": self.same_task,
                "dataset": self.dataset, "n_indexed": self.n_indexed,
                "n_candidates": self.n_candidates, "n_refined": self.n_refined, "metric": self.metric,
                "n_failed": self.n_failed, "forward_passes": self.forward_passes, "timings": self.timings,
                "placement": self.placement,
                "closest_tasks": [dataclasses.asdict(t) for t in self.closest_tasks],
                "recommendations": [r.to_dict() for r in self._items]})

    def table(self) -> str:
        """A readable ranked table with the evidence under it."""
        width = max([len(r.model_id) for r in self._items] + [5])
        known = self.same_task is not None
        head = (f"{'rank':>4}  {'model':<{width}}  {'params':>8}  {'predicted':>9}  {'metric':>9}  {'final':>7}"
                + (f"  {'known':>7}" if known else ""))
        lines = [f"note: {n}" for n in self.notes] + ([""] if self.notes else []) + [head, "-" * len(head)]
        for r in self._items:
            metric = f"{r.metric_score:9.3f}" if r.metric_score is not None else f"{'-':>9}"
            result = "" if not known else f"  {r.known_result:7.3f}" if r.known_result is not None else f"  {'-':>7}"
            lines.append(f"{r.rank:>4}  {r.model_id:<{width}}  {_fmt_params(r.parameters):>8}  "
                         f"{r.predicted_score:9.3f}  {metric}  {r.final_score:7.3f}{result}")
        lines.append("")
        updated = bool(self.placement.get("update"))
        fused = ("fused score of re-ranked models, mapped onto their predicted scores' range" if updated
                 else "fused z-scores for re-ranked models")
        lines.append("predicted: transfer-space score (standard deviations above an average model"
                     + ("; from the placement updated by the metric scores" if updated else "") + "); metric: "
                     f"{self.metric or 'not run'} on the sample; final: "
                     + (f"the fused score ({fused}); known: the recorded fine-tuning result "
                        f"on {self.same_task}, which the ranking sorts by" if known else
                        f"what the ranking sorts by ({fused})"))
        lines.append(f"dataset: {self.dataset}")
        failed = f" ({self.n_failed} failed)" if self.n_failed else ""
        lines.append(f"ranked {self.n_indexed} indexed models; {self.n_candidates} candidates from the index, "
                     f"{self.n_refined} re-ranked with {self.metric or 'no metric'}{failed}; "
                     f"{self.forward_passes} image forward passes; {sum(self.timings.values()):.1f} s")
        if self.placement:
            lines.append(_placement_line(self.placement))
            if self.placement.get("update"):
                lines.append(_update_line(self.placement["update"]))
        if self.closest_tasks:
            lines.append("closest known tasks: " + "; ".join(
                f"{t.task_id} ({'the same data as this dataset, ' if t.similarity >= SAME_DATA_SIMILARITY else ''}"
                f"similarity {t.similarity:.3f}"
                + (f", best: {t.best_model} {t.best_value:.3f})" if t.best_model else ")")
                for t in self.closest_tasks))
        return "\n".join(lines)


def _placement_line(placement: dict[str, Any]) -> str:
    kind, n = placement.get("predictor"), placement.get("n_tasks", 0)
    weights = ", ".join(f"{t} {w:+.2f}" for t, w in placement.get("weights", [])[:3])
    if placement.get("shrink") and kind in ("knn", "ridge"):
        weights += " (pulled toward the mean known task as far as the closest one is unlike this dataset)"
    if kind == "mean":
        return (f"task vector: the mean of the {n} known tasks (on held-out known tasks, descriptors did not "
                "place tasks better than the mean)")
    if kind == "ridge":
        return f"task vector: ridge regression from descriptors over {n} known tasks; largest weights: {weights}"
    if kind == "knn":
        return f"task vector: weighted average of the nearest of {n} known tasks: {weights}"
    return "task vector: the mean known task (the space was fitted without task descriptors)"


def _update_line(update: dict[str, Any]) -> str:
    new = update.get("new_in_top") or []
    return (f"placement updated by the metric scores of {len(update.get('observed', []))} re-ranked candidates "
            f"(prior weight {update.get('strength', 0):g} observations), every model re-predicted from it; "
            + (f"new in the top {len(update.get('before', []))} because of it: {', '.join(new)}" if new
               else "the top models are the ones the first placement predicted"))


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf; numpy's too) replaced by None and numpy
    scalars as Python numbers, through dicts, lists and tuples (tuples become lists)."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
