"""Capture a model's computation graph as a networkx DiGraph, on meta tensors.

The primary capture is ``torch.export.export`` (non-strict) of the meta-device model on a
meta input: it works on transformers and timm vision models, costs no memory for weights or
activations, and gives a pre-dispatch ATen graph (``conv2d``, ``linear``, ``layer_norm``,
``scaled_dot_product_attention`` …). When export fails, an eager recorder
(:mod:`archi2vec._recorder`) runs the forward once under a TorchFunctionMode instead. Building
the model and both captures run under one wall-clock limit (:mod:`archi2vec._timeout`).

Graph format (both builders):

* nodes are integers in execution order; node 0 is ``input`` and the last one ``output``;
  only the data path is kept: pass-through operators (eval-mode dropout, casts, copies) are
  contracted and constant side computations dropped (:func:`archi2vec._nodes.simplify_graph`),
  which makes the two builders agree;
* node attributes: ``op`` (canonical operator name), ``target`` (the exact ATen overload or
  torch function), ``module`` (dotted path of the innermost submodule), ``module_class``,
  ``shape`` (output shape, a tuple of ints; ``()`` if not a tensor), ``params`` (number of
  parameter elements this node consumes, each parameter counted at its first use) and
  ``label`` (operator refined by kernel size / depthwise / downsampling, see
  :func:`archi2vec._nodes.node_label`);
* edges go from producer to consumer (data flow); parameters and buffers are not nodes;
* graph attributes: ``model_id``, ``model_class``, ``method`` (``"export"`` or ``"record"``),
  ``input_shape`` (C, H, W), ``num_params`` (all parameters of the model) and, after a
  fallback, ``export_error``.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import time
from collections.abc import Sequence
from typing import Any

import networkx as nx
import torch
from torch import nn

from archi2vec._nodes import (
    canonical_op,
    clean_module_path,
    node_label,
    shape_of,
    simplify_graph,
)
from archi2vec._recorder import record_graph
from archi2vec._timeout import call_with_timeout
from archi2vec.build import Source, build, describe_source
from archi2vec.errors import InvalidArgumentError, TraceTimeoutError, UnsupportedArchitectureError

__all__ = ["graph", "input_shape_for", "write_graphml", "DEFAULT_TIMEOUT", "METHODS"]

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0  # seconds for building the model and the whole capture
METHODS = ("export", "record")


def graph(
    source: Source,
    *,
    input_size: int | Sequence[int] | None = None,
    method: str = "export",
    timeout: float | None = DEFAULT_TIMEOUT,
    library: str | None = None,
    trust_remote_code: bool = False,
) -> nx.DiGraph:
    """Build ``source`` on the meta device and capture its computation graph.

    Args:
        source: anything :func:`archi2vec.build` accepts (config, name, Hub id, module). A
            module passed in is traced where its parameters are (meta, or for real on CPU).
        input_size: image size: ``224``, ``(H, W)`` or ``(C, H, W)``. ``None`` reads it from
            the model: transformers ``config.image_size`` / ``num_channels``, timm
            ``pretrained_cfg["input_size"]``, else 3 x 224 x 224.
        method: ``"export"`` (torch.export, falling back to the recorder on failure) or
            ``"record"`` (the eager recorder only: about 10x faster, same vocabulary).
        timeout: wall-clock seconds for building the model and the whole capture (export
            plus any fallback), or ``None``.
        library, trust_remote_code: passed to :func:`archi2vec.build`.

    Returns:
        The data-flow DiGraph described in this module's docstring.

    Raises:
        UnsupportedArchitectureError: the model cannot be built, or neither capture works.
        ImplausibleConfigError: the config was refused before building (a subclass of the above).
        TraceTimeoutError: building or capturing ran out of time (a subclass of the above).
        InvalidArgumentError: bad ``method``, ``timeout`` or ``input_size`` (a ``ValueError``).

    Example:
        >>> g = graph({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
        ...            "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
        ...            "patch_size": 8})
        >>> g.graph["method"], g.nodes[0]["op"]
        ('export', 'input')
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, got {method!r}")
    model_id = describe_source(source)
    if timeout is not None and not timeout > 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    limit = math.inf if timeout is None else float(timeout)  # for TraceTimeoutError, raised only with a timeout
    model = call_with_timeout(
        lambda: build(source, library=library, trust_remote_code=trust_remote_code), timeout,
        model_id=model_id)
    shape = input_shape_for(model, input_size)
    args, kwargs = _model_inputs(model, shape, model_id)
    export_error = None
    g = None
    if method == "export":
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TraceTimeoutError(model_id, limit)
        try:
            g = call_with_timeout(lambda: _export_graph(model, args, kwargs), remaining,
                                  model_id=model_id)
        except TraceTimeoutError as exc:
            raise TraceTimeoutError(model_id, limit) from exc
        except Exception as exc:  # any export failure triggers the fallback
            export_error = f"{exc.__class__.__name__}: {_first_line(exc)}"
            LOG.info("torch.export failed for %s (%s); using the eager recorder",
                     model_id, export_error)
    if g is None:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TraceTimeoutError(model_id, limit)
        try:
            g = call_with_timeout(lambda: record_graph(model, args, kwargs), remaining,
                                  model_id=model_id)
        except TraceTimeoutError as exc:
            raise TraceTimeoutError(model_id, limit) from exc
        except Exception as exc:  # reported with the export error
            reason = f"recorder failed: {exc.__class__.__name__}: {_first_line(exc)}"
            if export_error:
                reason = f"torch.export failed: {export_error}; {reason}"
            raise UnsupportedArchitectureError(model_id, reason) from exc
        method_used = "record"
    else:
        method_used = "export"
    g = simplify_graph(g)
    g.graph.update(
        model_id=model_id,
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        method=method_used,
        input_shape=tuple(shape),
        num_params=int(sum(p.numel() for p in model.parameters())),
    )
    if export_error:
        g.graph["export_error"] = export_error
    return g


