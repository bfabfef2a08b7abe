"""fennec.catalog.importers: one importer per table kind, chosen by a file's content, not its name."""

from __future__ import annotations

import json

import pytest

from fennec.catalog import Catalog
from fennec.catalog.importers import KINDS, import_file, import_folder, table_kind
from fennec.cli import main
from fennec.errors import InvalidInputError

TRANSFER = {"results": {"cifar10": {"org/a": 0.9, "org/b": 0.8}}, "metric": "acc", "protocol": "p"}
GROUND_TRUTH = {"test_accuracy_seed0": {"t-one": {"org/a": 0.7}}, "test_accuracy_seed1": {"t-one": {"org/a": 0.72}},
                "protocol": {"epochs": 3}}


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_the_kind_comes_from_the_content_not_the_file_name(tmp_path):
    # names that the old rule ("ground_truth" in the name) read the other way round
    truth = _write(tmp_path / "finetune_results.json", GROUND_TRUTH)
    table = _write(tmp_path / "paper_ground_truth.json", TRANSFER)
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert import_file(catalog, truth).source_id == "zoo_ground_truth"
        assert import_file(catalog, table).source_id == "paper_ground_truth"
        kinds = {s["source_id"]: s["metric"] for s in catalog.sources()}
        assert kinds == {"zoo_ground_truth": "test accuracy (0-1)", "paper_ground_truth": "acc"}
        assert {r.variant for r in catalog.transfer_results(source="zoo_ground_truth")} == {"seed0", "seed1"}


def test_a_declared_kind_wins_and_is_checked(tmp_path):
    both = {**TRANSFER, **GROUND_TRUTH}
    with pytest.raises(InvalidInputError, match="several kinds.*\"kind\""):
        table_kind(both, "both.json")
    assert table_kind({**both, "kind": "zoo-ground-truth"}, "both.json") == "zoo-ground-truth"
    with pytest.raises(InvalidInputError, match="declares kind 'zoo-ground-truth' but has no 'test_accuracy_seed"):
        table_kind({**TRANSFER, "kind": "zoo-ground-truth"}, "t.json")
    with pytest.raises(InvalidInputError, match="declares kind 'ranks', which fennec cannot import. Known kinds"):
        table_kind({**TRANSFER, "kind": "ranks"}, "t.json")


def test_a_file_of_no_known_kind_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "ranks.json", {"ranking": ["a", "b"], "source": {}})
    with Catalog(tmp_path / "c.sqlite") as catalog, pytest.raises(InvalidInputError) as e:
        import_file(catalog, path)
    message = str(e.value)
    assert "of no known kind" in message and "ranking, source" in message  # what was found
    assert all(repr(k) in message for k in KINDS)  # what is expected


def test_cli_imports_by_content_and_refuses_an_unknown_kind(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    truth = _write(tmp_path / "seeds.json", GROUND_TRUTH)
    assert main(["import-results", str(truth)]) == 0
    assert "zoo_ground_truth: 2 results, 1 tasks, 1 models (seed0, seed1;" in capsys.readouterr().out
    odd = _write(tmp_path / "zoo_ground_truth_notes.json", {"notes": "not a table"})
    assert main(["import-results", str(odd)]) == 1
    err = capsys.readouterr().err
    assert "fennec: error:" in err and "of no known kind" in err and "'zoo-ground-truth'" in err


def test_a_folder_imports_each_known_kind_and_names_the_others(tmp_path, caplog):
    _write(tmp_path / "a.json", TRANSFER)
    _write(tmp_path / "b.json", GROUND_TRUTH)
    _write(tmp_path / "c.json", [1, 2])
    with Catalog(tmp_path / "c.sqlite") as catalog:
        summaries = import_folder(catalog, tmp_path)
    assert [s.source_id for s in summaries] == ["a", "zoo_ground_truth"]
    assert "Skipped c.json" in caplog.text and "found a JSON list" in caplog.text


def test_the_catalog_methods_still_import(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert catalog.import_published_table(_write(tmp_path / "t.json", TRANSFER)).n_results == 2
        assert catalog.import_zoo_ground_truth(_write(tmp_path / "g.json", GROUND_TRUTH)).n_results == 2
        with pytest.raises(InvalidInputError, match="'results'"):
            catalog.import_published_table(_write(tmp_path / "x.json", GROUND_TRUTH))
