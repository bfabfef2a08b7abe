"""Run a callable with a wall-clock limit, so that graph capture never hangs.

Choice: on the main thread of a Unix process we use a ``SIGALRM`` interval timer. Tracing
(``torch.export`` in non-strict mode, or the eager recorder) is Python code calling into
torch op by op, so the signal handler runs within milliseconds of the deadline and unwinds
the trace by raising; nothing is left running and no process has to be spawned (a worker
process would cost seconds of torch/transformers import per model, more than the trace).
The exception raised by the handler derives from ``BaseException`` so that the many
``except Exception`` blocks inside export cannot swallow it.

Elsewhere (a non-main thread, Windows, or when another interval timer is already armed)
the callable runs in a daemon worker thread that we wait for at most ``timeout`` seconds.
Python cannot kill a thread: on timeout the worker is abandoned and finishes (or not) in
the background, holding its meta-device tensors only, while the caller gets the error at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from archi2vec.errors import InvalidArgumentError, TraceTimeoutError

__all__ = ["call_with_timeout"]

T = TypeVar("T")


class _Alarm(BaseException):
    """Raised by the SIGALRM handler; BaseException so ``except Exception`` lets it pass."""


def _can_use_alarm() -> bool:
    return (
        hasattr(signal, "SIGALRM")
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )


def call_with_timeout(fn: Callable[[], T], timeout: float | None, *, model_id: str) -> T:
    """Return ``fn()``, or raise :class:`TraceTimeoutError` after ``timeout`` seconds.

    Args:
        fn: a callable without arguments.
        timeout: seconds (> 0), or ``None`` for no limit.
        model_id: named in the error.

    Returns:
        What ``fn`` returns. Exceptions raised by ``fn`` propagate unchanged.

    Raises:
        TraceTimeoutError: ``fn`` did not return in time.
        InvalidArgumentError: ``timeout`` is not positive (a ``ValueError``).

    Example:
        >>> call_with_timeout(lambda: 1 + 1, 5.0, model_id="demo")
        2
    """
    if timeout is None:
        return fn()
    if not timeout > 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if _can_use_alarm():
        return _with_alarm(fn, timeout, model_id)
    return _with_thread(fn, timeout, model_id)


def _with_alarm(fn: Callable[[], T], timeout: float, model_id: str) -> T:
    def handler(signum, frame):  # signal handler signature
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn()
    except _Alarm:
        raise TraceTimeoutError(model_id, timeout) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(fn: Callable[[], T], timeout: float, model_id: str) -> T:
    values: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            values.append(fn())
        except BaseException as exc:  # handed back to the caller below
            errors.append(exc)

    worker = threading.Thread(target=target, name=f"archi2vec-trace-{model_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TraceTimeoutError(model_id, timeout)
    if errors:
        raise errors[0]
    return values[0]
