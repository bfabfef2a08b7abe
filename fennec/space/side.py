"""Side information of the transfer space: model and task records and the encoder that
turns a model's archi2vec vector, size, family and pre-training data into the features its
prior is regressed on (:class:`fennec.space.transfer.TransferSpace`; the paper baseline reads
the same records)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fennec.errors import InvalidInputError

LOG = logging.getLogger(__name__)

MAX_ARCHI2VEC_COMPONENTS = 16  # PCA of archi2vec in the side features
_SIDE_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # × number of models: side-map ridge penalties
JITTER = 1e-9  # added to ridge diagonals so rank-deficient systems stay solvable


# ---------------------------------------------------------------------------------------
# Side information
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSide:
    """What is known about a model besides its transfer history.

    Attributes:
        model_id: the model's id (``org/name``).
        archi2vec: its archi2vec vector (any fixed dimension, e.g. 256), or None.
        parameters: number of parameters, or None.
        family: architecture family (config ``model_type``, e.g. ``"resnet"``), or None.
        pretraining: pre-training data label(s), comma-separated (``"glyphs,shapes"``), or None.
        n_layers: number of Conv2d + Linear layers (a Fennec-paper meta-feature), or None.
        base_models: the models it was derived from, nearest first (its model card's
            ``base_model``, then theirs: a chain), e.g. ``("google/vit-base-patch16-224",)``; a
            cold start is placed near the first one with a vector in the space
            (:meth:`fennec.space.TransferSpace.base_of`).
        library: the library its card names (``library_name``: ``timm``, ``transformers`` …), or None.
    """

    model_id: str
    archi2vec: np.ndarray | None = None
    parameters: int | None = None
    family: str | None = None
    pretraining: str | None = None
    n_layers: int | None = None
    base_models: tuple[str, ...] = ()
    library: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskSide:
    """What is known about a task besides its transfer history.

    Attributes:
        task_id: the task's (dataset's) id.
        descriptor: its proxy task descriptor ``(D,)`` (:mod:`fennec.task`), or None.
        n_classes: number of classes, or None.
        n_samples: number of (training) images, or None.
    """

    task_id: str
    descriptor: np.ndarray | None = None
    n_classes: int | None = None
    n_samples: int | None = None


# ---------------------------------------------------------------------------------------
# Checks and the encoder
# ---------------------------------------------------------------------------------------


def check_vector(value: Any, *, name: str, dim: int | None = None) -> np.ndarray:
    """``value`` as a finite 1-D float64 vector (of length ``dim`` when given), or a clear error."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a 1-D numeric vector, got {type(value).__name__}.") from None
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}.")
    if dim is not None and arr.size != dim:
        raise InvalidInputError(f"{name} has dimension {arr.size}, expected {dim} (the dimension seen in fit). "
                                "Compute it with the same embedder/proxy version, or refit.")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} contains NaN or infinite values.")
    return arr


def sides_of(mapping: Mapping[str, Any] | None, ids: Sequence[str], cls: type, *, key: str) -> list[Any]:
    """One side record per id (an empty one where the mapping has none), keys checked."""
    mapping = mapping or {}
    if not isinstance(mapping, Mapping):
        raise InvalidInputError(f"{key}s must be a mapping id -> {cls.__name__}, got {type(mapping).__name__}.")
    for k, side in mapping.items():
        if not isinstance(side, cls):
            raise InvalidInputError(f"{key}s[{k!r}] is a {type(side).__name__}, expected {cls.__name__}.")
        if getattr(side, f"{key}_id") != k:
            raise InvalidInputError(f"{key}s[{k!r}] has {key}_id={getattr(side, f'{key}_id')!r}; the key and "
                                    "the id must be the same.")
    missing = [i for i in ids if i not in mapping]
    if mapping and missing:
        LOG.warning("%d %s(s) in the results have no side information (imputed): %s", len(missing), key,
                    ", ".join(missing[:5]))
    return [mapping.get(i) or cls(i) for i in ids]


