"""Labelled image datasets: where they come from and the stratified, seeded sample fennec draws.

- :mod:`fennec.data.sources`: the layouts a dataset may come in (ImageFolder, parquet,
  ``save_to_disk``, a Hub dataset) behind one interface (:func:`open_split`);
- :mod:`fennec.data.sampling`: :func:`load_sample`, the sample every later step reads.
"""

from fennec._deprecated import forwarded
from fennec.data.sampling import (
    DEFAULT_IMAGE_SIDE,
    IMAGE_EXTENSIONS,
    LABEL_COLUMN_NAMES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    DatasetSample,
    check_sampling,
    load_sample,
)

__all__ = ["DEFAULT_IMAGE_SIDE", "IMAGE_EXTENSIONS", "LABEL_COLUMN_NAMES", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE",
           "DatasetSample", "check_sampling", "load_sample"]

# What the flat module fennec.data held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.data", (
    "fennec.data.sampling",
    "fennec.data.sources",
))
