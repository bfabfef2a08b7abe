"""Hostile model repositories through fennec's two build paths: reindex and refinement.

Configs and weights are written into a temp Hub-style folder. A pickle that creates a marker
file when unpickled stands for code execution: the marker must never appear. timm releases
up to 1.0.25 (admitted by ``timm>=1.0`` until this change) unpickled ``checkpoint_path``
with ``weights_only=False``; the ``timm_1_0_25`` fixture restores that behaviour on the
installed timm, so that the tests show what fennec itself lets through.

Budget checks that spawn worker processes are marked slow; the in-process time budget is
checked in the default suite.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import archi2vec
from archi2vec._compat import import_timm, timm_available
from fennec.catalog import Catalog
from fennec.errors import UnsupportedModelError
from fennec.features import load_model
from fennec.hub import LocalHub
from fennec.reindex import Archi2VecEmbedder, reindex
from hub_server_fixtures import TINY_VIT, write_model

needs_timm = pytest.mark.skipif(not timm_available(), reason="timm is not installed")
DIM = 64


class _Touch:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_pickle_bomb(path: Path, marker: Path, *, padding: int = 0) -> Path:
    """A torch checkpoint whose unpickling creates ``marker`` (``padding`` float32 zeros with it)."""
    torch.save({"state_dict": {"pad": torch.zeros(padding)}, "payload": _Touch(marker)}, path)
    return path


@pytest.fixture
def timm_1_0_25(monkeypatch):
    """The installed timm, loading ``create_model(checkpoint_path=...)`` as timm <= 1.0.25 did:
    ``torch.load(..., weights_only=False)``. Returns the paths it was asked to load."""
    import_timm()
    factory = importlib.import_module("timm.models._factory")
    loaded: list[str] = []

    def load_checkpoint(model, checkpoint_path, *args, **kwargs):
        loaded.append(str(checkpoint_path))
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint.get("state_dict", checkpoint), strict=False)

    monkeypatch.setattr(factory, "load_checkpoint", load_checkpoint)
    return loaded


def run_reindex(root: Path, home: Path, embedder) -> Catalog:
    catalog = Catalog(home / "catalog.sqlite")
    reindex(hub=LocalHub(root), catalog=catalog, embedder=embedder)
    return catalog


def in_process(**kw) -> Archi2VecEmbedder:
    return Archi2VecEmbedder(dim=DIM, isolate=False, **kw)


# ---------------------------------------------------------------------------------------
# timm checkpoint_path: reindex and refinement
# ---------------------------------------------------------------------------------------


@needs_timm
def test_reindex_never_unpickles_a_timm_checkpoint_path(tmp_path, timm_1_0_25):
    marker = tmp_path / "pwned"
    bomb = write_pickle_bomb(tmp_path / "bomb.pth", marker)
    root = tmp_path / "hub"
    write_model(root, "evil/timm-checkpoint", library="timm", preprocessor=False, weights=False,
                config={"architecture": "resnet18", "num_classes": 10,
                        "model_args": {"checkpoint_path": str(bomb)}})
    write_model(root, "evil/timm-overlay", library="timm", preprocessor=False, weights=False,
                config={"architecture": "resnet18", "num_classes": 10,
                        "model_args": {"pretrained_cfg_overlay": {"file": str(bomb)}}})
    write_model(root, "org/tiny-vit", config=TINY_VIT)
    with run_reindex(root, tmp_path / "home", in_process()) as catalog:
        assert not marker.exists() and timm_1_0_25 == []
        for repo in ("evil/timm-checkpoint", "evil/timm-overlay"):
            m = catalog.get_model(repo)
            assert (m.status, m.error_type) == ("unsupported", "implausible_config")
            assert "path, URL, file" in m.last_error
        assert "checkpoint_path" in catalog.get_model("evil/timm-checkpoint").last_error
        assert catalog.get_model("org/tiny-vit").status == "ok"


@needs_timm
def test_refinement_never_unpickles_a_timm_checkpoint_path(tmp_path, timm_1_0_25):
    """The config points ``checkpoint_path`` at the repository's own weights, where the hub
    cache puts them (a predictable path), and those weights are a pickle bomb."""
    marker = tmp_path / "pwned"
    root = tmp_path / "hub"
    folder = root / "evil/timm-refine"
    own_weights = folder / "pytorch_model.bin"
    write_model(root, "evil/timm-refine", library="timm", preprocessor=False, weights=False,
                config={"architecture": "resnet18", "num_classes": 10,
                        "model_args": {"checkpoint_path": str(own_weights)}})
    write_pickle_bomb(own_weights, marker, padding=12_000_000)  # as large as resnet18's weights
    files = LocalHub(root).fetch("evil/timm-refine", weights=True)
    assert files.weights_path == own_weights
    with pytest.raises(UnsupportedModelError, match="checkpoint_path") as info:
        load_model(files, device="cpu")
    assert info.value.reason == "implausible_config"
    assert not marker.exists() and timm_1_0_25 == []


# ---------------------------------------------------------------------------------------
# weights: safetensors or weights-only pickles, refused in one line
# ---------------------------------------------------------------------------------------


@needs_timm
def test_a_timm_weights_pickle_that_needs_code_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / "hub"
    folder = write_model(root, "evil/timm-weights", library="timm", preprocessor=False,
                         weights=False, config={"architecture": "test_resnet", "num_classes": 6})
    write_pickle_bomb(folder / "pytorch_model.bin", marker, padding=200_000)
    with pytest.raises(UnsupportedModelError) as info:
        load_model(LocalHub(root).fetch("evil/timm-weights", weights=True), device="cpu")
    message = str(info.value)
    assert info.value.reason == "unsafe_weights" and "\n" not in message
    assert "pytorch_model.bin is a pickle that needs code to load (it calls " in message
    assert not marker.exists()


def test_a_transformers_weights_pickle_that_needs_code_is_refused_in_one_line(tmp_path):
    import transformers

    marker = tmp_path / "pwned"
    root = tmp_path / "hub"
    config = {k: v for k, v in TINY_VIT.items() if k != "architectures"}
    folder = write_model(root, "evil/vit-weights", config=config, weights=False,
                         pipeline_tag="image-feature-extraction")
    state = transformers.ViTModel(transformers.ViTConfig(**config)).state_dict()
    torch.save({**state, "payload": _Touch(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(UnsupportedModelError) as info:
        load_model(LocalHub(root).fetch("evil/vit-weights", weights=True), device="cpu")
    assert info.value.reason == "unsafe_weights" and "\n" not in str(info.value)
    assert not marker.exists()


def _refuse_from_pretrained(*args, **kwargs):
    """Stands in for ``from_pretrained`` where a refusal must come before any load."""
    raise AssertionError("from_pretrained was called")


def test_a_config_larger_than_its_weights_is_refused_before_loading(tmp_path, monkeypatch):
    import transformers

    root = tmp_path / "hub"
    write_model(root, "evil/vit-wide", config={**TINY_VIT, "hidden_size": 4096,
                                               "intermediate_size": 16384})  # 272-byte weights
    monkeypatch.setattr(transformers.AutoModelForImageClassification, "from_pretrained", _refuse_from_pretrained)
    with pytest.raises(UnsupportedModelError, match="describes 4.*parameters, but its weights file "
                                                    "model.safetensors has 272 bytes") as info:
        load_model(LocalHub(root).fetch("evil/vit-wide", weights=True), device="cpu")
    assert info.value.reason == "implausible_config"


def test_a_config_naming_a_hub_kernel_is_refused_before_loading(tmp_path, monkeypatch):
    # transformers would download and import the kernel's code (with the kernels package
    # installed; without it, its ImportError escaped as no fennec error)
    import transformers

    root = tmp_path / "hub"
    write_model(root, "evil/vit-kernel", config={**TINY_VIT, "attn_implementation": "evil-org/kernel"})
    monkeypatch.setattr(transformers.AutoModelForImageClassification, "from_pretrained", _refuse_from_pretrained)
    with pytest.raises(UnsupportedModelError, match="'attn_implementation' is 'evil-org/kernel'") as info:
        load_model(LocalHub(root).fetch("evil/vit-kernel", weights=True), device="cpu")
    assert info.value.reason == "implausible_config"


def test_a_quantised_config_is_refused_before_loading(tmp_path, monkeypatch):
    # quant_method picks a transformers quantiser; mxfp4's fetches kernel code from the Hub
    import transformers
    from safetensors.torch import save_file

    root = tmp_path / "hub"
    config = {k: v for k, v in TINY_VIT.items() if k != "architectures"}
    folder = write_model(root, "evil/vit-mxfp4", weights=False, pipeline_tag="image-feature-extraction",
                         config={**config, "quantization_config": {"quant_method": "mxfp4"}})
    save_file(transformers.ViTModel(transformers.ViTConfig(**config)).state_dict(),
              folder / "model.safetensors")  # weights that fit the config: only the quantiser is wrong
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", _refuse_from_pretrained)
    with pytest.raises(UnsupportedModelError, match="quantization_config, quant_method 'mxfp4'") as info:
        load_model(LocalHub(root).fetch("evil/vit-mxfp4", weights=True), device="cpu")
    assert info.value.reason == "quantized"


def test_refinement_refuses_implausible_sizes_before_building(tmp_path, monkeypatch):
    import transformers

    root = tmp_path / "hub"
    write_model(root, "evil/vit-deep", config={**TINY_VIT, "num_hidden_layers": 100000})
    monkeypatch.setattr(transformers.AutoModelForImageClassification, "from_pretrained", _refuse_from_pretrained)
    with pytest.raises(UnsupportedModelError, match="asks for 100000 layers") as info:
        load_model(LocalHub(root).fetch("evil/vit-deep", weights=True), device="cpu")
    assert info.value.reason == "implausible_config"


# ---------------------------------------------------------------------------------------
# sizes and budgets in reindex
# ---------------------------------------------------------------------------------------


HOSTILE_SIZES = {
    "evil/nan-width": (json.dumps(TINY_VIT).replace('"hidden_size": 32', '"hidden_size": NaN'),
                       "'hidden_size' is nan"),
    "evil/negative-depth": (json.dumps({**TINY_VIT, "num_hidden_layers": -2}),
                            "'num_hidden_layers' is -2: a negative number"),
    "evil/string-width": (json.dumps({**TINY_VIT, "intermediate_size": "64"}),
                          "'intermediate_size' is '64': a str"),
    "evil/deep": (json.dumps({**TINY_VIT, "num_hidden_layers": 100000}), "asks for 100000 layers"),
}


def write_hostile_sizes(root: Path) -> None:
    for repo, (text, _) in HOSTILE_SIZES.items():
        write_model(root, repo, config=None, raw_config=text)
    write_model(root, "org/tiny-vit", config=TINY_VIT)


def check_hostile_sizes(catalog: Catalog) -> None:
    for repo, (_, reason) in HOSTILE_SIZES.items():
        m = catalog.get_model(repo)
        assert (m.status, m.error_type) == ("unsupported", "implausible_config"), (repo, m.last_error)
        assert reason in m.last_error and m.vector is None
    assert catalog.get_model("org/tiny-vit").status == "ok"


def test_nan_negative_and_string_sizes_are_unsupported_with_the_reason(tmp_path):
    write_hostile_sizes(tmp_path / "hub")
    with run_reindex(tmp_path / "hub", tmp_path / "home", in_process()) as catalog:
        check_hostile_sizes(catalog)


def test_a_model_over_its_time_budget_is_unsupported_and_the_run_goes_on(tmp_path, monkeypatch):
    """In-process budget (a signal on the main thread): building ``evil/slow`` never ends."""
    build_module = importlib.import_module("archi2vec.build")
    original = build_module._build_transformers

    def build_transformers(cfg, *args, **kwargs):
        if cfg.intermediate_size == 48:  # evil/slow
            time.sleep(600)  # interrupted by the budget
        return original(cfg, *args, **kwargs)

    monkeypatch.setattr(build_module, "_build_transformers", build_transformers)
    root = tmp_path / "hub"
    t0 = 1_700_000_000
    write_model(root, "evil/slow", config={**TINY_VIT, "intermediate_size": 48},
                extra={"lastModified": t0})
    write_model(root, "org/tiny-vit", config=TINY_VIT, extra={"lastModified": t0 + 1})
    archi2vec.embed(TINY_VIT, dim=DIM)  # imports done: the tiny model's budget is for the model
    with run_reindex(root, tmp_path / "home", in_process(timeout=3.0)) as catalog:
        slow = catalog.get_model("evil/slow")
        assert (slow.status, slow.error_type) == ("unsupported", "over_budget")
        assert "did not finish within 3 s" in slow.last_error
        assert catalog.get_model("org/tiny-vit").status == "ok"


# ---------------------------------------------------------------------------------------
# the sandboxed worker (slow: each worker imports torch, transformers and timm)
# ---------------------------------------------------------------------------------------


DEEP_VIT = {**TINY_VIT, "num_hidden_layers": 500}  # within MAX_LAYERS, costly to build


@pytest.mark.slow
def test_reindex_in_the_sandbox_refuses_hostile_configs_and_budget_breakers(tmp_path):
    root = tmp_path / "hub"
    write_hostile_sizes(root)
    write_model(root, "evil/deep-500", config=DEEP_VIT)
    embedder = Archi2VecEmbedder(dim=DIM, memory_budget=16 * 2**20)
    try:
        with run_reindex(root, tmp_path / "home", embedder) as catalog:
            check_hostile_sizes(catalog)
            deep = catalog.get_model("evil/deep-500")
            assert (deep.status, deep.error_type) == ("unsupported", "over_budget")
            assert "memory budget (16 MiB)" in deep.last_error
    finally:
        embedder.close()


@pytest.mark.slow
def test_the_sandbox_gives_the_in_process_vector_and_replaces_a_worker_over_budget(monkeypatch):
    sandbox_module = importlib.import_module("archi2vec._sandbox")
    with archi2vec.Sandbox(memory_budget=16 * 2**20) as sandbox:
        vector = sandbox.embed(TINY_VIT, model_id="tiny", dim=DIM)
        np.testing.assert_array_equal(vector, archi2vec.embed(TINY_VIT, dim=DIM))
        with pytest.raises(archi2vec.BudgetExceededError, match="memory budget") as info:
            sandbox.embed(DEEP_VIT, model_id="deep", dim=DIM)
        assert info.value.budget == "memory" and sandbox.restarts == 1
        np.testing.assert_array_equal(sandbox.embed(TINY_VIT, model_id="tiny", dim=DIM), vector)
    with archi2vec.Sandbox(time_budget=3.0) as sandbox:  # DEEP_VIT takes over a minute
        sandbox.embed(TINY_VIT, model_id="warm", dim=DIM)
        with pytest.raises(archi2vec.BudgetExceededError, match="within 3 s") as info:
            sandbox.embed(DEEP_VIT, model_id="deep", dim=DIM)
        assert info.value.budget == "time" and sandbox.restarts == 0  # the worker stopped itself
        # a worker that does not answer (stuck where no signal is handled) is killed
        monkeypatch.setattr(sandbox_module, "KILL_GRACE", -2.5)  # the parent gives up after 0.5 s
        with pytest.raises(archi2vec.BudgetExceededError, match="the worker was stopped"):
            sandbox.embed(DEEP_VIT, model_id="deep", dim=DIM)
        assert sandbox.restarts == 1
        monkeypatch.setattr(sandbox_module, "KILL_GRACE", 10.0)
        np.testing.assert_array_equal(sandbox.embed(TINY_VIT, model_id="tiny", dim=DIM), vector)


def test_the_sandbox_refuses_bad_sizes_without_starting_a_worker():
    sandbox = archi2vec.Sandbox()
    with pytest.raises(archi2vec.ImplausibleConfigError, match="'hidden_size' is nan"):
        sandbox.embed({**TINY_VIT, "hidden_size": float("nan")}, model_id="m")
    assert sandbox._process is None
    with pytest.raises(archi2vec.InvalidArgumentError, match="time_budget"):
        archi2vec.Sandbox(time_budget=0)
    with pytest.raises(archi2vec.InvalidArgumentError, match="memory_budget"):
        archi2vec.Sandbox(memory_budget=-1)
