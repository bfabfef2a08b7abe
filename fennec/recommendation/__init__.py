"""``fennec.recommend()``: rank a workspace's vision models for a labelled image dataset.

- :mod:`fennec.recommendation.recommender`: :func:`recommend`, the path of one call;
- :mod:`fennec.recommendation.refine`: re-ranking the shortlist with a transferability metric
  and fusing the two scores (imports torch: loaded only when a call refines);
- :mod:`fennec.recommendation.records`: what it returns (:class:`Recommendations`).
"""

from fennec.recommendation.recommender import DEFAULT_FUSION_WEIGHT, LOW_SIMILARITY, NEAR_SIMILARITY, recommend
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
    "WorkspaceInfo",
    "recommend",
]
