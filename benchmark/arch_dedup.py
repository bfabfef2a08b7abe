"""Identical architectures embedded once: the share of duplicates and the throughput gain.

Builds a local folder hub in a temporary directory that looks like the Hub's long tail:
a few base architectures — tiny real-type configs from fennec's zoo (``zoo/hub``), default
transformers configs (ViT-Base, ResNet-50, ConvNeXt-T) and timm Hub configs (with their
``pretrained_cfg`` and ``label_names``) — and many fine-tunes of each that differ from
their base only as real fine-tunes do: new ``id2label``/``label2id`` (or ``label_names``),
their own ``_name_or_path``, another ``transformers_version`` or dtype, a
``finetuning_task``, and often another number of labels (drawn from the counts common on
the Hub: 2, 3, 5, 10 … or the base's own). Then it reindexes the hub twice into fresh
catalogs with archi2vec (the default sandboxed embedder, ``record`` capture): with
``dedup=True`` (each architecture key built once) and ``dedup=False`` (every model built),
and checks that both give the same vectors.

Run: ``python benchmark/arch_dedup.py [--models 200] [--bases 10] [--seed 0]``.
Results: ``benchmark/results/arch_dedup.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's fennec and archi2vec
RESULTS = REPO / "benchmark" / "results"

#: Label counts of fine-tunes, weighted roughly as on the Hub (binary and small tasks
#: dominate); None keeps the base's head.
LABEL_COUNTS = (2, 2, 2, 2, 3, 3, 4, 5, 5, 7, 10, 10, 10, 20, 100, None, None)

#: Zoo configs used as bases (real model types at tiny sizes, as published by the zoo).
ZOO_BASES = ("photolab/vit-tiny-photos", "photolab/convnext-small-photos",
             "photolab/swin-small-photos", "photolab/resnet-tiny-photos",
             "photolab/deit-tiny-photos", "shapeworks/mobilenetv2-tiny-shapes")
#: timm Hub configs used as bases (as ``timm/<name>`` repositories publish them).
TIMM_BASES = ("resnet18.a1_in1k", "efficientnet_b0.ra_in1k")
#: transformers model types whose default config (the base-size model) is a base.
HF_BASES = ("vit", "resnet", "convnext")


def bases(n: int) -> list[tuple[str, str, dict]]:
    """``(name, library, config)`` for ``n`` bases, mixing the three sources."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    pools: list[list[tuple[str, str, dict]]] = [[], [], []]
    for path in ZOO_BASES:
        cfg = json.loads((REPO / "zoo" / "hub" / path / "config.json").read_text())
        pools[0].append((path.replace("/", "-"), "transformers", cfg))
    for name in TIMM_BASES:
        arch = name.split(".", 1)[0]
        pools[1].append((f"timm-{arch}", "timm", {
            "architecture": name, "num_classes": 1000, "num_features": 1280 if "efficientnet" in name else 512,
            "global_pool": "avg", "label_names": [f"n{i:08d}" for i in range(1000)],
            "pretrained_cfg": {"tag": name.split(".", 1)[1], "custom_load": False,
                               "input_size": [3, 224, 224], "crop_pct": 0.95, "num_classes": 1000,
                               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "hf_hub_id": f"timm/{name}", "license": "apache-2.0"}}))
    for model_type in HF_BASES:
        cfg = CONFIG_MAPPING[model_type]().to_dict()
        cfg["id2label"] = {str(i): f"class_{i}" for i in range(1000)}
        pools[2].append((f"hf-{model_type}-base", "transformers", json.loads(json.dumps(cfg, default=str))))
    out: list[tuple[str, str, dict]] = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop(0))
    return out


