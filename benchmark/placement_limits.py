"""Where fennec's ranking is limited on the zoo: the space's dimension, the descriptor's parts, images vs candidates.

Run (after ``fennec bench``, whose proxy-feature and feature caches it reuses)::

    .venv/bin/python benchmark/placement_limits.py [--draws 3]

Three leave-one-task-out measurements on every zoo target with complete ground truth (each
target held out, the transfer space fitted on all the others, weighted τ against its seed-0
fine-tuning accuracies), each asking whether something other than fennec's defaults would rank
better:

1. **Dimension of the transfer space.** For each ``dim``, fennec-index (the placement from the
   proxy descriptor) and the cross-fitted oracle placement (each model scored by the task vector
   fitted to the held-out results of the other models,
   :func:`fennec.bench.runner._oracle_placement`): whether a larger or smaller space could
   express more of the targets than it does.
2. **Parts of the descriptor.** fennec-index with only some blocks of the proxy descriptor
   (:func:`fennec.task.describe`: where the task lies, how its class means spread, how varied
   each class is, the six scalars): whether some part carries the transfer signal and the rest
   drowns it.
3. **Fewer images, more candidates.** The refinement budget is counted in forward passes (images x
   networks). At the default's budget (6 candidates on the whole sample), more candidates each on a
   stratified part of the images (the metric computed on that part of every candidate's cached
   features, ``--draws`` random parts), the package's default pipeline otherwise; and the metric
   alone on every model with the same parts of the images.

Writes ``benchmark/results/placement_limits.{json,md}``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"

DIMS = (2, 4, 6, 8, 12)
#: (fraction of each class's images, candidates): the same forward passes as the default (1, 6).
IMAGE_PLANS = ((1.0, 6), (2 / 3, 9), (1 / 2, 12), (1 / 3, 18))
BLOCKS = ("centre", "between", "within", "scalars")
#: Descriptor parts tried, each a set of blocks (all four: fennec's descriptor).
BLOCK_SETS = (BLOCKS, ("centre",), ("between",), ("within",), ("scalars",), ("centre", "between", "within"),
              ("within", "scalars"), ("between", "within", "scalars"), ("centre", "scalars"))


def block_columns(dim: int, blocks: tuple[str, ...]) -> np.ndarray:
    """The descriptor's columns of ``blocks`` for a descriptor of length ``dim`` (``3·D + 6``)."""
    from fennec.task import SCALAR_NAMES

    d = (dim - len(SCALAR_NAMES)) // 3
    if dim != 3 * d + len(SCALAR_NAMES) or d < 1:
        raise ValueError(f"a descriptor has 3·D + {len(SCALAR_NAMES)} entries; got {dim}")
    spans = {"centre": range(0, d), "between": range(d, 2 * d), "within": range(2 * d, 3 * d),
             "scalars": range(3 * d, dim)}
    return np.array([i for b in blocks for i in spans[b]], dtype=np.int64)


