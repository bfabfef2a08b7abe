"""End to end without the internet: ``fennec init --hub URL`` then ``fennec recommend``.

A local Hub (:class:`fennec.hub.server.HubServer`) holds stand-ins under the real ids:

- a dozen models of the shipped published history (TransferGraph's, mapped to their Hub ids
  by :mod:`fennec.published`), each a config of its real architecture shrunk to a few
  channels (no weights: ``--no-refine`` needs none), plus three models without history
  (cold start) that are the hub's most downloaded image classifiers;
- the CPU proxy, ``facebook/dinov2-small``, as a tiny random-weight DINOv2;
- two mapped published tasks' datasets under their mapped Hub ids, in parquet with the
  mapped label column and config, drawn to look different (warm coloured noise vs. grey
  bars).

``fennec init`` must index those models, import the shipped history, describe the two tasks
from the hub and fit; ``fennec recommend`` must rank those Hub ids, name published tasks as
evidence, and place datasets that resemble different tasks differently (not at the mean),
which is what makes their rankings differ.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from fennec.cli import main
from fennec.hub.server import HubServer
from hub_server_fixtures import write_model

# Twelve TransferGraph models (their names are Hub ids) of seven architectures, with results
# on both tasks below; shrunk configs keep each one's family, relative size and label count.
_VIT = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "image_size": 32, "patch_size": 8,
        "num_channels": 3, "num_hidden_layers": 2, "intermediate_size": 64}
_SWIN = {"model_type": "swin", "architectures": ["SwinForImageClassification"], "image_size": 32, "patch_size": 4,
         "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2], "window_size": 2}
_CONVNEXT = {"model_type": "convnext", "architectures": ["ConvNextForImageClassification"], "num_stages": 2,
             "hidden_sizes": [8, 16], "depths": [1, 1]}
STAND_INS = {
    "google/vit-base-patch16-224": ({**_VIT, "hidden_size": 32, "num_attention_heads": 4}, 1000),
    "facebook/deit-small-patch16-224": ({**_VIT, "hidden_size": 24, "num_attention_heads": 3}, 1000),
    "facebook/deit-tiny-distilled-patch16-224": (
        {**_VIT, "model_type": "deit", "architectures": ["DeiTForImageClassificationWithTeacher"],
         "hidden_size": 16, "num_attention_heads": 2}, 1000),
    "nateraw/vit-base-beans": ({**_VIT, "hidden_size": 32, "num_attention_heads": 4}, 3),
    "nateraw/vit-age-classifier": ({**_VIT, "hidden_size": 32, "num_attention_heads": 4}, 9),
    "microsoft/beit-base-patch16-224": (
        {**_VIT, "model_type": "beit", "architectures": ["BeitForImageClassification"], "hidden_size": 32,
         "num_attention_heads": 4, "use_relative_position_bias": True}, 1000),
    "mrm8488/data2vec-base-finetuned-imagenet1k": (
        {**_VIT, "model_type": "data2vec-vision", "architectures": ["Data2VecVisionForImageClassification"],
         "hidden_size": 32, "num_attention_heads": 4}, 1000),
    "facebook/convnext-base-224": (_CONVNEXT, 1000),
    "facebook/convnext-base-224-22k-1k": ({**_CONVNEXT, "hidden_sizes": [8, 24]}, 1000),
    "microsoft/resnet-50": ({"model_type": "resnet", "architectures": ["ResNetForImageClassification"],
                             "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
                             "layer_type": "bottleneck"}, 1000),
    "Matthijs/snacks-classifier": (_SWIN, 20),
    "Ahmed9275/ALL-3": ({**_SWIN, "embed_dim": 12}, 1000),
}
COLD = {  # no published history: the hub's three most downloaded image classifiers
    "newlab/vit-newcomer": ({**_VIT, "hidden_size": 24, "num_attention_heads": 4}, 5),
    "newlab/convnext-newcomer": ({**_CONVNEXT, "hidden_sizes": [16, 32]}, 7),
    "newlab/swin-newcomer": ({**_SWIN, "embed_dim": 16}, 4),
}
PROXY = "facebook/dinov2-small"
# Two confirmed published tasks whose results rank the twelve differently (Spearman 0.65).
TASK_A, TASK_B = "cifar100", "eurosat"


def _labels(n: int) -> dict:
    return {"id2label": {str(i): f"class_{i}" for i in range(n)},
            "label2id": {f"class_{i}": i for i in range(n)}}


def _write_proxy(root: Path) -> None:
    import torch

    from archi2vec._compat import import_transformers

    transformers = import_transformers()
    config = {"architectures": ["Dinov2Model"], "model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 4, "mlp_ratio": 2, "image_size": 28, "patch_size": 7, "num_channels": 3,
              "layerscale_value": 1.0, "use_swiglu_ffn": False, "qkv_bias": True}
    torch.manual_seed(0)
    folder = root / PROXY
    transformers.Dinov2Model(transformers.Dinov2Config(**config)).save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "BitImageProcessor", "do_resize": True, "size": {"shortest_edge": 32},
        "do_center_crop": True, "crop_size": {"height": 28, "width": 28}, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "do_rescale": True,
        "rescale_factor": 1 / 255, "resample": 3}))
    (folder / "README.md").write_text("---\npipeline_tag: image-feature-extraction\nlibrary_name: transformers\n---\n")


def _images(style: str, n_classes: int, per_class: int, seed: int) -> tuple[list[bytes], list[int]]:
    """PNG images of two looks: ``warm`` (reddish colour noise, one hue per class) or ``bars``
    (grey horizontal bars, one frequency per class)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out, labels = [], []
    for c in range(n_classes):
        for _ in range(per_class):
            if style == "warm":
                base = np.array([200, 60 + 25 * c, 40], dtype=np.float64)
                arr = base + rng.normal(0, 30, size=(32, 32, 3))
            else:
                rows = 0.5 + 0.5 * np.sin(np.arange(32) * (0.3 + 0.25 * c) + rng.uniform(0, 6))
                arr = np.repeat((rows[:, None, None] * 200 + 20), 32, axis=1).repeat(3, axis=2)
                arr = arr + rng.normal(0, 10, size=(32, 32, 3))
            buf = io.BytesIO()
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format="PNG")
            out.append(buf.getvalue())
            labels.append(c)
    return out, labels


