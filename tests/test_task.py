"""fennec.task: the task descriptor and the index of historical tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fennec.errors import IndexCorruptedError, IndexMismatchError, InvalidInputError, UnknownIdError
from fennec.index import IndexMeta, ModelIndex
from fennec.task import DESCRIPTOR_VERSION, SCALAR_NAMES, TaskIndex, describe, descriptor_dim


def _task(rng, n_classes=4, per_class=30, dim=16, spread=3.0, noise=1.0, shift=0.0):
    centres = rng.normal(size=(n_classes, dim)) * spread + shift
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + rng.normal(size=(len(labels), dim)) * noise
    return x, labels


def _scalars(d):
    return dict(zip(SCALAR_NAMES, d[-len(SCALAR_NAMES):], strict=True))


def test_shape_and_blocks_by_hand():
    # Two classes, two points each, in 2-D; rows are already unit length.
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    d = describe(x, y)
    assert d.shape == (descriptor_dim(2),) == (12,)
    np.testing.assert_allclose(d[0:2], [0.5, 0.5])            # mean of class means
    np.testing.assert_allclose(d[2:4], [0.5, 0.5])            # std of class means
    np.testing.assert_allclose(d[4:6], [0.0, 0.0], atol=1e-7)  # no within-class spread
    s = _scalars(d)
    assert s["log_n_classes"] == pytest.approx(np.log(2))
    assert s["log_samples_per_class"] == pytest.approx(np.log(2))
    assert s["class_mean_cosine"] == pytest.approx(-1.0)      # two centred means point apart
    assert s["nearest_centroid_accuracy"] == pytest.approx(1.0)


def test_scale_invariant_and_order_invariant():
    rng = np.random.default_rng(0)
    x, y = _task(rng)
    d = describe(x, y)
    np.testing.assert_allclose(describe(7.5 * x, y), d, rtol=1e-5, atol=1e-6)
    perm = rng.permutation(len(y))
    np.testing.assert_allclose(describe(x[perm], y[perm]), d, rtol=1e-5, atol=1e-6)
    # string labels are remapped like the metrics do
    np.testing.assert_allclose(describe(x, np.array([f"c{v}" for v in y])), d, rtol=1e-6)


def test_separable_tasks_score_as_easier_than_confusable_ones():
    rng = np.random.default_rng(1)
    easy = _scalars(describe(*_task(rng, spread=5.0, noise=0.3)))
    hard = _scalars(describe(*_task(rng, spread=0.3, noise=2.0)))
    assert easy["fisher_ratio"] > hard["fisher_ratio"]
    assert easy["nearest_centroid_accuracy"] > hard["nearest_centroid_accuracy"]
    assert easy["nearest_centroid_accuracy"] > 0.95


def test_bad_input_is_refused():
    with pytest.raises(InvalidInputError):
        describe(np.ones((4, 3)), np.zeros(4))                       # one class
    with pytest.raises(InvalidInputError):
        describe(np.ones((4, 3)), np.array([0, 0, 0, 1]))            # class with 1 example
    x = np.ones((4, 3))
    x[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        describe(x, np.array([0, 0, 1, 1]))


def test_task_index_finds_the_task_with_the_closest_descriptor(tmp_path):
    rng = np.random.default_rng(2)
    tasks = {f"t{i}": describe(*_task(rng, shift=float(i))) for i in range(5)}
    index = TaskIndex(list(tasks), np.stack(list(tasks.values())), proxy="org/proxy")
    query = describe(*_task(np.random.default_rng(99), shift=3.0))
    hits = index.search(query, k=2)
    assert len(hits) == 2 and hits[0][1] >= hits[1][1]
    assert index.search(tasks["t2"], k=1)[0] == ("t2", pytest.approx(1.0, abs=1e-5))
    assert "t2" not in [t for t, _ in index.search(tasks["t2"], k=3, exclude=["t2"])]
    with pytest.raises(UnknownIdError, match="Unknown task 't9'; known") as info:
        index.descriptor("t9")
    assert info.value.key == "t9" and isinstance(info.value, InvalidInputError)  # what it raised before

    index.save(tmp_path / "tasks")
    back = TaskIndex.load(tmp_path / "tasks", proxy="org/proxy")
    assert back.task_ids == index.task_ids and back.version == DESCRIPTOR_VERSION
    assert back.search(query, k=2) == hits
    with pytest.raises(IndexMismatchError, match="proxy"):
        TaskIndex.load(tmp_path / "tasks", proxy="org/other-proxy")
    with pytest.raises(InvalidInputError, match="length"):
        index.search(query[:-1])
    with pytest.raises(IndexCorruptedError, match="fennec fit"):
        TaskIndex.load(tmp_path / "nothing-here")


def _saved_task_index(folder):
    rng = np.random.default_rng(3)
    index = TaskIndex([f"t{i}" for i in range(4)], rng.normal(size=(4, 6)), proxy="org/proxy")
    index.save(folder)
    return index, json.loads((folder / "meta.json").read_text())


def test_task_index_is_saved_in_the_model_index_format_with_checksums(tmp_path):
    index, meta = _saved_task_index(tmp_path)
    assert meta["kind"] == "task" and meta["embedder_version"] == DESCRIPTOR_VERSION
    assert meta["extra"] == {"proxy": "org/proxy"} and set(meta["sha256"]) == {"index", "ids"}
    raw = ModelIndex.load(tmp_path)  # the one persistence format
    assert raw.ids == index.task_ids
    back = TaskIndex.load(tmp_path)
    assert np.array_equal(back.descriptor("t2"), index.descriptor("t2"))
    hits, again = index.search(index.descriptor("t1"), k=4), back.search(index.descriptor("t1"), k=4)
    assert [t for t, _ in again] == [t for t, _ in hits]
    assert [s for _, s in again] == pytest.approx([s for _, s in hits], abs=1e-6)


@pytest.mark.parametrize("how", ["flip-index-byte", "edit-ids", "delete-index", "delete-ids", "garbage-meta",
                                 "no-meta", "model-index"])
def test_a_corrupt_task_index_raises_index_corrupted_error(tmp_path, how):
    _, meta = _saved_task_index(tmp_path)
    index_file, ids_file = tmp_path / meta["files"]["index"], tmp_path / meta["files"]["ids"]
    if how == "flip-index-byte":
        data = bytearray(index_file.read_bytes())
        data[-1] ^= 0xFF
        index_file.write_bytes(bytes(data))
    elif how == "edit-ids":
        ids_file.write_text(ids_file.read_text().replace('"t1"', '"t9"'))
    elif how == "delete-index":
        index_file.unlink()
    elif how == "delete-ids":
        ids_file.unlink()
    elif how == "garbage-meta":
        (tmp_path / "meta.json").write_text("{garbage")
    elif how == "no-meta":
        (tmp_path / "meta.json").unlink()
    elif how == "model-index":  # a valid index, but of model vectors: not a task index
        ModelIndex.from_vectors(["org/a"], np.ones((1, 6)), IndexMeta(6)).save(tmp_path)
    with pytest.raises(IndexCorruptedError, match="fennec fit"):
        TaskIndex.load(tmp_path)


def test_task_index_of_another_descriptor_version_is_a_mismatch(tmp_path):
    _, meta = _saved_task_index(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "embedder_version": "old"}))
    with pytest.raises(IndexMismatchError, match="version 'old'") as e:
        TaskIndex.load(tmp_path)
    assert e.value.field == "descriptor_version"


def test_task_index_validates_its_input():
    with pytest.raises(InvalidInputError):
        TaskIndex(["a", "b"], np.zeros((3, 4)), proxy="p")
    with pytest.raises(InvalidInputError):
        TaskIndex(["a", "a"], np.zeros((2, 4)), proxy="p")
    # a single historical task still answers
    one = TaskIndex(["only"], np.arange(4.0)[None], proxy="p")
    assert one.search(np.arange(4.0), k=3)[0][0] == "only"


def test_the_default_hub_proxy_fits_the_device_and_is_configurable(monkeypatch):
    from fennec.task import CPU_PROXY, GPU_PROXY, default_proxy

    monkeypatch.delenv("FENNEC_PROXY_CPU", raising=False)
    monkeypatch.delenv("FENNEC_PROXY_GPU", raising=False)
    assert (CPU_PROXY, GPU_PROXY) == ("facebook/dinov2-small", "facebook/dinov2-large")
    assert default_proxy("cpu") == CPU_PROXY
    monkeypatch.setenv("FENNEC_PROXY_CPU", "org/my-proxy")
    monkeypatch.setenv("FENNEC_PROXY_GPU", "org/my-big-proxy")
    assert default_proxy("cpu") == "org/my-proxy"
    with pytest.raises(InvalidInputError):
        default_proxy("no-such-device")
