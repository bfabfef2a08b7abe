"""Every exception fennec raises on purpose.

Each one subclasses the builtin it refines, so ``except ValueError`` keeps working for
callers that do not know fennec's types, and carries enough context to act on.
"""

from __future__ import annotations

__all__ = [
    "FallbackWarning",
    "FennecError",
    "FennecWarning",
    "InvalidInputError",
    "MetricComputationError",
    "UnknownIdError",
    "UnknownMetricError",
]


class FennecError(Exception):
    """Base class of every error fennec raises on purpose."""

    def __str__(self) -> str:
        # One message, printed as is: OSError subclasses would format errno/filename and
        # KeyError subclasses would quote it otherwise.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


# ---------------------------------------------------------------------------------------
# INPUT ERRORS
# ---------------------------------------------------------------------------------------


class InvalidInputError(FennecError, ValueError):
    """An argument has the wrong shape, type or content.

    The message says what was found, what is required and how to fix it.
    """


class UnknownMetricError(FennecError, KeyError):
    """A metric name that is not registered. ``available`` lists the valid names."""

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = list(available)
        super().__init__(name)

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return (
            f"Unknown transferability metric {self.name!r}. "
            f"Available metrics: {', '.join(self.available)}. "
            "Use fennec.metrics.list_metrics() to see them with their descriptions."
        )


class UnknownIdError(InvalidInputError, KeyError):
    """An id (a model in an index, a task) that is not there. ``key`` is the id asked for.

    Both an :class:`InvalidInputError` (a ``ValueError``) and a ``KeyError``, so callers of
    either kind of lookup keep working.
    """

    def __init__(self, message: str, *, key: str):
        self.key = key
        super().__init__(message)


# ---------------------------------------------------------------------------------------
# COMPUTATION ERRORS
# ---------------------------------------------------------------------------------------


class MetricComputationError(FennecError, ArithmeticError):
    """A metric could not produce a finite score on otherwise valid input.

    Raised instead of returning NaN or inf. ``metric`` names the metric.
    """

    def __init__(self, metric: str, message: str):
        self.metric = metric
        super().__init__(f"{metric}: {message}")


# ---------------------------------------------------------------------------------------
# WARNINGS
# ---------------------------------------------------------------------------------------


class FennecWarning(UserWarning):
    """Base class of fennec's warnings."""


class FallbackWarning(FennecWarning):
    """A computation took its documented fallback path (e.g. a more robust solver)."""


# ---------------------------------------------------------------------------------------
# HUB ERRORS (fennec.hub): a reindex batch records these per model and goes on
# ---------------------------------------------------------------------------------------


class HubError(FennecError):
    """Base class of the errors about one model on the Hub. ``repo_id`` names it."""

    def __init__(self, message: str, *, repo_id: str | None = None, revision: str | None = None):
        self.repo_id = repo_id
        self.revision = revision
        self.message = message
        super().__init__(message)


class HubUnavailableError(HubError, ConnectionError):
    """The Hub could not be reached or kept failing (timeouts, 429, 5xx) after all retries.

    ``status`` is the last HTTP status (None for a network error or timeout).
    """

    def __init__(self, message: str, *, repo_id: str | None = None, status: int | None = None):
        self.status = status
        super().__init__(message, repo_id=repo_id)


class HubOfflineError(HubUnavailableError):
    """``HF_HUB_OFFLINE`` is set and what was asked for is not in the local cache."""


class ModelNotFoundError(HubError, FileNotFoundError):
    """No such repository (or revision) on the Hub."""


class ModelAccessError(HubError, PermissionError):
    """The repository is private (or the token is invalid): set ``HF_TOKEN`` to one with access."""


class GatedModelError(ModelAccessError):
    """The repository is gated: accept its conditions on the Hub, then set ``HF_TOKEN``."""


class HubFileNotFoundError(HubError, FileNotFoundError):
    """The repository exists but has no such file at that revision. ``filename`` names it."""

    def __init__(self, message: str, *, repo_id: str | None = None, revision: str | None = None,
                 filename: str | None = None):
        super().__init__(message, repo_id=repo_id, revision=revision)
        self.filename = filename  # OSError's own attribute; str() keeps the message


