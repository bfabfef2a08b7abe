"""fennec.hub against the local Hub server (HfHub) and against a folder (LocalHub)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fennec import hub as fhub
from fennec.errors import (
    GatedModelError,
    HubError,
    HubFileNotFoundError,
    HubOfflineError,
    HubUnavailableError,
    MalformedModelError,
    ModelAccessError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
    UnsupportedModelError,
)
from fennec.hub import HfHub, LocalHub, ModelRecord, RetryPolicy, check_config, open_hub
from hub_server_fixtures import *  # noqa: F401,F403 - fixtures
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


def test_list_models_argument_errors(hub):
    with pytest.raises(ValueError, match="sort"):
        list(hub.list_models(sort="size"))
    with pytest.raises(ValueError, match="limit"):
        list(hub.list_models(limit=0))
    with pytest.raises(ValueError, match="timezone"):
        list(hub.list_models(since=datetime(2024, 1, 1)))


def test_listing_restarts_after_a_failure_in_the_middle_without_duplicates(hub, online, monkeypatch):
    # take huggingface_hub's own page retries out, so that fennec's restart is what recovers
    from huggingface_hub.utils import _pagination, http_backoff

    monkeypatch.setattr(_pagination, "http_backoff", functools.partial(http_backoff, max_retries=0))
    online.add_fault(r"^/api/models\?.*cursor=", status=503, times=2)
    assert [r.repo_id for r in hub.list_models()] == CLASSIFIERS_BY_DATE
    online.add_fault(r"^/api/models\?.*cursor=", status=500, times=None)
    with pytest.raises(HubUnavailableError) as e:
        list(hub.list_models())
    assert e.value.status == 500


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
    online.add_fault(r"/resolve/.*/config\.json", methods=("HEAD",), status=500, times=1)
    online.add_fault(r"/resolve/.*/preprocessor_config\.json", methods=("GET",), truncate=10, times=1)
    online.add_fault(r"/resolve/.*/preprocessor_config\.json", methods=("HEAD",), delay=0.8, times=1)
    files = hub.fetch("org/tiny-resnet")
    assert files.config["model_type"] == "resnet"
    assert json.loads(files.preprocessor_path.read_text())["do_resize"] is True
    # a failing download body (huggingface_hub itself retries only failing HEADs)
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
    with pytest.raises(HubError, match="unexpected answer"):
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


def test_only_hub_imports_huggingface_hub():
    root = Path(fhub.__file__).parent
    offenders = [p.name for p in root.rglob("*.py") if p.name != "hub.py"
                 and ("import huggingface_hub" in p.read_text() or "from huggingface_hub" in p.read_text())]
    assert offenders == []


def test_local_hub_sha_changes_with_content(tmp_path):
    write_model(tmp_path, "org/m", config=TINY_VIT)
    local = LocalHub(tmp_path)
    before = local.model_info("org/m").sha
    (tmp_path / "org/m/config.json").write_text(json.dumps({**TINY_VIT, "hidden_size": 64}))
    assert local.model_info("org/m").sha != before
