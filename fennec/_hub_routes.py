"""Deprecated alias of :mod:`fennec.hub.server.routes` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._hub_routes", ("fennec.hub.server.routes",), renamed={"_Handler": "HubRequestHandler"})
