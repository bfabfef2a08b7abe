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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fennec import _progress
from fennec._io import save_json_atomic
from fennec.errors import DatasetWarning, FennecError, InvalidInputError

__all__ = ["DescriptorCache", "TaskData", "describe_known_tasks"]

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


def describe_known_tasks(tasks: Mapping[str, TaskData], *, proxy: str, proxy_sha: str, hub: Any,
                         dataset_hub: Any = None, resolve: Callable[[str], str] | None = None,
                         max_samples: int, seed: int = 0, device: Any = None,
                         cache: DescriptorCache | None = None, progress: bool = False) -> dict[str, Any]:
    """Proxy descriptors (:class:`fennec.task.TaskDescriptor`) of historical tasks.

    Tasks that share their data (one dataset in several published tables) are described
    once. Cached descriptors of Hub tasks are reused; new ones are cached as soon as each is
    computed.

    Args:
        tasks: ``{task key: TaskData}``.
        proxy, proxy_sha: the proxy and the commit of its weights (descriptors are pinned to it).
        hub: where the proxy's weights come from.
        dataset_hub: where Hub datasets are read from (a :class:`fennec.hub.HfHub`; default:
            the environment's endpoint).
        resolve: maps a non-Hub ``dataset`` to the path to read (e.g. ``zoo:<name>``).
        max_samples, seed: the sampling, as :func:`fennec.recommend` samples a new dataset.
        device: for the proxy's forward passes.
        cache: the descriptor cache (None: none).
        progress: a line per task on stderr (counts and seconds), a bar on a terminal.

    Returns:
        ``{task key: TaskDescriptor}`` of the tasks described (Hub tasks whose data could not
        be read are left out, with a :class:`DatasetWarning` each).

    Raises:
        FennecError: a local or zoo task's dataset cannot be read, or the proxy fails.
    """
    from fennec.data import load_sample
    from fennec.hub import HfHub
    from fennec.task import task_descriptor

    if not proxy_sha:
        raise InvalidInputError("describe_known_tasks: proxy_sha must name the proxy's commit (descriptors are "
                                "pinned to it); fetch the proxy first (hub.fetch(proxy).sha).")
    by_data: dict[TaskData, list[str]] = {}
    for task, data in sorted(tasks.items()):
        by_data.setdefault(data, []).append(task)
    out: dict[str, Any] = {}
    n_cached = n_failed = 0
    bar = _progress.bar(total=len(tasks), desc="describing known tasks", unit="tasks", enabled=progress)
    if dataset_hub is None and any(data.on_hub for data in by_data):
        dataset_hub = HfHub()  # the environment's endpoint, token and offline mode

    def skip(label: str, data: TaskData, e: FennecError) -> None:
        warnings.warn(f"task {label}: its dataset {data.describe()} could not be sampled ({type(e).__name__}: "
                      f"{str(e)[:300]}); the task still shapes the model vectors through its results, but cannot "
                      "be evidence for a new dataset.", DatasetWarning, stacklevel=3)

    try:
        for i, (data, names) in enumerate(by_data.items(), start=1):
            label = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            where = f"({i}/{len(by_data)})"
            desc = key = None
            if data.on_hub and cache is not None:
                try:  # the dataset's current commit: a changed dataset is described again
                    data_sha, _ = dataset_hub.dataset_files(data.dataset[len(_HUB_PREFIX):])
                except FennecError as e:
                    n_failed += 1
                    skip(label, data, e)
                    bar.update(len(names))
                    continue
                key = DescriptorCache.key(data, data_sha=data_sha, proxy=proxy, proxy_sha=proxy_sha,
                                          max_samples=max_samples, seed=seed)
                desc = cache.get(key)
            if desc is not None:
                n_cached += 1
                _progress.note(f"task {label}: cached descriptor of {data.describe()} ({desc.n_samples} images, "
                               f"{desc.n_classes} classes) {where}", enabled=progress)
            else:
                t0 = time.perf_counter()
                dataset = data.dataset if data.on_hub or resolve is None else resolve(data.dataset)
                try:
                    sample = load_sample(dataset, split=data.split, config=data.config,
                                         label_column=data.label_column, image_column=data.image_column,
                                         max_samples=max_samples, seed=seed,
                                         hub=dataset_hub if data.on_hub else None, parquet_only=data.on_hub)
                except FennecError as e:
                    if not data.on_hub:
                        raise
                    n_failed += 1
                    skip(label, data, e)
                    bar.update(len(names))
                    continue
                desc = task_descriptor(sample, proxy=proxy, hub=hub, revision=proxy_sha, device=device)
                if key is not None and cache is not None:  # a key is made only with a cache
                    cache.put(key, desc)
                _progress.note(f"task {label}: described {data.describe()}: {desc.n_samples} images, "
                               f"{desc.n_classes} classes, {time.perf_counter() - t0:.1f} s {where}",
                               enabled=progress)
            for task in names:
                out[task] = desc
            bar.update(len(names))
    finally:
        bar.close()
    LOG.info("Known tasks: %d described (%d datasets from the cache, %d could not be read)", len(out), n_cached,
             n_failed)
    return out
