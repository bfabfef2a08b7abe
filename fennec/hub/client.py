"""Talking to the Hugging Face Hub, or to a local folder laid out like it.

This is the only fennec module that imports :mod:`huggingface_hub` (and the only one that may:
``tests/test_layout.py``). It returns frozen
records pinned to a commit sha and raises fennec's typed errors (``fennec.errors``), so that
a reindex batch can record a failing model and go on.

Two hubs share one interface (:class:`Hub`):

- :class:`HfHub` talks HTTP to the Hub, or to any Hub-compatible endpoint (``HF_ENDPOINT``,
  such as :class:`fennec.hub.server.HubServer`). It honours ``HF_ENDPOINT``, ``HF_TOKEN``
  and ``HF_HUB_OFFLINE`` (read when the hub is opened, not when huggingface_hub is
  imported), retries 429, 5xx, timeouts and dropped connections with exponential backoff
  (and the server's ``Retry-After``), and downloads into the standard Hugging Face cache.
  Its answers are hostile input: fennec lists models, fetches model and dataset info and
  downloads files itself (one request per attempt or page: its retries are the only ones,
  none nested inside), reads
  JSON within :data:`~fennec.hub.untrusted.MAX_JSON_BYTES` and
  :data:`~fennec.hub.untrusted.MAX_JSON_DEPTH`, and checks every commit sha, ``ETag`` and
  ``X-Repo-Commit`` before it becomes part of a cache path (docs/security.md).
- :class:`LocalHub` reads a folder of Hub-style repositories (``<org>/<name>/config.json``
  …), such as the benchmark zoo: the default when the Hub cannot be reached.

:func:`open_hub` picks one from a URL, a folder or the environment.

Example (a folder of repositories, here the zoo; a Hub URL such as
``open_hub("https://huggingface.co")`` gives an :class:`HfHub` with the same methods):
    >>> hub = open_hub("zoo/hub")
    >>> for m in hub.list_models(sort="lastModified", limit=2):
    ...     files = hub.fetch(m.repo_id, revision=m.sha)     # config only, no weights
    ...     m.repo_id, files.config["model_type"]
    ('unionlab/vit-tiny-union-weak', 'vit')
    ('unionlab/vit-small-union', 'vit')
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

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
)
from fennec.hub.local import LocalHub
from fennec.hub.protocol import Hub, check_list_args, merge
from fennec.hub.records import (
    CONFIG_NAME,
    PREPROCESSOR_NAMES,
    WEIGHT_NAMES,
    ModelFiles,
    ModelRecord,
    Preprocessing,
    check_config,
    read_config,
)
from fennec.hub.untrusted import (
    MAX_DATASET_DOWNLOAD_BYTES,
    MAX_DATASET_FILES,
    MAX_JSON_BYTES,
    MAX_LISTING_ENTRIES,
    MAX_LISTING_PAGES,
    RejectedInput,
    check_commit_sha,
    check_etag,
    inside,
    is_commit_sha,
    loads_json,
)

__all__ = [
    "Hub",
    "HfHub",
    "LocalHub",
    "ModelFiles",
    "ModelRecord",
    "Preprocessing",
    "RetryPolicy",
    "check_config",
    "open_hub",
]

LOG = logging.getLogger(__name__)

_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
#: Redirects followed for one file (the Hub redirects large files to a CDN, renamed repos
#: to their new name).
_MAX_REDIRECTS = 5
#: The most bytes of an error answer read (for its message and X-Error-Code).
_MAX_ERROR_BODY = 64 * 1024
#: The largest listing page read (the Hub's pages of 1000 models with their configs are a
#: few MB).
_MAX_PAGE_BYTES = 4 * MAX_JSON_BYTES
_T = TypeVar("_T")


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
        self._api = _Listing(self)  # the model listing, one request per page

    def __repr__(self) -> str:
        return f"HfHub(endpoint={self.endpoint!r}, offline={self.offline})"

    # -- errors and retries ---------------------------------------------------------------

    def _translate(self, e: BaseException, *, repo_id: str | None, revision: str | None,
                   filename: str | None = None) -> BaseException | None:
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
                return None
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
        return None

    def _is_transient(self, e: BaseException) -> bool:
        from huggingface_hub import errors as hf

        if isinstance(e, hf.HfHubHTTPError):
            status = getattr(e.response, "status_code", None)
            return status in _RETRY_STATUS
        if isinstance(e, hf.LocalEntryNotFoundError):
            # hf_hub_download hides a failed HEAD (timeout, 5xx) behind this when not cached
            cause = e.__cause__ or e.__context__
            return cause is not None and not isinstance(cause, hf.OfflineModeIsEnabled) and (
                self._is_transient(cause))
        return isinstance(e, (*_transport_errors(), TimeoutError, ConnectionError)) and not (
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
                    # an answer we cannot parse, or one nested past the parser's recursion
                    if isinstance(e, (ValueError, KeyError, TypeError, RecursionError)):
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
        """A :class:`ModelRecord` of a huggingface_hub ``ModelInfo``.

        The repository id and the commit sha become parts of cache paths, so both are
        checked: an id the Hub itself would refuse, or a sha that is not 40 hex digits
        (``"../../x"``), is refused before anything uses it.

        Raises:
            HubError: the answer has no commit sha (nothing could be pinned to it), or a bad
                repository id or sha.
        """
        if not info.sha:
            raise HubError(f"{info.id}: {self.endpoint} gave no commit sha for it, so its files "
                           "cannot be pinned to a commit. Retry later; if it persists, the "
                           "endpoint does not implement the Hub's model API fully.", repo_id=info.id)
        _check_repo_id(info.id, endpoint=self.endpoint)
        try:
            check_commit_sha(info.sha, what=f"{info.id}: the commit sha {self.endpoint} gave")
        except RejectedInput as e:
            raise HubError(f"{e}; refused (it would name a folder of the cache).",
                           repo_id=info.id) from e
        config = info.config or {}
        tags = tuple(info.tags or ())
        st = getattr(info, "safetensors", None)
        return ModelRecord(
            repo_id=info.id, sha=info.sha, library=info.library_name,
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
        check_list_args(sort, since, limit)
        if self.offline:
            raise HubOfflineError("Cannot list models: offline mode is on (HF_HUB_OFFLINE). "
                                  "Use a LocalHub (open_hub(folder)) instead.")
        streams = [self._stream(tag, lib, sort) for tag in pipeline_tags for lib in libraries]
        return merge(streams, sort=sort, since=since, limit=limit)

    def _stream(self, pipeline_tag: str, library: str, sort: str) -> Iterator[ModelRecord]:
        """One listing, restarted after a transient failure.

        Each page is one request (:class:`_Listing`): these restarts are the only retries
        of a listing. A restart lists from the start again and skips the (model, commit) pairs it already
        gave, so a model that got a new commit meanwhile comes again at that commit. The
        failure budget (``retry.attempts``) counts failures without progress in between: it
        is reset once the restarted listing gives a model it had not given yet.
        """
        yielded: set[tuple[str, str]] = set()
        failures = 0
        while True:
            try:
                it = iter(self._api.list_models(pipeline_tag=pipeline_tag, filter=library, sort=sort,
                                                expand=["sha", "lastModified", "createdAt", "downloads",
                                                        "likes", "library_name", "pipeline_tag",
                                                        "tags", "gated", "private", "safetensors",
                                                        "config"]))
                for info in it:
                    if (info.id, info.sha) in yielded:
                        continue
                    try:
                        record = self._record(info)
                    except HubError as e:  # one bad entry must not end the listing
                        LOG.warning("Listing %s/%s: skipping %s", pipeline_tag, library, e)
                        continue
                    yielded.add((info.id, info.sha))
                    failures = 0  # progress: a later failure gets the whole budget again
                    yield record
                return
            except Exception as e:
                if not self._is_transient(e):
                    err = self._translate(e, repo_id=None, revision=None)
                    if err is None and isinstance(e, (ValueError, KeyError, TypeError, RecursionError)):
                        # _Listing's own messages are bounded: whole, with how to proceed
                        text = str(e) if isinstance(e, RejectedInput) else str(e)[:200]
                        err = HubError(f"Listing {pipeline_tag}/{library} models: unexpected answer "
                                       f"from {self.endpoint} ({type(e).__name__}: {text}).")
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

        The answer is read within :data:`~fennec.hub.untrusted.MAX_JSON_BYTES` and nesting
        limits, and its sha and id are checked (:meth:`_record`).

        Raises:
            ModelNotFoundError, ModelAccessError, GatedModelError, HubUnavailableError,
            HubOfflineError; MalformedModelError: an answer too large or too deeply nested;
            HubError: a bad sha, or another commit than the one asked for.
        """
        from huggingface_hub import ModelInfo

        return self._record(self._info("models", ModelInfo, repo_id, revision,
                                       what=f"model_info({repo_id})"))

    def _info(self, kind: str, cls: Any, repo_id: str, revision: str | None, *, what: str,
              blobs: bool = False) -> Any:
        """``GET /api/<kind>/<repo_id>[/revision/<revision>][?blobs=true]`` (:meth:`_get_json`,
        retried by :meth:`_call`) as a huggingface_hub ``cls`` (``ModelInfo``/``DatasetInfo``);
        when ``revision`` is a commit sha, the answer must be for that commit. ``blobs`` asks
        for each file's size.

        Raises:
            HubError: a bad repository id, an answer that does not parse, or another commit
                than the one asked for; and the errors of :meth:`_get_json`.
        """
        _check_repo_id(repo_id, endpoint=self.endpoint)
        url = f"{self.endpoint}/api/{kind}/{repo_id}" + (
            f"/revision/{quote(revision, safe='')}" if revision is not None else "") + (
            "?blobs=true" if blobs else "")
        data = self._call(lambda: self._get_json(url, what=what, repo_id=repo_id, revision=revision),
                          repo_id=repo_id, revision=revision, what=what)
        try:
            info = cls(**data)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise HubError(f"{what}: unexpected answer from {self.endpoint} ({type(e).__name__}: "
                           f"{str(e)[:200]}).", repo_id=repo_id) from e
        if is_commit_sha(revision) and info.sha != revision:
            raise HubError(f"{repo_id}: asked for commit {revision}, {self.endpoint} answered with "
                           f"commit {str(info.sha)[:80]!r}; refused.", repo_id=repo_id, revision=revision)
        return info

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        headers = build_hf_headers(token=self.token or None, library_name="fennec")
        # no compression: the bytes read are the bytes announced (Content-Length) and bounded
        headers["Accept-Encoding"] = "identity"
        return headers

    def _get_json(self, url: str, *, what: str, repo_id: str, revision: str | None) -> dict[str, Any]:
        """GET a JSON object from the endpoint: one request, no retry (:meth:`_call` retries),
        at most :data:`~fennec.hub.untrusted.MAX_JSON_BYTES` read, nesting bounded.

        Raises:
            MalformedModelError: the answer is too large, too deep or not a JSON object.
            huggingface_hub's HTTP errors (translated by :meth:`_call`).
        """
        from huggingface_hub.utils import get_session

        with get_session().stream("GET", url, headers=self._headers(), timeout=self.retry.timeout,
                                  follow_redirects=True) as response:
            _raise_for_status(response)
            try:
                data = _read_body(response, limit=MAX_JSON_BYTES, what=what)
                return loads_json(data, what=f"{what}: the answer of {self.endpoint}")
            except RejectedInput as e:
                raise MalformedModelError(f"{e}; refused.", repo_id=repo_id, revision=revision) from e

    def _download(self, repo_id: str, filename: str, sha: str, *, max_bytes: int | None = None) -> Path:
        """One file of ``repo_id`` at commit ``sha``, in the Hugging Face cache.

        Online, fennec downloads it itself (:meth:`_download_file`) so that nothing the
        endpoint sends becomes a path unchecked; offline, huggingface_hub reads the cache.
        """
        from huggingface_hub import hf_hub_download

        if self.offline:
            from huggingface_hub import errors as hf

            try:
                return Path(hf_hub_download(repo_id, filename, revision=sha, cache_dir=self.cache_dir,
                                            endpoint=self.endpoint, token=self.token or None,
                                            local_files_only=True))
            except (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled) as e:  # not cached
                raise HubOfflineError(f"{repo_id}@{sha}: {filename} is not in the cache "
                                      f"({self.cache_dir}) and HF_HUB_OFFLINE is on.",
                                      repo_id=repo_id) from e
            except hf.EntryNotFoundError as e:  # the cache knows the file does not exist
                raise HubFileNotFoundError(f"{repo_id}@{sha} has no file {filename!r}.",
                                           repo_id=repo_id, revision=sha, filename=filename) from e
        return self._call(lambda: self._download_file(repo_id, filename, sha, max_bytes=max_bytes),
                          repo_id=repo_id, revision=sha, filename=filename,
                          what=f"{repo_id}/{filename}")

    def _repo_cache(self, repo_id: str, repo_type: str = "model", cache_dir: Path | None = None) -> Path:
        return (cache_dir or self.cache_dir) / f"{repo_type}s--{repo_id.replace('/', '--')}"

    def prefetch_dataset(self, repo_id: str, *, sha: str,
                         files: Mapping[str, int | None] | Iterable[str],
                         revision: str | None = None) -> Path:
        """Download ``files`` of a dataset repository at commit ``sha`` into the cache
        (``datasets--<org>--<name>/snapshots/<sha>/``), through the same checked download as
        model files.

        :mod:`fennec.data` then has ``datasets.load_dataset`` read that snapshot as a local
        folder, so datasets sends no request and no ETag or ``X-Repo-Commit`` names a path
        unchecked. File names that would leave the snapshot (``../x``) are refused. Once
        every file is there, ``refs/<revision>`` (``main`` for None) records ``sha``, which
        :meth:`dataset_snapshot` reads offline.

        At most :data:`~fennec.hub.untrusted.MAX_DATASET_FILES` files and
        :data:`~fennec.hub.untrusted.MAX_DATASET_DOWNLOAD_BYTES` bytes in all: ``files`` may
        map each name to the size the Hub lists (:meth:`dataset_files`), checked before the
        first download; each download is then bounded by what is left (files already in the
        cache count too), so a server that lies about sizes is stopped while streaming.

        Returns:
            The snapshot folder.

        Raises:
            HubError: a refused file name, commit or ETag; more files or bytes than the
                bounds; and the errors of :meth:`fetch`.
        """
        cache = self.cache_dir
        names = list(files)
        sizes = files if isinstance(files, Mapping) else {}
        limit = MAX_DATASET_DOWNLOAD_BYTES
        how = ("fennec reads parquet files of any size over range requests, but this dataset "
               "has none at this revision; download the files you need yourself (or a parquet "
               "copy) and pass that folder.")
        if len(names) > MAX_DATASET_FILES:
            raise HubError(f"The Hub dataset {repo_id}@{sha} has {len(names)} files to download, "
                           f"more than the {MAX_DATASET_FILES} fennec downloads "
                           f"(MAX_DATASET_FILES); nothing was downloaded. {how}",
                           repo_id=repo_id, revision=sha)
        listed = sum(s for s in (sizes.get(n) for n in names) if isinstance(s, int) and s > 0)
        if listed > limit:
            raise HubError(f"The Hub dataset {repo_id}@{sha} lists {len(names)} files of "
                           f"{listed} bytes in all to download, more than the {limit} fennec "
                           f"downloads (MAX_DATASET_DOWNLOAD_BYTES); nothing was downloaded. "
                           f"{how}", repo_id=repo_id, revision=sha)
        used = 0
        for name in names:
            try:
                path = self._call(functools.partial(
                    self._download_file, repo_id, name, sha, max_bytes=limit - used, repo_type="dataset",
                    cache_dir=cache),
                    repo_id=repo_id, revision=sha, filename=name, what=f"dataset {repo_id}: {name}")
            except MalformedModelError as e:  # only a file past max_bytes (_write_blob)
                raise HubError(f"The Hub dataset {repo_id}@{sha}: {name} would take the download "
                               f"past the {limit} bytes fennec downloads of a dataset "
                               f"(MAX_DATASET_DOWNLOAD_BYTES; {used} bytes downloaded before it; "
                               f"the sizes the Hub listed add up to {listed}); "
                               f"stopped. {how}", repo_id=repo_id, revision=sha) from e
            used += path.stat().st_size
        self._write_ref(repo_id, revision or "main", sha, repo_type="dataset")  # it is complete
        return self._repo_cache(repo_id, "dataset", cache) / "snapshots" / sha

    def dataset_snapshot(self, repo_id: str, revision: str | None = None) -> Path | None:
        """The snapshot folder :meth:`prefetch_dataset` completed for ``revision`` (``main`` for
        None), from the cache alone; None if there is none (or its ref is not a commit id)."""
        _check_repo_id(repo_id, endpoint=self.endpoint)
        try:
            sha = self._cached_sha(repo_id, revision, repo_type="dataset")
        except (HubOfflineError, HubError):
            return None
        folder = self._repo_cache(repo_id, "dataset") / "snapshots" / sha
        return folder if folder.is_dir() else None

    def _download_file(self, repo_id: str, filename: str, sha: str, *, max_bytes: int | None,
                       repo_type: str = "model", cache_dir: Path | None = None) -> Path:
        """Download one file into the cache layout huggingface_hub uses
        (``blobs/<etag>``, ``snapshots/<sha>/<file>`` linking to it): one GET, no retry.

        What the endpoint answers is checked before it names a path: ``X-Repo-Commit`` must
        be the commit asked for, the ETag an opaque token (:func:`~fennec.hub.untrusted.check_etag`);
        a 40-hex ETag must be the file's git blob id and a 64-hex one its sha256. The blob is
        written to a temporary file and renamed, so no partial file is left under its name.

        Raises:
            HubError: a bad or mismatched commit, ETag or content hash.
            MalformedModelError: the file is larger than ``max_bytes``.
            huggingface_hub's HTTP errors and transport errors (translated by :meth:`_call`).
        """
        from huggingface_hub.utils import get_session

        check_commit_sha(sha, what=f"{repo_id}: the revision")
        repo_dir = self._repo_cache(repo_id, repo_type, cache_dir)
        pointer = repo_dir / "snapshots" / sha / filename
        if not filename or not inside(pointer, repo_dir / "snapshots" / sha):
            raise HubError(f"{repo_id}: refusing the file name {filename[:200]!r} (it would leave "
                           "the snapshot folder).", repo_id=repo_id)
        if pointer.is_file():
            return pointer
        what = f"{repo_id}@{sha}: {filename}"
        prefix = "datasets/" if repo_type == "dataset" else ""
        url = f"{self.endpoint}/{prefix}{quote(repo_id, safe='/')}/resolve/{sha}/{quote(filename)}"
        headers = self._headers()
        session = get_session()
        meta: Any = None  # the Hub's own answer (a CDN's carries no X-Repo-Commit)
        for _ in range(_MAX_REDIRECTS + 1):
            with session.stream("GET", url, headers=headers, timeout=self.retry.timeout,
                                follow_redirects=False) as response:
                if response.has_redirect_location:
                    if meta is None and "X-Repo-Commit" in response.headers:
                        meta = response.headers
                    target = urljoin(url, response.headers["Location"])
                    if _origin(target) != _origin(url):  # never send the token elsewhere
                        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    url = target
                    continue
                _raise_for_status(response)
                meta = meta if meta is not None else response.headers
                try:
                    commit = meta.get("X-Repo-Commit")
                    if commit != sha:
                        raise RejectedInput(f"{what}: the answer is for commit {str(commit)[:80]!r}, "
                                            f"not {sha}")
                    etag = check_etag(meta.get("X-Linked-Etag") or meta.get("ETag"), what=what)
                except RejectedInput as e:
                    raise HubError(f"{e}; refused (it would name a path in the cache).",
                                   repo_id=repo_id, revision=sha) from e
                blobs = repo_dir / "blobs"
                blob = blobs / etag
                if not inside(blob, blobs):  # check_etag makes this impossible; kept as a guard
                    raise HubError(f"{what}: refusing the ETag {etag!r}.", repo_id=repo_id)
                _write_blob(response, blob, etag=etag, max_bytes=max_bytes, what=what,
                            repo_id=repo_id, sha=sha)
                _link(pointer, blob)
                return pointer
        raise HubError(f"{what}: more than {_MAX_REDIRECTS} redirects.", repo_id=repo_id, revision=sha)

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
        _check_repo_id(repo_id, endpoint=self.endpoint)
        if self.offline:
            sha = revision if is_commit_sha(revision) else self._cached_sha(repo_id, revision)
            record = None
        else:
            record = self.model_info(repo_id, revision=revision)
            sha = record.sha
            if CONFIG_NAME not in record.files:
                raise MalformedModelError(f"{repo_id}@{sha} has no config.json.",
                                          repo_id=repo_id, revision=sha)
        tags = record.tags if record is not None else ()
        config_path = self._download(repo_id, CONFIG_NAME, sha, max_bytes=MAX_JSON_BYTES)
        config = read_config(config_path, repo_id=repo_id, revision=sha, tags=tags)
        pre = None
        not_cached = False
        for name in PREPROCESSOR_NAMES:
            if record is None or name in record.files:
                try:
                    pre = self._download(repo_id, name, sha, max_bytes=MAX_JSON_BYTES)
                    break
                except HubFileNotFoundError:
                    pre = None
                except HubOfflineError:
                    pre, not_cached = None, True
        if pre is None and not_cached:  # offline: whether it has one is unknown
            LOG.warning("%s@%s: offline and no %s in the cache %s; its preprocessing comes from "
                        "config.json alone, with ImageNet defaults for what that does not say. "
                        "Fetch the model once online to cache it.", repo_id, sha,
                        " or ".join(PREPROCESSOR_NAMES), self.cache_dir)
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

    def _ref_path(self, repo_id: str, revision: str, repo_type: str = "model") -> Path:
        refs = self._repo_cache(repo_id, repo_type) / "refs"
        path = refs / revision
        if not inside(path, refs):  # a revision is the caller's, but never leaves refs/
            raise HubError(f"{repo_id}: refusing the revision {revision!r}.", repo_id=repo_id)
        return path

    def _write_ref(self, repo_id: str, revision: str, sha: str, repo_type: str = "model") -> None:
        """Record ``revision → sha`` in the cache, as huggingface_hub does, for offline use."""
        ref = self._ref_path(repo_id, revision, repo_type)
        try:
            ref.parent.mkdir(parents=True, exist_ok=True)
            if not ref.is_file() or ref.read_text() != sha:
                tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
                tmp.write_text(sha)
                os.replace(tmp, ref)
        except OSError as e:  # a read-only cache still works online
            LOG.debug("Could not record %s@%s in the cache: %s", repo_id, revision, e)

    def _cached_sha(self, repo_id: str, revision: str | None, repo_type: str = "model") -> str:
        ref = self._ref_path(repo_id, revision or "main", repo_type)
        if not ref.is_file():
            raise HubOfflineError(f"{repo_id}: offline mode is on (HF_HUB_OFFLINE) and the model "
                                  f"is not in the cache {self.cache_dir}.", repo_id=repo_id)
        sha = ref.read_text().strip()
        if not is_commit_sha(sha):
            raise HubOfflineError(f"{repo_id}: the cache's {ref} holds {sha[:80]!r}, not a commit "
                                  "id; fetch the model once online to repair it.", repo_id=repo_id)
        return sha

    # -- dataset repositories (fennec.data) -----------------------------------------------

    def dataset_files(self, repo_id: str, *,
                      revision: str | None = None) -> tuple[str, dict[str, int | None]]:
        """The commit sha of a dataset repository at ``revision`` and its file paths there,
        each with the size the Hub lists (None where it lists none, or not a size).

        Raises:
            ModelNotFoundError: no such repository or revision (the error names the repo).
            ModelAccessError, GatedModelError: private or gated; HubOfflineError, HubUnavailableError.
        """
        from huggingface_hub import DatasetInfo

        what = f"dataset {repo_id}"
        info = self._info("datasets", DatasetInfo, repo_id, revision, what=what, blobs=True)
        try:
            sha = check_commit_sha(info.sha, what=f"{what}: the commit sha {self.endpoint} gave")
        except RejectedInput as e:
            raise HubError(f"{e}; refused.", repo_id=repo_id) from e
        return sha, {s.rfilename: (s.size if type(s.size) is int and s.size >= 0 else None)
                     for s in info.siblings or ()}

    def open_dataset_file(self, repo_id: str, path: str, *, sha: str) -> Any:
        """A seekable binary file of a dataset repository, read lazily over HTTP range requests.

        Each ``read`` is one range request for exactly those bytes (no read-ahead: a parquet
        reader jumps between column chunks, and read-ahead blocks fetched more than the whole
        file); nothing is written to the cache.
        """
        from huggingface_hub import HfFileSystem

        fs = HfFileSystem(endpoint=self.endpoint, token=self.token or None, skip_instance_cache=True)
        return self._call(lambda: fs.open(f"datasets/{repo_id}@{sha}/{path}", "rb", cache_type="none"),
                          repo_id=repo_id, revision=sha, filename=path,
                          what=f"dataset {repo_id}: {path}")


