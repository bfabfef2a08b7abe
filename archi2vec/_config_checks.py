"""Checks on a config before its model is built: configs come from strangers on the Hub.

A ``config.json`` is data, but building its model runs library code sized by its numbers:
``num_hidden_layers: 100000`` builds for minutes and grows past 4 GB even on the meta device,
a NaN or negative size ends as a crash or as an empty model that embeds "fine", and a timm
``model_args`` entry is a keyword argument of ``timm.create_model``, whose ``checkpoint_path``
unpickles a file. Four checks run before the model is built, cheapest first:

1. **Size fields** (:func:`check_sizes`): every value under a key ending in one of
   ``SIZE_SUFFIXES`` (``hidden_size``, ``embed_dim``, ``num_hidden_layers``, ``depths``,
   ``num_heads``, ``num_channels``, ``num_classes`` …), in nested dicts and lists too, must be
   ``null``, a boolean flag (``fixed_input_size``), a non-negative integer or a finite
   non-negative float (``min_depth: 0.001`` of depth-estimation models). Strings, NaN,
   infinities and negative numbers are refused. ``id2label``/``label2id`` are skipped: their
   keys are class names, not fields.
2. **Layer counts** (:func:`check_sizes` too): integers under keys ending in ``DEPTH_SUFFIXES``
   (``num_hidden_layers``, ``depth``, ``depths``, ``layers``, ``stage_num_blocks`` …, but not
   ``min_*``/``max_*`` bounds) must not exceed ``MAX_LAYERS``.
3. **Parameter estimate** (:func:`estimate_parameters`): when a layer count is above 2, two
   copies of the model with every layer count set to 1 and then 2 are built on the meta device
   (milliseconds: no weights, two layers); their parameter counts ``p1``, ``p2`` give the cost
   of a layer, and ``p1 + (p2 - p1) * (L - 1)``, with ``L`` the largest layer count, estimates
   the whole model. It is exact for a uniform stack and an upper bound for stages of unequal
   depth (every stage is counted at the deepest one's depth). Above ``MAX_PARAMETERS`` the
   config is refused. Width-like fields are kept, so a huge ``hidden_size``, ``image_size`` or
   ``num_classes`` shows in both probes. The full model's exact count is checked again once
   built (:func:`check_parameter_count`), so a config whose probes fail to build is still bounded.
4. **timm arguments** (:func:`timm_kwargs`): only architecture arguments reach
   ``timm.create_model``: ``model_args`` keys must be constructor parameters of one of timm's
   model classes (the classes with ``forward_features`` in ``timm.models``), and no key naming
   a path, URL, file, directory, cache, checkpoint, pretrained source, device or dtype is
   passed, whatever timm accepts. The ``pretrained_cfg`` of a config is never passed.
5. **Implementations** (:func:`check_implementations`): ``attn_implementation`` and
   ``experts_implementation`` (nested configs too) may only be ``null`` or one of
   ``ALLOWED_IMPLEMENTATIONS``. transformers also accepts a Hub repository there
   (``"org/kernel"``, ``"msa|org/kernel"``; ``"flash_attention_2"`` falls back to one) and,
   with the ``kernels`` package installed, downloads and imports that code while building.

The bounds are deliberately loose (ten times the deepest and a little above the largest
vision model published, see the constants); the time and memory a build may take are bounded
separately (:class:`archi2vec.Sandbox`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from torch import nn

from archi2vec.errors import ImplausibleConfigError

__all__ = ["ALLOWED_IMPLEMENTATIONS", "MAX_LAYERS", "MAX_PARAMETERS", "SIZE_SUFFIXES",
           "DEPTH_SUFFIXES", "check_implementations", "check_sizes", "check_parameter_count",
           "count_parameters", "estimate_parameters", "timm_kwargs"]

#: Keys whose values are sizes, dimensions or counts (matched at the end of the key, any case).
SIZE_SUFFIXES = ("size", "sizes", "dim", "dims", "layers", "heads", "channels", "depth", "depths",
                 "blocks", "classes")
#: Keys whose integer values count layers or blocks (the ones a parameter estimate scales).
DEPTH_SUFFIXES = ("layers", "depth", "depths", "blocks")
#: The most layers (or blocks) one field may ask for. The deepest vision models stack 48
#: transformer layers (ViT-22B) or 36 blocks in a stage (ResNet-200); CIFAR ResNet-1202 has
#: 200 per stage; language models stop near 128. 512 leaves room for all of them, while the
#: 100 000-layer config this guards against is refused before anything is built.
MAX_LAYERS = 512
#: The most parameters a config may describe: above ViT-22B (2.2e10), the largest vision
#: backbone published. On the meta device parameters cost no memory, but a model this large
#: is no candidate for fine-tuning, and its weights would not fit where fennec loads them.
MAX_PARAMETERS = 30_000_000_000
#: Dicts whose keys are data (class names), not config fields.
_DATA_KEYS = frozenset({"id2label", "label2id"})
#: timm keyword arguments that could make timm read a file, fetch a URL or place tensors.
_FILE_LIKE = re.compile(r"path|file|url|uri|dir|cache|checkpoint|pretrained|hub|device|dtype",
                        re.IGNORECASE)
_TIMM_NAME = re.compile(r"^[A-Za-z0-9_]+$")
#: Config keys that choose code transformers loads while building (a Hub kernel among them).
_IMPLEMENTATION_KEYS = frozenset({"attn_implementation", "_attn_implementation",
                                  "experts_implementation", "_experts_implementation"})
#: The implementations a config may choose: transformers' own, which fetch nothing.
ALLOWED_IMPLEMENTATIONS = ("eager", "sdpa")


def _matches(key: Any, suffixes: tuple[str, ...]) -> bool:
    return isinstance(key, str) and key.lower().endswith(suffixes)


def _is_depth_key(key: Any) -> bool:
    return _matches(key, DEPTH_SUFFIXES) and not key.lower().startswith(("min_", "max_"))


def _size_fields(config: Mapping) -> Iterator[tuple[str, str, Any]]:
    """``(dotted path, key, value)`` of every size field in ``config``, nested dicts and lists
    too. Iterative, so that a deeply nested config cannot exhaust the interpreter's stack."""
    stack: list[tuple[str, Any]] = [("", config)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _DATA_KEYS:
                    continue
                name = f"{where}.{key}" if where else str(key)
                if _matches(key, SIZE_SUFFIXES):
                    yield name, key, value
                elif isinstance(value, (Mapping, list, tuple)):
                    stack.append((name, value))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(node)
                         if isinstance(v, (Mapping, list, tuple)))


