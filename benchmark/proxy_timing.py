"""Time to describe one historical task (1000 images) with the Hub proxies, on this machine.

Run::

    .venv/bin/python benchmark/proxy_timing.py [--images 1000] [--large-images 32] [--threads 2]

No network: each proxy is a random-weight stand-in built from its real Hub config (the
``config.json`` and ``preprocessor_config.json`` of :data:`fennec.task.CPU_PROXY` and
:data:`fennec.task.GPU_PROXY`, recorded in :data:`PROXY_CONFIGS` with the commit they were
read at), written as a Hub-style repository in a temporary folder and loaded through
fennec's own path (``LocalHub`` -> ``fennec.task.task_descriptor``). Random weights cost the
same forward passes as the trained ones: the time is the real one.

The task is a local parquet dataset of ``--images`` JPEG photos (500 x 375 px, 10 classes,
noise with class-specific colour), sampled with :func:`fennec.data.load_sample` exactly as
``fennec fit`` samples a historical task (1000 images, stratified, seed 0); reading it from
the Hub adds the transfer of the sampled rows' row groups (not measured here).

Reported, wall clock and the process's CPU time: seconds to decode the sample, and seconds
for loading the proxy, its forward passes and the descriptor, for the CPU proxy on
``--images`` images. On a shared machine the CPU time divided by the torch threads is what
that many dedicated cores would take. The GPU proxy is timed on ``--large-images`` and on a
third of that (both include loading its 1.2 GB of weights); the difference of their CPU times
gives its cost per image, extrapolated to ``--images``: what the CPU would take if it used the
large proxy. Writes ``benchmark/results/proxy_timing.{json,md}``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "benchmark" / "results"

#: The real Hub configs of the two proxies (read from huggingface.co, commit given), without
#: their weights. The preprocessor is the same for both (BitImageProcessor: shorter side to
#: 256 px bicubic, centre crop 224, ImageNet mean and std).
_DINOV2_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor", "image_std": [0.229, 0.224, 0.225], "resample": 3,
    "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256},
}
_DINOV2_COMMON = {
    "architectures": ["Dinov2Model"], "attention_probs_dropout_prob": 0.0, "drop_path_rate": 0.0,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "image_size": 518, "initializer_range": 0.02,
    "layer_norm_eps": 1e-06, "layerscale_value": 1.0, "mlp_ratio": 4, "model_type": "dinov2",
    "num_channels": 3, "patch_size": 14, "qkv_bias": True, "torch_dtype": "float32", "use_swiglu_ffn": False,
}
PROXY_CONFIGS: dict[str, dict[str, Any]] = {
    "facebook/dinov2-small": {
        "commit": "2c0a65b (config.json at huggingface.co/facebook/dinov2-small)",
        "config": {**_DINOV2_COMMON, "hidden_size": 384, "num_attention_heads": 6, "num_hidden_layers": 12},
        "preprocessor": _DINOV2_PREPROCESSOR,
    },
    "facebook/dinov2-large": {
        "commit": "main (config.json at huggingface.co/facebook/dinov2-large)",
        "config": {**_DINOV2_COMMON, "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24},
        "preprocessor": _DINOV2_PREPROCESSOR,
    },
}


def write_proxy(root: Path, repo_id: str) -> Path:
    """A random-weight stand-in of ``repo_id`` (its real config) as a Hub-style repository."""
    import torch

    from archi2vec._compat import import_transformers

    transformers = import_transformers()  # torchvision's operators registered first
    spec = PROXY_CONFIGS[repo_id]
    folder = root / repo_id
    torch.manual_seed(0)
    model = transformers.Dinov2Model(transformers.Dinov2Config(**spec["config"]))
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "config.json").write_text(json.dumps(spec["config"], indent=1))  # the Hub's file, as is
    (folder / "preprocessor_config.json").write_text(json.dumps(spec["preprocessor"], indent=1))
    (folder / "README.md").write_text("---\npipeline_tag: image-feature-extraction\nlibrary_name: transformers\n"
                                      f"---\n\nRandom-weight stand-in of {repo_id} (benchmark/proxy_timing.py)\n")
    return folder


def write_photos(folder: Path, n: int, *, n_classes: int = 10, seed: int = 0) -> Path:
    """``n`` JPEG photos (500 x 375) in one parquet file with ``image`` and ``label`` columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        c = i % n_classes
        base = np.array([(37 * c) % 256, (91 * c) % 256, (151 * c) % 256], dtype=np.float64)
        arr = np.clip(base + rng.normal(0, 40, size=(375, 500, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        images.append({"bytes": buf.getvalue(), "path": None})
        labels.append(c)
    features = {"image": {"_type": "Image"},
                "label": {"_type": "ClassLabel", "names": [f"c{k}" for k in range(n_classes)]}}
    table = pa.table({"image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "label": pa.array(labels, type=pa.int64())})
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train-00000-of-00001.parquet"
    pq.write_table(table, path, row_group_size=100)
    return path


def time_proxy(hub: Any, proxy: str, data: Path, n_images: int) -> dict[str, Any]:
    """Sample ``n_images`` from ``data`` as fit does, then describe it with ``proxy`` (no cache)."""
    from fennec.data import load_sample
    from fennec.task import task_descriptor

    t, c = time.perf_counter(), time.process_time()
    sample = load_sample(data, max_samples=n_images, seed=0)
    decode_s, decode_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    desc = task_descriptor(sample, proxy=proxy, hub=hub, cache=False, device="cpu")
    describe_s, describe_cpu = time.perf_counter() - t, time.process_time() - c
    return {"proxy": proxy, "images": len(sample), "classes": sample.n_classes, "decode_s": round(decode_s, 2),
            "decode_cpu_s": round(decode_cpu, 2), "describe_s": round(describe_s, 2),
            "describe_cpu_s": round(describe_cpu, 2), "descriptor_length": int(desc.vector.size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1000, help="images of one task (fit samples 1000)")
    p.add_argument("--large-images", type=int, default=60, help="images timed with the GPU proxy on this CPU (and a "
                   "third of that, at least 20, to cancel out its loading); a multiple of 10 above 20")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import torch

    import fennec  # noqa: F401  (the torchvision shim)
    from fennec.hub import LocalHub
    from fennec.task import CPU_PROXY, GPU_PROXY

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="fennec-proxy-timing-") as tmp:
        root = Path(tmp)
        os.environ["FENNEC_HOME"] = str(root / "home")
        for proxy in (CPU_PROXY, GPU_PROXY):
            write_proxy(root / "hub", proxy)
        data = write_photos(root / "data", args.images)
        hub = LocalHub(root / "hub")
        rows = [time_proxy(hub, CPU_PROXY, data, args.images),
                time_proxy(hub, GPU_PROXY, data, args.large_images)]
        fewer = time_proxy(hub, GPU_PROXY, data, max(20, args.large_images // 3))  # >= 2 images per class
    small, large = rows
    threads = torch.get_num_threads()
    small["dedicated_s"] = round((small["decode_cpu_s"] + small["describe_cpu_s"]) / threads, 1)
    # CPU seconds per image of the large proxy, its loading cancelled out by the difference of two runs
    per_image = (large["describe_cpu_s"] - fewer["describe_cpu_s"]) / (large["images"] - fewer["images"])
    large["cpu_s_per_image"] = round(per_image, 3)
    large["fewer_images_run"] = fewer
    large["dedicated_s_for_images"] = round(per_image * args.images / threads, 1)
    out = {
        "generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "torch": torch.__version__,
                    "load_average_at_start": os.getloadavg()},
        "images": args.images, "rows": rows,
        "configs": {k: v["commit"] for k, v in PROXY_CONFIGS.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proxy_timing.json").write_text(json.dumps(out, indent=1) + "\n")
    (args.out / "proxy_timing.md").write_text(_report(out))
    print(_report(out))
    return 0


def _report(out: dict[str, Any]) -> str:
    small, large = out["rows"]
    m = out["machine"]
    threads = m["torch_threads"]
    return f"""# Describing one task with the Hub proxies: time on this CPU

`benchmark/proxy_timing.py`, {out['generated_utc']}: {m['cpu_count']} CPU cores shared with other jobs (load
average {m['load_average_at_start'][0]:.1f} at the start), torch {m['torch']} with {threads} thread{'' if threads == 1 else 's'}.
Random-weight stand-ins built from the proxies' real Hub configs (no download; the forward
passes cost the same as the trained weights'); a local parquet task of {out['images']} JPEG
photos (500 x 375, 10 classes), sampled as `fennec fit` samples a historical task.

The machine is shared, so wall-clock times follow the other jobs' load; the process's CPU
time divided by its {threads} thread{'' if threads == 1 else 's'} is what {threads} dedicated core{'' if threads == 1 else 's'} would take
("dedicated").

| proxy | images | decode wall / CPU (s) | proxy + descriptor wall / CPU (s) | one task of {out['images']} images, dedicated |
|---|---:|---:|---:|---:|
| `{small['proxy']}` (CPU default) | {small['images']} | {small['decode_s']} / {small['decode_cpu_s']} | {small['describe_s']} / {small['describe_cpu_s']} | **{small['dedicated_s']:.0f} s** (this run's wall clock: {small['decode_s'] + small['describe_s']:.0f} s) |
| `{large['proxy']}` (GPU default) | {large['images']} | {large['decode_s']} / {large['decode_cpu_s']} | {large['describe_s']} / {large['describe_cpu_s']} | ~{large['dedicated_s_for_images']:.0f} s ({large['cpu_s_per_image']} CPU s per image, extrapolated) |

On a CPU, fennec's default proxy is `{small['proxy']}`: a historical task takes minutes,
where `{large['proxy']}` would take about {large['dedicated_s_for_images'] / 60:.0f} minutes per task. With
CUDA available the default is `{large['proxy']}` (not measured here: no GPU was lent to this run).
Reading a task from the Hub adds the download of the sampled rows' parquet row groups.
Either default is replaced with `fennec fit --proxy` / `fennec init --proxy`, or
`FENNEC_PROXY_CPU` / `FENNEC_PROXY_GPU`.
"""  # noqa: E501 - a markdown table row per line of the report


if __name__ == "__main__":
    raise SystemExit(main())
