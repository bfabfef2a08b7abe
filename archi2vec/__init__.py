"""archi2vec: a vision architecture as a vector, from its config alone.

Build a model on the meta device from a config, a timm name or a Hub id (no weights),
capture its computation graph with ``torch.export`` (an eager recorder is the fallback),
and embed the graph as a fixed-size, deterministic, L2-normalised vector (Weisfeiler–Lehman
subtree features plus structure statistics). Configs are checked before building (sizes,
layer counts, estimated parameters; :mod:`archi2vec._config_checks`), and :class:`Sandbox`
embeds configs from strangers in a worker process with a time and a memory budget.
:func:`architecture_key` names an architecture independently of its labels and names, so
that each is embedded once (:mod:`archi2vec.arch_key`).

Example:
    >>> import archi2vec
    >>> cfg = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
    ...        "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
    ...        "patch_size": 8}
    >>> v = archi2vec.embed(cfg)
    >>> v.shape
    (256,)
"""

from __future__ import annotations

from archi2vec._config_checks import MAX_LAYERS, MAX_PARAMETERS
from archi2vec._sandbox import Sandbox
from archi2vec.arch_key import architecture_config, architecture_key
from archi2vec.build import build
from archi2vec.embed import EMBEDDER_VERSION, MIN_DIM, embed, embed_graph, similarity
from archi2vec.errors import (
    Archi2VecError,
    BudgetExceededError,
    ImplausibleConfigError,
    InvalidArgumentError,
    RemoteCodeRefusedError,
    SandboxError,
    TraceTimeoutError,
    UnsupportedArchitectureError,
    deprecated_name,
)
from archi2vec.graph import graph, input_shape_for, write_graphml

__all__ = [
    "EMBEDDER_VERSION",
    "MAX_LAYERS",
    "MAX_PARAMETERS",
    "MIN_DIM",
    "Archi2VecError",
    "BudgetExceededError",
    "ImplausibleConfigError",
    "InvalidArgumentError",
    "RemoteCodeRefusedError",
    "Sandbox",
    "SandboxError",
    "TraceTimeoutError",
    "UnsupportedArchitectureError",
    "architecture_config",
    "architecture_key",
    "build",
    "embed",
    "embed_graph",
    "graph",
    "input_shape_for",
    "similarity",
    "write_graphml",
]


def __getattr__(name: str) -> type[Exception]:
    # ``archi2vec.UnsupportedModelError``: the old name of UnsupportedArchitectureError
    return deprecated_name(__name__, name)
