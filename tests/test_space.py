"""Tests of fennec.space: the transfer space and the Fennec-paper baseline, on seeded synthetic data."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.stats

from fennec.errors import FallbackWarning, FennecWarning, InvalidInputError, NotFittedError, SpaceVersionError
from fennec.space import (
    SPACE_VERSION,
    ModelSide,
    TaskSide,
    TransferSpace,
    normalise_results,
)
from fennec.space.baseline import FennecBaseline

FAMILIES = ("resnet", "vit", "convnext", "swin")
SOURCES = ("glyphs", "photos", "shapes", "textures")


def _results(y: np.ndarray, mask: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """``{task: {model: value}}`` from an ``(M, T)`` matrix, ids zero-padded so sorting keeps the order."""
    m, t = y.shape
    mask = np.ones_like(y, dtype=bool) if mask is None else mask
    return {f"t{j:02d}": {f"m{i:03d}": float(y[i, j]) for i in range(m) if mask[i, j]} for j in range(t)}


def _zscore(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    obs = np.where(mask, y, np.nan)
    return (y - np.nanmean(obs, axis=0)) / np.nanstd(obs, axis=0)


def _side_world(n_models: int = 40, n_tasks: int = 8, dim: int = 2, seed: int = 0, noise: float = 0.05):
    """Models whose transfer vectors are a linear function of their side features.

    Returns (results, sides, truth (M, T), task factors (T, dim)).
    """
    rng = np.random.default_rng(seed)
    a2v = rng.normal(size=(n_models, 12))
    fam = rng.integers(0, len(FAMILIES), n_models)
    src = rng.integers(0, len(SOURCES), n_models)
    params = (10 ** rng.uniform(5, 7, n_models)).astype(int)
    feats = np.hstack([a2v, np.eye(len(FAMILIES))[fam], np.eye(len(SOURCES))[src], np.log10(params)[:, None] - 6])
    w = rng.normal(size=(feats.shape[1], dim + 1)) / np.sqrt(feats.shape[1]) * 2
    u1 = feats @ w  # (M, dim+1): [u, b]
    v = rng.normal(size=(n_tasks, dim))
    y = u1[:, :dim] @ v.T + u1[:, dim:] + noise * rng.normal(size=(n_models, n_tasks))
    sides = {f"m{i:03d}": ModelSide(f"m{i:03d}", archi2vec=a2v[i], parameters=int(params[i]),
                                    family=FAMILIES[fam[i]], pretraining=SOURCES[src[i]])
             for i in range(n_models)}
    return _results(y), sides, y, v


def _without(results, model):
    return {t: {m: v for m, v in row.items() if m != model} for t, row in results.items()}


# ---------------------------------------------------------------------------------------
# normalise_results
# ---------------------------------------------------------------------------------------


def test_normalise_zscore_maths():
    out = normalise_results({"t": {"a": 1.0, "b": 2.0, "c": 3.0}, "u": {"a": 5.0, "b": 5.0}})
    s = np.sqrt(2 / 3)
    assert out["t"] == pytest.approx({"a": -1 / s, "b": 0.0, "c": 1 / s})
    assert out["u"] == {"a": 0.0, "b": 0.0}  # std 0 -> zeros
    # equal floats whose mean is not exactly representable (std 5.6e-17, not 0) tie too
    assert normalise_results({"v": {"a": 0.4, "b": 0.4, "c": 0.4}})["v"] == {"a": 0.0, "b": 0.0, "c": 0.0}


def test_normalise_rank_and_minmax():
    res = {"t": {"a": 0.1, "b": 0.3, "c": 0.3, "d": 0.9}}
    assert normalise_results(res, method="rank")["t"] == pytest.approx({"a": -1, "b": 0, "c": 0, "d": 1})
    assert normalise_results(res, method="minmax")["t"] == pytest.approx({"a": 0, "b": 0.25, "c": 0.25, "d": 1})
    assert normalise_results({"t": {"a": 2.0, "b": 2.0}}, method="minmax")["t"] == {"a": 0.5, "b": 0.5}


def test_normalise_drops_single_model_tasks_with_a_warning():
    with pytest.warns(FennecWarning, match="fewer than 2 models"):
        out = normalise_results({"t": {"a": 1.0, "b": 2.0}, "lonely": {"a": 1.0}})
    assert set(out) == {"t"}
    with pytest.warns(FennecWarning), pytest.raises(InvalidInputError, match="at least 2 models"):
        normalise_results({"lonely": {"a": 1.0}})


@pytest.mark.parametrize("bad, match", [
    ({}, "empty"),
    ({"t": {}}, "empty"),
    ([1, 2], "mapping"),
    ({"t": {"a": float("nan"), "b": 1.0}}, "not finite"),
    ({"t": {"a": "x", "b": 1.0}}, "not a number"),
    ({"t": [0.1, 0.2]}, "expected a mapping"),
])
def test_normalise_rejects_bad_results(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        normalise_results(bad)


def test_normalise_rejects_unknown_method():
    with pytest.raises(InvalidInputError, match="zscore"):
        normalise_results({"t": {"a": 1.0, "b": 2.0}}, method="softmax")


# ---------------------------------------------------------------------------------------
# TransferSpace: fitting
# ---------------------------------------------------------------------------------------


def test_recovers_planted_low_rank_structure_on_held_out_cells():
    rng = np.random.default_rng(3)
    m, t, r = 60, 12, 3
    y = rng.normal(size=(m, r)) @ rng.normal(size=(t, r)).T + rng.normal(size=(m, 1)) + 0.2 * rng.normal(size=(m, t))
    mask = rng.random((m, t)) < 0.6
    space = TransferSpace(dim=3).fit(_results(y, mask))
    pred = space.model_vectors_ @ space.task_vectors_.T  # ids are sorted = matrix order
    truth = _zscore(y, mask)
    model_mean = np.nanmean(np.where(mask, truth, np.nan), axis=1, keepdims=True) + 0 * truth
    corr = np.corrcoef(pred[~mask], truth[~mask])[0, 1]
    corr_mean = np.corrcoef(model_mean[~mask], truth[~mask])[0, 1]
    assert corr > 0.9
    assert corr > corr_mean + 0.2
    assert space.model_vectors_.shape == (m, 4) and space.task_vectors_.shape == (t, 4)
    assert np.all(space.task_vectors_[:, -1] == 1.0)
    assert 1 <= space.n_iter_ < 200 and np.isfinite(space.loss_)


def test_fit_is_deterministic():
    results, sides, _, _ = _side_world()
    a = TransferSpace(dim=4, seed=7).fit(results, sides)
    b = TransferSpace(dim=4, seed=7).fit(results, sides)
    assert np.array_equal(a.model_vectors_, b.model_vectors_)
    assert np.array_equal(a.task_vectors_, b.task_vectors_)
    assert np.array_equal(a.side_map_, b.side_map_)
    new = [ModelSide("new", archi2vec=np.ones(12), parameters=10**6, family="vit", pretraining="shapes")]
    assert np.array_equal(a.model_vectors(new), b.model_vectors(new))


def test_dimensions_beyond_the_rank_use_the_seed():
    rng = np.random.default_rng(0)
    results = _results(rng.normal(size=(6, 3)))  # rank <= 3 < dim + ...
    a = TransferSpace(dim=5, seed=0).fit(results)
    b = TransferSpace(dim=5, seed=1).fit(results)
    assert not np.array_equal(a.model_vectors_, b.model_vectors_)


def test_cold_start_from_side_information_beats_no_side_information():
    results, sides, y, _ = _side_world(n_models=40, n_tasks=8)
    with_side, without = [], []
    for i in range(0, 40, 4):
        model = f"m{i:03d}"
        rest = _without(results, model)
        space = TransferSpace(dim=2).fit(rest, {k: s for k, s in sides.items() if k != model})
        vec = space.model_vectors([sides[model]])[0]
        with_side.append(scipy.stats.spearmanr(space.task_vectors_ @ vec, y[i]).statistic)
        # the same model's within-task position: its score vs the others', per task
        plain = TransferSpace(dim=2).fit(rest)
        with pytest.warns(FallbackWarning, match="without model side information"):
            vec0 = plain.model_vectors([sides[model]])[0]
        without.append(scipy.stats.spearmanr(plain.task_vectors_ @ vec0, y[i]).statistic)
    assert np.mean(with_side) > 0.5
    assert np.mean(with_side) > np.mean(without) + 0.3


def test_cold_start_ranks_the_new_model_among_the_known_ones():
    results, sides, y, _ = _side_world(n_models=40, n_tasks=8, seed=1)
    model = "m005"
    space = TransferSpace(dim=2).fit(_without(results, model), {k: s for k, s in sides.items() if k != model})
    others = [m for m in space.model_ids_]
    vectors = space.model_vectors(others + [sides[model]])
    truth_ids = [int(m[1:]) for m in others] + [5]
    for j, task in enumerate(space.task_ids_):
        scores = space.score(vectors, space.task_vector_of(task))
        assert scipy.stats.spearmanr(scores, y[truth_ids, j]).statistic > 0.8


def test_use_archi2vec_false_changes_the_side_features():
    results, sides, _, _ = _side_world()
    on = TransferSpace(dim=2).fit(results, sides)
    off = TransferSpace(dim=2, use_archi2vec=False).fit(results, sides)
    assert any(n.startswith("archi2vec_pc") for n in on.side_feature_names_)
    assert not any(n.startswith("archi2vec_pc") for n in off.side_feature_names_)
    assert "log10_params" in off.side_feature_names_ and "family=vit" in off.side_feature_names_
    assert "pretraining=shapes" in off.side_feature_names_
    new = [ModelSide("new", archi2vec=np.full(12, 0.5), parameters=10**6, family="vit", pretraining="shapes")]
    assert not np.allclose(on.model_vectors(new), off.model_vectors(new))


def test_side_penalty_is_chosen_by_leave_one_model_out():
    results, sides, _, _ = _side_world()
    informative = TransferSpace(dim=2).fit(results, sides)
    rng = np.random.default_rng(10)
    noise = {k: ModelSide(k, archi2vec=rng.normal(size=12), parameters=int(10 ** rng.uniform(5, 7)),
                          family=FAMILIES[rng.integers(4)]) for k in sides}
    shuffled = TransferSpace(dim=2).fit(results, noise)
    assert informative.side_alpha_ < shuffled.side_alpha_  # noise features are shrunk away
    fixed = TransferSpace(dim=2, side_alpha=3.0).fit(results, sides)
    assert fixed.side_alpha_ == 3.0
    assert not np.allclose(fixed.side_map_, informative.side_map_)


def test_pretraining_is_multi_hot_and_unknown_labels_are_ignored():
    results, sides, _, _ = _side_world()
    space = TransferSpace(dim=2, use_archi2vec=False).fit(results, sides)
    both = space.model_vectors([ModelSide("x", family="vit", pretraining="Glyphs, shapes")])
    unknown = space.model_vectors([ModelSide("y", family="vit", pretraining="never-seen")])
    nothing = space.model_vectors([ModelSide("z", family="vit")])
    assert not np.allclose(both, nothing)
    assert np.allclose(unknown, nothing)


def test_side_weight_zero_still_places_new_models():
    results, sides, y, _ = _side_world(seed=2)
    rhos = []
    for i in range(0, 40, 5):
        model = f"m{i:03d}"
        space = TransferSpace(dim=2, side_weight=0.0).fit(_without(results, model),
                                                           {k: s for k, s in sides.items() if k != model})
        vec = space.model_vectors([sides[model]])[0]
        rhos.append(scipy.stats.spearmanr(space.task_vectors_ @ vec, y[i]).statistic)
    assert np.mean(rhos) > 0.5


# ---------------------------------------------------------------------------------------
# TransferSpace: new tasks from descriptors
# ---------------------------------------------------------------------------------------


def _descriptor_world(seed: int = 0, n_tasks: int = 10):
    """Tasks whose descriptors determine their vectors (v = descriptor · B)."""
    rng = np.random.default_rng(seed)
    desc = rng.normal(size=(n_tasks, 16))
    v = desc @ rng.normal(size=(16, 2)) / 4
    u = rng.normal(size=(30, 2))
    y = u @ v.T + 0.05 * rng.normal(size=(30, n_tasks))
    tasks = {f"t{j:02d}": TaskSide(f"t{j:02d}", descriptor=desc[j], n_classes=10, n_samples=500)
             for j in range(n_tasks)}
    return _results(y), tasks, desc, u, rng


def test_new_task_close_to_a_known_task_names_it_first():
    results, tasks, desc, _, rng = _descriptor_world()
    space = TransferSpace(dim=2, n_neighbors=3).fit(results, tasks=tasks)
    vector, neighbours = space.task_vector(desc[4] + 0.01 * rng.normal(size=16))
    assert neighbours[0][0] == "t04"
    assert len(neighbours) <= 3 and vector.shape == (3,) and vector[-1] == 1.0
    weights = [w for _, w in neighbours]
    assert weights == sorted(weights, reverse=True)
    if space.task_predictor_["kind"] == "knn":  # shrinkage spreads 1 - s (s ≈ 1 here) over every known task
        assert sum(weights) <= 1.0 + 1e-9 and sum(weights) == pytest.approx(1.0, abs=1e-3)
    scores = space.score(space.model_vectors_, vector)
    truth = space.score(space.model_vectors_, space.task_vector_of("t04"))
    assert scipy.stats.spearmanr(scores, truth).statistic > 0.9


def test_task_predictor_is_chosen_by_leave_one_task_out():
    results, tasks, _, _, _ = _descriptor_world(n_tasks=12)
    space = TransferSpace(dim=2).fit(results, tasks=tasks)
    scores = space.task_predictor_scores_
    assert {"mean:0", "knn:0.1", "ridge:1"} <= set(scores)
    best = f"{space.task_predictor_['kind']}:{space.task_predictor_['param']:g}"
    assert scores[best] == max(scores.values())
    assert best != "mean:0"  # the descriptors carry the task vectors here
    assert scores[best] > scores["mean:0"]


def test_without_descriptors_a_new_task_gets_the_mean_task_with_a_warning():
    results, _, _, _, _ = _descriptor_world()
    space = TransferSpace(dim=2).fit(results)
    assert space.task_predictor_ is None
    with pytest.warns(FallbackWarning, match="mean historical task"):
        vector, neighbours = space.task_vector(np.zeros(16))
    expected = space.task_vectors_.mean(axis=0)
    expected[-1] = 1.0
    np.testing.assert_allclose(vector, expected)
    assert neighbours == []


def test_a_new_task_is_pulled_toward_the_mean_task_by_its_nearest_known_tasks_dissimilarity(tmp_path):
    results, tasks, desc, _, rng = _descriptor_world()
    space = TransferSpace(dim=2).fit(results, tasks=tasks)
    plain = TransferSpace(dim=2, shrink=False).fit(results, tasks=tasks)
    assert space.shrink and space.task_predictor_ == plain.task_predictor_  # the fit is the same
    mean_task = space.task_vectors_.mean(axis=0)
    mean_task[-1] = 1.0
    centre, scale = desc.mean(axis=0), desc.std(axis=0)
    z_known = (desc - centre) / scale
    # a known task's own descriptor (similarity 1) keeps its placement
    np.testing.assert_allclose(space.task_vector(desc[4])[0], plain.task_vector(desc[4])[0], atol=1e-9)
    # a descriptor orthogonal to every known one (similarity 0) gets the mean task: the history's overall ranking
    null = np.linalg.svd(z_known)[2][-1]  # 10 known tasks in 16 dimensions: a direction none of them has
    far = centre + scale * null * 5
    np.testing.assert_allclose(space.task_vector(far)[0], mean_task, atol=1e-9)
    assert not np.allclose(plain.task_vector(far)[0], mean_task)
    # in between: s * the predictor's vector + (1 - s) * the mean task, s = cosine to the nearest known task
    query = desc[2] + 0.8 * rng.normal(size=16) * scale
    z = (query - centre) / scale
    s = float(np.max(z_known @ z / (np.linalg.norm(z_known, axis=1) * np.linalg.norm(z))))
    assert 0 < s < 1
    np.testing.assert_allclose(space.task_vector(query)[0], s * plain.task_vector(query)[0] + (1 - s) * mean_task,
                               atol=1e-9)
    assert TransferSpace.load(plain.save(tmp_path / "plain.npz")).shrink is False
    with pytest.raises(InvalidInputError, match="shrink"):
        TransferSpace(shrink="yes").fit(results, tasks=tasks)


def test_tasks_without_descriptors_shape_the_models_but_are_never_neighbours(tmp_path):
    results, tasks, _, _, _ = _descriptor_world()
    partial = dict(tasks, t03=TaskSide("t03"))
    space = TransferSpace(dim=2).fit(results, tasks=partial)
    assert "t03" in space.task_ids_
    _, neighbours = space.task_vector(tasks["t03"].descriptor)
    assert neighbours and "t03" not in [t for t, _ in neighbours]
    # a described task still finds itself first
    assert space.task_vector(tasks["t04"].descriptor)[1][0][0] == "t04"
    back = TransferSpace.load(space.save(tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.task_vector(tasks["t05"].descriptor)[0],
                                  space.task_vector(tasks["t05"].descriptor)[0])


def test_task_descriptor_errors():
    results, tasks, _, _, _ = _descriptor_world()
    mixed = dict(tasks, t03=TaskSide("t03", descriptor=np.zeros(8)))
    with pytest.raises(InvalidInputError, match="dimension 8, expected 16"):
        TransferSpace(dim=2).fit(results, tasks=mixed)
    space = TransferSpace(dim=2).fit(results, tasks=tasks)
    with pytest.raises(InvalidInputError, match="dimension 5, expected 16"):
        space.task_vector(np.zeros(5))
    with pytest.raises(InvalidInputError, match="NaN"):
        space.task_vector(np.full(16, np.nan))
    with pytest.raises(InvalidInputError, match="key and the id"):
        TransferSpace(dim=2).fit(results, tasks={"t00": TaskSide("other", descriptor=np.zeros(16))})


# ---------------------------------------------------------------------------------------
# TransferSpace: queries, errors, persistence
# ---------------------------------------------------------------------------------------


def test_query_errors():
    results, sides, _, _ = _side_world()
    with pytest.raises(NotFittedError):
        TransferSpace().model_vectors(["m000"])
    space = TransferSpace(dim=2).fit(results, sides)
    with pytest.raises(InvalidInputError, match="cold start"):
        space.model_vectors(["nobody"])
    with pytest.raises(InvalidInputError, match="wrap one in a list"):
        space.model_vectors("m000")
    with pytest.raises(InvalidInputError, match="dimension 3, expected 12"):
        space.model_vectors([ModelSide("new", archi2vec=np.zeros(3))])
    with pytest.raises(InvalidInputError, match="positive integer"):
        space.model_vectors([ModelSide("new", parameters=-5)])
    with pytest.raises(InvalidInputError, match="not in the transfer space"):
        space.task_vector_of("t99")
    with pytest.raises(InvalidInputError, match=r"\(n, k\)"):
        space.score(np.zeros((2, 3)), np.zeros(4))
    known = space.model_vectors([sides["m001"], "m002"])  # a known id keeps its learned vector
    assert np.array_equal(known, space.model_vectors_[[1, 2]])


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"l2": 0.0}, {"side_weight": -1.0}, {"n_neighbors": 0},
                                    {"normalise": "softmax"}, {"side_alpha": 0.0}])
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidInputError, match=next(iter(kwargs))):
        TransferSpace(**kwargs).fit({"t": {"a": 1.0, "b": 2.0}})


def test_bad_model_side_information():
    results, sides, _, _ = _side_world()
    with pytest.raises(InvalidInputError, match="expected ModelSide"):
        TransferSpace().fit(results, {"m000": {"family": "vit"}})
    bad = dict(sides, m001=ModelSide("m001", archi2vec=np.zeros(7)))
    with pytest.raises(InvalidInputError, match="dimension 7, expected 12"):
        TransferSpace().fit(results, bad)


def test_save_load_round_trip_is_exact(tmp_path):
    results, tasks, desc, _, _ = _descriptor_world()
    _, sides, _, _ = _side_world(n_models=30)
    space = TransferSpace(dim=3, l2=0.2).fit(results, sides, tasks)
    path = space.save(tmp_path / "sub" / "space.npz")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = TransferSpace.load(path)
    for name in ("model_vectors_", "task_vectors_", "side_map_"):
        assert np.array_equal(getattr(loaded, name), getattr(space, name))
    assert loaded.model_ids_ == space.model_ids_ and loaded.task_ids_ == space.task_ids_
    assert loaded.task_predictor_ == space.task_predictor_ and loaded.loss_ == space.loss_
    assert loaded.l2 == 0.2 and loaded.dim == 3 and loaded.side_alpha_ == space.side_alpha_
    new = [ModelSide("new", archi2vec=np.ones(12), parameters=123456, family="swin", pretraining="photos")]
    assert np.array_equal(loaded.model_vectors(new), space.model_vectors(new))
    v1, n1 = space.task_vector(desc[2] + 0.1)
    v2, n2 = loaded.task_vector(desc[2] + 0.1)
    assert np.array_equal(v1, v2) and n1 == n2


def test_load_rejects_another_version(tmp_path):
    results, _, _, _ = _side_world()
    path = TransferSpace(dim=2).fit(results).save(tmp_path / "space.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    header["version"] = "space-v0"
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(SpaceVersionError, match="fennec fit") as info:
        TransferSpace.load(path)
    assert info.value.found == "space-v0" and info.value.expected == SPACE_VERSION


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InvalidInputError, match="not a transfer space"):
        TransferSpace.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        TransferSpace.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------
# FennecBaseline
# ---------------------------------------------------------------------------------------


def _baseline_world(seed: int = 0, n_tasks: int = 13):
    """Non-negative low-rank accuracies; proxy embeddings near each task's latent factors.

    The last task has no results (it is the new task).
    """
    rng = np.random.default_rng(seed)
    u = rng.random((24, 3))
    v = rng.random((n_tasks, 3))
    acc = 0.3 + 0.2 * (u @ v.T)  # (M, T) in (0.3, 0.9)
    results = _results(acc[:, :-1])
    sides = {f"m{i:03d}": ModelSide(f"m{i:03d}", archi2vec=rng.normal(size=8), parameters=int(1e5 * (1 + i)),
                                    family=FAMILIES[i % 4]) for i in range(24)}
    embed = {f"t{j:02d}": v[j] + 0.05 * rng.normal(size=(30, 3)) for j in range(n_tasks)}
    tasks = {f"t{j:02d}": TaskSide(f"t{j:02d}", n_classes=10 + j, n_samples=100 * (j + 1)) for j in range(n_tasks)}
    return results, sides, embed, tasks, acc


def test_baseline_ranks_a_new_task_sensibly_and_deterministically():
    results, sides, embed, tasks, acc = _baseline_world()
    new = "t12"
    history = {k: e for k, e in embed.items() if k != new}
    fit_tasks = {k: t for k, t in tasks.items() if k != new}
    a = FennecBaseline().fit(results, sides, history, fit_tasks)
    b = FennecBaseline().fit(results, sides, history, fit_tasks)
    pa = a.predict(embed[new], n_samples=1300, n_classes=22)
    pb = b.predict(embed[new], n_samples=1300, n_classes=22)
    assert pa == pb
    assert list(pa) == a.model_ids_
    assert scipy.stats.spearmanr([pa[m] for m in a.model_ids_], acc[:, -1]).statistic > 0.7
    # a historical task's own images give back (nearly) its own order
    p2 = a.predict(embed["t02"], n_samples=300, n_classes=12)
    assert scipy.stats.spearmanr([p2[m] for m in a.model_ids_], acc[:, 2]).statistic > 0.9
    assert a.uses_task_meta_ and a.n_clusters_ == 4 and not a.uses_layers_
    with pytest.raises(InvalidInputError, match="n_samples"):
        a.predict(embed[new])


def test_baseline_scores_models_without_history_by_meta_features_alone():
    results, sides, embed, _, _ = _baseline_world()
    extra = dict(sides, newcomer=ModelSide("newcomer", archi2vec=np.zeros(8), parameters=10**6, n_layers=None))
    base = FennecBaseline(k=3, meta_weight=0.5).fit(results, extra, embed)
    scores = base.predict(embed["t01"], models=["m000", "newcomer"])
    assert set(scores) == {"m000", "newcomer"} and all(np.isfinite(list(scores.values())))
    with pytest.raises(InvalidInputError, match="Unknown model"):
        base.predict(embed["t01"], models=["nobody"])


def test_baseline_input_errors():
    results, sides, embed, _, _ = _baseline_world()
    with pytest.raises(NotFittedError):
        FennecBaseline().predict(embed["t00"])
    with pytest.raises(InvalidInputError, match="no proxy embeddings"):
        FennecBaseline(k=3).fit(results, sides, {"t00": embed["t00"]})
    no_params = dict(sides, m000=ModelSide("m000"))
    with pytest.raises(InvalidInputError, match="parameter count"):
        FennecBaseline(k=3).fit(results, no_params, embed)
    base = FennecBaseline(k=3).fit(results, sides, embed)
    with pytest.raises(InvalidInputError, match="dimension 5, expected 3"):
        base.predict(np.zeros((4, 5)))
    with pytest.raises(InvalidInputError, match="meta_weight"):
        FennecBaseline(meta_weight=2.0).fit(results, sides, embed)


def test_objective_never_increases():
    results, sides, _, _ = _side_world()
    losses = [TransferSpace(dim=3, side_alpha=4.0, max_iter=n, tol=0.0).fit(results, sides).loss_
              for n in (1, 2, 3, 5, 10, 30)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(losses))
    assert losses[-1] < losses[0]


def test_docstring_examples():
    import doctest

    import fennec.space.results
    import fennec.space.transfer

    for module in (fennec.space.transfer, fennec.space.results):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_archi2vec_components_keep_their_relative_variance():
    """The PCA block is scaled as one (not whitened): minor directions stay small for the ridge."""
    results, sides, _, _ = _side_world()
    space = TransferSpace(dim=2).fit(results, sides)
    pcs = [i for i, n in enumerate(space.side_feature_names_) if n.startswith("archi2vec_pc")]
    feats = space._encoder.transform([sides[m] for m in space.model_ids_])
    stds = feats[:, pcs].std(axis=0)
    assert stds[0] == pytest.approx(1.0)
    assert np.all(np.diff(stds) <= 1e-12) and stds[-1] < 0.8
    others = [i for i in range(feats.shape[1]) if i not in pcs]
    assert np.allclose(feats[:, others].std(axis=0), 1.0)


# ---------------------------------------------------------------------------------------
# the placement update: posterior task vector from observed scores
# ---------------------------------------------------------------------------------------


def _observed_world(k: int = 8, dim: int = 3, seed: int = 3):
    rng = np.random.default_rng(seed)
    mv = rng.normal(size=(k, dim + 1))  # rows [u, b]
    truth = np.append(rng.normal(size=dim), 1.0)
    prior = np.append(rng.normal(size=dim), 1.0)
    return mv, truth, prior, rng


def test_exact_observations_give_back_the_task_vector_that_produced_them():
    from fennec.space.tasks import posterior_task_vector

    mv, truth, prior, _ = _observed_world()
    exact = mv @ truth  # u·v + b, no noise
    np.testing.assert_allclose(posterior_task_vector(prior, mv, exact, 1e-10), truth, atol=1e-7)
    # as many independent models as dimensions suffice
    np.testing.assert_allclose(posterior_task_vector(prior, mv[:3], exact[:3], 1e-10), truth, atol=1e-6)
    # fewer: the prior fills the direction the observations leave open, and only that one
    two = posterior_task_vector(prior, mv[:2], exact[:2], 1e-10)
    np.testing.assert_allclose(mv[:2] @ two, exact[:2], atol=1e-6)  # fits what was observed
    open_dir = np.linalg.svd(mv[:2, :-1])[2][-1]
    assert open_dir @ two[:-1] == pytest.approx(open_dir @ prior[:-1], abs=1e-5)


def test_a_vanishing_prior_weight_is_solved_stably_as_the_minimum_norm_fit():
    from fennec.space.tasks import posterior_task_vector

    mv, truth, prior, _ = _observed_world()
    exact = mv @ truth
    # fewer observations than dimensions, and two of them of the same model vector: U'U is
    # singular, and a precision below its rounding makes U'U + rho I singular too (the normal
    # equations would raise LinAlgError). The limit rho -> 0 is the fit of the observations
    # that moves the prior least: v0 + pinv(U) (y - b - U v0).
    u, b = mv[:2, :-1], mv[:2, -1]
    limit = prior[:-1] + np.linalg.pinv(u) @ (exact[:2] - b - u @ prior[:-1])
    for rho in (1e-12, 1e-20, 1e-300):
        np.testing.assert_allclose(posterior_task_vector(prior, mv[:2], exact[:2], rho), np.append(limit, 1.0),
                                   atol=1e-6)
        twice = posterior_task_vector(prior, mv[[0, 0, 1]], exact[[0, 0, 1]], rho)
        np.testing.assert_allclose(twice, np.append(limit, 1.0), atol=1e-6)


def test_the_posterior_mean_is_the_ridge_solution_toward_the_prior():
    from fennec.space.tasks import posterior_task_vector

    mv, truth, prior, rng = _observed_world()
    y = mv @ truth + 0.3 * rng.normal(size=len(mv))
    for rho in (0.1, 1.0, 10.0):
        # the same problem as an augmented least-squares: [U; sqrt(rho) I] v ≈ [y - b; sqrt(rho) v0]
        a = np.vstack([mv[:, :-1], np.sqrt(rho) * np.eye(3)])
        rhs = np.concatenate([y - mv[:, -1], np.sqrt(rho) * prior[:-1]])
        expected = np.linalg.lstsq(a, rhs, rcond=None)[0]
        np.testing.assert_allclose(posterior_task_vector(prior, mv, y, rho), np.append(expected, 1.0), atol=1e-10)
    # the stronger the prior, the closer the posterior stays to it
    dist = [np.linalg.norm(posterior_task_vector(prior, mv, y, rho) - prior) for rho in (0.1, 1.0, 10.0, 100.0)]
    assert dist == sorted(dist, reverse=True) and dist[-1] < dist[0]


def test_without_observations_or_with_an_infinitely_strong_prior_the_posterior_is_the_prior():
    from fennec.space.tasks import posterior_task_vector

    mv, truth, prior, _ = _observed_world()
    np.testing.assert_array_equal(posterior_task_vector(prior, mv[:0], np.zeros(0), 1.0), prior)
    np.testing.assert_array_equal(posterior_task_vector(prior, mv, mv @ truth, float("inf")), prior)
    np.testing.assert_allclose(posterior_task_vector(prior, mv, mv @ truth, 1e12), prior, atol=1e-9)


@pytest.mark.parametrize(("args", "match"), [
    ((np.ones((4, 4)), np.ones(4), 1.0), "k, 3"),  # model vectors of another dimension
    ((np.ones((4, 3)), np.ones(3), 1.0), "same k"),  # one score short
    ((np.ones((4, 3)), np.full(4, np.nan), 1.0), "finite"),
    ((np.ones((4, 3)), np.ones(4), 0.0), "precision"),
    ((np.ones((4, 3)), np.ones(4), -1.0), "precision"),
    ((np.ones((4, 3)), np.ones(4), True), "precision"),
    ((np.ones((4, 3)), np.ones(4), "1"), "precision"),
])
def test_posterior_task_vector_rejects_bad_inputs(args, match):
    from fennec.space.tasks import posterior_task_vector

    with pytest.raises(InvalidInputError, match=match):
        posterior_task_vector(np.array([0.5, -0.5, 1.0]), *args)


def test_the_prior_must_be_a_task_vector():
    from fennec.space.tasks import posterior_task_vector

    with pytest.raises(InvalidInputError, match="constant 1"):
        posterior_task_vector(np.array([0.5, -0.5, 2.0]), np.ones((2, 3)), np.ones(2), 1.0)
    with pytest.raises(InvalidInputError, match="shape"):
        posterior_task_vector(np.ones((2, 3)), np.ones((2, 3)), np.ones(2), 1.0)


def test_update_task_vector_counts_the_prior_in_observations_of_an_average_model():
    from fennec.space.tasks import posterior_task_vector

    results, sides, _, _ = _side_world()
    space = TransferSpace(dim=2).fit(results, models=sides)
    prior = space.task_vector_of("t00")
    mv = space.model_vectors(["m000", "m001", "m002", "m003"])
    truth = space.task_vector_of("t05")
    u = space.model_vectors_[:, :-1]
    unit = float(np.mean(np.sum(u**2, axis=1))) / 2
    for strength in (0.5, 4.0):
        np.testing.assert_allclose(space.update_task_vector(prior, mv, mv @ truth, strength=strength),
                                   posterior_task_vector(prior, mv, mv @ truth, strength * unit), atol=1e-12)
    # exact scores of another task's vector move the placement onto it
    np.testing.assert_allclose(space.update_task_vector(prior, mv, mv @ truth, strength=1e-9), truth, atol=1e-6)
    np.testing.assert_array_equal(space.update_task_vector(prior, mv, mv @ truth, strength=float("inf")), prior)
    for bad in (0, -2.0, None, "4", False):
        with pytest.raises(InvalidInputError, match="strength"):
            space.update_task_vector(prior, mv, mv @ truth, strength=bad)
    with pytest.raises(NotFittedError):
        TransferSpace().update_task_vector(prior, mv, mv @ truth, strength=1.0)
