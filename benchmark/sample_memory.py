"""Peak memory and time of sampling a dataset of 12-megapixel photos, as ``recommend()`` does.

Run::

    .venv/bin/python benchmark/sample_memory.py [--images 1000] [--before-images 20]

Writes ``--images`` JPEGs of ``--width`` x ``--height`` pixels (default 4000 x 3000, 12 MP;
photo-like content: gradients and sensor-like noise, ~1.4 MB each) into an ImageFolder of
``--classes`` classes under a temporary folder in /tmp (deleted at the end unless
``--keep``), then, each in a fresh Python process so that its peak is its own:

* **after**: ``fennec.data.load_sample(folder, max_samples=N, seed=0)``, the call
  ``recommend()`` makes with its default sample size (every image sampled when N = 1000
  and ``max_samples`` = 1000), with the default ``image_side`` (512);
* **before**: the same call on the ``fennec/data/`` of ``--before-rev`` (the commit
  before images were bounded; its source is read with ``git show`` and run against
  today's ``fennec.data.sources``), on the first ``--before-images`` images only, since
  the full set would not fit in memory; its peak is extrapolated linearly to N.

Reported: peak resident memory above the process's footprint after the imports (Linux:
the peak is reset after the imports, ``/proc/self/clear_refs``, and read as ``VmHWM``), seconds,
the bytes the sampled images hold, and their largest stored size.
Writes ``benchmark/results/sample_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"
BEFORE_REV = "ace830c"  # fennec/data/ before samples were bounded


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc/self/status, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the process's peak resident set (Linux: ``5 > /proc/self/clear_refs``), so that
    the peak measured next is the sampling's own, not the imports' (torch's)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _write_images(root: Path, n: int, classes: int, width: int, height: int) -> float:
    """``root/c<k>/<i>.jpg``: n photo-like JPEGs; returns their total size in MB."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1)  # (H, W, 3) in [0, 1]
    total = 0
    for i in range(n):
        folder = root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        gain = rng.uniform(0.4, 1.0, size=3).astype(np.float32) * 255
        arr = base * gain + rng.integers(0, 12, size=(height, width, 3), dtype=np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=85)
        total += path.stat().st_size
    return total / 1e6


