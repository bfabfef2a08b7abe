"""fennec.hub against a lying endpoint (tests/hostile_hub.py) and hostile Hub-style folders.

Every server-provided value that could become a path (a model's sha, an ``ETag``, an
``X-Repo-Commit``) is refused before use; JSON documents are bounded in size and nesting;
a file that always fails costs exactly fennec's own attempts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import fennec.hub.client
from fennec.catalog import Catalog
from fennec.data import load_sample
from fennec.errors import HubError, HubUnavailableError, MalformedModelError
from fennec.hub import HfHub, LocalHub, RetryPolicy, untrusted
from fennec.hub.untrusted import MAX_JSON_BYTES, MAX_JSON_DEPTH, RejectedInput, check_etag, loads_json
from fennec.reindex import reindex
from hostile_hub import HostileHub, call_without_hanging
from hub_server_fixtures import TINY_VIT, write_model

FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, timeout=5.0)
GOOD_SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "89abcdef0123456789abcdef0123456789abcdef"
CONFIG = json.dumps(TINY_VIT).encode()
#: From <cache>/models--org--m/blobs/ (or refs/, .no_exist/), this lands in the test's
#: tmp_path, beside the cache.
ESCAPE = "../../../escaped"
DEEP = b"[" * 200_000 + b"]" * 200_000


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _outside(tmp_path: Path, cache: Path) -> list[str]:
    """Every file under ``tmp_path`` that is not in the cache."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if not p.is_dir() and cache not in p.parents)


