"""Fit time of fennec's transfer space (``fennec.space.TransferSpace.fit``) on larger histories.

The history is synthetic and seeded: a rank-4 matrix of transfer results for ``M`` models on
``T`` tasks, of which each cell is observed with probability 1/2 (the shape of a results table
gathered model by model). For each size the script fits ``TransferSpace()`` with its defaults
``--repeats`` times and reports the median and the largest wall-clock time.

Target (formerly a wall-clock assertion in tests/test_space.py): 200 models on
20 tasks fit in a few seconds, under 10 s even on a loaded 2-core machine.

Run: ``python benchmark/space_fit_time.py [--sizes 200x20 1000x50] [--repeats 3]``.
Results: ``benchmark/results/space_fit_time.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fennec.space import TransferSpace

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 10.0  # at 200 models x 20 tasks


def history(n_models: int, n_tasks: int, *, seed: int = 0) -> dict[str, dict[str, float]]:
    """``{task: {model: result}}``: a seeded rank-4 matrix, each cell observed with p = 1/2."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_models, 4)) @ rng.normal(size=(n_tasks, 4)).T
    seen = rng.random(y.shape) < 0.5
    return {f"t{j:03d}": {f"m{i:04d}": float(y[i, j]) for i in range(n_models) if seen[i, j]}
            for j in range(n_tasks)}


def measure(n_models: int, n_tasks: int, repeats: int) -> dict:
    results = history(n_models, n_tasks)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        TransferSpace().fit(results)
        times.append(time.perf_counter() - start)
    row = {"models": n_models, "tasks": n_tasks,
           "observed": sum(len(r) for r in results.values()), "repeats": repeats,
           "median_s": round(float(np.median(times)), 3), "max_s": round(max(times), 3)}
    print(json.dumps(row), flush=True)
    return row


def _size(text: str) -> tuple[int, int]:
    models, _, tasks = text.partition("x")
    return int(models), int(tasks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=_size, nargs="+", default=[(200, 20), (1000, 50)],
                   help="MODELSxTASKS (default: 200x20 1000x50)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows = [measure(m, t, args.repeats) for m, t in args.sizes]
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.platform(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "target_s_at_200x20": TARGET_S}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "space_fit_time.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# TransferSpace.fit time on synthetic histories", "",
             f"{meta['date']}, {meta['machine']}, {meta['cpus']} CPUs, load average "
             f"{meta['load_average']}. Target: 200 models x 20 tasks under {TARGET_S:g} s.", "",
             "| models | tasks | observed results | median (s) | max (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r['models']} | {r['tasks']} | {r['observed']} | {r['median_s']} | {r['max_s']} |"
              for r in rows]
    (args.out / "space_fit_time.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
