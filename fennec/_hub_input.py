"""Deprecated alias of :mod:`fennec.hub.untrusted` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._hub_input", ("fennec.hub.untrusted",))
