"""Time every transferability metric on synthetic features, on the CPU and on CUDA if present.

Run:
    .venv/bin/python benchmark/metrics_speed.py            # all sizes, writes benchmark/results/
    .venv/bin/python benchmark/metrics_speed.py --quick    # the smallest size only, no files

What it measures, per (N, D, C) in {(2000, 256, 20), (5000, 1024, 50), (10000, 2048, 100)}:

* the median wall time of every registered metric (features: Gaussian class blobs, float32;
  LEEP/NCE: softmax probabilities over 1000 source classes), after one warm-up call;
* SFDA against its eigensolver form (``fennec.metrics._reference.sfda_eigen``, the published
  algorithm with ``scipy.linalg.eigh(S_b, S̃_w)``): speed-up and relative score difference.
  Target: ≥ 10x at (5000, 1024, 50) with relative difference ≤ 1e-6;
* PED's own overhead (its input validation and dynamics, i.e. everything before the base
  metric), relative to ``time(B)`` for B in {sfda, logme, nleep}. Target: ≤ 20 %.

A metric whose time, scaled by the growth of N·D·C, projects above ``--budget`` seconds at
the next size is not run there (recorded as skipped, with the reason). Results:
``benchmark/results/metrics_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fennec.metrics import get_metric, list_metrics, metric_info  # noqa: E402
from fennec.metrics._reference import sfda_eigen  # noqa: E402
from fennec.metrics._validation import check_features_labels  # noqa: E402
from fennec.metrics.ped import ped_transform  # noqa: E402

SIZES = [(2000, 256, 20), (5000, 1024, 50), (10000, 2048, 100)]
SOURCE_CLASSES = 1000
PED_BASES = ["sfda", "logme", "nleep"]
RESULTS = ROOT / "benchmark" / "results"


def make_data(n: int, d: int, c: int, seed: int = 0):
    """Overlapping Gaussian class blobs (float32), labels, and source-class probabilities."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centres = rng.normal(size=(c, d)).astype(np.float32) * 0.3
    x = centres[y] + rng.normal(size=(n, d)).astype(np.float32)
    logits = rng.normal(size=(n, SOURCE_CLASSES)) + 3 * np.eye(SOURCE_CLASSES)[(y * 7) % SOURCE_CLASSES]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return x, y, probs


def _ped_own_work(x, y, device):
    checked = check_features_labels(x, y, metric="ped", device=device)
    return ped_transform(checked.values, checked.labels, checked.n_classes)