def _labels(text: str | None) -> list[str]:
    return sorted({part.strip().lower() for part in (text or "").split(",") if part.strip()})


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression ``y ≈ x·w`` whose first column of ``x`` is an unpenalised intercept."""
    penalty = np.full(x.shape[1], alpha)
    penalty[0] = 0.0
    return np.linalg.solve(x.T @ x + np.diag(penalty + JITTER), x.T @ y)  # (p+1, k)


def choose_side_alpha(s1: np.ndarray, u1: np.ndarray, v: np.ndarray, mask: np.ndarray) -> float:
    """The side-map ridge penalty with the smallest leave-one-model-out error, in closed form.

    For ridge regression ``U' ≈ S1·W`` the held-out residual of model m is
    ``(U'_m − Û'_m) / (1 − h_mm)`` (``h`` the diagonal of the hat matrix). It is measured where
    it matters, on the model's observed scores: ``e_m · G_m · e_m`` with
    ``G_m = Σ_t∈Ω(m) [v_t, 1][v_t, 1]ᵀ``. The largest penalty of the grid is nearly
    intercept-only, so side features are used only as far as they predict held-out models.
    """
    n = len(s1)
    a = np.hstack([v, np.ones((len(v), 1))])  # (T, d+1)
    gram_m = np.einsum("mt,ti,tj->mij", mask, a, a)  # (M, d+1, d+1)
    best, best_err = 0.0, math.inf
    for c in _SIDE_ALPHAS:
        alpha = c * n
        penalty = np.full(s1.shape[1], alpha)
        penalty[0] = 0.0
        inv = np.linalg.inv(s1.T @ s1 + np.diag(penalty + JITTER))
        h = np.einsum("mi,ij,mj->m", s1, inv, s1)  # (M,) hat-matrix diagonal
        e = (u1 - s1 @ (inv @ (s1.T @ u1))) / np.maximum(1.0 - h, 1e-9)[:, None]  # (M, d+1)
        err = float(np.einsum("mi,mij,mj->", e, gram_m, e))
        if err < best_err - 1e-12 * abs(best_err if math.isfinite(best_err) else 0.0):
            best, best_err = alpha, err
    return best


class SideEncoder:
    """Model side information → standardised feature rows (fitted on the training models)."""

    def __init__(self, use_archi2vec: bool):
        self.use_archi2vec = use_archi2vec
        self.a2v_dim: int | None = None
        self.a2v_mean = np.zeros(0)
        self.a2v_components = np.zeros((0, 0))  # (k, D)
        self.has_params = False
        self.log_params_mean = 0.0
        self.families: list[str] = []
        self.pretraining: list[str] = []
        self.libraries: list[str] = []
        self.col_mean = np.zeros(0)
        self.col_scale = np.zeros(0)
        self.keep = np.zeros(0, dtype=bool)
        self.names: list[str] = []

    def fit(self, sides: Sequence[ModelSide]) -> SideEncoder:
        vectors = [(s.model_id, s.archi2vec) for s in sides if s.archi2vec is not None]
        if self.use_archi2vec and vectors:
            dim = check_vector(vectors[0][1], name=f"archi2vec of {vectors[0][0]!r}").size
            a = np.stack([check_vector(v, name=f"archi2vec of {m!r}", dim=dim) for m, v in vectors])  # (n, D)
            k = min(MAX_ARCHI2VEC_COMPONENTS, len(a) - 1, dim)
            if k >= 1:
                self.a2v_dim = dim
                self.a2v_mean = a.mean(axis=0)
                _, _, vt = np.linalg.svd(a - self.a2v_mean, full_matrices=False)
                comps = vt[:k]
                comps *= np.where(comps[np.arange(k), np.abs(comps).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
                self.a2v_components = comps
        params = [p for p in map(check_params, sides) if p is not None]
        self.has_params = bool(params)
        self.log_params_mean = float(np.mean(np.log10(params))) if params else 0.0
        self.families = sorted({s.family.lower() for s in sides if s.family})
        self.pretraining = sorted({lab for s in sides for lab in _labels(s.pretraining)})
        self.libraries = sorted({s.library.lower() for s in sides if s.library})
        raw = self._raw(sides)
        self.names = ([f"archi2vec_pc{i}" for i in range(len(self.a2v_components))]
                      + (["log10_params"] if self.has_params else [])
                      + [f"family={f}" for f in self.families] + [f"pretraining={p}" for p in self.pretraining]
                      + [f"library={lib}" for lib in self.libraries])
        self.col_mean = raw.mean(axis=0) if len(raw) else np.zeros(raw.shape[1])
        std = raw.std(axis=0) if len(raw) else np.zeros(raw.shape[1])
        self.keep = std > 1e-12  # constant columns carry nothing
        scale = std.copy()
        n_pc = len(self.a2v_components)
        if n_pc:  # one scale for the whole PCA block: later components keep their smaller variance,
            scale[:n_pc] = std[0]  # so the side-map ridge shrinks them more (ridge on archi2vec itself)
        self.col_scale = np.where(self.keep, scale, 1.0)
        return self

    @property
    def n_features(self) -> int:
        return int(self.keep.sum())

    def _raw(self, sides: Sequence[ModelSide]) -> np.ndarray:
        rows = []
        for s in sides:
            parts: list[np.ndarray] = []
            if self.a2v_dim is not None:
                if s.archi2vec is None or not self.use_archi2vec:
                    parts.append(np.zeros(len(self.a2v_components)))  # = the training mean
                else:
                    vec = check_vector(s.archi2vec, name=f"archi2vec of {s.model_id!r}", dim=self.a2v_dim)
                    parts.append(self.a2v_components @ (vec - self.a2v_mean))
            if self.has_params:
                p = check_params(s)
                parts.append(np.array([math.log10(p) if p is not None else self.log_params_mean]))
            fam = (s.family or "").lower()
            parts.append(np.array([float(fam == f) for f in self.families]))
            labs = set(_labels(s.pretraining))
            parts.append(np.array([float(p in labs) for p in self.pretraining]))
            lib = (s.library or "").lower()
            parts.append(np.array([float(lib == x) for x in self.libraries]))
            rows.append(np.concatenate(parts))
        width = len(self.a2v_components) + int(self.has_params) + len(self.families) + len(self.pretraining)
        width += len(self.libraries)
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)

    def transform(self, sides: Sequence[ModelSide]) -> np.ndarray:
        """``(n, n_features)`` standardised features; unknown families/labels give zeros."""
        raw = self._raw(sides)
        return ((raw - self.col_mean) / self.col_scale)[:, self.keep]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        header = {"use_archi2vec": self.use_archi2vec, "a2v_dim": self.a2v_dim, "has_params": self.has_params,
                  "log_params_mean": self.log_params_mean, "families": self.families,
                  "pretraining": self.pretraining, "libraries": self.libraries, "names": self.names}
        arrays = {"side_a2v_mean": self.a2v_mean, "side_a2v_components": self.a2v_components,
                  "side_col_mean": self.col_mean, "side_col_scale": self.col_scale, "side_keep": self.keep}
        return header, arrays

    @classmethod
    def from_state(cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SideEncoder:
        enc = cls(bool(header["use_archi2vec"]))
        enc.a2v_dim = header["a2v_dim"]
        enc.has_params = bool(header["has_params"])
        enc.log_params_mean = float(header["log_params_mean"])
        enc.families = list(header["families"])
        enc.pretraining = list(header["pretraining"])
        enc.libraries = list(header.get("libraries", []))  # spaces saved before library_name: none
        enc.names = list(header["names"])
        enc.a2v_mean = arrays["side_a2v_mean"]
        enc.a2v_components = arrays["side_a2v_components"]
        enc.col_mean = arrays["side_col_mean"]
        enc.col_scale = arrays["side_col_scale"]
        enc.keep = arrays["side_keep"].astype(bool)
        return enc


def check_params(side: ModelSide) -> int | None:
    """The model's parameter count, checked (None when unknown)."""
    p = side.parameters
    if p is None:
        return None
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p <= 0:
        raise InvalidInputError(f"ModelSide({side.model_id!r}).parameters = {p!r}; expected a positive integer "
                                "(the number of parameters) or None.")
    return int(p)
