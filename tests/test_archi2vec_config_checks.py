"""archi2vec._config_checks and build(): configs from strangers are checked before building.

Sizes that are not sizes, layer counts above MAX_LAYERS and models estimated above
MAX_PARAMETERS are refused before the full model is built (the builder is patched to fail if
it is called with the full config); timm configs pass only allow-listed architecture
arguments to timm.create_model.
"""

from __future__ import annotations

import importlib

import pytest

import archi2vec
from archi2vec import MAX_LAYERS, MAX_PARAMETERS, ImplausibleConfigError
from archi2vec._compat import import_timm, timm_available
from archi2vec._config_checks import (
    check_sizes,
    count_parameters,
    estimate_parameters,
    timm_kwargs,
)

VIT = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
       "intermediate_size": 64, "image_size": 32, "patch_size": 8}
CONVNEXT = {"model_type": "convnext", "hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 5, 1],
            "num_channels": 3, "image_size": 32}

build_module = importlib.import_module("archi2vec.build")  # the package's `build` is the function
needs_timm = pytest.mark.skipif(not timm_available(), reason="timm is not installed")


@pytest.fixture
def builds(monkeypatch):
    """Every model archi2vec constructs, as the config's largest ``num_hidden_layers``/``depths``.

    The full model of a refused config must never be among them."""
    seen: list[int] = []
    original = build_module._construct_from_dict

    def spy(config, *args, **kwargs):
        depth = config.get("num_hidden_layers", max(config.get("depths") or [0]))
        seen.append(depth)
        return original(config, *args, **kwargs)

    monkeypatch.setattr(build_module, "_construct_from_dict", spy)
    return seen


@pytest.fixture
def no_build(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(build_module, "_on_meta", refuse)


# ---------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, problem", [
    ("hidden_size", float("nan"), "not a finite number"),
    ("hidden_size", float("inf"), "not a finite number"),
    ("num_hidden_layers", -1, "a negative number"),
    ("intermediate_size", -0.5, "a negative number"),
    ("hidden_size", "768", "a str, not a number"),
    ("num_attention_heads", {"a": "x"}, "a str, not a number"),
])
def test_bad_sizes_are_refused_before_building(no_build, field, value, problem):
    with pytest.raises(ImplausibleConfigError, match=f"'{field}'.*{problem}"):
        archi2vec.build({**VIT, field: value})


def test_bad_sizes_are_found_in_nested_configs_and_lists(no_build):
    with pytest.raises(ImplausibleConfigError, match=r"'vision_config.hidden_size' is nan"):
        check_sizes({"model_type": "clip", "vision_config": {"hidden_size": float("nan")}}, "m")
    with pytest.raises(ImplausibleConfigError, match=r"'depths' is -3"):
        archi2vec.build({**CONVNEXT, "depths": [1, 1, -3, 1]})
    with pytest.raises(ImplausibleConfigError, match=r"'stages\[0\].embed_dims' is 'wide'"):
        check_sizes({"stages": [{"embed_dims": ["wide"]}]}, "m")


def test_legitimate_values_of_size_fields_pass():
    # null (a default), flags, fractional depths of depth-estimation models, label names
    check_sizes({"head_dim": None, "fixed_input_size": True, "min_depth": 0.001, "max_depth": 10.0,
                 "image_size": {"height": 224, "width": 224}, "pool_size": [7, 7],
                 "label2id": {"tree_depth": -1, "num_layers": "x"}}, "m")
    check_sizes({"pretrained_cfg": {"input_size": [3, 224, 224], "fixed_input_size": False}}, "m")


# ---------------------------------------------------------------------------------------
# layer counts and parameters
# ---------------------------------------------------------------------------------------


def test_huge_layer_counts_are_refused_before_anything_is_built(no_build):
    with pytest.raises(ImplausibleConfigError, match=f"asks for 100000 layers.*most {MAX_LAYERS}"):
        archi2vec.build({**VIT, "num_hidden_layers": 100000})
    with pytest.raises(ImplausibleConfigError, match="'depths'"):
        archi2vec.build({**CONVNEXT, "depths": [3, 3, 10**6, 3]})
    with pytest.raises(ImplausibleConfigError, match="'text_config.num_hidden_layers'"):
        archi2vec.build({"model_type": "clip", "text_config": {"num_hidden_layers": 10**6}})
    # a bound on depth values, not on depth: kept
    check_sizes({"max_depth": 10**6}, "m")


def test_a_wide_deep_model_is_refused_from_two_shallow_probes(builds):
    huge = {**VIT, "num_hidden_layers": 400, "hidden_size": 8192, "intermediate_size": 32768}
    # 400 layers x (4 x 8192^2 attention + 2 x 8192 x 32768 MLP) = 3.22e11
    with pytest.raises(ImplausibleConfigError, match="is estimated at 3.22e\\+11 parameters.*before "
                                                     "building"):
        archi2vec.build(huge)
    assert builds == [1, 2]  # the probes only, never the 400-layer model


def test_the_estimate_is_exact_for_a_uniform_stack_and_an_upper_bound_otherwise():
    def construct(cfg):
        return archi2vec.build(cfg, max_parameters=None)

    vit12 = {**VIT, "num_hidden_layers": 12}
    assert estimate_parameters(vit12, construct) == count_parameters(construct(vit12))
    exact = count_parameters(construct(CONVNEXT))
    estimate = estimate_parameters(CONVNEXT, construct)
    assert exact <= estimate <= 5 * exact
    assert estimate_parameters(VIT, construct) is None  # nothing deeper than a probe


