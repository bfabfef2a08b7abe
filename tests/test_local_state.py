"""Bad local state: damaged catalogs, full disks, read-only homes, fits replaced while read.

Nothing here may lose committed data: every test checks what is kept, besides the message.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from fennec import cli
from fennec._io import file_lock, storage_error
from fennec.catalog import SCHEMA_VERSION, Catalog, check_catalog, repair_catalog
from fennec.cli import catalog as cli_catalog
from fennec.errors import CatalogDamagedError, CatalogError, StorageError
from fennec.hub import ModelRecord
from fennec.recommendation import recommend
from fennec.workspace import Workspace, fit, history, zoo_workspace
from fennec.workspace import fitting as ws_fit
from zoo_fixtures import tiny_zoo  # noqa: F401  (the fixture)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
REPO_ROOT = Path(__file__).resolve().parents[1]


def rec(repo_id: str) -> ModelRecord:
    return ModelRecord(repo_id=repo_id, sha="a" * 40, library="timm", pipeline_tag="image-classification",
                       created_at=T0, last_modified=T0, downloads=1, likes=0, parameters=5, model_type="vit")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fennec: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def filled_catalog(path: Path, n_models: int = 3000) -> None:
    """Results first (the first pages), then many models with vectors (most of the file)."""
    with Catalog(path) as cat:
        cat.import_table("paper", {"results": {"t1": {"m1": 0.5, "m2": 0.7}, "t2": {"m1": 0.1}}},
                         metric="acc", protocol="p")
        cat.set_state("watermark", "2024-01-01T00:00:00+00:00")
        with cat.transaction():
            for i in range(n_models):
                cat.upsert_model(rec(f"org/m{i:05d}"), vector=np.full(64, i, dtype=np.float32), vector_version="v")


def damage_pages(path: Path, first: int, count: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(4096 * first)
        fh.write(np.random.default_rng(0).integers(0, 256, 4096 * count, dtype=np.uint8).tobytes())


# ---------------------------------------------------------------------------------------
# Files that are not fennec catalogs
# ---------------------------------------------------------------------------------------


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('someone else''s data')")
    db.commit()
    db.close()


def _tables_missing(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE models (repo_id TEXT)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.commit()
    db.close()


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    (lambda p: p.write_bytes(b"not a database at all " * 300), "file is not a database"),
    (_foreign, "schema version 0, not a fennec catalog"),
    (_tables_missing, "tables sources, tasks, reindex_state, transfer_results are missing"),
])
def test_a_file_that_is_not_a_fennec_catalog_is_refused_and_left_untouched(tmp_path, make, reason, capsys):
    path = tmp_path / "catalog.sqlite"
    make(path)
    before, listing = sha(path), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CatalogDamagedError) as e:
        Catalog(path)
    message = str(e.value)
    assert reason in message and e.value.reason and reason in e.value.reason
    assert f"fennec catalog check {path}" in message and f"fennec catalog repair {path}" in message
    assert "move it aside" in message.lower() and "does not overwrite" in message
    # the CLI: one line, nonzero exit, and still nothing written
    assert cli.main(["import-results", "--home", str(tmp_path), str(tmp_path / "t.json")]) == 1
    assert reason in one_error_line(capsys)
    assert sha(path) == before and sorted(p.name for p in tmp_path.iterdir()) == listing


def test_a_new_catalog_is_never_left_half_made(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    real = Catalog._migrate

    def killed(self):
        raise KeyboardInterrupt  # as if the process died before the schema was committed

    monkeypatch.setattr(Catalog, "_migrate", killed)
    with pytest.raises(KeyboardInterrupt):
        Catalog(path)
    assert list(tmp_path.iterdir()) == []  # neither an empty catalog.sqlite nor a temporary file
    monkeypatch.setattr(Catalog, "_migrate", real)
    with Catalog(path) as cat:
        assert cat.schema_version == SCHEMA_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.sqlite"]


def test_a_catalog_damaged_after_opening_raises_a_catalog_error_not_a_raw_sqlite_one(tmp_path):
    path = tmp_path / "catalog.sqlite"
    filled_catalog(path)
    with Catalog(path) as cat:
        damage_pages(path, 40, 4)
        with pytest.raises(CatalogDamagedError, match="fennec catalog repair"):
            cat.models(limit=None)


# ---------------------------------------------------------------------------------------
# fennec catalog check / repair
# ---------------------------------------------------------------------------------------


def test_check_reports_a_healthy_catalog_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "catalog.sqlite"
    filled_catalog(path, n_models=5)
    before = sha(path)
    check = check_catalog(path)
    assert check.ok and check.schema_version == SCHEMA_VERSION
    assert check.counts == {"sources": 1, "tasks": 2, "models": 5, "reindex_state": 1, "transfer_results": 3}
    assert sha(path) == before
    assert cli.main(["catalog", "check", "--home", str(tmp_path)]) == 0
    assert "ok (schema" in capsys.readouterr().out
    assert cli.main(["catalog", "repair", str(path)]) == 0  # healthy: nothing to do
    assert "nothing to repair" in capsys.readouterr().out and sha(path) == before
    with pytest.raises(CatalogError, match="No catalog"):
        check_catalog(tmp_path / "nowhere.sqlite")


def test_check_finds_damaged_pages_missing_columns_and_orphan_rows(tmp_path, capsys):
    damaged = tmp_path / "damaged" / "catalog.sqlite"
    damaged.parent.mkdir()
    filled_catalog(damaged)
    damage_pages(damaged, 40, 4)
    assert not check_catalog(damaged).ok
    assert cli.main(["catalog", "check", str(damaged)]) == 1
    assert "fennec catalog repair" in one_error_line(capsys)

    dropped = tmp_path / "dropped.sqlite"
    filled_catalog(dropped, n_models=2)
    db = sqlite3.connect(dropped)
    db.execute("ALTER TABLE models DROP COLUMN tags")
    db.execute("INSERT INTO transfer_results VALUES ('gone', 'results', 't1', 'm', 1.0, NULL, NULL)")
    db.commit()
    db.close()
    problems = check_catalog(dropped).problems
    assert any("models lacks the columns tags" in p for p in problems)
    assert any("refer to missing rows of sources" in p for p in problems)


def test_repair_recovers_what_sqlite_can_read_and_keeps_the_damaged_file(tmp_path, capsys):
    path = tmp_path / "catalog.sqlite"
    filled_catalog(path)
    damage_pages(path, 40, 4)
    damaged_sha = sha(path)
    assert cli.main(["catalog", "repair", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    kept = [p for p in tmp_path.iterdir()
            if p.name.startswith("catalog.sqlite.damaged-") and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and sha(kept[0]) == damaged_sha and str(kept[0]) in out
    check = check_catalog(path)
    assert check.ok, check.problems
    with Catalog(path) as cat:
        models = cat.models(limit=None)
        # 4 damaged pages hold a few dozen of the 3000 rows: every other row is back
        assert 2900 <= len(models) < 3000
        assert all(m.vector is not None and m.vector[0] == int(m.repo_id[-5:]) for m in models)
        assert len(cat.transfer_results()) == 3 and cat.get_state("watermark") is not None
        cat.upsert_model(rec("org/new"))  # a working catalog
    assert f"recovered 1 sources, 2 tasks, {len(models)} models" in out


def test_repair_of_a_file_that_is_not_sqlite_keeps_it_and_starts_an_empty_catalog(tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"\0" * 10)
    summary = repair_catalog(path)
    assert Path(summary.kept_as).read_bytes() == b"\0" * 10
    assert "recovered no rows" in summary.line() and check_catalog(path).ok


def test_repair_waits_for_no_reindex(tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"")
    with file_lock(tmp_path / "reindex.lock"), pytest.raises(CatalogError, match="reindex .* is running"):
        repair_catalog(path)
    assert path.read_bytes() == b""


# ---------------------------------------------------------------------------------------
# A full disk
# ---------------------------------------------------------------------------------------


def test_sqlite_disk_full_is_a_storage_error_and_the_last_commit_is_kept(tmp_path):
    path = tmp_path / "catalog.sqlite"
    filled_catalog(path, n_models=10)
    with Catalog(path) as cat:
        pages = cat._db.execute("PRAGMA page_count").fetchone()[0]
        cat._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        with pytest.raises(StorageError) as e:
            with cat.transaction():
                for i in range(500):
                    cat.upsert_model(rec(f"big/{i}"), vector=np.ones(1024, dtype=np.float32), vector_version="v")
        assert e.value.errno == errno.ENOSPC and "No space left" in str(e.value)
        assert "last committed transaction" in str(e.value)
        assert len(cat.models(limit=None)) == 10  # the failed transaction was rolled back, nothing else
    assert check_catalog(path).ok


def _reindex_args(zoo: Path, home: Path) -> list[str]:
    return ["reindex", "--hub", str(zoo / "hub"), "--home", str(home), "--batch-size", "2", "--no-progress"]


class DigestEmbedder:
    """A vector per model id, without torch."""

    version, dim = "digest-v1", 8

    def __call__(self, files, record):
        seed = int.from_bytes(hashlib.sha256(record.repo_id.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)


class BigDigestEmbedder(DigestEmbedder):
    version, dim = "digest-big-v1", 4096  # 16 KB a vector: new pages for every model


def test_reindex_on_a_full_disk_prints_one_line_and_keeps_committed_batches(tiny_zoo, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: BigDigestEmbedder())
    home = tmp_path / "home"
    real_upsert, upserts = Catalog.upsert_model, []

    def filling(self, record, **kw):  # the disk fills up during the second batch (its first model)
        upserts.append(record.repo_id)
        if len(upserts) == 3:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages}")
        return real_upsert(self, record, **kw)

    monkeypatch.setattr(Catalog, "upsert_model", filling)
    assert cli.main(_reindex_args(tiny_zoo, home)) == 1
    line = one_error_line(capsys)
    assert "No space left" in line and "last committed transaction" in line
    with Catalog(home / "catalog.sqlite") as cat:
        assert len(cat.models(limit=None)) == 2  # the first batch; the second was rolled back whole
    monkeypatch.setattr(Catalog, "upsert_model", real_upsert)
    assert cli.main(_reindex_args(tiny_zoo, home)) == 0  # space again: the run resumes
    with Catalog(home / "catalog.sqlite") as cat:
        assert len(cat.models(limit=None)) == 6
    assert not (home / "index").exists()


def test_reindex_with_sqlite_disk_full_prints_one_line(tiny_zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: BigDigestEmbedder())
    home = tmp_path / "home"
    real = cli_catalog.open_catalog

    def small_disk(h):
        catalog, folder = real(h)
        pages = catalog._db.execute("PRAGMA page_count").fetchone()[0]
        catalog._db.execute(f"PRAGMA max_page_count = {pages}")
        return catalog, folder

    monkeypatch.setattr(cli_catalog, "open_catalog", small_disk)
    assert cli.main(_reindex_args(tiny_zoo, home)) == 1
    assert "No space left" in one_error_line(capsys)
    assert check_catalog(home / "catalog.sqlite").ok


# ---------------------------------------------------------------------------------------
# Fitted spaces: full disk, damaged fit.json, leftovers, readers during a swap
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tiny_zoo, tmp_path_factory):
    """A fitted home (the tiny zoo's workspace), built once; tests copy it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FENNEC_ZOO", str(tiny_zoo))
    try:
        yield zoo_workspace(tmp_path_factory.mktemp("fitted") / "ws")
    finally:
        mp.undo()


@pytest.fixture
def home(fitted, tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "elsewhere"))
    return Path(shutil.copytree(fitted, tmp_path / "ws", symlinks=True))


