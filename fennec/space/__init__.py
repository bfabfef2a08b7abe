"""The transfer space: one vector per model and per task, learned from transfer history.

- :mod:`fennec.space.results`: the results table, checked and normalised per task;
- :mod:`fennec.space.side`: side information (:class:`ModelSide`, :class:`TaskSide`) and
  its encoder, the prior of a model with little or no history;
- :mod:`fennec.space.tasks`: the new-task predictors and their leave-one-task-out chooser;
- :mod:`fennec.space.transfer`: :class:`TransferSpace`, the factorisation that ties them;
- :mod:`fennec.space.baseline`: the Fennec paper's recipe, the baseline it must beat.
"""

from fennec._deprecated import forwarded
from fennec.space.results import NORMALISATIONS, normalise_results
from fennec.space.side import ModelSide, TaskSide
from fennec.space.transfer import SPACE_VERSION, TransferSpace

__all__ = [
    "NORMALISATIONS",
    "SPACE_VERSION",
    "ModelSide",
    "TaskSide",
    "TransferSpace",
    "normalise_results",
]

# What the flat module fennec.space held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.space", (
    "fennec.space.transfer",
    "fennec.space.results",
    "fennec.space.side",
    "fennec.space.tasks",
), renamed={
    "_matrix": "results_matrix",
    "_JITTER": "JITTER",
    "_SideEncoder": "SideEncoder",
    "_check_vector": "check_vector",
    "_choose_side_alpha": "choose_side_alpha",
    "_ridge": "ridge",
    "_sides": "sides_of",
    "_standardiser": "standardiser",
    "_task_weights": "task_weights",
    "_candidates": "candidates",
})
