"""A fitted workspace, loaded (:class:`Workspace`), and the choice of which one ``recommend()``
ranks with: the home's own fit, else the embedded zoo's (:func:`workspace_for`).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec import constants
from fennec.errors import FallbackWarning, WorkspaceError
from fennec.workspace.fitting import results_table
from fennec.workspace.history import load_manifest, reading, space_dir
from fennec.workspace.layout import ZOO_HUB, catalog_path, open_hub_for
from fennec.workspace.zoo import zoo_workspace

if TYPE_CHECKING:
    import torch

    from fennec.catalog import Catalog
    from fennec.hub import Hub
    from fennec.index import ModelIndex
    from fennec.space import TransferSpace
    from fennec.task import TaskIndex

__all__ = ["Workspace", "read_catalog", "workspace_for"]

LOG = logging.getLogger(__name__)


def read_catalog(path: Path) -> Catalog:
    """The catalog at ``path`` for reading: opened as usual (migrated if older), or read-only
    when its storage is (:class:`~fennec.errors.StorageError`)."""
    from fennec.catalog import Catalog
    from fennec.errors import StorageError

    try:
        return Catalog(path)
    except StorageError as e:
        LOG.info("%s; reading the catalog read-only", e)
        return Catalog(path, read_only=True)


def _catalog_has_content(path: Path) -> bool:
    """Whether ``path`` is a catalog with models or results (an empty one, e.g. from an older
    ``fennec models`` that created it, must not change what ``recommend()`` says). A file that
    cannot be read as a catalog counts as content: the fallback warning then tells about it."""
    from fennec.errors import FennecError

    if not path.exists():
        return False
    try:
        with read_catalog(path) as catalog:
            return sum(catalog.count_models().values()) > 0 or bool(catalog.transfer_results())
    except FennecError as e:
        LOG.info("%s: %s", path, e)
        return True


@dataclasses.dataclass
class Workspace:
    """A fitted workspace, loaded: its manifest, space, model index, task index and hub."""

    home: Path
    manifest: dict[str, Any]  # fit.json
    space: TransferSpace
    index: ModelIndex
    tasks: TaskIndex | None  # None: fitted without task descriptors
    hub: Hub
    _results: dict[str, dict[str, float]] | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, home: str | Path) -> Workspace:
        """Load ``home``'s fitted space.

        Raises:
            WorkspaceError: nothing fitted there, or fitted by another fennec version.
        """
        from fennec.index import FORMAT_VERSION as INDEX_FORMAT
        from fennec.index import ModelIndex
        from fennec.space import SPACE_VERSION, TransferSpace
        from fennec.task import DESCRIPTOR_VERSION, TaskIndex

        home = Path(home)
        with reading(home) as folder:  # no fit removes this version while it loads
            if folder is None:
                raise WorkspaceError(f"No fitted transfer space in {home}; run `fennec fit` (after `fennec reindex` "
                                     "and `fennec import-results`), or use the embedded zoo (hub='zoo').")
            manifest = load_manifest(folder, home)
            for key, want in (("space_version", SPACE_VERSION), ("descriptor_version", DESCRIPTOR_VERSION),
                              ("index_format", INDEX_FORMAT)):  # before issue 13 the task index had its own
                if manifest.get(key) != want:
                    raise WorkspaceError(f"{home}: the space was fitted with {key}={manifest.get(key)!r}; this "
                                         f"fennec needs {want!r}. Run `fennec fit` again.")
            space = TransferSpace.load(folder / constants.SPACE_FILE)
            index = ModelIndex.load(folder / constants.MODEL_INDEX_DIR)
            task_dir = folder / constants.TASK_INDEX_DIR
            tasks = TaskIndex.load(task_dir, proxy=manifest["proxy"]) if task_dir.exists() else None
        hub = open_hub_for(manifest.get("hub"))
        return cls(home, manifest, space, index, tasks, hub)

    def results(self) -> dict[str, dict[str, float]]:
        """``{known task: {model: result}}`` of the indexed models (keys as in
        :func:`results_table`), read from the catalog once per workspace."""
        if self._results is None:
            with read_catalog(catalog_path(self.home)) as catalog:
                self._results, _ = results_table(catalog, set(self.index.ids))
        return self._results


#: Loaded workspaces of this process, by folder, with the ``fit.json`` stamp they were loaded at:
#: a service that calls recommend() repeatedly loads the index once and reloads it after a refit.
_LOADED: dict[Path, tuple[tuple[int, int], Workspace]] = {}


def _same_hub(fitted: str, given: str) -> bool:
    """Whether two hub specs name the same hub: equal URLs (up to a trailing slash) or the same folder."""
    if fitted.startswith(("http://", "https://")) or given.startswith(("http://", "https://")):
        return fitted.rstrip("/") == given.rstrip("/")
    return bool(fitted) and Path(fitted).expanduser().resolve() == Path(given).expanduser().resolve()


def _load_cached(home: Path) -> Workspace:
    folder = space_dir(home)
    if folder is None:
        return Workspace.load(home)  # raises the "run fennec fit" error
    try:
        st = (folder / constants.FIT_MANIFEST).stat()
        stamp = (st.st_mtime_ns, st.st_ino)
    except OSError:
        return Workspace.load(home)  # raises the "run fennec fit" error
    hit = _LOADED.get(home.resolve())
    if hit is not None and hit[0] == stamp:
        return hit[1]
    ws = Workspace.load(home)
    _LOADED[home.resolve()] = (stamp, ws)
    return ws


def workspace_for(hub: str | None, home: str | Path | None, *, progress: bool,
                  device: str | torch.device | None) -> Workspace:
    """The workspace ``recommend(hub=, home=)`` ranks with.

    ``hub`` means what it means for :func:`fennec.fit`: ``"zoo"`` is the embedded zoo's workspace
    (built in ``home`` when given); a folder or URL is the workspace in ``home`` (or
    ``FENNEC_HOME``), which must have been fitted with that hub; None is the workspace in
    ``home``, falling back to the embedded zoo when nothing is fitted in ``FENNEC_HOME``.

    Raises:
        WorkspaceError: nothing fitted there, or fitted with another hub than ``hub``.
    """
    if hub == ZOO_HUB:
        return _load_cached(zoo_workspace(home, progress=progress, device=device))
    if hub is not None:
        where = Path(home) if home is not None else constants.fennec_home()
        ws = _load_cached(where)
        fitted = ws.manifest.get("hub") or ""
        if not _same_hub(fitted, hub):
            shown = repr(fitted) if fitted else "the environment's hub (HF_ENDPOINT / FENNEC_LOCAL_HUB)"
            raise WorkspaceError(
                f"hub={hub!r}, but the workspace in {where} was fitted with {shown}: its models, proxy and known "
                f"tasks come from that hub. Leave hub unset to rank them, or fit a workspace for {hub!r} "
                f"(`fennec reindex --hub {hub}`, `fennec import-results`, `fennec fit --hub {hub}`) and pass "
                "its folder as home=.")
        return ws
    home = Path(home) if home is not None else constants.fennec_home()
    if space_dir(home) is not None:  # also a fit interrupted while replacing an older layout
        return _load_cached(home)
    if home == constants.fennec_home():
        if _catalog_has_content(catalog_path(home)):
            warnings.warn(f"{home} has a catalog but no fitted transfer space, so the embedded zoo's models are "
                          "ranked instead of yours. Run `fennec fit` (after `fennec import-results`) to rank the "
                          "catalog's models, or pass hub='zoo' to use the zoo on purpose.", FallbackWarning,
                          stacklevel=3)
        else:
            LOG.info("No space fitted in %s: using the embedded zoo", home)
        return _load_cached(zoo_workspace(None, progress=progress, device=device))
    return Workspace.load(home)  # raises the "run fennec fit" error
