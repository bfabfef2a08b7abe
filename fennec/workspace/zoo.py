"""The embedded zoo's workspace: built on first use, with no network, from the zoo that ships
with fennec (its models, their ground truth and the targets' training splits: package data in
a wheel, ``zoo/`` in a source checkout), and refitted when either changes (:func:`zoo_workspace`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from fennec import _progress, constants
from fennec._io import sha256_file, storage_errors
from fennec.errors import WorkspaceError
from fennec.workspace.fitting import DEFAULT_DIM, DEFAULT_MAX_SAMPLES, check_device, fit_locked
from fennec.workspace.history import fit_lock, read_manifest
from fennec.workspace.layout import ZOO_HUB, ZOO_TASK_PREFIX, catalog_path, zoo_dir, zoo_ground_truth

if TYPE_CHECKING:
    import torch

__all__ = ["zoo_workspace"]

LOG = logging.getLogger(__name__)


def zoo_workspace(home: str | Path | None = None, *, progress: bool = False,
                  device: str | torch.device | None = None) -> Path:
    """The embedded zoo's workspace, built or brought up to date (offline, about a minute the
    first time): catalog of the zoo's models (archi2vec vectors), its ground truth, its
    datasets as task descriptors, the fitted space. Later calls only check it.

    Args:
        home: where to keep it (default ``FENNEC_HOME/zoo``).
    """
    zoo = zoo_dir()
    home = Path(home) if home is not None else constants.fennec_home() / constants.ZOO_HOME_DIR
    check_device(device)
    if _zoo_up_to_date(zoo, home):  # reads only: a built zoo workspace on read-only storage is usable
        return home
    with storage_errors(f"building the embedded zoo's workspace in {home}",
                        kept="What was already built there is intact."), fit_lock(home):
        return _zoo_workspace(zoo, home, progress=progress, device=device)


def _zoo_up_to_date(zoo: Path, home: Path) -> bool:
    """Whether ``home``'s fit is the one :func:`_zoo_workspace` would make now (same zoo,
    ground truth and versions), checked without writing or locking anything. The fit is
    published last, so a fit that matches has its catalog complete."""
    from fennec.index import FORMAT_VERSION as INDEX_FORMAT
    from fennec.space import SPACE_VERSION
    from fennec.task import DESCRIPTOR_VERSION

    truth = zoo_ground_truth()
    if not truth.exists() or not (catalog_path(home)).exists():
        return False
    try:
        manifest = read_manifest(home)
    except WorkspaceError:
        return False
    wanted = {"zoo_stamp": _tree_stamp(zoo / constants.ZOO_HUB_DIR),
              "zoo_datasets_stamp": _tree_stamp(zoo / constants.ZOO_DATASETS_DIR, skip_prefix="src-"),
              "zoo_ground_truth_sha256": sha256_file(truth), "space_version": SPACE_VERSION,
              "descriptor_version": DESCRIPTOR_VERSION, "index_format": INDEX_FORMAT}
    return manifest is not None and all(manifest.get(k) == v for k, v in wanted.items())


def _zoo_workspace(zoo: Path, home: Path, *, progress: bool, device: str | torch.device | None) -> Path:
    """:func:`zoo_workspace`, with the workspace's fit lock held."""
    from fennec.catalog import Catalog
    from fennec.hub import open_hub
    from fennec.index import FORMAT_VERSION as INDEX_FORMAT
    from fennec.reindex import Archi2VecEmbedder, reindex
    from fennec.space import SPACE_VERSION
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY

    truth = zoo_ground_truth()
    if not truth.exists():
        fix = ("rebuild it with `python scripts/build_benchmark.py` (see benchmark/README.md)"
               if truth.parent != zoo else
               "a zoo carries its fine-tuning ground truth as ground_truth.json (the format of "
               "benchmark/results/zoo_ground_truth.json in fennec's source tree)")
        raise WorkspaceError(f"The zoo's ground truth {truth} is missing; {fix}.")
    truth_sha = sha256_file(truth)
    announced = False
    with Catalog(catalog_path(home)) as catalog:
        stamp = _tree_stamp(zoo / constants.ZOO_HUB_DIR)
        if catalog.get_state("zoo_hub_stamp") != stamp:
            _announce_zoo_build(home, progress)
            announced = True
            # Incremental: only models new or changed since the last run are embedded.
            summary = reindex(hub=open_hub(str(zoo / constants.ZOO_HUB_DIR)), catalog=catalog,
                              embedder=Archi2VecEmbedder(), progress=progress)
            LOG.info("Indexed the embedded zoo's models (archi2vec, no weights): %s", summary.line())
            catalog.set_state("zoo_hub_stamp", stamp)
        if catalog.get_state("zoo_ground_truth_sha256") != truth_sha:
            imported = catalog.import_zoo_ground_truth(truth)
            catalog.set_state("zoo_ground_truth_sha256", truth_sha)
            LOG.info("Imported the zoo ground truth: %d results", imported.n_results)
        # The targets' datasets (not the regenerable src-* pre-training sources): their
        # descriptors are recomputed by the refit below when any of them changes.
        data_stamp = _tree_stamp(zoo / constants.ZOO_DATASETS_DIR, skip_prefix="src-")
        if catalog.get_state("zoo_datasets_stamp") != f"{data_stamp}:{truth_sha}":
            for t in sorted({r.task_id for r in catalog.transfer_results(source="zoo_ground_truth")}):
                if (zoo / constants.ZOO_DATASETS_DIR / t).is_dir():
                    catalog.upsert_task(t, kind="zoo", metadata={"dataset": f"{ZOO_TASK_PREFIX}{t}"})
            catalog.set_state("zoo_datasets_stamp", f"{data_stamp}:{truth_sha}")
    try:
        manifest = read_manifest(home) or {}
    except WorkspaceError as e:  # a damaged fit.json: refitted below
        LOG.warning("%s Refitting the embedded zoo.", e)
        manifest = {}
    stamps = {"zoo_stamp": stamp, "zoo_datasets_stamp": data_stamp, "zoo_ground_truth_sha256": truth_sha}
    wanted = {**stamps, "space_version": SPACE_VERSION, "descriptor_version": DESCRIPTOR_VERSION,
              "index_format": INDEX_FORMAT}
    if any(manifest.get(k) != v for k, v in wanted.items()):
        if not announced:
            _announce_zoo_build(home, progress)
        fit_locked(home=home, hub=ZOO_HUB, proxy=OFFLINE_PROXY, dim=DEFAULT_DIM, max_samples=DEFAULT_MAX_SAMPLES,
             seed=0, exclude=(), device=device, progress=progress, _extra_manifest=stamps)
    return home


def _announce_zoo_build(home: Path, progress: bool) -> None:
    """Say that the embedded zoo's workspace is being built, and how long that usually takes."""
    message = (f"building the embedded demo zoo's workspace in {home} (first use, or the zoo changed): "
               "archi2vec of its model configs, the proxy over its task datasets, the fit. This usually "
               "takes 1-2 minutes on a 2-core CPU; later calls reuse it.")
    LOG.info("%s", message)
    _progress.note(message, enabled=progress)


def _tree_stamp(folder: Path, *, skip_prefix: str | None = None) -> str:
    """A cheap change detector for a folder: sha256 of every file's path, size and mtime
    (top-level entries named ``skip_prefix…`` are left out)."""
    h = hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file())
    if skip_prefix:
        files = (p for p in files if not p.relative_to(folder).parts[0].startswith(skip_prefix))
    for path in sorted(files):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
