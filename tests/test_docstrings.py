"""The examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "fennec.metrics",
    "fennec.metrics.sfda",
    "fennec.metrics.logme",
    "fennec.metrics.ped",
    "fennec.metrics.leep",
    "fennec.metrics.nce",
    "fennec.metrics.nleep",
    "fennec.metrics.hscore",
    "fennec.metrics.transrate",
    "fennec.metrics.parc",
    "fennec.metrics._registry",
    "fennec.evaluation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
