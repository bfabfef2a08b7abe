"""What fennec knows about models and tasks, in one SQLite file.

Tables (schema version :data:`SCHEMA_VERSION`, ``PRAGMA user_version``):

- ``models``: one row per Hub model: id, commit sha, library, pipeline tag, created and
  modified times, downloads, likes, parameter count, family, its vector (float32 blob) with
  the vector's dimension and version, status (``ok``, ``unsupported``, ``failed``), last
  error, and the retry state of a failing model (attempts, next attempt time).
- ``tasks``: datasets that models were fine-tuned on (published tables, the zoo, users).
- ``sources``: one row per imported table, keeping where it comes from (repository, file,
  commit, paper), its metric and its protocol.
- ``transfer_results``: (source, variant, task, model) → value, with the metric and
  protocol of that value. ``variant`` names the table inside a source (``results`` = the
  main fine-tuning table, ``results_linear``, ``seed0`` …). Models are named as the source
  names them (Hub ids for some tables, torchvision names for others; the tables shipped
  with fennec are imported under Hub ids, :meth:`Catalog.import_shipped_tables`): they are
  not foreign keys into ``models``.
- ``reindex_state``: key/value pairs, among them the reindex watermark.
- ``architectures``: (architecture key, embedder version) → the vector, or why that
  embedder cannot embed it (:func:`archi2vec.architecture_key`), so that reindexing builds
  each architecture once however many fine-tunes share it.

The database runs in WAL mode (readers never block the writer), every write is a
transaction, and opening an older database migrates it in place, one version at a time,
each in its own transaction. A database from a newer fennec is refused.

A new catalog is built under a temporary name and linked into place once its schema is
written, so a catalog file is never half-made; an existing file that is not a fennec
catalog (empty, not SQLite, another program's database, damaged) is refused and never
overwritten (:class:`~fennec.errors.CatalogDamagedError`). :func:`check_catalog` says what
is wrong with one (``fennec catalog check``), :func:`repair_catalog` copies what SQLite can
still read into a new catalog and keeps the damaged file beside it (``fennec catalog
repair``). A full disk or a read-only folder is a :class:`~fennec.errors.StorageError`;
``Catalog(path, read_only=True)`` reads a catalog on read-only storage.

Example:
    >>> with Catalog(fennec_home() / "catalog.sqlite") as cat:  # doctest: +SKIP
    ...     cat.import_shipped_tables()  # fennec.published, models under their Hub ids
    ...     cat.transfer_results(task="cifar10", variant="results")[:3]
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np

from fennec import constants
from fennec._io import storage_error
from fennec.catalog.importers import ImportSummary, import_transfer_results, import_zoo_ground_truth
from fennec.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from fennec.errors import (
    CatalogDamagedError,
    CatalogError,
    CatalogVersionError,
    InvalidInputError,
    PublishedDataError,
    StorageError,
)
from fennec.hub.card import CardMetadata, card_metadata

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from fennec.hub.records import ModelRecord

__all__ = [
    "SCHEMA_VERSION",
    "ArchitectureEntry",
    "Catalog",
    "CatalogCheck",
    "CatalogModel",
    "ImportSummary",
    "RepairSummary",
    "TransferResult",
    "check_catalog",
    "repair_catalog",
]

LOG = logging.getLogger(__name__)

STATUSES = ("ok", "unsupported", "failed")
#: The tables of every fennec catalog (schema 1 onwards), parents before children.
TABLES = ("sources", "tasks", "models", "reindex_state", "transfer_results")


@overload
def _iso(value: datetime) -> str: ...


@overload
def _iso(value: None) -> None: ...


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInputError(f"Datetimes must be timezone-aware, got {value!r}; use tzinfo=timezone.utc.")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _pack(vector: Any) -> tuple[bytes, int]:
    v = np.asarray(vector, dtype=np.float32)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise InvalidInputError(
            f"A model vector must be a non-empty finite 1-D array; found shape {v.shape}"
            + ("" if v.ndim != 1 or v.size == 0 else " with NaN or inf") + ".")
    return np.ascontiguousarray(v, dtype="<f4").tobytes(), int(v.size)


@dataclasses.dataclass(frozen=True)
class CatalogModel:
    """One row of ``models``. ``vector`` is a read-only float32 array or None."""

    repo_id: str
    sha: str
    library: str | None
    pipeline_tag: str | None
    created_at: datetime | None
    last_modified: datetime | None
    downloads: int
    likes: int
    parameters: int | None
    family: str | None
    vector: np.ndarray | None
    vector_version: str | None
    status: str
    last_error: str | None
    error_type: str | None
    attempts: int
    next_attempt_at: datetime | None
    updated_at: datetime
    tags: tuple[str, ...] = ()
    unsupported_by: str | None = None  # the embedder version that could not embed it

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets named by the repository's ``dataset:`` tags (its model card's
        ``datasets``), e.g. the pre-training data."""
        return tuple(t.split(":", 1)[1] for t in self.tags if t.startswith("dataset:"))

    @property
    def card(self) -> CardMetadata:
        """Its model card's ``base_model``, ``datasets`` and ``library_name``, read back from the
        tags the hub derives from the card (checked and bounded: :func:`fennec.hub.card.card_metadata`)."""
        return card_metadata(self.tags, library=self.library)


@dataclasses.dataclass(frozen=True)
class ArchitectureEntry:
    """One row of ``architectures``: a vector (read-only float32), or an unsupported verdict
    (``unsupported_kind`` such as ``archi2vec``, and its reason without a model id)."""

    arch_key: str
    embedder_version: str
    vector: np.ndarray | None
    unsupported_kind: str | None
    unsupported_reason: str | None
    first_model: str | None  # the model it was built for


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """One row of ``transfer_results``."""

    source_id: str
    variant: str
    task_id: str
    model: str
    value: float
    metric: str | None
    protocol: str | None


