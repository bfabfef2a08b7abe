"""The FAISS index of vectors, persisted with checksums: the fitted space's model and task indexes.

A :class:`ModelIndex` maps ids (``org/name``, task ids) to int64 FAISS ids and back, answers
"which are closest to this vector" and supports add, update and remove. It is derived data:
``fennec fit`` writes it from the catalog (the model index, ``space/index``) and the task
descriptors (the task index, :mod:`fennec.task`); :meth:`ModelIndex.load` refuses (with
:class:`~fennec.errors.IndexMismatchError`) one built for another dimension, metric,
embedder or transfer space when told what to expect.

On disk (``save(folder)``)::

    folder/meta.json               the sidecar: format, dim, metric, factory, kind,
                                   embedder_version, space_version, count, extra (free
                                   notes such as the task index's proxy), file names, sha256s
    folder/index-<token>.faiss     faiss.write_index
    folder/ids-<token>.json        [[faiss_id, model_id], ...] and the next free id

A save writes new ``<token>`` files, then replaces ``meta.json`` atomically
(``os.replace``), then deletes the old files: a crash at any point leaves either the old
or the new index readable, never a mix. The sha256s in the sidecar detect damaged files.

The vectors may be archi2vec vectors (``kind="archi2vec"``, versioned by
``embedder_version``) or transfer-space vectors (``kind="transfer"``, versioned by
``space_version`` as well); the index does not care, the sidecar records which.

Example:
    >>> idx = ModelIndex(4, embedder_version="e1")
    >>> idx.add(["org/a", "org/b"], np.eye(4, dtype=np.float32)[:2])
    >>> idx.search(np.array([1, 0.1, 0, 0]), k=1)[0][0]
    'org/a'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec._io import sha256_file
from fennec.errors import IndexCorruptedError, IndexMismatchError, InvalidInputError, UnknownIdError
from fennec.validation import check_positive_int

__all__ = ["FORMAT_VERSION", "IndexMeta", "ModelIndex"]

LOG = logging.getLogger(__name__)

#: Version of the on-disk layout (not of the vectors).
FORMAT_VERSION = 1
METRICS = ("cosine", "ip", "l2")
_TRAIN_POINTS_PER_LIST = 64  # IVF training sample: 64 vectors per list (faiss advises 30-256)
KINDS = ("archi2vec", "transfer", "task")


@dataclasses.dataclass(frozen=True)
class IndexMeta:
    """What an index holds; the sidecar ``meta.json``.

    Attributes:
        dim: vector dimension.
        metric: ``cosine`` (vectors normalised, inner product), ``ip`` or ``l2``.
        factory: FAISS index factory string of the inner index (``Flat``, ``HNSW32`` …).
        kind: ``archi2vec``, ``transfer`` (transfer-space model vectors) or ``task``
            (task descriptors of historical tasks, see :mod:`fennec.task`).
        embedder_version: version of the model embedder (e.g. archi2vec.EMBEDDER_VERSION).
        space_version: version of the transfer space (None for plain archi2vec vectors).
    """

    dim: int
    metric: str = "cosine"
    factory: str = "Flat"
    kind: str = "archi2vec"
    embedder_version: str | None = None
    space_version: str | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim", hint="the vectors' dimension")
        if self.metric not in METRICS:
            raise InvalidInputError(f"metric must be one of {METRICS}, got {self.metric!r}.")
        if self.kind not in KINDS:
            raise InvalidInputError(f"kind must be one of {KINDS}, got {self.kind!r}.")

    def check(self, expected: IndexMeta, *, where: str) -> None:
        """Raise :class:`IndexMismatchError` on the first field that differs from ``expected``."""
        for field in ("dim", "metric", "kind", "embedder_version", "space_version"):
            found, want = getattr(self, field), getattr(expected, field)
            if found != want:
                raise IndexMismatchError(
                    f"The index at {where} has {field}={found!r}, but {want!r} is expected. "
                    "It was built by another version of fennec's embedder or transfer space; "
                    "rebuild it (`fennec fit` writes the fitted space's indexes again).",
                    field=field, expected=want, found=found)


class ModelIndex:
    """Model vectors in FAISS, with model ids.

    Args:
        dim: vector dimension.
        metric: ``cosine`` (default), ``ip`` or ``l2``. Scores are similarities, higher is
            closer: the inner product for ``cosine``/``ip``, minus the squared distance for ``l2``.
        factory: FAISS factory string of the inner index: ``Flat`` (exact, default) or an
            approximate one for millions of vectors: ``IVF1024,Flat`` (trained on the first
            :meth:`add`, which needs at least as many vectors as lists; see :attr:`nprobe`)
            or ``HNSW32``.
        kind, embedder_version, space_version: recorded in the sidecar and checked on load.

    Example:
        >>> idx = ModelIndex(3, metric="l2")
        >>> idx.upsert(["m"], np.ones((1, 3)))
        >>> len(idx), "m" in idx
        (1, True)
    """

    def __init__(self, dim: int, *, metric: str = "cosine", factory: str = "Flat",
                 kind: str = "archi2vec", embedder_version: str | None = None,
                 space_version: str | None = None):
        self.meta = IndexMeta(dim, metric, factory, kind, embedder_version, space_version)
        self._index = self._new_faiss_index()
        self._id_of: dict[str, int] = {}
        self._model_of: dict[int, str] = {}
        self._next_id = 0
        #: JSON-serialisable notes saved in the sidecar (e.g. the catalog generation it reflects)
        self.extra: dict[str, Any] = {}

    def _new_faiss_index(self) -> Any:
        import faiss

        metric = faiss.METRIC_L2 if self.meta.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        try:
            inner = faiss.index_factory(self.meta.dim, self.meta.factory, metric)
        except RuntimeError as e:
            raise InvalidInputError(f"Bad FAISS factory string {self.meta.factory!r}: {e}") from e
        ivf = _ivf(inner)
        ivf_inner = faiss.downcast_index(inner)
        if ivf is not None and isinstance(ivf_inner, faiss.IndexIVF):
            # IVF takes arbitrary ids itself. It must not sit in an IndexIDMap: that map
            # assumes removal renumbers the inner index, which IVF does not do.
            # (faiss's bundled stubs declare set_direct_map_type but not the DirectMap enum.)
            hashtable = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]
            ivf_inner.set_direct_map_type(hashtable)  # for reconstruct(id)
            return inner
        if ivf is not None:
            raise InvalidInputError(f"{self.meta.factory!r}: an IVF index behind a transform cannot "
                                    "remove vectors by id; use a plain 'IVF<n>,Flat' (or PQ) index.")
        return faiss.IndexIDMap2(inner)

    def _inner(self) -> Any:
        return getattr(self._index, "index", self._index)

    # -- inspection -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._id_of)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._id_of

    def __repr__(self) -> str:
        return (f"ModelIndex(n={len(self)}, dim={self.meta.dim}, metric={self.meta.metric!r}, "
                f"factory={self.meta.factory!r}, kind={self.meta.kind!r})")

    @property
    def ids(self) -> list[str]:
        """Model ids, in insertion order."""
        return [self._model_of[i] for i in sorted(self._model_of)]

    def vector(self, model_id: str) -> np.ndarray:
        """The stored vector of a model (normalised for ``cosine``).

        Raises:
            UnknownIdError: ``model_id`` is not in the index (a ``KeyError`` and a ``ValueError``).
        """
        if model_id not in self._id_of:
            raise UnknownIdError(f"{model_id!r} is not in the index ({len(self._id_of)} models); check the id "
                                 "(the index's ids are in .ids), or add it first.", key=model_id)
        return self._index.reconstruct(self._id_of[model_id])

    # -- updates --------------------------------------------------------------------------

    def _prepare(self, vectors: Any, n: int | None = None) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.meta.dim:
            raise InvalidInputError(f"Vectors must have shape (N, {self.meta.dim}); found {x.shape}.")
        if n is not None and x.shape[0] != n:
            raise InvalidInputError(f"{n} ids but {x.shape[0]} vectors; give one vector per id.")
        if not np.all(np.isfinite(x)):
            raise InvalidInputError("Vectors contain NaN or inf.")
        x = np.ascontiguousarray(x)
        if self.meta.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise InvalidInputError("A zero vector has no direction: cosine similarity is undefined.")
            x = np.ascontiguousarray(x / norms)
        return x

    def add(self, ids: Sequence[str], vectors: Any) -> None:
        """Add new models; ``vectors`` is (N, dim).

        Raises:
            InvalidInputError: a wrong shape, NaN/inf, a duplicate or already-present id
                (use :meth:`upsert` to replace).
        """
        ids = list(ids)
        x = self._prepare(vectors, len(ids))
        if len(set(ids)) != len(ids):
            raise InvalidInputError("Duplicate ids in one add(); give each model once.")
        present = [i for i in ids if i in self._id_of]
        if present:
            raise InvalidInputError(f"Already in the index: {present[:5]}; use upsert() to replace.")
        if not ids:
            return
        faiss_ids = np.arange(self._next_id, self._next_id + len(ids), dtype=np.int64)
        if not self._index.is_trained:  # IVF / PQ indexes learn their codebook from the first add
            nlist = getattr(_ivf(self._inner()), "nlist", 1)
            if x.shape[0] < nlist:
                raise InvalidInputError(f"The {self.meta.factory!r} index needs at least {nlist} vectors "
                                        f"in its first add() to train; got {x.shape[0]}.")
            # k-means needs a few dozen points per list, not millions: a seeded sample
            cap = _TRAIN_POINTS_PER_LIST * nlist
            sample = x if x.shape[0] <= cap else x[np.sort(
                np.random.default_rng(0).choice(x.shape[0], cap, replace=False))]
            self._index.train(np.ascontiguousarray(sample))
        self._index.add_with_ids(x, faiss_ids)
        for model_id, fid in zip(ids, faiss_ids.tolist(), strict=True):
            self._id_of[model_id] = fid
            self._model_of[fid] = model_id
        self._next_id += len(ids)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove models (absent ids are ignored); returns how many were removed."""
        fids = [self._id_of[i] for i in dict.fromkeys(ids) if i in self._id_of]
        if not fids:
            return 0
        try:
            removed = self._index.remove_ids(np.asarray(fids, dtype=np.int64))
        except RuntimeError:  # approximate indexes (HNSW) cannot remove: rebuild without them
            removed = self._rebuild_without(set(fids))
        if removed != len(fids):
            raise IndexCorruptedError(f"FAISS removed {removed} of {len(fids)} vectors; the index is "
                                      "inconsistent with its id map: rebuild it from the catalog.")
        for fid in fids:
            del self._id_of[self._model_of.pop(fid)]
        return len(fids)

    def _rebuild_without(self, drop: set[int]) -> int:
        keep = [fid for fid in sorted(self._model_of) if fid not in drop]
        x = (np.stack([self._index.reconstruct(fid) for fid in keep]) if keep
             else np.zeros((0, self.meta.dim), dtype=np.float32))
        self._index = self._new_faiss_index()
        if keep:
            self._index.add_with_ids(np.ascontiguousarray(x), np.asarray(keep, dtype=np.int64))
        return len(drop)

    def upsert(self, ids: Sequence[str], vectors: Any) -> None:
        """Add models, replacing the vectors of those already present."""
        ids = list(ids)
        x = self._prepare(vectors, len(ids))  # validate before removing anything
        if len(set(ids)) != len(ids):
            raise InvalidInputError("Duplicate ids in one upsert(); give each model once.")
        self.remove([i for i in ids if i in self._id_of])
        self.add(ids, x)  # normalising again (cosine) changes nothing

    # -- search ---------------------------------------------------------------------------

    @property
    def nprobe(self) -> int | None:
        """For IVF indexes, how many lists a search visits (recall vs speed); else None."""
        ivf = _ivf(self._inner())
        return int(ivf.nprobe) if ivf is not None else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        ivf = _ivf(self._inner())
        if ivf is None:
            raise InvalidInputError(f"nprobe applies to IVF indexes, not {self.meta.factory!r}.")
        value = check_positive_int(value, "nprobe", hint="IVF lists searched per query")
        ivf.nprobe = int(value)

    def search_batch(self, queries: Any, k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest models of each query (Q, dim), best first, as (model id, score)."""
        k = check_positive_int(k, "k", hint="how many nearest models to return")
        q = self._prepare(queries)
        if len(self) == 0:
            return [[] for _ in range(q.shape[0])]
        scores, fids = _search(self._index, q, int(min(k, len(self))))
        if self.meta.metric == "l2":
            scores = -scores
        return [[(self._model_of[int(f)], float(s)) for s, f in zip(srow, frow, strict=True) if f >= 0]
                for srow, frow in zip(scores, fids, strict=True)]

    def search(self, query: Any, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` nearest models of one query vector (dim,), best first.

        Returns:
            ``[(model_id, score), ...]``, at most ``k`` (fewer if the index is smaller).
        """
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 1:
            raise InvalidInputError(f"search() takes one vector of shape ({self.meta.dim},); found "
                                    f"{q.shape}. Use search_batch() for several.")
        return self.search_batch(q[None, :], k)[0]

    # -- persistence ----------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the index atomically into ``folder`` (created if needed); returns it."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(6)
        index_name, ids_name = f"index-{token}.faiss", f"ids-{token}.json"
        faiss.write_index(self._index, str(folder / index_name))
        ids_doc = {"next_id": self._next_id, "ids": [[f, m] for f, m in sorted(self._model_of.items())]}
        _write_durable(folder / ids_name, json.dumps(ids_doc).encode())
        _fsync(folder / index_name)
        meta = {"format": FORMAT_VERSION, **dataclasses.asdict(self.meta), "count": len(self),
                "extra": self.extra,
                "files": {"index": index_name, "ids": ids_name},
                "sha256": {"index": sha256_file(folder / index_name), "ids": sha256_file(folder / ids_name)}}
        tmp = folder / f".meta.json.{token}.tmp"
        _write_durable(tmp, json.dumps(meta, indent=1, sort_keys=True).encode())
        os.replace(tmp, folder / "meta.json")  # the commit point
        _fsync_dir(folder)
        # the previous generation and leftovers of crashed saves (one writer at a time: the
        # reindex lock; a reader holding the old files open keeps reading them on POSIX)
        for f in folder.iterdir():
            if f.name.startswith(("index-", "ids-", ".meta.json.")) and token not in f.name:
                f.unlink(missing_ok=True)
        LOG.info("Saved %s to %s", self, folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, expected: IndexMeta | None = None) -> ModelIndex:
        """Read an index written by :meth:`save`.

        Args:
            folder: the folder.
            expected: if given, the sidecar must match it (dim, metric, kind, versions).

        Raises:
            IndexCorruptedError: missing or damaged files (checksums, format, FAISS errors).
            IndexMismatchError: the sidecar does not match ``expected``.
        """
        import faiss

        folder = Path(folder)
        meta = _read_meta(folder)
        if meta.get("format") != FORMAT_VERSION:
            raise IndexCorruptedError(f"{folder}: index format {meta.get('format')!r} is not "
                                      f"{FORMAT_VERSION}; rebuild it.", path=str(folder))
        try:
            stored = IndexMeta(**{k: meta[k] for k in ("dim", "metric", "factory", "kind",
                                                       "embedder_version", "space_version")})
            files, sums = meta["files"], meta["sha256"]
        except (KeyError, TypeError, InvalidInputError) as e:
            raise IndexCorruptedError(f"{folder}/meta.json is incomplete ({e}).", path=str(folder)) from e
        if expected is not None:
            stored.check(expected, where=str(folder))
        for key in ("index", "ids"):
            path = folder / files[key]
            if not path.is_file():
                raise IndexCorruptedError(f"{path} is missing.", path=str(folder))
            if sha256_file(path) != sums[key]:
                raise IndexCorruptedError(f"{path} is damaged (checksum mismatch).", path=str(folder))
        try:
            index = faiss.read_index(str(folder / files["index"]))
            ids_doc = json.loads((folder / files["ids"]).read_text())
        except (RuntimeError, ValueError) as e:
            raise IndexCorruptedError(f"{folder}: cannot read the index ({e}).", path=str(folder)) from e
        self = cls.__new__(cls)
        self.meta = stored
        self._index = index
        self._model_of = {int(f): m for f, m in ids_doc["ids"]}
        self._id_of = {m: f for f, m in self._model_of.items()}
        self._next_id = int(ids_doc["next_id"])
        self.extra = dict(meta.get("extra") or {})
        if index.ntotal != len(self._model_of) or index.d != stored.dim or meta.get("count") != len(self):
            raise IndexCorruptedError(f"{folder}: {index.ntotal} vectors of dim {index.d} for "
                                      f"{len(self._model_of)} ids; rebuild it.", path=str(folder))
        return self

    @classmethod
    def from_vectors(cls, ids: Sequence[str], vectors: Any, meta: IndexMeta) -> ModelIndex:
        """A new index holding ``vectors`` (N, dim) for ``ids``."""
        index = cls(meta.dim, metric=meta.metric, factory=meta.factory, kind=meta.kind,
                    embedder_version=meta.embedder_version, space_version=meta.space_version)
        if len(ids):
            index.add(ids, vectors)
        return index


#: Below this many queries FAISS runs single-threaded: for one query, OpenMP's fork/join costs
#: more than it saves (measured on 100k x 7 inner products: 0.7 ms with 1 thread, 15 ms with 2
#: threads on a busy 2-core machine; benchmark/results/recommend_latency.md).
_SINGLE_THREAD_BELOW = 16
_OMP_LOCK = threading.Lock()


def _search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if queries.shape[0] >= _SINGLE_THREAD_BELOW:
        return index.search(queries, k)
    import faiss

    with _OMP_LOCK:  # the OpenMP thread count is process-wide
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(before)


def _ivf(index: Any) -> Any:
    """The IVF part of a FAISS index, or None."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.is_file():
        raise IndexCorruptedError(f"No index at {folder} (meta.json is missing).", path=str(folder))
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorruptedError(f"{path} is damaged ({e}).", path=str(folder)) from e
    if not isinstance(meta, dict):
        raise IndexCorruptedError(f"{path} is not a JSON object.", path=str(folder))
    return meta


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
