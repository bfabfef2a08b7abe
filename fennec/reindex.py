"""Incremental reindexing: new and changed Hub models into the catalog.

One run:

1. takes an exclusive lock (``reindex.lock`` beside the catalog file), so two runs on one
   catalog never overlap;
2. checks that the embedder is the one the catalog's vectors were made by (its ``version``,
   recorded in the catalog), unless ``rebuild_index`` asks to re-embed them with a new one;
3. lists the models modified since the watermark (configs only, no weights), oldest first,
   plus the failed models whose retry backoff has expired and the models to re-embed for
   a new embedder version, skipping those already indexed at the same commit; ``limit``
   applies to this list, and the models not in the listing are looked up only when their
   batch runs;
4. per batch: fetches each config, embeds it with the embedder (archi2vec by default; in
   this process, or as Ray tasks with ``executor``, :mod:`fennec.engine`), once per
   architecture: an embedder that names architectures (``architecture_key``,
   :func:`archi2vec.architecture_key`: the config without its labels, names and versions)
   reuses the vector, or the unsupported verdict, of an architecture it has already built
   (the catalog's ``architectures`` table, written in the batch's transaction); then commits
   the batch to the catalog in one transaction together with the advanced watermark.

The catalog is the one store of the archi2vec vectors: ``fennec fit`` reads them from it
(:meth:`fennec.catalog.Catalog.models`) and builds the transfer space's own index. (Earlier
versions also kept a FAISS index of them in ``<home>/index`` that nothing read; such a folder
is ignored and may be deleted.)

A crash or Ctrl-C therefore loses at most the batch in flight, and the next run resumes
from the watermark without duplicates (upserts are keyed by model id, already-indexed
commits are skipped). A model that fails is recorded with its error and retried after an
exponential backoff; one that fennec cannot use (remote code, a malformed config, a config
archi2vec refuses before building it, a model over its time or memory budget) is recorded
as unsupported and retried only when a new commit changes it, or, when the embedder could
not embed it, also when the embedder version changes. A model for which the Hub stays
unavailable after the hub's own retries is a failure like any other; when that happens to
``HUB_DOWN_AFTER`` models in a row the Hub is down, and the run stops without committing
the batch in flight.

Example:
    >>> with Catalog(fennec_home() / "catalog.sqlite") as cat:  # doctest: +SKIP
    ...     summary = reindex(hub=open_hub(), catalog=cat, embedder=Archi2VecEmbedder())
    ...     print(summary.line())
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from fennec import _progress, constants
from fennec._io import file_lock, storage_errors
from fennec.catalog import Catalog, iter_batches
from fennec.engine import EngineError, Executor, LocalExecutor, Resources, Result, Unit
from fennec.errors import (
    GatedModelError,
    HubError,
    HubUnavailableError,
    IndexMismatchError,
    InvalidInputError,
    MalformedModelError,
    ModelAccessError,
    ModelNotFoundError,
    ReindexLockedError,
    UnsupportedModelError,
)
from fennec.hub import Hub, ModelFiles, ModelRecord

__all__ = ["Archi2VecEmbedder", "Embedder", "ReindexSummary", "parse_duration", "reindex",
           "reindex_lock", "run_every"]

LOG = logging.getLogger(__name__)

#: The catalog state naming the embedder version its vectors are made by (written by the
#: first run that embeds, and by a run with ``rebuild_index`` that changes it).
EMBEDDER_KEY = "embedder_version"
#: Listing starts this much before the watermark, so that models sharing the watermark's
#: timestamp are not missed after a crash; already-indexed commits are skipped.
WATERMARK_OVERLAP = timedelta(seconds=1)
#: This many models in a row for which the Hub stayed unavailable (after its own retries)
#: mean the Hub is down: the run stops. Fewer are failures of those models (one broken
#: repository must not stop every run at the same place), retried after their backoff.
HUB_DOWN_AFTER = 3


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Embedder(Protocol):
    """Turns a model's downloaded config into a vector. ``version`` names the recipe."""

    version: str
    dim: int

    def __call__(self, files: ModelFiles, record: ModelRecord) -> np.ndarray:
        ...


