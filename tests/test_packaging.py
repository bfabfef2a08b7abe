"""fennec as installed from a wheel: the embedded zoo is package data, and an installed fennec
reads and writes nothing of the source tree.

``setup.py``'s selection and copy are tested on the real checkout and on a fake one; an
installed fennec is simulated by pointing ``fennec._paths`` at a packaged zoo and at no source
checkout. The real build, install and run of the wheel is ``wheel_check`` in ``.ci/run``
(and, without the install, the ``slow`` test at the end).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fennec import _paths, cli
from fennec.bench import runner as bench
from fennec.errors import WorkspaceError
from fennec.task import OFFLINE_PROXY
from fennec.workspace import zoo_dir, zoo_workspace
from fennec.workspace.layout import zoo_ground_truth
from zoo_fixtures import MODELS, tiny_zoo  # noqa: F401  (the fixture)

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUND_TRUTH = REPO_ROOT / "benchmark" / "results" / "zoo_ground_truth.json"


def _load_setup():
    """``setup.py`` as a module (its ``setup()`` call only runs as ``__main__``)."""
    spec = importlib.util.spec_from_file_location("fennec_setup_under_test", REPO_ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def setup_py():
    return _load_setup()


@pytest.fixture
def installed(monkeypatch):
    """fennec as if installed: no source checkout, no FENNEC_ZOO; returns a setter for the packaged zoo."""
    monkeypatch.delenv("FENNEC_ZOO", raising=False)
    monkeypatch.setattr(_paths, "source_root", lambda: None)

    def packaged(path: Path) -> Path:
        monkeypatch.setattr(_paths, "PACKAGED_ZOO", path)
        return path

    return packaged


# -- what the wheel carries (setup.py) -----------------------------------------------------


def test_zoo_files_of_the_checkout_are_what_the_default_needs(setup_py):
    files = setup_py.zoo_files(REPO_ROOT)
    rels = [rel for _, rel in files]
    assert len(rels) == len(set(rels))
    assert dict((rel, src) for src, rel in files)["ground_truth.json"] == GROUND_TRUTH
    truth = json.loads(GROUND_TRUTH.read_text())
    # every model of the ground truth and the proxy, whole: configs and card (index), weights (refine)
    for model in [*truth["models"], OFFLINE_PROXY]:
        for name in ("config.json", "preprocessor_config.json", "README.md", "model.safetensors"):
            assert f"hub/{model}/{name}" in rels, (model, name)
    # every target's training split (what describes the known tasks), and no other split
    for target in truth["test_accuracy_seed0"]:
        assert any(r.startswith(f"datasets/{target}/data/train-") for r in rels), target
    parquet = [r for r in rels if r.startswith("datasets/")]
    assert parquet and all(Path(r).name.startswith("train-") and r.endswith(".parquet") for r in parquet)
    assert not any(r.startswith("datasets/src-") or "/." in f"/{r}" for r in rels)
    assert all(src.is_file() for src, _ in files)


def _fake_checkout(root: Path) -> Path:
    for rel in ("zoo/hub/lab/m/config.json", "zoo/hub/lab/m/model.safetensors", "zoo/hub/lab/m/.cache/x",
                "zoo/datasets/t-a/data/train-00000-of-00001.parquet",
                "zoo/datasets/t-a/data/test-00000-of-00001.parquet", "zoo/datasets/t-a/README.md",
                "zoo/datasets/src-a/data/train-00000-of-00001.parquet",
                "zoo/datasets/.drift/data/train-00000-of-00001.parquet",
                "zoo/zoo.json", "benchmark/results/zoo_ground_truth.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


def test_build_py_copies_the_selection_into_fennec_zoo(setup_py, tmp_path, monkeypatch):
    from setuptools import Distribution

    monkeypatch.setattr(setup_py, "ROOT", _fake_checkout(tmp_path / "src"))
    (tmp_path / "lib" / "fennec" / "_zoo" / "hub" / "old").mkdir(parents=True)  # left by an older build
    cmd = setup_py.build_py(Distribution({"name": "fennec", "packages": []}))
    cmd.build_lib = str(tmp_path / "lib")
    cmd.ensure_finalized()
    cmd.run()
    zoo = tmp_path / "lib" / "fennec" / "_zoo"
    got = sorted(p.relative_to(zoo).as_posix() for p in zoo.rglob("*") if p.is_file())
    assert got == ["datasets/t-a/data/train-00000-of-00001.parquet", "ground_truth.json",
                   "hub/lab/m/config.json", "hub/lab/m/model.safetensors"]
    assert (zoo / "ground_truth.json").read_text() == "benchmark/results/zoo_ground_truth.json"
    assert sorted(cmd.get_outputs()) == sorted(str(zoo / g) for g in got)


def test_editable_build_copies_nothing(setup_py, tmp_path, monkeypatch):
    from setuptools import Distribution

    monkeypatch.setattr(setup_py, "ROOT", _fake_checkout(tmp_path / "src"))
    cmd = setup_py.build_py(Distribution({"name": "fennec", "packages": []}))
    cmd.build_lib = str(tmp_path / "lib")
    cmd.editable_mode = True
    cmd.ensure_finalized()
    cmd.run()
    assert not (tmp_path / "lib" / "fennec" / "_zoo").exists() and cmd.get_outputs() == []


def test_sdist_carries_the_selection_at_checkout_paths(setup_py, tmp_path, monkeypatch):
    from setuptools import Distribution

    src = _fake_checkout(tmp_path / "src")
    monkeypatch.setattr(setup_py, "ROOT", src)
    cmd = setup_py.sdist(Distribution({"name": "fennec"}))
    cmd.ensure_finalized()
    cmd.make_release_tree(str(tmp_path / "release"), [])
    release = [p.relative_to(tmp_path / "release") for p in (tmp_path / "release").rglob("*") if p.is_file()]
    got = sorted(p.as_posix() for p in release if p.parts[0] in ("zoo", "benchmark"))  # not PKG-INFO, setup.cfg
    assert got == ["benchmark/results/zoo_ground_truth.json", "zoo/datasets/t-a/data/train-00000-of-00001.parquet",
                   "zoo/hub/lab/m/config.json", "zoo/hub/lab/m/model.safetensors"]
    # and the tree it makes builds the same zoo again (an sdist builds the wheel's zoo)
    assert [rel for _, rel in setup_py.zoo_files(tmp_path / "release")] == [rel for _, rel in setup_py.zoo_files(src)]


@pytest.mark.parametrize("remove, match", [
    ("benchmark/results/zoo_ground_truth.json", "zoo_ground_truth.json missing"),
    ("zoo/hub", "zoo/hub missing"),
    ("zoo/datasets/t-a/data/train-00000-of-00001.parquet", "t-a has no data/train"),
])
def test_an_incomplete_checkout_fails_the_build(setup_py, tmp_path, remove, match):
    root = _fake_checkout(tmp_path)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(SystemExit, match=match):
        setup_py.zoo_files(root)


def test_package_data_globs_carry_every_published_file():
    """pyproject's package-data for fennec.published matches every file of the published data."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    globs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = REPO_ROOT / "fennec" / "published"
    carried = {p for pattern in globs["fennec.published"] for p in package.glob(pattern) if p.is_file()}
    shipped = {p for p in (package / "data").rglob("*") if p.is_file()} | {package / "README.md"}
    assert carried == shipped
    assert len([p for p in shipped if p.parent.name == "tables" and p.suffix == ".json"]) == \
        len(json.loads((package / "data" / "sources.json").read_text())["sources"])


