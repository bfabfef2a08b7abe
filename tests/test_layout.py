"""The import rules that keep fennec's layout by concept (issue 13), checked on the source.

The graph is read statically by ``scripts/module_graph.py`` (every import statement, at module
level, inside a function or under ``TYPE_CHECKING``); its :func:`check` states the rules, its
``LAYERS`` table the layer order (cli -> recommendation -> workspace -> space/index/catalog ->
hub/data/features -> metrics/validation/errors). ``python scripts/module_graph.py --check``
prints the same violations.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _module_graph():
    spec = importlib.util.spec_from_file_location("module_graph", REPO_ROOT / "scripts" / "module_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("module_graph", module)
    spec.loader.exec_module(module)
    return module


MG = _module_graph()


@pytest.fixture(scope="module")
def violations() -> dict[str, list]:
    return MG.check(MG.analyse(REPO_ROOT))


def test_only_fennec_hub_imports_huggingface_hub(violations):
    assert violations["huggingface_hub"] == []


def test_no_module_imports_from_a_higher_layer(violations):
    assert violations["upward"] == []


def test_every_module_has_a_layer(violations):
    """A new module (or package) gets its place in ``LAYERS`` of scripts/module_graph.py."""
    assert violations["unlayered"] == []


def test_no_import_cycles(violations):
    assert violations["cycles"] == []


def test_no_private_name_is_imported_across_modules(violations):
    assert violations["private_names"] == []
    assert len(MG.ALLOWED_PRIVATE) <= 3  # a short, justified allow-list, if any


def test_archi2vec_never_imports_fennec(violations):
    assert violations["archi2vec_imports_fennec"] == []


# -- the checker itself, on small made-up trees ------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("fennec", "archi2vec"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    root = _tree(tmp_path, {
        "fennec/errors.py": "",
        "fennec/hub/__init__.py": "import huggingface_hub\n",
        "fennec/data/__init__.py": "def f():\n    import huggingface_hub\n",  # inside a function: still seen
        "fennec/space/__init__.py": "from fennec.workspace import load\n",  # layer 4 -> 6: upward
        "fennec/workspace/__init__.py": "",
        "fennec/workspace/load.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from fennec.workspace.fitting import _helper\n",
        "fennec/workspace/fitting.py": "from . import load\n",  # relative, and a cycle with load
        "fennec/newthing.py": "from fennec.errors import _private\n",
        "archi2vec/graph.py": "from fennec import errors\n",
    })
    found = MG.check(MG.analyse(root))
    assert found["huggingface_hub"] == ["fennec.data"]
    assert [(u["importer"], u["imported"]) for u in found["upward"]] == [("fennec.space", "fennec.workspace.load")]
    assert found["unlayered"] == ["fennec.newthing"]
    assert found["cycles"] == [["fennec.workspace.fitting", "fennec.workspace.load"]]
    assert {(p["importer"], p["name"]) for p in found["private_names"]} == {
        ("fennec.workspace.load", "_helper"), ("fennec.newthing", "_private")}
    assert found["archi2vec_imports_fennec"] == [["archi2vec.graph", "fennec.errors"]]
    graph = MG.analyse(root)
    assert graph["edges_by_kind"]["type_checking"] == 1 and graph["edges_by_kind"]["function"] == 0


def test_the_flat_layout_breaks_the_rules(tmp_path):
    """Before issue 13: ``hub_server`` and ``_hub_routes`` imported each other, and private names
    crossed modules; the same checker run on a tree laid out like that finds both."""
    root = _tree(tmp_path, {
        "fennec/hub_server.py": "from fennec._hub_routes import _Handler\n",
        "fennec/_hub_routes.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from fennec.hub_server import HubServer\n",
    })
    found = MG.check(MG.analyse(root))
    assert found["cycles"] == [["fennec._hub_routes", "fennec.hub_server"]]
    assert [p["name"] for p in found["private_names"]] == ["_Handler"]


def test_no_package_exports_a_name_that_hides_one_of_its_modules():
    """``fennec.workspace.fit`` must stay the function ``fit``; the module that defines it is
    ``fennec.workspace.fitting`` (``import a.b as m`` would otherwise give the attribute).
    ``fennec.metrics`` and ``archi2vec`` keep their own convention (``metrics.sfda`` is the
    function of the module ``metrics/sfda.py``), unchanged by issue 13."""
    modules = MG.find_modules(REPO_ROOT)
    hidden = []
    for name in (m for m, path in modules.items() if path.name == "__init__.py"
                 and m.startswith("fennec") and m != "fennec.metrics"):
        package = importlib.import_module(name)
        hidden += [f"{name}.{attr}" for attr in getattr(package, "__all__", ())
                   if f"{name}.{attr}" in modules and not isinstance(getattr(package, attr), type(package))]
    assert hidden == []