class Archi2VecEmbedder:
    """archi2vec's architecture vector of a model, from its config alone (no weights).

    Configs come from strangers: by default each is built, traced and embedded in a worker
    process with a time and a memory budget (:class:`archi2vec.Sandbox`; one long-lived
    worker, replaced when a model exceeds a budget or crashes it), after archi2vec's checks on
    its sizes, layer counts and estimated parameters. A model refused by a check or over a
    budget is unsupported, with the reason; the run goes on.

    Args:
        dim: vector length.
        method: ``record`` (archi2vec's eager recorder, as its benchmark corpus uses; the
            default, several times faster) or ``export`` (torch.export).
        timeout: seconds allowed per model for building and tracing it (None: archi2vec's
            default, 120 s).
        memory_budget: bytes of address space one model may add to the worker's (default
            4 GiB), or None for no memory bound.
        isolate: build in the worker process (the default). False builds in this process:
            the time budget still holds (a signal on the main thread), the memory budget does
            not. On systems without POSIX processes the embedder builds in this process.
        prestart: start the worker now, so that it imports while the hub is listed (the
            default); False starts it for the first model this process embeds (with
            ``fennec reindex --ray`` the Ray workers embed, each in a sandbox of its own).

    Raises (when called):
        fennec.errors.UnsupportedModelError: archi2vec cannot build or trace the model
            (``reason`` ``archi2vec``), refused its config before building it
            (``implausible_config``), or it exceeded its time or memory budget (``over_budget``).
    """

    def __init__(self, *, dim: int = 256, method: str = "record", timeout: float | None = None,
                 memory_budget: int | None = None, isolate: bool = True, prestart: bool = True):
        import archi2vec
        from archi2vec._sandbox import DEFAULT_MEMORY_BUDGET
        from archi2vec.graph import DEFAULT_TIMEOUT

        self._archi2vec = archi2vec
        self.dim = int(dim)
        self.method = method
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        # the two capture methods may give different graphs, hence different vectors
        self.version = f"{archi2vec.EMBEDDER_VERSION}/{method}/dim{self.dim}"
        self.memory_budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
        self._sandbox = None
        if isolate and os.name == "posix":
            self._sandbox = archi2vec.Sandbox(time_budget=self.timeout, memory_budget=self.memory_budget)
            if prestart:
                self._sandbox.start()  # imports in the background while the hub is listed

    def __call__(self, files: ModelFiles, record: ModelRecord) -> np.ndarray:
        return self.embed_config(files.config, library=_library(record), model_id=record.repo_id,
                                 revision=record.sha)

    def embed_config(self, config: Any, *, library: str | None, model_id: str,
                     revision: str | None = None) -> np.ndarray:
        """The vector of one config (``__call__`` without the hub's records)."""
        a2v = self._archi2vec
        lib = library
        # only the architecture's part of the config is built, so that the vector and any
        # refusal depend on what architecture_key hashes alone (and equal the raw config's)
        if isinstance(config, dict):
            config = a2v.architecture_config(config, library=lib)
        try:
            if self._sandbox is not None:
                return self._sandbox.embed(config, model_id=model_id, dim=self.dim,
                                           method=self.method, library=lib)
            return a2v.embed(config, dim=self.dim, method=self.method,
                             timeout=self.timeout, library=lib)
        except a2v.UnsupportedArchitectureError as e:
            if isinstance(e, a2v.ImplausibleConfigError):
                kind, what = "implausible_config", "archi2vec refused its config"
            elif isinstance(e, (a2v.BudgetExceededError, a2v.TraceTimeoutError)):
                kind, what = "over_budget", "archi2vec stopped building it"
            else:
                kind, what = "archi2vec", "archi2vec cannot embed it"
            raise UnsupportedModelError(f"{model_id}: {what}: {e.reason}",
                                        repo_id=model_id, revision=revision,
                                        reason=kind) from e

    def unit(self, files: ModelFiles, record: ModelRecord) -> tuple[Callable[..., Any], tuple, Resources]:
        """The embedding of one model as a unit another machine can run (``fennec reindex
        --ray``): :func:`embed_remotely` and its plain-data arguments (this embedder's
        settings, the config, the model's id), and what it needs: one CPU, and this
        embedder's memory budget (the most a model may add to the worker)."""
        settings = {"dim": self.dim, "method": self.method, "timeout": self.timeout,
                    "memory_budget": self.memory_budget, "isolate": self._sandbox is not None}
        return (embed_remotely, (settings, files.config, _library(record), record.repo_id, record.sha),
                Resources(num_cpus=1, memory=self.memory_budget))

    def architecture_key(self, files: ModelFiles, record: ModelRecord) -> str | None:
        """The model's :func:`archi2vec.architecture_key` (models sharing it share their
        vector, for this embedder's ``version``), or None for a config that is not plain JSON
        data (then embedded on its own, and refused as usual)."""
        try:
            return self._archi2vec.architecture_key(files.config, library=_library(record))
        except (TypeError, ValueError):
            return None

    def close(self) -> None:
        """Stop the worker process (a later call starts a new one)."""
        if self._sandbox is not None:
            self._sandbox.close()

    def __enter__(self) -> Archi2VecEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _library(record: ModelRecord) -> str | None:
    """How archi2vec reads the model's config: the libraries it knows, else it guesses."""
    return record.library if record.library in ("transformers", "timm") else None


