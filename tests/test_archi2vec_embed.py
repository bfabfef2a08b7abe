"""archi2vec.embed: size, norm, determinism (also across processes) and family structure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import archi2vec
from archi2vec import EMBEDDER_VERSION, MIN_DIM, similarity
from archi2vec.embed import OP_CLASSES, structure_stats


def vit(layers: int, hidden: int = 32) -> dict:
    return {"model_type": "vit", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": 2, "intermediate_size": 2 * hidden, "image_size": 32,
            "patch_size": 8}


def resnet(depth: int, width: int = 8) -> dict:
    return {"model_type": "resnet", "embedding_size": width, "depths": [depth] * 4,
            "hidden_sizes": [width, 2 * width, 4 * width, 8 * width], "layer_type": "basic"}


def convnext(depth: int) -> dict:
    return {"model_type": "convnext", "hidden_sizes": [8, 16, 32, 64], "depths": [depth] * 4,
            "image_size": 64}


@pytest.fixture(scope="module")
def graphs():
    sources = {"vit2": vit(2), "vit4": vit(4, 48), "resnet1": resnet(1),
               "resnet2": resnet(2, 12), "convnext1": convnext(1), "convnext2": convnext(2)}
    return {k: archi2vec.graph(v, input_size=64 if k.startswith(("res", "conv")) else None)
            for k, v in sources.items()}


@pytest.fixture(scope="module")
def vectors(graphs):
    return {k: archi2vec.embed(g) for k, g in graphs.items()}


def test_fixed_size_and_unit_norm(graphs, vectors):
    for v in vectors.values():
        assert v.shape == (256,) and v.dtype == np.float32
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
        assert np.all(np.isfinite(v))
    for dim in (MIN_DIM, 100, 1024):
        v = archi2vec.embed(graphs["vit2"], dim=dim)
        assert v.shape == (dim,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)


def test_dim_too_small():
    with pytest.raises(archi2vec.InvalidArgumentError, match=f"dim must be an int >= {MIN_DIM}"):
        archi2vec.embed(vit(2), dim=MIN_DIM - 1)


def test_deterministic_in_process(graphs, vectors):
    again = archi2vec.embed(archi2vec.graph(vit(2)))
    np.testing.assert_array_equal(again, vectors["vit2"])
    # node numbering does not matter, only structure and labels
    g = graphs["resnet1"]
    import networkx as nx

    order = list(g.nodes)[::-1]
    shuffled = nx.relabel_nodes(g, {n: 10_000 + i for i, n in enumerate(order)})
    np.testing.assert_allclose(archi2vec.embed(shuffled), vectors["resnet1"], atol=1e-7)


def test_same_vector_in_another_process():
    # the recorder skips torch.export's start-up cost in the child; hashing is the same code
    here = archi2vec.embed(vit(2), method="record")
    code = ("import json, archi2vec\n"
            f"v = archi2vec.embed({vit(2)!r}, method='record')\n"
            "print(json.dumps([float(x) for x in v]))\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    other = np.array(json.loads(out.stdout.strip().splitlines()[-1]), dtype=np.float32)
    np.testing.assert_array_equal(other, here)


def test_families_closer_than_across(vectors):
    s = lambda a, b: similarity(vectors[a], vectors[b])  # noqa: E731
    for a, b, others in (("vit2", "vit4", ("resnet1", "resnet2", "convnext1", "convnext2")),
                         ("resnet1", "resnet2", ("vit2", "vit4", "convnext1", "convnext2")),
                         ("convnext1", "convnext2", ("vit2", "vit4", "resnet1", "resnet2"))):
        within = s(a, b)
        assert within > 0.75
        for o in others:
            assert within > s(a, o) and within > s(b, o)


def test_similarity_contract(vectors):
    v = vectors["vit2"]
    assert similarity(v, v) == pytest.approx(1.0)
    assert similarity(v, vectors["resnet1"]) == similarity(vectors["resnet1"], v)
    with pytest.raises(archi2vec.InvalidArgumentError, match=r"same length.*\(256,\) and \(10,\)"):
        similarity(v, v[:10])
    with pytest.raises(archi2vec.InvalidArgumentError, match="zero vector"):
        similarity(np.zeros(3), np.ones(3))


def test_structure_stats_are_readable(graphs):
    vit_stats, res_stats = structure_stats(graphs["vit2"]), structure_stats(graphs["resnet1"])
    assert set(vit_stats["mix"]) == set(OP_CLASSES)
    assert sum(vit_stats["mix"].values()) == pytest.approx(1.0)
    assert vit_stats["attention_share"] > 0.5 and res_stats["attention_share"] == 0.0
    assert vit_stats["stages"] == 1 and vit_stats["log2_downsampling"] == pytest.approx(3.0)
    assert res_stats["stages"] == 5 and res_stats["log2_downsampling"] == pytest.approx(5.0)
    assert res_stats["mix"]["batch_norm"] > 0 and vit_stats["mix"]["layer_norm"] > 0


def test_empty_graph_and_version():
    import networkx as nx

    with pytest.raises(archi2vec.InvalidArgumentError, match="empty"):
        archi2vec.embed(nx.DiGraph())
    with pytest.raises(archi2vec.InvalidArgumentError, match="dim must be an int >= 64"):
        archi2vec.embed_graph(nx.DiGraph([(0, 1)]), dim=8)
    assert isinstance(EMBEDDER_VERSION, str) and EMBEDDER_VERSION
