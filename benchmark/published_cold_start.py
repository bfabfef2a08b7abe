"""Leave-one-model-out cold start on the published transfer tables.

Question: a model with no fine-tuning history (a new Hub upload) is placed in the transfer
space from side information alone. Does placing it from its architecture (archi2vec) plus
metadata (parameter count, family, pre-training data) predict how it transfers better than
metadata alone, or than an uninformed placement?

Protocol, for every usable table of ``../shared/data/transfer-results/`` (the ``results``
variant only; which tables and why: ``published_models.py``) and every model *m*
(tables with more than ``Config.max_folds`` = 20 models: every group of a seeded 20-way
split of the models, so each model is still held out with its whole history, together with
about 5 % of the others; this bounds the cost at 40 fits per table; checked once on PARC,
where true leave-one-out gave mean τw 0.687 / 0.629 for archi2vec+metadata / metadata
against 0.662 / 0.612 with 20 groups):

1. The history is the table **without m** (all its cells). It is normalised per task
   inside the fold (``fennec.space.normalise_results``, z-score). Normalising the full
   table first would leak *m*: the other models' mean z-score on a task is exactly
   ``-z_m / (n - 1)``, so any placement near the mean of the others (the uninformed one
   above all) would rank the models in the reverse of the truth.
2. ``TransferSpace(dim, use_archi2vec=..., side_weight, l2, seed).fit(history, models=
   side information of the other models)``.
3. Three placements of *m*, each scored on every task *t* as
   ``space.model_vectors([ModelSide(m, ...)]) @ space.task_vector_of(t)``:

   * ``archi2vec+metadata``: the cold start ``[1, s_m]·W`` with the archi2vec PCA features
     (``use_archi2vec=True``);
   * ``metadata``: the same with ``use_archi2vec=False`` (a second fit);
   * ``uninformed``: the mean of the known model vectors of the metadata fit, i.e. "an
     average model": every held-out model gets the same score, so its τ is undefined (0 in
     expectation) and its regret is the expected regret of a random pick.

   Every cold score is taken relative to the fold's average known model (``Config.centre``:
   ``(vector − mean known vector) · task vector``), which orders the models of one fold
   exactly as before. Without it, the folds leak through missing cells: removing a good
   model raises the other models' z-scores on every task, and through the models that lack
   a task, the mean fitted score on that task; the uninformed placement alone then reached
   τw +0.33 on PARC (leave-one-out, uncentred), purely from the held-out model's own quality.
   On complete tables the mean known model scores 0 anyway.

4. Per task, over the models that have a value there: weighted τ
   (``fennec.evaluation.weighted_tau``, scipy defaults) and Kendall τ-b between the
   held-out predictions and the true accuracies, and the top-1 regret (best accuracy minus
   the accuracy of the model predicted best, in percentage points). Per table: the mean
   over tasks, per placement; per-task rows are kept in the JSON.

Diagnostic, ``archi2vec[3 PCs]+metadata``: the space's side encoder keeps up to
``min(16, n - 1)`` principal components of the archi2vec vectors, which on a table of 10-20
models is nearly one dimension per model, room for the side map to fit noise. This
placement projects the vectors onto their top ``FEW_PCS`` = 3 principal components first
(fitted on the fold's training models only) and is otherwise (a). The number 3 was chosen
after a sweep over k in {1, 2, 3, 5} on the four tables with at most 13 models (with an
earlier version of the space that whitened the components), so this is a diagnostic of
whether the number of architecture dimensions matters, not a tuned result.

Card metadata, ``archi2vec+metadata+card``: where a table's models have base models
(``card_bases``; how each table's were established is in ``BASE_PROVENANCE`` and the
report, never from a model card, which the tables do not carry), a held-out model whose base
is among the fold's training models is placed at ``w·u_base + (1 − w)·[1, s]·W`` from the
same fit as (a), for each w of ``BASE_WEIGHTS``; a table's reported w is the one best on the
other such tables (``choose_base_weights``), and the weight best over all of them is the
transfer space's ``BASE_WEIGHT``.

Reference, ``warm`` (not a cold start): each model keeps its history except one task. ``T``
fits per table; fit *f* hides, for the *i*-th model, task ``(i + f) mod T``, so every observed
cell is predicted once by a space that saw that model on the other tasks.
It is not guaranteed to beat the cold starts: a model's own ``dim`` interaction factors,
fitted on its other few tasks, can fit noise that the side-information placement smooths.
So it is computed twice: with the space's ``l2`` and with ``WARM_L2`` = 10 (``warm (l2=10)``);
where only the second beats the cold starts, the first lost to overfitting, not to a lack
of information.

Run (about 4-5 minutes on a loaded 2-core machine: about 600 fits of 0.1-3 s)::

    .venv/bin/python benchmark/published_cold_start.py

Writes ``benchmark/results/published_cold_start.{json,md,png}``; the side information comes
from ``benchmark/results/published_models.json`` (built by ``published_models.py`` when
missing or stale). Deterministic: the transfer space's start is an SVD, the seed only
fills dimensions beyond the data's rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fennec.errors import FennecWarning, InvalidInputError
from fennec.evaluation import kendall_tau, top_k_regret, weighted_tau
from fennec.space import SPACE_VERSION, ModelSide, TransferSpace, normalise_results

LOG = logging.getLogger("fennec.bench.published_cold_start")

RESULTS = Path(__file__).resolve().parent / "results"
COLD = ("archi2vec+metadata", "metadata", "uninformed")
CARD = "archi2vec+metadata+card"  # a model with a base model in the fold placed near it
BASE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the mixing weights tried (TransferSpace(base_weight=))
WARM = "warm"
WARM_L2 = 10.0  # the warm reference again with a stronger ridge on the vectors (see the docstring)
WARM_STRONG = f"warm (l2={WARM_L2:g})"
FEW_PCS = 3  # components kept by the diagnostic placement (see the module docstring)
DIAGNOSTIC = f"archi2vec[{FEW_PCS} PCs]+metadata"
STATS = ("weighted_tau", "kendall_tau", "top1_regret")


@dataclasses.dataclass(frozen=True)
class Config:
    """The benchmark's settings (saved beside its results)."""

    dim: int = 6  # interaction factors of the transfer space (vectors have dim + 1 entries)
    side_weight: float = 1.0  # weight of the side-information prior ‖U' − S1·W‖²
    l2: float = 0.1  # ridge penalty of the space
    seed: int = 0  # TransferSpace seed
    side_alpha: float | None = None  # side-map ridge penalty; None: the space's own LOO choice
    normalise: str = "zscore"  # per-task normalisation inside each fold
    diagnostic: bool = True  # also the few-PCs archi2vec placement (one more fit per fold)
    centre: bool = True  # score cold placements relative to the fold's mean known model
    min_models: int = 4  # a task is scored when at least this many models have a value
    max_folds: int = 20  # leave-one-model-out up to 20 models; larger tables: 20 held-out groups
    warm: bool = True  # also compute the warm reference (T extra fits per table)
    card: bool = True  # also the card placements, where a table's models have base models


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------