def manifest(home: Path) -> dict:
    return json.loads((home / "space" / "fit.json").read_text())


def space_entries(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if p.name.startswith(".space.") or p.name == "space")


def test_fit_on_a_full_disk_prints_one_line_and_keeps_the_previous_fit(home, monkeypatch, capsys):
    before, entries = manifest(home), space_entries(home)

    def full(folder, **kw):
        (folder / "space.npz").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "index"))

    monkeypatch.setattr(ws_fit, "_write_space", full)
    assert cli.main(["fit", "--home", str(home), "--no-progress"]) == 1
    line = one_error_line(capsys)
    assert "No space left" in line and "previous fit and the catalog are intact" in line
    assert manifest(home) == before and space_entries(home) == entries  # no half-written fit left behind
    assert recommend(Path(os.environ["FENNEC_ZOO"]) / "datasets" / "t-new", home=home, top_k=1, refine=False)


def test_a_damaged_fit_json_is_fixed_by_the_command_its_message_names(home, capsys):
    (home / "space" / "fit.json").write_text('{"truncated": ')
    dataset = Path(os.environ["FENNEC_ZOO"]) / "datasets" / "t-new"
    assert cli.main(["recommend", str(dataset), "--home", str(home), "--no-refine", "--no-progress"]) == 1
    line = one_error_line(capsys)
    assert "fit.json is damaged" in line and f"fennec fit --home {home}" in line
    # the named command (with the hub this workspace was fitted with, as the message says)
    assert cli.main(["fit", "--home", str(home), "--hub", "zoo", "--no-progress"]) == 0
    assert manifest(home)["hub"] == "zoo"
    assert cli.main(["recommend", str(dataset), "--home", str(home), "--no-refine", "--no-progress"]) == 0
    # the embedded zoo's own workspace repairs itself
    (home / "space" / "fit.json").write_text("[]")
    assert zoo_workspace(home) == home and isinstance(manifest(home), dict)


