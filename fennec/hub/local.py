"""A folder of Hub-style repositories with the :class:`~fennec.hub.protocol.Hub` interface
(:class:`LocalHub`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fennec import constants
from fennec.errors import HubFileNotFoundError, MalformedModelError, ModelNotFoundError
from fennec.hub.protocol import check_list_args, merge, sort_key
from fennec.hub.records import (
    CONFIG_NAME,
    PREPROCESSOR_NAMES,
    WEIGHT_NAMES,
    ModelFiles,
    ModelRecord,
    read_config,
)

LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# A folder of Hub-style repositories
# ---------------------------------------------------------------------------------------


class LocalHub:
    """A folder of Hub-style model repositories with the :class:`Hub` interface.

    ``<root>/<org>/<name>/config.json`` (or ``<root>/<name>/``) is model ``org/name``; its
    sha is derived from the files' content, its metadata from the README's front matter
    and an optional ``.hub.json`` (``fennec.hub.repo_store``, which
    :class:`fennec.hub.server.HubServer` serves the same way).
    :meth:`fetch` returns paths inside the folder; nothing is copied.

    Args:
        root: the folder.

    Example:
        >>> hub = LocalHub("zoo/hub")
        >>> [m.repo_id for m in hub.list_models(limit=3)]
        ['unionlab/vit-tiny-union-weak', 'unionlab/vit-small-union', 'unionlab/swin-tiny-union']
    """

    def __init__(self, root: str | Path):
        from fennec.hub.repo_store import RepoStore

        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Local hub folder {self.root} does not exist.")
        self._store = RepoStore(models_dir=self.root)

    def __repr__(self) -> str:
        return f"LocalHub({str(self.root)!r})"

    def _record(self, repo: Any) -> ModelRecord:
        cfg = repo.config or {}
        params = sum(repo.parameters.values()) if repo.parameters else None
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
        """Same contract as :meth:`HfHub.list_models`. A repository that cannot be read (a
        malformed ``.hub.json``, a file vanishing while it is read) is skipped with a warning."""
        check_list_args(sort, since, limit)
        tags, libs = set(pipeline_tags), set(libraries)
        records = [self._record(repo) for repo in self._store.repos("model")
                   if repo.pipeline_tag in tags and repo.library_name in libs]
        records.sort(key=lambda r: (sort_key(r, sort), r.repo_id), reverse=True)
        return merge([iter(records)], sort=sort, since=since, limit=limit)

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
        config = read_config(config_path, repo_id=repo_id, revision=repo.sha, tags=repo.tags)
        pre = next((repo.root / n for n in PREPROCESSOR_NAMES if repo.file(n)), None)
        weights_path = None
        if weights:
            weights_path = next((repo.root / n for n in WEIGHT_NAMES if repo.file(n)), None)
            if weights_path is None:
                raise HubFileNotFoundError(f"{repo_id} has none of {WEIGHT_NAMES}.", repo_id=repo_id,
                                           revision=repo.sha, filename=WEIGHT_NAMES[0])
        return ModelFiles(repo_id, repo.sha, config, config_path, pre, weights_path)
