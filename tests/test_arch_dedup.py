"""Identical architectures embedded once: archi2vec.architecture_key, the catalog's
``architectures`` table, and reindex reusing a built architecture's vector or verdict."""

from __future__ import annotations

import copy
import json
import sqlite3

import numpy as np
import pytest

import archi2vec
from archi2vec import architecture_config, architecture_key
from archi2vec.arch_key import TIMM_KEPT, TRANSFORMERS_DROPPED
from fennec.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog
from fennec.errors import InvalidInputError
from fennec.hub import LocalHub
from fennec.reindex import Archi2VecEmbedder, reindex
from hub_server_fixtures import TINY_RESNET, TINY_TIMM, TINY_VIT, write_model


def finetune(base: dict, labels: list[str], name: str) -> dict:
    """``base`` as a Hub fine-tune saves it: new labels, its own name, another version."""
    cfg = copy.deepcopy(base)
    cfg.update({"id2label": {str(i): lab for i, lab in enumerate(labels)},
                "label2id": {lab: i for i, lab in enumerate(labels)}, "_name_or_path": name,
                "transformers_version": "4.57.1", "torch_dtype": "float16",
                "finetuning_task": "image-classification", "num_labels": len(labels)})
    return cfg


# -- the key ------------------------------------------------------------------------------


def test_labels_names_and_versions_do_not_change_the_key():
    tuned = finetune(TINY_VIT, ["ant", "bee", "wasp"], "me/vit-insects")
    assert architecture_key(tuned) == architecture_key(TINY_VIT)
    kept = architecture_config(tuned)
    assert not set(kept) & TRANSFORMERS_DROPPED
    assert kept["num_labels"] == 3 and kept["architectures"] == ["ViTForImageClassification"]


def test_architecture_fields_and_the_head_size_change_the_key():
    base = architecture_key(TINY_VIT)
    for field, value in (("hidden_size", 64), ("num_hidden_layers", 3), ("patch_size", 4),
                         ("image_size", 64), ("architectures", ["ViTModel"]),
                         ("model_type", "deit"), ("qkv_bias", False)):
        assert architecture_key(dict(TINY_VIT, **{field: value})) != base, field
    assert architecture_key(finetune(TINY_VIT, ["a", "b"], "x")) != base  # 2 labels, not 3
    # transformers counts id2label, whatever num_labels says
    assert architecture_key(dict(TINY_VIT, num_labels=7)) == base
    no_labels = {k: v for k, v in TINY_VIT.items() if k not in ("id2label", "label2id")}
    assert architecture_key(dict(no_labels, num_labels=3)) == base
    assert architecture_key(dict(no_labels, num_labels=5)) != base
    # sub-configs lose their names too, and keep their sizes
    nested = {"model_type": "clip", "vision_config": {"hidden_size": 32, "_name_or_path": "a"}}
    assert architecture_key(nested) == architecture_key(
        {"model_type": "clip", "vision_config": {"hidden_size": 32, "_name_or_path": "b"}})
    assert architecture_key(nested) != architecture_key(
        {"model_type": "clip", "vision_config": {"hidden_size": 64}})
    # what chooses code stays, so that archi2vec's checks still see (and refuse) it
    kernel = {"model_type": "clip", "vision_config": {"attn_implementation": "org/kernel"}}
    assert architecture_config(kernel) == kernel
    with pytest.raises(archi2vec.ImplausibleConfigError, match="attn_implementation"):
        archi2vec.embed(architecture_config(dict(TINY_VIT, attn_implementation="org/kernel")),
                        method="record", dim=64)


def test_the_key_is_deterministic_and_names_the_embedder_version():
    shuffled = dict(reversed(list(TINY_VIT.items())))
    key = architecture_key(TINY_VIT)
    assert architecture_key(shuffled) == key and len(key) == 64 and int(key, 16) >= 0
    assert architecture_key(TINY_VIT, embedder_version=archi2vec.EMBEDDER_VERSION) == key
    assert architecture_key(TINY_VIT, embedder_version="archi2vec-next") != key
    # the library decides how a config is read, so it is part of the key
    assert architecture_key(TINY_VIT, library="transformers") != key
    # and the key is the documented hash
    import hashlib
    payload = {"config": architecture_config(TINY_VIT), "library": None,
               "embedder": archi2vec.EMBEDDER_VERSION}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert key == hashlib.sha256(text.encode()).hexdigest()


