"""fennec.features: penultimate features, probabilities, preprocessing and the on-disk cache.

The models are tiny random-initialised transformers / timm models written as Hub-style
repositories into a temp folder (``build_feature_hub``, also used by test_refine.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fennec.errors import FeatureExtractionError, InvalidInputError, UnsupportedModelError
from fennec.features import (
    ExtractedFeatures,
    FeatureCache,
    extract_features,
    load_model,
    model_features,
    preprocess,
)
from fennec.hub import LocalHub
from fennec.hub.records import Preprocessing
from hub_server_fixtures import PREPROCESSOR, write_model

REPO_ROOT = Path(__file__).resolve().parents[1]

_VIT = {"model_type": "vit", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "image_size": 32, "patch_size": 8, "num_labels": 5}
_DEIT = {**_VIT, "model_type": "deit"}
_RESNET = {"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 12], "depths": [1, 1],
           "layer_type": "basic", "num_labels": 4}
_TIMM = {"architecture": "test_resnet", "num_classes": 6, "model_args": {},
         "pretrained_cfg": {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                            "crop_pct": 0.875, "interpolation": "bicubic"}}


@dataclasses.dataclass
class Sample:
    """A minimal ``SampleLike``."""

    images: list
    labels: np.ndarray
    fingerprint: str


def make_sample(n: int = 12, *, classes: int = 3, seed: int = 0, size=(32, 32)) -> Sample:
    """Random RGB images whose brightness depends on the class (so features carry the label)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % classes
    images = [Image.fromarray(np.clip(rng.normal(60 + 60 * y, 30, size=(*size, 3)), 0, 255).astype(np.uint8))
              for y in labels]
    return Sample(images, labels, f"test-sample-{n}-{classes}-{seed}-{size[0]}x{size[1]}")


def _save_transformers(root: Path, repo_id: str, cls_name: str, config: dict, *,
                       pipeline_tag: str = "image-classification", strip_prefix: str | None = None) -> None:
    import transformers

    torch.manual_seed(0)
    cfg_cls = transformers.AutoConfig.for_model(config["model_type"]).__class__
    model = getattr(transformers, cls_name)(cfg_cls(**{k: v for k, v in config.items() if k != "model_type"}))
    folder = write_model(root, repo_id, config=config, pipeline_tag=pipeline_tag, weights=False)
    if strip_prefix:  # save only the backbone of a classifier (a checkpoint without pooler weights)
        model = getattr(model, strip_prefix)
    model.save_pretrained(folder)


def build_feature_hub(root: Path) -> LocalHub:
    """org/tiny-vit, org/tiny-resnet, org/tiny-deit-teacher, org/vit-backbone (no pooler weights),
    org/vit-headless (a classifier without head weights), timm/tiny-timm (when timm is installed)."""
    _save_transformers(root, "org/tiny-vit", "ViTForImageClassification", _VIT)
    _save_transformers(root, "org/tiny-resnet", "ResNetForImageClassification", _RESNET)
    _save_transformers(root, "org/tiny-deit-teacher", "DeiTForImageClassificationWithTeacher", _DEIT)
    _save_transformers(root, "org/vit-backbone", "ViTForImageClassification", _VIT,
                       pipeline_tag="image-feature-extraction", strip_prefix="vit")
    # a classifier's config whose checkpoint lacks the head (transformers initialises it randomly)
    _save_transformers(root, "org/vit-headless", "ViTForImageClassification", _VIT, strip_prefix="vit")
    config = json.loads((root / "org/vit-headless/config.json").read_text())
    config["architectures"] = ["ViTForImageClassification"]
    (root / "org/vit-headless/config.json").write_text(json.dumps(config))
    try:
        import timm
    except ImportError:
        pass
    else:
        from safetensors.torch import save_file

        torch.manual_seed(0)
        model = timm.create_model(_TIMM["architecture"], pretrained=False, num_classes=_TIMM["num_classes"])
        folder = write_model(root, "timm/tiny-timm", config=_TIMM, library="timm", preprocessor=False,
                             weights=False)
        save_file(model.state_dict(), str(folder / "model.safetensors"))
    return LocalHub(root)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> LocalHub:
    return build_feature_hub(tmp_path_factory.mktemp("feature_hub"))


@pytest.fixture(scope="module")
def sample() -> Sample:
    return make_sample()


