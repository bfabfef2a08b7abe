"""archi2vec quality benchmark: family retrieval, speed and memory, transfer usefulness.

Run (resumable; the corpus cache lives in the git-ignored ``.cache/archi2vec-bench``)::

    nice python benchmark/archi2vec_quality.py            # build/resume, evaluate, write
    nice python benchmark/archi2vec_quality.py --timing   # also time the 4 reference models

Writes ``benchmark/results/archi2vec_quality.{json,md}`` and ``archi2vec_corpus_tsne.png``.

* Corpus: ``archi2vec_corpus.corpus_entries()`` (timm registry + transformers configs +
  GoogLeNet), each with a family label. Graphs are captured with the eager recorder
  (``method="record"``); every 8th entry is also captured with ``torch.export`` and the
  two vectors compared, which tells whether the numbers hold for the default method too.
* Quality: leave-one-out 1-NN family accuracy (ties counted in expectation) and mAP of
  family retrieval, over models whose family has at least two members, for archi2vec,
  its two halves (WL block alone, statistics alone), and the baselines of
  ``archi2vec_baselines`` (operator histogram, parameter count, Fennec Graph2Vec and its
  KMeans one-hot). All methods are scored on the same models (those every method covers).
* Speed and memory: build + graph + embed per model (from the corpus run), and for ViT-B/16,
  ResNet-50, ConvNeXt-T and Swin-T in fresh processes (``--timing``): first call (includes
  torch.export's one-time start-up) and a second call, for both capture methods, with the
  resident-memory peak above the post-import baseline.
* Transfer: ``archi2vec_transfer`` (leave-one-model-out kNN prediction, weighted τ).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import archi2vec
import archi2vec_baselines as bl
import archi2vec_transfer as tr
from archi2vec._nodes import _ALIASES, simplify_graph
from archi2vec.embed import _STATS_DIM, _wl_block, embed_graph
from archi2vec_corpus import DEFAULT_CACHE, TIMING_MODELS, build_all, corpus_entries, export_keys

LOG = logging.getLogger("archi2vec.bench")
RESULTS = Path(__file__).resolve().parent / "results"
DIM = 256


def _vectors(records: list[dict], key: str = "graph") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    full, wl, stats = [], [], []
    for rec in records:
        g = rec[key]
        v = embed_graph(g, dim=DIM)
        full.append(v)
        wl.append(_wl_block(g, DIM - _STATS_DIM))
        stats.append(v[DIM - _STATS_DIM:])
    return np.array(full), np.array(wl), np.array(stats)


def _refresh(g):
    """Bring a cached graph to the current graph() output: op names as canonical_op spells
    them now (cached captures predate the ``upsample`` alias), then simplify_graph (a no-op
    on graphs that were simplified at capture time)."""
    g = g.copy()
    for _, d in g.nodes(data=True):
        op = d["op"]
        new = "upsample" if op.startswith("upsample") or op == "interpolate" else _ALIASES.get(op, op)
        if new != op:
            d["op"], d["label"] = new, new + d["label"][len(op):]
    return simplify_graph(g)


def _tfidf_similarity(graphs) -> np.ndarray:
    """Experiment, not shipped: the same WL features unhashed, TF-IDF weighted (sublinear tf,
    IDF fitted on this corpus, as Graph2Vec is fitted on it), cosine."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfTransformer

    from archi2vec.embed import wl_label_counts

    docs = [{f"{i}:{label}": n for i, counts in enumerate(wl_label_counts(g))
             for label, n in counts.items()} for g in graphs]
    x = TfidfTransformer(sublinear_tf=True).fit_transform(DictVectorizer().fit_transform(docs))
    return (x @ x.T).toarray()


