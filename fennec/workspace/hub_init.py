"""``fennec init``: a workspace for a Hub, in one resumable command.

:func:`init_workspace` builds the workspace that ``fennec recommend`` ranks a Hub's models
with, for the Hub it is pointed at (the Hugging Face Hub, a mirror, or a local
Hub-compatible server: ``--hub URL``). Its steps, each of which skips the work already done:

1. **reindex** a scope of models (:func:`fennec.reindex.reindex` with ``models=``): every
   model of the published fine-tuning history that is mapped to a Hub id
   (:mod:`fennec.published`) and on that hub, plus the ``top`` most-downloaded image
   classifiers it lists. Models already indexed at the same commit are skipped; each new
   architecture is embedded once (archi2vec, configs only, no weights). A first init sets
   the watermark to the time it started, so that a later ``fennec reindex`` adds the models
   changed since, not the whole Hub (``fennec reindex --since 2000-01-01`` does that);
2. **import the shipped history** (``fennec import-results`` without a path): the published
   tables that come with fennec, each model under its Hub id, each mapped task given the Hub
   dataset, config, split and columns its mapping names; skipped when the shipped tables and
   mapping have not changed since the last init;
3. **describe the tasks** and **fit** (:func:`fennec.workspace.fit`): each mapped task's
   dataset is sampled from that hub over range requests as ``recommend()`` samples a new
   one and run through the proxy (:mod:`fennec.workspace.known_tasks`; descriptors are cached, so a
   rerun describes only what is missing), then the transfer space is fitted.

With an ``executor`` (``fennec init --ray``), the reindex's embeddings and the tasks'
descriptions run as Ray tasks (:mod:`fennec.engine`); everything else runs here.

Before any of it, :func:`plan_init` says what will be done and how long it should take
(:attr:`InitPlan.lines`), from the measured rates :data:`REINDEX_SECONDS_PER_MODEL` and
:data:`DESCRIBE_SECONDS_PER_IMAGE`. Hub model cards' ``base_model``, ``datasets`` and
``library_name`` are not used here yet: :func:`fennec.workspace.model_sides` is where side
information for cold start is assembled.

Example (what of the shipped history is usable on a Hub needs no Hub; the init does):
    >>> scope = published_scope()
    >>> len(scope.hub_ids) > 0, len(scope.tasks) > 0, scope.hub_ids == sorted(scope.hub_ids)
    (True, True, True)
    >>> summary = init_workspace("https://huggingface.co", top=200, progress=True)  # doctest: +SKIP
    >>> print(summary.next_command)                                                  # doctest: +SKIP
    fennec recommend DATASET
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec import _progress, constants
from fennec.errors import HubError, HubUnavailableError, InvalidInputError, ModelNotFoundError
from fennec.workspace.known_tasks import TaskData
from fennec.workspace.layout import catalog_path

if TYPE_CHECKING:
    from fennec.engine import Executor

__all__ = [
    "DEFAULT_TOP",
    "DESCRIBE_SECONDS_PER_IMAGE",
    "FIT_SECONDS",
    "HISTORY_KINDS",
    "REINDEX_SECONDS_PER_MODEL",
    "HistoryScope",
    "InitPlan",
    "InitSummary",
    "init_workspace",
    "plan_init",
    "published_scope",
]

LOG = logging.getLogger(__name__)

#: Most-downloaded image classifiers indexed besides the models with published history.
DEFAULT_TOP = 200
#: Seconds to index one new model: archi2vec on its config (one new architecture; a
#: fine-tune of a known architecture reuses its vector) plus the Hub round trips;
#: benchmark/results/hub_reindex_record.md measured 63 models a minute on 2 shared cores.
REINDEX_SECONDS_PER_MODEL = 1.0
#: Seconds per image to sample and describe a task, by (proxy, device type), measured by
#: benchmark/proxy_timing.py (benchmark/results/proxy_timing.md): CPU time of one thread, i.e.
#: one dedicated core (dinov2-small 160 CPU s for 1000 images; dinov2-large 2.06 CPU s per
#: image), without the Hub transfer. On a shared machine the wall clock is longer (0.31 and
#: 1.11 s per image were measured at load averages of 9 and 6-13). Other pairs (a GPU: not
#: measured yet) have no estimate.
DESCRIBE_SECONDS_PER_IMAGE: dict[tuple[str, str], float] = {
    ("facebook/dinov2-small", "cpu"): 0.16,
    ("facebook/dinov2-large", "cpu"): 2.06,
}
#: Seconds a fit takes once the tasks are described: the space and its indexes are small
#: least-squares problems over a few hundred models and tasks (2 s for 15 models and 13 tasks in
#: tests/test_init_e2e.py on 2 shared cores); an order of magnitude, not a measured rate.
FIT_SECONDS = 10.0
#: Catalog state: the stamp of the shipped history (tables and mappings) last imported.
_HISTORY_STAMP = "published_history_stamp"


# -- what the shipped history maps -----------------------------------------------------


#: The published sources whose models :func:`init_workspace` indexes and whose tasks it
#: describes: image-classification tables of fine-tuning or linear-probe accuracies (not
#: rank-only tables, metric scores, reports, captioning or segmentation).
HISTORY_KINDS = ("finetune", "linear_probe")


@dataclasses.dataclass(frozen=True)
class HistoryScope:
    """What of the shipped published history can be used on a Hub.

    Attributes:
        models: ``{source: {published model name: Hub id}}`` of the mapped models used.
        tasks: ``{task name: TaskData}`` of the published tasks whose dataset is mapped (task
            names are shared across sources in the catalog; a name that two sources map to
            different datasets is left out).
        n_models: (source, name) model entries of the sources used; ``skipped_models`` counts
            those not used, by status (``unmapped``, ``unconfirmed``).
        n_tasks: (source, name) task entries of the sources used.
    """

    models: dict[str, dict[str, str]]
    tasks: dict[str, TaskData]
    n_models: int
    n_tasks: int
    skipped_models: dict[str, int]

    @property
    def hub_ids(self) -> list[str]:
        """The distinct Hub ids of the used models, sorted."""
        return sorted({h for names in self.models.values() for h in names.values()})


def _history_sources() -> list[Any]:
    from fennec import published

    return [s for s in published.sources()
            if s.kind in HISTORY_KINDS and s.task_type == "image-classification" and s.variants]


def published_scope(*, include_unconfirmed: bool = False) -> HistoryScope:
    """The Hub ids and datasets of the published history shipped with fennec
    (:func:`fennec.published.model_mapping`, :func:`fennec.published.task_mapping`).

    Args:
        include_unconfirmed: also use mappings marked unconfirmed (the id, its columns or splits
            could not be checked against the Hub); by default only confirmed ones are.

    Raises:
        PublishedDataError: the package data is missing or damaged.
    """
    from fennec import published

    allowed = {"confirmed", "unconfirmed"} if include_unconfirmed else {"confirmed"}
    models: dict[str, dict[str, str]] = {}
    skipped: dict[str, int] = {}
    n_models = n_tasks = 0
    tasks: dict[str, TaskData] = {}
    conflicting: set[str] = set()
    for src in _history_sources():
        for name, m in published.model_mapping(src.source_id).items():
            n_models += 1
            if m.hub_id and m.status in allowed:
                models.setdefault(src.source_id, {})[name] = m.hub_id
            else:
                skipped[m.status] = skipped.get(m.status, 0) + 1
        for name, t in published.task_mapping(src.source_id).items():
            n_tasks += 1
            if not t.dataset_id or t.status not in allowed:
                continue
            data = TaskData(f"hub:{t.dataset_id}", config=t.config or None, split=t.splits[0] if t.splits else None,
                            label_column=t.label_column or None, image_column=t.image_column or None)
            if tasks.setdefault(name, data) != data:
                conflicting.add(name)
    for name in sorted(conflicting):
        LOG.warning("The published task name %r maps to different datasets in different sources; it is not "
                    "described", name)
        del tasks[name]
    return HistoryScope(models, tasks, n_models, n_tasks, skipped)


# -- the plan --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InitPlan:
    """What :func:`init_workspace` is about to do, and how long it should take.

    Attributes:
        hub: the hub (as given, None for the environment's) and ``home`` the workspace.
        scope: the shipped history's mapped models and tasks.
        top: the most-downloaded image classifiers listed (``ModelRecord``), best first.
        new_models: models of the scope not yet indexed at their current commit (an upper bound for
            the published ones, whose commits are looked up during the reindex).
        history_current: the shipped history is already imported, unchanged.
        proxy, device: what describes the tasks; ``max_samples`` images per task.
        estimate: seconds per step (None: no measured rate for that step).
    """

    hub: str | None
    home: Path
    scope: HistoryScope
    top: list[Any]
    new_models: int
    history_current: bool
    proxy: str
    device: str
    max_samples: int
    estimate: dict[str, float | None]

    def lines(self) -> list[str]:
        """The plan, one step a line, with its estimate."""
        s = self.scope

        def took(key: str) -> str:
            value = self.estimate.get(key)
            return "no estimate (no measured rate)" if value is None else f"~{_duration(value)}"

        skipped = ", ".join(f"{n} {status}" for status, n in sorted(s.skipped_models.items())) or "none"
        known = [v for v in self.estimate.values() if v is not None]
        total = sum(known) if len(known) == len(self.estimate) else None
        return [
            f"fennec init: a workspace in {self.home} for {self.hub or constants.hf_endpoint()}",
            f"1. reindex the {len(s.hub_ids)} Hub models with published history (from {s.n_models} published "
            f"model entries; not used: {skipped}) and the {len(self.top)} most-downloaded image classifiers: at "
            f"most {self.new_models} to index, {took('reindex')} (configs only, no weights)",
            "2. import the shipped published history: "
            + ("already imported, unchanged" if self.history_current else "results of the mapped models, seconds"),
            f"3. describe the {len(set(s.tasks.values()))} datasets of the {len(s.tasks)} published tasks whose "
            f"dataset is mapped (of {s.n_tasks} task entries): up to {self.max_samples} images each, streamed from "
            f"the hub, through {self.proxy} on {self.device}: "
            f"{took('describe')} plus the download of the sampled rows (cached descriptors are reused)",
            f"4. fit the transfer space: {took('fit')}",
            f"estimated total: {'unknown' if total is None else '~' + _duration(total)}; every step keeps its "
            "work: run `fennec init` again to resume",
        ]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _history_stamp(scope: HistoryScope) -> str:
    """Changes when the shipped tables or mappings do, or the scope taken from them."""
    from fennec import published

    h = hashlib.sha256(b"fennec-init-history-v1\0")
    h.update(json.dumps({"models": scope.models, "tasks": {t: d.to_metadata() for t, d in scope.tasks.items()}},
                        sort_keys=True).encode())
    for path in sorted(published.DATA_DIR.rglob("*.json")):
        h.update(path.relative_to(published.DATA_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _open(hub: str | None) -> Any:
    from fennec.hub import open_hub

    return open_hub(hub)


def plan_init(hub: str | None = None, *, home: str | Path | None = None, top: int = DEFAULT_TOP,
              proxy: str | None = None, device: Any = None, max_samples: int | None = None,
              include_unconfirmed: bool = False) -> InitPlan:
    """What :func:`init_workspace` would do with these arguments (lists the hub's
    most-downloaded image classifiers; writes nothing).

    Raises:
        InvalidInputError: ``top`` below 0, or ``device`` not on this machine.
        HubUnavailableError: the hub's listing kept failing.
    """
    from fennec.catalog import Catalog
    from fennec.metrics._validation import resolve_device
    from fennec.task import default_proxy
    from fennec.workspace.fitting import DEFAULT_MAX_SAMPLES

    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise InvalidInputError(f"top must be an int >= 0 (the most-downloaded image classifiers to index besides "
                                f"the models with published history); got {top!r}.")
    dev = resolve_device(device)
    home = Path(home) if home is not None else constants.fennec_home()
    proxy = proxy or _previous_proxy(home) or default_proxy(device)
    max_samples = max_samples or DEFAULT_MAX_SAMPLES
    scope = published_scope(include_unconfirmed=include_unconfirmed)
    hub_obj = _open(hub)
    listed = list(hub_obj.list_models(pipeline_tags=("image-classification",), sort="downloads", limit=top)) \
        if top else []
    current, stamp = {}, None
    if catalog_path(home).exists():
        with Catalog(catalog_path(home)) as catalog:
            current = {m.repo_id: m.sha for m in catalog.models(limit=None) if m.status != "failed"}
            stamp = catalog.get_state(_HISTORY_STAMP)
    new = {r.repo_id for r in listed if current.get(r.repo_id) != r.sha}
    new |= {m for m in scope.hub_ids if m not in current}
    rate = DESCRIBE_SECONDS_PER_IMAGE.get((proxy, dev.type))
    estimate = {"reindex": len(new) * REINDEX_SECONDS_PER_MODEL,
                "describe": None if rate is None else rate * max_samples * len(set(scope.tasks.values())),
                "fit": FIT_SECONDS}
    return InitPlan(hub, home, scope, listed, len(new), stamp == _history_stamp(scope), proxy, dev.type, max_samples,
                    estimate)


def _previous_proxy(home: Path) -> str | None:
    from fennec.errors import WorkspaceError
    from fennec.workspace.history import read_manifest

    try:
        return (read_manifest(home) or {}).get("proxy")
    except WorkspaceError:
        return None


# -- the steps -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InitSummary:
    """What :func:`init_workspace` did.

    Attributes:
        plan: the plan it followed.
        reindex: the reindex summary (None for a dry run).
        not_on_hub: published Hub ids the hub does not have (or refused to describe).
        n_results: published results imported (0 when the history was current).
        fit: the :class:`fennec.workspace.FitSummary` (None for a dry run).
        seconds: wall time.
        next_command: the command that recommends with this workspace.
    """

    plan: InitPlan
    reindex: Any
    not_on_hub: list[str]
    n_results: int
    fit: Any
    seconds: float
    next_command: str

    def lines(self) -> list[str]:
        """What each step did, one line each, and the command that recommends."""
        if self.fit is None:
            return ["(dry run: nothing was done)"]
        missing = (f"; {len(self.not_on_hub)} published models are not on this hub "
                   f"(e.g. {', '.join(self.not_on_hub[:3])})" if self.not_on_hub else "")
        return [f"reindex: {self.reindex.line()}{missing}",
                f"history: {self.n_results} published results imported" if self.n_results
                else "history: already imported, unchanged",
                self.fit.line(),
                f"done in {_duration(self.seconds)}; recommend with: {self.next_command}"]


def init_workspace(hub: str | None = None, *, home: str | Path | None = None, top: int = DEFAULT_TOP,
                   proxy: str | None = None, device: Any = None, max_samples: int | None = None,
                   include_unconfirmed: bool = False, dry_run: bool = False, progress: bool = False,
                   announce: Any = None, executor: Executor | None = None) -> InitSummary:
    """Build (or bring up to date) the workspace for ``hub``: reindex the scope, import the
    shipped history, describe the tasks, fit (see the module docstring).

    Args:
        hub: an endpoint URL, a folder of Hub-style repositories (no datasets: no task is
            described), or None for the environment's hub (``HF_ENDPOINT``).
        home: the workspace (default ``FENNEC_HOME``).
        top: most-downloaded image classifiers to index besides the published ones.
        proxy: the proxy (default: the workspace's previous one, else :func:`fennec.task.default_proxy`).
        device: for the proxy.
        max_samples: images per task for its descriptor (default 1000).
        include_unconfirmed: also use unconfirmed Hub ids of the published mapping.
        dry_run: plan only.
        progress: progress on stderr.
        announce: called with each line of the plan before any work (default: logged).
        executor: where the units run (:mod:`fennec.engine`; None: in this process): each new
            architecture's embedding of the reindex and each task's description of the fit.

    Raises:
        InvalidInputError, HubUnavailableError, ReindexLockedError, StorageError, WorkspaceError.
    """
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc)
    plan = plan_init(hub, home=home, top=top, proxy=proxy, device=device, max_samples=max_samples,
                     include_unconfirmed=include_unconfirmed)
    for line in plan.lines():
        (announce or LOG.info)(line)
    home_arg = "" if plan.home == constants.fennec_home() else f" --home {plan.home}"
    next_command = f"fennec recommend DATASET{home_arg}"
    if dry_run:
        return InitSummary(plan, None, [], 0, None, time.perf_counter() - t0, next_command)
    hub_obj = _open(hub)
    plan.home.mkdir(parents=True, exist_ok=True)
    records, missing = _resolve(hub_obj, plan.scope.hub_ids, progress=progress)
    reindexed = _reindex(hub_obj, plan.home, [*records, *plan.top], started=started, progress=progress,
                         executor=executor)
    n_results = _import_history(plan.home, plan.scope, include_unconfirmed=include_unconfirmed)
    from fennec.workspace.fitting import fit

    fitted = fit(home=plan.home, hub=hub, proxy=plan.proxy, device=device, max_samples=plan.max_samples,
                 progress=progress, executor=executor)
    return InitSummary(plan, reindexed, missing, n_results, fitted, time.perf_counter() - t0, next_command)


def _resolve(hub: Any, repo_ids: Sequence[str], *, progress: bool) -> tuple[list[Any], list[str]]:
    """The current records of ``repo_ids`` on ``hub``; those it does not have are returned apart."""
    records, missing = [], []
    for repo_id in _progress.track(repo_ids, desc="looking up the published models", unit="models",
                                   enabled=progress):
        try:
            records.append(hub.model_info(repo_id))
        except ModelNotFoundError:
            missing.append(repo_id)
        except HubUnavailableError:  # the hub itself: nothing was written; the next run resumes
            raise
        except HubError as e:  # gated, private, a bad answer: not indexable from here
            LOG.warning("%s: skipped (%s)", repo_id, e)
            missing.append(repo_id)
    if missing:
        LOG.info("%d of %d published models are not on this hub", len(missing), len(repo_ids))
    return records, missing


def _reindex(hub: Any, home: Path, records: Sequence[Any], *, started: datetime, progress: bool,
             executor: Executor | None = None) -> Any:
    """Index ``records`` (deduplicated; the already indexed skipped) on ``executor``; a first init
    sets the watermark."""
    from fennec.catalog import Catalog
    from fennec.reindex import Archi2VecEmbedder, reindex

    unique = list({r.repo_id: r for r in records}.values())
    local = executor is None or executor.kind == "local"  # on Ray the workers embed: no sandbox started here
    with Catalog(catalog_path(home)) as catalog, Archi2VecEmbedder(prestart=local) as embedder:
        summary = reindex(hub=hub, catalog=catalog, embedder=embedder, models=unique, progress=progress,
                          executor=executor)
        if catalog.watermark is None:  # later `fennec reindex` runs add what changes from now on
            catalog.advance_watermark(started)
    return summary


def _import_history(home: Path, scope: HistoryScope, *, include_unconfirmed: bool) -> int:
    """Import the shipped tables (:meth:`fennec.catalog.Catalog.import_shipped_tables`: models
    under their Hub ids) and give the mapped tasks their datasets; nothing when the same history
    was imported before. Returns the results imported."""
    from fennec.catalog import Catalog

    stamp = _history_stamp(scope)
    with Catalog(catalog_path(home)) as catalog:
        if catalog.get_state(_HISTORY_STAMP) == stamp:
            return 0
        n = sum(s.n_results for s in catalog.import_shipped_tables(unconfirmed=include_unconfirmed))
        for task, data in sorted(scope.tasks.items()):
            catalog.upsert_task(task, kind="published", metadata=data.to_metadata())
        catalog.set_state(_HISTORY_STAMP, stamp)
    return n
