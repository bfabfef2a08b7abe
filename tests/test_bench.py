"""fennec bench: the leave-one-task-out harness, run end to end on the tiny zoo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fennec.bench import runner as bench
from fennec.errors import FennecWarning, InvalidInputError
from fennec.metrics import list_metrics
from zoo_fixtures import MODELS, TASKS, TRUTH, tiny_zoo  # noqa: F401  (the fixture)


@pytest.fixture
def zoo_env(tiny_zoo, monkeypatch):
    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    return tiny_zoo


@pytest.mark.filterwarnings("ignore:nleep.*mixture components:fennec.errors.FallbackWarning")
def test_leave_one_task_out_writes_every_method_and_counts_forward_passes(zoo_env, tmp_path):
    report = bench.run_benchmark(out=tmp_path, max_samples=12)
    res = json.loads((tmp_path / "zoo_recommend.json").read_text())
    assert res["targets"] == sorted(TASKS) and res["n_models"] == len(MODELS)
    methods = set(res["summary"])
    assert {"random", "largest", "fennec-paper", "fennec-index", "fennec-refine", "metric-ensemble"} <= methods
    assert {f"metric:{m}" for m in list_metrics()} <= methods
    s = res["summary"]
    n = len(MODELS)
    assert {"history-mean", "fennec-index (no shrinkage)", "fennec-refine (no shrinkage, metric alone)"} <= methods
    assert s["random"]["forward_passes"] == s["largest"]["forward_passes"] == s["history-mean"]["forward_passes"] == 0
    for agg in s.values():  # every method against the data-free baseline, on every target it ranked
        vs = agg["vs_history-mean"]
        assert vs["wins"] + vs["losses"] + vs["ties"] == vs["targets"] == agg["targets"]
    assert all(s[m]["vs_history-mean"]["targets"] == len(TASKS) for m in ("fennec-index", "fennec-refine", "largest"))
    assert s["history-mean"]["vs_history-mean"]["ties"] == len(TASKS)
    assert s["history-mean"]["vs_history-mean"]["mean_diff"] == 0
    assert s["fennec-index"]["forward_passes"] == s["fennec-paper"]["forward_passes"] == 1
    assert s["fennec-refine"]["forward_passes"] == 1 + res["headline_candidates"]
    ablations = {"fennec-refine (placement update, index's top candidates)",
                 "fennec-refine (diverse candidates, no placement update)",
                 "fennec-refine (no placement update, top candidates fused ahead)", "fennec-refine (package defaults)"}
    assert ablations <= methods
    assert all(s[m]["forward_passes"] == 1 + res["headline_candidates"] for m in ablations)
    grid = {bench._strength(r) for r in bench.STRENGTH_GRID}
    assert set(res["placement_strengths"].values()) <= grid
    assert res["placement_chosen_on_all_targets"]["strength"] in grid
    assert "prior strength" in report
    assert all(s[f"metric:{m}"]["forward_fraction"] == 1.0 for m in list_metrics())
    for t in TASKS:
        row = res["per_target"][t]
        for meth in ("fennec-index", "fennec-refine", "largest"):
            assert -1.0 <= row[meth]["weighted_tau"] <= 1.0
            assert row[meth]["top3_hit"] in (0.0, 1.0)
        # history-mean ranks by the other targets' results alone
        train = {x: TRUTH[x] for x in TASKS if x != t}
        expected = bench._evaluate(bench.history_mean(train, list(MODELS)), TRUTH[t])
        assert {k: row["history-mean"][k] for k in expected} == expected
        assert res["fusion_weights"][t] in bench.FUSION_GRID
        assert all(v["fusion_weight"] in bench.FUSION_GRID for v in res["budget_curve"][t].values())
        assert all(v["scorer"] in bench.SCORERS for v in res["budget_curve"][t].values())
        assert all(v["strength"] in grid for v in res["budget_curve"][t].values())
        assert len(res["ensemble_metrics"][t]) == bench.ENSEMBLE_SIZE
        top = res["ensemble_metrics"][t]
        assert res["refine_metrics"][t] in (top[0], "ensemble(" + "+".join(top) + ")")
        assert 0.0 <= res["nearest_similarity"][t] <= 1.0
        # refining every model with weight 1 is the metric alone: same order as metric:<default>
        assert str(n) in res["budget_curve"][t]
    assert set(res["targets_check"]) >= {"default_at_least_history_mean_plus_0.05", "default_at_least_best_metric",
                                         "default_below_history_mean_on_at_most_a_fifth",
                                         "index_only_at_least_history_mean", "default_regret_at_most_best_metric",
                                         "forward_passes_at_most_one_fifth"}
    assert res["noise_ceiling"] == {t: None for t in TASKS}  # the tiny zoo has no seed-1 repeat
    assert s["fennec-refine"][bench.CEILING_MODELS_TAU] is None  # ... so nothing on the ceiling's models
    cal = res["confidence_calibration"]
    assert cal["near"]["n"] + cal["far"]["n"] == len(TASKS)
    assert [r["similarity"] for r in cal["per_target"]] == sorted(res["nearest_similarity"].values(), reverse=True)
    assert "history-mean, data-free" in report and "noise ceiling" in report
    assert "Leave-one-task-out" in report or "leave-one-task-out" in report
    assert (tmp_path / "zoo_recommend.md").read_text() == report
    assert (tmp_path / "zoo_recommend_tau.png").stat().st_size > 0
    assert (tmp_path / "zoo_recommend_budget.png").stat().st_size > 0
    # the second run reuses the cached scores
    cache = json.loads((zoo_env / "cache" / "bench" / "scores.json").read_text())
    assert len(cache) == len(TASKS) * len(MODELS)


def test_placed_scores_rank_every_model_by_the_updated_placement():
    from fennec.recommendation.refine import choose_candidates, observed_scores
    from fennec.space import TransferSpace

    rng = np.random.default_rng(0)
    models = [f"m{i:02d}" for i in range(12)]
    space = TransferSpace(dim=2).fit({f"t{j}": {m: float(rng.normal()) for m in models} for j in range(5)})
    task = space.task_vector_of("t0")
    mv = space.model_vectors(models)
    order = np.argsort(-(mv @ task), kind="stable")
    prior = bench._Prior(space, [models[i] for i in order], mv[order], task)
    row = {m: i for i, m in enumerate(prior.ranked)}
    metric = {m: {"x": float(i)} for i, m in enumerate(prior.ranked)}  # the reverse of the first placement
    # no update and fusion weight 0: the first placement's order, over every model
    assert list(bench._placed_scores(prior, metric, ["x"], 4, 0.0, math.inf)) == prior.ranked
    # with the update: every model by its score under the posterior from the 4 candidates
    pool = choose_candidates(prior.ranked, prior.vectors, 4)
    observed = observed_scores({m: float(prior.vectors[row[m]] @ task) for m in pool},
                               {m: metric[m]["x"] for m in pool})
    posterior = space.update_task_vector(task, prior.vectors[[row[m] for m in observed]],
                                         np.array(list(observed.values())), strength=0.5)
    expected = sorted(prior.ranked, key=lambda m: -float(prior.vectors[row[m]] @ posterior))
    assert list(bench._placed_scores(prior, metric, ["x"], 4, 0.0, 0.5)) == expected != prior.ranked
    # only the index's top 4 are run without diversity: a model outside them keeps no metric influence
    top = bench._placed_scores(prior, metric, ["x"], 4, 1.0, math.inf, diverse=False)
    assert list(top)[4:] == prior.ranked[4:]


def test_unknown_targets_are_refused(zoo_env, tmp_path):
    with pytest.raises(InvalidInputError, match="no ground truth"):
        bench.run_benchmark(targets=["t-nope"], out=tmp_path, max_samples=12)


def test_evaluate_and_fusion_helpers():
    truth = {f"m{i}": 0.1 * i for i in range(6)}
    perfect = bench._evaluate({m: v for m, v in truth.items()}, truth)
    assert perfect["weighted_tau"] == pytest.approx(1.0) and perfect["top1_regret"] == 0 and perfect["top3_hit"] == 1
    assert bench._evaluate({"m0": 1.0}, truth)["weighted_tau"] is None          # too few models
    index = {f"m{i}": float(i) for i in range(6)}
    metric = {f"m{i}": float(-i) for i in range(6)}
    assert list(bench._refined(index, metric, 3, 0.0)) == ["m5", "m4", "m3", "m2", "m1", "m0"]
    # weight 1: the top 3 of the index re-ordered by the metric, the rest in index order
    assert list(bench._refined(index, metric, 3, 1.0)) == ["m3", "m4", "m5", "m2", "m1", "m0"]


def test_evaluate_on_the_noise_ceilings_models_ranks_those_models_alone():
    truth = {f"m{i}": 0.1 * i for i in range(8)}
    ranking = {m: -v for m, v in truth.items()} | {"m6": 10.0, "m7": 9.0}  # right on m6, m7 only
    repeat = ["m7", "m6", "m5", "m4", "m3"]
    out = bench._evaluate(ranking, truth, subset=repeat)
    assert out[bench.CEILING_MODELS_TAU] == pytest.approx(
        bench._evaluate({m: ranking[m] for m in repeat}, {m: truth[m] for m in repeat})["weighted_tau"])
    assert out[bench.CEILING_MODELS_TAU] != pytest.approx(out["weighted_tau"])
    assert bench.CEILING_MODELS_TAU not in bench._evaluate(ranking, truth)
    assert bench._evaluate({"m0": 1.0}, truth, subset=repeat)[bench.CEILING_MODELS_TAU] is None  # too few


def test_history_mean_is_the_mean_z_score_over_the_known_tasks_by_hand():
    results = {"t1": {"a": 0.9, "b": 0.7, "c": 0.5},   # z-scores: a 1.2247, b 0, c -1.2247 (std 0.1633)
               "t2": {"a": 0.6, "b": 0.8},             # a -1, b 1; c has no result here
               "t3": {"a": 0.4, "b": 0.4, "c": 0.4}}   # every model ties: zeros, no information
    s = bench.history_mean(results, ["a", "b", "c", "d"])
    assert s["a"] == pytest.approx((1.224745 - 1 + 0) / 3, abs=1e-6)
    assert s["b"] == pytest.approx((0 + 1 + 0) / 3)
    assert s["c"] == pytest.approx((-1.224745 + 0) / 2, abs=1e-6)  # over the tasks where it has a result
    assert s["d"] == 0.0                                            # no history: the average model
    order = sorted(s, key=lambda m: -s[m])
    assert order == ["b", "a", "d", "c"]
    # the scale of a task does not matter, its order does: an easy task weighs as much as a hard one
    scaled = {"t1": {m: 0.99 + v / 100 for m, v in results["t1"].items()}, "t2": results["t2"], "t3": results["t3"]}
    assert bench.history_mean(scaled, ["a", "b", "c"]) == pytest.approx({m: s[m] for m in "abc"})
    with pytest.warns(FennecWarning, match="fewer than 2 models"):  # a single model says nothing about order
        assert bench.history_mean({"t1": results["t1"], "t4": {"d": 0.9}}, ["d"]) == {"d": 0.0}


def test_versus_counts_wins_losses_ties_against_the_baseline_and_noise_ceiling():
    def r(tau):
        return {"weighted_tau": tau}
    rows = {"x": {"history-mean": r(0.5), "m": r(0.7)}, "y": {"history-mean": r(0.5), "m": r(0.3)},
            "z": {"history-mean": r(0.5), "m": r(0.5002)}, "w": {"history-mean": r(0.5), "m": r(None)}}
    vs = bench._versus(rows)["m"]
    assert (vs["wins"], vs["losses"], vs["ties"], vs["targets"]) == (1, 1, 1, 3)
    assert vs["mean_diff"] == pytest.approx((0.2 - 0.2 + 0.0002) / 3)
    assert vs["below"] == ["y"]
    truth = {f"m{i}": 0.1 * i for i in range(6)}
    assert bench._noise_ceiling({m: v + 0.01 for m, v in truth.items()}, truth)["weighted_tau"] == pytest.approx(1.0)
    assert bench._noise_ceiling({"m0": 0.1, "m1": 0.2}, truth) is None  # too few repeated models


def test_metric_ensemble_is_the_mean_z_score_and_ignores_failures():
    scores = {"a": {"x": 1.0, "y": 10.0}, "b": {"x": 2.0, "y": None}, "c": {"x": 3.0, "y": 30.0}}
    ens = bench._ensemble(scores, ["x", "y"])
    # z(x) = (-1.22, 0, 1.22); z(y) over a and c only = (-1, 1); b's failed y counts as 0
    assert ens["a"] == pytest.approx((-1.2247 - 1) / 2, abs=1e-3)
    assert ens["b"] == pytest.approx(0.0)
    assert ens["c"] == pytest.approx((1.2247 + 1) / 2, abs=1e-3)
    tau = {"t1": {"x": 0.5, "y": 0.7, "z": 0.1}, "t2": {"x": 0.6, "y": 0.6, "z": None}}
    assert bench._inner_metrics(tau, ["t1", "t2"], ["x", "y", "z"], k=2) == ["y", "x"]


def test_score_cache_recomputes_changed_metrics_and_failures(zoo_env, monkeypatch):
    data = bench.load_zoo_data(max_samples=12)
    scores, _, _, errors = bench.score_zoo(data, ["logme"])
    path = zoo_env / "cache" / "bench" / "scores.json"
    cache = json.loads(path.read_text())
    assert all(e["code"]["logme"] == bench._metric_code("logme") for e in cache.values())

    monkeypatch.setattr(bench, "_metric_code", lambda name: "changed-code")  # a new version of the metric
    again, _, _, _ = bench.score_zoo(data, ["logme"])
    cache = json.loads(path.read_text())
    assert all(e["code"]["logme"] == "changed-code" for e in cache.values())
    assert again == scores  # same code path, same numbers

    # a failure is reported with its message and recomputed next time, not served from the cache
    key = next(iter(cache))
    cache[key]["metrics"]["logme"] = None
    cache[key]["errors"] = {"logme": "RuntimeError: boom"}
    path.write_text(json.dumps(cache))
    third, _, _, errors = bench.score_zoo(data, ["logme"])
    assert third == scores and all(not e for row in errors.values() for e in row.values())


def test_history_curve_at_the_full_history_is_the_benchmarks_leave_one_out(zoo_env):
    from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC, DEFAULT_PLACEMENT_STRENGTH

    data = bench.load_zoo_data(max_samples=12)
    scores, _, _, _ = bench.score_zoo(data, [DEFAULT_METRIC])
    rows = bench.history_curve(data, scores, sizes=[len(TASKS) - 1], repeats=3)
    assert [(r["target"], r["size"], r["draw"]) for r in rows] == [(t, 2, 0) for t in sorted(TASKS)]
    for r in rows:
        t, truth = r["target"], TRUTH[r["target"]]
        assert r["train"] == sorted(x for x in TASKS if x != t)
        space = bench._fit_space(data, r["train"])
        assert r["fennec-index"] == bench._evaluate(bench._index_scores(space, data, t)[0], truth)["weighted_tau"]
        assert r["history-mean"] == bench._evaluate(
            bench.history_mean({x: TRUTH[x] for x in r["train"]}, data.models), truth)["weighted_tau"]
        placed = bench._placed_scores(bench._prior(space, data, t), scores[t], [DEFAULT_METRIC],
                                      bench.HEADLINE_CANDIDATES, DEFAULT_FUSION_WEIGHT, DEFAULT_PLACEMENT_STRENGTH)
        assert r["fennec-refine"] == bench._evaluate(placed, truth)["weighted_tau"]
        oracle = bench._oracle_placement(bench._prior(space, data, t), truth)
        assert r[bench.ORACLE_PLACEMENT] == bench._evaluate(oracle, truth)["weighted_tau"]
        crossed = bench._oracle_placement(bench._prior(space, data, t), truth, cross_fitted=True)
        assert r[bench.ORACLE_CROSS_FITTED] == bench._evaluate(crossed, truth)["weighted_tau"]
    for sizes, repeats, match in (([1], 1, "must each lie in"), ([3], 1, "must each lie in"), ([], 1, "must each"),
                                  ([2], 0, "repeats")):
        with pytest.raises(InvalidInputError, match=match):
            bench.history_curve(data, scores, sizes=sizes, repeats=repeats)


def test_history_folds_draw_k_other_targets_per_repeat_and_the_full_history_once():
    targets = [f"t{i}" for i in range(6)]
    folds = bench._history_folds(targets, [2, 4, 5, 2], repeats=3, seed=1)
    assert len(folds) == 6 * (3 + 3 + 1)  # sizes deduplicated; the full size (5 others) drawn once
    for t, k, _, train in folds:
        assert len(train) == k == len(set(train)) and t not in train and set(train) <= set(targets)
    assert {tuple(f[3]) for f in folds if f[0] == "t0" and f[1] == 2} != {("t1", "t2")}  # draws differ
    assert folds == bench._history_folds(targets, [2, 4, 5], repeats=3, seed=1)  # seeded
    assert folds != bench._history_folds(targets, [2, 4, 5], repeats=3, seed=2)


def test_summarise_curve_pairs_each_method_with_the_baseline_per_target():
    rows = [{"target": "a", "size": 2, "history-mean": 0.5, "fennec-index": 0.6},
            {"target": "a", "size": 2, "history-mean": 0.7, "fennec-index": 0.6},   # a: means 0.6 / 0.6
            {"target": "b", "size": 2, "history-mean": 0.2, "fennec-index": 0.5},   # b: +0.3
            {"target": "c", "size": 2, "history-mean": 0.4, "fennec-index": None},  # c: index failed
            {"target": "a", "size": 4, "history-mean": 0.1, "fennec-index": 0.0}]
    two, four = bench.summarise_curve(rows, ["fennec-index"])
    assert two["size"] == 2 and two["targets"] == 3
    assert two["history-mean"] == pytest.approx((0.6 + 0.2 + 0.4) / 3)
    assert two["fennec-index"] == pytest.approx((0.6 + 0.5) / 2)
    assert two["fennec-index - history-mean"] == pytest.approx(0.15)
    assert two["fennec-index - history-mean s.e."] == pytest.approx(np.std([0.0, 0.3], ddof=1) / math.sqrt(2))
    assert two["fennec-index above/below"] == [1, 0]
    assert four["fennec-index above/below"] == [0, 1] and four["fennec-index - history-mean s.e."] is None


def test_oracle_placement_recovers_the_task_vector_that_produced_the_results():
    from fennec.space import TransferSpace, normalise_results

    rng = np.random.default_rng(3)
    models = [f"m{i:02d}" for i in range(10)]
    space = TransferSpace(dim=2).fit({f"t{j}": {m: float(rng.normal()) for m in models} for j in range(4)})
    u, v = rng.normal(size=(10, 3)), np.array([0.5, -1.0, 2.0])
    s = u @ v + rng.normal(size=10)
    z_s = (s - s.mean()) / s.std()
    vectors = np.hstack([u, (z_s - u @ v)[:, None]])  # [u, b] with u·v + b = z-scored results exactly
    prior = bench._Prior(space, models, vectors, np.array([0.0, 0.0, 0.0, 1.0]))
    truth = dict(zip(models, 0.6 + 0.05 * z_s, strict=True))
    scores = bench._oracle_placement(prior, truth)
    z = normalise_results({"t": truth}, method="zscore")["t"]
    assert [scores[m] for m in models] == pytest.approx([z[m] for m in models])  # v recovered exactly
    assert bench._evaluate(scores, truth)["weighted_tau"] == pytest.approx(1.0)
    # the placement's own task vector ranks worse: the bound is above it
    assert bench._evaluate(dict(zip(models, vectors @ prior.task, strict=True)), truth)["weighted_tau"] < 0.99
    # models without a result are scored too, from the same vector
    partial = {m: a for m, a in truth.items() if m not in ("m00", "m01")}
    assert set(bench._oracle_placement(prior, partial)) == set(models)


def test_cross_fitted_oracle_scores_each_model_without_its_own_result():
    from fennec.space import TransferSpace, normalise_results

    rng = np.random.default_rng(4)
    models = [f"m{i:02d}" for i in range(12)]
    space = TransferSpace(dim=2).fit({f"t{j}": {m: float(rng.normal()) for m in models} for j in range(4)})
    vectors = np.hstack([rng.normal(size=(12, 3)), rng.normal(size=(12, 1))])
    prior = bench._Prior(space, models, vectors, np.array([0.0, 0.0, 0.0, 1.0]))
    truth = {m: float(a) for m, a in zip(models, 0.5 + 0.1 * rng.normal(size=12), strict=True)}
    crossed = bench._oracle_placement(prior, truth, cross_fitted=True)
    z = normalise_results({"t": truth}, method="zscore")["t"]
    u, b = vectors[:, :-1], vectors[:, -1]
    for i, m in enumerate(models):  # brute force: the vector fitted without model i
        others = [k for k in range(12) if k != i]
        v = np.linalg.lstsq(u[others], np.array([z[models[k]] for k in others]) - b[others], rcond=None)[0]
        assert crossed[m] == pytest.approx(float(u[i] @ v + b[i]))
    # results the space fits exactly (u·v + b equal to their z-scores): leaving one out changes nothing
    s = u @ np.array([0.5, -1.0, 2.0]) + rng.normal(size=12)
    z_s = (s - s.mean()) / s.std()
    exact_prior = bench._Prior(space, models, np.hstack([u, (z_s - u @ np.array([0.5, -1.0, 2.0]))[:, None]]),
                               prior.task)
    exact = dict(zip(models, 0.6 + 0.05 * z_s, strict=True))
    assert ([bench._oracle_placement(exact_prior, exact, cross_fitted=True)[m] for m in models]
            == pytest.approx([z_s[i] for i in range(12)]))
