"""PED: the dynamics worked by hand, the exit rule, the base metrics and option checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_blobs
from fennec.errors import InvalidInputError, UnknownMetricError
from fennec.metrics import get_metric, logme, ped, sfda
from fennec.metrics.ped import ped_transform

# Two 1-D classes: class 0 = {-1, 1}, class 1 = {1, 3}. Their own statistics (mean 1, std √2)
# rescale them to z = (x-1)/√2: class 0 = {-√2, 0}, class 1 = {0, √2}; class means ∓1/√2,
# radii √(var) = √0.5 each, distance √2.
X_1D = np.array([[-1.0], [1.0], [1.0], [3.0]])
Y_1D = np.array([0, 0, 1, 1])


def _hand_dynamics(nsigma, time_step, exit_ratio, max_steps):
    """The PED recursion for the two symmetric classes above, in scalars."""
    half_gap = 1 / math.sqrt(2)  # each class mean's distance from 0 in z units
    radius = math.sqrt(0.5)
    first = None
    steps = 0
    for _ in range(max_steps):
        dist = 2 * half_gap
        force = max(nsigma * radius * 2 - dist, 0.0)
        s = min(0.5 * time_step**2 * force, force)
        change = 2 * s  # both classes move by s: Σ|shift| = 2s
        first = change if first is None else first
        if first == 0 or change / first <= exit_ratio:
            break
        half_gap += s
        steps += 1
    # Back to x units: class 1 mean = 1 + √2·half_gap; the spread inside a class is unchanged.
    return 1 + math.sqrt(2) * half_gap, steps


@pytest.mark.parametrize("exit_ratio, expected_steps", [(0.5, 6), (0.995, 1), (0.9, 6)])
def test_dynamics_match_hand_computation(exit_ratio, expected_steps):
    x = torch.from_numpy(X_1D)
    y = torch.from_numpy(Y_1D)
    moved, steps = ped_transform(x, y, 2, nsigma=2.0, time_step=0.1, exit_ratio=exit_ratio, max_steps=6)
    class1_mean, hand_steps = _hand_dynamics(2.0, 0.1, exit_ratio, 6)
    assert steps == hand_steps == expected_steps
    assert float(moved[2:].mean()) == pytest.approx(class1_mean, rel=1e-12)
    assert float(moved[:2].mean()) == pytest.approx(2 - class1_mean, rel=1e-12)  # symmetric about 1
    # Every sample moves with its class: within-class offsets are unchanged.
    assert float(moved[3] - moved[2]) == pytest.approx(2.0, rel=1e-12)


def test_no_overlap_means_no_movement_and_the_base_score():
    x, y = make_blobs(200, 8, 4, separation=50.0, seed=0)
    moved, steps = ped_transform(torch.from_numpy(x).double(), torch.from_numpy(y), 4)
    assert steps == 0
    np.testing.assert_allclose(moved.numpy(), x, rtol=1e-6)  # float32 input mapped back through z
    assert ped(x, y) == pytest.approx(sfda(x, y), rel=1e-9)


def test_overlapping_classes_are_pushed_apart_and_the_score_rises():
    x, y = make_blobs(400, 16, 5, separation=0.3, seed=1)
    assert ped(x, y, base="sfda") > sfda(x, y)
    assert ped(x, y, base="logme") > logme(x, y)


def test_reference_features_set_the_rescaling():
    x, y = make_blobs(300, 8, 3, separation=0.3, seed=2)
    rng = np.random.default_rng(0)
    wide_reference = rng.normal(size=(500, 8)) * 10  # a wider reference: the radii shrink in z units
    own = ped(x, y)
    with_ref = ped(x, y, reference_features=wide_reference)
    assert own != pytest.approx(with_ref, rel=1e-6)
    # Rescaling by the target's own statistics is the same as passing the target as reference.
    assert ped(x, y, reference_features=x) == pytest.approx(own, rel=1e-12)


def test_every_feature_base_metric_works():
    x, y = make_blobs(200, 8, 4, separation=0.5, seed=3)
    from fennec.metrics import list_metrics

    for base in list_metrics(input="features"):
        if base == "ped":
            continue
        assert math.isfinite(ped(x, y, base=base)), base


def test_base_kwargs_are_passed_through():
    x, y = make_blobs(200, 8, 4, separation=0.5, seed=3)
    a = ped(x, y, base="nleep", base_kwargs={"seed": 1})
    assert a == ped(x, y, base="nleep", base_kwargs={"seed": 1})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"base": "nope"}, UnknownMetricError, "Available metrics"),
        ({"base": "ped"}, InvalidInputError, "base metric must score features"),
        ({"time_step": 0.0}, InvalidInputError, "time_step must be > 0"),
        ({"exit_ratio": 1.5}, InvalidInputError, "exit_ratio"),
        ({"max_steps": -1}, InvalidInputError, "max_steps"),
        ({"nsigma": 0.0}, InvalidInputError, "nsigma"),
        ({"reference_features": np.zeros((10, 3))}, InvalidInputError, "3 dimensions but features have 8"),
        ({"reference_features": np.full((10, 8), np.nan)}, InvalidInputError, "reference_features contains"),
    ],
)
def test_bad_options_are_rejected(kwargs, error, match):
    x, y = make_blobs(100, 8, 4, seed=4)
    with pytest.raises(error, match=match):
        ped(x, y, **kwargs)


def test_leep_cannot_be_a_base():
    x, y = make_blobs(100, 8, 4, seed=4)
    with pytest.raises(InvalidInputError, match="base metric must score features"):
        ped(x, y, base="leep")


def test_registered():
    assert get_metric("ped") is ped


def _naive_ped(x, y, general, *, time_step, nsigma, exit_ratio, max_steps, constant=1.0, eps=1e-3):
    """PED as the reference describes it: move every sample, recompute statistics each step."""
    mean, std = general.mean(0), np.maximum(general.std(0), eps)
    c = y.max() + 1
    first = None
    for _ in range(max_steps):
        z = (x - mean) / std
        mu = np.stack([z[y == k].mean(0) for k in range(c)])
        radius = np.sqrt(np.stack([z[y == k].var(0) for k in range(c)]).sum(1))
        shift = np.zeros_like(mu)
        for i in range(c):
            for j in range(i + 1, c):
                dist = np.linalg.norm(mu[i] - mu[j])
                force = max(nsigma * radius[i] + nsigma * radius[j] - dist, 0.0)
                s = min(0.5 * time_step**2 * constant * force, force)
                shift[i] += s * (mu[i] - mu[j]) / dist
                shift[j] -= s * (mu[i] - mu[j]) / dist
        change = np.abs(shift).sum()
        first = change if first is None else first
        if first == 0 or change / first <= exit_ratio:
            break
        x = (z + shift[y]) * std + mean
    return x


@pytest.mark.parametrize("nsigma, exit_ratio", [(0.6, 0.5), (2.0, 0.5), (2.0, 0.95)])
def test_class_level_dynamics_equal_moving_every_sample(nsigma, exit_ratio):
    x, y = make_blobs(300, 6, 5, separation=0.4, seed=9, dtype=np.float64)
    general = np.random.default_rng(1).normal(size=(400, 6)) * 1.5 + 0.3
    expected = _naive_ped(x, y, general, time_step=0.1, nsigma=nsigma, exit_ratio=exit_ratio, max_steps=6)
    moved, _ = ped_transform(torch.from_numpy(x), torch.from_numpy(y), 5,
                             reference_features=torch.from_numpy(general), time_step=0.1, nsigma=nsigma,
                             exit_ratio=exit_ratio, max_steps=6)
    np.testing.assert_allclose(moved.numpy(), expected, rtol=1e-10, atol=1e-10)