class _Listing:
    """The Hub's model listing (``GET /api/models``, ``Link: <…>; rel="next"`` pages), read
    by fennec: one request per page with no retry inside (:meth:`HfHub._stream` restarts a
    failing listing, the only retry layer), each page a JSON list of at most
    :data:`_MAX_PAGE_BYTES`, and a page seen twice (a ``next`` loop) is an error, as is a
    listing longer than :data:`~fennec.hub.untrusted.MAX_LISTING_PAGES` pages or
    :data:`~fennec.hub.untrusted.MAX_LISTING_ENTRIES` models (``next`` links that never repeat).
    The token goes only to the endpoint's origin (a ``next`` link elsewhere is read without it)."""

    def __init__(self, hub: HfHub):
        self._hub = hub

    def list_models(self, *, pipeline_tag: str, filter: str, sort: str,
                    expand: list[str]) -> Iterator[Any]:
        from huggingface_hub import ModelInfo
        from huggingface_hub.utils import get_session

        hub = self._hub
        url: str | None = f"{hub.endpoint}/api/models"
        params: dict[str, Any] | None = {"pipeline_tag": pipeline_tag, "filter": [filter],
                                         "sort": sort, "expand": expand}
        seen: set[str] = set()
        pages = entries = 0
        how = ("refused (a listing that never ends?); list fewer models per run (a later "
               "--since, or a narrower pipeline tag or library)")
        while url is not None:
            if pages >= MAX_LISTING_PAGES:
                raise RejectedInput(f"Listing {pipeline_tag}/{filter} models from {hub.endpoint}: "
                                    f"more than {MAX_LISTING_PAGES} pages (MAX_LISTING_PAGES), "
                                    f"{entries} models so far; {how}")
            pages += 1
            what = f"Listing {pipeline_tag}/{filter} models (page {pages})"
            headers = hub._headers()
            if _origin(url) != _origin(hub.endpoint):  # a next page elsewhere: never the token
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            with get_session().stream("GET", url, params=params, headers=headers,
                                      timeout=hub.retry.timeout, follow_redirects=True) as response:
                _raise_for_status(response)
                page = loads_json(_read_body(response, limit=_MAX_PAGE_BYTES, what=what),
                                  what=f"{what}: the answer of {hub.endpoint}", max_bytes=_MAX_PAGE_BYTES,
                                  object_only=False)
                seen.add(str(response.url))
                nxt = response.links.get("next", {}).get("url")
            if not isinstance(page, list):
                raise RejectedInput(f"{what}: the answer of {hub.endpoint} is a JSON "
                                    f"{type(page).__name__}, not a list")
            if nxt is not None and urljoin(url, nxt) in seen:
                raise RejectedInput(f"{what}: the next page is one already read ({nxt[:200]})")
            url, params = (urljoin(url, nxt) if nxt is not None else None), None
            entries += len(page)
            if entries > MAX_LISTING_ENTRIES:
                raise RejectedInput(f"Listing {pipeline_tag}/{filter} models from {hub.endpoint}: "
                                    f"more than {MAX_LISTING_ENTRIES} models (MAX_LISTING_ENTRIES) "
                                    f"in {pages} pages; {how}")
            for item in page:
                if not isinstance(item, dict):
                    raise RejectedInput(f"{what}: an entry is a JSON {type(item).__name__}, not an object")
                item.setdefault("siblings", None)
                yield ModelInfo(**item)


