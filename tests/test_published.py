"""fennec.published: the shipped published tables, their provenance and their Hub mappings.

The numbers are checked against the shared transfer-results index when it is beside the
checkout (skipped only where ``../shared`` is absent); everything else (shapes, scales,
provenance, mapping completeness, the generated README) always runs on the package data.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fennec import published
from fennec.errors import InvalidInputError, PublishedDataError

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TABLES = REPO_ROOT.parent / "shared" / "data" / "transfer-results"
TABLE_SOURCES = [s.source_id for s in published.sources() if s.variants]


def _load_script():
    spec = importlib.util.spec_from_file_location("build_published_under_test",
                                                  REPO_ROOT / "scripts" / "build_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh():
    """Forget cached reads before and after a test that points the module elsewhere."""
    published._reset()
    yield
    published._reset()


def _leaves(node, path=()):
    """Every (path, leaf) of a JSON value, in order."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


# -- the numbers are the shared files' numbers ------------------------------------------


@pytest.mark.skipif(not SHARED_TABLES.is_dir(), reason=f"{SHARED_TABLES} is not beside this checkout")
def test_every_shared_table_ships_with_every_number_unchanged():
    shared = sorted(p.name for p in SHARED_TABLES.glob("*.json"))
    shipped = sorted(p.name for p in published.TABLES_DIR.glob("*.json"))
    assert shared == shipped
    assert sorted(s.file for s in published.sources()) == shipped
    compared = 0
    for name in shared:
        ours = list(_leaves(json.loads((published.TABLES_DIR / name).read_text())))
        theirs = list(_leaves(json.loads((SHARED_TABLES / name).read_text())))
        assert [p for p, _ in ours] == [p for p, _ in theirs], name
        for (path, a), (_, b) in zip(ours, theirs, strict=True):
            assert type(a) is type(b) and a == b, (name, path, a, b)
            compared += isinstance(a, (int, float)) and not isinstance(a, bool)
        assert (published.TABLES_DIR / name).read_bytes() == (SHARED_TABLES / name).read_bytes(), name
    assert compared > 10_000  # every table's numbers, not a sample
    assert (published.TABLES_DIR / "README.md").read_bytes() == (SHARED_TABLES / "README.md").read_bytes()


@pytest.mark.skipif(not SHARED_TABLES.is_dir(), reason=f"{SHARED_TABLES} is not beside this checkout")
def test_load_table_returns_the_shared_values():
    for sid in TABLE_SOURCES:
        raw = json.loads((SHARED_TABLES / published.source(sid).file).read_text())
        for v in published.source(sid).variants:
            node = raw
            for key in v.path:
                node = node[key]
            table = published.load_table(sid, v.name)
            assert {t: dict(row) for t, row in table.values.items()} == node, (sid, v.name)


# -- internal consistency (always runs) --------------------------------------------------


def _declared_shape(raw: dict, variant: str, main: bool) -> dict | None:
    shape = raw.get("shape")
    if not isinstance(shape, dict):
        return None
    if "n_models" in shape:
        return shape if main else None
    keyed = {"single_source": "results", "multi_source": "results_multisource"}
    for key, value in shape.items():
        if keyed.get(key, key) == variant:
            return value
    return None


@pytest.mark.parametrize("sid", TABLE_SOURCES)
def test_tables_have_their_declared_shape_and_scale_and_no_nan(sid):
    src = published.source(sid)
    raw = published.load_raw(sid)
    for v in src.variants:
        table = published.load_table(sid, v.name)
        assert table.scale == v.scale in published.SCALES
        values = [x for row in table.values.values() for x in row.values() if x is not None]
        assert values and table.n_cells == len(values)
        assert all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values)
        low, high = {"percent": (0, 100), "fraction": (0, 1), "negated_error": (-math.inf, 0),
                     "rank": (0, len(table.models) - 1), "score": (-math.inf, math.inf)}[v.scale]
        assert low <= min(values) and max(values) <= high, (sid, v.name, min(values), max(values))
        if v.scale == "rank":
            assert all(isinstance(x, int) for x in values)
        if v.scale in ("percent", "fraction"):
            # a percent table is not a fraction table in disguise (scales stay apart)
            assert (max(values) > 1) == (v.scale == "percent"), (sid, v.name)
        shape = _declared_shape(raw, v.name, v is src.main_variant)
        if shape is not None:
            assert (len(table.models), len(table.tasks), table.n_cells) == \
                (shape["n_models"], shape["n_datasets"], shape["n_filled_cells"]), (sid, v.name)


