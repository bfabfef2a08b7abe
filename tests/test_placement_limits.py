"""The helpers of benchmark/placement_limits.py: descriptor blocks and stratified image parts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmark"))

import placement_limits as pl
from fennec.task import describe


def test_block_columns_cut_the_descriptor_where_describe_puts_each_part():
    rng = np.random.default_rng(0)
    emb, labels = rng.normal(size=(40, 5)), np.repeat(np.arange(4), 10)
    desc = describe(emb, labels)  # 3·5 + 6 = 21
    assert list(pl.block_columns(desc.size, ("centre",))) == list(range(0, 5))
    assert list(pl.block_columns(desc.size, ("scalars",))) == list(range(15, 21))
    assert list(pl.block_columns(desc.size, pl.BLOCKS)) == list(range(21))
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    means = np.stack([x[labels == c].mean(axis=0) for c in range(4)])
    assert desc[pl.block_columns(desc.size, ("centre",))] == pytest.approx(means.mean(axis=0), abs=1e-6)
    assert desc[pl.block_columns(desc.size, ("between",))] == pytest.approx(means.std(axis=0), abs=1e-6)
    with pytest.raises(ValueError, match="3·D"):
        pl.block_columns(20, ("centre",))


def test_stratified_part_keeps_each_class_in_proportion_and_at_least_two():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 2)
    part = pl.stratified_part(labels, 0.5, seed=1)
    assert list(np.bincount(labels[part])) == [5, 2, 2]
    assert list(part) == sorted(set(part.tolist()))  # sorted, no repeats
    assert list(pl.stratified_part(labels, 1.0, seed=1)) == list(range(16))
    assert list(part) == list(pl.stratified_part(labels, 0.5, seed=1))  # seeded
    assert list(part) != list(pl.stratified_part(labels, 0.5, seed=2))
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            pl.stratified_part(labels, bad, seed=0)
