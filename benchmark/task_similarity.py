"""How far is far: the closest-known-task similarity against ranking quality, on the zoo.

Run::

    .venv/bin/python benchmark/task_similarity.py

For each of the zoo's targets, as ``fennec bench`` holds it out, the task index is rebuilt
from the other targets' proxy descriptors alone (standardised over them, as a workspace
fitted without the target would be) and the held-out target's descriptor is searched in it:
the similarity of its nearest *other* known task is what ``recommend()`` would report as
``closest_tasks[0].similarity`` for a new dataset like it. Beside it: the target's
leave-one-task-out index-only weighted τ from ``benchmark/results/zoo_recommend.json``.

This is where ``fennec.recommendation.recommender.LOW_SIMILARITY`` comes from (docs/recommend.md, "How far is
far"). Writes ``benchmark/results/task_similarity.{json,md}``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"


def main() -> int:
    from fennec.recommendation import LOW_SIMILARITY, SAME_DATA_SIMILARITY
    from fennec.task import TaskIndex
    from fennec.workspace import Workspace, zoo_workspace

    ws = Workspace.load(zoo_workspace(progress=True))
    tasks = ws.tasks
    bench = json.loads((RESULTS / "zoo_recommend.json").read_text(encoding="utf-8"))
    rows = []
    for target in tasks.task_ids:
        others = [t for t in tasks.task_ids if t != target]
        held_out = TaskIndex(others, np.stack([tasks.descriptor(t) for t in others]), proxy=tasks.proxy)
        (nearest, similarity), = held_out.search(tasks.descriptor(target), k=1)
        tau = bench["per_target"].get(target, {}).get("fennec-index", {}).get("weighted_tau")
        rows.append({"target": target, "nearest_other": nearest, "similarity": round(float(similarity), 4),
                     "index_weighted_tau": None if tau is None else round(tau, 3)})
    rows.sort(key=lambda r: -r["similarity"])

    def mean_tau(selected: list[dict]) -> float | None:
        taus = [r["index_weighted_tau"] for r in selected if r["index_weighted_tau"] is not None]
        return round(float(np.mean(taus)), 3) if taus else None

    near = [r for r in rows if r["similarity"] >= LOW_SIMILARITY]
    far = [r for r in rows if r["similarity"] < LOW_SIMILARITY]
    result = {"generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "low_similarity": LOW_SIMILARITY, "same_data_similarity": SAME_DATA_SIMILARITY, "rows": rows,
              "near": {"n": len(near), "mean_index_weighted_tau": mean_tau(near)},
              "far": {"n": len(far), "mean_index_weighted_tau": mean_tau(far)}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_similarity.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    lines = ["# Closest known task against ranking quality (zoo, leave-one-task-out)", "",
             f"Generated {result['generated_utc']} by `benchmark/task_similarity.py`. Similarity: cosine of the "
             "standardised proxy descriptors in a task index of the *other* targets; weighted τ: the target's "
             "index-only ranking in `zoo_recommend.json`.", "",
             "| held-out target | nearest other task | similarity | index-only weighted τ |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['nearest_other']} | {r['similarity']:.3f} | {r['index_weighted_tau']} |"
              for r in rows]
    lines += ["", f"Similarity ≥ {LOW_SIMILARITY} (`LOW_SIMILARITY`): {len(near)} targets, mean weighted τ "
              f"{result['near']['mean_index_weighted_tau']}; below: {len(far)} targets, mean weighted τ "
              f"{result['far']['mean_index_weighted_tau']}. A closest similarity ≥ {SAME_DATA_SIMILARITY} "
              "(`SAME_DATA_SIMILARITY`) never occurs between distinct targets here.", ""]
    (RESULTS / "task_similarity.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
