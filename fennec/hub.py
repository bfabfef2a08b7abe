"""Talking to the Hugging Face Hub, or to a local folder laid out like it.

This is the only fennec module that imports :mod:`huggingface_hub`. It returns frozen
records pinned to a commit sha and raises fennec's typed errors (``fennec.errors``), so that
a reindex batch can record a failing model and go on.

Two hubs share one interface (:class:`Hub`):

- :class:`HfHub` talks HTTP to the Hub, or to any Hub-compatible endpoint (``HF_ENDPOINT``,
  such as :class:`fennec.hub_server.HubServer`). It honours ``HF_ENDPOINT``, ``HF_TOKEN``
  and ``HF_HUB_OFFLINE`` (read when the hub is opened, not when huggingface_hub is
  imported), retries 429, 5xx, timeouts and dropped connections with exponential backoff
  (and the server's ``Retry-After``), and downloads into the standard Hugging Face cache.
- :class:`LocalHub` reads a folder of Hub-style repositories (``<org>/<name>/config.json``
  …), such as the benchmark zoo: the default when the Hub cannot be reached.

:func:`open_hub` picks one from a URL, a folder or the environment.

Example:
    >>> hub = open_hub("http://127.0.0.1:8765")  # doctest: +SKIP
    >>> for m in hub.list_models(sort="lastModified", limit=10):  # doctest: +SKIP
    ...     files = hub.fetch(m.repo_id, revision=m.sha)     # config only, no weights
    ...     files.config["model_type"]
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fennec import constants
from fennec.errors import (
    GatedModelError,
    HubError,
    HubFileNotFoundError,
    HubOfflineError,
    HubUnavailableError,
    MalformedModelError,
    ModelAccessError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
)

__all__ = [
    "Hub",
    "HfHub",
    "LocalHub",
    "ModelFiles",
    "ModelRecord",
    "RetryPolicy",
    "check_config",
    "open_hub",
]

LOG = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
#: Preprocessor files, in the order they are looked for (transformers, then older names).
PREPROCESSOR_NAMES = ("preprocessor_config.json",)
#: Weight files, in order of preference.
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
_SORTS = ("lastModified", "createdAt", "downloads", "likes")
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """What the Hub says about one model at one commit.

    Attributes:
        repo_id: ``org/name``.
        sha: the 40-hex commit every other field describes.
        library: ``transformers``, ``timm`` or another library name (None if unknown).
        pipeline_tag: e.g. ``image-classification``.
        created_at, last_modified: UTC datetimes (None if the hub did not say).
        downloads, likes: popularity counters.
        parameters: parameter count from the safetensors header (None if unknown).
        model_type: ``config.model_type`` (transformers) or ``config.architecture`` (timm).
        tags: the repository's tags.
        gated, private: access restrictions.
        requires_remote_code: the model needs custom code (``auto_map``, ``custom_code``).
        files: file names at that commit (empty in listings, which do not include them).
    """

    repo_id: str
    sha: str
    library: str | None = None
    pipeline_tag: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    downloads: int = 0
    likes: int = 0
    parameters: int | None = None
    model_type: str | None = None
    tags: tuple[str, ...] = ()
    gated: bool = False
    private: bool = False
    requires_remote_code: bool = False
    files: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """Local copies of a model's files at one commit (in the HF cache, or the local hub).

    Attributes:
        repo_id, sha: the model and the commit the files come from.
        config: the parsed ``config.json``.
        config_path: its path.
        preprocessor_path: ``preprocessor_config.json`` if the model has one.
        weights_path: the weights, if they were asked for.
    """

    repo_id: str
    sha: str
    config: dict[str, Any]
    config_path: Path
    preprocessor_path: Path | None = None
    weights_path: Path | None = None

    @property
    def folder(self) -> Path:
        """The snapshot folder, ready for ``from_pretrained(folder)``."""
        return self.config_path.parent


def check_config(config: Any, *, repo_id: str, revision: str | None = None,
                 tags: Iterable[str] = ()) -> dict[str, Any]:
    """Check that a parsed ``config.json`` describes a model fennec can build without custom code.

    Args:
        config: the parsed JSON.
        repo_id, revision: for error messages.
        tags: the repository's tags (``custom_code`` marks a remote-code model).

    Returns:
        The config, unchanged.

    Raises:
        MalformedModelError: not a JSON object, or neither ``model_type`` (transformers)
            nor ``architecture`` (timm).
        RemoteCodeRequiredError: the model needs code from its repository; fennec never sets
            ``trust_remote_code`` implicitly.

    Example:
        >>> check_config({"model_type": "vit"}, repo_id="google/vit-base-patch16-224")
        {'model_type': 'vit'}
    """
    if not isinstance(config, dict):
        raise MalformedModelError(
            f"{repo_id}: config.json is a JSON {type(config).__name__}, not an object.",
            repo_id=repo_id, revision=revision)
    if config.get("auto_map") or "custom_code" in set(tags):
        raise RemoteCodeRequiredError(
            f"{repo_id} needs custom code from its repository (auto_map: "
            f"{sorted(config.get('auto_map') or {})}); fennec never enables trust_remote_code "
            "implicitly, so the model is recorded as unsupported.",
            repo_id=repo_id, revision=revision, reason="remote_code")
    if not (isinstance(config.get("model_type"), str) or isinstance(config.get("architecture"), str)):
        raise MalformedModelError(
            f"{repo_id}: config.json has neither 'model_type' (transformers) nor "
            f"'architecture' (timm); keys found: {sorted(config)[:12]}.",
            repo_id=repo_id, revision=revision)
    return config


def _read_config(path: Path, *, repo_id: str, revision: str | None, tags: Iterable[str]) -> dict:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedModelError(f"{repo_id}: config.json is not valid JSON ({e}).",
                                  repo_id=repo_id, revision=revision) from e
    return check_config(config, repo_id=repo_id, revision=revision, tags=tags)


# ---------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------


class Hub(Protocol):
    """What fennec needs from a hub; :class:`HfHub` and :class:`LocalHub` implement it."""

    def list_models(self, *, pipeline_tags: Iterable[str] = constants.PIPELINE_TAGS,
                    libraries: Iterable[str] = constants.LIBRARIES, sort: str = "lastModified",
                    since: datetime | None = None, limit: int | None = None) -> Iterator[ModelRecord]:
        ...

    def model_info(self, repo_id: str, *, revision: str | None = None) -> ModelRecord:
        ...

    def fetch(self, repo_id: str, *, revision: str | None = None, weights: bool = False) -> ModelFiles:
        ...


def _check_list_args(sort: str, since: datetime | None, limit: int | None) -> None:
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {_SORTS}, got {sort!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc))")


def _sort_key(record: ModelRecord, sort: str) -> Any:
    if sort == "lastModified":
        return record.last_modified or datetime.min.replace(tzinfo=timezone.utc)
    if sort == "createdAt":
        return record.created_at or datetime.min.replace(tzinfo=timezone.utc)
    return getattr(record, sort)


def _merge(streams: list[Iterator[ModelRecord]], *, sort: str, since: datetime | None,
           limit: int | None) -> Iterator[ModelRecord]:
    """Merge per-(tag, library) listings, each sorted descending, into one without duplicates.

    With ``since`` and a date sort, stops as soon as every stream is older than ``since``.
    """
    merged = heapq.merge(*streams, key=lambda r: (_sort_key(r, sort), r.repo_id), reverse=True)
    seen: set[str] = set()
    n = 0
    for record in merged:
        if since is not None:
            when = record.last_modified if sort != "createdAt" else record.created_at
            if when is not None and when <= since:
                if sort in ("lastModified", "createdAt"):
                    return  # everything after is older
                continue
        if record.repo_id in seen:
            continue
        seen.add(record.repo_id)
        yield record
        n += 1
        if limit is not None and n >= limit:
            return


# ---------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient Hub failures (429, 5xx, timeouts, dropped connections).

    Attributes:
        attempts: tries in all (1 = no retry).
        base_delay: seconds before the first retry; doubles each time, with ±25 % jitter.
        max_delay: cap on one wait, also on a server's ``Retry-After``.
        timeout: seconds for one metadata request.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        d = self.base_delay * (2 ** attempt)
        return min(d * random.uniform(0.75, 1.25), self.max_delay)


# ---------------------------------------------------------------------------------------
# The Hub over HTTP
# ---------------------------------------------------------------------------------------


class HfHub:
    """The Hugging Face Hub, or any endpoint that speaks its API.

    Args:
        endpoint: base URL; defaults to ``HF_ENDPOINT`` or https://huggingface.co.
        token: access token; defaults to ``HF_TOKEN``. Needed for private and gated models.
        offline: refuse network access and serve downloads from the cache only; defaults to
            ``HF_HUB_OFFLINE``.
        cache_dir: the Hugging Face cache; defaults to ``HF_HUB_CACHE`` or ``HF_HOME/hub``.
        retry: backoff policy for transient failures.

    Raises (from its methods):
        ModelNotFoundError, ModelAccessError, GatedModelError, HubFileNotFoundError,
        MalformedModelError, RemoteCodeRequiredError, HubUnavailableError, HubOfflineError.

    Example:
        >>> hub = HfHub(endpoint="http://127.0.0.1:8765", retry=RetryPolicy(attempts=3))  # doctest: +SKIP
        >>> hub.model_info("google/vit-base-patch16-224").sha  # doctest: +SKIP
    """

    def __init__(self, *, endpoint: str | None = None, token: str | None = None,
                 offline: bool | None = None, cache_dir: str | Path | None = None,
                 retry: RetryPolicy = RetryPolicy()):
        import huggingface_hub  # noqa: F401 - fail here, clearly, if it is missing

        self.endpoint = (endpoint or constants.hf_endpoint()).rstrip("/")
        self.token = token if token is not None else constants.hf_token()
        self.offline = constants.hf_offline() if offline is None else bool(offline)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else constants.hf_hub_cache()
        self.retry = retry
        self._api = huggingface_hub.HfApi(endpoint=self.endpoint, token=self.token or None,
                                          library_name="fennec")

    def __repr__(self) -> str:
        return f"HfHub(endpoint={self.endpoint!r}, offline={self.offline})"

    # -- errors and retries ---------------------------------------------------------------

    def _translate(self, e: BaseException, *, repo_id: str | None, revision: str | None,
                   filename: str | None = None) -> BaseException:
        """A huggingface_hub exception as a fennec error; None for a transient failure (to be
        retried) or an exception fennec does not know (to be re-raised as is)."""
        from huggingface_hub import errors as hf

        status = getattr(getattr(e, "response", None), "status_code", None)
        where = f"{repo_id}@{revision}" if revision else str(repo_id)
        if isinstance(e, hf.OfflineModeIsEnabled):
            return HubOfflineError(f"{where}: offline mode is on (HF_HUB_OFFLINE) and it is not "
                                   "in the local cache.", repo_id=repo_id)
        if isinstance(e, hf.GatedRepoError):
            return GatedModelError(
                f"{where} is gated: accept its conditions on the Hub and set HF_TOKEN "
                f"(HTTP {status}).", repo_id=repo_id, revision=revision)
        if isinstance(e, hf.LocalEntryNotFoundError):  # hf_hub_download: the HEAD call failed
            if self._is_transient(e):
                return None  # type: ignore[return-value]
            return HubError(f"{where}: could not locate {filename!r} on {self.endpoint} ({e}).",
                            repo_id=repo_id, revision=revision)
        if isinstance(e, hf.RevisionNotFoundError):
            return ModelNotFoundError(f"{repo_id} has no revision {revision!r}.",
                                      repo_id=repo_id, revision=revision)
        if isinstance(e, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)):
            return HubFileNotFoundError(f"{where} has no file {filename!r}.", repo_id=repo_id,
                                        revision=revision, filename=filename)
        if isinstance(e, hf.RepositoryNotFoundError):
            if status == 401:
                return ModelAccessError(
                    f"{where} does not exist or is private: set HF_TOKEN to a token with access.",
                    repo_id=repo_id, revision=revision)
            return ModelNotFoundError(f"{repo_id} does not exist on {self.endpoint}.",
                                      repo_id=repo_id, revision=revision)
        if isinstance(e, hf.HfHubHTTPError) and status in (401, 403):
            return ModelAccessError(f"{where}: access refused (HTTP {status}); check HF_TOKEN.",
                                    repo_id=repo_id, revision=revision)
        if isinstance(e, hf.HfHubHTTPError) and status is not None and status not in _RETRY_STATUS:
            return HubError(f"{where}: the Hub answered HTTP {status}: {e}", repo_id=repo_id,
                            revision=revision)
        return None  # type: ignore[return-value]

    def _is_transient(self, e: BaseException) -> bool:
        import httpx2
        from huggingface_hub import errors as hf

        if isinstance(e, hf.HfHubHTTPError):
            status = getattr(e.response, "status_code", None)
            return status in _RETRY_STATUS
        if isinstance(e, hf.LocalEntryNotFoundError):
            # hf_hub_download hides a failed HEAD (timeout, 5xx) behind this when not cached
            cause = e.__cause__ or e.__context__
            return cause is not None and not isinstance(cause, hf.OfflineModeIsEnabled) and (
                self._is_transient(cause))
        return isinstance(e, (httpx2.TimeoutException, httpx2.NetworkError,
                              httpx2.RemoteProtocolError, TimeoutError, ConnectionError)) and not (
            isinstance(e, hf.OfflineModeIsEnabled))

    def _call(self, fn: Callable[[], _T], *, repo_id: str | None = None,
              revision: str | None = None, filename: str | None = None, what: str = "") -> _T:
        """Run ``fn`` with retries on transient failures; translate errors to fennec's."""
        if self.offline:
            raise HubOfflineError(f"{what or repo_id}: offline mode is on (HF_HUB_OFFLINE).",
                                  repo_id=repo_id)
        last: BaseException | None = None
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except HubError:
                raise
            except Exception as e:  # huggingface_hub / httpx2 errors, sorted below
                fennec_error = self._translate(e, repo_id=repo_id, revision=revision, filename=filename)
                if fennec_error is not None:
                    raise fennec_error from e
                if not self._is_transient(e):
                    if isinstance(e, (ValueError, KeyError, TypeError)):  # an answer we cannot parse
                        raise HubError(f"{what or repo_id}: unexpected answer from {self.endpoint} "
                                       f"({type(e).__name__}: {str(e)[:200]}).", repo_id=repo_id,
                                       revision=revision) from e
                    raise
                last = e
                if attempt + 1 < self.retry.attempts:
                    retry_after = _retry_after(e)
                    wait = self.retry.delay(attempt, retry_after)
                    LOG.warning("%s: %s; retry %d/%d in %.1f s", what or repo_id,
                                _describe(e), attempt + 1, self.retry.attempts - 1, wait)
                    time.sleep(wait)
        status = _status(last)
        raise HubUnavailableError(
            f"{what or repo_id}: the Hub at {self.endpoint} kept failing after "
            f"{self.retry.attempts} attempts ({_describe(last)}).", repo_id=repo_id,
            status=status) from last

    # -- the interface --------------------------------------------------------------------

    def _record(self, info: Any) -> ModelRecord:
        config = info.config or {}
        tags = tuple(info.tags or ())
        st = getattr(info, "safetensors", None)
        return ModelRecord(
            repo_id=info.id, sha=info.sha or "", library=info.library_name,
            pipeline_tag=info.pipeline_tag, created_at=info.created_at,
            last_modified=info.last_modified, downloads=int(info.downloads or 0),
            likes=int(info.likes or 0), parameters=int(st.total) if st is not None else None,
            model_type=config.get("model_type") or config.get("architecture"), tags=tags,
            gated=bool(info.gated), private=bool(info.private),
            requires_remote_code=bool(config.get("auto_map")) or "custom_code" in tags,
            files=tuple(s.rfilename for s in (info.siblings or ())),
        )

    def list_models(self, *, pipeline_tags: Iterable[str] = constants.PIPELINE_TAGS,
                    libraries: Iterable[str] = constants.LIBRARIES, sort: str = "lastModified",
                    since: datetime | None = None, limit: int | None = None) -> Iterator[ModelRecord]:
        """Models with one of ``pipeline_tags`` from one of ``libraries``, newest (or most
        downloaded, liked) first.

        Args:
            pipeline_tags: e.g. ``("image-classification", "image-feature-extraction")``.
            libraries: e.g. ``("transformers", "timm")``.
            sort: ``lastModified``, ``createdAt``, ``downloads`` or ``likes`` (descending).
            since: only models modified (``createdAt``: created) strictly after this aware
                datetime; with a date sort the listing stops at the first older page.
            limit: at most this many models.

        Returns:
            An iterator of :class:`ModelRecord` (no ``files``), fetched page by page.

        Raises:
            ValueError: a bad ``sort``, ``limit`` or naive ``since``.
            HubUnavailableError: the listing kept failing; HubOfflineError when offline.
        """
        _check_list_args(sort, since, limit)
        if self.offline:
            raise HubOfflineError("Cannot list models: offline mode is on (HF_HUB_OFFLINE). "
                                  "Use a LocalHub (open_hub(folder)) instead.")
        streams = [self._stream(tag, lib, sort) for tag in pipeline_tags for lib in libraries]
        return _merge(streams, sort=sort, since=since, limit=limit)

    def _stream(self, pipeline_tag: str, library: str, sort: str) -> Iterator[ModelRecord]:
        """One listing, restarted (skipping what it already gave) after a transient failure."""
        yielded: set[str] = set()
        failures = 0
        while True:
            try:
                it = iter(self._api.list_models(pipeline_tag=pipeline_tag, filter=library, sort=sort,
                                                expand=["sha", "lastModified", "createdAt", "downloads",
                                                        "likes", "library_name", "pipeline_tag",
                                                        "tags", "gated", "private", "safetensors",
                                                        "config"]))
                for info in it:
                    if info.id in yielded:
                        continue
                    record = self._record(info)
                    yielded.add(info.id)
                    yield record
                return
            except Exception as e:
                if not self._is_transient(e):
                    err = self._translate(e, repo_id=None, revision=None)
                    if err is None and isinstance(e, (ValueError, KeyError, TypeError)):
                        err = HubError(f"Listing {pipeline_tag}/{library} models: unexpected answer "
                                       f"from {self.endpoint} ({type(e).__name__}: {str(e)[:200]}).")
                    raise (err or e) from e
                failures += 1
                if failures >= self.retry.attempts:
                    raise HubUnavailableError(
                        f"Listing {pipeline_tag}/{library} models from {self.endpoint} kept "
                        f"failing ({_describe(e)}).", status=_status(e)) from e
                wait = self.retry.delay(failures - 1, _retry_after(e))
                LOG.warning("Listing %s/%s: %s; restarting in %.1f s", pipeline_tag, library,
                            _describe(e), wait)
                time.sleep(wait)

    def model_info(self, repo_id: str, *, revision: str | None = None) -> ModelRecord:
        """Metadata of one model, pinned to the commit sha ``revision`` resolves to.

        Raises:
            ModelNotFoundError, ModelAccessError, GatedModelError, HubUnavailableError,
            HubOfflineError.
        """
        info = self._call(lambda: self._api.model_info(repo_id, revision=revision,
                                                       timeout=self.retry.timeout),
                          repo_id=repo_id, revision=revision, what=f"model_info({repo_id})")
        return self._record(info)

    def _download(self, repo_id: str, filename: str, sha: str) -> Path:
        from huggingface_hub import hf_hub_download

        def go() -> str:
            return hf_hub_download(repo_id, filename, revision=sha, cache_dir=self.cache_dir,
                                   endpoint=self.endpoint, token=self.token or None,
                                   etag_timeout=self.retry.timeout,
                                   local_files_only=self.offline)

        if self.offline:
            try:
                return Path(go())
            except Exception as e:
                raise HubOfflineError(f"{repo_id}@{sha}: {filename} is not in the cache "
                                      f"({self.cache_dir}) and HF_HUB_OFFLINE is on.",
                                      repo_id=repo_id) from e
        return Path(self._call(go, repo_id=repo_id, revision=sha, filename=filename,
                               what=f"{repo_id}/{filename}"))

    def fetch(self, repo_id: str, *, revision: str | None = None, weights: bool = False) -> ModelFiles:
        """Download ``config.json``, the preprocessor config and (if asked) the weights.

        Files go to the standard Hugging Face cache, pinned to the commit sha (a branch
        name is resolved first), so ``from_pretrained(files.folder)`` works offline later.

        Args:
            repo_id: ``org/name``.
            revision: a branch, tag or commit sha; ``main`` by default.
            weights: also download the weights (``model.safetensors`` first).

        Returns:
            :class:`ModelFiles` with the parsed, checked config.

        Raises:
            MalformedModelError: no config.json, or not a valid model config.
            RemoteCodeRequiredError: the model needs custom code.
            HubFileNotFoundError: ``weights=True`` and no weight file.
            and the errors of :meth:`model_info`.
        """
        if self.offline:
            sha = revision if revision and len(revision) == 40 else self._cached_sha(repo_id, revision)
            record = None
        else:
            record = self.model_info(repo_id, revision=revision)
            sha = record.sha
            if CONFIG_NAME not in record.files:
                raise MalformedModelError(f"{repo_id}@{sha} has no config.json.",
                                          repo_id=repo_id, revision=sha)
        tags = record.tags if record is not None else ()
        config_path = self._download(repo_id, CONFIG_NAME, sha)
        config = _read_config(config_path, repo_id=repo_id, revision=sha, tags=tags)
        pre = None
        for name in PREPROCESSOR_NAMES:
            if record is None or name in record.files:
                try:
                    pre = self._download(repo_id, name, sha)
                    break
                except (HubFileNotFoundError, HubOfflineError):
                    pre = None
        weights_path = None
        if weights:
            candidates = [n for n in WEIGHT_NAMES if record is None or n in record.files]
            for name in candidates:
                try:
                    weights_path = self._download(repo_id, name, sha)
                    break
                except (HubFileNotFoundError, HubOfflineError):
                    continue
            if weights_path is None and self.offline:
                raise HubOfflineError(f"{repo_id}@{sha}: no weights in the cache ({self.cache_dir}) "
                                      "and HF_HUB_OFFLINE is on.", repo_id=repo_id)
            if weights_path is None:
                raise HubFileNotFoundError(f"{repo_id}@{sha} has none of {WEIGHT_NAMES}.",
                                           repo_id=repo_id, revision=sha, filename=WEIGHT_NAMES[0])
        if record is not None and revision != sha:
            self._write_ref(repo_id, revision or "main", sha)
        return ModelFiles(repo_id, sha, config, config_path, pre, weights_path)

    def _ref_path(self, repo_id: str, revision: str) -> Path:
        return self.cache_dir / f"models--{repo_id.replace('/', '--')}" / "refs" / revision

    def _write_ref(self, repo_id: str, revision: str, sha: str) -> None:
        """Record ``revision → sha`` in the cache, as huggingface_hub does, for offline use."""
        ref = self._ref_path(repo_id, revision)
        try:
            ref.parent.mkdir(parents=True, exist_ok=True)
            if not ref.is_file() or ref.read_text() != sha:
                tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
                tmp.write_text(sha)
                os.replace(tmp, ref)
        except OSError as e:  # a read-only cache still works online
            LOG.debug("Could not record %s@%s in the cache: %s", repo_id, revision, e)

    def _cached_sha(self, repo_id: str, revision: str | None) -> str:
        ref = self._ref_path(repo_id, revision or "main")
        if not ref.is_file():
            raise HubOfflineError(f"{repo_id}: offline mode is on (HF_HUB_OFFLINE) and the model "
                                  f"is not in the cache {self.cache_dir}.", repo_id=repo_id)
        return ref.read_text().strip()


