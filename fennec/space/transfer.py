"""The transfer space: one vector per model and per task, learned from transfer history.

Historical transfer results (fine-tune accuracy of model *m* on task *t*, many cells missing)
are turned into a model vector ``[u_m, b_m]`` and a task vector ``[v_t, 1]`` such that

    score(m, t) = [u_m, b_m] · [v_t, 1] = u_m · v_t + b_m

ranks the models for task *t* by fine-tune accuracy. A FAISS inner-product index over model
vectors (:mod:`fennec.index`, ``metric="ip"``) answers a task-vector query directly.

The algorithm (:class:`TransferSpace`)
--------------------------------------
1. **Targets.** Accuracies are normalised per task (:func:`normalise_results`, z-score by
   default). Tasks differ wildly in difficulty (an easy task puts every model near 100 %,
   a few-shot one far below); only the *order within a task* matters to a recommender, and per-task normalisation
   removes the task's mean and scale so that no task bias is needed and every task weighs
   the same in the fit.
2. **Side information.** Each model has a feature row ``s_m``: a PCA (fitted here, at most
   16 components) of its archi2vec vector (skipped with ``use_archi2vec=False``),
   ``log10(parameters)``, a family one-hot and a pre-training-data multi-hot, centred and
   scaled (missing values are imputed with the training mean, i.e. 0). Every column is
   scaled to unit variance except the PCA block, which shares the first component's scale:
   whitening the components would blow minor architecture directions up to the size of
   the main ones, whereas unwhitened, the ridge on the side map shrinks them in proportion
   (it is then a ridge on the archi2vec vector itself, restricted to its top components).
3. **Objective.** With ``Y`` the normalised matrix, ``Ω`` its observed cells, ``U'`` the
   ``(M, dim+1)`` matrix of rows ``[u_m, b_m]`` and ``S1 = [1, S]``::

       Σ_Ω (Y_mt − u_m·v_t − b_m)²  +  side_weight·(‖U' − S1·W‖² + α·‖W_no-intercept‖²)
                                     +  l2·(‖U'‖² + ‖V‖²)

   This is a collaborative-filtering factorisation whose model factors have a *side-
   information prior* (as in "regression-based latent factor models", Agarwal & Chen,
   KDD 2009): a model with little history is pulled toward what its architecture, size,
   family and pre-training data predict, and a model with no history (a new Hub upload)
   gets exactly that prediction, ``[1, s_new]·W``, bias included. The per-model bias
   carries "this model is good everywhere", which on small histories is most of the
   signal; the ``dim`` interaction factors carry "good for *these* tasks".
   The side map's penalty ``α`` decides how far side features are trusted, and histories
   are small (tens of models, ~30 side features), so it is not left to a default: unless
   ``side_alpha`` is given, ``α`` is chosen from a grid (0.01 … 10 × the number of models)
   by **closed-form leave-one-model-out** — the ridge hat-matrix identity gives every
   held-out model's residual at once, measured on its observed scores — at the start and
   once more on the converged vectors (``side_alpha_`` records it). The largest α is
   nearly intercept-only, so useless side features are shrunk away rather than fitted.
4. **Solver.** Alternating exact minimisation: each step (all model rows, all task rows,
   the side map ``W``) is a ridge problem solved in closed form (batched ``np.linalg.solve``),
   so the objective never increases; we stop when its relative decrease is below ``tol``.
   The start is deterministic: per-model means as biases and a truncated SVD of the centred,
   zero-filled residual as factors (signs fixed; only dimensions beyond the matrix rank use
   the seeded generator). Unlike SGD there is no learning rate to tune and the result is
   reproducible bit for bit. With ``side_weight=0`` the factorisation ignores the side
   features and ``W`` is fitted afterwards by ridge regression of ``U'`` on ``S1``
   (two-stage cold start). A new model whose model card names a base model that has a
   vector here can instead be placed between the two, ``w·u_base + (1 − w)·[1, s]·W``
   (``base_weight`` w; measured in benchmark/results/published_cold_start.md, where it did
   not help, hence w = 0 by default).
5. **New tasks.** A task has a proxy *descriptor* (:mod:`fennec.task`). Descriptors of the
   historical tasks are standardised per dimension; a new task's vector is a weighted
   combination of historical task vectors, ``v = Σ_t w_t v_t``, with weights from one of

   * ``knn``: cosine similarity to the historical descriptors, the ``n_neighbors`` most
     similar, softmax weights at temperature τ;
   * ``ridge``: kernel ridge regression from descriptor to task vector (linear kernel);
     its dual coefficients are the weights (re-centred on the mean task vector);
   * ``mean``: the mean historical task vector (the descriptor is ignored; a control).

   With ``shrink`` (the default), a new task's weights are then pulled toward the mean task,
   ``w ← s·w + (1 − s)/T``, where ``s`` ∈ [0, 1] is the cosine similarity of its standardised
   descriptor to the nearest historical one: a task like a known one keeps its placement, a
   task unlike every known one falls back toward the mean task vector, i.e. toward ranking the
   models by their overall strength over the history (the data-free ``history-mean``
   baseline of ``fennec bench``), instead of extrapolating from a descriptor that the history
   cannot interpret. It has no parameter; ``fennec bench`` measures it against no shrinkage
   (benchmark/results/zoo_recommend.md).

   ``fit`` picks the predictor and its parameter by **leave-one-task-out**: each historical
   task in turn is predicted from the others' descriptors and vectors, and the predicted
   model scores are correlated (Pearson) with the task's observed normalised accuracies. The
   winner is recorded in ``task_predictor_`` and every candidate's score in
   ``task_predictor_scores_``; if ``mean`` wins, the descriptors did not help and the
   record says so. (The model vectors used inside this loop were fitted with every task,
   held-out one included; every candidate is scored with those same vectors.) :meth:`task_vector`
   returns the historical tasks with the largest weights as evidence.
6. **Observed scores move the placement.** Once some models have been scored on the new task
   (the refined candidates' metric scores, mapped onto this space's score scale), the placement
   ``[v0, 1]`` is a prior and the scores are noisy linear observations ``y_m = u_m·v + b_m + ε``;
   :meth:`update_task_vector` returns the posterior mean (Bayesian linear regression toward
   ``v0``, :func:`fennec.space.tasks.posterior_task_vector`), from which every model is
   re-predicted. The prior's weight ``strength`` is counted in observations of an average model.

The Fennec paper's recipe (:class:`fennec.space.baseline.FennecBaseline`)
------------------------------------------------------------------
NMF of the min-max normalised matrix, a random forest from proxy image embeddings to NMF
task vectors, and a linear meta-regressor on model/task meta-features, mixed 50/50; see
its docstring. It is the baseline the transfer space must beat.

Example:
    >>> rng = np.random.default_rng(0)
    >>> results = {f"t{j}": {f"m{i}": float(rng.normal()) for i in range(8)} for j in range(4)}
    >>> space = TransferSpace(dim=2).fit(results)
    >>> space.model_vectors(["m0", "m1"]).shape
    (2, 3)
    >>> space.score(space.model_vectors(["m0"]), space.task_vector_of("t0")).shape
    (1,)
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec._io import save_npz_atomic
from fennec.errors import (
    FallbackWarning,
    InvalidInputError,
    NotFittedError,
    SpaceVersionError,
)
from fennec.space.results import NORMALISATIONS, normalise_results, results_matrix
from fennec.space.side import JITTER, ModelSide, SideEncoder, TaskSide, check_vector, choose_side_alpha, ridge, sides_of
from fennec.space.tasks import (
    choose_task_predictor,
    nearest_similarity,
    posterior_task_vector,
    shrunk,
    standardiser,
    task_weights,
)

__all__ = [
    "SPACE_VERSION",
    "ModelSide",
    "TaskSide",
    "TransferSpace",
    "normalise_results",
]

LOG = logging.getLogger(__name__)

#: Version of the fitted format and algorithm; :meth:`TransferSpace.load` rejects others.
SPACE_VERSION = "space-v2"
#: How far a cold start with a base model in the space moves from its side-information
#: placement to the base's vector (``base_weight · u_base + (1 − base_weight) · [1, s]·W``);
#: chosen by leave-one-model-out on the published tables (benchmark/published_cold_start.py):
#: on both tables with base models (Model Spider, base by its naming scheme; TransferGraph,
#: base inferred from Hub names) every weight > 0 lowered the mean weighted τ, so the
#: default is 0: the base model is recorded but does not move the placement unless asked.
BASE_WEIGHT = 0.0

# ---------------------------------------------------------------------------------------
# The transfer space
# ---------------------------------------------------------------------------------------


class TransferSpace:
    """Model and task vectors whose inner product ranks models by fine-tune accuracy.

    See the module docstring for the objective and why. Learned attributes (after
    :meth:`fit` or :meth:`load`): ``model_ids_``, ``task_ids_``, ``model_vectors_``
    ``(M, dim+1)`` (rows ``[u, b]``), ``task_vectors_`` ``(T, dim+1)`` (rows ``[v, 1]``),
    ``side_map_`` ``(1+n_side, dim+1)``, ``side_feature_names_``, ``task_predictor_``
    (``{"kind": ..., "param": ...}``, None without descriptors), ``task_predictor_scores_``,
    ``side_alpha_`` (the side-map penalty used), ``n_iter_``, ``loss_``.

    Args:
        dim: number of interaction factors (vectors have ``dim + 1`` entries).
        use_archi2vec: include the PCA of archi2vec vectors in the side features.
        side_weight: weight of the side-information prior ``‖U' − S1·W‖²`` (0: two-stage).
        l2: ridge penalty on model and task vectors (must be > 0).
        n_neighbors: historical tasks combined (knn) or reported as evidence for a new task.
        max_iter: maximum alternating-minimisation sweeps.
        tol: stop when the objective's relative decrease is below this.
        seed: seeds the initialisation of factors beyond the rank of the data.
        normalise: per-task normalisation of the accuracies (:func:`normalise_results`).
        side_alpha: ridge penalty α of the side map ``W`` (the objective's
            ``side_weight·α·‖W‖²``); None chooses it from 0.01 … 10 × the number of models by
            closed-form leave-one-model-out (recorded in ``side_alpha_``).
        shrink: pull a new task's placement toward the mean task by the dissimilarity of its
            nearest known task (:meth:`task_vector`; the module docstring, step 5).
        base_weight: a cold start whose ``ModelSide.base_models`` (its model card's
            ``base_model`` chain) names a model of the space is placed at
            ``base_weight·u_base + (1 − base_weight)·[1, s]·W`` (:meth:`base_of`). The default
            :data:`BASE_WEIGHT` (0) is what leave-one-model-out on the published tables chose.

    Example:
        >>> results = {"t1": {"a": 0.9, "b": 0.5, "c": 0.7}, "t2": {"a": 0.8, "b": 0.4}}
        >>> space = TransferSpace(dim=1).fit(results)
        >>> scores = space.score(space.model_vectors(["a", "b"]), space.task_vector_of("t2"))
        >>> bool(scores[0] > scores[1])
        True
    """

    def __init__(self, dim: int = 6, *, use_archi2vec: bool = True, side_weight: float = 1.0, l2: float = 0.1,
                 n_neighbors: int = 3, max_iter: int = 200, tol: float = 1e-6, seed: int = 0,
                 normalise: str = "zscore", side_alpha: float | None = None, shrink: bool = True,
                 base_weight: float = BASE_WEIGHT):
        self.dim = dim
        self.use_archi2vec = use_archi2vec
        self.side_weight = side_weight
        self.l2 = l2
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.normalise = normalise
        self.side_alpha = side_alpha
        self.shrink = shrink
        self.base_weight = base_weight

    def _params(self) -> dict[str, Any]:
        return {"dim": self.dim, "use_archi2vec": self.use_archi2vec, "side_weight": self.side_weight,
                "l2": self.l2, "n_neighbors": self.n_neighbors, "max_iter": self.max_iter, "tol": self.tol,
                "seed": self.seed, "normalise": self.normalise, "side_alpha": self.side_alpha, "shrink": self.shrink,
                "base_weight": self.base_weight}

    def _check_params(self) -> None:
        checks = [
            (isinstance(self.dim, int) and not isinstance(self.dim, bool) and self.dim >= 1, "dim", "an int >= 1"),
            (isinstance(self.side_weight, (int, float)) and self.side_weight >= 0, "side_weight", "a number >= 0"),
            (isinstance(self.l2, (int, float)) and self.l2 > 0, "l2", "a number > 0"),
            (isinstance(self.n_neighbors, int) and self.n_neighbors >= 1, "n_neighbors", "an int >= 1"),
            (isinstance(self.max_iter, int) and self.max_iter >= 1, "max_iter", "an int >= 1"),
            (isinstance(self.tol, (int, float)) and self.tol >= 0, "tol", "a number >= 0"),
            (self.normalise in NORMALISATIONS, "normalise", f"one of {', '.join(NORMALISATIONS)}"),
            (self.side_alpha is None or (isinstance(self.side_alpha, (int, float)) and self.side_alpha > 0),
             "side_alpha", "None (chosen by leave-one-model-out) or a number > 0"),
            (isinstance(self.shrink, bool), "shrink", "True or False"),
            (isinstance(self.base_weight, (int, float)) and not isinstance(self.base_weight, bool)
             and 0 <= self.base_weight <= 1, "base_weight", "a number in [0, 1]"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise InvalidInputError(f"TransferSpace({name}={getattr(self, name)!r}): expected {expected}.")

    # -- fitting ------------------------------------------------------------------------

    def fit(self, results: Mapping[str, Mapping[str, float]], models: Mapping[str, ModelSide] | None = None,
            tasks: Mapping[str, TaskSide] | None = None) -> TransferSpace:
        """Learn model and task vectors from transfer results.

        Args:
            results: ``{task: {model: fine-tune accuracy}}``, missing cells absent.
            models: side information per model id (needed for cold starts; models of the
                results without an entry get imputed features).
            tasks: side information per task id; their descriptors enable :meth:`task_vector`
                (then every task of the results needs one, all of the same dimension).

        Returns:
            self.

        Raises:
            InvalidInputError: bad parameters, empty or non-finite results, malformed side
                information, missing or mismatched descriptors.
        """
        self._check_params()
        model_ids, task_ids, y = results_matrix(normalise_results(results, method=self.normalise))
        sides = sides_of(models, model_ids, ModelSide, key="model")
        encoder = SideEncoder(self.use_archi2vec).fit(sides)
        s1 = np.hstack([np.ones((len(model_ids), 1)), encoder.transform(sides)])  # (M, 1+p)
        u1, v, w, n_iter, loss = self._alternate(y, s1)
        self._encoder = encoder
        self.model_ids_, self.task_ids_ = model_ids, task_ids
        self.model_vectors_ = u1  # (M, dim+1)
        self.task_vectors_ = np.hstack([v, np.ones((len(task_ids), 1))])  # (T, dim+1)
        self.side_map_ = w  # (1+p, dim+1)
        self.side_feature_names_ = [n for n, k in zip(encoder.names, encoder.keep, strict=True) if k]
        self.n_iter_, self.loss_ = n_iter, loss
        self._fit_task_predictor(y, tasks)
        LOG.info("transfer space: %d models x %d tasks, %d side features, %d sweeps, loss %.4g, task predictor %s",
                 len(model_ids), len(task_ids), encoder.n_features, n_iter, loss, self.task_predictor_)
        return self

    def _alternate(self, y: np.ndarray, s1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
        mask = np.isfinite(y).astype(np.float64)
        y0 = np.where(mask > 0, y, 0.0)
        u1, v = self._start(y0, mask)
        auto = self.side_alpha is None and s1.shape[1] > 1
        alpha = choose_side_alpha(s1, u1, v, mask) if auto else float(self.side_alpha or self.l2)
        u1, v, w, n_iter, loss = self._sweeps(y0, mask, s1, u1, v, alpha)
        if auto:  # re-check the side penalty on the converged vectors; warm restart if it moved
            again = choose_side_alpha(s1, u1, v, mask)
            if again != alpha:
                alpha = again
                u1, v, w, more, loss = self._sweeps(y0, mask, s1, u1, v, alpha)
                n_iter += more
        self.side_alpha_ = alpha
        return u1, v, w, n_iter, loss

    def _start(self, y0: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic start: per-model means as biases, truncated SVD of the centred residual."""
        m, t = y0.shape
        d = self.dim
        bias = y0.sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        p, sig, qt = np.linalg.svd(mask * (y0 - bias[:, None]), full_matrices=False)
        r = min(d, len(sig))
        flip = np.where(p[np.abs(p[:, :r]).argmax(axis=0), np.arange(r)] < 0, -1.0, 1.0)
        u = np.zeros((m, d))
        v = np.zeros((t, d))
        u[:, :r] = p[:, :r] * flip * np.sqrt(sig[:r])
        v[:, :r] = qt[:r].T * flip * np.sqrt(sig[:r])
        if r < d:  # more factors than the data has rank: seeded small values
            rng = np.random.default_rng(self.seed)
            u[:, r:] = rng.normal(scale=1e-2, size=(m, d - r))
            v[:, r:] = rng.normal(scale=1e-2, size=(t, d - r))
        return np.hstack([u, bias[:, None]]), v  # (M, d+1), (T, d)

    def _sweeps(self, y0: np.ndarray, mask: np.ndarray, s1: np.ndarray, u1: np.ndarray, v: np.ndarray,
                alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
        """Alternating exact minimisation from ``(u1, v)`` with side-map penalty ``alpha``."""
        m, t = y0.shape
        d, lam, l2 = self.dim, float(self.side_weight), float(self.l2)
        w = ridge(s1, u1, alpha)
        eye_m, eye_t = np.eye(d + 1), np.eye(d)
        loss = prev = math.inf
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - read after the loop
            a = np.hstack([v, np.ones((t, 1))])  # (T, d+1)
            gram = np.einsum("mt,ti,tj->mij", mask, a, a) + (lam + l2 + JITTER) * eye_m  # (M, d+1, d+1)
            rhs = y0 @ a + lam * (s1 @ w)  # (M, d+1)
            u1 = np.linalg.solve(gram, rhs[..., None])[..., 0]
            u, bias = u1[:, :d], u1[:, d]
            gram_t = np.einsum("mt,mi,mj->tij", mask, u, u) + (l2 + JITTER) * eye_t  # (T, d, d)
            rhs_t = (mask * (y0 - bias[:, None])).T @ u  # (T, d)
            v = np.linalg.solve(gram_t, rhs_t[..., None])[..., 0]
            if lam > 0:
                w = ridge(s1, u1, alpha)
            resid = mask * (y0 - u @ v.T - bias[:, None])
            loss = (float(np.sum(resid**2)) + lam * float(np.sum((u1 - s1 @ w) ** 2))
                    + lam * alpha * float(np.sum(w[1:] ** 2)) + l2 * (float(np.sum(u1**2)) + float(np.sum(v**2))))
            if math.isfinite(prev) and prev - loss <= self.tol * max(prev, 1e-12):
                break
            prev = loss
        if lam == 0:  # two-stage: the side map is fitted to the learned vectors afterwards
            w = ridge(s1, u1, alpha)
        return u1, v, w, n_iter, loss

    def _fit_task_predictor(self, y: np.ndarray, tasks: Mapping[str, TaskSide] | None) -> None:
        self.task_predictor_: dict[str, Any] | None = None
        self.task_predictor_scores_: dict[str, float] = {}
        self._descriptors: np.ndarray | None = None
        self._described = np.zeros(0, dtype=np.int64)
        sides = {s.task_id: s for s in sides_of(tasks, self.task_ids_, TaskSide, key="task")} if tasks else {}
        known = [t for t in self.task_ids_ if t in sides and sides[t].descriptor is not None]
        if not known:
            return
        # Tasks without a descriptor (e.g. a published table's, whose images are not at hand) still
        # shape the model vectors; only described tasks can be neighbours of a new task.
        described = np.array([self.task_ids_.index(t) for t in known], dtype=np.int64)
        first = sides[known[0]]
        dim = check_vector(first.descriptor, name=f"descriptor of task {first.task_id!r}").size
        x = np.stack([check_vector(sides[t].descriptor, name=f"descriptor of task {t!r}", dim=dim)
                      for t in known])  # (T_d, D)
        self._descriptors = x
        self._described = described
        self._desc_mean, self._desc_scale = standardiser(x)
        u, bias = self.model_vectors_[:, :-1], self.model_vectors_[:, -1]
        v = self.task_vectors_[described, :-1]
        self.task_predictor_, self.task_predictor_scores_ = choose_task_predictor(
            y, u, bias, v, x, described, n_neighbors=self.n_neighbors)

    # -- queries ------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not hasattr(self, "model_vectors_"):
            raise NotFittedError("This TransferSpace is not fitted: call fit(results, ...) or "
                                 "TransferSpace.load(path).")

    def model_vectors(self, models: Sequence[str | ModelSide]) -> np.ndarray:
        """Vectors ``(n, dim+1)`` for models: learned when known, placed from side info when new.

        Args:
            models: model ids (must be known) or :class:`ModelSide` records (a known id gets its
                learned vector; an unknown one a cold start ``[1, s]·W`` from its side features).

        Raises:
            NotFittedError: before fit/load.
            InvalidInputError: an unknown id without side information, or side information whose
                archi2vec dimension differs from the one seen in fit.
        """
        self._require_fitted()
        if isinstance(models, (str, ModelSide)):
            raise InvalidInputError("models must be a sequence of ids / ModelSide records; wrap one in a list.")
        row_of = {m: i for i, m in enumerate(self.model_ids_)}
        out = np.empty((len(models), self.dim + 1))
        cold: list[tuple[int, ModelSide]] = []
        for i, item in enumerate(models):
            model_id = item.model_id if isinstance(item, ModelSide) else item
            if not isinstance(model_id, str):
                raise InvalidInputError(f"models[{i}] is a {type(item).__name__}; expected a model id or ModelSide.")
            if model_id in row_of:
                out[i] = self.model_vectors_[row_of[model_id]]
            elif isinstance(item, ModelSide):
                cold.append((i, item))
            else:
                raise InvalidInputError(
                    f"Model {model_id!r} is not in the transfer space (it has no transfer history). Pass a "
                    "ModelSide with its archi2vec vector, parameters, family and pre-training data to place "
                    "it from side information (cold start).")
        if cold:
            if self._encoder.n_features == 0:
                warnings.warn("The transfer space was fitted without model side information: every new model "
                              "gets the mean model vector.", FallbackWarning, stacklevel=2)
            feats = self._encoder.transform([side for _, side in cold])
            placed = np.hstack([np.ones((len(cold), 1)), feats]) @ self.side_map_  # (n_cold, dim+1)
            for (i, side), vec in zip(cold, placed, strict=True):
                base = self.base_of(side)
                if base is not None:  # near its base model: a convex mix (module docstring)
                    vec = self.base_weight * self.model_vectors_[row_of[base]] + (1.0 - self.base_weight) * vec
                out[i] = vec
        return out

    def base_of(self, side: ModelSide) -> str | None:
        """The base model a cold start ``side`` is placed near: the first of its
        ``base_models`` (nearest first) that has a vector in the space; None when it has none,
        when ``base_weight`` is 0, or when the model itself has history."""
        self._require_fitted()
        known = set(self.model_ids_)
        if self.base_weight == 0 or side.model_id in known:
            return None
        return next((b for b in side.base_models if b in known and b != side.model_id), None)

    def task_vector(self, descriptor: np.ndarray) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """A new task's vector ``(dim+1,)`` from its proxy descriptor, with its evidence.

        The chosen task predictor's weights over the historical tasks, pulled toward the mean
        task by ``1 −`` the nearest task's similarity when ``shrink`` is on (module docstring).

        Returns:
            ``(vector, neighbours)``: the vector ``[v, 1]`` and up to ``n_neighbors``
            ``(historical task id, weight)`` pairs, largest weight first.

        Raises:
            NotFittedError: before fit/load.
            InvalidInputError: the descriptor's
                dimension differs from the historical ones.
        """
        self._require_fitted()
        if self._descriptors is None:
            warnings.warn("This transfer space was fitted without task descriptors, so a new task cannot be "
                          "placed from its own: it gets the mean historical task vector (models are ranked by "
                          "their overall strength). Refit with tasks={id: TaskSide(id, descriptor=...)} for "
                          "task-specific vectors.", FallbackWarning, stacklevel=2)
            vector = self.task_vectors_.mean(axis=0)
            vector[-1] = 1.0
            return vector, []
        x = check_vector(descriptor, name="descriptor", dim=self._descriptors.shape[1])
        z_train = (self._descriptors - self._desc_mean) / self._desc_scale
        predictor = self.task_predictor_
        assert predictor is not None, "the task predictor is chosen (or loaded) with the descriptors"
        kind, param = predictor["kind"], predictor["param"]
        z = (x - self._desc_mean) / self._desc_scale
        weights = task_weights(kind, param, z_train, z, self.n_neighbors)
        if self.shrink:
            weights = shrunk(weights, nearest_similarity(z_train, z))
        vector = weights @ self.task_vectors_[self._described]  # last entry = Σ w = 1
        vector[-1] = 1.0
        order = np.argsort(-weights, kind="stable")[: self.n_neighbors]
        return vector, [(self.task_ids_[self._described[j]], float(weights[j])) for j in order if weights[j] != 0]

    def update_task_vector(self, task_vector: np.ndarray, model_vectors: np.ndarray, observed: np.ndarray, *,
                           strength: float) -> np.ndarray:
        """A new task's vector moved by observed scores of some models on it (the posterior placement).

        :func:`fennec.space.tasks.posterior_task_vector` with ``task_vector`` (from
        :meth:`task_vector`) as the prior and the prior's precision ``ρ = strength · ū²``, where
        ``ū² = mean_m ‖u_m‖² / dim`` over the space's models is what one observation of an average
        model adds to ``UᵀU`` per dimension: ``strength`` is the prior's weight counted in
        observations (module docstring, step 6).

        Args:
            task_vector: ``(dim+1,)`` the prior placement ``[v0, 1]``.
            model_vectors: ``(k, dim+1)`` vectors of the observed models (:meth:`model_vectors`).
            observed: ``(k,)`` their scores on the task, on this space's score scale.
            strength: > 0; ``math.inf`` keeps the prior.

        Returns:
            ``(dim+1,)`` the posterior task vector ``[v̂, 1]``.

        Raises:
            NotFittedError: before fit/load.
            InvalidInputError: a strength that is not a number > 0, or what
                :func:`~fennec.space.tasks.posterior_task_vector` refuses.
        """
        self._require_fitted()
        if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating)) or not strength > 0:
            raise InvalidInputError(f"strength must be a number > 0 (math.inf: keep the prior), got {strength!r}.")
        u = self.model_vectors_[:, :-1]
        unit = max(float(np.mean(np.sum(u**2, axis=1))) / u.shape[1], JITTER)
        return posterior_task_vector(task_vector, model_vectors, observed, float(strength) * unit)

    def task_vector_of(self, task_id: str) -> np.ndarray:
        """The learned vector ``(dim+1,)`` of a historical task."""
        self._require_fitted()
        if task_id not in self.task_ids_:
            raise InvalidInputError(f"Task {task_id!r} is not in the transfer space; known tasks: "
                                    f"{', '.join(self.task_ids_[:10])}. Use task_vector(descriptor) for a new one.")
        return self.task_vectors_[self.task_ids_.index(task_id)].copy()

    def score(self, model_vectors: np.ndarray, task_vector: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` = ``model_vectors (n, dim+1) @ task_vector (dim+1,)``; higher is better."""
        mv = np.asarray(model_vectors, dtype=np.float64)
        tv = np.asarray(task_vector, dtype=np.float64)
        if mv.ndim != 2 or tv.ndim != 1 or mv.shape[1] != tv.shape[0]:
            raise InvalidInputError(f"score needs model vectors (n, k) and a task vector (k,), got {mv.shape} and "
                                    f"{tv.shape}.")
        return mv @ tv

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted space to one ``.npz`` file (arrays + a JSON header), atomically."""
        self._require_fitted()
        path = Path(path)
        enc_header, arrays = self._encoder.state()
        header = {"version": SPACE_VERSION, "params": self._params(), "model_ids": self.model_ids_,
                  "task_ids": self.task_ids_, "side": enc_header, "task_predictor": self.task_predictor_,
                  "task_predictor_scores": self.task_predictor_scores_, "n_iter": self.n_iter_, "loss": self.loss_,
                  "side_alpha": self.side_alpha_}
        arrays = dict(arrays, model_vectors=self.model_vectors_, task_vectors=self.task_vectors_,
                      side_map=self.side_map_, header=np.array(json.dumps(header)))
        if self._descriptors is not None:
            arrays.update(descriptors=self._descriptors, desc_mean=self._desc_mean, desc_scale=self._desc_scale,
                          described=self._described)
        return save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TransferSpace:
        """Read a space written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            SpaceVersionError: written by another :data:`SPACE_VERSION`; run ``fennec fit``.
            InvalidInputError: not a transfer-space file.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            header = json.loads(str(arrays.pop("header")))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"{path} is not a transfer space saved by TransferSpace.save ({exc}).") from None
        if not isinstance(header, dict):
            raise InvalidInputError(f"{path} is not a transfer space saved by TransferSpace.save (bad header).")
        found = header.get("version")
        if found != SPACE_VERSION:
            raise SpaceVersionError(
                f"{path} holds a transfer space of version {found!r}, but this fennec uses {SPACE_VERSION!r}. "
                "Run `fennec fit` to refit the transfer space.", path=str(path), found=found, expected=SPACE_VERSION)
        try:
            space = cls(**header["params"])
            space._encoder = SideEncoder.from_state(header["side"], arrays)
            space.model_ids_, space.task_ids_ = list(header["model_ids"]), list(header["task_ids"])
            space.model_vectors_, space.task_vectors_ = arrays["model_vectors"], arrays["task_vectors"]
            space.side_map_ = arrays["side_map"]
            space.side_feature_names_ = [n for n, k in zip(space._encoder.names, space._encoder.keep, strict=True) if k]
            space.task_predictor_ = header["task_predictor"]
            space.task_predictor_scores_ = dict(header["task_predictor_scores"])
            space.n_iter_, space.loss_ = int(header["n_iter"]), float(header["loss"])
            space.side_alpha_ = float(header["side_alpha"])
            space._descriptors = arrays.get("descriptors")
            space._described = np.zeros(0, dtype=np.int64)
            if space._descriptors is not None:
                space._desc_mean, space._desc_scale = arrays["desc_mean"], arrays["desc_scale"]
                space._described = arrays["described"].astype(np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"{path} is a damaged transfer space file ({type(exc).__name__}: {exc}); "
                                    "run `fennec fit` to rebuild it.") from None
        return space