# -- where an installed fennec looks -------------------------------------------------------


def test_source_root_is_this_checkout_and_never_site_packages(tmp_path, monkeypatch):
    assert _paths.source_root() == REPO_ROOT
    site = tmp_path / "site-packages"
    monkeypatch.setattr(_paths, "PACKAGE_DIR", site / "fennec")
    (site / "zoo" / "hub").mkdir(parents=True)  # another distribution's folders beside fennec
    assert _paths.source_root() is None
    (site / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert _paths.source_root() is None


def test_checkout_uses_its_zoo_and_benchmark_ground_truth(monkeypatch):
    monkeypatch.delenv("FENNEC_ZOO", raising=False)
    assert not _paths.PACKAGED_ZOO.exists()  # a checkout has no packaged zoo (.gitignore'd build output)
    assert zoo_dir() == REPO_ROOT / "zoo"
    assert zoo_ground_truth() == GROUND_TRUTH


def test_installed_prefers_the_packaged_zoo_and_its_ground_truth(installed, tiny_zoo, monkeypatch):
    zoo = installed(tiny_zoo)
    assert zoo_dir() == zoo and zoo_ground_truth() == zoo / "ground_truth.json"
    monkeypatch.setattr(_paths, "source_root", lambda: REPO_ROOT)  # even beside a checkout
    assert zoo_dir() == zoo and zoo_ground_truth() == zoo / "ground_truth.json"


def test_installed_without_package_data_never_falls_back_to_the_source_tree(installed, tmp_path):
    installed(tmp_path / "site-packages" / "fennec" / "_zoo")
    with pytest.raises(WorkspaceError, match=r"_zoo .*installed without its package data"):
        zoo_dir()


def test_installed_with_a_zoo_without_ground_truth_is_refused(installed, tiny_zoo, tmp_path, monkeypatch):
    custom = tmp_path / "custom"
    shutil.copytree(tiny_zoo, custom, ignore=shutil.ignore_patterns("ground_truth.json"))
    monkeypatch.setenv("FENNEC_ZOO", str(custom))
    assert zoo_ground_truth() == custom / "ground_truth.json"  # not the checkout's benchmark/results
    with pytest.raises(WorkspaceError, match="ground truth .* is missing; a zoo carries its fine-tuning ground truth"):
        zoo_workspace()


def test_installed_recommend_runs_on_the_packaged_zoo_and_writes_only_fennec_home(installed, tiny_zoo, tmp_path,
                                                                                  capsys, monkeypatch):
    from fennec.cli import main

    packaged = tmp_path / "site-packages" / "fennec" / "_zoo"
    shutil.copytree(tiny_zoo, packaged)
    installed(packaged)
    before = sorted(p for p in packaged.rglob("*"))
    monkeypatch.chdir(tmp_path)
    assert main(["recommend", str(packaged / "datasets" / "t-new"), "--top-k", "3", "--candidates", "2",
                 "--json", "--no-progress"]) == 0
    recs = json.loads(capsys.readouterr().out)["recommendations"]
    assert [r["model_id"] for r in recs] and {r["model_id"] for r in recs} <= set(MODELS)
    assert sorted(p for p in packaged.rglob("*")) == before  # package data is never written
    fennec_home = tmp_path / "fennec_home"
    assert (fennec_home / "zoo" / "space" / "fit.json").exists()
    assert bench._cache_dir() == fennec_home / "zoo" / "cache" / "bench"


# -- fennec bench --------------------------------------------------------------------------


def test_bench_writes_benchmark_results_only_in_a_checkout(tmp_path, monkeypatch):
    assert bench.default_out() == REPO_ROOT / "benchmark" / "results"
    monkeypatch.setattr(_paths, "source_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert bench.default_out() == tmp_path / "fennec-bench"


def test_bench_cache_stays_in_a_custom_zoo(tiny_zoo, monkeypatch):
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    assert bench._cache_dir() == tiny_zoo / "cache" / "bench"


@pytest.mark.parametrize("root, match", [(None, "is installed, not run from a checkout"),
                                         ("empty", "which has no such file")])
def test_bench_published_outside_a_checkout_is_refused_before_the_run(root, match, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_paths, "source_root", lambda: None if root is None else tmp_path)

    def never(**_kwargs):
        raise AssertionError("the benchmark ran before --published was refused")

    monkeypatch.setattr(bench, "run_benchmark", never)
    assert cli.main(["bench", "--published", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--published" in err and match in err and "drop --published" in err


# -- the real wheel ------------------------------------------------------------------------


@pytest.mark.slow
def test_built_wheel_carries_the_zoo_and_nothing_of_the_source_tree(tmp_path, setup_py):
    """``pip wheel`` of this checkout (in-tree, as pip builds; its build/ is .gitignore'd)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO_ROOT)], check=True, timeout=600)
    (wheel,) = tmp_path.glob("fennec-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert z.read("fennec/_zoo/ground_truth.json") == GROUND_TRUTH.read_bytes()
    expected = {f"fennec/_zoo/{rel}" for _, rel in setup_py.zoo_files(REPO_ROOT)}
    assert expected <= names
    assert {n for n in names if n.startswith("fennec/_zoo/")} == expected
    assert {n.split("/")[0] for n in names} == {"fennec", "archi2vec", wheel.name.split("-py3")[0] + ".dist-info"}
    # the published tables and their Hub mappings (fennec.published), every file
    published = REPO_ROOT / "fennec" / "published"
    expected_published = {f"fennec/published/{p.relative_to(published).as_posix()}"
                          for p in [published / "README.md", *(published / "data").rglob("*")] if p.is_file()}
    assert expected_published <= names and "fennec/published/data/tables/sfda_supervised_finetune.json" in names
    # the wheel is the zoo's selected files plus code: nothing else of the 61 MB tree slipped in
    zoo_bytes = sum(src.stat().st_size for src, _ in setup_py.zoo_files(REPO_ROOT))
    assert wheel.stat().st_size < zoo_bytes + 2_000_000
