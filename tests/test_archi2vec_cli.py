"""The archi2vec command line, in process and through the installed entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from archi2vec import EMBEDDER_VERSION
from archi2vec.cli import main

TINY_VIT = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
            "patch_size": 8}
TINY_RESNET = {"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16, 32, 64],
               "depths": [1, 1, 1, 1], "layer_type": "basic"}


@pytest.fixture
def configs(tmp_path):
    paths = {}
    for name, cfg in (("vit", TINY_VIT), ("resnet", TINY_RESNET)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg))
        paths[name] = str(folder)
    return paths


def test_embed_to_stdout(configs, capsys):
    assert main(["embed", configs["vit"], "--dim", "128", "--method", "record"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["embedder_version"] == EMBEDDER_VERSION and record["dim"] == 128
    assert len(record["vector"]) == 128
    assert np.linalg.norm(record["vector"]) == pytest.approx(1.0, abs=1e-6)


def test_embed_to_files(configs, tmp_path):
    out = tmp_path / "v.json"
    assert main(["embed", configs["vit"], "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["vector"]) == 256
    npz = tmp_path / "v.npz"
    assert main(["embed", configs["vit"], "--out", str(npz)]) == 0
    with np.load(npz) as data:
        assert data["vector"].shape == (256,)
        assert str(data["embedder_version"]) == EMBEDDER_VERSION


def test_similar(configs, capsys):
    assert main(["similar", configs["vit"], configs["vit"]]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(1.0)
    assert main(["similar", configs["vit"], configs["resnet"]]) == 0
    assert float(capsys.readouterr().out) < 0.9


def test_graph_graphml(configs, tmp_path, capsys):
    out = tmp_path / "g.graphml"
    assert main(["graph", configs["resnet"], "--out", str(out), "--input-size", "64"]) == 0
    g = nx.read_graphml(out)
    assert g.number_of_nodes() > 10 and g.nodes["0"]["shape"] == "1x3x64x64"
    assert "nodes" in capsys.readouterr().out


def test_known_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["embed", "definitely_not_a_model_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archi2vec: error: definitely_not_a_model_xyz") and err.count("\n") == 1
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({**TINY_VIT, "auto_map": {"AutoModel": "m.M"}}))
    assert main(["embed", str(remote)]) == 2
    assert "trust_remote_code" in capsys.readouterr().err
    assert main(["embed", str(remote), "--dim", "8"]) == 2  # refused before dim is looked at
    capsys.readouterr()


def test_bad_dim_is_one_line(configs, capsys):
    assert main(["embed", configs["vit"], "--dim", "8", "--method", "record"]) == 2
    assert "dim" in capsys.readouterr().err


def test_installed_entry_point(configs):
    # the console script when the package is installed, else the same main() via -m
    script = shutil.which("archi2vec") or shutil.which("archi2vec", path=str(Path(sys.executable).parent))
    cmd = [script] if script else [sys.executable, "-m", "archi2vec.cli"]
    bad = subprocess.run([*cmd, "similar", "nope_not_a_model", configs["vit"]],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        bad.stderr.strip()] and "nope_not_a_model" in bad.stderr