def _child(mode: str, folder: str, n: int, before_rev: str) -> None:
    """Runs in a fresh process: one load_sample call; prints a JSON line of measurements."""
    import fennec
    import fennec.data

    module = fennec.data
    if mode == "before":
        source = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{before_rev}:fennec/data/"],
                                check=True, capture_output=True, text=True).stdout
        spec = importlib.util.spec_from_loader("fennec._data_before", loader=None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        exec(compile(source, f"{before_rev}:fennec/data/", "exec"), module.__dict__)
    import PIL.Image  # noqa: F401  (imported by load_sample; counted in the footprint)

    reset = _reset_peak()
    base = _status_mib("VmRSS")
    t0 = time.perf_counter()
    s = module.load_sample(folder, max_samples=n, seed=0)
    seconds = time.perf_counter() - t0
    # VmHWM: the peak since the reset; without one, ru_maxrss (the peak since the start)
    peak = _status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = [img.size for img in s.images]
    print(json.dumps({"images": len(s), "seconds": round(seconds, 2), "footprint_mib": round(base, 1),
                      "peak_mib": round(peak, 1), "peak_above_footprint_mib": round(peak - base, 1),
                      "pixel_bytes_mib": round(sum(w * h * 3 for w, h in sizes) / 2**20, 1),
                      "largest_stored": list(max(sizes, key=lambda wh: wh[0] * wh[1])),
                      "fingerprint": s.fingerprint[:12]}))


def _measure(mode: str, folder: Path, n: int, before_rev: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(folder), str(n), before_rev],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    if out.returncode:
        raise RuntimeError(f"the {mode!r} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _subset(folder: Path, dest: Path, n: int, classes: int) -> Path:
    """Hard links to the first n images (round-robin over classes), for the 'before' run."""
    by_class = [sorted((folder / f"c{k}").glob("*.jpg")) for k in range(classes)]
    files = [by_class[i % classes][i // classes] for i in range(n)]
    for f in files:
        (dest / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(f, dest / f.parent.name / f.name)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--before-images", type=int, default=20)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--before-rev", default=BEFORE_REV)
    p.add_argument("--keep", action="store_true", help="keep the generated images")
    p.add_argument("--child", nargs=4, metavar=("MODE", "FOLDER", "N", "REV"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        mode, folder, n, rev = args.child
        _child(mode, folder, int(n), rev)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="fennec-sample-memory-", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        mb = _write_images(tmp / "photos", args.images, args.classes, args.width, args.height)
        generated = time.perf_counter() - t0
        print(f"wrote {args.images} JPEGs ({mb:.0f} MB) in {generated:.0f} s", flush=True)
        after = _measure("after", tmp / "photos", args.images, args.before_rev)
        print("after:", after, flush=True)
        small = _subset(tmp / "photos", tmp / "subset", args.before_images, args.classes)
        before = _measure("before", small, args.before_images, args.before_rev)
        after_small = _measure("after", small, args.before_images, args.before_rev)
        print("before:", before, "after (same subset):", after_small, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    per_image = before["peak_above_footprint_mib"] / before["images"]
    result = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "dataset": {"images": args.images, "classes": args.classes, "width": args.width,
                    "height": args.height, "jpeg_mb": round(mb, 1), "generation_seconds": round(generated, 1)},
        "after": after,
        "after_on_before_subset": after_small,
        "before": {**before, "rev": args.before_rev,
                   "per_image_mib": round(per_image, 1),
                   "extrapolated_peak_above_footprint_mib": round(per_image * args.images, 0)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sample_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    b, a, a2 = result["before"], after, after_small
    md = [
        "# Sampling memory on 12-megapixel photos",
        "",
        f"Generated by `benchmark/sample_memory.py` on {result['generated']} "
        f"({result['machine']['platform']}, {result['machine']['cpus']} CPUs, shared).",
        "",
        f"Dataset: {args.images} JPEGs of {args.width} x {args.height} px ({mb:.0f} MB on disk) in "
        f"{args.classes} classes; `load_sample(folder, max_samples={args.images}, seed=0)` as `recommend()` "
        "calls it, each run in a fresh process. Peak = `VmHWM` (reset after the imports) above the "
        "process's resident footprint after its imports.",
        "",
        "| run | images | peak above footprint (MiB) | seconds | pixels held (MiB) | largest stored |",
        "|---|---:|---:|---:|---:|---|",
        f"| before ({b['rev']}, full resolution) | {b['images']} | {b['peak_above_footprint_mib']} | "
        f"{b['seconds']} | {b['pixel_bytes_mib']} | {b['largest_stored'][0]}x{b['largest_stored'][1]} |",
        f"| before, extrapolated | {args.images} | ~{b['extrapolated_peak_above_footprint_mib']:.0f} | | | |",
        f"| after (image_side 512) | {a2['images']} | {a2['peak_above_footprint_mib']} | {a2['seconds']} | "
        f"{a2['pixel_bytes_mib']} | {a2['largest_stored'][0]}x{a2['largest_stored'][1]} |",
        f"| after (image_side 512) | {a['images']} | **{a['peak_above_footprint_mib']}** | {a['seconds']} | "
        f"{a['pixel_bytes_mib']} | {a['largest_stored'][0]}x{a['largest_stored'][1]} |",
        "",
        f"Before: {b['per_image_mib']} MiB per sampled image (each decoded at full resolution, "
        f"{args.width * args.height * 3 / 2**20:.0f} MiB of RGB, and kept; the fingerprint hashed a copy of its "
        "bytes), so the sample grew linearly with N. After: each JPEG is decoded at reduced DCT scale "
        f"(`Image.draft`) and kept at {a['largest_stored'][0]} x {a['largest_stored'][1]} "
        f"({a['pixel_bytes_mib'] / max(a['images'], 1):.2f} MiB), so the peak for {a['images']} images is "
        f"{a['peak_above_footprint_mib']:.0f} MiB.",
        "",
    ]
    (RESULTS / "sample_memory.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