def test_leftovers_of_killed_fits_are_removed_by_the_next_fit(home):
    (home / ".space.k1llEd.tmp").mkdir()
    (home / ".space.k1llEd.tmp" / "space.npz").write_bytes(b"half")
    (home / ".space.v1.999.trash").mkdir()
    os.symlink("nowhere", home / ".space.link.999.tmp")
    fit(home=home)
    assert space_entries(home) == sorted([".space.v2", "space"])
    assert os.readlink(home / "space") == ".space.v2"


def test_a_reader_holding_the_old_fit_keeps_it_until_it_is_done(home):
    holding, release, seen = threading.Event(), threading.Event(), {}

    def reader():
        with history.reading(home) as folder:
            seen["folder"] = folder
            holding.set()
            release.wait()
            seen["manifest"] = json.loads((folder / "fit.json").read_text())  # still all there
            seen["loaded"] = np.load(folder / "space.npz", allow_pickle=False).files

    thread = threading.Thread(target=reader)
    thread.start()
    holding.wait()
    fit(home=home)  # publishes v2; v1 is in use, so it is kept
    assert os.readlink(home / "space") == ".space.v2" and (home / ".space.v1").is_dir()
    release.set()
    thread.join()
    assert seen["folder"].name == ".space.v1" and seen["manifest"]["fitted_at"] and seen["loaded"]
    fit(home=home)  # v1 is unread now: removed, with v2
    assert space_entries(home) == sorted([".space.v3", "space"])