#: Embedders of this process for :func:`embed_remotely`, by settings: a Ray worker keeps its
#: sandbox (and its imports) from one model to the next.
_REMOTE_EMBEDDERS: dict[tuple, Archi2VecEmbedder] = {}


def embed_remotely(settings: dict[str, Any], config: Any, library: str | None, model_id: str,
                   revision: str | None) -> tuple[str, Any, str | None]:
    """:meth:`Archi2VecEmbedder.embed_config` on a worker (a unit of ``fennec reindex --ray``),
    with an embedder of ``settings`` kept for the worker's later units. Returns plain data:
    ``("ok", vector as a list of floats, None)`` or ``("unsupported", message, kind)``;
    any other error is raised (the driver records the model as failed)."""
    key = tuple(sorted(settings.items()))
    embedder = _REMOTE_EMBEDDERS.get(key)
    if embedder is None:
        embedder = _REMOTE_EMBEDDERS[key] = Archi2VecEmbedder(**settings)
    try:
        vector = embedder.embed_config(config, library=library, model_id=model_id, revision=revision)
    except UnsupportedModelError as e:
        return "unsupported", str(e), e.reason
    return "ok", np.asarray(vector, dtype=np.float32).tolist(), None


@dataclasses.dataclass
class ReindexSummary:
    """Counts of one run. ``added`` + ``updated`` models have a vector in the catalog now."""

    listed: int = 0  # models the listing returned since the watermark
    skipped: int = 0  # already indexed at the same commit, or backing off
    retried: int = 0  # failed models whose backoff had expired, and models re-embedded
                      # because their vector came from another embedder version
    added: int = 0
    updated: int = 0
    unsupported: int = 0
    failed: int = 0
    batches: int = 0
    built: int = 0  # models the embedder built (one per architecture, when it names them)
    reused: int = 0  # models given the vector, or unsupported verdict, of an architecture
                     # already built (in this run or an earlier one)
    seconds: float = 0.0
    watermark: datetime | None = None
    dry_run: bool = False
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.added + self.updated + self.unsupported + self.failed

    def line(self) -> str:
        """A one-line summary for logs and the CLI."""
        if self.dry_run:
            return (f"dry run: {self.listed} listed since the watermark, {self.skipped} already "
                    f"indexed, {self.processed} would be processed ({self.retried} retries)")
        rate = self.processed / self.seconds * 60 if self.seconds > 0 else 0.0
        wm = self.watermark.isoformat() if self.watermark else "none"
        return (f"added {self.added}, updated {self.updated}, unsupported {self.unsupported}, "
                f"failed {self.failed} (listed {self.listed}, skipped {self.skipped}, retried "
                f"{self.retried}; built {self.built}, reused {self.reused}) in {self.seconds:.1f} s "
                f"({rate:.0f} models/min); watermark {wm}")


# ---------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------


