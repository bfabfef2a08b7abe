"""Optional imports: timm and transformers, whatever torchvision build sits beside torch.

torchvision's operators (``torchvision::nms``, ...) are defined by its compiled extension
(``_C_stable.so`` from 0.29, ``_C.so`` before), which ``import torchvision`` loads first;
its Python side then registers fake kernels for them. Two environments must both work:

* a **matched pair** (the registry's default torch and torchvision, CPU or CUDA): the
  extension loads and defines the ops. Defining them again from Python, before or after,
  makes the extension's static registration throw, and the process aborts (SIGABRT).
* a **mismatched pair**, e.g. the CPU build of torch with PyPI's torchvision (a CUDA build):
  the extension does not load, and ``import torchvision`` fails with ``operator
  torchvision::nms does not exist``. Once torchvision is installed, transformers imports it
  too, so even transformers vision models fail to import.

:func:`ensure_torchvision_importable` therefore loads the extension itself first, exactly as
torchvision does (:func:`torch.ops.load_library`, same file): if it loads, its ops are
defined and torchvision's own load of the same file later is the same library handle (no
second registration). Only if it cannot load does it define the two schemas torchvision's
Python side needs (``torchvision::nms`` and ``torchvision::qnms``) with :mod:`torch.library`;
the ops then exist without kernels, which is all model building needs (no NMS is run).

Everything in fennec and archi2vec that imports timm or transformers goes through
:func:`import_timm` / :func:`import_transformers`.
"""

from __future__ import annotations

import enum
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

__all__ = ["ensure_torchvision_importable", "import_timm", "import_transformers", "timm_available"]

LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LIBRARY: Any = None  # the torch.library.Library that owns the schemas; kept alive here
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
}
# The compiled extension ``torchvision/extension.py`` loads, newest name first.
_EXTENSION_NAMES = ("_C_stable", "_C")


class _Probe(enum.Enum):
    """What happened when torchvision's compiled extension was loaded ahead of torchvision."""

    LOADED = "loaded"  # it defined its ops; torchvision's own load is the same handle
    FAILED = "failed"  # it exists but does not load on this torch (mismatched pair)
    ABSENT = "absent"  # torchvision has no compiled extension: nothing will define the ops
    UNKNOWN = "unknown"  # compiled files under names fennec does not know: leave them alone


def _has_schema(qualified_name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(qualified_name, "")
    except RuntimeError:
        return False
    return True


def _extension_path(package_dir: Path) -> Path | _Probe:
    """torchvision's compiled extension in ``package_dir``, found the way torchvision finds it.

    Returns:
        Its path; :attr:`_Probe.ABSENT` when there is no compiled ``_C*`` file at all;
        :attr:`_Probe.UNKNOWN` when there are ``_C*`` files but none with a known name.
    """
    finder = importlib.machinery.FileFinder(
        str(package_dir), (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
    for name in _EXTENSION_NAMES:
        spec = finder.find_spec(name)
        if spec is not None and spec.origin:
            return Path(spec.origin)
    compiled = [p.name for p in package_dir.glob("_C*")
                if any(p.name.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)]
    if compiled:
        LOG.warning("torchvision in %s has compiled extensions %s, none named %s; fennec leaves "
                    "its operators alone", package_dir, sorted(compiled), " or ".join(_EXTENSION_NAMES))
        return _Probe.UNKNOWN
    return _Probe.ABSENT


def _load_extension(path: Path) -> _Probe:
    """Load torchvision's extension as ``torchvision/extension.py`` would; never raises OSError."""
    if sys.platform == "win32":  # torchvision adds its folder to the DLL search path before loading
        os.add_dll_directory(str(path.parent))
    try:
        torch.ops.load_library(str(path))
    except OSError as exc:  # e.g. a CUDA build beside CPU torch: libc10_cuda.so is missing
        LOG.debug("torchvision's extension does not load on this torch: %s (%s)", exc, exc.__cause__)
        return _Probe.FAILED
    return _Probe.LOADED


def _probe_extension(spec: importlib.machinery.ModuleSpec) -> _Probe:
    """Load the extension of the (not yet imported) torchvision package ``spec`` if there is one."""
    locations = list(spec.submodule_search_locations or ())
    if not locations:  # not a package: no extension of its own
        return _Probe.ABSENT
    found = _extension_path(Path(locations[0]))
    return found if isinstance(found, _Probe) else _load_extension(found)


def _torchvision_spec() -> importlib.machinery.ModuleSpec | None:
    """Where torchvision is installed, found without importing it (None: not installed)."""
    return importlib.util.find_spec("torchvision")


def ensure_torchvision_importable() -> None:
    """Make ``import torchvision`` (hence timm, transformers) work with this torch.

    Does nothing when torchvision is not installed, has already been imported, or its two
    op schemas already exist. Otherwise it loads torchvision's compiled extension (what
    ``import torchvision`` does first); if that extension cannot load, or there is none, it
    defines the ``torchvision::nms`` / ``torchvision::qnms`` schemas that torchvision's
    Python side needs. Safe to call many times and from several threads.

    Example:
        >>> ensure_torchvision_importable()  # then ``import timm`` works on any torch
    """
    global _LIBRARY
    if "torchvision" in sys.modules:  # its extension has had its chance already
        return
    spec = _torchvision_spec()
    if spec is None:
        return
    with _LOCK:
        if "torchvision" in sys.modules:
            return
        missing = [n for n in _SCHEMAS if not _has_schema(f"torchvision::{n}")]
        if not missing:
            return
        # With some torchvision:: schemas already defined (by someone else), loading the
        # extension would abort the process: only the missing ones can be added.
        if len(missing) == len(_SCHEMAS):
            probe = _probe_extension(spec)
            if probe is _Probe.UNKNOWN:
                return
            missing = [n for n in _SCHEMAS if not _has_schema(f"torchvision::{n}")]
            if not missing:
                return
        if _LIBRARY is None:
            _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _LIBRARY.define(_SCHEMAS[name])
        LOG.debug("defined schemas %s so that torchvision imports on this torch", missing)


def timm_available() -> bool:
    """Whether timm is installed (it is an optional dependency: ``pip install fennec[timm]``)."""
    return importlib.util.find_spec("timm") is not None


def import_timm() -> ModuleType:
    """Import timm after making torchvision importable.

    Returns:
        The ``timm`` module.

    Raises:
        ImportError: timm is not installed, or it (or torchvision) failed to import.
    """
    if not timm_available():
        raise ImportError("timm is not installed; install it with `pip install 'fennec[timm]'`")
    ensure_torchvision_importable()
    import timm  # optional dependency

    return timm


def import_transformers() -> ModuleType:
    """Import transformers after making torchvision importable (if it is installed)."""
    ensure_torchvision_importable()
    import transformers

    return transformers
