"""``fennec bench``: the leave-one-task-out benchmark on the embedded zoo (``--published``: also
the leave-one-model-out cold start on the published tables, from a source checkout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fennec.cli.common import positive_int, show_progress, usable_device

__all__ = ["add_bench", "run_bench"]


def add_bench(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec bench``."""
    b = sub.add_parser("bench", parents=[common], help="leave-one-task-out benchmark on the embedded zoo")
    b.add_argument("--targets", nargs="*", help="zoo targets to hold out (default: all with ground truth)")
    b.add_argument("--out", type=Path, help="results folder (default: benchmark/results in a source checkout, "
                   "else ./fennec-bench)")
    b.add_argument("--max-samples", type=positive_int, help="images sampled per target")
    b.add_argument("--device", type=usable_device, help="device for forward passes and scoring")
    b.add_argument("--threads", type=positive_int, help="torch CPU threads (1 is fastest on a machine shared with "
                   "other jobs)")
    b.add_argument("--published", action="store_true", help="also run the leave-one-model-out cold-start "
                   "benchmark on the published tables (benchmark/published_cold_start.py, source tree only)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``fennec bench`` (``--published``: then the published-tables benchmark)."""
    from fennec.bench import run_benchmark

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    script = _published_script() if args.published else None  # refused before the long run, not after
    kwargs = {k: v for k, v in (("max_samples", args.max_samples), ("out", args.out)) if v is not None}
    report = run_benchmark(targets=args.targets, device=args.device, progress=show_progress(args), **kwargs)
    print(report)
    if script is not None:
        return _bench_published(script, args.out)
    return 0


def _published_script() -> Path:
    """benchmark/published_cold_start.py of the source checkout fennec runs from.

    It stays a benchmark script, not package code: its input, the published fine-tuning tables
    (``../shared/data/transfer-results``), lives beside the checkout and ships with no package.
    """
    from fennec._paths import source_root
    from fennec.errors import WorkspaceError

    root = source_root()
    script = root / "benchmark" / "published_cold_start.py" if root is not None else None
    if script is None or not script.exists():
        raise WorkspaceError(
            "fennec bench --published runs benchmark/published_cold_start.py of fennec's source checkout, on the "
            "published tables beside it; this fennec " + ("is installed, not run from a checkout" if root is None
                                                          else f"runs from {root}, which has no such file")
            + ". Run it from a checkout (`pip install -e .` there), or drop --published.")
    return script


def _bench_published(script: Path, out: Path | None) -> int:
    """Run the published-tables benchmark ``script`` (see :func:`_published_script`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("published_cold_start", script)
    assert spec is not None and spec.loader is not None, script  # a .py file (_published_script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return int(module.main(["--out", str(out)] if out is not None else []) or 0)