def _leaves(value: Any) -> Iterator[Any]:
    """The leaves of a size field's value (itself, or the items of its lists and dicts)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        else:
            yield node


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad_size(value: Any) -> str | None:
    """Why ``value`` cannot be a size, or None if it can."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "a negative number" if value < 0 else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return "not a finite number"
        return "a negative number" if value < 0 else None
    return f"a {type(value).__name__}, not a number"


def check_sizes(config: Mapping, model_id: str) -> None:
    """Refuse a config whose size fields are not sizes, or that asks for too many layers.

    Args:
        config: a config as read from ``config.json`` (a dict).
        model_id: named in the error.

    Raises:
        ImplausibleConfigError: a size field holds a string, NaN, an infinity or a negative
            number, or a layer count is above ``MAX_LAYERS`` (the field is named).

    Example:
        >>> check_sizes({"hidden_size": 768, "depths": [3, 3, 9, 3]}, "demo")
        >>> check_sizes({"vision_config": {"hidden_size": "768"}}, "demo")
        Traceback (most recent call last):
        ...
        archi2vec.errors.ImplausibleConfigError: demo: config field 'vision_config.hidden_size' is '768': a str, not a number; sizes must be non-negative numbers (or null)
    """  # noqa: E501 - the doctest shows the whole error message
    for name, key, value in _size_fields(config):
        for leaf in _leaves(value):
            problem = _bad_size(leaf)
            if problem:
                raise ImplausibleConfigError(
                    model_id, f"config field {name!r} is {leaf!r}: {problem}; sizes must be "
                              "non-negative numbers (or null)")
            if _is_count(leaf) and leaf > MAX_LAYERS and _is_depth_key(key):
                raise ImplausibleConfigError(
                    model_id, f"config field {name!r} asks for {leaf} layers; archi2vec builds at "
                              f"most {MAX_LAYERS} per field (the deepest vision models have 48)")