def test_the_exact_count_is_checked_once_built(monkeypatch):
    wide = {**VIT, "hidden_size": 2**15, "intermediate_size": 2**17}  # 2 layers: no probe needed
    n = count_parameters(archi2vec.build(wide, max_parameters=None))
    bound = f"has {n:.3g} parameters, above the bound of 1e.09".replace("+", ".")
    with pytest.raises(ImplausibleConfigError, match=bound):
        archi2vec.build(wide, max_parameters=10**9)
    assert MAX_PARAMETERS > 2.2e10  # ViT-22B is a plausible model


def test_a_config_whose_probes_fail_is_still_bounded(monkeypatch):
    calls = []

    def probe_fails(config, *args, **kwargs):
        calls.append(config["num_hidden_layers"])
        if config["num_hidden_layers"] <= 2:
            raise archi2vec.UnsupportedArchitectureError("m", "needs its depth")
        return original(config, *args, **kwargs)

    original = build_module._construct_from_dict
    monkeypatch.setattr(build_module, "_construct_from_dict", probe_fails)
    deep = {**VIT, "num_hidden_layers": 6, "hidden_size": 512, "intermediate_size": 2048}
    with pytest.raises(ImplausibleConfigError, match="has 1.9e\\+07 parameters"):
        archi2vec.build(deep, max_parameters=10**7)
    assert calls == [1, 6]  # the first probe failed; the full model was built and counted


# ---------------------------------------------------------------------------------------
# timm
# ---------------------------------------------------------------------------------------


@needs_timm
@pytest.mark.parametrize("key", ["checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay",
                                 "cache_dir", "pretrained", "features_only", "scriptable",
                                 "device", "dtype", "weights_url", "no_such_argument"])
def test_timm_configs_pass_only_architecture_arguments(no_build, key):
    config = {"architecture": "resnet18", "num_classes": 10, "model_args": {key: "/tmp/x.pth"}}
    with pytest.raises(ImplausibleConfigError, match=f"model_args \\['{key}'\\]"):
        archi2vec.build(config)


@needs_timm
def test_timm_architecture_arguments_are_passed():
    timm = import_timm()
    args = {"img_size": 64, "depth": 2, "embed_dim": 48, "num_heads": 3, "drop_rate": 0.1,
            "global_pool": "avg", "class_token": False}
    arch, kwargs = timm_kwargs({"architecture": "vit_tiny_patch16_224.augreg_in21k", "num_features": 48,
                                "model_args": args, "pretrained_cfg": {"file": "/etc/passwd"}},
                               "m", timm)
    assert arch == "vit_tiny_patch16_224" and kwargs == {**args, "num_classes": 0}
    model = archi2vec.build({"architecture": arch, "model_args": args})
    assert len(model.blocks) == 2 and model.embed_dim == 48


@needs_timm
@pytest.mark.parametrize("config, match", [
    ({"architecture": "local-dir:/tmp/model"}, "no usable 'architecture'"),
    ({"architecture": "hf-hub:evil/repo"}, "no usable 'architecture'"),
    ({"architecture": "resnet18", "model_args": ["checkpoint_path"]}, "must be a JSON object"),
    ({"architecture": "vit_tiny_patch16_224", "model_args": {"depth": 10**5}}, "asks for 100000 layers"),
    ({"architecture": "resnet18", "num_classes": float("nan")}, "'num_classes' is nan"),
])
def test_timm_configs_that_are_refused(no_build, config, match):
    with pytest.raises(ImplausibleConfigError, match=match):
        archi2vec.build(config)




def test_the_threat_model_states_the_bounds_in_force():
    from pathlib import Path

    from archi2vec._sandbox import DEFAULT_MEMORY_BUDGET, DEFAULT_TIME_BUDGET

    text = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
    assert f"**{MAX_LAYERS}**" in text and "**3 × 10¹⁰**" in text and MAX_PARAMETERS == 3 * 10**10
    assert f"{DEFAULT_TIME_BUDGET:g} s per model" in text and f"+ {DEFAULT_MEMORY_BUDGET // 2**30} GiB" in text


# ---------------------------------------------------------------------------------------
# implementations
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    {**VIT, "attn_implementation": "evil-org/kernel"},             # a Hub kernel
    {**VIT, "attn_implementation": "msa|evil-org/kernel@main"},     # loaded with allow_all_kernels
    {**VIT, "attn_implementation": "flash_attention_2"},            # falls back to a Hub kernel
    {"model_type": "clip", "vision_config": {"_attn_implementation": "evil-org/kernel"}},
    {**VIT, "experts_implementation": ["evil-org/kernel"]},
])
def test_an_implementation_that_is_not_built_in_is_refused_before_building(config, no_build):
    with pytest.raises(ImplausibleConfigError, match="accepts only null, 'eager' or 'sdpa'"):
        archi2vec.build(config)


def test_built_in_implementations_are_accepted(builds):
    for value in (None, "eager", "sdpa"):
        archi2vec.build({**VIT, "attn_implementation": value, "vision_config": {"attn_implementation": value}})
    assert len(builds) >= 3
