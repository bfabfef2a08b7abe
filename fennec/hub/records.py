"""What a hub answers: model records, downloaded files, preprocessing, and the config check.

Shared by every hub (:mod:`fennec.hub.client`, :mod:`fennec.hub.local`); the interface they
implement is :class:`fennec.hub.protocol.Hub`. No huggingface_hub here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from fennec.errors import MalformedModelError, RemoteCodeRequiredError
from fennec.hub.untrusted import RejectedInput, read_json_file

CONFIG_NAME = "config.json"
#: Preprocessor files, in the order they are looked for (transformers, then older names).
PREPROCESSOR_NAMES = ("preprocessor_config.json",)
#: Weight files, in order of preference.
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """What the Hub says about one model at one commit.

    Attributes:
        repo_id: ``org/name``.
        sha: the 40-hex commit every other field describes.
        library: ``transformers``, ``timm`` or another library name (None if unknown).
        pipeline_tag: e.g. ``image-classification``.
        created_at, last_modified: UTC datetimes (None if the hub did not say).
        downloads, likes: popularity counters.
        parameters: parameter count from the safetensors header (None if unknown).
        model_type: ``config.model_type`` (transformers) or ``config.architecture`` (timm).
        tags: the repository's tags.
        gated, private: access restrictions.
        requires_remote_code: the model needs custom code (``auto_map``, ``custom_code``).
        files: file names at that commit (empty in listings, which do not include them).
    """

    repo_id: str
    sha: str
    library: str | None = None
    pipeline_tag: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    downloads: int = 0
    likes: int = 0
    parameters: int | None = None
    model_type: str | None = None
    tags: tuple[str, ...] = ()
    gated: bool = False
    private: bool = False
    requires_remote_code: bool = False
    files: tuple[str, ...] = ()

    @property
    def license(self) -> str | None:
        """The license the repository declares (its ``license:`` tag), if any."""
        return next((t.split(":", 1)[1] for t in self.tags if t.startswith("license:")), None)


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """Local copies of a model's files at one commit (in the HF cache, or the local hub).

    Attributes:
        repo_id, sha: the model and the commit the files come from.
        config: the parsed ``config.json``.
        config_path: its path.
        preprocessor_path: ``preprocessor_config.json`` if the model has one.
        weights_path: the weights, if they were asked for.
    """

    repo_id: str
    sha: str
    config: dict[str, Any]
    config_path: Path
    preprocessor_path: Path | None = None
    weights_path: Path | None = None

    @property
    def folder(self) -> Path:
        """The snapshot folder, ready for ``from_pretrained(folder)``."""
        return self.config_path.parent

    def preprocessing(self) -> Preprocessing:
        """The input preprocessing the model was trained with, as timm describes it.

        From ``preprocessor_config.json`` (transformers) or the config's ``pretrained_cfg``
        (timm); ImageNet defaults (224 px, ImageNet mean/std) for what neither says.

        Raises:
            MalformedModelError: the preprocessor config is not a JSON object, or its sizes
                are unreadable or out of bounds (:meth:`Preprocessing.size_problem`).
        """
        pre: dict[str, Any] = {}
        if self.preprocessor_path is not None:
            try:
                pre = read_json_file(self.preprocessor_path,
                                     what=f"{self.repo_id}: {Path(self.preprocessor_path).name}")
            except (OSError, RejectedInput) as e:
                raise MalformedModelError(f"{self.repo_id}: unreadable preprocessor config ({e}).",
                                          repo_id=self.repo_id, revision=self.sha) from e
        try:
            out = Preprocessing.from_configs(self.config, pre)
        except (TypeError, ValueError, OverflowError) as e:  # e.g. "size": {"height": "x"}
            raise MalformedModelError(f"{self.repo_id}: unreadable image size or normalisation in its "
                                      f"preprocessing config ({type(e).__name__}: {e}).",
                                      repo_id=self.repo_id, revision=self.sha) from e
        problem = out.size_problem()
        if problem:
            raise MalformedModelError(f"{self.repo_id}: {problem}", repo_id=self.repo_id, revision=self.sha)
        return out


#: The largest image side, in pixels, fennec resizes an image to for a model: both the input
#: size (H, W) and the resize size before the centre crop (input / crop_pct) must be at most
#: this. A preprocessor config asking more (a hostile ``"size": 60000`` would need ~14 GB
#: per image) is refused with :class:`~fennec.errors.MalformedModelError`; real vision
#: classifiers use 224-518 px.
MAX_INPUT_SIDE = 1024

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """timm-style data config: ``input_size`` (C, H, W), ``mean``, ``std``,
    ``interpolation``, ``crop_pct``."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = _IMAGENET_MEAN
    std: tuple[float, ...] = _IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    def resize_side(self) -> tuple[int, int]:
        """(H, W) the image is resized to cover before the centre crop: ``input_size / crop_pct``."""
        crop = self.crop_pct if self.crop_pct > 0 else 1.0
        return math.floor(self.input_size[1] / crop), math.floor(self.input_size[2] / crop)

    def size_problem(self) -> str | None:
        """Why these sizes cannot be used (a sentence saying what and the bound), or None.

        The input size must be 1 or 3 channels of 1 to :data:`MAX_INPUT_SIDE` pixels a side,
        ``crop_pct`` finite and positive, and the resize size at most :data:`MAX_INPUT_SIDE`.
        """
        c, h, w = self.input_size
        if c not in (1, 3) or not (1 <= h <= MAX_INPUT_SIDE and 1 <= w <= MAX_INPUT_SIDE):
            return (f"the preprocessing asks for input size {c}x{h}x{w} (channels x height x width); fennec "
                    f"accepts 1 or 3 channels and 1 to {MAX_INPUT_SIDE} px a side (MAX_INPUT_SIDE), so "
                    "this config is refused rather than resizing every image to it.")
        if not (math.isfinite(self.crop_pct) and self.crop_pct > 0):
            return f"the preprocessing's crop_pct is {self.crop_pct!r}; it must be a finite number > 0."
        rh, rw = self.resize_side()
        if max(rh, rw) > MAX_INPUT_SIDE:
            return (f"the preprocessing resizes images to {rh}x{rw} px before its {h}x{w} centre crop "
                    f"(crop_pct {self.crop_pct:g}), above fennec's bound of {MAX_INPUT_SIDE} px a side "
                    "(MAX_INPUT_SIDE); such a config is refused.")
        return None

    @classmethod
    def from_configs(cls, config: dict[str, Any], preprocessor: dict[str, Any]) -> Preprocessing:
        """From a model config and its (possibly empty) preprocessor config."""
        pretrained_cfg = config.get("pretrained_cfg")
        timm_cfg: dict[str, Any] = pretrained_cfg if isinstance(pretrained_cfg, dict) else {}
        channels = int(config.get("num_channels") or 3)
        size = timm_cfg.get("input_size")
        input_size: tuple[int, int, int]
        if isinstance(size, (list, tuple)) and len(size) == 3:
            c, h, w = (int(v) for v in size)
            input_size = (c, h, w)
        else:
            hw = _size(preprocessor.get("crop_size")) or _size(preprocessor.get("size"))
            if hw is None and isinstance(config.get("image_size"), int):
                hw = (config["image_size"], config["image_size"])
            h, w = hw or (224, 224)
            input_size = (channels, h, w)
        mean = timm_cfg.get("mean") or preprocessor.get("image_mean") or _IMAGENET_MEAN
        std = timm_cfg.get("std") or preprocessor.get("image_std") or _IMAGENET_STD
        interp = timm_cfg.get("interpolation") or _RESAMPLE.get(preprocessor.get("resample", -1), "bicubic")
        crop = timm_cfg.get("crop_pct") or preprocessor.get("crop_pct") or _crop_pct(preprocessor)
        return cls(input_size=input_size, mean=tuple(float(v) for v in mean),
                   std=tuple(float(v) for v in std), interpolation=str(interp), crop_pct=float(crop))