def finetune(base: dict, library: str, rng: random.Random, name: str) -> dict:
    """A fine-tune of ``base`` as a Hub user would save it."""
    cfg = copy.deepcopy(base)
    n = rng.choice(LABEL_COUNTS)
    if library == "timm":
        if n is not None:
            cfg["num_classes"] = n
            cfg["pretrained_cfg"] = dict(cfg["pretrained_cfg"], num_classes=n)
        cfg["label_names"] = [f"{name}-{i}" for i in range(cfg["num_classes"])]
        cfg["pretrained_cfg"] = dict(cfg["pretrained_cfg"], hf_hub_id=name, tag="ft",
                                     license=rng.choice(("mit", "apache-2.0", "cc-by-4.0")))
        return cfg
    count = n if n is not None else len(cfg.get("id2label") or {}) or 2
    labels = [f"{name.split('/')[-1]}-{i}" for i in range(count)]
    cfg.update({"id2label": {str(i): lab for i, lab in enumerate(labels)},
                "label2id": {lab: i for i, lab in enumerate(labels)}, "_name_or_path": name,
                "transformers_version": rng.choice(("4.44.2", "4.57.1", "5.1.0")),
                "finetuning_task": "image-classification"})
    cfg.pop("dtype", None)
    cfg["torch_dtype"] = rng.choice(("float32", "float16", "bfloat16"))
    if rng.random() < 0.5:
        cfg["num_labels"] = count
    return cfg


def build_hub(root: Path, *, models: int, n_bases: int, seed: int) -> list[dict]:
    """Write the bases and fine-tunes up to ``models`` repositories; returns what was written."""
    rng = random.Random(seed)
    chosen = bases(n_bases)
    written = []
    t0 = 1_700_000_000
    for i in range(models):
        base_name, library, base = chosen[i % len(chosen)]
        if i < len(chosen):
            repo_id, config = f"base/{base_name}", base
        else:
            repo_id = f"user{rng.randrange(10_000):04d}/{base_name}-ft{i}"
            config = finetune(base, library, rng, repo_id)
        folder = root / repo_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "README.md").write_text(f"---\npipeline_tag: image-classification\nlibrary_name: "
                                          f"{library}\n---\n\n# {repo_id}\n")
        (folder / ".hub.json").write_text(json.dumps({"createdAt": t0 + i, "lastModified": t0 + i}))
        written.append({"repo_id": repo_id, "base": base_name, "library": library})
    return written