# ---------------------------------------------------------------------------------------
# What an endpoint answers, checked
# ---------------------------------------------------------------------------------------


def _check_repo_id(repo_id: Any, *, endpoint: str) -> None:
    """Refuse a repository id the Hub itself would refuse (it names a cache folder).

    Raises:
        HubError: not ``org/name`` of letters, digits, ``-``, ``_``, ``.`` (huggingface_hub's rule).
    """
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except (ValueError, TypeError) as e:  # HFValidationError is a ValueError
        raise HubError(f"{str(repo_id)[:120]!r} (from {endpoint}) is not a valid repository id: "
                       f"{e}", repo_id=str(repo_id)[:120]) from e


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _read_body(response: Any, *, limit: int, what: str) -> bytes:
    """The body of a streamed response, refused once it passes ``limit`` bytes (checked on
    ``Content-Length`` before reading, then while reading).

    Raises:
        RejectedInput: larger than ``limit``.
        ConnectionError: shorter than its ``Content-Length`` (a cut connection; retried).
    """
    declared = _content_length(response)
    if declared is not None and declared > limit:
        raise RejectedInput(f"{what} is {declared} bytes, more than the {limit} fennec reads")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise RejectedInput(f"{what} is more than the {limit} bytes fennec reads")
        chunks.append(chunk)
    if declared is not None and size < declared:
        raise ConnectionError(f"{what}: the connection closed after {size} of {declared} bytes")
    return b"".join(chunks)