def input_shape_for(model: nn.Module, input_size: int | Sequence[int] | None = None
                    ) -> tuple[int, int, int]:
    """The (C, H, W) input a model expects (see :func:`graph` for the rules).

    Example:
        >>> input_shape_for(torch.nn.Identity(), 32)
        (3, 32, 32)
    """
    channels, height, width = 3, 224, 224
    cfg = getattr(model, "config", None)
    pcfg = getattr(model, "pretrained_cfg", None)
    if cfg is not None:
        vision = getattr(cfg, "vision_config", None) or cfg
        channels = int(getattr(vision, "num_channels", channels) or channels)
        size = getattr(vision, "image_size", None)
        if isinstance(size, dict):
            size = (size.get("height"), size.get("width"))
        if isinstance(size, int) and size > 0:
            height = width = size
        elif isinstance(size, (list, tuple)) and len(size) == 2 and all(size):
            height, width = int(size[0]), int(size[1])
    elif isinstance(pcfg, dict) and len(pcfg.get("input_size") or ()) == 3:
        channels, height, width = (int(v) for v in pcfg["input_size"])
    if input_size is None:
        return channels, height, width
    if isinstance(input_size, int):
        values: tuple[int, ...] = (channels, input_size, input_size)
    else:
        values = tuple(int(v) for v in input_size)
        if len(values) == 2:
            values = (channels, *values)
    if len(values) != 3 or min(values) < 1:
        raise InvalidArgumentError(f"input_size must be N, (H, W) or (C, H, W) with positive ints, "
                                   f"got {input_size!r}")
    return values


def write_graphml(g: nx.DiGraph, path: str | os.PathLike) -> None:
    """Write ``g`` as GraphML; tuple attributes (shapes) become ``"1x768x14x14"`` strings.

    Example:
        >>> write_graphml(nx.DiGraph(), "/tmp/empty.graphml")
    """
    out = nx.DiGraph()
    out.graph.update({k: _graphml_value(v) for k, v in g.graph.items()})
    for node, data in g.nodes(data=True):
        out.add_node(node, **{k: _graphml_value(v) for k, v in data.items()})
    out.add_edges_from(g.edges())
    nx.write_graphml(out, os.fspath(path))


