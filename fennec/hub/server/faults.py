"""Faults the local Hub server injects on demand (:meth:`fennec.hub.server.HubServer.add_fault`)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

__all__ = ["Fault"]


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
