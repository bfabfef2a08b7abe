"""The Fennec paper's recommender (arXiv 2403.06382), as its public code does it: the baseline
fennec's transfer space (:mod:`fennec.space`) must beat. ``fennec bench`` runs both side by side.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fennec.errors import InvalidInputError, NotFittedError
from fennec.space.results import normalise_results, results_matrix
from fennec.space.side import ModelSide, TaskSide, check_params, check_vector, sides_of
from fennec.validation import check_fraction, check_positive_int

__all__ = ["FennecBaseline"]

LOG = logging.getLogger(__name__)


class FennecBaseline:
    """The Fennec paper's recommender, as in its public code.

    Bai et al., "Pre-Trained Model Recommendation for Downstream Fine-tuning", arXiv 2403.06382,
    ``meta_features_plus.py``:

    1. ``NMF(n_components=k, max_iter=1000, random_state=seed, alpha_W=0, alpha_H="same")`` on
       the models × tasks matrix → model vectors ``U = W``, task vectors ``V = Hᵀ``;
    2. ``RandomForestRegressor(n_estimators, random_state=seed)`` from every proxy image
       embedding of a historical task to that task's ``V_t``; a new task's vector ``v`` is
       the mean prediction over its images, its transfer scores ``U·v``;
    3. ``LinearRegression`` from meta-features — model: ``[#params, #Conv2d+Linear layers,
       one-hot KMeans(n_clusters, random_state=0) cluster of archi2vec]``; task:
       ``[#images, #classes]`` — to the historical score;
    4. ``final = (1 − meta_weight)·U·v + meta_weight·meta_pred``.

    Deliberate differences from the public code, all forced by what it leaves undefined for
    real transfer histories:

    * the matrix holds **fine-tune accuracies** min-max normalised per task into [0, 1] (the
      code factorises FDA proxy scores, which are complete and non-negative); missing cells
      are filled with the task's mean before NMF, and the meta-regressor is trained on the
      observed cells only;
    * the layer count is used only when every model has ``n_layers``; the archi2vec cluster
      only when some model has an archi2vec vector (models without one get no cluster); the
      task meta-features only when every task has ``n_samples`` and ``n_classes``;
    * a model that has side information but no transfer history has no NMF vector; it is
      scored by the meta-regressor alone (the paper has no model cold start).

    Args:
        k: NMF components.
        meta_weight: weight ``w`` of the meta-regressor's prediction.
        n_estimators: trees of the random forest.
        n_clusters: KMeans clusters of archi2vec vectors (capped at the number of vectors).
        seed: NMF and random-forest seed (the paper's 2023).
    """

    def __init__(self, k: int = 5, *, meta_weight: float = 0.5, n_estimators: int = 25, n_clusters: int = 4,
                 seed: int = 2023):
        self.k = k
        self.meta_weight = meta_weight
        self.n_estimators = n_estimators
        self.n_clusters = n_clusters
        self.seed = seed

    def fit(self, results: Mapping[str, Mapping[str, float]], models: Mapping[str, ModelSide],
            task_embeddings: Mapping[str, np.ndarray],
            tasks: Mapping[str, TaskSide] | None = None) -> FennecBaseline:
        """Fit NMF, the proxy random forest and the meta-regressor.

        Args:
            results: ``{task: {model: fine-tune accuracy}}``.
            models: side information of every model in the results (``parameters`` required;
                may hold extra models without history, scored by the meta-regressor alone).
            task_embeddings: ``{task: (n_images, D)}`` proxy embeddings of every task.
            tasks: ``n_samples`` / ``n_classes`` per task (the task meta-features), optional.

        Returns:
            self.

        Raises:
            InvalidInputError: malformed results, a model without ``parameters``, a task
                without embeddings, embeddings of different dimensions.
        """
        from sklearn.cluster import KMeans
        from sklearn.decomposition import NMF
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import LinearRegression

        check_positive_int(self.k, "FennecBaseline(k=)", hint="nearest tasks")
        check_fraction(self.meta_weight, "FennecBaseline(meta_weight=)", meaning="the metadata model's share")
        model_ids, task_ids, y = results_matrix(normalise_results(results, method="minmax"))
        if not isinstance(models, Mapping):
            raise InvalidInputError("models must be a mapping model id -> ModelSide.")
        all_ids = model_ids + sorted(set(models) - set(model_ids))
        sides = sides_of(models, all_ids, ModelSide, key="model")
        no_params = [s.model_id for s in sides if s.parameters is None]
        if no_params:
            raise InvalidInputError(f"{len(no_params)} model(s) have no parameter count ({', '.join(no_params[:5])}); "
                                    "the Fennec meta-features need ModelSide.parameters for every model.")
        # 1. NMF of the task-mean-filled [0, 1] matrix
        filled = np.where(np.isfinite(y), y, np.nanmean(y, axis=0, keepdims=True))  # (M, T)
        nmf = NMF(n_components=self.k, max_iter=1000, random_state=self.seed, alpha_W=0.0, alpha_H="same")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            u = nmf.fit_transform(filled)  # (M, k)
        for warning in caught:
            LOG.info("NMF: %s", warning.message)
        v = nmf.components_.T  # (T, k)
        # 2. proxy image embeddings -> task vectors
        if not isinstance(task_embeddings, Mapping):
            raise InvalidInputError("task_embeddings must be a mapping task id -> (n_images, D) array.")
        missing = [t for t in task_ids if t not in task_embeddings]
        if missing:
            raise InvalidInputError(f"{len(missing)} task(s) have no proxy embeddings ({', '.join(missing[:5])}); "
                                    "pass task_embeddings[task] = (n_images, D) for every task in the results.")
        feats = [self._embeddings(task_embeddings[t], name=f"task_embeddings[{t!r}]") for t in task_ids]
        dims = {f.shape[1] for f in feats}
        if len(dims) != 1:
            raise InvalidInputError(f"task embeddings have different dimensions {sorted(dims)}; use one proxy model.")
        self.embedding_dim_ = dims.pop()
        forest = RandomForestRegressor(n_estimators=self.n_estimators, random_state=self.seed)
        forest.fit(np.vstack(feats), np.vstack([np.repeat(v[j][None], len(f), axis=0) for j, f in enumerate(feats)]))
        # 3. meta-features and the linear meta-regressor
        self._model_meta = self._model_features(sides, KMeans)
        task_sides = sides_of(tasks, task_ids, TaskSide, key="task") if tasks else []
        self.uses_task_meta_ = bool(task_sides) and all(
            s.n_samples is not None and s.n_classes is not None for s in task_sides)
        rows, targets = [], []
        for j in range(len(task_ids)):
            task_meta = [task_sides[j].n_samples, task_sides[j].n_classes] if self.uses_task_meta_ else []
            for i, m in enumerate(model_ids):
                if np.isfinite(y[i, j]):
                    rows.append(np.concatenate([self._model_meta[m], task_meta]))
                    targets.append(y[i, j])
        self._meta = LinearRegression().fit(np.array(rows), np.array(targets))
        self.model_ids_, self.task_ids_ = model_ids, task_ids
        self.all_model_ids_ = all_ids
        self.model_vectors_, self.task_vectors_ = u, v
        self._forest = forest
        return self

    def _model_features(self, sides: Sequence[ModelSide], kmeans_cls: Any) -> dict[str, np.ndarray]:
        """``{model: [params, (n_layers), one-hot cluster]}``."""
        use_layers = all(s.n_layers is not None for s in sides)
        with_vec = [s for s in sides if s.archi2vec is not None]
        onehot = {s.model_id: np.zeros(0) for s in sides}
        self.n_clusters_ = 0
        if with_vec:
            dim = check_vector(with_vec[0].archi2vec, name=f"archi2vec of {with_vec[0].model_id!r}").size
            vecs = np.stack([check_vector(s.archi2vec, name=f"archi2vec of {s.model_id!r}", dim=dim)
                             for s in with_vec])
            n_clusters = min(self.n_clusters, len(np.unique(vecs, axis=0)))
            labels = kmeans_cls(n_clusters=n_clusters, random_state=0, n_init=10).fit_predict(vecs)
            self.n_clusters_ = n_clusters
            onehot = {s.model_id: np.zeros(n_clusters) for s in sides}
            for s, lab in zip(with_vec, labels, strict=True):
                onehot[s.model_id][lab] = 1.0
        self.uses_layers_ = use_layers
        features = {}
        for s in sides:
            params = check_params(s)
            assert params is not None, "fit() refuses models without parameters"
            layers = [float(s.n_layers)] if use_layers and s.n_layers is not None else []  # all or none
            features[s.model_id] = np.concatenate([[float(params)], layers, onehot[s.model_id]])
        return features

    @staticmethod
    def _embeddings(value: Any, *, name: str, dim: int | None = None) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{name} must be a numeric (n_images, D) array.") from None
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise InvalidInputError(f"{name} must be a non-empty (n_images, D) array, got shape {arr.shape}.")
        if dim is not None and arr.shape[1] != dim:
            raise InvalidInputError(f"{name} has dimension {arr.shape[1]}, expected {dim} (the proxy used in fit).")
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{name} contains NaN or infinite values.")
        return arr

    def predict(self, embeddings: np.ndarray, *, n_samples: int | None = None, n_classes: int | None = None,
                models: Sequence[str] | None = None) -> dict[str, float]:
        """Scores of models for a new task from its proxy image embeddings ``(n_images, D)``.

        Args:
            embeddings: proxy embeddings of the new task's images.
            n_samples, n_classes: the new task's meta-features (required when the fit used them).
            models: model ids to score (default: every model seen in fit, with or without history).

        Returns:
            ``{model: (1 − w)·U·v + w·meta_pred}`` (meta_pred alone for models without history).
        """
        if not hasattr(self, "_forest"):
            raise NotFittedError("This FennecBaseline is not fitted: call fit(...) first.")
        x = self._embeddings(embeddings, name="embeddings", dim=self.embedding_dim_)
        task_meta: list[float] = []
        if self.uses_task_meta_:
            if n_samples is None or n_classes is None:
                raise InvalidInputError("This baseline was fitted with task meta-features: pass n_samples and "
                                        "n_classes of the new task.")
            task_meta = [float(n_samples), float(n_classes)]
        v = self._forest.predict(x).reshape(len(x), -1).mean(axis=0)  # (k,)
        ids = list(self.all_model_ids_ if models is None else models)
        unknown = [m for m in ids if m not in self._model_meta]
        if unknown:
            raise InvalidInputError(f"Unknown model(s) {', '.join(map(repr, unknown[:5]))}: the baseline scores "
                                    "only models given to fit (with side information).")
        meta = self._meta.predict(np.array([np.concatenate([self._model_meta[m], task_meta]) for m in ids]))
        row_of = {m: i for i, m in enumerate(self.model_ids_)}
        w = self.meta_weight
        return {m: float((1 - w) * (self.model_vectors_[row_of[m]] @ v) + w * p) if m in row_of else float(p)
                for m, p in zip(ids, meta, strict=True)}
