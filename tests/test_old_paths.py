"""The module paths of fennec's flat layout (before issue 13) keep working for one release.

An old module that moved (``fennec.refine`` …) is an alias that warns on import and hands out
the new module's very objects; an old module that became a package of the same name
(``fennec.hub`` …) still finds what it held, with a warning for what it no longer exports.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

#: Every module of the flat layout.
OLD_MODULES = (
    "fennec", "fennec._bench_report", "fennec._catalog_schema", "fennec._data_sources", "fennec._files",
    "fennec._hub_common", "fennec._hub_input", "fennec._hub_routes", "fennec._local_hub", "fennec._model_loading",
    "fennec._paths", "fennec._progress", "fennec._repo_store", "fennec._space_side", "fennec._space_tasks",
    "fennec.baseline", "fennec.bench", "fennec.catalog", "fennec.cli", "fennec.constants", "fennec.data",
    "fennec.errors", "fennec.evaluation", "fennec.features", "fennec.hub", "fennec.hub_server", "fennec.index",
    "fennec.recommender", "fennec.refine", "fennec.reindex", "fennec.space", "fennec.task", "fennec.workspace",
)

#: old module -> (new module, {old name: new name}) for names each old module held.
MOVED = {
    "fennec._files": ("fennec._io", {"file_lock": "file_lock", "save_json_atomic": "save_json_atomic",
                                     "storage_error": "storage_error"}),
    "fennec._hub_common": ("fennec.hub.protocol", {"Hub": "Hub", "_merge": "merge", "_sort_key": "sort_key",
                                                   "ModelRecord": "ModelRecord"}),
    "fennec._hub_input": ("fennec.hub.untrusted", {"RejectedInput": "RejectedInput", "loads_json": "loads_json",
                                                   "MAX_JSON_BYTES": "MAX_JSON_BYTES"}),
    "fennec._hub_routes": ("fennec.hub.server.routes", {"_Handler": "HubRequestHandler",
                                                        "MAX_PAGE_SIZE": "MAX_PAGE_SIZE"}),
    "fennec._local_hub": ("fennec.hub.local", {"LocalHub": "LocalHub"}),
    "fennec._repo_store": ("fennec.hub.repo_store", {"RepoStore": "RepoStore", "Repo": "Repo",
                                                     "open_confined": "open_confined"}),
    "fennec.hub_server": ("fennec.hub.server", {"HubServer": "HubServer", "Fault": "Fault", "main": "main",
                                                "is_loopback": "is_loopback"}),
    "fennec._catalog_schema": ("fennec.catalog.schema", {"MIGRATIONS": "MIGRATIONS",
                                                         "SCHEMA_VERSION": "SCHEMA_VERSION"}),
    "fennec._data_sources": ("fennec.data.sources", {"open_split": "open_split", "Split": "Split"}),
    "fennec._model_loading": ("fennec.features.loading", {"load_model": "load_model", "_Spec": "Spec",
                                                          "_spec_of": "spec_of"}),
    "fennec._space_side": ("fennec.space.side", {"ModelSide": "ModelSide", "_SideEncoder": "SideEncoder",
                                                 "_sides": "sides_of", "_JITTER": "JITTER"}),
    "fennec._space_tasks": ("fennec.space.tasks", {"_task_weights": "task_weights", "_corr": "_corr"}),
    "fennec.baseline": ("fennec.space.baseline", {"FennecBaseline": "FennecBaseline"}),
    "fennec.recommender": ("fennec.recommendation", {"recommend": "recommend", "Recommendations": "Recommendations",
                                                     "DEFAULT_FUSION_WEIGHT": "DEFAULT_FUSION_WEIGHT",
                                                     "LOW_SIMILARITY": "LOW_SIMILARITY",
                                                     "SAME_DATA_SIMILARITY": "SAME_DATA_SIMILARITY"}),
    "fennec.refine": ("fennec.recommendation.refine", {"fuse": "fuse", "score_candidates": "score_candidates",
                                                       "DEFAULT_METRIC": "DEFAULT_METRIC", "_zscore": "zscore"}),
    "fennec._bench_report": ("fennec.bench.report", {"_markdown": "markdown_report", "_plots": "plot_report"}),
}

#: package that replaced a module of the same name -> {old name: (new module, new name)} for
#: names it no longer exports itself.
FORWARDED = {
    "fennec.hub": {"MAX_DATASET_FILES": ("fennec.hub.untrusted", "MAX_DATASET_FILES"),
                   "CONFIG_NAME": ("fennec.hub.records", "CONFIG_NAME"),
                   "_read_config": ("fennec.hub.records", "read_config")},
    "fennec.catalog": {"STATUSES": ("fennec.catalog.store", "STATUSES")},
    "fennec.data": {"open_split": ("fennec.data.sources", "open_split"),
                    "MAX_INPUT_SIDE": ("fennec.hub.records", "MAX_INPUT_SIDE")},
    "fennec.features": {"_features_of": ("fennec.features.cache", "features_of")},
    "fennec.space": {"_matrix": ("fennec.space.results", "results_matrix")},
    "fennec.workspace": {"_zoo_ground_truth": ("fennec.workspace.layout", "zoo_ground_truth"),
                         "_workspace_for": ("fennec.workspace.load", "workspace_for"),
                         "_read_manifest": ("fennec.workspace.history", "read_manifest")},
    "fennec.bench": {"MIN_MODELS": ("fennec.bench.runner", "MIN_MODELS")},
    "fennec.cli": {"_cli_terms": ("fennec.cli.common", "cli_terms"), "_positive": ("fennec.cli.common", "positive_int"),
                   "_catalog": ("fennec.cli.common", "open_catalog"), "_models": ("fennec.cli.catalog", "run_models"),
                   "_fit": ("fennec.cli.workspace", "run_fit"),
                   "_recommend": ("fennec.cli.recommend", "run_recommend"),
                   "_published_script": ("fennec.cli.bench", "_published_script")},
}


def _fresh_import(name: str):
    """Import ``name`` anew (its import-time warning fires again), its parent package kept."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.mark.parametrize("old", OLD_MODULES)
