"""fennec and archi2vec beside any torch/torchvision pair (archi2vec/_compat.py), and a cheap
``import fennec``.

The subprocess tests run in whatever environment runs the suite: the pinned CPU torch with
PyPI's (CUDA) torchvision, whose extension does not load, and, in CI's standard-install
check (.ci/run), the registry's default matched pair, whose extension does.
"""

from __future__ import annotations

import importlib.machinery
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from archi2vec import _compat

REPO_ROOT = Path(__file__).resolve().parents[1]

# Modules whose import at `import fennec` time made the process abort or cost seconds.
HEAVY = ("transformers", "torchvision", "timm", "fennec.recommendation.recommender", "fennec.workspace",
         "archi2vec._compat", "datasets")


def _python(code: str, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout's packages."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=str(cwd),
                          capture_output=True, text=True, timeout=600)


def _json_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# import fennec is cheap
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", ["import fennec", "import fennec.metrics",
                                       "from fennec.evaluation import weighted_tau",
                                       "import fennec.cli"])
def test_import_loads_no_model_library(statement):
    out = _json_of(_python(f"""
        import json, sys
        {statement}
        print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules],
                           "torch": "torch" in sys.modules}}))
    """))
    assert out["loaded"] == []
    if statement == "import fennec":
        assert not out["torch"]  # nothing at `import fennec` time can touch torch.library


def test_top_level_names_are_lazy_but_complete():
    out = _json_of(_python("""
        import json, sys
        import fennec
        before = "fennec.recommendation.recommender" in sys.modules
        from fennec import recommend, Recommendation
        from fennec.recommendation.recommender import Recommendations
        from fennec.workspace import fit
        print(json.dumps({
            "before": before,
            "same": [fennec.recommend is recommend, fennec.Recommendation is Recommendation,
                     fennec.Recommendations is Recommendations, fennec.fit is fit],
            "dir": [n for n in fennec.__all__ if n in dir(fennec)],
            "all": sorted(fennec.__all__),
            "version": fennec.__version__,
        }))
    """))
    assert out["before"] is False
    assert out["same"] == [True, True, True, True]
    assert out["dir"] == out["all"] == ["Recommendation", "Recommendations", "RefineOptions", "SamplingOptions",
                                        "__version__", "fit", "recommend"]
    assert out["version"]


def test_unknown_attribute_raises_attribute_error():
    import fennec

    with pytest.raises(AttributeError, match="no attribute 'recommendd'"):
        fennec.recommendd  # noqa: B018
    assert not hasattr(fennec, "ensure_torchvision_importable")


# ---------------------------------------------------------------------------------------
# The real environment: both pairs import, nothing is registered twice
# ---------------------------------------------------------------------------------------


def test_schemas_defined_only_when_the_extension_does_not_load():
    """In this environment's torch/torchvision: fennec defines torchvision's schemas exactly
    when torchvision's own extension did not load (a second definition aborts the process)."""
    out = _json_of(_python("""
        import json
        import torch
        from archi2vec import _compat
        _compat.ensure_torchvision_importable()
        _compat.ensure_torchvision_importable()  # a second call changes nothing
        import torchvision, timm, transformers
        from torchvision import extension
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
        kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() if extension._has_ops() else None
        print(json.dumps({"defined": _compat._LIBRARY is not None, "has_ops": extension._has_ops(),
                          "kept": kept}))
    """))
    assert out["defined"] != out["has_ops"]
    if out["has_ops"]:  # a matched pair: torchvision's real kernels, not fennec's schemas
        assert out["kept"] == [0, 2]


def test_import_fennec_leaves_torchvision_as_it_is():
    """``import fennec`` before torchvision/timm changes nothing about how they import (it used
    to register torchvision's ops itself, and a healthy torchvision then aborted the process)."""
    plain = _python("import torchvision, timm")
    with_fennec = _python("import fennec; import torchvision; import timm; import fennec.metrics")
    assert with_fennec.returncode >= 0, with_fennec.stderr[-2000:]  # not killed by SIGABRT
    assert with_fennec.returncode == plain.returncode, (plain.stderr[-2000:], with_fennec.stderr[-2000:])


def test_guard_after_a_failed_or_successful_torchvision_import():
    out = _json_of(_python("""
        import json
        try:
            import torchvision  # fails beside CPU torch with the CUDA wheel; fine otherwise
            first = "ok"
        except RuntimeError as exc:
            first = str(exc)
        from archi2vec._compat import import_timm, import_transformers
        import_timm(); import_transformers()
        print(json.dumps({"first": first}))
    """))
    assert out["first"] == "ok" or "torchvision::nms" in out["first"]


@pytest.fixture
def tiny_vit(tmp_path):
    folder = tmp_path / "vit"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "image_size": 32, "patch_size": 8}))
    return folder


