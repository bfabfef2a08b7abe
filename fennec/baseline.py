"""Deprecated alias of :mod:`fennec.space.baseline` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec.baseline", ("fennec.space.baseline",))
