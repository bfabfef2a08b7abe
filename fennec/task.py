"""The task side of the transfer space: a dataset as a vector, from one proxy model.

A *proxy* — a large vision model that is not itself a candidate — embeds a stratified
sample of the dataset once (:func:`embed_task`). :func:`describe` turns those per-image
embeddings and their labels into a fixed-size **task descriptor**: not only where the
dataset lies in the proxy's feature space (the mean of the class means), but how its classes
are arranged there — between-class spread, within-class spread, separability, how
confusable the classes are, how many there are and how many examples each has. Two datasets
with the same image statistics but different label structures (digits vs. counting on the
same strokes) get different descriptors.

The transfer space (:mod:`fennec.space`) maps a descriptor to a task vector by way of the
historical tasks whose descriptors are closest; :class:`TaskIndex` is the FAISS index of those
historical descriptors, so every recommendation can name its evidence ("closest known tasks:
…").

The proxy is a setting of the fitted space, because historical and new descriptors must come
from the same model: the embedded zoo uses its own proxy (:data:`OFFLINE_PROXY`, a ResNet
pre-trained on the union of the zoo's source datasets); a space fitted against the Hub
defaults to the proxy that fits the device (:func:`default_proxy`): :data:`GPU_PROXY`
(DINOv2-large) with CUDA, :data:`CPU_PROXY` (DINOv2-small, a task of 1000 images in 160 CPU
seconds, under 3 minutes on one core: benchmark/results/proxy_timing.md) without.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(60, 8)); labels = np.repeat(np.arange(3), 20)
    >>> describe(emb, labels).shape
    (30,)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from fennec.errors import InvalidInputError, UnknownIdError
from fennec.validation import check_labelled_features

if TYPE_CHECKING:
    import torch

    from fennec.features import ExtractedFeatures, FeatureCache, SampleLike
    from fennec.hub.protocol import Hub

__all__ = [
    "CPU_PROXY",
    "DESCRIPTOR_VERSION",
    "GPU_PROXY",
    "OFFLINE_PROXY",
    "ONLINE_PROXY",
    "SCALAR_NAMES",
    "TaskDescriptor",
    "TaskIndex",
    "default_proxy",
    "describe",
    "descriptor_dim",
    "embed_task",
    "task_descriptor",
]

LOG = logging.getLogger(__name__)

#: Version of :func:`describe`; stored with every descriptor and checked on load.
DESCRIPTOR_VERSION = "taskdesc-v1"
#: The proxy of the embedded zoo (a Hub-style repository under ``zoo/hub``).
OFFLINE_PROXY = "fennec/resnet-proxy-union-long"
#: The default proxy of a space fitted against the Hugging Face Hub on a GPU (304 M parameters).
GPU_PROXY = "facebook/dinov2-large"
#: ... and on a CPU (22 M parameters, the same training; benchmark/results/proxy_timing.md).
CPU_PROXY = "facebook/dinov2-small"
#: The large Hub proxy (:data:`GPU_PROXY`), kept under its former name.
ONLINE_PROXY = GPU_PROXY

#: The scalar part of the descriptor, in order (see :func:`describe`).
SCALAR_NAMES = (
    "log_n_classes",
    "log_samples_per_class",
    "fisher_ratio",
    "class_mean_cosine",
    "nearest_centroid_accuracy",
    "within_effective_rank",
)


def default_proxy(device: Any = None) -> str:
    """The Hub proxy that fits ``device``: ``FENNEC_PROXY_GPU`` (default :data:`GPU_PROXY`) on
    a CUDA device, else ``FENNEC_PROXY_CPU`` (default :data:`CPU_PROXY`). ``device=None`` means
    what fennec would use: CUDA when available.

    Example:
        >>> default_proxy("cpu")  # without FENNEC_PROXY_CPU
        'facebook/dinov2-small'
    """
    from fennec import constants
    from fennec.metrics._validation import resolve_device

    cuda = resolve_device(device).type == "cuda"
    return constants.proxy_for(cuda=cuda) or (GPU_PROXY if cuda else CPU_PROXY)


def descriptor_dim(embedding_dim: int) -> int:
    """Length of the descriptor of ``embedding_dim``-dimensional proxy embeddings."""
    return 3 * int(embedding_dim) + len(SCALAR_NAMES)


def describe(embeddings: Any, labels: Any) -> np.ndarray:
    """The task descriptor of a labelled sample's proxy embeddings.

    With ``x_i`` the L2-normalised embeddings (so that descriptors do not depend on the scale
    of the proxy's features), ``mu_c`` the class means and ``C`` the number of classes, the
    descriptor is the concatenation of

    1. the mean of the class means (D) — where the task lies (class-balanced);
    2. the per-dimension standard deviation of the class means (D) — which directions
       separate its classes;
    3. the per-dimension within-class standard deviation, averaged over classes (D) — how
       varied each class is;
    4. six scalars (:data:`SCALAR_NAMES`): log C; log of the mean number of examples per
       class; the Fisher ratio tr(S_b)/tr(S_w); the mean cosine similarity between centred
       class means (high = classes that differ only slightly); the leave-one-out
       nearest-centroid accuracy (cosine) — how linearly easy the task is for the proxy;
       and the effective rank of the within-class covariance (participation ratio of its
       eigenvalues) divided by D.

    Args:
        embeddings: (N, D) proxy embeddings of the sample (numpy or torch).
        labels: (N,) class labels; at least 2 classes and 2 examples per class.

    Returns:
        float32 array of length ``3 * D + 6`` (:func:`descriptor_dim`).

    Raises:
        InvalidInputError: shapes, non-finite values, fewer than 2 classes (from the shared
            metric validation).
    """
    checked = check_labelled_features(embeddings, labels, caller="describe", min_per_class=2, device="cpu")
    # Small products: one BLAS thread is several times faster than a pool on a busy machine
    # (150 ms vs 22 ms for 1000 x 256 on 2 shared cores), and never slower here.
    with threadpool_limits(1):
        return _describe(checked)


def _describe(checked: Any) -> np.ndarray:
    x = checked.values.numpy()
    y = checked.labels.numpy()
    n_classes = checked.n_classes
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.maximum(norms, 1e-12)
    n, d = x.shape
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    means = (onehot.T @ x) / counts[:, None]                      # (C, D)
    centre = means.mean(axis=0)                                    # (D,)
    between_std = means.std(axis=0)                                # (D,)
    resid = x - means[y]                                           # (N, D)
    within_var = (onehot.T @ resid**2) / counts[:, None]           # (C, D)
    within_std = np.sqrt(within_var).mean(axis=0)                  # (D,)

    tr_between = float(((means - centre) ** 2).sum(axis=1).mean())
    tr_within = float((resid**2).sum() / n)
    fisher = tr_between / max(tr_within, 1e-12)

    centred = means - centre
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    off = cos[~np.eye(n_classes, dtype=bool)]
    class_cos = float(off.mean()) if off.size else 0.0

    # Leave-one-out nearest centroid (cosine): remove each sample from its own class mean.
    loo_own = (means[y] * counts[y, None] - x) / np.maximum(counts[y, None] - 1.0, 1.0)
    sims = x @ means.T
    cn = np.linalg.norm(means, axis=1)
    sims = sims / np.maximum(cn[None, :], 1e-12)
    own = (x * loo_own).sum(axis=1) / np.maximum(np.linalg.norm(loo_own, axis=1), 1e-12)
    sims[np.arange(n), y] = own
    ncc_acc = float((sims.argmax(axis=1) == y).mean())

    # participation ratio (Σλ)² / Σλ² of the within-class covariance's eigenvalues, without an
    # eigendecomposition: Σλ = tr(C), Σλ² = ‖C‖_F².
    cov = resid.T @ resid / n
    eff_rank = float(np.trace(cov) ** 2 / max(float((cov * cov).sum()), 1e-24)) / d

    scalars = np.array([np.log(n_classes), np.log(n / n_classes), np.log1p(fisher), class_cos,
                        ncc_acc, eff_rank])
    out = np.concatenate([centre, between_std, within_std, scalars]).astype(np.float32)
    if not np.all(np.isfinite(out)):  # pragma: no cover - every term above is guarded
        raise InvalidInputError("describe: the descriptor is not finite; check the embeddings.")
    return out


@dataclasses.dataclass(frozen=True)
class TaskDescriptor:
    """A dataset sample described by a proxy.

    Attributes:
        vector: the descriptor (:func:`describe`), float32.
        proxy, proxy_sha: the proxy model and the commit its weights come from.
        version: :data:`DESCRIPTOR_VERSION`.
        n_samples, n_classes: of the sample.
        forward_passes: images run through the proxy for this descriptor (0 when cached).
        seconds: wall time of embedding and describing.
    """

    vector: np.ndarray
    proxy: str
    proxy_sha: str
    version: str
    n_samples: int
    n_classes: int
    forward_passes: int = 0
    seconds: float = 0.0


def embed_task(sample: SampleLike, *, proxy: str = OFFLINE_PROXY, hub: Hub, revision: str | None = None,
               device: str | torch.device | None = None, cache: FeatureCache | bool | None = None,
               batch_size: int = 64, progress: bool = False) -> ExtractedFeatures:
    """The proxy's embeddings of a sample: :class:`fennec.features.ExtractedFeatures`.

    The embedding is the proxy's penultimate representation (the input of its
    classification head, or its pooled output for a feature-extraction model), extracted and
    cached exactly like a candidate's features (:func:`fennec.features.model_features`).
    """
    from fennec.features import model_features

    return model_features(proxy, sample, hub=hub, revision=revision, cache=cache, device=device,
                          batch_size=batch_size, progress=progress)


def task_descriptor(sample: SampleLike, *, proxy: str = OFFLINE_PROXY, hub: Hub, revision: str | None = None,
                    device: str | torch.device | None = None, cache: FeatureCache | bool | None = None,
                    batch_size: int = 64,
                    progress: bool = False) -> TaskDescriptor:
    """Embed ``sample`` with ``proxy`` and describe it (:func:`describe`).

    Args:
        sample: a :class:`fennec.data.DatasetSample` (images, labels, fingerprint).
        proxy: the proxy model id on ``hub``.
        hub: where the proxy's weights come from (:func:`fennec.hub.open_hub`).
        revision: the proxy's commit (default: the main branch). A fitted workspace pins the
            commit its historical descriptors were computed with, so new ones are comparable.
        device, cache, batch_size, progress: as for :func:`fennec.features.model_features`.
    """
    t0 = time.perf_counter()
    feats = embed_task(sample, proxy=proxy, hub=hub, revision=revision, device=device, cache=cache,
                       batch_size=batch_size, progress=progress)
    labels = np.asarray(sample.labels)
    vector = describe(feats.features, labels)
    return TaskDescriptor(vector=vector, proxy=proxy, proxy_sha=feats.sha, version=DESCRIPTOR_VERSION,
                          n_samples=int(len(labels)), n_classes=int(len(np.unique(labels))),
                          forward_passes=feats.forward_passes, seconds=time.perf_counter() - t0)


class TaskIndex:
    """Nearest historical tasks by descriptor: a FAISS cosine index over standardised descriptors.

    Descriptors are standardised with the historical tasks' per-dimension mean and standard
    deviation (dimensions that do not vary are dropped), so that no block of the descriptor
    dominates by its scale, then compared by cosine similarity.

    Args:
        task_ids: ids of the historical tasks.
        descriptors: (T, L) their descriptors, one proxy and :data:`DESCRIPTOR_VERSION`.
        proxy: the proxy that computed them (recorded, and checked by :meth:`search` callers).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> idx = TaskIndex(["a", "b", "c"], rng.normal(size=(3, 5)), proxy="p")
        >>> idx.search(idx.descriptor("b"), k=1)[0][0]
        'b'
    """

    def __init__(self, task_ids: Sequence[str], descriptors: Any, *, proxy: str,
                 version: str = DESCRIPTOR_VERSION):
        ids = [str(t) for t in task_ids]
        d = np.asarray(descriptors, dtype=np.float64)
        if d.ndim != 2 or d.shape[0] != len(ids) or not ids:
            raise InvalidInputError(f"TaskIndex: expected one descriptor row per task id, got {len(ids)} "
                                    f"ids and an array of shape {d.shape}.")
        if len(set(ids)) != len(ids):
            raise InvalidInputError("TaskIndex: task ids must be unique.")
        if not np.all(np.isfinite(d)):
            raise InvalidInputError("TaskIndex: descriptors contain NaN or inf.")
        self.task_ids = ids
        self.proxy = proxy
        self.version = version
        self._raw = d.astype(np.float32)
        self.mean_ = d.mean(axis=0)
        std = d.std(axis=0)
        self.keep_ = std > 1e-9 * max(1.0, float(np.abs(d).max()))
        if not self.keep_.any():  # a single task (or identical ones): compare raw, centred
            self.keep_ = np.ones(d.shape[1], dtype=bool)
            std = np.ones_like(std)
        self.std_ = np.where(self.keep_, std, 1.0)
        self._index = self._build()

    def _standardise(self, d: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(d) - self.mean_) / self.std_)[:, self.keep_]
        return z.astype(np.float32)

    def _build(self) -> Any:
        from fennec.index import ModelIndex

        z = self._standardise(self._raw.astype(np.float64))
        index = ModelIndex(z.shape[1], metric="cosine", kind="task", embedder_version=self.version)
        # A task whose standardised descriptor is exactly zero (the mean task) has no direction;
        # a tiny offset keeps it indexable without changing any other similarity.
        zero = np.linalg.norm(z, axis=1) == 0
        z[zero, 0] = 1e-6
        index.add(self.task_ids, z)
        return index

    def __len__(self) -> int:
        return len(self.task_ids)

    def __repr__(self) -> str:
        return f"TaskIndex({len(self)} tasks, proxy={self.proxy!r})"

    def descriptor(self, task_id: str) -> np.ndarray:
        """The stored (raw) descriptor of a historical task."""
        try:
            return self._raw[self.task_ids.index(task_id)].copy()
        except ValueError:
            raise UnknownIdError(f"Unknown task {task_id!r}; known: {self.task_ids}.", key=task_id) from None

    def search(self, descriptor: Any, k: int = 5, *, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` historical tasks most similar to ``descriptor``: ``[(task_id, cosine)]``."""
        q = np.asarray(descriptor, dtype=np.float64).ravel()
        if q.shape[0] != self._raw.shape[1]:
            raise InvalidInputError(f"TaskIndex.search: descriptor of length {q.shape[0]}, but the index "
                                    f"holds descriptors of length {self._raw.shape[1]} (proxy {self.proxy!r}); "
                                    "use the same proxy for new and historical tasks.")
        if not np.all(np.isfinite(q)):
            raise InvalidInputError("TaskIndex.search: the descriptor contains NaN or inf.")
        z = self._standardise(q)
        if not np.any(z):
            z[0, 0] = 1e-6
        hits = self._index.search(z[0], k=min(len(self), k + len(exclude)))
        return [(t, float(s)) for t, s in hits if t not in set(exclude)][:k]

    def save(self, folder: str | Path) -> Path:
        """Write the raw descriptors into ``folder`` in the vector-index format of
        :meth:`fennec.index.ModelIndex.save` (``kind="task"``, checksummed files, an atomic
        sidecar; the proxy in its ``extra``); returns the folder."""
        from fennec.index import ModelIndex

        raw = ModelIndex(self._raw.shape[1], metric="ip", kind="task", embedder_version=self.version)
        raw.add(self.task_ids, self._raw)
        raw.extra["proxy"] = self.proxy
        return raw.save(folder)

    @classmethod
    def load(cls, folder: str | Path, *, proxy: str | None = None) -> TaskIndex:
        """Read an index written by :meth:`save` (through :meth:`fennec.index.ModelIndex.load`,
        which checks every file's sha256).

        Raises:
            IndexCorruptedError: missing or damaged files, or a folder that holds another kind
                of index (run ``fennec fit``).
            IndexMismatchError: descriptors of another :data:`DESCRIPTOR_VERSION`, or computed by
                another proxy than ``proxy`` (when given).
        """
        from fennec.errors import IndexCorruptedError, IndexMismatchError
        from fennec.index import ModelIndex

        folder = Path(folder)
        try:
            raw = ModelIndex.load(folder)
        except IndexCorruptedError as e:
            raise IndexCorruptedError(f"{e} The task index is derived data: run `fennec fit` to rewrite it.",
                                      path=str(folder)) from e
        stored_proxy = raw.extra.get("proxy")
        if raw.meta.kind != "task" or not isinstance(stored_proxy, str) or not len(raw):
            raise IndexCorruptedError(f"{folder} holds no task index (kind {raw.meta.kind!r}, {len(raw)} vectors, "
                                      f"proxy {stored_proxy!r}); run `fennec fit` to rewrite it.", path=str(folder))
        if raw.meta.embedder_version != DESCRIPTOR_VERSION:
            raise IndexMismatchError(f"{folder}: task descriptors of version {raw.meta.embedder_version!r}, this "
                                     f"fennec computes {DESCRIPTOR_VERSION!r}; run `fennec fit` to recompute them.",
                                     field="descriptor_version", expected=DESCRIPTOR_VERSION,
                                     found=raw.meta.embedder_version)
        if proxy is not None and stored_proxy != proxy:
            raise IndexMismatchError(f"{folder}: task descriptors were computed by proxy {stored_proxy!r}, "
                                     f"not {proxy!r}; run `fennec fit --proxy {proxy}`.", field="proxy",
                                     expected=proxy, found=stored_proxy)
        ids = raw.ids
        return cls(ids, np.stack([raw.vector(t) for t in ids]), proxy=stored_proxy,
                   version=raw.meta.embedder_version)
