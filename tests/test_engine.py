"""fennec.engine: the local executor, the Ray executor (a local Ray instance: marked slow), the
choice between them, their errors, and the steps that run their units on them (reindex, the
task descriptions of fit and init, the refinement of recommend, and, in
tests/test_zoo_builders.py, the ground-truth queue)."""

from __future__ import annotations

import dataclasses
import json
import operator
import os
import pickle
import re
import socket
import subprocess
import sys
import textwrap
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from fennec.catalog import Catalog
from fennec.cli import main
from fennec.engine import (
    LOCAL,
    RAY_ADDRESS_ENV,
    EngineError,
    Executor,
    HubRecipe,
    LocalExecutor,
    RayClusterUnreachableError,
    RayNotInstalledError,
    Resources,
    Result,
    Unit,
    _host_port,
    _probe,
    open_executor,
    ray_address,
)
from fennec.errors import CandidateFailedWarning, DatasetNotFoundError, DatasetWarning, FennecError, InvalidInputError
from fennec.hub import HfHub, LocalHub
from fennec.recommendation.refine import CANDIDATE_MEMORY, score_candidates, score_remotely
from fennec.reindex import Archi2VecEmbedder, embed_remotely, reindex
from fennec.task import OFFLINE_PROXY
from fennec.workspace.known_tasks import TASK_MEMORY, DescriptorCache, TaskData, describe_known_tasks, describe_unit
from hub_server_fixtures import REPO_ROOT
from test_arch_dedup import finetunes_hub  # noqa: F401 - fixture
from test_init_e2e import local_hub  # noqa: F401 - fixture
from test_refine import hub, sample  # noqa: F401 - fixtures
from zoo_fixtures import tiny_zoo  # noqa: F401 - fixture

# ---------------------------------------------------------------------------------------
# The local executor and the units
# ---------------------------------------------------------------------------------------


def test_local_executor_runs_units_in_order_and_keeps_each_failure_as_its_result():
    with LocalExecutor() as ex:
        results = list(ex.map([Unit("a", operator.mul, (2, 3)), Unit("b", int, ("x",)),
                               Unit("c", operator.add, kwargs={"a": 1, "b": 2})]))
    assert [r.key for r in results] == ["a", "b", "c"]
    assert results[0].get() == 6 and results[0].ok
    assert isinstance(results[1].error, ValueError) and not results[1].lost and not results[1].ok
    with pytest.raises(ValueError, match="invalid literal"):
        results[1].get()
    assert results[2].value is None and isinstance(results[2].error, TypeError)  # operator.add takes no keywords
    assert ex.kind == "local" and ex.workers == 1 and ex.gpus_per_unit("cuda") == 0
    assert ex.share(marker := object()) is marker


def test_local_executor_lets_ctrl_c_through():
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(LocalExecutor().map([Unit(1, interrupted)]))


def test_run_collects_by_key_and_refuses_duplicate_keys_and_non_units():
    ex = LocalExecutor()
    assert {k: r.value for k, r in ex.run([Unit(k, operator.neg, (k,)) for k in (3, 1, 2)]).items()} == \
        {3: -3, 1: -1, 2: -2}
    with pytest.raises(InvalidInputError, match="share the key 1"):
        ex.run([Unit(1, operator.neg, (1,)), Unit(1, operator.neg, (2,))])
    with pytest.raises(InvalidInputError, match="runs Unit values, got tuple"):
        list(ex.map([(1, operator.neg)]))


@pytest.mark.parametrize("kwargs, field", [({"num_cpus": -1}, "num_cpus"), ({"num_gpus": True}, "num_gpus"),
                                           ({"num_cpus": "2"}, "num_cpus"), ({"memory": 0}, "memory"),
                                           ({"memory": 1.5e9}, "memory")])
def test_resources_refuse_what_a_scheduler_cannot_read(kwargs, field):
    with pytest.raises(InvalidInputError, match=f"Resources.{field}"):
        Resources(**kwargs)


def test_resources_as_ray_options():
    assert Resources().ray_options() == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert Resources(num_cpus=2, memory=2**30, num_gpus=0.5).ray_options() == \
        {"num_cpus": 2, "num_gpus": 0.5, "memory": 2**30}


# ---------------------------------------------------------------------------------------
# Choosing the executor; Ray's errors
# ---------------------------------------------------------------------------------------


