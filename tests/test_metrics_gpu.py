"""The CUDA paths of every metric agree with the CPU (run with ``pytest -m gpu`` on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

from conftest import make_blobs
from fennec.metrics import get_metric, list_metrics, metric_info

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _inputs(name: str, x, y):
    if metric_info(name).input == "probabilities":
        return torch.softmax(torch.from_numpy(x).double() * 2, dim=1).numpy()
    return x


@pytest.mark.parametrize("name", list_metrics())
def test_cuda_matches_cpu(name):
    x, y = make_blobs(600, 32, 6, separation=0.4, seed=0)
    inputs = _inputs(name, x, y)
    cpu = get_metric(name)(inputs, y, device="cpu")
    cuda = get_metric(name)(inputs, y, device="cuda")
    assert cuda == pytest.approx(cpu, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", list_metrics())
def test_cuda_tensor_input_stays_on_its_device(name):
    x, y = make_blobs(300, 16, 4, separation=0.4, seed=1)
    inputs = torch.as_tensor(_inputs(name, x, y), device="cuda")
    labels = torch.as_tensor(y, device="cuda")
    before = inputs.clone()
    score = get_metric(name)(inputs, labels)
    assert isinstance(score, float)
    assert torch.equal(inputs, before)
