"""fennec.reindex and the fennec CLI: incremental runs, crashes, locks, Hub failures."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from fennec import cli
from fennec.catalog import Catalog
from fennec.errors import HubUnavailableError, IndexMismatchError, InvalidInputError, ReindexLockedError
from fennec.hub import HfHub, LocalHub, RetryPolicy
from fennec.reindex import (
    EMBEDDER_KEY,
    HUB_DOWN_AFTER,
    ReindexSummary,
    parse_duration,
    reindex,
    reindex_lock,
    run_every,
)
from hub_server_fixtures import *  # noqa: F403 - fixtures
from hub_server_fixtures import REPO_ROOT, TINY_RESNET, TINY_VIT, write_model

DIM = 16
FAST = RetryPolicy(attempts=2, base_delay=0.01, timeout=2.0)
OK_MODELS = {"org/tiny-vit", "org/tiny-resnet", "timm/tiny-timm", "org/vit-features"}


class ConfigDigestEmbedder:
    """A deterministic config → vector map for testing the pipeline without torch.

    Models with different configs get different (seeded) vectors; the same config, the
    same vector in any process. With ``hang_on_call=n`` the n-th call writes the file
    ``marker`` and then never returns (for a process that a test kills mid-batch).
    """

    version = "test-digest-v1"
    dim = DIM

    def __init__(self, *, hang_on_call: int | None = None, marker: str | None = None):
        self.hang_on_call, self.marker = hang_on_call, marker
        self.calls: list[str] = []

    def __call__(self, files, record):
        self.calls.append(record.repo_id)
        if len(self.calls) == self.hang_on_call:
            Path(self.marker).write_text(record.repo_id)
            time.sleep(600)  # killed long before; bounded so that nothing is left behind
        seed = int.from_bytes(hashlib.sha256(json.dumps(files.config, sort_keys=True).encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=DIM).astype(np.float32)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "fennec_home"


@pytest.fixture
def catalog(home):
    with Catalog(home / "catalog.sqlite") as cat:
        yield cat


def run(hub, catalog, home, **kw):
    kw.setdefault("embedder", ConfigDigestEmbedder())
    return reindex(hub=hub, catalog=catalog, **kw)


def check_consistent(catalog, home, embedder_version=ConfigDigestEmbedder.version):
    """The catalog, the one store of the vectors: every ok model has one, of the embedder's
    version (the version the catalog records); reindex wrote no index folder beside it."""
    ids, vectors = catalog.vectors(version=embedder_version)
    assert ids == sorted(m.repo_id for m in catalog.models(status="ok", limit=None))
    assert vectors.shape == (len(ids), DIM) and np.isfinite(vectors).all()
    assert catalog.get_state(EMBEDDER_KEY) == embedder_version
    assert not (home / "index").exists()


def copy_zoo(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------
# Incremental runs
# ---------------------------------------------------------------------------------------


def test_first_run_then_nothing_to_do(tiny_zoo, catalog, home):
    hub = LocalHub(tiny_zoo["hub"])
    s = run(hub, catalog, home, batch_size=3)
    # the local folder is yours: private and gated models are readable there
    assert (s.added, s.updated, s.unsupported, s.failed) == (6, 0, 2, 0)
    assert s.listed == 8 and s.batches == 3
    assert {m.repo_id for m in catalog.models(status="ok")} == OK_MODELS | {"org/gated-vit", "org/private-vit"}
    assert catalog.get_model("org/remote-code").last_error.startswith("org/remote-code needs custom code")
    assert "not valid JSON" in catalog.get_model("org/malformed").last_error
    assert catalog.watermark == max(r.last_modified for r in hub.list_models())
    check_consistent(catalog, home)
    again = run(hub, catalog, home)
    assert again.processed == 0 and again.skipped >= 1 and again.batches == 0
    assert "added 0" in again.line() and "models/min" in again.line()


def test_a_scoped_run_indexes_only_the_models_given_and_leaves_the_watermark(tiny_zoo, catalog, home):
    hub = LocalHub(tiny_zoo["hub"])
    scope = [hub.model_info("org/tiny-vit"), hub.model_info("org/tiny-resnet")]
    s = run(hub, catalog, home, models=scope)
    assert (s.added, s.listed) == (2, 2)
    assert {m.repo_id for m in catalog.models()} == {"org/tiny-vit", "org/tiny-resnet"}
    assert catalog.watermark is None  # only a listing of everything since the watermark moves it
    check_consistent(catalog, home)
    again = run(hub, catalog, home, models=scope)  # indexed at the same commit: skipped
    assert again.processed == 0 and again.skipped == 2
    full = run(hub, catalog, home)  # a plain run then lists the rest and moves the watermark
    assert full.added == 4 and catalog.watermark == max(r.last_modified for r in hub.list_models())


def test_new_and_changed_models_are_picked_up(tiny_zoo, catalog, home, tmp_path):
    root = copy_zoo(tiny_zoo["hub"], tmp_path / "hub")
    hub = LocalHub(root)
    run(hub, catalog, home)
    old = catalog.get_model("org/tiny-vit")
    later = tiny_zoo["t0"] + 30 * tiny_zoo["day"]
    write_model(root, "org/new-resnet", config=TINY_RESNET, extra={"createdAt": later, "lastModified": later})
    write_model(root, "org/tiny-vit", config={**TINY_VIT, "num_hidden_layers": 3},
                extra={"downloads": 51, "createdAt": tiny_zoo["t0"], "lastModified": later + 1})
    embedder = ConfigDigestEmbedder()
    s = run(hub, catalog, home, embedder=embedder)
    assert (s.added, s.updated) == (1, 1) and sorted(embedder.calls) == ["org/new-resnet", "org/tiny-vit"]
    m = catalog.get_model("org/tiny-vit")
    assert m.sha != old.sha and m.downloads == 51
    assert not np.allclose(m.vector, old.vector)  # its new config's vector
    check_consistent(catalog, home)


def test_limit_processes_oldest_first_and_the_next_run_continues(tiny_zoo, catalog, home):
    hub = LocalHub(tiny_zoo["hub"])
    first = run(hub, catalog, home, limit=3)
    assert first.processed == 3
    oldest = sorted(hub.list_models(), key=lambda r: r.last_modified)
    assert {m.repo_id for m in catalog.models()} == {r.repo_id for r in oldest[:3]}
    assert catalog.watermark == oldest[2].last_modified
    rest = run(hub, catalog, home)
    assert rest.processed == 5 and len(catalog.models()) == 8
    check_consistent(catalog, home)


def test_since_overrides_the_watermark(tiny_zoo, catalog, home):
    hub = LocalHub(tiny_zoo["hub"])
    since = datetime.fromtimestamp(tiny_zoo["t0"] + 6.5 * tiny_zoo["day"], tz=timezone.utc)
    s = run(hub, catalog, home, since=since)
    assert {m.repo_id for m in catalog.models()} == {"org/gated-vit", "org/private-vit"} and s.processed == 2


def test_dry_run_writes_nothing(tiny_zoo, catalog, home):
    s = run(LocalHub(tiny_zoo["hub"]), catalog, home, dry_run=True)
    assert s.dry_run and s.listed == 8 and s.added == 8 and "would be processed" in s.line()
    assert catalog.models() == [] and catalog.watermark is None and not (home / "index").exists()


def test_bad_arguments(tiny_zoo, catalog, home):
    for kw in ({"batch_size": 0}, {"limit": 0}):
        with pytest.raises(InvalidInputError):
            run(LocalHub(tiny_zoo["hub"]), catalog, home, **kw)


def test_an_embedder_crash_on_one_model_is_recorded_not_fatal(tiny_zoo, catalog, home):
    class Flaky(ConfigDigestEmbedder):
        def __call__(self, files, record):
            if record.repo_id == "org/tiny-resnet":
                raise RuntimeError("segfault-like failure inside model building")
            if record.repo_id == "timm/tiny-timm":
                return np.full(DIM, np.nan, dtype=np.float32)
            return super().__call__(files, record)

    s = run(LocalHub(tiny_zoo["hub"]), catalog, home, embedder=Flaky())
    assert (s.added, s.failed) == (4, 2)
    m = catalog.get_model("org/tiny-resnet")
    assert m.status == "failed" and m.error_type == "RuntimeError" and "segfault" in m.last_error
    assert catalog.get_model("timm/tiny-timm").error_type == "InvalidInputError"
    check_consistent(catalog, home)


def test_a_new_embedder_version_needs_rebuild_index_and_re_embeds(tiny_zoo, catalog, home):
    hub = LocalHub(tiny_zoo["hub"])
    run(hub, catalog, home)

    class V2(ConfigDigestEmbedder):
        version = "test-digest-v2"

    with pytest.raises(IndexMismatchError, match="made by the embedder 'test-digest-v1'.*rebuild_index") as e:
        run(hub, catalog, home, embedder=V2())
    assert (e.value.expected, e.value.found) == ("test-digest-v1", "test-digest-v2")
    assert catalog.get_state(EMBEDDER_KEY) == "test-digest-v1"  # refused before anything changed
    v2 = V2()
    s = run(hub, catalog, home, embedder=v2, rebuild_index=True)
    # the newest model comes back through the listing (the watermark overlap), the rest as stale
    assert s.updated == 6 and s.retried == 5 and sorted(v2.calls) == sorted(
        m.repo_id for m in catalog.models(status="ok"))
    assert {m.vector_version for m in catalog.models(status="ok")} == {"test-digest-v2"}
    check_consistent(catalog, home, embedder_version="test-digest-v2")
    assert run(hub, catalog, home, embedder=V2()).processed == 0


class CountingHub(LocalHub):
    """A LocalHub that counts metadata look-ups."""

    def __init__(self, root):
        super().__init__(root)
        self.lookups: list[str] = []

    def model_info(self, repo_id, *, revision=None):
        self.lookups.append(repo_id)
        return super().model_info(repo_id, revision=revision)


class V2(ConfigDigestEmbedder):
    version = "test-digest-v2"


def test_limit_applies_before_looking_up_the_models_to_redo(tiny_zoo, catalog, home):
    run(LocalHub(tiny_zoo["hub"]), catalog, home)
    hub = CountingHub(tiny_zoo["hub"])
    s = run(hub, catalog, home, embedder=V2(), rebuild_index=True, limit=2)
    # five stale models, but only the two processed are looked up
    assert s.processed == 2 and s.retried == 2 and len(hub.lookups) == 2


def test_dry_run_looks_nothing_up_and_writes_nothing_for_models_to_redo(tiny_zoo, catalog, home, tmp_path):
    root = copy_zoo(tiny_zoo["hub"], tmp_path / "hub")
    run(LocalHub(root), catalog, home)
    import shutil

    shutil.rmtree(root / "org/tiny-resnet")  # gone from the hub: its look-up would fail
    before = [(m.repo_id, m.sha, m.status, m.attempts, m.last_error, m.updated_at) for m in catalog.models()]
    hub = CountingHub(root)
    s = run(hub, catalog, home, embedder=V2(), dry_run=True)
    assert s.dry_run and s.updated == 6 and s.retried == 5 and hub.lookups == []
    after = [(m.repo_id, m.sha, m.status, m.attempts, m.last_error, m.updated_at) for m in catalog.models()]
    assert after == before


def test_models_the_embedder_could_not_embed_are_retried_by_a_new_embedder_version(tiny_zoo, catalog, home):
    from fennec.errors import UnsupportedModelError

    class NoResnet(ConfigDigestEmbedder):
        def __call__(self, files, record):
            if record.repo_id == "org/tiny-resnet":
                raise UnsupportedModelError("org/tiny-resnet: archi2vec cannot embed it: no tracer",
                                            repo_id=record.repo_id, reason="archi2vec")
            return super().__call__(files, record)

    hub = LocalHub(tiny_zoo["hub"])
    assert run(hub, catalog, home, embedder=NoResnet()).unsupported == 3
    resnet = catalog.get_model("org/tiny-resnet")
    assert (resnet.status, resnet.error_type, resnet.unsupported_by) == (
        "unsupported", "archi2vec", ConfigDigestEmbedder.version)
    remote = catalog.get_model("org/remote-code")  # the commit's verdict, whatever the embedder
    assert (remote.error_type, remote.unsupported_by) == ("remote_code", None)
    assert catalog.get_model("org/malformed").error_type == "malformed"
    assert run(hub, catalog, home, embedder=NoResnet()).processed == 0  # same version: not retried
    v2 = V2()
    s = run(hub, catalog, home, embedder=v2, rebuild_index=True)
    assert catalog.get_model("org/tiny-resnet").status == "ok" and "org/tiny-resnet" in v2.calls
    assert "org/remote-code" not in v2.calls and s.unsupported == 0
    check_consistent(catalog, home, embedder_version="test-digest-v2")


def test_the_default_lock_is_beside_the_catalog(tiny_zoo, tmp_path):
    with Catalog(tmp_path / "db/catalog.sqlite") as cat:
        with reindex_lock(tmp_path / "db/reindex.lock"):
            with pytest.raises(ReindexLockedError):
                reindex(hub=LocalHub(tiny_zoo["hub"]), catalog=cat, embedder=ConfigDigestEmbedder())


def test_backoff_starts_when_the_failure_happens_not_when_the_run_started(tiny_zoo, catalog, home,
                                                                          monkeypatch):
    import fennec.reindex as reindex_module

    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock = {"now": start}

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock["now"]

    class Slow(ConfigDigestEmbedder):
        def __call__(self, files, record):
            clock["now"] += timedelta(hours=5)  # a long run
            if record.repo_id == "org/tiny-vit":
                raise RuntimeError("crash")
            return super().__call__(files, record)

    monkeypatch.setattr(reindex_module, "datetime", FakeDatetime)
    run(LocalHub(tiny_zoo["hub"]), catalog, home, embedder=Slow(), batch_size=1)
    failed = catalog.get_model("org/tiny-vit")
    # tiny-vit is the 4th model embedded (oldest first): it failed 4 x 5 h into the run
    assert failed.status == "failed" and failed.next_attempt_at == start + timedelta(hours=4 * 5 + 1)


# ---------------------------------------------------------------------------------------
# Reliability through the local Hub server
# ---------------------------------------------------------------------------------------


def test_gated_failures_back_off_then_succeed_with_a_token(online, catalog, home, monkeypatch):
    s = run(HfHub(retry=FAST), catalog, home)
    assert (s.added, s.unsupported, s.failed) == (4, 2, 1)  # private: not listed without a token
    gated = catalog.get_model("org/gated-vit")
    assert gated.status == "failed" and gated.error_type == "GatedModelError" and gated.attempts == 1
    assert gated.library == "transformers"  # the listing's metadata is kept
    assert s.failures[0][0] == "org/gated-vit"
    s = run(HfHub(retry=FAST), catalog, home)
    assert s.processed == 0 and s.retried == 0  # backing off
    monkeypatch.setenv("HF_TOKEN", "good-token")
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    s = run(HfHub(retry=FAST), catalog, home, now=later)
    assert s.added == 2 and s.retried == 0  # the gated model (due) and the private one
    assert catalog.get_model("org/gated-vit").status == "ok"
    check_consistent(catalog, home)


def test_hub_outage_mid_run_keeps_committed_batches_and_resumes(online, catalog, home):
    hub = HfHub(retry=FAST)
    embedder = ConfigDigestEmbedder()
    faults = []

    def outage_after_the_first_batch(summary):
        if not faults:  # every model's metadata fails from now on: the Hub is down
            faults.append(online.add_fault(r"^/api/models/", status=503, times=None))

    with pytest.raises(HubUnavailableError, match=f"{HUB_DOWN_AFTER} models in a row"):
        run(hub, catalog, home, batch_size=3, embedder=embedder, on_batch=outage_after_the_first_batch)
    assert faults[0].hits == HUB_DOWN_AFTER * FAST.attempts
    committed = {m.repo_id for m in catalog.models()}
    # the first batch in date order; nothing of the batch in flight, not even as failures
    assert committed == {"org/remote-code", "org/vit-features", "timm/tiny-timm"}
    check_consistent(catalog, home)
    online.clear_faults()
    online.add_fault(r"/resolve/.*/config\.json", status=500, times=1)  # a transient one
    resumed = ConfigDigestEmbedder()
    s = run(hub, catalog, home, batch_size=3, embedder=resumed)
    assert s.processed == 4 and {m.repo_id for m in catalog.models()} == committed | OK_MODELS | {
        "org/malformed", "org/gated-vit"}
    # only the batch in flight (tiny-resnet, tiny-vit, malformed) was lost and redone
    assert set(resumed.calls).isdisjoint(committed) and "org/tiny-resnet" in resumed.calls
    check_consistent(catalog, home)


def test_one_permanently_broken_model_does_not_stop_every_run(online, catalog, home):
    # 502 on one model, forever: its failure is recorded and the run goes on
    f = online.add_fault(r"^/api/models/org/tiny-resnet", status=502, times=None)
    hub = HfHub(retry=FAST)
    s = run(hub, catalog, home, batch_size=2)
    assert f.hits >= FAST.attempts and (s.added, s.unsupported, s.failed) == (3, 2, 2)
    broken = catalog.get_model("org/tiny-resnet")
    assert broken.status == "failed" and broken.error_type == "HubUnavailableError"
    assert broken.next_attempt_at is not None and broken.attempts == 1
    # the watermark moved past it, to the newest listed model
    assert catalog.watermark == max(r.last_modified for r in hub.list_models())
    check_consistent(catalog, home)
    again = run(hub, catalog, home)  # backing off: the next run neither stops nor retries it
    assert again.processed == 0


def test_timeouts_mid_run_are_retried(online, catalog, home):
    online.add_fault(r"^/api/models/org/tiny-vit", delay=0.6, times=1)
    s = run(HfHub(retry=RetryPolicy(attempts=3, base_delay=0.01, timeout=0.3)), catalog, home)
    assert s.added == 4 and catalog.get_model("org/tiny-vit").status == "ok"


def test_ctrl_c_keeps_the_committed_batches_in_the_catalog(tiny_zoo, catalog, home):
    class Interrupted(ConfigDigestEmbedder):
        def __call__(self, files, record):
            if len(self.calls) == 5:
                raise KeyboardInterrupt
            return super().__call__(files, record)

    with pytest.raises(KeyboardInterrupt):
        run(LocalHub(tiny_zoo["hub"]), catalog, home, batch_size=2, embedder=Interrupted())
    committed = len(catalog.models())
    assert committed in (2, 4, 6)  # whole batches only; the one in flight is lost
    check_consistent(catalog, home)


def test_the_index_folder_of_an_earlier_version_is_ignored_and_kept(tiny_zoo, catalog, home):
    """Earlier versions also kept an archi2vec index in <home>/index: reindex neither reads nor
    deletes it (the user's file; the docs say it may be deleted)."""
    (home / "index").mkdir()
    (home / "index" / "meta.json").write_text('{"format": "damaged"}')
    s = run(LocalHub(tiny_zoo["hub"]), catalog, home)
    assert s.added == 6
    assert (home / "index" / "meta.json").read_text() == '{"format": "damaged"}'
    assert sorted(p.name for p in (home / "index").iterdir()) == ["meta.json"]


def test_the_index_arguments_are_ignored_with_a_deprecation_warning(tiny_zoo, catalog, home):
    with pytest.warns(DeprecationWarning, match="index_dir and index_save_interval are ignored"):
        s = reindex(hub=LocalHub(tiny_zoo["hub"]), catalog=catalog, embedder=ConfigDigestEmbedder(),
                    index_dir=home / "index", index_save_interval=0)
    assert s.added == 6
    check_consistent(catalog, home)


def test_a_catalog_of_an_earlier_version_names_its_embedder_by_its_vectors(tiny_zoo, catalog, home):
    """Earlier versions recorded the embedder version in the index's sidecar only: without a
    recorded version, a catalog whose vectors are all another embedder's refuses this one."""
    hub = LocalHub(tiny_zoo["hub"])
    run(hub, catalog, home)
    with catalog.transaction() as db:  # as an earlier version left it
        db.execute("DELETE FROM reindex_state WHERE key = ?", (EMBEDDER_KEY,))
    assert catalog.vector_versions() == {"test-digest-v1": 6}
    with pytest.raises(IndexMismatchError, match="'test-digest-v1'"):
        run(hub, catalog, home, embedder=V2())
    assert catalog.get_state(EMBEDDER_KEY) is None
    assert run(hub, catalog, home).processed == 0  # its own embedder: recorded, nothing to do
    assert catalog.get_state(EMBEDDER_KEY) == "test-digest-v1"
    # an interrupted re-embedding goes on without rebuild_index, as before
    assert run(hub, catalog, home, embedder=V2(), rebuild_index=True, limit=2).processed == 2
    with catalog.transaction() as db:
        db.execute("DELETE FROM reindex_state WHERE key = ?", (EMBEDDER_KEY,))
    assert catalog.vector_versions() == {"test-digest-v1": 4, "test-digest-v2": 2}
    assert run(hub, catalog, home, embedder=V2()).processed == 4
    check_consistent(catalog, home, embedder_version="test-digest-v2")


def test_an_in_memory_catalog_takes_no_lock_and_writes_no_file(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Catalog(":memory:") as cat:
        assert reindex(hub=LocalHub(tiny_zoo["hub"]), catalog=cat, embedder=ConfigDigestEmbedder()).added == 6
        with reindex_lock(tmp_path / "reindex.lock"):  # a lock_path given is taken
            with pytest.raises(ReindexLockedError):
                reindex(hub=LocalHub(tiny_zoo["hub"]), catalog=cat, embedder=ConfigDigestEmbedder(),
                        lock_path=tmp_path / "reindex.lock")
    assert [p.name for p in tmp_path.iterdir()] == ["reindex.lock"]


def test_an_older_catalog_is_migrated_before_reindexing(tiny_zoo, home):
    import sqlite3

    from fennec.catalog import MIGRATIONS

    home.mkdir(parents=True)
    db = sqlite3.connect(home / "catalog.sqlite")
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Catalog(home / "catalog.sqlite") as cat:
        assert run(LocalHub(tiny_zoo["hub"]), cat, home).added == 6
        check_consistent(cat, home)


def test_the_lock_refuses_a_second_run(tiny_zoo, catalog, home):
    with reindex_lock(home / "reindex.lock"):
        with pytest.raises(ReindexLockedError) as e:
            run(LocalHub(tiny_zoo["hub"]), catalog, home)
    assert f"pid {os.getpid()}" in e.value.holder
    assert run(LocalHub(tiny_zoo["hub"]), catalog, home).added == 6  # released


_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_reindex import ConfigDigestEmbedder
from fennec.catalog import Catalog
from fennec.hub import LocalHub
from fennec.reindex import reindex
from pathlib import Path
home = Path({home!r})
with Catalog(home / "catalog.sqlite") as cat:
    print(reindex(hub=LocalHub({hub!r}), catalog=cat, batch_size=2,
                  embedder=ConfigDigestEmbedder(hang_on_call={hang_on_call},
                                                marker={marker!r})).line(), flush=True)
"""


def _child(hub, home, *, hang_on_call, marker):
    code = _CHILD.format(tests=str(REPO_ROOT / "tests"), home=str(home), hub=str(hub),
                         hang_on_call=hang_on_call, marker=str(marker))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, bound=300.0):
    """Poll ``cond`` until it holds; ``bound`` seconds only turn a hang into a failure."""
    t = time.monotonic()
    while not cond():
        if time.monotonic() - t > bound:
            raise AssertionError(f"still waiting after {bound:g} s")
        time.sleep(0.05)


def test_kill_9_mid_batch_then_resume_loses_nothing_and_duplicates_nothing(tiny_zoo, home, tmp_path):
    root = copy_zoo(tiny_zoo["hub"], tmp_path / "hub")
    for i in range(6):
        when = tiny_zoo["t0"] + (20 + i) * tiny_zoo["day"]
        write_model(root, f"bulk/vit-{i}", config={**TINY_VIT, "hidden_size": 32 + 8 * i},
                    extra={"createdAt": when, "lastModified": when})
    home.mkdir(parents=True)
    Catalog(home / "catalog.sqlite").close()
    # The 5th embedding is in the 3rd batch or later (a batch embeds at most 2 models): the
    # child writes the marker there and hangs, so the kill lands mid-batch, after 2 commits.
    marker = tmp_path / "embedding-5th-model"
    child = _child(root, home, hang_on_call=5, marker=marker)
    try:
        _wait_for(lambda: marker.exists() or child.poll() is not None)
        assert marker.exists(), f"the child ended early: {child.communicate()[1][-4000:]}"
        with Catalog(home / "catalog.sqlite") as cat:
            assert len(cat.models()) >= 4  # two batches of two committed
            # a second run while the first holds the lock is refused
            with pytest.raises(ReindexLockedError):
                run(LocalHub(root), cat, home)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    with Catalog(home / "catalog.sqlite") as cat:
        before = {m.repo_id for m in cat.models()}
        assert 4 <= len(before) < 14
        s = run(LocalHub(root), cat, home, batch_size=2)
        after = cat.models()
        assert len(after) == len({m.repo_id for m in after}) == 14
        assert s.processed == 14 - len(before)  # only what was not committed
        check_consistent(cat, home)


# ---------------------------------------------------------------------------------------
# Periodic runs and the CLI
# ---------------------------------------------------------------------------------------


def test_parse_duration():
    assert [parse_duration(t) for t in ("90", "90s", "15m", "6h", "1d", "1.5h")] == [
        90, 90, 900, 21600, 86400, 5400]
    for bad in ("", "6 hours", "-1h", "0s", "h"):
        with pytest.raises(InvalidInputError):
            parse_duration(bad)


def test_run_every_keeps_going_after_failures():
    calls, sleeps = [], []

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise HubUnavailableError("down")
        if len(calls) == 2:
            raise ReindexLockedError("busy", lock_path="x")

    assert run_every(60, job, sleep=sleeps.append, max_runs=3) == 3
    assert len(calls) == 3 and len(sleeps) == 2 and all(0 <= s <= 60 for s in sleeps)


def test_run_every_survives_a_locked_database():
    import sqlite3

    calls = []

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")

    assert run_every(60, job, sleep=lambda s: None, max_runs=2) == 2 and len(calls) == 2


def test_summary_line():
    s = ReindexSummary(added=2, updated=1, unsupported=1, failed=1, seconds=6.0)
    assert s.processed == 5 and "(50 models/min)" in s.line() and "watermark none" in s.line()


def test_cli_models_and_import(tiny_zoo, catalog, home, capsys):
    run(LocalHub(tiny_zoo["hub"]), catalog, home)
    assert cli.main(["models", "--home", str(home), "--status", "unsupported"]) == 0
    out = capsys.readouterr().out
    assert "org/remote-code" in out and "org/tiny-vit" not in out and "2 unsupported" in out
    assert cli.main(["models", "--home", str(home), "--json", "--search", "tiny-v"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["repo_id"] for r in rows] == ["org/tiny-vit"] and rows[0]["has_vector"]
    table = home / "t.json"
    table.write_text(json.dumps({"metric": "acc", "protocol": "p", "results": {"d": {"m": 0.5}}}))
    assert cli.main(["import-results", "--home", str(home), str(table)]) == 0
    assert "t: 1 results" in capsys.readouterr().out
    bad = home / "bad.json"
    bad.write_text("[]")
    assert cli.main(["import-results", "--home", str(home), str(bad)]) == 1
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["reindex", "--limit", "0"])
    assert e.value.code == 2


def test_cli_reindex_locked_exit_code(tiny_zoo, home, monkeypatch, capsys):
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: ConfigDigestEmbedder())
    with reindex_lock(home / "reindex.lock"):
        code = cli.main(["reindex", "--hub", str(tiny_zoo["hub"]), "--home", str(home)])
    assert code == cli.EXIT_LOCKED and "Another reindex is running" in capsys.readouterr().err
    assert cli.main(["reindex", "--hub", str(tiny_zoo["hub"]), "--home", str(home), "--dry-run"]) == 0
    assert "dry run: 8 listed" in capsys.readouterr().out
    assert cli.main(["reindex", "--hub", str(home / "nowhere"), "--home", str(home)]) == 1


def test_cli_reindex_with_another_embedder_is_refused_naming_the_flag(tiny_zoo, home, monkeypatch, capsys):
    args = ["reindex", "--hub", str(tiny_zoo["hub"]), "--home", str(home), "--no-progress"]
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: ConfigDigestEmbedder())
    assert cli.main(args) == 0
    monkeypatch.setattr("fennec.reindex.Archi2VecEmbedder", lambda **kw: V2())  # e.g. --dim 128
    capsys.readouterr()
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "made by the embedder 'test-digest-v1'" in err and "pass --rebuild-index to re-embed" in err
    assert cli.main([*args, "--rebuild-index"]) == 0
    assert "updated 6" in capsys.readouterr().out
    assert not (home / "index").exists()


@pytest.mark.slow
def test_cli_reindex_with_archi2vec_against_the_server(online, tmp_path):
    """The real command, the real embedder, HF_ENDPOINT read by a fresh interpreter."""
    env = {**os.environ, "HF_ENDPOINT": online.url, "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf"), "FENNEC_HOME": str(tmp_path / "fh"), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "fennec.cli", "reindex", "--method", "record", "--limit", "5"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    # the five oldest: remote-code (unsupported), vit-features, tiny-timm, tiny-resnet, tiny-vit
    assert "added 4, updated 0, unsupported 1, failed 0" in p.stdout
    import archi2vec  # only for its version string

    with Catalog(tmp_path / "fh/catalog.sqlite") as cat:
        ok = cat.models(status="ok")
        assert all(m.vector is not None and m.vector.shape == (256,) for m in ok)
        assert all(m.vector_version.startswith(archi2vec.EMBEDDER_VERSION) for m in ok)
        assert cat.vectors(version=ok[0].vector_version)[0] == sorted(m.repo_id for m in ok)
        assert not (tmp_path / "fh/index").exists()
        # tiny-vit and vit-features share a config: the same architecture, the same vector
        ids = {m.repo_id: m for m in ok}
        if {"org/tiny-vit", "org/vit-features"} <= set(ids):
            assert np.allclose(ids["org/tiny-vit"].vector, ids["org/vit-features"].vector)
