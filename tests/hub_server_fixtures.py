"""Tiny Hub-style repositories and a local Hub server, for the tests of fennec's Hub side.

Import the fixtures into a test module with ``from hub_server_fixtures import *``.

The zoo is written with numpy, safetensors and pyarrow only (no torch / transformers
import), in the layout the offline benchmark zoo uses::

    <zoo>/hub/<org>/<name>/{config.json, model.safetensors, preprocessor_config.json, README.md}
    <zoo>/datasets/<name>/{README.md, data/train-00000-of-00001.parquet, …}
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fennec.hub.server import HubServer

# ``from hub_server_fixtures import *`` brings the fixtures; helpers are imported by name
__all__ = ["hub_server", "online", "tiny_zoo"]

REPO_ROOT = Path(__file__).resolve().parents[1]

# a tiny ViT: hidden 32, 2 layers, 32x32 images in 8x8 patches, 3 classes
TINY_VIT = {
    "architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": 32,
    "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "image_size": 32, "patch_size": 8, "num_channels": 3,
    "id2label": {"0": "a", "1": "b", "2": "c"}, "label2id": {"a": 0, "b": 1, "c": 2},
}
TINY_RESNET = {
    "architectures": ["ResNetForImageClassification"], "model_type": "resnet",
    "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic",
    "num_labels": 2, "id2label": {"0": "x", "1": "y"}, "label2id": {"x": 0, "y": 1},
}
TINY_TIMM = {"architecture": "resnet18", "num_classes": 10, "num_features": 512,
             "pretrained_cfg": {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5],
                                "std": [0.5, 0.5, 0.5], "crop_pct": 1.0}}
PREPROCESSOR = {"image_processor_type": "ViTImageProcessor", "do_resize": True,
                "size": {"height": 32, "width": 32}, "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_rescale": True,
                "rescale_factor": 1 / 255, "resample": 2}


def write_model(root: Path, repo_id: str, *, config: Any, pipeline_tag: str = "image-classification",
                library: str = "transformers", extra: dict | None = None, weights: bool = True,
                preprocessor: bool = True, raw_config: str | None = None,
                tags: tuple[str, ...] = ()) -> Path:
    """Write one model repository; returns its folder."""
    from safetensors.numpy import save_file

    folder = root / repo_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(raw_config if raw_config is not None else json.dumps(config))
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    if weights:
        rng = np.random.default_rng(len(repo_id))
        save_file({"w": rng.normal(size=(4, 8)).astype(np.float32),
                   "b": np.zeros(4, dtype=np.float32)}, str(folder / "model.safetensors"))
    meta = [f"pipeline_tag: {pipeline_tag}", f"library_name: {library}", "datasets:",
            "- t-tiny", "tags:", "- fennec-zoo", *[f"- {t}" for t in tags]]
    (folder / "README.md").write_text("---\n" + "\n".join(meta) + f"\n---\n\n# {repo_id}\n")
    if extra is not None:
        (folder / ".hub.json").write_text(json.dumps(extra))
    return folder


def write_parquet_dataset(root: Path, name: str, *, classes=("cat", "dog", "fish"),
                          sizes=None, seed: int = 0) -> Path:
    """A parquet image-classification dataset with ``image`` (Image) and ``label`` (ClassLabel).

    The features are stored in the parquet schema metadata the way ``datasets`` writes them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    sizes = sizes or {"train": 9, "test": 6}
    rng = np.random.default_rng(seed)
    folder = root / name
    (folder / "data").mkdir(parents=True, exist_ok=True)
    features = {"image": {"_type": "Image"},
                "label": {"_type": "ClassLabel", "names": list(classes)}}
    for split, n in sizes.items():
        images, labels = [], []
        for i in range(n):
            arr = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            images.append({"bytes": buf.getvalue(), "path": None})
            labels.append(i % len(classes))
        table = pa.table({
            "image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "label": pa.array(labels, type=pa.int64()),
        })
        table = table.replace_schema_metadata(
            {"huggingface": json.dumps({"info": {"features": features}})})
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
    splits = "\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in sizes)
    (folder / "README.md").write_text(
        "---\ntask_categories:\n- image-classification\ntags:\n- fennec-zoo\nconfigs:\n"
        f"- config_name: default\n  data_files:\n{splits}\n---\n\n# {name}\n")
    return folder


