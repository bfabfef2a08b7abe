"""The local Hub-compatible server, driven by the real huggingface_hub, transformers and datasets."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

import pytest

from fennec.errors import InvalidInputError
from fennec.hub.server import HubServer, RepoStore, main
from hub_server_fixtures import *  # noqa: F403 - fixtures
from hub_server_fixtures import TINY_VIT, TORCHVISION_COMPAT, run_python, write_model


def http(server, path, *, method="GET", headers=None, data=None):
    """(status, headers, body) of one raw request."""
    req = urllib.request.Request(server.url + path, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# ---------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------


def test_list_models_through_hfapi_filters_sorts_and_follows_pages(online):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=online.url)
    ids = [m.id for m in api.list_models(pipeline_tag="image-classification", sort="lastModified")]
    # newest first; private hidden without a token; feature-extraction and fill-mask excluded
    assert ids == ["org/gated-vit", "org/malformed", "org/tiny-vit", "org/tiny-resnet",
                   "timm/tiny-timm", "org/remote-code"]
    pages = [p for m, p, s in online.requests if m == "GET" and p.startswith("/api/models?")]
    assert len(pages) == 3  # page_size=2 → the Link header was followed twice
    assert [m.id for m in api.list_models(filter="timm")] == ["timm/tiny-timm"]
    assert [m.id for m in api.list_models(sort="downloads", limit=2)] == ["org/tiny-resnet", "org/tiny-vit"]
    assert [m.id for m in api.list_models(search="RESNET")] == ["org/tiny-resnet"]
    assert {m.id for m in api.list_models(author="timm")} == {"timm/tiny-timm"}
    assert {m.id for m in api.list_models(filter=["transformers", "dataset:t-tiny"],
                                          pipeline_tag="image-feature-extraction")} == {"org/vit-features"}


def test_list_models_private_visible_with_token(online):
    from huggingface_hub import HfApi

    assert "org/private-vit" not in {m.id for m in HfApi(endpoint=online.url).list_models()}
    assert "org/private-vit" in {m.id for m in HfApi(endpoint=online.url, token="good-token").list_models()}


def test_list_raw_direction_limit_link_and_errors(hub_server):
    status, headers, body = http(hub_server, "/api/models?sort=downloads&direction=1&limit=3")
    items = json.loads(body)
    assert status == 200 and [i["id"] for i in items][:1] == ["org/gated-vit"]  # 0 downloads, id order
    assert [i["downloads"] for i in items] == sorted(i["downloads"] for i in items)
    assert len(items) == 2  # limit 3 capped by the page size 2
    link = headers["Link"]
    assert link.startswith(f"<{hub_server.url}/api/models?") and link.endswith('>; rel="next"')
    nxt = link[1:link.index(">")][len(hub_server.url):]
    _, _, body2 = http(hub_server, nxt)
    assert {i["id"] for i in json.loads(body2)}.isdisjoint({i["id"] for i in items})
    for bad in ("sort=size", "direction=2", "limit=0", "limit=x", "cursor=!!"):
        assert http(hub_server, f"/api/models?{bad}")[0] == 400, bad
    _, _, body = http(hub_server, "/api/models?expand[]=downloads&limit=1")
    assert set(json.loads(body)[0]) == {"_id", "id", "downloads"}
    _, _, body = http(hub_server, "/api/models?search=tiny-vit&full=true&config=true")
    item = json.loads(body)[0]
    assert item["config"]["model_type"] == "vit" and {s["rfilename"] for s in item["siblings"]} >= {"config.json"}
    assert http(hub_server, "/api/models", method="POST", data=b"")[0] == 405


def test_list_datasets_and_dataset_info(online):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=online.url)
    assert [d.id for d in api.list_datasets()] == ["local/t-tiny"]
    info = api.dataset_info("local/t-tiny")
    assert len(info.sha) == 40 and "task_categories:image-classification" in info.tags
    assert {s.rfilename for s in info.siblings} == {
        "README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}


# ---------------------------------------------------------------------------------------
# Model info, trees and files
# ---------------------------------------------------------------------------------------


def test_model_info_is_pinned_and_errors_are_typed(online):
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf

    api = HfApi(endpoint=online.url)
    info = api.model_info("org/tiny-vit", files_metadata=True)
    assert len(info.sha) == 40 and info.library_name == "transformers"
    assert info.safetensors.total == 4 * 8 + 4 and info.downloads == 50 and info.likes == 3
    assert info.created_at.year == 2023 and info.last_modified > info.created_at
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.lfs is not None and weights.size == weights.lfs.size
    assert api.model_info("org/tiny-vit", revision=info.sha).sha == info.sha
    assert "custom_code" in api.model_info("org/remote-code").tags
    with pytest.raises(hf.RevisionNotFoundError):
        api.model_info("org/tiny-vit", revision="v9")
    with pytest.raises(hf.RepositoryNotFoundError) as e:
        api.model_info("org/nope")
    assert e.value.response.status_code == 404
    with pytest.raises(hf.RepositoryNotFoundError) as e:
        api.model_info("org/private-vit")
    assert e.value.response.status_code == 401
    assert HfApi(endpoint=online.url, token="good-token").model_info("org/private-vit").private
    with pytest.raises(hf.HfHubHTTPError) as e:
        HfApi(endpoint=online.url, token="forged").model_info("org/tiny-vit")
    assert e.value.response.status_code == 401


def test_tree_and_paths_info(online):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=online.url)
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("local/t-tiny", repo_type="dataset")}
    assert top == {"README.md": "RepoFile", "data": "RepoFolder"}
    deep = [e.path for e in api.list_repo_tree("local/t-tiny", repo_type="dataset", recursive=True)]
    assert "data/train-00000-of-00001.parquet" in deep and "data" in deep
    infos = api.get_paths_info("org/tiny-vit", ["config.json", "model.safetensors", "absent"])
    assert sorted(i.path for i in infos) == ["config.json", "model.safetensors"]
    assert next(i for i in infos if i.path == "model.safetensors").lfs is not None
    assert http(online, "/api/models/org/tiny-vit/tree/main/nowhere")[0] == 404


def test_resolve_headers_ranges_and_missing_files(hub_server, tiny_zoo):
    content = (tiny_zoo["hub"] / "org/tiny-vit/config.json").read_bytes()
    status, headers, body = http(hub_server, "/org/tiny-vit/resolve/main/config.json", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(content)) and headers["ETag"].startswith('"')
    assert len(headers["X-Repo-Commit"]) == 40
    status, headers, body = http(hub_server, "/org/tiny-vit/resolve/main/config.json")
    assert body == content
    status, headers, body = http(hub_server, "/org/tiny-vit/resolve/main/config.json",
                                 headers={"Range": "bytes=5-9"})
    assert status == 206 and body == content[5:10]
    assert headers["Content-Range"] == f"bytes 5-9/{len(content)}"
    status, _, body = http(hub_server, "/org/tiny-vit/resolve/main/config.json", headers={"Range": "bytes=-4"})
    assert status == 206 and body == content[-4:]
    assert http(hub_server, "/org/tiny-vit/resolve/main/config.json",
                headers={"Range": f"bytes={len(content)}-"})[0] == 416
    status, headers, _ = http(hub_server, "/org/tiny-vit/resolve/main/missing.bin", method="HEAD")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound" and "X-Repo-Commit" in headers
    status, headers, _ = http(hub_server, "/org/absent/resolve/main/config.json")
    assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"
    status, headers, _ = http(hub_server, "/org/tiny-vit/resolve/v2/config.json")
    assert status == 404 and headers["X-Error-Code"] == "RevisionNotFound"
    assert http(hub_server, "/org/tiny-vit/resolve/main/.hub.json")[0] == 404  # hidden
    sha = http(hub_server, "/org/tiny-vit/resolve/main/README.md", method="HEAD")[1]["X-Repo-Commit"]
    assert http(hub_server, f"/org/tiny-vit/resolve/{sha}/README.md")[0] == 200
    assert http(hub_server, "/datasets/local/t-tiny/resolve/main/README.md")[0] == 200
    assert http(hub_server, "/api/nothing")[0] == 404


def test_hf_hub_download_gated_private_and_cache(online, tmp_path):
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    def get(repo, token=False, name="config.json"):
        return hf_hub_download(repo, name, endpoint=online.url, cache_dir=tmp_path, token=token)

    path = Path(get("org/tiny-vit"))
    assert path.parent.parent.name == "snapshots" and json.loads(path.read_text())["model_type"] == "vit"
    with pytest.raises(hf.GatedRepoError) as e:
        get("org/gated-vit")
    assert e.value.response.status_code == 401
    with pytest.raises(hf.GatedRepoError) as e:
        get("org/gated-vit", token="other-token")  # valid, but not granted
    assert e.value.response.status_code == 403
    assert Path(get("org/gated-vit", token="good-token")).is_file()
    with pytest.raises(hf.RepositoryNotFoundError):
        get("org/private-vit")
    assert Path(get("org/private-vit", token="other-token")).is_file()
    with pytest.raises(hf.EntryNotFoundError):
        get("org/tiny-vit", name="pytorch_model.bin")


def test_whoami(hub_server):
    assert http(hub_server, "/api/whoami-v2")[0] == 401
    status, _, body = http(hub_server, "/api/whoami-v2", headers={"Authorization": "Bearer good-token"})
    assert status == 200 and json.loads(body)["name"] == "fennec-local"


# ---------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------


def test_fault_status_retry_after_and_count(online):
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf

    api = HfApi(endpoint=online.url)
    fault = online.add_fault(r"^/api/models/org/tiny-vit", status=500, times=1)
    with pytest.raises(hf.HfHubHTTPError) as e:
        api.model_info("org/tiny-vit")
    assert e.value.response.status_code == 500 and fault.hits == 1
    assert api.model_info("org/tiny-vit").id == "org/tiny-vit"  # the fault is used up
    online.add_fault(r"^/api/models/org/tiny-vit", status=429, retry_after=7, times=None)
    status, headers, _ = http(online, "/api/models/org/tiny-vit")
    assert status == 429 and headers["Retry-After"] == "7"
    assert http(online, "/api/models/org/tiny-vit")[0] == 429  # times=None: every time
    online.clear_faults()
    assert http(online, "/api/models/org/tiny-vit")[0] == 200


def test_fault_delay_trips_the_client_timeout(online):
    import httpx2
    from huggingface_hub import HfApi

    online.add_fault(r"^/api/models/org/tiny-vit", delay=1.0)  # without a timeout, the call succeeds
    with pytest.raises(httpx2.TimeoutException):
        HfApi(endpoint=online.url).model_info("org/tiny-vit", timeout=0.2)


def test_truncated_download_is_retried_by_huggingface_hub(online, tmp_path):
    from huggingface_hub import hf_hub_download

    online.add_fault(r"/resolve/.*/model\.safetensors", methods=("GET",), truncate=40, times=1)
    path = hf_hub_download("org/tiny-vit", "model.safetensors", endpoint=online.url, cache_dir=tmp_path)
    original = online.store.get("model", "org/tiny-vit").root / "model.safetensors"
    assert Path(path).read_bytes() == original.read_bytes()
    gets = [s for m, p, s in online.requests if m == "GET" and p.endswith("model.safetensors")]
    # cut off, then fetched again: huggingface_hub resumes with a Range request from what it
    # had written (206), which for a body smaller than its 10 MB read chunk is nothing (200)
    assert gets[0] == 499 and gets[1:] in ([200], [206])


# ---------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------


def test_store_sha_follows_content_and_ids(tmp_path):
    write_model(tmp_path / "hub", "org/m", config=TINY_VIT)
    write_model(tmp_path / "hub", "bare", config=TINY_VIT)
    store = RepoStore(tmp_path / "hub")
    assert store.repo_ids("model") == ["local/bare", "org/m"]
    assert store.get("model", "bare") is None and store.get("model", "local/bare") is not None
    assert RepoStore(tmp_path / "hub", namespace=None).repo_ids("model") == ["bare", "org/m"]
    first = store.get("model", "org/m").sha
    assert store.get("model", "org/m").sha == first  # cached, stable
    cfg = tmp_path / "hub/org/m/config.json"
    cfg.write_text(cfg.read_text().replace('"hidden_size": 32', '"hidden_size": 64'))
    assert store.get("model", "org/m").sha != first
    for bad in ("../x", "a/b/c", "", ".git"):
        assert store.get("model", bad) is None
    assert store.repo_ids("dataset") == []
    with pytest.raises(InvalidInputError, match="namespace must be a plain name .*got 'a/b'"):
        RepoStore(tmp_path, namespace="a/b")
    with pytest.raises(InvalidInputError, match="page_size must be >= 1, got 0"):
        HubServer(models_dir=tmp_path, page_size=0)


def test_cli_requires_a_folder():
    with pytest.raises(SystemExit):
        main([])


# ---------------------------------------------------------------------------------------
# The real clients, in a fresh interpreter (HF_ENDPOINT is read at import)
# ---------------------------------------------------------------------------------------


def _env(server, tmp_path):
    return {"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
            "HF_DATASETS_CACHE": str(tmp_path / "ds"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_datasets_load_dataset_of_a_parquet_dataset(hub_server, tmp_path):
    out = run_python("""
        import json
        from datasets import load_dataset
        ds = load_dataset("local/t-tiny")
        img = ds["train"][0]["image"]
        print(json.dumps({"splits": {k: len(v) for k, v in ds.items()},
                          "names": ds["train"].features["label"].names,
                          "labels": list(ds["test"]["label"]), "size": list(img.size)}))
    """, env=_env(hub_server, tmp_path))
    assert out == {"splits": {"train": 9, "test": 6}, "names": ["cat", "dog", "fish"],
                   "labels": [0, 1, 2, 0, 1, 2], "size": [8, 8]}


def test_transformers_from_pretrained_through_the_server(hub_server, tmp_path):
    """A real tiny ViT is saved into the served folder, then loaded back over HTTP."""
    served = tmp_path / "served"
    shutil.copytree(hub_server.store.roots["model"], served)
    with HubServer(models_dir=served) as server:
        out = run_python(TORCHVISION_COMPAT + f"""
