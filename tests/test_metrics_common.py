"""Properties every registered transferability metric must have.

Parametrized over ``list_metrics()``, so a newly registered metric is tested automatically.
``metric_info(name).input`` says whether the metric takes features or source-model
probabilities; probabilities are built from the same blobs by a fixed random source head.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from conftest import make_blobs
from fennec.errors import InvalidInputError, MetricComputationError
from fennec.metrics import get_metric, list_metrics, metric_info

METRICS = list_metrics()

# Metrics whose seeded randomness draws sample positions (the mixture's k-means
# initialisation), so permuting the samples can change the score: for them we check that
# the score is a deterministic function of the input instead of exact order invariance.
ORDER_DEPENDENT = {"nleep"}

N, D, C, C_SOURCE = 90, 6, 3, 7


def _inputs(name: str, x: np.ndarray) -> np.ndarray:
    """Features for feature metrics; softmax of a fixed linear source head for probability ones."""
    if metric_info(name).input == "features":
        return x
    w = np.random.default_rng(123).normal(size=(x.shape[1], C_SOURCE))
    logits = x.astype(np.float64) @ w
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(N, D, C, separation=1.5, seed=3)


def _score(name, inputs, labels, **kw):
    return get_metric(name)(inputs, labels, **kw)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-9)


def test_registry_is_complete():
    expected = {"hscore", "hscore_regularized", "leep", "nce", "nleep", "parc", "transrate",
                "sfda", "logme", "ped"}
    assert expected <= set(METRICS)


@pytest.mark.parametrize("name", METRICS)
def test_metric_info_and_signature(name):
    info = metric_info(name)
    assert info.name == name and info.input in ("features", "probabilities")
    assert info.summary and info.paper, "every metric documents a summary line and its paper"
    assert get_metric(name) is info.func
    params = list(inspect.signature(info.func).parameters.values())
    assert [p.kind for p in params[:2]] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), "options are keyword-only"
    assert "device" in {p.name for p in params[2:]}


@pytest.mark.parametrize("name", METRICS)
def test_returns_builtin_finite_float(name, blobs):
    x, y = blobs
    score = _score(name, _inputs(name, x), y)
    assert type(score) is float
    assert math.isfinite(score)


@pytest.mark.parametrize("name", METRICS)
def test_inputs_are_not_modified_numpy(name, blobs):
    x, y = blobs
    inputs = _inputs(name, x)
    inputs_copy, y_copy = inputs.copy(), y.copy()
    _score(name, inputs, y)
    np.testing.assert_array_equal(inputs, inputs_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize("name", METRICS)
def test_inputs_are_not_modified_torch(name, blobs):
    x, y = blobs
    inputs = torch.tensor(_inputs(name, x), dtype=torch.float32)
    labels = torch.tensor(y)
    inputs_copy, labels_copy = inputs.clone(), labels.clone()
    _score(name, inputs, labels)
    assert torch.equal(inputs, inputs_copy)
    assert torch.equal(labels, labels_copy)


@pytest.mark.parametrize("name", METRICS)
def test_torch_cpu_input_matches_numpy(name, blobs):
    x, y = blobs
    inputs = _inputs(name, x)
    expected = _score(name, inputs, y)
    got = _score(name, torch.from_numpy(inputs.copy()), torch.from_numpy(y.copy()))
    assert type(got) is float
    assert _close(got, expected)


@pytest.mark.parametrize("name", METRICS)
def test_sample_order(name, blobs):
    x, y = blobs
    inputs = _inputs(name, x)
    perm = np.random.default_rng(7).permutation(N)
    reference = _score(name, inputs, y)
    permuted = _score(name, inputs[perm], y[perm])
    if name in ORDER_DEPENDENT:
        assert _score(name, inputs, y) == reference, "same input and seed must give the same score"
        assert math.isfinite(permuted)
    else:
        assert _close(permuted, reference)


@pytest.mark.parametrize("name", METRICS)
def test_relabelling(name, blobs):
    """Scores depend on the partition into classes, not on the label values or their order."""
    x, y = blobs
    inputs = _inputs(name, x)
    reference = _score(name, inputs, y)
    shuffled_ids = np.array([2, 0, 1])[y]
    as_strings = np.array([f"class_{v}" for v in y])
    for labels in (y + 10, shuffled_ids, as_strings, y.astype(np.float32), list(y)):
        assert _close(_score(name, inputs, labels), reference), labels[:3]


@pytest.mark.parametrize("name", METRICS)
def test_separable_beats_shuffled_labels(name):
    x, y = make_blobs(N, D, C, separation=3.0, seed=5)
    inputs = _inputs(name, x)
    shuffled = np.random.default_rng(11).permutation(y)
    assert _score(name, inputs, y) > _score(name, inputs, shuffled)


@pytest.mark.parametrize("name", METRICS)
def test_cuda_without_cuda_is_a_clear_error(name, blobs):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    x, y = blobs
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        _score(name, _inputs(name, x), y, device="cuda")


@pytest.mark.parametrize("name", METRICS)
def test_class_with_too_few_samples(name, blobs):
    """A singleton class is either scored or rejected by name, never a crash or a NaN."""
    x, y = blobs
    y = y.copy()
    y[0] = 99  # one sample in class 99
    try:
        score = _score(name, _inputs(name, x), y)
    except InvalidInputError as exc:
        assert "fewer than" in str(exc) and "samples per class" in str(exc)
        assert "99" in str(exc)  # the caller's label, not an internal class index
    else:
        assert math.isfinite(score)


def _bad_cases(name: str):
    """(case id, inputs, labels, message fragment) for invalid input to ``name``."""
    x, y = make_blobs(40, 4, 2, seed=1)
    good = _inputs(name, x)
    nan = good.copy()
    nan[3, 1] = np.nan
    inf = good.copy()
    inf[5, 0] = np.inf
    cases = [
        ("1-D inputs", good[:, 0], y, "must be 2-D"),
        ("3-D inputs", good[:, :, None], y, "must be 2-D"),
        ("length mismatch", good, y[:-1], "same length"),
        ("NaN", nan, y, "NaN"),
        ("inf", inf, y, "infinite"),
        ("one class", good, np.zeros(40, dtype=int), "distinct class"),
        ("string inputs", np.full((40, 4), "abc"), y, "real-valued"),
        ("one-hot labels", good, np.eye(2)[y], "one-hot"),
        ("fractional labels", good, y + 0.5, "fractional"),
        ("object labels", good, [None] * 40, "integers or strings"),
        # np.asarray would turn these into strings: 1 and "1" one class
        ("labels mixing str and int", good, [str(v) if i % 2 else int(v) for i, v in enumerate(y)],
         "labels mix strings and other values: 20 str (e.g. ['"),
        ("object array mixing str and int", good, np.array(["a", 1] * 20, dtype=object),
         "convert them first, e.g. [str(v) for v in labels]"),
        ("2-D labels column", good, y[:, None], "ravel"),
    ]
    if metric_info(name).input == "probabilities":
        negative = good.copy()
        negative[0, 0] = -0.1
        unnormalised = good * 2
        cases += [
            ("negative probabilities", negative, y, "negative"),
            ("rows not summing to 1", unnormalised, y, "sum to 1"),
        ]
    return cases


@pytest.mark.parametrize(
    "name,case",
    [(name, case[0]) for name in METRICS for case in _bad_cases(name)],
)
def test_bad_input_raises_helpful_error(name, case):
    _, inputs, labels, fragment = next(c for c in _bad_cases(name) if c[0] == case)
    with pytest.raises(InvalidInputError) as info:
        _score(name, inputs, labels)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f"{name}:"), "errors name the metric that raised them"


# Scale-dependent metrics compared at an extreme scale with an ordinary one in the same regime
# (computed without any internal rescaling): SFDA's and PED's λ is 1 (tiny scatter) or its 1e-10
# floor (large scatter) in both, PED's std floor binds at 1e-300 and 1e-5 alike, and TransRate's
# ε is negligible against features of 1e4 as of 1e150. (NLEEP has no such pair here: its
# absolute reg_covar=1e-6 still steadies the mixture at 1e4, and at 1e150 its fallback runs.)
SAME_REGIME = {
    "sfda": {1e-300: 1e-5, 1e150: 1e3},
    "ped": {1e-300: 1e-5, 1e150: 1e3},
    "transrate": {1e150: 1e4},
}


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("scale", [1e-300, 1e150])
@pytest.mark.filterwarnings("ignore::fennec.errors.FallbackWarning")  # NLEEP at 1e150: its documented fallback
def test_extreme_feature_scales(name, scale, blobs):
    """Features x 1e-300 or x 1e150: a scale-invariant metric gives the score of the unscaled
    features; a scale-dependent one gives the score of its regime or raises an error that names
    the scale as the cause. Never a false message ("features are identical", NaN), never a
    silent 0.0."""
    x, y = blobs
    x = x.astype(np.float64)  # in float32, x 1e-300 would be 0 and x 1e150 inf before the metric sees them
    info = metric_info(name)
    if info.input == "probabilities":  # scaled probabilities are not probabilities
        with pytest.raises(InvalidInputError, match="do not sum to 1"):
            _score(name, _inputs(name, x) * scale, y)
        return
    try:
        score = _score(name, x * scale, y)
    except MetricComputationError as exc:
        assert not info.scale_invariant, f"{name} is scale-invariant and must not fail on scale: {exc}"
        message = str(exc)
        assert message.startswith(f"{name}: ") and "at this feature scale (largest |value| about 1e" in message
        assert "not scale-invariant" in message and "standardise them" in message
        return
    assert type(score) is float and math.isfinite(score) and score != 0.0
    if info.scale_invariant:
        assert math.isclose(score, _score(name, x, y), rel_tol=1e-6)
    elif scale in SAME_REGIME.get(name, {}):
        assert math.isclose(score, _score(name, x * SAME_REGIME[name][scale], y), rel_tol=1e-6)


def test_scale_invariance_is_declared_for_the_invariant_metrics():
    """The registry says which metrics are scale-invariant by definition (docs/metrics.md)."""
    invariant = {n for n in METRICS if metric_info(n).scale_invariant}
    assert {"hscore", "hscore_regularized", "parc"} <= invariant
    assert not invariant & {"sfda", "ped", "logme", "transrate", "nleep", "leep", "nce"}
