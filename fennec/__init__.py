"""fennec: recommend the pre-trained vision models that will fine-tune best on your dataset.

``import fennec`` is cheap: the top-level names below are imported on first use, so
``import fennec.metrics`` or ``from fennec.evaluation import weighted_tau`` loads neither the
recommender nor transformers/torchvision (which are imported, through
:mod:`archi2vec._compat`, only when a model is built).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> the module that defines it
_LAZY = {
    "Recommendation": "fennec.recommendation.records",
    "Recommendations": "fennec.recommendation.records",
    "RefineOptions": "fennec.recommendation.options",
    "SamplingOptions": "fennec.recommendation.options",
    "recommend": "fennec.recommendation.recommender",
    "fit": "fennec.workspace.fitting",
}

__all__ = ["Recommendation", "Recommendations", "RefineOptions", "SamplingOptions", "__version__", "fit",
           "recommend"]

if TYPE_CHECKING:
    from fennec.recommendation.options import RefineOptions, SamplingOptions
    from fennec.recommendation.recommender import recommend
    from fennec.recommendation.records import Recommendation, Recommendations
    from fennec.workspace.fitting import fit


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fennec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
