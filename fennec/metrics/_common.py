"""Small tensor helpers shared by several metrics (all inputs are validated tensors)."""

from __future__ import annotations

import torch

__all__ = ["class_means", "one_hot"]


def class_means(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class means and counts.

    Args:
        x: ``(N, D)`` float tensor.
        y: ``(N,)`` int64 labels in 0..C-1, every class present.

    Returns:
        ``means`` of shape ``(C, D)`` and ``counts`` of shape ``(C,)`` (same dtype as x).
    """
    sums = torch.zeros(n_classes, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, y, x)
    counts = torch.bincount(y, minlength=n_classes).to(x.dtype)
    return sums / counts[:, None], counts


def one_hot(y: torch.Tensor, n_classes: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(N, C)`` one-hot matrix of int labels."""
    return torch.nn.functional.one_hot(y, n_classes).to(dtype)
