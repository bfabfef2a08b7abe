"""Penultimate features of pre-trained vision models on a sample of images.

- :mod:`fennec.features.loading`: a Hub checkpoint (transformers or timm) built as a
  feature extractor, with the checks that refuse unsafe or oversized weights;
- :mod:`fennec.features.extraction`: the forward passes (:func:`extract_features`);
- :mod:`fennec.features.cache`: features kept on disk (:class:`FeatureCache`) and
  :func:`model_features`, the entry point that ties hub, cache and extraction together.

Importing this package imports torch.
"""

from fennec._deprecated import forwarded
from fennec.features.cache import CACHE_FORMAT, FeatureCache, model_features
from fennec.features.extraction import ExtractedFeatures, SampleLike, extract_features, preprocess
from fennec.features.loading import load_model

__all__ = [
    "CACHE_FORMAT",
    "ExtractedFeatures",
    "FeatureCache",
    "SampleLike",
    "extract_features",
    "load_model",
    "model_features",
    "preprocess",
]

# What the flat module fennec.features held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.features", (
    "fennec.features.extraction",
    "fennec.features.cache",
    "fennec.features.loading",
), renamed={
    "_check_sample": "check_sample",
    "_features_of": "features_of",
    "_resolve_cache": "resolve_cache",
    "_Spec": "Spec",
    "_spec_of": "spec_of",
})
