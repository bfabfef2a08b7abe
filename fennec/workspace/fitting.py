"""Fitting a workspace: its catalog's results and models, the known tasks described by the
proxy, the transfer space fitted, and its model and task indexes written as a new version
(:func:`fit`, ``fennec fit``).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec import constants
from fennec._io import save_json_atomic, storage_errors
from fennec.errors import InvalidInputError, WorkspaceError
from fennec.workspace.history import fit_lock, publish, read_manifest, remove_leftovers
from fennec.workspace.layout import ZOO_HUB, catalog_path, open_hub_for, resolve_task_dataset

if TYPE_CHECKING:
    import torch

    from fennec.catalog import Catalog
    from fennec.engine import Executor
    from fennec.hub.protocol import Hub

__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_MAX_SAMPLES",
    "FitSummary",
    "check_device",
    "describe_tasks",
    "fit",
    "fit_locked",
    "model_sides",
    "results_table",
]

LOG = logging.getLogger(__name__)

#: Images sampled from a dataset (stratified) for the proxy and for refinement.
DEFAULT_MAX_SAMPLES = 1000
#: Transfer-space dimension used by :func:`fit`.
DEFAULT_DIM = 6


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


def results_table(catalog: Catalog,
                  models: set[str] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
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


def model_sides(catalog: Catalog) -> dict[str, Any]:
    """:class:`fennec.space.ModelSide` of every indexed (``ok``, with a vector) catalog model."""
    from fennec.space import ModelSide

    out = {}
    rows = [m for m in catalog.models(status="ok", limit=None) if m.vector is not None]
    cards = {m.repo_id: m.card for m in rows}
    for m in rows:
        out[m.repo_id] = ModelSide(model_id=m.repo_id, archi2vec=np.asarray(m.vector, dtype=np.float64),
                                   parameters=m.parameters, family=m.family,
                                   pretraining=",".join(sorted(m.datasets)) or None,
                                   base_models=base_chain(m.repo_id, cards.get), library=cards[m.repo_id].library)
    return out


def base_chain(repo_id: str, card_of: Callable[[str], Any]) -> tuple[str, ...]:
    """The models ``repo_id`` derives from, nearest first: its card's base models, then (through
    the first of them whose card is known) that model's, and so on; at most
    :data:`fennec.hub.card.MAX_BASE_MODELS` entries, cycles cut.

    Args:
        repo_id: the model.
        card_of: a catalog model's :class:`fennec.hub.card.CardMetadata` by id, None if unknown.

    Example:
        >>> from fennec.hub.card import CardMetadata
        >>> cards = {"c": CardMetadata(("b",)), "b": CardMetadata(("a",)), "a": CardMetadata(("c",))}
        >>> base_chain("c", cards.get)
        ('b', 'a')
    """
    from fennec.hub.card import MAX_BASE_MODELS

    chain: list[str] = []
    current = repo_id
    card = card_of(current)
    while card is not None and len(chain) < MAX_BASE_MODELS:
        new = [b for b in card.base_models if b != repo_id and b not in chain]
        chain += new[: MAX_BASE_MODELS - len(chain)]
        card = next((c for c in map(card_of, new) if c is not None), None)
    return tuple(chain)


def _task_datasets(catalog: Catalog, sources: Mapping[str, str]) -> dict[str, Any]:
    """``{task key: TaskData}`` (:class:`fennec.workspace.known_tasks.TaskData`) for the result tasks whose
    catalog metadata names their dataset."""
    from fennec.workspace.known_tasks import TaskData

    meta = {t["task_id"]: t["metadata"] for t in catalog.tasks()}
    out = {}
    for key, source in sources.items():
        task_id = key[len(source) + 1:] if key.startswith(f"{source}/") else key
        data = TaskData.from_metadata(meta.get(task_id))
        if data is not None:
            out[key] = data
    return out


def describe_tasks(task_datasets: Mapping[str, str], *, proxy: str, hub: Hub, max_samples: int = DEFAULT_MAX_SAMPLES,
                   seed: int = 0, device: str | torch.device | None = None, progress: bool = False) -> dict[str, Any]:
    """Proxy descriptors (:class:`fennec.task.TaskDescriptor`) of historical tasks' datasets
    (``{task: dataset}``: ``zoo:<name>``, a path or a Hub id), without a descriptor cache;
    :func:`fennec.workspace.known_tasks.describe_known_tasks` does the work (and :func:`fit` calls it
    with the workspace's cache, and each task's config, split and label column).

    Each dataset is sampled exactly as :func:`recommend` samples a new one (train split,
    ``max_samples``, ``seed``), so old and new descriptors are comparable.
    """
    from fennec.workspace.known_tasks import TaskData, describe_known_tasks

    return describe_known_tasks({t: TaskData(d) for t, d in task_datasets.items()}, proxy=proxy,
                                proxy_sha=hub.fetch(proxy, weights=False).sha, hub=hub, resolve=resolve_task_dataset,
                                max_samples=max_samples, seed=seed, device=device, progress=progress)


def fit(*, home: str | Path | None = None, hub: str | None = None, proxy: str | None = None,
        dim: int | None = None, max_samples: int | None = None, seed: int | None = None,
        exclude: Sequence[str] | None = None, device: str | torch.device | None = None, progress: bool = False,
        executor: Executor | None = None, _extra_manifest: Mapping[str, Any] | None = None) -> FitSummary:
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
        proxy: the proxy model (default: the previous fit's, else the one that fits ``device``,
            :func:`fennec.task.default_proxy`, or :data:`fennec.task.OFFLINE_PROXY` for the zoo).
        dim: transfer-space dimension (default: the previous fit's, else :data:`DEFAULT_DIM`).
        max_samples, seed: how each historical task's dataset is sampled for its descriptor
            (default: the previous fit's, else :data:`DEFAULT_MAX_SAMPLES` and 0);
            :func:`fennec.recommend` samples new datasets the same way.
        exclude: models never to recommend (default: the previous fit's; the proxy is always
            excluded).
        device: for the proxy's forward passes.
        progress: report the long steps on stderr (:mod:`fennec._progress`).
        executor: where the known tasks are described
            (:func:`fennec.workspace.known_tasks.describe_known_tasks`): in this process by
            default, or each dataset as a Ray task (:class:`fennec.engine.RayExecutor`: the
            worker samples it and runs the proxy; the descriptor cache is written here).

    Raises:
        WorkspaceError: no indexed models, or no fine-tuning results for them.
        StorageError: the disk is full or the home is read-only (the previous fit is intact).
        InvalidInputError: the hub does not have the proxy, or ``device`` is not on this machine
            (both before any work).
        EngineError: task descriptions were lost with their Ray workers (the others are cached:
            a rerun describes only those).
    """
    home = Path(home) if home is not None else constants.fennec_home()
    check_device(device)
    with storage_errors(f"fitting {home}", kept="The previous fit and the catalog are intact."), fit_lock(home):
        return fit_locked(home=home, hub=hub, proxy=proxy, dim=dim, max_samples=max_samples, seed=seed,
                    exclude=exclude, device=device, progress=progress, executor=executor,
                    _extra_manifest=_extra_manifest)


