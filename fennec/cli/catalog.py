"""The commands of the model catalog: ``fennec reindex`` (Hub models into the catalog),
``fennec models`` (list and search it), ``fennec import-results`` (transfer-result tables into
it) and ``fennec catalog check`` / ``repair``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from fennec import constants
from fennec.cli.common import (
    LOG,
    add_ray_flag,
    command_executor,
    iso_datetime,
    open_catalog,
    positive_int,
    show_progress,
)
from fennec.errors import InvalidInputError

if TYPE_CHECKING:
    from fennec.catalog import Catalog, ImportSummary

__all__ = ["add_catalog", "add_import", "add_models", "add_reindex", "run_catalog", "run_import", "run_models",
           "run_reindex"]


def add_reindex(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec reindex``."""
    r = sub.add_parser("reindex", parents=[common],
                       help="index new and changed Hub models (configs only, no weights)")
    r.add_argument("--hub", help="Hub endpoint URL or a folder of Hub-style repositories "
                   "(default: HF_ENDPOINT, or FENNEC_LOCAL_HUB when HF_HUB_OFFLINE is set)")
    r.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")
    r.add_argument("--limit", type=positive_int, help="process at most N models (oldest first)")
    r.add_argument("--since", type=iso_datetime, help="list models modified after this date instead "
                   "of the stored watermark (ISO 8601, UTC if no zone)")
    r.add_argument("--dry-run", action="store_true", help="list and count only; write nothing")
    r.add_argument("--every", help="run periodically in the foreground, e.g. 6h, 30m, 1d")
    r.add_argument("--batch-size", type=positive_int, default=16, help="models per committed batch")
    r.add_argument("--method", choices=("record", "export"), default="record",
                   help="archi2vec graph capture: the eager recorder (default) or torch.export")
    r.add_argument("--dim", type=positive_int, default=256, help="archi2vec vector length")
    r.add_argument("--no-retry-failed", action="store_true", help="do not retry failed models")
    r.add_argument("--rebuild-index", action="store_true", help="re-embed the models embedded by another "
                   "archi2vec version, --dim or --method (after an upgrade)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_flag(r, "each architecture's embedding")


def run_reindex(args: argparse.Namespace) -> int:
    """Run ``fennec reindex`` (``--every``: periodically, in the foreground)."""
    from fennec.hub import open_hub
    from fennec.reindex import Archi2VecEmbedder, parse_duration, reindex, run_every

    interval = parse_duration(args.every) if args.every else None
    hub = open_hub(args.hub)
    executor = command_executor(args)
    # on Ray the workers embed, each in its own sandbox: this process starts none
    embedder = Archi2VecEmbedder(dim=args.dim, method=args.method, prestart=executor.kind == "local")
    catalog, home = open_catalog(args.home)
    LOG.info("Reindexing from %r into %s", hub, home)

    def once() -> None:
        summary = reindex(hub=hub, catalog=catalog, embedder=embedder,
                          limit=args.limit, since=args.since, dry_run=args.dry_run,
                          batch_size=args.batch_size, retry_failed=not args.no_retry_failed,
                          rebuild_index=args.rebuild_index,
                          progress=show_progress(args), executor=executor)
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


def add_models(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec models``."""
    m = sub.add_parser("models", parents=[common], help="list and search the catalog")
    m.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")
    m.add_argument("--search", help="substring of the model id")
    m.add_argument("--status", choices=("ok", "unsupported", "failed"))
    m.add_argument("--library", help="transformers, timm, …")
    m.add_argument("--order", choices=("last_modified", "downloads", "likes", "repo_id"),
                   default="last_modified")
    m.add_argument("--limit", type=positive_int, default=50)
    m.add_argument("--json", action="store_true", help="one JSON object per line")


def run_models(args: argparse.Namespace) -> int:
    """Run ``fennec models``: read-only, it never creates a catalog."""
    home = args.home or constants.fennec_home()
    if not (home / constants.CATALOG_FILE).exists():  # read-only: never create an empty catalog
        if not args.json:
            print(f"(no catalog in {home} yet: `fennec reindex` builds it; `fennec recommend` meanwhile ranks "
                  "the embedded demo zoo)")
        return 0
    catalog, _ = open_catalog(home)
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


def add_import(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec import-results``."""
    i = sub.add_parser("import-results", parents=[common],
                       help="import transfer-result tables into the catalog")
    i.add_argument("paths", nargs="*", type=Path, help="table JSON files, folders of them, or "
                   "a zoo_ground_truth.json (default: the published tables shipped with fennec, their models "
                   "under Hub ids)")
    i.add_argument("--unconfirmed", action="store_true", help="with the shipped tables: also rename the models "
                   "whose Hub id is unconfirmed (fennec/published/README.md)")
    i.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")


def run_import(args: argparse.Namespace) -> int:
    """Run ``fennec import-results``: the shipped tables, or the files and folders given."""
    from fennec.catalog.importers import import_file, import_folder

    if args.unconfirmed and args.paths:
        raise InvalidInputError("--unconfirmed renames the models of the tables shipped with fennec; it does not "
                                "apply to tables given as paths. Drop it, or drop the paths.")
    catalog, _ = open_catalog(args.home)
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


def add_catalog(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``fennec catalog check`` and ``fennec catalog repair``."""
    c = sub.add_parser("catalog", help="check or repair the catalog file")
    csub = c.add_subparsers(dest="action", required=True)
    for name, text in (("check", "check the catalog (SQLite integrity, schema); changes nothing"),
                       ("repair", "copy what can be read of a damaged catalog into a new one; the damaged "
                        "file is kept beside it as catalog.sqlite.damaged-<time>")):
        a = csub.add_parser(name, parents=[common], help=text, description=text)
        a.add_argument("path", nargs="?", type=Path, help="the catalog file, or its folder (default: "
                       "--home / FENNEC_HOME)")
        a.add_argument("--home", type=Path, help="catalog folder (default: FENNEC_HOME)")


def run_catalog(args: argparse.Namespace) -> int:
    """Run ``fennec catalog check`` (exit 1 for a damaged catalog) or ``repair``."""
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