def _write_parquet(path: Path, style: str, *, label_column: str, n_classes: int, per_class: int, seed: int,
                   image_column: str = "image") -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    images, labels = _images(style, n_classes, per_class, seed)
    features = {image_column: {"_type": "Image"},
                label_column: {"_type": "ClassLabel", "names": [f"c{i}" for i in range(n_classes)]}}
    table = pa.table({image_column: pa.array([{"bytes": b, "path": None} for b in images],
                                             type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      label_column: pa.array(labels, type=pa.int64())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})}),
                   path)


def _write_task(datasets: Path, data, style: str, seed: int) -> None:
    """A mapped task's stand-in under its Hub id, in the Hub's parquet layout for its config."""
    repo = datasets / data.dataset.removeprefix("hub:")
    split = data.split or "train"
    folder = repo / data.config if data.config else repo / "data"
    _write_parquet(folder / f"{split}-00000-of-00001.parquet", style, label_column=data.label_column or "label",
                   image_column=data.image_column or "image", n_classes=6, per_class=8, seed=seed)
    (repo / "README.md").write_text("---\ntask_categories:\n- image-classification\n---\n")


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """The stand-in Hub, served; huggingface_hub allowed to talk to it (and only to it)."""
    from fennec.workspace.hub_init import published_scope

    scope = published_scope()
    mapped = set(scope.hub_ids)
    missing = [m for m in STAND_INS if m not in mapped]
    assert not missing, f"no longer mapped by fennec.published: {missing}"
    for task in (TASK_A, TASK_B):
        assert task in scope.tasks, f"{task} is no longer a mapped published task"
    models, datasets = tmp_path / "hub", tmp_path / "datasets"
    for i, (repo_id, (config, n_labels)) in enumerate(sorted(STAND_INS.items())):
        write_model(models, repo_id, config={**config, **_labels(n_labels)}, weights=False, preprocessor=False,
                    extra={"downloads": 100 + i})
    for i, (repo_id, (config, n_labels)) in enumerate(sorted(COLD.items())):
        write_model(models, repo_id, config={**config, **_labels(n_labels)}, weights=False, preprocessor=False,
                    extra={"downloads": 10_000 + i})
    _write_proxy(models)
    _write_task(datasets, scope.tasks[TASK_A], "warm", seed=1)
    _write_task(datasets, scope.tasks[TASK_B], "bars", seed=2)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)  # the hub is named by --hub, nothing else
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with HubServer(models_dir=models, datasets_dir=datasets) as server:
        yield {"url": server.url, "scope": scope, "tmp": tmp_path}