@pytest.mark.parametrize("source", ["timm", "transformers"])
def test_archi2vec_cli_embeds_in_a_fresh_process(source, tiny_vit, tmp_path):
    """The command line with nothing imported beforehand (no conftest guard): a timm name and
    a transformers config both build."""
    if source == "timm" and not _compat.timm_available():
        pytest.skip("timm is not installed")
    args = ["embed", "resnet18", "--library", "timm"] if source == "timm" else ["embed", str(tiny_vit)]
    out = tmp_path / "v.json"
    proc = _python("import sys; from archi2vec.cli import main; sys.exit(main(sys.argv[1:]))",
                   *args, "--method", "record", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    vector = json.loads(out.read_text())["vector"]
    assert len(vector) == 256 and any(v != 0 for v in vector)


# ---------------------------------------------------------------------------------------
# The guard's branches, with the dispatcher and the loader replaced
# ---------------------------------------------------------------------------------------


class _FakeDispatcher:
    """Stands in for torch's operator registry, the Library class and ops.load_library."""

    def __init__(self, *, present=(), load_defines=(), load_fails=False):
        self.schemas = set(present)
        self.defined: list[str] = []
        self.loaded: list[str] = []
        self._load_defines = load_defines
        self._load_fails = load_fails

    def has_schema(self, qualified_name: str) -> bool:
        return qualified_name in self.schemas

    def load_library(self, path: str) -> None:
        self.loaded.append(Path(path).name)
        if self._load_fails:
            raise OSError(f"Could not load this library: {path}")
        self.schemas.update(f"torchvision::{n}" for n in self._load_defines)

    def library(self, namespace: str, kind: str):
        assert (namespace, kind) == ("torchvision", "FRAGMENT")
        fake = self

        class _Library:
            def define(self, schema: str) -> None:
                name = schema.split("(", 1)[0]
                assert f"torchvision::{name}" not in fake.schemas, f"{name} defined twice"
                fake.schemas.add(f"torchvision::{name}")
                fake.defined.append(name)

        return _Library()


@pytest.fixture
def fake_torchvision(tmp_path, monkeypatch):
    """A torchvision package folder (files chosen per test), not imported, and a fake dispatcher."""
    package = tmp_path / "torchvision"
    package.mkdir()
    spec = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    monkeypatch.setattr(_compat, "_torchvision_spec", lambda: spec)
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    monkeypatch.setattr(_compat, "_LIBRARY", None)

    def install(*files: str, **dispatcher_kwargs) -> _FakeDispatcher:
        for name in files:
            (package / name).write_bytes(b"")
        fake = _FakeDispatcher(**dispatcher_kwargs)
        monkeypatch.setattr(_compat, "_has_schema", fake.has_schema)
        monkeypatch.setattr(torch.ops, "load_library", fake.load_library)
        monkeypatch.setattr(torch.library, "Library", fake.library)
        return fake

    return install


def test_extension_that_loads_defines_nothing(fake_torchvision):
    fake = fake_torchvision("_C_stable.so", load_defines=("nms", "qnms"))
    _compat.ensure_torchvision_importable()
    assert fake.loaded == ["_C_stable.so"] and fake.defined == []
    _compat.ensure_torchvision_importable()
    assert fake.loaded == ["_C_stable.so"]  # ops present now: no second load


def test_extension_that_fails_to_load_gets_the_schemas(fake_torchvision):
    fake = fake_torchvision("_C_stable.so", load_fails=True)
    _compat.ensure_torchvision_importable()
    assert fake.loaded == ["_C_stable.so"] and fake.defined == ["nms", "qnms"]
    _compat.ensure_torchvision_importable()
    assert fake.defined == ["nms", "qnms"] and fake.loaded == ["_C_stable.so"]


def test_older_extension_name_and_preference(fake_torchvision):
    fake = fake_torchvision("_C.so", "image.so", load_defines=("nms", "qnms"))
    _compat.ensure_torchvision_importable()
    assert fake.loaded == ["_C.so"] and fake.defined == []


def test_newest_extension_name_wins(fake_torchvision):
    fake = fake_torchvision("_C.so", "_C_stable.so", load_defines=("nms", "qnms"))
    _compat.ensure_torchvision_importable()
    assert fake.loaded == ["_C_stable.so"]


def test_extension_missing_one_op_gets_only_that_schema(fake_torchvision):
    fake = fake_torchvision("_C_stable.so", load_defines=("nms",))
    _compat.ensure_torchvision_importable()
    assert fake.defined == ["qnms"]


def test_no_compiled_extension_gets_the_schemas(fake_torchvision):
    fake = fake_torchvision("__init__.py")
    _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == ["nms", "qnms"]


def test_unknown_extension_layout_is_left_alone(fake_torchvision, caplog):
    fake = fake_torchvision("_C_future.so")
    with caplog.at_level(logging.WARNING, logger="archi2vec._compat"):
        _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == []
    assert "_C_future.so" in caplog.text and "_C_stable or _C" in caplog.text


def test_ops_already_registered_means_no_probe(fake_torchvision):
    fake = fake_torchvision("_C_stable.so", present=("torchvision::nms", "torchvision::qnms"))
    _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == []


def test_partly_registered_ops_are_completed_without_loading(fake_torchvision):
    """Loading the extension beside a schema defined elsewhere would abort: add the rest."""
    fake = fake_torchvision("_C_stable.so", present=("torchvision::nms",))
    _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == ["qnms"]


def test_torchvision_already_imported_means_nothing(fake_torchvision, monkeypatch):
    fake = fake_torchvision("_C_stable.so")
    monkeypatch.setitem(sys.modules, "torchvision", object())
    _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == []


def test_torchvision_absent_means_nothing(fake_torchvision, monkeypatch):
    fake = fake_torchvision()
    monkeypatch.setattr(_compat, "_torchvision_spec", lambda: None)
    _compat.ensure_torchvision_importable()
    assert fake.loaded == [] and fake.defined == []
