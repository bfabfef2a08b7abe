"""Hub-style repositories in a folder: files, content-derived commit sha, card metadata.

Shared by :mod:`fennec.hub.server` (which serves such folders over HTTP) and
:class:`fennec.hub.LocalHub` (which reads them directly). No network, no huggingface_hub.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from fennec.errors import HubError, InvalidInputError, MalformedModelError
from fennec.hub.card import base_model_tags
from fennec.hub.untrusted import RejectedInput, open_regular

__all__ = ["FileEntry", "Repo", "RepoStore", "as_list", "front_matter", "iso_date", "open_confined",
           "safetensors_parameters"]

LOG = logging.getLogger(__name__)

# What one repository may make the store read (its folder is not trusted: it may come from
# an archive, a copy of a zoo, a mount). Past these the file is not read, and the repository
# is described without it or skipped, with a warning.
#: ``.hub.json``.
MAX_HUB_JSON_BYTES = 1 << 20
#: The head of ``README.md`` read for its front matter.
MAX_CARD_BYTES = 1 << 20
#: ``config.json`` (a config with ~20k labels is about 1 MB).
MAX_CONFIG_BYTES = 16 << 20
#: A safetensors header (vision models: well under 1 MB; the format allows 100 MB).
MAX_SAFETENSORS_HEADER_BYTES = 16 << 20
#: Files in one repository.
MAX_FILES = 100_000
#: Nesting depth and number of values of card metadata and of a parsed config.
MAX_DEPTH, MAX_VALUES = 32, 200_000


def _outside(path: str | os.PathLike, base: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (links followed) outside ``base``."""
    real, top = os.path.realpath(path), os.path.realpath(base)
    return real != top and not real.startswith(top.rstrip(os.sep) + os.sep)


