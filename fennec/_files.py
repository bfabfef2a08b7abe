"""Atomic file writes and file hashes shared by fennec's caches and saved models. Private.

Every write goes to a temporary file in the destination folder, is flushed to disk, then
renamed over the destination (``os.replace``): a reader sees the old file or the new one,
never half of one, and a crash leaves no partial file behind under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)


def write_bytes_atomic(path: str | Path, write: Any) -> Path:
    """Create ``path`` atomically: ``write(fh)`` fills a temporary binary file that then replaces it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez(path, **arrays)``, atomically."""
    return write_bytes_atomic(path, lambda fh: np.savez(fh, **arrays))


def save_json_atomic(path: str | Path, data: Any, *, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """Write ``data`` as UTF-8 JSON, atomically."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys).encode("utf-8")
    return write_bytes_atomic(path, lambda fh: fh.write(text))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | Path, *, waiting: str | None = None,
              busy: Callable[[str | None], None] | None = None) -> Iterator[None]:
    """An exclusive lock on ``path`` (``fcntl.flock``), released on exit and by the system if
    the process dies. Not re-entrant: a process that takes the same lock twice waits for itself.

    While held, the file names its holder (pid and start time). When another process holds it,
    ``busy(holder)`` is called first (raise from it not to wait); then ``waiting`` is logged
    and the lock is waited for.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy is not None:
                busy(path.read_text(errors="replace").strip() or None)
            LOG.warning("%s (lock %s)", waiting or "Waiting for a lock", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {datetime.now(timezone.utc).isoformat(timespec='seconds')}".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