def check_implementations(config: Mapping, model_id: str) -> None:
    """Refuse a config that chooses an attention or experts implementation other than
    transformers' built-in ``ALLOWED_IMPLEMENTATIONS`` (in nested configs too): another value
    may name a Hub repository whose code transformers would download and import.

    Raises:
        ImplausibleConfigError: such a value (the field is named).

    Example:
        >>> check_implementations({"vision_config": {"attn_implementation": "sdpa"}}, "demo")
        >>> check_implementations({"attn_implementation": "org/kernel"}, "demo")
        Traceback (most recent call last):
        ...
        archi2vec.errors.ImplausibleConfigError: demo: config field 'attn_implementation' is 'org/kernel'; archi2vec accepts only null, 'eager' or 'sdpa' (another value may name code on the Hub that transformers would download and run)
    """  # noqa: E501 - the doctest shows the whole error message
    stack: list[tuple[str, Any]] = [("", config)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, Mapping):
            entries = [(f"{where}.{k}" if where else str(k), k, v) for k, v in node.items()]
        else:
            entries = [(f"{where}[{i}]", None, v) for i, v in enumerate(node)]
        for name, key, value in entries:
            if (key in _IMPLEMENTATION_KEYS and value is not None
                    and not (isinstance(value, str) and value in ALLOWED_IMPLEMENTATIONS)):
                raise ImplausibleConfigError(
                    model_id, f"config field {name!r} is {value!r}; archi2vec accepts only null, "
                              f"{' or '.join(repr(v) for v in ALLOWED_IMPLEMENTATIONS)} (another "
                              "value may name code on the Hub that transformers would download "
                              "and run)")
            if isinstance(value, (Mapping, list, tuple)):
                stack.append((name, value))


def _deepest(config: Mapping) -> int:
    """The largest layer count in ``config`` (0 if it has none)."""
    return max((leaf for _, key, value in _size_fields(config) if _is_depth_key(key)
                for leaf in _leaves(value) if _is_count(leaf)), default=0)


