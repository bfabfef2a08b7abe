"""Deprecated alias of :mod:`fennec.hub.repo_store` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._repo_store", ("fennec.hub.repo_store",))
