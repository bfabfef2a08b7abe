"""The interface every hub implements (:class:`Hub`), and the listing rules they share.

:class:`fennec.hub.client.HfHub` (the Hugging Face Hub or a compatible server) and
:class:`fennec.hub.local.LocalHub` (a folder of model repositories) implement it; fennec's
jobs (``reindex``, ``fit``, ``recommend``) take any :class:`Hub`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, Protocol

from fennec import constants
from fennec.errors import InvalidInputError
from fennec.hub.records import ModelFiles, ModelRecord

#: The orders a model listing can be sorted in (descending).
SORTS = ("lastModified", "createdAt", "downloads", "likes")


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


def check_list_args(sort: str, since: datetime | None, limit: int | None) -> None:
    """Refuse list_models arguments that no hub can honour.

    Raises:
        InvalidInputError: an unknown ``sort``, a ``limit`` below 1, a naive ``since``.
    """
    if sort not in SORTS:
        raise InvalidInputError(f"sort must be one of {SORTS}, got {sort!r}")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1 or None (no limit), got {limit!r}")
    if since is not None and since.tzinfo is None:
        raise InvalidInputError(f"since must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc)), "
                                f"got {since.isoformat()} without a time zone")


def sort_key(record: ModelRecord, sort: str) -> Any:
    if sort == "lastModified":
        return record.last_modified or datetime.min.replace(tzinfo=timezone.utc)
    if sort == "createdAt":
        return record.created_at or datetime.min.replace(tzinfo=timezone.utc)
    return getattr(record, sort)


def merge(streams: list[Iterator[ModelRecord]], *, sort: str, since: datetime | None,
           limit: int | None) -> Iterator[ModelRecord]:
    """Merge per-(tag, library) listings, each sorted descending, into one without duplicates.

    A duplicate is the same model at the same commit: a model that got a new commit while
    it was being listed may come twice, once per commit.
    With ``since`` and a date sort, stops as soon as every stream is older than ``since``.
    """
    merged = heapq.merge(*streams, key=lambda r: (sort_key(r, sort), r.repo_id), reverse=True)
    seen: set[tuple[str, str]] = set()
    n = 0
    for record in merged:
        if since is not None:
            when = record.last_modified if sort != "createdAt" else record.created_at
            if when is not None and when <= since:
                if sort in ("lastModified", "createdAt"):
                    return  # everything after is older
                continue
        if (record.repo_id, record.sha) in seen:
            continue
        seen.add((record.repo_id, record.sha))
        yield record
        n += 1
        if limit is not None and n >= limit:
            return
