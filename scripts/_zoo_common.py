"""Helpers shared by the zoo builders in scripts/ (never imported by the fennec package)."""

from __future__ import annotations

import sys


def torchvision_compat() -> None:
    """Let transformers import when the CUDA-built torchvision wheel sits beside CPU torch.

    That wheel's import fails with "operator torchvision::nms does not exist" (DESIGN.md), and
    transformers imports torchvision whenever it is installed. Defining the two missing operator
    schemas first is enough for the image-classification code paths used here (no detection ops
    are ever called). Call this before importing transformers.
    """
    if "torchvision" in sys.modules:
        return
    import torch

    for name, schema in (("nms", "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
                         ("qnms", "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")):
        try:
            torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        except RuntimeError:
            lib = torch.library.Library("torchvision", "FRAGMENT")
            lib.define(schema)
            _KEEP.append(lib)


_KEEP: list = []  # keep the Library objects alive, or their definitions are dropped
