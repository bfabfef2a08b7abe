"""The ``fennec`` command's own behaviour: version, help, flags checked up front, messages in
command-line terms, warnings as one line, progress in logs, read-only commands, imports."""

from __future__ import annotations

import importlib
import json
import warnings

import pytest

from fennec import __version__, _progress, constants
from fennec.cli import main
from fennec.cli.common import cli_terms
from fennec.errors import DatasetWarning
from zoo_fixtures import MODELS, tiny_zoo  # noqa: F401  (the fixture)


@pytest.fixture
def zoo_env(tiny_zoo, monkeypatch):
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    return tiny_zoo


def test_version_and_the_metric_default_in_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"fennec {__version__}"
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    from fennec.recommendation.refine import DEFAULT_METRIC

    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_METRIC})" in help_text and constants.DEFAULT_METRIC == DEFAULT_METRIC


@pytest.mark.parametrize("command", [["recommend", "some/dataset"], ["fit"], ["bench"]])
@pytest.mark.parametrize("device", ["cuda:99", "mps:0", "nonsense"])
def test_a_device_this_machine_lacks_fails_at_once_with_exit_code_2(command, device, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main([*command, "--device", device])
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"fennec {command[0]}: error: argument --device: ")
    assert "device=" not in err and "Traceback" not in err
    assert not (tmp_path / "fennec_home").exists()  # refused before anything was built


@pytest.mark.parametrize("message, flags, expected", [
    ("Choose one with split=.", {"--split"}, "Choose one with --split."),
    ("pass hub='zoo' to use the zoo", {"--hub"}, "pass --hub zoo to use the zoo"),
    ("Check label_column= and split=, or lower min_per_class=.", {"--label-column", "--split", "--min-per-class"},
     "Check --label-column and --split, or lower --min-per-class."),
    ("max_samples=5 gives 1 image(s)", {"--max-samples"}, "--max-samples 5 gives 1 image(s)"),
    ("Pass device='cpu' or device=None (which picks the CPU here).", {"--device"},
     "Pass --device cpu or no --device (which picks the CPU here)."),
    ("raise max_samples or pass per_class=.", {"--max-samples"}, "raise --max-samples or pass per_class=."),
    ("see fennec.recommendation.refine.DEFAULT_METRIC and a.b=c", {"--metric"},
     "see fennec.recommendation.refine.DEFAULT_METRIC and a.b=c"),
    ("fusion_weight must be a number in [0, 1], got 1.5.", {"--fusion-weight"},
     "--fusion-weight must be a number in [0, 1], got 1.5."),
    ("Leave max_samples= unset; load_sample() and fennec.data.max_samples stay", {"--max-samples"},
     "Leave --max-samples unset; load_sample() and fennec.data.max_samples stay"),
    ("No metric was run (refine=False): refine", {"--no-refine"}, "No metric was run (--no-refine): refine"),
    ("refine=True or refine=False", {"--metric"}, "refine=True or refine=False"),  # no --no-refine here
])
def test_library_keyword_arguments_become_this_commands_flags(message, flags, expected):
    assert cli_terms(message, flags) == expected


def test_dataset_errors_name_flags_not_keyword_arguments(zoo_env, capsys):
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--split", "nope", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fennec: error: ") and err.count("\n") == 1
    assert "--split" in err and "split=" not in err


def test_warnings_are_one_line_without_source_paths(zoo_env, tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "images"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (60 * i, 30, 200 if cls == "a" else 0)).save(root / cls / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert main(["recommend", str(root), "--no-refine", "--no-progress"]) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "could not be decoded" in line]
    assert skipped == [f"fennec: warning: {root} [train]: skipped 1 image(s) that could not be decoded "
                       "(column 'image'): a/broken.png"]
    assert ".py:" not in err and "warnings.warn" not in err
    # the library keeps Python's warnings
    with pytest.warns(DatasetWarning, match="a/broken.png"):
        from fennec.data import load_sample

        load_sample(root)


def test_progress_is_one_line_per_step_when_stderr_is_not_a_terminal(zoo_env, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    # A step that runs past INTERVAL_S also prints interim "so far" lines (a slow machine): this
    # test is about the one closing line per step, so interim lines are switched off here
    # (test_the_progress_helper checks them).
    monkeypatch.setattr(_progress, "INTERVAL_S", float("inf"))
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--candidates", "2", "--top-k", "2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("fennec: building the embedded demo zoo's workspace") and "minutes" in line
               for line in err)
    for step, unit in (("reindex", "models"), ("describing known tasks", "tasks"), ("decoding images", "images"),
                       ("scoring candidates (hscore_regularized)", "models")):
        lines = [line for line in err if line.startswith(f"fennec: {step}: ")]
        assert len(lines) == 1 and f" {unit}, " in lines[0] and lines[0].endswith(" s"), (step, err)
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""  # built once; --no-progress prints nothing


