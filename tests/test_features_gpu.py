"""The CUDA path of feature extraction and of recommend() agrees with the CPU
(run with ``pytest -m gpu`` on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fennec.features import model_features
from test_features import build_feature_hub, make_sample
from zoo_fixtures import tiny_zoo  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return build_feature_hub(tmp_path_factory.mktemp("gpu_hub"))


@pytest.mark.parametrize("repo_id", ["org/tiny-vit", "org/tiny-resnet", "org/tiny-deit-teacher"])
def test_cuda_features_match_cpu(hub, repo_id):
    sample = make_sample(40, classes=4)
    cpu = model_features(repo_id, sample, hub=hub, cache=False, device="cpu")
    cuda = model_features(repo_id, sample, hub=hub, cache=False, device="cuda")
    assert cuda.features.dtype == np.float32 and cuda.features.shape == cpu.features.shape
    np.testing.assert_allclose(cuda.features, cpu.features, rtol=1e-3, atol=1e-4)
    if cpu.probabilities is not None:
        np.testing.assert_allclose(cuda.probabilities, cpu.probabilities, rtol=1e-3, atol=1e-5)


def test_recommend_on_cuda_matches_cpu(tiny_zoo, monkeypatch):
    from fennec.recommendation.recommender import recommend

    monkeypatch.setenv("FENNEC_ZOO", str(tiny_zoo))
    dataset = tiny_zoo / "datasets" / "t-new"
    cpu = recommend(dataset, top_k=5, candidates=3, device="cpu", cache=False)
    cuda = recommend(dataset, top_k=5, candidates=3, device="cuda", cache=False)
    assert [r.model_id for r in cuda] == [r.model_id for r in cpu]
    for a, b in zip(cpu, cuda, strict=True):
        assert b.predicted_score == pytest.approx(a.predicted_score, rel=1e-3, abs=1e-4)
        if a.metric_score is not None:
            assert b.metric_score == pytest.approx(a.metric_score, rel=1e-3, abs=1e-4)
