"""Penultimate features of pre-trained vision models on a sample of the user's images.

This is the forward-pass half of step 4 of :func:`fennec.recommend`: for each shortlisted
model, run the sampled images through it once and keep

* the **penultimate features** ``(N, D)``: exactly the tensor that enters the model's
  classification head, i.e. what a fine-tuned linear head would see (SFDA, LogME, PED …);
* the **source-class probabilities** ``(N, C_s)``: the softmax of the pre-trained head
  (LEEP, NCE), or ``None`` for a backbone without a head.

Three kinds of models are supported:

* transformers image classifiers (``AutoModelForImageClassification``): the features are
  captured by a forward pre-hook on the head module (``classifier`` for ResNet, ConvNeXt,
  ViT, Swin, RegNet, MobileNetV2, PoolFormer …; ``cls_classifier`` for DeiT-with-teacher,
  the class-token head a fine-tuned DeiT keeps; else ``get_output_embeddings()``);
* transformers backbones (``image-feature-extraction``, ``AutoModel``): ``pooler_output``
  when the checkpoint has the pooler's weights, else the class token, else the mean token
  (or the spatial mean of a feature map);
* timm models (``config.json`` with ``architecture``): ``forward_head(forward_features(x),
  pre_logits=True)``.

Models are built by :mod:`fennec.features.loading`; results are cached on disk by (model
commit sha, sample fingerprint) in :class:`fennec.features.cache.FeatureCache`, and
:func:`fennec.features.cache.model_features` is the entry point that ties hub, cache and
extraction together.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import numpy as np
import torch

from fennec import _progress
from fennec.errors import FeatureExtractionError, InvalidInputError
from fennec.features.loading import Spec, load_model, spec_of
from fennec.hub.records import ModelFiles, Preprocessing
from fennec.validation import check_positive_int, resolve_device

__all__ = [
    "ExtractedFeatures",
    "SampleLike",
    "extract_features",
    "preprocess",
]

LOG = logging.getLogger(__name__)

_INTERPOLATION = {
    "nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5,
}  # PIL.Image.Resampling values


class SampleLike(Protocol):
    """What :func:`model_features` needs from a dataset sample (e.g. ``fennec.data``'s).

    Attributes:
        images: PIL images, any size and mode (converted to RGB).
        labels: ``(N,)`` int64 class labels.
        fingerprint: sha256 of the sample content (dataset, sampled rows, seed): the cache key.
    """

    @property
    def images(self) -> list: ...

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def fingerprint(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class ExtractedFeatures:
    """One model's outputs on one sample.

    Attributes:
        model_id: ``org/name``.
        sha: the commit the weights come from.
        features: ``(N, D)`` float32, the input of the classification head (penultimate).
        probabilities: ``(N, C_s)`` float32 softmax of the pre-trained head; None without a head.
        forward_passes: images run through the model for this call (0 when served from cache).
        seconds: wall time of the call, loading included.
        cached: True when served from the :class:`FeatureCache`.
    """

    model_id: str
    sha: str
    features: np.ndarray
    probabilities: np.ndarray | None
    forward_passes: int
    seconds: float
    cached: bool


# ---------------------------------------------------------------------------------------
# Forward passes
# ---------------------------------------------------------------------------------------


class _TimmModel(Protocol):
    """The two methods of a timm model that fennec calls (``nn.Module`` does not declare them)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...


def _forward_fn(model: torch.nn.Module,
                spec: Spec) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]:
    """``x (B, C, H, W) -> (features (B, D), logits (B, C_s) or None)`` for this kind of model."""
    if spec.kind == "timm":
        has_head = int(getattr(model, "num_classes", 0) or 0) > 0
        timm_model = cast(_TimmModel, model)

        def run_timm(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            maps = timm_model.forward_features(x)
            feats = timm_model.forward_head(maps, pre_logits=True)
            return feats, (timm_model.forward_head(maps) if has_head else None)

        return run_timm

    if spec.kind == "classifier":
        assert spec.head is not None, "a classifier's Spec names its head"
        head = model.get_submodule(spec.head)

        def run_classifier(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            captured: list[torch.Tensor] = []

            def grab(module, args, kwargs):  # the tensor that enters the head
                captured.append(args[0] if args else next(iter(kwargs.values())))

            handle = head.register_forward_pre_hook(grab, with_kwargs=True)
            try:
                logits = model(pixel_values=x).logits
            finally:
                handle.remove()
            if len(captured) != 1:
                raise FeatureExtractionError(
                    f"the head {spec.head!r} ran {len(captured)} times in one forward pass (expected once); "
                    "cannot tell which input is the penultimate feature", model_id=spec.repo_id)
            return captured[0], (logits if spec.head_loaded else None)

        return run_classifier

    uses_cls = getattr(getattr(model, "embeddings", None), "cls_token", None) is not None

    def run_backbone(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None and spec.pooler_loaded:
            return pooled, None
        hidden = out.last_hidden_state
        if hidden.ndim == 4:  # (B, C, H, W) feature map
            return hidden.mean(dim=(2, 3)), None
        return (hidden[:, 0] if uses_cls else hidden.mean(dim=1)), None  # (B, T, D) tokens

    return run_backbone


def preprocess(images: Sequence[Any], preprocessing: Preprocessing) -> torch.Tensor:
    """Images → a normalised float32 batch ``(B, C, H, W)``, timm's eval transform.

    Each image is resized so that it covers ``input_size / crop_pct`` (shorter side for a
    square input) with the configured interpolation, centre-cropped to ``input_size`` and
    scaled to [0, 1]; mean/std normalisation is done on the whole batch at once.

    Args:
        images: PIL images (any mode, any size) or ``(H, W[, C])`` uint8 arrays.
        preprocessing: from ``ModelFiles.preprocessing()``.

    Raises:
        InvalidInputError: not an image, an unknown interpolation, or sizes above
            :data:`fennec.hub.records.MAX_INPUT_SIDE` (:meth:`Preprocessing.size_problem`).
    """
    from PIL import Image

    problem = preprocessing.size_problem()
    if problem:  # bounds the memory of the resized batch, whoever built the Preprocessing
        raise InvalidInputError(problem[0].upper() + problem[1:])
    channels, height, width = preprocessing.input_size
    try:
        resample = _INTERPOLATION[preprocessing.interpolation]
    except KeyError:
        raise InvalidInputError(
            f"Unknown interpolation {preprocessing.interpolation!r} in the model's preprocessing; "
            f"expected one of {sorted(_INTERPOLATION)}.") from None
    scale_h, scale_w = preprocessing.resize_side()
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for i, img in enumerate(images):
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img)
        if not isinstance(img, Image.Image):
            raise InvalidInputError(f"images[{i}] is a {type(img).__name__}; expected a PIL image "
                                    "or an (H, W, C) uint8 array.")
        if img.mode != mode:
            img = img.convert(mode)
        w, h = img.size
        if scale_h == scale_w:  # shorter side to the scale size, aspect ratio kept (timm's Resize(int))
            s = scale_h / min(w, h)
        else:  # smallest size that covers (scale_h, scale_w), aspect ratio kept
            s = max(scale_h / h, scale_w / w)
        new_w, new_h = max(width, round(w * s)), max(height, round(h * s))
        if (new_w, new_h) != (w, h):
            img = img.resize((new_w, new_h), resample=resample)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        arr = np.asarray(img, dtype=np.uint8)
        arrays.append(arr.reshape(new_h, new_w, channels)[top:top + height, left:left + width])
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, C, H, W) uint8
    mean = torch.tensor(preprocessing.mean[:channels], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std[:channels], dtype=torch.float32).view(1, -1, 1, 1)
    return (batch.float().div_(255.0) - mean).div_(std)


def extract_features(model_or_files: torch.nn.Module | ModelFiles, images: Sequence[Any], *,
                     preprocessing: Preprocessing | None = None,
                     device: str | torch.device | None = None, batch_size: int = 64,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Penultimate features and source-class probabilities of one model on ``images``.

    Args:
        model_or_files: ModelFiles (with weights) or a model from :func:`load_model`
            (transformers image classifiers, transformers backbones and timm models built
            elsewhere work too).
        images: ``N`` PIL images, any size.
        preprocessing: required with a model; default ``files.preprocessing()``.
        device: None = the model's device (a model) or CUDA when available (files).
        batch_size: images per forward pass.
        progress: report the batches on stderr (:mod:`fennec._progress`).

    Returns:
        ``features`` ``(N, D)`` float32 and ``probabilities`` ``(N, C_s)`` float32 (rows sum to
        1), or None when the model has no (pre-trained) head. Both on the CPU.

    Raises:
        InvalidInputError: no images, bad ``batch_size``, a model without ``preprocessing``.
        UnsupportedModelError: a model fennec cannot read features from.
        FeatureExtractionError: non-finite outputs.

    Example:
        >>> from PIL import Image
        >>> from fennec.hub import LocalHub
        >>> files = LocalHub("zoo/hub").fetch("photolab/vit-tiny-photos", weights=True)
        >>> images = [Image.new("RGB", (40, 30), (60 * i, 90, 200 - 60 * i)) for i in range(3)]
        >>> feats, probs = extract_features(files, images, device="cpu")
        >>> feats.shape[0], probs.shape[0], bool(abs(probs.sum(axis=1) - 1).max() < 1e-4)
        (3, 3, True)
    """
    batch_size = check_positive_int(batch_size, "batch_size", hint="images per forward pass")
    if len(images) == 0:
        raise InvalidInputError("No images to extract features from: pass at least one image.")
    if isinstance(model_or_files, ModelFiles):
        preprocessing = preprocessing or model_or_files.preprocessing()
        model = load_model(model_or_files, device=device)
    elif isinstance(model_or_files, torch.nn.Module):
        if preprocessing is None:
            raise InvalidInputError(
                "extract_features got a model without preprocessing: pass "
                "preprocessing=files.preprocessing() (or pass the ModelFiles themselves).")
        model = model_or_files
        if device is not None:
            model = model.to(resolve_device(device))
    else:
        raise InvalidInputError(f"model_or_files must be ModelFiles or a torch.nn.Module, got "
                                f"{type(model_or_files).__name__}.")
    spec = spec_of(model)
    first = next(model.parameters(), None)
    dev = first.device if first is not None else torch.device("cpu")
    forward = _forward_fn(model, spec)
    starts = _progress.track(range(0, len(images), batch_size), desc=f"forward passes of {spec.repo_id}",
                             unit="batches", enabled=progress)
    feats, logits = [], []
    with torch.inference_mode():
        for start in starts:
            x = preprocess(images[start:start + batch_size], preprocessing)
            if dev.type == "cuda":
                x = x.pin_memory().to(dev, non_blocking=True)
            elif dev.type != "cpu":
                x = x.to(dev)
            f, z = forward(x)
            feats.append(f.flatten(1).float().cpu())
            if z is not None:
                logits.append(torch.softmax(z.flatten(1).double(), dim=1).float().cpu())
    features = torch.cat(feats).numpy()
    probabilities = torch.cat(logits).numpy() if len(logits) == len(feats) else None
    for name, arr in (("features", features), ("probabilities", probabilities)):
        if arr is not None and not np.isfinite(arr).all():
            rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
            raise FeatureExtractionError(
                f"{len(rows)} of {len(arr)} images gave non-finite {name} (first rows {rows[:5].tolist()}); "
                "the weights may be corrupt or overflow in float32", model_id=spec.repo_id)
    return features, probabilities
