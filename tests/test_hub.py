"""fennec.hub against the local Hub server (HfHub) and against a folder (LocalHub)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fennec.errors import (
    GatedModelError,
    HubError,
    HubFileNotFoundError,
    HubOfflineError,
    HubUnavailableError,
    InvalidInputError,
    MalformedModelError,
    ModelAccessError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
    UnsupportedModelError,
)
from fennec.hub import HfHub, LocalHub, ModelRecord, RetryPolicy, check_config, open_hub
from hub_server_fixtures import *  # noqa: F403 - fixtures
from hub_server_fixtures import TINY_VIT, write_model

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=2.0)
CLASSIFIERS_BY_DATE = ["org/gated-vit", "org/malformed", "org/tiny-vit", "org/tiny-resnet",
                       "timm/tiny-timm", "org/vit-features", "org/remote-code"]


@pytest.fixture
def hub(online):
    """An HfHub built from the environment (HF_ENDPOINT points at the local server)."""
    return HfHub(retry=FAST)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


# ---------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------


def test_list_models_merges_tags_and_libraries_newest_first(hub, online):
    records = list(hub.list_models())
    assert [r.repo_id for r in records] == CLASSIFIERS_BY_DATE
    assert hub.endpoint == online.url  # read from HF_ENDPOINT at construction
    vit = next(r for r in records if r.repo_id == "org/tiny-vit")
    assert isinstance(vit, ModelRecord) and len(vit.sha) == 40
    assert (vit.library, vit.pipeline_tag, vit.model_type) == ("transformers", "image-classification", "vit")
    assert vit.downloads == 50 and vit.likes == 3 and vit.parameters == 36
    assert next(r for r in records if r.repo_id == "org/remote-code").requires_remote_code
    assert next(r for r in records if r.repo_id == "timm/tiny-timm").library == "timm"
    with pytest.raises(AttributeError):
        vit.sha = "x"  # frozen


def test_list_models_sort_limit_and_filters(hub):
    assert [r.repo_id for r in hub.list_models(sort="downloads", limit=3)] == [
        "org/tiny-resnet", "org/tiny-vit", "timm/tiny-timm"]
    assert [r.repo_id for r in hub.list_models(libraries=["timm"])] == ["timm/tiny-timm"]
    assert [r.repo_id for r in hub.list_models(pipeline_tags=["image-feature-extraction"])] == [
        "org/vit-features"]
    assert list(hub.list_models(pipeline_tags=["fill-mask"], libraries=["timm"])) == []


def test_list_models_since_stops_at_the_watermark(hub, online, tiny_zoo):
    since = _utc(tiny_zoo["t0"] + 4 * tiny_zoo["day"])  # tiny-resnet's date: excluded
    got = [r.repo_id for r in hub.list_models(since=since)]
    assert got == ["org/gated-vit", "org/malformed", "org/tiny-vit"]
    got = [r.repo_id for r in hub.list_models(sort="downloads", since=since)]
    assert sorted(got) == ["org/gated-vit", "org/malformed", "org/tiny-vit"]


@pytest.mark.parametrize("kind", ["local", "remote"])
def test_list_models_argument_errors(hub, tiny_zoo, kind):
    """The same InvalidInputError (a ValueError, as before) from either hub, naming the argument."""
    hub = LocalHub(tiny_zoo["hub"]) if kind == "local" else hub
    with pytest.raises(InvalidInputError, match=r"sort must be one of .*got 'size'"):
        list(hub.list_models(sort="size"))
    with pytest.raises(InvalidInputError, match="limit must be >= 1 or None .*got 0"):
        list(hub.list_models(limit=0))
    with pytest.raises(InvalidInputError, match="timezone-aware .*got 2024-01-01T00:00:00 without a time zone"):
        list(hub.list_models(since=datetime(2024, 1, 1)))


def test_listing_restarts_after_a_failure_in_the_middle_without_duplicates(hub, online):
    # each page is one request (no retry inside): fennec's restart is what recovers
    online.add_fault(r"^/api/models\?.*cursor=", status=503, times=2)
    assert [r.repo_id for r in hub.list_models()] == CLASSIFIERS_BY_DATE
    online.add_fault(r"^/api/models\?.*cursor=", status=500, times=None)
    with pytest.raises(HubUnavailableError) as e:
        list(hub.list_models())
    assert e.value.status == 500


def _hex_sha(name):
    """A 40-hex commit id standing for the short name a script uses ("s1"); None stays None."""
    return None if name is None else hashlib.sha1(name.encode()).hexdigest()


def _short_sha(sha):
    return next(n for n in ("s1", "s2", "s3") if _hex_sha(n) == sha)


class FakeListingApi:
    """Stands in for HfApi.list_models: each call replays the next scripted listing, each a
    list of (id, sha, minutes since t0) ending, or not, with a transient error. Short shas
    ("s1") are served as 40-hex commit ids (:func:`_hex_sha`)."""

    def __init__(self, *listings):
        self.listings = list(listings)
        self.calls = 0

    def list_models(self, **kwargs):
        from types import SimpleNamespace

        script = self.listings[min(self.calls, len(self.listings) - 1)]
        self.calls += 1
        for entry in script:
            if isinstance(entry, BaseException):
                raise entry
            repo_id, sha, minutes = entry
            when = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
            yield SimpleNamespace(id=repo_id, sha=_hex_sha(sha), config={"model_type": "vit"}, tags=[],
                                  safetensors=None, library_name="transformers",
                                  pipeline_tag="image-classification", created_at=when,
                                  last_modified=when, downloads=0, likes=0, gated=False,
                                  private=False, siblings=None)


def _fake_hub(api, attempts=2):
    hub = HfHub(endpoint="http://127.0.0.1:9", retry=RetryPolicy(attempts=attempts, base_delay=0.0),
                offline=False)
    hub._api = api
    return hub


def _listed(hub):
    return [(r.repo_id, _short_sha(r.sha)) for r in hub.list_models(pipeline_tags=["image-classification"],
                                                        libraries=["transformers"])]


def test_listing_failure_budget_resets_after_progress():
    down = TimeoutError("read timed out")
    # each restart gets further: 3 failures in all, never 2 without progress in between
    api = FakeListingApi([("a", "s1", 9), down], [("a", "s1", 9), ("b", "s1", 8), down],
                         [("a", "s1", 9), ("b", "s1", 8), ("c", "s1", 7), down],
                         [("a", "s1", 9), ("b", "s1", 8), ("c", "s1", 7), ("d", "s1", 6)])
    assert _listed(_fake_hub(api, attempts=2)) == [("a", "s1"), ("b", "s1"), ("c", "s1"), ("d", "s1")]
    stuck = FakeListingApi([("a", "s1", 9), down], [("a", "s1", 9), down])  # no progress: gives up
    with pytest.raises(HubUnavailableError):
        _listed(_fake_hub(stuck, attempts=2))


def test_a_restarted_listing_gives_a_model_again_at_its_new_commit():
    down = TimeoutError("read timed out")
    # "a" gets a new commit while the listing is down: on restart it comes first, at s2
    api = FakeListingApi([("a", "s1", 9), ("b", "s1", 8), down],
                         [("a", "s2", 20), ("b", "s1", 8), ("c", "s1", 7)])
    assert _listed(_fake_hub(api)) == [("a", "s1"), ("b", "s1"), ("a", "s2"), ("c", "s1")]


def test_a_model_without_a_sha_is_an_error_naming_it(hub, online):
    online.add_fault(r"^/api/models/nosha/m", status=200, body={"id": "nosha/m", "sha": None})
    with pytest.raises(HubError, match="nosha/m.*no commit sha") as e:
        hub.model_info("nosha/m")
    assert e.value.repo_id == "nosha/m"
    hub = _fake_hub(FakeListingApi([("a", "s1", 9), ("nosha/m", None, 8), ("c", "s1", 7)]))
    assert _listed(hub) == [("a", "s1"), ("c", "s1")]  # the listing skips it and goes on


def test_transient_errors_are_recognised_without_httpx2(monkeypatch):
    import importlib
    import sys

    hub = HfHub(endpoint="http://127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "httpx2", None)  # import httpx2 -> ImportError
    with pytest.raises(ImportError):  # huggingface_hub's own alias resolves it lazily
        _ = importlib.import_module("huggingface_hub.utils").httpx
    assert hub._is_transient(TimeoutError("t")) and hub._is_transient(ConnectionResetError())
    assert not hub._is_transient(KeyError("k"))


def test_declared_huggingface_hub_floor_has_what_hub_uses():
    import re

    from huggingface_hub import errors as hf

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    spec = next(d for d in project["project"]["dependencies"] if d.startswith("huggingface_hub"))
    floor = tuple(int(v) for v in re.search(r">=\s*([\d.]+)", spec).group(1).split(".")[:2])
    assert floor >= (2, 0), spec  # 2.0 moved to httpx2 (hub.py's transport errors)
    assert hasattr(hf, "RemoteEntryNotFoundError")


# ---------------------------------------------------------------------------------------
# Model info and downloads
# ---------------------------------------------------------------------------------------


def test_model_info_pins_a_sha_and_fetch_downloads_configs_only(hub, online, tmp_path):
    record = hub.model_info("org/tiny-vit")
    assert set(record.files) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}
    assert hub.model_info("org/tiny-vit", revision=record.sha) == record
    files = hub.fetch("org/tiny-vit")
    assert files.sha == record.sha and files.config["model_type"] == "vit"
    # the standard cache under HF_HOME (set by conftest), pinned to the sha
    assert files.config_path.is_relative_to(Path(hub.cache_dir))
    assert files.folder.name == record.sha and files.preprocessor_path.name == "preprocessor_config.json"
    assert files.weights_path is None
    assert not any("model.safetensors" in p for _, p, _ in online.requests)
    with_weights = hub.fetch("org/tiny-vit", revision=record.sha, weights=True)
    assert with_weights.weights_path.read_bytes() == (
        online.store.get("model", "org/tiny-vit").root / "model.safetensors").read_bytes()
    timm = hub.fetch("timm/tiny-timm")
    assert timm.preprocessor_path is None and timm.config["architecture"] == "resnet18"


@pytest.mark.parametrize("repo_id, revision, error", [
    ("org/absent", None, ModelNotFoundError),
    ("org/tiny-vit", "no-such-branch", ModelNotFoundError),
    ("org/private-vit", None, ModelAccessError),
    ("org/gated-vit", None, GatedModelError),
    ("org/malformed", None, MalformedModelError),
    ("org/remote-code", None, RemoteCodeRequiredError),
])
def test_fetch_raises_typed_errors(hub, repo_id, revision, error):
    with pytest.raises(error) as e:
        hub.fetch(repo_id, revision=revision)
    assert e.value.repo_id == repo_id and isinstance(e.value, HubError)


def test_typed_errors_subclass_builtins(hub):
    with pytest.raises(FileNotFoundError):
        hub.model_info("org/absent")
    with pytest.raises(PermissionError):
        hub.fetch("org/gated-vit")
    with pytest.raises(ValueError):
        hub.fetch("org/remote-code")
    with pytest.raises(UnsupportedModelError) as e:
        hub.fetch("org/remote-code")
    assert e.value.reason == "remote_code"
    with pytest.raises(HubFileNotFoundError) as e:
        hub.fetch("timm/tiny-timm", weights=True)
    assert e.value.filename == "model.safetensors"


def test_token_from_hf_token_opens_gated_and_private(online, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "good-token")
    hub = HfHub(retry=FAST)
    assert hub.fetch("org/gated-vit").config["model_type"] == "vit"
    assert hub.model_info("org/private-vit").private
    assert "org/private-vit" in {r.repo_id for r in hub.list_models()}
    with pytest.raises(GatedModelError):
        HfHub(retry=FAST, token="other-token", cache_dir=tmp_path / "c").fetch("org/gated-vit")
    with pytest.raises(ModelAccessError):
        HfHub(retry=FAST, token="forged").model_info("org/tiny-vit")


def test_offline_mode_uses_the_cache_only(hub, online, monkeypatch):
    sha = hub.fetch("org/tiny-vit").sha
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = HfHub(retry=FAST)
    assert offline.offline
    files = offline.fetch("org/tiny-vit")
    assert files.sha == sha and files.config["model_type"] == "vit"
    assert offline.fetch("org/tiny-vit", revision=sha).sha == sha
    n = len(online.requests)
    for call in (lambda: list(offline.list_models()), lambda: offline.model_info("org/tiny-vit"),
                 lambda: offline.fetch("org/tiny-resnet"),
                 lambda: offline.fetch("org/tiny-vit", weights=True)):
        with pytest.raises(HubOfflineError):
            call()
    assert len(online.requests) == n  # nothing reached the server


def test_offline_fetch_warns_when_the_preprocessor_is_not_cached(hub, online, monkeypatch, caplog):
    files = hub.fetch("org/tiny-vit")
    files.preprocessor_path.unlink()  # the snapshot's link: the cache lost it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level("WARNING", logger="fennec.hub"):
        again = HfHub(retry=FAST).fetch("org/tiny-vit")
    assert again.preprocessor_path is None
    assert any("org/tiny-vit" in r.getMessage() and "preprocessor_config.json" in r.getMessage()
               for r in caplog.records)


def test_offline_download_errors_other_than_not_cached_are_not_hidden(hub, online, monkeypatch):
    import huggingface_hub

    sha = hub.fetch("org/tiny-vit").sha
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def broken_cache(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/hf/hub/models--org--tiny-vit")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken_cache)
    with pytest.raises(PermissionError):
        HfHub(retry=FAST).fetch("org/tiny-vit", revision=sha)


# ---------------------------------------------------------------------------------------
# Reliability: retries with backoff
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    {"status": 500}, {"status": 502}, {"status": 503}, {"status": 429, "retry_after": 0},
    {"delay": 0.6},  # longer than the 0.3 s timeout below
])
def test_transient_failures_are_retried(online, fault):
    hub = HfHub(retry=RetryPolicy(attempts=3, base_delay=0.01, timeout=0.3))
    f = online.add_fault(r"^/api/models/org/tiny-vit", times=2, **fault)
    assert hub.model_info("org/tiny-vit").repo_id == "org/tiny-vit"
    assert f.hits == 2


def test_persistent_failures_raise_hub_unavailable(online):
    hub = HfHub(retry=RetryPolicy(attempts=2, base_delay=0.01, timeout=0.3))
    online.add_fault(r"^/api/models/org/tiny-vit", status=503, times=None)
    with pytest.raises(HubUnavailableError) as e:
        hub.model_info("org/tiny-vit")
    assert e.value.status == 503 and isinstance(e.value, ConnectionError)
    online.clear_faults()
    online.add_fault(r"^/api/models/org/tiny-vit", delay=0.5, times=None)
    with pytest.raises(HubUnavailableError) as e:
        hub.model_info("org/tiny-vit")
    assert e.value.status is None


def test_retry_after_is_honoured_and_capped():
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert policy.delay(0, retry_after=3) == 3
    assert policy.delay(0, retry_after=60) == 5
    assert 0.75 <= policy.delay(0) <= 1.25 and policy.delay(10) == 5


def test_download_failures_are_retried(online):
    hub = HfHub(retry=RetryPolicy(attempts=3, base_delay=0.01, timeout=0.5))
    online.add_fault(r"/resolve/.*/config\.json", methods=("GET",), status=500, times=1)
    online.add_fault(r"/resolve/.*/preprocessor_config\.json", methods=("GET",), truncate=10, times=1)
    online.add_fault(r"/resolve/.*/preprocessor_config\.json", methods=("GET",), delay=0.8, times=1)
    files = hub.fetch("org/tiny-resnet")
    assert files.config["model_type"] == "resnet"
    assert json.loads(files.preprocessor_path.read_text())["do_resize"] is True
    # a download that keeps failing: fennec's attempts are the only retries
    f = online.add_fault(r"/resolve/.*/config\.json", methods=("GET",), status=500, times=None)
    with pytest.raises(HubUnavailableError) as e:
        hub.fetch("timm/tiny-timm")
    assert e.value.status == 500 and f.hits == hub.retry.attempts


def test_non_transient_http_errors_are_not_retried(hub, online):
    f = online.add_fault(r"^/api/models/org/tiny-vit", status=400, times=None)
    with pytest.raises(HubError, match="HTTP 400"):
        hub.model_info("org/tiny-vit")
    assert f.hits == 1


def test_unparsable_answers_and_dead_endpoints(hub, online):
    online.add_fault(r"^/api/models/org/tiny-vit", status=200, body="not a model", times=1)
    with pytest.raises(MalformedModelError, match="is a JSON str, not an object"):
        hub.model_info("org/tiny-vit")
    online.add_fault(r"^/api/models\?", status=200, body={"not": "a list"}, times=1)
    with pytest.raises(HubError, match="unexpected answer"):
        list(hub.list_models())
    dead = HfHub(endpoint="http://127.0.0.1:9", retry=RetryPolicy(attempts=2, base_delay=0.01, timeout=1))
    with pytest.raises(HubUnavailableError) as e:
        dead.model_info("org/tiny-vit")
    assert e.value.status is None and "ConnectError" in str(e.value)


def test_preprocessing_and_license(tiny_zoo, tmp_path):
    from fennec.hub import Preprocessing

    local = LocalHub(tiny_zoo["hub"])
    vit = local.fetch("org/tiny-vit").preprocessing()
    assert vit == Preprocessing(input_size=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                interpolation="bilinear", crop_pct=1.0)
    timm = local.fetch("timm/tiny-timm").preprocessing()  # from pretrained_cfg, no preprocessor file
    assert timm.input_size == (3, 32, 32) and timm.crop_pct == 1.0 and timm.interpolation == "bicubic"
    assert Preprocessing.from_configs({"model_type": "x"}, {}) == Preprocessing()
    shortest = Preprocessing.from_configs({}, {"size": {"shortest_edge": 256}, "crop_size": 224,
                                               "do_center_crop": True, "resample": 3})
    assert shortest.input_size == (3, 224, 224) and shortest.crop_pct == 0.875
    write_model(tmp_path, "org/bad-pre", config=TINY_VIT)
    (tmp_path / "org/bad-pre/preprocessor_config.json").write_text("[1]")
    with pytest.raises(MalformedModelError, match="preprocessor"):
        LocalHub(tmp_path).fetch("org/bad-pre").preprocessing()
    assert ModelRecord(repo_id="a", sha="b", tags=("vit", "license:apache-2.0")).license == "apache-2.0"
    assert ModelRecord(repo_id="a", sha="b").license is None


@pytest.mark.parametrize("preprocessor, input_size, crop_pct", [
    # CLIP: shortest edge to 224, then a 224 center crop: nothing is cropped away
    ({"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
      "do_center_crop": True, "do_resize": True}, (3, 224, 224), 1.0),
    ({"size": {"shortest_edge": 224}, "crop_size": 224, "do_center_crop": True}, (3, 224, 224), 1.0),
    # ViT: resized to exactly 384 x 384, no crop
    ({"size": {"height": 384, "width": 384}, "do_resize": True}, (3, 384, 384), 1.0),
    # ConvNeXt: states its crop_pct
    ({"size": {"shortest_edge": 224}, "crop_pct": 0.875, "do_resize": True}, (3, 224, 224), 0.875),
    # resize to 256, crop 224
    ({"size": 256, "crop_size": 224, "do_center_crop": True}, (3, 224, 224), 0.875),
])
def test_crop_pct_from_transformers_preprocessors(preprocessor, input_size, crop_pct):
    from fennec.hub import Preprocessing

    pre = Preprocessing.from_configs({"model_type": "x"}, preprocessor)
    assert pre.input_size == input_size and pre.crop_pct == pytest.approx(crop_pct)


# ---------------------------------------------------------------------------------------
# check_config
# ---------------------------------------------------------------------------------------


def test_check_config():
    assert check_config({"model_type": "vit"}, repo_id="a/b") == {"model_type": "vit"}
    assert check_config({"architecture": "resnet50"}, repo_id="a/b")["architecture"] == "resnet50"
    with pytest.raises(MalformedModelError, match="JSON list"):
        check_config([1], repo_id="a/b")
    with pytest.raises(MalformedModelError, match="model_type"):
        check_config({"hidden_size": 3}, repo_id="a/b")
    with pytest.raises(RemoteCodeRequiredError):
        check_config({"model_type": "x", "auto_map": {"AutoModel": "m.M"}}, repo_id="a/b")
    with pytest.raises(RemoteCodeRequiredError):
        check_config({"model_type": "x"}, repo_id="a/b", tags=["custom_code"])


# ---------------------------------------------------------------------------------------
# LocalHub and open_hub
# ---------------------------------------------------------------------------------------


def test_local_hub_has_the_same_interface(tiny_zoo, hub, online):
    local = LocalHub(tiny_zoo["hub"])
    # private and gated repositories are yours in a local folder
    assert [r.repo_id for r in local.list_models()] == ["org/private-vit"] + CLASSIFIERS_BY_DATE
    remote = {r.repo_id: r for r in hub.list_models()}
    for r in local.list_models(limit=4):
        if r.repo_id in remote:  # same sha and metadata as the server gives for that folder
            assert r.sha == remote[r.repo_id].sha and r.last_modified == remote[r.repo_id].last_modified
            assert r.parameters == remote[r.repo_id].parameters
    files = local.fetch("org/tiny-vit", weights=True)
    assert files.folder == tiny_zoo["hub"] / "org/tiny-vit" and files.weights_path.is_file()
    assert local.model_info("org/tiny-vit", revision=files.sha).sha == files.sha
    since = _utc(tiny_zoo["t0"] + 6 * tiny_zoo["day"])
    assert [r.repo_id for r in local.list_models(since=since)] == ["org/private-vit", "org/gated-vit"]
    assert [r.repo_id for r in local.list_models(sort="downloads", limit=1)] == ["org/tiny-resnet"]


@pytest.mark.parametrize("repo_id, kwargs, error", [
    ("org/absent", {}, ModelNotFoundError),
    ("org/tiny-vit", {"revision": "v2"}, ModelNotFoundError),
    ("org/malformed", {}, MalformedModelError),
    ("org/remote-code", {}, RemoteCodeRequiredError),
    ("timm/tiny-timm", {"weights": True}, HubFileNotFoundError),
])
def test_local_hub_errors(tiny_zoo, repo_id, kwargs, error):
    with pytest.raises(error):
        LocalHub(tiny_zoo["hub"]).fetch(repo_id, **kwargs)


def test_local_hub_config_without_model_type_and_missing_config(tmp_path):
    write_model(tmp_path, "org/odd", config={"hidden_size": 3})
    (tmp_path / "org/noconf").mkdir(parents=True)
    (tmp_path / "org/noconf/README.md").write_text("---\npipeline_tag: image-classification\n---\n")
    local = LocalHub(tmp_path)
    with pytest.raises(MalformedModelError, match="model_type"):
        local.fetch("org/odd")
    with pytest.raises(MalformedModelError, match="no config.json"):
        local.fetch("org/noconf")
    with pytest.raises(FileNotFoundError):
        LocalHub(tmp_path / "nowhere")


def test_open_hub(tiny_zoo, online, monkeypatch, tmp_path):
    assert isinstance(open_hub(str(tiny_zoo["hub"])), LocalHub)
    h = open_hub(online.url + "/", retry=FAST)
    assert isinstance(h, HfHub) and h.endpoint == online.url
    assert isinstance(open_hub(), HfHub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FENNEC_LOCAL_HUB", str(tiny_zoo["hub"]))
    assert isinstance(open_hub(), LocalHub)  # the embedded default when offline
    with pytest.raises(FileNotFoundError):
        open_hub(tmp_path / "nowhere")


@pytest.mark.parametrize("hub_json, match", [
    ("{not json", "cannot read it as JSON"),
    ("[1, 2]", "expected a JSON object, found a JSON list"),
    ('{"lastModified": "yesterday"}', "lastModified is 'yesterday', not a date"),
    ('{"downloads": "many"}', "downloads is 'many'"),
])
def test_local_hub_skips_a_malformed_repository_and_names_its_file(tmp_path, caplog, hub_json, match):
    write_model(tmp_path, "org/good", config=TINY_VIT)
    write_model(tmp_path, "org/bad", config=TINY_VIT)
    (tmp_path / "org/bad/.hub.json").write_text(hub_json)
    local = LocalHub(tmp_path)
    with caplog.at_level("WARNING"):
        assert [r.repo_id for r in local.list_models()] == ["org/good"]
    assert any("org/bad/.hub.json" in r.getMessage() for r in caplog.records)
    with pytest.raises(MalformedModelError, match=match) as e:
        local.model_info("org/bad")
    assert str(tmp_path / "org/bad/.hub.json") in str(e.value) and e.value.repo_id == "org/bad"


def test_local_hub_skips_a_repository_whose_file_vanishes_while_listing(tmp_path, caplog, monkeypatch):
    from fennec.hub.repo_store import RepoStore

    write_model(tmp_path, "org/good", config=TINY_VIT)
    write_model(tmp_path, "org/going", config=TINY_VIT)
    real_hashes = RepoStore._hashes

    def vanishing(self, path, *args):
        if "org/going" in str(path):
            path.unlink()  # deleted between os.walk and reading it
        return real_hashes(self, path, *args)

    monkeypatch.setattr(RepoStore, "_hashes", vanishing)
    with caplog.at_level("WARNING"):
        assert [r.repo_id for r in LocalHub(tmp_path).list_models()] == ["org/good"]
    assert any("org/going" in r.getMessage() and "cannot read" in r.getMessage() for r in caplog.records)


def test_an_org_folder_with_a_readme_is_still_an_org(tmp_path):
    write_model(tmp_path, "org/a", config=TINY_VIT)
    write_model(tmp_path, "org/b", config=TINY_VIT)
    (tmp_path / "org/README.md").write_text("# our models\n")
    write_model(tmp_path, "bare", config=TINY_VIT)  # a repository directly under the root
    local = LocalHub(tmp_path)
    assert sorted(r.repo_id for r in local.list_models()) == ["local/bare", "org/a", "org/b"]
    with pytest.raises(ModelNotFoundError):
        local.model_info("local/org")


def test_local_hub_sha_changes_with_content(tmp_path):
    write_model(tmp_path, "org/m", config=TINY_VIT)
    local = LocalHub(tmp_path)
    before = local.model_info("org/m").sha
    (tmp_path / "org/m/config.json").write_text(json.dumps({**TINY_VIT, "hidden_size": 64}))
    assert local.model_info("org/m").sha != before
