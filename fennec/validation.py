"""The checks fennec's public functions share for their arguments.

Every rejection is an :class:`~fennec.errors.InvalidInputError` whose message names the
argument, what was found, what is expected and how to fix it, in one wording everywhere:

- scalars: :func:`check_positive_int`, :func:`check_int` (an int in a range),
  :func:`check_fraction` (a number in [0, 1]), :func:`is_number`;
- arrays: :func:`check_labelled_features` (an ``(N, D)`` real array and ``N`` labels, the check
  every transferability metric makes first) and :func:`resolve_device` (a compute device this
  machine has). Both live in :mod:`fennec.metrics` (which keeps calling them directly) and are
  imported from there on first use, so importing this module loads neither torch nor numpy.

Example:
    >>> check_positive_int(5, "top_k")
    5
    >>> check_fraction(True, "w")
    Traceback (most recent call last):
    ...
    fennec.errors.InvalidInputError: w must be a number in [0, 1], got True (a bool). Pass a float such as 0.5.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, TypeGuard

from fennec.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

    from fennec.metrics._validation import CheckedInput

__all__ = ["check_fraction", "check_int", "check_labelled_features", "check_positive_int", "is_number",
           "resolve_device"]


def _found(value: Any) -> str:
    """``value`` as an error message shows it: its repr, and its type when the repr hides it."""
    if isinstance(value, bool):
        return f"{value!r} (a bool)"
    if isinstance(value, (int, float, Integral, Real)):
        return repr(value)
    return f"{value!r} (a {type(value).__name__})"


def is_number(value: Any) -> TypeGuard[Real]:
    """Whether ``value`` is a real number (Python or numpy), a bool not counting as one."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
              hint: str = "") -> int:
    """``value`` as an int, if it is an integer (Python or numpy, not a bool) in ``[minimum, maximum]``.

    Args:
        value: what the caller passed.
        name: the argument's name, as the caller spells it.
        minimum, maximum: the bounds, inclusive (None: unbounded).
        hint: what the argument means, shown after the expected range (e.g. ``"images per forward pass"``).

    Raises:
        InvalidInputError: anything else; the message says what was found and what is expected.
    """
    if minimum is not None and maximum is not None:
        want = f"an int from {minimum} to {maximum}"
    elif minimum is not None:
        want = f"an int >= {minimum}"
    elif maximum is not None:
        want = f"an int <= {maximum}"
    else:
        want = "an int"
    meaning = f" ({hint})" if hint else ""
    if not isinstance(value, Integral) or isinstance(value, bool):
        example = minimum if minimum is not None else 0 if maximum is None or maximum >= 0 else maximum
        raise InvalidInputError(f"{name} must be {want}{meaning}, got {_found(value)}. Pass a whole number "
                                f"such as {example}.")
    n = int(value)
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise InvalidInputError(f"{name} must be {want}{meaning}, got {n}.")
    return n


def check_positive_int(value: Any, name: str, *, hint: str = "") -> int:
    """``value`` as an int, if it is an integer >= 1 (:func:`check_int` with ``minimum=1``)."""
    return check_int(value, name, minimum=1, hint=hint)


def check_fraction(value: Any, name: str, *, meaning: str = "") -> float:
    """``value`` as a float, if it is a real number in [0, 1] (not a bool, not NaN).

    Args:
        value: what the caller passed.
        name: the argument's name.
        meaning: what the number is a share of, appended to the message.

    Raises:
        InvalidInputError: anything else.
    """
    about = f" ({meaning})" if meaning else ""
    if not is_number(value):
        raise InvalidInputError(f"{name} must be a number in [0, 1]{about}, got {_found(value)}. "
                                "Pass a float such as 0.5.")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails both comparisons
        raise InvalidInputError(f"{name} must be a number in [0, 1]{about}, got {value!r}.")
    return float(value)


def check_labelled_features(features: Any, labels: Any, *, caller: str, min_classes: int = 2,
                            min_per_class: int = 1, min_samples: int = 2,
                            device: str | torch.device | None = None) -> CheckedInput:
    """Validate an ``(N, D)`` real array and its ``N`` class labels, as every metric does.

    The checks and messages of :func:`fennec.metrics._validation.check_features_labels`
    (2-D, real, finite, enough samples, classes and samples per class), with ``caller``
    naming who checked in each message.

    Returns:
        A :class:`~fennec.metrics._validation.CheckedInput`: private float64 / int64 tensors on
        the device, labels remapped to 0..C-1.

    Raises:
        InvalidInputError: what was wrong, and how to fix it.
    """
    from fennec.metrics._validation import check_features_labels

    return check_features_labels(features, labels, metric=caller, min_classes=min_classes,
                                 min_per_class=min_per_class, min_samples=min_samples, device=device)


def resolve_device(device: str | torch.device | None, data: Any = None) -> torch.device:
    """The compute device: ``device`` if this machine has it, else (None) the data's or the default.

    Raises:
        InvalidInputError: a device this machine does not have, or a malformed name.
    """
    from fennec.metrics._validation import resolve_device as resolve

    return resolve(device, data)
