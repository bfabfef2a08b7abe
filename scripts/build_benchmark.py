"""Rebuild fennec's offline zoo benchmark from a clean checkout, in order, resumably.

    python scripts/build_benchmark.py [--workers 2] [--max-hours H]

1. ``build_datasets.py --strict`` every source and target dataset; stops on fingerprint drift
2. ``build_zoo.py``             the model zoo and the proxy (skips models already built)
3. ``build_ground_truth.py run`` the fine-tuning job queue (skips finished jobs), then aggregation
4. ``benchmark/zoo_metrics.py``  every transferability metric on every (model, target) vs. the ground truth
5. ``fennec bench --threads 1``   the end-to-end leave-one-task-out benchmark of ``fennec.recommend``

Each step is resumable, so running this again after an interruption continues where it stopped.
Individual steps can be run on their own; see benchmark/README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="processes for the zoo and the job queue (1 thread each)")
    p.add_argument("--max-hours", type=float, default=None, help="stop starting fine-tuning jobs after this long")
    p.add_argument("--skip-datasets", action="store_true", help="datasets are already built")
    args = p.parse_args(argv)
    py = sys.executable
    steps = []
    if not args.skip_datasets:
        steps.append([py, str(SCRIPTS / "build_datasets.py"), "--strict"])  # drift stops the chain
    steps.append([py, str(SCRIPTS / "build_zoo.py"), "--workers", str(args.workers)])
    gt = [py, str(SCRIPTS / "build_ground_truth.py"), "run", "--workers", str(args.workers)]
    if args.max_hours is not None:
        gt += ["--max-hours", str(args.max_hours)]
    steps.append(gt)
    steps.append([py, str(SCRIPTS.parent / "benchmark" / "zoo_metrics.py")])
    steps.append([py, "-m", "fennec.cli", "bench", "--threads", "1"])
    for cmd in steps:
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"step failed with exit status {rc}: {' '.join(cmd)}", file=sys.stderr)
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