def test_readers_at_every_step_of_a_swap_see_a_whole_fit_and_never_break_it(home, monkeypatch):
    """Drive a recommend-side reader at each rename the fit makes (where a reader once put an
    old folder back and made the fit die with 'Directory not empty')."""
    before = manifest(home)["fitted_at"]
    seen, busy = [], []
    real_rename, real_replace = Path.rename, os.replace

    def read_now():
        if busy:
            return
        busy.append(1)
        try:
            seen.append(history.read_manifest(home)["fitted_at"])
            Workspace.load(home)
        finally:
            busy.pop()

    def rename(self, target):
        result = real_rename(self, target)
        read_now()
        return result

    def replace(src, dst):
        read_now()
        real_replace(src, dst)
        read_now()

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    fit(home=home)
    monkeypatch.undo()
    after = manifest(home)["fitted_at"]
    assert seen and set(seen) <= {before, after} and seen[-1] == after


# ---------------------------------------------------------------------------------------
# A read-only home
# ---------------------------------------------------------------------------------------


def test_storage_error_says_what_is_read_only_and_never_advises_deleting():
    for code in (errno.EROFS, errno.EACCES):
        e = storage_error(OSError(code, os.strerror(code), "/data/fennec/.fit.lock"), doing="fitting /data/fennec")
        assert e.errno == code and "/data/fennec/.fit.lock" in str(e) and "FENNEC_HOME" in str(e)
        assert "nothing in it needs to be deleted" in str(e) and "Move it away" not in str(e)
    assert storage_error(OSError(errno.ENOENT, "x"), doing="y") is None


