"""Transferability metrics: how well will a pre-trained model fine-tune on a labelled dataset?

Every metric is a pure function ``name(inputs, labels, *, ..., device=None) -> float`` where a
higher score means a more transferable model. ``inputs`` are the model's penultimate features
``(N, D)`` on the target images, or, for LEEP and NCE, the source model's class
probabilities ``(N, C_s)``. Inputs may be numpy arrays or torch tensors on any device and
are never modified. Metrics compute in float64, on ``device`` (default: the input tensor's
device, else CUDA when available, else the CPU).

    >>> import numpy as np
    >>> from fennec.metrics import list_metrics, get_metric
    >>> list_metrics()
    ['hscore', 'hscore_regularized', 'leep', 'logme', 'nce', 'nleep', 'parc', 'ped', 'sfda', 'transrate']
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(3), 20)
    >>> features = rng.normal(size=(60, 8)) + 3.0 * labels[:, None]   # classes apart: transferable
    >>> sfda = get_metric("sfda")
    >>> bool(sfda(features, labels) > sfda(features, rng.permutation(labels)))
    True

Specifications, including where fennec deliberately departs from the reference code:
``docs/metrics.md``.
"""

from __future__ import annotations

from ._registry import MetricInfo, get_metric, list_metrics, metric_info, register_metric
from .hscore import hscore, hscore_regularized
from .leep import leep
from .logme import logme
from .nce import nce
from .nleep import nleep
from .parc import parc
from .ped import ped

# Importing a metric module registers its metric.
from .sfda import sfda
from .transrate import transrate

__all__ = [
    "MetricInfo",
    "get_metric",
    "list_metrics",
    "metric_info",
    "register_metric",
    "sfda",
    "logme",
    "ped",
    "leep",
    "nce",
    "nleep",
    "hscore",
    "hscore_regularized",
    "transrate",
    "parc",
]