def reindex_lock(path: str | Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive, non-blocking lock on ``path`` (``fcntl.flock``; released if the process dies).

    Raises:
        ReindexLockedError: another process holds it.
    """
    def busy(holder: str | None) -> None:
        raise ReindexLockedError(f"Another reindex is running ({holder or 'unknown holder'}; lock {path}). "
                                 "Wait for it, or stop it.", lock_path=str(path), holder=holder)

    return file_lock(path, busy=busy)


# ---------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------


def _check_embedder(catalog: Catalog, embedder: Embedder, *, rebuild: bool) -> None:
    """Refuse an embedder other than the one the catalog's vectors were made by (a run would
    re-embed every model, as long as a first run, and mix two kinds of vectors meanwhile),
    unless ``rebuild``; then record ``embedder``'s version as the catalog's.

    A catalog of an earlier fennec records no version: its vectors name theirs, and a
    catalog holding none of ``embedder.version`` belongs to another embedder.
    """
    recorded = catalog.get_state(EMBEDDER_KEY)
    if recorded is None:
        versions = catalog.vector_versions()
        if versions and embedder.version not in versions:
            recorded = max(versions, key=lambda v: (versions[v], v))
    if recorded is not None and recorded != embedder.version and not rebuild:
        raise IndexMismatchError(
            f"The catalog {catalog.path}'s archi2vec vectors were made by the embedder {recorded!r}; this run's is "
            f"{embedder.version!r} (another archi2vec version, dim or method). Run with the catalog's settings, or "
            "pass rebuild_index to re-embed every model with the new embedder (as long as a first run).",
            field="embedder_version", expected=recorded, found=embedder.version)
    if recorded != embedder.version:
        catalog.set_state(EMBEDDER_KEY, embedder.version)


@dataclasses.dataclass(frozen=True)
class _Work:
    """One model to process: from the listing (``record`` set; it moves the watermark), or
    from the catalog (``record`` None: looked up on the hub when its batch runs)."""

    repo_id: str
    record: ModelRecord | None
    when: datetime  # for the oldest-first order


_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def _work_list(hub: Hub, catalog: Catalog, *, since: datetime | None, limit: int | None,
               retry_failed: bool, now: datetime, summary: ReindexSummary,
               vector_version: str, models: Sequence[ModelRecord] | None = None) -> list[_Work]:
    """What to process, oldest first, at most ``limit``. Lists the hub (or takes ``models``)
    but looks nothing up and writes nothing: the models to redo come from the catalog."""
    listing_since = since - WATERMARK_OVERLAP if since is not None else None
    listed: dict[str, ModelRecord] = {}
    records = hub.list_models(sort="lastModified", since=listing_since) if models is None else models
    for record in records:
        summary.listed += 1
        known = catalog.get_model(record.repo_id)
        if known is not None and known.sha == record.sha and (
                (known.status == "ok" and known.vector_version == vector_version)
                or (known.status == "unsupported" and known.unsupported_by in (None, vector_version))
                or (known.next_attempt_at is not None and known.next_attempt_at > now)):
            summary.skipped += 1
            continue
        seen = listed.get(record.repo_id)  # a listing restarted after a new commit gives both
        if seen is None or (record.last_modified or _EPOCH) >= (seen.last_modified or _EPOCH):
            listed[record.repo_id] = record
    work = [_Work(r.repo_id, r, r.last_modified or _EPOCH) for r in listed.values()]
    # models embedded by another embedder version (after --rebuild-index), models another
    # embedder version could not embed, and failed models whose backoff has expired: none
    # is necessarily newer than the watermark
    again = catalog.stale_models(vector_version) + catalog.unsupported_by_other_embedder(vector_version)
    if retry_failed:
        again += catalog.due_for_retry(now=now)
    for repo_id in dict.fromkeys(again):
        if repo_id not in listed:
            known = catalog.get_model(repo_id)
            work.append(_Work(repo_id, None, (known.last_modified if known else None) or _EPOCH))
    work.sort(key=lambda w: (w.when, w.repo_id))
    if limit is not None:
        work = work[:limit]
    summary.retried += sum(1 for w in work if w.record is None)
    return work


def reindex(*, hub: Hub, catalog: Catalog, embedder: Embedder,
            limit: int | None = None, since: datetime | None = None, dry_run: bool = False,
            batch_size: int = 16, retry_failed: bool = True, progress: bool = False,
            lock_path: str | Path | None = None, now: datetime | None = None,
            rebuild_index: bool = False,
            on_batch: Callable[[ReindexSummary], None] | None = None,
            dedup: bool = True, models: Sequence[ModelRecord] | None = None,
            executor: Executor | None = None, index_dir: str | Path | None = None,
            index_save_interval: float | None = None) -> ReindexSummary:
    """Bring the catalog up to date with the hub.

    Args:
        hub: where models come from (:func:`fennec.hub.open_hub`).
        catalog: the catalog to update (the one store of the vectors).
        embedder: config → vector (:class:`Archi2VecEmbedder`).
        limit: process at most this many models (oldest first), e.g. to spread a first run.
        since: list models modified after this aware datetime instead of the watermark.
        dry_run: only list and count; write nothing (and look nothing up beyond the listing).
        batch_size: models per committed batch (the most a crash can lose).
        retry_failed: also retry failed models whose backoff has expired.
        progress: report progress on stderr (:mod:`fennec._progress`).
        lock_path: the lock file; ``reindex.lock`` beside the catalog file by default (an
            in-memory catalog, which no other process can open, takes no lock by default).
        now: a fixed time for every backoff decision (tests); by default the current time,
            read again for each failure recorded.
        rebuild_index: accept an embedder other than the one the catalog's vectors were
            made by (after an archi2vec upgrade, or another dim or method): models embedded
            by another version are re-embedded, and models another version could not embed
            are tried again. (The name is from when reindex also kept an index of the vectors.)
        on_batch: called with the running summary after each committed batch.
        dedup: build each architecture once when the embedder names architectures (an
            ``architecture_key(files, record)`` method); False builds every model (to
            measure what reuse saves: ``benchmark/arch_dedup.py``).
        models: index these models (records from :meth:`~fennec.hub.HfHub.model_info` or a
            listing) instead of listing the hub since the watermark; those already indexed at
            the same commit are skipped as usual. Such a scoped run leaves the watermark
            alone: only a listing of everything since the watermark moves it.
        executor: where the embeddings run (:mod:`fennec.engine`): in this process by
            default; a :class:`~fennec.engine.RayExecutor` runs each model's embedding (one per
            architecture) as a Ray task, with the embedder's :meth:`~Archi2VecEmbedder.unit`.
            The hub is read and the catalog written here either way, batch by batch.
        index_dir, index_save_interval: of the index reindex no longer keeps; ignored, with
            a :class:`DeprecationWarning` (they will be removed).

    Returns:
        A :class:`ReindexSummary`.

    Raises:
        ReindexLockedError: another run holds the lock.
        StorageError: the disk is full or the home is read-only; committed batches stay
            committed.
        HubUnavailableError: the listing kept failing, or the hub stayed unavailable for
            ``HUB_DOWN_AFTER`` models in a row; committed batches stay committed.
        IndexMismatchError: the catalog's vectors were made by another embedder version
            (and ``rebuild_index`` is not set).
    """
    given = [name for name, value in (("index_dir", index_dir), ("index_save_interval", index_save_interval))
             if value is not None]
    if given:
        warnings.warn(f"reindex(): {' and '.join(given)} {'is' if len(given) == 1 else 'are'} ignored: the "
                      "archi2vec vectors are kept in the catalog only, and reindex no longer writes an index "
                      "folder (an existing one may be deleted). Drop the argument; it will be removed.",
                      DeprecationWarning, stacklevel=2)
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1 or None, got {limit}.")
    if executor is not None and executor.kind != "local" and not callable(getattr(embedder, "unit", None)):
        raise InvalidInputError(f"The embedder {type(embedder).__name__} cannot run on {executor.describe()}: it "
                                "has no unit() method (Archi2VecEmbedder has one). Run without an executor.")
    lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if lock_path is not None or catalog.path != ":memory:":  # one lock per catalog file
        lock = reindex_lock(lock_path if lock_path is not None
                            else Path(catalog.path).parent / constants.REINDEX_LOCK_FILE)

    def clock() -> datetime:  # read at each decision: a run may last hours
        return now if now is not None else _utcnow()

    summary = ReindexSummary(dry_run=dry_run)
    t0 = time.perf_counter()
    with storage_errors(f"reindexing into {catalog.path}",
                        kept="Committed batches are kept; the next run resumes from them."), lock:
        start = since if since is not None else catalog.watermark
        if not dry_run:
            _check_embedder(catalog, embedder, rebuild=rebuild_index)
        work = _work_list(hub, catalog, since=start, limit=limit, retry_failed=retry_failed,
                          now=clock(), summary=summary, vector_version=embedder.version, models=models)
        LOG.info("%d models to process (%d listed since %s, %d skipped)", len(work), summary.listed,
                 start, summary.skipped)
        if dry_run:
            summary.added = sum(1 for w in work if catalog.get_model(w.repo_id) is None)
            summary.updated = len(work) - summary.added
            summary.seconds = time.perf_counter() - t0
            summary.watermark = catalog.watermark
            return summary
        bar = _progress.bar(total=len(work), desc="reindex", unit="models", enabled=progress)
        unavailable = 0  # models in a row for which the hub was unavailable
        arch_key = getattr(embedder, "architecture_key", None) if dedup else None
        architectures: dict[str, _Built] = {}  # built in this run, by architecture key
        try:
            for batch in iter_batches(work, batch_size):
                unavailable = _run_batch(batch, hub=hub, catalog=catalog, embedder=embedder,
                                         clock=clock, summary=summary, bar=bar,
                                         unavailable=unavailable, arch_key=arch_key,
                                         architectures=architectures, advance=models is None,
                                         executor=executor)
                summary.seconds = time.perf_counter() - t0
                if on_batch is not None:
                    on_batch(summary)
        finally:
            bar.close()
        summary.watermark = catalog.watermark
        summary.seconds = time.perf_counter() - t0
    LOG.info("reindex: %s", summary.line())
    return summary


def _run_batch(batch: list[_Work], *, hub: Hub, catalog: Catalog,
               embedder: Embedder, clock: Callable[[], datetime], summary: ReindexSummary,
               bar: Any, unavailable: int,
               arch_key: Callable[[ModelFiles, ModelRecord], str | None] | None = None,
               architectures: dict[str, _Built] | None = None, advance: bool = True,
               executor: Executor | None = None) -> int:
    """Process one batch and commit it; returns how many models in a row, up to the end of
    this batch, the hub was unavailable for (``unavailable`` carries it between batches).
    With ``arch_key``, each architecture is built once: ``architectures`` holds those built
    in this run, the catalog those of earlier runs, and the batch's transaction adds the new.
    ``advance=False`` (a scoped run) leaves the watermark where it is.

    The hub is read here, model by model; the embeddings run on ``executor`` (this process
    by default, :func:`_embed_all`); the outcomes are committed here, in one transaction.

    Raises:
        HubUnavailableError: for ``HUB_DOWN_AFTER`` models in a row, or not about one
            model: the hub is down; nothing of this batch is committed.
    """
    # position in the batch -> (kind, repo_id, record or None, vector or error,
    #                           embedder version of an unsupported verdict)
    outcomes: dict[int, tuple[str, str, ModelRecord | None, Any, str | None]] = {}
    architectures = {} if architectures is None else architectures
    new_architectures: list[tuple[str, _Built]] = []
    to_embed: list[tuple[int, str | None, ModelFiles, ModelRecord]] = []
    for position, item in enumerate(batch):
        record = item.record
        try:
            if record is None:  # from the catalog: what is its current commit?
                record = hub.model_info(item.repo_id)
            files = hub.fetch(record.repo_id, revision=record.sha)
        except (UnsupportedModelError, MalformedModelError) as e:
            unavailable = 0
            if record is None:  # cannot happen with fennec's hubs; a failure then
                outcomes[position] = ("failed", item.repo_id, None, e, None)
            else:
                outcomes[position] = ("unsupported", item.repo_id, record, e, None)
        except HubUnavailableError as e:
            unavailable += 1
            if e.repo_id is None:
                raise  # not about one model: the hub itself
            if unavailable >= HUB_DOWN_AFTER:
                raise HubUnavailableError(
                    f"The hub stayed unavailable for {unavailable} models in a row (the last: "
                    f"{e}); stopping. Committed batches are kept; the next run resumes.",
                    status=e.status) from e
            LOG.warning("%s: recorded as failed, retried after its backoff (%s)", item.repo_id, e)
            outcomes[position] = ("failed", item.repo_id, record, e, None)
        except (GatedModelError, ModelAccessError, ModelNotFoundError, HubError) as e:
            unavailable = 0
            outcomes[position] = ("failed", item.repo_id, record, e, None)
        else:
            unavailable = 0
            to_embed.append((position, arch_key(files, record) if arch_key is not None else None,
                             files, record))
            continue
        bar.update(1)
    records = {position: record for position, _, _, record in to_embed}
    for position, embedded in _embed_all(to_embed, embedder=embedder, catalog=catalog,
                                         architectures=architectures, new=new_architectures,
                                         summary=summary, executor=executor or LocalExecutor()):
        repo_id, record = batch[position].repo_id, records[position]
        if isinstance(embedded, (UnsupportedModelError, MalformedModelError)):
            outcomes[position] = ("unsupported", repo_id, record, embedded, embedder.version)
        elif isinstance(embedded, BaseException):  # _EmbedderFailure, or a HubError of the embedder
            outcomes[position] = ("failed", repo_id, record,
                                  embedded.__cause__ if isinstance(embedded, _EmbedderFailure) else embedded, None)
        else:
            outcomes[position] = ("ok", repo_id, record, embedded, None)
        bar.update(1)
    with catalog.transaction():
        for key, built in new_architectures:
            catalog.put_architecture(key, embedder.version, vector=built.vector,
                                     unsupported=built.unsupported, first_model=built.repo_id)
        for kind, repo_id, record, payload, unsupported_by in (outcomes[p] for p in sorted(outcomes)):
            known = catalog.get_model(repo_id)
            if kind == "ok":
                assert record is not None  # "ok" and "unsupported" outcomes carry their record
                catalog.upsert_model(record, vector=payload, vector_version=embedder.version)
                if known is None or known.status != "ok":
                    summary.added += 1
                else:
                    summary.updated += 1
            elif kind == "unsupported":
                reason = getattr(payload, "reason", None) or (
                    "malformed" if isinstance(payload, MalformedModelError) else "unsupported")
                assert record is not None
                catalog.mark_unsupported(record, str(payload), kind=reason,
                                         embedder_version=unsupported_by)
                summary.unsupported += 1
            else:
                if known is None and record is not None:  # keep what the listing said about it
                    catalog.upsert_model(record, status="failed")
                catalog.record_failure(repo_id, payload, sha=record.sha if record is not None else "",
                                       now=clock())
                summary.failed += 1
                summary.failures.append((repo_id, str(payload)))
        # only the listing moves the watermark: models looked up from the catalog are older
        listed = [w.record.last_modified for w in batch
                  if w.record is not None and w.record.last_modified is not None]
        if listed and advance:
            catalog.advance_watermark(max(listed))
    summary.batches += 1
    return unavailable


class _EmbedderFailure(Exception):
    """An unexpected error of the embedder on one model (its cause is the real error)."""


@dataclasses.dataclass(frozen=True)
class _Built:
    """What the embedder made of one architecture: a vector, or (kind, reason) unsupported."""

    repo_id: str  # the model it was built for
    vector: np.ndarray | None = None
    unsupported: tuple[str, str] | None = None


def _embed_all(items: list[tuple[int, str | None, ModelFiles, ModelRecord]], *, embedder: Embedder,
               catalog: Catalog, architectures: dict[str, _Built], new: list[tuple[str, _Built]],
               summary: ReindexSummary, executor: Executor) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, vector or exception)`` for every ``(position, architecture key or
    None, files, record)``, building each architecture once: a model whose key was built
    already (in this run: ``architectures``; before: the catalog) reuses its vector or
    unsupported verdict; the first model of each new key (and every model without a key) is
    a unit of ``executor``. A new architecture's outcome goes to ``architectures`` and
    ``new``. Unexpected embedder failures are not remembered: the next model of that
    architecture is built in the next round."""
    waiting = items
    while waiting:
        leaders: dict[int, tuple[int, str | None, ModelFiles, ModelRecord]] = {}
        leading: set[str] = set()
        followers = []
        for item in waiting:
            position, key, _, record = item
            if key is not None:
                built = architectures.get(key) or _built_before(catalog, key, embedder, architectures)
                if built is not None:
                    summary.reused += 1
                    yield position, _reuse(built, key, record, embedder)
                    continue
                if key in leading:  # its architecture is being built: wait for it
                    followers.append(item)
                    continue
                leading.add(key)
            leaders[position] = item
        waiting = followers
        summary.built += len(leaders)
        units = [_embedding_unit(position, embedder, files, record, executor)
                 for position, (_, _, files, record) in leaders.items()]
        for result in executor.map(units):
            position, key, _, record = leaders[cast(int, result.key)]  # units are keyed by position
            try:
                vector = _unit_vector(result, embedder, record)
            except UnsupportedModelError as e:
                if key is not None:
                    message, prefix = str(e), f"{record.repo_id}: "
                    reason = message[len(prefix):] if message.startswith(prefix) else message
                    architectures[key] = _Built(record.repo_id, unsupported=(e.reason, reason))
                    new.append((key, architectures[key]))
                yield position, e
            except (_EmbedderFailure, HubError) as e:
                yield position, e
            else:
                if key is not None:
                    architectures[key] = _Built(record.repo_id, vector=vector)
                    new.append((key, architectures[key]))
                yield position, vector


