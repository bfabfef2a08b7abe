"""The request handler of the local Hub server: the Hub's routes over a RepoStore.

Use :class:`fennec.hub.server.HubServer`; :class:`HubRequestHandler` answers one request for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from fennec.errors import HubError, MalformedModelError
from fennec.hub.repo_store import FileEntry, Repo, RepoStore, as_list, iso_date
from fennec.hub.server.faults import Fault

LOG = logging.getLogger(__name__)

#: Largest page the listing routes return (the Hub's own cap is 1000).
MAX_PAGE_SIZE = 1000
_SORT_KEYS = {"downloads", "likes", "lastModified", "createdAt", "trendingScore", "id"}
# Files the Hub stores with LFS; their tree entries carry an "lfs" record.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".parquet", ".arrow", ".h5",
                 ".msgpack", ".onnx", ".npz", ".zip", ".gz", ".tar")
#: Largest request body read (``paths-info``); a larger one is refused with 413.
MAX_BODY_BYTES = 1 << 20
#: Most paths one ``paths-info`` request may ask about.
MAX_PATHS = 10_000
#: Longest header value sent (an error message that echoes a long path is cut).
MAX_HEADER_CHARS = 8192


def _header_safe(value: object) -> str:
    """``value`` as text that cannot break out of its header line: printable ASCII only (CR,
    LF, other control characters and anything past ASCII escaped as ``\\r``, ``\\xe9``,
    ``\\u20ac``), cut to :data:`MAX_HEADER_CHARS`. Every header the server sends goes
    through it (:meth:`HubRequestHandler.send_header`)."""
    text = str(value)[:MAX_HEADER_CHARS]
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii")
                   for c in text)[:MAX_HEADER_CHARS]


def _unsafe_part(part: str) -> bool:
    """Whether a decoded path component could name something other than a plain name:
    ``.``/``..`` (also inside a ``%2F``-joined component), a leading ``/``, a backslash or
    a NUL."""
    return "\0" in part or "\\" in part or part.startswith("/") or any(
        piece in (".", "..") for piece in part.split("/"))


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


class ServedHub(Protocol):
    """What the handler reads of the server it answers for (:class:`fennec.hub.server.HubServer`)."""

    store: RepoStore
    page_size: int
    tokens: set[str]

    @property
    def url(self) -> str: ...

    def _log(self, method: str, path: str, status: int) -> int: ...

    def _set_status(self, index: int, status: int) -> None: ...

    def _take_fault(self, method: str, path: str) -> Fault | None: ...


class HubRequestHandler(BaseHTTPRequestHandler):
    hub: ServedHub
    _log_index: int | None  # this request's line in the hub's log, once its status is sent
    protocol_version = "HTTP/1.1"
    server_version = "fennec-hub-server"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK hold the body back ~40 ms on every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        LOG.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing -------------------------------------------------------------------------

    def send_header(self, keyword: str, value: str) -> None:
        """Every header, the standard library's included, through :func:`_header_safe`: a
        request path or a file name echoed in a header cannot add a header nor make the
        reply fail to encode."""
        super().send_header(_header_safe(keyword), _header_safe(value))

    def send_response(self, code: int, message: str | None = None) -> None:
        # logged before the client can read the answer, so that a test reading the log right
        # after its request completes sees it
        self._log_index = self.hub._log(self.command, self.path, code)
        super().send_response(code, message)

    def _dispatch(self, method: str) -> None:
        status = 500
        self._log_index = None
        self._body_read = False
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
            LOG.exception("Hub server error on %s %s: %s", method, self.path, e)
            self._send_json({"error": "internal error (the server's log says why)"}, status=500)
        finally:
            if not self._body_read and (self.headers.get("Transfer-Encoding")
                                        or self.headers.get("Content-Length", "0") != "0"):
                # a body left unread would be taken for the next request on this connection
                self.close_connection = True
            if self._log_index is None:
                self.hub._log(method, self.path, status)
            else:  # e.g. 499 for a download cut off after its headers went out
                self.hub._set_status(self._log_index, status)

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

    def _body(self) -> bytes:
        """The request body: ``Content-Length`` bytes, at most :data:`MAX_BODY_BYTES`."""
        self._body_read = True
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise _HubError(411, "Chunked request bodies are not supported: send Content-Length")
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            self.close_connection = True
            raise _HubError(400, f"Invalid Content-Length {length!r}: expected a number of bytes")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            raise _HubError(413, f"Request body of {length} bytes; at most {MAX_BODY_BYTES} are read")
        return self.rfile.read(int(length))

    def _get(self, repo_type: str, repo_id: str) -> Repo | None:
        """``store.get``; a repository that cannot be read is logged and answered for."""
        try:
            return self.hub.store.get(repo_type, repo_id)
        except MalformedModelError as e:
            LOG.warning("Not serving repository %r: %s", repo_id, e)
            raise _HubError(404, "Repository not found (it is malformed; the server's log says "
                            "why)", "RepoNotFound") from None
        except HubError as e:  # a file vanished while it was read
            LOG.warning("Not serving repository %r now: %s", repo_id, e)
            raise _HubError(503, "Repository is being changed; try again", headers={
                "Retry-After": "1"}) from None

    def _repo(self, repo_type: str, repo_id: str, *, revision: str | None = None,
              for_file: bool = False) -> Repo:
        token = self._token()
        repo = self._get(repo_type, repo_id)
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
        def known(repo_id: str) -> bool:
            try:
                return self.hub.store.get(repo_type, repo_id) is not None
            except HubError:
                return True  # it is there; _repo() answers why it cannot be served

        if len(parts) >= 2 and known(f"{parts[0]}/{parts[1]}"):
            return f"{parts[0]}/{parts[1]}", parts[2:]
        if parts and known(parts[0]):
            return parts[0], parts[1:]
        n = 2 if len(parts) >= 2 else 1
        return "/".join(parts[:n]), parts[n:]

    # -- routing --------------------------------------------------------------------------

    def _route(self, method: str, fault: Fault | None) -> int:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        bad = next((p for p in parts if _unsafe_part(p)), None)
        if bad is not None:
            raise _HubError(400, f"Invalid path component {bad!r}: repository ids, revisions and "
                            "file paths are names separated by '/', without '.' or '..' "
                            "components, backslashes or NUL bytes")
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
            "sha": repo.sha, "lastModified": iso_date(repo.last_modified),
            "createdAt": iso_date(repo.created_at), "private": repo.private,
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
            counts = repo.parameters
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
        for repo in self.hub.store.repos(repo_type):  # unreadable ones skipped with a warning
            rid = repo.repo_id
            if repo.private and token is None:
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
                               "date": iso_date(repo.last_modified)}
        return e

    def _dir_entry(self, repo: Repo, path: str, expand: bool) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "directory", "oid": hashlib.sha1(
            f"{repo.sha}:{path}".encode()).hexdigest(), "size": 0, "path": path}
        if expand:
            e["lastCommit"] = {"id": repo.sha, "title": "fennec local hub",
                               "date": iso_date(repo.last_modified)}
        return e

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str,
              query: dict[str, list[str]]) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision)
        recursive = (query.get("recursive") or [""])[-1] in ("true", "True", "1")
        expand = (query.get("expand") or [""])[-1] in ("true", "True", "1")
        prefix = path.strip("/")
        if prefix and repo.file(prefix) is None and prefix not in repo.folders:
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
        body = self._body()
        repo = self._repo(repo_type, repo_id, revision=revision)
        try:
            raw = body.decode("utf-8")
            if "json" in (self.headers.get("Content-Type") or ""):
                payload = json.loads(raw or "{}")
                if not isinstance(payload, dict):
                    raise ValueError(f"expected a JSON object, found a JSON {type(payload).__name__}")
                paths = as_list(payload.get("paths"))
                expand = bool(payload.get("expand"))
            else:
                form = parse_qs(raw, keep_blank_values=True, max_num_fields=MAX_PATHS + 1)
                paths = form.get("paths", [])
                expand = (form.get("expand") or [""])[-1] in ("true", "True", "1")
        except (ValueError, RecursionError) as e:
            raise _HubError(400, f"Invalid paths-info request body: {e}") from None
        if len(paths) > MAX_PATHS:
            raise _HubError(400, f"{len(paths)} paths asked for; at most {MAX_PATHS} per request")
        out = []
        for p in paths:
            p = p.strip("/")
            f = repo.file(p)
            if f is not None:
                out.append(self._entry(repo, f, expand))
            elif p == "" or p in repo.folders:
                out.append(self._dir_entry(repo, p, expand))
        return self._send_json(out, headers={"X-Repo-Commit": repo.sha})

    # -- files ----------------------------------------------------------------------------

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str,
                 fault: Fault | None) -> int:
        repo = self._repo(repo_type, repo_id, revision=revision, for_file=True)
        f = repo.file(path)
        fh = None
        if f is not None:
            try:  # checked again: it may have become a link outside or a FIFO since listed
                fh = repo.open(f.path)
            except OSError as e:
                LOG.warning("%s: not serving %r: %s", repo_id, path, e)
        if f is None or fh is None:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound",
                            {"X-Repo-Commit": repo.sha})
        with fh:
            if os.fstat(fh.fileno()).st_size != f.size:
                raise _HubError(503, f"{path} is being changed; try again",
                                headers={"Retry-After": "1"})
            return self._send_file(repo, f, fh, fault)

    def _send_file(self, repo: Repo, f: FileEntry, fh: BinaryIO, fault: Fault | None) -> int:
        """Answer a ``resolve`` request with the open file ``fh`` (whole or a byte range),
        streamed in 64 KiB chunks."""
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
        self.send_header("Content-Disposition", f'inline; filename="{quote(Path(f.path).name)}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if self.command == "HEAD":
            return status
        budget = fault.truncate if fault is not None and fault.truncate is not None else None
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
            if not chunk:  # it shrank while being sent: the client must not wait for the rest
                self.close_connection = True
                return 499
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
