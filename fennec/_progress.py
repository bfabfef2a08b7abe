"""Progress of fennec's long steps, on a terminal and in logs alike.

Every long step (decoding a sample, a model's forward passes, scoring candidates, reindexing,
describing known tasks) reports through :func:`bar`:

- ``enabled=False``: nothing;
- stderr is a terminal (or a notebook runs the code): a tqdm bar;
- otherwise (a log file, CI, a pipe): plain lines on stderr, ``fennec: <step>: 7/10 models,
  12.3 s``, one when the step ends and one every :data:`INTERVAL_S` seconds while it runs, so
  a log shows what happened and how long it took instead of carriage-return bar frames.

:func:`note` says what a long step is about to do (e.g. the first build of the embedded zoo).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

__all__ = ["INTERVAL_S", "bar", "note", "track"]

#: Seconds between two interim lines of a running step when stderr is not a terminal.
INTERVAL_S = 30.0

T = TypeVar("T")


def _interactive() -> bool:
    """A terminal, or a Jupyter kernel (whose tqdm widgets render in the notebook)."""
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    """A bar for logs: one line per step (its count and elapsed time), and interim lines."""

    def __init__(self, total: int | None, desc: str, unit: str):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.t0 = self._last = time.perf_counter()
        self._closed = False

    def _line(self, done: bool) -> str:
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        elapsed = time.perf_counter() - self.t0
        return f"fennec: {self.desc}: {count} {self.unit}{'' if done else ' so far'}, {elapsed:.1f} s"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= INTERVAL_S and (self.total is None or self.n < self.total):
            self._last = now
            print(self._line(False), file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            print(self._line(True), file=sys.stderr, flush=True)


def bar(*, total: int | None, desc: str, unit: str = "it", enabled: bool) -> Any:
    """A progress reporter with ``update(n=1)`` and ``close()`` (see the module docstring)."""
    if not enabled:
        return _Silent()
    if _interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return _Lines(total, desc, unit)


def track(items: Iterable[T], *, total: int | None = None, desc: str, unit: str = "it",
          enabled: bool) -> Iterator[T]:
    """Iterate ``items`` while reporting progress through :func:`bar` (closed at the end)."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    reporter = bar(total=total, desc=desc, unit=unit, enabled=enabled)
    try:
        for item in items:
            yield item
            reporter.update(1)
    finally:
        reporter.close()


def note(message: str, *, enabled: bool) -> None:
    """Say on stderr what a long step is about to do (when progress is enabled)."""
    if enabled:
        print(f"fennec: {message}", file=sys.stderr, flush=True)
