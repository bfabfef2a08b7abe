"""archi2vec.build: every kind of source, and every way building can fail."""

from __future__ import annotations

import json

import pytest
import torch

import archi2vec
from archi2vec import RemoteCodeRefusedError, UnsupportedArchitectureError
from archi2vec._compat import timm_available

TINY_VIT = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
            "patch_size": 8, "num_labels": 5}

needs_timm = pytest.mark.skipif(not timm_available(), reason="timm is not installed")


def _on_meta(model: torch.nn.Module) -> bool:
    return all(p.device.type == "meta" for p in model.parameters())


def test_build_from_config_dict():
    model = archi2vec.build(TINY_VIT)
    assert type(model).__name__ == "ViTForImageClassification"
    assert _on_meta(model) and not model.training
    assert model.config.num_labels == 5


def test_build_from_config_object():
    from transformers import ConvNextConfig

    cfg = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], image_size=32)
    model = archi2vec.build(cfg)
    assert type(model).__name__ == "ConvNextForImageClassification"
    assert _on_meta(model)


def test_build_from_config_json_file_and_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_VIT))
    for source in (tmp_path / "config.json", tmp_path, str(tmp_path)):
        model = archi2vec.build(source)
        assert type(model).__name__ == "ViTForImageClassification" and _on_meta(model)


def test_build_module_passthrough():
    module = torch.nn.Conv2d(3, 4, 3)
    assert archi2vec.build(module) is module


@needs_timm
def test_build_timm_name_with_and_without_tag():
    for name in ("test_resnet", "test_resnet.r160_in1k"):
        model = archi2vec.build(name)
        assert type(model).__name__ == "ResNet" and _on_meta(model)
    assert type(archi2vec.build("test_vit", library="timm")).__name__ == "VisionTransformer"


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch):
    """A Hub cache holding two repos' config.json, with the Hub switched off."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def add(repo_id: str, config: dict) -> None:
        folder = cache / f"models--{repo_id.replace('/', '--')}"
        sha = "0" * 40
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(sha)
        snap = folder / "snapshots" / sha
        snap.mkdir(parents=True)
        (snap / "config.json").write_text(json.dumps(config))

    return add


def test_build_from_hub_id_reads_only_config_json(offline_hub_cache):
    offline_hub_cache("someone/tiny-vit", {**TINY_VIT, "architectures": ["ViTForImageClassification"]})
    model = archi2vec.build("someone/tiny-vit")
    assert type(model).__name__ == "ViTForImageClassification" and _on_meta(model)


@needs_timm
def test_build_timm_hub_id(offline_hub_cache):
    offline_hub_cache("timm/test_resnet.r160_in1k",
                      {"architecture": "test_resnet", "num_classes": 7, "num_features": 64})
    model = archi2vec.build("timm/test_resnet.r160_in1k")
    assert type(model).__name__ == "ResNet" and model.num_classes == 7


def test_hub_id_not_cached_offline(offline_hub_cache):
    with pytest.raises(UnsupportedArchitectureError) as info:
        archi2vec.build("nobody/does-not-exist")
    assert info.value.model_id == "nobody/does-not-exist"
    assert "config.json" in info.value.reason


def test_unknown_name():
    with pytest.raises(UnsupportedArchitectureError) as info:
        archi2vec.build("definitely_not_a_model_xyz")
    assert info.value.model_id == "definitely_not_a_model_xyz"
    assert isinstance(info.value, ValueError)


@needs_timm
def test_unknown_timm_name_when_forced():
    with pytest.raises(UnsupportedArchitectureError, match="registry"):
        archi2vec.build("not_a_timm_model", library="timm")


def test_unknown_model_type():
    with pytest.raises(UnsupportedArchitectureError, match="model_type"):
        archi2vec.build({"model_type": "no_such_type_42"})


def test_config_without_type():
    with pytest.raises(UnsupportedArchitectureError, match="model_type"):
        archi2vec.build({"hidden_size": 3})


def test_unreadable_config_file(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(UnsupportedArchitectureError, match="cannot read config"):
        archi2vec.build(bad)


def test_constructor_failure_is_unsupported():
    with pytest.raises(UnsupportedArchitectureError, match="cannot construct"):
        archi2vec.build({"model_type": "convnext", "depths": [1, 1, 1, 1],
                         "hidden_sizes": [8, 16]})


def test_bad_library_and_source_type():
    with pytest.raises(archi2vec.InvalidArgumentError, match="library must be one of .*got 'keras'"):
        archi2vec.build("resnet50", library="keras")
    with pytest.raises(UnsupportedArchitectureError, match="cannot build from"):
        archi2vec.build(3.5)


def test_remote_code_refused_unless_opted_in(tmp_path):
    config = {**TINY_VIT, "auto_map": {"AutoModelForImageClassification": "modeling.MyViT"}}
    with pytest.raises(RemoteCodeRefusedError) as info:
        archi2vec.build(config)
    assert "auto_map" in info.value.reason and "trust_remote_code" in info.value.reason
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RemoteCodeRefusedError):
        archi2vec.build(tmp_path)
    # opting in passes the check; the code itself is not available offline, so building
    # then fails for that reason instead
    with pytest.raises(UnsupportedArchitectureError) as info:
        archi2vec.build(config, trust_remote_code=True)
    assert not isinstance(info.value, RemoteCodeRefusedError)


def test_meta_parameter_fallback_for_init_that_computes():
    from archi2vec.build import _on_meta as on_meta

    class NeedsValues(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = float(torch.linspace(0, 1, 3)[1].item())  # fails on meta
            self.lin = torch.nn.Linear(4, 4)

    model = on_meta(NeedsValues, "needs-values")
    assert model.scale == 0.5 and _on_meta(model)


def test_config_saved_in_half_precision_builds_and_embeds_in_float32():
    # Hub configs of fp16 checkpoints say dtype float16; the architecture is what matters.
    cfg = {**TINY_VIT, "dtype": "float16"}
    model = archi2vec.build(cfg)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    vector = archi2vec.embed(cfg, method="record")
    assert vector.shape == (256,)
    assert archi2vec.similarity(vector, archi2vec.embed(TINY_VIT, method="record")) > 0.999


def test_the_old_error_name_still_works_with_a_deprecation_warning():
    """``UnsupportedModelError`` was renamed ``UnsupportedArchitectureError`` (it collided with
    fennec's): the old name is the same class, for one release, and says what to use."""
    import archi2vec.errors

    for module in (archi2vec, archi2vec.errors):
        with pytest.warns(DeprecationWarning, match="use archi2vec.UnsupportedArchitectureError"):
            old = module.UnsupportedModelError
        assert old is UnsupportedArchitectureError
    with pytest.warns(DeprecationWarning):
        from archi2vec.errors import UnsupportedModelError  # noqa: F401 - the import warns
    with pytest.raises(AttributeError, match="module 'archi2vec' has no attribute 'NoSuchError'"):
        archi2vec.NoSuchError  # noqa: B018 - the lookup is the test
    assert "UnsupportedModelError" not in archi2vec.__all__ + archi2vec.errors.__all__