def test_timm_keeps_only_what_reaches_timm_create_model():
    tuned = dict(TINY_TIMM, architecture="resnet18.a1_in1k", label_names=["x"] * 10,
                 pretrained_cfg={"hf_hub_id": "timm/resnet18.a1_in1k", "tag": "a1_in1k",
                                 "license": "apache-2.0", "input_size": [3, 224, 224]},
                 global_pool="avg")
    assert architecture_key(tuned) == architecture_key(TINY_TIMM)
    assert set(architecture_config(tuned)) <= TIMM_KEPT
    assert architecture_config(tuned)["architecture"] == "resnet18"
    for change in ({"num_classes": 5}, {"architecture": "resnet34"},
                   {"model_args": {"drop_rate": 0.1}}, {"auto_map": {"AutoModel": "x.Y"}}):
        assert architecture_key(dict(TINY_TIMM, **change)) != architecture_key(TINY_TIMM), change
    # library="timm" reads any config as timm's
    assert architecture_config(dict(TINY_TIMM, model_type="vit"), library="timm") == \
        architecture_config(TINY_TIMM)


def test_bad_configs_are_refused_clearly():
    with pytest.raises(TypeError, match="must be a mapping"):
        architecture_key(["not", "a", "config"])  # type: ignore[arg-type]
    with pytest.raises(archi2vec.InvalidArgumentError, match="not plain JSON data"):
        architecture_key({"model_type": "vit", "hidden_size": {1, 2}})
    # an id2label that is not a mapping is kept (transformers refuses it, so must the key's build)
    assert architecture_config({"model_type": "vit", "id2label": ["a"]})["id2label"] == ["a"]


def test_configs_with_one_key_give_identical_vectors_and_the_head_size_matters():
    """Why the label count stays in the key: archi2vec builds the classifier head."""
    a = finetune(TINY_VIT, ["ant", "bee", "wasp"], "me/a")
    b = finetune(TINY_VIT, ["cat", "dog", "cow"], "you/b")
    assert architecture_key(a) == architecture_key(b)
    va, vb = (archi2vec.embed(c, method="record", dim=128) for c in (a, b))
    assert np.array_equal(va, vb)
    assert np.array_equal(va, archi2vec.embed(architecture_config(a), method="record", dim=128))
    wide = finetune(TINY_VIT, [str(i) for i in range(1000)], "me/wide")
    assert not np.array_equal(va, archi2vec.embed(wide, method="record", dim=128))
    ta = dict(TINY_TIMM, architecture="resnet18.a1_in1k", pretrained_cfg={"hf_hub_id": "a"})
    tb = dict(TINY_TIMM, label_names=[str(i) for i in range(10)])
    assert architecture_key(ta) == architecture_key(tb)
    assert np.array_equal(archi2vec.embed(ta, method="record", dim=128),
                          archi2vec.embed(tb, method="record", dim=128))


# -- the catalog ----------------------------------------------------------------------------


