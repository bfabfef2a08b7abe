"""The commands that build a workspace: ``fennec fit`` (the transfer space and its indexes,
from the catalog) and ``fennec init`` (reindex a Hub's scope, import the shipped history,
describe its tasks, fit; resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fennec.cli.common import (
    add_ray_flag,
    command_executor,
    non_negative_int,
    positive_int,
    show_progress,
    usable_device,
)
from fennec.errors import InvalidInputError

__all__ = ["add_fit", "add_init", "run_fit", "run_init"]


def add_fit(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec fit``."""
    f = sub.add_parser("fit", parents=[common], help="fit the transfer space and rebuild its indexes")
    f.add_argument("--home", type=Path, help="workspace (default: FENNEC_HOME)")
    f.add_argument("--hub", help="where weights and the proxy come from: 'zoo', a folder or an endpoint URL "
                   "(default: the previous fit's)")
    f.add_argument("--proxy", help="proxy model id (default: the previous fit's, else facebook/dinov2-large with "
                   "CUDA, facebook/dinov2-small without; fennec/resnet-proxy-union-long with --hub zoo)")
    f.add_argument("--dim", type=positive_int, help="transfer-space dimension (default: the previous fit's, else 6)")
    f.add_argument("--max-samples", type=positive_int, help="images per historical task for its descriptor "
                   "(default: the previous fit's, else 1000)")
    f.add_argument("--exclude", nargs="*", help="models never to recommend (default: the previous fit's)")
    f.add_argument("--device", type=usable_device, help="device for the proxy")
    f.add_argument("--zoo", action="store_true", help="(re)build the embedded zoo's workspace instead (fixed "
                   "settings: only --home, --device and --no-progress apply)")
    f.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_ray_flag(f, "each known task's description (its dataset sampled, the proxy's forward passes)")


def run_fit(args: argparse.Namespace) -> int:
    """Run ``fennec fit`` (``--zoo``: the embedded zoo's workspace)."""
    from fennec.workspace.fitting import fit
    from fennec.workspace.zoo import zoo_workspace

    if args.zoo:
        given = [flag for flag, v in (("--hub", args.hub), ("--proxy", args.proxy), ("--dim", args.dim),
                                      ("--max-samples", args.max_samples), ("--exclude", args.exclude),
                                      ("--ray", args.ray)) if v is not None]
        if given:
            raise InvalidInputError(f"fennec fit --zoo builds the embedded zoo with fixed settings; {', '.join(given)} "
                                    "cannot be combined with it. Drop them, or fit your own workspace without --zoo.")
        home = zoo_workspace(args.home, progress=show_progress(args), device=args.device)
        print(f"embedded zoo workspace ready: {home}")
        return 0
    with command_executor(args) as executor:
        summary = fit(home=args.home, hub=args.hub, proxy=args.proxy, dim=args.dim, max_samples=args.max_samples,
                      exclude=args.exclude, device=args.device, progress=show_progress(args), executor=executor)
    print(summary.line())
    return 0


def add_init(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec init``."""
    n = sub.add_parser("init", parents=[common], help="build the workspace for a Hub: reindex, import the shipped "
                       "history, describe its tasks, fit (resumable; says what it will do first)")
    n.add_argument("--hub", help="Hub endpoint URL (default: HF_ENDPOINT, or https://huggingface.co)")
    n.add_argument("--home", type=Path, help="workspace (default: FENNEC_HOME)")
    n.add_argument("--top", type=non_negative_int, default=None, help="most-downloaded image classifiers to index "
                   "besides the models with published history (default 200)")
    n.add_argument("--proxy", help="proxy model id (default: the workspace's, else facebook/dinov2-large with CUDA, "
                   "facebook/dinov2-small without)")
    n.add_argument("--device", type=usable_device, help="device for the proxy")
    n.add_argument("--max-samples", type=positive_int, help="images per published task for its descriptor "
                   "(default 1000)")
    n.add_argument("--include-unconfirmed", action="store_true", help="also use Hub ids of the published mapping "
                   "marked unconfirmed")
    n.add_argument("--dry-run", action="store_true", help="print the plan and its estimate; do nothing")
    n.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_ray_flag(n, "each architecture's embedding and each known task's description")


def run_init(args: argparse.Namespace) -> int:
    """Run ``fennec init``: the plan first, then each step (resumable)."""
    from fennec.workspace.hub_init import DEFAULT_TOP, init_workspace

    executor = None if args.dry_run else command_executor(args)  # a dry run only plans: no Ray started for it
    try:
        summary = init_workspace(args.hub, home=args.home, top=DEFAULT_TOP if args.top is None else args.top,
                                 proxy=args.proxy, device=args.device, max_samples=args.max_samples,
                                 include_unconfirmed=args.include_unconfirmed, dry_run=args.dry_run,
                                 progress=show_progress(args), announce=lambda line: print(line, flush=True),
                                 executor=executor)
    finally:
        if executor is not None:
            executor.close()
    for line in summary.lines():
        print(line, flush=True)
    return 0
