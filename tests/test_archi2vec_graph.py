"""archi2vec.graph: node and edge contents, both capture methods, fallback and time limit."""

from __future__ import annotations

import threading

import networkx as nx
import pytest
import torch

import archi2vec
from archi2vec import TraceTimeoutError, UnsupportedArchitectureError
from archi2vec._compat import timm_available
from archi2vec.graph import input_shape_for, write_graphml

TINY_VIT = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
            "patch_size": 8}
TINY_RESNET = {"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16, 32, 64],
               "depths": [1, 1, 1, 1], "layer_type": "basic"}
NODE_ATTRS = {"op", "target", "module", "module_class", "shape", "params", "label"}


@pytest.fixture(scope="module")
def vit_graph() -> nx.DiGraph:
    return archi2vec.graph(TINY_VIT)


def test_graph_attributes(vit_graph):
    g = vit_graph
    assert g.graph["method"] == "export"
    assert g.graph["input_shape"] == (3, 32, 32)
    assert g.graph["model_class"].endswith("ViTForImageClassification")
    for _, data in g.nodes(data=True):
        assert NODE_ATTRS <= set(data)
    assert g.nodes[0]["op"] == "input" and g.nodes[0]["shape"] == (1, 3, 32, 32)
    last = max(g.nodes)
    assert g.nodes[last]["op"] == "output" and g.nodes[last]["shape"] == (1, 2)
    assert nx.is_directed_acyclic_graph(g)
    assert nx.has_path(g, 0, last)


def test_graph_ops_modules_and_params(vit_graph):
    g = vit_graph
    ops = {d["op"] for _, d in g.nodes(data=True)}
    assert {"conv2d", "linear", "layer_norm", "scaled_dot_product_attention"} <= ops
    conv = next(d for _, d in g.nodes(data=True) if d["op"] == "conv2d")
    assert conv["module"] == "vit.embeddings.patch_embeddings.projection"
    assert conv["module_class"].endswith("Conv2d")
    assert conv["shape"] == (1, 32, 4, 4)
    assert conv["label"] == "conv2d/k8/down"
    assert conv["params"] == 32 * 3 * 8 * 8 + 32
    # every parameter is attributed to exactly one node
    assert sum(d["params"] for _, d in g.nodes(data=True)) == g.graph["num_params"]
    # data flow: the patch projection feeds the rest of the network
    assert g.out_degree(next(n for n, d in g.nodes(data=True) if d["op"] == "conv2d")) >= 1


def test_recorder_matches_export_vocabulary(vit_graph):
    rec = archi2vec.graph(TINY_VIT, method="record")
    assert rec.graph["method"] == "record"
    assert sum(d["params"] for _, d in rec.nodes(data=True)) == rec.graph["num_params"]
    exported = {d["label"] for _, d in vit_graph.nodes(data=True)}
    recorded = {d["label"] for _, d in rec.nodes(data=True)}
    assert {"conv2d/k8/down", "linear", "layer_norm", "scaled_dot_product_attention"} <= recorded
    assert len(exported & recorded) / len(exported | recorded) > 0.8
    # after simplification the two captures embed (almost) identically
    assert float(archi2vec.embed(rec) @ archi2vec.embed(vit_graph)) > 0.98


def test_simplify_is_idempotent_and_keeps_parameters(vit_graph):
    from archi2vec._nodes import PASSTHROUGH_OPS, simplify_graph

    again = simplify_graph(vit_graph)
    assert list(again.nodes) == list(range(vit_graph.number_of_nodes()))
    assert list(again.edges) == list(vit_graph.edges)
    assert not {d["op"] for _, d in vit_graph.nodes(data=True)} & PASSTHROUGH_OPS
    # a dropout chain is contracted and a constant side branch is dropped
    g = nx.DiGraph()
    g.add_node(0, op="input", params=0, shape=(1, 3))
    g.add_node(1, op="linear", params=12, shape=(1, 4))
    g.add_node(2, op="dropout", params=0, shape=(1, 4))
    g.add_node(3, op="arange", params=0, shape=(4,))
    g.add_node(4, op="add", params=0, shape=(1, 4))
    g.add_node(5, op="output", params=0, shape=(1, 4))
    g.add_edges_from([(0, 1), (1, 2), (2, 4), (3, 4), (4, 5)])
    s = simplify_graph(g)
    assert [d["op"] for _, d in s.nodes(data=True)] == ["input", "linear", "add", "output"]
    assert list(s.edges) == [(0, 1), (1, 2), (2, 3)]
    assert sum(d["params"] for _, d in s.nodes(data=True)) == 12


