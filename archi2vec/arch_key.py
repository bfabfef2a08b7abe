"""One key per architecture: fine-tunes that differ from their base only in labels share it.

Most Hub models are fine-tunes whose ``config.json`` differs from their base's only in the
label names, the name or path they were saved from, the library version or the storage
dtype. None of these changes the model archi2vec builds, so none changes its vector.
:func:`architecture_config` keeps the part of a config that does (explicit lists below),
and :func:`architecture_key` hashes it, with :data:`~archi2vec.EMBEDDER_VERSION`, so that a
caller can embed each architecture once and reuse its vector (or its unsupported verdict).

The classifier head is part of the architecture: archi2vec builds a transformers image
classifier with its head (``num_labels`` outputs) and a timm model with ``num_classes``
outputs, and the head's size moves the parameter count and the widest feature dimension,
two of the vector's structure statistics. So the key keeps the *number* of labels (for
transformers, ``len(id2label)`` when the config has ``id2label``, as transformers itself
counts them, else ``num_labels``) and drops the labels themselves.

Embed :func:`architecture_config`'s result rather than the raw config: the vector and any
refusal then depend on the key's content alone (a field outside it cannot make one copy
of an architecture fail where another passes), and they are the raw config's, since only
fields that do not reach the model are dropped.

Example:
    >>> base = {"model_type": "vit", "hidden_size": 32, "id2label": {"0": "cat", "1": "dog"}}
    >>> tuned = {"model_type": "vit", "hidden_size": 32, "id2label": {"0": "ant", "1": "bee"},
    ...          "_name_or_path": "me/vit-bees", "transformers_version": "4.57.0"}
    >>> architecture_key(base) == architecture_key(tuned)
    True
    >>> architecture_config(tuned)
    {'model_type': 'vit', 'hidden_size': 32, 'num_labels': 2}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from archi2vec.embed import EMBEDDER_VERSION
from archi2vec.errors import InvalidArgumentError

__all__ = ["TRANSFORMERS_DROPPED", "TIMM_KEPT", "architecture_config", "architecture_key"]

#: Fields of a transformers config (at any depth: sub-configs such as ``vision_config``
#: carry them too) that do not reach the model archi2vec builds: label names (their count
#: is kept as ``num_labels``), where and with what it was saved, the storage precision
#: (archi2vec builds in float32), and task metadata. Every other field is kept.
TRANSFORMERS_DROPPED = frozenset({
    "id2label", "label2id", "_name_or_path", "name_or_path", "_commit_hash",
    "transformers_version", "torch_dtype", "dtype", "finetuning_task",
    "task_specific_params",
})

#: The only fields of a timm ``config.json`` that reach the model archi2vec builds (see
#: :func:`archi2vec._config_checks.timm_kwargs`): the architecture (its pretrained tag, after
#: the dot, names weights and is dropped), ``model_args``, the head size, and ``auto_map``
#: (refused as remote code). ``pretrained_cfg`` (hub id, tag, license, mean/std …),
#: ``label_names``, ``label_descriptions`` and everything else are dropped.
TIMM_KEPT = frozenset({"architecture", "model_args", "num_classes", "num_features", "auto_map"})


def _is_timm(config: Mapping, library: str | None) -> bool:
    """Whether archi2vec builds ``config`` with timm (as :func:`archi2vec.build` decides)."""
    return library == "timm" or (library is None and "architecture" in config
                                 and "model_type" not in config)


def _transformers_part(config: Mapping) -> dict:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in TRANSFORMERS_DROPPED:
            continue
        out[key] = _transformers_part(value) if isinstance(value, Mapping) else value
    id2label = config.get("id2label")
    if isinstance(id2label, Mapping):  # transformers counts the labels so, whatever num_labels says
        out["num_labels"] = len(id2label)
    elif id2label is not None:  # not a mapping: kept, so that it fails (or not) as it would
        out["id2label"] = id2label
    return out


def architecture_config(config: Mapping, *, library: str | None = None) -> dict:
    """The part of ``config`` that decides the model archi2vec builds from it.

    Args:
        config: a ``config.json`` as a dict (transformers or timm).
        library: ``"transformers"``, ``"timm"`` or None, as passed to :func:`archi2vec.embed`
            (it decides how the config is read, so it decides what is kept).

    Returns:
        A new dict: for timm, the fields in :data:`TIMM_KEPT` (the architecture without its
        pretrained tag); for transformers, every field but :data:`TRANSFORMERS_DROPPED`,
        with the label count as ``num_labels``. Building it gives the same model as ``config``.

    Raises:
        TypeError: ``config`` is not a mapping.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"a config must be a mapping (a config.json object), got a {type(config).__name__}")
    if not _is_timm(config, library):
        return _transformers_part(config)
    out = {k: config[k] for k in TIMM_KEPT if k in config}
    arch = out.get("architecture")
    if isinstance(arch, str):
        out["architecture"] = arch.split(".", 1)[0]
    return out


def architecture_key(config: Mapping, *, library: str | None = None,
                     embedder_version: str = EMBEDDER_VERSION) -> str:
    """A deterministic hash of :func:`architecture_config`, the library and the embedder version.

    Two configs with the same key give the same archi2vec vector (for the same ``dim`` and
    capture method, which the caller keys on too); the key changes with
    :data:`~archi2vec.EMBEDDER_VERSION`. It is the hex SHA-256 of the canonical JSON
    (sorted keys, no spaces) of ``{"config", "library", "embedder"}``.

    Args:
        config, library: as for :func:`architecture_config`.
        embedder_version: the recipe the vector is made with.

    Raises:
        TypeError: ``config`` is not a mapping.
        InvalidArgumentError: ``config`` is not plain JSON data (a key that is not a string,
            an object JSON cannot write); a ``ValueError``.
    """
    payload = {"config": architecture_config(config, library=library), "library": library,
               "embedder": embedder_version}
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except TypeError as exc:  # mixed key types cannot be sorted; sets, objects cannot be written
        raise InvalidArgumentError(f"the config is not plain JSON data: {exc}; give the dict that "
                                   "json.load() returns for a config.json") from exc
    return hashlib.sha256(text.encode("ascii")).hexdigest()