def _crop_pct(preprocessor: dict[str, Any]) -> float:
    """timm's crop_pct (crop size / resize size) of a transformers preprocessor config that
    does not state it: e.g. CLIP resizes the shortest edge to 224 and center-crops 224 (1.0);
    a resize to 256 then a 224 crop is 0.875; no center crop is 1.0."""
    if not preprocessor:
        return 0.875  # nothing known: timm's default
    if not preprocessor.get("do_center_crop"):
        return 1.0
    crop, resize = _size(preprocessor.get("crop_size")), _size(preprocessor.get("size"))
    if crop is None or resize is None or min(resize) <= 0:
        return 0.875
    return min(crop[0] / resize[0], crop[1] / resize[1])


def _size(value: Any) -> tuple[int, int] | None:
    """(H, W) from a transformers size spec: an int, {height, width} or {shortest_edge}."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        if "shortest_edge" in value:
            return int(value["shortest_edge"]), int(value["shortest_edge"])
    return None


def check_config(config: Any, *, repo_id: str, revision: str | None = None,
                 tags: Iterable[str] = ()) -> dict[str, Any]:
    """Check that a parsed ``config.json`` describes a model fennec can build without custom code.

    Args:
        config: the parsed JSON.
        repo_id, revision: for error messages.
        tags: the repository's tags (``custom_code`` marks a remote-code model).

    Returns:
        The config, unchanged.

    Raises:
        MalformedModelError: not a JSON object, or neither ``model_type`` (transformers)
            nor ``architecture`` (timm).
        RemoteCodeRequiredError: the model needs code from its repository; fennec never sets
            ``trust_remote_code`` implicitly.

    Example:
        >>> check_config({"model_type": "vit"}, repo_id="google/vit-base-patch16-224")
        {'model_type': 'vit'}
    """
    if not isinstance(config, dict):
        raise MalformedModelError(
            f"{repo_id}: config.json is a JSON {type(config).__name__}, not an object.",
            repo_id=repo_id, revision=revision)
    if config.get("auto_map") or "custom_code" in set(tags):
        raise RemoteCodeRequiredError(
            f"{repo_id} needs custom code from its repository (auto_map: "
            f"{sorted(config.get('auto_map') or {})}); fennec never enables trust_remote_code "
            "implicitly, so the model is recorded as unsupported.",
            repo_id=repo_id, revision=revision, reason="remote_code")
    if not (isinstance(config.get("model_type"), str) or isinstance(config.get("architecture"), str)):
        raise MalformedModelError(
            f"{repo_id}: config.json has neither 'model_type' (transformers) nor "
            f"'architecture' (timm); keys found: {sorted(config)[:12]}.",
            repo_id=repo_id, revision=revision)
    return config


def read_config(path: Path, *, repo_id: str, revision: str | None, tags: Iterable[str]) -> dict:
    """``config.json``, read within :data:`~fennec.hub.untrusted.MAX_JSON_BYTES` and
    :data:`~fennec.hub.untrusted.MAX_JSON_DEPTH`, then checked (:func:`check_config`).

    Raises:
        MalformedModelError: too large, too deeply nested, not JSON, not a regular file, or
            not a usable model config; a reindex records the model as unsupported with it.
    """
    try:
        config = read_json_file(path, what=f"{repo_id}: config.json", object_only=False)
    except RejectedInput as e:
        raise MalformedModelError(f"{e}; the model is recorded as unsupported.",
                                  repo_id=repo_id, revision=revision) from e
    return check_config(config, repo_id=repo_id, revision=revision, tags=tags)
