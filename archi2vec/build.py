"""Build a vision model on the meta device from a config, a name or a Hub id.

Nothing but ``config.json`` is ever read (no weights): parameters live on the ``meta``
device, so even ViT-H costs no weight memory. Four kinds of source are accepted:

* an ``nn.Module`` (returned unchanged);
* a transformers config: a ``PretrainedConfig``, a dict, or a path to a ``config.json``
  file or to a folder holding one (a local model folder or a Hub snapshot);
* a timm model name (``"resnet50"``, ``"vit_base_patch16_224.augreg_in21k"``; timm is optional);
* a Hugging Face Hub model id (``"google/vit-base-patch16-224"``, ``"timm/resnet50.a1_in1k"``):
  only its ``config.json`` is fetched, through the Hub cache (``HF_HUB_OFFLINE=1`` works).

Configs that name Hub code (``auto_map``) are refused unless ``trust_remote_code=True``.
Every config is checked before its model is built (:mod:`archi2vec._config_checks`): size
fields must be non-negative numbers, layer counts at most ``MAX_LAYERS``, the estimated
parameter count at most ``MAX_PARAMETERS`` (checked again, exactly, once built), and a timm
config passes only allow-listed architecture arguments to ``timm.create_model`` (never a
path, URL or file option such as ``checkpoint_path``, never its ``pretrained_cfg``), and an
``attn_implementation`` other than ``eager``/``sdpa`` (a Hub kernel) is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archi2vec._compat import import_timm, import_transformers, timm_available
from archi2vec._config_checks import (
    MAX_PARAMETERS,
    check_implementations,
    check_parameter_count,
    check_sizes,
    count_parameters,
    estimate_parameters,
    timm_kwargs,
)
from archi2vec.errors import InvalidArgumentError, RemoteCodeRefusedError, UnsupportedArchitectureError

__all__ = ["build", "describe_source", "LIBRARIES"]

LOG = logging.getLogger(__name__)

LIBRARIES = ("transformers", "timm")

Source = Any  # str | os.PathLike | Mapping | PretrainedConfig | nn.Module


def describe_source(source: Source) -> str:
    """A short, stable id for ``source`` used in errors and graph metadata.

    Example:
        >>> describe_source("resnet50")
        'resnet50'
    """
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, nn.Module):
        cfg = getattr(source, "config", None)
        name = getattr(cfg, "_name_or_path", "") or ""
        return name or type(source).__name__
    if isinstance(source, Mapping):
        return f"config:{source.get('model_type') or source.get('architecture') or '?'}"
    model_type = getattr(source, "model_type", None)
    if model_type is not None:
        name = getattr(source, "_name_or_path", "") or ""
        return name or f"config:{model_type}"
    return type(source).__name__


def build(
    source: Source,
    *,
    library: str | None = None,
    trust_remote_code: bool = False,
    max_parameters: int | None = MAX_PARAMETERS,
) -> nn.Module:
    """Build the model named by ``source`` on the meta device, in eval mode.

    Args:
        source: an ``nn.Module``, a transformers ``PretrainedConfig``, a config dict, a path
            to ``config.json`` (or a folder holding one), a timm model name or a Hub model id.
        library: ``"transformers"`` or ``"timm"`` to force how a string is read; ``None``
            guesses (a local path, then a timm registry name, then a Hub id).
        trust_remote_code: allow configs whose ``auto_map`` points at code on the Hub. The
            code still has to be importable offline; archi2vec never downloads code itself.
        max_parameters: refuse a model of more parameters (estimated before it is built,
            counted after); ``None`` for no bound. A module passed in is not checked.

    Returns:
        The model, parameters on ``torch.device("meta")``, ``eval()`` mode. A module passed
        in is returned as it is.

    Raises:
        UnsupportedArchitectureError: unknown name, unreadable config, unknown model type, or the
            model cannot be constructed (``model_id`` and ``reason`` say which and why).
        ImplausibleConfigError: a size field is not a non-negative number, a layer count is
            above ``MAX_LAYERS``, the model has more than ``max_parameters`` parameters, or a
            timm config passes a non-architecture argument (a subclass of the above).
        RemoteCodeRefusedError: the config needs remote code and ``trust_remote_code`` is False.
        InvalidArgumentError: ``library`` is not one of ``LIBRARIES`` (a ``ValueError``).

    Example:
        >>> model = build({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
        ...                "num_attention_heads": 2, "intermediate_size": 64})
        >>> next(model.parameters()).device.type
        'meta'
    """
    if library is not None and library not in LIBRARIES:
        raise InvalidArgumentError(f"library must be one of {LIBRARIES} or None, got {library!r}")
    model_id = describe_source(source)
    if isinstance(source, nn.Module):
        return source
    if isinstance(source, Mapping):
        model = _build_from_dict(dict(source), model_id, library, trust_remote_code, max_parameters)
    elif isinstance(source, (str, os.PathLike)):
        model = _build_from_string(os.fspath(source), model_id, library, trust_remote_code,
                                   max_parameters)
    elif hasattr(source, "model_type") and hasattr(source, "to_dict"):
        check_sizes(source.to_dict(), model_id)
        model = _build_transformers(source, model_id, trust_remote_code)
    else:
        raise UnsupportedArchitectureError(
            model_id,
            f"cannot build from a {type(source).__name__}; pass an nn.Module, a transformers "
            "config (object, dict or config.json path), a timm model name or a Hub model id",
        )
    check_parameter_count(count_parameters(model), model_id, estimated=False, limit=max_parameters)
    return model


# ---------------------------------------------------------------------------------------
# dispatch on the kind of source
# ---------------------------------------------------------------------------------------


def _build_from_string(text: str, model_id: str, library: str | None, trust: bool,
                       max_parameters: int | None) -> nn.Module:
    path = Path(text).expanduser()
    if path.exists():
        return _build_from_dict(_read_config_json(path, model_id), model_id, library, trust,
                                max_parameters)
    if (library == "timm" and "/" not in text) or (library is None and _is_timm_name(text)):
        return _build_timm(_strip_timm_prefix(text), {}, model_id)
    if "/" in text.strip("/") and not text.startswith((".", "/")):
        config = _fetch_hub_config(_strip_timm_prefix(text) if text.startswith("hf-hub:")
                                   else text, model_id)
        return _build_from_dict(config, model_id, library, trust, max_parameters)
    hint = "" if timm_available() else " (timm is not installed: `pip install 'fennec[timm]'`)"
    raise UnsupportedArchitectureError(
        model_id,
        f"not a local config path, not a timm model name{hint}, and not a Hub id "
        "(expected 'owner/name')",
    )


def _build_from_dict(config: dict, model_id: str, library: str | None, trust: bool,
                     max_parameters: int | None) -> nn.Module:
    """Check ``config`` (sizes, layer counts, estimated parameters), then build it."""
    _check_remote_code(config, model_id, trust)
    check_sizes(config, model_id)
    check_implementations(config, model_id)

    def construct(cfg: dict) -> nn.Module:
        return _construct_from_dict(cfg, model_id, library, trust)

    if max_parameters is not None:
        check_parameter_count(estimate_parameters(config, construct), model_id, estimated=True,
                              limit=max_parameters)
    return construct(config)


def _construct_from_dict(config: dict, model_id: str, library: str | None, trust: bool
                         ) -> nn.Module:
    is_timm = "architecture" in config and "model_type" not in config
    if library == "timm" or (library is None and is_timm):
        try:
            timm = import_timm()
        except ImportError as exc:
            raise UnsupportedArchitectureError(model_id, f"timm is needed for this model: {exc}") from exc
        arch, kwargs = timm_kwargs(config, model_id, timm)
        return _build_timm(arch, kwargs, model_id)
    model_type = config.get("model_type")
    if not model_type:
        raise UnsupportedArchitectureError(
            model_id, "config has neither 'model_type' (transformers) nor 'architecture' (timm)"
        )
    transformers = import_transformers()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise UnsupportedArchitectureError(
            model_id, f"transformers {transformers.__version__} does not know model_type "
                      f"{model_type!r}; upgrade transformers, or it needs remote code")
    rest = {k: v for k, v in config.items() if k != "model_type"}
    try:
        cfg = CONFIG_MAPPING[model_type](**rest)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnsupportedArchitectureError(
            model_id, f"invalid {model_type!r} config: {exc.__class__.__name__}: {exc}") from exc
    return _build_transformers(cfg, model_id, trust)


def _check_remote_code(config: Mapping | Any, model_id: str, trust: bool) -> None:
    auto_map = (config.get("auto_map") if isinstance(config, Mapping)
                else getattr(config, "auto_map", None))
    if auto_map and not trust:
        raise RemoteCodeRefusedError(
            model_id,
            f"config needs remote code (auto_map={sorted(auto_map)!r}); refusing to run it. "
            "Pass trust_remote_code=True (CLI: --trust-remote-code) if you trust this repository",
        )


# ---------------------------------------------------------------------------------------
# transformers
# ---------------------------------------------------------------------------------------


def _build_transformers(cfg: Any, model_id: str, trust: bool) -> nn.Module:
    _check_remote_code(cfg, model_id, trust)
    transformers = import_transformers()
    from transformers.models.auto import modeling_auto

    model_type = cfg.model_type
    names: Sequence[str] | None
    if model_type in modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        auto_cls = transformers.AutoModelForImageClassification
        names = modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES[model_type]
    else:
        auto_cls = transformers.AutoModel
        names = modeling_auto.MODEL_MAPPING_NAMES.get(model_type)
    if isinstance(names, (list, tuple)) and not getattr(cfg, "architectures", None):
        # types with several head classes (deit: with/without teacher) make the auto class
        # read config.architectures, which a bare config does not have: use the first one
        cfg.architectures = [names[0]]
    kwargs: dict[str, Any] = {"trust_remote_code": True} if trust and getattr(cfg, "auto_map", None) else {}
    # The architecture, not the storage precision: a config saved with dtype float16 (fp16
    # weights) would otherwise build a half-precision model whose trace mixes dtypes.
    kwargs["dtype"] = torch.float32
    return _on_meta(lambda: auto_cls.from_config(cfg, **kwargs), model_id)


# ---------------------------------------------------------------------------------------
# timm
# ---------------------------------------------------------------------------------------


def _strip_timm_prefix(name: str) -> str:
    return name[len("hf-hub:"):] if name.startswith("hf-hub:") else name


def _is_timm_name(name: str) -> bool:
    if "/" in name or not timm_available():
        return False
    try:
        timm = import_timm()
    except ImportError as exc:  # installed but broken: say so once, then treat as unknown
        LOG.warning("timm is installed but does not import: %s", exc)
        return False
    return bool(timm.is_model(name.split(".", 1)[0]))


def _build_timm(name: str, kwargs: dict, model_id: str) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)`` on meta. ``kwargs`` from a
    config must come from :func:`archi2vec._config_checks.timm_kwargs` (the allow-list)."""
    try:
        timm = import_timm()
    except ImportError as exc:
        raise UnsupportedArchitectureError(model_id, f"timm is needed for this model: {exc}") from exc
    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        raise UnsupportedArchitectureError(model_id, f"{arch!r} is not in timm {timm.__version__}'s "
                                           "registry; see timm.list_models()")
    return _on_meta(lambda: timm.create_model(arch, pretrained=False, **kwargs), model_id)


