"""The fitted versions of a workspace: each fit is a new folder ``.space.v<N>``, published by
atomically replacing the link ``space``; readers hold a shared lock on the version they load,
so a fit never deletes a version being read.

A reader holds a shared lock on the version it loads (its ``.readers`` file), so a fit never
deletes a version being read: older versions are removed by the fit that replaces them, or by
a later one when a reader still held them. A killed fit leaves only ``.space.*.tmp`` folders,
removed by the next fit of that home (which holds the home's fit lock, so no live fit owns them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fennec import constants
from fennec._io import file_lock
from fennec.errors import WorkspaceError

__all__ = ["fit_lock", "load_manifest", "publish", "read_manifest", "reading", "remove_leftovers", "space_dir",
           "versions"]

LOG = logging.getLogger(__name__)

#: Fitted versions: ``.space.v<N>``; the link ``space`` names the current one.
_VERSION = re.compile(r"^\.space\.v(\d+)$")


def fit_lock(home: Path) -> Any:
    """Fits of one workspace (and builds of the zoo) run one at a time, across processes."""
    home.mkdir(parents=True, exist_ok=True)
    return file_lock(home / constants.FIT_LOCK_FILE, waiting=f"Waiting for another fennec fit of {home} to finish")


def versions(home: Path) -> list[tuple[int, Path]]:
    """The fitted versions ``.space.v<N>`` in ``home``, newest first."""
    try:
        entries = list(home.iterdir())
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), p) for p in entries if (m := _VERSION.match(p.name))]
    return sorted(found, reverse=True)


def space_dir(home: Path) -> Path | None:
    """The folder of ``home``'s current fit, or None if nothing is fitted. Reads only.

    That is the folder the link ``space`` names (or ``space`` itself, as older fennec versions
    wrote it). Without a usable ``space`` (a fit killed while replacing an older layout),
    the newest complete version, else the ``.space.old`` an older fennec's interrupted
    swap left."""
    link = home / constants.SPACE_LINK
    if (link / constants.FIT_MANIFEST).exists():
        return link.resolve()
    for _, folder in versions(home):
        if (folder / constants.FIT_MANIFEST).exists():
            return folder
    old = home / f".{constants.SPACE_LINK}.old"
    return old.resolve() if (old / constants.FIT_MANIFEST).exists() else None


@contextlib.contextmanager
def reading(home: Path) -> Iterator[Path | None]:
    """The current fit's folder (None: nothing fitted), which no fit deletes while this is open.

    Holds a shared lock on the version's ``.readers`` file (opened read-only, so a read-only
    home can be read). A version that a fit removed between finding and locking it (removal
    renames it first) is looked up again."""
    import fcntl

    for _ in range(10):
        folder = space_dir(home)
        if folder is None:
            yield None
            return
        try:
            fd = os.open(folder / constants.READERS_FILE, os.O_RDONLY)
        except FileNotFoundError:
            if folder.exists() and not _VERSION.match(folder.name):  # an older fennec's layout: no lock
                yield folder
                return
            continue  # removed meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if (folder / constants.FIT_MANIFEST).exists():
                yield folder
                return
        finally:
            os.close(fd)  # releases the lock
    raise WorkspaceError(f"The fitted space of {home} kept being replaced while it was read; try again.")


def publish(new: Path, home: Path) -> Path:
    """Make the complete fit in ``new`` the current one; returns its version folder.

    ``new`` becomes ``.space.v<N+1>``, then the link ``space`` is replaced by one to it in a
    single ``rename``: a reader finds the previous fit or this one, never neither. The
    previous versions are removed unless a reader holds them. Fits hold the home's fit lock,
    so versions are numbered without races."""
    existing = versions(home)
    n = (existing[0][0] if existing else 0) + 1
    link = home / constants.SPACE_LINK
    # older fennec versions: ``space`` a plain folder, or ``.space.old`` left by a killed swap
    legacy = [p for p in (link, home / f".{constants.SPACE_LINK}.old") if p.is_dir() and not p.is_symlink()]
    version = home / f".{constants.SPACE_LINK}.v{n + len(legacy)}"
    new.rename(version)  # first: while ``space`` is moved aside below, readers take the newest version
    for i, folder in enumerate(legacy):
        folder.rename(home / f".{constants.SPACE_LINK}.v{n + i}")
    pointer = home / f".{constants.SPACE_LINK}.link.{os.getpid()}.tmp"
    pointer.unlink(missing_ok=True)
    os.symlink(version.name, pointer)
    os.replace(pointer, link)
    old = home / f".{constants.SPACE_LINK}.old"
    if old.is_symlink():
        old.unlink()
    for _, folder in versions(home):
        if folder != version:
            _remove_unread(folder)
    return version


def _remove_unread(folder: Path) -> bool:
    """Delete an old version unless a reader holds it; True if deleted. It is renamed first,
    so a reader never finds it half-deleted."""
    import fcntl

    try:
        fd = os.open(folder / constants.READERS_FILE, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # a version without readers' lock (an older fennec's layout)
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                LOG.info("Keeping %s: a reader holds it; the next fit removes it", folder)
                return False
        trash = folder.with_name(f"{folder.name}.{os.getpid()}.trash")
        folder.rename(trash)
    finally:
        if fd is not None:
            os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def remove_leftovers(home: Path) -> None:
    """Remove what killed fits left: ``.space.*.tmp`` folders and links and ``.space.*.trash``
    folders. Called with the home's fit lock held: no live fit owns them."""
    try:
        entries = list(home.iterdir())
    except FileNotFoundError:
        return
    for path in entries:
        if path.name.startswith(f".{constants.SPACE_LINK}.") and path.name.endswith((".tmp", ".trash")):
            LOG.info("Removing %s, left by a fit that did not finish", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def read_manifest(home: Path) -> dict[str, Any] | None:
    """The current fit's ``fit.json`` (None: nothing fitted).

    Raises:
        WorkspaceError: it is damaged (``fennec fit`` replaces it).
    """
    with reading(home) as folder:
        if folder is None:
            return None
        return load_manifest(folder, home)


def load_manifest(folder: Path, home: Path) -> dict[str, Any]:
    path = folder / constants.FIT_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
    except (OSError, ValueError) as e:
        raise WorkspaceError(
            f"{path} is damaged ({e}). Run `fennec fit --home {home}` to fit the workspace again (its catalog is "
            "intact; give --hub, --proxy, --dim or --exclude again if the previous fit used others than the "
            "defaults: that file recorded them), or `fennec fit --zoo` for the embedded zoo's workspace.") from e
    return manifest