def test_every_module_of_the_flat_layout_still_imports(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert importlib.import_module(old).__name__ == old


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_module_warns_with_its_new_path_and_hands_out_the_same_objects(old):
    new, names = MOVED[old]
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated .* import from .*{new}"):
        module = _fresh_import(old)
    target = importlib.import_module(new)
    for old_name, new_name in names.items():
        assert getattr(module, old_name) is getattr(target, new_name), (old, old_name)
    with pytest.raises(AttributeError, match="no attribute"):
        _ = module.no_such_name


@pytest.mark.parametrize("package", sorted(FORWARDED))
def test_a_package_that_replaced_a_module_still_finds_what_the_module_held(package):
    module = importlib.import_module(package)
    for old_name, (new, new_name) in FORWARDED[package].items():
        with pytest.warns(DeprecationWarning, match=rf"{package}\.{old_name} is deprecated"):
            value = getattr(module, old_name)
        assert value is getattr(importlib.import_module(new), new_name), (package, old_name)
    with pytest.raises(AttributeError):
        _ = module.no_such_name


def test_public_names_of_a_replaced_module_need_no_alias():
    """What the packages export is what the flat modules exported: no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from fennec.catalog import MIGRATIONS, Catalog, check_catalog  # noqa: F401
        from fennec.features import FeatureCache, load_model, model_features  # noqa: F401
        from fennec.hub import HfHub, LocalHub, ModelRecord, open_hub  # noqa: F401
        from fennec.space import ModelSide, TaskSide, TransferSpace, normalise_results  # noqa: F401
        from fennec.workspace import DEFAULT_MAX_SAMPLES, ZOO_HUB, Workspace, fit, zoo_dir, zoo_workspace  # noqa: F401


def test_python_m_fennec_hub_server_still_runs():
    old = subprocess.run([sys.executable, "-W", "default::DeprecationWarning", "-m", "fennec.hub_server", "--help"],
                         capture_output=True, text=True)
    new = subprocess.run([sys.executable, "-m", "fennec.hub.server", "--help"], capture_output=True, text=True)
    assert old.returncode == new.returncode == 0, (old.stderr, new.stderr)
    assert "--models" in old.stdout and old.stdout == new.stdout
    assert "fennec.hub.server" in old.stderr and "DeprecationWarning" in old.stderr
