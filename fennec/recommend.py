"""``fennec.recommend()``: rank a hub's vision models for a labelled image dataset.

The path of one call (DESIGN.md):

1. :func:`fennec.data.load_sample` draws a stratified sample of the dataset;
2. the workspace's proxy model embeds it once and :func:`fennec.task.describe` turns the
   embeddings into a task descriptor, which the fitted transfer space
   (:class:`fennec.space.TransferSpace`) maps to a task vector — by way of the closest
   historical tasks, which are returned as evidence;
3. the FAISS index of model vectors returns the ``candidates`` models with the highest
   predicted transferability ``u_m · v_task`` (every indexed model has a vector: from its
   fine-tuning history, or placed from its architecture and metadata when it has none);
4. with ``refine=True`` those candidates are re-ranked: their penultimate features on the
   sample are scored with a transferability metric (:mod:`fennec.refine`) and the metric
   score is fused with the index score.

A *workspace* is the folder that holds what a recommendation needs: the catalog
(``catalog.sqlite``, written by ``fennec reindex`` and ``fennec import-results``) and the
fitted space (``space/``, written by :func:`fit` / ``fennec fit``). Two kinds exist:

- ``FENNEC_HOME`` (default ``$HF_HOME/fennec``): your catalog of Hub models;
- the **embedded zoo** (``FENNEC_HOME/zoo``): built on first use, with no network, from the
  zoo that ships in the source tree (``zoo/hub``, its ground truth and datasets). It is what
  ``recommend()`` uses when no space has been fitted in ``FENNEC_HOME``.

Example:
    >>> import fennec
    >>> recs = fennec.recommend("zoo/datasets/t-digits-fewshot", top_k=3)  # doctest: +SKIP
    >>> recs[0].model_id                                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fennec import constants
from fennec.errors import InvalidInputError, WorkspaceError

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "FitSummary",
    "KnownTask",
    "Recommendation",
    "Recommendations",
    "Workspace",
    "fit",
    "recommend",
    "zoo_dir",
    "zoo_workspace",
]

LOG = logging.getLogger(__name__)

#: Images sampled from the dataset (stratified) for the proxy and for refinement.
DEFAULT_MAX_SAMPLES = 1000
#: Weight of the metric score in the fusion (``fennec.refine.fuse``); the zoo benchmark's
#: leave-one-task-out choice is reported in benchmark/results/zoo_recommend.md.
DEFAULT_FUSION_WEIGHT = 0.5
#: Transfer-space dimension used by :func:`fit`.
DEFAULT_DIM = 6
ZOO_HUB = "zoo"
_SPACE_DIR = "space"
_MANIFEST = "fit.json"
_ZOO_TASK_PREFIX = "zoo:"


# -- where things are ------------------------------------------------------------------


def zoo_dir() -> Path:
    """The embedded zoo: ``FENNEC_ZOO``, or ``zoo/`` of the source tree fennec runs from.

    Raises:
        WorkspaceError: there is no zoo there (e.g. fennec was installed from a wheel).
    """
    import os

    env = os.environ.get("FENNEC_ZOO")
    root = Path(env).expanduser() if env else Path(__file__).resolve().parents[1] / "zoo"
    if not (root / "hub").is_dir() or not (root / "datasets").is_dir():
        raise WorkspaceError(
            f"No embedded zoo at {root} (expected {root / 'hub'} and {root / 'datasets'}). The zoo ships "
            "with fennec's source tree: install fennec from a checkout (`pip install -e .`) or set "
            "FENNEC_ZOO to the zoo folder; or fit your own workspace with `fennec reindex` + `fennec fit`.")
    return root


def _zoo_ground_truth() -> Path:
    """The zoo's fine-tuning ground truth: ``<zoo>/ground_truth.json`` if the zoo carries one
    (a custom zoo in ``FENNEC_ZOO``), else the benchmark's ``zoo_ground_truth.json``."""
    own = zoo_dir() / "ground_truth.json"
    if own.exists():
        return own
    return Path(__file__).resolve().parents[1] / "benchmark" / "results" / "zoo_ground_truth.json"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    bar = _bar(len(items), "describing known tasks", progress)
    try:
        for task, spec in items:
            sample = load_sample(_resolve_task_dataset(spec), max_samples=max_samples, seed=seed)
            out[task] = task_descriptor(sample, proxy=proxy, hub=hub, device=device, cache=cache)
            bar.update(1)
    finally:
        bar.close()
    return out