def test_every_source_has_its_provenance():
    srcs = published.sources()
    assert len(srcs) == len(list(published.TABLES_DIR.glob("*.json")))
    for s in srcs:
        for field in ("repo", "path", "commit", "paper", "protocol"):
            assert isinstance(getattr(s, field), str) and getattr(s, field).strip(), (s.source_id, field)
        assert "/" in s.repo and len(s.commit.split()[0]) == 40, s.source_id
        assert s.kind in published.KINDS and s.task_type
        assert (s.kind == "report") == (not s.variants), s.source_id
        if s.variants:
            assert s.metric, s.source_id


def test_the_same_name_in_two_sources_stays_two_tables():
    sfda = published.load_table("sfda_supervised_finetune")
    tllib = published.load_table("logme_tllib_supervised_finetune")
    assert sfda.values["aircraft"]["resnet50"] == 84.64 and tllib.values["Aircraft"]["resnet50"] == 86.6
    assert (sfda.scale, published.load_table("stable_transfer_arch_selection").scale) == ("percent", "fraction")


# -- mappings ---------------------------------------------------------------------------


@pytest.mark.parametrize("sid", TABLE_SOURCES)
def test_every_model_and_task_of_every_table_is_mapped_with_evidence(sid):
    src = published.source(sid)
    models = {m for v in src.variants for m in published.load_table(sid, v.name).models}
    tasks = {t for v in src.variants for t in published.load_table(sid, v.name).tasks}
    mapping, tmapping = published.model_mapping(sid), published.task_mapping(sid)
    assert set(mapping) == models and set(tmapping) == tasks
    for name, m in mapping.items():
        assert (m.source, m.name) == (sid, name) and m.status in published.STATUSES and m.evidence
        if m.status == "unmapped":
            assert m.hub_id is None and m.library is None and m.note, (sid, name)
        else:
            assert m.hub_id and m.hub_id.count("/") == 1 and m.library in ("timm", "transformers"), (sid, name)
        if m.status == "unconfirmed":
            assert m.note, (sid, name)
    for name, t in tmapping.items():
        assert (t.source, t.name) == (sid, name) and t.status in published.STATUSES and t.evidence
        if t.status == "unmapped":
            assert t.dataset is None and t.dataset_id is None and t.note, (sid, name)
        else:
            assert t.dataset and t.dataset_id and t.dataset_id.count("/") == 1, (sid, name)
        if t.status == "confirmed":
            assert t.splits and t.label_column and t.image_column, (sid, name)
            assert t.evidence.startswith("https://"), (sid, name)
        if t.status == "unconfirmed":
            assert t.note, (sid, name)


def test_transfergraph_names_are_their_hub_ids():
    mapping = published.model_mapping("transfergraph_hf_finetune")
    assert len(mapping) == 180
    assert all(m.hub_id == name and m.status == "confirmed" and m.evidence == "name in source table"
               for name, m in mapping.items())


def test_torchvision_models_map_to_timm_ports_and_keras_ones_do_not():
    sfda = published.model_mapping("sfda_supervised_finetune")
    assert sfda["resnet50"].hub_id == "timm/resnet50.tv_in1k" and sfda["resnet50"].status == "confirmed"
    assert sfda["resnet50"].evidence.startswith("https://huggingface.co/timm/resnet50.tv_in1k")
    assert sfda["googlenet"].hub_id is None and sfda["googlenet"].status == "unmapped"
    keras = published.model_mapping("stable_transfer_arch_selection")["resnet50"]
    assert keras.hub_id is None and "Keras" in keras.note


def test_task_aliases_share_one_dataset():
    pets = {published.task_mapping(sid)[name].dataset_id for sid, name in (
        ("sfda_supervised_finetune", "pets"), ("logme_tllib_supervised_finetune", "Pet"),
        ("parc_finetune", "oxford_pets"), ("stable_transfer_arch_selection", "oxford_iiit_pet"),
        ("transfergraph_hf_finetune", "pets"))}
    assert pets == {"timm/oxford-iiit-pet"}
    cifar = published.task_mapping("sfda_supervised_finetune")["cifar10"]
    assert (cifar.dataset_id, cifar.config, cifar.splits, cifar.label_column, cifar.image_column, cifar.status) == \
        ("uoft-cs/cifar10", "plain_text", ("train", "test"), "label", "img", "confirmed")
    assert published.task_mapping("transfergraph_hf_finetune")["cifar100"].label_column == "fine_label"
    assert published.task_mapping("sfda_supervised_finetune")["voc2007"].status == "unmapped"


