"""Deprecated alias of :mod:`fennec.data.sources` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._data_sources", ("fennec.data.sources",))
