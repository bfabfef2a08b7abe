"""``python -m fennec.cli``: the ``fennec`` command."""

from fennec.cli import main

raise SystemExit(main())
