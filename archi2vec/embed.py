"""Graph -> fixed-size, deterministic, L2-normalised architecture vector.

The vector has three blocks, concatenated and scaled so that the whole has unit norm:

1. **Weisfeiler–Lehman subtree features** (``dim - 56`` entries, weight² 0.6). Node labels
   start as the refined operator (``conv2d/k3/dw``, ``linear``, ``layer_norm`` …, see
   :func:`archi2vec._nodes.node_label`); each of ``WL_ITERATIONS`` rounds relabels a node by
   its label plus the sorted labels of its predecessors and of its successors (direction
   matters: data flows one way). For every round the label histogram is turned into
   frequencies (count / nodes, so that a deeper variant of a family keeps its profile),
   square-rooted (Hellinger: frequent plumbing ops do not drown rare, telling ones), and
   feature-hashed into the block with a signed hash from ``hashlib.blake2b`` (stable across
   processes and machines, unlike the salted built-in ``hash``). Each round is normalised
   to unit norm before they are summed, so every subtree depth counts the same.
2. **Operator mix** (20 entries, weight² 0.2): square roots of the fractions of nodes in
   20 operator classes (3x3 / 1x1 / depthwise convolution, linear, matmul, attention,
   batch / layer / group norm, ReLU / GELU / SiLU / hard / sigmoid activations, pooling,
   add, mul, concat, reshaping, other). Unit norm by construction.
3. **Structure statistics** (36 entries, weight² 0.2): nine scalars, each encoded by four
   Gaussian bumps on a fixed range so that the dot product falls smoothly with their
   difference: log10 parameter count, log2 node count, log2 depth (longest path), log2
   widest topological generation, log2 total spatial downsampling, number of spatial
   stages, attention share (attention / (attention + convolution)), log2 input side and
   log2 widest channel / feature dimension.

Nothing is fitted: the vector of a model depends on its graph only. ``EMBEDDER_VERSION``
names this recipe; store it with every vector and never compare vectors across versions.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from archi2vec._nodes import spatial_size
from archi2vec.errors import InvalidArgumentError

__all__ = ["embed", "embed_graph", "similarity", "EMBEDDER_VERSION", "MIN_DIM",
           "OP_CLASSES", "structure_stats"]

EMBEDDER_VERSION = "archi2vec-wl3-mix20-stats9-v1"
WL_ITERATIONS = 3
OP_CLASSES = (
    "conv", "conv1x1", "conv_dw", "linear", "matmul", "attention", "batch_norm",
    "layer_norm", "group_norm", "relu", "gelu", "silu", "hard_act", "sigmoid", "pool",
    "add", "mul", "cat", "reshape", "other",
)
# (name, low, high): the scalar range mapped onto the four bumps
_SCALARS = (
    ("log10_params", 4.0, 10.0),
    ("log2_nodes", 5.0, 14.0),
    ("log2_depth", 4.0, 13.0),
    ("log2_width", 0.0, 7.0),
    ("log2_downsampling", 0.0, 6.0),
    ("stages", 1.0, 6.0),
    ("attention_share", 0.0, 1.0),
    ("log2_input_side", 5.0, 9.5),
    ("log2_max_channels", 4.0, 12.0),
)
_BUMPS = 4
_STATS_DIM = len(OP_CLASSES) + len(_SCALARS) * _BUMPS  # 56
MIN_DIM = _STATS_DIM + 8
_WEIGHTS = (0.6, 0.2, 0.2)  # squared weights of the WL, operator-mix and statistics blocks

_ATTENTION = {"scaled_dot_product_attention", "softmax"}
_RESHAPE = {"view", "reshape", "permute", "transpose", "flatten", "unsqueeze", "squeeze",
            "expand", "index", "clone", "split", "chunk", "unbind", "contiguous", "t",
            "unflatten", "narrow", "roll", "pad", "repeat", "stack", "movedim", "alias"}
_ACTS = {"relu": "relu", "relu6": "relu", "leaky_relu": "relu", "hardtanh": "relu",
         "gelu": "gelu", "silu": "silu", "mish": "silu", "hardswish": "hard_act",
         "hardsigmoid": "hard_act", "sigmoid": "sigmoid", "tanh": "sigmoid"}


def embed(
    source_or_graph: Any,
    *,
    dim: int = 256,
    input_size: int | Sequence[int] | None = None,
    method: str = "export",
    timeout: float | None = None,
    library: str | None = None,
    trust_remote_code: bool = False,
) -> np.ndarray:
    """The architecture vector of a model (or of a graph from :func:`archi2vec.graph`).

    Args:
        source_or_graph: a DiGraph made by :func:`archi2vec.graph`, or anything
            :func:`archi2vec.build` accepts.
        dim: vector length, at least ``MIN_DIM`` (64).
        input_size, method, timeout, library, trust_remote_code: passed to
            :func:`archi2vec.graph` when a source is given (``timeout=None`` uses its default).

    Returns:
        float32 array of shape ``(dim,)`` with unit L2 norm, identical for the same graph in
        any process; made by the recipe ``EMBEDDER_VERSION``.

    Raises:
        InvalidArgumentError: ``dim`` below ``MIN_DIM``, or a graph without nodes (a ``ValueError``).
        UnsupportedArchitectureError: the source cannot be built or traced.

    Example:
        >>> v = embed({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
        ...            "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
        ...            "patch_size": 8}, dim=128)
        >>> v.shape, round(float(np.linalg.norm(v)), 5)
        ((128,), 1.0)
    """
    if not isinstance(dim, int) or dim < MIN_DIM:
        raise InvalidArgumentError(f"dim must be an int >= {MIN_DIM} (56 entries hold the structure "
                                   f"statistics), got {dim!r}")
    if isinstance(source_or_graph, nx.DiGraph):
        g = source_or_graph
    else:
        from archi2vec.graph import DEFAULT_TIMEOUT, graph  # import cycle

        g = graph(source_or_graph, input_size=input_size, method=method,
                  timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
                  library=library, trust_remote_code=trust_remote_code)
    return embed_graph(g, dim=dim)


def embed_graph(g: nx.DiGraph, *, dim: int = 256) -> np.ndarray:
    """:func:`embed` for a graph already captured (no torch involved).

    Raises:
        InvalidArgumentError: ``dim`` below ``MIN_DIM`` or an empty graph (a ``ValueError``).
    """
    if dim < MIN_DIM:
        raise InvalidArgumentError(f"dim must be an int >= {MIN_DIM} (56 entries hold the structure "
                                   f"statistics), got {dim!r}")
    if g.number_of_nodes() == 0:
        raise InvalidArgumentError("cannot embed an empty graph (no nodes): capture one with "
                                   "archi2vec.graph(), or pass the source to archi2vec.embed()")
    wl = _wl_block(g, dim - _STATS_DIM)
    stats = structure_stats(g)
    mix = np.sqrt(np.array([stats["mix"][c] for c in OP_CLASSES], dtype=np.float64))
    scal = np.concatenate([_bumps(stats[name], lo, hi) for name, lo, hi in _SCALARS])
    blocks = [wl, mix, scal]
    out = np.concatenate([math.sqrt(w) * _unit(b) for w, b in zip(_WEIGHTS, blocks, strict=True)])
    return _unit(out).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two archi2vec vectors (their dot product: both have unit norm).

    Example:
        >>> similarity(np.array([1.0, 0.0]), np.array([0.6, 0.8]))
        0.6
    """
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape or a64.ndim != 1:
        raise InvalidArgumentError(f"need two 1-D vectors of the same length (embedded with the same dim), "
                                   f"got shapes {a64.shape} and {b64.shape}")
    denom = np.linalg.norm(a64) * np.linalg.norm(b64)
    if denom == 0:
        raise InvalidArgumentError("cannot compare a zero vector: archi2vec vectors have unit norm")
    return round(float(a64 @ b64 / denom), 12)


