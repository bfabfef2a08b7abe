"""Transfer usefulness: does archi2vec similarity predict how a new model fine-tunes?

Tables (``../shared/data/transfer-results/``), kept to the models whose architecture can be
built offline:

* ``sfda_supervised_finetune.json`` (11 x 11): the ``arch`` map's timm names, GoogLeNet
  from torchvision.
* ``emms_vit_finetune.json`` (13 x 11): timm names (MoCo-v3 ViT-S with ``num_heads=12``);
  PVT v1 tiny/small/medium from transformers' ``pvt`` config (depths 2-2-2-2, 3-4-6-3,
  3-4-18-3 as in the PVT paper).
* ``transfergraph_hf_finetune.json`` (180 x 13): only ``model_info`` is known (transformers
  class, parameter count, input size, label count), not the config. Each model gets the
  standard size variant of its class whose parameter count, built with its number of labels
  and input size, equals the recorded count exactly (``match_transfergraph``); models with
  no exact match are reported as unresolved, never guessed.

Protocol: leave one model out; predict its score on every dataset as the mean score of its
k most similar other models on that dataset (ties at the k-th similarity included), and
compare predicted with true scores per dataset by ``scipy.stats.weightedtau`` (defaults).
"Without archi2vec" is the plain mean over the other models, which is the same for every
held-out model, hence constant: its τ is undefined and reported as such; the similarity
baselines of the corpus benchmark are the meaningful comparisons.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import weightedtau

from archi2vec_corpus import Entry

LOG = logging.getLogger("archi2vec.bench.transfer")

TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "transfer-results"
K_NEIGHBOURS = 3
_PVT_DEPTHS = {"pvt_tiny": [2, 2, 2, 2], "pvt_small": [3, 4, 6, 3], "pvt_medium": [3, 4, 18, 3]}
_HF_CLASS_TYPE = {"ViT": "vit", "Swin": "swin", "ConvNext": "convnext", "Beit": "beit",
                  "DeiT": "deit", "Van": "van", "ResNet": "resnet",
                  "Data2VecVision": "data2vec-vision"}
# size variants tried for TransferGraph models (transformers' own checkpoint configs)
_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
              "large": (1024, 24, 16), "huge": (1280, 32, 16)}
_SWIN_SIZES = {"tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24]), "small": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
               "base": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
               "large": (192, [2, 2, 18, 2], [6, 12, 24, 48])}
_CONVNEXT_SIZES = {"tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
                   "small": ([3, 3, 27, 3], [96, 192, 384, 768]),
                   "base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
                   "large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
                   "xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048])}
_RESNET_SIZES = {"18": ("basic", [2, 2, 2, 2]), "34": ("basic", [3, 4, 6, 3]),
                 "50": ("bottleneck", [3, 4, 6, 3]), "101": ("bottleneck", [3, 4, 23, 3]),
                 "152": ("bottleneck", [3, 8, 36, 3])}


def load_table(name: str) -> dict:
    with open(TABLES / name, encoding="utf-8") as fh:
        return json.load(fh)


def sfda_entries(table: dict) -> dict[str, Entry]:
    out = {}
    for model, arch in table["arch"].items():
        if arch.get("timm"):
            out[model] = Entry(f"timm:{arch['timm']}", "", "timm", arch["timm"])
        elif arch.get("torchvision") == "googlenet":
            out[model] = Entry("torchvision:googlenet", "", "torchvision", "googlenet")
    return out


def emms_entries(table: dict) -> dict[str, Entry]:
    out = {}
    for model, arch in table["arch"].items():
        if arch.get("timm") and arch.get("timm_kwargs"):
            source = {"architecture": arch["timm"], "model_args": arch["timm_kwargs"]}
            out[model] = Entry(f"timm:{arch['timm']}+{json.dumps(arch['timm_kwargs'])}", "",
                               "timm", source)
        elif arch.get("timm"):
            out[model] = Entry(f"timm:{arch['timm']}", "", "timm", arch["timm"])
        elif model in _PVT_DEPTHS:
            depths = _PVT_DEPTHS[model]
            key = "hf:pvt" if model == "pvt_tiny" else f"hf:pvt-{model.split('_')[1]}"
            out[model] = Entry(key, "", "transformers", {"model_type": "pvt", "depths": depths})
    return out


def _variants(model_type: str, image: int) -> dict[str, dict[str, Any]]:
    base = {"model_type": model_type, "image_size": image}
    if model_type in ("vit", "deit", "beit", "data2vec-vision"):
        out = {}
        for size, (h, n, a) in _VIT_SIZES.items():
            for patch in (16, 32) if model_type == "vit" else (16,):
                out[f"{size}-p{patch}"] = {**base, "hidden_size": h, "num_hidden_layers": n,
                                           "num_attention_heads": a, "intermediate_size": 4 * h,
                                           "patch_size": patch}
        if model_type in ("beit", "data2vec-vision"):
            for v in out.values():
                v.update(use_relative_position_bias=True, use_mean_pooling=True,
                         use_absolute_position_embeddings=False, layer_scale_init_value=0.1)
        return out
    if model_type == "swin":
        return {f"{s}-w{w}": {**base, "embed_dim": e, "depths": d, "num_heads": h,
                              "window_size": w}
                for s, (e, d, h) in _SWIN_SIZES.items() for w in (7, 12)}
    if model_type == "convnext":
        return {s: {**base, "depths": d, "hidden_sizes": h} for s, (d, h) in _CONVNEXT_SIZES.items()}
    if model_type == "resnet":
        return {s: {**base, "layer_type": t, "depths": d,
                    "hidden_sizes": [64, 128, 256, 512] if t == "basic"
                    else [256, 512, 1024, 2048]} for s, (t, d) in _RESNET_SIZES.items()}
    return {}


def match_transfergraph(table: dict) -> tuple[dict[str, Entry], dict[str, str]]:
    """Entries for TransferGraph models with an exact parameter-count match; reasons else."""
    import archi2vec

    cache: dict[str, int | str] = {}
    out, unresolved = {}, {}
    for model, info in table["model_info"].items():
        cls = str(info.get("architectures", "")).strip("[]'\" ")
        prefix = cls.split("For", 1)[0]
        model_type = _HF_CLASS_TYPE.get(prefix)
        image = int(info.get("input_shape") or 224)
        labels = int(info.get("num_labels") or 2)
        target = int(info.get("num_parameters") or 0)
        candidates = _variants(model_type, image) if model_type else {}
        if not candidates:
            unresolved[model] = (f"class {cls or '?'} ({model_type or 'unknown type'}) cannot be "
                                 "built by this transformers version" if model_type == "van"
                                 or not model_type else f"no size variants for {model_type}")
            continue
        found = None
        for name, cfg in candidates.items():
            cfg = {**cfg, "num_labels": labels}
            key = json.dumps(cfg, sort_keys=True)
            if key not in cache:
                try:
                    m = archi2vec.build(cfg)
                    n = sum(p.numel() for p in m.parameters())
                    if "WithTeacher" in cls:  # a second (distillation) head of the same size
                        n += m.classifier.weight.numel() + m.classifier.bias.numel()
                    cache[key] = n
                except archi2vec.UnsupportedArchitectureError as exc:
                    cache[key] = exc.reason
            if cache[key] == target:
                found = (name, cfg)
                break
        if found is None:
            unresolved[model] = f"no {model_type} size variant has exactly {target} parameters"
            continue
        name, cfg = found
        out[model] = Entry(f"hf:{model_type}-{name}-{image}-labels{labels}", "",
                           "transformers", cfg)
    return out, unresolved


def predict_knn(scores: np.ndarray, sim: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Leave-one-out predictions (M, D): mean over each model's k most similar others.

    ``scores`` may hold NaN (missing cells); neighbours are chosen per dataset among the
    models with a score there. Ties at the k-th similarity are all included.
    """
    m, d = scores.shape
    pred = np.full((m, d), np.nan)
    for i in range(m):
        for j in range(d):
            avail = [o for o in range(m) if o != i and not np.isnan(scores[o, j])]
            if np.isnan(scores[i, j]) or not avail:
                continue
            s = sim[i, avail]
            kth = np.sort(s)[::-1][min(k, len(s)) - 1]
            chosen = [o for o, v in zip(avail, s, strict=True) if v >= kth]
            pred[i, j] = float(np.mean(scores[chosen, j]))
    return pred


def tau_per_dataset(scores: np.ndarray, pred: np.ndarray, datasets: list[str]
                    ) -> dict[str, float | None]:
    """scipy.stats.weightedtau(true, predicted) per dataset; None when undefined."""
    out: dict[str, float | None] = {}
    for j, name in enumerate(datasets):
        ok = ~np.isnan(scores[:, j]) & ~np.isnan(pred[:, j])
        if ok.sum() < 3 or np.ptp(pred[ok, j]) == 0:
            out[name] = None
            continue
        tau = weightedtau(scores[ok, j], pred[ok, j]).statistic
        out[name] = None if np.isnan(tau) else float(tau)
    return out


def score_matrix(table: dict, models: list[str]) -> tuple[np.ndarray, list[str]]:
    datasets = list(table["results"])
    out = np.full((len(models), len(datasets)), np.nan)
    for j, ds in enumerate(datasets):
        for i, m in enumerate(models):
            v = table["results"][ds].get(m)
            if v is not None:
                out[i, j] = float(v)
    return out, datasets
