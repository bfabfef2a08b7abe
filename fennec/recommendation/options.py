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
    >>> RefineOptions(metric="logme", fusion_weight=0.75, placement_strength=None)
    RefineOptions(metric='logme', fusion_weight=0.75, batch_size=64, placement_strength=None)
    >>> SamplingOptions(split="test").split
    'test'
"""

from __future__ import annotations

import dataclasses
import math

from fennec import constants
from fennec.errors import InvalidInputError
from fennec.validation import check_fraction, check_positive_int, is_number

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CANDIDATES", "DEFAULT_FUSION_WEIGHT", "DEFAULT_METRIC",
           "DEFAULT_PLACEMENT_STRENGTH", "RefineOptions", "SamplingOptions"]

#: Weight of the metric in the fusion (:func:`fennec.recommendation.refine.fuse`); the zoo benchmark's
#: leave-one-task-out choice is reported in benchmark/results/zoo_recommend.md.
DEFAULT_FUSION_WEIGHT = 0.5
#: The metric of refinement: the best single metric of the zoo benchmark
#: (:data:`fennec.constants.DEFAULT_METRIC`, benchmark/results/zoo_metrics.md).
DEFAULT_METRIC = constants.DEFAULT_METRIC
#: Prior strength of the placement update (:meth:`fennec.space.TransferSpace.update_task_vector`:
#: the prior placement counts as this many observations of an average model; ``math.inf`` or None:
#: no update). The choice of ``fennec bench``'s inner leave-one-task-out over all zoo targets
#: (zoo_recommend.json ``placement_chosen_on_all_targets``).
DEFAULT_PLACEMENT_STRENGTH = 4.0
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
        placement_strength: the candidates' metric scores also move the task's placement, and
            every indexed model is re-predicted from the moved one (docs/recommend.md "Placement
            update"); this is the prior placement's weight, counted in observations of an
            average model (> 0). The candidates are then half the index's best, half chosen to
            make the update well-posed (:func:`fennec.recommendation.refine.choose_candidates`).
            None (or ``math.inf``): no update; the candidates are the index's best, fused ahead
            of the rest.

    Raises:
        InvalidInputError: a ``fusion_weight`` outside [0, 1], a ``batch_size`` that is not a
            positive int or a ``placement_strength`` that is not None or a number > 0 (when the
            options are made; an unknown metric is refused by :func:`fennec.recommend` before any work).
    """

    metric: str = DEFAULT_METRIC
    fusion_weight: float = DEFAULT_FUSION_WEIGHT
    batch_size: int = DEFAULT_BATCH_SIZE
    placement_strength: float | None = DEFAULT_PLACEMENT_STRENGTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "fusion_weight", check_fraction(
            self.fusion_weight, "fusion_weight", meaning="the metric's share of the fused score"))
        object.__setattr__(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))
        strength = self.placement_strength
        if strength is not None:
            if not is_number(strength) or math.isnan(strength) or strength <= 0:
                raise InvalidInputError(
                    f"placement_strength must be a number > 0 (the task placement's weight against the candidates' "
                    f"metric scores, in observations; inf: no placement update), got {strength!r}.")
            object.__setattr__(self, "placement_strength", None if math.isinf(strength) else float(strength))


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
