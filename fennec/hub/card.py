"""Model-card metadata a hub states about a model: its base model(s) and datasets.

The Hub turns a model card's ``base_model:`` into repository tags (``base_model:<id>`` and
``base_model:<relation>:<id>``, relation ``finetune``, ``adapter``, ``quantized`` or
``merge``) and its ``datasets:`` into ``dataset:<id>`` tags; ``library_name`` is a field of
its own (:attr:`fennec.hub.records.ModelRecord.library`). The catalog keeps the tags, so the
card metadata is read back from them (:func:`card_metadata`), and, where a hub answers with
the card itself (``cardData``), from it as well.

Everything here is hostile input: at most :data:`MAX_BASE_MODELS` base models and
:data:`MAX_CARD_DATASETS` datasets are kept, each at most :data:`MAX_CARD_VALUE` characters;
a base model must be a valid repository id (``org/name`` of letters, digits, ``-``, ``_``,
``.``; never ``..``, a path or a URL), anything else is dropped with a debug log line.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

LOG = logging.getLogger(__name__)

MAX_BASE_MODELS = 8  # a card naming more (a merge of many) keeps the first 8
MAX_CARD_DATASETS = 32
MAX_CARD_VALUE = 96  # the Hub's repository ids are at most 96 characters
MAX_TAGS_READ = 1000  # tags looked at per model
#: Relations the Hub writes as ``base_model:<relation>:<id>``.
BASE_RELATIONS = ("finetune", "adapter", "quantized", "merge")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,95}")


@dataclasses.dataclass(frozen=True)
class CardMetadata:
    """What a model card says about where a model comes from.

    Attributes:
        base_models: the model(s) it was derived from, checked repository ids, in the card's order.
        datasets: the datasets it names (its training data).
        library: its ``library_name`` (None if not stated).
    """

    base_models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    library: str | None = None


def is_repo_id(value: Any) -> bool:
    """Whether ``value`` is a repository id fennec accepts as a base model.

    ``org/name`` or ``name`` (legacy canonical models), each part of letters, digits, ``-``,
    ``_``, ``.``, not starting or ending with ``.``/``-``/``_``, no ``--`` or ``..``; the same
    rule as huggingface_hub's ``validate_repo_id``, stricter about length. Never a path:

    Example:
        >>> [is_repo_id(v) for v in ("google/vit-base-patch16-224", "resnet50", "../etc", "a/b/c", "/abs")]
        [True, True, False, False, False]
    """
    return (isinstance(value, str) and len(value) <= MAX_CARD_VALUE and _REPO_ID.fullmatch(value) is not None
            and ".." not in value and "--" not in value)


def _as_list(value: Any, limit: int) -> list[Any]:
    if isinstance(value, (str, bytes)) or value is None:
        return [value] if isinstance(value, str) else []
    if isinstance(value, (list, tuple)):
        return list(value[: limit * 4])  # bounded before any checking
    return []


def _bases_from_card(card: Mapping[str, Any]) -> list[str]:
    return [v for v in _as_list(card.get("base_model"), MAX_BASE_MODELS) if isinstance(v, str)]


def _bases_from_tags(tags: Iterable[Any]) -> list[str]:
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.startswith("base_model:"):
            continue
        rest = tag[len("base_model:"):]
        relation, _, target = rest.partition(":")
        if target and relation in BASE_RELATIONS:
            out.append(target)
        elif not target:
            out.append(rest)
    return out


def card_metadata(tags: Iterable[Any] = (), card: Any = None, library: Any = None) -> CardMetadata:
    """The card metadata of a model from its tags and, when given, its card data (checked, bounded).

    Args:
        tags: the repository's tags (``base_model:…``, ``dataset:…``; others are ignored).
        card: the card's metadata mapping (``cardData``), or None; its ``base_model`` (a
            string or a list) and ``datasets`` come first, the tags' add the rest.
        library: the repository's ``library_name``, or None (a card's ``library_name`` is used
            when this is None).

    Example:
        >>> card_metadata(["base_model:finetune:google/vit-base-patch16-224", "dataset:cifar10",
        ...                "base_model:../../etc/passwd"], library="transformers")
        CardMetadata(base_models=('google/vit-base-patch16-224',), datasets=('cifar10',), library='transformers')
    """
    tags = [t for _, t in zip(range(MAX_TAGS_READ), tags if isinstance(tags, Iterable) else (), strict=False)]
    card = card if isinstance(card, Mapping) else {}
    bases: list[str] = []
    for value in [*_bases_from_card(card), *_bases_from_tags(tags)]:
        if not is_repo_id(value):
            LOG.debug("Ignoring a base_model that is not a repository id: %r", str(value)[:MAX_CARD_VALUE])
        elif value not in bases and len(bases) < MAX_BASE_MODELS:
            bases.append(value)
    datasets: list[str] = []
    card_sets = [d for d in _as_list(card.get("datasets"), MAX_CARD_DATASETS) if isinstance(d, str)]
    tag_sets = [t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("dataset:")]
    for value in [*card_sets, *tag_sets]:
        if _DATASET.fullmatch(value) and ".." not in value and value not in datasets \
                and len(datasets) < MAX_CARD_DATASETS:
            datasets.append(value)
    lib = library if library is not None else card.get("library_name")
    lib = lib if isinstance(lib, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", lib) else None
    return CardMetadata(tuple(bases), tuple(datasets), lib)


def base_model_tags(card: Mapping[str, Any]) -> list[str]:
    """The tags the Hub derives from a card's ``base_model`` (``base_model:<id>`` and
    ``base_model:finetune:<id>``; ``base_model_relation`` when the card states one), for the
    local Hub server, which answers as the Hub does. Invalid ids give no tag.

    Example:
        >>> base_model_tags({"base_model": "google/vit-base-patch16-224"})
        ['base_model:google/vit-base-patch16-224', 'base_model:finetune:google/vit-base-patch16-224']
    """
    relation = card.get("base_model_relation")
    relation = relation if relation in BASE_RELATIONS else "finetune"
    out = []
    for base in _bases_from_card(card)[:MAX_BASE_MODELS]:
        if is_repo_id(base):
            out += [f"base_model:{base}", f"base_model:{relation}:{base}"]
    return out
