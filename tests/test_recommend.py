"""fennec.recommend() / fennec fit / fennec recommend on a tiny zoo built in a temp folder.

The tiny zoo has the embedded zoo's layout (``hub/``, ``datasets/``, plus its own
``ground_truth.json``) and is selected with ``FENNEC_ZOO``, so the real code path of the
offline default is exercised end to end: reindex with archi2vec, import the ground truth,
describe the historical tasks with the proxy, fit the space, search, refine, fuse.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fennec import workspace as ws_mod
from fennec.cli import main
from fennec.errors import InvalidInputError, UnknownMetricError, WorkspaceError
from fennec.recommendation import Recommendations, RefineOptions, SamplingOptions, recommend
from fennec.task import OFFLINE_PROXY
from fennec.workspace import fit, history, zoo_workspace
from zoo_fixtures import MODELS, TASKS, TRUTH, tiny_zoo  # noqa: F401  (the fixture)


@pytest.fixture
def zoo_env(tiny_zoo, monkeypatch):
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    return tiny_zoo


def test_recommend_end_to_end_on_the_embedded_zoo(zoo_env):
    # without the placement update (placement_strength=None): the index's best, fused ahead of the rest
    recs = recommend(zoo_env / "datasets" / "t-new", top_k=3, candidates=2,
                     refine=RefineOptions(metric="logme", placement_strength=None))
    assert "update" not in recs.placement
    assert isinstance(recs, Recommendations) and len(recs) == 3
    assert [r.rank for r in recs] == [1, 2, 3]
    assert {r.model_id for r in recs} <= set(MODELS)  # never the proxy
    refined = [r for r in recs if r.metric_score is not None]
    assert len(refined) == 2 == recs.n_refined and all(r.metric == "logme" for r in refined)
    # refined candidates come first, ordered by the fused score; the rest by the index
    assert [r.model_id for r in recs[:2]] == [r.model_id for r in refined]
    assert refined[0].final_score >= refined[1].final_score
    assert recs[2].metric_score is None and recs[2].final_score == recs[2].predicted_score
    # 12 images through the proxy + 2 candidates, nothing cached yet
    assert recs.forward_passes == 12 * 3
    assert recs.closest_tasks and {t.task_id for t in recs.closest_tasks} <= set(TASKS)
    assert all(t.best_model in MODELS for t in recs.closest_tasks)
    assert all(r.sha and r.parameters and r.family in ("resnet", "vit") and r.reason for r in recs)
    json.dumps(recs.to_dict())
    table = recs.table()
    assert recs[0].model_id in table and "closest known tasks" in table

    again = recommend(zoo_env / "datasets" / "t-new", top_k=3, candidates=2,
                      refine=RefineOptions(metric="logme", placement_strength=None))
    assert [r.model_id for r in again] == [r.model_id for r in recs]
    assert again.forward_passes == 0  # the proxy's and the candidates' features are cached


def test_the_candidates_metric_scores_update_the_placement_and_every_model_is_re_predicted(zoo_env):
    from fennec.recommendation.options import DEFAULT_PLACEMENT_STRENGTH
    from fennec.workspace import Workspace

    data = zoo_env / "datasets" / "t-new"
    before = recommend(data, top_k=len(MODELS), refine=False)
    # fusion weight 0: the ranking is the updated placement's alone, over every model
    recs = recommend(data, top_k=len(MODELS), candidates=2, refine=RefineOptions(metric="logme", fusion_weight=0.0))
    update = recs.placement["update"]
    assert update["strength"] == DEFAULT_PLACEMENT_STRENGTH and len(update["observed"]) == recs.n_refined == 2
    assert update["before"] == [r.model_id for r in before][:len(MODELS)]
    assert [r.final_score for r in recs] == [r.predicted_score for r in recs]
    assert [r.final_score for r in recs] == sorted((r.final_score for r in recs), reverse=True)
    assert {r.model_id for r in recs} == set(MODELS)  # every model re-predicted, refined or not
    ws = Workspace.load(zoo_workspace())
    vector = np.array(update["task_vector"])
    for r in recs:  # the index's inner product with the updated task vector (rounded to 4 places in the evidence)
        assert r.predicted_score == pytest.approx(float(ws.index.vector(r.model_id) @ vector), abs=1e-3)
    # the update is the space's posterior from the two observations: moving the prior placement
    # (refine=False's scores) changes the predicted scores of models that were not refined too
    prior = {r.model_id: r.predicted_score for r in before}
    assert any(abs(r.predicted_score - prior[r.model_id]) > 1e-4 for r in recs if r.metric_score is None)
    table = recs.table()
    assert "placement updated by the metric scores of 2 re-ranked candidates" in table
    assert "updated placement" not in recommend(data, top_k=2, refine=False).table()
    json.dumps(recs.to_dict())
    # an infinitely strong prior is no update at all: the first placement, candidates fused ahead
    still = recommend(data, top_k=3, candidates=2,
                      refine=RefineOptions(metric="logme", placement_strength=float("inf")))
    assert "update" not in still.placement and still.n_refined == 2


def test_the_update_evidence_compares_the_tops_that_are_shown_on_a_known_task(zoo_env):
    # on this very (known) dataset the recorded results rank first, with or without the update:
    # "before" is the top refine=False shows, and nothing "entered the top" that is not in it
    data = zoo_env / "datasets" / "t-three"
    for k in (1, 2, 3):
        shown = [r.model_id for r in recommend(data, top_k=k, refine=False)]
        recs = recommend(data, top_k=k, candidates=2, refine=RefineOptions(metric="logme"))
        update = recs.placement["update"]
        assert update["before"] == shown
        assert update["new_in_top"] == [r.model_id for r in recs if r.model_id not in shown]


@pytest.mark.parametrize("score", [lambda i: float("nan"), lambda i: float("inf") if i else float("nan"),
                                   lambda i: 0.5, lambda i: 0.5 if i == 0 else None],
                         ids=["all-nan", "no-finite", "all-equal", "one-finite"])
def test_metric_scores_without_an_order_do_not_move_the_placement(zoo_env, monkeypatch, score):
    # metric scores that are not finite, or finite without a spread, say nothing about the order of
    # the candidates: no update (the placement recommend=False ranks with), as fennec bench does
    from fennec.recommendation import refine

    def scored(model_ids, sample, **kwargs):
        return [refine.CandidateScore(m, None, kwargs["metric"], score(i), None, 0, 0.0, False)
                for i, m in enumerate(model_ids)]

    monkeypatch.setattr(refine, "score_candidates", scored)
    data = zoo_env / "datasets" / "t-new"
    before = recommend(data, top_k=len(MODELS), refine=False)
    recs = recommend(data, top_k=len(MODELS), candidates=3, refine=RefineOptions(fusion_weight=0.0))
    assert "update" not in recs.placement and "placement updated" not in recs.table()
    assert [(r.model_id, r.final_score) for r in recs] == [(r.model_id, r.predicted_score) for r in before]


@pytest.mark.parametrize("strength", [0, -1.0, float("nan"), "4", True])
def test_a_bad_placement_strength_is_refused(strength):
    with pytest.raises(InvalidInputError, match="placement_strength"):
        RefineOptions(placement_strength=strength)


def test_the_placement_strength_on_the_command_line(zoo_env, capsys):
    data = str(zoo_env / "datasets" / "t-new")
    assert main(["recommend", data, "--candidates", "2", "--metric", "logme", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["placement"]["update"]["strength"] == 4.0
    assert main(["recommend", data, "--candidates", "2", "--metric", "logme", "--placement-strength", "inf",
                 "--json"]) == 0
    assert "update" not in json.loads(capsys.readouterr().out)["placement"]
    assert main(["recommend", data, "--placement-strength", "0"]) == 1  # a library error: one line, exit 1
    assert "--placement-strength must be a number > 0" in capsys.readouterr().err


def test_index_only_recommendation_ranks_every_model_without_forward_passes_through_them(zoo_env):
    recs = recommend(zoo_env / "datasets" / "t-new", top_k=len(MODELS) + 3, refine=False, cache=False)
    assert len(recs) == len(MODELS) and recs.n_refined == 0 and recs.metric is None
    assert all(r.metric_score is None for r in recs)
    assert recs.forward_passes == 12  # the proxy only
    scores = [r.predicted_score for r in recs]
    assert scores == sorted(scores, reverse=True)
    assert recs.same_task is None and all(r.known_result is None for r in recs)


@pytest.mark.parametrize("refine", [False, True])
def test_a_known_task_is_ranked_by_its_recorded_results_and_says_so(zoo_env, refine):
    recs = recommend(zoo_env / "datasets" / "t-three", top_k=len(MODELS), refine=refine, candidates=2)
    # a known task's nearest known task is itself
    assert recs.closest_tasks[0].task_id == "t-three" and recs.closest_tasks[0].similarity >= 0.999
    truth = TRUTH["t-three"]
    assert [r.model_id for r in recs] == sorted(truth, key=lambda m: -truth[m])
    assert [r.known_result for r in recs] == sorted(truth.values(), reverse=True)
    assert recs.same_task == "t-three" and "fine-tuned on this very dataset" in recs[0].reason
    assert any("known task t-three" in n and "ranked by their recorded fine-tuning results" in n
               for n in recs.notes)
    table = recs.table()
    assert "known" in table.splitlines()[len(recs.notes) + 1]  # the column header
    doc = recs.to_dict()
    assert doc["same_task"] == "t-three" and doc["recommendations"][0]["known_result"] == max(truth.values())
    # the known best models rank even when the index proposes too few candidates to include them,
    # with the index score the full search gives them
    few = recommend(zoo_env / "datasets" / "t-three", top_k=len(MODELS), candidates=1, refine=False)
    assert [r.model_id for r in few] == sorted(truth, key=lambda m: -truth[m])
    full = {r.model_id: r.predicted_score for r in recs}
    assert all(r.predicted_score == pytest.approx(full[r.model_id], abs=1e-5) for r in few)
    top = recommend(zoo_env / "datasets" / "t-three", top_k=1, candidates=1, refine=False)
    assert [r.model_id for r in top] == [max(truth, key=truth.get)]


def test_low_confidence_note_when_the_closest_known_task_is_far(zoo_env, monkeypatch):
    from fennec.recommendation import recommender

    recs = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    similarity = recs.closest_tasks[0].similarity
    assert similarity < recommender.SAME_DATA_SIMILARITY
    monkeypatch.setattr(recommender, "LOW_SIMILARITY", similarity + 0.01)
    far = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    assert any(n.startswith("low confidence: even the closest known task") and f"{similarity:.2f}" in n
               for n in far.notes)
    assert any(line.startswith("note: low confidence") for line in far.table().splitlines()[:3])
    assert "No metric was run (refine=False)" in far.notes[-1]  # index only: there is no metric column to weigh
    refined = recommend(zoo_env / "datasets" / "t-new", top_k=2, candidates=2)
    assert refined.n_refined and "Weigh the metric column" in refined.notes[-1]
    monkeypatch.setattr(recommender, "LOW_SIMILARITY", similarity - 0.01)
    near = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    assert not any("low confidence" in n for n in near.notes)


def test_a_near_but_not_same_known_task_says_why_its_results_do_not_rank(zoo_env, monkeypatch):
    """Another split or sample of a known task (0.98 <= similarity < 0.999): its recorded best model
    need not rank first, and the output says why instead of showing "similarity 1.00" unexplained."""
    from fennec.recommendation import recommender

    plain = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    closest = plain.closest_tasks[0]
    assert not any("nearly this dataset" in n for n in plain.notes)
    assert f"{closest.task_id} (similarity {closest.similarity:.3f}" in plain.table()  # 3 decimals: 0.998 != 1.00
    monkeypatch.setattr(recommender, "NEAR_SIMILARITY", closest.similarity - 0.01)
    near = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    note = next(n for n in near.notes if "nearly this dataset" in n)
    assert note.startswith(f"the closest known task {closest.task_id} (similarity {closest.similarity:.3f})")
    assert f"best there: {closest.best_model} {closest.best_value:.3f}" in note and "not the same data" in note
    assert near.same_task is None and all(r.known_result is None for r in near)
    assert not any(n.startswith("low confidence") for n in near.notes)
    assert f"note: {note}" in near.table().splitlines()
    # the same data is ranked by its results, not explained away
    same = recommend(zoo_env / "datasets" / "t-three", top_k=2, refine=False)
    assert same.same_task == "t-three" and not any("nearly this dataset" in n for n in same.notes)


def test_the_demo_zoo_says_so_first_everywhere(zoo_env, capsys):
    recs = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    assert recs.workspace.kind == "demo-zoo" and recs.workspace.n_models == len(MODELS)
    note = recs.workspace.note
    assert note.startswith(f"ranked the embedded demo zoo ({len(MODELS)} small models), not the Hugging Face Hub")
    assert "nothing is fitted in FENNEC_HOME" in note and "`fennec reindex`" in note and "`fennec fit`" in note
    assert recs.notes[0] == note and recs.table().splitlines()[0] == f"note: {note}"
    assert "demo zoo" in repr(recs)
    doc = recs.to_dict()
    assert list(doc)[:2] == ["notes", "workspace"] and doc["notes"][0] == note
    assert "(hub='zoo')" in recommend(zoo_env / "datasets" / "t-new", top_k=1, refine=False, hub="zoo").workspace.note
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--no-refine", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["notes"][0] == note and out.index("demo zoo") < out.index("recommendations")
    # on the command line, in its terms: the table and the JSON (notes and workspace.note) alike
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--no-refine", "--hub", "zoo"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("note: ranked the embedded demo zoo") and "(--hub zoo)" in first and "hub=" not in first
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--no-refine", "--hub", "zoo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "(--hub zoo)" in doc["notes"][0] and doc["workspace"]["note"] == doc["notes"][0]


def test_the_zoo_workspace_is_built_once_and_refitted_when_the_ground_truth_changes(zoo_env, tmp_path):
    home = zoo_workspace(tmp_path / "ws")
    manifest = json.loads((home / "space" / "fit.json").read_text())
    assert manifest["n_models"] == len(MODELS) and manifest["n_tasks"] == len(TASKS)
    assert manifest["proxy"] == OFFLINE_PROXY and OFFLINE_PROXY in manifest["excluded"]
    zoo_workspace(tmp_path / "ws")
    assert json.loads((home / "space" / "fit.json").read_text())["fitted_at"] == manifest["fitted_at"]

    changed = json.loads((zoo_env / "ground_truth.json").read_text())
    original = (zoo_env / "ground_truth.json").read_text()
    changed["test_accuracy_seed0"]["t-one"]["lab/vit-b"] = 0.99
    try:
        (zoo_env / "ground_truth.json").write_text(json.dumps(changed))
        zoo_workspace(tmp_path / "ws")
        new = json.loads((home / "space" / "fit.json").read_text())
        assert new["zoo_ground_truth_sha256"] != manifest["zoo_ground_truth_sha256"]
    finally:
        (zoo_env / "ground_truth.json").write_text(original)


def test_fit_refuses_an_empty_workspace_and_recommend_names_the_fix(tmp_path, zoo_env):
    with pytest.raises(WorkspaceError, match="fennec reindex"):
        fit(home=tmp_path / "empty", hub=str(zoo_env / "hub"))
    with pytest.raises(WorkspaceError, match="fennec fit"):
        recommend(zoo_env / "datasets" / "t-new", home=tmp_path / "elsewhere")


@pytest.mark.parametrize("kwargs, error, match", [
    (lambda: {"top_k": 0}, InvalidInputError, "top_k"),
    (lambda: {"device": "cuda:99"}, InvalidInputError, "cuda:99"),
    (lambda: {"device": "nonsense"}, InvalidInputError, "not a valid torch device"),
    (lambda: {"sampling": SamplingOptions(min_per_class=0)}, InvalidInputError, "min_per_class"),
    (lambda: {"candidates": -1}, InvalidInputError, "candidates"),
    (lambda: {"refine": RefineOptions(fusion_weight=1.5)}, InvalidInputError, "fusion_weight"),
    (lambda: {"refine": RefineOptions(fusion_weight="0.5")}, InvalidInputError, "fusion_weight"),
    (lambda: {"refine": RefineOptions(fusion_weight=True)}, InvalidInputError, "fusion_weight"),
    (lambda: {"refine": RefineOptions(batch_size=0)}, InvalidInputError, "batch_size"),
    (lambda: {"refine": "yes"}, InvalidInputError, "refine must be True, False or"),
    (lambda: {"sampling": {"split": "test"}}, InvalidInputError, "sampling must be"),
    (lambda: {"sampling": SamplingOptions(max_samples=0)}, InvalidInputError, "max_samples"),
    (lambda: {"sampling": SamplingOptions(seed=-1)}, InvalidInputError, "seed"),
    (lambda: {"refine": RefineOptions(metric="no-such-metric")}, UnknownMetricError, "no-such-metric"),
    (lambda: {"hub": "https://example.org"}, WorkspaceError, "fennec fit"),
])
def test_bad_arguments_fail_before_any_work(kwargs, error, match, monkeypatch, tmp_path):
    monkeypatch.setenv("FENNEC_ZOO", str(tmp_path / "no-zoo"))  # any work would fail differently
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    with pytest.raises(error, match=match):
        recommend("anything", **kwargs())


@pytest.mark.parametrize("legacy", [{"metric": "no-such-metric"}, {"fusion_weight": 1.5},
                                    {"split": "nope", "seed": -1}])
def test_old_keyword_arguments_still_work_with_a_deprecation_warning(legacy, monkeypatch, tmp_path):
    """The pre-grouping keywords reach the same checks (so the same errors), with a DeprecationWarning
    naming the options class that holds them now."""
    monkeypatch.setenv("FENNEC_ZOO", str(tmp_path / "no-zoo"))
    cls = "RefineOptions" if set(legacy) & {"metric", "fusion_weight"} else "SamplingOptions"
    with pytest.warns(DeprecationWarning, match=f"{cls}\\("), pytest.raises((InvalidInputError, UnknownMetricError)):
        recommend("anything", **legacy)


def test_unknown_keyword_argument_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'top'"):
        recommend("anything", top=3)


def test_old_keywords_rank_exactly_as_the_options(zoo_env):
    new = recommend(zoo_env / "datasets" / "t-new", top_k=3, candidates=2,
                    refine=RefineOptions(metric="logme", fusion_weight=0.75),
                    sampling=SamplingOptions(max_samples=60, seed=1))
    with pytest.warns(DeprecationWarning, match="fusion_weight="):
        old = recommend(zoo_env / "datasets" / "t-new", top_k=3, candidates=2, metric="logme", fusion_weight=0.75,
                        max_samples=60, seed=1)
    assert [(r.model_id, r.final_score, r.metric) for r in new] == [(r.model_id, r.final_score, r.metric) for r in old]
    assert new[0].metric == "logme" and new.dataset == old.dataset and "seed 1" in new.dataset


def test_hub_means_what_it_means_for_fit(zoo_env, tmp_path):
    """hub= names the hub the workspace was fitted with (a folder here), as fit(hub=) does; another hub is refused."""
    home = tmp_path / "ws"
    zoo_workspace(home)  # fitted with hub='zoo'
    with pytest.raises(WorkspaceError, match="was fitted with 'zoo'"):
        recommend(zoo_env / "datasets" / "t-new", home=home, hub=str(zoo_env / "hub"), refine=False)


def test_no_zoo_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FENNEC_ZOO", str(tmp_path / "no-zoo"))
    with pytest.raises(WorkspaceError, match="FENNEC_ZOO"):
        recommend("anything")


def test_command_line_table_json_and_errors(zoo_env, capsys):
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--top-k", "2", "--candidates", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "closest known tasks" in out
    assert main(["recommend", str(zoo_env / "datasets" / "t-new"), "--no-refine", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_refined"] == 0 and len(doc["recommendations"]) == min(5, len(MODELS))
    assert np.all(np.diff([r["predicted_score"] for r in doc["recommendations"]]) <= 0)
    assert main(["recommend", str(zoo_env / "no-such-dataset")]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["fit", "--zoo"]) == 0
    assert "zoo workspace ready" in capsys.readouterr().out


def test_results_table_keys_published_tasks_by_source(tmp_path):
    from fennec.catalog import Catalog

    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.import_table("paper_a", {"results": {"cifar10": {"m1": 0.9, "m2": 0.8}},
                                     "results_linear": {"cifar10": {"m1": 0.7}}}, metric="acc", protocol="p")
        cat.import_table("zoo_ground_truth", {"seed0": {"t-x": {"m1": 0.5}}, "seed1": {"t-x": {"m1": 0.6}}},
                         metric="acc", protocol="p", task_kind="zoo")
        table, sources = ws_mod.results_table(cat, {"m1", "m2"})
        assert table == {"paper_a/cifar10": {"m1": 0.9, "m2": 0.8}, "t-x": {"m1": 0.5}}
        assert sources == {"paper_a/cifar10": "paper_a", "t-x": "zoo_ground_truth"}
        assert ws_mod.results_table(cat, {"m2"})[0] == {"paper_a/cifar10": {"m2": 0.8}}


def test_own_workspace_with_published_and_described_tasks(zoo_env, tmp_path):
    """A FENNEC_HOME workspace: models reindexed from a hub folder, a published table (no images:
    shapes the model vectors only) and tasks whose dataset is known (described by the proxy)."""
    from fennec.catalog import Catalog
    from fennec.hub import open_hub
    from fennec.reindex import Archi2VecEmbedder, reindex
    from zoo_fixtures import TRUTH

    home = tmp_path / "home"
    with Catalog(home / "catalog.sqlite") as cat:
        reindex(hub=open_hub(str(zoo_env / "hub")), catalog=cat, embedder=Archi2VecEmbedder())
        assert not (home / "index").exists()  # the catalog is the one store of the vectors
        cat.import_table("paper", {"results": {"cifar10": {"lab/resnet-a": 70.0, "lab/vit-a": 90.0,
                                                           "lab/vit-b": 85.0, "not/in-catalog": 99.0}}},
                         metric="acc %", protocol="p")
        cat.import_table("mine", {"results": {t: TRUTH[t] for t in ("t-one", "t-three")}}, metric="acc",
                         protocol="p")
        for t in ("t-one", "t-three"):
            cat.upsert_task(t, metadata={"dataset": str(zoo_env / "datasets" / t)})
    # the archi2vec index of an earlier version, here damaged: nothing reads it, nothing deletes it
    (home / "index").mkdir()
    (home / "index" / "meta.json").write_text('{"format": ')
    with pytest.raises(InvalidInputError, match="no/such-proxy.*proxy="):
        fit(home=home, hub=str(zoo_env / "hub"), proxy="no/such-proxy")
    assert not (home / "space").exists()  # refused before anything was described or fitted
    summary = fit(home=home, hub=str(zoo_env / "hub"), proxy=OFFLINE_PROXY)
    assert summary.n_tasks == 3 and summary.n_described == 2
    assert summary.n_models == len(MODELS)  # the proxy is excluded, the unknown model ignored
    manifest = json.loads((home / "space" / "fit.json").read_text())
    assert set(manifest["tasks"]) == {"paper/cifar10", "mine/t-one", "mine/t-three"}
    recs = recommend(zoo_env / "datasets" / "t-new", home=home, top_k=3, refine=False)
    assert recs.workspace.kind == "fitted" and recs.workspace.note is None
    assert len(recs) == 3 and {t.task_id for t in recs.closest_tasks} <= {"mine/t-one", "mine/t-three"}
    # the best model of a published task is looked up under its <source>/<task> key
    best = {t.task_id: t.best_model for t in recs.closest_tasks}
    assert best.get("mine/t-one", "lab/resnet-a") == "lab/resnet-a"
    assert best.get("mine/t-three", "lab/vit-a") == "lab/vit-a"
    assert all(b is not None for b in best.values())
    assert (home / "index" / "meta.json").read_text() == '{"format": '
    # hub= as in fit: the folder hub this workspace was fitted with ranks the same models
    same = recommend(zoo_env / "datasets" / "t-new", home=home, top_k=3, refine=False, hub=str(zoo_env / "hub"))
    assert [r.model_id for r in same] == [r.model_id for r in recs]

    # a refit without --exclude keeps the previous exclusions (and the sampling settings)
    fit(home=home, exclude=["lab/vit-b"])
    fit(home=home)
    manifest = json.loads((home / "space" / "fit.json").read_text())
    assert "lab/vit-b" in manifest["excluded"] and manifest["max_samples"] == 1000
    assert "lab/vit-b" not in {r.model_id for r in recommend(zoo_env / "datasets" / "t-new", home=home,
                                                              top_k=10, refine=False)}


def test_the_task_vector_placement_is_reported(zoo_env):
    from fennec.recommendation import records

    recs = recommend(zoo_env / "datasets" / "t-new", top_k=2, refine=False)
    placement = recs.placement
    assert placement["predictor"] in ("knn", "ridge", "mean") and placement["n_tasks"] == len(TASKS)
    assert {t for t, _ in placement["weights"]} <= set(TASKS)
    assert "task vector:" in recs.table() and json.dumps(recs.to_dict()["placement"])
    assert placement["shrink"] is True  # the transfer space's default
    line = records._placement_line
    assert "pulled toward the mean" in line({"predictor": "knn", "n_tasks": 3, "weights": [("a", 0.5)], "shrink": True})
    assert "pulled" not in line({"predictor": "knn", "n_tasks": 3, "weights": [("a", 0.5)], "shrink": False})
    assert "pulled" not in line({"predictor": "mean", "n_tasks": 3, "weights": [("a", 0.3)], "shrink": True})


def test_when_the_metric_fails_on_every_candidate_the_index_order_is_kept(zoo_env, monkeypatch):
    from fennec.errors import FallbackWarning
    from fennec.recommendation import refine

    def failing(model_ids, sample, **kwargs):
        return [refine.CandidateScore(m, None, kwargs["metric"], None, "RuntimeError: boom", 0, 0.0, False)
                for m in model_ids]

    monkeypatch.setattr(refine, "score_candidates", failing)
    plain = recommend(zoo_env / "datasets" / "t-new", top_k=4, refine=False)
    with pytest.warns(FallbackWarning, match="failed on all 3 candidates"):
        recs = recommend(zoo_env / "datasets" / "t-new", top_k=4, candidates=3, refine=RefineOptions(fusion_weight=1.0))
    assert [r.model_id for r in recs] == [r.model_id for r in plain]
    assert recs.n_refined == 0 and recs.n_failed == 3 and recs.metric is None
    assert "(3 failed)" in recs.table()


def test_a_catalog_without_a_fit_warns_before_falling_back_to_the_zoo(zoo_env, tmp_path, monkeypatch):
    from fennec.catalog import Catalog
    from fennec.errors import FallbackWarning

    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "home"))
    with Catalog(tmp_path / "home" / "catalog.sqlite") as catalog:
        catalog.import_table("paper", {"results": {"cifar10": {"lab/resnet-a": 0.9}}}, metric="acc", protocol="p")
    with pytest.warns(FallbackWarning, match="fennec fit"):
        recs = recommend(zoo_env / "datasets" / "t-new", top_k=1, refine=False)
    assert recs.workspace.home == str(tmp_path / "home" / "zoo") and recs.workspace.kind == "demo-zoo"


def test_an_empty_catalog_or_fennec_models_does_not_change_what_recommend_says(zoo_env, tmp_path, monkeypatch,
                                                                               capsys):
    import warnings

    from fennec.catalog import Catalog
    from fennec.errors import FallbackWarning

    home = tmp_path / "home"
    monkeypatch.setenv("FENNEC_HOME", str(home))
    assert main(["models"]) == 0
    assert "no catalog" in capsys.readouterr().out and not (home / "catalog.sqlite").exists()
    assert main(["models", "--json"]) == 0 and capsys.readouterr().out == ""
    Catalog(home / "catalog.sqlite").close()  # as older fennec versions' `fennec models` left it
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        recs = recommend(zoo_env / "datasets" / "t-new", top_k=1, refine=False)
    assert recs.workspace.kind == "demo-zoo"


def test_an_older_fennecs_interrupted_swap_is_read_in_place_and_migrated_by_the_next_fit(zoo_env, tmp_path,
                                                                                          monkeypatch):
    import shutil

    home = zoo_workspace(tmp_path / "ws")
    before = json.loads((home / "space" / "fit.json").read_text())
    # the layout older fennec versions wrote (``space/`` a folder), killed between the two renames of their swap
    current = (home / "space").resolve()
    (home / "space").unlink()
    shutil.copytree(current, home / ".space.old")
    shutil.rmtree(current)
    assert history.read_manifest(home) == before
    assert not (home / "space").exists() and (home / ".space.old").is_dir()  # a reader writes nothing
    # recommend() on FENNEC_HOME uses it too, instead of falling back to the embedded zoo
    monkeypatch.setenv("FENNEC_HOME", str(home))
    recs = recommend(zoo_env / "datasets" / "t-new", top_k=1, refine=False)
    assert recs.workspace.home == str(home)
    fit(home=home)  # the next fit moves to the versioned layout and removes the old folder
    assert (home / "space").is_symlink() and (home / "space" / "fit.json").exists()
    assert not (home / ".space.old").exists()
    assert [p.name for p in home.iterdir() if p.name.startswith(".space.")] == [(home / "space").resolve().name]


def test_fit_zoo_rejects_settings_it_would_ignore(zoo_env, capsys):
    assert main(["fit", "--zoo", "--dim", "3"]) == 1
    assert "--dim" in capsys.readouterr().err


def test_records_with_a_nan_metric_score_are_valid_json():
    """A metric that returns NaN for a candidate (a degenerate feature matrix) must not make
    ``fennec recommend --json`` print ``NaN``, which JSON parsers reject: it becomes null."""
    from fennec.recommendation.records import KnownTask, Recommendation, WorkspaceInfo

    items = [Recommendation(rank=1, model_id="a/m", sha=None, predicted_score=np.float64(0.5),
                            metric_score=float("nan"), metric="logme", final_score=0.5, parameters=10,
                            family="resnet", reason="r"),
             Recommendation(rank=2, model_id="b/m", sha=None, predicted_score=float("-inf"), metric_score=None,
                            metric=None, final_score=0.1, parameters=None, family=None, reason="r")]
    recs = Recommendations(items, dataset="d", closest_tasks=[KnownTask("t", float("nan"), None, None)],
                           n_candidates=2, n_refined=1, metric="logme", forward_passes=3,
                           timings={"proxy": float("inf")}, workspace=WorkspaceInfo("h", "fitted", 2),
                           n_indexed=2, placement={"weights": [("t", np.float32("nan"))], "n_tasks": np.int64(1)})
    with pytest.raises(ValueError):  # what the records hold, dumped as they are
        json.dumps(dataclasses.asdict(items[0]), allow_nan=False)
    doc = json.loads(json.dumps(recs.to_dict(), allow_nan=False))
    assert doc["recommendations"][0]["metric_score"] is None
    assert doc["recommendations"][0]["predicted_score"] == 0.5
    assert doc["recommendations"][1]["predicted_score"] is None
    assert doc["closest_tasks"][0]["similarity"] is None and doc["timings"]["proxy"] is None
    assert doc["placement"] == {"weights": [["t", None]], "n_tasks": 1}
    assert recs[0].metric_score != recs[0].metric_score  # the records themselves are unchanged
