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
  names them (Hub ids for some tables, torchvision names for others): they are not
  foreign keys into ``models``.
- ``reindex_state``: key/value pairs, among them the reindex watermark.

The database runs in WAL mode (readers never block the writer), every write is a
transaction, and opening an older database migrates it in place, one version at a time,
each in its own transaction. A database from a newer fennec is refused.

Example:
    >>> with Catalog(fennec_home() / "catalog.sqlite") as cat:  # doctest: +SKIP
    ...     cat.import_published_tables("../shared/data/transfer-results")
    ...     cat.transfer_results(task="cifar10", variant="results")[:3]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fennec._catalog_schema import MIGRATIONS, SCHEMA_VERSION
from fennec.errors import CatalogError, CatalogVersionError, InvalidInputError

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogModel",
    "ImportSummary",
    "TransferResult",
]

LOG = logging.getLogger(__name__)

STATUSES = ("ok", "unsupported", "failed")


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


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """What an importer wrote: the source, its variants, and the counts."""

    source_id: str
    variants: tuple[str, ...]
    n_results: int
    n_tasks: int
    n_models: int
    n_skipped: int  # null cells in the source


class Catalog:
    """The SQLite catalog; opening creates or migrates it.

    Args:
        path: the database file (created with its folder if absent), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock.

    Raises:
        CatalogVersionError: the file was written by a newer fennec.
        CatalogError: the file is not an SQLite database, or a migration failed (the
            database is then left at the last version that succeeded).

    Example:
        >>> cat = Catalog(":memory:")
        >>> cat.schema_version == SCHEMA_VERSION
        True
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    LOG.warning("%s: journal mode is %s, not WAL", self.path, mode)
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            raise CatalogError(f"{self.path} is not a usable fennec catalog ({e}). Move it away; "
                               "it will be recreated (the index is rebuilt from it).",
                               path=self.path) from e
        except BaseException:  # CatalogVersionError, a failed migration, Ctrl-C: no leaked connection
            self._close_quietly()
            raise

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
                    except sqlite3.Error as rollback_error:
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

    def upsert_model(self, record: Any, *, status: str = "ok", family: str | None = None,
                     vector: Any = None, vector_version: str | None = None,
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
        return self.get_model(repo_id)  # type: ignore[return-value]

    def mark_unsupported(self, record: Any, reason: str, *, kind: str = "unsupported",
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
                            raise InvalidInputError(
                                f"{source_id}/{variant}/{task_id}/{model}: value {value!r} is not a number.")
                        db.execute("INSERT INTO transfer_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (source_id, variant, task_id, model, float(value), task_metric, protocol))
                        n += 1
                        models.add(model)
        LOG.info("Imported %s: %d results, %d tasks, %d models", source_id, n, len(tasks), len(models))
        return ImportSummary(source_id, tuple(tables), n, len(tasks), len(models), skipped)

    def import_published_table(self, path: str | Path) -> ImportSummary:
        """Import one JSON of ``../shared/data/transfer-results/`` (see its README).

        The main table ``results`` and the other model × dataset tables (``results_linear``,
        ``results_eval``, ``results_regression`` …) become variants; the file's ``source``,
        ``metric`` (or ``metric_per_dataset``) and ``protocol`` are kept.

        Raises:
            InvalidInputError: the file has no ``results`` table of the documented shape.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"{path}: cannot read a transfer-result table ({e}).") from e
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise InvalidInputError(f"{path}: expected a JSON object with a 'results' table "
                                    "{dataset: {model: value}}.")
        tables = {k: v for k, v in data.items() if k.startswith("results") and _is_table(v)}
        if "results" not in tables:
            raise InvalidInputError(f"{path}: 'results' is not a {{dataset: {{model: value}}}} table.")
        metric = data.get("metric_per_dataset") if isinstance(data.get("metric_per_dataset"), dict) \
            else data.get("metric")
        header = {k: v for k, v in data.items() if k not in tables and k != "metric_scores"}
        return self.import_table(path.stem, tables, metric=metric, protocol=data.get("protocol"),
                                 source=data.get("source") if isinstance(data.get("source"), dict) else {},
                                 header=header)

    def import_published_tables(self, folder: str | Path) -> list[ImportSummary]:
        """Import every table JSON of a folder that has the ``results`` shape; others are
        skipped with a log line (e.g. rank-only or report-only files)."""
        out = []
        for path in sorted(Path(folder).glob("*.json")):
            try:
                out.append(self.import_published_table(path))
            except InvalidInputError as e:
                LOG.info("Skipping %s: %s", path.name, e)
        return out

    def import_zoo_ground_truth(self, path: str | Path, *, source_id: str = "zoo_ground_truth") -> ImportSummary:
        """Import the zoo benchmark's ``zoo_ground_truth.json`` (scripts/build_ground_truth.py).

        ``test_accuracy_seed0`` and ``test_accuracy_seed1`` become variants ``seed0`` and
        ``seed1``; the fine-tuning protocol is kept as JSON.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"{path}: cannot read the zoo ground truth ({e}).") from e
        tables = {f"seed{k[len('test_accuracy_seed'):]}": v for k, v in data.items()
                  if k.startswith("test_accuracy_seed") and _is_table(v)}
        if not tables:
            raise InvalidInputError(f"{path}: no test_accuracy_seed<k> table found.")
        protocol = data.get("protocol")
        return self.import_table(
            source_id, tables, metric="test accuracy (0-1)",
            protocol=json.dumps(protocol, sort_keys=True) if isinstance(protocol, dict) else protocol,
            source={"repo": "fennec", "path": str(path)}, task_kind="zoo",
            header={k: data[k] for k in ("coverage", "generated_utc", "models", "targets") if k in data})

    # -- reindex state --------------------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
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
                self.set_state("watermark", _iso(when))  # type: ignore[arg-type]
                return when
            return current


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, dict) for v in value.values())


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
        next_attempt_at=_dt(row["next_attempt_at"]), updated_at=_dt(row["updated_at"]),
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
