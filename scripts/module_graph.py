"""Measure the static import graph of the ``fennec`` and ``archi2vec`` packages.

Reads every ``.py`` file under ``fennec/`` and ``archi2vec/`` with :mod:`ast` (nothing is
imported or run) and resolves each ``import`` / ``from ... import`` statement, at module level,
inside a function, or under ``if TYPE_CHECKING:``, to the project modules it names. From that
graph it reports:

- ``modules``: the project modules (a package counts as its ``__init__``);
- ``edges``: distinct ``importer -> imported`` pairs between project modules, split by where the
  import statement sits (``module``, ``function``, ``type_checking``); ``concept_edges``: the
  same with each module replaced by its concept (its :data:`LAYERS` entry);
- ``cycles``: strongly connected components of more than one module, over every edge (an
  import inside a function or under ``TYPE_CHECKING`` still ties the two modules together);
- ``upward``: imports from a lower layer to a higher one, per :data:`LAYERS` (below);
- ``private_names``: ``from fennec.x import _name`` across modules (``_name`` not a module);
- ``huggingface_hub``: the modules that import ``huggingface_hub``;
- ``unlayered``: modules :data:`LAYERS` does not place (each must be placed);
- ``aliases``: the deprecated aliases of old module paths (``fennec._deprecated.moved``),
  counted among the modules.

Usage (from the repository root)::

    python scripts/module_graph.py                      # JSON on stdout
    python scripts/module_graph.py --out graph.json     # and written to a file
    python scripts/module_graph.py --root /other/checkout

``tests/test_layout.py`` checks the import rules with :func:`analyse`.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

#: The packages measured.
PACKAGES = ("fennec", "archi2vec")

#: Layer of each module by its dotted prefix (the longest matching prefix wins), high to low:
#: a module may import modules of its own layer or of a lower one, never of a higher one.
#: ``cli -> recommendation -> workspace -> space/index/catalog -> hub/data/features ->
#: metrics/validation/errors``, with the jobs that combine several concepts placed between.
LAYERS: dict[str, int] = {
    # 9: entry points
    "fennec.cli": 9,
    "fennec.__main__": 9,
    "fennec.bench": 8,
    # the face (``fennec/__init__.py`` only): lazily loads recommendation and workspace
    "fennec": 8,
    "fennec.recommendation": 7,
    "fennec.workspace": 6,
    # jobs over the catalog, the index, the hub and the features
    "fennec.reindex": 5,
    "fennec.task": 5,
    "fennec.engine": 5,
    "fennec.space": 4,
    "fennec.index": 4,
    "fennec.catalog": 4,
    "fennec.published": 4,
    "fennec.data": 3,
    "fennec.features": 3,
    "fennec.hub": 2,
    # foundations: no fennec module above them
    "fennec.metrics": 1,
    "fennec.evaluation": 1,
    "fennec.validation": 1,
    "fennec.errors": 0,
    "fennec.constants": 0,
    "fennec._io": 0,
    "fennec._paths": 0,
    "fennec._progress": 0,
    "fennec._optional": 0,
    "fennec._deprecated": 0,
    # archi2vec stands apart: fennec may use it, it never imports fennec (checked separately)
    "archi2vec": 3,
}

#: Where each module of the flat layout (before issue 13) went; the old modules are placed in
#: the layer of their new home, so the "before" graph is measured against the same rules.
MOVED: dict[str, str] = {
    "fennec._files": "fennec._io",
    "fennec._hub_common": "fennec.hub.records",
    "fennec._hub_input": "fennec.hub.untrusted",
    "fennec._hub_routes": "fennec.hub.server.routes",
    "fennec._local_hub": "fennec.hub.local",
    "fennec._repo_store": "fennec.hub.repo_store",
    "fennec.hub_server": "fennec.hub.server",
    "fennec._catalog_schema": "fennec.catalog.schema",
    "fennec._data_sources": "fennec.data.sources",
    "fennec._model_loading": "fennec.features.loading",
    "fennec._space_side": "fennec.space.side",
    "fennec._space_tasks": "fennec.space.tasks",
    "fennec.baseline": "fennec.space.baseline",
    "fennec.recommender": "fennec.recommendation.recommender",
    "fennec.refine": "fennec.recommendation.refine",
    "fennec._bench_report": "fennec.bench.report",
}

#: The third-party package only ``fennec.hub`` may import.
HUB_LIBRARY = "huggingface_hub"

#: Import cycles allowed, each with why (a cycle not listed here is a violation).
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {
    ("archi2vec", "archi2vec._sandbox"): "the sandbox's worker process imports the archi2vec package inside its "
    "main function, to load torch/transformers/timm before its memory is limited; the package imports the "
    "sandbox's class. Not an import-time cycle, and archi2vec stays as it is (issue 13).",
}

#: Cross-module private-name imports allowed, as (importer, imported, name) with why. Empty: a name
#: another module needs is public in its module (a private module's names are private to it).
ALLOWED_PRIVATE: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One resolved import statement: ``importer`` reads ``target`` (a project module)."""

    importer: str
    target: str
    line: int
    where: str  # "module", "function" or "type_checking"
    names: tuple[str, ...]  # the names a from-import takes from ``target`` (empty for ``import x``)


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` (a package's ``__init__.py`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path) -> dict[str, Path]:
    """Every project module under ``root`` (the packaged zoo and caches skipped)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).parts
            if any(p.startswith(("_zoo", "__pycache__", ".")) for p in rel[:-1]):
                continue
            found[module_name(path, root)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement of ``tree`` with where it sits (module, function, type_checking)."""
    out: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                here = "function" if where == "module" else where
            if isinstance(child, ast.If) and _is_type_checking(child.test) and where == "module":
                for stmt in child.body:
                    visit_one(stmt, "type_checking")
                for stmt in child.orelse:
                    visit_one(stmt, where)
                continue
            visit_one(child, here)

    def visit_one(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, where))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and where == "module":
            where = "function"
        visit(node, where)

    visit(tree, "module")
    return out


