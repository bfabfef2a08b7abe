"""Deprecated alias of :mod:`fennec.recommendation.refine` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec.refine", ("fennec.recommendation.refine",), renamed={"_zscore": "zscore"})