def stratified_part(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted row indices of a seeded stratified part of a sample: ``round(fraction · n_c)`` rows of
    each class, at least 2 (the metrics need two examples of a class) and at most all of them."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        k = min(len(rows), max(2, int(round(fraction * len(rows)))))
        keep += [int(i) for i in rng.choice(rows, size=k, replace=False)]
    return np.sort(np.array(keep, dtype=np.int64))


def _paired(values: dict[str, float], base: dict[str, float]) -> dict[str, Any]:
    from fennec.bench.runner import TIE

    d = np.array([values[t] - base[t] for t in base])
    return {"mean": float(np.mean(list(values.values()))), "diff": float(d.mean()),
            "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None,
            "above": int((d >= TIE).sum()), "below": int((d <= -TIE).sum())}


def _placement(data: Any, train: list[str], target: str, *, dim: int, columns: np.ndarray | None) -> Any:
    """The held-out target's placement (:func:`fennec.bench.runner._prior`) in a space of ``dim``
    fitted on ``train``, with descriptors cut to ``columns`` (None: whole)."""
    from fennec.bench.runner import _fit_space, _prior

    return _prior(_fit_space(data, train, dim=dim, columns=columns), data, target, columns=columns)


def measure(data: Any, *, draws: int, progress: bool) -> dict[str, Any]:
    from fennec import _progress
    from fennec.bench.runner import _oracle_placement, _placed_scores, _weighted_tau, history_mean
    from fennec.features import model_features
    from fennec.metrics import metric_info
    from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC, DEFAULT_PLACEMENT_STRENGTH
    from fennec.workspace.fitting import DEFAULT_DIM

    targets = sorted(data.truth)
    train_of = {t: [x for x in targets if x != t] for t in targets}
    hist = {t: _weighted_tau(history_mean({x: data.truth[x] for x in train_of[t]}, data.models), data.truth[t])
            for t in targets}

    def index_tau(prior: Any, t: str) -> float | None:
        return _weighted_tau(dict(zip(prior.ranked, map(float, prior.vectors @ prior.task), strict=True)),
                             data.truth[t])

    dims: dict[int, dict[str, dict[str, float]]] = {}
    for dim in _progress.track(DIMS, desc="space dimensions", unit="dims", enabled=progress):
        per: dict[str, dict[str, float]] = {"index": {}, "oracle": {}}
        for t in targets:
            prior = _placement(data, train_of[t], t, dim=dim, columns=None)
            per["index"][t] = index_tau(prior, t)
            per["oracle"][t] = _weighted_tau(_oracle_placement(prior, data.truth[t], cross_fitted=True),
                                             data.truth[t])
        dims[dim] = per

    length = data.descriptors[targets[0]].vector.size
    blocks: dict[str, dict[str, float]] = {}
    for chosen in _progress.track(BLOCK_SETS, desc="descriptor parts", unit="parts", enabled=progress):
        cols = None if chosen == BLOCKS else block_columns(length, chosen)
        blocks["+".join(chosen)] = {t: index_tau(_placement(data, train_of[t], t, dim=DEFAULT_DIM, columns=cols), t)
                                    for t in targets}

    info = metric_info(DEFAULT_METRIC)
    fractions = sorted({f for f, _ in IMAGE_PLANS}, reverse=True)
    plans: dict[str, dict[str, float]] = {f"{f:.3f}x{c}": {} for f, c in IMAGE_PLANS}
    metric_alone: dict[str, dict[str, float]] = {f"{f:.3f}": {} for f in fractions}
    for t in _progress.track(targets, desc="images vs candidates", unit="targets", enabled=progress):
        sample = data.samples[t]
        labels = np.asarray(sample.labels)
        feats = {m: model_features(m, sample, hub=data.hub).features for m in data.models}
        prior = _placement(data, train_of[t], t, dim=DEFAULT_DIM, columns=None)
        for f in fractions:
            parts = [np.arange(len(labels))] if f == 1.0 else [stratified_part(labels, f, s) for s in range(draws)]
            scored = []
            for rows in parts:
                s: dict[str, float | None] = {}
                for m, x in feats.items():
                    try:
                        s[m] = float(info.func(x[rows], labels[rows]))
                    except Exception:  # a metric failing on one model is a result: no score
                        s[m] = None
                scored.append(s)
            metric_alone[f"{f:.3f}"][t] = float(np.mean([
                _weighted_tau({m: v for m, v in s.items() if v is not None}, data.truth[t]) for s in scored]))
            for frac, c in IMAGE_PLANS:
                if frac == f:
                    plans[f"{f:.3f}x{c}"][t] = float(np.mean([_weighted_tau(_placed_scores(
                        prior, {m: {DEFAULT_METRIC: v} for m, v in s.items()}, [DEFAULT_METRIC], c,
                        DEFAULT_FUSION_WEIGHT, DEFAULT_PLACEMENT_STRENGTH), data.truth[t]) for s in scored]))

    default_index = dims[DEFAULT_DIM]["index"]
    default_plan = plans[f"{1.0:.3f}x{IMAGE_PLANS[0][1]}"]
    return {
        "targets": targets, "n_models": len(data.models), "metric": DEFAULT_METRIC, "draws": draws,
        "history_mean": {"mean": float(np.mean(list(hist.values()))), "per_target": hist},
        "dims": {str(d): {k: _paired(v, hist) | {"per_target": v} for k, v in per.items()} for d, per in dims.items()},
        "blocks": {k: _paired(v, default_index) | {"vs_history_mean": _paired(v, hist)["diff"], "per_target": v}
                   for k, v in blocks.items()},
        "image_plans": {k: _paired(v, default_plan) | {"per_target": v} for k, v in plans.items()},
        "metric_alone": {k: _paired(v, hist) | {"per_target": v} for k, v in metric_alone.items()},
        "default_dim": DEFAULT_DIM,
    }


def markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    def se(e: dict[str, Any]) -> str:
        return f"{e['diff']:+.3f} ({e['se']:.3f})" if e.get("se") is not None else f"{e['diff']:+.3f}"

    n = len(res["targets"])
    lines = [
        "# Where the ranking is limited (`benchmark/placement_limits.py`)", "",
        f"Generated {meta['generated_utc']} ({meta['seconds']:.0f} s). {n} zoo targets, {res['n_models']} models; "
        "each target held out, the transfer space fitted on all the others; weighted τ against the held-out seed-0 "
        f"fine-tuning accuracies; history-mean (data-free) {res['history_mean']['mean']:.3f}. Differences are "
        "paired over targets, with their standard error; above / below count targets at |Δ| ≥ 0.0005.", "",
        "## 1. Dimension of the transfer space", "",
        "fennec-index: the placement from the proxy descriptor. Cross-fitted oracle: each model scored by the task "
        "vector fitted (least squares) to the held-out target's results of all the other models: about the best "
        "any placement could do in that space.", "",
        "| dim | fennec-index | − history-mean (s.e.) | cross-fitted oracle | − history-mean (s.e.) |",
        "|---|---|---|---|---|"]
    for d, e in res["dims"].items():
        mark = " (default)" if int(d) == res["default_dim"] else ""
        lines.append(f"| {d}{mark} | {e['index']['mean']:.3f} | {se(e['index'])} | {e['oracle']['mean']:.3f} | "
                     f"{se(e['oracle'])} |")
    lines += ["", "## 2. Parts of the proxy descriptor", "",
              f"fennec-index (dim {res['default_dim']}) with only these blocks of the descriptor: `centre` (mean of "
              "the class means), `between` (spread of the class means per dimension), `within` (within-class "
              "spread per dimension), `scalars` (the six summary numbers). Differences to the whole descriptor.", "",
              "| blocks | fennec-index | − whole descriptor (s.e.) | above / below | − history-mean |",
              "|---|---|---|---|---|"]
    for k, e in res["blocks"].items():
        lines.append(f"| {k} | {e['mean']:.3f} | {se(e)} | {e['above']} / {e['below']} | "
                     f"{e['vs_history_mean']:+.3f} |")
    lines += ["", "## 3. Fewer images, more candidates", "",
              f"The default pipeline ({res['metric']}, package defaults) at the same forward passes: more candidates, "
              f"each scored on a stratified part of the images (mean over {res['draws']} random parts). Differences "
              "to 6 candidates on every image. Below, the metric alone on every model with the same parts.", "",
              "| images per class | candidates | weighted τ | − 6 on every image (s.e.) | above / below |",
              "|---|---|---|---|---|"]
    for k, e in res["image_plans"].items():
        f, c = k.split("x")
        lines.append(f"| {float(f):.2f} | {c} | {e['mean']:.3f} | {se(e)} | {e['above']} / {e['below']} |")
    lines += ["", "| images per class | metric on every model | − history-mean (s.e.) |", "|---|---|---|"]
    for k, e in res["metric_alone"].items():
        lines.append(f"| {float(k):.2f} | {e['mean']:.3f} | {se(e)} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from fennec._io import save_json_atomic, write_bytes_atomic
    from fennec.bench import load_zoo_data
    from fennec.workspace import DEFAULT_MAX_SAMPLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3, help="random image parts per fraction below 1")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be at least 1, got {args.draws}")

    warnings.filterwarnings("ignore", category=UserWarning)
    t0 = time.perf_counter()
    data = load_zoo_data(max_samples=DEFAULT_MAX_SAMPLES, progress=True)
    res = measure(data, draws=args.draws, progress=True)
    meta = {"generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - t0}
    args.out.mkdir(parents=True, exist_ok=True)
    save_json_atomic(args.out / "placement_limits.json", {**meta, **res})
    report = markdown(res, meta)
    write_bytes_atomic(args.out / "placement_limits.md", lambda fh: fh.write(report.encode("utf-8")))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
