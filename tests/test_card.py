"""Model-card metadata (base_model, datasets, library_name) as side information: parsing
hostile cards, the local Hub server's base_model tags, the catalog round trip, the placement
near a base model in the transfer space, and the recommendation's evidence text."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fennec.catalog import Catalog
from fennec.errors import InvalidInputError
from fennec.hub import ModelRecord
from fennec.hub.card import MAX_BASE_MODELS, MAX_CARD_DATASETS, CardMetadata, base_model_tags, card_metadata, is_repo_id
from fennec.hub.server import HubServer
from fennec.recommendation.recommender import _cold_evidence
from fennec.space import ModelSide, TransferSpace
from fennec.workspace.fitting import base_chain, model_sides
from hub_server_fixtures import TINY_VIT, write_model

SHA = "a" * 40

# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def test_base_model_from_card_string_list_and_tags_in_order_without_duplicates():
    card = {"base_model": ["google/vit-base-patch16-224", "facebook/deit-small"], "datasets": "cifar10"}
    tags = ["base_model:finetune:google/vit-base-patch16-224", "base_model:adapter:org/lora-base",
            "base_model:timm/resnet50.a1_in1k", "dataset:imagenet-1k", "vision"]
    meta = card_metadata(tags, card, library="transformers")
    assert meta.base_models == ("google/vit-base-patch16-224", "facebook/deit-small", "org/lora-base",
                                "timm/resnet50.a1_in1k")
    assert meta.datasets == ("cifar10", "imagenet-1k") and meta.library == "transformers"
    assert card_metadata([], {"base_model": "resnet50"}).base_models == ("resnet50",)  # a canonical id
    assert card_metadata([], {"library_name": "timm"}).library == "timm"


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd", "/etc/passwd", "org/../x", "a/b/c", "https://evil.example/org/m", "org/name ",
    "org/" + "x" * 200, "C:\\models\\m", "org/-bad", "org/bad.", "org/a--b", "", "org/name\x00", "~/.ssh/id",
])
def test_hostile_base_models_are_dropped(hostile):
    assert not is_repo_id(hostile)
    assert card_metadata([f"base_model:{hostile}", f"base_model:finetune:{hostile}"],
                         {"base_model": hostile}).base_models == ()
    assert base_model_tags({"base_model": hostile}) == []


@pytest.mark.parametrize("value", [42, None, {"nested": "org/x"}, [["org/x"]], [None, 3.5], b"org/x", True])
def test_base_model_of_the_wrong_type_is_ignored(value):
    assert card_metadata([], {"base_model": value}).base_models == ()


def test_counts_and_lengths_are_bounded():
    many = [f"org/m{i}" for i in range(10_000)]
    meta = card_metadata([f"base_model:org/t{i}" for i in range(10_000)] + [f"dataset:d{i}" for i in range(5000)],
                         {"base_model": many, "datasets": [f"c{i}" for i in range(5000)]})
    assert meta.base_models == tuple(many[:MAX_BASE_MODELS])
    assert len(meta.datasets) == MAX_CARD_DATASETS
    assert card_metadata([], {"datasets": ["d" * 500, "../up", "ok/set"]}).datasets == ("ok/set",)
    assert card_metadata([], {"library_name": "x" * 100}).library is None
    assert card_metadata([], {"library_name": "../lib"}).library is None
    assert card_metadata([], "not a mapping") == CardMetadata()
    assert card_metadata(None) == CardMetadata()


def test_base_model_tags_follow_the_cards_relation():
    assert base_model_tags({"base_model": "org/b", "base_model_relation": "quantized"}) == [
        "base_model:org/b", "base_model:quantized:org/b"]
    assert base_model_tags({"base_model": "org/b", "base_model_relation": "../x"})[1] == "base_model:finetune:org/b"


# ---------------------------------------------------------------------------------------
# The local Hub server and the catalog
# ---------------------------------------------------------------------------------------


def _card_repo(root: Path, repo_id: str, base: object) -> None:
    write_model(root, repo_id, config=TINY_VIT)
    meta = {"pipeline_tag": "image-classification", "library_name": "transformers", "datasets": ["food101"],
            "base_model": base}
    (root / repo_id / "README.md").write_text("---\n" + json.dumps(meta) + "\n---\n")  # JSON is YAML


def test_the_local_hub_serves_base_model_tags_and_hfhub_reads_them(tmp_path, monkeypatch):
    from fennec.hub import HfHub

    _card_repo(tmp_path, "org/ft", "google/vit-base-patch16-224")
    _card_repo(tmp_path, "org/evil", ["../../etc", "org/ft"])
    with HubServer(models_dir=tmp_path) as server:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        import huggingface_hub.constants as hf_constants

        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        hub = HfHub(endpoint=server.url)
        ft, evil = hub.model_info("org/ft"), hub.model_info("org/evil")
    assert "base_model:finetune:google/vit-base-patch16-224" in ft.tags
    meta = card_metadata(ft.tags, library=ft.library)
    assert meta == CardMetadata(("google/vit-base-patch16-224",), ("food101",), "transformers")
    assert card_metadata(evil.tags).base_models == ("org/ft",)


def test_catalog_round_trip_keeps_the_card_metadata(tmp_path):
    tags = ("base_model:finetune:org/base", "dataset:food101", "base_model:../x")
    with Catalog(tmp_path / "catalog.sqlite") as cat:
        cat.upsert_model(ModelRecord("org/ft", SHA, library="timm", tags=tags), vector=[1.0, 0.0],
                         vector_version="e1")
        cat.upsert_model(ModelRecord("org/base", SHA, tags=("base_model:org/root",)), vector=[0.0, 1.0],
                         vector_version="e1")
    with Catalog(tmp_path / "catalog.sqlite") as cat:  # reopened: read back from the file
        assert cat.get_model("org/ft").card == CardMetadata(("org/base",), ("food101",), "timm")
        sides = model_sides(cat)
    assert sides["org/ft"].base_models == ("org/base", "org/root")  # the chain, through the catalog
    assert sides["org/ft"].library == "timm" and sides["org/base"].base_models == ("org/root",)


def test_base_chain_is_bounded_and_cuts_cycles():
    cards = {f"m{i}": CardMetadata((f"m{i + 1}",)) for i in range(50)}
    assert base_chain("m0", cards.get) == tuple(f"m{i}" for i in range(1, MAX_BASE_MODELS + 1))
    loop = {"a": CardMetadata(("b",)), "b": CardMetadata(("a",))}
    assert base_chain("a", loop.get) == ("b",)
    assert base_chain("unknown", cards.get) == ()


# ---------------------------------------------------------------------------------------
# Placement near the base model
# ---------------------------------------------------------------------------------------


def _history():
    """Six models on five tasks; ``base`` is the best everywhere, the others are not."""
    rng = np.random.default_rng(0)
    models = ["base", "m1", "m2", "m3", "m4", "m5"]
    quality = {"base": 3.0, "m1": 0.5, "m2": 0.0, "m3": -0.5, "m4": -1.0, "m5": 0.2}
    results = {f"t{j}": {m: quality[m] + 0.1 * rng.normal() for m in models} for j in range(5)}
    sides = {m: ModelSide(m, archi2vec=rng.normal(size=8), family="vit") for m in models}
    return results, sides


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_a_cold_start_with_a_known_base_is_a_convex_mix_with_the_base(weight):
    results, sides = _history()
    space = TransferSpace(dim=2, base_weight=weight).fit(results, models=sides)
    a2v = np.random.default_rng(5).normal(size=8)
    plain = space.model_vectors([ModelSide("new", archi2vec=a2v, family="vit")])[0]
    near = space.model_vectors([ModelSide("new", archi2vec=a2v, family="vit", base_models=("nope/x", "base"))])[0]
    base = space.model_vectors(["base"])[0]
    np.testing.assert_allclose(near, weight * base + (1 - weight) * plain)
    assert space.base_of(ModelSide("new", base_models=("nope/x", "base"))) == (None if weight == 0 else "base")


def test_the_base_makes_a_fine_tune_of_the_best_model_rank_high():
    results, sides = _history()
    space = TransferSpace(dim=2, base_weight=0.5).fit(results, models=sides)
    a2v = np.random.default_rng(5).normal(size=8)
    cold = [ModelSide("plain", archi2vec=a2v, family="vit"),
            ModelSide("ft", archi2vec=a2v, family="vit", base_models=("base",))]
    scores = space.score(space.model_vectors(cold), space.task_vector_of("t0"))
    assert scores[1] > scores[0]
    assert space.base_of(cold[0]) is None and space.base_of(ModelSide("base", base_models=("m1",))) is None


def test_base_weight_is_checked_and_saved(tmp_path):
    results, sides = _history()
    assert TransferSpace().base_weight == 0.0  # the measured default: no move toward the base
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(InvalidInputError, match="base_weight"):
            TransferSpace(dim=2, base_weight=bad).fit(results, models=sides)
    space = TransferSpace(dim=2, base_weight=0.3).fit(results, models=sides)
    assert TransferSpace.load(space.save(tmp_path / "s.npz")).base_weight == 0.3


def test_library_is_a_categorical_side_feature():
    results, sides = _history()
    sides = {m: ModelSide(m, archi2vec=s.archi2vec, family="vit",
                          library="timm" if m in ("base", "m1") else "transformers")
             for m, s in sides.items()}
    space = TransferSpace(dim=2).fit(results, models=sides)
    assert {"library=timm", "library=transformers"} <= set(space._encoder.names)


# ---------------------------------------------------------------------------------------
# Evidence
# ---------------------------------------------------------------------------------------


def test_the_evidence_names_the_base_model(tmp_path):
    results, sides = _history()
    space = TransferSpace(dim=2, base_weight=0.5).fit(results, models=sides)
    ws = SimpleNamespace(space=space)
    with Catalog(tmp_path / "catalog.sqlite") as cat:
        cat.upsert_model(ModelRecord("org/ft2", SHA, tags=("base_model:finetune:org/ft1",)))
        cat.upsert_model(ModelRecord("org/ft1", SHA, tags=("base_model:base",)))
        cat.upsert_model(ModelRecord("org/alone", SHA))
        assert _cold_evidence(ws, cat, cat.get_model("org/ft2")) == (
            "placed near its base model base (model card base_model; weight 0.5 on the base's vector)")
        assert _cold_evidence(ws, cat, cat.get_model("org/alone")) == "placed from its architecture"
        assert _cold_evidence(SimpleNamespace(space=object()), cat, cat.get_model("org/ft2")) == \
            "placed from its architecture"
