"""fennec.index: FAISS with model ids, atomic persistence, version checks, damage detection."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fennec.errors import IndexCorruptedError, IndexMismatchError, InvalidInputError, UnknownIdError
from fennec.index import FORMAT_VERSION, IndexMeta, ModelIndex

D = 16


def data(n=200, d=D, seed=0):
    r = np.random.default_rng(seed)
    return [f"org/m{i:03d}" for i in range(n)], r.normal(size=(n, d)).astype(np.float32)


def brute(x, q, metric, k):
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = -((q[:, None, :] - x[None]) ** 2).sum(-1) if metric == "l2" else q @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_search_matches_brute_force(metric):
    ids, x = data()
    q = np.random.default_rng(1).normal(size=(5, D)).astype(np.float32)
    idx = ModelIndex(D, metric=metric)
    idx.add(ids, x)
    got = idx.search_batch(q, 10)
    order, scores = brute(x.astype(np.float64), q.astype(np.float64), metric, 10)
    for row, o, s in zip(got, order, scores, strict=True):
        assert [m for m, _ in row] == [ids[i] for i in o]
        np.testing.assert_allclose([v for _, v in row], s, rtol=1e-4, atol=1e-4)
    assert idx.search(q[0], k=3) == got[0][:3]
    assert len(idx.search(q[0], k=500)) == 200  # k larger than the index


def test_add_upsert_remove_keep_ids_consistent():
    ids, x = data(20)
    idx = ModelIndex(D, metric="l2")
    idx.add(ids[:10], x[:10])
    idx.upsert(ids[5:20], x[5:20] + 100)  # 5 replaced, 10 new
    assert len(idx) == 20 and set(idx.ids) == set(ids)
    np.testing.assert_allclose(idx.vector(ids[7]), x[7] + 100)
    np.testing.assert_allclose(idx.vector(ids[2]), x[2])
    assert idx.search(x[7] + 100, 1)[0][0] == ids[7]
    assert idx.remove([ids[7], ids[7], "absent"]) == 1
    assert ids[7] not in idx and len(idx) == 19
    assert idx.search(x[7] + 100, 1)[0][0] != ids[7]
    assert idx.remove([]) == 0
    with pytest.raises(UnknownIdError, match=f"'{ids[7]}' is not in the index \\(19 models\\)") as info:
        idx.vector(ids[7])
    assert info.value.key == ids[7] and isinstance(info.value, KeyError)  # what it raised before
    idx.add([ids[7]], x[7:8])  # re-added under a fresh faiss id
    assert idx.search(x[7], 1)[0][0] == ids[7]


def test_approximate_index_supports_remove_by_rebuilding():
    ids, x = data(300)
    idx = ModelIndex(D, factory="HNSW32")
    idx.add(ids, x)
    assert idx.remove(ids[:100]) == 100 and len(idx) == 200
    hits = idx.search_batch(x[100:110], 1)
    assert [h[0][0] for h in hits] == ids[100:110]  # each finds itself
    assert all(h[0][0] not in ids[:100] for h in idx.search_batch(x[:20], 1))


def test_ivf_index_trains_searches_removes_and_persists(tmp_path):
    ids, x = data(2000)
    idx = ModelIndex(D, factory="IVF16,Flat")
    assert idx.nprobe == 1
    idx.nprobe = 16  # every list: exact
    idx.add(ids, x)
    q = np.random.default_rng(3).normal(size=(5, D)).astype(np.float32)
    order, _ = brute(x.astype(np.float64), q.astype(np.float64), "cosine", 10)
    assert [[m for m, _ in row] for row in idx.search_batch(q, 10)] == [[ids[i] for i in o] for o in order]
    assert idx.remove(ids[:500]) == 500
    assert all(h[0][0] == m for h, m in zip(idx.search_batch(x[500:520], 1), ids[500:520], strict=True))
    np.testing.assert_allclose(idx.vector(ids[600]), x[600] / np.linalg.norm(x[600]), rtol=1e-5)
    idx.upsert([ids[600]], x[601:602])
    idx.save(tmp_path)
    loaded = ModelIndex.load(tmp_path)
    assert loaded.nprobe == 16 and len(loaded) == 1500
    assert {m for m, _ in loaded.search(x[601], 2)} == {ids[600], ids[601]}
    with pytest.raises(InvalidInputError, match="at least 16"):
        ModelIndex(D, factory="IVF16,Flat").add(["a"], x[:1])
    with pytest.raises(InvalidInputError, match="nprobe must"):
        idx.nprobe = 0
    with pytest.raises(InvalidInputError, match="IVF indexes"):
        ModelIndex(D).nprobe = 4
    assert ModelIndex(D).nprobe is None
    with pytest.raises(InvalidInputError, match="transform"):
        ModelIndex(D, factory="PCA8,IVF16,Flat")


@pytest.mark.parametrize("call, match", [
    (lambda i: i.add(["a"], np.ones((1, D + 1))), "shape"),
    (lambda i: i.add(["a", "b"], np.ones((1, D))), "2 ids but 1"),
    (lambda i: i.add(["a"], np.full((1, D), np.nan)), "NaN"),
    (lambda i: i.add(["a", "a"], np.ones((2, D))), "Duplicate"),
    (lambda i: i.add(["x"], np.ones((1, D))), "upsert"),
    (lambda i: i.add(["z"], np.zeros((1, D))), "zero vector"),
    (lambda i: i.upsert(["a", "a"], np.ones((2, D))), "Duplicate"),
    (lambda i: i.search(np.ones(D), k=0), "k must"),
    (lambda i: i.search(np.ones((2, D))), "search_batch"),
    (lambda i: i.search(np.ones(D - 1)), "shape"),
])
def test_bad_input_is_refused(call, match):
    idx = ModelIndex(D)
    idx.add(["x"], np.ones((1, D)))
    with pytest.raises(InvalidInputError, match=match):
        call(idx)
    assert len(idx) == 1 and idx.ids == ["x"]


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": D, "metric": "hamming"},
                                    {"dim": D, "kind": "other"}, {"dim": D, "factory": "Nonsense99"}])
def test_bad_configuration_is_refused(kwargs):
    dim = kwargs.pop("dim")
    with pytest.raises(InvalidInputError):
        ModelIndex(dim, **kwargs)


def test_empty_index_search():
    assert ModelIndex(D).search(np.ones(D), 5) == []


# ---------------------------------------------------------------------------------------
# Persistence
# ---------------------------------------------------------------------------------------


def test_save_load_roundtrip_and_sidecar(tmp_path):
    ids, x = data()
    idx = ModelIndex(D, embedder_version="e1", space_version=None)
    idx.add(ids, x)
    idx.remove(ids[:3])
    idx.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx/meta.json").read_text())
    assert meta["format"] == FORMAT_VERSION and meta["dim"] == D and meta["metric"] == "cosine"
    assert meta["embedder_version"] == "e1" and meta["count"] == 197 and meta["kind"] == "archi2vec"
    assert meta["extra"] == {}
    idx.extra["catalog_generation"] = "7"
    idx.save(tmp_path / "idx")
    loaded = ModelIndex.load(tmp_path / "idx", expected=IndexMeta(D, embedder_version="e1"))
    assert loaded.extra == {"catalog_generation": "7"}
    q = np.random.default_rng(2).normal(size=(4, D))
    assert loaded.search_batch(q, 7) == idx.search_batch(q, 7)
    assert loaded.ids == idx.ids
    loaded.add(["new"], np.ones((1, D)))  # ids continue after the saved next id
    assert "new" in loaded and len(set(loaded._model_of)) == 198
    loaded.save(tmp_path / "idx")  # a second generation replaces the first
    names = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert len(names) == 3 and names[2] == "meta.json"


def test_a_crash_during_save_leaves_the_old_index(tmp_path, monkeypatch):
    ids, x = data(50)
    idx = ModelIndex(D)
    idx.add(ids[:10], x[:10])
    idx.save(tmp_path / "idx")
    idx.add(ids[10:], x[10:])

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        idx.save(tmp_path / "idx")
    monkeypatch.undo()
    assert len(ModelIndex.load(tmp_path / "idx")) == 10  # the old generation, intact
    idx.save(tmp_path / "idx")  # and the next save cleans the leftovers
    assert len(ModelIndex.load(tmp_path / "idx")) == 50
    assert len(list((tmp_path / "idx").iterdir())) == 3


@pytest.mark.parametrize("field, value", [("embedder_version", "e2"), ("space_version", "s1"),
                                          ("dim", D + 1), ("metric", "l2"), ("kind", "transfer")])
def test_version_mismatch_is_refused_with_a_clear_message(tmp_path, field, value):
    ModelIndex.from_vectors(*data(5), IndexMeta(D, embedder_version="e1")).save(tmp_path)
    expected = IndexMeta(**{**dict(dim=D, embedder_version="e1"), field: value})
    with pytest.raises(IndexMismatchError) as e:
        ModelIndex.load(tmp_path, expected=expected)
    assert e.value.field == field and e.value.expected == value
    assert "rebuild" in str(e.value) and field in str(e.value)


def _damage(folder, how):
    meta = json.loads((folder / "meta.json").read_text())
    if how == "truncate-index":
        p = folder / meta["files"]["index"]
        p.write_bytes(p.read_bytes()[:100])
    elif how == "flip-ids":
        p = folder / meta["files"]["ids"]
        p.write_text(p.read_text().replace("org/m001", "org/m999"))
    elif how == "delete-ids":
        (folder / meta["files"]["ids"]).unlink()
    elif how == "garbage-meta":
        (folder / "meta.json").write_text("{garbage")
    elif how == "meta-format":
        (folder / "meta.json").write_text(json.dumps({**meta, "format": 99}))
    elif how == "meta-incomplete":
        (folder / "meta.json").write_text(json.dumps({"format": FORMAT_VERSION, "dim": D}))
    elif how == "meta-list":
        (folder / "meta.json").write_text("[]")
    elif how == "count":
        (folder / "meta.json").write_text(json.dumps({**meta, "count": meta["count"] + 7}))
    elif how == "no-meta":
        (folder / "meta.json").unlink()


DAMAGES = ["truncate-index", "flip-ids", "delete-ids", "garbage-meta", "meta-format",
           "meta-incomplete", "meta-list", "count", "no-meta"]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_index_is_detected(tmp_path, how):
    ModelIndex.from_vectors(*data(20), IndexMeta(D)).save(tmp_path)
    _damage(tmp_path, how)
    with pytest.raises(IndexCorruptedError):
        ModelIndex.load(tmp_path)


def test_transfer_space_vectors_are_recorded(tmp_path):
    meta = IndexMeta(8, kind="transfer", embedder_version="e1", space_version="space-v3")
    ModelIndex.from_vectors(["a"], np.ones((1, 8)), meta).save(tmp_path)
    loaded = ModelIndex.load(tmp_path, expected=meta)
    assert loaded.meta == meta and "transfer" in repr(loaded)