def _status(e: BaseException | None) -> int | None:
    """The HTTP status of an error, or of the error it wraps (hf_hub_download wraps HEADs)."""
    while e is not None:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None:
            return status
        e = e.__cause__
    return None


def _retry_after(e: BaseException) -> float | None:
    response = getattr(e, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(e: BaseException | None) -> str:
    if e is None:
        return "no error"
    status = _status(e)
    return f"HTTP {status}" if status else f"{type(e).__name__}: {str(e)[:120]}"


# ---------------------------------------------------------------------------------------
# A folder of Hub-style repositories
# ---------------------------------------------------------------------------------------


class LocalHub:
    """A folder of Hub-style model repositories with the :class:`Hub` interface.

    ``<root>/<org>/<name>/config.json`` (or ``<root>/<name>/``) is model ``org/name``; its
    sha is derived from the files' content, its metadata from the README's front matter
    and an optional ``.hub.json`` (``fennec._repo_store``, which
    :class:`fennec.hub_server.HubServer` serves the same way).
    :meth:`fetch` returns paths inside the folder; nothing is copied.

    Args:
        root: the folder.

    Example:
        >>> hub = LocalHub("zoo/hub")  # doctest: +SKIP
        >>> [m.repo_id for m in hub.list_models(limit=3)]  # doctest: +SKIP
    """

    def __init__(self, root: str | Path):
        from fennec._repo_store import RepoStore

        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Local hub folder {self.root} does not exist.")
        self._store = RepoStore(models_dir=self.root)

    def __repr__(self) -> str:
        return f"LocalHub({str(self.root)!r})"

    def _record(self, repo: Any) -> ModelRecord:
        cfg = repo.config or {}
        params = None
        from fennec._repo_store import safetensors_parameters

        counts = [(safetensors_parameters(repo.root / f.path) or {}) for f in repo.files
                  if f.path.endswith(".safetensors")]
        if any(counts):
            params = sum(sum(c.values()) for c in counts)
        return ModelRecord(
            repo_id=repo.repo_id, sha=repo.sha, library=repo.library_name,
            pipeline_tag=repo.pipeline_tag,
            created_at=datetime.fromtimestamp(repo.created_at, tz=timezone.utc),
            last_modified=datetime.fromtimestamp(repo.last_modified, tz=timezone.utc),
            downloads=int(repo.extra.get("downloads", 0)), likes=int(repo.extra.get("likes", 0)),
            parameters=params, model_type=cfg.get("model_type") or cfg.get("architecture"),
            tags=tuple(repo.tags), gated=bool(repo.gated), private=repo.private,
            requires_remote_code=bool(cfg.get("auto_map")) or "custom_code" in repo.tags,
            files=tuple(f.path for f in repo.files),
        )

    def _repo(self, repo_id: str, revision: str | None) -> Any:
        repo = self._store.get("model", repo_id)
        if repo is None:
            raise ModelNotFoundError(f"{repo_id} is not in the local hub {self.root}.", repo_id=repo_id)
        if revision not in (None, "main", repo.sha):
            raise ModelNotFoundError(
                f"{repo_id} has no revision {revision!r} in the local hub (it is at {repo.sha}).",
                repo_id=repo_id, revision=revision)
        return repo

    def list_models(self, *, pipeline_tags: Iterable[str] = constants.PIPELINE_TAGS,
                    libraries: Iterable[str] = constants.LIBRARIES, sort: str = "lastModified",
                    since: datetime | None = None, limit: int | None = None) -> Iterator[ModelRecord]:
        """Same contract as :meth:`HfHub.list_models`."""
        _check_list_args(sort, since, limit)
        tags, libs = set(pipeline_tags), set(libraries)
        records = []
        for rid in self._store.repo_ids("model"):
            repo = self._store.get("model", rid)
            if repo is None or repo.pipeline_tag not in tags or repo.library_name not in libs:
                continue
            records.append(self._record(repo))
        records.sort(key=lambda r: (_sort_key(r, sort), r.repo_id), reverse=True)
        return _merge([iter(records)], sort=sort, since=since, limit=limit)

    def model_info(self, repo_id: str, *, revision: str | None = None) -> ModelRecord:
        """Same contract as :meth:`HfHub.model_info` (no gating: the folder is yours)."""
        return self._record(self._repo(repo_id, revision))

    def fetch(self, repo_id: str, *, revision: str | None = None, weights: bool = False) -> ModelFiles:
        """Same contract as :meth:`HfHub.fetch`; the paths point into the folder."""
        repo = self._repo(repo_id, revision)
        if repo.file(CONFIG_NAME) is None:
            raise MalformedModelError(f"{repo_id} has no config.json.", repo_id=repo_id,
                                      revision=repo.sha)
        config_path = repo.root / CONFIG_NAME
        config = _read_config(config_path, repo_id=repo_id, revision=repo.sha, tags=repo.tags)
        pre = next((repo.root / n for n in PREPROCESSOR_NAMES if repo.file(n)), None)
        weights_path = None
        if weights:
            weights_path = next((repo.root / n for n in WEIGHT_NAMES if repo.file(n)), None)
            if weights_path is None:
                raise HubFileNotFoundError(f"{repo_id} has none of {WEIGHT_NAMES}.", repo_id=repo_id,
                                           revision=repo.sha, filename=WEIGHT_NAMES[0])
        return ModelFiles(repo_id, repo.sha, config, config_path, pre, weights_path)


def open_hub(spec: str | Path | None = None, **kwargs: Any) -> HfHub | LocalHub:
    """A hub from a URL, a folder, or the environment.

    Args:
        spec: ``http(s)://…`` for a Hub endpoint, an existing folder for a :class:`LocalHub`,
            or None: ``HF_ENDPOINT`` (the Hub), unless ``HF_HUB_OFFLINE`` is set and
            ``FENNEC_LOCAL_HUB`` names a folder, which is then used.
        **kwargs: passed to :class:`HfHub` (``token``, ``retry``, ``cache_dir``, ``offline``).

    Raises:
        FileNotFoundError: ``spec`` is neither a URL nor an existing folder.

    Example:
        >>> open_hub("zoo/hub")  # doctest: +SKIP
        LocalHub('zoo/hub')
    """
    if spec is None:
        local = constants.local_hub_dir()
        if constants.hf_offline() and local is not None and local.is_dir():
            return LocalHub(local)
        return HfHub(**kwargs)
    text = str(spec)
    if text.startswith(("http://", "https://")):
        return HfHub(endpoint=text, **kwargs)
    if Path(text).is_dir():
        return LocalHub(text)
    raise FileNotFoundError(f"Hub {text!r} is neither an http(s) URL nor an existing folder.")
