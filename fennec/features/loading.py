"""Loading a Hub checkpoint (transformers or timm) as a feature extractor for
:mod:`fennec.features.extraction`, and where its penultimate features are read
(:func:`load_model`, :func:`spec_of`).

The config and the weights come from strangers. Before anything is allocated, the model is
built on the meta device by :func:`archi2vec.build`, which refuses implausible configs
(sizes, layer counts, parameters; a timm config passes only allow-listed architecture
arguments, never ``checkpoint_path`` or ``pretrained_cfg``), and its parameter count must fit
the weights file (at least half a byte per parameter). Weights are read as safetensors, or
with ``torch.load(weights_only=True)``, which refuses pickles that need code; no code from
the repository is ever run (``trust_remote_code=False``), and a config asking for
quantisation (``quantization_config``) is refused before transformers picks a quantiser.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import re
from pathlib import Path

import torch

from archi2vec._compat import import_timm, import_transformers
from fennec.errors import UnsupportedModelError
from fennec.hub.records import ModelFiles
from fennec.validation import resolve_device

LOG = logging.getLogger(__name__)

# Head attributes of transformers classifiers, in the order they are looked for.
# ``cls_classifier``: DeiTForImageClassificationWithTeacher, whose logits average a class-token
# head and a distillation-token head; fine-tuning DeiT keeps only the class-token head.
_HEAD_NAMES = ("classifier", "cls_classifier")


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Spec:
    """How to read features off a loaded model (attached to it as ``_fennec_spec``)."""

    kind: str  # "classifier" | "backbone" | "timm"
    repo_id: str
    head: str | None = None  # attribute name of the hooked head ("classifier" models)
    head_loaded: bool = True  # the head's weights came from the checkpoint
    pooler_loaded: bool = True  # the pooler's weights came from the checkpoint ("backbone")


def load_model(files: ModelFiles, *, device: str | torch.device | None = None) -> torch.nn.Module:
    """Build a model from its local files, in eval mode, float32, on ``device``.

    Args:
        files: from ``hub.fetch(repo_id, weights=True)``.
        device: ``"cpu"``, ``"cuda"``, a torch.device, or None (CUDA when available).

    Returns:
        The model. It carries how fennec reads its features; pass it to
        :func:`extract_features` with ``preprocessing=files.preprocessing()``.

    Raises:
        UnsupportedModelError: neither a transformers vision model nor a timm model, no
            weights, or timm is not installed for a timm model.
        InvalidInputError: ``device`` is not valid here.
    """
    dev = resolve_device(device)
    config = files.config
    _weights_path(files)  # refuses files fetched without weights
    is_timm = isinstance(config.get("architecture"), str) and not isinstance(config.get("model_type"), str)
    quantization = config.get("quantization_config")
    if quantization is not None:  # transformers would pick a quantiser (and its kernels) by it
        method = quantization.get("quant_method") if isinstance(quantization, dict) else None
        raise UnsupportedModelError(
            f"{files.repo_id}: its config asks for quantised weights (quantization_config, "
            f"quant_method {str(method)[:80]!r}); fennec loads float32 weights only, and a "
            "quantiser may fetch and run kernel code from the Hub.",
            repo_id=files.repo_id, revision=files.sha, reason="quantized")
    if is_timm or isinstance(config.get("model_type"), str):
        _check_size(files, library="timm" if is_timm else "transformers")
    if is_timm:
        model = _load_timm(files)
    elif isinstance(config.get("model_type"), str):
        model = _load_transformers(files)
    else:
        raise UnsupportedModelError(
            f"{files.repo_id}: config.json has neither 'model_type' (transformers) nor 'architecture' "
            "(timm); fennec can only extract features from transformers and timm vision models.",
            repo_id=files.repo_id, revision=files.sha, reason="unknown_library")
    return model.float().eval().to(dev)


#: Seconds allowed for building a config on the meta device before loading it for real.
_META_BUILD_TIMEOUT = 120.0
#: A checkpoint holds at least this many bytes per parameter (4-bit quantised: 0.5).
_MIN_BYTES_PER_PARAMETER = 0.5
#: How torch's weights-only unpickler names the callable it refused.
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _weights_path(files: ModelFiles) -> Path:
    """The weight file of ``files``.

    Raises:
        UnsupportedModelError: ``no_weights``: ``files`` were fetched without weights.
    """
    if files.weights_path is None:
        raise UnsupportedModelError(
            f"{files.repo_id}: no weights were fetched; call hub.fetch({files.repo_id!r}, weights=True).",
            repo_id=files.repo_id, revision=files.sha, reason="no_weights")
    return files.weights_path


def _check_size(files: ModelFiles, *, library: str) -> None:
    """Build the config on the meta device (archi2vec's checks), and refuse a model whose
    parameters could not be in its weights file, before any memory is allocated for it.

    Raises:
        UnsupportedModelError: ``implausible_config`` (archi2vec refused the config, or it
            describes more parameters than its weights hold) or ``over_budget``.
    """
    import archi2vec
    from archi2vec._timeout import call_with_timeout

    repo_id = files.repo_id
    try:
        meta = call_with_timeout(lambda: archi2vec.build(files.config, library=library),
                                 _META_BUILD_TIMEOUT, model_id=repo_id)
    except archi2vec.ImplausibleConfigError as e:
        raise UnsupportedModelError(f"{repo_id}: its config is refused: {e.reason}", repo_id=repo_id,
                                    revision=files.sha, reason="implausible_config") from e
    except archi2vec.TraceTimeoutError as e:
        raise UnsupportedModelError(
            f"{repo_id}: building its config on the meta device took more than "
            f"{_META_BUILD_TIMEOUT:g} s", repo_id=repo_id, revision=files.sha,
            reason="over_budget") from e
    except archi2vec.UnsupportedArchitectureError as e:  # the loader below says why, in its words
        LOG.debug("%s: archi2vec cannot build it on meta (%s); no size check", repo_id, e.reason)
        return
    parameters = sum(p.numel() for p in meta.parameters())
    weight_bytes = _weights_path(files).stat().st_size
    if parameters * _MIN_BYTES_PER_PARAMETER > weight_bytes:
        raise UnsupportedModelError(
            f"{repo_id}: its config describes {parameters:,} parameters, but its weights file "
            f"{_weights_path(files).name} has {weight_bytes:,} bytes (at least "
            f"{_MIN_BYTES_PER_PARAMETER:g} per parameter are needed); the config does not match "
            "its weights.", repo_id=repo_id, revision=files.sha, reason="implausible_config")


def _unsafe_weights(files: ModelFiles, error: BaseException) -> UnsupportedModelError:
    """The one-line error for a weights pickle that ``torch.load(weights_only=True)`` refused."""
    found = _UNSAFE_GLOBAL.search(str(error))
    names = f" (it calls {found.group(1)})" if found else ""
    name = Path(files.weights_path).name if files.weights_path else "?"
    return UnsupportedModelError(
        f"{files.repo_id}: its weights file {name} is a pickle that needs code to load{names}; "
        "fennec never runs code from a checkpoint and loads only safetensors or plain tensor "
        "pickles (torch.load with weights_only=True).",
        repo_id=files.repo_id, revision=files.sha, reason="unsafe_weights")


def _is_unpickling_refusal(error: BaseException) -> bool:
    node: BaseException | None = error
    while node is not None:
        if isinstance(node, pickle.UnpicklingError) or "Weights only load failed" in str(node):
            return True
        node = node.__cause__ or node.__context__
    return False


def _load_transformers(files: ModelFiles) -> torch.nn.Module:
    transformers = import_transformers()
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    config = files.config
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    has_head = any("ForImageClassification" in a for a in archs)
    if has_head and config["model_type"] not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise UnsupportedModelError(
            f"{files.repo_id}: transformers has no image-classification class for model_type "
            f"{config['model_type']!r} (architectures {archs}); upgrade transformers or pick another model.",
            repo_id=files.repo_id, revision=files.sha, reason="unsupported_architecture")
    auto = transformers.AutoModelForImageClassification if has_head else transformers.AutoModel
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # one "Loading weights" bar per candidate is noise
    safetensors = _weights_path(files).suffix == ".safetensors"
    try:
        model, info = auto.from_pretrained(str(files.folder), dtype=torch.float32, local_files_only=True,
                                           output_loading_info=True, trust_remote_code=False,
                                           use_safetensors=safetensors, weights_only=True)
    except Exception as e:
        if _is_unpickling_refusal(e):
            raise _unsafe_weights(files, e) from e
        if not isinstance(e, (ValueError, KeyError)):
            raise
        # an unknown model_type / config class
        raise UnsupportedModelError(
            f"{files.repo_id}: transformers cannot build model_type {config['model_type']!r} with "
            f"{auto.__name__} ({e}).", repo_id=files.repo_id, revision=files.sha,
            reason="unsupported_architecture") from e
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    if getattr(model, "main_input_name", None) != "pixel_values":
        raise UnsupportedModelError(
            f"{files.repo_id}: {type(model).__name__} takes {getattr(model, 'main_input_name', None)!r}, "
            "not images (pixel_values); fennec only ranks vision models.", repo_id=files.repo_id,
            revision=files.sha, reason="not_a_vision_model")
    missing = set(info.get("missing_keys") or ())
    n_keys = len(model.state_dict())
    if len(missing) > n_keys // 2:  # transformers would silently run a randomly initialised model
        raise UnsupportedModelError(
            f"{files.repo_id}: the checkpoint lacks {len(missing)} of the {n_keys} weights of "
            f"{type(model).__name__} (e.g. {sorted(missing)[:3]}); it does not match its config.",
            repo_id=files.repo_id, revision=files.sha, reason="weights_mismatch")
    if has_head:
        head_name, _ = _find_head(model, files.repo_id)
        head_loaded = not any(k.startswith(head_name + ".") for k in missing)
        if not head_loaded:
            LOG.warning("%s: the checkpoint has no weights for the head %r; its probabilities are "
                        "unusable and will be None", files.repo_id, head_name)
        spec = Spec("classifier", files.repo_id, head=head_name, head_loaded=head_loaded)
    else:
        spec = Spec("backbone", files.repo_id, pooler_loaded=not any(k.startswith("pooler.") for k in missing))
    model._fennec_spec = spec
    return model


def _load_timm(files: ModelFiles) -> torch.nn.Module:
    from archi2vec._config_checks import timm_kwargs
    from archi2vec.errors import ImplausibleConfigError

    try:
        timm = import_timm()
    except ImportError as e:
        raise UnsupportedModelError(
            f"{files.repo_id} is a timm model and timm is not installed: pip install 'fennec[timm]'.",
            repo_id=files.repo_id, revision=files.sha, reason="timm_missing") from e
    config = files.config
    if not timm.is_model(config["architecture"]):
        raise UnsupportedModelError(
            f"{files.repo_id}: timm {timm.__version__} has no architecture {config['architecture']!r}; "
            "upgrade timm.", repo_id=files.repo_id, revision=files.sha, reason="unsupported_architecture")
    try:  # the allow-list: architecture arguments only, never checkpoint_path or pretrained_cfg
        arch, kwargs = timm_kwargs(config, files.repo_id, timm)
    except ImplausibleConfigError as e:
        raise UnsupportedModelError(f"{files.repo_id}: its config is refused: {e.reason}",
                                    repo_id=files.repo_id, revision=files.sha,
                                    reason="implausible_config") from e
    model = timm.create_model(arch, pretrained=False, **kwargs)
    path = _weights_path(files)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise _unsafe_weights(files, e) from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UnsupportedModelError(
            f"{files.repo_id}: its weights do not fit timm's {arch!r} ({str(e)[:300]}).",
            repo_id=files.repo_id, revision=files.sha, reason="weights_mismatch") from e
    model._fennec_spec = Spec("timm", files.repo_id)
    return model


def _find_head(model: torch.nn.Module, repo_id: str) -> tuple[str, torch.nn.Module]:
    """The (attribute name, module) of a transformers classifier's head."""
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return name, head
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    if isinstance(head, torch.nn.Module):
        name = next(n for n, m in model.named_modules() if m is head)
        return name, head
    raise UnsupportedModelError(
        f"{repo_id}: cannot find the classification head of {type(model).__name__} (looked for "
        f"{', '.join(_HEAD_NAMES)} and get_output_embeddings()).", repo_id=repo_id,
        reason="no_head")


def spec_of(model: torch.nn.Module) -> Spec:
    """The spec attached by :func:`load_model`, or one inferred for a model built elsewhere."""
    spec = getattr(model, "_fennec_spec", None)
    if isinstance(spec, Spec):
        return spec
    name = type(model).__name__
    if callable(getattr(model, "forward_head", None)) and callable(getattr(model, "forward_features", None)):
        return Spec("timm", name)
    if "ForImageClassification" in name:
        return Spec("classifier", name, head=_find_head(model, name)[0])
    if hasattr(model, "config") and hasattr(model, "base_model_prefix"):
        return Spec("backbone", name)
    raise UnsupportedModelError(
        f"Cannot extract features from a {name}: pass a transformers image model, a timm model, "
        "or ModelFiles from hub.fetch(..., weights=True).", reason="unsupported_architecture")
