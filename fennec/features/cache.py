"""Features on disk, and the entry point that ties hub, cache and extraction together.

:class:`FeatureCache` keeps each model's outputs on a sample by (model commit sha, sample
fingerprint); :func:`model_features` serves them from it, or fetches the model and runs it
(:func:`fennec.features.extraction.extract_features`).

Example:
    >>> from fennec.hub import open_hub
    >>> hub = open_hub("zoo/hub")  # doctest: +SKIP
    >>> out = model_features("photolab/resnet-tiny-photos", sample, hub=hub)  # doctest: +SKIP
    >>> out.features.shape, out.cached  # doctest: +SKIP
    ((200, 128), False)
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from fennec import constants
from fennec._io import save_npz_atomic
from fennec.errors import InvalidInputError
from fennec.features.extraction import ExtractedFeatures, SampleLike, extract_features
from fennec.hub.records import ModelFiles

if TYPE_CHECKING:
    from fennec.hub.protocol import Hub

__all__ = ["CACHE_FORMAT", "FeatureCache", "check_sample", "features_of", "model_features", "resolve_cache"]

LOG = logging.getLogger(__name__)

#: Bumped when the cached arrays would differ for the same (model, sample) key.
CACHE_FORMAT = 1

_SAFE = re.compile(r"^[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}$")


def _filename_part(key: str) -> str:
    """``key`` itself when it is a safe file name, else its sha256 (the key is checked on read)."""
    return key if _SAFE.match(key) else hashlib.sha256(key.encode("utf-8")).hexdigest()


class FeatureCache:
    """Features on disk, keyed by (model commit sha, sample fingerprint).

    One ``.npz`` per key, ``<root>/<model sha>/<fingerprint>.npz``, holding float32
    ``features`` (and ``probabilities`` when the model has a head) plus the key itself, which
    :meth:`get` checks: a corrupt, truncated or mismatching file is ignored (logged) and
    replaced by the next :meth:`put`. Writes are atomic (temp file + rename), so concurrent
    writers and interrupted runs never leave a partial file under the final name.

    Args:
        root: the folder; default ``fennec_home() /`` :data:`~fennec.constants.FEATURES_DIR`.

    Example:
        >>> cache = FeatureCache(tmp_path)  # doctest: +SKIP
        >>> cache.put(sha, sample.fingerprint, feats, probs)  # doctest: +SKIP
        >>> feats2, probs2 = cache.get(sha, sample.fingerprint)  # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else constants.fennec_home() / constants.FEATURES_DIR

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    def path(self, model_sha: str, fingerprint: str) -> Path:
        """Where the arrays for this key live."""
        return self.root / _filename_part(model_sha) / f"{_filename_part(fingerprint)}.npz"

    def get(self, model_sha: str, fingerprint: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``(features, probabilities)`` for this key, or None when absent or unusable."""
        path = self.path(model_sha, fingerprint)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                found = (str(z["model_sha"]), str(z["fingerprint"]), int(z["format"]))
                if found != (model_sha, fingerprint, CACHE_FORMAT):
                    raise ValueError(f"it holds key {found}, not {(model_sha, fingerprint, CACHE_FORMAT)}")
                features = z["features"]
                probabilities = z["probabilities"] if "probabilities" in z.files else None
            _check_arrays(features, probabilities)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            LOG.warning("Ignoring unusable feature cache file %s (%s); it will be rewritten", path, e)
            return None
        return features, probabilities

    def put(self, model_sha: str, fingerprint: str, features: np.ndarray,
            probabilities: np.ndarray | None) -> Path:
        """Store the arrays (as float32) under this key, atomically; returns the file."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if probabilities is not None:
            probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
        _check_arrays(features, probabilities)
        arrays = {"features": features, "model_sha": np.array(model_sha), "fingerprint": np.array(fingerprint),
                  "format": np.array(CACHE_FORMAT)}
        if probabilities is not None:
            arrays["probabilities"] = probabilities
        return save_npz_atomic(self.path(model_sha, fingerprint), arrays)


def _check_arrays(features: np.ndarray, probabilities: np.ndarray | None) -> None:
    if features.dtype != np.float32 or features.ndim != 2:
        raise InvalidInputError(f"features must be 2-D float32, got {features.ndim}-D {features.dtype}")
    if probabilities is not None and (probabilities.dtype != np.float32 or probabilities.ndim != 2
                                      or len(probabilities) != len(features)):
        raise InvalidInputError(f"probabilities must be 2-D float32 with {len(features)} rows, got "
                         f"shape {probabilities.shape} {probabilities.dtype}")


# -- hub + cache + extraction ----------------------------------------------------------


def check_sample(sample: SampleLike) -> None:
    for attr in ("images", "labels", "fingerprint"):
        if not hasattr(sample, attr):
            raise InvalidInputError(f"The sample has no {attr!r} attribute; expected an object with "
                                    "images (PIL list), labels ((N,) int64) and fingerprint (str).")
    if not isinstance(sample.fingerprint, str) or not sample.fingerprint:
        raise InvalidInputError(f"sample.fingerprint must be a non-empty str, got {sample.fingerprint!r}.")
    n_images, n_labels = len(sample.images), len(np.asarray(sample.labels))
    if n_images == 0 or n_images != n_labels:
        raise InvalidInputError(f"The sample has {n_images} images and {n_labels} labels; expected the "
                                "same positive number of each.")


def resolve_cache(cache: FeatureCache | bool | None) -> FeatureCache | None:
    if cache is None or cache is True:
        return FeatureCache()
    if cache is False:
        return None
    if isinstance(cache, FeatureCache):
        return cache
    raise InvalidInputError(f"cache must be a FeatureCache, True/None (the default cache) or False "
                            f"(no cache), got {type(cache).__name__}.")


def model_features(repo_id: str, sample: SampleLike, *, hub: Hub, revision: str | None = None,
                   cache: FeatureCache | bool | None = None, device: str | torch.device | None = None,
                   batch_size: int = 64, progress: bool = False) -> ExtractedFeatures:
    """One model's features on a sample, from the cache or by running the model.

    A cache hit needs only the model's commit sha (config only, no weight download).

    Args:
        repo_id: ``org/name``.
        sample: images, labels and fingerprint (:class:`SampleLike`).
        hub: ``fennec.hub.open_hub(...)`` (HfHub or LocalHub).
        revision: a branch, tag or commit; default the main branch.
        cache: a FeatureCache, None/True for the default one, False for none.
        device, batch_size, progress: as in :func:`extract_features`.

    Returns:
        :class:`ExtractedFeatures`.

    Raises:
        InvalidInputError: a malformed sample or option.
        fennec.errors.HubError: the model cannot be fetched or is unsupported.
        FeatureExtractionError: non-finite outputs.
    """
    t0 = time.perf_counter()
    check_sample(sample)
    store = resolve_cache(cache)
    files = hub.fetch(repo_id, revision=revision, weights=False)
    return features_of(files, sample, hub=hub, store=store, device=device, batch_size=batch_size,
                       progress=progress, started=t0)


def features_of(files: ModelFiles, sample: SampleLike, *, hub: Hub, store: FeatureCache | None,
                 device: str | torch.device | None, batch_size: int, progress: bool,
                 started: float) -> ExtractedFeatures:
    """:func:`model_features` once the model's config (and so its sha) is fetched."""
    repo_id, n = files.repo_id, len(sample.images)
    if store is not None:
        hit = store.get(files.sha, sample.fingerprint)
        if hit is not None and len(hit[0]) == n:
            return ExtractedFeatures(repo_id, files.sha, hit[0], hit[1], 0, time.perf_counter() - started, True)
        if hit is not None:
            LOG.warning("Cached features of %s have %d rows for a sample of %d images; recomputing",
                        repo_id, len(hit[0]), n)
    if files.weights_path is None:
        files = hub.fetch(repo_id, revision=files.sha, weights=True)
    features, probabilities = extract_features(files, list(sample.images), device=device,
                                               batch_size=batch_size, progress=progress)
    if store is not None:
        try:
            store.put(files.sha, sample.fingerprint, features, probabilities)
        except OSError as e:  # a full or read-only cache folder must not throw good features away
            LOG.warning("Could not cache the features of %s in %s (%s); they are used but not kept",
                        repo_id, store.root, e)
    return ExtractedFeatures(repo_id, files.sha, features, probabilities, n, time.perf_counter() - started, False)