class MalformedModelError(HubError, ValueError):
    """The repository's config is missing, not JSON, or not a usable model config."""


class UnsupportedModelError(HubError, ValueError):
    """fennec cannot use this model (``reason`` says why); it is recorded as unsupported."""

    def __init__(self, message: str, *, repo_id: str | None = None, revision: str | None = None,
                 reason: str = "unsupported"):
        self.reason = reason
        super().__init__(message, repo_id=repo_id, revision=revision)


class RemoteCodeRequiredError(UnsupportedModelError):
    """The model needs custom code from its repository (``auto_map`` / ``custom_code``).

    fennec never enables ``trust_remote_code`` implicitly, so such models are unsupported.
    """


# ---------------------------------------------------------------------------------------
# CATALOG AND INDEX ERRORS (fennec.catalog, fennec.index)
# ---------------------------------------------------------------------------------------


class CatalogError(FennecError, RuntimeError):
    """The catalog database cannot be used. ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message)


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer fennec (schema ``found`` > ``supported``)."""

    def __init__(self, message: str, *, path: str | None = None, found: int, supported: int):
        self.found = found
        self.supported = supported
        super().__init__(message, path=path)


class CatalogDamagedError(CatalogError):
    """The catalog file is not a fennec catalog (empty, not SQLite, another program's
    database) or SQLite found it damaged. fennec never overwrites such a file: the message
    names ``fennec catalog check`` / ``fennec catalog repair`` and how to move it aside.
    ``reason`` is what is wrong, without that advice."""

    def __init__(self, message: str, *, path: str | None = None, reason: str | None = None):
        self.reason = reason
        super().__init__(message, path=path)


class StorageError(FennecError, OSError):
    """fennec's files cannot be written: the disk is full, or the folder is read-only or not
    ours. ``path`` names what could not be written and ``errno`` why (``ENOSPC``, ``EROFS``,
    ``EACCES`` …); the message says what was kept and what to do. Committed data is never
    lost to it: catalog writes are transactions, other files are replaced atomically."""

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None):
        super().__init__(message)
        self.path = path
        self.errno = errno


class IndexMismatchError(FennecError, ValueError):
    """A saved index does not match what was asked for (dimension, metric or versions), or
    the catalog's vectors were made by another embedder than a reindex run's.

    ``field`` names what differs, ``expected`` and ``found`` its two values.
    """

    def __init__(self, message: str, *, field: str, expected: object, found: object):
        self.field = field
        self.expected = expected
        self.found = found
        super().__init__(message)