def _recommend(dataset: str, home: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["recommend", dataset, "--home", str(home), "--no-refine", "--top-k", "20", "--json",
                 "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


def test_init_then_recommend_is_task_aware(local_hub, capsys):
    from fennec import published
    from fennec.workspace import Workspace

    home = local_hub["tmp"] / "workspace"
    url = local_hub["url"]
    assert main(["init", "--hub", url, "--home", str(home), "--top", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    # the plan and its estimate come first, the command that recommends last
    assert out[0].startswith("fennec init: a workspace in") and url in out[0]
    assert any(line.startswith("estimated total:") for line in out[:8])
    assert f"fennec recommend DATASET --home {home}" in out[-1]

    ws = Workspace.load(home)
    manifest = ws.manifest
    assert manifest["hub"] == url and manifest["proxy"] == PROXY
    assert set(ws.index.ids) == set(STAND_INS) | set(COLD)   # every stand-in indexed, the proxy excluded
    described = {t for t, info in manifest["tasks"].items() if info["described"]}
    sources = {info["source"] for info in manifest["tasks"].values()}
    assert sources <= {s.source_id for s in published.sources()}   # the shipped history, by its sources
    assert {t.rsplit("/", 1)[1] for t in described} == {TASK_A, TASK_B}
    task_a = next(t for t in described if t.endswith(f"/{TASK_A}"))
    task_b = next(t for t in described if t.endswith(f"/{TASK_B}"))

    # the stand-in dataset itself, read from the workspace's hub: its published task is the evidence
    hub_a = _recommend(local_hub["scope"].tasks[TASK_A].dataset.removeprefix("hub:"), home, capsys)
    assert {r["model_id"] for r in hub_a["recommendations"]} == set(STAND_INS) | set(COLD)
    assert hub_a["closest_tasks"][0]["task_id"] == task_a
    assert hub_a["same_task"] == task_a

    # new datasets that resemble each task (same look, other images and classes)
    rankings, placements = {}, {}
    for name, style, task in (("like-a", "warm", task_a), ("like-b", "bars", task_b)):
        folder = local_hub["tmp"] / name
        _write_parquet(folder / "train.parquet", style, label_column="label", n_classes=4, per_class=10, seed=7)
        recs = _recommend(str(folder), home, capsys)
        assert recs["same_task"] is None, "a new dataset must not count as the known task itself"
        assert recs["closest_tasks"][0]["task_id"] == task
        placement = recs["placement"]
        assert placement["predictor"] in ("knn", "ridge"), placement       # task-aware, not the mean
        assert placement["weights"][0][0] == task
        ids = [r["model_id"] for r in recs["recommendations"]]
        assert set(ids) == set(STAND_INS) | set(COLD)
        # the ranking is the one its placement implies: models by u_m . (sum_t w_t v_t)
        v = sum(w * ws.space.task_vector_of(t) for t, w in placement["weights"])
        v[-1] = 1.0
        implied = sorted(ws.index.ids, key=lambda m: (-float(ws.index.vector(m).astype(np.float64) @ v), m))
        assert ids == implied
        rankings[name], placements[name] = ids, placement["weights"]
    assert placements["like-a"] != placements["like-b"]
    assert rankings["like-a"] != rankings["like-b"]

    # resumable: a second init indexes nothing, imports nothing, describes nothing again
    assert main(["init", "--hub", url, "--home", str(home), "--top", "3"]) == 0
    captured = capsys.readouterr()
    assert "history: already imported, unchanged" in captured.out
    assert "reindex: added 0, updated 0, unsupported 0, failed 0" in captured.out, captured.out
    assert captured.err.count("cached descriptor") == 2, captured.err


def test_dry_run_prints_the_plan_and_writes_nothing(local_hub, capsys):
    home = local_hub["tmp"] / "dry"
    assert main(["init", "--hub", local_hub["url"], "--home", str(home), "--top", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "the 2 most-downloaded image classifiers" in out and "(dry run: nothing was done)" in out
    assert "facebook/dinov2-small on cpu" in out and "estimated total: ~" in out
    assert not home.exists()
    assert main(["init", "--hub", str(local_hub["tmp"] / "no-such-hub"), "--home", str(home)]) == 1
    assert "neither an http(s) URL nor an existing folder" in capsys.readouterr().err


def test_the_published_scope_uses_confirmed_mappings_unless_asked():
    from fennec import published
    from fennec.workspace.hub_init import published_scope

    scope = published_scope()
    wide = published_scope(include_unconfirmed=True)
    tg = published.task_mapping("transfergraph_hf_finetune")
    assert tg["svhn"].status == "unconfirmed" and "svhn" not in scope.tasks and "svhn" in wide.tasks
    assert set(scope.hub_ids) < set(wide.hub_ids) and scope.skipped_models.get("unmapped")
    cifar = scope.tasks["cifar100"]
    assert (cifar.dataset, cifar.label_column, cifar.image_column, cifar.split) == \
        ("hub:uoft-cs/cifar100", "fine_label", "img", "train")
    # only tables of fine-tuning / linear-probe accuracies: no metric scores, ranks or reports
    assert "transfergraph_metric_scores" not in scope.models and "modelspider_sampled_task_ranks" not in scope.models