def table_results(table: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The ``results`` variant as ``{task: {model: value}}`` without missing cells."""
    return {task: {m: float(v) for m, v in row.items() if v is not None}
            for task, row in table["results"].items()}


def percent_scale(results: Mapping[str, Mapping[str, float]]) -> float:
    """100 for tables stored as fractions (every value in [0, 1]), else 1."""
    values = [v for row in results.values() for v in row.values()]
    return 100.0 if values and min(values) >= 0 and max(values) <= 1 else 1.0


def model_sides(rows: Mapping[str, Mapping[str, Any]], bases: Mapping[str, str] | None = None
                ) -> dict[str, ModelSide]:
    """``ModelSide`` records from one table's rows of ``published_models.json`` (with the
    base models of :func:`card_bases` when given)."""
    out = {}
    bases = bases or {}
    for model, row in rows.items():
        vec = row.get("archi2vec")
        out[model] = ModelSide(model, archi2vec=None if vec is None else np.asarray(vec, np.float64),
                               parameters=row.get("parameters") or None, family=row.get("family"),
                               pretraining=row.get("pretraining"),
                               base_models=(bases[model],) if model in bases else ())
    return out


def card_key(weight: float) -> str:
    """The placement name of the card placement with mixing weight ``weight``."""
    return f"{CARD} (base_weight={weight:g})"


#: How each table's base models were established (tables not named here state none).
BASE_PROVENANCE = {
    "modelspider_multisource_finetune.json": (
        "name-derived (the source's own naming scheme): Model Spider names its checkpoints "
        "FTD_<arch>_<source dataset>; published_models.json records the non-ImageNet ones as "
        "pre-trained on ImageNet-1k then the source dataset, so FTD_<arch>_ImageNet (in the "
        "table) is taken as the base of the other FTD_<arch>_* checkpoints. The source does not "
        "say that they were initialised from that very checkpoint."),
    "transfergraph_hf_finetune.json": (
        "INFERRED FROM NAMES (not stated by the source, no model card read): a model's base is "
        "the model of the table whose Hub name (after the org) followed by '-' is the longest "
        "prefix of its own Hub name, e.g. microsoft/swin-tiny-patch4-window7-224 for "
        "*/swin-tiny-patch4-window7-224-finetuned-eurosat. TransferGraph's model_info "
        "pretrain_dataset (the card's datasets) is already in the metadata placement."),
}


def card_bases(table: str, models: list[str]) -> dict[str, str]:
    """``{model: its base model in the same table}`` as :data:`BASE_PROVENANCE` establishes it.

    Example:
        >>> card_bases("modelspider_multisource_finetune.json",
        ...            ["FTD_resnet50_ImageNet", "FTD_resnet50_Pet", "FTD_vgg_Pet"])
        {'FTD_resnet50_Pet': 'FTD_resnet50_ImageNet'}
        >>> card_bases("transfergraph_hf_finetune.json", ["google/vit-base", "a/vit-base-finetuned-x",
        ...                                                "b/vit-base"])
        {'a/vit-base-finetuned-x': 'google/vit-base'}
    """
    present = set(models)
    out: dict[str, str] = {}
    if table == "modelspider_multisource_finetune.json":
        for m in models:
            arch, _, src = m.rpartition("_")
            if arch.startswith("FTD_") and src != "ImageNet" and f"{arch}_ImageNet" in present:
                out[m] = f"{arch}_ImageNet"
    elif table == "transfergraph_hf_finetune.json":
        for m in models:
            name = m.split("/")[-1]
            cands = [b for b in models if b != m and name.startswith(b.split("/")[-1] + "-")]
            if cands:  # the longest name; ties: the first id in sorted order
                out[m] = max(sorted(cands), key=lambda b: len(b.split("/")[-1]))
    return out


def _drop_models(results: Mapping[str, Mapping[str, float]], models: set[str]) -> dict[str, dict[str, float]]:
    return {t: {m: v for m, v in row.items() if m not in models} for t, row in results.items()}


def _drop_cells(results: Mapping[str, Mapping[str, float]], cells: set[tuple[str, str]]
                ) -> dict[str, dict[str, float]]:
    return {t: {m: v for m, v in row.items() if (m, t) not in cells} for t, row in results.items()}


def model_folds(models: list[str], n_folds: int, *, seed: int = 0) -> list[list[str]]:
    """Split ``models`` into held-out groups: one model each when ``n_folds >= len(models)``.

    Larger tables are split into ``n_folds`` groups of a seeded permutation (each model in
    exactly one group), to bound the number of fits.

    Example:
        >>> model_folds(["a", "b", "c"], 5)
        [['a'], ['b'], ['c']]
        >>> sorted(len(f) for f in model_folds([str(i) for i in range(10)], 4))
        [2, 2, 3, 3]
    """
    if n_folds >= len(models):
        return [[m] for m in models]
    order = np.random.default_rng(seed).permutation(len(models))
    return [sorted(models[i] for i in order[f::n_folds]) for f in range(n_folds)]


def _normalised(results: Mapping[str, Mapping[str, float]], method: str) -> dict[str, dict[str, float]]:
    with warnings.catch_warnings():  # a task left with < 2 models is dropped: expected here
        warnings.simplefilter("ignore", FennecWarning)
        return normalise_results({t: r for t, r in results.items() if r}, method=method)


def _space(config: Config, *, use_archi2vec: bool) -> TransferSpace:
    return TransferSpace(config.dim, use_archi2vec=use_archi2vec, side_weight=config.side_weight,
                         l2=config.l2, seed=config.seed, normalise=config.normalise,
                         side_alpha=config.side_alpha)


def project_archi2vec(sides: Mapping[str, ModelSide], train: list[str], k: int
                      ) -> dict[str, ModelSide]:
    """``sides`` with archi2vec vectors replaced by their top-``k`` PCA coordinates.

    The principal components are fitted on the ``train`` models' vectors only; models
    without a vector keep None. ``k`` is capped at (training vectors - 1).

    Example:
        >>> sides = {m: ModelSide(m, archi2vec=np.array(v, float))
        ...          for m, v in {"a": [0, 0, 1], "b": [2, 0, 1], "c": [4, 1, 1]}.items()}
        >>> project_archi2vec(sides, ["a", "b", "c"], 1)["a"].archi2vec.shape
        (1,)
    """
    vectors = [m for m in train if sides[m].archi2vec is not None]
    if len(vectors) < 2:
        return {m: dataclasses.replace(s, archi2vec=None) for m, s in sides.items()}
    a = np.stack([sides[m].archi2vec for m in vectors])  # (n, D)
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    comps = vt[: min(k, len(vectors) - 1)]  # (k, D)
    return {m: dataclasses.replace(s, archi2vec=None if s.archi2vec is None
                                   else comps @ (np.asarray(s.archi2vec) - mean))
            for m, s in sides.items()}


def _scores(space: TransferSpace, vector: np.ndarray, tasks: list[str]) -> dict[str, float]:
    known = set(space.task_ids_)
    return {t: float(space.score(vector[None, :], space.task_vector_of(t))[0])
            for t in tasks if t in known}


# ---------------------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------------------


def cold_predictions(results: Mapping[str, Mapping[str, float]], sides: Mapping[str, ModelSide],
                     *, config: Config = Config()) -> dict[str, dict[str, dict[str, float]]]:
    """Held-out predictions ``{placement: {model: {task: score}}}`` (see the module docstring).

    Args:
        results: ``{task: {model: accuracy}}`` (raw; normalised inside each fold).
        sides: side information for every model of ``results``.
        config: the space's settings and ``max_folds`` (leave-one-model-out up to that many
            models, else that many groups of held-out models).

    Raises:
        InvalidInputError: a model of ``results`` has no side information.
    """
    models = sorted({m for row in results.values() for m in row})
    missing = [m for m in models if m not in sides]
    if missing:
        raise InvalidInputError(f"{len(missing)} model(s) have no side information: {missing[:5]}; "
                                "pass a ModelSide for every model of the table.")
    tasks = sorted(results)
    placements = [*COLD, *([DIAGNOSTIC] if config.diagnostic else [])]
    with_base = config.card and any(sides[m].base_models for m in models)
    placements += [card_key(w) for w in BASE_WEIGHTS] if with_base else []
    card_sides = dict(sides)
    sides = {m: dataclasses.replace(s, base_models=()) for m, s in sides.items()}  # the placements without
    out: dict[str, dict[str, dict[str, float]]] = {p: {} for p in placements}
    for fold in model_folds(models, config.max_folds, seed=config.seed):
        history = _normalised(_drop_models(results, set(fold)), config.normalise)
        train = [m for m in models if m not in fold]
        known = sorted({m for row in history.values() for m in row})
        fits = [("archi2vec+metadata", True, sides), ("metadata", False, sides)]
        if config.diagnostic:
            fits.append((DIAGNOSTIC, True, project_archi2vec(sides, train, FEW_PCS)))
        for placement, use, fold_sides in fits:
            space = _space(config, use_archi2vec=use).fit(history, models={m: fold_sides[m] for m in train})
            vectors = space.model_vectors([fold_sides[m] for m in fold])  # (len(fold), dim+1)
            mean = space.model_vectors(known).mean(axis=0)  # the fold's average known model
            origin = mean if config.centre else np.zeros_like(mean)
            for model, vector in zip(fold, vectors, strict=True):
                out[placement][model] = _scores(space, vector - origin, tasks)
            if placement == "metadata":
                for model in fold:
                    out["uninformed"][model] = _scores(space, mean - origin, tasks)
            if placement == "archi2vec+metadata" and with_base:  # the same fit, placed near the base
                for w in BASE_WEIGHTS:
                    space.base_weight = w
                    near = space.model_vectors([card_sides[m] for m in fold])
                    for model, vector in zip(fold, near, strict=True):
                        out[card_key(w)][model] = _scores(space, vector - origin, tasks)
    return out


def warm_predictions(results: Mapping[str, Mapping[str, float]], sides: Mapping[str, ModelSide],
                     *, config: Config = Config()) -> dict[str, dict[str, float]]:
    """The warm reference ``{model: {task: score}}``: each cell predicted by a fit without it.

    Fit ``f`` of ``T`` hides, for the ``i``-th model (sorted ids), task ``(i + f) mod T``;
    every observed cell is hidden exactly once, and each fit still sees every model on the
    other ``T - 1`` tasks.
    """
    models = sorted({m for row in results.values() for m in row})
    tasks = sorted(results)
    out: dict[str, dict[str, float]] = {m: {} for m in models}
    for f in range(len(tasks)):
        hidden = {(m, tasks[(i + f) % len(tasks)]) for i, m in enumerate(models)}
        space = _space(config, use_archi2vec=True).fit(
            _normalised(_drop_cells(results, hidden), config.normalise), models=dict(sides))
        known = set(space.model_ids_)
        for m, t in hidden:
            if m in known and t in space.task_ids_ and m in results[t]:
                out[m].update(_scores(space, space.model_vectors([m])[0], [t]))
    return out


# ---------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------


def _safe(func: Any, *args: Any, **kwargs: Any) -> float | None:
    try:
        value = func(*args, **kwargs)
    except InvalidInputError:  # constant predictions: the correlation is undefined
        return None
    return None if not np.isfinite(value) else round(float(value), 6)


def evaluate(predictions: Mapping[str, Mapping[str, float]], results: Mapping[str, Mapping[str, float]],
             *, min_models: int = 4, scale: float = 1.0) -> list[dict[str, Any]]:
    """Per-task rows comparing held-out predictions with the truth.

    Args:
        predictions: ``{model: {task: predicted score}}``.
        results: ``{task: {model: true accuracy}}``.
        min_models: tasks with fewer models having both a prediction and a value are skipped.
        scale: multiplies the regret (100 turns fractions into percentage points).

    Returns:
        One row per scored task: ``task``, ``n_models``, ``constant_prediction``,
        ``weighted_tau``, ``kendall_tau`` (None when the predictions are constant),
        ``top1_regret`` (ties resolved against the prediction; for constant predictions the
        expected regret of a random pick), ``predicted_best``, ``best``. Scores equal to 9
        decimals count as ties.

    Example:
        >>> rows = evaluate({"a": {"t": 3.0}, "b": {"t": 2.0}, "c": {"t": 1.0}},
        ...                 {"t": {"a": 0.7, "b": 0.9, "c": 0.5}}, min_models=3, scale=100)
        >>> rows[0]["top1_regret"], rows[0]["predicted_best"]
        (20.0, 'a')
    """
    rows = []
    for task in sorted(results):
        truth = {m: v for m, v in results[task].items() if task in predictions.get(m, {})}
        if len(truth) < min_models:
            continue
        # float noise is not information: scores equal to 9 decimals are ties
        pred = {m: round(predictions[m][task], 9) for m in truth}
        constant = len(set(pred.values())) == 1
        if constant:  # no ranking at all: the expected regret of a random pick
            regret = (max(truth.values()) - float(np.mean(list(truth.values())))) * scale
        else:  # ties resolved against the prediction (fennec.evaluation)
            regret = top_k_regret(pred, truth, k=1) * scale
        rows.append({"task": task, "n_models": len(truth), "constant_prediction": constant,
                     "weighted_tau": _safe(weighted_tau, pred, truth),
                     "kendall_tau": _safe(kendall_tau, pred, truth),
                     "top1_regret": round(float(regret), 6),
                     "predicted_best": max(sorted(pred), key=lambda m: pred[m]),
                     "best": max(sorted(truth), key=lambda m: truth[m])})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and standard error) over tasks of each statistic; undefined values skipped."""
    out: dict[str, Any] = {"tasks": len(rows)}
    for stat in STATS:
        vals = np.array([r[stat] for r in rows if r[stat] is not None], dtype=np.float64)
        out[stat] = round(float(vals.mean()), 4) if len(vals) else None
        out[f"{stat}_se"] = (round(float(vals.std(ddof=1) / np.sqrt(len(vals))), 4)
                             if len(vals) > 1 else None)
        out[f"{stat}_tasks"] = int(len(vals))
    return out


