"""Importers of transfer-result files into a :class:`~fennec.catalog.Catalog`, one per table kind.

The catalog stores results (:meth:`Catalog.import_table`); this module reads the files that hold
them. Which importer reads a file is decided by the file's content, never by its name
(:func:`table_kind`): a ``"kind"`` field when the file declares one, else its shape.

- ``"transfer-results"``: a published transfer-result table (``shared/data/transfer-results/``,
  :mod:`fennec.published`): a ``results`` object ``{dataset: {model: value}}``, with other
  ``results_*`` tables of the same shape as variants (:func:`import_transfer_results`);
- ``"zoo-ground-truth"``: the zoo benchmark's fine-tuning results (``zoo_ground_truth.json``,
  scripts/build_ground_truth.py): ``test_accuracy_seed<k>`` tables (:func:`import_zoo_ground_truth`).

Example:
    >>> table_kind({"results": {"cifar10": {"org/a": 0.9}}}, "t.json")
    'transfer-results'
    >>> table_kind({"test_accuracy_seed0": {"t-digits": {"org/a": 0.9}}}, "gt.json")
    'zoo-ground-truth'
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from fennec.errors import InvalidInputError

__all__ = ["KINDS", "ImportSummary", "TableStore", "import_file", "import_folder", "import_transfer_results",
           "import_zoo_ground_truth", "read_table_file", "table_kind"]

LOG = logging.getLogger(__name__)

#: The source id the zoo ground truth is imported under.
ZOO_GROUND_TRUTH_SOURCE = "zoo_ground_truth"
_SEED_PREFIX = "test_accuracy_seed"


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """What an importer wrote: the source, its variants, and the counts."""

    source_id: str
    variants: tuple[str, ...]
    n_results: int
    n_tasks: int
    n_models: int
    n_skipped: int  # null cells in the source


class TableStore(Protocol):
    """Where the importers write: :class:`fennec.catalog.Catalog` (named by this protocol so that
    the store, whose ``import_*`` methods call the importers, is not imported here)."""

    def import_table(self, source_id: str, tables: dict[str, dict[str, dict[str, Any]]], *,
                     metric: str | dict[str, str] | None, protocol: str | None,
                     source: dict[str, Any] | None = None, header: dict[str, Any] | None = None,
                     task_kind: str = "published") -> ImportSummary:
        ...


def _is_table(value: Any) -> bool:
    """Whether ``value`` has the ``{task: {model: value}}`` shape (and at least one task)."""
    return isinstance(value, dict) and bool(value) and all(isinstance(v, dict) for v in value.values())


def read_table_file(path: str | Path, *, what: str = "a transfer-result table") -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        InvalidInputError: the file cannot be read, is not JSON, or holds no JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"{path}: cannot read {what} ({e}).") from e
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object ({what}), found a JSON {type(data).__name__}.")
    return data


def _looks_like_ground_truth(data: Mapping[str, Any]) -> bool:
    return any(k.startswith(_SEED_PREFIX) and _is_table(v) for k, v in data.items())


def _looks_like_transfer_results(data: Mapping[str, Any]) -> bool:
    return _is_table(data.get("results"))


#: Each kind: (its shape check, what the shape is, in words).
_SHAPES: dict[str, tuple[Callable[[Mapping[str, Any]], bool], str]] = {
    "transfer-results": (_looks_like_transfer_results, "a 'results' table {dataset: {model: value}}"),
    "zoo-ground-truth": (_looks_like_ground_truth, f"'{_SEED_PREFIX}<k>' tables {{task: {{model: accuracy}}}}"),
}
#: The table kinds fennec imports.
KINDS = tuple(_SHAPES)


def table_kind(data: Mapping[str, Any], path: str | Path) -> str:
    """The kind of a table file's content (one of :data:`KINDS`): its ``"kind"`` field if it
    declares one, else the one kind whose shape it has.

    Raises:
        InvalidInputError: a declared kind fennec does not know, a file whose content does not
            have the declared kind's shape, or a file of no known kind (or of both shapes); the
            message lists the kinds and their shapes.
    """
    known = "; ".join(f"{k!r}: {shape}" for k, (_, shape) in _SHAPES.items())
    declared = data.get("kind")
    if declared is not None:
        if declared not in _SHAPES:
            raise InvalidInputError(f"{path}: declares kind {declared!r}, which fennec cannot import. Known kinds "
                                    f"({known}).")
        check, shape = _SHAPES[declared]
        if not check(data):
            raise InvalidInputError(f"{path}: declares kind {declared!r} but has no {shape}.")
        return str(declared)
    kinds = [k for k, (check, _) in _SHAPES.items() if check(data)]
    if len(kinds) == 1:
        return kinds[0]
    keys = ", ".join(sorted(map(str, data))[:12]) or "none"
    if not kinds:
        raise InvalidInputError(f"{path}: a file of no known kind (its top-level keys: {keys}). fennec imports "
                                f"{known}. Import a file of one of these kinds.")
    raise InvalidInputError(f"{path}: has the shape of several kinds ({', '.join(kinds)}); add a \"kind\" field "
                            "naming the one it is.")


def import_transfer_results(catalog: TableStore, path: str | Path,
                            data: Mapping[str, Any] | None = None) -> ImportSummary:
    """Import one published transfer-result table (see ``shared/data/transfer-results/README.md``).

    The main table ``results`` and the other model × dataset tables (``results_linear``,
    ``results_eval``, ``results_regression`` …) become variants; the file's ``source``,
    ``metric`` (or ``metric_per_dataset``) and ``protocol`` are kept. The source id is the
    file's stem.

    Raises:
        InvalidInputError: the file has no ``results`` table of the documented shape.
    """
    path = Path(path)
    if data is None:
        data = read_table_file(path)
    if not isinstance(data.get("results"), dict):
        raise InvalidInputError(f"{path}: expected a JSON object with a 'results' table "
                                "{dataset: {model: value}}.")
    tables = {k: v for k, v in data.items() if k.startswith("results") and _is_table(v)}
    if "results" not in tables:
        raise InvalidInputError(f"{path}: 'results' is not a {{dataset: {{model: value}}}} table.")
    metric = data.get("metric_per_dataset") if isinstance(data.get("metric_per_dataset"), dict) \
        else data.get("metric")
    header = {k: v for k, v in data.items() if k not in tables and k != "metric_scores"}
    return catalog.import_table(path.stem, tables, metric=metric, protocol=data.get("protocol"),
                                source=data.get("source") if isinstance(data.get("source"), dict) else {},
                                header=header)


def import_zoo_ground_truth(catalog: TableStore, path: str | Path, data: Mapping[str, Any] | None = None, *,
                            source_id: str = ZOO_GROUND_TRUTH_SOURCE) -> ImportSummary:
    """Import the zoo benchmark's ``zoo_ground_truth.json`` (scripts/build_ground_truth.py).

    ``test_accuracy_seed0`` and ``test_accuracy_seed1`` become variants ``seed0`` and
    ``seed1``; the fine-tuning protocol is kept as JSON.

    Raises:
        InvalidInputError: the file cannot be read or has no ``test_accuracy_seed<k>`` table.
    """
    path = Path(path)
    if data is None:
        data = read_table_file(path, what="the zoo ground truth")
    tables = {f"seed{k[len(_SEED_PREFIX):]}": v for k, v in data.items()
              if k.startswith(_SEED_PREFIX) and _is_table(v)}
    if not tables:
        raise InvalidInputError(f"{path}: no {_SEED_PREFIX}<k> table found.")
    protocol = data.get("protocol")
    return catalog.import_table(
        source_id, tables, metric="test accuracy (0-1)",
        protocol=json.dumps(protocol, sort_keys=True) if isinstance(protocol, dict) else protocol,
        source={"repo": "fennec", "path": str(path)}, task_kind="zoo",
        header={k: data[k] for k in ("coverage", "generated_utc", "models", "targets") if k in data})


#: The importer of each kind.
IMPORTERS: dict[str, Callable[..., ImportSummary]] = {
    "transfer-results": import_transfer_results,
    "zoo-ground-truth": import_zoo_ground_truth,
}


def import_file(catalog: TableStore, path: str | Path) -> ImportSummary:
    """Import one table file with the importer of its kind (:func:`table_kind`: by content).

    Raises:
        InvalidInputError: an unreadable file, or one of no known kind (the message lists the kinds).
    """
    data = read_table_file(path)
    return IMPORTERS[table_kind(data, path)](catalog, path, data)


def import_folder(catalog: TableStore, folder: str | Path) -> list[ImportSummary]:
    """Import every ``*.json`` table of a folder that is of a known kind; the others are
    skipped with a warning that names them (e.g. rank-only or report-only files)."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            out.append(import_file(catalog, path))
        except InvalidInputError as e:
            LOG.warning("Skipped %s (not a transfer-result table): %s", path.name, e)
    return out