def fit(*, home: str | Path | None = None, hub: str | None = None, proxy: str | None = None,
        dim: int = DEFAULT_DIM, max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0,
        exclude: Sequence[str] = (), device: Any = None, progress: bool = False,
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
        dim: transfer-space dimension.
        max_samples, seed: how each historical task's dataset is sampled for its descriptor.
        exclude: models never to recommend (the proxy is always excluded).
        device: for the proxy's forward passes.
        progress: progress bars.

    Raises:
        WorkspaceError: no indexed models, or no fine-tuning results for them.
    """
    from fennec.catalog import Catalog
    from fennec.index import IndexMeta, ModelIndex
    from fennec.space import SPACE_VERSION, TaskSide, TransferSpace
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY, ONLINE_PROXY, TaskIndex

    t0 = time.perf_counter()
    home = Path(home) if home is not None else constants.fennec_home()
    previous = _read_manifest(home) or {}
    hub_spec = hub if hub is not None else previous.get("hub", "")
    proxy = proxy or previous.get("proxy") or (OFFLINE_PROXY if hub_spec == ZOO_HUB else ONLINE_PROXY)
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
    described = describe_tasks(datasets, proxy=proxy, hub=hub_obj, max_samples=max_samples, seed=seed,
                               device=device, progress=progress) if datasets else {}
    task_sides = {t: TaskSide(task_id=t, descriptor=d.vector, n_classes=d.n_classes, n_samples=d.n_samples)
                  for t, d in described.items()}
    space = TransferSpace(dim=dim, seed=seed).fit(results, models=sides, tasks=task_sides)
    ids = sorted(sides)
    vectors = space.model_vectors([sides[m] for m in ids]).astype(np.float32)
    proxy_sha = next(iter(described.values())).proxy_sha if described else None

    tmp = home / f".{_SPACE_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    space.save(tmp / "space.npz")
    meta = IndexMeta(vectors.shape[1], metric="ip", kind="transfer",
                     embedder_version=_single_version(catalog_path=home / "catalog.sqlite"),
                     space_version=SPACE_VERSION)
    ModelIndex.from_vectors(ids, vectors, meta).save(tmp / "index")
    if described:
        TaskIndex(sorted(described), np.stack([described[t].vector for t in sorted(described)]),
                  proxy=proxy).save(tmp / "tasks")
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
    (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    _swap_in(tmp, home / _SPACE_DIR)
    summary = FitSummary(home, len(ids), manifest["n_with_history"], len(results), len(described), proxy,
                         time.perf_counter() - t0)
    LOG.info("%s", summary.line())
    return summary


def _single_version(*, catalog_path: Path) -> str | None:
    from fennec.catalog import Catalog

    with Catalog(catalog_path) as catalog:
        versions = {m.vector_version for m in catalog.models(status="ok", limit=None) if m.vector is not None}
    return versions.pop() if len(versions) == 1 else None


def _swap_in(new: Path, target: Path) -> None:
    """Replace folder ``target`` by ``new``: rename the old one away first, so a crash leaves
    either the old or the new folder in place (the leftover is removed by the next fit)."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _read_manifest(home: Path) -> dict[str, Any] | None:
    path = home / _SPACE_DIR / _MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WorkspaceError(f"{path} is unreadable ({e}); run `fennec fit` again.") from e


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
    from fennec.catalog import Catalog
    from fennec.hub import open_hub
    from fennec.reindex import Archi2VecEmbedder, reindex
    from fennec.space import SPACE_VERSION
    from fennec.task import DESCRIPTOR_VERSION, OFFLINE_PROXY

    zoo = zoo_dir()
    home = Path(home) if home is not None else constants.fennec_home() / "zoo"
    home.mkdir(parents=True, exist_ok=True)
    truth = _zoo_ground_truth()
    if not truth.exists():
        raise WorkspaceError(f"The zoo's ground truth {truth} is missing; rebuild it with "
                             "`python scripts/build_benchmark.py` (see benchmark/README.md).")
    truth_sha = _sha256_file(truth)
    with Catalog(home / "catalog.sqlite") as catalog:
        stamp = _tree_stamp(zoo / "hub")
        if catalog.get_state("zoo_hub_stamp") != stamp:
            # Incremental: only models new or changed since the last run are embedded.
            summary = reindex(hub=open_hub(str(zoo / "hub")), catalog=catalog, index_dir=home / "index",
                              embedder=Archi2VecEmbedder(), progress=progress)
            LOG.info("Indexed the embedded zoo's models (archi2vec, no weights): %s", summary.line())
            catalog.set_state("zoo_hub_stamp", stamp)
        if catalog.get_state("zoo_ground_truth_sha256") != truth_sha:
            summary = catalog.import_zoo_ground_truth(truth)
            for t in sorted({r.task_id for r in catalog.transfer_results(source="zoo_ground_truth")}):
                if (zoo / "datasets" / t).is_dir():
                    catalog.upsert_task(t, kind="zoo", metadata={"dataset": f"{_ZOO_TASK_PREFIX}{t}"})
            catalog.set_state("zoo_ground_truth_sha256", truth_sha)
            LOG.info("Imported the zoo ground truth: %d results", summary.n_results)
    manifest = _read_manifest(home) or {}
    wanted = {"zoo_stamp": stamp, "zoo_ground_truth_sha256": truth_sha, "space_version": SPACE_VERSION,
              "descriptor_version": DESCRIPTOR_VERSION}
    if any(manifest.get(k) != v for k, v in wanted.items()):
        fit(home=home, hub=ZOO_HUB, proxy=OFFLINE_PROXY, device=device, progress=progress,
            _extra_manifest={"zoo_stamp": stamp, "zoo_ground_truth_sha256": truth_sha})
    return home


def _tree_stamp(folder: Path) -> str:
    """A cheap change detector for a folder: sha256 of every file's path, size and mtime."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


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
        manifest = _read_manifest(home)
        if manifest is None:
            raise WorkspaceError(f"No fitted transfer space in {home}; run `fennec fit` (after `fennec reindex` "
                                 "and `fennec import-results`), or use the embedded zoo (hub='zoo').")
        for key, want in (("space_version", SPACE_VERSION), ("descriptor_version", DESCRIPTOR_VERSION)):
            if manifest.get(key) != want:
                raise WorkspaceError(f"{home}: the space was fitted with {key}={manifest.get(key)!r}; this fennec "
                                     f"needs {want!r}. Run `fennec fit` again.")
        folder = home / _SPACE_DIR
        space = TransferSpace.load(folder / "space.npz")
        index = ModelIndex.load(folder / "index")
        tasks = TaskIndex.load(folder / "tasks", proxy=manifest["proxy"]) if (folder / "tasks").exists() else None
        hub = _open_hub(manifest["hub"]) if manifest.get("hub") else _open_hub_env()
        return cls(home, manifest, space, index, tasks, hub)


#: Loaded workspaces of this process, by folder, with the ``fit.json`` stamp they were loaded at:
#: a service that calls recommend() repeatedly loads the index once and reloads it after a refit.
_LOADED: dict[Path, tuple[tuple[int, int], Workspace]] = {}


def _load_cached(home: Path) -> Workspace:
    path = home / _SPACE_DIR / _MANIFEST
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_ino)
    except OSError:
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
    if (home / _SPACE_DIR / _MANIFEST).exists():
        return _load_cached(home)
    if home == constants.fennec_home():
        LOG.info("No space fitted in %s: using the embedded zoo", home)
        return _load_cached(zoo_workspace(None, progress=progress, device=device))
    return Workspace.load(home)  # raises the "run fennec fit" error


# -- recommendations -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One recommended model.

    Attributes:
        rank: 1 = best.
        model_id, sha: the model and the commit that was scored.
        predicted_score: the transfer space's ``u_m · v_task`` (normalised-accuracy units:
            0 = an average model on a task, 1 = one standard deviation better).
        metric_score: the transferability metric on the sample (None when not refined).
        metric: its name (None when not refined).
        final_score: what the ranking sorts by: the fused score for refined models, the
            predicted score otherwise (refined models rank before the others).
        parameters, family: from the catalog.
        reason: a one-line human explanation.
    """

    rank: int
    model_id: str
    sha: str | None
    predicted_score: float
    metric_score: float | None
    metric: str | None
    final_score: float
    parameters: int | None
    family: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class KnownTask:
    """A historical task close to the new one: the evidence behind its task vector.

    Attributes:
        task_id: the task.
        similarity: cosine similarity of the standardised descriptors.
        best_model, best_value: the model that fine-tuned best on it, and its result.
    """

    task_id: str
    similarity: float
    best_model: str | None
    best_value: float | None


class Recommendations(Sequence[Recommendation]):
    """The ranked :class:`Recommendation` records of one call, with their evidence.

    A sequence (``recs[0]`` is the best model); also carries ``dataset`` (the sample's
    summary), ``closest_tasks`` (:class:`KnownTask`), ``n_candidates`` and ``n_refined``,
    ``forward_passes`` (images run through the proxy and the refined models, cache misses
    only), ``timings`` (seconds per step) and ``workspace``.
    """

    def __init__(self, items: list[Recommendation], *, dataset: str, closest_tasks: list[KnownTask],
                 n_candidates: int, n_refined: int, metric: str | None, forward_passes: int,
                 timings: dict[str, float], workspace: str, n_indexed: int):
        self._items = items
        self.dataset = dataset
        self.closest_tasks = closest_tasks
        self.n_candidates = n_candidates
        self.n_refined = n_refined
        self.metric = metric
        self.forward_passes = forward_passes
        self.timings = timings
        self.workspace = workspace
        self.n_indexed = n_indexed

    def __getitem__(self, i: Any) -> Any:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self._items)

    def __repr__(self) -> str:
        top = ", ".join(r.model_id for r in self._items[:3])
        return f"Recommendations({len(self)} models: {top}{', …' if len(self) > 3 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "workspace": self.workspace, "n_indexed": self.n_indexed,
                "n_candidates": self.n_candidates, "n_refined": self.n_refined, "metric": self.metric,
                "forward_passes": self.forward_passes, "timings": self.timings,
                "closest_tasks": [dataclasses.asdict(t) for t in self.closest_tasks],
                "recommendations": [r.to_dict() for r in self._items]}

    def table(self) -> str:
        """A readable ranked table with the evidence under it."""
        width = max([len(r.model_id) for r in self._items] + [5])
        head = f"{'rank':>4}  {'model':<{width}}  {'params':>8}  {'predicted':>9}  {'metric':>9}  {'final':>7}"
        lines = [head, "-" * len(head)]
        for r in self._items:
            metric = f"{r.metric_score:9.3f}" if r.metric_score is not None else f"{'-':>9}"
            lines.append(f"{r.rank:>4}  {r.model_id:<{width}}  {_fmt_params(r.parameters):>8}  "
                         f"{r.predicted_score:9.3f}  {metric}  {r.final_score:7.3f}")
        lines.append("")
        lines.append(f"dataset: {self.dataset}")
        lines.append(f"ranked {self.n_indexed} indexed models; {self.n_candidates} candidates from the index, "
                     f"{self.n_refined} re-ranked with {self.metric or 'no metric'}; "
                     f"{self.forward_passes} image forward passes; {sum(self.timings.values()):.1f} s")
        if self.closest_tasks:
            lines.append("closest known tasks: " + "; ".join(
                f"{t.task_id} ({'the same data as this dataset, ' if t.similarity >= 0.999 else ''}"
                f"similarity {t.similarity:.2f}"
                + (f", best: {t.best_model} {t.best_value:.3f})" if t.best_model else ")")
                for t in self.closest_tasks))
        return "\n".join(lines)


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def recommend(dataset: str | Path | Any, *, top_k: int = 5, candidates: int = 20, refine: bool = True,
              metric: str | None = None, hub: str | None = None, home: str | Path | None = None,
              device: Any = None, split: str | None = None, config: str | None = None,
              image_column: str | None = None, label_column: str | None = None,
              max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0,
              fusion_weight: float = DEFAULT_FUSION_WEIGHT, cache: Any = None,
              progress: bool = False) -> Recommendations:
    """Rank the workspace's models by how well they are expected to fine-tune on ``dataset``.

    Args:
        dataset: a Hub dataset id, a local image folder (one sub-folder per class), a parquet
            file or folder, a ``save_to_disk`` folder (:func:`fennec.data.load_sample`), or an
            already loaded :class:`fennec.data.DatasetSample`.
        top_k: how many recommendations to return.
        candidates: how many models the index proposes (and, with ``refine``, re-ranks with
            forward passes). Cost grows linearly with it when refining.
        refine: re-rank the candidates with a transferability metric on the sample.
        metric: the metric for refinement (default :data:`fennec.refine.DEFAULT_METRIC`).
        hub: ``"zoo"`` for the embedded offline zoo; None for the workspace in ``home`` (or
            ``FENNEC_HOME``), falling back to the embedded zoo when nothing is fitted there.
        home: a workspace folder fitted with :func:`fit`.
        device: ``"cuda"``, ``"cpu"`` … for forward passes and scoring (default: CUDA if
            available).
        split, config, image_column, label_column, max_samples, seed: how the dataset is read and
            sampled (:func:`fennec.data.load_sample`).
        fusion_weight: weight of the metric in the fused score (:func:`fennec.refine.fuse`).
        cache: feature cache (:class:`fennec.features.FeatureCache`; None = the default
            folder, False = none).
        progress: progress bars for the long steps.

    Returns:
        :class:`Recommendations` (best first), with the closest known tasks as evidence.

    Raises:
        InvalidInputError / DatasetError: bad arguments or an unusable dataset.
        WorkspaceError: no fitted workspace (run ``fennec fit``).
    """
    from fennec.data import load_sample
    from fennec.metrics import metric_info
    from fennec.refine import DEFAULT_METRIC, fuse, score_candidates
    from fennec.task import task_descriptor

    top_k = _check_positive("top_k", top_k)
    candidates = _check_positive("candidates", candidates)
    if not 0.0 <= float(fusion_weight) <= 1.0:
        raise InvalidInputError(f"fusion_weight must be in [0, 1], got {fusion_weight!r}.")
    metric = metric or DEFAULT_METRIC
    metric_info(metric)  # an unknown metric fails before any work
    timings: dict[str, float] = {}

    t = time.perf_counter()
    ws = _workspace_for(hub, home, progress=progress, device=device)
    timings["workspace"] = time.perf_counter() - t

    t = time.perf_counter()
    if hasattr(dataset, "images") and hasattr(dataset, "fingerprint"):
        sample = dataset
    else:
        sample = load_sample(dataset, split=split, config=config, image_column=image_column,
                             label_column=label_column, max_samples=max_samples, seed=seed, progress=progress)
    timings["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    desc = task_descriptor(sample, proxy=ws.manifest["proxy"], hub=ws.hub, device=device, cache=cache,
                           progress=progress)
    task_vec, _ = ws.space.task_vector(desc.vector)
    timings["task"] = time.perf_counter() - t

    t = time.perf_counter()
    hits = ws.index.search(np.asarray(task_vec, dtype=np.float32), k=max(candidates, top_k))
    predicted = dict(hits)
    timings["index"] = time.perf_counter() - t

    forward = desc.forward_passes
    metric_scores: dict[str, float | None] = {}
    shas: dict[str, str | None] = {}
    if refine:
        t = time.perf_counter()
        pool = [m for m, _ in hits[:candidates]]
        for c in score_candidates(pool, sample, hub=ws.hub, metric=metric, device=device, cache=cache,
                                  progress=progress):
            metric_scores[c.model_id] = c.score
            shas[c.model_id] = c.sha
            forward += c.forward_passes
        timings["refine"] = time.perf_counter() - t

    t = time.perf_counter()
    if metric_scores:
        fused = fuse({m: predicted[m] for m in metric_scores}, metric_scores, weight=fusion_weight)
        refined = sorted(fused, key=lambda m: (-fused[m], m))
        rest = [m for m, _ in hits if m not in fused]
        order = [(m, fused[m]) for m in refined] + [(m, predicted[m]) for m in rest]
    else:
        order = [(m, s) for m, s in hits]
    records = _records(ws, order[:top_k], predicted, metric_scores, shas, metric if refine else None)
    closest = _closest_tasks(ws, desc.vector)
    timings["rank"] = time.perf_counter() - t
    return Recommendations(records, dataset=_dataset_summary(sample), closest_tasks=closest,
                           n_candidates=min(candidates, len(hits)), n_refined=len(metric_scores),
                           metric=metric if refine else None, forward_passes=forward,
                           timings={k: round(v, 4) for k, v in timings.items()}, workspace=str(ws.home),
                           n_indexed=len(ws.index))


