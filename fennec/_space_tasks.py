"""Deprecated alias of :mod:`fennec.space.tasks` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec._space_tasks", ("fennec.space.tasks",),
    renamed={"_standardiser": "standardiser", "_task_weights": "task_weights", "_candidates": "candidates"},
)