def _built_before(catalog: Catalog, key: str, embedder: Embedder,
                  architectures: dict[str, _Built]) -> _Built | None:
    """The catalog's outcome for architecture ``key`` (kept in ``architectures``), or None."""
    entry = catalog.get_architecture(key, embedder.version)
    if entry is None:
        return None
    unsupported = None if entry.vector is not None else (
        entry.unsupported_kind or "unsupported", entry.unsupported_reason or "")
    built = architectures[key] = _Built(entry.first_model or "", entry.vector, unsupported)
    return built


def _reuse(built: _Built, key: str, record: ModelRecord, embedder: Embedder) -> Any:
    """The vector of an architecture built already, or the exception of its verdict."""
    if built.unsupported is not None:
        kind, reason = built.unsupported
        return UnsupportedModelError(
            f"{record.repo_id}: {reason} (its architecture, as {built.repo_id}'s)",
            repo_id=record.repo_id, revision=record.sha, reason=kind)
    if built.vector is None or built.vector.shape != (embedder.dim,):
        failure = _EmbedderFailure("bad cached vector")
        failure.__cause__ = InvalidInputError(
            f"{record.repo_id}: the architecture vector cached for key {key} has shape "
            f"{None if built.vector is None else built.vector.shape}, expected ({embedder.dim},).")
        return failure
    return built.vector