def time_call(fn, repeats: int) -> tuple[float, object]:
    """Median seconds over ``repeats`` calls after one warm-up; returns (median, last result)."""
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run(devices: list[str], sizes, repeats: int, budget: float, eigen: bool) -> dict:
    rows = []
    too_slow: dict[tuple[str, str], str] = {}
    for device in devices:
        for n, d, c in sizes:
            x, y, probs = make_data(n, d, c)
            reps = repeats if n * d <= 5000 * 1024 else max(1, repeats // 2)
            timings: dict[str, float] = {}
            for name in list_metrics():
                key = (device, name)
                row = {"device": device, "n": n, "d": d, "c": c, "metric": name}
                if key in too_slow:
                    rows.append({**row, "seconds": None, "skipped": too_slow[key]})
                    continue
                inputs = probs if metric_info(name).input == "probabilities" else x
                fn = get_metric(name)
                seconds, score = time_call(functools.partial(fn, inputs, y, device=device), reps)
                timings[name] = seconds
                rows.append({**row, "seconds": seconds, "score": float(score)})
                print(f"[{device}] {name:>20} N={n:>5} D={d:>4} C={c:>3}: {seconds:8.3f} s", flush=True)
                # Project the next size's time by the growth of N·D·C (most metrics grow at
                # least that fast) and skip it when the projection exceeds the budget.
                next_size = next((s for s in sizes if s[0] * s[1] * s[2] > n * d * c), None)
                if next_size is not None:
                    projected = seconds * (next_size[0] * next_size[1] * next_size[2]) / (n * d * c)
                    if projected > budget:
                        too_slow[key] = (f"took {seconds:.1f} s at N={n}, D={d}, C={c}; projected "
                                         f"≥ {projected:.0f} s at the next size (budget {budget:.0f} s)")
            # PED's own work is everything ped() does before handing the moved features to its
            # base metric: input validation and the dynamics. Timed directly, because the base
            # metric's time on moved features differs from its time on the originals (e.g. the
            # NLEEP mixture converges in a different number of EM steps).
            own_seconds, _ = time_call(functools.partial(_ped_own_work, x, y, device), reps)
            for base in PED_BASES:
                if base not in timings:
                    continue
                rows.append({"device": device, "n": n, "d": d, "c": c, "metric": f"ped+{base}",
                             "seconds": own_seconds + timings[base], "ped_own_seconds": own_seconds,
                             "base_seconds": timings[base], "overhead": own_seconds / timings[base]})
                print(f"[{device}] ped own work {own_seconds:.3f} s = {own_seconds / timings[base]:.1%} of {base}")
            if eigen and device == "cpu" and "sfda" in timings:
                eig_seconds, eig_score = time_call(lambda x=x, y=y: sfda_eigen(x.astype(np.float64), y), 1)
                fast_score = get_metric("sfda")(x, y)
                rows.append({"device": device, "n": n, "d": d, "c": c, "metric": "sfda (eigensolver form)",
                             "seconds": eig_seconds, "score": eig_score,
                             "speedup": eig_seconds / timings["sfda"],
                             "relative_difference": abs(fast_score - eig_score) / abs(eig_score)})
                print(f"[cpu] sfda eigensolver {eig_seconds:.3f} s, speed-up {eig_seconds / timings['sfda']:.1f}x")
    return {"rows": rows}


def environment() -> dict:
    import scipy
    import sklearn

    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            env["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return env


def to_markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# Transferability metric speed",
        "",
        f"Measured {env['date']} with `benchmark/metrics_speed.py` on {env['cpu']} "
        f"({env['cpu_count']} cores, torch {env['torch']} with {env['torch_threads']} threads"
        + (f", GPU {env['cuda']}" if env["cuda"] else ", no GPU") + "). "
        "Median wall time in seconds after a warm-up call; features are float32 Gaussian class "
        f"blobs, LEEP/NCE get softmax probabilities over {SOURCE_CLASSES} source classes.",
        "",
    ]
    for device in sorted({r["device"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["device"] == device]
        sizes = sorted({(r["n"], r["d"], r["c"]) for r in rows})
        names = list(dict.fromkeys(r["metric"] for r in rows))
        lines += [f"## {device}", "", "| metric | " + " | ".join(f"N={n}, D={d}, C={c}" for n, d, c in sizes) + " |",
                  "|---|" + "---:|" * len(sizes)]
        for name in names:
            cells = []
            for size in sizes:
                r = next((r for r in rows if r["metric"] == name and (r["n"], r["d"], r["c"]) == size), None)
                if r is None:
                    cells.append("–")
                elif r.get("seconds") is None:
                    cells.append("skipped")
                else:
                    extra = ""
                    if "speedup" in r:
                        extra = f" (fast SFDA is {r['speedup']:.1f}x faster; rel. diff {r['relative_difference']:.1e})"
                    elif "overhead" in r:
                        extra = (f" (PED's own work {r['ped_own_seconds']:.3f} s = {r['overhead']:.0%} of "
                                 f"{name.split('+')[1]})")
                    cells.append(f"{r['seconds']:.3f}{extra}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        skipped = [r for r in rows if r.get("skipped")]
        if skipped:
            lines += ["", "Skipped: " + "; ".join(f"{r['metric']} at N={r['n']} ({r['skipped']})" for r in skipped)]
        lines.append("")
    lines += ["## Targets", ""] + [f"- {t}" for t in result["targets"]] + [""]
    return "\n".join(lines)


def check_targets(result: dict) -> list[str]:
    out = []
    eig = [r for r in result["rows"] if r["metric"] == "sfda (eigensolver form)" and (r["n"], r["d"]) == (5000, 1024)]
    for r in eig:
        ok = r["speedup"] >= 10 and r["relative_difference"] <= 1e-6
        out.append(f"SFDA ≥ 10x faster than the eigensolver form at (5000, 1024, 50) with rel. diff ≤ 1e-6: "
                   f"{'met' if ok else 'MISSED'} ({r['speedup']:.1f}x, rel. diff {r['relative_difference']:.1e})")
    for r in result["rows"]:
        if "overhead" in r and (r["n"], r["d"]) == (5000, 1024):
            ok = r["overhead"] <= 0.20
            out.append(f"PED overhead ≤ 20 % of {r['metric'].split('+')[1]} on {r['device']} at (5000, 1024, 50): "
                       f"{'met' if ok else 'MISSED'} ({r['overhead']:.1%})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest size only; print, write nothing")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per metric (median reported)")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="projected seconds above which a metric is not run at the next size")
    parser.add_argument("--no-eigen", action="store_true", help="skip the slow eigensolver-form SFDA")
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = SIZES[:1] if args.quick else SIZES
    result = run(devices, sizes, args.repeats, args.budget, eigen=not args.no_eigen)
    result["environment"] = environment()
    result["targets"] = check_targets(result)
    for line in result["targets"]:
        print(line)
    if args.quick:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if devices == ["cpu"] else "_cuda"
    for ext, text in (("json", json.dumps(result, indent=2)), ("md", to_markdown(result))):
        path = RESULTS / f"metrics_speed{suffix}.{ext}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
