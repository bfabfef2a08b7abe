"""Workspaces: the catalog and the fitted transfer space that ``fennec.recommend()`` ranks with.

A *workspace* is a folder holding the catalog (``catalog.sqlite``, written by
``fennec reindex`` and ``fennec import-results``), the archi2vec index, and the fitted space
(``space/``, written by :func:`fit` / ``fennec fit``: the transfer space, the FAISS index of
model vectors, the task index of historical descriptors and ``fit.json``). Two kinds exist:

- ``FENNEC_HOME`` (default ``$HF_HOME/fennec``): your catalog of Hub models;
- the **embedded zoo** (``FENNEC_HOME/zoo``): built on first use, with no network, from the
  zoo that ships with fennec (its models, their ground truth and the targets' training
  splits: package data in a wheel, ``zoo/`` in a source checkout), and refitted
  when either changes (:func:`zoo_workspace`). It is what ``recommend()`` uses when no space
  has been fitted in ``FENNEC_HOME``.

Each fit is written to a new folder ``.space.v<N>`` and published by atomically replacing
the symbolic link ``space`` with one to it. A reader holds a shared lock on the version it
loads (its ``.readers`` file), so a fit never deletes a version being read: older versions
are removed by the fit that replaces them, or by a later one when a reader still held them.
A killed fit leaves only ``.space.*.tmp`` folders, removed by the next fit of that home
(which holds the home's fit lock, so no live fit owns them). A read-only home that is
fitted can still be read (``recommend``).

Example:
    >>> from fennec.workspace import zoo_workspace, Workspace
    >>> ws = Workspace.load(zoo_workspace())   # doctest: +SKIP
    >>> len(ws.index)                          # doctest: +SKIP
    36
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fennec import _paths, _progress, constants
from fennec._files import file_lock, save_json_atomic, sha256_file, storage_errors
from fennec.errors import FallbackWarning, InvalidInputError, WorkspaceError

__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_MAX_SAMPLES",
    "FitSummary",
    "Workspace",
    "describe_tasks",
    "fit",
    "model_sides",
    "results_table",
    "zoo_dir",
    "zoo_workspace",
]

LOG = logging.getLogger(__name__)

#: Images sampled from a dataset (stratified) for the proxy and for refinement.
DEFAULT_MAX_SAMPLES = 1000
#: Transfer-space dimension used by :func:`fit`.
DEFAULT_DIM = 6
ZOO_HUB = "zoo"
_SPACE_DIR = "space"
_MANIFEST = "fit.json"
#: In each fitted version: the file readers hold a shared lock on while they load it.
_READERS = ".readers"
#: Fitted versions: ``.space.v<N>``; the link ``space`` names the current one.
_VERSION = re.compile(r"^\.space\.v(\d+)$")
_ZOO_TASK_PREFIX = "zoo:"


# -- where things are ------------------------------------------------------------------


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
            f"No embedded zoo at {root} (expected {root / 'hub'} and {root / 'datasets'}). {fix}; or fit your own "
            "workspace with `fennec reindex` + `fennec fit`.")
    return root


def _is_zoo(root: Path) -> bool:
    return (root / "hub").is_dir() and (root / "datasets").is_dir()


def _zoo_ground_truth() -> Path:
    """The zoo's fine-tuning ground truth: ``<zoo>/ground_truth.json`` if the zoo carries one
    (the packaged zoo, or a custom zoo in ``FENNEC_ZOO``), else, in a source checkout only,
    the benchmark's ``benchmark/results/zoo_ground_truth.json``."""
    own = zoo_dir() / "ground_truth.json"
    root = _paths.source_root()
    return root / _paths.ZOO_GROUND_TRUTH if not own.exists() and root is not None else own


def _resolve_task_dataset(spec: str) -> str:
    """A task's dataset as stored in the catalog (``zoo:<name>`` or a path / Hub id)."""
    if spec.startswith(_ZOO_TASK_PREFIX):
        return str(zoo_dir() / "datasets" / spec[len(_ZOO_TASK_PREFIX):])
    return spec


def _open_hub(spec: str) -> Any:
    from fennec.hub import open_hub

    return open_hub(str(zoo_dir() / "hub")) if spec == ZOO_HUB else open_hub(spec)