def _embedding_unit(position: int, embedder: Embedder, files: ModelFiles, record: ModelRecord,
                    executor: Executor) -> Unit:
    """The embedding of one model as a unit of ``executor``: the embedder itself in this
    process; elsewhere, the embedder's :meth:`Archi2VecEmbedder.unit` (plain data)."""
    if executor.kind == "local":
        return Unit(position, _embed, (embedder, files, record))
    func, args, resources = embedder.unit(files, record)  # type: ignore[attr-defined]
    return Unit(position, func, args, resources=resources)


def _unit_vector(result: Result, embedder: Embedder, record: ModelRecord) -> np.ndarray:
    """The checked vector of an embedding unit's result, or the exception to record."""
    if result.error is not None:
        error = result.error
        if isinstance(error, (UnsupportedModelError, HubError, _EmbedderFailure)):
            raise error  # from _embed, in this process
        if result.lost:
            LOG.warning("Embedding %s was lost with its worker: %s", record.repo_id, error)
            raise _EmbedderFailure("lost") from EngineError(
                f"{record.repo_id}: the worker embedding it was lost ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:300] if str(error) else 'no details'}); retried after its backoff.")
        LOG.warning("Embedding %s failed: %s: %s", record.repo_id, type(error).__name__, error)
        raise _EmbedderFailure(str(error)) from error
    if isinstance(result.value, np.ndarray):  # _embed, in this process: checked already
        return result.value
    kind, payload, reason = _remote_answer(result.value, record)
    if kind == "unsupported":
        raise UnsupportedModelError(payload, repo_id=record.repo_id, revision=record.sha, reason=reason)
    return _checked(payload, embedder, record)


