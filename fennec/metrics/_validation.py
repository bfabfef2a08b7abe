"""The one input check every metric calls first.

``check_features_labels`` and ``check_probabilities`` turn whatever the caller passed
(numpy arrays, torch tensors on any device, nested lists) into fresh float64 / int64 torch
tensors on the compute device, with labels remapped to 0..C-1. Every rejection is an
:class:`~fennec.errors.InvalidInputError` whose message says what was found, what is
required and how to fix it. The caller's arrays are never modified: the returned tensors
never share memory with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError, MetricComputationError

__all__ = [
    "CheckedInput",
    "check_features",
    "check_features_labels",
    "check_probabilities",
    "finite_score",
    "ldexp_",
    "normalise_scale",
    "resolve_device",
    "scale_error",
]

# Rows of a probability matrix must sum to 1 within this tolerance: loose enough for
# float16 softmax outputs, tight enough to catch logits or unnormalised scores.
PROBABILITY_SUM_ATOL = 1e-3
# Features whose largest magnitude lies in [2**-64, 2**64] are used as they are: their fourth
# powers, summed over samples (the largest power any metric forms), stay well inside float64.
# Outside that range :func:`normalise_scale` divides them by a power of two.
_SAFE_SCALE_EXPONENT = 64


@dataclass(frozen=True)
class CheckedInput:
    """Validated metric input.

    Attributes:
        values: ``(N, D)`` float64 tensor (features or probabilities), a private copy.
        labels: ``(N,)`` int64 tensor with values in ``0..n_classes-1``.
        n_classes: number of distinct labels C.
        class_counts: ``(C,)`` numpy int64 array, samples per class.
        classes: ``(C,)`` numpy array of the original label values, in label order.
    """

    values: torch.Tensor
    labels: torch.Tensor
    n_classes: int
    class_counts: np.ndarray
    classes: np.ndarray

    @property
    def device(self) -> torch.device:
        return self.values.device


def resolve_device(device: str | torch.device | None, data: Any = None) -> torch.device:
    """The device a metric computes on.

    ``None`` means: the device of ``data`` when it is a torch tensor, otherwise CUDA when
    it is available, otherwise the CPU. A device this machine does not have (no CUDA, a CUDA
    index beyond ``torch.cuda.device_count()``, no MPS, …) is refused here, so that callers
    (``recommend()``, ``fit()``, ``fennec bench``, the CLI's ``--device``) can check it before
    any work.

    Raises:
        InvalidInputError: not a torch device, or one this machine does not have.
    """
    if device is not None:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise InvalidInputError(
                f"device={device!r} is not a valid torch device: {exc}. "
                "Pass 'cpu', 'cuda', 'cuda:0' or a torch.device, or None to choose automatically."
            ) from None
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise InvalidInputError(
                f"device={device!r} was requested but CUDA is not available on this machine. "
                "Pass device='cpu' or device=None (which picks the CPU here)."
            )
        if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            raise InvalidInputError(
                f"device={device!r} was requested but this machine has {n} CUDA device(s) "
                f"(cuda:0 to cuda:{n - 1}). Pass one of them, or device=None."
            )
        if resolved.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise InvalidInputError(
                f"device={device!r} was requested but Apple's MPS backend is not available on this machine. "
                "Pass device='cpu' or device=None."
            )
        backend = getattr(torch, resolved.type, None) if resolved.type not in ("cpu", "cuda", "mps") else None
        if backend is not None and callable(getattr(backend, "is_available", None)) and not backend.is_available():
            raise InvalidInputError(
                f"device={device!r} was requested but the {resolved.type} backend is not available on this "
                "machine. Pass device='cpu' or device=None."
            )
        return resolved
    if isinstance(data, torch.Tensor):
        return data.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _describe(x: Any) -> str:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return f"{type(x).__module__.split('.')[0]} array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def _to_float_tensor(x: Any, *, name: str, metric: str, device: torch.device) -> torch.Tensor:
    """A fresh float64 copy of ``x`` on ``device``; rejects non-numeric input."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.is_complex() or t.dtype == torch.bool:
            raise InvalidInputError(
                f"{metric}: {name} must be a real-valued float array, got a tensor of dtype {t.dtype}. "
                f"Convert it with {name}.float()."
            )
        # .to(copy=True) guarantees the result never aliases the caller's memory.
        return t.to(device=device, dtype=torch.float64, copy=True)
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InvalidInputError(
            f"{metric}: {name} could not be read as a rectangular array ({exc}). "
            f"Pass a 2-D numpy array or torch tensor of shape (N, D)."
        ) from None
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        raise InvalidInputError(
            f"{metric}: {name} must be a real-valued numeric array, got {_describe(arr)}. "
            f"Pass the features as a float array, e.g. np.asarray({name}, dtype=np.float32)."
        )
    return torch.tensor(arr, dtype=torch.float64, device=device)  # torch.tensor always copies


def _check_2d(t: torch.Tensor, original: Any, *, name: str, metric: str, second_axis: str) -> None:
    if t.ndim == 2:
        if t.shape[1] == 0:
            raise InvalidInputError(
                f"{metric}: {name} has shape {tuple(t.shape)}: no {second_axis}. "
                f"At least one {second_axis[:-1]} per sample is required."
            )
        return
    if t.ndim == 1:
        hint = f"If each sample has a single value, reshape with {name}.reshape(-1, 1)."
    elif t.ndim > 2:
        hint = (
            "Pool or flatten the per-sample dimensions first "
            f"(e.g. {name}.mean(axis=(2, 3)) for convolutional maps, or {name}.reshape(len({name}), -1))."
        )
    else:
        hint = "Pass one row per sample."
    raise InvalidInputError(
        f"{metric}: {name} must be 2-D with shape (N samples, {second_axis}), "
        f"got {_describe(original)} ({t.ndim}-D). {hint}"
    )


def _check_finite(t: torch.Tensor, *, name: str, metric: str) -> None:
    # Fast path: NaN and inf propagate into the column sums, which (float64, at most ~1e43 for
    # float32-range input) cannot overflow themselves. One reduction instead of a mask pass.
    if bool(torch.isfinite(t.sum(dim=0)).all()):
        return
    finite = torch.isfinite(t)
    if bool(finite.all()):  # float64 input near 1e308 whose sums overflowed
        return
    bad_rows = (~finite).any(dim=1).nonzero().flatten()
    n_nan = int(torch.isnan(t).sum())
    n_inf = int(torch.isinf(t).sum())
    first = bad_rows[:5].tolist()
    raise InvalidInputError(
        f"{metric}: {name} contains {n_nan} NaN and {n_inf} infinite values "
        f"in {bad_rows.numel()} of {t.shape[0]} rows (first rows: {first}). "
        "Every value must be finite. Drop those samples, or check the feature extractor "
        "(half-precision overflow and empty images are the usual causes)."
    )


def _check_label_types(labels: Any, *, metric: str) -> None:
    """Refuse labels that mix strings with numbers: ``numpy.asarray(["1", 1])`` would silently
    make both the string ``"1"`` (and merge two classes)."""
    dtype = getattr(labels, "dtype", None)
    if isinstance(labels, (np.ndarray, torch.Tensor)) and getattr(dtype, "kind", None) != "O":
        return
    try:
        values = list(np.asarray(labels, dtype=object).ravel()) if not isinstance(labels, (list, tuple)) else labels
    except (ValueError, TypeError):
        return  # ragged: reported by the caller
    strings = [v for v in values if isinstance(v, (str, np.str_))]
    if not strings or len(strings) == len(values):
        return
    others = [v for v in values if not isinstance(v, (str, np.str_))]
    kinds = sorted({type(v).__name__ for v in others})
    raise InvalidInputError(
        f"{metric}: labels mix strings and other values: {len(strings)} str (e.g. {strings[:3]!r}) and "
        f"{len(others)} {'/'.join(kinds)} (e.g. {others[:3]!r}). Labels must be all class names (str) or "
        "all class ids (int), or 1 and '1' would be merged into one class: convert them first, e.g. "
        "[str(v) for v in labels]."
    )


def _check_labels(labels: Any, n: int, *, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (labels remapped to 0..C-1, original class values, counts per class)."""
    _check_label_types(labels, metric=metric)
    if isinstance(labels, torch.Tensor):
        arr = labels.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(labels)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"{metric}: labels could not be read as an array ({exc}). Pass a 1-D array of N class labels."
            ) from None
    if arr.ndim != 1:
        if arr.ndim == 2 and arr.shape[1] > 1 and arr.dtype.kind in "fiub":
            hint = "They look one-hot or multi-hot: pass labels.argmax(axis=1) for single-label classification."
        elif arr.ndim == 2 and arr.shape[1] == 1:
            hint = "Flatten them with labels.ravel()."
        else:
            hint = "Pass one class label per sample."
        raise InvalidInputError(
            f"{metric}: labels must be 1-D with one class label per sample, got shape {arr.shape}. {hint}"
        )
    if arr.shape[0] != n:
        raise InvalidInputError(
            f"{metric}: features have {n} rows but labels have {arr.shape[0]} entries. "
            "They must have the same length, one label per feature row, in the same order."
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidInputError(
                f"{metric}: labels contain {int((~np.isfinite(arr)).sum())} NaN or infinite values. "
                "Every sample needs a class label: drop unlabelled samples first."
            )
        if not np.array_equal(arr, np.round(arr)):
            raise InvalidInputError(
                f"{metric}: labels are floats with fractional values (e.g. {arr[arr != np.round(arr)][:3].tolist()}). "
                "Class labels are required, not continuous targets: pass integer or string class ids."
            )
    elif arr.dtype.kind == "c" or arr.dtype == object and not all(isinstance(v, (str, int, np.integer)) for v in arr):
        raise InvalidInputError(
            f"{metric}: labels must be integers or strings, got dtype {arr.dtype}. Pass class ids or class names."
        )
    classes, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    return inverse.astype(np.int64).reshape(-1), classes, counts.astype(np.int64)


def _check_classes(counts: np.ndarray, classes: np.ndarray, *, metric: str, min_classes: int,
                   min_per_class: int) -> None:
    if len(counts) < min_classes:
        raise InvalidInputError(
            f"{metric}: labels contain {len(counts)} distinct class(es) ({classes[:5].tolist()}); "
            f"at least {min_classes} are required to measure transferability. "
            "Check that the label column is the class label and that the sample covers several classes."
        )
    small = np.flatnonzero(counts < min_per_class)
    if small.size:
        listed = ", ".join(f"{classes[i].item()!r} ({counts[i]})" for i in small[:5])
        more = f" and {small.size - 5} more" if small.size > 5 else ""
        raise InvalidInputError(
            f"{metric}: {small.size} class(es) have fewer than {min_per_class} samples: {listed}{more}. "
            f"This metric needs at least {min_per_class} samples per class. "
            "Sample more images of those classes, or drop them."
        )


def check_features_labels(
    features: Any,
    labels: Any,
    *,
    metric: str,
    min_classes: int = 2,
    min_per_class: int = 1,
    min_samples: int = 2,
    device: str | torch.device | None = None,
) -> CheckedInput:
    """Validate ``(features, labels)`` for a feature-based metric.

    Args:
        features: ``(N, D)`` real array or tensor.
        labels: ``(N,)`` class labels of any integer or string type; remapped to 0..C-1 in
            sorted order of the original values.
        metric: the metric's name, used in error messages.
        min_classes: fewest distinct classes accepted.
        min_per_class: fewest samples accepted in any class.
        min_samples: fewest samples accepted overall.
        device: compute device (see :func:`resolve_device`).

    Returns:
        A :class:`CheckedInput` whose tensors are private float64 / int64 copies on the device.

    Raises:
        InvalidInputError: on any of the problems listed in the module docstring.
    """
    dev = resolve_device(device, features)
    x = _to_float_tensor(features, name="features", metric=metric, device=dev)
    _check_2d(x, features, name="features", metric=metric, second_axis="feature dimensions")
    y, classes, counts = _check_labels(labels, x.shape[0], metric=metric)
    _check_samples_and_finite(x, name="features", metric=metric, min_samples=min_samples)
    _check_classes(counts, classes, metric=metric, min_classes=min_classes, min_per_class=min_per_class)
    return CheckedInput(x, torch.as_tensor(y, device=dev), len(counts), counts, classes)


def _check_samples_and_finite(x: torch.Tensor, *, name: str, metric: str, min_samples: int) -> None:
    if x.shape[0] < min_samples:
        raise InvalidInputError(
            f"{metric}: {name} have {x.shape[0]} sample(s); at least {min_samples} are required. Pass more samples."
        )
    _check_finite(x, name=name, metric=metric)


def check_features(
    features: Any,
    *,
    metric: str,
    name: str = "features",
    min_samples: int = 2,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Validate an unlabelled ``(N, D)`` feature matrix; returns a private float64 copy on the device."""
    dev = resolve_device(device, features)
    x = _to_float_tensor(features, name=name, metric=metric, device=dev)
    _check_2d(x, features, name=name, metric=metric, second_axis="feature dimensions")
    _check_samples_and_finite(x, name=name, metric=metric, min_samples=min_samples)
    return x


def check_probabilities(
    probabilities: Any,
    labels: Any,
    *,
    metric: str,
    min_classes: int = 2,
    min_per_class: int = 1,
    device: str | torch.device | None = None,
) -> CheckedInput:
    """Validate ``(source-model class probabilities, target labels)`` for LEEP-style metrics.

    ``probabilities`` is ``(N, C_s)``: each row is the source model's softmax output on one
    target sample, non-negative and summing to 1 (within ``PROBABILITY_SUM_ATOL``).
    """
    dev = resolve_device(device, probabilities)
    p = _to_float_tensor(probabilities, name="probabilities", metric=metric, device=dev)
    _check_2d(p, probabilities, name="probabilities", metric=metric, second_axis="source classes")
    n = p.shape[0]
    y, classes, counts = _check_labels(labels, n, metric=metric)
    _check_finite(p, name="probabilities", metric=metric)
    if bool((p < 0).any()):
        raise InvalidInputError(
            f"{metric}: probabilities contain {int((p < 0).sum())} negative values (min {float(p.min()):.4g}). "
            "Source-model class probabilities are required, not logits: "
            "apply a softmax over the source classes first (torch.softmax(logits, dim=1))."
        )
    sums = p.sum(dim=1)
    off = (sums - 1).abs() > PROBABILITY_SUM_ATOL
    if bool(off.any()):
        i = int(off.nonzero()[0])
        raise InvalidInputError(
            f"{metric}: {int(off.sum())} of {n} probability rows do not sum to 1 "
            f"(row {i} sums to {float(sums[i]):.6g}; tolerance {PROBABILITY_SUM_ATOL}). "
            "Each row must be a distribution over the source classes: apply a softmax to the "
            "logits, or divide each row by its sum."
        )
    _check_classes(counts, classes, metric=metric, min_classes=min_classes, min_per_class=min_per_class)
    return CheckedInput(p, torch.as_tensor(y, device=dev), len(counts), counts, classes)


def normalise_scale(x: torch.Tensor) -> int:
    """Bring features of extreme magnitude back to a safe range, in place; return the exponent.

    When the largest ``|x|`` is outside ``[2**-64, 2**64]``, ``x`` is divided by ``2**e`` so
    that it becomes ``[0.5, 1)`` and ``e`` is returned (the original features are
    ``x * 2**e``); otherwise ``x`` is left as it is and 0 is returned. Dividing by a power of
    two is exact (it changes exponents, not significands), so a scale-invariant metric
    computes on the result directly and gives the same score as on the original features,
    without the squares of 1e-300 underflowing or the fourth powers of 1e150 overflowing. A
    scale-dependent metric puts ``2**e`` back where the scale enters its formula.

    Args:
        x: a validated, finite float64 tensor (a private copy: it is modified).
    """
    top = float(x.abs().max()) if x.numel() else 0.0
    if top == 0.0 or 2.0 ** -_SAFE_SCALE_EXPONENT <= top <= 2.0 ** _SAFE_SCALE_EXPONENT:
        return 0
    e = math.frexp(top)[1]  # top = m · 2**e, m in [0.5, 1)
    ldexp_(x, -e)
    return e


def ldexp_(x: torch.Tensor, e: int) -> torch.Tensor:
    """``x *= 2**e`` in place, exactly (unless the result over- or underflows); returns ``x``.

    Two steps, because ``2**e`` alone is not a float64 for ``|e| > 1023``.
    """
    if e:
        x.mul_(2.0 ** (e // 2)).mul_(2.0 ** (e - e // 2))
    return x


def scale_error(metric: str, x: torch.Tensor, exponent: int, what: str) -> MetricComputationError:
    """The error a scale-dependent metric raises when float64 cannot hold its computation at
    the features' scale: what happened, the scale (of ``x · 2**exponent``, ``x`` and
    ``exponent`` from :func:`normalise_scale`), and how to fix it."""
    top = float(x.abs().max()) if x.numel() else 0.0
    log10 = (math.log10(top) if top > 0 else 0.0) + exponent * math.log10(2)
    magnitude = f"about 1e{round(log10):+d}"
    return MetricComputationError(
        metric,
        f"at this feature scale (largest |value| {magnitude}), {what}. {metric} depends on the scale of "
        "the features (it is not scale-invariant; see docs/metrics.md), so rescaling them inside would "
        "change the score: pass the features as the model outputs them, or standardise them "
        "((x - mean) / std per dimension) for every model you compare.",
    )


def finite_score(value: float | torch.Tensor | np.floating, *, metric: str) -> float:
    """The score as a built-in float; raises instead of returning NaN or inf."""
    score = float(value.item() if isinstance(value, torch.Tensor) else value)
    if not math.isfinite(score):
        raise MetricComputationError(
            metric,
            f"the score came out as {score} on validated input. This points at degenerate "
            "features (e.g. all rows identical within a class, or extreme magnitudes); "
            "standardise the features or report the case as a bug.",
        )
    return score
