"""Hub-style repositories in a folder: files, content-derived commit sha, card metadata.

Shared by :mod:`fennec.hub_server` (which serves such folders over HTTP) and
:class:`fennec.hub.LocalHub` (which reads them directly). No network, no huggingface_hub.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fennec.errors import HubError, MalformedModelError

__all__ = ["FileEntry", "Repo", "RepoStore", "as_list", "front_matter", "iso_date",
           "safetensors_parameters"]

LOG = logging.getLogger(__name__)


def iso_date(ts: float) -> str:
    """A POSIX timestamp as the Hub writes dates: ``2024-01-31T12:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def front_matter(readme: str) -> dict[str, Any]:
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


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def safetensors_parameters(path: Path) -> dict[str, int] | None:
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
            tags += [f"dataset:{d}" for d in as_list(self.card.get("datasets"))]
        else:
            tags += [f"task_categories:{t}" for t in as_list(self.card.get("task_categories"))]
        tags += as_list(self.card.get("tags"))
        if self.card.get("license"):
            tags.append(f"license:{self.card['license']}")
        seen: set[str] = set()
        return [t for t in tags if not (t in seen or seen.add(t))]


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
        for first in _visible(root)[1]:
            if _is_one_level_repo(first):
                ids.append(f"{self.namespace}/{first.name}" if self.namespace else first.name)
                continue
            ids += [f"{first.name}/{second.name}" for second in _visible(first)[1]]
        return ids

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repository ``repo_id``, or None if there is none.

        Raises:
            MalformedModelError: its ``.hub.json`` is not a JSON object of the documented
                fields (the message names the file and the field).
            HubError: a file vanished or could not be read while the repository was read
                (it is being changed); the message names it.
        """
        root = self.roots.get(repo_type)
        if root is None or ".." in repo_id.split("/") or repo_id.count("/") > 1 or not repo_id:
            return None
        folder = root / repo_id
        if (self.namespace and repo_id.startswith(self.namespace + "/") and not folder.is_dir()):
            folder = root / repo_id.split("/", 1)[1]  # a one-level repository
            if _is_org_folder(folder):
                return None  # an organisation, not a repository
        elif self.namespace and "/" not in repo_id:
            return None  # one-level repositories are only known by their namespaced id
        if not folder.is_dir() or any(part.startswith(".") for part in repo_id.split("/")):
            return None
        stats = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                st = self._read(full, repo_id, Path.stat)
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
            sha256, blob_id = self._read(folder / rel, repo_id,
                                         lambda p: self._hashes(p, size, mtime_ns))
            files.append(FileEntry(rel, size, sha256, blob_id, mtime_ns / 1e9))
        extra = _read_extra(extra_path, repo_id) if extra_path.exists() else {}
        sha = extra.get("sha") or hashlib.sha1(
            "".join(f"{f.path}\0{f.sha256}\n" for f in files).encode()).hexdigest()
        card: dict[str, Any] = {}
        readme = folder / "README.md"
        if readme.is_file():
            card = front_matter(readme.read_text(encoding="utf-8", errors="replace"))
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

    @staticmethod
    def _read(path: Path, repo_id: str, read: Any) -> Any:
        """``read(path)``, with an error naming the file if it vanished or is unreadable."""
        try:
            return read(path)
        except OSError as e:
            raise HubError(f"{repo_id}: cannot read {path} ({type(e).__name__}: {e}); was the "
                           "repository being changed? Try again once it is complete.",
                           repo_id=repo_id) from e

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


def _read_extra(path: Path, repo_id: str) -> dict[str, Any]:
    """A repository's ``.hub.json``, checked.

    Raises:
        MalformedModelError: not a JSON object, or a date or counter that cannot be read.
    """
    fix = "Fix or delete the file (see fennec.hub_server for its fields)."
    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
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
    for key in ("downloads", "likes"):
        value = extra.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise MalformedModelError(f"{path}: {key} is {value!r}; expected a count (a number "
                                      f">= 0). {fix}", repo_id=repo_id)
    return extra
