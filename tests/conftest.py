"""Shared fixtures: every test runs offline, with caches in a temporary folder."""

from __future__ import annotations

import numpy as np
import pytest

from archi2vec._compat import ensure_torchvision_importable

# Tests import transformers and timm directly: make torchvision importable first (whichever
# torchvision build sits beside this torch, see archi2vec/_compat.py).
ensure_torchvision_importable()


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    """Point every cache at a temp dir and forbid Hub access."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("FENNEC_HOME", str(tmp_path / "fennec_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_blobs(n: int, d: int, c: int, *, separation: float = 3.0, seed: int = 0,
               dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class blobs: features (n, d), labels (n,) with every class present."""
    r = np.random.default_rng(seed)
    centers = r.normal(size=(c, d)) * separation
    y = np.arange(n) % c
    r.shuffle(y)
    x = centers[y] + r.normal(size=(n, d))
    return x.astype(dtype), y.astype(np.int64)