def paired(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], stat: str = "weighted_tau"
           ) -> dict[str, int]:
    """Tasks where placement a beats / ties / loses to placement b on ``stat``."""
    b_of = {r["task"]: r[stat] for r in rows_b}
    out = {"better": 0, "tie": 0, "worse": 0}
    for r in rows_a:
        a, b = r[stat], b_of.get(r["task"])
        if a is None or b is None:
            continue
        better = a < b if stat == "top1_regret" else a > b
        out["better" if better else "tie" if a == b else "worse"] += 1
    return out


def run_table(results: Mapping[str, Mapping[str, float]], sides: Mapping[str, ModelSide],
              *, config: Config = Config()) -> dict[str, Any]:
    """Every placement's per-task rows and summaries for one table (see the module docstring)."""
    scale = percent_scale(results)
    t0 = time.perf_counter()
    preds: dict[str, Any] = dict(cold_predictions(results, sides, config=config))
    if config.warm:
        preds[WARM] = warm_predictions(results, sides, config=config)
        preds[WARM_STRONG] = warm_predictions(results, sides,
                                              config=dataclasses.replace(config, l2=WARM_L2))
    rows = {p: evaluate(pr, results, min_models=config.min_models, scale=scale) for p, pr in preds.items()}
    models = sorted({m for row in results.values() for m in row})
    with_vec = [m for m in models if sides[m].archi2vec is not None]
    archs = {tuple(np.round(sides[m].archi2vec, 5)) for m in with_vec}
    arch_families: dict[str | None, set] = {}
    for m in with_vec:
        arch_families.setdefault(sides[m].family, set()).add(tuple(np.round(sides[m].archi2vec, 5)))
    return {
        "models": len(models), "tasks": len(results),
        "cells": sum(len(r) for r in results.values()),
        "models_with_archi2vec": len(with_vec), "distinct_architectures": len(archs),
        "families": len({sides[m].family for m in models if sides[m].family}),
        "families_with_several_architectures": sum(len(a) > 1 for a in arch_families.values()),
        "pretraining_labels": len({x for m in models for x in (sides[m].pretraining or "").split(",") if x}),
        "models_with_base": sum(1 for m in models if sides[m].base_models),
        "regret_unit": "percentage points",
        "summary": {p: summarise(r) for p, r in rows.items()},
        "archi2vec_vs_metadata": {s: paired(rows["archi2vec+metadata"], rows["metadata"], s)
                                  for s in ("weighted_tau", "top1_regret")},
        "archi2vec_vs_uninformed": {s: paired(rows["archi2vec+metadata"], rows["uninformed"], s)
                                    for s in ("weighted_tau", "top1_regret")},
        **({"diagnostic_vs_metadata": {s: paired(rows[DIAGNOSTIC], rows["metadata"], s)
                                       for s in ("weighted_tau", "top1_regret")}}
           if DIAGNOSTIC in rows else {}),
        "per_task": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def choose_base_weights(tables: dict[str, dict[str, Any]]) -> float | None:
    """Pick the card placement's mixing weight, in place, per table and pooled.

    A table's weight is the one of :data:`BASE_WEIGHTS` with the best mean weighted τ over
    the *other* tables that have base models (leave one table out; the table itself when it
    is the only one), so no table's card row is tuned on its own tasks; its
    :data:`CARD` summary and per-task rows are those of that weight. Tables without base
    models get None. Returns the weight best over all such tables (what
    ``TransferSpace``'s ``BASE_WEIGHT`` is set to), or None when no table has base models.
    """
    with_base = [n for n, t in tables.items() if t.get("models_with_base")]

    def best(names: list[str]) -> float:
        def score(w: float) -> float:
            vals = [tables[n]["summary"][card_key(w)]["weighted_tau"] for n in names]
            return float(np.mean([v for v in vals if v is not None] or [-np.inf]))
        return max(BASE_WEIGHTS, key=lambda w: (score(w), -w))  # ties: the smaller weight

    for name, t in tables.items():
        if name not in with_base:
            t["summary"][CARD], t["card_base_weight"] = None, None
            continue
        w = best([n for n in with_base if n != name] or [name])
        t["card_base_weight"] = w
        t["summary"][CARD] = t["summary"][card_key(w)]
        t["per_task"][CARD] = t["per_task"][card_key(w)]
        t["card_vs_archi2vec"] = {s: paired(t["per_task"][CARD], t["per_task"]["archi2vec+metadata"], s)
                                  for s in ("weighted_tau", "top1_regret")}
    return best(with_base) if with_base else None


def _placements(config: Mapping[str, Any]) -> list[str]:
    return [*COLD, *([CARD] if config.get("card") else []), *([DIAGNOSTIC] if config["diagnostic"] else []),
            *([WARM, WARM_STRONG] if config["warm"] else [])]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:+.{digits}f}" if digits == 3 else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The results as markdown: one table per statistic and a reading of the numbers."""
    placements = _placements(report["config"])
    tables = report["tables"]
    lines = [
        "# Cold start on the published transfer tables (leave one model out)",
        "",
        f"Generated by `benchmark/published_cold_start.py` on {report['date']} "
        f"(archi2vec `{report['embedder_version']}`, transfer space dim={report['config']['dim']}, "
        f"side_weight={report['config']['side_weight']}, l2={report['config']['l2']}, "
        f"seed={report['config']['seed']}). Protocol: the module docstring. Each model is held out "
        "with its whole history, the space is fitted on the rest (normalised inside the fold) and "
        "the model is placed from side information only (tables of more than "
        f"{report['config']['max_folds']} models: {report['config']['max_folds']} held-out groups); "
        "per task, its predicted score is ranked against the other held-out predictions. "
        "`uninformed` gives every model the same score where the table is complete (τ undefined, "
        "shown as —; its regret is then the expected regret of a random pick). `warm` and `warm (l2=10)` "
        "are references, not cold starts: "
        "the model keeps its history on every other task.",
        "",
        "The tasks are known here (their vectors are learned from the other models' results on "
        "them): this measures placing a *new model* among known tasks, not ranking models for "
        "a *new dataset*, so these τw are not comparable with the transferability metrics' τw "
        "on the same tables.",
        "",
        f"Transfer space: `{report['space']['space_version']}`, `fennec/space/` at "
        f"{report['space']['fennec_space_commit']}"
        + (" with uncommitted changes" if report["space"]["fennec_space_modified"] else "") + ".",
        "",
        "| table | models (with archi2vec) | distinct archs | tasks |",
        "|---|---|---|---|",
    ]
    for name, t in tables.items():
        lines.append(f"| {name} | {t['models']} ({t['models_with_archi2vec']}) | "
                     f"{t['distinct_architectures']} | {t['tasks']} |")
    titles = {"weighted_tau": "Mean weighted τ over tasks (higher is better; ± standard error)",
              "kendall_tau": "Mean Kendall τ-b over tasks",
              "top1_regret": "Mean top-1 regret over tasks (percentage points; lower is better)"}
    for stat in STATS:
        lines += ["", f"## {titles[stat]}", "",
                  "| table | " + " | ".join(placements) + " |",
                  "|---|" + "---|" * len(placements)]
        for name, t in tables.items():
            cells = []
            for p in placements:
                s = t["summary"].get(p)
                if s is None:  # no card metadata beyond the metadata placement's
                    cells.append("n/a")
                    continue
                digits = 3 if stat != "top1_regret" else 2
                se = s.get(f"{stat}_se")
                cells.append(_fmt(s[stat], digits) + (f" ± {se:.{digits}f}" if se is not None
                                                      and stat == "weighted_tau" else ""))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Reading", ""] + reading(report)
    return "\n".join(lines) + "\n"