def build_tiny_zoo(zoo: Path) -> dict[str, Any]:
    """The fixture zoo: which repositories exist and what each is for."""
    hub = zoo / "hub"
    t0 = 1_700_000_000  # 2023-11-14T22:13:20Z, one day apart
    day = 86_400
    write_model(hub, "org/tiny-vit", config=TINY_VIT,
                extra={"downloads": 50, "likes": 3, "createdAt": t0, "lastModified": t0 + 5 * day})
    write_model(hub, "org/tiny-resnet", config=TINY_RESNET,
                extra={"downloads": 500, "likes": 1, "createdAt": t0, "lastModified": t0 + 4 * day})
    write_model(hub, "timm/tiny-timm", config=TINY_TIMM, library="timm", preprocessor=False, weights=False,
                extra={"downloads": 20, "createdAt": t0, "lastModified": t0 + 3 * day})
    write_model(hub, "org/vit-features", config=TINY_VIT, pipeline_tag="image-feature-extraction",
                extra={"downloads": 10, "createdAt": t0, "lastModified": t0 + 2 * day})
    write_model(hub, "org/remote-code", config={**TINY_VIT, "model_type": "fennec_custom",
                                                "auto_map": {"AutoModel": "modeling.Custom"}},
                extra={"downloads": 5, "createdAt": t0, "lastModified": t0 + 1 * day})
    write_model(hub, "org/malformed", config=None, raw_config="{not json",
                extra={"downloads": 4, "createdAt": t0, "lastModified": t0 + 6 * day})
    write_model(hub, "org/gated-vit", config=TINY_VIT, extra={"gated": "auto", "granted": ["good-token"],
                                                              "createdAt": t0, "lastModified": t0 + 7 * day})
    write_model(hub, "org/private-vit", config=TINY_VIT, extra={"private": True, "createdAt": t0,
                                                                "lastModified": t0 + 8 * day})
    write_model(hub, "org/text-model", config={"model_type": "bert"}, pipeline_tag="fill-mask",
                extra={"createdAt": t0, "lastModified": t0 + 9 * day})
    write_parquet_dataset(zoo / "datasets", "t-tiny")
    return {"root": zoo, "hub": hub, "datasets": zoo / "datasets", "t0": t0, "day": day}


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> dict[str, Any]:
    """A tiny zoo, built once per test session (read-only for tests)."""
    return build_tiny_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def hub_server(tiny_zoo):
    """A started :class:`HubServer` over the tiny zoo; ``good-token`` and ``other-token`` valid."""
    with HubServer(models_dir=tiny_zoo["hub"], datasets_dir=tiny_zoo["datasets"],
                   tokens=("good-token", "other-token"), page_size=2) as server:
        yield server


@pytest.fixture
def online(monkeypatch, hub_server):
    """Let huggingface_hub talk to the local server: HF_HUB_OFFLINE=0, HF_ENDPOINT set.

    huggingface_hub reads HF_HUB_OFFLINE when it is imported, so its cached value is
    patched too.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    return hub_server


def run_python(code: str, *, env: dict[str, str], timeout: float = 240) -> dict:
    """Run ``code`` in a fresh interpreter (so HF_ENDPOINT is read at import); its last
    stdout line must be JSON, which is returned."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT))
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Makes torchvision importable (whichever build sits beside torch) before transformers imports it
# (archi2vec/_compat.py); pasted at the top of subprocess scripts.
TORCHVISION_COMPAT = """
from archi2vec._compat import ensure_torchvision_importable
ensure_torchvision_importable()
"""
