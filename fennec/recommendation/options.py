"""What :func:`fennec.recommend` can be told beyond the dataset, grouped, and its defaults.

This module is the single home of the recommendation defaults (the fusion weight, the
refinement metric, the shortlist size, the refinement batch size): :func:`fennec.recommend`,
:func:`fennec.recommendation.refine.fuse`, ``fennec recommend`` and ``fennec bench`` read them
from here. It imports neither torch nor the recommender, so the CLI can build its options
without loading either.

- :class:`RefineOptions`: how the shortlist is re-ranked (``refine=RefineOptions(...)``);
- :class:`SamplingOptions`: how the dataset is read and sampled (``sampling=SamplingOptions(...)``),
  the arguments of :func:`fennec.data.load_sample`.

Example:
    >>> RefineOptions(metric="logme", fusion_weight=0.75)
    RefineOptions(metric='logme', fusion_weight=0.75, batch_size=64)
    >>> SamplingOptions(split="test").split
    'test'
"""

from __future__ import annotations

import dataclasses

from fennec import constants
from fennec.validation import check_fraction, check_positive_int

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CANDIDATES", "DEFAULT_FUSION_WEIGHT", "DEFAULT_METRIC",
           "RefineOptions", "SamplingOptions"]

#: Weight of the metric in the fusion (:func:`fennec.recommendation.refine.fuse`); the zoo benchmark's
#: leave-one-task-out choice is reported in benchmark/results/zoo_recommend.md.
DEFAULT_FUSION_WEIGHT = 0.5
#: The metric of refinement: the best single metric of the zoo benchmark
#: (:data:`fennec.constants.DEFAULT_METRIC`, benchmark/results/zoo_metrics.md).
DEFAULT_METRIC = constants.DEFAULT_METRIC
#: How many models the index proposes (and, when refining, re-ranks with forward passes).
DEFAULT_CANDIDATES = 20
#: Images per forward pass when a candidate's features are extracted for refinement.
DEFAULT_BATCH_SIZE = 64


@dataclasses.dataclass(frozen=True)
class RefineOptions:
    """How :func:`fennec.recommend` re-ranks its shortlist (``refine=RefineOptions(...)``;
    ``refine=True`` is ``RefineOptions()``, ``refine=False`` skips re-ranking).

    Attributes:
        metric: the transferability metric's registry name (:func:`fennec.metrics.list_metrics`).
        fusion_weight: the metric's share in the fused score, in [0, 1]
            (:func:`fennec.recommendation.refine.fuse`: 0 = the transfer space only, 1 = the metric only).
        batch_size: images per forward pass of a candidate.

    Raises:
        InvalidInputError: a ``fusion_weight`` outside [0, 1] or a ``batch_size`` that is not a
            positive int (when the options are made; an unknown metric is refused by
            :func:`fennec.recommend` before any work).
    """

    metric: str = DEFAULT_METRIC
    fusion_weight: float = DEFAULT_FUSION_WEIGHT
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "fusion_weight", check_fraction(
            self.fusion_weight, "fusion_weight", meaning="the metric's share of the fused score"))
        object.__setattr__(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How :func:`fennec.recommend` reads and samples the dataset (the arguments of
    :func:`fennec.data.load_sample`; ignored when the dataset is an already loaded sample).

    Attributes:
        split, config, image_column, label_column: which split, config and columns to read
            (None: detected).
        max_samples, seed: the sample budget and seed; None = the values the workspace's known
            tasks were described with (``fit.json``; 1000 and 0), so that the new descriptor is
            comparable with theirs; other values are honoured with a warning.
        min_per_class: classes with fewer usable images are dropped with a warning.
    """

    split: str | None = None
    config: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    max_samples: int | None = None
    seed: int | None = None
    min_per_class: int = 2
