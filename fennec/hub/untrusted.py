"""Checks of what a hub sends before fennec uses it.

Everything that comes from a Hub endpoint or a Hub-style folder is hostile input: a JSON
document may be huge or nested deeply enough to exhaust the parser's recursion, and a
commit sha or an ETag ends up in a cache path, so it must not be able to name another one.
These helpers bound and check such values; callers turn the :class:`RejectedInput` they
raise into their own typed error (a malformed model, a dataset error …). No huggingface_hub
here (only :mod:`fennec.hub.client` imports it).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

__all__ = ["MAX_DATASET_DOWNLOAD_BYTES", "MAX_DATASET_FILES", "MAX_JSON_BYTES", "MAX_JSON_DEPTH",
           "MAX_LISTING_ENTRIES", "MAX_LISTING_PAGES", "RejectedInput", "check_commit_sha",
           "check_etag", "is_commit_sha", "loads_json", "open_regular", "read_json_file",
           "read_regular_bytes"]

#: The largest JSON document fennec reads from a hub (``config.json``,
#: ``preprocessor_config.json``, ``.hub.json``, model and dataset info, parquet schema
#: metadata). Real ones are a few kB; the largest seen (ImageNet-21k ``id2label``) ~1.5 MB.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: The deepest nesting of arrays and objects accepted; real configs nest 3 to 6 levels.
MAX_JSON_DEPTH = 64
#: The most bytes fennec downloads of a Hub dataset that has no parquet files (the files
#: ``datasets`` reads for an image dataset, together), checked against the sizes the Hub
#: lists before the first download and again while streaming (a server may lie about
#: sizes). A larger dataset is refused: use its parquet conversion or a local copy.
MAX_DATASET_DOWNLOAD_BYTES = 10 * 1024**3
#: The most files fennec downloads of such a dataset.
MAX_DATASET_FILES = 100_000
#: The most pages of one model listing (one pipeline tag and library) read in one run: a
#: listing whose ``next`` links never repeat (nor end) is stopped there. The Hub's pages
#: hold up to 1000 models.
MAX_LISTING_PAGES = 10_000
#: The most models of one model listing read in one run (each is kept in memory until the
#: run sorts them oldest first); the Hub lists a few tens of thousands per image pipeline tag.
MAX_LISTING_ENTRIES = 200_000

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
#: What an ETag may hold once unquoted: it names a blob in the cache, so no path separator,
#: no leading dot, and a bounded length (the Hub sends a 40-hex git blob id or a 64-hex sha256).
_ETAG_VALUE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_QUOTED_ETAG = re.compile(r'(?:W/)?"([^"]*)"')


class RejectedInput(ValueError):
    """A value from a hub that fennec refuses to use; the message says what and why."""


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def is_commit_sha(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a full commit id: 40 lowercase hex digits."""
    return isinstance(value, str) and _COMMIT_SHA.fullmatch(value) is not None


def check_commit_sha(value: Any, *, what: str) -> str:
    """``value`` if it is a 40-hex commit id (it becomes a cache folder name).

    Raises:
        RejectedInput: anything else, e.g. ``"../../x"``; the message names ``what``.
    """
    if not is_commit_sha(value):
        raise RejectedInput(f"{what} is {_show(value)}, not a commit id (40 lowercase hex digits)")
    return value


def check_etag(value: str | None, *, what: str) -> str:
    """The opaque value of an HTTP ``ETag`` (quotes and ``W/`` removed), checked to be safe as
    a file name: letters, digits, ``_``, ``-`` and ``.``, not starting with a dot, at most 128.

    Raises:
        RejectedInput: no ETag, or one that could name another path (``"../../x"``).
    """
    if value is None:
        raise RejectedInput(f"{what}: the answer has no ETag")
    m = _QUOTED_ETAG.fullmatch(value.strip())
    inner = m.group(1) if m else value.strip()
    if _ETAG_VALUE.fullmatch(inner) is None:
        raise RejectedInput(f"{what}: the ETag {_show(value)} is not an opaque token (letters, "
                            "digits, '_', '-', '.'; at most 128; no leading dot)")
    return inner


def _depth(doc: Any, limit: int) -> int:
    """The nesting depth of parsed JSON, iteratively (no recursion); stops past ``limit``."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack += [(v, d + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def loads_json(data: bytes | str, *, what: str, max_bytes: int = MAX_JSON_BYTES,
               max_depth: int = MAX_JSON_DEPTH, object_only: bool = True) -> Any:
    """Parse a JSON document from a hub, bounded in size and nesting.

    Args:
        data: the document (bytes are decoded as UTF-8).
        what: names it in messages (``"org/name: config.json"``).
        max_bytes: the largest document accepted.
        max_depth: the deepest nesting accepted.
        object_only: the top level must be an object.

    Raises:
        RejectedInput: too large, not UTF-8, not JSON, nested too deeply (also when the
            parser's recursion limit trips), or not an object.
    """
    size = len(data)
    if size > max_bytes:
        raise RejectedInput(f"{what} is {size} bytes, more than the {max_bytes} fennec reads")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(text)
    except RecursionError as e:
        raise RejectedInput(f"{what} nests more deeply than the JSON parser allows (the limit "
                            f"is {max_depth} levels)") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise RejectedInput(f"{what} is not valid JSON ({str(e)[:200]})") from e
    if _depth(doc, max_depth) > max_depth:
        raise RejectedInput(f"{what} nests more than {max_depth} levels deep")
    if object_only and not isinstance(doc, dict):
        raise RejectedInput(f"{what} is a JSON {type(doc).__name__}, not an object")
    return doc


def open_regular(path: str | os.PathLike, *, what: str, flags: int = 0) -> BinaryIO:
    """A binary file object for a regular file; never blocks on a FIFO or a device.

    The file is opened non-blocking (with ``flags`` added, e.g. ``O_NOFOLLOW``) and checked
    with ``fstat`` on the open descriptor, so a FIFO or device put in its place between a
    check and the open is refused too; then it is switched back to blocking reads.

    Raises:
        RejectedInput: not a regular file (``"<what> <path> is a FIFO …"``).
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_BINARY", 0) | flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RejectedInput(f"{what} {path} is {describe_file_type(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | os.PathLike, *, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file (:func:`open_regular`), at most ``max_bytes``.

    Raises:
        RejectedInput: not a regular file, or larger than ``max_bytes``.
        OSError: it cannot be opened or read.
    """
    with open_regular(path, what=what) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise RejectedInput(f"{what} is {size} bytes, more than the {max_bytes} fennec reads")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the fstat
        raise RejectedInput(f"{what} is more than the {max_bytes} bytes fennec reads")
    return data


def read_json_file(path: str | os.PathLike, *, what: str, max_bytes: int = MAX_JSON_BYTES,
                   max_depth: int = MAX_JSON_DEPTH, object_only: bool = True) -> Any:
    """:func:`loads_json` of a file, read with :func:`read_regular_bytes` (the size is checked
    before anything is read).

    Raises:
        RejectedInput: see :func:`loads_json` and :func:`read_regular_bytes`.
        OSError: the file cannot be opened or read.
    """
    data = read_regular_bytes(path, what=what, max_bytes=max_bytes)
    return loads_json(data, what=what, max_bytes=max_bytes, max_depth=max_depth,
                      object_only=object_only)


def describe_file_type(mode: int) -> str:
    """``"a FIFO"``, ``"a character device"`` … for an ``st_mode``."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` lies under ``root`` once both are made absolute (symlinks not followed)."""
    p, r = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return p != r and r in p.parents