# ---------------------------------------------------------------------------------------
# Features are exactly the head's input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("repo_id, n_classes", [("org/tiny-vit", 5), ("org/tiny-resnet", 4)])
def test_classifier_features_are_the_head_input(hub, sample, repo_id, n_classes):
    files = hub.fetch(repo_id, weights=True)
    model = load_model(files, device="cpu")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    feats, probs = extract_features(model, sample.images, preprocessing=files.preprocessing())
    head = model.classifier
    dim = head.in_features if isinstance(head, torch.nn.Linear) else head[-1].in_features
    assert feats.shape == (len(sample.images), dim) and feats.dtype == np.float32
    assert probs.shape == (len(sample.images), n_classes) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the head applied to the captured features reproduces the model's own prediction
    with torch.no_grad():
        logits = head(torch.from_numpy(feats))
        direct = model(pixel_values=preprocess(sample.images, files.preprocessing())).logits
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), probs, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), direct.numpy(), atol=1e-5)


def test_deit_with_teacher_uses_the_class_token_head(hub, sample):
    files = hub.fetch("org/tiny-deit-teacher", weights=True)
    model = load_model(files)
    feats, probs = extract_features(files, sample.images, device="cpu")
    assert feats.shape == (len(sample.images), _DEIT["hidden_size"])
    with torch.no_grad():
        out = model(pixel_values=preprocess(sample.images, files.preprocessing()))
    np.testing.assert_allclose(model.cls_classifier(torch.from_numpy(feats)).detach().numpy(),
                               out.cls_logits.numpy(), atol=1e-5)
    # probabilities are the model's own prediction: the average of both heads
    np.testing.assert_allclose(probs, torch.softmax(out.logits, 1).numpy(), atol=1e-5)


def test_backbone_without_pooler_weights_uses_the_class_token(hub, sample):
    files = hub.fetch("org/vit-backbone", weights=True)
    model = load_model(files)
    assert type(model).__name__ == "ViTModel"
    feats, probs = extract_features(model, sample.images, preprocessing=files.preprocessing())
    assert probs is None
    with torch.no_grad():
        hidden = model(pixel_values=preprocess(sample.images, files.preprocessing())).last_hidden_state
    np.testing.assert_allclose(feats, hidden[:, 0].numpy(), atol=1e-6)


def test_a_checkpoint_without_head_weights_gives_no_probabilities(hub, sample, caplog):
    files = hub.fetch("org/vit-headless", weights=True)
    with caplog.at_level(logging.WARNING, logger="fennec.features"):
        feats, probs = extract_features(files, sample.images)
    assert probs is None and "no weights for the head 'classifier'" in caplog.text
    backbone = extract_features(hub.fetch("org/vit-backbone", weights=True), sample.images)[0]
    np.testing.assert_allclose(feats, backbone, atol=1e-5)  # the same CLS token the head would see


def test_timm_model_uses_pre_logits(hub, sample):
    pytest.importorskip("timm")
    files = hub.fetch("timm/tiny-timm", weights=True)
    assert files.preprocessing().std == (0.25, 0.25, 0.25)
    model = load_model(files)
    feats, probs = extract_features(files, sample.images)
    assert feats.shape == (len(sample.images), model.num_features)
    assert probs.shape == (len(sample.images), _TIMM["num_classes"])
    with torch.no_grad():
        logits = model.get_classifier()(torch.from_numpy(feats))
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), probs, atol=1e-5)


def test_batching_does_not_change_the_features(hub, sample):
    files = hub.fetch("org/tiny-resnet", weights=True)
    a, pa = extract_features(files, sample.images, batch_size=5)
    b, pb = extract_features(files, sample.images, batch_size=64, progress=True)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(pa, pb, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------


def test_preprocess_resizes_any_size_and_mode():
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (50, 37, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (20, 90), dtype=np.uint8)),  # grayscale
              Image.fromarray(rng.integers(0, 256, (9, 9, 4), dtype=np.uint8)),  # RGBA, upsampled
              rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)]  # a numpy array
    x = preprocess(images, Preprocessing(input_size=(3, 32, 32), crop_pct=0.875))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_preprocess_known_answers():
    pre = Preprocessing(input_size=(3, 32, 32), mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0),
                        interpolation="bilinear", crop_pct=1.0)
    flat = Image.new("RGB", (40, 70), (255, 51, 0))  # a constant image stays constant at any size
    x = preprocess([flat], pre)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), [(1 - .5) / .5, (.2 - .25) / .25, 0.0], atol=1e-6)
    assert float(x.std(dim=(2, 3)).max()) < 1e-6
    # a 64x32 image, left half black and right half white: the shorter side is already 32, so the
    # centre crop keeps columns 16..47, half black and half white
    arr = np.zeros((32, 64, 3), dtype=np.uint8)
    arr[:, 32:] = 255
    x = preprocess([Image.fromarray(arr)], Preprocessing(input_size=(3, 32, 32), mean=(0, 0, 0),
                                                         std=(1, 1, 1), crop_pct=1.0))
    assert torch.all(x[0, :, :, :16] == 0) and torch.all(x[0, :, :, 16:] == 1)


