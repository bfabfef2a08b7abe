"""Build fennec with its embedded zoo as package data (everything else is in pyproject.toml).

The source checkout keeps one copy of the zoo, where the builders in ``scripts/`` write it and
the benchmarks read it: ``zoo/`` and ``benchmark/results/zoo_ground_truth.json``. A wheel
must carry what ``fennec recommend`` needs from it at run time, so ``build_py`` copies exactly
that into ``fennec/_zoo`` (:func:`zoo_files`):

- ``zoo/hub/<org>/<name>/*``: every model repository as it is (config, card and preprocessor
  for the archi2vec index, weights for the proxy and for refining candidates);
- ``zoo/datasets/<target>/data/train-*.parquet``: each target's training split, which is all
  the workspace describes a known task with (validation and test splits and the ``src-*``
  pre-training sources only serve the builders and the benchmarks);
- ``benchmark/results/zoo_ground_truth.json`` as ``fennec/_zoo/ground_truth.json``.

An sdist carries those source files at their own paths, so the wheel built from it is the
same. An editable install (``pip install -e .``) copies nothing: fennec then runs from the
checkout and reads ``zoo/`` in place (``fennec/_paths.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.command.sdist import sdist as _sdist

ROOT = Path(__file__).resolve().parent
#: Where the zoo goes inside the built package.
PACKAGED_ZOO = Path("fennec") / "_zoo"


def zoo_files(root: Path) -> list[tuple[Path, str]]:
    """``(source file, path inside fennec/_zoo)`` of everything the wheel's zoo carries.

    Raises:
        SystemExit: the checkout at ``root`` lacks the zoo or its ground truth (a wheel
            without them would fail on a user's first ``fennec recommend``).
    """
    hub, datasets = root / "zoo" / "hub", root / "zoo" / "datasets"
    truth = root / "benchmark" / "results" / "zoo_ground_truth.json"
    missing = [str(p.relative_to(root)) for p in (hub, datasets, truth) if not p.exists()]
    if missing:
        raise SystemExit(f"setup.py: {', '.join(missing)} missing in {root}: the wheel would have no embedded zoo. "
                         "Build from a complete checkout (the zoo is committed; scripts/build_zoo.py and "
                         "scripts/build_benchmark.py rebuild it).")
    files = [p for p in sorted(hub.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(hub).parts)]
    targets = [d for d in sorted(datasets.iterdir())
               if d.is_dir() and not d.name.startswith((".", "src-"))]
    for target in targets:
        train = sorted((target / "data").glob("train-*.parquet"))
        if not train:
            raise SystemExit(f"setup.py: {target.relative_to(root)} has no data/train-*.parquet; every zoo target "
                             "needs its training split in the wheel.")
        files += train
    out = [(p, p.relative_to(root / "zoo").as_posix()) for p in files]
    return out + [(truth, "ground_truth.json")]


class build_py(_build_py):
    """The packages, then the zoo into ``fennec/_zoo`` (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        dest = Path(self.build_lib) / PACKAGED_ZOO
        shutil.rmtree(dest, ignore_errors=True)  # nothing left over from an older zoo
        for src, rel in zoo_files(ROOT):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        zoo = [] if self.editable_mode else [str(Path(self.build_lib) / PACKAGED_ZOO / rel)
                                             for _, rel in zoo_files(ROOT)]
        return [*super().get_outputs(include_bytecode), *zoo]


class sdist(_sdist):
    """The sources, plus the zoo files :func:`zoo_files` selects, at their checkout paths."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        for src, _ in zoo_files(ROOT):
            target = Path(base_dir) / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


if __name__ == "__main__":
    setup(cmdclass={"build_py": build_py, "sdist": sdist})
