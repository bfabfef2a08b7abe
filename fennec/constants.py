"""Environment variables and defaults, read at call time (never cached at import), and the
name of every file and folder fennec keeps on disk (each spelled here only).

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
    "proxy_for",
]

DEFAULT_HF_ENDPOINT = "https://huggingface.co"

#: Pipeline tags of the models fennec recommends.
PIPELINE_TAGS = ("image-classification", "image-feature-extraction")
#: Libraries whose models fennec can build from a config.
LIBRARIES = ("transformers", "timm")
#: The transferability metric of refinement (:data:`fennec.recommendation.refine.DEFAULT_METRIC`, documented
#: there); here so that the command line shows it without importing torch.
DEFAULT_METRIC = "hscore_regularized"

# -- on-disk names ----------------------------------------------------------------------
# A workspace (FENNEC_HOME, or the embedded zoo's, FENNEC_HOME/zoo; fennec.workspace):
#: The catalog (:mod:`fennec.catalog`).
CATALOG_FILE = "catalog.sqlite"
#: Beside the catalog: the lock a reindex (or a catalog repair) holds.
REINDEX_LOCK_FILE = "reindex.lock"
#: The link to the current fitted version (``.space.v<N>``, :mod:`fennec.workspace.history`).
SPACE_LINK = "space"
#: In a fitted version: what the fit used and made (hub, proxy, versions, stamps).
FIT_MANIFEST = "fit.json"
#: In a fitted version: the transfer space, the FAISS index of model vectors, the task index.
SPACE_FILE = "space.npz"
MODEL_INDEX_DIR = "index"
TASK_INDEX_DIR = "tasks"
#: In a fitted version: the file its readers hold a shared lock on.
READERS_FILE = ".readers"
#: Fits of one workspace (and builds of the zoo's) run one at a time, holding this lock.
FIT_LOCK_FILE = ".fit.lock"
#: The descriptors of its historical Hub tasks (:class:`fennec.workspace.known_tasks.DescriptorCache`).
DESCRIPTORS_DIR = "descriptors"
# Under FENNEC_HOME:
#: The embedded zoo's workspace.
ZOO_HOME_DIR = "zoo"
#: The feature cache (:class:`fennec.features.cache.FeatureCache`).
FEATURES_DIR = "features"
# A zoo (the embedded one, or FENNEC_ZOO):
#: Its model repositories, its datasets, and its fine-tuning ground truth.
ZOO_HUB_DIR = "hub"
ZOO_DATASETS_DIR = "datasets"
ZOO_GROUND_TRUTH_FILE = "ground_truth.json"

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


def proxy_for(*, cuda: bool) -> str | None:
    """``FENNEC_PROXY_GPU`` (``cuda``) or ``FENNEC_PROXY_CPU``: the Hub proxy a new fit uses by
    default on that device (:func:`fennec.task.default_proxy`); None when unset or empty."""
    return os.environ.get("FENNEC_PROXY_GPU" if cuda else "FENNEC_PROXY_CPU") or None


#: The environment variable naming the Ray cluster of fennec's heavy steps (``--ray`` overrides it).
RAY_ADDRESS_ENV = "FENNEC_RAY_ADDRESS"


def ray_address() -> str | None:
    """``FENNEC_RAY_ADDRESS``: where the heavy steps run as Ray tasks (:mod:`fennec.engine`; a
    cluster's address, or ``local`` for a Ray instance each command starts), or None: in this
    process."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip() or None