def test_preprocess_matches_the_transformers_image_processor():
    import transformers

    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    proc = transformers.ViTImageProcessor(**{k: v for k, v in PREPROCESSOR.items() if k != "image_processor_type"})
    expected = np.asarray(proc(images, return_tensors="np")["pixel_values"])
    pre = Preprocessing.from_configs({}, PREPROCESSOR)
    np.testing.assert_allclose(preprocess(images, pre).numpy(), expected, atol=1e-5)


# ---------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------


def test_cache_hit_returns_identical_arrays_without_forward_passes(hub, sample, tmp_path):
    first = model_features("org/tiny-vit", sample, hub=hub)  # default cache: FENNEC_HOME/features
    assert isinstance(first, ExtractedFeatures)
    assert not first.cached and first.forward_passes == len(sample.images)
    assert first.sha == hub.model_info("org/tiny-vit").sha
    default = FeatureCache(tmp_path / "fennec_home" / "features")
    assert default.path(first.sha, sample.fingerprint).is_file()
    second = model_features("org/tiny-vit", sample, hub=hub, cache=None)
    assert second.cached and second.forward_passes == 0
    np.testing.assert_array_equal(first.features, second.features)
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    # another sample is another key
    other = model_features("org/tiny-vit", make_sample(seed=1), hub=hub)
    assert not other.cached


def test_cache_round_trips_none_probabilities(tmp_path):
    cache = FeatureCache(tmp_path)
    feats = np.arange(6, dtype=np.float64).reshape(3, 2)
    cache.put("abc", "fp", feats, None)
    got, probs = cache.get("abc", "fp")
    assert probs is None and got.dtype == np.float32
    np.testing.assert_array_equal(got, feats)
    assert cache.get("abc", "other") is None and cache.get("zzz", "fp") is None
    # keys that are not file names are hashed; the key inside still guards the content
    path = cache.put("a/b c", "../fp", feats, np.full((3, 2), 0.5))
    assert path.parent.parent == tmp_path
    assert cache.get("a/b c", "../fp")[1].shape == (3, 2)


def test_cache_put_refuses_arrays_of_the_wrong_shape(tmp_path):
    cache = FeatureCache(tmp_path)
    with pytest.raises(InvalidInputError, match="features must be 2-D float32, got 1-D"):
        cache.put("abc", "fp", np.zeros(3), None)
    with pytest.raises(InvalidInputError, match="probabilities must be 2-D float32 with 3 rows"):
        cache.put("abc", "fp", np.zeros((3, 2)), np.zeros((2, 2)))
    assert not list(tmp_path.rglob("*.npz"))  # nothing written


def test_corrupt_or_mismatching_cache_file_is_ignored_and_rewritten(hub, sample, tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    first = model_features("org/tiny-resnet", sample, hub=hub, cache=cache)
    path = cache.path(first.sha, sample.fingerprint)
    path.write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="fennec.features"):
        again = model_features("org/tiny-resnet", sample, hub=hub, cache=cache)
    assert not again.cached and again.forward_passes == len(sample.images)
    assert "unusable feature cache file" in caplog.text
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)
    assert cache.get(first.sha, sample.fingerprint) is not None  # rewritten
    # a valid file holding another key, placed under this key's name, is not trusted either
    cache.put("another-sha", sample.fingerprint, first.features, first.probabilities)
    cache.path("another-sha", sample.fingerprint).replace(path)
    assert cache.get(first.sha, sample.fingerprint) is None
    assert not list(path.parent.glob("*.tmp"))


