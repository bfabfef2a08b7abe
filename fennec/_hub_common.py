"""Records, checks and the interface shared by fennec's hubs (``fennec.hub``). Private.

No huggingface_hub here: only :mod:`fennec.hub` imports it.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from fennec import constants
from fennec.errors import MalformedModelError, RemoteCodeRequiredError

CONFIG_NAME = "config.json"
#: Preprocessor files, in the order they are looked for (transformers, then older names).
PREPROCESSOR_NAMES = ("preprocessor_config.json",)
#: Weight files, in order of preference.
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
_SORTS = ("lastModified", "createdAt", "downloads", "likes")


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