def _remote_answer(value: Any, record: ModelRecord) -> tuple[str, Any, str]:
    """:func:`embed_remotely`'s answer, checked for its shape (it crossed the network)."""
    if (isinstance(value, (tuple, list)) and len(value) == 3 and value[0] in ("ok", "unsupported")
            and (value[0] == "ok" or (isinstance(value[1], str) and isinstance(value[2], str)))):
        return value[0], value[1], value[2]
    raise _EmbedderFailure("bad answer") from InvalidInputError(
        f"{record.repo_id}: the worker's answer is not (kind, vector or message, reason): {str(value)[:200]}")


def _embed(embedder: Embedder, files: ModelFiles, record: ModelRecord) -> np.ndarray:
    """The embedder's vector, checked; an unexpected error on one model must not stop the
    run (or every later run would stop at the same model): it is recorded as a failure."""
    try:
        vector = embedder(files, record)
    except (UnsupportedModelError, HubError):
        raise
    except Exception as e:  # deliberately broad: a bug or a crash inside model building
        LOG.warning("Embedding %s failed: %s: %s", record.repo_id, type(e).__name__, e, exc_info=True)
        raise _EmbedderFailure(str(e)) from e
    return _checked(vector, embedder, record)


def _checked(vector: Any, embedder: Embedder, record: ModelRecord) -> np.ndarray:
    """``vector`` as float32 of the embedder's length with finite values."""
    try:
        vector = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise _EmbedderFailure("not a vector") from InvalidInputError(
            f"{record.repo_id}: the embedder returned something that is not a vector ({e}).")
    if vector.shape != (embedder.dim,) or not np.all(np.isfinite(vector)):
        raise _EmbedderFailure(f"bad vector {vector.shape}") from InvalidInputError(
            f"{record.repo_id}: the embedder returned shape {vector.shape} (expected "
            f"({embedder.dim},)) or non-finite values.")
    return vector


