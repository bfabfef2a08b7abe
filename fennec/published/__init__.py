"""The published fine-tuning history that ships with fennec, and its mapping to the Hub.

fennec carries, as package data, the model x task tables of published transferability
benchmarks (SFDA, NCTI, REPT, EMMS, LogME/TLlib, Model Spider, TransferGraph, PARC and
"How stable are transferability metrics"), each file exactly as transcribed from its source
repository with its provenance: repository, path, commit, paper, protocol and metric. Tables
on different scales or protocols are different *sources* and are never merged: the same
``resnet50`` is a torchvision checkpoint in SFDA and a Keras one in stable_transfer, and
two SFDA-style tables of it come from different fine-tuning runs.

Beside the tables, two mappings (``data/models.json`` and ``data/tasks.json``, built by
``scripts/build_published.py``) say which Hub repository holds the same weights as each
published model, and which Hub dataset (config, splits, label column) each published task
is. Every entry carries a ``status`` (``confirmed``, ``unconfirmed`` or ``unmapped``) and
the ``evidence`` it was established from; an unmapped entry says why in ``note``.

Everything here reads JSON from the package folder: importing this module imports neither
torch nor transformers.

Example:
    >>> from fennec import published
    >>> [s.source_id for s in published.sources()][:2]
    ['emms_captioning_finetune', 'emms_vit_finetune']
    >>> table = published.load_table("sfda_supervised_finetune")
    >>> table.scale, table.values["cifar10"]["resnet50"]
    ('percent', 96.28)
    >>> m = published.model_mapping("sfda_supervised_finetune")["resnet50"]
    >>> m.hub_id, m.status
    ('timm/resnet50.tv_in1k', 'confirmed')
    >>> t = published.task_mapping("sfda_supervised_finetune")["cifar10"]
    >>> t.dataset_id, t.config, t.splits, t.label_column
    ('uoft-cs/cifar10', 'plain_text', ('train', 'test'), 'label')
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fennec.errors import InvalidInputError, PublishedDataError

__all__ = [
    "KINDS",
    "SCALES",
    "STATUSES",
    "MappedModel",
    "MappedTask",
    "PublishedSource",
    "PublishedTable",
    "Variant",
    "load_raw",
    "load_table",
    "model_mapping",
    "model_mappings",
    "source",
    "sources",
    "summary",
    "task_mapping",
    "task_mappings",
]

#: The package data folder: ``sources.json``, ``models.json``, ``tasks.json`` and ``tables/``.
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The published tables, one JSON file per source, byte for byte as in the source index.
TABLES_DIR = DATA_DIR / "tables"
SOURCES_FILE = DATA_DIR / "sources.json"
MODELS_FILE = DATA_DIR / "models.json"
TASKS_FILE = DATA_DIR / "tasks.json"
#: The version of the three JSON files above that this module reads.
SCHEMA_VERSION = 1

#: How a mapping entry was established: ``confirmed`` (the Hub id is named by the source
#: table, or a stored Hub page / documentation shows it), ``unconfirmed`` (a plausible id
#: whose weights, columns or splits could not be checked) or ``unmapped`` (no Hub id).
STATUSES = ("confirmed", "unconfirmed", "unmapped")
#: The scale of a table's values: ``percent`` (0-100), ``fraction`` (0-1), ``rank``
#: (integer, 0 = worst), ``score`` (a transferability score, any finite number) and
#: ``negated_error`` (a regression error times -1, so higher is better; at most 0).
SCALES = ("percent", "fraction", "rank", "score", "negated_error")
#: What a source holds: fine-tuning results, linear-probe results, ranks only,
#: transferability-metric scores, or a report of correlations (no model x task table).
KINDS = ("finetune", "linear_probe", "ranks", "metric_scores", "report")


@dataclass(frozen=True)
class Variant:
    """One model x task table of a source (``results``, ``results_linear`` …)."""

    #: The variant's name (the key of the table in the source file, or of the metric).
    name: str
    #: The keys that lead to the table in the source file, e.g. ``("results", "LOG_ME")``.
    path: tuple[str, ...]
    #: One of :data:`SCALES`.
    scale: str
    description: str


@dataclass(frozen=True)
class PublishedSource:
    """One published source: a table file with its provenance and its variants."""

    source_id: str
    #: The file under :data:`TABLES_DIR`.
    file: str
    #: One of :data:`KINDS`.
    kind: str
    #: ``image-classification``, ``image-captioning`` or ``semantic-segmentation``.
    task_type: str
    repo: str
    #: The file in ``repo`` the numbers were read from.
    path: str
    commit: str
    paper: str
    #: The protocol as the source file describes it (for a report: its description).
    protocol: str
    #: The metric, as a string or as a mapping task → metric (``metric_per_dataset``).
    metric: str | dict[str, str]
    variants: tuple[Variant, ...]

    @property
    def main_variant(self) -> Variant | None:
        """The source's main table (``results`` where it has one); None for a report."""
        names = [v.name for v in self.variants]
        if "results" in names:
            return self.variants[names.index("results")]
        return self.variants[0] if self.variants else None

    def variant(self, name: str) -> Variant:
        """The variant called ``name``.

        Raises:
            InvalidInputError: the source has no such variant.
        """
        for v in self.variants:
            if v.name == name:
                return v
        available = ", ".join(v.name for v in self.variants) or "none: it is a report, read it with load_raw()"
        raise InvalidInputError(f"Published source {self.source_id!r} has no table {name!r}; its tables: "
                                f"{available}.")


