"""Deprecated alias of :mod:`fennec.features.loading` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec._model_loading", ("fennec.features.loading",),
    renamed={"_Spec": "Spec", "_spec_of": "spec_of"},
)
