"""Historical tasks described from their datasets, with the descriptor cache (fennec.workspace.known_tasks)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from fennec.errors import DatasetError, DatasetNotFoundError, DatasetWarning, InvalidInputError
from fennec.task import OFFLINE_PROXY, TaskDescriptor
from fennec.workspace.known_tasks import DescriptorCache, TaskData, describe_known_tasks
from hub_server_fixtures import *  # noqa: F401,F403 - fixtures
from hub_server_fixtures import REPO_ROOT, write_parquet_dataset


def test_task_data_from_catalog_metadata():
    meta = {"dataset": "hub:uoft-cs/cifar100", "label_column": "fine_label", "other": 3}
    data = TaskData.from_metadata(meta)
    assert data == TaskData("hub:uoft-cs/cifar100", label_column="fine_label") and data.on_hub
    assert TaskData.from_metadata(data.to_metadata()) == data
    assert data.describe() == "hub:uoft-cs/cifar100 (label_column=fine_label)"
    assert not TaskData("zoo:t-digits").on_hub
    # no dataset, or values that are not short strings: no data (never a path from a number or a blob)
    for bad in ({}, {"config": "x"}, {"dataset": 3}, {"dataset": "hub:a/b", "split": ["train"]},
                {"dataset": "x" * 301}, "hub:a/b", None):
        assert TaskData.from_metadata(bad) is None


def _descriptor(values=(0.5, -1.0, 2.0)) -> TaskDescriptor:
    return TaskDescriptor(vector=np.asarray(values, dtype=np.float32), proxy="p", proxy_sha="a" * 40,
                          version="taskdesc-v1", n_samples=30, n_classes=3, forward_passes=30, seconds=1.5)


def test_descriptor_cache_round_trip_and_damaged_entries(tmp_path):
    cache = DescriptorCache(tmp_path / "descriptors")
    key = DescriptorCache.key(TaskData("hub:o/d"), data_sha="b" * 40, proxy="p", proxy_sha="a" * 40,
                              max_samples=1000, seed=0)
    assert cache.get(key) is None
    path = cache.put(key, _descriptor())
    got = cache.get(key)
    np.testing.assert_array_equal(got.vector, _descriptor().vector)
    assert (got.n_samples, got.n_classes, got.forward_passes) == (30, 3, 0)
    # every part of the key counts: another dataset commit, proxy commit or sampling is another entry
    for change in ({"data_sha": "c" * 40}, {"proxy_sha": "d" * 40}, {"max_samples": 500}, {"seed": 1}):
        assert cache.get({**key, **change}) is None
    # a damaged file, or one whose stored key is not the one asked for, is ignored
    path.write_text("{not json")
    assert cache.get(key) is None
    cache.put(key, _descriptor())
    entry = json.loads(path.read_text())
    entry["key"]["seed"] = 5
    path.write_text(json.dumps(entry))
    assert cache.get(key) is None
    entry = {**json.loads(json.dumps({"key": key})), "vector": [1.0, float("nan")], "n_samples": 1, "n_classes": 1}
    path.write_text(json.dumps(entry))
    assert cache.get(key) is None


@pytest.fixture
def zoo_proxy():
    from fennec.hub import LocalHub

    hub = LocalHub(REPO_ROOT / "zoo" / "hub")
    return hub, hub.fetch(OFFLINE_PROXY).sha


def test_hub_tasks_are_described_once_per_dataset_cached_and_skipped_when_unreadable(online, zoo_proxy, tmp_path,
                                                                                      monkeypatch):
    from fennec import data as data_module
    from fennec.hub import HfHub

    proxy_hub, proxy_sha = zoo_proxy
    cache = DescriptorCache(tmp_path / "descriptors")
    tasks = {"a/t-tiny": TaskData("hub:local/t-tiny"), "b/t-tiny": TaskData("hub:local/t-tiny"),
             "a/gone": TaskData("hub:org/no-such-dataset")}
    kw = dict(proxy=OFFLINE_PROXY, proxy_sha=proxy_sha, hub=proxy_hub, dataset_hub=HfHub(endpoint=online.url),
              max_samples=9, seed=0, device="cpu", cache=cache)
    with pytest.warns(DatasetWarning, match=r"a/gone: its dataset hub:org/no-such-dataset could not be sampled"):
        out = describe_known_tasks(tasks, **kw)
    assert set(out) == {"a/t-tiny", "b/t-tiny"}
    assert out["a/t-tiny"] is out["b/t-tiny"]  # one dataset, described once
    assert out["a/t-tiny"].n_samples == 9 and out["a/t-tiny"].n_classes == 3
    assert len(list(cache.root.glob("*.json"))) == 1

    def no_sampling(*a, **k):
        raise AssertionError("a cached task was sampled again")

    monkeypatch.setattr(data_module, "load_sample", no_sampling)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        again = describe_known_tasks({"a/t-tiny": TaskData("hub:local/t-tiny")}, **kw)
    np.testing.assert_array_equal(again["a/t-tiny"].vector, out["a/t-tiny"].vector)
    assert again["a/t-tiny"].forward_passes == 0


def test_a_local_task_that_cannot_be_read_is_an_error(zoo_proxy, tmp_path):
    proxy_hub, proxy_sha = zoo_proxy
    with pytest.raises(DatasetNotFoundError):
        describe_known_tasks({"t": TaskData(str(tmp_path / "missing"))}, proxy=OFFLINE_PROXY, proxy_sha=proxy_sha,
                             hub=proxy_hub, max_samples=10)
    with pytest.raises(InvalidInputError, match="proxy_sha"):
        describe_known_tasks({"t": TaskData("zoo:t-digits")}, proxy=OFFLINE_PROXY, proxy_sha="", hub=proxy_hub,
                             max_samples=10)


def test_a_hub_dataset_is_read_from_the_hub_given_and_parquet_only_refuses_a_download(tmp_path, monkeypatch):
    """``load_sample(hub=...)`` reads from that endpoint (none in the environment), and
    ``parquet_only`` refuses a dataset that has no parquet files instead of downloading it."""
    from fennec.data import load_sample
    from fennec.hub import HfHub
    from fennec.hub.server import HubServer

    datasets = tmp_path / "datasets"
    write_parquet_dataset(datasets, "with-parquet")
    loose = datasets / "images-only" / "train" / "cat"
    loose.mkdir(parents=True)
    (datasets / "images-only" / "README.md").write_text("---\ntask_categories:\n- image-classification\n---\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with HubServer(models_dir=tmp_path / "models", datasets_dir=datasets) as server:
        hub = HfHub(endpoint=server.url)
        sample = load_sample("local/with-parquet", hub=hub, parquet_only=True, max_samples=9)
        assert sample.source == "hub:local/with-parquet" and len(sample) == 9
        with pytest.raises(DatasetError, match="has no parquet files"):
            load_sample("local/images-only", hub=hub, parquet_only=True)