# ---------------------------------------------------------------------------------------
# Weisfeiler–Lehman block
# ---------------------------------------------------------------------------------------


def _digest(text: str, size: int = 8) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def wl_label_counts(g: nx.DiGraph, iterations: int = WL_ITERATIONS) -> list[Counter]:
    """Label histograms of WL rounds 0..``iterations`` (round 0 = the node labels)."""
    labels = {n: str(d.get("label", d.get("op", "?"))) for n, d in g.nodes(data=True)}
    preds = {n: list(g.predecessors(n)) for n in g}
    succs = {n: list(g.successors(n)) for n in g}
    rounds = [Counter(labels.values())]
    for _ in range(iterations):
        new = {}
        for n in g:
            text = "|".join((labels[n], ",".join(sorted(labels[p] for p in preds[n])),
                             ",".join(sorted(labels[s] for s in succs[n]))))
            new[n] = _digest(text, 10).hex()
        labels = new
        rounds.append(Counter(labels.values()))
    return rounds


def _wl_block(g: nx.DiGraph, size: int) -> np.ndarray:
    block = np.zeros(size, dtype=np.float64)
    total = g.number_of_nodes()
    for it, counts in enumerate(wl_label_counts(g)):
        part = np.zeros(size, dtype=np.float64)
        for label, count in sorted(counts.items()):
            h = int.from_bytes(_digest(f"{it}:{label}"), "little")
            sign = 1.0 if (h >> 63) & 1 else -1.0
            part[h % size] += sign * math.sqrt(count / total)
        block += _unit(part)
    return block