# ---------------------------------------------------------------------------------------
# Periodic runs
# ---------------------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"6h"`` or ``"1d"``.

    Raises:
        InvalidInputError: anything else, or zero.

    Example:
        >>> parse_duration("15m"), parse_duration("1.5h")
        (900.0, 5400.0)
    """
    m = _DURATION.match(text or "")
    if not m:
        raise InvalidInputError(f"Cannot read the duration {text!r}; write e.g. 90s, 15m, 6h or 1d.")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds <= 0:
        raise InvalidInputError(f"The duration must be positive, got {text!r}.")
    return seconds


def run_every(interval: float, run: Callable[[], Any], *, sleep: Callable[[float], None] = time.sleep,
              max_runs: int | None = None) -> int:
    """Call ``run`` every ``interval`` seconds (start to start) in the foreground.

    A run that fails on the hub, the file system or the catalog (``database is locked``
    when another process holds a long write) is logged and the loop goes on: the next run
    resumes. Ctrl-C stops the loop. Returns the number of runs.
    """
    runs = 0
    while max_runs is None or runs < max_runs:
        started = time.monotonic()
        try:
            run()
        except ReindexLockedError as e:
            LOG.warning("Skipping this run: %s", e)
        except (HubError, OSError, sqlite3.OperationalError) as e:
            LOG.error("Run failed (%s: %s); the next run resumes from the watermark", type(e).__name__, e)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        wait = max(interval - (time.monotonic() - started), 0.0)
        LOG.info("Next run in %.0f s", wait)
        sleep(wait)
    return runs
