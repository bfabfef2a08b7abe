"""A local HTTP server that speaks the Hugging Face Hub's interface over a folder.

It serves Hub-style repositories from disk, as the benchmark zoo lays them out::

    <models_dir>/<org>/<name>/{config.json, model.safetensors, preprocessor_config.json, README.md}
    <datasets_dir>/<name>/{README.md, data/<split>-00000-of-00001.parquet}

(``<org>/`` is optional for either kind: a repository directly under the folder is served
as ``local/<name>``), so that the real ``huggingface_hub.HfApi``,
``transformers`` ``from_pretrained``, timm and ``datasets.load_dataset`` work against it
unchanged when ``HF_ENDPOINT`` points at it. It is fennec's test fixture for everything
that talks to the Hub, and a way to serve a private zoo on a network without the Hub.

Routes (the subset of the Hub's API those clients use):

- ``GET /api/models`` and ``GET /api/datasets``: ``search``, ``author``, ``filter``
  (repeatable, every value must be a tag), ``pipeline_tag``, ``library``, ``sort``
  (``downloads``, ``likes``, ``lastModified``, ``createdAt``, ``trendingScore``, ``id``),
  ``direction`` (``-1`` descending, the default, or ``1``), ``limit`` (page size) and
  ``Link: <…>; rel="next"`` pagination; ``expand``, ``full``, ``config`` and ``cardData``.
- ``GET /api/{models,datasets}/{id}`` and ``…/{id}/revision/{rev}``.
- ``GET /api/{models,datasets}/{id}/tree/{rev}[/{path}]`` and
  ``POST /api/{models,datasets}/{id}/paths-info/{rev}`` (what ``HfFileSystem`` uses).
- ``GET``/``HEAD`` ``/{id}/resolve/{rev}/{path}`` and ``/datasets/{id}/resolve/{rev}/{path}``
  with ``ETag``, ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges`` and byte ranges
  (``huggingface_hub`` resumes an interrupted download with ``Range``).

Errors carry the ``X-Error-Code`` header huggingface_hub maps to its exception types:
``RepoNotFound`` (404, or 401 for a private repository without a valid token),
``RevisionNotFound``, ``EntryNotFound`` and ``GatedRepo`` (401 without a token, 403 with one
that was not granted access).

The repository's commit sha is derived from its content (the sha1 of every file's path and
sha256), so it changes exactly when a file does. An optional hidden ``.hub.json`` in a
repository sets what a folder cannot say: ``downloads``, ``likes``, ``createdAt``,
``lastModified``, ``private``, ``gated`` (``"auto"`` / ``"manual"``), ``granted`` (tokens
with access to a gated repository), ``disabled``. Hidden files are never served.

Faults are injected on demand with :meth:`HubServer.add_fault` (status codes such as 500
or 429 with ``Retry-After``, delays that trip client timeouts, downloads cut off after a
number of bytes), each for a given number of matching requests.

Example:
    >>> with HubServer(models_dir="zoo/hub", datasets_dir="zoo/datasets") as server:  # doctest: +SKIP
    ...     os.environ["HF_ENDPOINT"] = server.url   # before importing huggingface_hub
    ...     server.add_fault(r"/api/models", status=500, times=2)

Run it from a shell with ``python -m fennec.hub_server --models zoo/hub --datasets zoo/datasets``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["Fault", "HubServer", "Repo", "RepoStore", "main"]

LOG = logging.getLogger(__name__)

#: Largest page the listing routes return (the Hub's own cap is 1000).
MAX_PAGE_SIZE = 1000
_SORT_KEYS = {"downloads", "likes", "lastModified", "createdAt", "trendingScore", "id"}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# Files the Hub stores with LFS; their tree entries carry an "lfs" record.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".parquet", ".arrow", ".h5",
                 ".msgpack", ".onnx", ".npz", ".zip", ".gz", ".tar")


def _iso(ts: float) -> str:
    """A POSIX timestamp as the Hub writes dates: ``2024-01-31T12:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _front_matter(readme: str) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model or dataset card."""
    m = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", readme, flags=re.S)
    if not m:
        return {}
    import yaml  # PyYAML ships with huggingface_hub, transformers and datasets

    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        LOG.warning("Ignoring unparsable card metadata: %s", e)
        return {}
    return data if isinstance(data, dict) else {}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _safetensors_parameters(path: Path) -> dict[str, int] | None:
    """Parameter counts per dtype from a safetensors header (8-byte length + JSON)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    counts: dict[str, int] = {}
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        size = 1
        for d in entry.get("shape", []):
            size *= int(d)
        counts[entry.get("dtype", "F32")] = counts.get(entry.get("dtype", "F32"), 0) + size
    return counts