def test_ray_address_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    assert ray_address(None) is None and isinstance(open_executor(None), LocalExecutor)
    assert ray_address("") == LOCAL and ray_address(" 10.0.0.5:6379 ") == "10.0.0.5:6379"
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    assert ray_address(None) == "head:6379" and ray_address("other:1") == "other:1"
    monkeypatch.setenv(RAY_ADDRESS_ENV, "  ")
    assert ray_address(None) is None


def test_without_ray_asked_for_ray_is_never_imported(tmp_path):
    """A fresh interpreter: the engine, reindex through the CLI, the script's local queue."""
    code = textwrap.dedent(f"""
        import sys, json
        from fennec import cli, engine
        sys.path.insert(0, {str(REPO_ROOT / "scripts")!r})
        import build_ground_truth
        ex = engine.open_executor(None)
        rc = cli.main(["reindex", "--hub", {str(REPO_ROOT / "zoo" / "hub")!r}, "--limit", "2", "--dry-run",
                       "--no-progress"])
        print(json.dumps({{"executor": type(ex).__name__, "rc": rc,
                          "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FENNEC_HOME": str(tmp_path / "home")}
    env.pop(RAY_ADDRESS_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"executor": "LocalExecutor", "rc": 0, "ray": []}


def test_ray_asked_for_but_not_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    with pytest.raises(RayNotInstalledError, match=r'pip install "fennec\[ray\]"') as info:
        open_executor(None)
    assert "head:6379" in str(info.value) and isinstance(info.value, (FennecError, ImportError))
    with pytest.raises(RayNotInstalledError, match="'local'"):
        open_executor("")


@pytest.mark.parametrize("address, expected", [("10.0.0.5:6379", ("10.0.0.5", 6379)), ("head", ("head", 6379)),
                                               ("ray://head", ("head", 10001)), ("ray://h:123", ("h", 123)),
                                               ("[::1]:7000", ("::1", 7000)), ("auto", None)])
def test_cluster_addresses_are_read(address, expected):
    assert _host_port(address) == expected


@pytest.mark.parametrize("address", ["http://head:6379", "head:port", "head:0", "head:70000", ":6379",
                                     "ray://", "he ad:1", "head:1/x"])
def test_unreadable_cluster_addresses_say_what_is_expected(address):
    with pytest.raises(InvalidInputError, match="HOST:PORT|port must be"):
        _host_port(address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_cluster_is_named_with_what_to_check(scheme):
    address = f"{scheme}127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(RayClusterUnreachableError) as info:
        _probe(address, timeout=5.0)
    message = str(info.value)
    assert info.value.address == address and address in message and "Connection refused" in message
    assert "ray status" in message and "firewall" in message and RAY_ADDRESS_ENV in message
    assert ("Ray Client" in message) and isinstance(info.value, ConnectionError)


def test_local_instance_settings_are_refused_with_a_cluster_address():
    from fennec.engine import RayExecutor

    with pytest.raises(InvalidInputError, match="num_cpus and num_gpus set up a local Ray instance"):
        RayExecutor("head:6379", num_cpus=2)


# ---------------------------------------------------------------------------------------
# reindex on an executor that is not this process (without Ray: a stand-in that answers out
# of order and can lose units, as a cluster may)
# ---------------------------------------------------------------------------------------


class Elsewhere(Executor):
    """Runs units in this process but as a remote executor would be used: the embedder's
    unit() (plain data in and out), results in reverse order, some units lost."""

    kind = "elsewhere"

    def __init__(self, lose: set[str] = frozenset()):
        self.lose = set(lose)
        self.units: list[Unit] = []

    def describe(self) -> str:
        return "elsewhere (a test executor)"

    def map(self, units, *, in_flight=None):
        units = list(units)
        self.units += units
        for unit in reversed(units):
            model_id = unit.args[3]
            if model_id in self.lose:
                yield Result(unit.key, error=RuntimeError("The worker died unexpectedly"), lost=True)
                continue
            # the arguments and the answer cross a network as plain data
            args = json.loads(json.dumps(unit.args))
            yield Result(unit.key, value=json.loads(json.dumps(unit.func(*args))))


def reindexed(hub_dir, home, **kw):
    with Catalog(home / "catalog.sqlite") as cat:
        s = reindex(hub=LocalHub(hub_dir), catalog=cat, batch_size=4,
                    embedder=Archi2VecEmbedder(dim=64, isolate=False), **kw)
        ids, vectors = cat.vectors()
        states = {m.repo_id: (m.status, m.error_type) for m in cat.models(limit=None)}
    return s, dict(zip(ids, vectors, strict=True)), states


def test_reindex_on_another_executor_gives_what_this_process_gives(finetunes_hub, tmp_path):  # noqa: F811
    local, local_vectors, local_states = reindexed(finetunes_hub, tmp_path / "local")
    ex = Elsewhere()
    remote, vectors, states = reindexed(finetunes_hub, tmp_path / "remote", executor=ex)
    assert (remote.added, remote.unsupported, remote.failed, remote.built, remote.reused) == \
        (local.added, local.unsupported, local.failed, local.built, local.reused) == (7, 2, 0, 4, 5)
    assert states == local_states and vectors.keys() == local_vectors.keys()
    assert all(np.array_equal(vectors[m], local_vectors[m]) for m in vectors)
    # one unit per architecture, run by embed_remotely with plain settings and the resources declared
    assert len(ex.units) == 4 and {u.func for u in ex.units} == {embed_remotely}
    assert all(u.resources == Resources(num_cpus=1, memory=Archi2VecEmbedder(isolate=False).memory_budget)
               for u in ex.units)
    assert ex.units[0].args[0] == {"dim": 64, "method": "record", "timeout": 120.0,
                                   "memory_budget": 4 * 2**30, "isolate": False}


def test_a_unit_lost_with_its_worker_fails_its_model_and_the_next_run_retries_it(finetunes_hub, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    s, vectors, states = reindexed(finetunes_hub, home, executor=Elsewhere(lose={"org/vit-ft0"}))
    # the first fine-tune of the vit was lost: the next of its architecture was built in the next round
    assert states["org/vit-ft0"] == ("failed", "EngineError") and s.failed == 1
    assert "org/vit-ft0: the worker embedding it was lost (RuntimeError: The worker died unexpectedly)" \
        in dict(s.failures)["org/vit-ft0"]
    assert states["org/vit-ft1"][0] == "ok" and s.built == 5
    with Catalog(home / "catalog.sqlite") as cat:
        assert "worker embedding it was lost" in cat.get_model("org/vit-ft0").last_error
    later = datetime.now(timezone.utc) + timedelta(days=2)  # past the failure's backoff
    s2, vectors2, states2 = reindexed(finetunes_hub, home, executor=Elsewhere(), now=later)
    assert s2.processed == 1 and states2["org/vit-ft0"][0] == "ok"
    assert np.array_equal(vectors2["org/vit-ft0"], vectors2["org/vit-ft1"])


def test_a_worker_answer_that_is_not_a_vector_fails_the_model(finetunes_hub, tmp_path):  # noqa: F811
    class Garbled(Elsewhere):
        def map(self, units, *, in_flight=None):
            for result in super().map(units):
                yield dataclasses.replace(result, value=("ok", [1.0, "x"], None)) if result.value[0] == "ok" else result

    s, _, states = reindexed(finetunes_hub, tmp_path / "home", executor=Garbled())
    assert s.added == 0 and s.failed == 7 and s.unsupported == 2
    assert "not a vector" in dict(s.failures)["org/vit-ft0"] or "expected (64,)" in dict(s.failures)["org/vit-ft0"]


def test_an_embedder_without_units_cannot_run_elsewhere(finetunes_hub, tmp_path):  # noqa: F811
    class Plain:
        version, dim = "plain-v1", 4

        def __call__(self, files, record):
            return np.ones(4, dtype=np.float32)

    with Catalog(tmp_path / "catalog.sqlite") as cat, \
            pytest.raises(InvalidInputError, match="Plain cannot run on elsewhere .* no unit\\(\\) method"):
        reindex(hub=LocalHub(finetunes_hub), catalog=cat, embedder=Plain(),
                executor=Elsewhere())


# ---------------------------------------------------------------------------------------
# fit's task descriptions and recommend's candidates on an executor that is not this process
# ---------------------------------------------------------------------------------------


class Pickled(Executor):
    """Runs units in this process after a pickle round trip of the function (by reference),
    its arguments and its answer, as a remote executor ships them; some units lost."""

    kind = "pickled"

    def __init__(self, lose: set[str] = frozenset()):
        self.lose = set(lose)
        self.units: list[Unit] = []
        self.shared = 0

    def share(self, value):
        self.shared += 1
        return value

    def describe(self) -> str:
        return "pickled (a test executor)"

    def map(self, units, *, in_flight=None):
        for unit in units:
            self.units.append(unit)
            if unit.key in self.lose:
                yield Result(unit.key, error=RuntimeError("the node died"), lost=True)
                continue
            func, args, kwargs = pickle.loads(pickle.dumps((unit.func, unit.args, dict(unit.kwargs))))
            try:
                value = func(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the unit's result, shipped back as Ray ships it
                yield Result(unit.key, error=pickle.loads(pickle.dumps(e)))
                continue
            yield Result(unit.key, value=pickle.loads(pickle.dumps(value)))


def test_candidates_scored_elsewhere_score_as_here(hub, sample):  # noqa: F811
    ids = ["org/tiny-resnet", "org/missing", "org/tiny-vit"]
    with pytest.warns(CandidateFailedWarning, match="org/missing"):
        here = score_candidates(ids, sample, hub=hub, cache=False)
    ex = Pickled(lose={"org/tiny-vit"})
    with pytest.warns(CandidateFailedWarning) as caught:
        there = score_candidates(ids + ["org/tiny-resnet"], sample, hub=hub, cache=False, executor=ex)
    assert [c.model_id for c in there] == ids
    assert (there[0].score, there[0].sha, there[0].forward_passes) == (here[0].score, here[0].sha, len(sample.images))
    assert there[1].score is None and there[1].error.startswith("ModelNotFoundError")
    assert "org/missing" in there[1].error
    assert there[2].score is None and there[2].error == "its worker was lost: RuntimeError: the node died"
    assert sorted(str(w.message).split(" ")[0] for w in caught) == ["org/missing", "org/tiny-vit"]
    # one unit per candidate, the sample shared once, the hub as a recipe the worker opens
    assert ex.shared == 1 and [u.key for u in ex.units] == ids
    assert all(u.func is score_remotely and u.args[2] == HubRecipe("folder", str(hub.root.resolve()))
               and u.resources == Resources(num_cpus=1, memory=CANDIDATE_MEMORY) for u in ex.units)


@pytest.fixture
def zoo_env(tiny_zoo, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    return tiny_zoo


def test_hub_recipes_open_the_same_hub(tmp_path):
    from fennec.engine import hub_for_workers, hub_on_worker
    from fennec.hub import HfHub

    local = LocalHub(REPO_ROOT / "zoo" / "hub")
    recipe = hub_for_workers(local)
    assert recipe == HubRecipe("folder", str((REPO_ROOT / "zoo" / "hub").resolve()))
    assert hub_on_worker(recipe).root == local.root.resolve() and hub_on_worker(recipe) is hub_on_worker(recipe)
    http = hub_for_workers(HfHub(endpoint="http://127.0.0.1:9/", token="secret", offline=True))
    assert http == HubRecipe("http", "http://127.0.0.1:9", True) and "secret" not in repr(pickle.dumps(http))
    other = object()
    assert hub_for_workers(other) is other and hub_on_worker(other) is other


@pytest.fixture
def dataset_server(tiny_zoo, monkeypatch):  # noqa: F811
    """The tiny zoo's models and datasets served as a Hub serves them (datasets as ``local/<name>``);
    huggingface_hub allowed to talk to it (its offline mode is read at import, so patched too)."""
    import huggingface_hub.constants as hf_constants

    from fennec.hub.server import HubServer

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with HubServer(models_dir=tiny_zoo / "hub", datasets_dir=tiny_zoo / "datasets") as server:
        yield server


def known_task_data(zoo: Path) -> dict[str, TaskData]:
    """Two Hub datasets (one in two tables), one the hub does not have, one local dataset."""
    return {"a/one": TaskData("hub:local/t-one"), "b/one": TaskData("hub:local/t-one"),
            "a/two": TaskData("hub:local/t-two", split="train"), "a/gone": TaskData("hub:org/no-such-dataset"),
            "z/three": TaskData(str(zoo / "datasets" / "t-three"))}


def described(zoo: Path, url: str, tasks: dict[str, TaskData], **kw):
    """describe_known_tasks with the tiny zoo's proxy (a folder hub) and its datasets over HTTP."""
    hub = LocalHub(zoo / "hub")
    return describe_known_tasks(tasks, proxy=OFFLINE_PROXY, proxy_sha=hub.fetch(OFFLINE_PROXY, weights=False).sha,
                                hub=hub, dataset_hub=HfHub(endpoint=url, offline=False), max_samples=9, seed=0,
                                device="cpu", **kw)


def check_known_tasks_described_as_here(executor, zoo: Path, url: str, tmp_path: Path) -> None:
    """On ``executor``: the descriptors this process computes, the same skipped task (warned at
    the caller), the descriptor cache written here, and the same error for a missing local dataset."""
    tasks = known_task_data(zoo)
    cache = DescriptorCache(tmp_path / "descriptors")
    for run in ("here", "there"):  # without a cache it fails to sample, with one to find its commit
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if run == "here":
                here = described(zoo, url, tasks)
            else:
                there = described(zoo, url, tasks, executor=executor, cache=cache)
        skipped = [w for w in caught if issubclass(w.category, DatasetWarning)]
        assert [str(w.message).split(":")[0] for w in skipped] == ["task a/gone"], [str(w.message) for w in skipped]
        assert "its dataset hub:org/no-such-dataset could not be sampled" in str(skipped[0].message)
        assert skipped[0].filename == __file__, run  # the warning points at the caller
    assert set(there) == set(here) == {"a/one", "b/one", "a/two", "z/three"} and there["a/one"] is there["b/one"]
    for task, desc in here.items():
        assert (there[task].n_samples, there[task].n_classes) == (desc.n_samples, desc.n_classes) == (9, 3)
        np.testing.assert_allclose(there[task].vector, desc.vector, rtol=1e-4, atol=1e-5)
    # the driver wrote the Hub datasets' descriptors to the cache; a second run reads them back
    assert len(list(cache.root.glob("*.json"))) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        again = described(zoo, url, tasks, executor=executor, cache=cache)
    assert again["a/two"].forward_passes == 0
    np.testing.assert_array_equal(again["a/two"].vector, there["a/two"].vector)
    # a local dataset that cannot be read: the error it is here, with its message and fields
    missing = {"t": TaskData(str(tmp_path / "missing"))}
    with pytest.raises(DatasetNotFoundError) as error_here:
        described(zoo, url, missing)
    with pytest.raises(DatasetNotFoundError) as error_there:
        described(zoo, url, missing, executor=executor)
    assert str(error_there.value) == str(error_here.value) and error_there.value.dataset == error_here.value.dataset


def test_known_tasks_described_elsewhere_are_described_as_here(tiny_zoo, dataset_server, tmp_path):  # noqa: F811
    ex = Pickled()
    check_known_tasks_described_as_here(ex, tiny_zoo, dataset_server.url, tmp_path)
    # one unit per dataset to describe (not per task, not the cached ones), the hubs as recipes
    # the workers open, 1 CPU and the memory of a proxy and a sample, no GPU on a CPU device
    tasks = known_task_data(tiny_zoo)
    assert [u.key for u in ex.units] == [tasks["a/one"], tasks["a/two"], tasks["z/three"], tasks["z/three"],
                                         TaskData(str(tmp_path / "missing"))]
    assert all(u.func is describe_unit and u.resources == Resources(num_cpus=1, memory=TASK_MEMORY)
               for u in ex.units)
    assert ex.units[0].kwargs["hub"] == HubRecipe("folder", str((tiny_zoo / "hub").resolve()))
    assert ex.units[0].kwargs["dataset_hub"] == HubRecipe("http", dataset_server.url.rstrip("/"), False)
    assert ex.units[0].args == ("hub:local/t-one", tasks["a/one"])


def test_a_description_lost_with_its_worker_is_the_only_one_the_next_run_does(tiny_zoo, dataset_server,  # noqa: F811
                                                                               tmp_path, capsys):
    tasks = known_task_data(tiny_zoo)
    cache = DescriptorCache(tmp_path / "descriptors")
    with pytest.warns(DatasetWarning, match="a/gone"), pytest.raises(
            EngineError, match=r"1 of the 4 datasets to describe were lost with their Ray workers on pickled.*: "
                               r"a/two \(hub:local/t-two \(split=train\): RuntimeError: the node died\)\. The "
                               r"descriptors that came back are cached; run the command again"):
        described(tiny_zoo, dataset_server.url, tasks, cache=cache, executor=Pickled(lose={tasks["a/two"]}))
    assert len(list(cache.root.glob("*.json"))) == 1  # t-one's, committed as it came back
    ex = Pickled()
    capsys.readouterr()
    with pytest.warns(DatasetWarning, match="a/gone"):
        out = described(tiny_zoo, dataset_server.url, tasks, cache=cache, executor=ex, progress=True)
    assert [u.key for u in ex.units] == [tasks["a/two"], tasks["z/three"]]  # t-one came from the cache
    assert set(out) == {"a/one", "b/one", "a/two", "z/three"} and out["a/one"].forward_passes == 0
    assert len(list(cache.root.glob("*.json"))) == 2
    # a line per dataset as it comes back, counted (the unreadable one is the warning)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fennec: task ")]
    assert lines[0] == "fennec: task a/one, b/one: cached descriptor of hub:local/t-one (9 images, 3 classes) (2/4)"
    assert re.fullmatch(r"fennec: task a/two: described hub:local/t-two \(split=train\): 9 images, 3 classes, "
                        r"\d+\.\d s \(3/4\)", lines[1]), lines
    assert re.fullmatch(r"fennec: task z/three: described .*t-three: 9 images, 3 classes, \d+\.\d s \(4/4\)", lines[2])
    assert len(lines) == 3


@pytest.fixture(scope="module")
def zoo_history(tiny_zoo, tmp_path_factory):  # noqa: F811
    """A workspace of the tiny zoo, reindexed and with its ground truth imported, not fitted
    (copy it before use)."""
    from fennec import constants
    from fennec.catalog.importers import import_file

    home = tmp_path_factory.mktemp("zoo_history")
    with Catalog(home / constants.CATALOG_FILE) as cat:
        reindex(hub=LocalHub(tiny_zoo / "hub"), catalog=cat, embedder=Archi2VecEmbedder(dim=64, isolate=False))
        import_file(cat, tiny_zoo / "ground_truth.json")  # as `fennec import-results` does
    give_zoo_tasks_their_datasets(home)
    return home


def give_zoo_tasks_their_datasets(home: Path) -> None:
    """Each ground-truth task of the tiny zoo gets its dataset (``zoo:<name>``), as the zoo
    workspace's build gives them: what fit describes."""
    from fennec import constants
    from zoo_fixtures import TASKS

    with Catalog(home / constants.CATALOG_FILE) as cat:
        for task in TASKS:
            cat.upsert_task(task, kind="zoo", metadata={"dataset": f"zoo:{task}"})


def test_fit_and_init_describe_on_the_executor_their_ray_option_names(zoo_env, zoo_history, tmp_path, capsys,
                                                                      monkeypatch):
    """``fennec fit --ray ADDRESS`` (or FENNEC_RAY_ADDRESS) hands fit the executor that address
    opens, and closes it; --zoo refuses --ray; a dry init opens none. (A stand-in executor: the
    Ray tests below run the same commands on a local Ray instance.)"""
    import shutil

    from fennec import engine
    from fennec.workspace import Workspace

    opened: list[tuple[str | None, Pickled]] = []

    class Closing(Pickled):
        closed = False

        def close(self):
            self.closed = True

    def open_executor(ray=None, **kw):
        opened.append((ray_address(ray), Closing()))
        return opened[-1][1]

    monkeypatch.setattr(engine, "open_executor", open_executor)
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    home = tmp_path / "home"
    shutil.copytree(zoo_history, home)
    fit = ["fit", "--home", str(home), "--hub", str(zoo_env / "hub"), "--proxy", OFFLINE_PROXY, "--no-progress"]
    assert main([*fit, "--ray", "head:6379"]) == 0
    (address, ex), = opened
    assert address == "head:6379" and ex.closed
    assert sorted(u.key.dataset for u in ex.units) == ["zoo:t-one", "zoo:t-three", "zoo:t-two"]
    assert all(u.func is describe_unit for u in ex.units)
    manifest = Workspace.load(home).manifest
    assert {t: info["described"] for t, info in manifest["tasks"].items()} == \
        {"t-one": True, "t-two": True, "t-three": True}
    monkeypatch.setenv(RAY_ADDRESS_ENV, "auto")
    assert main(fit) == 0 and opened[-1][0] == "auto" and len(opened[-1][1].units) == 3
    capsys.readouterr()
    assert main(["fit", "--zoo", "--home", str(tmp_path / "zoo"), "--ray"]) == 1
    assert "--ray cannot be combined with it" in capsys.readouterr().err
    assert main(["init", "--hub", str(zoo_env / "hub"), "--home", str(tmp_path / "init"), "--dry-run",
                 "--ray", "head:6379"]) == 0
    assert len(opened) == 2 and not (tmp_path / "init").exists()


def test_fit_without_ray_asked_for_describes_here_and_never_imports_ray(zoo_history, tiny_zoo, tmp_path):  # noqa: F811
    """A fresh interpreter: ``fennec fit`` describes the known tasks (through the local executor)
    without importing Ray."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(zoo_history, home)
    code = textwrap.dedent(f"""
        import sys, json
        from fennec import cli
        rc = cli.main(["fit", "--home", {str(home)!r}, "--hub", {str(tiny_zoo / "hub")!r}, "--proxy",
                       {OFFLINE_PROXY!r}, "--no-progress"])
        print(json.dumps({{"rc": rc, "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FENNEC_ZOO": str(tiny_zoo)}
    env.pop(RAY_ADDRESS_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rc": 0, "ray": []}
    assert "3 tasks (3 described by" in proc.stdout


# ---------------------------------------------------------------------------------------
# A local Ray instance (slow: it starts in 5-15 s on 2 shared cores)
# ---------------------------------------------------------------------------------------


RAY_EXTRA = "the Ray tests need the ray extra: pip install -e '.[ray]' (.ci/run's Ray check installs it)"


@pytest.fixture(scope="module")
def ray_executor(tiny_zoo):  # noqa: F811
    """One local Ray instance for the module; its workers see the tiny zoo (zoo: tasks)."""
    pytest.importorskip("ray", reason=RAY_EXTRA)
    from fennec.engine import RayExecutor

    # the workers reach only the hubs the units name: the tests' local servers (there is no internet)
    ex = RayExecutor(num_cpus=2, runtime_env={"env_vars": {"FENNEC_ZOO": str(tiny_zoo), "HF_HUB_OFFLINE": "0"}})
    yield ex
    ex.close()


@pytest.mark.slow
def test_ray_executor_runs_units_and_reports_failures_and_lost_workers(ray_executor):
    ex = ray_executor
    assert ex.kind == "ray" and ex.workers == 2 and "local Ray instance (2 CPUs)" in ex.describe()
    assert ex.gpus_per_unit(None) == 0  # no GPU here: a unit asking for one would never be scheduled
    shared = ex.share(np.arange(5))
    units = [Unit(i, operator.mul, (shared, i), resources=Resources(num_cpus=1, memory=2**28)) for i in range(6)]
    units += [Unit("bad", int, ("x",)), Unit("dies", os._exit, (3,), retries=0)]
    results = ex.run(units)
    assert list(results) == [u.key for u in units]
    for i in range(6):
        assert np.array_equal(results[i].get(), np.arange(5) * i)
    assert isinstance(results["bad"].error, ValueError) and not results["bad"].lost  # the unit's own error
    assert results["dies"].lost and not results["dies"].ok
    # the executor goes on after a lost worker
    assert ex.run([Unit("after", operator.add, (1, 2))])["after"].get() == 3


@pytest.mark.slow
def test_ray_reports_a_function_its_workers_cannot_import(ray_executor, tmp_path):
    module = tmp_path / "only_here_mod.py"
    module.write_text("def f():\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import only_here_mod

        with pytest.raises(EngineError, match="cannot import only_here_mod.f .*install fennec"):
            ray_executor.run([Unit("x", only_here_mod.f)])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_here_mod", None)


@pytest.mark.slow
def test_reindex_on_ray_gives_what_this_process_gives(ray_executor, finetunes_hub, tmp_path):  # noqa: F811
    local, local_vectors, local_states = reindexed(finetunes_hub, tmp_path / "local")
    on_ray, vectors, states = reindexed(finetunes_hub, tmp_path / "ray", executor=ray_executor)
    assert (on_ray.added, on_ray.unsupported, on_ray.built, on_ray.reused) == (7, 2, 4, 5)
    assert states == local_states and all(np.array_equal(vectors[m], local_vectors[m]) for m in vectors)


@pytest.mark.slow
def test_the_commands_with_ray_give_what_they_give_without(ray_executor, zoo_env, tmp_path, capsys, monkeypatch):
    """reindex, fit and recommend --ray (this process's Ray connection: the fixture's) against
    the same commands without it, on the tiny zoo."""
    from fennec.workspace import Workspace

    out = {}
    for mode in ("local", "ray"):
        home = tmp_path / mode
        ray = ["--ray"] if mode == "ray" else []
        monkeypatch.setenv("FENNEC_HOME", str(home))
        assert main(["reindex", "--hub", str(zoo_env / "hub"), "--no-progress", *ray]) == 0
        assert main(["import-results", str(zoo_env / "ground_truth.json")]) == 0
        give_zoo_tasks_their_datasets(home)
        assert main(["fit", "--hub", str(zoo_env / "hub"), "--proxy", OFFLINE_PROXY, "--no-progress", *ray]) == 0
        tasks = Workspace.load(home).tasks
        assert tasks is not None and sorted(tasks.task_ids) == ["t-one", "t-three", "t-two"]
        out[f"{mode} descriptors"] = {t: tasks.descriptor(t) for t in tasks.task_ids}
        capsys.readouterr()
        assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--home", str(home), "--candidates", "3",
                     "--metric", "logme", "--json", "--no-progress", *ray]) == 0
        out[mode] = json.loads(capsys.readouterr().out)
        with Catalog(home / "catalog.sqlite") as cat:
            out[mode]["vectors"] = cat.vectors()
    for task, vector in out["local descriptors"].items():  # described by the Ray workers: 1 BLAS thread
        np.testing.assert_allclose(out["ray descriptors"][task], vector, rtol=1e-4, atol=1e-5)
    local, on_ray = out["local"], out["ray"]
    assert local["vectors"][0] == on_ray["vectors"][0] and np.array_equal(local["vectors"][1], on_ray["vectors"][1])
    assert [r["model_id"] for r in on_ray["recommendations"]] == [r["model_id"] for r in local["recommendations"]]
    for a, b in zip(local["recommendations"], on_ray["recommendations"], strict=True):  # Ray's workers: 1 BLAS thread
        assert (a["metric_score"] is None) == (b["metric_score"] is None)
        if a["metric_score"] is not None:
            assert b["metric_score"] == pytest.approx(a["metric_score"], rel=1e-4)
        assert b["predicted_score"] == pytest.approx(a["predicted_score"], rel=1e-4, abs=1e-5)
    assert sum(r["metric_score"] is not None for r in on_ray["recommendations"]) == 3


@pytest.mark.slow
def test_known_tasks_described_on_ray_as_here(ray_executor, tiny_zoo, dataset_server, tmp_path):  # noqa: F811
    """Hub datasets streamed by the workers from the hub server, a local one read by them."""
    check_known_tasks_described_as_here(ray_executor, tiny_zoo, dataset_server.url, tmp_path)


@pytest.mark.slow
def test_init_with_ray_describes_the_hub_tasks_on_the_workers(ray_executor, local_hub, capsys, monkeypatch):  # noqa: F811
    """``fennec init --ray`` on a Hub (test_init_e2e's): the workers embed the architectures and
    stream and describe the tasks' datasets; the descriptors are those this process computes,
    cached here, and a second init --ray reuses them."""
    from fennec.engine import RayExecutor
    from fennec.workspace import Workspace

    ran: list[str] = []
    ray_map = RayExecutor.map

    def watched(self, units, **kw):
        def each():
            for unit in units:
                ran.append(unit.func.__name__)
                yield unit
        return ray_map(self, each(), **kw)

    monkeypatch.setattr(RayExecutor, "map", watched)
    home = local_hub["tmp"] / "workspace"
    init = ["init", "--hub", local_hub["url"], "--home", str(home), "--top", "3", "--ray"]
    assert main([*init, "--no-progress"]) == 0
    assert ran.count("describe_unit") == 2 and "embed_remotely" in ran
    on_ray = Workspace.load(home)
    described = sorted(t for t, info in on_ray.manifest["tasks"].items() if info["described"])
    assert [t.rsplit("/", 1)[1] for t in described] == ["cifar100", "eurosat"]
    assert len(list((home / "descriptors").glob("*.json"))) == 2
    # resumed: nothing described again
    ran.clear()
    capsys.readouterr()
    assert main(init) == 0
    assert "describe_unit" not in ran and capsys.readouterr().err.count("cached descriptor") == 2
    # the descriptors this process computes (the cache emptied, a fit without Ray)
    import shutil

    shutil.rmtree(home / "descriptors")
    assert main(["fit", "--home", str(home), "--no-progress"]) == 0
    here = Workspace.load(home)
    for task in described:
        np.testing.assert_allclose(on_ray.tasks.descriptor(task), here.tasks.descriptor(task), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_ray_executor_refuses_an_unreachable_cluster_before_joining_it():
    pytest.importorskip("ray", reason=RAY_EXTRA)
    from fennec.engine import RayExecutor

    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(RayClusterUnreachableError, match=f"Cannot reach the Ray cluster at '{address}'"):
        RayExecutor(address)


@pytest.mark.slow
def test_ray_executor_uses_this_process_connection_for_a_local_address_only(ray_executor):
    from fennec.engine import RayExecutor

    again = RayExecutor(LOCAL)
    assert "this process's Ray connection" in again.describe()
    again.close()  # leaves the connection open
    assert ray_executor.run([Unit("still", operator.add, (1, 1))])["still"].get() == 2
    with socket.socket() as server:  # something answers at the address: the probe passes
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(EngineError, match=f"connected to Ray already .* cannot join '{address}' too"):
            RayExecutor(address)