def _retrieval(sims: dict[str, np.ndarray], families: list[str]) -> dict[str, dict]:
    out = {}
    for name, sim in sims.items():
        acc, n = bl.loo_nn_accuracy(sim, families)
        out[name] = {"nn_accuracy": round(acc, 4), "map": round(bl.mean_average_precision(sim, families), 4),
                     "queries": n}
    out["chance"] = {"nn_accuracy": round(bl.chance_nn_accuracy(families), 4), "map": None,
                     "queries": out[next(iter(sims))]["queries"]}
    return out


# the four reference architectures, from transformers' default configs (these defaults are
# ViT-B/16, ResNet-50, ConvNeXt-T and Swin-T) and from timm's registry
REFERENCE = {
    "ViT-B/16 (transformers config)": {"model_type": "vit"},
    "ResNet-50 (transformers config)": {"model_type": "resnet"},
    "ConvNeXt-T (transformers config)": {"model_type": "convnext"},
    "Swin-T (transformers config)": {"model_type": "swin"},
    **{f"{k.split(':', 1)[1]} (timm)": k.split(":", 1)[1] for k in TIMING_MODELS},
}


def _timing_subprocess(name) -> dict:
    code = f"""
import json, resource, time, sys
t0 = time.perf_counter()
import archi2vec
from archi2vec._compat import import_timm
import_timm()
t_import = time.perf_counter() - t0
import os
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss0 = rss()
out = {{"import_s": t_import, "runs": []}}
for method in ("export", "export", "record", "record"):
    t = time.perf_counter(); m = archi2vec.build({name!r})
    t1 = time.perf_counter(); g = archi2vec.graph(m, method=method)
    t2 = time.perf_counter(); v = archi2vec.embed(g)
    t3 = time.perf_counter()
    out["runs"].append({{"method": g.graph["method"], "build_s": t1 - t, "graph_s": t2 - t1,
                         "embed_s": t3 - t2, "total_s": t3 - t, "nodes": g.number_of_nodes()}})
out["peak_rss_above_import_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
out["import_peak_rss_mib"] = base / 1024
out["rss_growth_mib"] = rss() - rss0
out["num_params"] = g.graph["num_params"]
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, check=True)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["loadavg_after"] = os.getloadavg()[0]
    return data


def _fennec(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    t = time.perf_counter()
    emb = bl.graph2vec([r["autograd_graph"] for r in records])
    clusters = bl.fennec_clusters(emb)
    LOG.info("Graph2Vec + KMeans on %d graphs: %.1fs", len(records), time.perf_counter() - t)
    return emb, clusters


def _transfer(table_name: str, entries: dict, rec_by_key: dict, sims_for) -> dict:
    table = tr.load_table(table_name)
    models = [m for m, e in entries.items() if e.key in rec_by_key and "graph" in rec_by_key[e.key]]
    missing = {m: rec_by_key.get(e.key, {}).get("error", "not built")
               for m, e in entries.items() if m not in models}
    scores, datasets = tr.score_matrix(table, models)
    result = {"models": len(models), "datasets": datasets, "not_built": missing, "methods": {}}
    if len(models) < 3:
        return result
    for name, sim in sims_for([entries[m].key for m in models]).items():
        pred = tr.predict_knn(scores, sim)
        taus = tr.tau_per_dataset(scores, pred, datasets)
        vals = [v for v in taus.values() if v is not None]
        result["methods"][name] = {"tau_w": taus,
                                   "mean_tau_w": round(float(np.mean(vals)), 4) if vals else None}
    uniform = tr.tau_per_dataset(scores, tr.predict_knn(scores, np.zeros((len(models),) * 2),
                                                        k=len(models)), datasets)
    result["methods"]["mean_over_models"] = {"tau_w": uniform, "mean_tau_w": None,
                                             "note": "constant prediction: tau undefined"}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--timing", action="store_true", help="time the 4 reference models")
    parser.add_argument("--cached-only", action="store_true",
                        help="evaluate what is cached so far, build nothing (a dry run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    logging.getLogger("archi2vec").setLevel(logging.WARNING)
    logging.getLogger("archi2vec.bench").setLevel(logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)

    entries = corpus_entries()
    if args.cached_only:
        entries = [e for e in entries if _cache_file(args.cache, e).exists()]
    records = build_all(entries, args.cache, None if args.cached_only else export_keys(entries))
    tables = {"sfda_supervised_finetune.json": tr.sfda_entries(tr.load_table("sfda_supervised_finetune.json")),
              "emms_vit_finetune.json": tr.emms_entries(tr.load_table("emms_vit_finetune.json"))}
    tg_entries, tg_unresolved = tr.match_transfergraph(tr.load_table("transfergraph_hf_finetune.json"))
    tables["transfergraph_hf_finetune.json"] = tg_entries
    extra = {e.key: e for t in tables.values() for e in t.values()}
    extra_list = [e for _, e in sorted(extra.items())]
    if args.cached_only:
        extra_list = [e for e in extra_list if _cache_file(args.cache, e).exists()]
    extra_records = build_all(extra_list, args.cache)
    rec_by_key = {r["key"]: r for r in records + extra_records}
    for rec in rec_by_key.values():
        if "graph_record" in rec:  # first cache layout: export as "graph", recorder beside it
            rec["graph_export"], rec["graph"] = rec["graph"], rec.pop("graph_record")
            rec["time_graph_export"] = rec["time_graph"]
            rec["time_graph"] = rec.pop("time_graph_record")
        for key in ("graph", "graph_export"):
            if key in rec:
                rec[key] = _refresh(rec[key])

    ok = [r for r in records if "graph" in r]
    failed = {r["key"]: r["error"] for r in records if "error" in r}
    common = [r for r in ok if "autograd_graph" in r]
    families = [r["family"] for r in common]
    LOG.info("corpus %d entries: %d built, %d failed, %d with every method",
             len(records), len(ok), len(failed), len(common))

    # embeddings for every built graph (corpus + transfer), re-timed with this version
    all_recs = {r["key"]: r for r in ok + [r for r in extra_records if "graph" in r]}
    vec, embed_by = {}, {}
    for key, rec in all_recs.items():
        t = time.perf_counter()
        vec[key] = embed_graph(rec["graph"], dim=DIM)
        embed_by[key] = time.perf_counter() - t
    embed_s = list(embed_by.values())
    fennec_recs = [r for r in all_recs.values() if "autograd_graph" in r]
    g2v, clusters = _fennec(fennec_recs)
    g2v_by = {r["key"]: g2v[i] for i, r in enumerate(fennec_recs)}
    cl_by = {r["key"]: clusters[i] for i, r in enumerate(fennec_recs)}
    ophist_all = bl.op_histograms([r["graph"] for r in all_recs.values()])
    oph_by = dict(zip(all_recs, ophist_all, strict=True))

    def sims_for(keys: list[str]) -> dict[str, np.ndarray]:
        out = {"archi2vec": bl.cosine_matrix(np.array([vec[k] for k in keys])),
               "op_histogram": bl.cosine_matrix(np.array([oph_by[k] for k in keys])),
               "param_count": bl.param_similarity(np.array([all_recs[k]["num_params"] for k in keys]))}
        if all(k in g2v_by for k in keys):
            out["fennec_graph2vec"] = bl.cosine_matrix(np.array([g2v_by[k] for k in keys]))
            out["fennec_cluster_onehot"] = bl.onehot_similarity(np.array([cl_by[k] for k in keys]))
        return out

    keys = [r["key"] for r in common]
    sims = sims_for(keys)
    _, wl, st = _vectors(common)
    sims["archi2vec_wl_only"] = bl.cosine_matrix(wl)
    sims["archi2vec_stats_only"] = bl.cosine_matrix(st)
    sims["wl_tfidf_fitted"] = _tfidf_similarity([rec_by_key[k]["graph"] for k in keys])
    quality = _retrieval(sims, families)

    exp = [r for r in ok if "graph_export" in r]
    agreement = {
        "models": len(exp),
        "export_fell_back_to_recorder": sum(r["graph_export"].graph["method"] != "export" for r in exp),
        "cosine_export_vs_record": _summary([float(embed_graph(r["graph_export"]) @ vec[r["key"]]) for r in exp]),
        "graph_export_s": _summary([r["time_graph_export"] for r in exp]),
        "graph_record_s": _summary([r["time_graph"] for r in exp]),
    }
    export_failures = {r["key"]: r["export_error"] for r in ok if r.get("export_error") and "graph_export" not in r}
    timing = {"corpus": {k: _summary([r[k] for r in ok]) for k in ("time_build", "time_graph")},
              "corpus_embed_s": _summary(embed_s),
              "corpus_total_s": _summary([r["time_build"] + r["time_graph"] for r in ok]),
              "rss_delta_mib": _summary([r["rss_delta_mib"] for r in ok]),
              "reference": {}}
    if args.timing:
        for label, source in REFERENCE.items():
            LOG.info("timing %s in a fresh process", label)
            timing["reference"][label] = _timing_subprocess(source)
    previous = args.out / "archi2vec_quality.json"
    if not args.timing and previous.exists():
        timing["reference"] = json.loads(previous.read_text()).get("timing", {}).get("reference", {})

    transfer = {name: _transfer(name, ents, rec_by_key, sims_for) for name, ents in tables.items()}
    transfer["transfergraph_hf_finetune.json"]["unresolved_architecture"] = tg_unresolved
    report = {
        "embedder_version": archi2vec.EMBEDDER_VERSION, "dim": DIM,
        "corpus": {"entries": len(records), "built": len(ok), "scored": len(common),
                   "families": len(set(families)),
                   "families_with_2plus": sum(1 for c in Counter(families).values() if c >= 2),
                   "by_origin": dict(Counter(r["origin"] for r in ok)),
                   "transformers_types": len({r["source"]["model_type"] for r in ok if r["origin"] == "transformers"}),
                   "no_autograd_graph": {r["key"]: r.get("autograd_error") for r in ok if "autograd_graph" not in r}},
        "quality": quality, "export_vs_record": agreement, "timing": timing, "transfer": transfer,
        "models": {r["key"]: {
            "family": r["family"], "origin": r["origin"], "num_params": int(r["num_params"]),
            "nodes": r["graph"].number_of_nodes(), "build_s": round(r["time_build"], 3),
            "graph_record_s": round(r["time_graph"], 3), "embed_s": round(embed_by[r["key"]], 4),
            "rss_delta_mib": round(r["rss_delta_mib"], 1),
            **({"graph_export_s": round(r["time_graph_export"], 3)} if "time_graph_export" in r else {}),
        } for r in ok},
        "failed": failed, "export_failed_fell_back": export_failures,
        "protocol": {"knn_k": tr.K_NEIGHBOURS, "fennec_kmeans_k": bl.FENNEC_KMEANS_K,
                     "graph_capture": "record (export on every 8th entry for the agreement check)",
                     "cpu": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
    }
    previous.write_text(json.dumps(report, indent=1, default=_jsonable) + "\n")
    from archi2vec_report import write_markdown, write_plot

    write_markdown(report, args.out / "archi2vec_quality.md")
    write_plot(common, [vec[k] for k in keys], args.out / "archi2vec_corpus_tsne.png")
    LOG.info("wrote %s", args.out)
    return 0


def _cache_file(cache: Path, entry) -> Path:
    return cache / (entry.key.replace("/", "__").replace(":", "--") + ".pkl")


def _summary(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    return {"n": int(arr.size), "median": round(float(np.median(arr)), 4),
            "p90": round(float(np.percentile(arr, 90)), 4), "max": round(float(arr.max()), 4),
            "min": round(float(arr.min()), 4), "mean": round(float(arr.mean()), 4)}


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