def test_a_read_only_home_gives_one_line_for_fit_and_reindex(home, tiny_zoo, monkeypatch, capsys):
    """Without a read-only mount: every os-level write into the home raises EROFS."""
    real_open, real_mkdir = os.open, os.mkdir
    inside = str(home)

    def ro_open(path, flags, *args, **kwargs):
        if str(path).startswith(inside) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    def ro_mkdir(path, *args, **kwargs):
        if os.path.exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path))
        if str(path).startswith(inside):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    before = space_entries(home)
    assert cli.main(["fit", "--home", str(home), "--no-progress"]) == 1
    line = one_error_line(capsys)
    assert "read-only file system" in line and str(home) in line and "Move it away" not in line
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: DigestEmbedder())
    assert cli.main(_reindex_args(tiny_zoo, home)) == 1
    assert "read-only file system" in one_error_line(capsys)
    assert space_entries(home) == before
    # reading still works: the readers' lock is opened read-only, an up-to-date zoo workspace is
    # used without its fit lock, and features that cannot be cached are used anyway
    assert Workspace.load(home).manifest == manifest(home)
    assert zoo_workspace(home) == home
    monkeypatch.setenv("FENNEC_HOME", str(home))
    recs = recommend(tiny_zoo / "datasets" / "t-new", home=home, top_k=2, candidates=2)
    assert len(recs) == 2 and recs.n_refined == 2 and not (home / "features").exists()
    assert space_entries(home) == before


def _read_only_mount_available() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _read_only_mount_available(), reason="needs unshare and mount (root in a Linux sandbox)")
def test_a_really_read_only_home(home, tiny_zoo, tmp_path):
    """The home bind-mounted read-only in a private mount namespace: recommend works, fit,
    reindex and import-results say what is read-only in one line, and nothing changes."""
    dataset = tiny_zoo / "datasets" / "t-new"
    (tmp_path / "t.json").write_text(json.dumps({"results": {"d": {"m": 0.5}}}))
    # (the feature cache lives in the home too: the proxy's features are computed, not kept)
    script = "\n".join([
        f"mount --bind {home} {home} && mount -o remount,bind,ro {home} || exit 99",
        f"{sys.executable} -m fennec.cli recommend {dataset} --home {home} --no-refine --json > {tmp_path}/rec.json"
        "; echo recommend=$?",
        f"{sys.executable} -m fennec.cli fit --home {home} --no-progress; echo fit=$?",
        f"{sys.executable} -m fennec.cli reindex --hub {tiny_zoo}/hub --home {home} --no-progress; echo reindex=$?",
        f"{sys.executable} -m fennec.cli import-results --home {home} {tmp_path}/t.json; echo import=$?",
    ])
    before = {p: p.stat().st_mtime_ns for p in home.rglob("*")}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FENNEC_ZOO": str(tiny_zoo), "FENNEC_HOME": str(home)}
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert "recommend=0" in p.stdout, p.stderr[-3000:]
    assert json.loads((tmp_path / "rec.json").read_text())["recommendations"]
    for command in ("fit", "reindex", "import"):
        assert f"{command}=1" in p.stdout, p.stdout
    errors = [line for line in p.stderr.splitlines() if line.startswith("fennec: error:")]
    assert len(errors) == 3 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert all("read-only" in line for line in errors), errors
    assert not any("Move it away" in line or "delete" in line.replace("needs to be deleted", "") for line in errors)
    assert {p: p.stat().st_mtime_ns for p in home.rglob("*")} == before


def test_the_cli_prints_any_full_disk_or_sqlite_error_as_one_line(monkeypatch, tmp_path, capsys):
    def raising(error):
        def command(args):
            raise error
        return command

    full = OSError(errno.ENOSPC, "No space left on device", "/x/out.json")
    monkeypatch.setattr(cli_catalog, "run_models", raising(full))
    assert cli.main(["models", "--home", str(tmp_path)]) == 1
    assert "No space left on the device of /x/out.json while running `fennec models`" in one_error_line(capsys)
    monkeypatch.setattr(cli_catalog, "run_models", raising(sqlite3.DatabaseError("database disk image is malformed")))
    assert cli.main(["models", "--home", str(tmp_path)]) == 1
    assert "fennec catalog check" in one_error_line(capsys)
    monkeypatch.setattr(cli_catalog, "run_models", raising(ValueError("a bug")))  # not a storage error: a traceback
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["models", "--home", str(tmp_path)])