import json, shutil, torch
from pathlib import Path
from transformers import (AutoConfig, AutoImageProcessor, AutoModelForImageClassification,
                          ViTConfig, ViTForImageClassification)
hub = Path({str(served)!r})
torch.manual_seed(0)
model = ViTForImageClassification(ViTConfig(**json.loads((hub / "org/tiny-vit/config.json").read_text()))).eval()
model.save_pretrained(hub / "org/real-vit")
for name in ("preprocessor_config.json", "README.md"):
    shutil.copy(hub / "org/tiny-vit" / name, hub / "org/real-vit" / name)
cfg = AutoConfig.from_pretrained("org/real-vit")
proc = AutoImageProcessor.from_pretrained("org/real-vit")
loaded = AutoModelForImageClassification.from_pretrained("org/real-vit").eval()
x = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    diff = (loaded(pixel_values=x).logits - model(pixel_values=x).logits).abs().max().item()
try:
    AutoConfig.from_pretrained("org/remote-code")
    remote = "loaded"
except Exception as e:
    remote = type(e).__name__
print(json.dumps({{"model_type": cfg.model_type, "processor": type(proc).__name__,
                  "diff": diff, "remote": remote}}))
""", env=_env(server, tmp_path))
    assert out["model_type"] == "vit" and out["processor"] == "ViTImageProcessor"
    assert out["diff"] == 0.0  # the weights came through intact
    assert out["remote"] != "loaded"  # custom code is never run without trust_remote_code


@pytest.mark.slow
def test_timm_create_model_through_the_server(hub_server, tmp_path):
    if importlib.util.find_spec("timm") is None:  # not importorskip: importing timm here
        pytest.skip("timm is not installed")      # would need the torchvision fix in-process
    served = tmp_path / "served"
    served.mkdir()
    with HubServer(models_dir=served) as server:
        out = run_python(TORCHVISION_COMPAT + f"""
