"""A tiny embedded zoo for the recommend / bench tests: ``FENNEC_ZOO`` layout in a temp folder.

``hub/`` holds five tiny random-init transformers classifiers (ResNet and ViT) and the proxy
(at the real zoo's proxy id), ``datasets/`` four parquet tasks (three with ground truth, one
new), and ``ground_truth.json`` the fine-tuning table, with ResNets best on two tasks and ViTs
on the third.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fennec.task import OFFLINE_PROXY
from hub_server_fixtures import write_model, write_parquet_dataset

__all__ = ["MODELS", "TASKS", "TRUTH", "tiny_zoo"]

RESNET = {"model_type": "resnet", "architectures": ["ResNetForImageClassification"], "embedding_size": 8,
          "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic", "num_labels": 4, "image_size": 32}
VIT = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 16,
       "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "image_size": 32,
       "patch_size": 8, "num_labels": 4}
MODELS = {"lab/resnet-a": (RESNET, 1), "lab/resnet-b": (RESNET, 2), "lab/resnet-c": (RESNET, 5),
          "lab/vit-a": (VIT, 3), "lab/vit-b": (VIT, 4)}
TASKS = ("t-one", "t-two", "t-three")
# resnets win t-one and t-two, vits win t-three
TRUTH = {"t-one": {"lab/resnet-a": 0.9, "lab/resnet-b": 0.8, "lab/resnet-c": 0.7, "lab/vit-a": 0.5,
                   "lab/vit-b": 0.4},
         "t-two": {"lab/resnet-a": 0.85, "lab/resnet-b": 0.9, "lab/resnet-c": 0.75, "lab/vit-a": 0.45,
                   "lab/vit-b": 0.5},
         "t-three": {"lab/resnet-a": 0.3, "lab/resnet-b": 0.35, "lab/resnet-c": 0.4, "lab/vit-a": 0.8,
                     "lab/vit-b": 0.7}}


def _save(hub: Path, repo_id: str, config: dict, seed: int) -> None:
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.AutoConfig.for_model(**config)
    model = getattr(transformers, config["architectures"][0])(cfg)
    folder = write_model(hub, repo_id, config=config, weights=False)
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> Path:
    """The tiny zoo's root (module-scoped; set ``FENNEC_ZOO`` to it)."""
    root = tmp_path_factory.mktemp("tiny_zoo")
    for repo_id, (config, seed) in MODELS.items():
        _save(root / "hub", repo_id, config, seed)
    _save(root / "hub", OFFLINE_PROXY, RESNET, 0)
    for i, task in enumerate((*TASKS, "t-new")):
        write_parquet_dataset(root / "datasets", task, classes=("a", "b", "c"), sizes={"train": 12, "test": 6},
                              seed=i)
    (root / "ground_truth.json").write_text(json.dumps({"test_accuracy_seed0": TRUTH, "protocol": "test"}))
    return root