def reading(report: dict[str, Any]) -> list[str]:
    """Sentences derived from the numbers (the verdict thresholds are ±0.05 in mean τw)."""
    out = []
    verdicts = {"adds": 0, "hurts": 0, "little": 0}
    for name, t in report["tables"].items():
        s = t["summary"]
        a, m = s["archi2vec+metadata"]["weighted_tau"], s["metadata"]["weighted_tau"]
        pairs = t["archi2vec_vs_metadata"]["weighted_tau"]
        if a is None or m is None:
            out.append(f"* **{name}**: weighted τ undefined for a placement (constant predictions).")
            continue
        gap = a - m
        key = "adds" if gap > 0.05 else "hurts" if gap < -0.05 else "little"
        verdicts[key] += 1
        verdict = {"adds": "archi2vec adds to metadata", "hurts": "archi2vec hurts",
                   "little": "archi2vec changes little"}[key]
        why = ""
        if t["distinct_architectures"] <= 1:
            why = (" Every model has the same architecture, so archi2vec cannot separate them: "
                   "any difference comes from the fit, not from information.")
        elif t["families_with_several_architectures"] == 0:
            why = (f" Each of the {t['distinct_architectures']} architectures is its own family, so "
                   "the family one-hot already identifies it: archi2vec has no information to add.")
        elif t["distinct_architectures"] < t["models"] / 3:
            why = (f" Only {t['distinct_architectures']} distinct architectures for "
                   f"{t['models']} models: models that share one differ only in what archi2vec "
                   "does not see (pre-training data, and for Hub models the fine-tuning behind "
                   "them).")
        u = s["uninformed"]["weighted_tau"]
        if u is not None:
            why += (f" The uninformed score is not constant here (τw {u:+.3f}; a run without "
                    "centring): with missing cells, the fold's mean fitted score on a task shifts "
                    "with the quality of the model held out, and this offset is in every cold "
                    "placement's intercept, so compare the placements with each other, not with 0.")
        diag = s.get(DIAGNOSTIC, {}).get("weighted_tau")
        if diag is not None and t["distinct_architectures"] > 1:
            dp = t["diagnostic_vs_metadata"]["weighted_tau"]
            why += (f" With {FEW_PCS} archi2vec components instead of up to "
                    f"{min(16, t['models_with_archi2vec'] - 2)}: τw {diag:+.3f} (better than "
                    f"metadata-only on {dp['better']}, worse on {dp['worse']} tasks).")
        warm = s.get(WARM, {}).get("weighted_tau")
        warm_strong = s.get(WARM_STRONG, {}).get("weighted_tau")
        regret = {p: s[p]["top1_regret"] for p in COLD}
        out.append(f"* **{name}**: {verdict} (τw {a:+.3f} vs {m:+.3f} metadata-only; better on "
                   f"{pairs['better']}, worse on {pairs['worse']} of "
                   f"{pairs['better'] + pairs['tie'] + pairs['worse']} tasks; top-1 regret "
                   f"{regret['archi2vec+metadata']:.2f} vs {regret['metadata']:.2f} pp, "
                   f"{regret['uninformed']:.2f} uninformed"
                   + (f"; warm reference {warm:+.3f}, {warm_strong:+.3f} with l2={WARM_L2:g}"
                      if warm is not None and warm_strong is not None else "") + ")." + why)
    ses = [t["summary"][p]["weighted_tau_se"] for t in report["tables"].values()
           for p in ("archi2vec+metadata", "metadata") if t["summary"][p]["weighted_tau_se"]]
    head = (f"archi2vec+metadata vs metadata-only, mean τw: better by more than 0.05 on "
            f"{verdicts['adds']} tables, worse by more than 0.05 on {verdicts['hurts']}, within "
            f"±0.05 on {verdicts['little']}."
            + (f" Standard errors of the mean over tasks range from {min(ses):.2f} to "
               f"{max(ses):.2f}, so a single table's gap smaller than about twice that is not "
               "conclusive." if ses else ""))
    return [head, "", *out, *card_reading(report)]