@dataclass(frozen=True)
class PublishedTable:
    """The values of one variant of one source: ``values[task][model]`` (None = missing)."""

    source: PublishedSource
    variant: Variant
    values: Mapping[str, Mapping[str, float | int | None]]

    @property
    def scale(self) -> str:
        """The scale of the values (one of :data:`SCALES`)."""
        return self.variant.scale

    @property
    def tasks(self) -> list[str]:
        """The tasks (table columns in the papers' layout), in the source's order."""
        return list(self.values)

    @property
    def models(self) -> list[str]:
        """Every model with a cell in any task, in order of first appearance."""
        return list(dict.fromkeys(m for row in self.values.values() for m in row))

    @property
    def n_cells(self) -> int:
        """The number of (task, model) cells that hold a value."""
        return sum(v is not None for row in self.values.values() for v in row.values())


@dataclass(frozen=True)
class MappedModel:
    """Which Hub repository holds the same weights as one published model."""

    source: str
    #: The model's name in the source table.
    name: str
    #: ``owner/name`` on the Hub, or None when unmapped.
    hub_id: str | None
    #: One of :data:`STATUSES`.
    status: str
    #: How the entry was established: a page or document found with the search tool
    #: (its address), or ``name in source table``.
    evidence: str
    #: Why it is unmapped or unconfirmed, and any caveat (e.g. weights not byte-verified).
    note: str
    #: The library that loads ``hub_id`` (``timm`` or ``transformers``), None when unmapped.
    library: str | None


@dataclass(frozen=True)
class MappedTask:
    """Which Hub dataset one published task is, and how to read it."""

    source: str
    #: The task's name in the source table.
    name: str
    #: fennec's name for the dataset (the key in ``tasks.json``), shared by the aliases
    #: of different sources (``pets``, ``Pet``, ``oxford_iiit_pet`` …); None when unmapped.
    dataset: str | None
    #: ``owner/name`` on the Hub, or None when unmapped.
    dataset_id: str | None
    #: The dataset config, or None for the default one.
    config: str | None
    #: The Hub splits that hold labelled images, the training split first.
    splits: tuple[str, ...]
    label_column: str | None
    image_column: str | None
    #: One of :data:`STATUSES`.
    status: str
    evidence: str
    note: str


# -- reading the package data ----------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PublishedDataError(f"{path}: cannot read fennec's published data ({e.strerror or e}). fennec was "
                                 "installed without its package data: reinstall it (pip install --force-reinstall "
                                 "fennec) or run it from a complete checkout.", path=str(path)) from e
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as e:
        raise PublishedDataError(f"{path}: fennec's published data is not valid JSON ({e}); the file was edited or "
                                 "damaged: reinstall fennec or restore the file from the repository.",
                                 path=str(path)) from e


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number fennec accepts in a published table")


def _schema(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise PublishedDataError(f"{path}: schema_version {found!r}, this fennec reads {SCHEMA_VERSION}; the "
                                 "package data and the code come from different fennec versions: reinstall fennec.",
                                 path=str(path))
    return data


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict[str, Any]]:
    data = _schema(_read_json(SOURCES_FILE), SOURCES_FILE)
    entries = data.get("sources")
    if not isinstance(entries, dict) or not entries:
        raise PublishedDataError(f"{SOURCES_FILE}: no 'sources' object.", path=str(SOURCES_FILE))
    return entries


@cache
def _raw(source_id: str) -> dict[str, Any]:
    path = TABLES_DIR / _manifest()[source_id]["file"]
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("source"), dict):
        raise PublishedDataError(f"{path}: expected a JSON object with a 'source' object (its provenance).",
                                 path=str(path))
    return data


def _check_source_id(source_id: str) -> None:
    if not isinstance(source_id, str) or source_id not in _manifest():
        raise InvalidInputError(f"Unknown published source {source_id!r}. The sources shipped with fennec: "
                                f"{', '.join(sorted(_manifest()))} (fennec.published.sources() lists them with "
                                "their provenance).")


