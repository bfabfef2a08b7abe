"""Historical tasks described by the proxy, from their datasets, with a descriptor cache.

``fennec fit`` places a new dataset among the historical tasks whose descriptors it knows
(:mod:`fennec.task`). A historical task gets a descriptor when the catalog says where its
images are (:class:`TaskData`, in the task's ``metadata``: a zoo folder, a local dataset, or
a Hub dataset id with its config, split and label column, as the published tables' mapping
gives them). :func:`describe_known_tasks` samples each such dataset exactly as
:func:`fennec.recommend` samples a new one (:func:`fennec.data.load_sample`: stratified,
``max_samples``, ``seed``; a Hub dataset's parquet files over range requests, only the
sampled rows' row groups, never the whole dataset) and runs it through the proxy.

The descriptors of Hub tasks are cached on disk (:class:`DescriptorCache`,
``<workspace>/descriptors/``), keyed by the task's data (dataset, its current commit, config,
split, columns), the proxy and the commit of its weights, the sampling (``max_samples``,
``seed``) and :data:`fennec.task.DESCRIPTOR_VERSION`: a refit, or a fit interrupted after
some tasks, describes only what is not cached yet (one small request per dataset finds its
commit). Local and zoo datasets have no commit and are described again by each fit (their
proxy features are cached by content, :class:`fennec.features.cache.FeatureCache`). Each task's
progress is a line on stderr with its images, classes and seconds.

Each dataset to describe is a unit of an executor (:mod:`fennec.engine`): in this process by
default, a Ray task with ``fennec fit --ray`` / ``fennec init --ray`` (the worker samples the
dataset and runs the proxy; this process keeps the cache and the commit lookups).

A Hub task whose dataset cannot be read (not on that hub, gated, no parquet files, no
usable label column) is skipped with a :class:`~fennec.errors.DatasetWarning` that names
it and why: it still shapes the model vectors through its results, but cannot be evidence
for a new dataset. A local or zoo dataset that cannot be read is an error, as before.

Example:
    >>> data = TaskData("hub:uoft-cs/cifar100", label_column="fine_label")
    >>> data.to_metadata()["dataset"]
    'hub:uoft-cs/cifar100'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from fennec import _progress
from fennec._io import save_json_atomic
from fennec.errors import DatasetWarning, EngineError, FennecError, InvalidInputError

if TYPE_CHECKING:
    from fennec.engine import Executor

__all__ = ["TASK_MEMORY", "DescribedTask", "DescriptorCache", "TaskData", "describe_known_tasks", "describe_unit"]

LOG = logging.getLogger(__name__)

_HUB_PREFIX = "hub:"
#: Bound on a task-metadata string read from the catalog (a dataset id, config, split, column).
_MAX_FIELD = 300


@dataclasses.dataclass(frozen=True)
class TaskData:
    """Where a historical task's labelled images are, and how to read them.

    Attributes:
        dataset: ``zoo:<name>`` (the embedded zoo), a local path, or a Hub dataset id
            (``hub:org/name``, or ``org/name``).
        config, split, label_column, image_column: as for :func:`fennec.data.load_sample`
            (None: its defaults, the ``train`` split and detected columns).
    """

    dataset: str
    config: str | None = None
    split: str | None = None
    label_column: str | None = None
    image_column: str | None = None

    @property
    def on_hub(self) -> bool:
        """Whether the images come from a hub (the dataset is a Hub id, not a folder)."""
        return self.dataset.startswith(_HUB_PREFIX)

    @classmethod
    def from_metadata(cls, metadata: Any) -> TaskData | None:
        """The task data a catalog task's ``metadata`` names (``dataset`` and optional
        ``config``, ``split``, ``label_column``, ``image_column``), or None when it names none
        or names it with values that are not short strings."""
        if not isinstance(metadata, Mapping):
            return None
        fields = {}
        for f in dataclasses.fields(cls):
            value = metadata.get(f.name)
            if value is None:
                continue
            if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
                LOG.warning("Ignoring the task metadata %s=%.80r: expected a string of at most %d characters",
                            f.name, value, _MAX_FIELD)
                return None
            fields[f.name] = value
        return cls(**fields) if "dataset" in fields else None

    def to_metadata(self) -> dict[str, str]:
        """The catalog ``metadata`` fields that name this data (None fields left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def describe(self) -> str:
        """One short phrase: the dataset and what is not the default."""
        extra = [f"{k}={v}" for k, v in self.to_metadata().items() if k != "dataset"]
        return self.dataset + (f" ({', '.join(extra)})" if extra else "")


class DescriptorCache:
    """Task descriptors on disk: one JSON file per (task data, proxy commit, sampling, version).

    The file holds its own key, checked on read: a damaged or mismatching file is ignored
    (logged) and replaced by the next :meth:`put`. Writes are atomic.

    Args:
        root: the folder (``<workspace>/descriptors``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DescriptorCache({str(self.root)!r})"

    @staticmethod
    def key(data: TaskData, *, data_sha: str, proxy: str, proxy_sha: str, max_samples: int,
            seed: int) -> dict[str, Any]:
        """The cache key of ``data`` at commit ``data_sha`` described by ``proxy`` at ``proxy_sha``."""
        from fennec.task import DESCRIPTOR_VERSION

        return {"data": data.to_metadata(), "data_sha": data_sha, "proxy": proxy, "proxy_sha": proxy_sha,
                "max_samples": int(max_samples), "seed": int(seed), "version": DESCRIPTOR_VERSION}

    def _path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
        return self.root / f"{digest}.json"

    def get(self, key: Mapping[str, Any]) -> Any:
        """The cached :class:`fennec.task.TaskDescriptor` (``forward_passes=0``), or None."""
        from fennec.task import TaskDescriptor

        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") != json.loads(json.dumps(key)):
                raise ValueError("its key differs")
            vector = np.asarray(entry["vector"], dtype=np.float32)
            if vector.ndim != 1 or not vector.size or not np.all(np.isfinite(vector)):
                raise ValueError("its vector is not a finite 1-D array")
            return TaskDescriptor(vector=vector, proxy=key["proxy"], proxy_sha=key["proxy_sha"],
                                  version=key["version"], n_samples=int(entry["n_samples"]),
                                  n_classes=int(entry["n_classes"]), forward_passes=0,
                                  seconds=float(entry.get("seconds", 0.0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            LOG.info("Ignoring the cached descriptor %s (%s); describing the task again", path, e)
            return None

    def put(self, key: Mapping[str, Any], descriptor: Any) -> Path:
        """Store ``descriptor`` (a :class:`fennec.task.TaskDescriptor`) under ``key``."""
        return save_json_atomic(self._path(key), {
            "key": key, "vector": [float(v) for v in np.asarray(descriptor.vector, dtype=np.float32)],
            "n_samples": int(descriptor.n_samples), "n_classes": int(descriptor.n_classes),
            "seconds": round(float(descriptor.seconds), 3)}, indent=None)


#: Memory a task's description reserves on a Ray node: the proxy (a few hundred million
#: parameters) and a ``max_samples`` sample's decoded images and features.
TASK_MEMORY = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class DescribedTask:
    """What became of one task's data in :func:`describe_unit`.

    Attributes:
        descriptor: the :class:`fennec.task.TaskDescriptor`, or None when the data could not
            be sampled.
        unreadable: why a Hub dataset could not be sampled (the task is skipped), else None.
        seconds: wall time of sampling and describing, where it ran.
    """

    descriptor: Any
    unreadable: FennecError | None
    seconds: float


def describe_unit(dataset: str, data: TaskData, *, proxy: str, proxy_sha: str, hub: Any, dataset_hub: Any,
                  max_samples: int, seed: int, device: Any) -> DescribedTask:
    """One unit of :func:`describe_known_tasks`: ``data`` sampled from ``dataset`` (its path or
    Hub id) and run through the proxy, in this process or on a worker (the hubs then come as
    :func:`fennec.engine.hub_for_workers` recipes; the proxy's features go to the default
    feature cache of wherever it runs).

    A Hub dataset that cannot be sampled is returned as ``unreadable``; any other error (a
    local dataset, the proxy) is raised.
    """
    from fennec.data import load_sample
    from fennec.engine import hub_on_worker
    from fennec.task import task_descriptor

    t0 = time.perf_counter()
    try:
        sample = load_sample(dataset, split=data.split, config=data.config, label_column=data.label_column,
                             image_column=data.image_column, max_samples=max_samples, seed=seed,
                             hub=hub_on_worker(dataset_hub) if data.on_hub else None, parquet_only=data.on_hub)
    except FennecError as e:
        if not data.on_hub:
            raise
        return DescribedTask(None, e, time.perf_counter() - t0)
    desc = task_descriptor(sample, proxy=proxy, hub=hub_on_worker(hub), revision=proxy_sha, device=device)
    return DescribedTask(desc, None, time.perf_counter() - t0)


def describe_known_tasks(tasks: Mapping[str, TaskData], *, proxy: str, proxy_sha: str, hub: Any,
                         dataset_hub: Any = None, resolve: Callable[[str], str] | None = None,
                         max_samples: int, seed: int = 0, device: Any = None,
                         cache: DescriptorCache | None = None, progress: bool = False,
                         executor: Executor | None = None) -> dict[str, Any]:
    """Proxy descriptors (:class:`fennec.task.TaskDescriptor`) of historical tasks.

    Tasks that share their data (one dataset in several published tables) are described
    once. Cached descriptors of Hub tasks are reused; new ones are cached as soon as each is
    computed.

    Each dataset to describe is a unit of ``executor`` (:func:`describe_unit`): in this
    process, one after the other, by default; on a :class:`~fennec.engine.RayExecutor` a Ray
    task that samples the dataset (a Hub dataset streamed from ``dataset_hub`` by the worker)
    and runs the proxy, with 1 CPU, :data:`TASK_MEMORY` and a GPU when the cluster has them
    and ``device`` is not the CPU. Either way this process looks up the datasets' commits,
    reads and writes the cache, and reports each task as its descriptor comes back, so a
    worker that dies loses only the tasks it was describing.

    Args:
        tasks: ``{task key: TaskData}``.
        proxy, proxy_sha: the proxy and the commit of its weights (descriptors are pinned to it).
        hub: where the proxy's weights come from.
        dataset_hub: where Hub datasets are read from (a :class:`fennec.hub.HfHub`; default:
            the environment's endpoint).
        resolve: maps a non-Hub ``dataset`` to the path to read (e.g. ``zoo:<name>``); on
            Ray, the workers must see that path (a local instance does).
        max_samples, seed: the sampling, as :func:`fennec.recommend` samples a new dataset.
        device: for the proxy's forward passes.
        cache: the descriptor cache (None: none).
        progress: a line per task on stderr (counts and seconds), a bar on a terminal.
        executor: where the descriptions run (:mod:`fennec.engine`; None: in this process).

    Returns:
        ``{task key: TaskDescriptor}`` of the tasks described (Hub tasks whose data could not
        be read are left out, with a :class:`DatasetWarning` each).

    Raises:
        FennecError: a local or zoo task's dataset cannot be read, or the proxy fails (the
            same error on a worker as here).
        EngineError: descriptions were lost with their Ray workers (after Ray's retry); the
            others are cached, so running the command again describes only those.
    """
    from fennec.engine import LocalExecutor, Resources, Unit, hub_for_workers
    from fennec.hub import HfHub

    if not proxy_sha:
        raise InvalidInputError("describe_known_tasks: proxy_sha must name the proxy's commit (descriptors are "
                                "pinned to it); fetch the proxy first (hub.fetch(proxy).sha).")
    executor = executor if executor is not None else LocalExecutor()
    by_data: dict[TaskData, list[str]] = {}
    for task, data in sorted(tasks.items()):
        by_data.setdefault(data, []).append(task)
    labels = {data: ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
              for data, names in by_data.items()}
    out: dict[str, Any] = {}
    keys: dict[TaskData, dict[str, Any]] = {}  # the cache keys of the Hub tasks being described
    lost: list[str] = []
    n_cached = n_failed = n_done = 0
    bar = _progress.bar(total=len(tasks), desc="describing known tasks", unit="tasks", enabled=progress)
    if dataset_hub is None and any(data.on_hub for data in by_data):
        dataset_hub = HfHub()  # the environment's endpoint, token and offline mode
    elsewhere = executor.kind != "local"
    unit_kwargs = {"proxy": proxy, "proxy_sha": proxy_sha, "max_samples": max_samples, "seed": seed,
                   "device": device, "hub": hub_for_workers(hub) if elsewhere else hub,
                   "dataset_hub": hub_for_workers(dataset_hub) if elsewhere and dataset_hub is not None
                   else dataset_hub}
    resources = Resources(num_cpus=1, memory=TASK_MEMORY, num_gpus=executor.gpus_per_unit(device))

    def done(data: TaskData, line: str | None) -> None:
        nonlocal n_done
        n_done += 1
        if line is not None:
            _progress.note(f"{line} ({n_done}/{len(by_data)})", enabled=progress)
        bar.update(len(by_data[data]))

    def skip(data: TaskData, e: FennecError, stacklevel: int) -> None:
        nonlocal n_failed
        n_failed += 1
        warnings.warn(f"task {labels[data]}: its dataset {data.describe()} could not be sampled "
                      f"({type(e).__name__}: {str(e)[:300]}); the task still shapes the model vectors through its "
                      "results, but cannot be evidence for a new dataset.", DatasetWarning, stacklevel=stacklevel)
        done(data, None)

    def units() -> Iterator[Unit]:
        """The datasets to describe, in order; the cached ones are reported as they are found.
        Read lazily by the executor, so this runs between the units (locally, as always)."""
        nonlocal n_cached
        for data in by_data:
            if data.on_hub and cache is not None:
                try:  # the dataset's current commit: a changed dataset is described again
                    data_sha, _ = dataset_hub.dataset_files(data.dataset[len(_HUB_PREFIX):])
                except FennecError as e:
                    skip(data, e, stacklevel=5)  # skip, units, the executor's map, describe_known_tasks, its caller
                    continue
                key = DescriptorCache.key(data, data_sha=data_sha, proxy=proxy, proxy_sha=proxy_sha,
                                          max_samples=max_samples, seed=seed)
                desc = cache.get(key)
                if desc is not None:
                    n_cached += 1
                    for task in by_data[data]:
                        out[task] = desc
                    done(data, f"task {labels[data]}: cached descriptor of {data.describe()} ({desc.n_samples} "
                               f"images, {desc.n_classes} classes)")
                    continue
                keys[data] = key
            dataset = data.dataset if data.on_hub or resolve is None else resolve(data.dataset)
            yield Unit(data, describe_unit, (dataset, data), unit_kwargs, resources=resources)

    try:
        for result in executor.map(units()):
            data = cast(TaskData, result.key)  # units are keyed by their data
            if result.lost:  # the others go on, and are cached: a rerun describes only these
                lost.append(f"{labels[data]} ({data.describe()}: {type(result.error).__name__}: "
                            f"{str(result.error).splitlines()[0][:200] if str(result.error) else 'no details'})")
                done(data, None)
                continue
            described: DescribedTask = result.get()  # a local task's or the proxy's error, as raised where it ran
            if described.unreadable is not None:
                skip(data, described.unreadable, stacklevel=3)
                continue
            desc = described.descriptor
            if data in keys and cache is not None:  # a key is made only with a cache
                cache.put(keys[data], desc)
            for task in by_data[data]:
                out[task] = desc
            done(data, f"task {labels[data]}: described {data.describe()}: {desc.n_samples} images, "
                       f"{desc.n_classes} classes, {described.seconds:.1f} s")
    finally:
        bar.close()
    if lost:
        raise EngineError(f"{len(lost)} of the {len(by_data)} datasets to describe were lost with their Ray "
                          f"workers on {executor.describe()}: {'; '.join(lost[:5])}"
                          f"{f' and {len(lost) - 5} more' if len(lost) > 5 else ''}. The descriptors that came "
                          "back are cached; run the command again to describe the rest.")
    LOG.info("Known tasks: %d described (%d datasets from the cache, %d could not be read)", len(out), n_cached,
             n_failed)
    return out
