"""fennec.catalog: the SQLite store, its migrations and its importers."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from fennec.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog, iter_batches
from fennec.errors import CatalogError, CatalogVersionError, InvalidInputError
from fennec.hub import ModelRecord

TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "transfer-results"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def rec(repo_id: str, sha: str = "a" * 40, **kw) -> ModelRecord:
    base = dict(library="transformers", pipeline_tag="image-classification", created_at=T0,
                last_modified=T0, downloads=10, likes=1, parameters=1000, model_type="vit")
    return ModelRecord(repo_id=repo_id, sha=sha, **(base | kw))


@pytest.fixture
def cat(tmp_path):
    with Catalog(tmp_path / "catalog.sqlite") as c:
        yield c


def test_new_catalog_is_wal_and_current(cat, tmp_path):
    assert cat.schema_version == SCHEMA_VERSION == 5
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"models", "tasks", "sources", "transfer_results", "reindex_state"} <= names
    assert Catalog(":memory:").schema_version == SCHEMA_VERSION
    assert "schema_version=5" in repr(cat)


def test_model_roundtrip_vector_and_family(cat):
    v = np.arange(8, dtype=np.float64)
    cat.upsert_model(rec("org/a"), vector=v, vector_version="e1")
    m = cat.get_model("org/a")
    assert (m.sha, m.library, m.family, m.status, m.attempts) == ("a" * 40, "transformers", "vit", "ok", 0)
    assert m.created_at == T0 and m.parameters == 1000
    assert m.vector.dtype == np.float32 and np.array_equal(m.vector, v) and not m.vector.flags.writeable
    cat.upsert_model(rec("org/a", downloads=99))  # same sha, no vector given: kept
    m = cat.get_model("org/a")
    assert m.downloads == 99 and m.vector is not None and m.vector_version == "e1"
    cat.upsert_model(rec("org/a", sha="b" * 40))  # new commit: the old vector no longer applies
    assert cat.get_model("org/a").vector is None
    cat.upsert_model(rec("org/a"), family="custom")
    assert cat.get_model("org/a").family == "custom"
    assert cat.get_model("org/none") is None


@pytest.mark.parametrize("kwargs, match", [
    ({"status": "weird"}, "status"),
    ({"vector": [1.0, 2.0]}, "vector_version"),
    ({"vector": [[1.0]], "vector_version": "e"}, "1-D"),
    ({"vector": [], "vector_version": "e"}, "non-empty"),
    ({"vector": [1.0, np.nan], "vector_version": "e"}, "NaN"),
])
def test_upsert_rejects_bad_input(cat, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        cat.upsert_model(rec("org/a"), **kwargs)


def test_naive_datetimes_are_refused(cat):
    with pytest.raises(InvalidInputError, match="timezone"):
        cat.upsert_model(rec("org/a", created_at=datetime(2024, 1, 1)))
    assert cat.get_model("org/a") is None  # nothing half-written


def test_failures_back_off_exponentially_and_success_clears(cat):
    cat.upsert_model(rec("org/a"), vector=[1.0, 2.0], vector_version="e1")
    m = cat.record_failure("org/a", TimeoutError("hub timed out"), now=T0)
    assert (m.status, m.attempts, m.error_type) == ("failed", 1, "TimeoutError")
    assert m.next_attempt_at == T0 + timedelta(hours=1) and m.vector is not None
    m = cat.record_failure("org/a", "again", now=T0)
    assert m.attempts == 2 and m.next_attempt_at == T0 + timedelta(hours=2) and m.last_error == "again"
    for _ in range(20):
        m = cat.record_failure("org/a", "again", now=T0)
    assert m.next_attempt_at == T0 + timedelta(days=7)  # capped
    new = cat.record_failure("org/new", ValueError("x"), sha="c" * 40, now=T0)
    assert new.sha == "c" * 40 and new.attempts == 1
    assert cat.due_for_retry(now=T0) == []
    assert cat.due_for_retry(now=T0 + timedelta(hours=1)) == ["org/new"]
    assert cat.due_for_retry(now=T0 + timedelta(days=8)) == ["org/new", "org/a"]
    cat.upsert_model(rec("org/a"))
    m = cat.get_model("org/a")
    assert (m.status, m.attempts, m.next_attempt_at, m.last_error) == ("ok", 0, None, None)
    cat.mark_unsupported(rec("org/u"), "needs remote code")
    u = cat.get_model("org/u")
    assert (u.status, u.last_error) == ("unsupported", "needs remote code")
    assert cat.count_models() == {"ok": 1, "unsupported": 1, "failed": 1}


def test_a_failure_on_a_new_commit_drops_the_old_commits_vector(cat):
    cat.upsert_model(rec("org/a"), vector=[1.0, 2.0], vector_version="e1")
    m = cat.record_failure("org/a", "timeout", sha="b" * 40, now=T0)
    assert m.sha == "b" * 40 and m.vector is None and m.vector_version is None
    cat.upsert_model(rec("org/c"), vector=[1.0, 2.0], vector_version="e1")
    assert cat.record_failure("org/c", "timeout", sha="a" * 40, now=T0).vector is not None  # same commit


def test_unsupported_keeps_its_reason_and_the_embedder_version(cat):
    cat.mark_unsupported(rec("org/a"), "archi2vec cannot embed it: x", kind="archi2vec", embedder_version="e1")
    cat.mark_unsupported(rec("org/b"), "needs custom code", kind="remote_code")
    a = cat.get_model("org/a")
    assert (a.status, a.error_type, a.unsupported_by) == ("unsupported", "archi2vec", "e1")
    assert cat.get_model("org/b").unsupported_by is None
    assert cat.unsupported_by_other_embedder("e1") == []
    assert cat.unsupported_by_other_embedder("e2") == ["org/a"]  # org/b: only a new commit helps
    cat.upsert_model(rec("org/a"), vector=[1.0], vector_version="e2")
    assert cat.get_model("org/a").unsupported_by is None and cat.unsupported_by_other_embedder("e3") == []


def test_listing_searching_and_removing(cat):
    for i, name in enumerate(["org/vit_a", "org/vitXa", "timm/resnet", "org/50%"]):
        cat.upsert_model(rec(name, downloads=i, last_modified=T0 + timedelta(days=i),
                             library="timm" if name.startswith("timm") else "transformers"))
    assert [m.repo_id for m in cat.models()] == ["org/50%", "timm/resnet", "org/vitXa", "org/vit_a"]
    assert [m.repo_id for m in cat.models(search="vit_")] == ["org/vit_a"]  # _ is literal
    assert [m.repo_id for m in cat.models(search="%")] == ["org/50%"]
    assert [m.repo_id for m in cat.models(library="timm")] == ["timm/resnet"]
    assert [m.repo_id for m in cat.models(order="repo_id", limit=2)] == ["org/50%", "org/vitXa"]
    assert cat.models(status="failed") == []
    with pytest.raises(InvalidInputError):
        cat.models(order="size")
    assert cat.remove_model("org/vitXa") and not cat.remove_model("org/vitXa")


def test_vectors_for_the_index(cat):
    assert cat.vectors()[0] == []
    cat.upsert_model(rec("b"), vector=[1, 2, 3], vector_version="e1")
    cat.upsert_model(rec("a"), vector=[4, 5, 6], vector_version="e1")
    cat.upsert_model(rec("c"))  # no vector
    cat.record_failure("b", "x")  # failed models are left out
    ids, matrix = cat.vectors()
    assert ids == ["a"] and matrix.shape == (1, 3) and matrix.dtype == np.float32
    cat.upsert_model(rec("b"), vector=[1, 2], vector_version="e2")
    with pytest.raises(CatalogError, match="dimensions"):
        cat.vectors()
    assert cat.vectors(version="e2")[0] == ["b"]


def test_stale_models(cat):
    cat.upsert_model(rec("a"), vector=[1, 2], vector_version="e1")
    cat.upsert_model(rec("b"), vector=[1, 2], vector_version="e2")
    cat.upsert_model(rec("c"))  # ok, no vector yet
    cat.mark_unsupported(rec("d"), "x")
    assert cat.stale_models("e2") == ["a", "c"]


def test_transactions_roll_back_and_nest(cat):
    with pytest.raises(RuntimeError):
        with cat.transaction():
            cat.upsert_model(rec("org/a"))
            cat.set_state("k", "v")
            raise RuntimeError("crash in the middle of a batch")
    assert cat.get_model("org/a") is None and cat.get_state("k") is None
    with cat.transaction():
        cat.upsert_model(rec("org/a"))
        with cat.transaction():
            cat.set_state("k", "v")
    assert cat.get_model("org/a") is not None and cat.get_state("k") == "v"


def test_a_failed_commit_is_rolled_back_and_later_writes_are_committed(cat, tmp_path):
    with pytest.raises(sqlite3.IntegrityError):
        with cat.transaction() as db:
            db.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT, which then fails
            db.execute("INSERT INTO transfer_results VALUES ('no-source', 'v', 't', 'm', 1.0, NULL, NULL)")
    cat.set_state("k", "v")  # its own transaction, not one nested in a still-open one
    with Catalog(tmp_path / "catalog.sqlite") as other:
        assert other.get_state("k") == "v" and other.transfer_results() == []


def test_a_rollback_sqlite_already_did_does_not_hide_the_error(cat):
    with pytest.raises(RuntimeError, match="the original error"):
        with cat.transaction() as db:
            cat.upsert_model(rec("org/a"))
            db.execute("ROLLBACK")  # as SQLite does itself on some I/O errors
            raise RuntimeError("the original error")
    assert cat.get_model("org/a") is None
    cat.upsert_model(rec("org/b"))
    assert cat.get_model("org/b") is not None


def test_watermark_only_moves_forward(cat):
    assert cat.watermark is None
    assert cat.advance_watermark(T0 + timedelta(days=2)) == T0 + timedelta(days=2)
    assert cat.advance_watermark(T0) == T0 + timedelta(days=2)
    assert cat.watermark == T0 + timedelta(days=2)
    with pytest.raises(InvalidInputError):
        cat.advance_watermark(datetime(2030, 1, 1))


def test_concurrent_writers_and_a_reader_during_a_write(tmp_path):
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    errors = []

    def writer(prefix):
        try:
            with Catalog(path) as c:
                for i in range(30):
                    c.upsert_model(rec(f"{prefix}/{i}"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Catalog(path) as a, Catalog(path) as b:
        assert len(a.models()) == 60
        with a.transaction():
            a.upsert_model(rec("z/1"))
            assert b.get_model("z/1") is None and len(b.models()) == 60  # WAL: reader not blocked
        assert b.get_model("z/1") is not None


# ---------------------------------------------------------------------------------------
# Migrations and damaged files
# ---------------------------------------------------------------------------------------


def test_migrating_a_version_1_catalog_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    vec = np.array([1.5, -2.0, 3.0], dtype="<f4").tobytes()
    db.execute("INSERT INTO models (repo_id, sha, status, vector, vector_version, updated_at) "
               "VALUES ('org/old', ?, 'ok', ?, 'e0', '2024-01-01T00:00:00+00:00')", ("d" * 40, vec))
    db.execute("INSERT INTO reindex_state VALUES ('watermark', '2024-02-01T00:00:00+00:00')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Catalog(path) as cat:
        assert cat.schema_version == SCHEMA_VERSION
        m = cat.get_model("org/old")
        assert m.attempts == 0 and m.next_attempt_at is None
        assert np.array_equal(m.vector, [1.5, -2.0, 3.0])
        assert cat.vectors()[1].shape == (1, 3)  # vector_dim back-filled by the migration
        assert cat.watermark == datetime(2024, 2, 1, tzinfo=timezone.utc)
        cat.record_failure("org/old", "x")  # the new columns work
    with Catalog(path) as cat:  # opening again is a no-op
        assert cat.get_model("org/old").attempts == 1


def test_a_failed_migration_is_rolled_back(tmp_path, monkeypatch):
    import fennec.catalog.store as catalog

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    monkeypatch.setattr(catalog, "MIGRATIONS", (MIGRATIONS[0], MIGRATIONS[1] + "; SELECT * FROM nowhere"))
    with pytest.raises(CatalogError, match="stays at version 1"):
        Catalog(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "attempts" not in {r[1] for r in db.execute("PRAGMA table_info(models)")}


def test_two_processes_migrating_a_fresh_catalog_do_not_collide(tmp_path, monkeypatch):
    path = tmp_path / "fresh.sqlite"
    real = Catalog.transaction
    raced = []

    def other_process_migrates_first(self):
        if not raced:  # between this one's version check and its first migration step
            raced.append(1)
            Catalog(path).close()
        return real(self)

    monkeypatch.setattr(Catalog, "transaction", other_process_migrates_first)
    with Catalog(path) as cat:  # the steps already applied are skipped, not re-run
        assert raced and cat.schema_version == SCHEMA_VERSION
        cat.upsert_model(rec("org/a"))


def test_a_refused_catalog_closes_its_connection(tmp_path, monkeypatch):
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    opened = []
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(CatalogVersionError):
        Catalog(newer)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")


def test_migrating_a_version_3_catalog_keeps_why_models_are_unsupported(tmp_path):
    path = tmp_path / "v3.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    for repo_id, error in (("org/a", "org/a: archi2vec cannot embed it: no tracer"),
                           ("org/r", "org/r needs custom code from its repository"),
                           ("org/m", "org/m: config.json is not valid JSON")):
        db.execute("INSERT INTO models (repo_id, sha, status, last_error, error_type, updated_at) "
                   "VALUES (?, 'a', 'unsupported', ?, 'unsupported', '2024-01-01T00:00:00+00:00')",
                   (repo_id, error))
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    with Catalog(path) as cat:
        kinds = {m.repo_id: (m.error_type, m.unsupported_by) for m in cat.models()}
        assert kinds == {"org/a": ("archi2vec", "unknown"), "org/r": ("remote_code", None),
                         "org/m": ("unsupported", None)}
        assert cat.unsupported_by_other_embedder("e1") == ["org/a"]  # retried once


def test_newer_and_damaged_files_are_refused(tmp_path):
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CatalogVersionError) as e:
        Catalog(newer)
    assert (e.value.found, e.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="not a usable"):
        Catalog(garbage)


# ---------------------------------------------------------------------------------------
# Importers
# ---------------------------------------------------------------------------------------


needs_tables = pytest.mark.skipif(not TABLES.is_dir(), reason="shared transfer-result tables not present")


@needs_tables
def test_import_published_tables_keeps_source_metric_and_protocol(cat):
    summaries = {s.source_id: s for s in cat.import_published_tables(TABLES)}
    tg = summaries["transfergraph_hf_finetune"]
    data = json.loads((TABLES / "transfergraph_hf_finetune.json").read_text())
    assert tg.variants == ("results", "results_eval")
    cells = sum(1 for row in data["results"].values() for v in row.values() if v is not None)
    assert cells == data["shape"]["n_filled_cells"] == 2254
    assert len(cat.transfer_results(source="transfergraph_hf_finetune", variant="results")) == cells
    r = cat.transfer_results(source="transfergraph_hf_finetune", task="cifar100",
                             model="google/vit-base-patch16-224", variant="results")
    assert r[0].value == data["results"]["cifar100"]["google/vit-base-patch16-224"]
    assert r[0].protocol == data["protocol"] and r[0].metric == data["metric"]
    src = {s["source_id"]: s for s in cat.sources()}["transfergraph_hf_finetune"]
    assert src["repo"] == "zLizy/transfergraph" and src["commit_sha"] == data["source"]["commit"]
    assert src["header"]["shape"] == data["shape"]
    # per-dataset metrics are kept per row
    sfda = json.loads((TABLES / "sfda_supervised_finetune.json").read_text())
    if isinstance(sfda.get("metric_per_dataset"), dict):
        voc = cat.transfer_results(source="sfda_supervised_finetune", task="voc2007")
        assert voc and voc[0].metric == sfda["metric_per_dataset"]["voc2007"]
    # report-only files and metric-score files are skipped, not imported
    assert "sfda_tauw_supervised_readme" not in summaries
    assert "transfergraph_metric_scores" not in summaries
    n = len(cat.transfer_results())
    cat.import_published_table(TABLES / "transfergraph_hf_finetune.json")  # re-import: replaced
    assert len(cat.transfer_results()) == n


def test_import_table_validation(cat, tmp_path):
    bad = tmp_path / "bad.json"
    for content in ("{not json", json.dumps([1]), json.dumps({"results": {"d": 3}})):
        bad.write_text(content)
        with pytest.raises(InvalidInputError):
            cat.import_published_table(bad)
    with pytest.raises(InvalidInputError, match="cannot read"):
        cat.import_published_table(tmp_path / "absent.json")
    bad.write_text(json.dumps({"results": {"d": {"m": "high"}}, "metric": "acc"}))
    with pytest.raises(InvalidInputError, match="not a number"):
        cat.import_published_table(bad)
    assert cat.transfer_results() == [] and cat.sources() == []  # rolled back
    ok = tmp_path / "mini.json"
    ok.write_text(json.dumps({"source": {"repo": "r", "commit": "c"}, "metric": "acc", "protocol": "p",
                              "results": {"d1": {"m1": 0.5, "m2": None}, "d2": {"m1": float("nan")}}}))
    s = cat.import_published_table(ok)
    assert (s.n_results, s.n_tasks, s.n_models, s.n_skipped) == (1, 2, 1, 2)
    assert {t["task_id"] for t in cat.tasks()} == {"d1", "d2"}


def test_import_zoo_ground_truth(cat, tmp_path):
    gt = tmp_path / "zoo_ground_truth.json"
    gt.write_text(json.dumps({
        "protocol": {"version": "zoo-ft-v1", "epochs": 3}, "models": ["m1", "m2"], "targets": ["t-a"],
        "test_accuracy_seed0": {"t-a": {"m1": 0.9, "m2": 0.8}}, "test_accuracy_seed1": {"t-a": {"m1": 0.91}},
        "coverage": {"jobs_done": 3}}))
    s = cat.import_zoo_ground_truth(gt)
    assert s.variants == ("seed0", "seed1") and s.n_results == 3
    r = cat.transfer_results(task="t-a", variant="seed0")
    assert [x.model for x in r] == ["m1", "m2"] and json.loads(r[0].protocol)["version"] == "zoo-ft-v1"
    assert cat.tasks()[0]["kind"] == "zoo"
    cat.upsert_task("t-a", kind="zoo", n_classes=10, metadata={"images": 32})
    assert cat.tasks()[0]["n_classes"] == 10 and cat.tasks()[0]["metadata"] == {"images": 32}
    gt.write_text(json.dumps({"protocol": {}}))
    with pytest.raises(InvalidInputError, match="seed"):
        cat.import_zoo_ground_truth(gt)


def test_iter_batches():
    assert list(iter_batches(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(InvalidInputError):
        list(iter_batches([], 0))


def test_tags_round_trip_and_name_the_datasets(cat):
    cat.upsert_model(rec("org/tagged", tags=("vit", "dataset:imagenet-1k", "dataset:laion", "license:mit")))
    m = cat.get_model("org/tagged")
    assert m.tags == ("vit", "dataset:imagenet-1k", "dataset:laion", "license:mit")
    assert m.datasets == ("imagenet-1k", "laion")
    cat.upsert_model(rec("org/untagged"))
    assert cat.get_model("org/untagged").tags == () and cat.get_model("org/untagged").datasets == ()