def test_a_cache_that_cannot_be_written_keeps_the_features(hub, sample, tmp_path, caplog, monkeypatch):
    cache = FeatureCache(tmp_path / "cache")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "put", full_disk)
    with caplog.at_level(logging.WARNING, logger="fennec.features"):
        out = model_features("org/tiny-resnet", sample, hub=hub, cache=cache)
    assert out.features.shape[0] == len(sample.images) and not out.cached
    assert "Could not cache the features of org/tiny-resnet" in caplog.text


def test_cache_false_writes_nothing(hub, sample, tmp_path):
    out = model_features("org/tiny-resnet", sample, hub=hub, cache=False)
    again = model_features("org/tiny-resnet", sample, hub=hub, cache=False)
    assert not out.cached and not again.cached and again.forward_passes == len(sample.images)
    assert not (tmp_path / "fennec_home" / "features").exists()
    with pytest.raises(InvalidInputError, match="cache must be"):
        model_features("org/tiny-resnet", sample, hub=hub, cache="yes")


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_bad_inputs_are_rejected(hub, sample):
    files = hub.fetch("org/tiny-resnet", weights=True)
    model = load_model(files)
    with pytest.raises(InvalidInputError, match="preprocessing"):
        extract_features(model, sample.images)
    with pytest.raises(InvalidInputError, match="batch_size"):
        extract_features(files, sample.images, batch_size=0)
    with pytest.raises(InvalidInputError, match="No images"):
        extract_features(files, [])
    with pytest.raises(InvalidInputError, match="PIL image"):
        extract_features(files, ["not an image"])
    with pytest.raises(InvalidInputError, match="3 images and 2 labels"):
        model_features("org/tiny-resnet", Sample(sample.images[:3], sample.labels[:2], "fp"), hub=hub)
    with pytest.raises(InvalidInputError, match="fingerprint"):
        model_features("org/tiny-resnet", Sample(sample.images, sample.labels, ""), hub=hub)


def test_unsupported_models_raise_a_clear_error(hub, tmp_path):
    text = write_model(tmp_path, "org/bert", config={"model_type": "bert", "vocab_size": 30, "hidden_size": 8,
                                                      "num_hidden_layers": 1, "num_attention_heads": 2,
                                                      "intermediate_size": 8},
                       pipeline_tag="image-feature-extraction", weights=False)
    import transformers

    transformers.BertModel(transformers.BertConfig(**json.loads((text / "config.json").read_text()))) \
        .save_pretrained(text)
    with pytest.raises(UnsupportedModelError, match="not images"):
        load_model(LocalHub(tmp_path).fetch("org/bert", weights=True))
    files = hub.fetch("org/tiny-resnet", weights=True)
    with pytest.raises(UnsupportedModelError, match="no weights"):
        load_model(hub.fetch("org/tiny-resnet"))
    unknown = dataclasses.replace(files, config={"foo": 1})
    with pytest.raises(UnsupportedModelError, match="neither 'model_type'"):
        load_model(unknown)
    no_class = dataclasses.replace(files, config={"model_type": "fennec_unknown",
                                                  "architectures": ["FennecForImageClassification"]})
    with pytest.raises(UnsupportedModelError, match="no image-classification class"):
        load_model(no_class)
    pytest.importorskip("timm")
    bad_timm = dataclasses.replace(files, config={"architecture": "no_such_timm_arch_xyz"})
    with pytest.raises(UnsupportedModelError, match="no architecture"):
        load_model(bad_timm)


def test_non_finite_outputs_name_the_model(hub, sample):
    files = hub.fetch("org/tiny-resnet", weights=True)
    model = load_model(files)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(FeatureExtractionError, match="org/tiny-resnet.*non-finite features"):
        extract_features(model, sample.images, preprocessing=files.preprocessing())


# ---------------------------------------------------------------------------------------
# A real zoo model
# ---------------------------------------------------------------------------------------


def test_a_zoo_model_on_synthetic_images(tmp_path):
    zoo = REPO_ROOT / "zoo" / "hub"
    repo_id = "photolab/resnet-tiny-photos"
    config = json.loads((zoo / repo_id / "config.json").read_text())
    hub = LocalHub(zoo)
    sample = make_sample(6, classes=2, seed=3)
    out = model_features(repo_id, sample, hub=hub, cache=FeatureCache(tmp_path))
    assert out.features.shape == (6, config["hidden_sizes"][-1])
    assert out.probabilities.shape == (6, len(config["id2label"]))
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(out.features).all() and out.features.std() > 0