def test_input_size_from_config_and_override():
    model = archi2vec.build(TINY_RESNET)
    assert input_shape_for(model) == (3, 224, 224)
    assert input_shape_for(model, 64) == (3, 64, 64)
    assert input_shape_for(model, (48, 64)) == (3, 48, 64)
    assert input_shape_for(model, (1, 48, 48)) == (1, 48, 48)
    with pytest.raises(archi2vec.InvalidArgumentError, match=r"input_size .*got \(0, 4\)"):
        input_shape_for(model, (0, 4))
    g = archi2vec.graph(TINY_RESNET, input_size=64)
    assert g.nodes[0]["shape"] == (1, 3, 64, 64)
    labels = {d["label"] for _, d in g.nodes(data=True)}
    assert "conv2d/k3/down" in labels and any(lab.startswith("max_pool2d") for lab in labels)


@pytest.mark.skipif(not timm_available(), reason="timm is not installed")
def test_timm_graph_uses_pretrained_cfg_input_size():
    g = archi2vec.graph("test_resnet")
    assert g.graph["input_shape"] == (3, 160, 160)
    assert g.graph["method"] == "export"


class _Result:  # not a pytree: torch.export refuses it, eager execution does not care
    def __init__(self, logits):
        self.logits = logits


class Untraceable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return _Result(self.head(torch.relu(self.conv(x)).mean((2, 3))))


def test_untraceable_module_falls_back_to_recorder():
    g = archi2vec.graph(Untraceable(), input_size=16)
    assert g.graph["method"] == "record"
    assert "not a known type" in g.graph["export_error"]
    assert [d["op"] for _, d in g.nodes(data=True)] == [
        "input", "conv2d", "relu", "mean", "linear", "output"]
    assert list(g.edges) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert g.nodes[1]["module"] == "conv" and g.nodes[1]["params"] == 4 * 3 * 9 + 4
    assert g.nodes[1]["label"] == "conv2d/k3/down"


class Broken(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("this model cannot run")


def test_model_that_runs_nowhere_is_unsupported():
    with pytest.raises(UnsupportedArchitectureError) as info:
        archi2vec.graph(Broken(), input_size=8)
    assert info.value.model_id == "Broken"
    assert "torch.export failed" in info.value.reason and "recorder failed" in info.value.reason


def test_model_without_pixel_input_is_unsupported():
    cfg = {"model_type": "imagegpt", "n_embd": 16, "n_layer": 1, "n_head": 2}
    with pytest.raises(UnsupportedArchitectureError, match="pixel_values"):
        archi2vec.graph(cfg)


class Slow(torch.nn.Module):
    """A forward that would hang: it waits for ``release``, which the tests set only after the
    timeout has been raised (bounded, so that a broken timeout fails instead of hanging).
    ``finished`` says whether the forward ever returned."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.finished = False

    def forward(self, x):
        for _ in range(6_000):  # about a minute at most
            if self.release.wait(0.01):
                break
        self.finished = True
        return x


@pytest.mark.parametrize("method", ["export", "record"])
def test_trace_timeout_on_main_thread(method):
    slow = Slow()
    with pytest.raises(TraceTimeoutError) as info:
        archi2vec.graph(slow, input_size=8, method=method, timeout=0.5)
    assert not slow.finished  # interrupted, not waited for: the forward never returned
    assert info.value.timeout == 0.5 and isinstance(info.value, TimeoutError)
    assert isinstance(info.value, UnsupportedArchitectureError)


def test_trace_timeout_in_worker_thread():
    slow, box = Slow(), {}

    def run():
        try:
            archi2vec.graph(slow, input_size=8, method="record", timeout=0.5)
        except TraceTimeoutError as exc:
            box["error"], box["forward_finished"] = exc, slow.finished

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    slow.release.set()  # let the abandoned trace end
    # the caller got the error while the forward was still running (not after waiting for it)
    assert isinstance(box.get("error"), TraceTimeoutError) and box["forward_finished"] is False


def test_bad_method_and_timeout():
    with pytest.raises(archi2vec.InvalidArgumentError, match="method must be one of .*got 'fx'"):
        archi2vec.graph(TINY_VIT, method="fx")
    with pytest.raises(archi2vec.InvalidArgumentError, match="timeout must be a positive number"):
        archi2vec.graph(TINY_VIT, timeout=0)
    from archi2vec._timeout import call_with_timeout

    with pytest.raises(archi2vec.InvalidArgumentError, match="got -1"):
        call_with_timeout(lambda: None, -1, model_id="m")


def test_argument_errors_are_value_errors_but_no_verdict_on_a_model():
    """Callers that catch ValueError keep working; callers that record a model as unsupported
    (``except UnsupportedArchitectureError``) do not mistake their own bad argument for one."""
    assert issubclass(archi2vec.InvalidArgumentError, (ValueError, archi2vec.Archi2VecError))
    assert not issubclass(archi2vec.InvalidArgumentError, UnsupportedArchitectureError)


def test_write_graphml_roundtrip(vit_graph, tmp_path):
    path = tmp_path / "vit.graphml"
    write_graphml(vit_graph, path)
    back = nx.read_graphml(path)
    assert back.number_of_nodes() == vit_graph.number_of_nodes()
    assert back.number_of_edges() == vit_graph.number_of_edges()
    assert back.nodes["0"]["shape"] == "1x3x32x32"
    assert back.graph["method"] == "export"
