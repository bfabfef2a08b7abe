"""Optional imports: timm (and the torchvision it needs) on CPU-only torch.

The torchvision wheel on PyPI is a CUDA build. On the CPU build of torch its compiled
extension does not load, and ``import torchvision`` then fails with
``operator torchvision::nms does not exist`` (its Python side registers fake kernels for
ops whose schemas the extension should have defined). Once torchvision is installed,
transformers imports it as well, so even transformers vision models fail to import.
:func:`ensure_torchvision_importable` defines the two missing schemas (``torchvision::nms``
and ``torchvision::qnms``) with :mod:`torch.library` when, and only when, they are absent;
the ops then exist without kernels, which is all model building needs (no NMS is run).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from types import ModuleType
from typing import Any

import torch

__all__ = ["ensure_torchvision_importable", "import_timm", "timm_available"]

LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LIBRARY: Any = None  # the torch.library.Library that owns the schemas; kept alive here
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
}


def _has_schema(qualified_name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(qualified_name, "")
    except RuntimeError:
        return False
    return True


def ensure_torchvision_importable() -> None:
    """Define ``torchvision::nms`` / ``torchvision::qnms`` if torchvision cannot define them.

    Safe to call many times and from several threads. Does nothing when torchvision is not
    installed or when its extension has already registered the ops.

    Example:
        >>> ensure_torchvision_importable()  # then ``import timm`` works on CPU torch
    """
    global _LIBRARY
    if importlib.util.find_spec("torchvision") is None:
        return
    with _LOCK:
        missing = [n for n in _SCHEMAS if not _has_schema(f"torchvision::{n}")]
        if not missing:
            return
        if _LIBRARY is None:
            _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _LIBRARY.define(_SCHEMAS[name])
        LOG.debug("defined schemas %s so that torchvision imports on this torch", missing)


def timm_available() -> bool:
    """Whether timm is installed (it is an optional dependency: ``pip install fennec[timm]``)."""
    return importlib.util.find_spec("timm") is not None


def import_timm() -> ModuleType:
    """Import timm after making torchvision importable.

    Returns:
        The ``timm`` module.

    Raises:
        ImportError: timm is not installed, or it (or torchvision) failed to import.
    """
    if not timm_available():
        raise ImportError("timm is not installed; install it with `pip install 'fennec[timm]'`")
    ensure_torchvision_importable()
    import timm  # noqa: PLC0415 - optional dependency

    return timm


def import_transformers() -> ModuleType:
    """Import transformers after making torchvision importable (if it is installed)."""
    ensure_torchvision_importable()
    import transformers  # noqa: PLC0415

    return transformers