@pytest.fixture
def hostile(monkeypatch):
    """A started :class:`HostileHub`; huggingface_hub is let online (it reads HF_HUB_OFFLINE
    when imported, so its cached value is patched too)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HostileHub() as server:
        yield server


def _hub(server: HostileHub, tmp_path: Path, retry: RetryPolicy = FAST) -> HfHub:
    return HfHub(endpoint=server.url, cache_dir=tmp_path / "cache", offline=False, retry=retry)


# ---------------------------------------------------------------------------------------
# Server values that would name a path
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sha", [ESCAPE, "../" * 8 + "tmp/x", GOOD_SHA.upper(), GOOD_SHA[:39],
                                 GOOD_SHA + "/..", "main"])
def test_a_model_info_sha_that_is_not_a_commit_id_is_refused(hostile, tmp_path, sha):
    hostile.add_model("org/m", sha=sha, files={"config.json": CONFIG},
                      headers={"config.json": {"X-Repo-Commit": GOOD_SHA,
                                               "ETag": f'"{_git_blob_id(CONFIG)}"'}})
    hub = _hub(hostile, tmp_path)
    with pytest.raises(HubError, match="not a commit id") as e:
        hub.model_info("org/m")
    assert e.value.repo_id == "org/m"
    with pytest.raises(HubError, match="not a commit id"):
        hub.fetch("org/m")
    assert _outside(tmp_path, tmp_path / "cache") == []
    assert hostile.count("/resolve/") == 0  # refused before any download


def test_info_for_another_commit_than_the_one_asked_for_is_refused(hostile, tmp_path):
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG})  # answers any revision
    hub = _hub(hostile, tmp_path)
    assert hub.model_info("org/m", revision=GOOD_SHA).sha == GOOD_SHA
    assert hub.dataset_files("org/m", revision=GOOD_SHA)[0] == GOOD_SHA
    with pytest.raises(HubError, match=f"asked for commit {OTHER_SHA}, .* answered with commit '?{GOOD_SHA}"):
        hub.model_info("org/m", revision=OTHER_SHA)
    with pytest.raises(HubError, match=f"asked for commit {OTHER_SHA}, .* answered with commit '?{GOOD_SHA}"):
        hub.dataset_files("org/m", revision=OTHER_SHA)


@pytest.mark.parametrize("headers", [
    {"ETag": f'"{ESCAPE}"'},
    {"ETag": None, "X-Linked-Etag": f'"{ESCAPE}"'},
    {"ETag": f'W/"{ESCAPE}"'},
    {"ETag": '"a/b"'},
    {"ETag": '".hidden"'},
    {"ETag": None},
    {"X-Repo-Commit": ESCAPE},
    {"X-Repo-Commit": OTHER_SHA},  # a valid id, but not the commit asked for
    {"X-Repo-Commit": None},
])
def test_download_headers_that_are_not_safe_are_refused(hostile, tmp_path, headers):
    good = {"ETag": f'"{_git_blob_id(CONFIG)}"', "X-Repo-Commit": GOOD_SHA}
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {**good, **headers}})
    hub = _hub(hostile, tmp_path)
    with pytest.raises(HubError) as e:
        hub.fetch("org/m")
    assert not isinstance(e.value, HubUnavailableError)  # refused, not retried
    assert hostile.count("/resolve/") == 1
    assert _outside(tmp_path, tmp_path / "cache") == []
    assert not list((tmp_path / "cache").rglob("config.json"))


def test_a_404_carrying_a_hostile_commit_writes_nothing(hostile, tmp_path):
    # huggingface_hub caches a missing file as .no_exist/<X-Repo-Commit>/<file>
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      missing=("preprocessor_config.json",),
                      headers={"config.json": {"ETag": f'"{_git_blob_id(CONFIG)}"'},
                               "preprocessor_config.json": {"X-Repo-Commit": ESCAPE}})
    files = _hub(hostile, tmp_path).fetch("org/m")
    assert files.config["model_type"] == "vit" and files.preprocessor_path is None
    assert _outside(tmp_path, tmp_path / "cache") == []


def test_content_that_does_not_match_its_etag_is_refused(hostile, tmp_path):
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"ETag": f'"{_git_blob_id(b"other")}"'}})
    with pytest.raises(HubError, match="git blob id"):
        _hub(hostile, tmp_path).fetch("org/m")
    hostile.add_model("org/n", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"X-Linked-Etag": f'"{"0" * 64}"'}})
    with pytest.raises(HubError, match="sha256"):
        _hub(hostile, tmp_path).fetch("org/n")
    assert not list((tmp_path / "cache").rglob("config.json"))


def test_a_good_download_lands_in_the_huggingface_cache_layout(hostile, tmp_path):
    etag = _git_blob_id(CONFIG)
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"ETag": f'"{etag}"'}})
    files = _hub(hostile, tmp_path).fetch("org/m")
    repo = tmp_path / "cache" / "models--org--m"
    assert files.config_path == repo / "snapshots" / GOOD_SHA / "config.json"
    assert files.config_path.resolve() == repo / "blobs" / etag
    assert (repo / "refs" / "main").read_text() == GOOD_SHA
    # huggingface_hub finds it offline, in the same layout
    offline = HfHub(endpoint=hostile.url, cache_dir=tmp_path / "cache", offline=True, retry=FAST)
    assert offline.fetch("org/m").config == files.config
    n = hostile.count("/resolve/")
    assert _hub(hostile, tmp_path).fetch("org/m", revision=GOOD_SHA).config_path == files.config_path
    assert hostile.count("/resolve/") == n  # cached: no second download


def test_a_redirect_to_a_cdn_takes_the_checks_from_the_hubs_answer(hostile, tmp_path):
    etag = _git_blob_id(CONFIG)
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"ETag": f'"{etag}"', "Location": "/cdn/org/m/config.json"}})
    files = _hub(hostile, tmp_path).fetch("org/m")
    assert files.config["model_type"] == "vit" and files.config_path.resolve().name == etag
    assert hostile.count("^/cdn/") == 1
    hostile.add_model("org/n", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"ETag": f'"{ESCAPE}"', "Location": "/cdn/org/n/config.json"}})
    with pytest.raises(HubError, match="not an opaque token"):
        _hub(hostile, tmp_path).fetch("org/n")
    assert _outside(tmp_path, tmp_path / "cache") == []


def test_dataset_files_are_prefetched_with_the_same_checks(hostile, tmp_path, monkeypatch):
    # datasets.load_dataset reads huggingface_hub's cache: fennec fills it, checked
    from huggingface_hub import constants as hf_constants
    from huggingface_hub import hf_hub_download

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    csv = b"image,label\n"
    hostile.add_model("org/d", sha=GOOD_SHA, files={"data/train.csv": csv},
                      headers={"data/train.csv": {"ETag": f'"{_git_blob_id(csv)}"'}})
    folder = _hub(hostile, tmp_path).prefetch_dataset("org/d", sha=GOOD_SHA, files=["data/train.csv"])
    assert (folder / "data" / "train.csv").read_bytes() == csv
    n = hostile.count("/resolve/")
    path = hf_hub_download("org/d", "data/train.csv", repo_type="dataset", revision=GOOD_SHA,
                           endpoint=hostile.url)
    assert Path(path) == folder / "data" / "train.csv" and hostile.count("/resolve/") == n
    shutil.rmtree(tmp_path / "cache")
    hostile.models["org/d"].headers["data/train.csv"] = {"ETag": f'"{ESCAPE}"'}
    with pytest.raises(HubError, match="not an opaque token"):
        _hub(hostile, tmp_path).prefetch_dataset("org/d", sha=GOOD_SHA, files=["data/train.csv"])
    with pytest.raises(HubError, match="would leave the snapshot"):
        _hub(hostile, tmp_path).prefetch_dataset("org/d", sha=GOOD_SHA, files=[ESCAPE])
    assert _outside(tmp_path, tmp_path / "cache") == []


def _png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), seed * 40 % 256, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _image_dataset(server: HostileHub, monkeypatch, **kwargs) -> dict[str, bytes]:
    """``org/d``: an ImageFolder (train/<class>/<n>.png) without parquet, plus files datasets
    does not need for it; ``load_sample("hub:org/d")`` goes to ``server``. Returns the images."""
    import datasets

    images = {f"train/{c}/{i}.png": _png(3 * i + j) for j, c in enumerate("ab") for i in range(2)}
    files = {**images, ".gitattributes": b"*.png filter=lfs\n", "loader.py": b"raise SystemExit\n",
             "audio/x.wav": b"\0" * 4096}
    extra = kwargs.pop("headers", {})
    headers = {n: {"ETag": f'"{_git_blob_id(b)}"', **extra} for n, b in files.items()}
    server.add_model("org/d", sha=GOOD_SHA, files=files, headers=headers, **kwargs)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(Path(os.environ["HF_HOME"]) / "ds"))
    return images


def _blobs(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file() and p.parent.name == "blobs"]


def test_a_dataset_without_parquet_downloads_only_what_datasets_reads(hostile, monkeypatch):
    images = _image_dataset(hostile, monkeypatch)
    s = load_sample("hub:org/d", per_class=2)
    assert (list(s.class_names), len(s)) == (["a", "b"], 4)
    fetched = sorted(p.rsplit("/resolve/" + GOOD_SHA + "/", 1)[1] for _, p in hostile.requests
                     if "/resolve/" in p)
    assert fetched == sorted(images)  # no .gitattributes, script or audio file
    assert hostile.count(r"\?blobs=true$") >= 1  # the sizes were asked for


def test_a_dataset_listed_larger_than_the_bounds_is_refused_before_any_download(
        hostile, monkeypatch, tmp_path):
    images = _image_dataset(hostile, monkeypatch)
    total = sum(map(len, images.values()))  # the audio file is not counted: not downloaded
    monkeypatch.setattr(fennec.hub.client, "MAX_DATASET_DOWNLOAD_BYTES", total - 1)
    with pytest.raises(HubError, match=rf"org/d@{GOOD_SHA} lists 4 files of {total} bytes in all "
                       rf"to download, more than the {total - 1} .*"
                       r"parquet copy\) and pass that folder\.$"):
        load_sample("hub:org/d", per_class=2)
    assert hostile.count("/resolve/") == 0 and _blobs(tmp_path) == []
    monkeypatch.setattr(fennec.hub.client, "MAX_DATASET_DOWNLOAD_BYTES", total)
    monkeypatch.setattr(fennec.hub.client, "MAX_DATASET_FILES", 3)
    with pytest.raises(HubError, match="has 4 files to download, more than the 3 .*MAX_DATASET_FILES"):
        load_sample("hub:org/d", per_class=2)
    assert hostile.count("/resolve/") == 0 and _blobs(tmp_path) == []


@pytest.mark.parametrize("content_length", ["honest", "none"])
def test_a_dataset_that_lies_about_its_sizes_is_stopped_at_the_bound(hostile, monkeypatch, tmp_path,
                                                                     content_length):
    # every file is listed as 1 byte; the bound is one byte short of the real total: the
    # last file is refused on its Content-Length, or, sent without one, while streaming
    headers = {"Content-Length": None} if content_length == "none" else {}
    images = _image_dataset(hostile, monkeypatch, headers=headers)
    hostile.models["org/d"].sizes = dict.fromkeys(hostile.models["org/d"].files, 1)
    total = sum(map(len, images.values()))
    monkeypatch.setattr(fennec.hub.client, "MAX_DATASET_DOWNLOAD_BYTES", total - 1)
    with pytest.raises(HubError, match=rf"past the {total - 1} bytes .*the sizes the Hub listed add "
                       r"up to 4\); stopped") as e:
        load_sample("hub:org/d", per_class=2)
    # refused on the announced size before its body, or, unannounced, once past it
    cause = str(e.value.__cause__)
    assert ("is more than the" if content_length == "none" else "bytes, more than the") in cause
    assert hostile.count("/resolve/") == 4  # the fourth was stopped, not retried
    assert len(_blobs(tmp_path)) == 3 and sum(p.stat().st_size for p in _blobs(tmp_path)) < total
    assert not [p for p in tmp_path.rglob("*.incomplete")]


def test_a_listing_whose_next_links_never_repeat_stops_at_the_bound(hostile, tmp_path, monkeypatch):
    hostile.add_model("org/a", sha=GOOD_SHA)
    hostile.add_model("org/b", sha=GOOD_SHA)
    hostile.listing_next = "/api/models?cursor={page}"  # a new page, forever
    hub = _hub(hostile, tmp_path)
    monkeypatch.setattr(fennec.hub.client, "MAX_LISTING_PAGES", 5)
    with pytest.raises(HubError, match=r"more than 5 pages \(MAX_LISTING_PAGES\), 10 "
                       r"models so far; refused .*--since.*library\)\)\.$"):
        call_without_hanging(lambda: list(hub.list_models(pipeline_tags=["image-classification"],
                                                          libraries=["transformers"])), fifos=[])
    assert hostile.count(r"^/api/models\?") == 5
    # pages that bring models: the entry bound may come first
    monkeypatch.setattr(fennec.hub.client, "MAX_LISTING_ENTRIES", 5)
    with pytest.raises(HubError, match=r"more than 5 models \(MAX_LISTING_ENTRIES\) in 3 pages"):
        list(hub.list_models(pipeline_tags=["image-classification"], libraries=["transformers"]))
    assert hostile.count(r"^/api/models\?") == 5 + 3
    # empty pages with new links forever: the page bound
    hostile.models.clear()
    with pytest.raises(HubError, match=r"more than 5 pages .*0 models so far"):
        call_without_hanging(lambda: list(hub.list_models(pipeline_tags=["image-classification"],
                                                          libraries=["transformers"])), fifos=[])
    assert hostile.count(r"^/api/models\?") == 5 + 3 + 5


def test_a_cached_ref_that_is_not_a_commit_id_is_refused_offline(tmp_path):
    ref = tmp_path / "cache" / "models--org--m" / "refs" / "main"
    ref.parent.mkdir(parents=True)
    ref.write_text(ESCAPE)
    hub = HfHub(endpoint="http://127.0.0.1:9", cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(HubError, match="not a commit id"):
        hub.fetch("org/m")


def test_a_listing_entry_with_a_bad_sha_is_skipped_and_the_rest_listed(hostile, tmp_path):
    hostile.add_model("org/bad", sha=ESCAPE)
    hostile.add_model("org/good", sha=GOOD_SHA)
    hostile.add_model("org/../x", sha=GOOD_SHA)  # an id huggingface_hub would refuse
    listed = [(r.repo_id, r.sha) for r in _hub(hostile, tmp_path).list_models(
        pipeline_tags=["image-classification"], libraries=["transformers"])]
    assert listed == [("org/good", GOOD_SHA)]


# ---------------------------------------------------------------------------------------
# JSON from the Hub: bounded in size and nesting
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, match", [
    (DEEP, "nests more deeply"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nests more than"),
    (b'{"model_type": "vit", "pad": "' + b"x" * MAX_JSON_BYTES + b'"}', "more than the"),
    (b"\xff\xfe not utf-8", "not valid JSON"),
])
def test_a_huge_or_deep_config_is_a_malformed_model(hostile, tmp_path, body, match):
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": body},
                      headers={"config.json": {"ETag": f'"{_git_blob_id(body)}"'}})
    with pytest.raises(MalformedModelError, match=match) as e:
        _hub(hostile, tmp_path).fetch("org/m")
    assert e.value.repo_id == "org/m"


def test_a_config_announced_as_huge_is_refused_before_its_body_is_read(hostile, tmp_path):
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG},
                      headers={"config.json": {"Content-Length": str(500 * 2**20)}})
    with pytest.raises(MalformedModelError, match="524288000 bytes, more than"):
        _hub(hostile, tmp_path).fetch("org/m")


@pytest.mark.parametrize("body, match", [(DEEP, "nests more deeply"), (b"[1, 2]", "not an object"),
                                         (b" " * (MAX_JSON_BYTES + 1), "more than the")])
def test_a_huge_or_deep_model_info_is_refused(hostile, tmp_path, body, match):
    hostile.add_model("org/m", sha=GOOD_SHA, info=body)
    with pytest.raises(MalformedModelError, match=match):
        _hub(hostile, tmp_path).model_info("org/m")
    assert hostile.count("/api/models/org/m") == 1  # not retried


def test_a_deep_preprocessor_config_is_a_malformed_model(tmp_path):
    write_model(tmp_path / "hub", "org/m", config=TINY_VIT)
    (tmp_path / "hub" / "org" / "m" / "preprocessor_config.json").write_bytes(DEEP)
    files = LocalHub(tmp_path / "hub").fetch("org/m")
    with pytest.raises(MalformedModelError, match="nests more deeply"):
        files.preprocessing()


def test_loads_json_bounds_and_messages():
    assert loads_json(b'{"a": [1, {"b": 2}]}', what="x") == {"a": [1, {"b": 2}]}
    assert loads_json(b"[1]", what="x", object_only=False) == [1]
    with pytest.raises(RejectedInput, match="x is a JSON list, not an object"):
        loads_json(b"[1]", what="x")
    with pytest.raises(RejectedInput, match="more than the 10"):
        loads_json(b'{"a": "0123456789"}', what="x", max_bytes=10)
    with pytest.raises(RejectedInput, match="nests more than 2"):
        loads_json(b'{"a": {"b": {}}}', what="x", max_depth=2)
    assert check_etag('W/"abc-1.2"', what="x") == "abc-1.2"
    assert check_etag("abc", what="x") == "abc"
    for bad in ('"../x"', '"a/b"', '".x"', '""', '"' + "a" * 129 + '"', '"a\\b"', None):
        with pytest.raises(RejectedInput):
            check_etag(bad, what="x")


# ---------------------------------------------------------------------------------------
# One layer of retries
# ---------------------------------------------------------------------------------------


def test_a_file_that_always_answers_500_costs_one_request_per_attempt(hostile, tmp_path):
    hostile.add_model("org/m", sha=GOOD_SHA, files={"config.json": CONFIG})
    hostile.fail(r"/resolve/")
    with pytest.raises(HubUnavailableError) as e:
        _hub(hostile, tmp_path).fetch("org/m")
    assert e.value.status == 500
    assert hostile.count(r"/resolve/") == FAST.attempts  # no retries nested inside fennec's
    assert hostile.count(r"^/api/models/org/m") == 1


def test_model_info_that_always_answers_500_costs_one_request_per_attempt(hostile, tmp_path):
    hostile.fail(r"^/api/models/org/m")
    with pytest.raises(HubUnavailableError):
        _hub(hostile, tmp_path).model_info("org/m")
    assert hostile.count(r"^/api/models/org/m") == FAST.attempts


def test_a_listing_that_always_answers_500_costs_one_request_per_attempt(hostile, tmp_path):
    hostile.fail(r"^/api/models\?")
    with pytest.raises(HubUnavailableError):
        list(_hub(hostile, tmp_path).list_models(pipeline_tags=["image-classification"],
                                                 libraries=["transformers"]))
    assert hostile.count(r"^/api/models\?") == FAST.attempts


def test_a_listing_whose_next_page_loops_is_an_error_not_endless(hostile, tmp_path):
    hostile.add_model("org/good", sha=GOOD_SHA)
    hostile.listing_next = "/api/models?cursor=again"
    hub = _hub(hostile, tmp_path)
    with pytest.raises(HubError, match="already read"):
        call_without_hanging(lambda: list(hub.list_models(pipeline_tags=["image-classification"],
                                                          libraries=["transformers"])), fifos=[])
    hostile.listing_next = None
    hostile.models.clear()
    hostile.fail(r"^/api/models\?", status=200)  # {"error": ...}: an object, not a page
    with pytest.raises(HubError, match="not a list"):
        list(hub.list_models(pipeline_tags=["image-classification"], libraries=["transformers"]))


def test_a_listing_next_page_on_another_origin_is_read_without_the_token(hostile, tmp_path):
    hostile.add_model("org/good", sha=GOOD_SHA)
    port = hostile.url.rsplit(":", 1)[1]
    hostile.listing_next = f"http://localhost:{port}/api/models?cursor=elsewhere"  # same server
    hub = HfHub(endpoint=hostile.url, token="hf_secret", cache_dir=tmp_path / "cache",
                offline=False, retry=FAST)
    with pytest.raises(HubError, match="already read"):  # the next page links to itself
        list(hub.list_models(pipeline_tags=["image-classification"], libraries=["transformers"]))
    assert hostile.tokens == [(f"127.0.0.1:{port}", True), (f"localhost:{port}", False)]


# ---------------------------------------------------------------------------------------
# A reindex goes on past every hostile model
# ---------------------------------------------------------------------------------------


class _Digest:
    version, dim = "hostile-digest", 8

    def __call__(self, files, record):
        seed = int.from_bytes(hashlib.sha256(files.config_path.read_bytes()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)


def test_reindex_records_hostile_models_and_goes_on(hostile, tmp_path):
    def model(repo_id, sha, body=CONFIG, **headers):
        hostile.add_model(repo_id, sha=sha, files={"config.json": body},
                          headers={"config.json": {"ETag": f'"{_git_blob_id(body)}"', **headers}})

    model("org/good", GOOD_SHA)
    model("org/deep", GOOD_SHA, DEEP)
    model("org/etag", GOOD_SHA, ETag=f'"{ESCAPE}"')
    model("org/commit", GOOD_SHA, **{"X-Repo-Commit": ESCAPE})
    model("org/bad-sha", ESCAPE)
    home = tmp_path / "home"
    with Catalog(home / "catalog.sqlite") as cat:
        summary = reindex(hub=_hub(hostile, tmp_path), catalog=cat, embedder=_Digest())
        assert summary.added == 1 and cat.get_model("org/good").status == "ok"
        deep = cat.get_model("org/deep")
        assert deep.status == "unsupported" and "nests more deeply" in deep.last_error
        for repo_id in ("org/etag", "org/commit"):
            known = cat.get_model(repo_id)
            assert known.status == "failed" and "refused" in known.last_error
        assert cat.get_model("org/bad-sha") is None  # skipped by the listing, with a warning
    assert [p for p in _outside(tmp_path, tmp_path / "cache") if not p.startswith("home")] == []


# ---------------------------------------------------------------------------------------
# Hub-style folders (LocalHub, HubServer): the same bounds
# ---------------------------------------------------------------------------------------


def test_local_hub_with_a_deep_config_lists_it_and_records_it_unsupported(tmp_path):
    write_model(tmp_path / "hub", "org/good", config=TINY_VIT)
    write_model(tmp_path / "hub", "org/deep", config=None, raw_config=DEEP.decode())
    hub = LocalHub(tmp_path / "hub")
    assert {r.repo_id for r in hub.list_models()} == {"org/good", "org/deep"}
    home = tmp_path / "home"
    with Catalog(home / "catalog.sqlite") as cat:
        summary = reindex(hub=hub, catalog=cat, embedder=_Digest())
        assert (summary.added, summary.unsupported) == (1, 1)
        assert "nests more deeply" in cat.get_model("org/deep").last_error


def test_local_hub_refuses_a_hub_json_sha_and_special_files(tmp_path, caplog):
    write_model(tmp_path / "hub", "org/good", config=TINY_VIT)
    write_model(tmp_path / "hub", "org/sha", config=TINY_VIT, extra={"sha": ESCAPE})
    folder = write_model(tmp_path / "hub", "org/fifo", config=TINY_VIT)
    os.mkfifo(folder / "weights.bin")  # hashing it would block for ever
    hub = LocalHub(tmp_path / "hub")
    listed = call_without_hanging(lambda: list(hub.list_models()), fifos=[folder / "weights.bin"])
    assert sorted(r.repo_id for r in listed) == ["org/fifo", "org/good"]  # org/sha skipped
    assert "weights.bin" not in next(r for r in listed if r.repo_id == "org/fifo").files
    assert "expected a commit sha" in caplog.text and "not a regular file" in caplog.text


def test_read_regular_bytes_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)  # opened non-blocking: no writer needed for the refusal
    with pytest.raises(RejectedInput, match="FIFO"):
        call_without_hanging(lambda: untrusted.read_json_file(fifo, what="config.json"), fifos=[fifo])
