"""``python -m fennec.hub.server``: serve folders of Hub-style repositories (:func:`fennec.hub.server.main`)."""

import sys

from fennec.hub.server.app import main

sys.exit(main())
