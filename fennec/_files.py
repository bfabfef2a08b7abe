"""Deprecated alias of :mod:`fennec._io` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._files", ("fennec._io",))
