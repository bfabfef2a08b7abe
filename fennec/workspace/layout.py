"""Where a workspace's things are: its files (named in :mod:`fennec.constants`), the embedded
zoo, and the hub a workspace's ``hub`` setting names.

The layout of a workspace folder (``FENNEC_HOME``, or the embedded zoo's, ``FENNEC_HOME/zoo``)::

    catalog.sqlite       the catalog (fennec reindex, fennec import-results)
    index/               the archi2vec index fennec reindex keeps beside it
    space -> .space.v<N> the current fit (fennec.workspace.history)
    .space.v<N>/         fit.json, space.npz, index/, tasks/, .readers
    .fit.lock            held by the fit (or zoo build) in progress
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fennec import _paths, constants
from fennec.errors import WorkspaceError

if TYPE_CHECKING:
    from fennec.hub import Hub

__all__ = ["ZOO_HUB", "ZOO_TASK_PREFIX", "catalog_path", "open_hub_for", "resolve_task_dataset", "zoo_dir",
           "zoo_ground_truth"]

#: The ``hub`` setting that names the embedded zoo's models.
ZOO_HUB = "zoo"
#: A zoo task's dataset in the catalog: ``zoo:<name>``, a folder of the zoo's ``datasets/``.
ZOO_TASK_PREFIX = "zoo:"


def catalog_path(home: Path) -> Path:
    """The catalog file of the workspace ``home``."""
    return home / constants.CATALOG_FILE


def zoo_dir() -> Path:
    """The embedded zoo: ``FENNEC_ZOO``; else the zoo packaged with fennec (``fennec/_zoo``,
    in a wheel); else ``zoo/`` of the source checkout fennec runs from. An installed fennec
    never looks outside its package.

    Raises:
        WorkspaceError: there is no zoo there.
    """
    env = os.environ.get("FENNEC_ZOO")
    source = _paths.source_root()
    if env:
        root = Path(env).expanduser()
        fix = "Point FENNEC_ZOO at a zoo folder, or unset it to use the zoo that ships with fennec"
    elif source is None or _is_zoo(_paths.PACKAGED_ZOO):
        root = _paths.PACKAGED_ZOO
        fix = ("This fennec was installed without its package data: reinstall it from a wheel or an sdist, "
               "or set FENNEC_ZOO to a zoo folder")
    else:
        root = source / "zoo"
        fix = "Restore zoo/ in this checkout (`git checkout zoo`), or set FENNEC_ZOO to a zoo folder"
    if not _is_zoo(root):
        raise WorkspaceError(
            f"No embedded zoo at {root} (expected {root / constants.ZOO_HUB_DIR} and "
            f"{root / constants.ZOO_DATASETS_DIR}). {fix}; or fit your own "
            "workspace with `fennec reindex` + `fennec fit`.")
    return root


def _is_zoo(root: Path) -> bool:
    return (root / constants.ZOO_HUB_DIR).is_dir() and (root / constants.ZOO_DATASETS_DIR).is_dir()


def zoo_ground_truth() -> Path:
    """The zoo's fine-tuning ground truth: ``<zoo>/ground_truth.json`` if the zoo carries one
    (the packaged zoo, or a custom zoo in ``FENNEC_ZOO``), else, in a source checkout only,
    the benchmark's ``benchmark/results/zoo_ground_truth.json``."""
    own = zoo_dir() / constants.ZOO_GROUND_TRUTH_FILE
    root = _paths.source_root()
    return root / _paths.ZOO_GROUND_TRUTH if not own.exists() and root is not None else own


def resolve_task_dataset(spec: str) -> str:
    """A task's dataset as stored in the catalog (``zoo:<name>`` or a path / Hub id)."""
    if spec.startswith(ZOO_TASK_PREFIX):
        return str(zoo_dir() / constants.ZOO_DATASETS_DIR / spec[len(ZOO_TASK_PREFIX):])
    return spec


def open_hub_for(spec: str | None) -> Hub:
    """The hub a workspace's ``hub`` setting names: ``"zoo"`` (the embedded zoo's models), a
    folder or an endpoint URL (:func:`fennec.hub.open_hub`), or, empty or None, the
    environment's (``HF_ENDPOINT`` / ``FENNEC_LOCAL_HUB``)."""
    from fennec.hub import open_hub

    if not spec:
        return open_hub(None)
    return open_hub(str(zoo_dir() / constants.ZOO_HUB_DIR)) if spec == ZOO_HUB else open_hub(spec)