def open_confined(path: str | os.PathLike, base: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file that resolves inside ``base``.

    Symbolic links are followed, but the file they reach must lie under ``base`` (itself
    resolved). A FIFO, a device or a socket is refused before it is read (the open does
    not block on a FIFO).

    Raises:
        PermissionError: ``path`` resolves outside ``base``.
        OSError: it is missing, unreadable, or not a regular file.
    """
    real = os.path.realpath(path)
    if _outside(real, base):
        raise PermissionError(f"{path} resolves outside {base}")
    try:  # O_NOFOLLOW: a link swapped in since realpath() is refused
        return open_regular(real, what=os.fspath(path), flags=getattr(os, "O_NOFOLLOW", 0))
    except RejectedInput as e:
        raise OSError(str(e)) from None


def _read_bounded(path: Path, base: Path, limit: int) -> bytes:
    """The whole of a confined file (:func:`open_confined`), refused past ``limit`` bytes.

    Raises:
        OSError: as :func:`open_confined`, or the file is larger than ``limit``.
    """
    with open_confined(path, base) as f:
        size = os.fstat(f.fileno()).st_size
        # read(n) sets n bytes aside before reading: never ask for more than the file holds
        data = f.read(min(size, limit) + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise OSError(f"{path} is larger than {limit} bytes")
    return data


def _plain(value: Any, *, depth: int = 0, budget: list[int] | None = None) -> Any:
    """``value`` as plain JSON data (str keys; dates as ISO strings; anything else as str).

    Raises:
        ValueError: nested deeper than :data:`MAX_DEPTH` or more than :data:`MAX_VALUES`
            values (a YAML alias bomb is counted as expanded, and stopped at the limit).
    """
    budget = [MAX_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_VALUES} values")
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v, depth=depth + 1, budget=budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth=depth + 1, budget=budget) for v in value]
    return str(value)


def iso_date(ts: float) -> str:
    """A POSIX timestamp as the Hub writes dates: ``2024-01-31T12:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def front_matter(readme: str) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model or dataset card, as plain
    JSON data (see :func:`_plain`); empty if there is none or it is unreadable."""
    m = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", readme, flags=re.S)
    if not m:
        return {}
    import yaml  # PyYAML ships with huggingface_hub, transformers and datasets

    try:
        data = _plain(yaml.safe_load(m.group(1)))
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        LOG.warning("Ignoring unparsable card metadata: %s", e)
        return {}
    return data if isinstance(data, dict) else {}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def safetensors_parameters(f: BinaryIO) -> dict[str, int] | None:
    """Parameter counts per dtype from an open safetensors file's header (8-byte length +
    JSON); None if the header is larger than :data:`MAX_SAFETENSORS_HEADER_BYTES` or not
    a JSON object of ``{"dtype": str, "shape": [int >= 0, ...]}`` entries."""
    try:
        n = int.from_bytes(f.read(8), "little")
        if not 0 < n <= min(MAX_SAFETENSORS_HEADER_BYTES, os.fstat(f.fileno()).st_size - 8):
            return None
        header = json.loads(f.read(n))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    counts: dict[str, int] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = (entry.get("dtype", "F32"), entry.get("shape")) if isinstance(entry, dict) \
            else (None, None)
        if not isinstance(dtype, str) or not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return None
        size = 1
        for d in shape:
            size *= d
        counts[dtype] = counts.get(dtype, 0) + size
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
    """A repository as the server sees it: files, derived sha and card metadata.

    ``files`` holds only regular files that resolve inside ``base``, the models or datasets
    folder the repository was found in; :meth:`open` checks it again when a file is read.
    """

    repo_id: str
    repo_type: str  # "model" or "dataset"
    root: Path
    sha: str
    files: tuple[FileEntry, ...]
    card: dict[str, Any]
    config: dict[str, Any] | None
    extra: dict[str, Any]  # from .hub.json
    base: Path

    def open(self, path: str) -> BinaryIO:
        """One of :attr:`files`, opened for reading (:func:`open_confined` under :attr:`base`).

        Raises:
            FileNotFoundError: ``path`` is not one of the repository's files.
            OSError: it changed since it was listed (now a link outside, a FIFO, gone).
        """
        if self.file(path) is None:
            raise FileNotFoundError(f"{self.repo_id} has no file {path!r}")
        return open_confined(self.root / path, self.base)

    @functools.cached_property
    def parameters(self) -> dict[str, int]:
        """Parameter counts per dtype over the repository's safetensors files (their
        headers; a file whose header cannot be read counts nothing)."""
        counts: dict[str, int] = {}
        for f in self.files:
            if f.path.endswith(".safetensors"):
                try:
                    with self.open(f.path) as fh:
                        found = safetensors_parameters(fh) or {}
                except OSError:
                    found = {}
                for dtype, n in found.items():
                    counts[dtype] = counts.get(dtype, 0) + n
        return counts

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
        return self._by_path.get(path)

    @functools.cached_property
    def _by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @functools.cached_property
    def folders(self) -> frozenset[str]:
        """Every folder that holds one of :attr:`files` (``a``, ``a/b`` for ``a/b/c.bin``)."""
        return frozenset(f.path.rsplit("/", i)[0] for f in self.files
                         for i in range(1, f.path.count("/") + 1))

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
            tags += [f"dataset:{d}" for d in as_list(self.card.get("datasets"))]
            tags += base_model_tags(self.card)  # as the Hub derives them from the card
        else:
            tags += [f"task_categories:{t}" for t in as_list(self.card.get("task_categories"))]
        tags += as_list(self.card.get("tags"))
        if self.card.get("license"):
            tags.append(f"license:{self.card['license']}")
        return list(dict.fromkeys(tags))  # without repeats, first occurrence first


def _parse_ts(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


#: Files an organisation folder may hold beside its repositories (they do not make it one).
_DOC_SUFFIXES = (".md", ".txt", ".rst")
#: A subfolder holding one of these directly is a repository (a model config, a card).
_REPO_MARKERS = ("config.json", "README.md")


def _is_doc(name: str) -> bool:
    return name.lower().endswith(_DOC_SUFFIXES) or name.upper().startswith(("LICENSE", "LICENCE"))


def _visible(folder: Path) -> tuple[list[Path], list[Path]]:
    """The non-hidden files and folders directly in ``folder`` (none if it vanished)."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return [], []
    return [p for p in entries if p.is_file()], [p for p in entries if p.is_dir()]


def _is_org_folder(folder: Path) -> bool:
    """Whether a folder directly under the root is an organisation: it holds no files but
    documents (``org/README.md``), and subfolders that are repositories (a ``config.json``
    or a ``README.md`` in them)."""
    files, folders = _visible(folder)
    return all(_is_doc(p.name) for p in files) and any(
        (sub / marker).is_file() for sub in folders for marker in _REPO_MARKERS)


def _is_one_level_repo(folder: Path) -> bool:
    """Whether a folder directly under the root is a repository itself: it holds files and
    is not an organisation."""
    return bool(_visible(folder)[0]) and not _is_org_folder(folder)


