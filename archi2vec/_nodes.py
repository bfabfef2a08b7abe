"""Node vocabulary shared by the two graph builders (torch.export and the eager recorder).

Both builders name an operator by its canonical short name (``conv2d``, ``linear``,
``scaled_dot_product_attention``, ``add`` …) so that a model captured by the fallback
recorder is embedded in the same vocabulary as an exported one, and both give every node a
``label``: the operator refined by what defines an architecture's inductive bias
(convolution kernel size, depthwise / grouped convolution, spatial downsampling).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["canonical_op", "node_label", "spatial_size", "shape_of", "clean_module_path"]

# aliases that the two builders spell differently
_ALIASES = {
    "convolution": "conv2d",
    "matmul": "matmul",
    "mm": "matmul",
    "bmm": "matmul",
    "addmm": "linear",
    "native_layer_norm": "layer_norm",
    "native_batch_norm": "batch_norm",
    "native_batch_norm_legit_no_training": "batch_norm",
    "native_group_norm": "group_norm",
    "radd": "add",
    "iadd": "add",
    "rmul": "mul",
    "imul": "mul",
    "truediv": "div",
    "rtruediv": "div",
    "itruediv": "div",
    "sub": "sub",
    "rsub": "sub",
    "isub": "sub",
    "floordiv": "floor_divide",
    "pow": "pow",
    "rpow": "pow",
    "neg": "neg",
    "getitem": "index",
    "split_with_sizes": "split",
    "unsafe_split": "split",
    "select": "index",
    "slice": "index",
    "index": "index",
    "contiguous": "clone",
    "safe_softmax": "softmax",
}


def canonical_op(target: Any) -> str:
    """Short, builder-independent operator name for an export target or a torch function.

    Example:
        >>> import torch
        >>> canonical_op(torch.ops.aten.conv2d.default), canonical_op(torch.Tensor.__add__)
        ('conv2d', 'add')
    """
    schema = getattr(target, "_schema", None)
    if schema is not None:  # an OpOverload such as aten.add.Tensor
        name = schema.name.split("::", 1)[-1]
    elif target is operator.getitem:
        name = "getitem"
    else:
        name = getattr(target, "__name__", None) or type(target).__name__
    name = name.strip("_")  # dunders, private ops and in-place variants: add_ -> add
    if name.startswith("upsample") or name == "interpolate":
        return "upsample"
    return _ALIASES.get(name, name)


def shape_of(value: Any) -> tuple[int, ...]:
    """Shape of a tensor (or of the first tensor in a tuple/list) as ints; ``()`` if none."""
    if isinstance(value, (tuple, list)):
        for item in value:
            shape = shape_of(item)
            if shape:
                return shape
        return ()
    dims = getattr(value, "shape", None)
    if dims is None:
        return ()
    out = []
    for dim in dims:
        try:
            out.append(int(dim))
        except (TypeError, ValueError, RuntimeError):  # unbacked symbolic size
            out.append(-1)
    return tuple(out)


def spatial_size(shape: Sequence[int]) -> int | None:
    """Spatial side length of a feature map or token grid, or ``None`` if there is none.

    4-D tensors: NCHW (H == W) or NHWC (H == W at positions 1, 2); other 4-D tensors
    (attention heads, non-square maps) count as non-spatial. 3-D token tensors (N, L, C): ``sqrt(L)``
    when L or L - k (k <= 8 extra tokens: class, distillation, registers) is a square > 1.
    """
    if len(shape) == 4:
        _, a, b, c = shape
        if b == c and b > 0:
            return int(b)
        if a == b and a > 0:
            return int(a)
        return None  # non-square, e.g. attention (N, heads, L, d): not a spatial map
    if len(shape) == 3:
        length = shape[1]
        for extra in range(0, 9):
            side = int(round(max(length - extra, 0) ** 0.5))
            if side > 1 and side * side == length - extra:
                return side
    return None


def node_label(
    op: str,
    *,
    in_shape: Sequence[int] = (),
    out_shape: Sequence[int] = (),
    weight_shape: Sequence[int] = (),
    groups: int = 1,
) -> str:
    """The node label Weisfeiler–Lehman hashing starts from.

    ``conv2d`` becomes e.g. ``conv2d/k3``, ``conv2d/k3/dw`` (depthwise), ``conv2d/k1/g``
    (grouped); any op turning a 4-D map into a smaller 4-D map gets ``/down``.

    Example:
        >>> node_label("conv2d", in_shape=(1, 64, 56, 56), out_shape=(1, 64, 28, 28),
        ...            weight_shape=(64, 1, 3, 3), groups=64)
        'conv2d/k3/dw/down'
    """
    label = op
    if op.startswith("conv") and len(weight_shape) >= 3:
        label += "/k" + "x".join(str(k) for k in dict.fromkeys(weight_shape[2:]))
        in_channels = in_shape[1] if len(in_shape) >= 2 else 0
        if groups > 1 and groups == in_channels:
            label += "/dw"
        elif groups > 1:
            label += "/g"
    if len(in_shape) == 4 and len(out_shape) == 4:
        s_in, s_out = spatial_size(in_shape), spatial_size(out_shape)
        if s_in and s_out and s_out < s_in:
            label += "/down"
    return label


def clean_module_path(path: str) -> str:
    """``L['self'].encoder.layer.0`` (older torch.export) -> ``encoder.layer.0``."""
    for prefix in ("L['self'].", "L['self']", "L__self__."):
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path


# operators that do not change what the network computes (eval-mode dropout, dtype casts,
# copies, metadata checks): contracted away so that both builders give the same graph
PASSTHROUGH_OPS = frozenset({
    "assert_tensor_metadata", "to", "long", "float", "half", "double", "int", "bool", "type",
    "type_as", "clone", "contiguous", "alias", "detach", "dropout", "feature_dropout",
    "alpha_dropout", "identity", "lift_fresh_copy", "_assert_async", "assert_async",
})


def simplify_graph(g: nx.DiGraph) -> nx.DiGraph:
    """The data path of a captured graph, renumbered 0..n-1 in execution order.

    1. Pass-through operators (``PASSTHROUGH_OPS``, and indexing that keeps the shape, such
       as ``x[:, :]``) are contracted: their predecessors are
       wired to their successors, their parameter counts move to the first successor.
    2. Only nodes on a path from ``input`` to ``output`` are kept, plus nodes that consume
       parameters on the way to ``output`` (e.g. a relative-position-bias lookup); constant
       side computations (``arange`` position ids, assertion checks) go, which export and
       the recorder treat differently.

    Idempotent; graph attributes are kept. Used by :func:`archi2vec.graph` on both captures.
    """
    import networkx as nx

    h = g.copy()
    while True:  # pruning can expose new pass-through nodes: repeat to a fixed point
        size = h.number_of_nodes()
        h = _contract_and_prune(h)
        if h.number_of_nodes() == size:
            break
    mapping = {old: new for new, old in enumerate(sorted(h.nodes))}
    out = nx.relabel_nodes(h, mapping, copy=True)
    out.graph.update(g.graph)
    return out


def _contract_and_prune(h: nx.DiGraph) -> nx.DiGraph:
    import networkx as nx

    for node in sorted(h.nodes):
        op = h.nodes[node].get("op")
        preds = list(h.predecessors(node))
        noop_index = (op == "index" and len(preds) == 1
                      and h.nodes[preds[0]].get("shape") == h.nodes[node].get("shape"))
        if op not in PASSTHROUGH_OPS and not noop_index:
            continue
        preds, succs = list(h.predecessors(node)), sorted(h.successors(node))
        if succs and h.nodes[node].get("params"):
            h.nodes[succs[0]]["params"] = h.nodes[succs[0]].get("params", 0) + h.nodes[node]["params"]
        h.add_edges_from((p, s) for p in preds for s in succs)
        h.remove_node(node)
    inputs = [n for n, d in h.nodes(data=True) if d.get("op") == "input"]
    outputs = [n for n, d in h.nodes(data=True) if d.get("op") == "output"]
    if inputs and outputs:
        down = set(inputs).union(*(nx.descendants(h, n) for n in inputs))
        up = set(outputs).union(*(nx.ancestors(h, n) for n in outputs))
        keep = (down & up) | {n for n in up if h.nodes[n].get("params")}
        lost = sum(h.nodes[n].get("params", 0) for n in h.nodes if n not in keep)
        h = h.subgraph(sorted(keep)).copy()
        if lost:  # parameters only used off the data path: attribute them to the output
            h.nodes[outputs[0]]["params"] = h.nodes[outputs[0]].get("params", 0) + lost
    return h
