"""Side information for the models of the published transfer tables, built offline.

For every model of the model x dataset fine-tuning tables in
``../shared/data/transfer-results/`` this writes what a cold-start placement in the transfer
space may use: the archi2vec vector of its architecture, its parameter count, its
architecture family and what it was pre-trained on. Nothing is downloaded: architectures
are built on the meta device from the tables' own ``arch`` / ``model_info`` fields.

How each table's architectures are obtained:

* SFDA supervised, REPT head-only, TLlib/LogME (torchvision ImageNet models): the ``arch``
  map's timm names, GoogLeNet from torchvision (``archi2vec_transfer.sfda_entries``).
* SFDA self-supervised: twelve plain ResNet-50s (timm ``resnet50``); only the
  pre-training method differs, so architecture cannot separate them (a negative control).
* EMMS ViTs: timm names (MoCo-v3 ViT-S with 12 heads), PVT v1 from transformers' ``pvt``
  config (``archi2vec_transfer.emms_entries``).
* Model Spider multi-source (3 architectures x 22 source datasets): timm names; pre-training
  = ImageNet, then the source dataset.
* PARC: timm ResNets, torchvision AlexNet/GoogLeNet; detectron2 backbones are MSRA-style
  ResNets (stride in the 1x1 convolution), built as the torchvision-style ResNet of the
  same depth (same graph up to that stride).
* stable_transfer architecture selection (Keras ImageNet models): the table's
  ``timm_closest`` names (Keras ResNet50/101 are Caffe-style v1); NASNetMobile has none.
* TransferGraph (HF Hub models): only ``model_info`` is known (transformers class,
  parameter count, input size, label count). Each model gets the standard size variant of
  its class whose meta-device parameter count, with its label count and input size, equals
  the recorded one exactly (``archi2vec_transfer.match_transfergraph``); failing that, the
  variant within ``NEAREST_TOLERANCE`` of it (marked ``approximate``); else no vector.

Tables left out, and why, are in ``SKIPPED``. Parameter counts come from the table where it
records them (TransferGraph), else from the meta-device build (the ImageNet head as built).

Run (about 5-10 minutes on a loaded 2-core machine; reuses the cached file when its
embedder version matches, ``--force`` rebuilds)::

    .venv/bin/python benchmark/published_models.py

Output: ``benchmark/results/published_models.json``::

    {"embedder_version", "dim", "date", "skipped": {table: reason},
     "tables": {table: {model: {"archi2vec": [..] | null, "parameters", "family",
                                "pretraining", "arch_source", "arch_key", "reason"?}}}}
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import archi2vec
import archi2vec_transfer as tr
import fennec  # noqa: F401 - installs the torchvision shim before timm/transformers import
from archi2vec_corpus import _torchvision_model

LOG = logging.getLogger("fennec.bench.published_models")

RESULTS = Path(__file__).resolve().parent / "results"
OUTPUT = RESULTS / "published_models.json"
DIM = 256
CAPTURE = "record"  # archi2vec's eager recorder, as fennec.reindex's default Embedder uses
NEAREST_TOLERANCE = 0.02  # relative parameter-count gap accepted for an approximate size match

TABLES = (
    "sfda_supervised_finetune.json",
    "sfda_selfsupervised_finetune.json",
    "rept_supervised_headonly.json",
    "logme_tllib_supervised_finetune.json",
    "emms_vit_finetune.json",
    "modelspider_multisource_finetune.json",
    "parc_finetune.json",
    "stable_transfer_arch_selection.json",
    "transfergraph_hf_finetune.json",
)
SKIPPED = {
    "emms_captioning_finetune.json": "image captioning (encoder-decoder pairs, BLEU-like "
                                     "score), not image classification",
    "modelspider_sampled_task_ranks.json": "ranks only, on sampled mixed-class tasks; no "
                                           "accuracies to normalise",
    "ncti_selfsupervised_extra.json": "2 datasets (20 cells) for the same 12 ResNet-50s as "
                                      "sfda_selfsupervised: too few tasks to fit a space",
    "stable_transfer_segmentation_sources.json": "semantic segmentation, and every model is "
                                                 "the same HRNetV2-W48 (only the source differs)",
    "transfergraph_metric_scores.json": "transferability-metric scores, not fine-tuning results",
    "sfda_tauw_supervised_readme.json": "reported correlations, not a model x dataset table",
    "ped_tauw_selfsup_readme.json": "reported correlations, not a model x dataset table",
    "tllib_model_selection_benchmark.json": "reported metric scores and correlations; its "
                                            "accuracies are logme_tllib_supervised_finetune's",
}

_IMAGENET = "imagenet-1k"
_TV_IN_TIMM = "timm {name!r} (the torchvision architecture)"


@dataclass(frozen=True)
class Recipe:
    """How to obtain one model's side information.

    ``source`` is what :func:`archi2vec.graph` gets (a timm name or a config dict), or
    ``"torchvision:<name>"``; ``arch_key`` names the architecture build (shared by models
    with the same architecture, which are built once). ``source`` None: not buildable,
    ``reason`` says why.
    """

    arch_key: str | None
    source: Any
    arch_source: str
    family: str | None
    pretraining: str | None
    parameters: int | None = None
    reason: str | None = None


def family_of(arch: str) -> str:
    """A short family name from a timm / torchvision architecture name.

    Example:
        >>> [family_of(n) for n in ("resnet50", "tf_efficientnet_b0", "mobilenet_v2",
        ...                         "mobilenetv2_100", "pvt_v2_b2", "deit_small_patch16_224")]
        ['resnet', 'efficientnet', 'mobilenetv2', 'mobilenetv2', 'pvtv2', 'deit']
    """
    name = re.sub(r"^(tf_|legacy_)", "", arch.lower())
    match = re.match(r"([a-z]+?)(_?v\d+)?(?=[^a-z]|$)", name)
    if match is None:
        return name
    return match.group(1) + (match.group(2) or "").replace("_", "")


def _from_entry(entry: Any, pretraining: str, *, note: str = "") -> Recipe:
    """A Recipe from an ``archi2vec_corpus.Entry`` made by ``archi2vec_transfer``."""
    if entry.origin == "torchvision":
        return Recipe(entry.key, f"torchvision:{entry.source}",
                      f"torchvision {entry.source!r} (not in timm){note}",
                      family_of(entry.source), pretraining)
    if isinstance(entry.source, str):
        return Recipe(entry.key, entry.source, f"timm {entry.source!r}{note}",
                      family_of(entry.source), pretraining)
    if "architecture" in entry.source:  # timm name with model_args
        arch = entry.source["architecture"]
        return Recipe(entry.key, entry.source,
                      f"timm {arch!r} with {entry.source['model_args']}{note}",
                      family_of(arch), pretraining)
    cfg = entry.source
    return Recipe(entry.key, cfg, f"transformers {cfg['model_type']!r} config "
                                  f"{ {k: v for k, v in cfg.items() if k != 'model_type'} }{note}",
                  family_of(cfg["model_type"]), pretraining)


def _name_recipe(name: str, origin: str, pretraining: str, *, note: str = "") -> Recipe:
    if origin == "torchvision":
        return Recipe(f"torchvision:{name}", f"torchvision:{name}",
                      f"torchvision {name!r} (not in timm){note}", family_of(name), pretraining)
    return Recipe(f"timm:{name}", name, f"timm {name!r}{note}", family_of(name), pretraining)


def _missing(reason: str, family: str | None, pretraining: str | None,
             parameters: int | None = None) -> Recipe:
    return Recipe(None, None, "none", family, pretraining, parameters, reason)


# ---------------------------------------------------------------------------------------
# one function per table layout
# ---------------------------------------------------------------------------------------


def _torchvision_imagenet(table: dict) -> dict[str, Recipe]:
    entries = tr.sfda_entries(table)
    out = {}
    for model in table["arch"]:
        if model in entries:
            out[model] = _from_entry(entries[model], _IMAGENET)
        else:
            out[model] = _missing(f"no timm or torchvision name in {table['arch'][model]}",
                                  family_of(model), _IMAGENET)
    return out


def _ssl_label(method: str) -> str:
    """Pre-training labels of a self-supervised ImageNet model: versions share the method.

    Example:
        >>> _ssl_label("moco-v2")
        'imagenet-1k,self-supervised,moco'
    """
    return "imagenet-1k,self-supervised," + re.sub(r"-?v\d+$", "", method.lower())


def _ssl_resnets(table: dict) -> dict[str, Recipe]:
    return {model: _name_recipe(arch["timm"], "timm", _ssl_label(model))
            for model, arch in table["arch"].items()}


_EMMS_PRETRAINING = {"dino": _ssl_label("dino"), "mocov3": _ssl_label("moco-v3")}


def _emms(table: dict) -> dict[str, Recipe]:
    entries = tr.emms_entries(table)
    out = {}
    for model in table["arch"]:
        pre = _EMMS_PRETRAINING.get(model.split("_")[0], _IMAGENET)
        if model in entries:
            out[model] = _from_entry(entries[model], pre)
        else:
            out[model] = _missing("no buildable architecture", None, pre)
    return out


def _modelspider(table: dict) -> dict[str, Recipe]:
    out = {}
    for model, arch in table["arch"].items():
        src = arch["source_dataset"]
        pre = _IMAGENET if src.lower() == "imagenet" else f"{_IMAGENET},{src.lower()}"
        out[model] = _name_recipe(arch["timm"], "timm", pre)
    return out


_DATA = {"imagenet": "imagenet-1k", "imagenet22k": "imagenet-22k"}
_SSL = ("clusterfit", "deepclusterv2", "jigsaw", "moco", "npid", "pirl", "rotnet", "simclr", "swav")


def parc_labels(source: str) -> str:
    """Comma-separated pre-training labels of a PARC source key.

    Plain dataset names (the controlled models) map to themselves; ``<method>_<data>``
    keys to the data plus ``self-supervised`` / ``semi-supervised`` and the method;
    detectron2 keys ``<kind>_<c4|fpn>[_<data>]_<run id>`` to ``detectron2``, the kind and
    the data (COCO unless named). The run id is dropped: it names a checkpoint.

    Example:
        >>> parc_labels("mask-rcnn_fpn_lvis_144219035"), parc_labels("moco_imagenet")
        ('detectron2,mask-rcnn,lvis', 'imagenet-1k,self-supervised,moco')
    """
    parts = source.lower().split("_")
    kind = parts[0]
    if kind.endswith("-rcnn") or kind == "retinanet":
        named = [p for p in parts[1:] if not p.isdigit() and p not in ("c4", "fpn")]
        return ",".join(["detectron2", kind, *(named or ["coco"])])
    if len(parts) == 2 and parts[0] in (*_SSL, "semisup", "supervised"):
        method, data = parts
        data = _DATA.get(data, data)
        if method in _SSL:
            return f"{data},self-supervised,{method}"
        if method == "semisup":
            return f"{data},semi-supervised"
        return data
    return _DATA.get(source.lower(), source.lower())


def _parc(table: dict) -> dict[str, Recipe]:
    out = {}
    for model, arch in table["arch"].items():
        name, src = arch["torchvision"], arch["source_dataset"]
        pre = parc_labels(src)
        note = (" (detectron2's MSRA-style variant puts the stride in the 1x1 convolution)"
                if "detectron2" in pre else "")
        out[model] = _name_recipe(name, "torchvision" if name in ("alexnet", "googlenet")
                                  else "timm", pre, note=note)
    return out


def _stable_transfer(table: dict) -> dict[str, Recipe]:
    out = {}
    pre = _IMAGENET
    for model, arch in table["arch"].items():
        name = arch.get("timm_closest")
        if not name:
            out[model] = _missing(f"Keras {arch['keras']} has no timm or "
                                  "transformers architecture", family_of(model), pre)
            continue
        out[model] = _name_recipe(name, "timm", pre,
                                  note=f", closest to Keras {arch['keras']}")
    return out


def _transfergraph(table: dict) -> dict[str, Recipe]:
    entries, unresolved = tr.match_transfergraph(table)
    approx = _nearest_transfergraph(table, unresolved)
    out = {}
    for model, info in table["model_info"].items():
        family = info.get("model_type") or _class_prefix(info).lower() or None
        pre = info.get("pretrain_dataset")
        params = int(info["num_parameters"]) if info.get("num_parameters") else None
        if model in entries:
            rec = _from_entry(entries[model], pre,
                              note=f"; size variant whose parameter count equals the recorded "
                                   f"{params}")
        elif model in approx:
            key, cfg, n = approx[model]
            rec = Recipe(key, cfg, f"transformers {cfg['model_type']!r} config {cfg}; "
                                   f"approximate: nearest standard size ({n} parameters "
                                   f"built vs {params} recorded)", family, pre)
        else:
            rec = _missing(unresolved[model], family, pre, params)
        out[model] = Recipe(rec.arch_key, rec.source, rec.arch_source, family, pre, params,
                            rec.reason)
    return out


def _class_prefix(info: dict) -> str:
    return str(info.get("architectures", "")).strip("[]'\" ").split("For", 1)[0]


def _nearest_transfergraph(table: dict, unresolved: dict[str, str]
                           ) -> dict[str, tuple[str, dict, int]]:
    """For models without an exact size match: the nearest variant within the tolerance."""
    out = {}
    counts: dict[str, int | None] = {}
    for model in unresolved:
        info = table["model_info"][model]
        model_type = tr._HF_CLASS_TYPE.get(_class_prefix(info))
        target = int(info.get("num_parameters") or 0)
        if not model_type or target <= 0:
            continue
        image, labels = int(info.get("input_shape") or 224), int(info.get("num_labels") or 2)
        best = None
        for name, cfg in tr._variants(model_type, image).items():
            cfg = {**cfg, "num_labels": labels}
            key = json.dumps(cfg, sort_keys=True)
            if key not in counts:
                try:
                    counts[key] = _num_params(archi2vec.build(cfg))
                except archi2vec.UnsupportedArchitectureError:
                    counts[key] = None
            n = counts[key]
            if n is not None and (best is None or abs(n - target) < abs(best[2] - target)):
                best = (f"hf:{model_type}-{name}-{image}-labels{labels}", cfg, n)
        if best is not None and abs(best[2] - target) <= NEAREST_TOLERANCE * target:
            out[model] = best
    return out


def _num_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


RECIPES = {
    "sfda_supervised_finetune.json": _torchvision_imagenet,
    "rept_supervised_headonly.json": _torchvision_imagenet,
    "logme_tllib_supervised_finetune.json": _torchvision_imagenet,
    "sfda_selfsupervised_finetune.json": _ssl_resnets,
    "emms_vit_finetune.json": _emms,
    "modelspider_multisource_finetune.json": _modelspider,
    "parc_finetune.json": _parc,
    "stable_transfer_arch_selection.json": _stable_transfer,
    "transfergraph_hf_finetune.json": _transfergraph,
}


# ---------------------------------------------------------------------------------------
# building and embedding
# ---------------------------------------------------------------------------------------


def embed_architecture(source: Any, *, dim: int = DIM) -> dict[str, Any]:
    """Build ``source`` on the meta device, capture its graph and embed it.

    Returns:
        ``{"vector": (dim,) float32, "parameters": int, "method": "export" | "record",
        "nodes": int}``, or ``{"error": reason}`` when it cannot be built or traced.
    """
    try:
        if isinstance(source, str) and source.startswith("torchvision:"):
            source = _torchvision_model(source.split(":", 1)[1])
        g = archi2vec.graph(source, method=CAPTURE)
        return {"vector": archi2vec.embed_graph(g, dim=dim), "parameters": g.graph["num_params"],
                "method": g.graph["method"], "nodes": g.number_of_nodes()}
    except archi2vec.UnsupportedArchitectureError as exc:
        return {"error": exc.reason[:300]}


def build_side_info(*, tables: tuple[str, ...] = TABLES, dim: int = DIM) -> dict[str, Any]:
    """Side information for every model of ``tables`` (see the module docstring)."""
    recipes = {name: RECIPES[name](tr.load_table(name)) for name in tables}
    built: dict[str, dict[str, Any]] = {}
    keys = sorted({r.arch_key for rs in recipes.values() for r in rs.values() if r.arch_key})
    sources = {r.arch_key: r.source for rs in recipes.values() for r in rs.values() if r.arch_key}
    for i, key in enumerate(keys):
        LOG.info("[%d/%d] %s", i + 1, len(keys), key)
        built[key] = embed_architecture(sources[key], dim=dim)
    out: dict[str, dict[str, Any]] = {}
    for name, rs in recipes.items():
        out[name] = {}
        for model, r in rs.items():
            b = built.get(r.arch_key or "", {})
            row: dict[str, Any] = {
                "archi2vec": None, "parameters": r.parameters, "family": r.family,
                "pretraining": r.pretraining, "arch_source": r.arch_source,
                "arch_key": r.arch_key,
            }
            if "vector" in b:
                row["archi2vec"] = [round(float(v), 6) for v in b["vector"]]
                row["parameters"] = r.parameters or int(b["parameters"])
                row["graph_capture"] = b["method"]
            else:
                row["reason"] = r.reason or b.get("error", "not built")
            out[name][model] = row
    return {"embedder_version": archi2vec.EMBEDDER_VERSION, "dim": dim, "graph_capture": CAPTURE,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source_folder": str(tr.TABLES), "nearest_tolerance": NEAREST_TOLERANCE,
            "skipped": SKIPPED, "tables": out}


def dumps(report: dict) -> str:
    """JSON with each vector on one line (readable diffs)."""
    text = json.dumps(report, indent=1)
    return re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]",
                  lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def load_side_info(path: Path = OUTPUT, *, rebuild: bool = False) -> dict[str, Any]:
    """The cached side information, rebuilt when missing, stale or ``rebuild`` is set.

    Stale = made by another ``archi2vec.EMBEDDER_VERSION`` or for other tables.
    """
    if path.exists() and not rebuild:
        report = json.loads(path.read_text(encoding="utf-8"))
        if (report.get("embedder_version") == archi2vec.EMBEDDER_VERSION
                and report.get("graph_capture") == CAPTURE
                and set(report.get("tables", {})) == set(TABLES)):
            return report
        LOG.info("%s is stale (embedder %s, now %s): rebuilding", path,
                 report.get("embedder_version"), archi2vec.EMBEDDER_VERSION)
    report = build_side_info()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(report) + "\n", encoding="utf-8")
    return report


def vector_of(row: dict[str, Any]) -> np.ndarray | None:
    """The archi2vec vector of one model row as float32, or None."""
    return None if row.get("archi2vec") is None else np.asarray(row["archi2vec"], np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    logging.getLogger("archi2vec").setLevel(logging.WARNING)
    report = load_side_info(args.out, rebuild=args.force)
    for name, rows in report["tables"].items():
        ok = sum(r["archi2vec"] is not None for r in rows.values())
        LOG.info("%s: %d models, %d with an archi2vec vector", name, len(rows), ok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
