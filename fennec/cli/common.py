"""What the ``fennec`` commands share: argument types, the ``--ray`` flag and its executor,
progress, the catalog of ``--home``, and library messages in command-line terms."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from fennec import constants
from fennec.engine import RAY_ADDRESS_ENV
from fennec.errors import InvalidInputError

__all__ = ["LOG", "add_ray_flag", "cli_terms", "command_executor", "iso_datetime", "non_negative_int",
           "open_catalog", "positive_int", "show_progress", "usable_device"]

#: The commands' own messages, under the package's logger (``fennec: warning: …`` lines).
LOG = logging.getLogger("fennec")


def iso_datetime(text: str) -> datetime:
    """``--since``: an ISO 8601 date or datetime, in UTC when it names no zone."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _integer(text: str) -> int:
    """An integer argument; anything else is a usage error naming what was given."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    """``--limit``, ``--top-k`` …: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """``--seed``, ``--top``: an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def usable_device(text: str) -> str:
    """``--device``: refused at once when this machine does not have it (exit code 2)."""
    from fennec.validation import resolve_device

    try:
        resolve_device(text)
    except InvalidInputError as e:
        raise argparse.ArgumentTypeError(cli_terms(str(e), {"--device"})) from None
    return text


def add_ray_flag(parser: argparse.ArgumentParser, units: str) -> None:
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help=f"run {units} as Ray tasks: on the cluster at ADDRESS (HOST:PORT of its head node, "
                             "ray://HOST:PORT, auto), or on a Ray instance started here (no ADDRESS); default: "
                             f"{RAY_ADDRESS_ENV} if set, else in this process. Needs pip install \"fennec[ray]\"")


def command_executor(args: argparse.Namespace):
    """The command's executor (:func:`fennec.engine.open_executor`): Ray only when asked for."""
    from fennec.engine import open_executor

    executor = open_executor(args.ray)
    if executor.kind != "local":
        LOG.info("Units run on %s", executor.describe())
    return executor


def show_progress(args: argparse.Namespace) -> bool:
    """Progress unless --no-progress: bars on a terminal, one line per step otherwise (fennec._progress)."""
    return not getattr(args, "no_progress", False)


def open_catalog(home: Path | None):
    from fennec.catalog import Catalog

    home = home or constants.fennec_home()
    return Catalog(home / constants.CATALOG_FILE), home


# -- messages in command-line terms -------------------------------------------------------

#: ``name=``, ``name='value'``, ``name=value`` in a library message: Python keyword arguments.
_KWARG = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*)=(?:'([^'\s]*)'|\"([^\"\s]*)\"|([\w./:-]*\w))?")
#: A bare argument name with an underscore (``fusion_weight must be …``); not a call or a path.
_NAME = re.compile(r"(?<![\w.=-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w=(.-])")


def cli_terms(message: str, flags: Collection[str]) -> str:
    """A library message with the keyword arguments that are flags of this command written as
    flags: ``pass split=`` -> ``pass --split``, ``hub='zoo'`` -> ``--hub zoo``, ``device=None`` ->
    ``no --device``, ``refine=False`` -> ``--no-refine``, ``fusion_weight must be`` ->
    ``--fusion-weight must be``. Names that are not flags here are left as they are."""

    def flag(m: re.Match) -> str:
        name = "--" + m.group(1).replace("_", "-")
        value = next((v for v in m.groups()[1:] if v is not None), "")
        if name not in flags:
            negation = "--no-" + name[2:]  # refine=False -> --no-refine
            return negation if value == "False" and negation in flags else m.group(0)
        if value == "None":
            return f"no {name}"
        return f"{name} {value}" if value else name

    def bare(m: re.Match) -> str:
        name = "--" + m.group(1).replace("_", "-")
        return name if name in flags else m.group(0)

    return _NAME.sub(bare, _KWARG.sub(flag, message))
