"""NCE: a hand-worked answer, parity with a loop implementation of tllib's formula, tie rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fennec.metrics import nce

THETA = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
LABELS = np.array([0, 0, 1, 1])


def slow_nce(theta: np.ndarray, labels: np.ndarray) -> float:
    """NCE as in Tran et al. (2019) with tllib's details: argmax pseudo-labels, 1e-20 in the log."""
    n = theta.shape[0]
    z = [int(np.argmax(row)) for row in theta]
    classes = sorted(set(labels.tolist()))
    result = 0.0
    for source in sorted(set(z)):
        members = [i for i in range(n) if z[i] == source]
        p_z = len(members) / n
        entropy = 0.0
        for c in classes:
            q = sum(1 for i in members if labels[i] == c) / len(members) + 1e-20
            entropy -= q * math.log(q)
        result -= p_z * entropy
    return result


def test_known_answer_by_hand():
    # Pseudo-labels z = argmax θ = (0, 0, 0, 1); labels y = (0, 0, 1, 1).
    # P(z=0) = 3/4 with P(y|z=0) = (2/3, 1/3): H = -(2/3 log 2/3 + 1/3 log 1/3) = log 3 - (2/3) log 2
    # P(z=1) = 1/4 with P(y|z=1) = (0, 1): H = 0 (up to the 1e-20 offset, ~5e-19)
    # NCE = -(3/4)(log 3 - (2/3) log 2) = -(3/4) log 3 + (1/2) log 2 = -0.4773856...
    expected = -0.75 * math.log(3) + 0.5 * math.log(2)
    assert nce(THETA, LABELS) == pytest.approx(expected, rel=1e-12)
    assert slow_nce(THETA, LABELS) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n,n_source,n_classes,seed", [(50, 5, 3, 0), (300, 40, 8, 1)])
def test_parity_with_loop_implementation(n, n_source, n_classes, seed):
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.ones(n_source) * 0.5, size=n)
    labels = rng.integers(0, n_classes, size=n)
    assert nce(theta, labels) == pytest.approx(slow_nce(theta, labels), rel=1e-12, abs=1e-15)


def test_argmax_ties_take_the_first_source_class():
    # Row 3 is a tie between classes 0 and 1: z = 0 (as numpy.argmax), giving the same
    # pseudo-labels as THETA above, so the same score.
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    assert nce(theta, LABELS) == pytest.approx(nce(THETA, LABELS), rel=1e-14)


def test_only_the_argmax_matters_and_perfect_is_zero():
    soft = np.array([[0.51, 0.49], [0.9, 0.1], [0.2, 0.8], [0.45, 0.55]])
    assert nce(soft, LABELS) == pytest.approx(nce(np.eye(2)[LABELS], LABELS), abs=1e-15)
    assert abs(nce(np.eye(2)[LABELS], LABELS)) < 1e-15
