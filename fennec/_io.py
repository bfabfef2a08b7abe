"""Atomic file writes and file hashes shared by fennec's caches and saved models. Private.

Every write goes to a temporary file in the destination folder, is flushed to disk, then
renamed over the destination (``os.replace``): a reader sees the old file or the new one,
never half of one, and a crash leaves no partial file behind under the final name.

A write that fails because the disk is full or the folder is read-only becomes a
:class:`fennec.errors.StorageError` that says so (:func:`storage_errors`).
"""

from __future__ import annotations

import contextlib
import errno
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

from fennec.errors import StorageError

LOG = logging.getLogger(__name__)

#: errno values of a full disk, and of a folder this process cannot write.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


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
    # mypy matches **arrays against savez's keyword allow_pickle (a bool) too; the keys are array names
    return write_bytes_atomic(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


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


def storage_error(error: OSError, *, doing: str, kept: str = "", path: str | Path | None = None) -> StorageError | None:
    """The :class:`StorageError` for an ``OSError`` that means the disk is full or the folder
    cannot be written (:data:`DISK_FULL`, :data:`NOT_WRITABLE`); None for any other error.

    Args:
        error: what the write raised.
        doing: what fennec was doing, e.g. ``"fitting /data/fennec"``.
        kept: what is intact despite the error (a sentence), e.g. the previous fit.
        path: what could not be written (default: the error's file name).
    """
    if isinstance(error, StorageError):
        return error
    where = str(path or error.filename or "fennec's home")
    kept = f" {kept.strip()}" if kept else ""
    if error.errno in DISK_FULL:
        message = (f"No space left on the device of {where} while {doing}.{kept} Free some space (or point "
                   "FENNEC_HOME / --home at a larger disk) and run the command again.")
    elif error.errno == errno.EROFS:
        message = (f"{where} is on a read-only file system, so fennec cannot write there while {doing}.{kept} "
                   "Remount it writable, or copy the folder (cp -a) to a writable place and point FENNEC_HOME "
                   "(--home) at the copy; nothing in it needs to be deleted.")
    elif error.errno in NOT_WRITABLE:
        message = (f"Permission denied on {where} while {doing}.{kept} Give this user access to it, or copy the "
                   "folder (cp -a) to a place this user can write and point FENNEC_HOME (--home) at the copy; "
                   "nothing in it needs to be deleted.")
    else:
        return None
    return StorageError(message, path=where, errno=error.errno)


@contextlib.contextmanager
def storage_errors(doing: str, *, kept: str = "") -> Iterator[None]:
    """Turn an ``OSError`` of a full disk or an unwritable folder raised inside into a
    :class:`StorageError` (:func:`storage_error`); every other exception passes unchanged."""
    try:
        yield
    except OSError as e:
        converted = storage_error(e, doing=doing, kept=kept)
        if converted is None or converted is e:
            raise
        raise converted from e