def test_the_progress_helper(capsys, monkeypatch):
    bar = _progress.bar(total=3, desc="step", unit="things", enabled=True)
    for _ in range(3):
        bar.update()
    bar.close()
    bar.close()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fennec: step: 3/3 things, ") and line.endswith(" s")
    monkeypatch.setattr(_progress, "INTERVAL_S", 0.0)  # every update of a running step gets a line
    assert list(_progress.track(["a", "b"], desc="walk", unit="items", enabled=True)) == ["a", "b"]
    assert [line.split(",")[0] for line in capsys.readouterr().err.splitlines()] == [
        "fennec: walk: 1/2 items so far", "fennec: walk: 2/2 items"]
    assert list(_progress.track([1], desc="quiet", enabled=False)) == [1]
    _progress.note("hidden", enabled=False)
    assert capsys.readouterr().err == ""


def test_import_results_names_skipped_files_and_unmatched_models(zoo_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    tables = tmp_path / "tables"
    tables.mkdir()
    model = next(iter(MODELS))
    (tables / "paper.json").write_text(json.dumps({"results": {"cifar10": {model: 0.9, "other/model": 0.8}}}))
    (tables / "ranks.json").write_text(json.dumps({"ranking": ["a", "b"]}))
    nested = {f"org/model-{i}": 0.5 for i in range(200)}  # a metric-score file: a dict where a number belongs
    (tables / "scores.json").write_text(json.dumps({"results": {"LogME": {"pets": nested}}}))
    (tables / "paper.csv").write_text("model,cifar10\n")  # not a table fennec reads: named, not silently passed over
    (tables / "README.md").write_text("the tables")
    assert main(["reindex", "--hub", str(zoo_env / "hub"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["import-results", str(tables)]) == 0
    captured = capsys.readouterr()
    assert "fennec: warning: Skipped ranks.json (not a transfer-result table)" in captured.err
    assert (f"fennec: warning: Skipped 2 file(s) of {tables} that are not .json tables: README.md, paper.csv"
            in captured.err)
    (scores,) = [line for line in captured.err.splitlines() if "scores.json" in line]
    assert "(dict) is not a number" in scores and len(scores) < 300  # a hostile value is not echoed whole
    assert "paper: 2 results, 1 tasks, 2 models" in captured.out
    assert "1 of 2 models match no catalog model" in captured.out


def test_fit_refuses_a_proxy_the_hub_does_not_have_naming_the_flag(zoo_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    assert main(["reindex", "--hub", str(zoo_env / "hub"), "--no-progress"]) == 0
    assert main(["import-results", str(zoo_env / "ground_truth.json")]) == 0
    capsys.readouterr()
    assert main(["fit", "--hub", str(zoo_env / "hub"), "--proxy", "no/such-proxy", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "'no/such-proxy' cannot be fetched" in err and "with --proxy" in err and "proxy=" not in err
    assert not (tmp_path / "home" / "space").exists()


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """`fennec models | head`: the closed pipe is no traceback, and the exit code says SIGPIPE."""
    import subprocess
    import sys

    script = ("import sys, fennec.cli as cli, fennec.cli.catalog as commands\n"
              "def many(args):\n"
              "    for i in range(200000):\n"
              "        print('model', i)\n"
              "    return 0\n"
              "commands.run_models = many\n"
              "sys.exit(cli.main(['models']))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves, as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# -- the package: one module per command group ------------------------------------------------


def test_python_m_fennec_cli_and_the_console_script_run_the_same_main():
    """``python -m fennec.cli`` (fennec/cli/__main__.py) and pyproject's ``fennec = "fennec.cli:main"``."""
    import subprocess
    import sys
    from pathlib import Path

    import tomllib

    import fennec.cli

    p = subprocess.run([sys.executable, "-m", "fennec.cli", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == f"fennec {__version__}", p.stderr[-2000:]
    p = subprocess.run([sys.executable, "-m", "fennec.cli", "models", "--limit", "0"], capture_output=True, text=True)
    assert p.returncode == 2 and "argument --limit: must be >= 1, got 0" in p.stderr
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    module, _, name = project["project"]["scripts"]["fennec"].partition(":")
    assert getattr(importlib.import_module(module), name) is fennec.cli.main


@pytest.mark.parametrize("command, module, handler", [
    (["reindex"], "catalog", "run_reindex"), (["models"], "catalog", "run_models"),
    (["import-results"], "catalog", "run_import"), (["catalog", "check"], "catalog", "run_catalog"),
    (["recommend", "some/dataset"], "recommend", "run_recommend"), (["fit"], "workspace", "run_fit"),
    (["init"], "workspace", "run_init"), (["bench"], "bench", "run_bench"),
])
def test_each_command_runs_its_groups_module(command, module, handler, monkeypatch):
    ran = []

    def record(args):
        ran.append(args.command)
        return 0

    monkeypatch.setattr(importlib.import_module(f"fennec.cli.{module}"), handler, record)
    assert main(command) == 0 and ran == [command[0]]


def test_integer_flags_name_what_is_not_an_integer(capsys):
    with pytest.raises(SystemExit) as e:
        main(["models", "--limit", "ten"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "fennec models: error: argument --limit: not an integer: 'ten'")
