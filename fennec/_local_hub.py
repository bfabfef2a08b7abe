"""Deprecated alias of :mod:`fennec.hub.local` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._local_hub", ("fennec.hub.local",))
