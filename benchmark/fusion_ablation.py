"""Ablation of refinement on the zoo: fixed fusion weights and metric ensembles, in hindsight.

Run (after ``fennec bench``, whose feature and score caches it reuses)::

    .venv/bin/python benchmark/fusion_ablation.py

``fennec bench`` chooses the refinement metric and the fusion weight *without* the held-out
target (inner leave-one-task-out). This script asks what the best fixed choices could give, to
see whether refinement is limited by the signals or by the selection: for every held-out
target the transfer space is fitted on the other targets (as in ``fennec bench``), then

- every model is ranked by single metrics and by averages of metric z-scores (ensembles);
- the index ranking is fused with ``hscore_regularized`` or with the three-metric ensemble,
  at fixed weights, refining the index's top 6 candidates or all 36 models.

Every configuration here is chosen by looking at all 10 targets, so these numbers are upper
bounds of what a selection could find, not results to compare with ``fennec bench``'s rows.

Writes ``benchmark/results/fusion_ablation.{json,md}``.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"

SINGLE = ("hscore_regularized", "logme", "nleep", "parc")
ENSEMBLES = (("hscore_regularized", "logme"), ("hscore_regularized", "nleep"),
             ("hscore_regularized", "logme", "nleep"), ("hscore_regularized", "logme", "nleep", "parc"))
ENS3 = ("hscore_regularized", "logme", "nleep")
WEIGHTS = (0.25, 0.5, 0.75)
BUDGETS = (6, 36)


def main() -> int:
    from fennec.bench import runner as B
    from fennec.metrics import list_metrics
    from fennec.workspace import DEFAULT_MAX_SAMPLES

    warnings.filterwarnings("ignore", category=UserWarning)
    data = B.load_zoo_data(max_samples=DEFAULT_MAX_SAMPLES)
    scores, _, _, _ = B.score_zoo(data, list_metrics())
    targets = sorted(data.truth)
    index = {t: B._index_scores(B._fit_space(data, [x for x in targets if x != t]), data, t)[0] for t in targets}

    def tau(ranking: dict, t: str) -> float:
        return B._evaluate(ranking, data.truth[t])["weighted_tau"]

    def metric(t: str, names: tuple[str, ...]) -> dict[str, float]:
        return B._ensemble({m: scores[t][m] for m in data.models}, names)

    rows: dict[str, list[float]] = {"fennec-index": [tau(index[t], t) for t in targets]}
    for name in SINGLE:
        rows[f"metric:{name}"] = [tau(metric(t, (name,)), t) for t in targets]
    for names in ENSEMBLES:
        rows["ensemble:" + "+".join(names)] = [tau(metric(t, names), t) for t in targets]
    for c in BUDGETS:
        for w in WEIGHTS:
            for label, names in (("hscore_regularized", ("hscore_regularized",)), ("ensemble3", ENS3)):
                rows[f"fuse {label}, {c} candidates, w={w}"] = [
                    tau(B._refined(index[t], metric(t, names), c, w), t) for t in targets]

    result = {"generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmark/fusion_ablation.py", "targets": targets,
              "n_models": len(data.models), "ensemble3": list(ENS3),
              "mean_weighted_tau": {k: float(np.mean(v)) for k, v in rows.items()},
              "weighted_tau_per_target": {k: dict(zip(targets, map(float, v), strict=True)) for k, v in rows.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "fusion_ablation.json.tmp"
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(RESULTS / "fusion_ablation.json")
    lines = ["# Refinement ablation on the zoo (fixed choices, in hindsight)", "",
             f"Generated {result['generated_utc']} by `{result['command']}`. Leave-one-task-out transfer space as "
             "in `fennec bench`; metrics, ensembles and fusion weights fixed across targets and chosen by looking at "
             "all of them, so these are upper bounds of what a selection could find (see the module docstring).", "",
             "| configuration | mean weighted τ | " + " | ".join(targets) + " |",
             "|---|---|" + "---|" * len(targets)]
    for k, v in rows.items():
        lines.append(f"| {k} | {np.mean(v):.3f} | " + " | ".join(f"{x:.2f}" for x in v) + " |")
    (RESULTS / "fusion_ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
