"""Score every zoo model on every target with every fennec metric, and compare with the ground truth.

Run (after scripts/build_benchmark.py, or on partial ground truth)::

    .venv/bin/python benchmark/zoo_metrics.py [--targets t-digits t-colour] [--metrics sfda logme]

For each target dataset (``zoo/datasets/t-*``) and each zoo model (``zoo/hub``) it

1. extracts the model's penultimate features (the input of its classification head) and its
   source-class probabilities (softmax of the pre-trained head) on the target's **training**
   split (stratified sample of at most 1000 images, seed 0 — every zoo target's whole training
   split but t-digits'), exactly as ``fennec.recommend`` does (:mod:`fennec.features`, cached
   on disk by model sha and sample fingerprint);
2. scores them with every metric registered in ``fennec.metrics`` (features or probabilities,
   as the metric declares), recording the score and the wall time, or the error — shared with
   ``fennec bench`` (:func:`fennec.bench.score_zoo`, cache ``zoo/cache/bench/scores.json``);
3. compares, per target, each metric's scores over the models with the ground truth (seed-0 test
   accuracy, ``benchmark/results/zoo_ground_truth.json``): weighted τ (scipy defaults), Kendall τ,
   Pearson and top-1 regret (``fennec.evaluation``).

Writes ``benchmark/results/zoo_metrics.{json,md}`` and ``zoo_metrics.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

LOG = logging.getLogger("zoo_metrics")
RESULTS_DIR = REPO_ROOT / "benchmark" / "results"
GROUND_TRUTH = RESULTS_DIR / "zoo_ground_truth.json"
MIN_MODELS = 5  # a target needs this many models with a score and ground truth to be evaluated


def evaluate(scores: dict, truth: dict, metrics: list[str]) -> dict:
    """Per target and metric: weighted τ, Kendall τ, Pearson, top-1 regret over the models with both."""
    from fennec import evaluation as ev

    table = {}
    for target, per_model in scores.items():
        acc = truth.get(target, {})
        table[target] = {}
        for m in metrics:
            s = {mod: v[m]["score"] for mod, v in per_model.items() if "score" in v.get(m, {}) and mod in acc
                 and np.isfinite(v[m]["score"])}
            if len(s) < MIN_MODELS:
                table[target][m] = {"n_models": len(s),
                                    "skipped": f"fewer than {MIN_MODELS} models with a score and ground truth"}
                continue
            a = {mod: acc[mod] for mod in s}
            row = {"n_models": len(s)}
            for key, fn in (("weighted_tau", ev.weighted_tau), ("kendall_tau", ev.kendall_tau),
                            ("pearson", ev.pearson)):
                try:
                    row[key] = float(fn(s, a))
                except Exception as exc:  # e.g. a constant score vector: reported per cell
                    row[key] = None
                    row.setdefault("errors", []).append(f"{key}: {exc}"[:200])
            try:
                row["top1_regret"] = float(ev.top_k_regret(s, a, k=1))
            except Exception as exc:
                row["top1_regret"] = None
                row.setdefault("errors", []).append(f"top1_regret: {exc}"[:200])
            table[target][m] = row
    return table


def _summary(table: dict, metrics: list[str]) -> dict:
    out = {}
    for m in metrics:
        rows = [table[t][m] for t in table if "weighted_tau" in table[t].get(m, {})]
        def mean(key, rows=rows):
            vals = [r[key] for r in rows if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None
        out[m] = {"targets": len(rows), "weighted_tau": mean("weighted_tau"), "kendall_tau": mean("kendall_tau"),
                  "pearson": mean("pearson"), "top1_regret": mean("top1_regret")}
    return out


def _markdown(res: dict) -> str:
    metrics, targets = res["metrics"], list(res["per_target"])
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["# Zoo benchmark: transferability metrics vs. fine-tuning ground truth", "",
             f"Generated {res['generated_utc']} by `python benchmark/zoo_metrics.py`. Features: penultimate layer on "
             "each target's training split (stratified sample of at most 1000 images, seed 0). Ground truth: seed-0 "
             "test accuracy (`zoo_ground_truth.json`, protocol "
             f"`{res['ground_truth_protocol']}`), coverage {res['ground_truth_coverage']}. "
             f"Noise ceiling (seed 0 vs seed 1, mean weighted τ): {f(res['noise_ceiling_mean'])}.", "",
             "## Mean over targets", "", "| metric | targets | weighted τ | Kendall τ | Pearson | top-1 regret |",
             "|---|---|---|---|---|---|"]
    for m in sorted(metrics, key=lambda m: -(res["summary"][m]["weighted_tau"] or -9)):
        s = res["summary"][m]
        lines.append(f"| {m} | {s['targets']} | {f(s['weighted_tau'])} | {f(s['kendall_tau'])} | {f(s['pearson'])} "
                     f"| {f(s['top1_regret'])} |")
    lines += ["", "## Weighted τ per target", "", "| metric | " + " | ".join(targets) + " |",
              "|---" * (len(targets) + 1) + "|"]
    for m in metrics:
        lines.append(f"| {m} | " + " | ".join(f(res["per_target"][t][m].get("weighted_tau")) for t in targets) + " |")
    errors = sorted({(m, v[m]["error"].split(":")[0]) for t in res["scores"].values() for v in t.values()
                     for m in v if "error" in v[m]})
    if errors:
        lines += ["", "Metric errors (type) on some (model, target): " + ", ".join(f"{m} ({e})" for m, e in errors)]
    lines += ["", "![weighted tau per metric](zoo_metrics.png)", ""]
    return "\n".join(lines)


def _plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in res["metrics"] if res["summary"][m]["weighted_tau"] is not None]
    if not metrics:
        return
    metrics.sort(key=lambda m: res["summary"][m]["weighted_tau"])
    per = [[res["per_target"][t][m]["weighted_tau"] for t in res["per_target"]
            if res["per_target"][t][m].get("weighted_tau") is not None] for m in metrics]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(metrics) + 1.5))
    ax.barh(range(len(metrics)), [np.mean(p) for p in per], xerr=[np.std(p) for p in per], color="tab:blue", alpha=0.7)
    for i, p in enumerate(per):
        ax.scatter(p, [i] * len(p), s=8, color="k", zorder=3)
    if res["noise_ceiling_mean"] is not None and np.isfinite(res["noise_ceiling_mean"]):
        ax.axvline(res["noise_ceiling_mean"], color="red", ls="--", label="noise ceiling (seed 0 vs 1)")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(metrics)), metrics)
    ax.set_xlabel("weighted τ with fine-tuning accuracy (mean ± sd over targets; dots = targets)")
    ax.axvline(0, color="grey", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import fennec  # noqa: F401
    from fennec.bench import load_zoo_data, score_zoo
    from fennec.metrics import list_metrics
    from fennec.workspace import DEFAULT_MAX_SAMPLES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", nargs="*", default=None)
    p.add_argument("--metrics", nargs="*", default=None)
    p.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    metrics = args.metrics or list_metrics()
    data = load_zoo_data(max_samples=args.max_samples, device=args.device, targets=args.targets)
    if args.targets:
        data.truth = {t: data.truth[t] for t in args.targets}
    raw, extract_s, metric_s, errors = score_zoo(data, metrics, device=args.device)
    scores = {t: {m: {x: ({"score": v, "seconds": round(metric_s[t][m][x], 4)} if v is not None
                          else {"error": errors[t][m].get(x) or "failed (no message)"})
                      for x, v in per.items()} for m, per in row.items()} for t, row in raw.items()}
    gt = json.loads(GROUND_TRUTH.read_text()) if GROUND_TRUTH.exists() else {}
    truth = gt.get("test_accuracy_seed0", {})
    table = evaluate(scores, truth, metrics)
    res = {"generated_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "metrics": metrics,
           "models": data.models, "ground_truth_protocol": gt.get("protocol", {}).get("version"),
           "ground_truth_coverage": f"{gt.get('coverage', {}).get('seed0_done', 0)} / "
                                    f"{gt.get('coverage', {}).get('seed0_total', 0)} seed-0 pairs",
           "noise_ceiling_mean": gt.get("noise_ceiling_mean"), "summary": _summary(table, metrics),
           "mean_metric_seconds": {x: float(np.mean([metric_s[t][m][x] for t in metric_s for m in metric_s[t]]))
                                   for x in metrics},
           "per_target": table, "scores": scores}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "zoo_metrics.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    (RESULTS_DIR / "zoo_metrics.md").write_text(_markdown(res))
    _plot(res, RESULTS_DIR / "zoo_metrics.png")
    LOG.info("wrote %s", RESULTS_DIR / "zoo_metrics.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
