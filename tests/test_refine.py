"""fennec.recommendation.refine: scoring the shortlist with a transferability metric, and fusing with the index."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import fennec.recommendation.refine
from fennec.errors import CandidateFailedWarning, InvalidInputError, UnknownMetricError
from fennec.features import FeatureCache, model_features
from fennec.metrics import leep, sfda
from fennec.recommendation.refine import DEFAULT_METRIC, CandidateScore, fuse, score_candidates
from test_features import build_feature_hub, make_sample


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return build_feature_hub(tmp_path_factory.mktemp("refine_hub"))


@pytest.fixture(scope="module")
def sample():
    return make_sample(12, classes=3, seed=5)


# ---------------------------------------------------------------------------------------
# score_candidates
# ---------------------------------------------------------------------------------------


def test_failures_are_recorded_and_the_others_scored(hub, sample, tmp_path):
    ids = ["org/tiny-resnet", "org/missing", "org/tiny-vit", "org/tiny-resnet"]
    with pytest.warns(CandidateFailedWarning, match="org/missing"):
        scores = score_candidates(ids, sample, hub=hub, cache=FeatureCache(tmp_path), progress=True)
    assert [s.model_id for s in scores] == ["org/tiny-resnet", "org/missing", "org/tiny-vit"]
    ok, missing, vit = scores
    assert isinstance(ok, CandidateScore) and ok.metric == DEFAULT_METRIC
    assert math.isfinite(ok.score) and ok.error is None and ok.forward_passes == len(sample.images)
    assert ok.sha == hub.model_info("org/tiny-resnet").sha and not ok.cached
    assert missing.score is None and missing.sha is None and missing.forward_passes == 0
    assert missing.error.startswith("ModelNotFoundError") and "org/missing" in missing.error
    assert math.isfinite(vit.score)


def test_a_model_that_fails_to_load_is_recorded(hub, sample, tmp_path):
    from fennec.hub import LocalHub
    from hub_server_fixtures import TINY_RESNET, write_model

    write_model(tmp_path / "hub", "org/wrong-weights", config=TINY_RESNET)  # weights of another model
    broken = LocalHub(tmp_path / "hub")
    with pytest.warns(CandidateFailedWarning, match="org/wrong-weights"):
        (result,) = score_candidates(["org/wrong-weights"], sample, hub=broken, cache=False)
    assert result.score is None and result.sha == broken.model_info("org/wrong-weights").sha
    # its 272-byte weights cannot hold the 6,090 parameters of its config: refused before loading
    assert result.error.startswith("UnsupportedModelError") and "does not match" in result.error


def test_metric_input_routing(hub, sample, tmp_path):
    cache = FeatureCache(tmp_path)
    ids = ["org/tiny-resnet", "org/tiny-vit"]
    by_sfda = score_candidates(ids, sample, hub=hub, metric="sfda", cache=cache)
    by_leep = score_candidates(ids, sample, hub=hub, metric="leep", cache=cache)
    assert all(s.cached and s.forward_passes == 0 for s in by_leep)  # features reused across metrics
    for model_id, s, p in zip(ids, by_sfda, by_leep, strict=True):
        out = model_features(model_id, sample, hub=hub, cache=cache)
        assert s.score == pytest.approx(sfda(out.features, sample.labels), rel=1e-9)  # penultimate features
        assert p.score == pytest.approx(leep(out.probabilities, sample.labels), rel=1e-9)  # head softmax
        assert p.metric == "leep"


def test_a_probability_metric_on_a_backbone_without_head_is_a_recorded_failure(hub, sample, tmp_path):
    with pytest.warns(CandidateFailedWarning):
        (result,) = score_candidates(["org/vit-backbone"], sample, hub=hub, metric="nce", cache=False)
    assert result.score is None and "no pre-trained classification head" in result.error
    assert result.forward_passes == len(sample.images)  # it ran; the metric could not use it
    (ok,) = score_candidates(["org/vit-backbone"], sample, hub=hub, metric="logme", cache=False)
    assert math.isfinite(ok.score)


class _RecordingHub:
    def __init__(self):
        self.calls = []

    def fetch(self, repo_id, **kwargs):
        self.calls.append(repo_id)
        raise AssertionError("no model should be fetched")


def test_unknown_metric_fails_before_any_model_is_loaded(sample):
    hub = _RecordingHub()
    with pytest.raises(UnknownMetricError, match="sfda"):
        score_candidates(["org/a"], sample, hub=hub, metric="no-such-metric")
    assert hub.calls == []
    with pytest.raises(InvalidInputError, match="list of model ids"):
        score_candidates("org/a", sample, hub=hub)
    with pytest.raises(InvalidInputError, match="non-empty strings"):
        score_candidates(["org/a", 3], sample, hub=hub)
    assert score_candidates([], sample, hub=hub) == []


# ---------------------------------------------------------------------------------------
# fuse
# ---------------------------------------------------------------------------------------


def test_fuse_hand_worked():
    # index (0.9, 0.8, 0.7): mean 0.8, population std sqrt(2/3)*0.1 -> z = (1.2247, 0, -1.2247)
    # metric (1, 3, -): over the two scored, mean 2, std 1 -> z = (-1, 1); c keeps its index term only
    out = fuse({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 1.0, "b": 3.0, "c": None}, weight=0.25)
    z = math.sqrt(1.5)
    assert out["a"] == pytest.approx(0.25 * -1 + 0.75 * z)
    assert out["b"] == pytest.approx(0.25 * 1 + 0.75 * 0)
    assert out["c"] == pytest.approx(0.75 * -z)
    assert list(out) == ["a", "b", "c"]  # best first
    # weight 0.75: a = -0.75 + 0.25 * 1.2247 = -0.444 falls below c = 0.25 * -1.2247 = -0.306, whose
    # missing metric counts as average
    assert list(fuse({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 1.0, "b": 3.0}, weight=0.75)) == ["b", "c", "a"]


def test_fuse_weight_extremes_and_scale_invariance():
    index = {"a": 0.3, "b": 0.1, "c": 0.2, "d": 0.5}
    metric = {"a": -120.0, "b": -80.0, "c": -100.0, "d": -90.0}
    assert list(fuse(index, metric, weight=0.0)) == ["d", "a", "c", "b"]  # index order
    assert list(fuse(index, metric, weight=1.0)) == ["b", "d", "c", "a"]  # metric order
    base = fuse(index, metric)
    shifted = fuse({m: 10 * v - 3 for m, v in index.items()}, {m: 0.01 * v + 7 for m, v in metric.items()})
    for m in index:
        assert shifted[m] == pytest.approx(base[m])
    # z-scores: each term has mean 0 over the candidates, so the fused scores do too
    assert sum(base.values()) == pytest.approx(0.0, abs=1e-12)


def test_fuse_edge_cases():
    assert fuse({}, {}) == {}
    assert fuse({"a": 0.5}, {"a": 2.0}) == {"a": 0.0}  # one candidate: nothing to standardise against
    # constant metric scores carry no information: zeros, the index decides
    assert list(fuse({"a": 0.1, "b": 0.2}, {"a": 0.1 + 0.2, "b": 0.1 + 0.2}, weight=0.9)) == ["b", "a"]
    # no metric score at all: index term only; non-finite metric scores count as missing
    out = fuse({"a": 1.0, "b": 0.0}, {"a": float("nan"), "b": None})
    assert out == {"a": 0.5, "b": -0.5}
    # ties: equal fused scores are ordered by index score, then by model id
    tied = fuse({"x": 1.0, "y": 0.0, "b": 0.5, "a": 0.5}, {"x": 0.0, "y": 1.0}, weight=0.5)
    assert tied["a"] == tied["b"] == 0.0 and list(tied) == ["x", "a", "b", "y"]
    assert list(fuse({"b": 1.0, "a": 1.0}, {})) == ["a", "b"]
    assert list(fuse({"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 0.0}, weight=0.5)) == ["b", "a"]  # tie -> index


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_fuse_rejects_bad_weights(weight):
    with pytest.raises(InvalidInputError, match="weight"):
        fuse({"a": 1.0}, {"a": 1.0}, weight=weight)


def test_fuse_rejects_bad_scores():
    with pytest.raises(InvalidInputError, match="not candidates"):
        fuse({"a": 1.0}, {"a": 1.0, "z": 2.0})
    with pytest.raises(InvalidInputError, match="finite"):
        fuse({"a": float("inf"), "b": 1.0}, {})
    with pytest.raises(InvalidInputError, match="finite"):
        fuse({"a": None}, {})


def test_docstring_examples():
    result = doctest.testmod(fennec.recommendation.refine, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 2


def test_zscore_is_population_standardisation():
    z = fennec.recommendation.refine.zscore(np.array([1.0, 2.0, 3.0, 4.0]))
    assert z.mean() == pytest.approx(0.0) and z.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(fennec.recommendation.refine.zscore(np.array([0.1, 0.1, 0.1])), 0.0)


# ---------------------------------------------------------------------------------------
# the placement update's helpers: candidates, observations, fusion among every model
# ---------------------------------------------------------------------------------------


def test_choose_candidates_keeps_the_best_half_and_adds_what_spans_the_space():
    from fennec.recommendation.refine import choose_candidates

    ids = ["a", "b", "c", "d", "e"]
    vectors = np.array([[1.0, 0.0, 0.3], [0.9, 0.1, 0.2],   # the index's two best: both along the first axis
                        [0.95, 0.0, 0.1],                     # a near copy of them, larger than d
                        [0.1, 0.8, 0.0],                      # the direction they leave unknown
                        [0.0, -0.7, 0.0]])
    assert choose_candidates(ids, vectors, 3) == ["a", "b", "d"]
    # with d, the second axis is still the less known (one model against three): e, along it, beats c
    assert choose_candidates(ids, vectors, 4) == ["a", "b", "d", "e"]
    assert choose_candidates(ids, vectors, 1) == ["a"]
    everything = choose_candidates(ids, vectors, 10)
    assert everything[:3] == ["a", "b", "c"] and sorted(everything) == sorted(ids)  # ⌈5/2⌉ by rank first
    # the diverse ones come from the index's top `pool` only
    assert choose_candidates(ids, vectors, 3, pool=3) == ["a", "b", "c"]
    # equal spread: the better index rank wins
    assert choose_candidates(["x", "y", "z"], np.array([[1.0, 0.0], [2.0, 0.0], [2.0, 0.0]]), 2) == ["x", "y"]


@pytest.mark.parametrize(("args", "match"), [
    ((["a", "b"], np.ones((3, 3)), 2), "one per ranked model"),
    ((["a", "b"], np.array([[1.0, np.nan], [1.0, 0.0]]), 2), "finite"),
    ((["a", "a"], np.ones((2, 3)), 2), "duplicate"),
    ((["a", "b"], np.ones((2, 3)), 0), "n"),
    ((["a", "b"], np.ones(3), 2), "one per ranked model"),
])
def test_choose_candidates_rejects_bad_inputs(args, match):
    from fennec.recommendation.refine import choose_candidates

    with pytest.raises(InvalidInputError, match=match):
        choose_candidates(*args)


def test_observed_scores_map_the_metrics_order_onto_the_priors_range():
    from fennec.recommendation.refine import observed_scores

    prior = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.0}
    out = observed_scores(prior, {"a": -5.0, "b": -7.0, "c": -6.0, "d": None})
    p0 = np.array([1.0, 2.0, 3.0])
    assert list(out) == ["a", "b", "c"]  # the failed candidate is no observation
    np.testing.assert_allclose(sorted(out.values()), sorted(p0))  # same mean and spread as the prior ...
    assert out["a"] > out["c"] > out["b"]  # ... in the metric's order
    # invariant to the metric's scale and offset
    assert observed_scores(prior, {"a": 10.0, "b": -4.0, "c": 3.0}) == pytest.approx(
        observed_scores(prior, {"a": 100.0, "b": -40.0, "c": 30.0}))
    assert observed_scores(prior, {"a": None, "b": float("nan")}) == {}
    # a metric without spread over the candidates (one finite score, or all equal) has no order to
    # tell: no observation, rather than "every candidate scores the prior's mean"
    assert observed_scores(prior, {"a": 0.7, "b": 0.7, "c": 0.7}) == {}
    assert observed_scores(prior, {"a": 0.7, "b": float("nan"), "c": None}) == {}
    # nor do candidates the prior ties (exactly, or to float32 rounding): the metric's order has no
    # spread of the prior's to map onto, and "updated" would only restate the prior
    tied = {"a": 0.5, "b": 0.5, "c": 0.5 + 1e-9}
    assert observed_scores(tied, {"a": 3.0, "b": 1.0, "c": 2.0}) == {}
    assert observed_scores({"a": 0.5, "b": 0.6}, {"a": 3.0, "b": 1.0}) == pytest.approx({"a": 0.6, "b": 0.5})
    with pytest.raises(InvalidInputError, match="without a prior score"):
        observed_scores(prior, {"z": 1.0})
    with pytest.raises(InvalidInputError, match="finite"):
        observed_scores({"a": float("inf"), "b": 1.0}, {"a": 1.0, "b": 2.0})


def test_fuse_placed_ranks_the_candidates_among_every_model():
    from fennec.recommendation.refine import fuse_placed

    scores = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 2.5, "e": 0.0}
    # weight 0: nothing but the scores
    assert fuse_placed(scores, {"b": 9.0, "c": 1.0}, weight=0.0) == {m: scores[m] for m in ["a", "d", "b", "c", "e"]}
    # weight 1: the candidates b and c swap places within their own range, the others stay put
    out = fuse_placed(scores, {"b": 1.0, "c": 9.0}, weight=1.0)
    assert list(out) == ["a", "d", "c", "b", "e"] and out["c"] == pytest.approx(2.0) and out["b"] == pytest.approx(1.0)
    # the fused values are fuse()'s, mapped onto the candidates' mean and spread
    fused = fuse({"b": 2.0, "c": 1.0}, {"b": 1.0, "c": 9.0}, weight=0.5)
    out = fuse_placed(scores, {"b": 1.0, "c": 9.0}, weight=0.5)
    assert out["b"] == pytest.approx(1.5 + 0.5 * fused["b"]) and out["c"] == pytest.approx(1.5 + 0.5 * fused["c"])
    assert fuse_placed(scores, {}) == dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    with pytest.raises(InvalidInputError, match="not candidates"):
        fuse_placed(scores, {"zz": 1.0})
    with pytest.raises(InvalidInputError, match="finite"):
        fuse_placed({"a": float("nan"), "b": 1.0}, {})
    with pytest.raises(InvalidInputError, match="weight"):
        fuse_placed(scores, {"b": 1.0}, weight=2.0)