def _with_depth(config: Mapping, depth: int) -> dict:
    """A copy of ``config`` with every layer count above ``depth`` set to ``depth``."""
    out = copy.deepcopy(dict(config))

    def clamp(value: Any) -> Any:
        if _is_count(value):
            return min(value, depth)
        if isinstance(value, list):
            return [clamp(v) for v in value]
        return value

    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _DATA_KEYS:
                    continue
                if _is_depth_key(key):
                    node[key] = clamp(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return out


def count_parameters(model: nn.Module) -> int:
    """Parameter elements of ``model`` (shared parameters once); works on the meta device."""
    return int(sum(p.numel() for p in model.parameters()))


def estimate_parameters(config: Mapping, construct: Callable[[dict], nn.Module]) -> int | None:
    """Estimate the parameters of ``config``'s model from two shallow copies built on meta.

    Args:
        config: the config (already through :func:`check_sizes`).
        construct: builds a config dict on the meta device (raising on failure).

    Returns:
        The estimate (see the module docstring), or None when no layer count is above 2 (the
        full model is then as cheap to build and count as a probe) or a shallow copy cannot
        be built (some configs tie other fields to the depth); the full model's exact count
        is checked after it is built in both cases.
    """
    deepest = _deepest(config)
    if deepest <= 2:
        return None
    counts = []
    for depth in (1, 2):
        try:
            counts.append(count_parameters(construct(_with_depth(config, depth))))
        except Exception:  # no estimate; the exact count is checked later
            return None
    per_layer = max(counts[1] - counts[0], 0)
    return counts[0] + per_layer * (deepest - 1)


def check_parameter_count(count: int | None, model_id: str, *, estimated: bool,
                          limit: int | None = MAX_PARAMETERS) -> None:
    """Refuse a model of more than ``limit`` parameters (``count`` None or ``limit`` None: pass).

    Raises:
        ImplausibleConfigError: ``count`` is above ``limit``.
    """
    if count is None or limit is None or count <= limit:
        return
    how = "is estimated at" if estimated else "has"
    when = "; refused before building it" if estimated else ""
    raise ImplausibleConfigError(
        model_id, f"the model its config describes {how} {count:.3g} parameters, above the bound "
                  f"of {limit:.3g} (the largest vision models have about 2.2e10){when}")


# ---------------------------------------------------------------------------------------
# timm
# ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _timm_architecture_args(timm_version: str) -> frozenset[str]:
    """Constructor parameters of timm's model classes (those with ``forward_features``)."""
    names: set[str] = set()
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("timm.models.") or module is None:
            continue
        for obj in list(vars(module).values()):
            if not (inspect.isclass(obj) and issubclass(obj, nn.Module)
                    and obj.__module__ == module_name and hasattr(obj, "forward_features")):
                continue
            try:
                params = list(inspect.signature(obj.__init__).parameters.values())[1:]
            except (TypeError, ValueError):
                continue
            names.update(p.name for p in params
                         if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return frozenset(n for n in names if not _FILE_LIKE.search(n))


def timm_kwargs(config: Mapping, model_id: str, timm: ModuleType) -> tuple[str, dict]:
    """The architecture name and keyword arguments to build a timm ``config.json``'s model.

    Only the architecture (without its pretrained tag) and allow-listed ``model_args`` are
    used, plus ``num_classes`` (0 when the config gives ``num_features`` only, i.e. a
    backbone); nothing from ``pretrained_cfg``.

    Args:
        config: the timm config (``architecture``, ``num_classes``, ``model_args`` …).
        model_id: named in errors.
        timm: the imported timm module.

    Returns:
        ``(architecture, kwargs)`` for ``timm.create_model(architecture, pretrained=False, **kwargs)``.

    Raises:
        ImplausibleConfigError: no usable architecture name, ``model_args`` is not an object,
            or it holds a key naming a path, URL or file option, or a key that is no
            architecture argument of any timm model class.

    Example:
        >>> import archi2vec._compat as c
        >>> timm_kwargs({"architecture": "resnet18.a1_in1k", "num_classes": 10,
        ...              "model_args": {"drop_rate": 0.1}}, "demo", c.import_timm())
        ('resnet18', {'drop_rate': 0.1, 'num_classes': 10})
    """
    arch = config.get("architecture")
    if not isinstance(arch, str) or not _TIMM_NAME.match(arch.split(".", 1)[0]):
        raise ImplausibleConfigError(
            model_id, f"timm config.json has no usable 'architecture' name (got {arch!r}); "
                      "expected a timm registry name such as 'resnet50' or 'resnet50.a1_in1k'")
    args = config.get("model_args")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise ImplausibleConfigError(model_id, f"timm 'model_args' must be a JSON object, got "
                                               f"a {type(args).__name__}")
    refused = sorted(str(k) for k in args if not isinstance(k, str) or _FILE_LIKE.search(k))
    if refused:
        raise ImplausibleConfigError(
            model_id, f"timm model_args {refused} name a path, URL, file, cache, checkpoint, "
                      "device or dtype option; archi2vec passes only architecture arguments to "
                      "timm.create_model, so that a config can never make it read a file")
    allowed = _timm_architecture_args(str(getattr(timm, "__version__", "")))
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        raise ImplausibleConfigError(
            model_id, f"timm model_args {unknown} are not architecture arguments of any timm "
                      f"{getattr(timm, '__version__', '')} model class; only those are passed "
                      "to timm.create_model")
    kwargs = dict(args)  # as in timm's own Hub loader, model_args win over the top-level fields
    if "num_classes" in config:
        kwargs.setdefault("num_classes", config["num_classes"])
    elif "num_features" in config:
        kwargs.setdefault("num_classes", 0)
    return arch.split(".", 1)[0], kwargs
