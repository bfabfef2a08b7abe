"""Importing the shipped published tables: models under their Hub ids, and the catalog match said."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fennec import published
from fennec.catalog import Catalog
from fennec.cli import main
from fennec.hub import ModelRecord

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
IMPORTED_KINDS = ("finetune", "linear_probe", "ranks")


def rec(repo_id: str) -> ModelRecord:
    return ModelRecord(repo_id=repo_id, sha="a" * 40, library="timm", pipeline_tag="image-classification",
                       created_at=T0, last_modified=T0, downloads=10, likes=1, parameters=1000, model_type="resnet")


@pytest.fixture
def cat(tmp_path):
    with Catalog(tmp_path / "catalog.sqlite") as c:
        yield c


def test_shipped_import_keeps_every_number_under_the_hub_id(cat):
    summaries = cat.import_shipped_tables()
    expected = {s.source_id for s in published.sources() if s.kind in IMPORTED_KINDS}
    assert {s.source_id for s in summaries} == expected and "transfergraph_metric_scores" not in expected
    for s in summaries:
        src = published.source(s.source_id)
        mapping = published.model_mapping(s.source_id)
        ids = {n: m.hub_id for n, m in mapping.items() if m.status == "confirmed"}
        want = {(v.name, task, ids.get(model, model)): value
                for v in src.variants for task, row in published.load_table(s.source_id, v.name).values.items()
                for model, value in row.items() if value is not None}
        got = {(r.variant, r.task_id, r.model): r.value for r in cat.transfer_results(source=s.source_id)}
        assert got == want, s.source_id  # every cell, on its own scale, nothing merged across sources
    sfda = {r.model for r in cat.transfer_results(source="sfda_supervised_finetune")}
    assert "timm/resnet50.tv_in1k" in sfda and "resnet50" not in sfda and "googlenet" in sfda
    header = next(s for s in cat.sources() if s["source_id"] == "sfda_supervised_finetune")
    assert header["header"]["model_ids"]["resnet50"] == "timm/resnet50.tv_in1k"
    assert header["repo"] == "TencentARC/SFDA" and header["commit_sha"] == published.source(
        "sfda_supervised_finetune").commit
    keras = {r.model for r in cat.transfer_results(source="stable_transfer_arch_selection")}
    assert "resnet50" in keras  # a Keras checkpoint: the same name, never renamed to the torchvision port


def test_unconfirmed_ids_only_on_request_and_a_reimport_replaces(cat):
    cat.import_shipped_tables()
    parc = {r.model for r in cat.transfer_results(source="parc_finetune")}
    assert "resnet18|imagenet" in parc and "timm/resnet18.tv_in1k" not in parc
    n = len(cat.transfer_results())
    cat.import_shipped_tables(unconfirmed=True)
    parc = {r.model for r in cat.transfer_results(source="parc_finetune")}
    assert "timm/resnet18.tv_in1k" in parc and "resnet18|imagenet" not in parc
    assert len(cat.transfer_results()) == n  # replaced, not added


def test_two_models_mapped_to_one_hub_id_are_refused(cat, monkeypatch):
    from fennec.errors import PublishedDataError

    real = published.model_mapping

    def clashing(source_id):
        out = real(source_id)
        if source_id == "sfda_supervised_finetune":
            out["resnet34"] = out["resnet50"]
        return out

    monkeypatch.setattr(published, "model_mapping", clashing)
    with pytest.raises(PublishedDataError, match=r"sfda_supervised_finetune: resnet34 and resnet50 both map to "
                                                 r"timm/resnet50.tv_in1k"):
        cat.import_shipped_tables()
    assert cat.transfer_results() == []  # nothing half-imported


def test_cli_imports_the_shipped_tables_without_a_path_and_says_what_matches(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FENNEC_HOME", str(home))
    with Catalog(home / "catalog.sqlite") as c:
        for repo in ("timm/resnet50.tv_in1k", "Ahmed9275/Vit-Cifar100", "org/never-published"):
            c.upsert_model(rec(repo))
    assert main(["import-results"]) == 0
    out = capsys.readouterr().out
    assert "sfda_supervised_finetune: 121 results, 11 tasks, 11 models" in out
    (line,) = [x for x in out.splitlines() if x.startswith("catalog match:")]
    with Catalog(home / "catalog.sqlite") as c:
        models = {r.model for r in c.transfer_results()}
    assert f"2 of {len(models)} imported models are in the catalog" in line
    assert "timm/resnet50.tv_in1k" not in line.split("e.g.")[1]  # the examples are unmatched ones
    assert "fennec reindex" in out and "no Hub id" in out


def test_cli_path_import_hints_at_the_shipped_mapping(tmp_path, capsys, monkeypatch):
    import json

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FENNEC_HOME", str(home))
    with Catalog(home / "catalog.sqlite") as c:
        c.upsert_model(rec("org/a"))
    table = tmp_path / "paper.json"
    table.write_text(json.dumps({"results": {"cifar10": {"resnet50": 90.0, "densenet121": 91.0, "org/a": 80.0}}}))
    assert main(["import-results", str(table)]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("catalog match:")]
    assert "1 of 3 imported models are in the catalog; 2 are not (e.g. densenet121, resnet50)" in line
    assert "`fennec import-results` without a path" in out


def test_cli_path_import_of_hub_ids_does_not_blame_published_names(tmp_path, capsys, monkeypatch):
    import json

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FENNEC_HOME", str(home))
    with Catalog(home / "catalog.sqlite") as c:
        c.upsert_model(rec("org/a"))
    table = tmp_path / "hub_ids.json"
    table.write_text(json.dumps({"results": {"cifar10": {"org/a": 0.8, "org/b": 0.7}}}))
    assert main(["import-results", str(table)]) == 0
    out = capsys.readouterr().out
    assert "catalog match: 1 of 2 imported models are in the catalog; 1 are not (e.g. org/b)" in out
    assert "without a path" not in out
