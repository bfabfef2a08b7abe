"""The report of ``fennec bench`` (:mod:`fennec.bench.runner`): markdown tables and plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown_report(res: dict) -> str:
    s, chk = res["summary"], res["targets_check"]
    cov = res["ground_truth_coverage"]
    lines = [
        "# End-to-end benchmark: leave-one-task-out on the zoo (`fennec bench`)", "",
        f"Generated {res['generated_utc']} by `fennec bench` ({res['seconds']:.0f} s). {len(res['targets'])} held-out "
        f"targets, {res['n_models']} candidate models; each target's training split sampled to at most "
        f"{res['max_samples']} images (seed {res['seed']}). Ground truth: seed-0 test accuracy, coverage "
        f"{cov.get('seed0_done', '?')} / {cov.get('seed0_total', '?')} (model, target) pairs — "
        "targets are evaluated over the models that have ground truth.", "",
        "Forward passes are counted per image and network, as a fraction of scoring every candidate "
        f"({res['n_models']} networks). Seconds: measured feature-extraction and metric time of the networks a "
        "method runs (each measured once per (model, target) on this 2-core CPU) plus fitting time.", "",
        "## Mean over held-out targets", "",
        "| method | targets | weighted τ | Kendall τ | top-1 regret | top-3 hit | forward passes (fraction) | seconds |",
        "|---|---|---|---|---|---|---|---|"]
    order = sorted(s, key=lambda k: -(s[k]["weighted_tau"] if s[k]["weighted_tau"] is not None else -9))
    for k in order:
        r = s[k]
        lines.append(f"| {k} | {r['targets']} | {_fmt(r['weighted_tau'])} | {_fmt(r['kendall_tau'])} | "
                     f"{_fmt(r['top1_regret'])} | {_fmt(r['top3_hit'], 2)} | {_fmt(r['forward_passes'], 1)} "
                     f"({_fmt(r['forward_fraction'], 2)}) | {_fmt(r['seconds'], 1)} |")
    lines += ["", "## Targets (measured, not asserted)", "",
              f"- full pipeline (`fennec-refine`, proxy + {res['headline_candidates']} candidates, metric and fusion "
              f"weight chosen by an inner leave-one-task-out on the other targets: "
              f"{_counts(res['refine_metrics'])}) weighted τ **{_fmt(chk['full_pipeline_tau'])}**",
              f"- ≥ best single metric ({chk['best_single_metric']}, {_fmt(chk['best_single_metric_tau'])}) + 0.05: "
              f"**{_yes(chk['beats_best_metric_by_0.05'])}**",
              f"- ≥ index-only ({_fmt(chk['index_only_tau'])}) + 0.10: **{_yes(chk['beats_index_only_by_0.10'])}**",
              f"- ≤ 1/5 of the forward passes of scoring every candidate ({_fmt(chk['forward_fraction'], 3)}): "
              f"**{_yes(chk['forward_passes_at_most_one_fifth'])}**", "",
              "## Weighted τ per held-out target", ""]
    methods = ["random", "largest", "fennec-paper", "fennec-index", "fennec-refine", chk["best_single_metric"],
               "metric-ensemble"]
    methods = list(dict.fromkeys(m for m in methods if m and m in res["summary"]))
    lines.append("| target | " + " | ".join(methods)
                 + " | refine metric | fusion weight | task placement (largest weights) |")
    lines.append("|---" * (len(methods) + 4) + "|")
    for t in res["targets"]:
        r = res["per_target"][t]
        ev = ", ".join(f"{n} ({w})" for n, w in res["closest_tasks"].get(t, []))
        lines.append(f"| {t} | " + " | ".join(_fmt(r[m]["weighted_tau"]) for m in methods)
                     + f" | {res['refine_metrics'].get(t, '-')} | {res['fusion_weights'].get(t, '-')} | {ev} |")
    if res.get("ensemble_metrics"):
        lines += ["", f"`metric-ensemble` averaged the z-scores of: {_counts({t: ' + '.join(v) for t, v in res['ensemble_metrics'].items()})}."]
    lines += ["", "## Quality against forward passes (fennec-refine, mean over targets)", "",
              "The fusion weight is chosen for each number of candidates by the inner leave-one-task-out.", "",
              "| candidates refined | forward passes (fraction) | weighted τ | top-1 regret | top-3 hit "
              "| mean fusion weight |", "|---|---|---|---|---|---|"]
    cs = sorted({int(c) for t in res["budget_curve"] for c in res["budget_curve"][t]})
    for c in cs:
        vals = [res["budget_curve"][t][str(c)] for t in res["budget_curve"] if str(c) in res["budget_curve"][t]]
        def mean(key: str) -> float | None:
            v = [x[key] for x in vals if x.get(key) is not None]
            return float(np.mean(v)) if v else None
        fp = mean("forward_passes")
        lines.append(f"| {c} | {_fmt(fp, 0)} ({_fmt(fp / res['n_models'] if fp else None, 2)}) | "
                     f"{_fmt(mean('weighted_tau'))} | {_fmt(mean('top1_regret'))} | {_fmt(mean('top3_hit'), 2)} "
                     f"| {_fmt(mean('fusion_weight'), 2)} |")
    lines += ["", "![weighted tau per target](zoo_recommend_tau.png)", "",
              "![quality against forward passes](zoo_recommend_budget.png)", ""]
    return "\n".join(lines)


def _counts(chosen: Mapping[str, str]) -> str:
    values = list(chosen.values())
    return ", ".join(f"`{m}` ×{values.count(m)}" for m in sorted(set(values), key=lambda m: -values.count(m)))


def _yes(v: bool | None) -> str:
    return "n/a" if v is None else ("met" if v else "missed")


def plot_report(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = res["targets"]
    chk = res["targets_check"]
    methods = list(dict.fromkeys(m for m in ["random", "largest", "fennec-paper", chk["best_single_metric"],
                                             "fennec-index", "fennec-refine"] if m))
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(targets)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [res["per_target"][t][m]["weighted_tau"] for t in targets]
        ax.bar(np.arange(len(targets)) + i * width, [v if v is not None else 0 for v in vals], width, label=m)
    ax.set_xticks(np.arange(len(targets)) + 0.4 - width / 2, targets, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("weighted τ with fine-tuning accuracy")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("Leave-one-task-out on the zoo")
    fig.tight_layout()
    fig.savefig(out / "zoo_recommend_tau.png", dpi=130)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    cs = sorted({int(c) for t in res["budget_curve"] for c in res["budget_curve"][t]})
    xs, ys = [], []
    for c in cs:
        vals = [res["budget_curve"][t][str(c)] for t in res["budget_curve"] if str(c) in res["budget_curve"][t]]
        taus = [v["weighted_tau"] for v in vals if v["weighted_tau"] is not None]
        if taus:
            xs.append(np.mean([v["forward_passes"] for v in vals]) / res["n_models"])
            ys.append(np.mean(taus))
    ax.plot(xs, ys, "o-", label="fennec-refine (proxy + C candidates)")
    s = res["summary"]
    for name, marker in (("fennec-index", "s"), ("fennec-paper", "^"), ("random", "x"), ("largest", "d")):
        if s[name]["weighted_tau"] is not None:
            ax.scatter([s[name]["forward_fraction"]], [s[name]["weighted_tau"]], marker=marker, label=name, zorder=3)
    metric_rows = [(k, v) for k, v in s.items() if k.startswith("metric:") and v["weighted_tau"] is not None]
    for k, v in metric_rows:
        ax.scatter([v["forward_fraction"]], [v["weighted_tau"]], marker=".", color="grey", zorder=2)
    if metric_rows:
        best = max(metric_rows, key=lambda kv: kv[1]["weighted_tau"])
        ax.annotate(best[0], (best[1]["forward_fraction"], best[1]["weighted_tau"]), fontsize=7,
                    xytext=(-60, 6), textcoords="offset points")
    ax.axvline(0.2, color="red", ls="--", lw=0.8, label="1/5 budget")
    ax.set_xlabel("forward passes (fraction of scoring every candidate)")
    ax.set_ylabel("mean weighted τ")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "zoo_recommend_budget.png", dpi=130)
    plt.close(fig)