def sources() -> list[PublishedSource]:
    """Every published source shipped with fennec, sorted by id.

    Raises:
        PublishedDataError: the package data is missing or damaged.
    """
    return [source(sid) for sid in sorted(_manifest())]


@cache
def source(source_id: str) -> PublishedSource:
    """One published source with its provenance and variants.

    Raises:
        InvalidInputError: no source of that id (the message lists them).
        PublishedDataError: the package data is missing or damaged.
    """
    _check_source_id(source_id)
    entry, raw = _manifest()[source_id], _raw(source_id)
    prov = raw["source"]
    path = TABLES_DIR / entry["file"]
    fields = {"repo": prov.get("repo"), "path": prov.get("path") or prov.get("file"),
              "commit": prov.get("commit"), "paper": prov.get("paper") or entry.get("paper"),
              "protocol": raw.get("protocol") or raw.get("description")}
    missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
    if missing:
        raise PublishedDataError(f"{path}: provenance field(s) {', '.join(missing)} missing.", path=str(path))
    metric = raw.get("metric_per_dataset") if isinstance(raw.get("metric_per_dataset"), dict) else raw.get("metric")
    variants = tuple(Variant(name, tuple(v["path"]), v["scale"], v.get("description", ""))
                     for name, v in entry.get("variants", {}).items())
    return PublishedSource(source_id, entry["file"], entry["kind"], entry["task_type"], metric=metric or "",
                           variants=variants, **fields)


def load_raw(source_id: str) -> dict[str, Any]:
    """The source's JSON file as it was transcribed (a fresh copy: changing it changes nothing).

    Use it for what the tables leave out: ``notes``, ``arch``, ``metric_scores``, a report's
    data …

    Raises:
        InvalidInputError: no source of that id.
        PublishedDataError: the package data is missing or damaged.
    """
    _check_source_id(source_id)
    return copy.deepcopy(_raw(source_id))


def load_table(source_id: str, variant: str | None = None) -> PublishedTable:
    """One model x task table of a source: ``values[task][model]`` on the variant's scale.

    Args:
        source_id: a published source (:func:`sources`).
        variant: the table (``results``, ``results_linear`` …); default: the main one.

    Raises:
        InvalidInputError: an unknown source or variant, or a report (no table).
        PublishedDataError: the package data is missing or damaged (a value that is not a
            finite number or null, a table of the wrong shape).
    """
    src = source(source_id)
    if variant is None:
        if src.main_variant is None:
            raise InvalidInputError(f"Published source {source_id!r} is a report with no model x task table; "
                                    "read it with fennec.published.load_raw().")
        variant = src.main_variant.name
    v = src.variant(variant)
    return PublishedTable(src, v, _table(source_id, v.path))


@cache
def _table(source_id: str, path: tuple[str, ...]) -> Mapping[str, Mapping[str, float | int | None]]:
    where = f"{TABLES_DIR / _manifest()[source_id]['file']} [{' / '.join(path)}]"
    node: Any = _raw(source_id)
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or not all(isinstance(row, dict) for row in node.values()):
        raise PublishedDataError(f"{where}: expected a {{task: {{model: value}}}} table.", path=where)
    out: dict[str, dict[str, float | int | None]] = {}
    for task, row in node.items():
        for model, value in row.items():
            finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if value is not None and not finite:
                raise PublishedDataError(f"{where}: {task}/{model} is {value!r}, not a finite number or null.",
                                         path=where)
        out[task] = dict(row)
    return _frozen(out)