# ---------------------------------------------------------------------------------------
# Repositories on disk
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One served file: its path in the repository, size, sha256 and git-style blob id."""

    path: str
    size: int
    sha256: str
    blob_id: str
    mtime: float


@dataclasses.dataclass(frozen=True)
class Repo:
    """A repository as the server sees it: files, derived sha and card metadata."""

    repo_id: str
    repo_type: str  # "model" or "dataset"
    root: Path
    sha: str
    files: tuple[FileEntry, ...]
    card: dict[str, Any]
    config: dict[str, Any] | None
    extra: dict[str, Any]  # from .hub.json

    @property
    def created_at(self) -> float:
        v = self.extra.get("createdAt")
        return _parse_ts(v) if v is not None else min((f.mtime for f in self.files), default=0.0)

    @property
    def last_modified(self) -> float:
        v = self.extra.get("lastModified")
        return _parse_ts(v) if v is not None else max((f.mtime for f in self.files), default=0.0)

    @property
    def private(self) -> bool:
        return bool(self.extra.get("private", False))

    @property
    def gated(self) -> str | bool:
        g = self.extra.get("gated", False)
        return g if g in ("auto", "manual") else bool(g) and "auto"

    def file(self, path: str) -> FileEntry | None:
        for f in self.files:
            if f.path == path:
                return f
        return None

    @property
    def library_name(self) -> str | None:
        lib = self.card.get("library_name")
        if lib:
            return str(lib)
        if self.repo_type == "model" and self.config is not None:
            return "timm" if "architecture" in self.config and "model_type" not in self.config \
                else "transformers"
        return None

    @property
    def pipeline_tag(self) -> str | None:
        tag = self.card.get("pipeline_tag")
        return str(tag) if tag else None

    @property
    def tags(self) -> list[str]:
        tags: list[str] = []
        if self.repo_type == "model":
            for t in (self.library_name, self.pipeline_tag):
                if t:
                    tags.append(t)
            if any(f.path.endswith(".safetensors") for f in self.files):
                tags.append("safetensors")
            if self.config:
                if self.config.get("model_type"):
                    tags.append(str(self.config["model_type"]))
                if self.config.get("auto_map"):
                    tags.append("custom_code")
            tags += [f"dataset:{d}" for d in _as_list(self.card.get("datasets"))]
        else:
            tags += [f"task_categories:{t}" for t in _as_list(self.card.get("task_categories"))]
        tags += _as_list(self.card.get("tags"))
        if self.card.get("license"):
            tags.append(f"license:{self.card['license']}")
        seen: set[str] = set()
        return [t for t in tags if not (t in seen or seen.add(t))]


def _parse_ts(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class RepoStore:
    """Finds and describes the repositories under a models folder and a datasets folder.

    A repository is a folder holding at least one (non-hidden) file, either one level
    down (id ``org/name``) or directly under the root (id ``<namespace>/name``, since
    huggingface_hub's file system needs a namespace; bare ``name`` when ``namespace`` is
    None). File hashes are cached by (path, size, mtime), so a large zoo is hashed once.

    Args:
        models_dir: folder of model repositories, or None.
        datasets_dir: folder of dataset repositories, or None.
        namespace: the organisation of repositories that sit directly under a root.
    """

    def __init__(self, models_dir: str | os.PathLike | None = None,
                 datasets_dir: str | os.PathLike | None = None, *, namespace: str | None = "local"):
        if namespace is not None and (not namespace or "/" in namespace or namespace.startswith(".")):
            raise ValueError(f"namespace must be a plain name or None, got {namespace!r}")
        self.namespace = namespace
        self.roots = {"model": Path(models_dir) if models_dir else None,
                      "dataset": Path(datasets_dir) if datasets_dir else None}
        self._hash_cache: dict[tuple[str, int, int], tuple[str, str]] = {}
        self._repo_cache: dict[tuple[str, str], tuple[tuple, Repo]] = {}
        self._lock = threading.Lock()

    def repo_ids(self, repo_type: str) -> list[str]:
        root = self.roots.get(repo_type)
        if root is None or not root.is_dir():
            return []
        ids = []
        for first in sorted(root.iterdir()):
            if not first.is_dir() or first.name.startswith("."):
                continue
            if any(p.is_file() and not p.name.startswith(".") for p in first.iterdir()):
                ids.append(f"{self.namespace}/{first.name}" if self.namespace else first.name)
                continue
            for second in sorted(first.iterdir()):
                if second.is_dir() and not second.name.startswith("."):
                    ids.append(f"{first.name}/{second.name}")
        return ids

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        root = self.roots.get(repo_type)
        if root is None or ".." in repo_id.split("/") or repo_id.count("/") > 1 or not repo_id:
            return None
        folder = root / repo_id
        if (self.namespace and repo_id.startswith(self.namespace + "/") and not folder.is_dir()):
            folder = root / repo_id.split("/", 1)[1]  # a one-level repository
        elif self.namespace and "/" not in repo_id:
            return None  # one-level repositories are only known by their namespaced id
        if not folder.is_dir() or any(part.startswith(".") for part in repo_id.split("/")):
            return None
        stats = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                st = full.stat()
                rel = full.relative_to(folder).as_posix()
                stats.append((rel, st.st_size, st.st_mtime_ns))
        if not stats:
            return None
        extra_path = folder / ".hub.json"
        extra_sig = extra_path.stat().st_mtime_ns if extra_path.exists() else 0
        signature = (tuple(stats), extra_sig)
        with self._lock:
            cached = self._repo_cache.get((repo_type, repo_id))
            if cached is not None and cached[0] == signature:
                return cached[1]
        files = []
        for rel, size, mtime_ns in stats:
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            sha256, blob_id = self._hashes(folder / rel, size, mtime_ns)
            files.append(FileEntry(rel, size, sha256, blob_id, mtime_ns / 1e9))
        extra = json.loads(extra_path.read_text()) if extra_path.exists() else {}
        sha = extra.get("sha") or hashlib.sha1(
            "".join(f"{f.path}\0{f.sha256}\n" for f in files).encode()).hexdigest()
        card: dict[str, Any] = {}
        readme = folder / "README.md"
        if readme.is_file():
            card = _front_matter(readme.read_text(encoding="utf-8", errors="replace"))
        config = None
        if repo_type == "model" and (folder / "config.json").is_file():
            try:
                loaded = json.loads((folder / "config.json").read_text(encoding="utf-8"))
                config = loaded if isinstance(loaded, dict) else None
            except ValueError:
                config = None  # malformed: served as is, described without a config
        repo = Repo(repo_id, repo_type, folder, sha, tuple(files), card, config, extra)
        with self._lock:
            self._repo_cache[(repo_type, repo_id)] = (signature, repo)
        return repo

    def _hashes(self, path: Path, size: int, mtime_ns: int) -> tuple[str, str]:
        key = (str(path), size, mtime_ns)
        with self._lock:
            if key in self._hash_cache:
                return self._hash_cache[key]
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(f"blob {size}\0".encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha256.update(chunk)
                blob.update(chunk)
        value = (sha256.hexdigest(), blob.hexdigest())
        with self._lock:
            self._hash_cache[key] = value
        return value


# ---------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Fault:
    """A fault served instead of (or in the middle of) the normal answer.

    Attributes:
        pattern: regular expression searched in the request path (query string included).
        methods: HTTP methods it applies to.
        status: status code to answer with (e.g. 500, 429, 401), or None to answer normally.
        retry_after: ``Retry-After`` seconds sent with the status.
        delay: seconds to wait before answering (exceed the client's timeout to simulate one).
        truncate: for file downloads, send only this many bytes of the body, then close the
            connection (``Content-Length`` still announces the full size).
        body: JSON-serialisable error body; defaults to ``{"error": <reason>}``.
        times: how many matching requests it applies to; None for every one.
    """

    pattern: str
    methods: tuple[str, ...] = ("GET", "HEAD", "POST")
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    truncate: int | None = None
    body: Any = None
    times: int | None = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if method not in self.methods or (self.times is not None and self.hits >= self.times):
            return False
        return re.search(self.pattern, path) is not None


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


class HubServer:
    """Serve folders of Hub-style repositories over HTTP on 127.0.0.1.

    Args:
        models_dir: folder of model repositories (``<org>/<name>/`` or ``<name>/``).
        datasets_dir: folder of dataset repositories.
        host: interface to bind; 127.0.0.1 by default.
        port: TCP port; 0 picks a free one (read it back from :attr:`url`).
        tokens: valid access tokens (``Authorization: Bearer <token>``); private repositories
            and gated files need one. An unknown token is refused with 401.
        page_size: default and largest page of the listing routes.
        namespace: organisation of the repositories that sit directly under a folder (the
            zoo's ``datasets/<name>/`` is served as ``local/<name>``).

    Example:
        >>> server = HubServer(models_dir=tmp / "hub").start()  # doctest: +SKIP
        >>> HfApi(endpoint=server.url).model_info("org/tiny-vit").sha  # doctest: +SKIP
        >>> server.stop()  # doctest: +SKIP
    """

    def __init__(self, *, models_dir: str | os.PathLike | None = None,
                 datasets_dir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 port: int = 0, tokens: tuple[str, ...] | list[str] = (),
                 page_size: int = MAX_PAGE_SIZE, namespace: str | None = "local"):
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.store = RepoStore(models_dir, datasets_dir, namespace=namespace)
        self.tokens = set(tokens)
        self.page_size = min(int(page_size), MAX_PAGE_SIZE)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) served
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to use as ``HF_ENDPOINT`` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="fennec-hub-server",
                                            kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
            LOG.info("Hub server on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def add_fault(self, pattern: str, **kwargs: Any) -> Fault:
        """Inject a :class:`Fault` for requests whose path matches ``pattern``; returns it."""
        fault = Fault(pattern, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        hub = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "fennec-hub-server"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK hold the body back ~40 ms on every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing -------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        status = 500
        try:
            fault = self.hub._take_fault(method, self.path)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.status is not None:
                headers = {"X-Error-Message": HTTPStatus(fault.status).phrase}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                body = fault.body if fault.body is not None else {"error": HTTPStatus(fault.status).phrase}
                status = fault.status
                self._send_json(body, status=status, headers=headers)
                return
            status = self._route(method, fault)
        except _HubError as e:
            status = e.status
            headers = {"X-Error-Message": e.message, **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._send_json({"error": e.message}, status=e.status, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            status = 499
        except Exception as e:  # a server bug: answer 500 rather than hang the client
            LOG.exception("Hub server error on %s %s", method, self.path)
            self._send_json({"error": f"internal error: {e}"}, status=500)
        finally:
            self.hub._log(method, self.path, status)

    def _send_json(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> int:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else auth.strip()
        if token not in self.hub.tokens:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return token

    def _repo(self, repo_type: str, repo_id: str, *, revision: str | None = None,
              for_file: bool = False) -> Repo:
        token = self._token()
        repo = self.hub.store.get(repo_type, repo_id)
        if repo is None or repo.extra.get("disabled"):
            if repo is not None:
                raise _HubError(403, "Access to this resource is disabled.")
            raise _HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and token is None:
            # the Hub does not reveal that a private repository exists
            raise _HubError(401, "Repository not found", "RepoNotFound")
        if revision is not None and revision not in ("main", repo.sha):
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if for_file and repo.gated:
            granted = repo.extra.get("granted")
            if token is None:
                raise _HubError(401, "Access to this repository is restricted: you must be "
                                "authenticated to access it.", "GatedRepo")
            if granted is not None and token not in granted:
                raise _HubError(403, "Access to this repository is restricted and you are not "
                                "in the authorized list.", "GatedRepo")
        return repo

    def _split_repo(self, repo_type: str, parts: list[str]) -> tuple[str, list[str]]:
        """Split path components into a repository id and the rest (longest known id)."""
        if len(parts) >= 2 and self.hub.store.get(repo_type, f"{parts[0]}/{parts[1]}") is not None:
            return f"{parts[0]}/{parts[1]}", parts[2:]
        if parts and self.hub.store.get(repo_type, parts[0]) is not None:
            return parts[0], parts[1:]
        n = 2 if len(parts) >= 2 else 1
        return "/".join(parts[:n]), parts[n:]

    # -- routing --------------------------------------------------------------------------

    def _route(self, method: str, fault: Fault | None) -> int:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query, keep_blank_values=True)
        if parts[:1] == ["api"] and len(parts) >= 2 and parts[1] in ("models", "datasets"):
            repo_type = parts[1][:-1]
            if len(parts) == 2:
                if method == "POST":
                    raise _HubError(405, "Method not allowed")
                return self._list(repo_type, query)
            repo_id, rest = self._split_repo(repo_type, parts[2:])
            if not rest:
                return self._info(repo_type, repo_id, None, query)
            if rest[0] == "revision" and len(rest) >= 2:
                return self._info(repo_type, repo_id, "/".join(rest[1:]), query)
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), query)
            if rest[0] == "paths-info" and len(rest) >= 2 and method == "POST":
                return self._paths_info(repo_type, repo_id, rest[1])
            raise _HubError(404, f"Unknown route {url.path}")
        if parts[:1] == ["api"] and parts[1:] == ["whoami-v2"]:
            token = self._token()
            if token is None:
                raise _HubError(401, "Invalid credentials in Authorization header")
            return self._send_json({"type": "user", "name": "fennec-local", "auth": {}})
        # /{id}/resolve/{rev}/{path} and /datasets/{id}/resolve/{rev}/{path}
        repo_type = "model"
        if parts[:1] == ["datasets"]:
            repo_type, parts = "dataset", parts[1:]
        elif parts[:1] == ["models"]:
            parts = parts[1:]
        if "resolve" in parts:
            i = parts.index("resolve")
            if 1 <= i <= 2 and len(parts) >= i + 3 and method in ("GET", "HEAD"):
                repo_id = "/".join(parts[:i])
                return self._resolve(repo_type, repo_id, parts[i + 1], "/".join(parts[i + 2:]), fault)
        raise _HubError(404, f"Unknown route {url.path}")

    # -- listing --------------------------------------------------------------------------

    def _describe(self, repo: Repo, *, files: bool = False, config: bool = True,
                  card: bool = True, blobs: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "_id": repo.sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0]
            if "/" in repo.repo_id else None,
            "sha": repo.sha, "lastModified": _iso(repo.last_modified),
            "createdAt": _iso(repo.created_at), "private": repo.private,
            "gated": repo.gated, "disabled": bool(repo.extra.get("disabled", False)),
            "downloads": int(repo.extra.get("downloads", 0)),
            "likes": int(repo.extra.get("likes", 0)),
            "trendingScore": float(repo.extra.get("trendingScore", 0)),
            "tags": repo.tags,
        }
        if repo.repo_type == "model":
            d["modelId"] = repo.repo_id
            d["library_name"] = repo.library_name
            d["pipeline_tag"] = repo.pipeline_tag
            weights = [f for f in repo.files if f.path.endswith(".safetensors")]
            counts: dict[str, int] = {}
            for f in weights:
                for dtype, n in (_safetensors_parameters(repo.root / f.path) or {}).items():
                    counts[dtype] = counts.get(dtype, 0) + n
            if counts:
                d["safetensors"] = {"parameters": counts, "total": sum(counts.values())}
            if config and repo.config is not None:
                d["config"] = {k: repo.config[k] for k in
                               ("architectures", "model_type", "auto_map", "architecture",
                                "num_classes") if k in repo.config}
            if repo.config is not None and "model_type" in repo.config:
                d["transformersInfo"] = {"auto_model": "AutoModelForImageClassification"
                                         if repo.pipeline_tag == "image-classification"
                                         else "AutoModel", "pipeline_tag": repo.pipeline_tag,
                                         "processor": "AutoImageProcessor"}
        if card and repo.card:
            d["cardData"] = repo.card
        if files:
            d["siblings"] = [self._sibling(f, blobs) for f in repo.files]
            d["usedStorage"] = sum(f.size for f in repo.files)
        return d

    @staticmethod
    def _sibling(f: FileEntry, blobs: bool) -> dict[str, Any]:
        s: dict[str, Any] = {"rfilename": f.path}
        if blobs:
            s["size"] = f.size
            s["blobId"] = f.blob_id
            if f.path.endswith(_LFS_SUFFIXES):
                s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
        return s

    def _list(self, repo_type: str, query: dict[str, list[str]]) -> int:
        def one(name: str) -> str | None:
            v = query.get(name)
            return v[-1] if v else None

        filters = [f for v in query.get("filter", []) for f in v.split(",") if f]
        search = (one("search") or "").lower()
        author = one("author")
        pipeline_tag = one("pipeline_tag")
        library = one("library")
        sort = one("sort") or "downloads"
        if sort not in _SORT_KEYS:
            raise _HubError(400, f"Invalid sort {sort!r}: use one of {sorted(_SORT_KEYS)}")
        direction = one("direction") or "-1"
        if direction not in ("-1", "1"):
            raise _HubError(400, f"Invalid direction {direction!r}: use -1 or 1")
        try:
            limit = int(one("limit") or self.hub.page_size)
            offset = _decode_cursor(one("cursor"))
        except ValueError as e:
            raise _HubError(400, f"Invalid limit or cursor: {e}") from None
        if limit < 1:
            raise _HubError(400, "limit must be >= 1")
        page = min(limit, self.hub.page_size)
        token = self._token()
        repos = []
        for rid in self.hub.store.repo_ids(repo_type):
            repo = self.hub.store.get(repo_type, rid)
            if repo is None or (repo.private and token is None):
                continue
            tags = repo.tags
            if search and search not in rid.lower():
                continue
            if author and not rid.startswith(author + "/"):
                continue
            if any(f not in tags and f != rid for f in filters):
                continue
            if pipeline_tag and repo.pipeline_tag != pipeline_tag:
                continue
            if library and repo.library_name != library:
                continue
            repos.append(repo)

        def keyf(r: Repo) -> Any:
            if sort == "lastModified":
                return r.last_modified
            if sort == "createdAt":
                return r.created_at
            if sort == "id":
                return r.repo_id
            return float(r.extra.get(sort, 0))

        repos.sort(key=lambda r: r.repo_id)  # stable tie-break on id
        repos.sort(key=keyf, reverse=direction == "-1")
        chunk = repos[offset:offset + page]
        expand = query.get("expand") or query.get("expand[]")
        full = one("full") in ("true", "True", "1")
        items = []
        for r in chunk:
            d = self._describe(r, files=full or bool(expand and "siblings" in expand),
                               config=one("config") in ("true", "True", "1") or full or bool(
                                   expand and "config" in expand),
                               card=one("cardData") in ("true", "True", "1") or full or bool(
                                   expand and "cardData" in expand))
            if expand:
                d = {k: v for k, v in d.items() if k in expand or k in ("_id", "id")}
            items.append(d)
        headers = {}
        if offset + page < len(repos):
            q = {k: v for k, v in query.items() if k != "cursor"}
            q["cursor"] = [_encode_cursor(offset + page)]
            next_url = f"{self.hub.url}{urlsplit(self.path).path}?{urlencode(q, doseq=True)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return self._send_json(items, headers=headers)

    def _info(self, repo_type: str, repo_id: str, revision: str | None,
              query: dict[str, list[str]]) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision)
        blobs = (query.get("blobs") or [""])[-1] in ("true", "True", "1")
        d = self._describe(repo, files=True, blobs=blobs)
        expand = query.get("expand") or query.get("expand[]")
        if expand:
            d = {k: v for k, v in d.items() if k in expand or k in ("_id", "id")}
        return self._send_json(d)

    # -- trees ----------------------------------------------------------------------------

    def _entry(self, repo: Repo, f: FileEntry, expand: bool) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
        if f.path.endswith(_LFS_SUFFIXES):
            e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
        if expand:
            e["lastCommit"] = {"id": repo.sha, "title": "fennec local hub",
                               "date": _iso(repo.last_modified)}
        return e

    def _dir_entry(self, repo: Repo, path: str, expand: bool) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "directory", "oid": hashlib.sha1(
            f"{repo.sha}:{path}".encode()).hexdigest(), "size": 0, "path": path}
        if expand:
            e["lastCommit"] = {"id": repo.sha, "title": "fennec local hub",
                               "date": _iso(repo.last_modified)}
        return e

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str,
              query: dict[str, list[str]]) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision)
        recursive = (query.get("recursive") or [""])[-1] in ("true", "True", "1")
        expand = (query.get("expand") or [""])[-1] in ("true", "True", "1")
        prefix = path.strip("/")
        if prefix and repo.file(prefix) is None and not any(
                f.path.startswith(prefix + "/") for f in repo.files):
            raise _HubError(404, f"Entry not found: {prefix}", "EntryNotFound",
                            {"X-Repo-Commit": repo.sha})
        if repo.file(prefix) is not None:
            raise _HubError(400, f"{prefix} is a file, not a directory")
        out: dict[str, dict[str, Any]] = {}
        for f in repo.files:
            if prefix and not f.path.startswith(prefix + "/"):
                continue
            rel = f.path[len(prefix) + 1:] if prefix else f.path
            pieces = rel.split("/")
            if recursive:
                for i in range(1, len(pieces)):
                    d = "/".join(([prefix] if prefix else []) + pieces[:i])
                    out.setdefault(d, self._dir_entry(repo, d, expand))
                out[f.path] = self._entry(repo, f, expand)
            elif len(pieces) == 1:
                out[f.path] = self._entry(repo, f, expand)
            else:
                d = "/".join(([prefix] if prefix else []) + pieces[:1])
                out.setdefault(d, self._dir_entry(repo, d, expand))
        return self._send_json(sorted(out.values(), key=lambda e: e["path"]),
                               headers={"X-Repo-Commit": repo.sha})

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            payload = json.loads(raw or "{}")
            paths = _as_list(payload.get("paths"))
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(raw, keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand") or [""])[-1] in ("true", "True", "1")
        out = []
        for p in paths:
            p = p.strip("/")
            f = repo.file(p)
            if f is not None:
                out.append(self._entry(repo, f, expand))
            elif p == "" or any(x.path.startswith(p + "/") for x in repo.files):
                out.append(self._dir_entry(repo, p, expand))
        return self._send_json(out, headers={"X-Repo-Commit": repo.sha})

    # -- files ----------------------------------------------------------------------------

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str,
                 fault: Fault | None) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision, for_file=True)
        f = repo.file(path)
        if f is None:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound",
                            {"X-Repo-Commit": repo.sha})
        start, end = 0, f.size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise _HubError(416, f"Invalid range {rng}", headers={"Content-Range": f"bytes */{f.size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), f.size - 1) if m.group(2) else f.size - 1
            else:  # suffix range: the last N bytes
                start = max(f.size - int(m.group(2)), 0)
            if start >= f.size or start > end:
                raise _HubError(416, f"Range {rng} not satisfiable",
                                headers={"Content-Range": f"bytes */{f.size}"})
            status = 206
        length = end - start + 1 if f.size else 0
        self.send_response(status)
        etag = f'"{f.sha256}"' if f.path.endswith(_LFS_SUFFIXES) else f'"{f.blob_id}"'
        self.send_header("ETag", etag)
        if f.path.endswith(_LFS_SUFFIXES):
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(f.size))
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'inline; filename="{quote(Path(path).name)}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if self.command == "HEAD":
            return status
        budget = fault.truncate if fault is not None and fault.truncate is not None else None
        with open(repo.root / f.path, "rb") as fh:
            fh.seek(start)
            remaining = length
            while remaining > 0:
                n = min(1 << 16, remaining)
                if budget is not None:
                    n = min(n, budget)
                    if n <= 0:
                        self.wfile.flush()
                        self.close_connection = True
                        # shut down the socket so the client sees a short body at once
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return 499
                    budget -= n
                chunk = fh.read(n)
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        return status


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"bad cursor {cursor!r}") from e
    if offset < 0:
        raise ValueError("negative cursor")
    return offset


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m fennec.hub_server --models DIR --datasets DIR --port N``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fennec.hub_server", description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="folder of model repositories (<org>/<name>/)")
    parser.add_argument("--datasets", help="folder of dataset repositories (<name>/)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", action="append", default=[], help="a valid access token (repeatable)")
    args = parser.parse_args(argv)
    if not args.models and not args.datasets:
        parser.error("give --models and/or --datasets")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = HubServer(models_dir=args.models, datasets_dir=args.datasets, host=args.host,
                       port=args.port, tokens=args.token)
    LOG.info("Serving on %s (set HF_ENDPOINT=%s); Ctrl-C stops", server.url, server.url)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