import json, torch, timm
from pathlib import Path
from safetensors.torch import save_file
repo = Path({str(served)!r}) / "timm/tiny-resnet"
repo.mkdir(parents=True)
torch.manual_seed(0)
model = timm.create_model("resnet18", num_classes=3).eval()
save_file(model.state_dict(), str(repo / "model.safetensors"))
(repo / "config.json").write_text(json.dumps({{"architecture": "resnet18", "num_classes": 3,
    "pretrained_cfg": {{"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3}}}}))
loaded = timm.create_model("hf-hub:timm/tiny-resnet", pretrained=True).eval()
x = torch.randn(1, 3, 32, 32)
with torch.no_grad():
    print(json.dumps({{"diff": (loaded(x) - model(x)).abs().max().item()}}))
""", env=_env(server, tmp_path))
    assert out["diff"] == 0.0


# ---------------------------------------------------------------------------------------
# A hostile folder and hostile requests (docs/security.md, "The local Hub server")
# ---------------------------------------------------------------------------------------

SECRET = b"TOP-SECRET-not-in-the-hub"


def raw_request(server, target: str, *, method: str = "GET", headers: dict | None = None,
                body: bytes = b"", close: bool = True) -> tuple[int, list[tuple[str, str]], bytes, bytes]:
    """One request sent as written (no client library to normalise ``..`` or encode the
    path); returns (status, header lines, body, the whole raw answer). Reads until the
    server closes the connection (``Connection: close``), 10 s at most per read."""
    host, port = server._httpd.server_address[:2]
    head = {"Host": f"{host}:{port}", **({"Connection": "close"} if close else {}), **(headers or {})}
    request = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request.encode("latin-1") + b"\r\n" + body)
        raw = b""
        while chunk := s.recv(1 << 16):
            raw += chunk
    assert raw, f"no answer to {method} {target}"
    head_block, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_block.decode("latin-1").split("\r\n")
    fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    return int(lines[0].split()[1]), fields, payload, raw


@pytest.fixture
def hostile(tmp_path):
    """A hub whose repositories reach outside it, and a server over it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "config.json").write_bytes(SECRET)
    (outside / "README.md").write_bytes(SECRET)
    hub, datasets = tmp_path / "hub", tmp_path / "datasets"
    m = write_model(hub, "org/m", config=TINY_VIT)
    (m / "passwd_link").symlink_to(outside / "secret.txt")            # a file outside
    (m / "inside_link.json").symlink_to(m / "config.json")            # inside: still served
    (m / "dangling").symlink_to(tmp_path / "nowhere")                 # left out, not an error
    (m / "sub").mkdir()
    (m / "sub" / "up").symlink_to(outside, target_is_directory=True)  # a folder outside
    (hub / "org" / "evil").symlink_to(outside, target_is_directory=True)  # a whole repository
    d = datasets / "d"
    (d / "data").mkdir(parents=True)
    (d / "README.md").write_text("---\ntags:\n- x\n---\n")
    (d / "data" / "leak.parquet").symlink_to(outside / "secret.txt")
    with HubServer(models_dir=hub, datasets_dir=datasets) as server:
        yield {"server": server, "outside": outside, "hub": hub, "m": m}


def test_files_and_repositories_reached_through_links_outside_the_root_are_never_served(hostile):
    server = hostile["server"]
    answers = {}
    for method, target in [
        ("GET", "/org/m/resolve/main/passwd_link"), ("HEAD", "/org/m/resolve/main/passwd_link"),
        ("GET", "/org/m/resolve/main/sub/up/secret.txt"), ("GET", "/api/models/org/m"),
        ("GET", "/api/models/org/m/tree/main?recursive=true"), ("GET", "/api/models/org/m/tree/main/sub"),
        ("GET", "/api/models?full=true"), ("GET", "/api/models/org/evil"),
        ("GET", "/org/evil/resolve/main/secret.txt"), ("GET", "/org/evil/resolve/main/config.json"),
        ("GET", "/api/models/org/evil/tree/main"), ("GET", "/datasets/local/d/resolve/main/data/leak.parquet"),
        ("GET", "/api/datasets/local/d/tree/main/data"), ("GET", "/api/datasets?full=true"),
    ]:
        answers[method, target] = raw_request(server, target, method=method)
    for (method, target), (_, _, _, raw) in answers.items():
        assert SECRET not in raw, (method, target)
    for target in ("/org/m/resolve/main/passwd_link", "/org/m/resolve/main/sub/up/secret.txt",
                   "/datasets/local/d/resolve/main/data/leak.parquet"):
        assert answers["GET", target][0] == 404, target
    assert answers["HEAD", "/org/m/resolve/main/passwd_link"][0] == 404
    for target in ("/api/models/org/evil", "/org/evil/resolve/main/config.json", "/api/models/org/evil/tree/main"):
        assert answers["GET", target][0] == 404, target
    siblings = {s["rfilename"] for s in json.loads(answers["GET", "/api/models/org/m"][2])["siblings"]}
    assert "passwd_link" not in siblings and "dangling" not in siblings and "inside_link.json" in siblings
    tree = {e["path"] for e in json.loads(answers["GET", "/api/models/org/m/tree/main?recursive=true"][2])}
    assert "passwd_link" not in tree and not any(p.startswith("sub/up") for p in tree)
    assert {r["id"] for r in json.loads(answers["GET", "/api/models?full=true"][2])} == {"org/m"}
    assert answers["GET", "/api/datasets/local/d/tree/main/data"][0] == 404  # the folder holds nothing served
    # a link that stays inside the root is served
    status, _, body, _ = raw_request(server, "/org/m/resolve/main/inside_link.json")
    assert status == 200 and body == (hostile["m"] / "config.json").read_bytes()
    # paths-info does not describe what it would not serve
    status, _, body, _ = raw_request(server, "/api/models/org/m/paths-info/main", method="POST",
                                     headers={"Content-Type": "application/json", "Content-Length": "37"},
                                     body=b'{"paths": ["passwd_link", "sub/up"]} ')
    assert status == 200 and json.loads(body) == []


@pytest.mark.parametrize("target", [
    "/org/m/resolve/main/../../outside/secret.txt",          # as sent, not normalised
    "/org/m/resolve/main/%2e%2e/%2e%2e/outside/secret.txt",
    "/org/m/resolve/main/..%2F..%2Foutside%2Fsecret.txt",
    "/org/m/resolve/main/..%5C..%5Coutside%5Csecret.txt",    # backslashes
    "/org/m/resolve/main/config.json%00.txt",                # NUL
    "/%2Fetc/resolve/main/hostname",                         # an absolute repository id
    "/api/models/%2Fetc",
    "/api/models/%2Fetc/tree/main",
    "/api/models/org/m/tree/main/..%2F..%2Foutside",
    "/api/models/org/m/revision/..%2F..",
    "/api/models/org%2F..%2F..%2Foutside",
    "/datasets/local/d/resolve/main/%2e%2e%2f%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    "/api/datasets/local/%2e%2e",
])
def test_dot_dot_absolute_backslash_and_nul_paths_are_refused_in_every_route(hostile, target):
    status, fields, body, raw = raw_request(hostile["server"], target)
    assert status == 400, (status, body)
    assert "Invalid path component" in json.loads(body)["error"]
    assert SECRET not in raw


def test_request_paths_echoed_in_headers_cannot_add_headers_or_break_the_reply(hub_server):
    status, fields, body, raw = raw_request(
        hub_server, "/org/tiny-vit/resolve/main/x%0d%0aSet-Cookie:%20session=evil%0d%0aX-Evil:%201")
    assert status == 404
    names = [name.lower() for name, *_ in fields]
    assert "set-cookie" not in names and "x-evil" not in names
    message = dict((k, v) for k, v in fields)["X-Error-Message"]
    assert "Set-Cookie: session=evil" in message and "\\r\\n" in message  # escaped, on one line
    # a character outside Latin-1 in a missing path: a complete, readable 404
    status, fields, body, _ = raw_request(hub_server, "/org/tiny-vit/resolve/main/%E2%82%AC%C3%A9.bin")
    assert status == 404 and json.loads(body) == {"error": "Entry not found: \u20ac\u00e9.bin"}
    assert dict(fields)["X-Error-Message"] == "Entry not found: \\u20ac\\xe9.bin"
    assert all(v.isascii() and v.isprintable() for _, v in fields)


@pytest.mark.parametrize("case", ["downloads", "trendingScore", "sha", "granted", "deep-config",
                                  "card-date", "deep-card", "safetensors-header"])
def test_one_malformed_repository_does_not_break_the_listing(tmp_path, caplog, case):
    write_model(tmp_path, "org/good", config=TINY_VIT)
    bad = write_model(tmp_path, "org/bad", config=TINY_VIT)
    hub_json = {"downloads": {"downloads": "many"}, "trendingScore": {"trendingScore": "hot"},
                "sha": {"sha": "abc\r\nSet-Cookie: x=y"}, "granted": {"granted": "good-token"}}
    if case in hub_json:
        (bad / ".hub.json").write_text(json.dumps(hub_json[case]))
    elif case == "deep-config":
        (bad / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif case == "card-date":
        (bad / "README.md").write_text("---\npipeline_tag: image-classification\ndate: 2024-01-31\n---\n")
    elif case == "deep-card":
        (bad / "README.md").write_text("---\npipeline_tag: image-classification\nx: " + "[" * 5000
                                       + "]" * 5000 + "\n---\n")
    else:  # a header whose shapes are not lists of integers
        header = json.dumps({"w": {"dtype": ["F32"], "shape": "abc", "data_offsets": [0, 0]}}).encode()
        (bad / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with HubServer(models_dir=tmp_path) as server, caplog.at_level("WARNING"):
        status, fields, body, raw = raw_request(server, "/api/models?full=true&sort=trendingScore")
        assert status == 200, body
        listed = {r["id"]: r for r in json.loads(body)}
        assert "org/good" in listed and b"Set-Cookie" not in raw
        if case in hub_json:  # unreadable metadata: skipped, with a warning naming the file
            assert "org/bad" not in listed
            assert any("org/bad" in r.getMessage() and ".hub.json" in r.getMessage() for r in caplog.records)
            status, fields, body, raw = raw_request(server, "/api/models/org/bad")
            assert status == 404 and dict(fields)["X-Error-Code"] == "RepoNotFound"
            assert str(tmp_path) not in body.decode()  # the server's paths stay in its log
        elif case == "deep-config":  # described without its config, still served as is
            assert "config" not in listed["org/bad"]
            assert raw_request(server, "/org/bad/resolve/main/config.json")[0] == 200
        elif case == "card-date":
            assert listed["org/bad"]["cardData"]["date"] == "2024-01-31"
        elif case == "deep-card":
            assert "cardData" not in listed["org/bad"] and listed["org/bad"]["pipeline_tag"] is None
        else:
            assert "safetensors" not in listed["org/bad"] and "safetensors" in listed["org/good"]


def test_card_metadata_is_bounded_as_if_expanded():
    from fennec.hub.repo_store import front_matter

    # a YAML alias bomb: ten levels of nine references, 9**10 values once expanded
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    kept = front_matter("---\n" + "\n".join(lines) + "\npipeline_tag: x\n---\n") != {}
    assert not kept  # (a bool: pytest would print the whole expansion on failure)
    assert front_matter("---\nwhen: 2024-01-31\n---\n") == {"when": "2024-01-31"}


def test_fifos_and_devices_are_not_served_and_do_not_hang_the_server(tmp_path):
    m = write_model(tmp_path, "org/m", config=TINY_VIT)
    os.mkfifo(m / "fifo.bin")                                  # an open() would wait for a writer
    (m / "zero.safetensors").symlink_to("/dev/zero")           # endless
    (tmp_path / "org" / "m" / ".hub.json").symlink_to("/dev/zero")
    write_model(tmp_path, "org/n", config=TINY_VIT)
    (tmp_path / "org" / "n" / "README.md").unlink()
    (tmp_path / "org" / "n" / "README.md").symlink_to("/dev/zero")
    with HubServer(models_dir=tmp_path) as server:
        status, _, body, _ = raw_request(server, "/api/models?full=true")
        assert status == 200
        listed = {r["id"]: r for r in json.loads(body)}
        assert set(listed) == {"org/n"}  # org/m's .hub.json cannot be read: skipped
        assert "README.md" not in {s["rfilename"] for s in listed["org/n"]["siblings"]}
        (tmp_path / "org" / "m" / ".hub.json").unlink()
        status, _, body, _ = raw_request(server, "/api/models/org/m")
        assert status == 200
        assert {s["rfilename"] for s in json.loads(body)["siblings"]}.isdisjoint({"fifo.bin", "zero.safetensors"})
        for name in ("fifo.bin", "zero.safetensors"):
            assert raw_request(server, f"/org/m/resolve/main/{name}")[0] == 404


def test_large_files_are_streamed_and_metadata_reads_are_bounded(tmp_path):
    import tracemalloc

    size = 64 << 20
    m = write_model(tmp_path, "org/m", config=TINY_VIT)
    with open(m / "README.md", "r+b") as f:  # sparse: costs no disk
        f.truncate(size)
    with open(m / "big.bin", "wb") as f:
        f.truncate(size)
    with HubServer(models_dir=tmp_path) as server:
        tracemalloc.start()
        try:  # the store reads the repository (hashes, card, config) on the first request
            assert raw_request(server, "/api/models?full=true")[0] == 200
            host, port = server._httpd.server_address[:2]
            conn = HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/org/m/resolve/main/big.bin")
            response, received = conn.getresponse(), 0
            assert response.status == 200 and response.getheader("Content-Length") == str(size)
            while chunk := response.read(1 << 16):
                received += len(chunk)
            conn.close()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert received == size
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB held at once for 64 MiB files"


def test_request_bodies_are_bounded_and_never_read_as_the_next_request(hub_server):
    target = "/api/models/org/tiny-vit/paths-info/main"
    status, _, body, _ = raw_request(hub_server, target, method="POST",
                                     headers={"Content-Length": str(10**12)})
    assert status == 413 and "at most" in json.loads(body)["error"]
    for length in ("-1", "many"):
        assert raw_request(hub_server, target, method="POST", headers={"Content-Length": length})[0] == 400
    assert raw_request(hub_server, target, method="POST", headers={"Content-Type": "application/json",
                                                                   "Content-Length": "2"}, body=b"[]")[0] == 400
    # a body the route does not read is not taken for a second request on the connection
    smuggled = b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    _, _, _, raw = raw_request(hub_server, "/api/models", method="POST", close=False,
                               headers={"Content-Length": str(len(smuggled))}, body=smuggled)
    assert raw.count(b"HTTP/1.1 ") == 1 and raw.startswith(b"HTTP/1.1 405")


def test_the_server_binds_loopback_unless_remote_is_allowed(tmp_path, caplog):
    from fennec.hub.server import is_loopback

    write_model(tmp_path, "org/m", config=TINY_VIT)
    with HubServer(models_dir=tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("")
    with pytest.raises(InvalidInputError, match="allow_remote=True"):
        HubServer(models_dir=tmp_path, host="0.0.0.0")
    with caplog.at_level("WARNING"), HubServer(models_dir=tmp_path, host="0.0.0.0",
                                               allow_remote=True) as server:
        assert server._httpd.server_address[0] == "0.0.0.0"
    assert any("plain HTTP" in r.getMessage() for r in caplog.records)
    # the command line refuses it before listening (it would serve forever otherwise)
    proc = subprocess.run([sys.executable, "-m", "fennec.hub.server", "--models", str(tmp_path),
                           "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True,
                          timeout=60, cwd=str(Path(__file__).resolve().parents[1]))
    assert proc.returncode == 2 and "--allow-remote" in proc.stderr