class RepoStore:
    """Finds and describes the repositories under a models folder and a datasets folder.

    A repository is a folder holding at least one (non-hidden) file, either one level
    down (id ``org/name``) or directly under the root (id ``<namespace>/name``, since
    huggingface_hub's file system needs a namespace; bare ``name`` when ``namespace`` is
    None). A folder under the root that holds only documents (``README.md``, ``LICENSE``)
    beside subfolders with a ``config.json`` or a ``README.md`` is an organisation, not a
    repository. File hashes are cached by (path, size, mtime), so a large zoo is hashed once.

    Args:
        models_dir: folder of model repositories, or None.
        datasets_dir: folder of dataset repositories, or None.
        namespace: the organisation of repositories that sit directly under a root.
    """

    def __init__(self, models_dir: str | os.PathLike | None = None,
                 datasets_dir: str | os.PathLike | None = None, *, namespace: str | None = "local"):
        if namespace is not None and (not namespace or "/" in namespace or namespace.startswith(".")):
            raise InvalidInputError(f"namespace must be a plain name (no '/', not starting with '.') or None, "
                                    f"got {namespace!r}")
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
        for first in _visible(root)[1]:
            if _is_one_level_repo(first):
                ids.append(f"{self.namespace}/{first.name}" if self.namespace else first.name)
                continue
            ids += [f"{first.name}/{second.name}" for second in _visible(first)[1]]
        return ids

    def repos(self, repo_type: str) -> Iterator[Repo]:
        """Every repository of a type that can be read, in id order. One that cannot (a
        malformed ``.hub.json``, a file vanishing while it is read) is skipped with a
        warning that names it and says why, so that it does not hide the others."""
        for rid in self.repo_ids(repo_type):
            try:
                repo = self.get(repo_type, rid)
            except HubError as e:
                LOG.warning("Skipping repository %r: %s", rid, e)
                continue
            if repo is not None:
                yield repo

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repository ``repo_id``, or None if there is none.

        An id that is not one or two plain names (empty, ``.``/``..``, hidden, with a
        backslash or a NUL) names none, nor does a folder that resolves outside the models
        (or datasets) folder. Only regular files that resolve inside that folder are the
        repository's: a link to a file outside it, a FIFO or a device is left out with a
        warning.

        Raises:
            MalformedModelError: its ``.hub.json`` is not a JSON object of the documented
                fields (the message names the file and the field), or it has more than
                :data:`MAX_FILES` files.
            HubError: a file vanished or could not be read while the repository was read
                (it is being changed); the message names it.
        """
        root = self.roots.get(repo_type)
        parts = repo_id.split("/")
        if root is None or len(parts) > 2 or any(
                not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        folder = root / repo_id
        if (self.namespace and repo_id.startswith(self.namespace + "/") and not folder.is_dir()):
            folder = root / repo_id.split("/", 1)[1]  # a one-level repository
            if _is_org_folder(folder):
                return None  # an organisation, not a repository
        elif self.namespace and "/" not in repo_id:
            return None  # one-level repositories are only known by their namespaced id
        if not folder.is_dir() or _outside(folder, root):
            return None
        stats = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(n for n in filenames if not n.startswith(".")):
                full = Path(dirpath) / name
                rel = full.relative_to(folder).as_posix()
                if full.is_symlink() and not full.exists():
                    LOG.warning("%s: not serving %r: it is a broken link", repo_id, rel)
                    continue
                st = self._read(full, repo_id, os.stat)
                why = "it is not a regular file" if not stat.S_ISREG(st.st_mode) else \
                    "it resolves outside the served folder" if _outside(full, root) else None
                if why:
                    LOG.warning("%s: not serving %r: %s", repo_id, rel, why)
                    continue
                stats.append((rel, st.st_size, st.st_mtime_ns))
                if len(stats) > MAX_FILES:
                    raise MalformedModelError(f"{repo_id}: more than {MAX_FILES} files; split the "
                                              "repository or serve a smaller folder.", repo_id=repo_id)
        if not stats:
            return None
        extra_path = folder / ".hub.json"
        has_extra = extra_path.exists()
        extra_sig = self._read(extra_path, repo_id, _size_mtime) if has_extra else ()
        signature = (tuple(stats), extra_sig)
        with self._lock:
            cached = self._repo_cache.get((repo_type, repo_id))
            if cached is not None and cached[0] == signature:
                return cached[1]
        files = []
        for rel, size, mtime_ns in stats:
            sha256, blob_id = self._read(folder / rel, repo_id,
                                         lambda p, size=size, mtime_ns=mtime_ns: self._hashes(p, root, size, mtime_ns))
            files.append(FileEntry(rel, size, sha256, blob_id, mtime_ns / 1e9))
        names = {f.path for f in files}
        extra = _read_extra(extra_path, root, repo_id) if has_extra else {}
        sha = extra.get("sha") or hashlib.sha1(
            "".join(f"{f.path}\0{f.sha256}\n" for f in files).encode()).hexdigest()
        card: dict[str, Any] = {}
        if "README.md" in names:
            head = self._read(folder / "README.md", repo_id, lambda p: _read_head(p, root))
            card = front_matter(head.decode("utf-8", errors="replace"))
        config = None
        if repo_type == "model" and "config.json" in names:
            try:
                loaded = _plain(json.loads(_read_bounded(folder / "config.json", root, MAX_CONFIG_BYTES)))
                config = loaded if isinstance(loaded, dict) else None
            except (OSError, ValueError, RecursionError) as e:
                # served as is, described without a config
                LOG.warning("%s: describing it without its config.json: %s", repo_id, e)
        repo = Repo(repo_id, repo_type, folder, sha, tuple(files), card, config, extra, root)
        with self._lock:
            self._repo_cache[(repo_type, repo_id)] = (signature, repo)
        return repo

    @staticmethod
    def _read(path: Path, repo_id: str, read: Any) -> Any:
        """``read(path)``, with an error naming the file if it vanished or is unreadable."""
        try:
            return read(path)
        except OSError as e:
            raise HubError(f"{repo_id}: cannot read {path} ({type(e).__name__}: {e}); was the "
                           "repository being changed? Try again once it is complete.",
                           repo_id=repo_id) from e

    def _hashes(self, path: Path, base: Path, size: int, mtime_ns: int) -> tuple[str, str]:
        key = (str(path), size, mtime_ns)
        with self._lock:
            if key in self._hash_cache:
                return self._hash_cache[key]
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(f"blob {size}\0".encode())
        with open_confined(path, base) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha256.update(chunk)
                blob.update(chunk)
        value = (sha256.hexdigest(), blob.hexdigest())
        with self._lock:
            self._hash_cache[key] = value
        return value


def _size_mtime(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _read_head(path: Path, base: Path) -> bytes:
    """The first :data:`MAX_CARD_BYTES` of a confined file (:func:`open_confined`)."""
    with open_confined(path, base) as f:
        return f.read(min(os.fstat(f.fileno()).st_size, MAX_CARD_BYTES))


def _read_extra(path: Path, base: Path, repo_id: str) -> dict[str, Any]:
    """A repository's ``.hub.json`` (confined to ``base``, at most
    :data:`MAX_HUB_JSON_BYTES`), checked.

    Raises:
        MalformedModelError: not a JSON object, or a field of the wrong type (a date, a
            counter, a commit sha, a list of tokens).
    """
    fix = "Fix or delete the file (see fennec.hub.server for its fields)."
    try:
        extra = json.loads(_read_bounded(path, base, MAX_HUB_JSON_BYTES))
    except (OSError, ValueError, RecursionError) as e:
        raise MalformedModelError(f"{path}: cannot read it as JSON ({e}). {fix}", repo_id=repo_id) from e
    if not isinstance(extra, dict):
        raise MalformedModelError(f"{path}: expected a JSON object, found a JSON "
                                  f"{type(extra).__name__}. {fix}", repo_id=repo_id)
    for key in ("createdAt", "lastModified"):
        if extra.get(key) is not None:
            try:
                datetime.fromtimestamp(_parse_ts(extra[key]), tz=timezone.utc)
            except (ValueError, TypeError, OverflowError, OSError) as e:
                raise MalformedModelError(
                    f"{path}: {key} is {extra[key]!r}, not a date; write a POSIX timestamp or an "
                    f"ISO 8601 date such as 2024-01-31T12:00:00Z ({e}). {fix}", repo_id=repo_id) from e
    for key in ("downloads", "likes", "trendingScore"):
        value = extra.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise MalformedModelError(f"{path}: {key} is {value!r}; expected a count (a number "
                                      f">= 0). {fix}", repo_id=repo_id)
    if "sha" in extra and not (isinstance(extra["sha"], str) and re.fullmatch(r"[0-9a-f]{40}", extra["sha"])):
        raise MalformedModelError(f"{path}: sha is {extra['sha']!r}; expected a commit sha (40 "
                                  f"lowercase hex digits). {fix}", repo_id=repo_id)
    granted = extra.get("granted")
    if granted is not None and not (isinstance(granted, list) and all(isinstance(t, str) for t in granted)):
        raise MalformedModelError(f"{path}: granted is {granted!r}; expected a list of tokens "
                                  f"(strings). {fix}", repo_id=repo_id)
    return extra