def card_reading(report: dict[str, Any]) -> list[str]:
    """The card rows: how the base models were established, the weight chosen, the verdict."""
    tables = {n: t for n, t in report["tables"].items() if t.get("card_base_weight") is not None}
    if not tables:
        return []
    out = ["", "## Card metadata (base_model)", "",
           f"`{CARD}` is `archi2vec+metadata` with a held-out model that has a base model among the "
           "fold's training models placed at `w·u_base + (1 − w)·(side placement)` "
           f"(`TransferSpace(base_weight=w)`), w in {list(BASE_WEIGHTS)}. Each table's w is the best "
           "mean τw over the *other* tables with base models (leave one table out); the weight "
           f"best over all of them, {report.get('base_weight')}, is the space's `BASE_WEIGHT`. The "
           "published tables carry no model cards: `datasets` (pre-training / fine-tuning data) is "
           "already in the metadata placement where a source states it, `library_name` is the same "
           "for every model of a table (no information), so the card row tests `base_model` alone. "
           "Tables without base models: n/a.", ""]
    for name, t in tables.items():
        s = t["summary"]
        grid = ", ".join(f"{w:g}: {s[card_key(w)]['weighted_tau']:+.3f}" for w in BASE_WEIGHTS)
        card, a2v = s[CARD]["weighted_tau"], s["archi2vec+metadata"]["weighted_tau"]
        pairs = t["card_vs_archi2vec"]["weighted_tau"]
        gap = card - a2v
        verdict = ("the base model helps" if gap > 0.01 else "the base model hurts" if gap < -0.01
                   else "the base model changes nothing measurable")
        own = [s[card_key(w)]["weighted_tau"] for w in BASE_WEIGHTS if w > 0]
        if t["card_base_weight"] == 0:
            verdict = ("no move toward the base: the other table chose w = 0, so the card row is "
                       "archi2vec+metadata" + ("; on this table too, every w > 0 lowers τw"
                                              if all(v is not None and v < a2v for v in own) else ""))
        out.append(f"* **{name}** ({t['models_with_base']} of {t['models']} models with a base; "
                   f"{t['base_models']['how']}): {verdict}: τw {card:+.3f} at w={t['card_base_weight']:g} "
                   f"vs {a2v:+.3f} archi2vec+metadata (better on {pairs['better']}, worse on "
                   f"{pairs['worse']} tasks); τw by w: {grid}.")
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: mean weighted τ per table and placement (± standard error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["tables"])
    placements = [p for p in _placements(report["config"])  # τ of a constant placement is undefined
                  if any((report["tables"][n]["summary"].get(p) or {}).get("weighted_tau") is not None
                         for n in names)]
    x = np.arange(len(names))
    width = 0.8 / len(placements)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(names)), 4.5))
    colours = {"archi2vec+metadata": "tab:blue", "metadata": "tab:orange", "uninformed": "tab:gray",
               DIAGNOSTIC: "tab:cyan", CARD: "tab:red", WARM: "tab:green", WARM_STRONG: "tab:olive"}
    for i, p in enumerate(placements):
        s = [report["tables"][n]["summary"].get(p) or {"weighted_tau": None, "weighted_tau_se": None}
             for n in names]
        mean = [v["weighted_tau"] if v["weighted_tau"] is not None else np.nan for v in s]
        se = [v["weighted_tau_se"] if v["weighted_tau_se"] is not None else 0.0 for v in s]
        ax.bar(x + (i - (len(placements) - 1) / 2) * width, mean, width, yerr=se, capsize=2,
               label=p, color=colours[p], hatch="//" if p.startswith(WARM) else None,
               alpha=0.6 if p.startswith(WARM) else 1.0)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([n.replace("_finetune.json", "").replace(".json", "") for n in names],
                       rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("mean weighted τ over tasks")
    ax.set_title("Leave-one-model-out cold start on published transfer tables\n"
                 "(uninformed: no bar where every model gets the same score, τ undefined)",
                 fontsize=10)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def space_provenance() -> dict[str, Any]:
    """The transfer space's version and the git state of ``fennec/space/`` (it evolves)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=30, check=False).stdout.strip()
        except OSError:
            return ""

    return {"space_version": SPACE_VERSION,
            "fennec_space_commit": git("log", "-1", "--format=%h", "--", "fennec/space/") or None,
            "fennec_space_modified": bool(git("status", "--porcelain", "--", "fennec/space/"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="*", help="table files (default: every usable one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-warm", action="store_true", help="skip the warm reference")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the markdown and the plot from the existing JSON")
    parser.add_argument("--no-diagnostic", action="store_true",
                        help=f"skip the archi2vec[{FEW_PCS} PCs]+metadata placement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    if args.report_only:
        report = json.loads((args.out / "published_cold_start.json").read_text(encoding="utf-8"))
        _write_report(report, args.out, json_too=False)
        return 0
    logging.getLogger("fennec.space").setLevel(logging.WARNING)
    logging.getLogger("archi2vec").setLevel(logging.WARNING)
    import archi2vec_transfer as tr  # heavy (torch): only the command needs it
    from published_models import OUTPUT, load_side_info

    config = Config(warm=not args.no_warm, diagnostic=not args.no_diagnostic)
    side_info = load_side_info(OUTPUT)
    names = args.tables or list(side_info["tables"])
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "embedder_version": side_info["embedder_version"],
        "side_info": {"file": "benchmark/results/published_models.json",
                      "embedder_version": side_info["embedder_version"], "date": side_info["date"]},
        "config": dataclasses.asdict(config), "placements": _placements(dataclasses.asdict(config)),
        "diagnostic_pcs": FEW_PCS, "space": space_provenance(),
        "skipped_tables": side_info["skipped"],
        "environment": {"python": platform.python_version(), "numpy": np.__version__},
        "tables": {},
    }
    for name in names:
        results = table_results(tr.load_table(name))
        bases = card_bases(name, sorted(side_info["tables"][name]))
        sides = model_sides(side_info["tables"][name], bases)
        report["tables"][name] = run_table(results, sides, config=config)
        s = report["tables"][name]["summary"]
        LOG.info("%s: τw %s (%.0fs)", name, {p: s[p]["weighted_tau"] for p in s},
                 report["tables"][name]["seconds"])
        if bases:
            report["tables"][name]["base_models"] = {"how": BASE_PROVENANCE[name], "pairs": bases}
    report["base_weight"] = choose_base_weights(report["tables"])
    _write_report(report, args.out)
    return 0


def _write_report(report: dict[str, Any], out: Path, *, json_too: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if json_too:
        (out / "published_cold_start.json").write_text(json.dumps(report, indent=1) + "\n",
                                                       encoding="utf-8")
    (out / "published_cold_start.md").write_text(markdown(report), encoding="utf-8")
    plot(report, out / "published_cold_start.png")


if __name__ == "__main__":
    sys.exit(main())
