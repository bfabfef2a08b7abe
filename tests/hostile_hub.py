"""A hostile Hub endpoint for tests: it answers what each test scripts, nothing more.

Unlike :class:`fennec.hub.server.HubServer` (an honest server with injectable faults), this
one lies on purpose: commit shas, ``ETag`` and ``X-Repo-Commit`` headers that climb out of
the cache (``../``), JSON documents that are huge or nested 200 000 levels deep, answers
that are always HTTP 500. It counts every request, so tests assert how many were made.

It is an ``http.server`` on 127.0.0.1 in a daemon thread; every connection has a socket
timeout, and the server is shut down when the ``with`` block ends.

Example:
    >>> with HostileHub() as hub:                                    # doctest: +SKIP
    ...     hub.add_model("org/m", sha="../../../evil", files={"config.json": b"{}"})
    ...     HfHub(endpoint=hub.url).model_info("org/m")
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

__all__ = ["HostileHub", "HostileModel", "call_without_hanging"]

#: Seconds a connection may stay idle before the server drops it.
SOCKET_TIMEOUT = 10.0
#: Seconds :func:`call_without_hanging` waits before it calls a call hung (a guard against
#: a regression hanging the test run, not a performance bound).
HANG_GUARD = 120.0

_T = TypeVar("_T")
#: Marks an answer sent without ``Content-Length`` (internal to this module).
_UNSIZED = "X-Hostile-Unsized"


def call_without_hanging(fn: Callable[[], _T], *, fifos: list[Path], timeout: float = HANG_GUARD) -> _T:
    """``fn()`` in a thread; if it is still running after ``timeout`` (it opened one of
    ``fifos`` and waits for a writer), the FIFOs are opened for writing and closed, which
    releases it, and the test fails instead of hanging. Returns ``fn()``'s value or raises
    its exception."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the caller
            out["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for fifo in fifos:  # a blocked reader gets end-of-file
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(timeout)
        raise AssertionError(f"the call blocked on a FIFO among {[str(f) for f in fifos]} for "
                             f"more than {timeout:.0f} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


@dataclasses.dataclass
class HostileModel:
    """One scripted model.

    Attributes:
        repo_id: its id.
        sha: the commit sha the model info gives (any string, hostile or not).
        files: file name -> content served under ``/resolve/``.
        headers: file name -> headers that replace the honest ones (``ETag``,
            ``X-Repo-Commit`` …); a value None drops the header (``Content-Length`` too: the
            body then ends when the connection closes). A ``Location`` makes the
            answer a 302 redirect (``/cdn/<repo_id>/<file>`` serves the bare content).
        info: a raw model-info body (bytes) served instead of the honest JSON.
        missing: file names listed in the model info but answered with 404 (its headers
            from ``headers`` too).
        sizes: file name -> the size the info lists (``?blobs=true``), instead of the true one.
    """

    repo_id: str
    sha: str
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    headers: dict[str, dict[str, str | None]] = dataclasses.field(default_factory=dict)
    info: bytes | None = None
    missing: tuple[str, ...] = ()
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)

    def info_json(self) -> dict[str, Any]:
        when = datetime(2024, 1, 1, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
        return {"id": self.repo_id, "modelId": self.repo_id, "sha": self.sha, "private": False,
                "gated": False, "downloads": 1, "likes": 0, "library_name": "transformers",
                "pipeline_tag": "image-classification", "tags": ["transformers"],
                "createdAt": when, "lastModified": when, "config": {"model_type": "vit"},
                "siblings": [{"rfilename": n, "size": self.sizes.get(n, len(self.files.get(n, b"")))}
                             for n in (*self.files, *self.missing)]}


class HostileHub:
    """A scripted, lying Hub endpoint (see the module docstring).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        requests: ``(method, path)`` of every request, in order.
        tokens: ``(Host header, whether an Authorization header came)`` of every request.
        failures: ``(pattern, status)``: a request whose path matches ``pattern`` is
            answered with ``status`` (e.g. always 500), before anything else.
        listing_next: a URL sent as the ``next`` page of every listing page (a loop); a
            ``{page}`` in it is replaced by the number of listing pages served (links that
            never repeat).
    """

    def __init__(self) -> None:
        self.models: dict[str, HostileModel] = {}
        self.requests: list[tuple[str, str]] = []
        self.tokens: list[tuple[str, bool]] = []
        self.failures: list[tuple[str, int]] = []
        self.listing_next: str | None = None  # a Link rel="next" sent with every listing page
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_model(self, repo_id: str, **kwargs: Any) -> HostileModel:
        model = HostileModel(repo_id, **kwargs)
        self.models[repo_id] = model
        return model

    def fail(self, pattern: str, status: int = 500) -> None:
        """Answer every request whose path matches ``pattern`` with ``status`` from now on."""
        self.failures.append((pattern, status))

    def count(self, pattern: str, method: str | None = None) -> int:
        """Requests whose path matches ``pattern`` (and ``method`` if given)."""
        with self._lock:
            return sum(1 for m, p in self.requests
                       if re.search(pattern, p) and (method is None or m == method))

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> HostileHub:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=SOCKET_TIMEOUT)

    # -- answers ----------------------------------------------------------------------------

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        for pattern, status in self.failures:
            if re.search(pattern, path):
                return status, {"Content-Type": "application/json"}, b'{"error": "scripted failure"}'
        route = urlsplit(path).path
        if route in ("/api/models", "/api/models/"):
            body = json.dumps([m.info_json() for m in self.models.values()]).encode()
            headers = {"Content-Type": "application/json"}
            if self.listing_next is not None:
                page = self.count(r"^/api/models/?(\?|$)")
                headers["Link"] = f'<{self.listing_next.replace("{page}", str(page))}>; rel="next"'
            return 200, headers, body
        m = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)(?:/revision/[^/]+)?", route)
        if m and m.group(1) in self.models:
            model = self.models[m.group(1)]
            body = model.info if model.info is not None else json.dumps(model.info_json()).encode()
            return 200, {"Content-Type": "application/json"}, body
        m = re.fullmatch(r"/cdn/([^/]+/[^/]+)/(.+)", route)  # where a redirect may point
        if m and m.group(1) in self.models and unquote(m.group(2)) in self.models[m.group(1)].files:
            return 200, {}, self.models[m.group(1)].files[unquote(m.group(2))]
        m = re.fullmatch(r"/(?:datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", route)
        if m and m.group(1) in self.models:
            model, name = self.models[m.group(1)], unquote(m.group(3))
            headers = {"ETag": '"0123456789abcdef0123456789abcdef01234567"',
                       "X-Repo-Commit": model.sha}
            for key, value in model.headers.get(name, {}).items():
                headers.pop(key, None)
                if value is not None:
                    headers[key] = value
                elif key == "Content-Length":
                    headers[_UNSIZED] = "1"
            if name in model.missing or name not in model.files:
                headers["X-Error-Code"] = "EntryNotFound"
                return 404, headers, b'{"error": "Entry not found"}'
            if "Location" in headers:  # a redirect, as the Hub does to its CDN
                return 302, headers, b""
            return 200, headers, model.files[name]
        return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'


def _handler(hub: HostileHub) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = SOCKET_TIMEOUT  # every connection: a stuck client cannot hold a thread

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            with hub._lock:
                hub.requests.append((method, self.path))
                hub.tokens.append((self.headers.get("Host", ""), "Authorization" in self.headers))
            status, headers, body = hub.answer(method, self.path)
            unsized = headers.pop(_UNSIZED, None) is not None
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if unsized:  # the body ends when the connection closes
                self.send_header("Connection", "close")
                self.close_connection = True
            elif "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up reading
                    self.close_connection = True

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

    return Handler
