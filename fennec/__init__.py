"""fennec: recommend the pre-trained vision models that will fine-tune best on your dataset."""

from __future__ import annotations

from archi2vec._compat import ensure_torchvision_importable as _ensure_torchvision_importable

# The PyPI torchvision wheel fails to import beside CPU-only torch, and transformers imports
# torchvision whenever it is installed: define its two missing op schemas first (a no-op when
# torchvision is absent or healthy).
_ensure_torchvision_importable()

__version__ = "0.1.0.dev0"

from fennec.recommender import Recommendation, Recommendations, recommend  # noqa: E402
from fennec.workspace import fit  # noqa: E402

__all__ = ["Recommendation", "Recommendations", "__version__", "fit", "recommend"]
