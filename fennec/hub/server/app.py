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

Run it from a shell with ``python -m fennec.hub.server --models zoo/hub --datasets zoo/datasets``.

It listens on 127.0.0.1 only, unless told otherwise: another interface (``--host 0.0.0.0``)
is refused without ``--allow-remote`` (``allow_remote=True``), since it serves every file
under the folders, over plain HTTP, to anyone who can reach the port. What it trusts and
what it does not: docs/security.md ("The local Hub server").
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fennec.errors import InvalidInputError
from fennec.hub.repo_store import Repo, RepoStore
from fennec.hub.server.faults import Fault
from fennec.hub.server.routes import MAX_PAGE_SIZE, HubRequestHandler

__all__ = ["Fault", "HubServer", "Repo", "RepoStore", "is_loopback", "main"]

LOG = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


class HubServer:
    """Serve folders of Hub-style repositories over HTTP on 127.0.0.1.

    Args:
        models_dir: folder of model repositories (``<org>/<name>/`` or ``<name>/``).
        datasets_dir: folder of dataset repositories.
        host: interface to bind; 127.0.0.1 by default. One that is not a loopback address
            is refused unless ``allow_remote`` is set.
        port: TCP port; 0 picks a free one (read it back from :attr:`url`).
        tokens: valid access tokens (``Authorization: Bearer <token>``); private repositories
            and gated files need one. An unknown token is refused with 401.
        page_size: default and largest page of the listing routes.
        namespace: organisation of the repositories that sit directly under a folder (the
            zoo's ``datasets/<name>/`` is served as ``local/<name>``).
        allow_remote: bind a non-loopback ``host`` (with a warning): every file under the
            folders is then served to the network, over plain HTTP.

    Raises:
        InvalidInputError: ``host`` is not a loopback address and ``allow_remote`` is not set,
            or ``page_size`` is below 1 (a ``ValueError``).

    Example:
        >>> import json, urllib.request
        >>> server = HubServer(models_dir="zoo/hub").start()
        >>> with urllib.request.urlopen(f"{server.url}/api/models/photolab/vit-tiny-photos") as r:
        ...     json.load(r)["id"]                    # what HfApi(endpoint=server.url) reads
        'photolab/vit-tiny-photos'
        >>> server.stop()
    """

    def __init__(self, *, models_dir: str | os.PathLike | None = None,
                 datasets_dir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 port: int = 0, tokens: tuple[str, ...] | list[str] = (),
                 page_size: int = MAX_PAGE_SIZE, namespace: str | None = "local",
                 allow_remote: bool = False):
        if page_size < 1:
            raise InvalidInputError(f"page_size must be >= 1, got {page_size!r}")
        if not is_loopback(host):
            if not allow_remote:
                raise InvalidInputError(
                    f"host {host!r} is not a loopback address: the server would serve every file "
                    "under its folders, over plain HTTP, to anyone who can reach the port. Bind "
                    "127.0.0.1 (the default), or pass allow_remote=True (on the command line: "
                    "--allow-remote) if that is what you want.")
            LOG.warning("Hub server listening on %s, beyond this machine: every file under its "
                        "folders (and any token sent to it) travels over plain HTTP", host)
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
        assert isinstance(host, str), host  # an AF_INET server's (host, port)
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

    def _log(self, method: str, path: str, status: int) -> int:
        with self._lock:
            self.requests.append((method, path, status))
            return len(self.requests) - 1

    def _set_status(self, index: int, status: int) -> None:
        with self._lock:
            method, path, old = self.requests[index]
            if old != status:
                self.requests[index] = (method, path, status)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) binds only this machine's loopback interface;
    a name counts if every address it resolves to is a loopback one."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(HubRequestHandler):
        hub = server

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m fennec.hub.server --models DIR --datasets DIR --port N``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fennec.hub.server", description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="folder of model repositories (<org>/<name>/)")
    parser.add_argument("--datasets", help="folder of dataset repositories (<name>/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that is not a loopback address: every file under the "
                             "folders is then served to the network, over plain HTTP")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", action="append", default=[], help="a valid access token (repeatable)")
    args = parser.parse_args(argv)
    if not args.models and not args.datasets:
        parser.error("give --models and/or --datasets")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        server = HubServer(models_dir=args.models, datasets_dir=args.datasets, host=args.host,
                           port=args.port, tokens=args.token, allow_remote=args.allow_remote)
    except ValueError as e:  # a non-loopback --host without --allow-remote
        parser.error(str(e))
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