class IndexCorruptedError(FennecError, OSError):
    """A saved index is missing a file or cannot be read. ``path`` names the folder."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message)


# ---------------------------------------------------------------------------------------
# REINDEX ERRORS (fennec.reindex)
# ---------------------------------------------------------------------------------------


class ReindexLockedError(FennecError, RuntimeError):
    """Another reindex holds the lock. ``lock_path`` is the lock file, ``holder`` what it says."""

    def __init__(self, message: str, *, lock_path: str, holder: str | None = None):
        self.lock_path = lock_path
        self.holder = holder
        super().__init__(message)


__all__ += [
    "ReindexLockedError",
    "CatalogDamagedError", "CatalogError", "CatalogVersionError", "GatedModelError", "HubError", "HubFileNotFoundError",
    "HubOfflineError", "HubUnavailableError", "IndexCorruptedError", "IndexMismatchError",
    "MalformedModelError", "ModelAccessError", "ModelNotFoundError", "RemoteCodeRequiredError",
    "StorageError", "UnsupportedModelError",
]


# ---------------------------------------------------------------------------------------
# TRANSFER SPACE ERRORS (fennec.space)
# ---------------------------------------------------------------------------------------


class NotFittedError(FennecError, RuntimeError):
    """A fitted object (e.g. a transfer space) was used before ``fit`` or ``load``."""


class SpaceVersionError(FennecError, ValueError):
    """A saved transfer space was written by another space version: refit it (``fennec fit``).

    ``path`` names the file, ``found`` and ``expected`` the two versions.
    """

    def __init__(self, message: str, *, path: str | None = None, found: object = None,
                 expected: object = None):
        self.path = path
        self.found = found
        self.expected = expected
        super().__init__(message)


__all__ += ["NotFittedError", "SpaceVersionError"]


# ---------------------------------------------------------------------------------------
# DATASET ERRORS (fennec.data)
# ---------------------------------------------------------------------------------------


class DatasetError(InvalidInputError):
    """A dataset cannot be loaded or sampled. ``dataset`` names it as the caller gave it."""

    def __init__(self, message: str, *, dataset: str | None = None):
        self.dataset = dataset
        self.message = message
        super().__init__(message)


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """Neither a local dataset nor a Hub dataset of that name. ``tried`` lists what was tried."""

    def __init__(self, message: str, *, dataset: str | None = None, tried: tuple[str, ...] = ()):
        self.tried = tuple(tried)
        super().__init__(message, dataset=dataset)


class DatasetSplitError(DatasetError):
    """The split (or config) asked for does not exist. ``available`` lists those that do."""

    def __init__(self, message: str, *, dataset: str | None = None, split: str | None = None,
                 available: tuple[str, ...] = ()):
        self.split = split
        self.available = tuple(available)
        super().__init__(message, dataset=dataset)


class DatasetColumnError(DatasetError):
    """The image or label column is missing or ambiguous. ``columns`` lists the columns found."""

    def __init__(self, message: str, *, dataset: str | None = None, columns: tuple[str, ...] = ()):
        self.columns = tuple(columns)
        super().__init__(message, dataset=dataset)


class DatasetWarning(FennecWarning):
    """Part of a dataset was left out of a sample (small classes, unreadable images)."""


__all__ += ["DatasetColumnError", "DatasetError", "DatasetNotFoundError", "DatasetSplitError",
            "DatasetWarning"]


# ---------------------------------------------------------------------------------------
# FEATURE EXTRACTION AND REFINEMENT (fennec.features, fennec.recommendation.refine)
# ---------------------------------------------------------------------------------------


class FeatureExtractionError(FennecError, RuntimeError):
    """A model ran but its features cannot be used (e.g. non-finite). ``model_id`` names it."""

    def __init__(self, message: str, *, model_id: str | None = None):
        self.model_id = model_id
        super().__init__(f"{model_id}: {message}" if model_id else message)


class CandidateFailedWarning(FennecWarning):
    """A candidate model could not be scored; it is recorded with its error and the rest go on."""


__all__ += ["CandidateFailedWarning", "FeatureExtractionError"]


# ---------------------------------------------------------------------------------------
# WORKSPACE ERRORS (fennec.workspace)
# ---------------------------------------------------------------------------------------


class WorkspaceError(FennecError, RuntimeError):
    """A workspace (catalog + fitted transfer space) is missing, incomplete or out of date;
    the message says which command fixes it (``fennec reindex``, ``fennec fit`` …)."""


__all__ += ["WorkspaceError"]


# ---------------------------------------------------------------------------------------
# PUBLISHED HISTORY (fennec.published)
# ---------------------------------------------------------------------------------------


class PublishedDataError(FennecError, RuntimeError):
    """The published tables or mappings shipped with fennec are missing or damaged (an
    installation without its package data, or an edited file); ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message)


__all__ += ["PublishedDataError"]


# ---------------------------------------------------------------------------------------
# ENGINE ERRORS (fennec.engine: --ray)
# ---------------------------------------------------------------------------------------


class EngineError(FennecError, RuntimeError):
    """The executor could not be set up, its workers cannot run fennec, or a unit was lost
    where nothing can stand in for it."""


class RayNotInstalledError(EngineError, ImportError):
    """Ray was asked for (``--ray``, ``FENNEC_RAY_ADDRESS``) but is not installed."""


class RayClusterUnreachableError(EngineError, ConnectionError):
    """The Ray cluster at ``address`` cannot be reached or joined."""

    def __init__(self, message: str, *, address: str):
        super().__init__(message)
        self.address = address


__all__ += ["EngineError", "RayClusterUnreachableError", "RayNotInstalledError"]