# -- fitting ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitSummary:
    """What :func:`fit` wrote.

    Attributes:
        home: the workspace.
        n_models: models in the transfer index (candidates).
        n_with_history: of those, models with fine-tuning results (the rest are cold-started).
        n_tasks: historical tasks with results used for the fit.
        n_described: of those, tasks with a proxy descriptor (usable as evidence).
        proxy: the proxy model.
        seconds: wall time.
    """

    home: Path
    n_models: int
    n_with_history: int
    n_tasks: int
    n_described: int
    proxy: str
    seconds: float

    def line(self) -> str:
        return (f"fitted {self.home}: {self.n_models} models ({self.n_with_history} with history, "
                f"{self.n_models - self.n_with_history} cold-started), {self.n_tasks} tasks "
                f"({self.n_described} described by {self.proxy}) in {self.seconds:.1f} s")


def results_table(catalog: Any, models: set[str] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The catalog's fine-tuning results as ``{task: {model: value}}`` and ``{task: source}``.

    One variant per source: ``seed0`` for the zoo ground truth, ``results`` (the main table)
    for published tables. Published tasks are keyed ``<source>/<task>`` because tables that
    share a dataset name come from different fine-tuning protocols. Only models in
    ``models`` are kept (the catalog's indexed models: a result of a model fennec cannot
    recommend teaches the space nothing it can use).
    """
    table: dict[str, dict[str, float]] = {}
    source_of: dict[str, str] = {}
    for r in catalog.transfer_results():
        if r.variant not in ("seed0", "results"):
            continue
        if models is not None and r.model not in models:
            continue
        key = r.task_id if r.variant == "seed0" else f"{r.source_id}/{r.task_id}"
        table.setdefault(key, {})[r.model] = float(r.value)
        source_of[key] = r.source_id
    return table, source_of


def model_sides(catalog: Any) -> dict[str, Any]:
    """:class:`fennec.space.ModelSide` of every indexed (``ok``, with a vector) catalog model."""
    from fennec.space import ModelSide

    out = {}
    for m in catalog.models(status="ok", limit=None):
        if m.vector is None:
            continue
        out[m.repo_id] = ModelSide(model_id=m.repo_id, archi2vec=np.asarray(m.vector, dtype=np.float64),
                                   parameters=m.parameters, family=m.family,
                                   pretraining=",".join(sorted(m.datasets)) or None)
    return out


def _task_datasets(catalog: Any, sources: Mapping[str, str]) -> dict[str, str]:
    """``{task key: dataset}`` for the result tasks whose catalog metadata names their dataset."""
    meta = {t["task_id"]: t["metadata"] for t in catalog.tasks()}
    out = {}
    for key, source in sources.items():
        task_id = key[len(source) + 1:] if key.startswith(f"{source}/") else key
        dataset = meta.get(task_id, {}).get("dataset")
        if isinstance(dataset, str):
            out[key] = dataset
    return out


def describe_tasks(task_datasets: Mapping[str, str], *, proxy: str, hub: Any, max_samples: int = DEFAULT_MAX_SAMPLES,
                   seed: int = 0, device: Any = None, cache: Any = None, progress: bool = False) -> dict[str, Any]:
    """Proxy descriptors (:class:`fennec.task.TaskDescriptor`) of historical tasks' datasets.

    Each dataset is sampled exactly as :func:`recommend` samples a new one (train split,
    ``max_samples``, ``seed``), so old and new descriptors are comparable.
    """
    from fennec.data import load_sample
    from fennec.task import task_descriptor

    out = {}
    items = sorted(task_datasets.items())
    bar = _progress.bar(total=len(items), desc="describing known tasks", unit="tasks", enabled=progress)
    try:
        for task, spec in items:
            sample = load_sample(_resolve_task_dataset(spec), max_samples=max_samples, seed=seed)
            out[task] = task_descriptor(sample, proxy=proxy, hub=hub, device=device, cache=cache)
            bar.update(1)
    finally:
        bar.close()
    return out


def fit(*, home: str | Path | None = None, hub: str | None = None, proxy: str | None = None,
        dim: int | None = None, max_samples: int | None = None, seed: int | None = None,
        exclude: Sequence[str] | None = None, device: Any = None, progress: bool = False,
        _extra_manifest: Mapping[str, Any] | None = None) -> FitSummary:
    """Fit the transfer space of a workspace and rebuild its model and task indexes.

    Reads the workspace catalog (models and their archi2vec vectors from ``fennec reindex``,
    fine-tuning results from ``fennec import-results``), describes every historical task
    whose dataset is known with the proxy, fits :class:`fennec.space.TransferSpace`, places
    every indexed model in it (learned from history, or cold-started from its architecture
    and metadata), and writes ``space/`` atomically (a crash keeps the previous fit).

    Args:
        home: the workspace (default ``FENNEC_HOME``).
        hub: where model weights and the proxy come from: ``"zoo"``, a folder, or an endpoint
            URL (default: the previous fit's, else the environment's, see
            :func:`fennec.hub.open_hub`).
        proxy: the proxy model (default: the previous fit's, else :data:`fennec.task.ONLINE_PROXY`,
            or :data:`fennec.task.OFFLINE_PROXY` for the zoo).
        dim: transfer-space dimension (default: the previous fit's, else :data:`DEFAULT_DIM`).
        max_samples, seed: how each historical task's dataset is sampled for its descriptor
            (default: the previous fit's, else :data:`DEFAULT_MAX_SAMPLES` and 0);
            :func:`fennec.recommend` samples new datasets the same way.
        exclude: models never to recommend (default: the previous fit's; the proxy is always
            excluded).
        device: for the proxy's forward passes.
        progress: report the long steps on stderr (:mod:`fennec._progress`).

    Raises:
        WorkspaceError: no indexed models, or no fine-tuning results for them.
        StorageError: the disk is full or the home is read-only (the previous fit is intact).
        InvalidInputError: the hub does not have the proxy, or ``device`` is not on this machine
            (both before any work).
    """
    home = Path(home) if home is not None else constants.fennec_home()
    _check_device(device)
    with storage_errors(f"fitting {home}", kept="The previous fit and the catalog are intact."), _fit_lock(home):
        return _fit(home=home, hub=hub, proxy=proxy, dim=dim, max_samples=max_samples, seed=seed,
                    exclude=exclude, device=device, progress=progress, _extra_manifest=_extra_manifest)


def _fit_lock(home: Path) -> Any:
    """Fits of one workspace (and builds of the zoo) run one at a time, across processes."""
    home.mkdir(parents=True, exist_ok=True)
    return file_lock(home / ".fit.lock", waiting=f"Waiting for another fennec fit of {home} to finish")


def _fit(*, home: Path, hub: str | None, proxy: str | None, dim: int | None, max_samples: int | None,
         seed: int | None, exclude: Sequence[str] | None, device: Any, progress: bool,
         _extra_manifest: Mapping[str, Any] | None) -> FitSummary:
    """:func:`fit`, with the workspace's fit lock held."""
    from fennec.catalog import Catalog
    from fennec.space import SPACE_VERSION, TaskSide, TransferSpace
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY, ONLINE_PROXY

    t0 = time.perf_counter()
    _remove_leftovers(home)
    try:
        previous = _read_manifest(home) or {}
    except WorkspaceError as e:  # a damaged fit.json: this fit replaces it
        LOG.warning("%s Fitting with the settings given and the defaults.", e)
        previous = {}
    hub_spec = hub if hub is not None else previous.get("hub", "")
    proxy = proxy or previous.get("proxy") or (OFFLINE_PROXY if hub_spec == ZOO_HUB else ONLINE_PROXY)
    dim = dim if dim is not None else previous.get("dim", DEFAULT_DIM)
    max_samples = max_samples if max_samples is not None else previous.get("max_samples", DEFAULT_MAX_SAMPLES)
    seed = seed if seed is not None else previous.get("seed", 0)
    if exclude is None:  # the previous fit's exclusions, less its proxy (unless it is still the proxy)
        exclude = [m for m in previous.get("excluded", []) if m != previous.get("proxy")]
    hub_obj = _open_hub(hub_spec) if hub_spec else _open_hub_env()
    with Catalog(home / "catalog.sqlite") as catalog:
        sides = model_sides(catalog)
        for m in {proxy, *exclude}:
            sides.pop(m, None)
        if not sides:
            raise WorkspaceError(f"{home}: the catalog has no indexed models; run `fennec reindex` first "
                                 "(or `fennec reindex --hub zoo/hub` for the offline zoo).")
        results, sources = results_table(catalog, set(sides))
        if not results:
            raise WorkspaceError(
                f"{home}: none of the catalog's {len(sides)} models has fine-tuning results to learn from; import "
                "some with `fennec import-results` (published tables whose models are in the catalog, or the zoo "
                "ground truth).")
        datasets = _task_datasets(catalog, sources)
    _check_proxy(hub_obj, proxy, hub_spec)  # before the long steps: every task and query goes through it
    described = describe_tasks(datasets, proxy=proxy, hub=hub_obj, max_samples=max_samples, seed=seed,
                               device=device, progress=progress) if datasets else {}
    task_sides = {t: TaskSide(task_id=t, descriptor=d.vector, n_classes=d.n_classes, n_samples=d.n_samples)
                  for t, d in described.items()}
    space = TransferSpace(dim=dim, seed=seed).fit(results, models=sides, tasks=task_sides)
    ids = sorted(sides)
    vectors = space.model_vectors([sides[m] for m in ids]).astype(np.float32)
    proxy_sha = next(iter(described.values())).proxy_sha if described else None

    tmp = Path(tempfile.mkdtemp(prefix=f".{_SPACE_DIR}.", suffix=".tmp", dir=home))
    try:
        _write_space(tmp, space=space, ids=ids, vectors=vectors, described=described, proxy=proxy, home=home)
        history = {m for row in results.values() for m in row}
        manifest = {
            "space_version": SPACE_VERSION, "descriptor_version": DESCRIPTOR_VERSION, "hub": hub_spec,
            "proxy": proxy, "proxy_sha": proxy_sha, "dim": dim, "seed": seed, "max_samples": max_samples,
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "n_models": len(ids), "n_with_history": len(history & set(ids)), "n_tasks": len(results),
            "tasks": {t: {"source": sources[t], "dataset": datasets.get(t)} for t in sorted(results)},
            "excluded": sorted({proxy, *exclude}),
            **(_extra_manifest or {}),
        }
        save_json_atomic(tmp / _MANIFEST, manifest)
        (tmp / _READERS).touch()
        _publish(tmp, home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless the fit failed
    summary = FitSummary(home, len(ids), manifest["n_with_history"], len(results), len(described), proxy,
                         time.perf_counter() - t0)
    LOG.info("%s", summary.line())
    return summary


def _check_device(device: Any) -> None:
    """A device this machine does not have fails before any work (the metrics' own check)."""
    if device is not None:
        from fennec.metrics._validation import resolve_device

        resolve_device(device)


def _check_proxy(hub: Any, proxy: str, hub_spec: str) -> None:
    """The proxy must be on the hub (its config is fetched, no weights) before anything is fitted."""
    from fennec.errors import HubError

    try:
        hub.fetch(proxy, weights=False)
    except HubError as e:
        where = f"the hub {hub_spec!r}" if hub_spec else "the hub (HF_ENDPOINT / FENNEC_LOCAL_HUB)"
        raise InvalidInputError(
            f"The proxy {proxy!r} cannot be fetched from {where}: {e} Choose a model that hub has with "
            "proxy= (it embeds every task; the zoo's is fennec/resnet-proxy-union-long).") from e


def _write_space(folder: Path, *, space: Any, ids: list[str], vectors: np.ndarray, described: Mapping[str, Any],
                 proxy: str, home: Path) -> None:
    """The fitted space, its FAISS model index and (with descriptors) the task index, into ``folder``."""
    from fennec.index import IndexMeta, ModelIndex
    from fennec.space import SPACE_VERSION
    from fennec.task import TaskIndex

    space.save(folder / "space.npz")
    meta = IndexMeta(vectors.shape[1], metric="ip", kind="transfer",
                     embedder_version=_single_version(catalog_path=home / "catalog.sqlite"),
                     space_version=SPACE_VERSION)
    ModelIndex.from_vectors(ids, vectors, meta).save(folder / "index")
    if described:
        TaskIndex(sorted(described), np.stack([described[t].vector for t in sorted(described)]),
                  proxy=proxy).save(folder / "tasks")


def _single_version(*, catalog_path: Path) -> str | None:
    from fennec.catalog import Catalog

    with Catalog(catalog_path) as catalog:
        versions = {m.vector_version for m in catalog.models(status="ok", limit=None) if m.vector is not None}
    return versions.pop() if len(versions) == 1 else None


def _versions(home: Path) -> list[tuple[int, Path]]:
    """The fitted versions ``.space.v<N>`` in ``home``, newest first."""
    try:
        entries = list(home.iterdir())
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), p) for p in entries if (m := _VERSION.match(p.name))]
    return sorted(found, reverse=True)


def _space_dir(home: Path) -> Path | None:
    """The folder of ``home``'s current fit, or None if nothing is fitted. Reads only.

    That is the folder the link ``space`` names (or ``space`` itself, as older fennec versions
    wrote it). Without a usable ``space`` (a fit killed while replacing an older layout),
    the newest complete version, else the ``.space.old`` an older fennec's interrupted
    swap left."""
    link = home / _SPACE_DIR
    if (link / _MANIFEST).exists():
        return link.resolve()
    for _, folder in _versions(home):
        if (folder / _MANIFEST).exists():
            return folder
    old = home / f".{_SPACE_DIR}.old"
    return old.resolve() if (old / _MANIFEST).exists() else None


@contextlib.contextmanager
def _reading(home: Path) -> Iterator[Path | None]:
    """The current fit's folder (None: nothing fitted), which no fit deletes while this is open.

    Holds a shared lock on the version's ``.readers`` file (opened read-only, so a read-only
    home can be read). A version that a fit removed between finding and locking it (removal
    renames it first) is looked up again."""
    import fcntl

    for _ in range(10):
        folder = _space_dir(home)
        if folder is None:
            yield None
            return
        try:
            fd = os.open(folder / _READERS, os.O_RDONLY)
        except FileNotFoundError:
            if folder.exists() and not _VERSION.match(folder.name):  # an older fennec's layout: no lock
                yield folder
                return
            continue  # removed meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if (folder / _MANIFEST).exists():
                yield folder
                return
        finally:
            os.close(fd)  # releases the lock
    raise WorkspaceError(f"The fitted space of {home} kept being replaced while it was read; try again.")


def _publish(new: Path, home: Path) -> Path:
    """Make the complete fit in ``new`` the current one; returns its version folder.

    ``new`` becomes ``.space.v<N+1>``, then the link ``space`` is replaced by one to it in a
    single ``rename``: a reader finds the previous fit or this one, never neither. The
    previous versions are removed unless a reader holds them. Fits hold the home's fit lock,
    so versions are numbered without races."""
    n = (_versions(home) or [(0, None)])[0][0] + 1
    link = home / _SPACE_DIR
    # older fennec versions: ``space`` a plain folder, or ``.space.old`` left by a killed swap
    legacy = [p for p in (link, home / f".{_SPACE_DIR}.old") if p.is_dir() and not p.is_symlink()]
    version = home / f".{_SPACE_DIR}.v{n + len(legacy)}"
    new.rename(version)  # first: while ``space`` is moved aside below, readers take the newest version
    for i, folder in enumerate(legacy):
        folder.rename(home / f".{_SPACE_DIR}.v{n + i}")
    pointer = home / f".{_SPACE_DIR}.link.{os.getpid()}.tmp"
    pointer.unlink(missing_ok=True)
    os.symlink(version.name, pointer)
    os.replace(pointer, link)
    old = home / f".{_SPACE_DIR}.old"
    if old.is_symlink():
        old.unlink()
    for _, folder in _versions(home):
        if folder != version:
            _remove_unread(folder)
    return version


def _remove_unread(folder: Path) -> bool:
    """Delete an old version unless a reader holds it; True if deleted. It is renamed first,
    so a reader never finds it half-deleted."""
    import fcntl

    try:
        fd = os.open(folder / _READERS, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # a version without readers' lock (an older fennec's layout)
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                LOG.info("Keeping %s: a reader holds it; the next fit removes it", folder)
                return False
        trash = folder.with_name(f"{folder.name}.{os.getpid()}.trash")
        folder.rename(trash)
    finally:
        if fd is not None:
            os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _remove_leftovers(home: Path) -> None:
    """Remove what killed fits left: ``.space.*.tmp`` folders and links and ``.space.*.trash``
    folders. Called with the home's fit lock held: no live fit owns them."""
    try:
        entries = list(home.iterdir())
    except FileNotFoundError:
        return
    for path in entries:
        if path.name.startswith(f".{_SPACE_DIR}.") and path.name.endswith((".tmp", ".trash")):
            LOG.info("Removing %s, left by a fit that did not finish", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _read_manifest(home: Path) -> dict[str, Any] | None:
    """The current fit's ``fit.json`` (None: nothing fitted).

    Raises:
        WorkspaceError: it is damaged (``fennec fit`` replaces it).
    """
    with _reading(home) as folder:
        if folder is None:
            return None
        return _load_manifest(folder, home)


def _load_manifest(folder: Path, home: Path) -> dict[str, Any]:
    path = folder / _MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
    except (OSError, ValueError) as e:
        raise WorkspaceError(
            f"{path} is damaged ({e}). Run `fennec fit --home {home}` to fit the workspace again (its catalog is "
            "intact; give --hub, --proxy, --dim or --exclude again if the previous fit used others than the "
            "defaults: that file recorded them), or `fennec fit --zoo` for the embedded zoo's workspace.") from e
    return manifest


def _open_hub_env() -> Any:
    from fennec.hub import open_hub

    return open_hub(None)


def zoo_workspace(home: str | Path | None = None, *, progress: bool = False, device: Any = None) -> Path:
    """The embedded zoo's workspace, built or brought up to date (offline, about a minute the
    first time): catalog of the zoo's models (archi2vec vectors), its ground truth, its
    datasets as task descriptors, the fitted space. Later calls only check it.

    Args:
        home: where to keep it (default ``FENNEC_HOME/zoo``).
    """
    zoo = zoo_dir()
    home = Path(home) if home is not None else constants.fennec_home() / "zoo"
    _check_device(device)
    if _zoo_up_to_date(zoo, home):  # reads only: a built zoo workspace on read-only storage is usable
        return home
    with storage_errors(f"building the embedded zoo's workspace in {home}",
                        kept="What was already built there is intact."), _fit_lock(home):
        return _zoo_workspace(zoo, home, progress=progress, device=device)


def _zoo_up_to_date(zoo: Path, home: Path) -> bool:
    """Whether ``home``'s fit is the one :func:`_zoo_workspace` would make now (same zoo,
    ground truth and versions), checked without writing or locking anything. The fit is
    published last, so a fit that matches has its catalog complete."""
    from fennec.space import SPACE_VERSION
    from fennec.task import DESCRIPTOR_VERSION

    truth = _zoo_ground_truth()
    if not truth.exists() or not (home / "catalog.sqlite").exists():
        return False
    try:
        manifest = _read_manifest(home)
    except WorkspaceError:
        return False
    wanted = {"zoo_stamp": _tree_stamp(zoo / "hub"),
              "zoo_datasets_stamp": _tree_stamp(zoo / "datasets", skip_prefix="src-"),
              "zoo_ground_truth_sha256": sha256_file(truth), "space_version": SPACE_VERSION,
              "descriptor_version": DESCRIPTOR_VERSION}
    return manifest is not None and all(manifest.get(k) == v for k, v in wanted.items())


def _read_catalog(path: Path) -> Any:
    """The catalog at ``path`` for reading: opened as usual (migrated if older), or read-only
    when its storage is (:class:`~fennec.errors.StorageError`)."""
    from fennec.catalog import Catalog
    from fennec.errors import StorageError

    try:
        return Catalog(path)
    except StorageError as e:
        LOG.info("%s; reading the catalog read-only", e)
        return Catalog(path, read_only=True)


def _zoo_workspace(zoo: Path, home: Path, *, progress: bool, device: Any) -> Path:
    """:func:`zoo_workspace`, with the workspace's fit lock held."""
    from fennec.catalog import Catalog
    from fennec.hub import open_hub
    from fennec.reindex import Archi2VecEmbedder, reindex
    from fennec.space import SPACE_VERSION
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY

    truth = _zoo_ground_truth()
    if not truth.exists():
        fix = ("rebuild it with `python scripts/build_benchmark.py` (see benchmark/README.md)"
               if truth.parent != zoo else
               "a zoo carries its fine-tuning ground truth as ground_truth.json (the format of "
               "benchmark/results/zoo_ground_truth.json in fennec's source tree)")
        raise WorkspaceError(f"The zoo's ground truth {truth} is missing; {fix}.")
    truth_sha = sha256_file(truth)
    announced = False
    with Catalog(home / "catalog.sqlite") as catalog:
        stamp = _tree_stamp(zoo / "hub")
        if catalog.get_state("zoo_hub_stamp") != stamp:
            _announce_zoo_build(home, progress)
            announced = True
            # Incremental: only models new or changed since the last run are embedded.
            summary = reindex(hub=open_hub(str(zoo / "hub")), catalog=catalog, index_dir=home / "index",
                              embedder=Archi2VecEmbedder(), progress=progress)
            LOG.info("Indexed the embedded zoo's models (archi2vec, no weights): %s", summary.line())
            catalog.set_state("zoo_hub_stamp", stamp)
        if catalog.get_state("zoo_ground_truth_sha256") != truth_sha:
            summary = catalog.import_zoo_ground_truth(truth)
            catalog.set_state("zoo_ground_truth_sha256", truth_sha)
            LOG.info("Imported the zoo ground truth: %d results", summary.n_results)
        # The targets' datasets (not the regenerable src-* pre-training sources): their
        # descriptors are recomputed by the refit below when any of them changes.
        data_stamp = _tree_stamp(zoo / "datasets", skip_prefix="src-")
        if catalog.get_state("zoo_datasets_stamp") != f"{data_stamp}:{truth_sha}":
            for t in sorted({r.task_id for r in catalog.transfer_results(source="zoo_ground_truth")}):
                if (zoo / "datasets" / t).is_dir():
                    catalog.upsert_task(t, kind="zoo", metadata={"dataset": f"{_ZOO_TASK_PREFIX}{t}"})
            catalog.set_state("zoo_datasets_stamp", f"{data_stamp}:{truth_sha}")
    try:
        manifest = _read_manifest(home) or {}
    except WorkspaceError as e:  # a damaged fit.json: refitted below
        LOG.warning("%s Refitting the embedded zoo.", e)
        manifest = {}
    stamps = {"zoo_stamp": stamp, "zoo_datasets_stamp": data_stamp, "zoo_ground_truth_sha256": truth_sha}
    wanted = {**stamps, "space_version": SPACE_VERSION, "descriptor_version": DESCRIPTOR_VERSION}
    if any(manifest.get(k) != v for k, v in wanted.items()):
        if not announced:
            _announce_zoo_build(home, progress)
        _fit(home=home, hub=ZOO_HUB, proxy=OFFLINE_PROXY, dim=DEFAULT_DIM, max_samples=DEFAULT_MAX_SAMPLES,
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


def _catalog_has_content(path: Path) -> bool:
    """Whether ``path`` is a catalog with models or results (an empty one, e.g. from an older
    ``fennec models`` that created it, must not change what ``recommend()`` says). A file that
    cannot be read as a catalog counts as content: the fallback warning then tells about it."""
    from fennec.errors import FennecError

    if not path.exists():
        return False
    try:
        with _read_catalog(path) as catalog:
            return sum(catalog.count_models().values()) > 0 or bool(catalog.transfer_results())
    except FennecError as e:
        LOG.info("%s: %s", path, e)
        return True


# -- the loaded workspace --------------------------------------------------------------


@dataclasses.dataclass
class Workspace:
    """A fitted workspace, loaded: its manifest, space, model index, task index and hub."""

    home: Path
    manifest: dict[str, Any]
    space: Any
    index: Any
    tasks: Any  # TaskIndex or None
    hub: Any
    _results: dict[str, dict[str, float]] | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, home: str | Path) -> Workspace:
        """Load ``home``'s fitted space.

        Raises:
            WorkspaceError: nothing fitted there, or fitted by another fennec version.
        """
        from fennec.index import ModelIndex
        from fennec.space import SPACE_VERSION, TransferSpace
        from fennec.task import DESCRIPTOR_VERSION, TaskIndex

        home = Path(home)
        with _reading(home) as folder:  # no fit removes this version while it loads
            if folder is None:
                raise WorkspaceError(f"No fitted transfer space in {home}; run `fennec fit` (after `fennec reindex` "
                                     "and `fennec import-results`), or use the embedded zoo (hub='zoo').")
            manifest = _load_manifest(folder, home)
            for key, want in (("space_version", SPACE_VERSION), ("descriptor_version", DESCRIPTOR_VERSION)):
                if manifest.get(key) != want:
                    raise WorkspaceError(f"{home}: the space was fitted with {key}={manifest.get(key)!r}; this "
                                         f"fennec needs {want!r}. Run `fennec fit` again.")
            space = TransferSpace.load(folder / "space.npz")
            index = ModelIndex.load(folder / "index")
            tasks = TaskIndex.load(folder / "tasks", proxy=manifest["proxy"]) if (folder / "tasks").exists() else None
        hub = _open_hub(manifest["hub"]) if manifest.get("hub") else _open_hub_env()
        return cls(home, manifest, space, index, tasks, hub)

    def results(self) -> dict[str, dict[str, float]]:
        """``{known task: {model: result}}`` of the indexed models (keys as in
        :func:`results_table`), read from the catalog once per workspace."""
        if self._results is None:
            with _read_catalog(self.home / "catalog.sqlite") as catalog:
                self._results, _ = results_table(catalog, set(self.index.ids))
        return self._results


#: Loaded workspaces of this process, by folder, with the ``fit.json`` stamp they were loaded at:
#: a service that calls recommend() repeatedly loads the index once and reloads it after a refit.
_LOADED: dict[Path, tuple[tuple[int, int], Workspace]] = {}


def _load_cached(home: Path) -> Workspace:
    folder = _space_dir(home)
    try:
        st = (folder / _MANIFEST).stat()  # type: ignore[operator]
        stamp = (st.st_mtime_ns, st.st_ino)
    except (OSError, TypeError):
        return Workspace.load(home)  # raises the "run fennec fit" error
    hit = _LOADED.get(home.resolve())
    if hit is not None and hit[0] == stamp:
        return hit[1]
    ws = Workspace.load(home)
    _LOADED[home.resolve()] = (stamp, ws)
    return ws


def _workspace_for(hub: str | None, home: str | Path | None, *, progress: bool, device: Any) -> Workspace:
    if hub == ZOO_HUB:
        return _load_cached(zoo_workspace(home, progress=progress, device=device))
    if hub is not None:
        raise InvalidInputError(
            f"hub={hub!r}: recommend() ranks the models of a fitted workspace. Use hub='zoo' for the embedded zoo, "
            f"or fit a workspace for that hub first (`fennec reindex --hub {hub}`, `fennec import-results ...`, "
            f"`fennec fit --hub {hub}`) and pass its folder as home=.")
    home = Path(home) if home is not None else constants.fennec_home()
    if _space_dir(home) is not None:  # also a fit interrupted while replacing an older layout
        return _load_cached(home)
    if home == constants.fennec_home():
        if _catalog_has_content(home / "catalog.sqlite"):
            warnings.warn(f"{home} has a catalog but no fitted transfer space, so the embedded zoo's models are "
                          "ranked instead of yours. Run `fennec fit` (after `fennec import-results`) to rank the "
                          "catalog's models, or pass hub='zoo' to use the zoo on purpose.", FallbackWarning,
                          stacklevel=3)
        else:
            LOG.info("No space fitted in %s: using the embedded zoo", home)
        return _load_cached(zoo_workspace(None, progress=progress, device=device))
    return Workspace.load(home)  # raises the "run fennec fit" error