def _dataset_summary(sample: Any) -> str:
    summary = getattr(sample, "summary", None)
    if callable(summary):
        return summary()
    return f"{len(sample.labels)} images"


def _records(ws: Workspace, order: list[tuple[str, float]], predicted: dict[str, float],
             metric_scores: dict[str, float | None], shas: dict[str, str | None], metric: str | None) -> list[Recommendation]:
    from fennec.catalog import Catalog

    out = []
    pred_rank = {m: i + 1 for i, m in enumerate(sorted(predicted, key=lambda m: (-predicted[m], m)))}
    scored = {m: s for m, s in metric_scores.items() if s is not None}
    metric_rank = {m: i + 1 for i, m in enumerate(sorted(scored, key=lambda m: (-scored[m], m)))}
    with Catalog(ws.home / "catalog.sqlite") as catalog:
        for rank, (model, final) in enumerate(order, start=1):
            info = catalog.get_model(model)
            parts = [f"transfer space #{pred_rank[model]} of {len(predicted)} candidates"]
            if model in metric_scores:
                if metric_scores[model] is None:
                    parts.append(f"{metric} failed on this model (ranked by the transfer space only)")
                else:
                    parts.append(f"{metric} #{metric_rank[model]} of {len(scored)} re-ranked")
            history = ws.space.model_ids_ if hasattr(ws.space, "model_ids_") else ()
            parts.append("has fine-tuning history" if model in history else "placed from its architecture")
            out.append(Recommendation(
                rank=rank, model_id=model, sha=shas.get(model) or (info.sha if info else None),
                predicted_score=float(predicted[model]), metric_score=metric_scores.get(model),
                metric=metric if model in metric_scores else None, final_score=float(final),
                parameters=info.parameters if info else None, family=info.family if info else None,
                reason="; ".join(parts)))
    return out


def _closest_tasks(ws: Workspace, descriptor: np.ndarray, k: int = 3) -> list[KnownTask]:
    from fennec.catalog import Catalog

    if ws.tasks is None:
        return []
    out = []
    with Catalog(ws.home / "catalog.sqlite") as catalog:
        for task_id, sim in ws.tasks.search(descriptor, k=k):
            rows = [r for r in catalog.transfer_results(task=task_id) if r.variant in ("seed0", "results")]
            best = max(rows, key=lambda r: r.value) if rows else None
            out.append(KnownTask(task_id, round(float(sim), 4), best.model if best else None,
                                 float(best.value) if best else None))
    return out


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