def run(hub_dir: Path, home: Path, *, dedup: bool, timeout: float) -> dict:
    """One full reindex of ``hub_dir`` into a fresh catalog under ``home``."""
    from fennec import constants
    from fennec.catalog import Catalog
    from fennec.hub import LocalHub
    from fennec.reindex import Archi2VecEmbedder, reindex

    with Archi2VecEmbedder(method="record", timeout=timeout) as embedder, \
            Catalog(home / constants.CATALOG_FILE) as cat:
        t, cpu = time.perf_counter(), time.process_time()
        summary = reindex(hub=LocalHub(hub_dir), catalog=cat, embedder=embedder, dedup=dedup, batch_size=16)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        ids, vectors = cat.vectors()
        unsupported = sorted(m.repo_id for m in cat.models(status="unsupported"))
    return {"summary": summary, "wall_s": wall, "cpu_s": cpu, "ids": ids, "vectors": vectors,
            "unsupported": unsupported}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=200, help="repositories in the hub (bases included)")
    p.add_argument("--bases", type=int, default=10, help="base architectures (at most 11)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2,
                   help="runs of each mode, alternating (the fastest of each is reported)")
    p.add_argument("--timeout", type=float, default=120.0, help="archi2vec budget per model, s")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.models < 1 or args.bases < 1 or args.repeats < 1:
        p.error("--models, --bases and --repeats must be >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import numpy as np

    from archi2vec import architecture_config, architecture_key

    work = Path(tempfile.mkdtemp(prefix="fennec-dedup-"))
    try:
        written = build_hub(work / "hub", models=args.models, n_bases=args.bases, seed=args.seed)
        configs = [(json.loads((work / "hub" / w["repo_id"] / "config.json").read_text()), w["library"])
                   for w in written]
        keys = {architecture_key(c, library=lib) for c, lib in configs}
        # for comparison only: the keys if the classifier head were not part of the architecture
        headless = {json.dumps({k: v for k, v in architecture_config(c, library=lib).items()
                                if k not in ("num_labels", "num_classes")}, sort_keys=True)
                    for c, lib in configs}
        print(f"{len(written)} repositories, {len({w['base'] for w in written})} bases, "
              f"{len(keys)} distinct architecture keys", flush=True)
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for i in range(args.repeats):
            for dedup in (True, False):  # alternating, so that the machine's load hits both
                r = run(work / "hub", work / f"home-{dedup}-{i}", dedup=dedup, timeout=args.timeout)
                runs[dedup].append(r)
                print(f"dedup={dedup}: {r['summary'].line()}", flush=True)
        on, off = (min(runs[d], key=lambda r: r["wall_s"]) for d in (True, False))
        same = all(r["ids"] == off["ids"] and r["vectors"].shape == off["vectors"].shape
                   and bool(np.array_equal(r["vectors"], off["vectors"]))
                   and r["unsupported"] == off["unsupported"] for r in runs[True] + runs[False])

        def rate(r: dict, seconds: str) -> float:
            return round(r["summary"].processed / r[seconds] * 60, 1)

        out = {
            "generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python benchmark/arch_dedup.py", *(sys.argv[1:] if argv is None else argv)]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
            "load_average_at_end": [round(v, 1) for v in os.getloadavg()],
            "models": len(written), "bases": len({w["base"] for w in written}),
            "architecture_keys": len(keys),
            "duplicate_share": round(1 - len(keys) / len(written), 3),
            "duplicate_share_without_head": round(1 - len(headless) / len(written), 3),
            "dedup": {"built": on["summary"].built, "reused": on["summary"].reused,
                      "added": on["summary"].added, "unsupported": on["summary"].unsupported,
                      "failed": on["summary"].failed, "wall_s": round(on["wall_s"], 1),
                      "models_per_min": rate(on, "wall_s")},
            "no_dedup": {"built": off["summary"].built, "added": off["summary"].added,
                         "unsupported": off["summary"].unsupported, "failed": off["summary"].failed,
                         "wall_s": round(off["wall_s"], 1), "models_per_min": rate(off, "wall_s")},
            "all_wall_s": {"dedup": [round(r["wall_s"], 1) for r in runs[True]],
                           "no_dedup": [round(r["wall_s"], 1) for r in runs[False]]},
            "speedup_wall": round(off["wall_s"] / on["wall_s"], 2),
            "vectors_identical": same,
        }
        print(json.dumps(out, indent=1), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "arch_dedup.json").write_text(json.dumps(out, indent=1) + "\n")
        d, n = out["dedup"], out["no_dedup"]
        md = ["# Identical architectures embedded once", "",
              f"Generated {out['generated_utc']} by `{out['command']}`.", "",
              f"- hub: {out['models']} repositories over {out['bases']} base architectures (zoo, "
              "transformers default and timm Hub configs) and their fine-tunes, which differ "
              "in labels, names, versions, dtype and often the number of labels",
              f"- {out['architecture_keys']} distinct architecture keys: **{100 * out['duplicate_share']:.1f} %** "
              "of the models are duplicates of an architecture already built",
              f"- machine: {out['machine']}; load average at the end {out['load_average_at_end']}; "
              "archi2vec `record`, sandboxed worker (the default embedder)", "",
              "| run | built | reused | added | unsupported | failed | wall s | models/min |",
              "|---|---:|---:|---:|---:|---:|---:|---:|",
              f"| dedup | {d['built']} | {d['reused']} | {d['added']} | {d['unsupported']} | {d['failed']} | "
              f"{d['wall_s']} | **{d['models_per_min']}** |",
              f"| no dedup | {n['built']} | 0 | {n['added']} | {n['unsupported']} | {n['failed']} | "
              f"{n['wall_s']} | {n['models_per_min']} |", "",
              f"Fastest of {args.repeats} alternating runs of each mode (all wall times, s: "
              f"dedup {out['all_wall_s']['dedup']}, no dedup {out['all_wall_s']['no_dedup']}). "
              f"Speedup (wall clock): **{out['speedup_wall']}x**. Vectors and unsupported models "
              f"identical with and without dedup: **{same}**.", "",
              "The label counts are drawn from a Hub-like distribution, and the head size is part "
              "of the architecture (it changes archi2vec's vector), so a fine-tune is a duplicate "
              "when its base and its number of labels are both already built "
              f"(were the head left out of the vector, {100 * out['duplicate_share_without_head']:.1f} % "
              "would be). Wall-clock rates follow the shared machine's load, which other "
              "engineers' jobs set.", ""]
        (args.out / "arch_dedup.md").write_text("\n".join(md))
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
