"""Deprecated alias of :mod:`fennec.space.side` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec._space_side", ("fennec.space.side",),
    renamed={
        "_JITTER": "JITTER",
        "_SideEncoder": "SideEncoder",
        "_check_vector": "check_vector",
        "_choose_side_alpha": "choose_side_alpha",
        "_ridge": "ridge",
        "_sides": "sides_of",
        "_check_params": "check_params",
    },
)
