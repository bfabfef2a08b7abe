"""``fennec recommend DATASET``: the ranked models for a labelled image dataset."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from fennec import constants
from fennec.cli.common import (
    add_ray_flag,
    cli_terms,
    command_executor,
    non_negative_int,
    positive_int,
    show_progress,
    usable_device,
)

__all__ = ["add_recommend", "run_recommend"]


def add_recommend(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec recommend``."""
    rec = sub.add_parser("recommend", parents=[common], help="rank models for a labelled image dataset")
    rec.add_argument("dataset", help="Hub dataset id, image folder (one sub-folder per class), parquet "
                     "file/folder or save_to_disk folder")
    rec.add_argument("--top-k", type=positive_int, default=5, help="recommendations to show (default 5)")
    rec.add_argument("--candidates", type=positive_int, default=20,
                     help="models the index proposes and refinement re-ranks (default 20)")
    rec.add_argument("--no-refine", action="store_true", help="rank by the transfer space only (no forward "
                     "passes through candidate models)")
    rec.add_argument("--metric", help=f"transferability metric for refinement (default: {constants.DEFAULT_METRIC})")
    rec.add_argument("--fusion-weight", type=float, help="weight of the metric in the fused score, 0..1")
    rec.add_argument("--placement-strength", type=float,
                     help="weight of the task placement against the candidates' metric scores, in observations "
                          "(default 4; inf: the scores do not move the placement, docs/recommend.md)")
    rec.add_argument("--hub", help="as for fit: 'zoo' for the embedded offline zoo, or the folder or endpoint URL "
                     "the workspace in --home was fitted with (default: the workspace in --home / FENNEC_HOME "
                     "with its own hub, else the zoo)")
    rec.add_argument("--home", type=Path, help="a fitted workspace (default: FENNEC_HOME)")
    rec.add_argument("--device", type=usable_device, help="cuda, cuda:1, cpu … (default: CUDA if available)")
    rec.add_argument("--split", help="dataset split (default: train)")
    rec.add_argument("--config", help="dataset config (Hub datasets)")
    rec.add_argument("--image-column")
    rec.add_argument("--label-column")
    rec.add_argument("--max-samples", type=positive_int, help="images sampled, stratified (default: as the "
                     "workspace's known tasks were sampled, 1000)")
    rec.add_argument("--seed", type=non_negative_int, help="sampling seed (default: the workspace's, 0)")
    rec.add_argument("--min-per-class", type=positive_int, default=2, help="drop classes with fewer images "
                     "(default 2)")
    rec.add_argument("--json", action="store_true", help="print one JSON document")
    rec.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_ray_flag(rec, "each candidate's forward passes and score")


def run_recommend(args: argparse.Namespace) -> int:
    """Run ``fennec recommend``: a table, or one JSON document with ``--json``."""
    from fennec.recommendation.options import DEFAULT_METRIC, RefineOptions, SamplingOptions
    from fennec.recommendation.recommender import recommend

    given: dict[str, Any] = {k: v for k, v in (("metric", args.metric or DEFAULT_METRIC),
                                               ("fusion_weight", args.fusion_weight),
                                               ("placement_strength", args.placement_strength)) if v is not None}
    refine = RefineOptions(**given)
    sampling = SamplingOptions(split=args.split, config=args.config, image_column=args.image_column,
                               label_column=args.label_column, max_samples=args.max_samples, seed=args.seed,
                               min_per_class=args.min_per_class)
    with command_executor(args) as executor:
        recs = recommend(args.dataset, top_k=args.top_k, candidates=args.candidates,
                         refine=False if args.no_refine else refine, sampling=sampling, hub=args.hub,
                         home=args.home, device=args.device, progress=show_progress(args), executor=executor)
    # the notes come first in both outputs: in this command's terms (``hub='zoo'`` -> ``--hub zoo``)
    recs.notes = [cli_terms(n, args.cli_flags) for n in recs.notes]
    if recs.workspace.note:
        recs.workspace = dataclasses.replace(recs.workspace, note=cli_terms(recs.workspace.note, args.cli_flags))
    print(json.dumps(recs.to_dict(), indent=1, allow_nan=False) if args.json else recs.table())
    return 0