def test_shipped_mappings_and_readme_are_what_the_build_script_writes():
    script = _load_script()
    assert json.loads(published.MODELS_FILE.read_text()) == script.build_models()
    assert json.loads(published.TASKS_FILE.read_text()) == script.build_tasks()
    readme = (REPO_ROOT / "fennec" / "published" / "README.md").read_text()
    assert readme == script.render_readme()
    counts = published.summary()
    total = counts["models"]
    assert f"| {total['confirmed']} | {total['unconfirmed']} | {total['unmapped']} | {sum(total.values())} |" in readme
    assert sum(total.values()) == sum(len(published.model_mapping(s)) for s in TABLE_SOURCES)


def test_summary_counts_each_entry_once():
    counts = published.summary()
    assert sum(counts["tasks"].values()) == sum(len(published.task_mapping(s)) for s in TABLE_SOURCES)
    assert counts["hub_models"]["unmapped"] == 0
    hub_ids = {m.hub_id for per in published.model_mappings().values() for m in per.values() if m.hub_id}
    assert sum(counts["hub_models"].values()) == len(hub_ids)


# -- the API's errors --------------------------------------------------------------------


def test_unknown_source_variant_and_report_are_named():
    with pytest.raises(InvalidInputError, match=r"Unknown published source 'nope'.*sfda_supervised_finetune"):
        published.load_table("nope")
    with pytest.raises(InvalidInputError, match=r"no table 'results_linear'; its tables: results"):
        published.load_table("sfda_supervised_finetune", "results_linear")
    with pytest.raises(InvalidInputError, match=r"is a report .*load_raw"):
        published.load_table("sfda_tauw_supervised_readme")
    with pytest.raises(InvalidInputError, match="Unknown published source"):
        published.model_mapping("resnet50")


def test_load_raw_is_a_copy():
    raw = published.load_raw("sfda_supervised_finetune")
    raw["results"]["cifar10"]["resnet50"] = -1
    assert published.load_table("sfda_supervised_finetune").values["cifar10"]["resnet50"] == 96.28
    with pytest.raises(TypeError):
        published.load_table("sfda_supervised_finetune").values["cifar10"]["resnet50"] = 0  # read-only view


def _copy_data(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    shutil.copytree(published.DATA_DIR, data)
    for name, value in (("DATA_DIR", data), ("TABLES_DIR", data / "tables"), ("SOURCES_FILE", data / "sources.json"),
                        ("MODELS_FILE", data / "models.json"), ("TASKS_FILE", data / "tasks.json")):
        monkeypatch.setattr(published, name, value)
    return data


def test_a_nan_or_text_value_is_refused(tmp_path, monkeypatch, fresh):
    data = _copy_data(tmp_path, monkeypatch)
    table = data / "tables" / "sfda_supervised_finetune.json"
    table.write_text(table.read_text().replace('"resnet50": 96.28', '"resnet50": NaN'))
    with pytest.raises(PublishedDataError, match="NaN is not a number"):
        published.load_table("sfda_supervised_finetune")
    published._reset()
    table.write_text(table.read_text().replace('"resnet50": NaN', '"resnet50": "96.28"'))
    with pytest.raises(PublishedDataError, match=r"cifar10/resnet50 is '96.28', not a finite number"):
        published.load_table("sfda_supervised_finetune")


def test_missing_package_data_says_to_reinstall(tmp_path, monkeypatch, fresh):
    data = _copy_data(tmp_path, monkeypatch)
    (data / "models.json").unlink()
    with pytest.raises(PublishedDataError, match="installed without its package data: reinstall") as e:
        published.model_mapping("sfda_supervised_finetune")
    assert e.value.path == str(data / "models.json")


def test_missing_provenance_or_bad_status_or_schema_is_refused(tmp_path, monkeypatch, fresh):
    data = _copy_data(tmp_path, monkeypatch)
    table = data / "tables" / "parc_finetune.json"
    raw = json.loads(table.read_text())
    del raw["source"]["commit"]
    table.write_text(json.dumps(raw))
    with pytest.raises(PublishedDataError, match="provenance field.*commit"):
        published.source("parc_finetune")
    models = json.loads((data / "models.json").read_text())
    models["sources"]["sfda_supervised_finetune"]["resnet50"]["status"] = "probably"
    (data / "models.json").write_text(json.dumps(models))
    with pytest.raises(PublishedDataError, match="status 'probably', expected one of confirmed"):
        published.model_mapping("sfda_supervised_finetune")
    (data / "tasks.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(PublishedDataError, match="schema_version 99, this fennec reads 1"):
        published.task_mapping("sfda_supervised_finetune")


# -- import cost and documentation ------------------------------------------------------


def test_import_loads_neither_torch_nor_transformers():
    code = ("import sys, fennec.published as p; p.model_mappings(); p.load_table('transfergraph_hf_finetune'); "
            "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_run():
    result = doctest.testmod(published, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
