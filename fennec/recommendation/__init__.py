"""``fennec.recommend()``: rank a workspace's vision models for a labelled image dataset.

- :mod:`fennec.recommendation.recommender`: :func:`recommend`, the path of one call;
- :mod:`fennec.recommendation.refine`: re-ranking the shortlist with a transferability metric
  and fusing the two scores (imports torch: loaded only when a call refines);
- :mod:`fennec.recommendation.records`: what it returns (:class:`Recommendations`);
- :mod:`fennec.recommendation.options`: its grouped options (:class:`RefineOptions`,
  :class:`SamplingOptions`) and the single home of its defaults (the fusion weight, the metric).
"""

from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, RefineOptions, SamplingOptions
from fennec.recommendation.recommender import LOW_SIMILARITY, NEAR_SIMILARITY, recommend
from fennec.recommendation.records import (
    SAME_DATA_SIMILARITY,
    KnownTask,
    Recommendation,
    Recommendations,
    WorkspaceInfo,
)

__all__ = [
    "DEFAULT_FUSION_WEIGHT",
    "LOW_SIMILARITY",
    "NEAR_SIMILARITY",
    "SAME_DATA_SIMILARITY",
    "KnownTask",
    "Recommendation",
    "Recommendations",
    "RefineOptions",
    "SamplingOptions",
    "WorkspaceInfo",
    "recommend",
]