def _resolve_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module a ``from`` import reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest project module that ``name`` is or lies in (``None`` outside the project)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> tuple[list[Import], set[str]]:
    """The project imports of one module, and the top-level names of everything it imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    externals: set[str] = set()
    for node, where in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                externals.add(alias.name.split(".")[0])
                target = _project_module(alias.name, modules)
                if target is not None and target != module:
                    found.append(Import(module, target, node.lineno, where, ()))
            continue
        base = _resolve_base(node, module, is_package)
        externals.add(base.split(".")[0])
        taken: dict[str, list[str]] = {}
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:  # `from pkg import submodule`
                taken.setdefault(sub, [])
            else:
                target = _project_module(base, modules)
                if target is not None:
                    taken.setdefault(target, []).append(alias.name)
        for target, names in taken.items():
            if target != module:
                found.append(Import(module, target, node.lineno, where, tuple(names)))
    return found, externals


def concept_of(module: str) -> str | None:
    """The entry of :data:`LAYERS` that places ``module`` (a module of the old layout: its new
    home's), i.e. the concept it belongs to; None if none does."""
    for old, new in MOVED.items():
        if module == old or module.startswith(old + "."):
            module = new + module[len(old):]
            break
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix == "fennec" and module != "fennec":  # the face's layer is its own, not its modules'
            return None
        if prefix in LAYERS:
            return prefix
    return None


def layer_of(module: str) -> int | None:
    """The layer of ``module`` per :data:`LAYERS` (a module of the old layout: its new home's)."""
    concept = concept_of(module)
    return None if concept is None else LAYERS[concept]


def _cycles(nodes: list[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in sorted(edges):
        succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def analyse(root: Path) -> dict:
    """The import graph of the checkout at ``root`` as a JSON-ready dict (see the module doc)."""
    modules = find_modules(root)
    imports: list[Import] = []
    hub_importers: list[str] = []
    for module, path in modules.items():
        found, externals = imports_of(module, path, modules)
        imports += found
        if HUB_LIBRARY in externals:
            hub_importers.append(module)
    edges: dict[str, set[tuple[str, str]]] = {"module": set(), "function": set(), "type_checking": set()}
    for imp in imports:
        edges[imp.where].add((imp.importer, imp.target))
    every = set().union(*edges.values())
    # the deprecated aliases of the flat layout's paths (fennec._deprecated.moved): modules by name only
    aliases = sorted({i.importer for i in imports if i.target == "fennec._deprecated" and "moved" in i.names})
    upward = sorted({(i.importer, i.target, i.where) for i in imports
                     if (a := layer_of(i.importer)) is not None and (b := layer_of(i.target)) is not None
                     and b > a})
    private = sorted({(i.importer, i.target, name) for i in imports for name in i.names
                      if name.startswith("_") and not name.startswith("__")})
    return {
        "modules": len(modules),
        "edges": len(every),
        "edges_by_kind": {kind: len(pairs) for kind, pairs in edges.items()},
        # the same graph with each module replaced by its concept (its LAYERS entry), self-loops left out
        "concept_edges": sorted([a, b] for a, b in {(concept_of(x), concept_of(y)) for x, y in every}
                                if a and b and a != b),
        "cycles": _cycles(sorted(modules), every),
        "upward": [{"importer": a, "imported": b, "where": w, "layers": [layer_of(a), layer_of(b)]}
                   for a, b, w in upward],
        "private_names": [{"importer": a, "imported": b, "name": n} for a, b, n in private],
        "private_pairs": len({(a, b) for a, b, _ in private}),
        "huggingface_hub": sorted(hub_importers),
        "archi2vec_imports_fennec": [list(p) for p in sorted({(i.importer, i.target) for i in imports
                                                              if i.importer.startswith("archi2vec")
                                                              and i.target.startswith("fennec")})],
        "unlayered": sorted(m for m in modules if layer_of(m) is None),
        "aliases": aliases,
        "module_list": sorted(modules),
        "edge_list": sorted([a, b, kind] for kind, pairs in edges.items() for a, b in pairs),
    }


def check(graph: dict) -> dict[str, list]:
    """The import rules of the layout, as ``{rule: violations}`` (every list empty: the layout holds).

    - ``huggingface_hub``: only ``fennec.hub`` (and its modules) imports huggingface_hub;
    - ``upward``: no import from a lower layer to a higher one (:data:`LAYERS`);
    - ``unlayered``: every module has a layer;
    - ``cycles``: no import cycle but those of :data:`ALLOWED_CYCLES`;
    - ``private_names``: no private name imported across modules but :data:`ALLOWED_PRIVATE`;
    - ``archi2vec_imports_fennec``: archi2vec never imports fennec.
    """
    in_hub = ("fennec.hub", "fennec.hub.")
    return {
        "huggingface_hub": [m for m in graph["huggingface_hub"]
                            if m.startswith("fennec") and not (m == in_hub[0] or m.startswith(in_hub[1]))],
        "upward": graph["upward"],
        "unlayered": graph["unlayered"],
        "cycles": [c for c in graph["cycles"] if tuple(c) not in ALLOWED_CYCLES],
        "private_names": [p for p in graph["private_names"]
                          if (p["importer"], p["imported"], p["name"]) not in ALLOWED_PRIVATE],
        "archi2vec_imports_fennec": graph["archi2vec_imports_fennec"],
    }


def summary(graph: dict) -> dict[str, int]:
    """The headline counts of :func:`analyse`'s result."""
    return {"modules": graph["modules"], "aliases": len(graph["aliases"]), "edges": graph["edges"],
            "concept_edges": len(graph["concept_edges"]),
            "cycles": len(graph["cycles"]),
            "upward_imports": len(graph["upward"]), "private_names": len(graph["private_names"]),
            "private_pairs": graph["private_pairs"], "huggingface_hub_importers": len(graph["huggingface_hub"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="checkout to measure (default: this one)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--check", action="store_true",
                        help="print the violations of the import rules (check()) and exit 1 if there are any")
    args = parser.parse_args(argv)
    graph = analyse(args.root.resolve())
    graph["summary"] = summary(graph)
    graph["violations"] = {rule: len(found) for rule, found in check(graph).items()}
    text = json.dumps(graph, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.check:
        violations = {rule: found for rule, found in check(graph).items() if found}
        print(json.dumps(violations, indent=1) if violations else "import rules: ok")
        return 1 if violations else 0
    print(json.dumps(graph["summary"]) if args.out else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