# ---------------------------------------------------------------------------------------
# internals
# ---------------------------------------------------------------------------------------


def _graphml_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _model_inputs(model: nn.Module, shape: tuple[int, int, int], model_id: str
                  ) -> tuple[tuple, dict]:
    x = torch.empty((1, *shape), device=_device_of(model))
    main_input = getattr(model, "main_input_name", None)
    if main_input is None:
        return (x,), {}
    if main_input == "inputs" and "ImageClassification" in type(model).__name__:
        return (), {"inputs": x}  # Perceiver's image classifiers take the image as `inputs`
    if main_input != "pixel_values":
        raise UnsupportedArchitectureError(
            model_id, f"{type(model).__name__} takes {main_input!r}, not an image "
                      "(archi2vec embeds models whose input is pixel_values)")
    return (), {"pixel_values": x}


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("meta")


def _export_graph(model: nn.Module, args: tuple, kwargs: dict) -> nx.DiGraph:
    with torch.no_grad():
        program = torch.export.export(model, args, kwargs, strict=False)
    sig = program.graph_signature
    user_inputs = set(sig.user_inputs)
    param_inputs = dict(sig.inputs_to_parameters)  # placeholder name -> parameter FQN
    numel = {name: p.numel() for name, p in model.named_parameters(remove_duplicate=False)}
    g = nx.DiGraph()
    ids: dict[Any, int] = {}  # fx node -> graph node (getitem nodes alias their source)
    unused_params: dict[Any, int] = {}
    first_input = True
    for node in program.graph.nodes:
        if node.op == "placeholder":
            if node.name in param_inputs:
                unused_params[node] = int(numel.get(param_inputs[node.name], 0))
            elif node.name in user_inputs and first_input:
                ids[node] = _add(g, "input", "input", "", "", shape_of(node.meta.get("val")),
                                 0, "input")
                first_input = False
            continue
        if node.op == "call_function" and node.target is operator.getitem:
            if node.args[0] in ids:
                ids[node] = ids[node.args[0]]
            continue
        if node.op not in ("call_function", "output"):
            continue
        inputs = node.all_input_nodes
        n_params = sum(unused_params.pop(n, 0) for n in inputs)
        if node.op == "output":
            op, target, path, cls, label = "output", "output", "", "", "output"
            out_shape = shape_of([n.meta.get("val") for n in inputs if n in ids])
        else:
            op, target = canonical_op(node.target), str(node.target)
            path, cls = _innermost_module(node)
            data = [n for n in inputs if n in ids]
            in_shape = shape_of(data[0].meta.get("val")) if data else ()
            out_shape = shape_of(node.meta.get("val"))
            weight: tuple[int, ...] = ()
            groups: Any = 1  # an fx node argument
            if op.startswith("conv") and len(node.args) > 1:
                weight = shape_of(getattr(node.args[1], "meta", {}).get("val"))
                groups = node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1)
            label = node_label(op, in_shape=in_shape, out_shape=out_shape,
                               weight_shape=weight, groups=int(groups or 1))
        new = _add(g, op, target, path, cls, out_shape, n_params, label)
        for pred in dict.fromkeys(ids[n] for n in inputs if n in ids):
            g.add_edge(pred, new)
        ids[node] = new
    return g


def _add(g: nx.DiGraph, op: str, target: str, path: str, cls: str,
         shape: tuple[int, ...], n_params: int, label: str) -> int:
    node = g.number_of_nodes()
    g.add_node(node, op=op, target=target, module=path, module_class=cls, shape=tuple(shape),
               params=int(n_params), label=label)
    return node


def _innermost_module(node: Any) -> tuple[str, str]:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, cls = list(stack.values())[-1]
    if isinstance(cls, type):
        cls = f"{cls.__module__}.{cls.__qualname__}"
    return clean_module_path(str(path)), str(cls)