def fit_locked(*, home: Path, hub: str | None, proxy: str | None, dim: int | None, max_samples: int | None,
         seed: int | None, exclude: Sequence[str] | None, device: str | torch.device | None, progress: bool,
         _extra_manifest: Mapping[str, Any] | None, executor: Executor | None = None) -> FitSummary:
    """:func:`fit`, with the workspace's fit lock held."""
    from fennec.catalog import Catalog
    from fennec.hub import HfHub
    from fennec.index import FORMAT_VERSION as INDEX_FORMAT
    from fennec.space import SPACE_VERSION, TaskSide, TransferSpace
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY, default_proxy
    from fennec.workspace.known_tasks import DescriptorCache, describe_known_tasks

    t0 = time.perf_counter()
    remove_leftovers(home)
    try:
        previous = read_manifest(home) or {}
    except WorkspaceError as e:  # a damaged fit.json: this fit replaces it
        LOG.warning("%s Fitting with the settings given and the defaults.", e)
        previous = {}
    hub_spec = hub if hub is not None else previous.get("hub", "")
    proxy = proxy or previous.get("proxy") or (OFFLINE_PROXY if hub_spec == ZOO_HUB else default_proxy(device))
    dim = dim if dim is not None else previous.get("dim", DEFAULT_DIM)
    max_samples = max_samples if max_samples is not None else previous.get("max_samples", DEFAULT_MAX_SAMPLES)
    seed = seed if seed is not None else previous.get("seed", 0)
    if exclude is None:  # the previous fit's exclusions, less its proxy (unless it is still the proxy)
        exclude = [m for m in previous.get("excluded", []) if m != previous.get("proxy")]
    hub_obj = open_hub_for(hub_spec)
    with Catalog(catalog_path(home)) as catalog:
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
    proxy_sha = _check_proxy(hub_obj, proxy, hub_spec)  # before the long steps: every task and query uses it
    described = describe_known_tasks(
        datasets, proxy=proxy, proxy_sha=proxy_sha, hub=hub_obj, resolve=resolve_task_dataset,
        dataset_hub=hub_obj if isinstance(hub_obj, HfHub) else None, max_samples=max_samples, seed=seed,
        device=device, cache=DescriptorCache(home / constants.DESCRIPTORS_DIR), progress=progress,
        executor=executor) if datasets else {}
    task_sides = {t: TaskSide(task_id=t, descriptor=d.vector, n_classes=d.n_classes, n_samples=d.n_samples)
                  for t, d in described.items()}
    space = TransferSpace(dim=dim, seed=seed).fit(results, models=sides, tasks=task_sides)
    ids = sorted(sides)
    vectors = space.model_vectors([sides[m] for m in ids]).astype(np.float32)

    tmp = Path(tempfile.mkdtemp(prefix=f".{constants.SPACE_LINK}.", suffix=".tmp", dir=home))
    try:
        _write_space(tmp, space=space, ids=ids, vectors=vectors, described=described, proxy=proxy, home=home)
        history = {m for row in results.values() for m in row}
        manifest = {
            "space_version": SPACE_VERSION, "descriptor_version": DESCRIPTOR_VERSION,
            "index_format": INDEX_FORMAT, "hub": hub_spec,
            "proxy": proxy, "proxy_sha": proxy_sha, "dim": dim, "seed": seed, "max_samples": max_samples,
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "n_models": len(ids), "n_with_history": len(history & set(ids)), "n_tasks": len(results),
            "tasks": {t: {"source": sources[t], "dataset": datasets[t].dataset if t in datasets else None,
                          "described": t in described} for t in sorted(results)},
            "excluded": sorted({proxy, *exclude}),
            **(_extra_manifest or {}),
        }
        save_json_atomic(tmp / constants.FIT_MANIFEST, manifest)
        (tmp / constants.READERS_FILE).touch()
        publish(tmp, home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless the fit failed
    summary = FitSummary(home, len(ids), manifest["n_with_history"], len(results), len(described), proxy,
                         time.perf_counter() - t0)
    LOG.info("%s", summary.line())
    return summary


def check_device(device: str | torch.device | None) -> None:
    """A device this machine does not have fails before any work (the metrics' own check)."""
    if device is not None:
        from fennec.validation import resolve_device

        resolve_device(device)


def _check_proxy(hub: Hub, proxy: str, hub_spec: str) -> str:
    """The proxy must be on the hub (its config is fetched, no weights) before anything is
    fitted; returns the commit sha every descriptor of this fit is computed at."""
    from fennec.errors import HubError

    try:
        return hub.fetch(proxy, weights=False).sha
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

    space.save(folder / constants.SPACE_FILE)
    meta = IndexMeta(vectors.shape[1], metric="ip", kind="transfer",
                     embedder_version=_single_version(catalog_path=catalog_path(home)),
                     space_version=SPACE_VERSION)
    ModelIndex.from_vectors(ids, vectors, meta).save(folder / constants.MODEL_INDEX_DIR)
    if described:
        TaskIndex(sorted(described), np.stack([described[t].vector for t in sorted(described)]),
                  proxy=proxy).save(folder / constants.TASK_INDEX_DIR)


def _single_version(*, catalog_path: Path) -> str | None:
    from fennec.catalog import Catalog

    with Catalog(catalog_path) as catalog:
        versions = {m.vector_version for m in catalog.models(status="ok", limit=None) if m.vector is not None}
    return versions.pop() if len(versions) == 1 else None