def _content_length(response: Any) -> int | None:
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _raise_for_status(response: Any) -> None:
    """huggingface_hub's typed HTTP error for an error answer, reading at most
    ``_MAX_ERROR_BODY`` bytes of its body (a hostile error page may be huge)."""
    if response.status_code < 400:
        return
    from huggingface_hub.utils import hf_raise_for_status

    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _MAX_ERROR_BODY:
            body = body[:_MAX_ERROR_BODY]
            break
    headers = {k: v for k, v in response.headers.items() if k.lower() not in
               ("content-length", "content-encoding", "transfer-encoding")}
    # the same response type (httpx2's), with the bounded body read
    hf_raise_for_status(type(response)(response.status_code, headers=headers, content=body,
                                       request=response.request))


def _write_blob(response: Any, blob: Path, *, etag: str, max_bytes: int | None, what: str,
                repo_id: str, sha: str) -> None:
    """Stream a download into ``blob`` (a temporary file renamed into place), checking its
    size against ``Content-Length`` and ``max_bytes`` and its hash against a hex ETag."""
    declared = _content_length(response)
    if max_bytes is not None and declared is not None and declared > max_bytes:
        raise MalformedModelError(f"{what} is {declared} bytes, more than the {max_bytes} fennec "
                                  "reads; the model is recorded as unsupported.",
                                  repo_id=repo_id, revision=sha)
    blob.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{blob.name[:40]}.", suffix=".incomplete", dir=blob.parent)
    sha256, git = hashlib.sha256(), None
    if declared is not None:  # a git blob id hashes the size first
        git = hashlib.sha1(f"blob {declared}\0".encode())
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise MalformedModelError(f"{what} is more than the {max_bytes} bytes fennec "
                                              "reads; the model is recorded as unsupported.",
                                              repo_id=repo_id, revision=sha)
                fh.write(chunk)
                sha256.update(chunk)
                if git is not None:
                    git.update(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if declared is not None and size != declared:
            raise ConnectionError(f"{what}: received {size} of the {declared} bytes announced")
        if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) and sha256.hexdigest() != etag:
            raise HubError(f"{what}: the content's sha256 is {sha256.hexdigest()}, its ETag says "
                           f"{etag}; refused.", repo_id=repo_id, revision=sha)
        if (len(etag) == 40 and all(c in "0123456789abcdef" for c in etag) and git is not None
                and git.hexdigest() != etag):
            raise HubError(f"{what}: the content's git blob id is {git.hexdigest()}, its ETag says "
                           f"{etag}; refused.", repo_id=repo_id, revision=sha)
        os.replace(tmp, blob)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link(pointer: Path, blob: Path) -> None:
    """``pointer`` → ``blob``: a relative symlink as huggingface_hub makes, or a copy where
    links are not allowed; replaced atomically."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), tmp)
    except OSError:
        import shutil

        shutil.copyfile(blob, tmp)
    os.replace(tmp, pointer)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's timeout and connection errors (httpx2 under huggingface_hub 2.x);
    none if it cannot be imported (the builtin TimeoutError/ConnectionError still count)."""
    try:
        from huggingface_hub.utils import httpx as http  # the module huggingface_hub uses
    except ImportError:
        try:
            import httpx2 as http
        except ImportError:
            return ()
    return tuple(getattr(http, name) for name in ("TimeoutException", "NetworkError",
                                                   "RemoteProtocolError") if hasattr(http, name))


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
        >>> open_hub("zoo/hub")
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
