"""The catalog's SQLite schema, as the migrations that build it (used by :mod:`fennec.catalog.store`)."""

from __future__ import annotations

# Each entry takes the schema from version i to i + 1. Never edit a released step: append.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema
    """
    CREATE TABLE models (
        repo_id        TEXT PRIMARY KEY,
        sha            TEXT NOT NULL,
        library        TEXT,
        pipeline_tag   TEXT,
        created_at     TEXT,
        last_modified  TEXT,
        downloads      INTEGER NOT NULL DEFAULT 0,
        likes          INTEGER NOT NULL DEFAULT 0,
        parameters     INTEGER,
        family         TEXT,
        vector         BLOB,
        vector_version TEXT,
        status         TEXT NOT NULL CHECK (status IN ('ok', 'unsupported', 'failed')),
        last_error     TEXT,
        updated_at     TEXT NOT NULL
    );
    CREATE INDEX models_status ON models(status);
    CREATE INDEX models_last_modified ON models(last_modified);
    CREATE TABLE tasks (
        task_id   TEXT PRIMARY KEY,
        kind      TEXT NOT NULL DEFAULT 'published',
        n_classes INTEGER,
        n_samples INTEGER,
        metadata  TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE sources (
        source_id   TEXT PRIMARY KEY,
        repo        TEXT,
        path        TEXT,
        commit_sha  TEXT,
        paper       TEXT,
        metric      TEXT,
        protocol    TEXT,
        header      TEXT NOT NULL DEFAULT '{}',
        imported_at TEXT NOT NULL
    );
    CREATE TABLE transfer_results (
        source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
        variant   TEXT NOT NULL,
        task_id   TEXT NOT NULL REFERENCES tasks(task_id),
        model     TEXT NOT NULL,
        value     REAL NOT NULL,
        metric    TEXT,
        protocol  TEXT,
        PRIMARY KEY (source_id, variant, task_id, model)
    );
    CREATE TABLE reindex_state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 1 -> 2: retry state for failing models, the vector's dimension, tasks' vectors,
    # results by model
    """
    ALTER TABLE models ADD COLUMN vector_dim INTEGER;
    ALTER TABLE models ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE models ADD COLUMN next_attempt_at TEXT;
    ALTER TABLE models ADD COLUMN error_type TEXT;
    UPDATE models SET vector_dim = length(vector) / 4 WHERE vector IS NOT NULL;
    ALTER TABLE tasks ADD COLUMN vector BLOB;
    ALTER TABLE tasks ADD COLUMN vector_version TEXT;
    CREATE INDEX transfer_results_model ON transfer_results(model);
    CREATE INDEX models_next_attempt ON models(next_attempt_at) WHERE status = 'failed';
    """,
    # 2 -> 3: the repository's tags (pre-training datasets come from its ``dataset:`` tags)
    """
    ALTER TABLE models ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    """,
    # 3 -> 4: why a model is unsupported (``error_type``: ``remote_code``, ``malformed``,
    # ``archi2vec`` …) and, when the embedder could not embed it, that embedder's version
    # (``unsupported_by``), so that a new embedder version retries it. Older rows kept
    # only the message: archi2vec verdicts get the version 'unknown' (retried once).
    """
    ALTER TABLE models ADD COLUMN unsupported_by TEXT;
    UPDATE models SET error_type = 'archi2vec', unsupported_by = 'unknown'
        WHERE status = 'unsupported' AND last_error LIKE '%archi2vec cannot embed it%';
    UPDATE models SET error_type = 'remote_code'
        WHERE status = 'unsupported' AND error_type = 'unsupported'
        AND last_error LIKE '%needs custom code%';
    """,
    # 4 -> 5: one vector (or unsupported verdict) per architecture and embedder version, so
    # that fine-tunes sharing their base's architecture (archi2vec.architecture_key) are
    # built once. ``vector`` xor ``unsupported_kind`` is set.
    """
    CREATE TABLE architectures (
        arch_key           TEXT NOT NULL,
        embedder_version   TEXT NOT NULL,
        vector             BLOB,
        vector_dim         INTEGER,
        unsupported_kind   TEXT,
        unsupported_reason TEXT,
        first_model        TEXT,
        created_at         TEXT NOT NULL,
        PRIMARY KEY (arch_key, embedder_version),
        CHECK ((vector IS NULL) != (unsupported_kind IS NULL))
    );
    """,
)
#: The schema version this fennec writes.
SCHEMA_VERSION = len(MIGRATIONS)