def test_architecture_entries_round_trip_and_are_checked(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        assert cat.get_architecture("k", "v1") is None
        cat.put_architecture("k", "v1", vector=np.ones(4), first_model="org/a")
        cat.put_architecture("u", "v1", unsupported=("archi2vec", "cannot trace it"))
        got = cat.get_architecture("k", "v1")
        assert np.array_equal(got.vector, np.ones(4)) and got.first_model == "org/a"
        assert not got.vector.flags.writeable and got.unsupported_kind is None
        assert cat.get_architecture("k", "v2") is None
        u = cat.get_architecture("u", "v1")
        assert u.vector is None and (u.unsupported_kind, u.unsupported_reason) == ("archi2vec", "cannot trace it")
        for bad in ({}, {"vector": np.ones(2), "unsupported": ("a", "b")}, {"vector": [np.nan]}):
            with pytest.raises(InvalidInputError):
                cat.put_architecture("x", "v1", **bad)
        with pytest.raises(InvalidInputError, match="key"):
            cat.put_architecture("", "v1", vector=np.ones(2))


def test_a_version_4_catalog_is_migrated_and_keeps_its_models(tmp_path):
    path = tmp_path / "v4.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        db.executescript(script)
    db.execute("INSERT INTO models (repo_id, sha, status, updated_at) "
               "VALUES ('org/a', 'a', 'ok', '2024-01-01T00:00:00+00:00')")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    with Catalog(path) as cat:
        assert cat.schema_version == SCHEMA_VERSION == 5
        assert [m.repo_id for m in cat.models()] == ["org/a"]
        cat.put_architecture("k", "v", vector=np.ones(3))
        assert cat.get_architecture("k", "v") is not None


# -- reindex --------------------------------------------------------------------------------


@pytest.fixture
def finetunes_hub(tmp_path):
    """Two bases with three fine-tunes each (labels and names differ), a fine-tune with
    another head size, and two copies of an architecture archi2vec refuses."""
    root = tmp_path / "hub"
    for i, labels in enumerate((["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"])):
        write_model(root, f"org/vit-ft{i}", config=finetune(TINY_VIT, labels, f"org/vit-ft{i}"),
                    weights=False)
        write_model(root, f"org/resnet-ft{i}", weights=False,
                    config=finetune(TINY_RESNET, labels[:2], f"org/resnet-ft{i}"))
    write_model(root, "org/vit-wide", config=finetune(TINY_VIT, list("abcdefg"), "w"), weights=False)
    refused = dict(TINY_VIT, hidden_size="32")  # a size that is a string: refused before building
    for i in range(2):
        write_model(root, f"org/bad{i}", config=dict(refused, _name_or_path=f"bad{i}"), weights=False)
    return root


def counting(monkeypatch):
    """Count the configs archi2vec builds (in this process: the embedder is not isolated)."""
    built: list[dict] = []
    real = archi2vec.embed

    def spy(config, **kw):
        built.append(config)
        return real(config, **kw)

    monkeypatch.setattr(archi2vec, "embed", spy)
    return built


def test_reindex_builds_each_architecture_once_and_reuses_it_later(finetunes_hub, tmp_path, monkeypatch):
    built = counting(monkeypatch)
    embedder = Archi2VecEmbedder(dim=64, isolate=False)
    with Catalog(tmp_path / "home" / "catalog.sqlite") as cat:
        s = reindex(hub=LocalHub(finetunes_hub), catalog=cat, embedder=embedder, batch_size=4)
        # vit (3 labels), vit (7 labels), resnet, the refused one: 4 builds for 9 models
        assert (s.added, s.unsupported, s.built, s.reused) == (7, 2, 4, 5)
        assert len(built) == 4 and "built 4, reused 5" in s.line()
        ids, vectors = cat.vectors()
        by_id = dict(zip(ids, vectors, strict=True))
        for family in ("vit", "resnet"):
            assert all(np.array_equal(by_id[f"org/{family}-ft0"], by_id[f"org/{family}-ft{i}"])
                       for i in (1, 2))
        assert not np.array_equal(by_id["org/vit-ft0"], by_id["org/vit-wide"])
        # the reused vectors are those the models give on their own
        assert np.array_equal(by_id["org/vit-ft2"], archi2vec.embed(
            json.loads((finetunes_hub / "org/vit-ft2/config.json").read_text()), dim=64, method="record"))
        bad = [cat.get_model(f"org/bad{i}") for i in range(2)]
        assert all(m.status == "unsupported" and m.error_type == "implausible_config"
                   and m.unsupported_by == embedder.version for m in bad)
        assert "as org/bad0's" in bad[1].last_error and bad[1].last_error.startswith("org/bad1: ")
        # a new fine-tune in a later run: its architecture comes from the catalog
        write_model(finetunes_hub, "org/vit-ft9", config=finetune(TINY_VIT, ["k", "l", "m"], "n"),
                    weights=False)
        write_model(finetunes_hub, "org/bad9", config=dict(TINY_VIT, hidden_size="32"), weights=False)
        built.clear()
        s2 = reindex(hub=LocalHub(finetunes_hub), catalog=cat, embedder=Archi2VecEmbedder(dim=64, isolate=False))
        assert (s2.added, s2.unsupported, s2.built, s2.reused, len(built)) == (1, 1, 0, 2, 0)
        assert np.array_equal(cat.get_model("org/vit-ft9").vector, by_id["org/vit-ft0"])


def test_without_dedup_every_model_is_built_and_vectors_are_the_same(finetunes_hub, tmp_path, monkeypatch):
    built = counting(monkeypatch)
    results = {}
    for dedup in (True, False):
        home = tmp_path / f"home-{dedup}"
        with Catalog(home / "catalog.sqlite") as cat:
            s = reindex(hub=LocalHub(finetunes_hub), catalog=cat, embedder=Archi2VecEmbedder(dim=64, isolate=False),
                        dedup=dedup)
            results[dedup] = cat.vectors()
            if not dedup:
                assert (s.built, s.reused) == (9, 0)
                assert cat.get_architecture(architecture_key(TINY_VIT), "x") is None
    assert len(built) == 4 + 9
    assert results[True][0] == results[False][0]
    assert np.array_equal(results[True][1], results[False][1])


def test_an_unexpected_embedder_failure_is_not_remembered(finetunes_hub, tmp_path, monkeypatch):
    calls = []

    def broken(config, **kw):
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(archi2vec, "embed", broken)
    with Catalog(tmp_path / "c.sqlite") as cat:
        s = reindex(hub=LocalHub(finetunes_hub), catalog=cat, embedder=Archi2VecEmbedder(dim=64, isolate=False))
        assert s.failed == 9 and len(calls) == 9  # each tried on its own
        assert cat._db.execute("SELECT COUNT(*) FROM architectures WHERE vector IS NOT NULL"
                               ).fetchone()[0] == 0