# ---------------------------------------------------------------------------------------
# config.json I/O and meta-device construction
# ---------------------------------------------------------------------------------------


def _read_config_json(path: Path, model_id: str) -> dict:
    file = path / "config.json" if path.is_dir() else path
    try:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise UnsupportedArchitectureError(model_id, f"cannot read config {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsupportedArchitectureError(model_id, f"{file} does not hold a JSON object")
    return data


def _fetch_hub_config(repo_id: str, model_id: str) -> dict:
    """Fetch ``config.json`` only, through the Hub cache (honours ``HF_HUB_OFFLINE``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HFValidationError

    try:
        file = hf_hub_download(repo_id, "config.json")
    except (OSError, HFValidationError, ValueError) as exc:
        # huggingface_hub's not-found / offline / connection errors all subclass OSError
        raise UnsupportedArchitectureError(
            model_id, f"cannot get config.json from the Hub or its cache: "
                      f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    return _read_config_json(Path(file), model_id)


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Register every new parameter on the meta device; buffers and compute stay on CPU.

    For models whose ``__init__`` computes on tensors (``.item()``, ``.tolist()``), which
    fails under ``torch.device("meta")``.
    """
    original = nn.Module.register_parameter

    def register(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(self, name, param)
        registered = self._parameters[name]
        if param is not None and registered is not None and param.device.type != "meta":
            self._parameters[name] = type(registered)(param.to("meta"), requires_grad=param.requires_grad)

    # patched for the duration of the build only (restored below); mypy's method-assign forbids
    # assigning to a method, which is what this patch is for
    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]  # the patch undone


def _describe(exc: BaseException) -> str:
    """``Class: first line``, following ``__cause__`` when the message is empty."""
    text = str(exc).strip()
    if not text and exc.__cause__ is not None:
        return f"{exc.__class__.__name__} from {_describe(exc.__cause__)}"
    return f"{exc.__class__.__name__}: {text.splitlines()[0][:300]}" if text else exc.__class__.__name__


def _on_meta(factory: Any, model_id: str) -> nn.Module:
    errors = []
    for attempt in ("meta-device", "meta-parameters"):
        ctx = torch.device("meta") if attempt == "meta-device" else _parameters_on_meta()
        try:
            with ctx:
                model = factory()
        except Exception as exc:  # any constructor failure is reported below
            errors.append(f"{attempt}: {_describe(exc)}")
            LOG.debug("building %s with %s failed", model_id, attempt, exc_info=True)
            continue
        model = model.to("meta").eval()
        if attempt != "meta-device":
            LOG.info("%s built with parameters on meta after: %s", model_id, errors[-1])
        return model
    raise UnsupportedArchitectureError(model_id, "cannot construct the model: " + "; ".join(errors))
