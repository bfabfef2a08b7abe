"""Aliases that keep the module paths and names of fennec's flat layout working for one release.

Issue 13 moved fennec's modules into packages by concept. Two kinds of aliases remain:

- an old module with no package of the same name now (``fennec.refine``, ``fennec._files``
  …) is a thin module made by :func:`moved`: importing it warns (:class:`DeprecationWarning`,
  naming the new path) and every attribute read from it is the very object of the new module;
- an old module that became a package of the same name (``fennec.hub``, ``fennec.workspace``
  …) exports its public names as before; a name it held that now lives only in one of its
  modules (``fennec.hub.MAX_DATASET_FILES``, ``fennec.workspace._zoo_ground_truth``) is still
  found through the package's :func:`forwarded` ``__getattr__``, with the same warning.

Private names that became public when their module moved into a package are found under
their old name too (``renamed``). Assigning to an alias does not change the new module:
code that patches a module must patch the new one. The aliases go in the next release.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["forwarded", "moved"]


def _finder(old: str, new: tuple[str, ...], renamed: Mapping[str, str] | None,
            warn_each: bool) -> Callable[[str], Any]:
    names = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # module protocol lookups (__path__, __wrapped__ …) are not aliases
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        target = names.get(name, name)
        found = [(m, getattr(importlib.import_module(m), target)) for m in new
                 if hasattr(importlib.import_module(m), target)]
        if not found:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        # name the module that defines it where it can tell (a function's, a class's), else the first
        where, value = next(((m, v) for m, v in found if getattr(v, "__module__", None) == m), found[0])
        defined_in = getattr(value, "__module__", None)
        if isinstance(defined_in, str) and defined_in.startswith("fennec.") and not isinstance(value, type(importlib)):
            where = defined_in  # e.g. an error class, re-exported by the module it is found in
        if warn_each:
            warnings.warn(f"{old}.{name} is deprecated and will be removed in the next release; use "
                          f"{where}.{target} instead.", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__


def moved(old: str, new: tuple[str, ...], *, renamed: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """Warn that module ``old`` moved to ``new`` and return its module ``__getattr__``.

    Args:
        old: the old module's dotted path (as a literal: it may run as ``__main__``).
        new: the modules that now hold what ``old`` held, looked up in this order.
        renamed: old attribute name -> new name, for the private names that became public
            when their module moved into a package (e.g. ``_SideEncoder`` -> ``SideEncoder``).

    Returns:
        A function for the old module's ``__getattr__`` (:pep:`562`): the attribute of the
        first module in ``new`` that has it.
    """
    warnings.warn(f"{old} is deprecated and will be removed in the next release; import from "
                  f"{' / '.join(new)} instead.", DeprecationWarning, stacklevel=3)
    return _finder(old, new, renamed, warn_each=False)


def forwarded(package: str, modules: tuple[str, ...], *,
              renamed: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """The ``__getattr__`` of a package that replaced a module of the same name: a name the old
    module held that the package does not export is looked up in ``modules`` (in order), with
    a :class:`DeprecationWarning` naming where it lives now. ``renamed`` as in :func:`moved`."""
    return _finder(package, modules, renamed, warn_each=True)