def _frozen(table: dict[str, dict[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in table.items()})


def _reset() -> None:
    """Forget what was read (for tests and ``scripts/build_published.py``, which rewrite the data)."""
    for cached in (_manifest, _raw, source, _table, _models_file, _tasks_file, _model_entries, _task_entries):
        cached.cache_clear()


# -- mappings --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _models_file() -> dict[str, Any]:
    data = _schema(_read_json(MODELS_FILE), MODELS_FILE)
    if not isinstance(data.get("sources"), dict):
        raise PublishedDataError(f"{MODELS_FILE}: no 'sources' object.", path=str(MODELS_FILE))
    return data


@lru_cache(maxsize=1)
def _tasks_file() -> dict[str, Any]:
    data = _schema(_read_json(TASKS_FILE), TASKS_FILE)
    if not isinstance(data.get("sources"), dict) or not isinstance(data.get("datasets"), dict):
        raise PublishedDataError(f"{TASKS_FILE}: no 'sources' and 'datasets' objects.", path=str(TASKS_FILE))
    return data


def _status(value: Any, where: str, path: Path) -> str:
    if value not in STATUSES:
        raise PublishedDataError(f"{path}: {where}: status {value!r}, expected one of {', '.join(STATUSES)}.",
                                 path=str(path))
    return value


@cache
def _model_entries(source_id: str) -> Mapping[str, MappedModel]:
    _check_source_id(source_id)
    entries = _models_file()["sources"].get(source_id, {})
    out = {}
    for name, e in entries.items():
        status = _status(e.get("status"), f"{source_id}/{name}", MODELS_FILE)
        out[name] = MappedModel(source_id, name, e.get("hub_id"), status, e.get("evidence", ""), e.get("note", ""),
                                e.get("library"))
    return MappingProxyType(out)


def model_mapping(source_id: str) -> dict[str, MappedModel]:
    """``{published model name: MappedModel}`` for one source (every model of its tables).

    Names are per source: ``resnet50`` is ``timm/resnet50.tv_in1k`` in SFDA's table and a
    Keras checkpoint (unmapped) in stable_transfer's, so there is no mapping across sources.

    Raises:
        InvalidInputError: no source of that id.
        PublishedDataError: the package data is missing or damaged.
    """
    return dict(_model_entries(source_id))


def model_mappings() -> dict[str, dict[str, MappedModel]]:
    """:func:`model_mapping` of every source with a table: ``{source: {name: MappedModel}}``."""
    return {s.source_id: model_mapping(s.source_id) for s in sources() if s.variants}


@cache
def _task_entries(source_id: str) -> Mapping[str, MappedTask]:
    _check_source_id(source_id)
    data = _tasks_file()
    out = {}
    for name, e in data["sources"].get(source_id, {}).items():
        key = e.get("dataset")
        if key is None:
            status = _status(e.get("status"), f"{source_id}/{name}", TASKS_FILE)
            out[name] = MappedTask(source_id, name, None, None, None, (), None, None, status,
                                   e.get("evidence", ""), e.get("note", ""))
            continue
        d = data["datasets"].get(key)
        if not isinstance(d, dict):
            raise PublishedDataError(f"{TASKS_FILE}: {source_id}/{name} names dataset {key!r}, which 'datasets' "
                                     "does not define.", path=str(TASKS_FILE))
        status = _status(d.get("status"), f"datasets/{key}", TASKS_FILE)
        note = "; ".join(n for n in (d.get("note", ""), e.get("note", "")) if n)
        out[name] = MappedTask(source_id, name, key, d.get("dataset_id"), d.get("config"), tuple(d.get("splits", ())),
                               d.get("label_column"), d.get("image_column"), status, d.get("evidence", ""), note)
    return MappingProxyType(out)


def task_mapping(source_id: str) -> dict[str, MappedTask]:
    """``{published task name: MappedTask}`` for one source (every task of its tables).

    Raises:
        InvalidInputError: no source of that id.
        PublishedDataError: the package data is missing or damaged.
    """
    return dict(_task_entries(source_id))


def task_mappings() -> dict[str, dict[str, MappedTask]]:
    """:func:`task_mapping` of every source with a table: ``{source: {name: MappedTask}}``."""
    return {s.source_id: task_mapping(s.source_id) for s in sources() if s.variants}


def summary() -> dict[str, dict[str, int]]:
    """How many published models and tasks are mapped, by status.

    Returns ``{key: {"confirmed": n, "unconfirmed": n, "unmapped": n}}`` for the keys
    ``models`` and ``tasks`` ((source, name) entries of every source with a table),
    ``hub_models`` (distinct Hub ids, each by its best status), ``classification_tasks``
    (the (source, name) tasks of the image-classification sources with accuracies, i.e.
    without Model Spider's rank-only sampled tasks) and ``datasets`` (the distinct datasets
    those map to, plus their distinct unmapped task names).
    """
    def count(statuses: list[str]) -> dict[str, int]:
        return {s: statuses.count(s) for s in STATUSES}

    models = [m for per in model_mappings().values() for m in per.values()]
    tasks = [t for per in task_mappings().values() for t in per.values()]
    best: dict[str, str] = {}
    for m in models:
        if m.hub_id is not None and STATUSES.index(m.status) < STATUSES.index(best.get(m.hub_id, "unmapped")):
            best[m.hub_id] = m.status
    accuracy_sources = {s.source_id for s in sources() if s.task_type == "image-classification"
                        and s.kind in ("finetune", "linear_probe", "metric_scores")}
    classification = [t for t in tasks if t.source in accuracy_sources]
    datasets = {t.dataset: t.status for t in classification if t.dataset is not None}
    unmapped = {t.name.lower() for t in classification if t.dataset is None}
    return {"models": count([m.status for m in models]),
            "hub_models": count(list(best.values())),
            "tasks": count([t.status for t in tasks]),
            "classification_tasks": count([t.status for t in classification]),
            "datasets": count([*datasets.values(), *["unmapped"] * len(unmapped)])}