# ---------------------------------------------------------------------------------------
# structure statistics
# ---------------------------------------------------------------------------------------


def _op_class(op: str, label: str) -> str:
    if op.startswith("conv"):
        if "/dw" in label:
            return "conv_dw"
        return "conv1x1" if "/k1" in label and "/k1x" not in label else "conv"
    if op in ("linear", "matmul", "batch_norm", "layer_norm", "group_norm", "add", "mul", "cat"):
        return op
    if op in ("rms_norm", "instance_norm"):
        return "layer_norm" if op == "rms_norm" else "group_norm"
    if op in ("einsum", "baddbmm"):
        return "matmul"
    if op in _ATTENTION:
        return "attention"
    if op in _ACTS:
        return _ACTS[op]
    if "pool" in op:
        return "pool"
    if op in _RESHAPE:
        return "reshape"
    return "other"


def structure_stats(g: nx.DiGraph) -> dict[str, Any]:
    """The statistics the embedding uses, in readable units.

    Returns:
        dict with ``mix`` (fraction of operator nodes per class in ``OP_CLASSES``) and the
        scalars ``log10_params``, ``log2_nodes``, ``log2_depth``, ``log2_width``,
        ``log2_downsampling``, ``stages``, ``attention_share``, ``log2_input_side``,
        ``log2_max_channels``.
    """
    ops = [(d.get("op", ""), d.get("label", "")) for _, d in g.nodes(data=True)
           if d.get("op") not in ("input", "output")]
    counts = Counter(_op_class(op, label) for op, label in ops)
    n_ops = max(len(ops), 1)
    mix = {c: counts.get(c, 0) / n_ops for c in OP_CLASSES}
    num_params = g.graph.get("num_params") or sum(d.get("params", 0) for _, d in g.nodes(data=True))
    depth = nx.dag_longest_path_length(g) + 1 if nx.is_directed_acyclic_graph(g) else len(g)
    width = max((len(gen) for gen in nx.topological_generations(g)), default=1) \
        if nx.is_directed_acyclic_graph(g) else 1
    input_shape = g.graph.get("input_shape") or (3, 224, 224)
    input_side = max(int(min(input_shape[-2:])), 1)
    # resolutions are read off the layers that act on maps or tokens (convolution, pooling,
    # linear), never off attention scores, whose (N, heads, L, L) shape looks like a map
    sides = {s for _, d in g.nodes(data=True)
             if _acts_on_space(d.get("op", ""))
             and (s := spatial_size(d.get("shape") or ())) and 1 < s <= input_side}
    min_side = min(sides) if sides else input_side
    channels = [d["shape"][1] if len(d["shape"]) == 4 and spatial_size(d["shape"]) == d["shape"][2]
                else d["shape"][-1] for _, d in g.nodes(data=True)
                if d.get("op") in ("conv2d", "linear") and d.get("shape")]
    attention, conv = counts.get("attention", 0), sum(counts.get(c, 0) for c in
                                                       ("conv", "conv1x1", "conv_dw"))
    return {
        "mix": mix,
        "log10_params": math.log10(max(num_params, 1)),
        "log2_nodes": math.log2(max(g.number_of_nodes(), 1)),
        "log2_depth": math.log2(max(depth, 1)),
        "log2_width": math.log2(max(width, 1)),
        "log2_downsampling": math.log2(input_side / min_side),
        "stages": float(len({s for s in sides if s < input_side}) or 1),
        "attention_share": attention / (attention + conv) if attention + conv else 0.0,
        "log2_input_side": math.log2(input_side),
        "log2_max_channels": math.log2(max(channels, default=1)),
    }


def _acts_on_space(op: str) -> bool:
    return op.startswith("conv") or "pool" in op or op == "linear"


def _bumps(value: float, low: float, high: float) -> np.ndarray:
    t = min(max((value - low) / (high - low), -0.25), 1.25)
    centers = np.linspace(0.0, 1.0, _BUMPS)
    sigma = 1.0 / (_BUMPS - 1)
    return _unit(np.exp(-((t - centers) ** 2) / (2 * sigma**2)))


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v
