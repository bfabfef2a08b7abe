"""LEEP: a hand-worked answer, parity with a loop implementation of the formulas, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fennec.metrics import leep

# 4 samples, 2 target classes, 2 source classes.
THETA = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
LABELS = np.array([0, 0, 1, 1])


def slow_leep(theta: np.ndarray, labels: np.ndarray) -> float:
    """LEEP straight from Nguyen et al. (2020), eqs. 1-3, with explicit loops."""
    n, n_source = theta.shape
    classes = sorted(set(labels.tolist()))
    joint = np.zeros((len(classes), n_source))
    for i in range(n):
        joint[classes.index(labels[i])] += theta[i] / n
    total = 0.0
    for i in range(n):
        y = classes.index(labels[i])
        eep = 0.0
        for z in range(n_source):
            p_z = joint[:, z].sum()
            if p_z > 0:
                eep += theta[i, z] * joint[y, z] / p_z
        total += math.log(eep)
    return total / n


def test_known_answer_by_hand():
    # Joint P(y, z) = (1/4) Σ_{i: y_i = y} θ_i:
    #   y=0: (0.8 + 0.6, 0.2 + 0.4) / 4 = (0.35, 0.15);  y=1: (0.7 + 0.1, 0.3 + 0.9) / 4 = (0.20, 0.30)
    # P(z) = (0.55, 0.45);  P(y|z=0) = (7/11, 4/11);  P(y|z=1) = (1/3, 2/3)
    # EEP_1 = 0.8·7/11 + 0.2·1/3 = 19/33     EEP_2 = 0.6·7/11 + 0.4·1/3 = 17/33
    # EEP_3 = 0.7·4/11 + 0.3·2/3 = 15/33     EEP_4 = 0.1·4/11 + 0.9·2/3 = 21/33
    # LEEP = ¼ (log 19 + log 17 + log 15 + log 21) - log 33 = -0.6139513...
    expected = 0.25 * (math.log(19) + math.log(17) + math.log(15) + math.log(21)) - math.log(33)
    assert leep(THETA, LABELS) == pytest.approx(expected, rel=1e-13)
    assert slow_leep(THETA, LABELS) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("n,n_source,n_classes,seed", [(50, 5, 3, 0), (200, 30, 6, 1), (120, 100, 10, 2)])
def test_parity_with_loop_implementation(n, n_source, n_classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n_source)) * 3
    theta = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    assert leep(theta, labels) == pytest.approx(slow_leep(theta, labels), rel=1e-12, abs=1e-14)


def test_source_class_never_predicted_is_ignored_not_nan():
    # Source class 2 has probability 0 on every sample: P(y|z=2) = 0/0 in the reference.
    theta = np.hstack([THETA, np.zeros((4, 1))])
    assert leep(theta, LABELS) == pytest.approx(leep(THETA, LABELS), rel=1e-14)


def test_perfect_source_scores_zero_and_bound():
    labels = np.array([0, 1, 2, 0, 1, 2])
    assert leep(np.eye(3)[labels], labels) == 0.0
    rng = np.random.default_rng(3)
    theta = rng.dirichlet(np.ones(4), size=30)
    assert leep(theta, np.arange(30) % 3) <= 0.0


def test_log_version_not_mean_eep():
    """fennec returns mean log EEP (official), not the SFDA variant's mean EEP."""
    eeps = np.array([19, 17, 15, 21]) / 33
    assert leep(THETA, LABELS) == pytest.approx(np.log(eeps).mean())
    assert leep(THETA, LABELS) != pytest.approx(np.log(eeps.mean()))


def test_float32_and_torch_inputs():
    expected = leep(THETA, LABELS)
    assert leep(THETA.astype(np.float32), LABELS) == pytest.approx(expected, rel=1e-6)
    assert leep(torch.tensor(THETA), torch.tensor(LABELS), device="cpu") == pytest.approx(expected, rel=1e-14)
