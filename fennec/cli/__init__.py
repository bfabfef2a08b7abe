"""The ``fennec`` command: a thin layer over the library, one module per command group.

Subcommands:

- ``fennec reindex``: bring the catalog up to date with the Hub (or a
  local folder hub): ``--limit``, ``--since``, ``--dry-run``, ``--hub``, ``--every 6h``.
- ``fennec models``: list and search the catalog.
- ``fennec import-results``: import the published transfer-result tables shipped with fennec
  (models under their Hub ids), or tables given as paths, or the zoo's ground truth.
- ``fennec fit``: fit the transfer space from the catalog and rebuild the model and task indexes.
- ``fennec init``: build the workspace for a Hub in one resumable command (reindex a scope,
  import the shipped published history, describe its tasks, fit; a plan and estimate first).
- ``fennec recommend DATASET``: the ranked models for a dataset (``--json`` for machines).
- ``fennec bench``: the leave-one-task-out benchmark on the embedded zoo (``--published``: also
  leave-one-model-out cold start on the published tables).
- ``fennec catalog check`` / ``fennec catalog repair``: check a catalog file (read-only), or
  copy what SQLite can still read of a damaged one into a new catalog, keeping the damaged
  file beside it.

``reindex``, ``recommend``, ``fit`` and ``init`` take ``--ray [ADDRESS]`` (or
``FENNEC_RAY_ADDRESS``): their independent units run as Ray tasks (:mod:`fennec.engine`).

The catalog and the fitted space live in ``FENNEC_HOME`` (``--home``), by default
``$HF_HOME/fennec``. Known errors are printed as one line; exit codes: 0 success, 1 error,
2 usage (a bad flag, or a ``--device`` this machine does not have), 75 another reindex holds
the lock, 130 interrupted. Errors and warnings are printed as ``fennec: error: …`` /
``fennec: warning: …`` lines, in command-line terms (``--split``, not ``split=``); progress
goes to stderr as bars on a terminal and as one line per step otherwise (``--no-progress``:
none).

One module per command group:

- :mod:`fennec.cli.catalog`: ``reindex``, ``models``, ``import-results``, ``catalog``;
- :mod:`fennec.cli.workspace`: ``fit``, ``init``;
- :mod:`fennec.cli.recommend`: ``recommend``;
- :mod:`fennec.cli.bench`: ``bench``;
- :mod:`fennec.cli.common`: what they share (argument types, ``--ray``, messages in
  command-line terms).

This package assembles the parser and runs :func:`main` (``python -m fennec.cli``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Collection

from fennec._deprecated import forwarded
from fennec.cli import bench, catalog, recommend, workspace
from fennec.cli.common import LOG, cli_terms
from fennec.errors import FennecError, ReindexLockedError

__all__ = ["main"]

EXIT_LOCKED = 75
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def _version() -> str:
    from fennec import __version__

    return f"fennec {__version__}"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p = argparse.ArgumentParser(prog="fennec", description="Recommend Hugging Face vision models "
                                "for your labelled image dataset.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)
    # in the order `fennec --help` lists them
    for add in (catalog.add_reindex, catalog.add_models, catalog.add_import, recommend.add_recommend,
                workspace.add_fit, workspace.add_init, bench.add_bench, catalog.add_catalog):
        add(sub, common)
    return p


def _storage_or_sqlite_error(error: Exception, command: str) -> str | None:
    """One line for an error of the disk or of SQLite that no fennec error explained: a full
    disk, a read-only or foreign folder, a damaged database; None for any other error."""
    import sqlite3

    from fennec._io import storage_error

    if isinstance(error, OSError):
        converted = storage_error(error, doing=f"running `fennec {command}`")
        return str(converted) if converted is not None else None
    if isinstance(error, sqlite3.DatabaseError):
        return (f"SQLite error: {error}. If it is about the catalog, `fennec catalog check` says what is wrong "
                "with it and `fennec catalog repair` recovers what can be read (the damaged file is kept).")
    return None


def _one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _Formatter(logging.Formatter):
    """``fennec: warning: <message>`` in command-line terms (with -v: time and logger too)."""

    def __init__(self, flags: Collection[str], verbose: int):
        super().__init__()
        self.flags, self.verbose = flags, verbose

    def format(self, record: logging.LogRecord) -> str:
        message = cli_terms(record.getMessage(), self.flags)
        if record.exc_info and self.verbose > 1:
            message += "\n" + self.formatException(record.exc_info)
        if self.verbose:
            return f"{self.formatTime(record)} {record.levelname.lower()} {record.name}: {message}"
        return f"fennec: {record.levelname.lower()}: {message}"


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The long options of one subcommand."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for s in subparsers.choices[command]._option_string_actions if s.startswith("--")}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fennec`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    flags = args.cli_flags = _flags(parser, args.command)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(flags, args.verbose))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)])

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # warnings' API
        # One line, no source path: the CLI's reader needs the message, not fennec's file and line.
        print(f"fennec: warning: {cli_terms(_one_line(message), flags)}", file=sys.stderr, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            commands = {"reindex": catalog.run_reindex, "models": catalog.run_models,
                        "import-results": catalog.run_import, "recommend": recommend.run_recommend,
                        "fit": workspace.run_fit, "init": workspace.run_init, "bench": bench.run_bench,
                        "catalog": catalog.run_catalog}
            return commands[args.command](args)
    except ReindexLockedError as e:
        print(f"fennec: {cli_terms(str(e), flags)}", file=sys.stderr)
        return EXIT_LOCKED
    except (FennecError, FileNotFoundError) as e:
        print(f"fennec: error: {cli_terms(_one_line(e), flags)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader left (`fennec recommend ... | head`): stop quietly, as Unix tools do, and point
        # stdout at /dev/null so that the interpreter's last flush cannot fail again on exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor (tests, IDEs)
            pass
        return EXIT_BROKEN_PIPE
    except Exception as e:  # a full disk, a read-only folder, a damaged database: one line too
        line = _storage_or_sqlite_error(e, args.command)
        if line is None:
            raise
        LOG.debug("Details", exc_info=True)
        print(f"fennec: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fennec: interrupted; committed batches are kept, the next run resumes", file=sys.stderr)
        return 130
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# What the module fennec.cli held before it became this package, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.cli", (
    "fennec.cli.common",
    "fennec.cli.catalog",
    "fennec.cli.workspace",
    "fennec.cli.recommend",
    "fennec.cli.bench",
), renamed={
    "_since": "iso_datetime", "_positive": "positive_int", "_non_negative": "non_negative_int",
    "_device": "usable_device", "_ray_flag": "add_ray_flag", "_executor": "command_executor",
    "_progress": "show_progress", "_catalog": "open_catalog", "_cli_terms": "cli_terms",
    "_reindex": "run_reindex", "_models": "run_models", "_import": "run_import", "_catalog_command": "run_catalog",
    "_fit": "run_fit", "_init": "run_init", "_recommend": "run_recommend", "_bench": "run_bench",
})
