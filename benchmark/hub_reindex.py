"""Reindex throughput: ``fennec.reindex`` against the local Hub server over real architectures.

Builds a Hub-style folder of real architecture configs (no weights) — one timm model name per
timm model module and the default config of every transformers image-classification model
type plus size variants, as in archi2vec's benchmark corpus (``benchmark/archi2vec_corpus.py``)
— serves it with ``fennec.hub.server.HubServer`` on 127.0.0.1, and runs a full reindex through
``HfHub`` (HTTP listing, ``model_info``, ``config.json`` / preprocessor download into the HF
cache) and archi2vec, on one CPU thread (``torch.set_num_threads(1)``). It reports models per
minute and where the time goes (HTTP vs embedding).

Run: ``python benchmark/hub_reindex.py [--method record|export] [--limit N]``.
Results: ``benchmark/results/hub_reindex_<method>.{json,md}``. Target (issue 5): >= 60 models/min.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmark"))
RESULTS = REPO / "benchmark" / "results"
LOG = logging.getLogger("bench.hub_reindex")


def build_hub(root: Path, *, per_module: int) -> list[dict]:
    """Write one repository per corpus architecture; returns what was written."""
    import archi2vec_corpus as corpus  # benchmark sibling
    from archi2vec._compat import import_transformers

    import_transformers()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    written = []
    entries = corpus.timm_entries(per_module) + corpus.hf_entries()
    t0 = 1_700_000_000
    for i, e in enumerate(entries):
        if e.origin == "timm":
            config, library = {"architecture": e.source, "num_classes": 1000}, "timm"
        else:
            src = dict(e.source)
            try:
                config = CONFIG_MAPPING[src.pop("model_type")](**src).to_dict()
            except Exception as exc:  # a type whose default config cannot be built
                LOG.warning("skipping %s: %s", e.key, exc)
                continue
            library = "transformers"
        name = e.key.split(":", 1)[1].replace("/", "-").replace(".", "-")
        repo = root / f"bench-{e.origin}" / name
        repo.mkdir(parents=True, exist_ok=True)
        (repo / "config.json").write_text(json.dumps(config, default=str))
        (repo / "README.md").write_text(f"---\npipeline_tag: image-classification\nlibrary_name: {library}\n"
                                        f"tags:\n- family:{e.family}\n---\n\n# {e.key}\n")
        (repo / ".hub.json").write_text(json.dumps({"createdAt": t0 + i, "lastModified": t0 + i,
                                                    "downloads": i}))
        written.append({"key": e.key, "family": e.family, "library": library,
                        "repo_id": f"bench-{e.origin}/{name}"})
    return written


class TimedEmbedder:
    """Wraps the embedder to time it separately from the HTTP work."""

    def __init__(self, inner):
        self.inner, self.version, self.dim = inner, inner.version, inner.dim
        self.seconds = 0.0
        self.per_model: dict[str, float] = {}

    def __call__(self, files, record):
        t = time.perf_counter()
        try:
            return self.inner(files, record)
        finally:
            dt = time.perf_counter() - t
            self.seconds += dt
            self.per_model[record.repo_id] = dt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", choices=("record", "export"), default="record")
    p.add_argument("--per-module", type=int, default=2, help="timm names per timm module")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--timeout", type=float, default=60.0, help="archi2vec capture timeout per model")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import torch

    torch.set_num_threads(1)
    from fennec import constants
    from fennec.catalog import Catalog
    from fennec.hub import HfHub
    from fennec.hub.server import HubServer
    from fennec.reindex import Archi2VecEmbedder, reindex

    work = Path(tempfile.mkdtemp(prefix="fennec-bench-"))
    try:
        t = time.perf_counter()
        written = build_hub(work / "hub", per_module=args.per_module)
        build_s = time.perf_counter() - t
        print(f"{len(written)} repositories written in {build_s:.0f} s", flush=True)
        embedder = TimedEmbedder(Archi2VecEmbedder(method=args.method, timeout=args.timeout))
        with HubServer(models_dir=work / "hub") as server, Catalog(work / "home" / constants.CATALOG_FILE) as cat:
            hub = HfHub(endpoint=server.url, cache_dir=work / "hf-cache", offline=False)
            t, cpu = time.perf_counter(), time.process_time()
            summary = reindex(hub=hub, catalog=cat, embedder=embedder,
                              limit=args.limit, batch_size=16, progress=sys.stderr.isatty())
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu  # this process only: the server's threads included
            unsupported = Counter((m.last_error or "").split("archi2vec cannot embed it: ", 1)[-1][:100]
                                  for m in cat.models(status="unsupported"))
            requests = len(server.requests)
        processed = summary.processed
        per = sorted(embedder.per_model.values())
        out = {
            "generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}; torch threads 1; shared build machine (other jobs running)",
            "load_average_at_end": [round(v, 1) for v in os.getloadavg()],
            "method": args.method, "repositories": len(written), "processed": processed,
            "added": summary.added, "unsupported": summary.unsupported, "failed": summary.failed,
            "wall_s": round(wall, 1), "models_per_min": round(processed / wall * 60, 1),
            "cpu_s": round(cpu, 1), "models_per_cpu_min": round(processed / cpu * 60, 1),
            "embed_s": round(embedder.seconds, 1), "http_and_rest_s": round(wall - embedder.seconds, 1),
            "embed_median_s": round(per[len(per) // 2], 3) if per else None,
            "embed_p90_s": round(per[int(len(per) * 0.9)], 3) if per else None,
            "http_requests": requests, "unsupported_reasons": dict(unsupported.most_common(10)),
            "summary": summary.line(),
        }
        print(json.dumps(out, indent=1), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"hub_reindex_{args.method}.json").write_text(json.dumps(out, indent=1) + "\n")
        md = [f"# Reindex throughput ({args.method})", "",
              f"Generated {out['generated_utc']} by `python benchmark/hub_reindex.py --method {args.method}`.",
              "", f"- {len(written)} real architecture configs (timm registry names, transformers model "
              "types and size variants, as in archi2vec's corpus), served by `fennec.hub.server` on 127.0.0.1",
              f"- machine: {out['machine']}; load average at the end {out['load_average_at_end']} (2 cores)", "",
              "| processed | added | unsupported | failed | wall s | models/min (wall) | CPU s | models/CPU-min "
              "| embedding s | HTTP + catalog + index s | embed median s | embed p90 s |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| {processed} | {summary.added} | {summary.unsupported} | {summary.failed} | {out['wall_s']} | "
              f"**{out['models_per_min']}** | {out['cpu_s']} | **{out['models_per_cpu_min']}** | "
              f"{out['embed_s']} | {out['http_and_rest_s']} | {out['embed_median_s']} | {out['embed_p90_s']} |", "",
              "Target: >= 60 models/min on one core. On this shared machine the process does not get a "
              "whole core, so the rate per CPU-minute (the process's CPU time, the server's threads "
              "included) is what one dedicated core would do; the wall-clock rate is what this run did.",
              f"Embedding (archi2vec) takes {100 * out['embed_s'] / max(out['wall_s'], 1e-9):.0f} % of the "
              f"wall time; fennec's own work (HTTP listing, model info, config downloads into the HF cache, "
              f"catalog and index commits) is {1000 * out['http_and_rest_s'] / max(processed, 1):.0f} ms "
              "per model.", ""]
        if unsupported:
            md += ["Unsupported (archi2vec could not build or trace), most common reasons:", ""]
            md += [f"- {n} x {reason}" for reason, n in unsupported.most_common(10)] + [""]
        (args.out / f"hub_reindex_{args.method}.md").write_text("\n".join(md))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
