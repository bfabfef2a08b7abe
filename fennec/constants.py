"""Environment variables and defaults, read at call time (never cached at import).

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HOME`` once, when it is
imported; fennec reads them every time it needs them and passes them explicitly, so that
changing the environment of a running process (as tests and long-running reindex services
do) takes effect.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_HF_ENDPOINT",
    "fennec_home",
    "hf_endpoint",
    "hf_hub_cache",
    "hf_offline",
    "hf_token",
    "local_hub_dir",
]

DEFAULT_HF_ENDPOINT = "https://huggingface.co"

#: Pipeline tags of the models fennec recommends.
PIPELINE_TAGS = ("image-classification", "image-feature-extraction")
#: Libraries whose models fennec can build from a config.
LIBRARIES = ("transformers", "timm")
#: The transferability metric of refinement (:data:`fennec.refine.DEFAULT_METRIC`, documented
#: there); here so that the command line shows it without importing torch.
DEFAULT_METRIC = "hscore_regularized"

_TRUE = {"1", "ON", "YES", "TRUE"}


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().upper() in _TRUE


def hf_endpoint() -> str:
    """``HF_ENDPOINT`` without a trailing slash, or the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")


def hf_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))


def hf_token() -> str | None:
    """``HF_TOKEN`` if set and not empty."""
    return os.environ.get("HF_TOKEN") or None


def hf_home() -> Path:
    """``HF_HOME``, or ``$XDG_CACHE_HOME/huggingface``, or ``~/.cache/huggingface``."""
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface"


def hf_hub_cache() -> Path:
    """The standard Hugging Face model cache: ``HF_HUB_CACHE`` or ``HF_HOME/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return hf_home() / "hub"


def fennec_home() -> Path:
    """Where fennec keeps its catalog and index: ``FENNEC_HOME`` or ``HF_HOME/fennec``."""
    if os.environ.get("FENNEC_HOME"):
        return Path(os.environ["FENNEC_HOME"]).expanduser()
    return hf_home() / "fennec"


def local_hub_dir() -> Path | None:
    """``FENNEC_LOCAL_HUB``: a folder of Hub-style model repositories used when offline."""
    value = os.environ.get("FENNEC_LOCAL_HUB")
    return Path(value).expanduser() if value else None
