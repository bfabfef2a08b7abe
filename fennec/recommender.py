"""Deprecated alias of :mod:`fennec.recommendation.recommender` / :mod:`fennec.recommendation.records`
(moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec.recommender", ("fennec.recommendation.recommender", "fennec.recommendation.records"),
    renamed={"_workspace_for": "workspace_for", "_read_catalog": "read_catalog"},
)
