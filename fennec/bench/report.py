"""The report of ``fennec bench`` (:mod:`fennec.bench.runner`): markdown tables and plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Weighted τ over the noise ceiling's models alone (the seed-1 subset), beside each method's own.
CEILING_MODELS_TAU = "weighted_tau_ceiling_models"


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


#: The headline table's rows: fennec against the data-free baseline and the metrics.
HEADLINE = (("fennec-refine", "fennec default, index + refinement"), ("fennec-index", "fennec index-only"),
            ("history-mean", "history-mean, data-free"), (None, "best single metric"),
            ("metric-ensemble", "metric ensemble"), ("random", "random"), ("largest", "largest"))


def _versus(r: dict) -> tuple[str, str]:
    """(wins/losses/ties, mean difference) of a summary row against the baseline."""
    vs = r.get("vs_history-mean") or {}
    if not vs.get("targets"):
        return "-", "-"
    return f"{vs['wins']}/{vs['losses']}/{vs['ties']}", f"{vs['mean_diff']:+.3f}"


def _row(label: str, r: dict, *, targets: bool = False) -> str:
    wlt, diff = _versus(r)
    return (f"| {label} | " + (f"{r['targets']} | " if targets else "")
            + f"{_fmt(r['weighted_tau'])} | {_fmt(r.get(CEILING_MODELS_TAU))} | {_fmt(r['kendall_tau'])} | "
              f"{_fmt(r['top1_regret'])} | "
              f"{_fmt(r['top3_hit'], 2)} | {wlt} | {diff} | {_fmt(r['forward_passes'], 1)} "
              f"({_fmt(r['forward_fraction'], 2)}) |")


def _ceiling_row(res: dict, *, targets: bool = False) -> str:
    n = res.get("noise_ceiling_mean") or {}
    sizes = sorted({c["n_models"] for c in res.get("noise_ceiling", {}).values() if c})
    label = f"noise ceiling (seed 1 vs seed 0, {'/'.join(map(str, sizes)) or '?'} models per target)"
    return (f"| *{label}* | " + (f"{n.get('targets', 0)} | " if targets else "")
            + f"*{_fmt(n.get('weighted_tau'))}* | *{_fmt(n.get('weighted_tau'))}* | *{_fmt(n.get('kendall_tau'))}* | "
              f"*{_fmt(n.get('top1_regret'))}* | "
              f"*{_fmt(n.get('top3_hit'), 2)}* | | | |")


def markdown_report(res: dict) -> str:
    s, chk = res["summary"], res["targets_check"]
    cov = res["ground_truth_coverage"]
    head = ("| weighted τ | weighted τ, the noise ceiling's models | Kendall τ | top-1 regret | top-3 hit | "
            "vs history-mean: wins/losses/ties | "
            "mean Δ weighted τ vs history-mean | forward passes (fraction) |")
    lines = [
        "# End-to-end benchmark: leave-one-task-out on the zoo (`fennec bench`)", "",
        f"Generated {res['generated_utc']} by `fennec bench` ({res['seconds']:.0f} s). {len(res['targets'])} held-out "
        f"targets, {res['n_models']} candidate models; each target's training split sampled to at most "
        f"{res['max_samples']} images (seed {res['seed']}). Ground truth: seed-0 test accuracy, coverage "
        f"{cov.get('seed0_done', '?')} / {cov.get('seed0_total', '?')} (model, target) pairs — "
        "targets are evaluated over the models that have ground truth. "
        f"{len(res['targets'])} targets is a small history: a difference of a few hundredths in a mean is within "
        "what one target more or less can move.", "",
        "## Headline: fennec against the data-free baseline and the best single metric", "",
        "`history-mean` ranks the models by their mean z-scored fine-tuning result over the training targets "
        "(each training target's accuracies z-scored over its models; a model without any result scores 0), "
        "without looking at the new data. Every method is compared with it target by target on weighted τ "
        f"(ties: |Δ| < {res.get('tie', 5e-4)}). The noise ceiling is the same measure of the ground truth's own "
        "repeat: seed-1 fine-tuning accuracies (a seeded subset of the models per target) ranked against seed 0 "
        "(`zoo_report.md`). It says how well two fine-tuning runs agree, and is not a bound: seed 1 carries "
        "noise of its own, so a ranking that follows the models' expected accuracy can agree with seed 0 better "
        "than seed 1 does. The second column puts every method on the ceiling's footing: weighted τ over the "
        "models that have a seed-1 run only.", "",
        "| method " + head, "|---" * 9 + "|"]
    for key, label in HEADLINE:
        key = key or chk["best_single_metric"]
        if key in s:
            name = f"{label} (`{key}`)" if label != key else label
            lines.append(_row(name, s[key]))
    lines.append(_ceiling_row(res))
    below = (s["fennec-refine"].get("vs_history-mean") or {}).get("below", [])
    strengths = res.get("placement_strengths") or {}
    lines += ["", "## Targets (measured, not asserted)", "",
              f"- default (`fennec-refine`: proxy + {res['headline_candidates']} candidates, "
              f"{_fmt(chk['forward_fraction'], 3)} of the forward passes of scoring every candidate; the candidates' "
              "metric scores update the task placement and every model is re-predicted from it (docs/recommend.md, "
              "\"Placement update\"); refinement scorer, fusion weight and prior strength chosen by an inner "
              f"leave-one-task-out on the other targets: {_counts(res['refine_metrics'])}; prior strength "
              f"{_counts({t: f'{v:g}' if isinstance(v, float) else str(v) for t, v in strengths.items()})}) "
              f"weighted τ **{_fmt(chk['default_tau'])}** "
              f"(noise ceiling {_fmt((res.get('noise_ceiling_mean') or {}).get('weighted_tau'))})",
              f"- ≥ history-mean ({_fmt(chk['history_mean_tau'])}) + 0.05: "
              f"**{_yes(chk['default_at_least_history_mean_plus_0.05'])}**",
              f"- ≥ best single metric ({chk['best_single_metric']}, {_fmt(chk['best_single_metric_tau'])}): "
              f"**{_yes(chk['default_at_least_best_metric'])}**",
              f"- below history-mean on at most a fifth of the targets ({chk['default_below_history_mean']} of "
              f"{chk['targets']}{': ' + ', '.join(below) if below else ''}): "
              f"**{_yes(chk['default_below_history_mean_on_at_most_a_fifth'])}**",
              f"- index-only ({_fmt(chk['index_only_tau'])}) ≥ history-mean: "
              f"**{_yes(chk['index_only_at_least_history_mean'])}**",
              f"- top-1 regret of the default ({_fmt(chk['default_regret'])}) ≤ the best single metric's "
              f"({_fmt(chk['best_single_metric_regret'])}): **{_yes(chk['default_regret_at_most_best_metric'])}**",
              f"- ≤ 1/5 of the forward passes of scoring every candidate: "
              f"**{_yes(chk['forward_passes_at_most_one_fifth'])}**", "",
              "## Every method, mean over held-out targets", "",
              "Forward passes are counted per image and network, as a fraction of scoring every candidate "
              f"({res['n_models']} networks). Seconds: measured feature-extraction and metric time of the networks a "
              "method runs (each measured once per (model, target) on this 2-core CPU) plus fitting time.", "",
              "| method | targets " + head + " seconds |", "|---" * 11 + "|"]
    order = sorted(s, key=lambda k: -(s[k]["weighted_tau"] if s[k]["weighted_tau"] is not None else -9))
    for k in order:
        lines.append(_row(k, s[k], targets=True) + f" {_fmt(s[k]['seconds'], 1)} |")
    lines.append(_ceiling_row(res, targets=True) + " |")
    lines += ["", "## Weighted τ per held-out target", ""]
    methods = ["random", "largest", "history-mean", "fennec-paper", "fennec-index", "fennec-refine",
               chk["best_single_metric"], "metric-ensemble"]
    methods = list(dict.fromkeys(m for m in methods if m and m in res["summary"]))
    lines.append("| target | " + " | ".join(methods)
                 + " | noise ceiling | refine scorer | fusion weight | prior strength "
                   "| task placement (largest weights) |")
    lines.append("|---" * (len(methods) + 6) + "|")
    for t in res["targets"]:
        r = res["per_target"][t]
        ev = ", ".join(f"{n} ({w})" for n, w in res["closest_tasks"].get(t, []))
        ceiling = (res.get("noise_ceiling") or {}).get(t) or {}
        lines.append(f"| {t} | " + " | ".join(_fmt(r[m]["weighted_tau"]) for m in methods)
                     + f" | {_fmt(ceiling.get('weighted_tau'))} | {res['refine_metrics'].get(t, '-')} | "
                       f"{res['fusion_weights'].get(t, '-')} | {strengths.get(t, '-')} | {ev} |")
    if res.get("ensemble_metrics"):
        chosen = {t: " + ".join(v) for t, v in res["ensemble_metrics"].items()}
        lines += ["", f"`metric-ensemble` averaged the z-scores of: {_counts(chosen)}."]
    cal = res.get("confidence_calibration")
    if cal and cal["per_target"]:
        near, far = cal["near"], cal["far"]
        lines += ["", "## Confidence: the closest known task against ranking quality", "",
                  "Similarity: cosine of the held-out target's standardised proxy descriptor to its nearest training "
                  "target, what `fennec.recommend` reports as `closest_tasks[0].similarity` for a new dataset like it. "
                  f"Below `LOW_SIMILARITY` = {cal['threshold']} a recommendation carries a low-confidence note.", "",
                  "| held-out target | similarity | default τw | index-only τw | history-mean τw |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['target']} | {r['similarity']:.3f} | {_fmt(r['default'])} | {_fmt(r['index'])} | "
                  f"{_fmt(r['history_mean'])} |" for r in cal["per_target"]]
        lines += ["", f"- similarity ≥ {cal['threshold']}: {near['n']} targets, default τw {_fmt(near['default'])}, "
                      f"history-mean {_fmt(near['history_mean'])} (Δ {_fmt(near['default_minus_history_mean'])})",
                  f"- similarity < {cal['threshold']}: {far['n']} targets, default τw {_fmt(far['default'])}, "
                  f"history-mean {_fmt(far['history_mean'])} (Δ {_fmt(far['default_minus_history_mean'])})",
                  f"- Spearman correlation of similarity and default τw over the targets: "
                  f"{_fmt(cal['spearman_similarity_default'])}"]
    lines += ["", "## Quality against forward passes (fennec-refine, mean over targets)", "",
              "The refinement scorer, fusion weight and prior strength of the placement update are chosen for each "
              "number of candidates by the inner leave-one-task-out.", "",
              "| candidates refined | forward passes (fraction) | weighted τ | top-1 regret | top-3 hit "
              "| mean fusion weight | placement updated (targets) | ensemble chosen (targets) |",
              "|---|---|---|---|---|---|---|---|"]
    cs = sorted({int(c) for t in res["budget_curve"] for c in res["budget_curve"][t]})
    for c in cs:
        vals = [res["budget_curve"][t][str(c)] for t in res["budget_curve"] if str(c) in res["budget_curve"][t]]
        def mean(key: str, vals: list = vals) -> float | None:
            v = [x[key] for x in vals if x.get(key) is not None]
            return float(np.mean(v)) if v else None
        fp = mean("forward_passes")
        lines.append(f"| {c} | {_fmt(fp, 0)} ({_fmt(fp / res['n_models'] if fp else None, 2)}) | "
                     f"{_fmt(mean('weighted_tau'))} | {_fmt(mean('top1_regret'))} | {_fmt(mean('top3_hit'), 2)} "
                     f"| {_fmt(mean('fusion_weight'), 2)} | {sum(x.get('strength', 'inf') != 'inf' for x in vals)} "
                     f"| {sum(x.get('scorer') == 'ensemble' for x in vals)} |")
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
    methods = list(dict.fromkeys(m for m in ["random", "largest", "history-mean", "fennec-paper",
                                             chk["best_single_metric"], "fennec-index", "fennec-refine"]
                                 if m and m in res["summary"]))
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(targets)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [res["per_target"][t][m]["weighted_tau"] for t in targets]
        ax.bar(np.arange(len(targets)) + i * width, [v if v is not None else 0 for v in vals], width, label=m)
    ax.set_xticks(np.arange(len(targets)) + 0.4 - width / 2, targets, rotation=30, ha="right", fontsize=8)
    ceiling = [((res.get("noise_ceiling") or {}).get(t) or {}).get("weighted_tau") for t in targets]
    ax.scatter([i + 0.4 - width / 2 for i, c in enumerate(ceiling) if c is not None],
               [c for c in ceiling if c is not None], marker="_", s=300, color="black", zorder=3,
               label="noise ceiling (seed 1 vs 0)")
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
    for name, marker in (("fennec-index", "s"), ("history-mean", "*"), ("fennec-paper", "^"), ("random", "x"),
                         ("largest", "d")):
        if name in s and s[name]["weighted_tau"] is not None:
            ax.scatter([s[name]["forward_fraction"]], [s[name]["weighted_tau"]], marker=marker, label=name, zorder=3)
    metric_rows = [(k, v) for k, v in s.items() if k.startswith("metric:") and v["weighted_tau"] is not None]
    for _, v in metric_rows:
        ax.scatter([v["forward_fraction"]], [v["weighted_tau"]], marker=".", color="grey", zorder=2)
    if metric_rows:
        best = max(metric_rows, key=lambda kv: kv[1]["weighted_tau"])
        ax.annotate(best[0], (best[1]["forward_fraction"], best[1]["weighted_tau"]), fontsize=7,
                    xytext=(-60, 6), textcoords="offset points")
    ax.axvline(0.2, color="red", ls="--", lw=0.8, label="1/5 budget")
    nc = (res.get("noise_ceiling_mean") or {}).get("weighted_tau")
    if nc is not None:
        ax.axhline(nc, color="black", ls=":", lw=0.8, label="noise ceiling (seed 1 vs 0)")
    ax.set_xlabel("forward passes (fraction of scoring every candidate)")
    ax.set_ylabel("mean weighted τ")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "zoo_recommend_budget.png", dpi=130)
    plt.close(fig)
