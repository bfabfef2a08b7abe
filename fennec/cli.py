"""The ``fennec`` command: a thin layer over the library.

Subcommands:

- ``fennec reindex``: bring the catalog up to date with the Hub (or a
  local folder hub): ``--limit``, ``--since``, ``--dry-run``, ``--hub``, ``--every 6h``.
- ``fennec models``: list and search the catalog.
- ``fennec import-results``: import the published transfer-result tables shipped with fennec
  (models under their Hub ids), or tables given as paths, or the zoo's ground truth.
- ``fennec fit``: fit the transfer space from the catalog and rebuild the model and task indexes.
- ``fennec init``: build the workspace for a Hub in one resumable command (reindex a scope,
  import the shipped published history, describe its tasks, fit; a plan and estimate first).
- ``fennec recommend DATASET``: the ranked models for a dataset (``--json`` for machines).
- ``fennec bench``: the leave-one-task-out benchmark on the embedded zoo (``--published``: also
  leave-one-model-out cold start on the published tables).
- ``fennec catalog check`` / ``fennec catalog repair``: check a catalog file (read-only), or
  copy what SQLite can still read of a damaged one into a new catalog, keeping the damaged
  file beside it.

``reindex`` and ``recommend`` take ``--ray [ADDRESS]`` (or ``FENNEC_RAY_ADDRESS``): their
independent units run as Ray tasks (:mod:`fennec.engine`).

The catalog and the fitted space live in ``FENNEC_HOME`` (``--home``), by default
``$HF_HOME/fennec``. Known errors are printed as one line; exit codes: 0 success, 1 error,
2 usage (a bad flag, or a ``--device`` this machine does not have), 75 another reindex holds
the lock, 130 interrupted. Errors and warnings are printed as ``fennec: error: …`` /
``fennec: warning: …`` lines, in command-line terms (``--split``, not ``split=``); progress
goes to stderr as bars on a terminal and as one line per step otherwise (``--no-progress``:
none).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec import constants
from fennec.engine import RAY_ADDRESS_ENV
from fennec.errors import FennecError, InvalidInputError, ReindexLockedError

if TYPE_CHECKING:
    from fennec.catalog import Catalog, ImportSummary

__all__ = ["main"]

LOG = logging.getLogger("fennec")
EXIT_LOCKED = 75
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def _since(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _device(text: str) -> str:
    """``--device``: refused at once when this machine does not have it (exit code 2)."""
    from fennec.validation import resolve_device

    try:
        resolve_device(text)
    except InvalidInputError as e:
        raise argparse.ArgumentTypeError(_cli_terms(str(e), {"--device"})) from None
    return text


def _version() -> str:
    from fennec import __version__

    return f"fennec {__version__}"


def _ray_flag(parser: argparse.ArgumentParser, units: str) -> None:
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help=f"run {units} as Ray tasks: on the cluster at ADDRESS (HOST:PORT of its head node, "
                             "ray://HOST:PORT, auto), or on a Ray instance started here (no ADDRESS); default: "
                             f"{RAY_ADDRESS_ENV} if set, else in this process. Needs pip install \"fennec[ray]\"")


def _executor(args: argparse.Namespace):
    """The command's executor (:func:`fennec.engine.open_executor`): Ray only when asked for."""
    from fennec.engine import open_executor

    executor = open_executor(args.ray)
    if executor.kind != "local":
        LOG.info("Units run on %s", executor.describe())
    return executor


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p = argparse.ArgumentParser(prog="fennec", description="Recommend Hugging Face vision models "
                                "for your labelled image dataset.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reindex", parents=[common],
                       help="index new and changed Hub models (configs only, no weights)")
    r.add_argument("--hub", help="Hub endpoint URL or a folder of Hub-style repositories "
                   "(default: HF_ENDPOINT, or FENNEC_LOCAL_HUB when HF_HUB_OFFLINE is set)")
    r.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")
    r.add_argument("--limit", type=_positive, help="process at most N models (oldest first)")
    r.add_argument("--since", type=_since, help="list models modified after this date instead "
                   "of the stored watermark (ISO 8601, UTC if no zone)")
    r.add_argument("--dry-run", action="store_true", help="list and count only; write nothing")
    r.add_argument("--every", help="run periodically in the foreground, e.g. 6h, 30m, 1d")
    r.add_argument("--batch-size", type=_positive, default=16, help="models per committed batch")
    r.add_argument("--method", choices=("record", "export"), default="record",
                   help="archi2vec graph capture: the eager recorder (default) or torch.export")
    r.add_argument("--dim", type=_positive, default=256, help="archi2vec vector length")
    r.add_argument("--no-retry-failed", action="store_true", help="do not retry failed models")
    r.add_argument("--rebuild-index", action="store_true", help="re-embed the models embedded by another "
                   "archi2vec version, --dim or --method (after an upgrade)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    _ray_flag(r, "each architecture's embedding")

    m = sub.add_parser("models", parents=[common], help="list and search the catalog")
    m.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")
    m.add_argument("--search", help="substring of the model id")
    m.add_argument("--status", choices=("ok", "unsupported", "failed"))
    m.add_argument("--library", help="transformers, timm, …")
    m.add_argument("--order", choices=("last_modified", "downloads", "likes", "repo_id"),
                   default="last_modified")
    m.add_argument("--limit", type=_positive, default=50)
    m.add_argument("--json", action="store_true", help="one JSON object per line")

    i = sub.add_parser("import-results", parents=[common],
                       help="import transfer-result tables into the catalog")
    i.add_argument("paths", nargs="*", type=Path, help="table JSON files, folders of them, or "
                   "a zoo_ground_truth.json (default: the published tables shipped with fennec, their models "
                   "under Hub ids)")
    i.add_argument("--unconfirmed", action="store_true", help="with the shipped tables: also rename the models "
                   "whose Hub id is unconfirmed (fennec/published/README.md)")
    i.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")

    rec = sub.add_parser("recommend", parents=[common], help="rank models for a labelled image dataset")
    rec.add_argument("dataset", help="Hub dataset id, image folder (one sub-folder per class), parquet "
                     "file/folder or save_to_disk folder")
    rec.add_argument("--top-k", type=_positive, default=5, help="recommendations to show (default 5)")
    rec.add_argument("--candidates", type=_positive, default=20,
                     help="models the index proposes and refinement re-ranks (default 20)")
    rec.add_argument("--no-refine", action="store_true", help="rank by the transfer space only (no forward "
                     "passes through candidate models)")
    rec.add_argument("--metric", help=f"transferability metric for refinement (default: {constants.DEFAULT_METRIC})")
    rec.add_argument("--fusion-weight", type=float, help="weight of the metric in the fused score, 0..1")
    rec.add_argument("--hub", help="as for fit: 'zoo' for the embedded offline zoo, or the folder or endpoint URL "
                     "the workspace in --home was fitted with (default: the workspace in --home / FENNEC_HOME "
                     "with its own hub, else the zoo)")
    rec.add_argument("--home", type=Path, help="a fitted workspace (default: FENNEC_HOME)")
    rec.add_argument("--device", type=_device, help="cuda, cuda:1, cpu … (default: CUDA if available)")
    rec.add_argument("--split", help="dataset split (default: train)")
    rec.add_argument("--config", help="dataset config (Hub datasets)")
    rec.add_argument("--image-column")
    rec.add_argument("--label-column")
    rec.add_argument("--max-samples", type=_positive, help="images sampled, stratified (default: as the "
                     "workspace's known tasks were sampled, 1000)")
    rec.add_argument("--seed", type=_non_negative, help="sampling seed (default: the workspace's, 0)")
    rec.add_argument("--min-per-class", type=_positive, default=2, help="drop classes with fewer images "
                     "(default 2)")
    rec.add_argument("--json", action="store_true", help="print one JSON document")
    rec.add_argument("--no-progress", action="store_true", help="no progress bars")
    _ray_flag(rec, "each candidate's forward passes and score")

    f = sub.add_parser("fit", parents=[common], help="fit the transfer space and rebuild its indexes")
    f.add_argument("--home", type=Path, help="workspace (default: FENNEC_HOME)")
    f.add_argument("--hub", help="where weights and the proxy come from: 'zoo', a folder or an endpoint URL "
                   "(default: the previous fit's)")
    f.add_argument("--proxy", help="proxy model id (default: the previous fit's, else facebook/dinov2-large with "
                   "CUDA, facebook/dinov2-small without; fennec/resnet-proxy-union-long with --hub zoo)")
    f.add_argument("--dim", type=_positive, help="transfer-space dimension (default: the previous fit's, else 6)")
    f.add_argument("--max-samples", type=_positive, help="images per historical task for its descriptor "
                   "(default: the previous fit's, else 1000)")
    f.add_argument("--exclude", nargs="*", help="models never to recommend (default: the previous fit's)")
    f.add_argument("--device", type=_device, help="device for the proxy")
    f.add_argument("--zoo", action="store_true", help="(re)build the embedded zoo's workspace instead (fixed "
                   "settings: only --home, --device and --no-progress apply)")
    f.add_argument("--no-progress", action="store_true", help="no progress bars")

    n = sub.add_parser("init", parents=[common], help="build the workspace for a Hub: reindex, import the shipped "
                       "history, describe its tasks, fit (resumable; says what it will do first)")
    n.add_argument("--hub", help="Hub endpoint URL (default: HF_ENDPOINT, or https://huggingface.co)")
    n.add_argument("--home", type=Path, help="workspace (default: FENNEC_HOME)")
    n.add_argument("--top", type=_non_negative, default=None, help="most-downloaded image classifiers to index "
                   "besides the models with published history (default 200)")
    n.add_argument("--proxy", help="proxy model id (default: the workspace's, else facebook/dinov2-large with CUDA, "
                   "facebook/dinov2-small without)")
    n.add_argument("--device", type=_device, help="device for the proxy")
    n.add_argument("--max-samples", type=_positive, help="images per published task for its descriptor "
                   "(default 1000)")
    n.add_argument("--include-unconfirmed", action="store_true", help="also use Hub ids of the published mapping "
                   "marked unconfirmed")
    n.add_argument("--dry-run", action="store_true", help="print the plan and its estimate; do nothing")
    n.add_argument("--no-progress", action="store_true", help="no progress bars")

    b = sub.add_parser("bench", parents=[common], help="leave-one-task-out benchmark on the embedded zoo")
    b.add_argument("--targets", nargs="*", help="zoo targets to hold out (default: all with ground truth)")
    b.add_argument("--out", type=Path, help="results folder (default: benchmark/results in a source checkout, "
                   "else ./fennec-bench)")
    b.add_argument("--max-samples", type=_positive, help="images sampled per target")
    b.add_argument("--device", type=_device, help="device for forward passes and scoring")
    b.add_argument("--threads", type=_positive, help="torch CPU threads (1 is fastest on a machine shared with "
                   "other jobs)")
    b.add_argument("--published", action="store_true", help="also run the leave-one-model-out cold-start "
                   "benchmark on the published tables (benchmark/published_cold_start.py, source tree only)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")

    c = sub.add_parser("catalog", help="check or repair the catalog file")
    csub = c.add_subparsers(dest="action", required=True)
    for name, text in (("check", "check the catalog (SQLite integrity, schema); changes nothing"),
                       ("repair", "copy what can be read of a damaged catalog into a new one; the damaged "
                        "file is kept beside it as catalog.sqlite.damaged-<time>")):
        a = csub.add_parser(name, parents=[common], help=text, description=text)
        a.add_argument("path", nargs="?", type=Path, help="the catalog file, or its folder (default: "
                       "--home / FENNEC_HOME)")
        a.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")
    return p


def _catalog(home: Path | None):
    from fennec.catalog import Catalog

    home = home or constants.fennec_home()
    return Catalog(home / constants.CATALOG_FILE), home


def _reindex(args: argparse.Namespace) -> int:
    from fennec.hub import open_hub
    from fennec.reindex import Archi2VecEmbedder, parse_duration, reindex, run_every

    interval = parse_duration(args.every) if args.every else None
    hub = open_hub(args.hub)
    executor = _executor(args)
    # on Ray the workers embed, each in its own sandbox: this process starts none
    embedder = Archi2VecEmbedder(dim=args.dim, method=args.method, prestart=executor.kind == "local")
    catalog, home = _catalog(args.home)
    LOG.info("Reindexing from %r into %s", hub, home)

    def once() -> None:
        summary = reindex(hub=hub, catalog=catalog, embedder=embedder,
                          limit=args.limit, since=args.since, dry_run=args.dry_run,
                          batch_size=args.batch_size, retry_failed=not args.no_retry_failed,
                          rebuild_index=args.rebuild_index,
                          progress=_progress(args), executor=executor)
        print(summary.line(), flush=True)
        for repo_id, error in summary.failures[:20]:
            print(f"  failed: {repo_id}: {error.splitlines()[0][:200]}", flush=True)

    try:
        if interval is None:
            once()
        else:
            run_every(interval, once)
    finally:
        catalog.close()
        if hasattr(embedder, "close"):  # stops Archi2VecEmbedder's worker process
            embedder.close()
        executor.close()
    return 0


def _models(args: argparse.Namespace) -> int:
    home = args.home or constants.fennec_home()
    if not (home / constants.CATALOG_FILE).exists():  # read-only: never create an empty catalog
        if not args.json:
            print(f"(no catalog in {home} yet: `fennec reindex` builds it; `fennec recommend` meanwhile ranks "
                  "the embedded demo zoo)")
        return 0
    catalog, _ = _catalog(home)
    with catalog:
        rows = catalog.models(status=args.status, library=args.library, search=args.search,
                              order=args.order, limit=args.limit)
        counts = catalog.count_models()
    if args.json:
        for m in rows:
            print(json.dumps({"repo_id": m.repo_id, "sha": m.sha, "library": m.library,
                              "pipeline_tag": m.pipeline_tag, "family": m.family,
                              "last_modified": m.last_modified.isoformat() if m.last_modified else None,
                              "downloads": m.downloads, "likes": m.likes, "parameters": m.parameters,
                              "status": m.status, "last_error": m.last_error,
                              "has_vector": m.vector is not None}))
        return 0
    width = max([len(m.repo_id) for m in rows] + [8])
    print(f"{'model':<{width}}  {'status':<11}  {'library':<12}  {'family':<12}  {'downloads':>9}  modified")
    for m in rows:
        when = m.last_modified.strftime("%Y-%m-%d") if m.last_modified else "-"
        print(f"{m.repo_id:<{width}}  {m.status:<11}  {(m.library or '-'):<12}  "
              f"{(m.family or '-')[:12]:<12}  {m.downloads:>9}  {when}")
    print(f"({len(rows)} shown; catalog: {counts['ok']} ok, {counts['unsupported']} unsupported, "
          f"{counts['failed']} failed)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from fennec.catalog.importers import import_file, import_folder

    if args.unconfirmed and args.paths:
        raise InvalidInputError("--unconfirmed renames the models of the tables shipped with fennec; it does not "
                                "apply to tables given as paths. Drop it, or drop the paths.")
    catalog, _ = _catalog(args.home)
    with catalog:
        known = {m.repo_id for m in catalog.models(limit=None)}
        imported = []
        if not args.paths:
            imported = catalog.import_shipped_tables(unconfirmed=args.unconfirmed)
            _print_imported(catalog, imported, known)
        for path in args.paths:
            if path.is_dir():
                others = sorted(p.name for p in path.iterdir()
                                if p.suffix != ".json" and not p.name.startswith(".") and p.is_file())
                if others:  # never read: tables are JSON files
                    LOG.warning("Skipped %d file(s) of %s that are not .json tables: %s", len(others), path,
                                ", ".join(others[:10]) + (", …" if len(others) > 10 else ""))
                summaries = import_folder(catalog, path)  # skipped .json files: one warning each
                if not summaries:
                    print(f"{path}: no transfer-result table imported (see the warnings above)")
            else:  # the importer of the file's declared kind or shape, never of its name
                summaries = [import_file(catalog, path)]
            _print_imported(catalog, summaries, known)
            imported += summaries
        _print_matches(catalog, imported, known, shipped=not args.paths)
        if not known:
            print("the catalog has no models yet: results are used for the models `fennec reindex` adds, so run it "
                  "before `fennec fit`")
    return 0


def _print_imported(catalog: Catalog, summaries: list[ImportSummary], known: set[str]) -> None:
    """One line per imported source: its counts, and how many of its models the catalog lacks."""
    for s in summaries:
        models = {r.model for r in catalog.transfer_results(source=s.source_id)}
        unmatched = len(models - known)
        print(f"{s.source_id}: {s.n_results} results, {s.n_tasks} tasks, {s.n_models} models "
              f"({', '.join(s.variants)}; {s.n_skipped} empty cells); {unmatched} of {len(models)} "
              "models match no catalog model")


def _print_matches(catalog: Catalog, summaries: list[ImportSummary], known: set[str], *, shipped: bool) -> None:
    """One line on how many imported models the catalog has, naming a few it has not, and why."""
    models = sorted({r.model for s in summaries for r in catalog.transfer_results(source=s.source_id)})
    if not models:
        return
    unmatched = [m for m in models if m not in known]
    line = f"catalog match: {len(models) - len(unmatched)} of {len(models)} imported models are in the catalog"
    if unmatched:
        line += (f"; {len(unmatched)} are not (e.g. {', '.join(unmatched[:5])}"
                 f"{', …' if len(unmatched) > 5 else ''})")
    print(line)
    if not unmatched:
        return
    if not shipped:
        if all("/" in m for m in unmatched):  # Hub-style ids: `fennec reindex` is what adds them
            return
        print("results count only for models the catalog has, by Hub id; published tables name most models their "
              "own way (resnet50, not timm/resnet50.tv_in1k): `fennec import-results` without a path imports the "
              "tables shipped with fennec with their models renamed to Hub ids (fennec/published/README.md)")
        return
    hub_ids = {h for s in catalog.sources() if s["source_id"] in {x.source_id for x in summaries}
               for h in s["header"].get("model_ids", {}).values()}
    no_id = [m for m in unmatched if m not in hub_ids]
    print(f"{len(unmatched) - len(no_id)} of them are Hub ids the catalog has not indexed (`fennec reindex` adds "
          f"them); {len(no_id)} have no Hub id with the same weights (fennec.published.model_mapping(source) "
          "says why; --unconfirmed also renames those with an unconfirmed one)")


def _progress(args: argparse.Namespace) -> bool:
    """Progress unless --no-progress: bars on a terminal, one line per step otherwise (fennec._progress)."""
    return not getattr(args, "no_progress", False)


def _recommend(args: argparse.Namespace) -> int:
    from fennec.recommendation.options import DEFAULT_METRIC, RefineOptions, SamplingOptions
    from fennec.recommendation.recommender import recommend

    given: dict[str, Any] = {k: v for k, v in (("metric", args.metric or DEFAULT_METRIC),
                                               ("fusion_weight", args.fusion_weight)) if v is not None}
    refine = RefineOptions(**given)
    sampling = SamplingOptions(split=args.split, config=args.config, image_column=args.image_column,
                               label_column=args.label_column, max_samples=args.max_samples, seed=args.seed,
                               min_per_class=args.min_per_class)
    with _executor(args) as executor:
        recs = recommend(args.dataset, top_k=args.top_k, candidates=args.candidates,
                         refine=False if args.no_refine else refine, sampling=sampling, hub=args.hub,
                         home=args.home, device=args.device, progress=_progress(args), executor=executor)
    # the notes come first in both outputs: in this command's terms (``hub='zoo'`` -> ``--hub zoo``)
    recs.notes = [_cli_terms(n, args.cli_flags) for n in recs.notes]
    if recs.workspace.note:
        recs.workspace = dataclasses.replace(recs.workspace, note=_cli_terms(recs.workspace.note, args.cli_flags))
    print(json.dumps(recs.to_dict(), indent=1) if args.json else recs.table())
    return 0


def _fit(args: argparse.Namespace) -> int:
    from fennec.workspace.fitting import fit
    from fennec.workspace.zoo import zoo_workspace

    if args.zoo:
        given = [flag for flag, v in (("--hub", args.hub), ("--proxy", args.proxy), ("--dim", args.dim),
                                      ("--max-samples", args.max_samples), ("--exclude", args.exclude))
                 if v is not None]
        if given:
            raise InvalidInputError(f"fennec fit --zoo builds the embedded zoo with fixed settings; {', '.join(given)} "
                                    "cannot be combined with it. Drop them, or fit your own workspace without --zoo.")
        home = zoo_workspace(args.home, progress=_progress(args), device=args.device)
        print(f"embedded zoo workspace ready: {home}")
        return 0
    summary = fit(home=args.home, hub=args.hub, proxy=args.proxy, dim=args.dim, max_samples=args.max_samples,
                  exclude=args.exclude, device=args.device, progress=_progress(args))
    print(summary.line())
    return 0


def _init(args: argparse.Namespace) -> int:
    from fennec.workspace.hub_init import DEFAULT_TOP, init_workspace

    summary = init_workspace(args.hub, home=args.home, top=DEFAULT_TOP if args.top is None else args.top,
                             proxy=args.proxy, device=args.device, max_samples=args.max_samples,
                             include_unconfirmed=args.include_unconfirmed, dry_run=args.dry_run,
                             progress=_progress(args), announce=lambda line: print(line, flush=True))
    for line in summary.lines():
        print(line, flush=True)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from fennec.bench import run_benchmark

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    script = _published_script() if args.published else None  # refused before the long run, not after
    kwargs = {k: v for k, v in (("max_samples", args.max_samples), ("out", args.out)) if v is not None}
    report = run_benchmark(targets=args.targets, device=args.device, progress=_progress(args), **kwargs)
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


def _catalog_command(args: argparse.Namespace) -> int:
    from fennec.catalog import check_catalog, repair_catalog
    from fennec.errors import CatalogDamagedError

    path = args.path or (args.home or constants.fennec_home())
    if path.is_dir():
        path = path / constants.CATALOG_FILE
    if args.action == "repair":
        print(repair_catalog(path).line())
        return 0
    check = check_catalog(path)
    if not check.ok:
        raise CatalogDamagedError(f"{check.line()}. Run `fennec catalog repair {path}` to copy what can be read into "
                                  "a new catalog (the damaged file is kept beside it).", path=str(path))
    print(check.line())
    return 0


def _storage_or_sqlite_error(error: Exception, command: str) -> str | None:
    """One line for an error of the disk or of SQLite that no fennec error explained: a full
    disk, a read-only or foreign folder, a damaged database; None for any other error."""
    import sqlite3

    from fennec._io import storage_error

    if isinstance(error, OSError):
        converted = storage_error(error, doing=f"running `fennec {command}`")
        return str(converted) if converted is not None else None
    if isinstance(error, sqlite3.DatabaseError):
        return (f"SQLite error: {error}. If it is about the catalog, `fennec catalog check` says what is wrong "
                "with it and `fennec catalog repair` recovers what can be read (the damaged file is kept).")
    return None


# -- messages in command-line terms -------------------------------------------------------

#: ``name=``, ``name='value'``, ``name=value`` in a library message: Python keyword arguments.
_KWARG = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*)=(?:'([^'\s]*)'|\"([^\"\s]*)\"|([\w./:-]*\w))?")
#: A bare argument name with an underscore (``fusion_weight must be …``); not a call or a path.
_NAME = re.compile(r"(?<![\w.=-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w=(.-])")


