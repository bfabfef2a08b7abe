"""fennec.validation: the shared argument checks, and the modules that use them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fennec.errors import InvalidInputError
from fennec.validation import check_fraction, check_int, check_labelled_features, check_positive_int, resolve_device


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2)])
def test_check_positive_int_accepts_python_and_numpy_ints(value):
    out = check_positive_int(value, "top_k")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, found", [
    (0, "got 0."), (-3, "got -3."), (True, "got True (a bool)"), (2.0, "got 2.0."), ("5", "got '5' (a str)"),
    (None, "got None (a NoneType)"),
])
def test_check_positive_int_says_what_was_found_and_expected(value, found):
    with pytest.raises(InvalidInputError, match=r"top_k must be an int >= 1") as e:
        check_positive_int(value, "top_k")
    assert found in str(e.value)


def test_check_int_range_hint_and_fix():
    with pytest.raises(InvalidInputError, match=r"^side must be an int from 1 to 8 \(pixels\), got 9\.$"):
        check_int(9, "side", minimum=1, maximum=8, hint="pixels")
    with pytest.raises(InvalidInputError,
                       match=r"seed must be an int >= 0, got 1\.5\. Pass a whole number such as 0\."):
        check_int(1.5, "seed", minimum=0)
    assert check_int(-4, "offset") == -4


@pytest.mark.parametrize("value", [0, 1, 0.25, np.float32(0.5)])
def test_check_fraction_accepts_numbers_in_the_unit_interval(value):
    assert check_fraction(value, "w") == pytest.approx(float(value))


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), True, "0.5", None])
def test_check_fraction_refuses_the_rest(value):
    with pytest.raises(InvalidInputError, match=r"w must be a number in \[0, 1\] \(a share\), got"):
        check_fraction(value, "w", meaning="a share")


def test_array_checks_are_the_metrics_own_under_the_callers_name():
    checked = check_labelled_features(np.eye(4), [0, 0, 1, 1], caller="mine")
    assert checked.n_classes == 2 and tuple(checked.values.shape) == (4, 4)
    with pytest.raises(InvalidInputError, match=r"^mine: features must be 2-D"):
        check_labelled_features(np.ones(4), [0, 0, 1, 1], caller="mine")
    assert str(resolve_device("cpu")) == "cpu"
    with pytest.raises(InvalidInputError, match="nonsense"):
        resolve_device("nonsense")


def test_importing_validation_loads_neither_torch_nor_numpy():
    code = "import sys, fennec.validation; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- the modules whose hand-written checks it replaced: one wording everywhere ------------------


def test_the_users_of_the_shared_checks_give_its_messages():
    from fennec.data import check_sampling
    from fennec.index import ModelIndex
    from fennec.recommendation import RefineOptions
    from fennec.space.baseline import FennecBaseline

    with pytest.raises(InvalidInputError, match=r"seed must be an int >= 0 \(the sample must be reproducible\), "
                                                r"got True \(a bool\)"):
        check_sampling(max_samples=10, min_per_class=2, seed=True)
    with pytest.raises(InvalidInputError, match=r"max_samples must be an int >= 1"):
        check_sampling(max_samples=0, min_per_class=2, seed=0)
    with pytest.raises(InvalidInputError, match=r"k must be an int >= 1 \(how many nearest models to return\), got 0"):
        ModelIndex(3).search(np.ones(3), k=0)
    with pytest.raises(InvalidInputError, match=r"fusion_weight must be a number in \[0, 1\]"):
        RefineOptions(fusion_weight=2)
    with pytest.raises(InvalidInputError, match=r"batch_size must be an int >= 1"):
        RefineOptions(batch_size=2.5)
    with pytest.raises(InvalidInputError, match=r"FennecBaseline\(meta_weight=\) must be a number in \[0, 1\]"):
        FennecBaseline(k=2, meta_weight=3.0).fit({}, {}, {})


def test_evaluation_top_k_uses_the_shared_check():
    from fennec.evaluation import relative_top_k_accuracy, top_k_regret

    with pytest.raises(InvalidInputError, match=r"top_k_regret: k must be an int from 1 to 3 \(at most the number "
                                                r"of models\), got 4"):
        top_k_regret([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], k=4)
    with pytest.raises(InvalidInputError, match=r"relative_top_k_accuracy: k must be an int from 1 to 3 \(at most "
                                                r"the number of models\), got 1\.0\. Pass a whole number"):
        relative_top_k_accuracy([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], k=1.0)
