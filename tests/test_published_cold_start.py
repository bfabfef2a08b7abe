"""The published-tables cold-start harness (benchmark/published_cold_start.py) on tiny synthetic tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmark"))

import published_cold_start as pcs
from fennec.errors import InvalidInputError
from fennec.space import ModelSide

CONFIG = pcs.Config(dim=2, warm=True)


def _table(n_models: int = 10, n_tasks: int = 5, seed: int = 0):
    """Accuracy = a function of the architecture vector (+ small noise); metadata is noise."""
    rng = np.random.default_rng(seed)
    arch = rng.normal(size=(n_models, 4))
    arch[:, 0] *= 6.0  # the main direction of variation (archi2vec's first PCA component) ...
    quality = arch[:, 0]  # ... is what makes a model good
    arch /= np.linalg.norm(arch, axis=1, keepdims=True)
    results = {f"t{j}": {f"m{i}": float(0.6 + 0.05 * quality[i] + 0.002 * rng.normal() + 0.03 * j)
                         for i in range(n_models)} for j in range(n_tasks)}
    sides = {f"m{i}": ModelSide(f"m{i}", archi2vec=arch[i], parameters=int(1e6),
                                family=["a", "b"][int(rng.integers(2))], pretraining="imagenet-1k")
             for i in range(n_models)}
    return results, sides


def test_held_out_model_never_sees_its_own_results():
    results, sides = _table(n_models=6, n_tasks=3)
    before = pcs.cold_predictions(results, sides, config=CONFIG)
    changed = {t: {m: (v if m != "m3" else 100.0 * (j + 1)) for m, v in row.items()}
               for j, (t, row) in enumerate(results.items())}
    after = pcs.cold_predictions(changed, sides, config=CONFIG)
    for placement in pcs.COLD:
        assert after[placement]["m3"] == before[placement]["m3"]
    for placement in ("archi2vec+metadata", "metadata"):  # others do see m3's history
        assert after[placement]["m0"] != before[placement]["m0"]


def test_architecture_signal_is_recovered_and_beats_the_baselines():
    results, sides = _table()
    out = pcs.run_table(results, sides, config=pcs.Config(dim=2, max_folds=5, diagnostic=False))
    s = out["summary"]
    assert out["models"] == 10 and out["tasks"] == 5 and out["distinct_architectures"] == 10
    assert s["archi2vec+metadata"]["weighted_tau"] > 0.4
    assert s["archi2vec+metadata"]["weighted_tau"] > s["metadata"]["weighted_tau"] + 0.3
    assert s["archi2vec+metadata"]["top1_regret"] <= s["uninformed"]["top1_regret"]
    assert out["archi2vec_vs_metadata"]["weighted_tau"]["better"] >= 4
    assert len(out["per_task"]["warm"]) == 5 and len(out["per_task"][pcs.WARM_STRONG]) == 5
    assert s["uninformed"]["weighted_tau"] is None  # every held-out model gets the same score
    assert out["regret_unit"] == "percentage points"


def test_folds_hold_out_every_model_exactly_once():
    models = [f"m{i}" for i in range(23)]
    folds = pcs.model_folds(models, 5, seed=3)
    assert len(folds) == 5 and sorted(m for f in folds for m in f) == sorted(models)
    assert folds == pcs.model_folds(models, 5, seed=3)  # seeded
    assert pcs.model_folds(models[:4], 5) == [[m] for m in models[:4]]  # leave one out


def test_warm_reference_predicts_every_observed_cell_once():
    results, sides = _table(n_models=6, n_tasks=3)
    del results["t1"]["m2"]  # a missing cell is never predicted
    warm = pcs.warm_predictions(results, sides, config=CONFIG)
    predicted = {(m, t) for m, row in warm.items() for t in row}
    observed = {(m, t) for t, row in results.items() for m in row}
    assert predicted == observed


def test_evaluate_rows_and_undefined_correlations():
    results = {"t": {"a": 0.7, "b": 0.9, "c": 0.5}, "small": {"a": 0.1, "b": 0.2}}
    pred = {"a": {"t": 1.0, "small": 0.0}, "b": {"t": 1.0, "small": 1.0}, "c": {"t": 1.0}}
    rows = pcs.evaluate(pred, results, min_models=3, scale=100.0)
    assert [r["task"] for r in rows] == ["t"]  # "small" has 2 models
    assert rows[0]["weighted_tau"] is None and rows[0]["kendall_tau"] is None  # constant
    assert rows[0]["constant_prediction"]
    assert rows[0]["top1_regret"] == pytest.approx(20.0)  # random pick: 0.9 - mean 0.7
    summary = pcs.summarise(rows)
    assert summary["weighted_tau"] is None and summary["top1_regret"] == pytest.approx(20.0)
    noisy = {"a": {"t": 1e-17}, "b": {"t": -1e-17}, "c": {"t": 0.0}}  # float noise = ties
    assert pcs.evaluate(noisy, results, min_models=3)[0]["constant_prediction"]
    tied = {"a": {"t": 1.0}, "b": {"t": 0.0}, "c": {"t": 1.0}}  # a and c tie at the top
    row = pcs.evaluate(tied, results, min_models=3, scale=100.0)[0]
    assert not row["constant_prediction"] and row["top1_regret"] == pytest.approx(40.0)  # against
    assert pcs.percent_scale(results) == 100.0 and pcs.percent_scale({"t": {"a": 70.0}}) == 1.0


def test_paired_counts_respect_the_direction_of_each_statistic():
    a = [{"task": "x", "weighted_tau": 0.5, "top1_regret": 1.0},
         {"task": "y", "weighted_tau": 0.1, "top1_regret": 0.0}]
    b = [{"task": "x", "weighted_tau": 0.2, "top1_regret": 2.0},
         {"task": "y", "weighted_tau": 0.1, "top1_regret": 3.0}]
    assert pcs.paired(a, b, "weighted_tau") == {"better": 1, "tie": 1, "worse": 0}
    assert pcs.paired(a, b, "top1_regret") == {"better": 2, "tie": 0, "worse": 0}


def test_model_without_side_information_is_an_error():
    results, sides = _table(n_models=5, n_tasks=2)
    del sides["m1"]
    with pytest.raises(InvalidInputError, match="no side information"):
        pcs.cold_predictions(results, sides, config=CONFIG)


def test_model_sides_from_published_rows():
    rows = {"x": {"archi2vec": [0.6, 0.8], "parameters": 10, "family": "vit", "pretraining": "a,b"},
            "y": {"archi2vec": None, "parameters": None, "family": None, "pretraining": None}}
    sides = pcs.model_sides(rows)
    assert sides["x"].archi2vec.tolist() == [0.6, 0.8] and sides["x"].parameters == 10
    assert sides["y"].archi2vec is None and sides["y"].parameters is None


def test_diagnostic_projection_is_fitted_on_training_models_only():
    _, sides = _table(n_models=6)
    train = ["m0", "m1", "m2", "m3"]
    before = pcs.project_archi2vec(sides, train, 2)
    moved = dict(sides, m5=ModelSide("m5", archi2vec=np.full(4, 9.0)))
    after = pcs.project_archi2vec(moved, train, 2)
    assert before["m5"].archi2vec.shape == (2,)
    for m in train:
        np.testing.assert_array_equal(after[m].archi2vec, before[m].archi2vec)
    assert not np.array_equal(after["m5"].archi2vec, before["m5"].archi2vec)


def test_centring_removes_the_fold_offset_on_tables_with_missing_cells():
    results, sides = _table(n_models=8, n_tasks=4)
    for j, task in enumerate(sorted(results)):  # each task misses two models
        del results[task][f"m{2 * j}"], results[task][f"m{2 * j + 1}"]
    centred = pcs.cold_predictions(results, sides, config=pcs.Config(dim=2, diagnostic=False))
    values = {round(v, 9) for row in centred["uninformed"].values() for v in row.values()}
    assert values == {0.0}
    raw = pcs.cold_predictions(results, sides, config=pcs.Config(dim=2, diagnostic=False, centre=False))
    assert len({round(v, 9) for row in raw["uninformed"].values() for v in row.values()}) > 1


def test_card_placements_move_only_models_with_a_base_in_the_fold():
    results, sides = _table(n_models=6, n_tasks=3)
    sides["m1"] = pcs.dataclasses.replace(sides["m1"], base_models=("m0",))
    out = pcs.cold_predictions(results, sides, config=pcs.Config(dim=2, diagnostic=False))
    assert out[pcs.card_key(0.0)] == out["archi2vec+metadata"]  # w = 0: the side placement
    for m in ("m0", "m2", "m3"):
        assert out[pcs.card_key(1.0)][m] == out["archi2vec+metadata"][m]
    assert out[pcs.card_key(1.0)]["m1"] != out["archi2vec+metadata"]["m1"]
    # without base models the standard placements do not change, and there are no card rows
    plain = {m: pcs.dataclasses.replace(s, base_models=()) for m, s in sides.items()}
    out_plain = pcs.cold_predictions(results, plain, config=pcs.Config(dim=2, diagnostic=False))
    assert out_plain["archi2vec+metadata"] == out["archi2vec+metadata"]
    assert pcs.card_key(1.0) not in out_plain


def test_the_card_weight_of_a_table_is_chosen_on_the_other_tables():
    def table(best: float) -> dict:
        summary = {pcs.card_key(w): {"weighted_tau": -abs(w - best)} for w in pcs.BASE_WEIGHTS}
        summary["archi2vec+metadata"] = {"weighted_tau": -1.0}
        per_task = {p: [{"task": "t", "weighted_tau": v["weighted_tau"], "top1_regret": 0.0}]
                    for p, v in summary.items()}
        return {"models_with_base": 3, "summary": summary, "per_task": per_task}

    tables = {"a": table(0.25), "b": table(0.75), "c": table(0.75), "none": {"summary": {}, "per_task": {}}}
    assert pcs.choose_base_weights(tables) == 0.75
    assert tables["a"]["card_base_weight"] == 0.75  # from b and c, never from a itself
    # b from a and c (and c from a and b): 0.25, 0.5 and 0.75 tie at -0.25; ties take the smaller weight
    assert tables["b"]["card_base_weight"] == 0.25 and tables["c"]["card_base_weight"] == 0.25
    assert tables["a"]["summary"][pcs.CARD] == tables["a"]["summary"][pcs.card_key(0.75)]
    assert tables["none"]["summary"][pcs.CARD] is None and tables["none"]["card_base_weight"] is None