def _cli_terms(message: str, flags: Collection[str]) -> str:
    """A library message with the keyword arguments that are flags of this command written as
    flags: ``pass split=`` -> ``pass --split``, ``hub='zoo'`` -> ``--hub zoo``, ``device=None`` ->
    ``no --device``, ``refine=False`` -> ``--no-refine``, ``fusion_weight must be`` ->
    ``--fusion-weight must be``. Names that are not flags here are left as they are."""

    def flag(m: re.Match) -> str:
        name = "--" + m.group(1).replace("_", "-")
        value = next((v for v in m.groups()[1:] if v is not None), "")
        if name not in flags:
            negation = "--no-" + name[2:]  # refine=False -> --no-refine
            return negation if value == "False" and negation in flags else m.group(0)
        if value == "None":
            return f"no {name}"
        return f"{name} {value}" if value else name

    def bare(m: re.Match) -> str:
        name = "--" + m.group(1).replace("_", "-")
        return name if name in flags else m.group(0)

    return _NAME.sub(bare, _KWARG.sub(flag, message))


def _one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _Formatter(logging.Formatter):
    """``fennec: warning: <message>`` in command-line terms (with -v: time and logger too)."""

    def __init__(self, flags: Collection[str], verbose: int):
        super().__init__()
        self.flags, self.verbose = flags, verbose

    def format(self, record: logging.LogRecord) -> str:
        message = _cli_terms(record.getMessage(), self.flags)
        if record.exc_info and self.verbose > 1:
            message += "\n" + self.formatException(record.exc_info)
        if self.verbose:
            return f"{self.formatTime(record)} {record.levelname.lower()} {record.name}: {message}"
        return f"fennec: {record.levelname.lower()}: {message}"


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The long options of one subcommand."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for s in subparsers.choices[command]._option_string_actions if s.startswith("--")}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fennec`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    flags = args.cli_flags = _flags(parser, args.command)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(flags, args.verbose))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)])

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # warnings' API
        # One line, no source path: the CLI's reader needs the message, not fennec's file and line.
        print(f"fennec: warning: {_cli_terms(_one_line(message), flags)}", file=sys.stderr, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            commands = {"reindex": _reindex, "models": _models, "import-results": _import, "recommend": _recommend,
                        "fit": _fit, "init": _init, "bench": _bench, "catalog": _catalog_command}
            return commands[args.command](args)
    except ReindexLockedError as e:
        print(f"fennec: {_cli_terms(str(e), flags)}", file=sys.stderr)
        return EXIT_LOCKED
    except (FennecError, FileNotFoundError) as e:
        print(f"fennec: error: {_cli_terms(_one_line(e), flags)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader left (`fennec recommend ... | head`): stop quietly, as Unix tools do, and point
        # stdout at /dev/null so that the interpreter's last flush cannot fail again on exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor (tests, IDEs)
            pass
        return EXIT_BROKEN_PIPE
    except Exception as e:  # a full disk, a read-only folder, a damaged database: one line too
        line = _storage_or_sqlite_error(e, args.command)
        if line is None:
            raise
        LOG.debug("Details", exc_info=True)
        print(f"fennec: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fennec: interrupted; committed batches are kept, the next run resumes", file=sys.stderr)
        return 130
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


if __name__ == "__main__":
    raise SystemExit(main())
