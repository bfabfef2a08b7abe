"""Deprecated alias of :mod:`fennec.hub.server` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec.hub_server", ("fennec.hub.server", "fennec.hub.server.app", "fennec.hub.server.routes"),
    renamed={"_Handler": "HubRequestHandler"},
)

if __name__ == "__main__":  # `python -m fennec.hub_server` keeps working: `python -m fennec.hub.server`
    import sys

    from fennec.hub.server import main

    sys.exit(main())
