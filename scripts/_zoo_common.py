"""Helpers shared by the zoo builders in scripts/ (never imported by the fennec package)."""

from __future__ import annotations


def torchvision_compat() -> None:
    """Let transformers import when the CUDA-built torchvision wheel sits beside CPU torch.

    Delegates to :func:`archi2vec._compat.ensure_torchvision_importable` (the one place that
    defines the two missing operator schemas). Call this before importing transformers.
    """
    from archi2vec._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