class Catalog:
    """The SQLite catalog; opening creates or migrates it.

    Args:
        path: the database file (created with its folder if absent), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock.
        read_only: open an existing catalog for reading only: nothing is created, migrated
            or written, and a catalog on read-only storage can be read.

    Raises:
        CatalogVersionError: the file was written by a newer fennec.
        CatalogDamagedError: the file is not a fennec catalog (empty, not SQLite, without
            the catalog's tables) or SQLite finds it damaged; it is left untouched.
        StorageError: the folder is read-only or the disk is full (the catalog is intact).
        CatalogError: a migration failed (the database is then left at the last version
            that succeeded), or ``read_only`` and the file is missing or older.

    Example:
        >>> cat = Catalog(":memory:")
        >>> cat.schema_version == SCHEMA_VERSION
        True
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0, read_only: bool = False,
                 _new: bool = False):  # _new: ``path`` is a file :func:`_create` is building
        self.path = str(path)
        self.read_only = read_only
        memory = self.path == ":memory:"
        if not memory and not _new:
            file = Path(self.path)
            if not read_only and not file.exists():
                try:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    _create(file, timeout)
                except OSError as e:
                    raise _storage_error(e, self.path) from e
            _check_file(file)
        self._lock = threading.RLock()
        try:
            self._db = _connect(self.path, timeout=timeout, read_only=read_only)
            self._db.execute("PRAGMA foreign_keys = ON")
            if not memory and not _new:
                self._check_schema()  # before any write: another program's database stays as it is
            if not memory and not read_only:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    LOG.warning("%s: journal mode is %s, not WAL", self.path, mode)
                self._db.execute("PRAGMA synchronous = NORMAL")
            if read_only:
                self._check_version(self.schema_version)
            else:
                self._migrate()
        except sqlite3.Error as e:  # not about the file itself (those are converted): e.g. busy
            self._close_quietly()
            raise CatalogError(f"{self.path}: SQLite failed while opening the catalog ({e}). If this persists, "
                               f"run `fennec catalog check {self.path}`.", path=self.path) from e
        except BaseException:  # CatalogVersionError, a failed migration, Ctrl-C: no leaked connection
            self._close_quietly()
            raise

    def _check_schema(self) -> None:
        """Refuse a database that is not a fennec catalog (schema version 0, or tables missing)."""
        version = self.schema_version
        self._check_version(version)  # a newer fennec's catalog may have other tables
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0:
            found = f"tables {', '.join(sorted(tables))}" if tables else "no tables"
            raise _damaged_error(self.path, f"it is an SQLite database with {found} and schema version 0, "
                                            "not a fennec catalog")
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise _damaged_error(self.path, f"schema version {version} but the tables {', '.join(missing)} "
                                            "are missing")
        if self.read_only and version < SCHEMA_VERSION:
            raise CatalogError(f"{self.path} has catalog schema version {version}, older than this fennec's "
                               f"{SCHEMA_VERSION}, and is opened read-only, so it cannot be migrated. Run a "
                               "command that writes it (e.g. `fennec fit`) once where it is writable.",
                               path=self.path)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.path!r}, schema_version={self.schema_version})"

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        Nested calls join the outer transaction.
        """
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # a failed COMMIT (e.g. a deferred constraint) leaves the transaction open:
                # roll it back, or later transactions would silently join it. SQLite may
                # have rolled back already (I/O error, disk full): a second ROLLBACK would
                # raise and hide the original error.
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except (sqlite3.Error, CatalogError, StorageError) as rollback_error:
                        LOG.error("%s: ROLLBACK failed (%s)", self.path, rollback_error)
                raise

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise CatalogVersionError(
                f"{self.path} has catalog schema version {version}, but this fennec supports "
                f"up to {SCHEMA_VERSION}. Upgrade fennec, or use another FENNEC_HOME.",
                path=self.path, found=version, supported=SCHEMA_VERSION)

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            self._check_version(version)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                try:
                    with self.transaction() as db:
                        # read again under the write lock: another process opening the same
                        # file may have applied this step since the read above
                        current = self.schema_version
                        self._check_version(current)
                        if current >= target:
                            continue
                        LOG.info("Migrating %s: schema %d -> %d", self.path, target - 1, target)
                        for statement in _statements(MIGRATIONS[target - 1]):
                            db.execute(statement)
                        db.execute(f"PRAGMA user_version = {target}")
                except sqlite3.Error as e:
                    raise CatalogError(f"{self.path}: migration to schema {target} failed ({e}); "
                                       f"the catalog stays at version {target - 1}.", path=self.path) from e

    # -- models ---------------------------------------------------------------------------

    def upsert_model(self, record: ModelRecord, *, status: str = "ok", family: str | None = None,
                     vector: ArrayLike | None = None, vector_version: str | None = None,
                     last_error: str | None = None, error_type: str | None = None,
                     unsupported_by: str | None = None) -> None:
        """Insert or replace a model from a record with the attributes of
        :class:`fennec.hub.ModelRecord` (``repo_id``, ``sha``, ``library`` …).

        A successful upsert (``status="ok"``) clears the error and retry state. With
        ``vector=None`` an existing vector is kept if the sha did not change. ``family``
        defaults to the record's ``model_type``. ``unsupported_by`` (status ``unsupported``
        only) is the embedder version that could not embed the model.

        Raises:
            InvalidInputError: unknown status, a bad vector, or a vector without a version.
        """
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {STATUSES}, got {status!r}.")
        blob, dim = (None, None)
        if vector is not None:
            if not vector_version:
                raise InvalidInputError("A vector needs its vector_version (e.g. archi2vec.EMBEDDER_VERSION).")
            blob, dim = _pack(vector)
        with self.transaction() as db:
            old = db.execute("SELECT sha, vector, vector_dim, vector_version, attempts FROM models "
                             "WHERE repo_id = ?", (record.repo_id,)).fetchone()
            if blob is None and old is not None and old["sha"] == record.sha:
                blob, dim, vector_version = old["vector"], old["vector_dim"], old["vector_version"]
            attempts = 0 if status == "ok" or old is None else old["attempts"]
            db.execute(
                """INSERT OR REPLACE INTO models (repo_id, sha, library, pipeline_tag, created_at,
                   last_modified, downloads, likes, parameters, family, vector, vector_dim,
                   vector_version, status, last_error, error_type, attempts, next_attempt_at, updated_at,
                   tags, unsupported_by)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)""",
                (record.repo_id, record.sha, getattr(record, "library", None),
                 getattr(record, "pipeline_tag", None), _iso(getattr(record, "created_at", None)),
                 _iso(getattr(record, "last_modified", None)), int(getattr(record, "downloads", 0) or 0),
                 int(getattr(record, "likes", 0) or 0), getattr(record, "parameters", None),
                 family or getattr(record, "model_type", None),
                 blob, dim, vector_version if blob is not None else None, status,
                 last_error, error_type, attempts, _iso(_now()),
                 json.dumps([str(t) for t in (getattr(record, "tags", None) or ())]),
                 unsupported_by if status == "unsupported" else None))

    def record_failure(self, repo_id: str, error: BaseException | str, *, sha: str = "",
                       now: datetime | None = None, base_delay: timedelta = timedelta(hours=1),
                       max_delay: timedelta = timedelta(days=7)) -> CatalogModel:
        """Record that a model failed; it becomes due again after an exponential backoff.

        The n-th consecutive failure schedules the next attempt ``base_delay * 2**(n-1)``
        later (capped at ``max_delay``). Metadata is kept, and so is the vector unless
        ``sha`` names another commit than the one it was computed from.

        Returns:
            The updated row.
        """
        now = now or _now()
        message = str(error) if not isinstance(error, str) else error
        kind = type(error).__name__ if not isinstance(error, str) else None
        with self.transaction() as db:
            old = db.execute("SELECT attempts, sha FROM models WHERE repo_id = ?", (repo_id,)).fetchone()
            attempts = (old["attempts"] if old is not None else 0) + 1
            delay = min(base_delay * (2 ** min(attempts - 1, 30)), max_delay)
            if old is None:
                db.execute("INSERT INTO models (repo_id, sha, status, updated_at) VALUES (?, ?, 'failed', ?)",
                           (repo_id, sha, _iso(now)))
            db.execute("""UPDATE models SET status = 'failed', last_error = ?, error_type = ?,
                          attempts = ?, next_attempt_at = ?, updated_at = ?, unsupported_by = NULL,
                          sha = CASE WHEN ? != '' THEN ? ELSE sha END WHERE repo_id = ?""",
                       (message[:2000], kind, attempts, _iso(now + delay), _iso(now), sha, sha, repo_id))
            if old is not None and sha and sha != old["sha"]:  # that vector is another commit's
                db.execute("UPDATE models SET vector = NULL, vector_dim = NULL, vector_version = NULL "
                           "WHERE repo_id = ?", (repo_id,))
        model = self.get_model(repo_id)
        assert model is not None  # written above
        return model

    def mark_unsupported(self, record: ModelRecord, reason: str, *, kind: str = "unsupported",
                         embedder_version: str | None = None) -> None:
        """Record a model fennec cannot use, with why.

        Args:
            record: the model (:class:`fennec.hub.ModelRecord`).
            reason: the message (``last_error``).
            kind: the reason's name (``error_type``), e.g. ``remote_code``, ``malformed``
                or ``archi2vec``.
            embedder_version: the embedder version that could not embed the model, when
                the verdict is the embedder's: :meth:`unsupported_by_other_embedder` then
                returns it once the embedder changes. None for verdicts that depend on the
                commit alone (remote code, a malformed config), retried only on a new commit.
        """
        self.upsert_model(record, status="unsupported", last_error=reason, error_type=kind,
                          unsupported_by=embedder_version)

    def unsupported_by_other_embedder(self, embedder_version: str) -> list[str]:
        """Unsupported models that another embedder version could not embed (to retry)."""
        rows = self._db.execute(
            "SELECT repo_id FROM models WHERE status = 'unsupported' AND unsupported_by IS NOT NULL "
            "AND unsupported_by != ? ORDER BY repo_id", (embedder_version,)).fetchall()
        return [r["repo_id"] for r in rows]

    def due_for_retry(self, *, now: datetime | None = None) -> list[str]:
        """Failed models whose backoff has expired, oldest first."""
        rows = self._db.execute(
            "SELECT repo_id FROM models WHERE status = 'failed' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at", (_iso(now or _now()),)).fetchall()
        return [r["repo_id"] for r in rows]

    def stale_models(self, vector_version: str) -> list[str]:
        """``ok`` models whose vector is missing or of another version (to re-embed)."""
        rows = self._db.execute(
            "SELECT repo_id FROM models WHERE status = 'ok' AND (vector_version IS NULL "
            "OR vector_version != ?) ORDER BY repo_id", (vector_version,)).fetchall()
        return [r["repo_id"] for r in rows]

    def remove_model(self, repo_id: str) -> bool:
        """Delete a model; True if it existed."""
        with self.transaction() as db:
            return db.execute("DELETE FROM models WHERE repo_id = ?", (repo_id,)).rowcount > 0

    def get_model(self, repo_id: str) -> CatalogModel | None:
        row = self._db.execute("SELECT * FROM models WHERE repo_id = ?", (repo_id,)).fetchone()
        return _model(row) if row is not None else None

    def models(self, *, status: str | None = None, library: str | None = None,
               search: str | None = None, order: str = "last_modified",
               limit: int | None = None) -> list[CatalogModel]:
        """Models, filtered and ordered (``last_modified``, ``downloads``, ``likes``,
        ``repo_id``; descending except ``repo_id``)."""
        orders = {"last_modified": "last_modified DESC", "downloads": "downloads DESC",
                  "likes": "likes DESC", "repo_id": "repo_id"}
        if order not in orders:
            raise InvalidInputError(f"order must be one of {sorted(orders)}, got {order!r}.")
        where, args = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if library is not None:
            where.append("library = ?")
            args.append(library)
        if search:
            where.append("repo_id LIKE ? ESCAPE '\\'")
            args.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql = f"SELECT * FROM models WHERE {' AND '.join(where)} ORDER BY {orders[order]}, repo_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_model(r) for r in self._db.execute(sql, args).fetchall()]

    def count_models(self) -> dict[str, int]:
        """Number of models per status."""
        rows = self._db.execute("SELECT status, COUNT(*) AS n FROM models GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {r["status"]: r["n"] for r in rows}

    def vector_versions(self) -> dict[str, int]:
        """Number of ``ok`` models with a vector, per vector version."""
        rows = self._db.execute("SELECT vector_version, COUNT(*) AS n FROM models WHERE status = 'ok' "
                                "AND vector IS NOT NULL GROUP BY vector_version").fetchall()
        return {r["vector_version"]: r["n"] for r in rows}

    def vectors(self, *, version: str | None = None) -> tuple[list[str], np.ndarray]:
        """Ids and vectors (N, D) float32 of the ``ok`` models with a vector of ``version``.

        Raises:
            CatalogError: the vectors have different dimensions (mixed versions; pass one).
        """
        sql = "SELECT repo_id, vector, vector_dim FROM models WHERE status = 'ok' AND vector IS NOT NULL"
        args: list[Any] = []
        if version is not None:
            sql += " AND vector_version = ?"
            args.append(version)
        rows = self._db.execute(sql + " ORDER BY repo_id", args).fetchall()
        dims = {r["vector_dim"] for r in rows}
        if len(dims) > 1:
            raise CatalogError(f"Vectors of different dimensions {sorted(dims)} in {self.path}; "
                               "pass the version to use.", path=self.path)
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        matrix = np.stack([np.frombuffer(r["vector"], dtype="<f4") for r in rows]).astype(np.float32)
        return [r["repo_id"] for r in rows], matrix

    # -- tasks and transfer results -------------------------------------------------------

    def upsert_task(self, task_id: str, *, kind: str = "published", n_classes: int | None = None,
                    n_samples: int | None = None, metadata: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute("""INSERT INTO tasks (task_id, kind, n_classes, n_samples, metadata)
                          VALUES (?, ?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET
                          kind = excluded.kind,
                          n_classes = COALESCE(excluded.n_classes, n_classes),
                          n_samples = COALESCE(excluded.n_samples, n_samples),
                          metadata = excluded.metadata""",
                       (task_id, kind, n_classes, n_samples, json.dumps(metadata or {}, sort_keys=True)))

    def tasks(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT task_id, kind, n_classes, n_samples, metadata FROM tasks "
                                "ORDER BY task_id").fetchall()
        return [dict(r) | {"metadata": json.loads(r["metadata"])} for r in rows]

    def transfer_results(self, *, task: str | None = None, model: str | None = None,
                         source: str | None = None, variant: str | None = None) -> list[TransferResult]:
        where, args = ["1 = 1"], []
        for column, value in (("task_id", task), ("model", model), ("source_id", source),
                              ("variant", variant)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self._db.execute(
            f"SELECT * FROM transfer_results WHERE {' AND '.join(where)} "
            "ORDER BY source_id, variant, task_id, value DESC, model", args).fetchall()
        return [TransferResult(r["source_id"], r["variant"], r["task_id"], r["model"], r["value"],
                               r["metric"], r["protocol"]) for r in rows]

    def sources(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM sources ORDER BY source_id").fetchall()
        return [dict(r) | {"header": json.loads(r["header"])} for r in rows]

    def import_table(self, source_id: str, tables: dict[str, dict[str, dict[str, Any]]], *,
                     metric: str | dict[str, str] | None, protocol: str | None,
                     source: dict[str, Any] | None = None, header: dict[str, Any] | None = None,
                     task_kind: str = "published") -> ImportSummary:
        """Replace one source's results: ``tables`` maps variant → task → model → value.

        Null (None / NaN) cells are skipped. ``metric`` may be one string or a mapping
        task → metric. Everything happens in one transaction.

        Raises:
            InvalidInputError: a value that is not a number.
        """
        source = source or {}
        n, skipped, tasks, models = 0, 0, set(), set()
        with self.transaction() as db:
            db.execute("DELETE FROM sources WHERE source_id = ?", (source_id,))  # cascades
            db.execute("""INSERT INTO sources (source_id, repo, path, commit_sha, paper, metric,
                          protocol, header, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                       (source_id, source.get("repo"), source.get("path"), source.get("commit"),
                        source.get("paper"), json.dumps(metric) if isinstance(metric, dict) else metric,
                        protocol, json.dumps(header or {}, sort_keys=True, default=str), _iso(_now())))
            for variant, table in tables.items():
                for task_id, row in table.items():
                    if task_id not in tasks:
                        db.execute("INSERT OR IGNORE INTO tasks (task_id, kind) VALUES (?, ?)",
                                   (task_id, task_kind))
                        tasks.add(task_id)
                    task_metric = metric.get(task_id) if isinstance(metric, dict) else metric
                    for model, value in row.items():
                        if value is None or (isinstance(value, float) and math.isnan(value)):
                            skipped += 1
                            continue
                        if not isinstance(value, (int, float)) or isinstance(value, bool):
                            shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:57]}..."
                            raise InvalidInputError(
                                f"{source_id}/{variant}/{task_id}/{model}: value {shown} "
                                f"({type(value).__name__}) is not a number.")
                        db.execute("INSERT INTO transfer_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (source_id, variant, task_id, model, float(value), task_metric, protocol))
                        n += 1
                        models.add(model)
        LOG.info("Imported %s: %d results, %d tasks, %d models", source_id, n, len(tasks), len(models))
        return ImportSummary(source_id, tuple(tables), n, len(tasks), len(models), skipped)

    # The file importers live in fennec.catalog.importers (one per table kind, which does not
    # import this module); these methods are kept as their entry points on the catalog.

    def import_published_table(self, path: str | Path) -> ImportSummary:
        """Import one published transfer-result table
        (:func:`fennec.catalog.importers.import_transfer_results`)."""
        return import_transfer_results(self, path)

    def import_published_tables(self, folder: str | Path) -> list[ImportSummary]:
        """Import every table JSON of a folder that has the ``results`` shape; others are
        skipped with a warning that names them (e.g. rank-only or report-only files)."""
        out = []
        for path in sorted(Path(folder).glob("*.json")):
            try:
                out.append(self.import_published_table(path))
            except InvalidInputError as e:
                LOG.warning("Skipped %s (not a transfer-result table): %s", path.name, e)
        return out

    def import_shipped_tables(self, *, unconfirmed: bool = False) -> list[ImportSummary]:
        """Import the published tables shipped with fennec (:mod:`fennec.published`), each
        model under the Hub id of the same weights.

        Every source with fine-tuning, linear-probe or rank tables is imported as its own
        source, its tables as variants (as :meth:`import_published_table` imports a file of
        the shared index); transferability-metric scores are not results and are left out.
        A model whose Hub id is ``confirmed`` (with ``unconfirmed=True``, also ``unconfirmed``)
        is stored under that id, the others under their published name, which matches no
        Hub model; the source's header keeps the renaming (``model_ids``). All sources are
        imported in one transaction.

        Raises:
            PublishedDataError: the package data is damaged, or two models of one source map
                to the same Hub id (nothing is imported).
        """
        from fennec import published

        allowed = ("confirmed", "unconfirmed") if unconfirmed else ("confirmed",)
        staged = []
        for src in published.sources():
            if src.kind not in ("finetune", "linear_probe", "ranks"):
                continue
            ids = {name: m.hub_id for name, m in sorted(published.model_mapping(src.source_id).items())
                   if m.hub_id is not None and m.status in allowed}
            seen: dict[str, str] = {}
            for name, hub_id in ids.items():
                if hub_id in seen:
                    raise PublishedDataError(
                        f"{src.source_id}: {seen[hub_id]} and {name} both map to {hub_id}; one Hub id holds one "
                        "model's results. Fix the mapping (scripts/build_published.py writes it).",
                        path=str(published.MODELS_FILE))
                seen[hub_id] = name
            tables = {v.name: {task: {ids.get(model, model): value for model, value in row.items()}
                               for task, row in published.load_table(src.source_id, v.name).values.items()}
                      for v in src.variants}
            header = {"shipped_with_fennec": True, "kind": src.kind, "task_type": src.task_type,
                      "scales": {v.name: v.scale for v in src.variants}, "model_ids": ids,
                      "model_id_statuses": list(allowed)}
            staged.append((src, tables, header))
        with self.transaction():
            return [self.import_table(src.source_id, tables, metric=src.metric, protocol=src.protocol,
                                      source={"repo": src.repo, "path": src.path, "commit": src.commit,
                                              "paper": src.paper}, header=header)
                    for src, tables, header in staged]

    def import_zoo_ground_truth(self, path: str | Path, *, source_id: str = "zoo_ground_truth") -> ImportSummary:
        """Import the zoo benchmark's ``zoo_ground_truth.json``
        (:func:`fennec.catalog.importers.import_zoo_ground_truth`)."""
        return import_zoo_ground_truth(self, path, source_id=source_id)

    # -- architectures ---------------------------------------------------------------------

    def get_architecture(self, arch_key: str, embedder_version: str) -> ArchitectureEntry | None:
        """What ``embedder_version`` made of the architecture ``arch_key``, if it was built."""
        row = self._db.execute("SELECT * FROM architectures WHERE arch_key = ? AND embedder_version = ?",
                               (arch_key, embedder_version)).fetchone()
        if row is None:
            return None
        vector = None
        if row["vector"] is not None:
            vector = np.frombuffer(row["vector"], dtype="<f4").astype(np.float32)
            vector.flags.writeable = False
        return ArchitectureEntry(row["arch_key"], row["embedder_version"], vector,
                                 row["unsupported_kind"], row["unsupported_reason"], row["first_model"])

    def put_architecture(self, arch_key: str, embedder_version: str, *, vector: ArrayLike | None = None,
                         unsupported: tuple[str, str] | None = None,
                         first_model: str | None = None) -> None:
        """Remember what ``embedder_version`` made of an architecture: its ``vector``, or
        ``unsupported`` = (kind, reason). Replaces an earlier entry.

        Raises:
            InvalidInputError: neither or both of ``vector`` and ``unsupported``, a bad
                vector, or an empty key or version.
        """
        if not arch_key or not embedder_version:
            raise InvalidInputError("An architecture entry needs its key and its embedder version.")
        if (vector is None) == (unsupported is None):
            raise InvalidInputError("An architecture entry holds a vector or an unsupported verdict, "
                                    "exactly one of them.")
        blob, dim = _pack(vector) if vector is not None else (None, None)
        kind, reason = unsupported if unsupported is not None else (None, None)
        with self.transaction() as db:
            db.execute("""INSERT OR REPLACE INTO architectures (arch_key, embedder_version, vector,
                          vector_dim, unsupported_kind, unsupported_reason, first_model, created_at)
                          VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                       (arch_key, embedder_version, blob, dim, kind,
                        None if reason is None else str(reason)[:2000], first_model, _iso(_now())))

    # -- reindex state --------------------------------------------------------------------

    @overload
    def get_state(self, key: str, default: str) -> str: ...

    @overload
    def get_state(self, key: str, default: None = None) -> str | None: ...

    def get_state(self, key: str, default: str | None = None) -> str | None:
        """The reindex state value stored under ``key``, or ``default`` when there is none."""
        row = self._db.execute("SELECT value FROM reindex_state WHERE key = ?", (key,)).fetchone()
        return row["value"] if row is not None else default

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO reindex_state (key, value) VALUES (?, ?)", (key, value))

    @property
    def watermark(self) -> datetime | None:
        """The modification time up to which the Hub has been indexed (None: never)."""
        return _dt(self.get_state("watermark"))

    def advance_watermark(self, when: datetime) -> datetime:
        """Move the watermark forward to ``when`` (never back); returns the watermark."""
        _iso(when)  # refuses a naive datetime
        with self.transaction():
            current = self.watermark
            if current is None or when > current:
                self.set_state("watermark", _iso(when))
                return when
            return current


# -- opening, and the errors of damaged, full or read-only files ---------------------------


def _damaged_error(path: str, reason: str) -> CatalogDamagedError:
    return CatalogDamagedError(_damaged(path, reason), path=path, reason=reason)


def _damaged(path: str, reason: str) -> str:
    """The message for a file that is not a usable catalog: what, then how to recover."""
    return (f"{path} is not a usable fennec catalog: {reason}. fennec does not overwrite it. "
            f"`fennec catalog check {path}` says what is wrong; `fennec catalog repair {path}` copies what "
            "SQLite can still read into a new catalog and keeps the damaged file beside it (renamed "
            "*.damaged-<time>). Or move it aside yourself (with its -wal file, if any): the next command "
            "then starts an empty catalog (re-import results with `fennec import-results`, re-index models "
            "with `fennec reindex`).")


def _storage_error(error: OSError, path: str) -> StorageError:
    """A full disk or a read-only folder while writing the catalog ``path``."""
    return storage_error(error, doing=f"writing the catalog {path}", path=path,
                         kept="The catalog keeps its last committed transaction.") or StorageError(
        f"Cannot write the catalog {path} ({error}). It keeps its last committed transaction.",
        path=path, errno=error.errno)


def _converted(error: sqlite3.Error, path: str) -> Exception | None:
    """The fennec error for an SQLite error about the file itself (damaged, full, read-only,
    cannot be opened, I/O); None for the others (busy, constraint, SQL errors)."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return _damaged_error(path, f"SQLite says {error}")
    if code == sqlite3.SQLITE_FULL:
        return _storage_error(OSError(errno.ENOSPC, str(error), path), path)
    if code == sqlite3.SQLITE_READONLY:
        return _storage_error(OSError(errno.EROFS, str(error), path), path)
    if code == sqlite3.SQLITE_CANTOPEN:
        return StorageError(
            f"SQLite cannot open {path} ({error}): it or its folder is read-only, not accessible to this user, "
            "or not a file. Commands that only read (`fennec recommend` on a fitted home) work on read-only "
            "storage; to reindex, import or fit, make the folder writable or copy it (cp -a) to a writable "
            "place and point FENNEC_HOME (--home) at the copy. Nothing in it needs to be deleted.",
            path=path, errno=errno.EACCES)
    if code == sqlite3.SQLITE_IOERR:
        return StorageError(f"I/O error on the catalog {path} ({error}). The catalog keeps its last committed "
                            f"transaction; check the disk (full, removed, failing), then run "
                            f"`fennec catalog check {path}`.", path=path, errno=errno.EIO)
    return None


@contextlib.contextmanager
def _sqlite_errors(path: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        converted = _converted(e, path)
        if converted is None:
            raise
        raise converted from e


class _Cursor(sqlite3.Cursor):
    """A cursor whose errors about the file (:func:`_converted`) are fennec errors."""

    @property
    def _path(self) -> str:
        # only a _Connection makes _Cursors (its cursor() factory)
        return cast(_Connection, self.connection).fennec_path

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        with _sqlite_errors(self._path):
            return super().execute(sql, parameters)

    def fetchone(self) -> Any:
        with _sqlite_errors(self._path):
            return super().fetchone()

    def fetchall(self) -> list[Any]:
        with _sqlite_errors(self._path):
            return super().fetchall()

    def __next__(self) -> Any:
        with _sqlite_errors(self._path):
            return super().__next__()


class _Connection(sqlite3.Connection):
    """A connection whose cursors are :class:`_Cursor`."""

    fennec_path = ""

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return self.cursor().execute(sql, parameters)


def _connect(path: str, *, timeout: float, read_only: bool) -> _Connection:
    """A connection to ``path``. ``read_only`` opens the file with ``mode=ro``, or, when SQLite
    cannot (a WAL database on read-only storage, whose shared-memory file cannot be created)
    and no WAL file holds commits, as ``immutable``: nothing can change it there."""
    def connect(database: str, *, uri: bool = False) -> _Connection:
        return sqlite3.connect(database, timeout=timeout, isolation_level=None, check_same_thread=False,
                               factory=_Connection, uri=uri)

    if path == ":memory:" or not read_only:
        db = connect(path)
    else:
        uri = Path(path).resolve().as_uri()
        db = connect(f"{uri}?mode=ro", uri=True)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (sqlite3.OperationalError, StorageError) as e:
            cause = e.__cause__ if isinstance(e, StorageError) else e
            wal = Path(f"{path}-wal")
            if getattr(cause, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_CANTOPEN or (
                    wal.exists() and wal.stat().st_size > 0):  # immutable would ignore commits in the WAL
                db.close()
                raise
            db.close()
            LOG.info("%s: read-only storage, reading the catalog as immutable", path)
            db = connect(f"{uri}?immutable=1", uri=True)
    db.fennec_path = path
    db.row_factory = sqlite3.Row
    return db


def _check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a catalog path that is not a file or is empty (SQLite
    would take an empty file for a new database)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CatalogError(f"No catalog at {path}: build one with `fennec reindex` and `fennec import-results`.",
                           path=str(path)) from None
    if not path.is_file():
        raise _damaged_error(str(path), "it is not a file")
    if st.st_size == 0:
        raise _damaged_error(str(path), "it is empty (0 bytes)")


def _create(path: Path, timeout: float) -> None:
    """A new, empty catalog at ``path``, never half-made: the schema is written to a temporary
    file beside it that is then linked into place (if another process created ``path``
    meanwhile, its catalog is kept)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        Catalog(tmp, timeout=timeout, _new=True).close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            LOG.debug("%s was created by another process meanwhile", path)
        except OSError as e:  # a file system without hard links
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV) or path.exists():
                raise
            os.rename(tmp, path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(tmp + suffix).unlink(missing_ok=True)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _model(row: sqlite3.Row) -> CatalogModel:
    vector = None
    if row["vector"] is not None:
        vector = np.frombuffer(row["vector"], dtype="<f4").astype(np.float32)
        vector.setflags(write=False)
    return CatalogModel(
        repo_id=row["repo_id"], sha=row["sha"], library=row["library"], pipeline_tag=row["pipeline_tag"],
        created_at=_dt(row["created_at"]), last_modified=_dt(row["last_modified"]),
        downloads=row["downloads"], likes=row["likes"], parameters=row["parameters"],
        family=row["family"], vector=vector, vector_version=row["vector_version"], status=row["status"],
        last_error=row["last_error"], error_type=row["error_type"], attempts=row["attempts"],
        next_attempt_at=_dt(row["next_attempt_at"]), updated_at=datetime.fromisoformat(row["updated_at"]),
        tags=tuple(json.loads(row["tags"] or "[]")), unsupported_by=row["unsupported_by"],
    )


def iter_batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    if size < 1:
        raise InvalidInputError(f"batch size must be >= 1, got {size}.")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- checking and repairing a catalog file --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CatalogCheck:
    """What :func:`check_catalog` found. ``problems`` is empty for a healthy catalog.

    Attributes:
        path: the file.
        schema_version: its ``PRAGMA user_version`` (None: unreadable).
        counts: rows per catalog table that could be counted.
        problems: one sentence per problem found.
    """

    path: str
    schema_version: int | None
    counts: dict[str, int]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.ok:
            return (f"{self.path}: ok (schema {self.schema_version}, integrity ok; {self.counts.get('models', 0)} "
                    f"models, {self.counts.get('transfer_results', 0)} transfer results from "
                    f"{self.counts.get('sources', 0)} sources, {self.counts.get('tasks', 0)} tasks)")
        return f"{self.path}: {'; '.join(self.problems)}"


def _expected_columns(version: int) -> dict[str, set[str]]:
    """``{table: columns}`` of the schema at ``version`` (the migrations, applied in memory)."""
    db = sqlite3.connect(":memory:")
    try:
        for script in MIGRATIONS[:version]:
            db.executescript(script)
        return {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in TABLES}
    finally:
        db.close()


def check_catalog(path: str | Path) -> CatalogCheck:
    """Check a catalog file without changing it (it is opened read-only): that it is an SQLite
    database, that SQLite's integrity and foreign-key checks pass, and that its schema version
    is one this fennec reads, with every table and column of that version. ``fennec catalog
    check`` prints it.

    Raises:
        CatalogError: there is no file at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"No catalog at {path}: nothing to check.", path=str(path))
    version: int | None = None
    counts: dict[str, int] = {}
    problems: list[str] = []
    try:
        _check_file(path)
        db = _connect(str(path), timeout=5.0, read_only=True)
    except (CatalogError, StorageError) as e:
        return CatalogCheck(str(path), None, {}, (_reason(e),))
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        rows = [r[0] for r in db.execute("PRAGMA integrity_check(10)").fetchall()]
        if rows != ["ok"]:
            problems.append("SQLite's integrity check failed: " + " | ".join(rows))
        if version == 0:
            problems.append("schema version 0: an SQLite database, but not a fennec catalog")
        elif version > SCHEMA_VERSION:
            problems.append(f"schema version {version} is newer than this fennec's {SCHEMA_VERSION}: upgrade fennec")
        else:
            for table, columns in _expected_columns(version).items():
                found = {r[1] for r in db.execute(f"PRAGMA table_info({table})").fetchall()}
                if not found:
                    problems.append(f"table {table} is missing")
                elif columns - found:
                    problems.append(f"table {table} lacks the columns {', '.join(sorted(columns - found))}")
                else:
                    counts[table] = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            orphans = db.execute("PRAGMA foreign_key_check").fetchall()
            if orphans:
                parents = sorted({r[2] for r in orphans})
                problems.append(f"{len(orphans)} rows refer to missing rows of {', '.join(parents)}")
    except (CatalogError, StorageError, sqlite3.Error) as e:
        problems.append(_reason(e))
    finally:
        db.close()
    return CatalogCheck(str(path), version, counts, tuple(problems))


@dataclasses.dataclass(frozen=True)
class RepairSummary:
    """What :func:`repair_catalog` did.

    Attributes:
        path: the catalog file (now the recovered catalog, or untouched if it was healthy).
        kept_as: where the damaged file was moved (None: nothing to repair).
        recovered: rows copied into the new catalog, per table.
        lost: per table, why rows could not be read (the rest of the table was copied).
        placeholders: parent rows created for recovered results whose source or task row
            was unreadable (so that no result is dropped).
    """

    path: str
    kept_as: str | None
    recovered: dict[str, int]
    lost: dict[str, str]
    placeholders: int = 0

    def line(self) -> str:
        if self.kept_as is None:
            return f"{self.path}: healthy, nothing to repair"
        copied = ", ".join(f"{n} {t}" for t, n in self.recovered.items()) or "no rows"
        lost = "".join(f" ({why})" if t == "file" else f"; {t}: not every row was readable ({why})"
                       for t, why in self.lost.items())
        extra = f"; {self.placeholders} placeholder source/task rows" if self.placeholders else ""
        return (f"repaired {self.path}: recovered {copied}{lost}{extra}. The damaged file is kept as "
                f"{self.kept_as}.")


def repair_catalog(path: str | Path) -> RepairSummary:
    """Replace a damaged catalog by a new one holding every row SQLite can still read from it;
    the damaged file (and its ``-wal``) is kept beside it as ``<name>.damaged-<UTC time>``.
    Nothing is deleted. A file that is not SQLite at all (empty, garbage) yields an empty
    catalog. ``fennec catalog repair`` runs it; stop other fennec commands on this home first
    (a running reindex is refused).

    Returns:
        A :class:`RepairSummary` (``kept_as`` None: the catalog was healthy, nothing changed).

    Raises:
        CatalogError: no file at ``path``, or a reindex holds the home's lock.
        CatalogVersionError: the catalog was written by a newer fennec (upgrade instead).
    """
    from fennec._io import file_lock

    path = Path(path)
    check = check_catalog(path)
    if check.ok:
        return RepairSummary(str(path), None, check.counts, {})
    if check.schema_version is not None and check.schema_version > SCHEMA_VERSION:
        raise CatalogVersionError(f"{path} has catalog schema version {check.schema_version}, newer than this "
                                  f"fennec's {SCHEMA_VERSION}: upgrade fennec rather than repair it.",
                                  path=str(path), found=check.schema_version, supported=SCHEMA_VERSION)

    def busy(holder: str | None) -> None:
        raise CatalogError(f"A reindex of {path} is running ({holder or 'unknown holder'}); stop it, then repair.",
                           path=str(path))

    with file_lock(path.parent / constants.REINDEX_LOCK_FILE, busy=busy):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".repair", dir=path.parent)
        os.close(fd)
        try:
            recovered, lost, placeholders = _copy_readable_rows(path, Path(tmp), check.schema_version)
            Catalog(tmp, _new=True).close()  # migrates the copy to this fennec's schema
            kept = path.with_name(f"{path.name}.damaged-{_now().strftime('%Y%m%dT%H%M%S%fZ')}")
            os.rename(path, kept)
            for suffix in ("-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.rename(f"{path}{suffix}", f"{kept}{suffix}")
            os.rename(tmp, path)
        except OSError as e:
            raise _storage_error(e, str(path)) from e
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(tmp + suffix).unlink(missing_ok=True)
    summary = RepairSummary(str(path), str(kept), recovered, lost, placeholders)
    LOG.info("%s", summary.line())
    return summary


def _copy_readable_rows(source: Path, target: Path, version: int | None) -> tuple[dict[str, int], dict[str, str], int]:
    """Copy every row of the catalog tables SQLite can read from ``source`` into a new
    database ``target`` of the same schema version; returns (rows per table, why the rest
    of a table was unreadable, placeholder parent rows created)."""
    version = version if version and 0 < version <= SCHEMA_VERSION else SCHEMA_VERSION
    out = sqlite3.connect(target, isolation_level=None)
    recovered: dict[str, int] = {}
    lost: dict[str, str] = {}
    try:
        for script in MIGRATIONS[:version]:
            out.executescript(script)
        out.execute(f"PRAGMA user_version = {version}")
        columns = _expected_columns(version)
        try:
            src = _connect(str(source), timeout=5.0, read_only=True)
        except (CatalogError, StorageError):  # not SQLite at all: nothing to copy
            return {}, {"file": "not an SQLite database"}, 0
        try:
            out.execute("BEGIN")
            for table in TABLES:
                try:
                    have = {r[1] for r in src.execute(f"PRAGMA table_info({table})").fetchall()}
                except (CatalogError, StorageError, sqlite3.Error) as e:
                    lost[table] = _reason(e)
                    continue
                names = sorted(columns[table] & have)
                if names:
                    recovered[table], why = _copy_table(src, out, table, names)
                    if why:
                        lost[table] = why
            placeholders = out.execute(
                "INSERT OR IGNORE INTO sources (source_id, header, imported_at) SELECT DISTINCT source_id, "
                "'{\"recovered\": \"its source row was unreadable\"}', ? FROM transfer_results",
                (_iso(_now()),)).rowcount
            placeholders += out.execute("INSERT OR IGNORE INTO tasks (task_id) SELECT DISTINCT task_id "
                                        "FROM transfer_results").rowcount
            out.execute("COMMIT")
        finally:
            src.close()
    finally:
        out.close()
    return recovered, lost, placeholders


#: Rows a repair probes one by one past a damaged page (rowids up to the table's largest).
_MAX_PROBES = 10_000_000


def _copy_table(src: sqlite3.Connection, out: sqlite3.Connection, table: str, names: list[str]) -> tuple[int, str]:
    """Copy the readable rows of one table; returns (rows copied, why some were not: "" if all were).

    A scan stops at the first damaged page; the rows after it are then looked up one by one,
    by the rowids the table's indexes still hold and by every rowid up to the largest."""
    insert = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    select = f"SELECT rowid, {', '.join(names)} FROM {table}"
    done: set[int] = set()
    n = 0
    try:
        for row in src.execute(select + " ORDER BY rowid"):
            done.add(row[0])
            n += out.execute(insert, tuple(row)[1:]).rowcount
        return n, ""
    except (CatalogError, StorageError, sqlite3.Error) as e:
        first = _reason(e)
    candidates: set[int] = set()
    indexes = _readable(src, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))
    for (index,) in indexes or []:
        candidates.update(r[0] for r in _readable(src, f"SELECT rowid FROM {table} INDEXED BY \"{index}\"") or [])
    top = _readable(src, f"SELECT max(rowid) FROM {table}")
    if top and top[0][0] is not None and top[0][0] - max(done, default=0) <= _MAX_PROBES:
        candidates.update(range(max(done, default=0) + 1, top[0][0] + 1))
    unreadable = 0
    for rowid in sorted(candidates - done):
        rows = _readable(src, select + " WHERE rowid = ?", (rowid,))
        if rows is None:
            unreadable += 1
        elif rows:
            n += out.execute(insert, tuple(rows[0])[1:]).rowcount
    return n, f"{first}; {unreadable} rows past it unreadable" if unreadable else first


def _readable(db: sqlite3.Connection, sql: str, args: tuple = ()) -> list[Any] | None:
    """The rows of a query, or as many as could be read before an error; None if the very
    first read failed."""
    rows: list[Any] = []
    try:
        for row in db.execute(sql, args):
            rows.append(row)
    except (CatalogError, StorageError, sqlite3.Error):
        return rows or None
    return rows


def _reason(error: BaseException) -> str:
    """What is wrong, without the advice a damaged-catalog message carries."""
    return getattr(error, "reason", None) or str(error)
