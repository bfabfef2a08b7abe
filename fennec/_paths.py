"""Where fennec's own files are: the package, its packaged zoo, and (only when fennec runs
from one) the source checkout.

An installed fennec (a wheel in ``site-packages``) reads nothing but its package: the
embedded zoo and its ground truth are package data under ``fennec/_zoo`` (copied there from
the checkout's ``zoo/`` and ``benchmark/results/zoo_ground_truth.json`` when the wheel is
built, see ``setup.py``). A source checkout (``pip install -e .``, or the repository on
``sys.path``) has no ``fennec/_zoo`` and uses ``zoo/`` and ``benchmark/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGE_DIR", "PACKAGED_ZOO", "ZOO_GROUND_TRUTH", "source_root"]

#: The ``fennec`` package folder.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The embedded zoo as package data (present in a wheel or an sdist build, absent in a checkout).
PACKAGED_ZOO = PACKAGE_DIR / "_zoo"
#: The zoo's fine-tuning ground truth, relative to the source checkout's root
#: (``<zoo>/ground_truth.json`` in a packaged or custom zoo).
ZOO_GROUND_TRUTH = Path("benchmark") / "results" / "zoo_ground_truth.json"


def source_root() -> Path | None:
    """The source checkout fennec runs from, or None when fennec is installed.

    The checkout is the folder above the package when it holds fennec's own
    ``pyproject.toml``: ``site-packages`` never does, so an installed fennec never reads or
    writes whatever else happens to sit beside it there (a ``zoo`` or ``benchmark`` folder
    of another distribution).
    """
    root = PACKAGE_DIR.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "fennec"' in text else None
