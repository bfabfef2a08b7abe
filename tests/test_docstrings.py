"""The examples in the docstrings of fennec and archi2vec run and print what they say.

A passing run must mean something: every module under ``ROOTS`` is searched for examples
(none is left out by a hand-kept list of modules), every example that is not marked ``+SKIP``
must have run, a module whose examples are all skipped fails, and every skipped example is
listed in ``SKIPPED`` with the reason it cannot run in a unit test (a stale entry fails too).
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ROOTS = ("archi2vec", "fennec")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Examples marked ``# doctest: +SKIP``, by their first source line (the directive removed),
# with why each cannot run here. Make an example runnable rather than adding it here.
SKIPPED = {
    'with HubServer(models_dir="zoo/hub", datasets_dir="zoo/datasets") as server:':
        "sets HF_ENDPOINT in the environment of the whole test process",
    'hub = HfHub(endpoint="http://127.0.0.1:8765", retry=RetryPolicy(attempts=3))':
        "needs a Hub server listening at that address",
    'hub.model_info("google/vit-base-patch16-224").sha':
        "needs the Hugging Face Hub",
    'scores = score_candidates(["org/a", "org/b"], sample, hub=hub)':
        "sample and hub stand for the caller's; tests/test_refine.py covers scoring",
    'final = fuse({"org/a": 0.91, "org/b": 0.88},':
        "needs the scores of the line before",
    'hub = open_hub("zoo/hub")':
        "opens the hub of the next line, which is skipped",
    'out = model_features("photolab/resnet-tiny-photos", sample, hub=hub)':
        "sample stands for the caller's; tests/test_features.py::test_a_zoo_model_on_synthetic_images "
        "runs it",
    'out.features.shape, out.cached':
        "needs the features of the line before",
    'cache = FeatureCache(tmp_path)':
        "tmp_path, sha and sample stand for the caller's; tests/test_features.py covers the cache",
    'cache.put(sha, sample.fingerprint, feats, probs)':
        "needs the cache of the line before",
    'feats2, probs2 = cache.get(sha, sample.fingerprint)':
        "needs the cache of the line before",
    'with Catalog(fennec_home() / "catalog.sqlite") as cat:':
        "writes to the user's fennec home (and reads the shared tables, or the Hub)",
    'recs = fennec.recommend("zoo/datasets/t-digits-fewshot", top_k=3)':
        "builds the zoo workspace and runs models; tests/test_recommend.py covers it",
    'recs[0].model_id':
        "needs the recommendations of the line before",
    'ws = Workspace.load(zoo_workspace())':
        "builds the zoo workspace in the user's fennec home; tests/test_local_state.py covers it",
    'len(ws.index)':
        "needs the workspace of the line before",
    'summary = init_workspace("https://huggingface.co", top=200, progress=True)':
        "needs the Hugging Face Hub; tests/test_init_e2e.py runs it on a local Hub",
    'print(summary.next_command)':
        "needs the summary of the line before",
    'with Sandbox(time_budget=60) as sandbox:':
        "config.json stands for the caller's file; tests/test_hostile_configs.py covers embedding",
}


@cache
def module_names() -> tuple[str, ...]:
    """Every importable module under :data:`ROOTS` (``__main__`` modules are programs)."""
    names = []
    for root_name in ROOTS:
        names.append(root_name)
        root = importlib.import_module(root_name)
        for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{root_name}."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                names.append(info.name)
    return tuple(sorted(names))


def _first_line(example: doctest.Example) -> str:
    return example.source.splitlines()[0].split("# doctest:")[0].strip()


def examples(name: str) -> tuple[list[doctest.Example], list[doctest.Example]]:
    """(all examples, those marked ``+SKIP``) in the docstrings that ``doctest.testmod``
    runs for module ``name``."""
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    found = [e for t in tests for e in t.examples]
    return found, [e for e in found if e.options.get(doctest.SKIP)]


def test_the_search_finds_the_documented_modules():
    with_examples = {name for name in module_names() if examples(name)[0]}
    assert {"archi2vec", "fennec.evaluation", "fennec.metrics.logme", "fennec.metrics.sfda"} <= with_examples


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples(name, monkeypatch):
    found, skipped = examples(name)
    if not found:
        return  # nothing to run; test_the_search_finds_the_documented_modules guards the search
    unexplained = [_first_line(e) for e in skipped if _first_line(e) not in SKIPPED]
    assert not unexplained, f"{name}: skipped examples without a reason in SKIPPED: {unexplained}"
    monkeypatch.chdir(REPO_ROOT)  # examples name the zoo by its path in the repository
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    assert result.attempted == len(found) - len(skipped) > 0, (
        f"{name}: {result.attempted} of {len(found)} examples ran ({len(skipped)} skipped)")


def test_every_skip_reason_names_a_skipped_example():
    skipped = {_first_line(e) for name in module_names() for e in examples(name)[1]}
    assert sorted(set(SKIPPED) - skipped) == [], "SKIPPED lists examples that are no longer skipped"


# -- one dialect --------------------------------------------------------------------------
# fennec.metrics' style, everywhere in fennec and archi2vec: a summary line, the paper and the
# formula where there is one, then Google-style sections ("Args:", "Returns:", "Raises:",
# "Shape:", "Note:", "Example:"). Not NumPy-style underlined headers, not reST field lists.
OTHER_DIALECTS = re.compile(
    r"^[ \t]*(?:(?P<numpy>[A-Z][A-Za-z ]+\n[ \t]*-{3,})[ \t]*$"
    r"|(?P<rest>:(?:param|type|returns?|rtype|raises?|ivar|cvar)\b[^:\n]*:))",
    re.MULTILINE)


def _docstrings(path: Path):
    """(line, docstring) of the module, every class and every function in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def test_one_docstring_dialect():
    found = []
    for root in ("fennec", "archi2vec"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            for line, doc in _docstrings(path):
                found += [f"{path.relative_to(REPO_ROOT)}:{line}: {m.group(0).strip()!r}"
                          for m in OTHER_DIALECTS.finditer(doc)]
    assert found == [], ("docstrings in another dialect than fennec.metrics' Google-style sections "
                         f"(Args:/Returns:/Raises:/Shape:/Note:/Example:): {found}")


@pytest.mark.parametrize("doc", [
    "Sum.\n\n    Parameters\n    ----------\n    x : int\n        A number.\n",
    "Sum.\n\n    Returns\n    -------\n    int\n",
    "Sum.\n\n    :param x: a number.\n    :returns: the sum.\n",
    "Sum.\n\n:raises ValueError: when x is negative.\n",
])
def test_the_dialect_check_finds_the_other_dialects(doc):
    assert OTHER_DIALECTS.search(doc)


def test_the_dialect_check_accepts_the_metrics_style():
    from fennec.metrics import leep

    doc = leep.__doc__
    assert "Args:" in doc and "Returns:" in doc and "Example:" in doc
    assert OTHER_DIALECTS.search(doc) is None
