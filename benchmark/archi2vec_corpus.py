"""The archi2vec benchmark corpus: real vision architectures built offline, with families.

Sources (no weights, nothing downloaded):

* timm's registry (``pretrained=False``): for each of timm's model modules (one source file
  per architecture family, e.g. ``resnet``, ``convnext``, ``vision_transformer``), up to
  ``PER_MODULE`` names spread evenly over its sorted list, which yields size variants;
  family = the timm module.
* transformers: the default config of every model type in the image-classification auto
  mapping plus the vision backbones, and size variants of the common ones; family = the
  timm module implementing the same design where there is one (``vit`` ->
  ``vision_transformer``, ``bit`` -> ``resnetv2`` …, see ``HF_FAMILY``), else the type.
* torchvision: GoogLeNet (in the SFDA table, absent from timm).

Every entry is processed once and cached as a pickle under the cache folder, so the build
is resumable (``python benchmark/archi2vec_corpus.py``); a failure is cached with its reason.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import pickle
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch

import archi2vec
from archi2vec._compat import import_timm, import_transformers
from archi2vec._timeout import call_with_timeout

LOG = logging.getLogger("archi2vec.bench.corpus")

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "archi2vec-bench"
PER_MODULE = 3
EXPORT_EVERY = 8  # every 8th corpus entry is also captured with torch.export
TIMING_MODELS = ("timm:vit_base_patch16_224", "timm:resnet50", "timm:convnext_tiny",
                 "timm:swin_tiny_patch4_window7_224")
TIMEOUT = 90.0

HF_FAMILY = {
    "vit": "vision_transformer", "vit_msn": "vision_transformer", "ijepa": "vision_transformer",
    "dinov2": "vision_transformer", "dinov2_with_registers": "vision_transformer",
    "clip": "vision_transformer", "metaclip_2": "vision_transformer",
    "siglip": "vision_transformer", "siglip2": "vision_transformer", "deit": "deit",
    "beit": "beit", "data2vec-vision": "beit", "swin": "swin_transformer",
    "donut-swin": "swin_transformer", "maskformer-swin": "swin_transformer",
    "swinv2": "swin_transformer_v2", "convnext": "convnext", "convnextv2": "convnext",
    "dinov3_convnext": "convnext", "dinov3_vit": "eva", "resnet": "resnet", "bit": "resnetv2",
    "efficientnet": "efficientnet", "mobilenet_v1": "efficientnet",
    "mobilenet_v2": "efficientnet", "levit": "levit", "poolformer": "metaformer",
    "pvt_v2": "pvt_v2", "regnet": "regnet", "focalnet": "focalnet", "hiera": "hiera",
    "hgnet_v2": "hgnet", "mobilevit": "mobilevit", "mobilevitv2": "mobilevit",
    "pp_lcnet": "mobilenetv3", "swiftformer": "swiftformer",
}
HF_EXTRA_TYPES = ("dinov3_vit", "dinov3_convnext", "vitdet", "maskformer-swin")
HF_SKIP = {"timm_wrapper": "wraps a timm model (covered by the timm entries)"}

_VIT = {"tiny": (192, 12, 3), "small": (384, 12, 6), "large": (1024, 24, 16)}
HF_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    **{t: {k: {"hidden_size": h, "num_hidden_layers": n, "num_attention_heads": a,
               "intermediate_size": 4 * h} for k, (h, n, a) in _VIT.items()}
       for t in ("vit", "deit", "dinov2", "beit")},
    "swin": {"small": {"depths": [2, 2, 18, 2]},
             "base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32]}},
    "swinv2": {"small": {"depths": [2, 2, 18, 2]}},
    "convnext": {"small": {"depths": [3, 3, 27, 3]},
                 "base": {"depths": [3, 3, 27, 3], "hidden_sizes": [128, 256, 512, 1024]},
                 "large": {"depths": [3, 3, 27, 3], "hidden_sizes": [192, 384, 768, 1536]}},
    "convnextv2": {"base": {"depths": [3, 3, 27, 3], "hidden_sizes": [128, 256, 512, 1024]}},
    "resnet": {"18": {"layer_type": "basic", "depths": [2, 2, 2, 2],
                      "hidden_sizes": [64, 128, 256, 512]},
               "34": {"layer_type": "basic", "depths": [3, 4, 6, 3],
                      "hidden_sizes": [64, 128, 256, 512]},
               "101": {"depths": [3, 4, 23, 3]}},
    # the default EfficientNetConfig is B7; B3 as in google/efficientnet-b3's config
    "efficientnet": {"b3": {"width_coefficient": 1.2, "depth_coefficient": 1.4,
                            "image_size": 300, "hidden_dim": 1536, "dropout_rate": 0.3}},
    "mobilenet_v2": {"050": {"depth_multiplier": 0.5}, "140": {"depth_multiplier": 1.4}},
    "pvt": {"small": {"depths": [3, 4, 6, 3]}, "medium": {"depths": [3, 4, 18, 3]}},
    "poolformer": {"s24": {"depths": [4, 4, 12, 4]},
                   "m36": {"depths": [6, 6, 18, 6], "hidden_sizes": [96, 192, 384, 768]}},
    "data2vec-vision": {"large": {"hidden_size": 1024, "num_hidden_layers": 24,
                                  "num_attention_heads": 16, "intermediate_size": 4096}},
}


@dataclass(frozen=True)
class Entry:
    """One architecture: ``key`` is unique, ``source`` is what archi2vec.build gets."""

    key: str
    family: str
    origin: str  # "timm" | "transformers" | "torchvision"
    source: Any = field(compare=False, hash=False)


def timm_entries(per_module: int = PER_MODULE) -> list[Entry]:
    """Up to ``per_module`` evenly spread names from each timm module, family = module."""
    timm = import_timm()
    out = []
    for module in sorted(timm.list_modules()):
        names = sorted(timm.list_models(module=module))
        if len(names) > per_module:
            step = (len(names) - 1) / (per_module - 1)
            names = [names[round(i * step)] for i in range(per_module)]
        out += [Entry(f"timm:{n}", module, "timm", n) for n in names]
    return out


def hf_entries() -> list[Entry]:
    """Default config of every transformers vision type, plus the size variants above."""
    import_transformers()
    from transformers.models.auto import modeling_auto

    types = sorted(set(modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)
                   | set(HF_EXTRA_TYPES))
    out = []
    for model_type in types:
        if model_type in HF_SKIP:
            continue
        family = HF_FAMILY.get(model_type, f"hf-{model_type}")
        out.append(Entry(f"hf:{model_type}", family, "transformers", {"model_type": model_type}))
        for variant, overrides in HF_VARIANTS.get(model_type, {}).items():
            out.append(Entry(f"hf:{model_type}-{variant}", family, "transformers",
                             {"model_type": model_type, **overrides}))
    return out


def torchvision_entries() -> list[Entry]:
    """torchvision architectures that timm lacks but the published tables use."""
    return [Entry("torchvision:googlenet", "googlenet", "torchvision", "googlenet")]


def corpus_entries(per_module: int = PER_MODULE) -> list[Entry]:
    """The whole corpus, in a fixed order."""
    return timm_entries(per_module) + hf_entries() + torchvision_entries()


def _torchvision_model(name: str) -> torch.nn.Module:
    import torchvision  # archi2vec._compat made it importable

    with torch.device("meta"):
        if name == "googlenet":
            model = torchvision.models.googlenet(weights=None, init_weights=False,
                                                 aux_logits=False)
        else:
            model = torchvision.models.get_model(name, weights=None)
    return model.eval()


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def autograd_graph(model: torch.nn.Module, g: nx.DiGraph) -> nx.DiGraph:
    """The Fennec paper's graph: a forward pass, then the autograd graph from the output.

    Nodes are ``grad_fn`` class names (``ConvolutionBackward0`` …) and ``None`` for the
    parameter leaves (AccumulateGrad), edges go producer -> consumer, as in Fennec's
    ``archi_graph.py``. Run on meta tensors: the graph does not depend on weight values.
    """
    shape = g.graph["input_shape"]
    x = torch.empty((1, *shape), device="meta")
    kwargs = {"pixel_values": x} if getattr(model, "main_input_name", None) else {}
    args = () if kwargs else (x,)
    with torch.enable_grad():
        out = model(*args, **kwargs)
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()[0]
    elif isinstance(out, (tuple, list)):
        out = out[0]
    dg = nx.DiGraph()
    ids: dict[Any, int] = {}
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in ids:
            continue
        name = type(fn).__name__
        ids[fn] = len(ids)
        dg.add_node(ids[fn], feature="None" if name == "AccumulateGrad" else name)
        stack.extend(nxt for nxt, _ in fn.next_functions if nxt is not None)
    for fn, i in ids.items():
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                dg.add_edge(ids[nxt], i)  # producer -> consumer
    return dg


def process(entry: Entry, cache: Path, *, timeout: float = TIMEOUT,
            export: bool = False) -> dict:
    """Build, capture, embed and time one entry; cache the result.

    The graph is always captured with the eager recorder (``method="record"``), which is the
    one the corpus statistics use; with ``export=True`` it is also captured with
    ``torch.export`` so that the two captures can be compared (the export-vs-record check).
    A cached record without an export capture is redone when ``export=True``.
    """
    file = cache / (entry.key.replace("/", "__").replace(":", "--") + ".pkl")
    if file.exists():
        with open(file, "rb") as fh:
            cached = pickle.load(fh)
        if not export or "error" in cached or "graph_export" in cached:
            return cached
    rec: dict[str, Any] = {"key": entry.key, "family": entry.family, "origin": entry.origin,
                           "source": entry.source}
    try:
        rss0 = _rss_mib()
        t0 = time.perf_counter()
        if entry.origin == "torchvision":
            model = _torchvision_model(entry.source)
        else:
            model = archi2vec.build(entry.source)
        t1 = time.perf_counter()
        g = archi2vec.graph(model, method="record", timeout=timeout)
        t2 = time.perf_counter()
        archi2vec.embed(g)
        t3 = time.perf_counter()
        rec.update(graph=g, time_build=t1 - t0, time_graph=t2 - t1, time_embed=t3 - t2,
                   rss_delta_mib=_rss_mib() - rss0, num_params=g.graph["num_params"])
        if export:
            t4 = time.perf_counter()
            try:
                g_exp = archi2vec.graph(model, method="export", timeout=timeout)
                rec.update(graph_export=g_exp, time_graph_export=time.perf_counter() - t4,
                           export_method=g_exp.graph["method"],
                           export_error=g_exp.graph.get("export_error"))
            except archi2vec.UnsupportedArchitectureError as exc:
                rec["export_error"] = exc.reason[:300]
        try:
            rec["autograd_graph"] = call_with_timeout(lambda: autograd_graph(model, g),
                                                      timeout, model_id=entry.key)
        except Exception as exc:  # baseline failure is recorded, not fatal
            rec["autograd_error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    except archi2vec.UnsupportedArchitectureError as exc:
        rec["error"] = exc.reason[:500]
    except Exception as exc:  # e.g. a model whose constructor is broken
        rec["error"] = f"{exc.__class__.__name__}: {str(exc)[:400]}"
    rec["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tmp = file.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(rec, fh)
    tmp.replace(file)
    gc.collect()
    return rec


def export_keys(entries: list[Entry]) -> set[str]:
    """The entries also captured with torch.export: every ``EXPORT_EVERY``-th one."""
    return {e.key for e in entries[::EXPORT_EVERY]}


def build_all(entries: list[Entry], cache: Path, exports: set[str] | None = None
              ) -> list[dict]:
    """Process every entry (cached ones are read back), logging progress."""
    cache.mkdir(parents=True, exist_ok=True)
    records = []
    for i, entry in enumerate(entries):
        t = time.perf_counter()
        rec = process(entry, cache, export=exports is not None and entry.key in exports)
        LOG.info("[%d/%d] %s %s %.1fs", i + 1, len(entries), entry.key,
                 "FAILED " + rec["error"][:120] if "error" in rec else "ok",
                 time.perf_counter() - t)
        records.append(rec)
    return records


def main(argv: list[str] | None = None) -> int:
    """Build (or resume) the corpus cache. ``--only-list`` prints the entries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--only-list", action="store_true")
    parser.add_argument("--reverse", action="store_true",
                        help="walk the list backwards (a second worker on the same cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    logging.getLogger("archi2vec").setLevel(logging.WARNING)
    entries = corpus_entries()
    if args.only_list:
        for e in entries:
            sys.stdout.write(f"{e.key}\t{e.family}\n")
        return 0
    exports = export_keys(entries)
    build_all(entries[::-1] if args.reverse else entries, args.cache, exports)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
