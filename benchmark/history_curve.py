"""Does the transfer space earn more with more history? Ranking quality against history size, on the zoo.

Run (after ``fennec bench``, whose proxy-feature and score caches it reuses)::

    .venv/bin/python benchmark/history_curve.py [--repeats 5] [--seed 0]

``fennec bench`` holds out each zoo target and fits on all the others. Here the held-out target
is ranked from *fewer* known tasks: for every history size k (2, 4, … and all the others), five
random sets of k other targets are the only history (:func:`fennec.bench.history_curve`), and
fennec's index-only ranking, its default refined ranking (the package's default settings, not
re-chosen per fold) and the data-free ``history-mean`` baseline on the same k targets are scored
against the held-out ground truth (weighted τ). The differences to ``history-mean`` are paired
(same training sets); their standard error is over targets.

The question it answers is the premise of issue 15: a transfer space learned from fine-tuning
history should pull away from "rank models by their average record" as the history grows, if
the history is informative about which models suit which tasks. If the gap stays flat, more
tasks of the same kind will not help and the history (or the placement) is what must change.

Writes ``benchmark/results/history_curve.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"
METHODS = ("fennec-index", "fennec-refine")

from fennec.bench.runner import ORACLE_CROSS_FITTED as CROSS  # noqa: E402  (after the path above)
from fennec.bench.runner import ORACLE_PLACEMENT as ORACLE  # noqa: E402

ORACLES = (ORACLE, CROSS)


def sizes_for(n_targets: int) -> list[int]:
    """2, 4, 6, … below the full history, and the full history (every other target)."""
    full = n_targets - 1
    return sorted({*range(2, full, 2), full})


#: Closest-known-task similarity bands of the confidence table (LOW_SIMILARITY = 0.25 is the note's threshold).
BANDS = ((-1.0, 0.25), (0.25, 0.5), (0.5, 0.9), (0.9, 1.01))


def by_similarity(rows: list[dict]) -> list[dict]:
    """Every fold (all history sizes) by its held-out target's similarity to the closest training
    target: how good fennec's ranking is, and how far ahead of history-mean, when the closest
    known task is this far (what ``recommend()``'s low-confidence note is about)."""
    import numpy as np

    out = []
    for lo, hi in BANDS:
        sel = [r for r in rows if r.get("nearest_similarity") is not None and lo <= r["nearest_similarity"] < hi
               and all(r.get(m) is not None for m in ("history-mean", *METHODS, *ORACLES))]
        entry = {"band": [lo, hi], "folds": len(sel), "targets": len({r["target"] for r in sel})}
        for m in ("history-mean", *METHODS, *ORACLES):
            entry[m] = float(np.mean([r[m] for r in sel])) if sel else None
        out.append(entry)
    return out


def markdown(summary: list[dict], meta: dict) -> str:
    base = "history-mean"
    lines = [
        "# Ranking quality against the amount of history (`benchmark/history_curve.py`)",
        "",
        f"Generated {meta['generated_utc']} ({meta['seconds']:.0f} s). {meta['targets']} zoo targets with complete "
        f"ground truth, {meta['n_models']} models; each target held out in turn and ranked from k other targets "
        f"only ({meta['repeats']} random sets of k per target below the full history, seed {meta['seed']}). "
        "Weighted τ against the held-out seed-0 fine-tuning accuracies; the differences to history-mean are paired "
        "(same training targets), with their standard error over targets. `fennec-refine` is the package's "
        f"default pipeline with its default settings ({meta['defaults']}), not re-chosen per fold. "
        f"Noise ceiling (seed 1 vs seed 0): {meta['noise_ceiling']:.3f}.",
        "",
        f"| known tasks k | targets | {base} | fennec-index | index − {base} (s.e.) | above / below | "
        f"fennec-refine | refine − {base} (s.e.) | above / below | oracle, in-sample | oracle, cross-fitted |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(x: float | None, sign: bool = False) -> str:
        return "-" if x is None else (f"{x:+.3f}" if sign else f"{x:.3f}")

    for e in summary:
        parts = [str(e["size"]), str(e["targets"]), cell(e[base])]
        for meth in METHODS:
            se = e[f"{meth} - {base} s.e."]
            diff = cell(e[f"{meth} - {base}"], sign=True) + (f" ({se:.3f})" if se is not None else "")
            parts += [cell(e[meth]), diff, "{} / {}".format(*e[f"{meth} above/below"])]
        parts += [cell(e[ORACLE]), cell(e[CROSS])]
        lines.append("| " + " | ".join(parts) + " |")
    first, last = summary[0], summary[-1]
    lines += [
        "",
        f"From k = {first['size']} to k = {last['size']} known tasks, history-mean goes from {first[base]:.3f} to "
        f"{last[base]:.3f}; fennec-index's lead over it from {first['fennec-index - ' + base]:+.3f} to "
        f"{last['fennec-index - ' + base]:+.3f}, the default refined ranking's from "
        f"{first['fennec-refine - ' + base]:+.3f} to {last['fennec-refine - ' + base]:+.3f}.",
        "",
        "The two *oracle placements* are not methods: they place the held-out target with the task vector that "
        "fits its own results best (least squares on its z-scored accuracies, in the space fitted on the k known "
        "tasks). *In-sample*, every model's score comes from a vector fitted to that model's own result too, so it "
        "also fits the results' noise and can exceed the noise ceiling: an optimistic bound. *Cross-fitted*, each "
        "model is scored by the vector fitted to the results of all the other models (leave one model out): what a "
        "placement could reach in this space knowing every other model's fine-tuning result on the target, about "
        "the best any placement from descriptors could do. fennec-index below it is the descriptor placement's "
        "shortfall; its lead over history-mean is about all that placing the task in this space can add to the "
        "data-free ranking (refinement can add more for the candidates it runs, from their metric scores). "
        f"At k = {last['size']}: index {last['fennec-index']:.3f}, cross-fitted oracle {last[CROSS]:.3f} "
        f"({last[CROSS] - last[base]:+.3f} over history-mean), in-sample oracle {last[ORACLE]:.3f} "
        f"({last[ORACLE] - last[base]:+.3f}), noise ceiling {meta['noise_ceiling']:.3f}.",
        "",
        "![weighted τ against history size](history_curve.png)",
        "",
        "## By the closest known task",
        "",
        "Every fold above (all history sizes), by the held-out target's descriptor similarity to its closest "
        "training target (what `recommend()` reports as `closest_tasks[0].similarity`; below 0.25 it adds a "
        "low-confidence note). Folds of one target at different sizes are not independent.",
        "",
        "| similarity | folds | targets | history-mean | fennec-index | fennec-refine | oracle, in-sample | "
        "oracle, cross-fitted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in meta["by_similarity"]:
        lo, hi = e["band"]
        band = f"< {hi:g}" if lo < 0 else (f"≥ {lo:g}" if hi > 1 else f"{lo:g} – {hi:g}")
        lines.append(f"| {band} | {e['folds']} | {e['targets']} | "
                     + " | ".join(cell(e[m]) for m in ("history-mean", *METHODS, *ORACLES)) + " |")
    lines.append("")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    base = "history-mean"
    ks = [e["size"] for e in summary]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(ks, [e[base] for e in summary], "o-", label=base, color="grey")
    ax.plot(ks, [e[ORACLE] for e in summary], "s:", label="oracle placement, in-sample", color="tab:green")
    ax.plot(ks, [e[CROSS] for e in summary], "s--", label=CROSS, color="tab:olive")
    for meth, colour in zip(METHODS, ("tab:blue", "tab:orange"), strict=True):
        ax.plot(ks, [e[meth] for e in summary], "o-", label=meth, color=colour)
        d = [e[f"{meth} - {base}"] for e in summary]
        se = [e[f"{meth} - {base} s.e."] or 0.0 for e in summary]
        bx.errorbar(ks, d, yerr=se, fmt="o-", capsize=3, label=meth, color=colour)
    ax.set(xlabel="known tasks k", ylabel="mean weighted τ (held-out target)", title="quality against history size")
    bx.axhline(0, color="grey", lw=0.8)
    bx.set(xlabel="known tasks k", ylabel=f"Δ weighted τ vs {base} (± s.e.)", title="lead over the data-free baseline")
    ax.legend()
    bx.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    from fennec._io import save_json_atomic, write_bytes_atomic
    from fennec.bench import history_curve, load_zoo_data, score_zoo, summarise_curve
    from fennec.recommendation.options import DEFAULT_FUSION_WEIGHT, DEFAULT_METRIC, DEFAULT_PLACEMENT_STRENGTH
    from fennec.workspace import DEFAULT_MAX_SAMPLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="random training sets per (target, size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=UserWarning)
    t0 = time.perf_counter()
    data = load_zoo_data(max_samples=DEFAULT_MAX_SAMPLES, progress=True)
    scores, _, _, _ = score_zoo(data, [DEFAULT_METRIC], progress=True)
    sizes = sizes_for(len(data.truth))
    rows = history_curve(data, scores, sizes=sizes, repeats=args.repeats, seed=args.seed, progress=True)
    summary = summarise_curve(rows, (*METHODS, *ORACLES))
    gt = json.loads((RESULTS / "zoo_ground_truth.json").read_text(encoding="utf-8"))
    ceiling = [v["weighted_tau"] for t, v in (gt.get("noise_ceiling") or {}).items()
               if t in data.truth and isinstance(v, dict) and v.get("weighted_tau") is not None]
    meta = {"generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - t0, "targets": len(data.truth), "n_models": len(data.models),
            "repeats": args.repeats, "seed": args.seed, "sizes": sizes,
            "defaults": f"{DEFAULT_METRIC}, fusion weight {DEFAULT_FUSION_WEIGHT:g}, "
                        f"placement strength {DEFAULT_PLACEMENT_STRENGTH:g}, 6 candidates",
            "noise_ceiling": float(sum(ceiling) / len(ceiling)) if ceiling else float("nan"),
            "by_similarity": by_similarity(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    save_json_atomic(args.out / "history_curve.json", {**meta, "summary": summary, "rows": rows})
    plot(summary, args.out / "history_curve.png")
    report = markdown(summary, meta)
    write_bytes_atomic(args.out / "history_curve.md", lambda fh: fh.write(report.encode("utf-8")))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
