"""Fallback graph capture: run the model eagerly on meta tensors and record every torch call.

Used when ``torch.export`` fails (outputs that are not pytrees, Python side effects export
refuses, …). A :class:`torch.overrides.TorchFunctionMode` sees every torch function and
tensor method the forward calls (``F.conv2d``, ``F.linear``, ``Tensor.__add__`` …), which
is the same level as export's pre-dispatch ATen graph, so both give the same vocabulary
(see :mod:`archi2vec._nodes`). Data flow is followed through tensor identity: each output
tensor remembers the node that produced it (the recorder keeps the tensors alive for the
duration of the trace, so ``id()`` values are never reused). Forward pre/post hooks on the
submodules keep the current module path and class.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from archi2vec._nodes import canonical_op, node_label, shape_of

__all__ = ["record_graph"]

# calls that only read metadata or move nothing: not operators of the architecture
_SKIP = {"size", "dim", "numel", "stride", "is_contiguous", "is_floating_point", "element_size",
         "get", "data_ptr", "requires_grad_", "detach", "to", "type", "float", "cpu", "ndim",
         "shape", "device", "dtype", "storage_offset", "is_complex", "has_names", "names"}


class _Recorder(TorchFunctionMode):
    def __init__(self, graph: nx.DiGraph, input_tensor: torch.Tensor, params: dict[int, int]):
        super().__init__()
        self.graph = graph
        self.params = params  # id(parameter) -> numel, removed once counted
        self.producer: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps traced tensors alive so their ids stay unique
        self.module_stack: list[tuple[str, str]] = [("", "")]
        self._add_node("input", "input", (), shape_of(input_tensor), 0, [], label="input")
        self.producer[id(input_tensor)] = 0
        self.alive.append(input_tensor)

    def _add_node(self, op, target, in_shape, out_shape, n_params, preds, *, label) -> int:
        node = self.graph.number_of_nodes()
        path, cls = self.module_stack[-1]
        self.graph.add_node(node, op=op, target=target, module=path, module_class=cls,
                            shape=tuple(out_shape), params=int(n_params), label=label)
        for pred in dict.fromkeys(preds):
            self.graph.add_edge(pred, node)
        return node

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _SKIP or name == "__get__":
            return out
        out_tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not out_tensors:
            return out
        in_tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        preds = [self.producer[id(t)] for t in in_tensors if id(t) in self.producer]
        n_params = sum(self.params.pop(id(t), 0) for t in in_tensors)
        op = canonical_op(func)
        data = [t for t in in_tensors if not isinstance(t, nn.Parameter)]
        in_shape = shape_of(data[0]) if data else ()
        out_shape = shape_of(out_tensors[0])
        weight = args[1] if op.startswith("conv") and len(args) > 1 else kwargs.get("weight")
        groups = args[6] if op.startswith("conv") and len(args) > 6 else kwargs.get("groups", 1)
        label = node_label(op, in_shape=in_shape, out_shape=out_shape,
                           weight_shape=shape_of(weight), groups=int(groups or 1))
        target = f"{getattr(func, '__module__', None) or 'torch.Tensor'}.{getattr(func, '__qualname__', name)}"
        node = self._add_node(op, target, in_shape, out_shape, n_params, preds, label=label)
        for t in out_tensors:
            self.producer[id(t)] = node
        self.alive.append(out)
        return out


def record_graph(model: nn.Module, args: tuple, kwargs: dict) -> nx.DiGraph:
    """Run ``model(*args, **kwargs)`` once under the recorder and return its data-flow graph.

    Args:
        model: the model (normally on the meta device).
        args, kwargs: its inputs; the first tensor among them is the graph's ``input`` node.

    Returns:
        A DiGraph with integer nodes in execution order, attributes as in
        :func:`archi2vec.graph`; the last node, ``output``, collects the output tensors.

    Raises:
        Whatever the forward raises (the caller turns it into UnsupportedArchitectureError).
    """
    g = nx.DiGraph()
    inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    params = {id(p): p.numel() for p in model.parameters()}
    recorder = _Recorder(g, inputs[0], params)
    handles = []

    def push(path: str):
        def pre(module, _inputs):
            recorder.module_stack.append((path, f"{type(module).__module__}.{type(module).__qualname__}"))
        return pre

    def pop(_module, _inputs, _output):
        if len(recorder.module_stack) > 1:
            recorder.module_stack.pop()

    for path, module in model.named_modules():
        if path:
            handles.append(module.register_forward_pre_hook(push(path)))
            handles.append(module.register_forward_hook(pop, always_call=True))
    try:
        with torch.no_grad(), recorder:
            out = model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    outputs = [t for t in tree_flatten(_as_tree(out))[0] if isinstance(t, torch.Tensor)]
    preds = [recorder.producer[id(t)] for t in outputs if id(t) in recorder.producer]
    recorder.module_stack = [("", "")]
    recorder._add_node("output", "output", (), shape_of(outputs[0]) if outputs else (), 0,
                       preds, label="output")
    return g


def _as_tree(out: Any) -> Any:
    """transformers ModelOutput and other dataclass-like outputs -> plain containers."""
    if hasattr(out, "to_tuple"):
        return out.to_tuple()
    if hasattr(out, "__dict__") and not isinstance(out, torch.Tensor):
        return list(vars(out).values())
    return out
