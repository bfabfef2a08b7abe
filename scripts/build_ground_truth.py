"""Fine-tune every zoo model on every target dataset: the ground truth of fennec's zoo benchmark.

A resumable job queue. One job = one (model, target, seed) fine-tune under the fixed protocol of
``benchmark/zoo_protocol.md`` (``Protocol`` below). Each finished job writes its result JSON
atomically (temporary file + rename) to ``benchmark/zoo_runs/<model>__<target>__seed<k>.json``;
finished jobs are skipped, so a killed run loses at most the jobs in flight. Seed 0 runs on every
(model, target) pair, seed 1 on a fixed, seeded subset of the pairs (SECOND_SEED_FRACTION per
target) for the noise ceiling.

Run::

    python scripts/build_ground_truth.py run --workers 2 [--max-hours 3]   # resume the queue
    python scripts/build_ground_truth.py run --ray [ADDRESS]              # the same, as Ray tasks
    python scripts/build_ground_truth.py aggregate                         # tables, report, plot
    python scripts/build_ground_truth.py status                            # counts only

With ``--ray`` (or ``FENNEC_RAY_ADDRESS``) the jobs run as Ray tasks, on a Ray instance started
here (``--workers`` CPUs) or a cluster; this process writes each result as it comes back, and
Ray's scheduler takes the place of the claim files (:func:`_run_on_ray`).

``run`` also aggregates when it stops. ``aggregate`` works on partial results and reports the
coverage. Needs the target datasets (scripts/build_datasets.py) and the zoo (scripts/build_zoo.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import logging
import math
import os
import platform
import socket
import sys
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _zoo_common

_zoo_common.torchvision_compat()

from fennec._io import sha256_file  # noqa: E402

LOG = logging.getLogger("build_ground_truth")

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = REPO_ROOT / "benchmark" / "zoo_runs"
RESULTS_DIR = REPO_ROOT / "benchmark" / "results"
HUB_DIR = REPO_ROOT / "zoo" / "hub"
DATASETS_DIR = REPO_ROOT / "zoo" / "datasets"
SECOND_SEED_FRACTION = 0.3  # share of each target's models that also get seed 1


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The fixed fine-tuning protocol (see benchmark/zoo_protocol.md)."""

    version: str = "zoo-ft-v1"
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # grid, one run each, chosen on validation
    steps: int = 150  # fixed step budget per run, whatever the training-set size
    batch_size: int = 32
    weight_decay: float = 0.01  # AdamW
    warmup_fraction: float = 0.1  # linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0  # max global grad norm
    translate_px: int = 2  # augmentation: random translation (reflect padding), nothing else
    selection: str = "validation accuracy; ties -> smaller learning rate"
    metric: str = "top-1 accuracy on the test split of the run with the selected learning rate"
    threads: int = 1  # torch threads per job


PROTOCOL = Protocol()


# ----------------------------------------------------------------------------------------------
# Jobs
# ----------------------------------------------------------------------------------------------

def zoo_models(hub_dir: Path = HUB_DIR) -> list[str]:
    """repo ids of the zoo models that are fine-tuned (every built repo except the proxy)."""
    from build_zoo import ZOO

    return [s.repo_id for s in ZOO if (hub_dir / s.repo_id / "model.safetensors").exists()] if hub_dir.exists() else []


def target_names() -> list[str]:
    from build_datasets import RECIPES

    return [n for n, r in RECIPES.items() if r.kind == "target"]


def second_seed_models(models: list[str], target: str, fraction: float = SECOND_SEED_FRACTION) -> list[str]:
    """The seeded subset of `models` that gets a second seed on `target`: the ceil(fraction * n)
    (at least 3) models with the smallest hash of (model, target). Depends only on the names, so it
    is the same on every machine; `all_jobs` draws it from the whole zoo definition, not from the
    models built so far."""
    scored = sorted(models, key=lambda m: zlib.crc32(f"{m}|{target}|seed1".encode()))
    return sorted(scored[:max(3, math.ceil(fraction * len(models)))])


def zoo_definition() -> list[str]:
    """repo ids of every fine-tuned zoo model in scripts/build_zoo.py, built or not."""
    from build_zoo import ZOO

    return [s.repo_id for s in ZOO]


def all_jobs(models: list[str], targets: list[str], *, pool: list[str] | None = None) -> list[tuple[str, str, int]]:
    """Every (model, target, seed) job, in queue order: target after target (in `targets`
    order), each target's seed-0 jobs (every model) then its seed-1 jobs, so that a partial run
    leaves whole targets finished rather than every target a little -- a target enters the
    aggregated ground truth (the zoo's history) only once its seed-0 results are complete
    (:func:`aggregate`). The seed-1 subset is drawn from `pool` (default: `models`) and
    restricted to `models`."""
    pool = models if pool is None else pool
    jobs = []
    for t in targets:
        jobs += [(m, t, 0) for m in models]
        jobs += [(m, t, 1) for m in second_seed_models(pool, t) if m in models]
    return jobs


def job_path(model: str, target: str, seed: int, runs_dir: Path = RUNS_DIR) -> Path:
    return runs_dir / f"{model.replace('/', '--')}__{target}__seed{seed}.json"


def is_done(path: Path, protocol: Protocol = PROTOCOL, *, hub_dir: Path = HUB_DIR,
            datasets_dir: Path = DATASETS_DIR) -> bool:
    """A finished result of this protocol version, for the model weights and target pixels
    that are there now (:func:`stale_reason`). Results whose head kept the checkpoint's
    weights (before the head re-initialisation fix: see ``checkpoint_labels``) are redone."""
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
        if record["protocol"]["version"] != protocol.version:
            return False
    except (ValueError, KeyError, OSError):
        return False  # a corrupt file is redone
    if stale_reason(record, hub_dir=hub_dir, datasets_dir=datasets_dir):
        return False
    if record.get("head_reinit") is None and (hub_dir / record["model"] / "config.json").exists():
        return checkpoint_labels(hub_dir / record["model"]) != record.get("num_classes")
    return True


def stale_reason(record: dict, *, hub_dir: Path = HUB_DIR, datasets_dir: Path = DATASETS_DIR) -> str | None:
    """Why a result no longer describes the zoo (None if it does): the model's weights or the
    target's pixels differ from the ones it was fine-tuned on. Models or targets that are not
    there are not judged."""
    weights = hub_dir / record.get("model", "") / "model.safetensors"
    if record.get("model_sha256") and weights.is_file():
        st = weights.stat()
        if _weights_sha(str(weights), st.st_mtime_ns, st.st_size) != record["model_sha256"]:
            return f"the weights of {record['model']} changed since it was fine-tuned"
    data = datasets_dir / record.get("target", "")
    if record.get("dataset_sha256") and (data / "data").is_dir():
        if _dataset_fingerprint(str(data)) != record["dataset_sha256"]:
            return f"the pixels of {record['target']} changed since it was fine-tuned on"
    return None


@functools.cache
def _weights_sha(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


@functools.cache
def _dataset_fingerprint(folder: str) -> str:
    """The fingerprint of a stored target, computed from its decoded pixels and labels (the
    arrays :func:`finetune` trains on: decoded once for both)."""
    from build_datasets import fingerprint

    return fingerprint(_target_arrays(Path(folder).name, Path(folder).parent))


def checkpoint_labels(model_dir: Path) -> int | None:
    """The number of classes of the checkpoint's own head (None if it does not say).

    ``from_pretrained(..., num_labels=C, ignore_mismatched_sizes=True)`` re-initialises the
    head only when its shape differs: with C equal to this number the pre-trained head would be
    kept, so :func:`finetune` re-initialises it explicitly (the protocol's fresh head).
    """
    config = json.loads((model_dir / "config.json").read_text())
    labels = config.get("id2label") or {}
    return len(labels) if labels else config.get("num_labels")


#: Head modules of transformers image classifiers (DeiT/LeViT with a teacher have two).
HEAD_NAMES = ("classifier", "cls_classifier", "distillation_classifier", "classifier_distill")


def reinit_head(model) -> list[str]:
    """Re-initialise the classification head(s) as transformers initialises missing weights."""
    names = [n for n in HEAD_NAMES if getattr(model, n, None) is not None]
    if not names:
        raise RuntimeError(f"{type(model).__name__}: no classification head among {HEAD_NAMES}")
    for name in names:
        head = getattr(model, name)
        for param in head.parameters():  # transformers skips tensors it has marked initialised
            if hasattr(param, "_is_hf_initialized"):
                del param._is_hf_initialized
        for module in head.modules():
            module._is_hf_initialized = False
        head.apply(model._init_weights)
    return names


def write_atomic(path: Path, payload: dict) -> None:
    """Write JSON to `path` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# One fine-tune
# ----------------------------------------------------------------------------------------------

_DATA_CACHE: dict = {}


def _target_arrays(target: str, datasets_dir: Path):
    from build_datasets import load_split_arrays

    key = (str(datasets_dir), target)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = {s: load_split_arrays(datasets_dir / target, s) for s in ("train", "validation", "test")}
    return _DATA_CACHE[key]


def _prep(x: np.ndarray, size: int, mean, std):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(255.0)
    if t.shape[-1] != size:
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def finetune(model_dir: Path, target: str, seed: int, *, protocol: Protocol = PROTOCOL,
             datasets_dir: Path = DATASETS_DIR, device: str = "cpu") -> dict:
    """Run the protocol for one (model, target, seed): every learning rate of the grid, then select.
    ``device``: ``cpu`` (the protocol's ground truth), or ``cuda`` for a job given a GPU."""
    import torch
    import transformers as T

    torch.set_num_threads(protocol.threads)
    T.logging.set_verbosity_error()
    data = _target_arrays(target, datasets_dir)
    n_classes = int(max(int(data[s][1].max()) for s in data) + 1)
    explicit_reinit = checkpoint_labels(model_dir) == n_classes
    pcfg = json.loads((model_dir / "preprocessor_config.json").read_text())
    size = int(pcfg["size"]["height"])
    mean, std = pcfg["image_mean"], pcfg["image_std"]
    xs = {s: _prep(data[s][0], size, mean, std).to(device) for s in data}
    ys = {s: torch.from_numpy(data[s][1]).to(device) for s in data}
    runs = []
    t_job, cpu_job = time.time(), time.process_time()
    for lr in protocol.learning_rates:
        t0, cpu0 = time.time(), time.process_time()
        torch.manual_seed(seed)
        model = T.AutoModelForImageClassification.from_pretrained(
            model_dir, num_labels=n_classes, ignore_mismatched_sizes=True, dtype=torch.float32)
        if explicit_reinit:  # same label count: from_pretrained kept the pre-trained head
            reinit_head(model)
        model.float().to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=protocol.weight_decay)
        warm = max(1, int(protocol.warmup_fraction * protocol.steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, warm=warm: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / protocol.steps)))
        gen = torch.Generator().manual_seed(seed)
        xtr, ytr = xs["train"], ys["train"]
        losses = []
        for _ in range(protocol.steps):
            idx = torch.randint(0, len(ytr), (protocol.batch_size,), generator=gen)
            xb = _translate(xtr[idx], gen, protocol.translate_px)
            loss = torch.nn.functional.cross_entropy(model(pixel_values=xb).logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
        val = _accuracy(model, xs["validation"], ys["validation"])
        test = _accuracy(model, xs["test"], ys["test"])
        runs.append({"lr": lr, "val_accuracy": val, "test_accuracy": test,
                     "final_train_loss": float(np.mean(losses[-20:])),
                     "finite": bool(np.isfinite(losses).all()), "seconds": round(time.time() - t0, 2),
                     "cpu_seconds": round(time.process_time() - cpu0, 2)})
    best = max(runs, key=lambda r: (r["val_accuracy"], -r["lr"]))
    return {"lr": best["lr"], "val_accuracy": best["val_accuracy"], "test_accuracy": best["test_accuracy"],
            "runs": runs, "seconds": round(time.time() - t_job, 2),
            "cpu_seconds": round(time.process_time() - cpu_job, 2), "num_classes": n_classes,
            "n_train": int(len(ys["train"])), "n_val": int(len(ys["validation"])), "n_test": int(len(ys["test"])),
            "input_size": size, "params": int(sum(p.numel() for p in model.parameters())),
            "head_reinit": "explicit" if explicit_reinit else "size-mismatch", "device": str(device)}


def _translate(x, gen, pad: int):
    import torch

    if pad == 0:
        return x
    n, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    return torch.stack([xp[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])


def _accuracy(model, x, y, batch: int = 250) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(pixel_values=x[i:i + batch]).logits.argmax(-1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(y)


def run_job(model: str, target: str, seed: int, *, runs_dir: Path = RUNS_DIR, hub_dir: Path = HUB_DIR,
            datasets_dir: Path = DATASETS_DIR, protocol: Protocol = PROTOCOL) -> dict:
    """Fine-tune one job and write its result JSON atomically; return the record."""
    record = job_record(model, target, seed, hub_dir=hub_dir, datasets_dir=datasets_dir, protocol=protocol)
    write_atomic(job_path(model, target, seed, runs_dir), record)
    return record


def job_record(model: str, target: str, seed: int, *, hub_dir: Path = HUB_DIR, datasets_dir: Path = DATASETS_DIR,
               protocol: Protocol = PROTOCOL, device: str = "cpu") -> dict:
    """Fine-tune one job; its result record (what :func:`run_job` writes; a Ray task of
    ``run --ray`` returns it to the queue, which writes it)."""
    import torch
    import transformers

    model_dir = hub_dir / model
    res = finetune(model_dir, target, seed, protocol=protocol, datasets_dir=datasets_dir, device=device)
    return {"model": model, "target": target, "seed": seed, **res,
              "protocol": dataclasses.asdict(protocol),
              "model_sha256": sha256_file(model_dir / "model.safetensors"),
              "dataset_sha256": _dataset_fingerprint(str(datasets_dir / target)),  # the pixels it ran on
              "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "host": socket.gethostname(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
              "torch": torch.__version__, "transformers": transformers.__version__}


def _init_worker():
    import torch

    torch.set_num_threads(PROTOCOL.threads)
    try:
        os.nice(0)
    except OSError:
        pass


def _claim(path: Path) -> int | None:
    """Claim a job: an exclusive ``flock`` on its lock file, held while the job runs.

    Two queues on one machine never run the same job, and a killed worker's claim is released
    by the kernel (no stale lock to take over). Returns the lock's file descriptor, or None when
    another process holds it.
    """
    import fcntl

    lock = path.parent / ".claims" / (path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{socket.gethostname()}:{os.getpid()}".encode())
    return fd


def _release(fd: int) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _claimed_job(model, target, seed, runs_dir, hub_dir=HUB_DIR, datasets_dir=DATASETS_DIR, protocol=PROTOCOL):
    path = job_path(model, target, seed, runs_dir)
    if is_done(path, hub_dir=hub_dir, datasets_dir=datasets_dir):
        return None
    fd = _claim(path)
    if fd is None:
        LOG.info("skip %s %s seed%d: another queue is running it", model, target, seed)
        return None
    try:
        if is_done(path, hub_dir=hub_dir, datasets_dir=datasets_dir):  # another queue finished it meanwhile
            return None
        return run_job(model, target, seed, runs_dir=runs_dir, hub_dir=hub_dir, datasets_dir=datasets_dir,
                       protocol=protocol)
    finally:
        _release(fd)


def run_queue(*, workers: int = 2, max_hours: float | None = None, runs_dir: Path = RUNS_DIR,
              limit: int | None = None, jobs: list[tuple[str, str, int]] | None = None,
              hub_dir: Path = HUB_DIR, datasets_dir: Path = DATASETS_DIR, protocol: Protocol = PROTOCOL,
              ray: str | None = None, ray_cpus: int | None = None, gpus_per_job: float = 0) -> int:
    """Run pending jobs until done, `max_hours` passed (no new job starts after it) or `limit` jobs.

    `jobs` defaults to every job of the zoo (:func:`all_jobs`); finished ones are skipped. By
    default `workers` processes of this machine run them, each job claimed by a lock file so
    that queues on one machine never run the same job. With `ray` (an address, or ``local``
    for a Ray instance started here with `ray_cpus` CPUs) they run as Ray tasks instead:
    :func:`_run_on_ray`."""
    if jobs is None:
        models, targets = zoo_models(hub_dir), target_names()
        jobs = all_jobs(models, targets, pool=zoo_definition())
        LOG.info("%d models x %d targets", len(models), len(targets))
    jobs = [j for j in jobs
            if not is_done(job_path(*j, runs_dir), protocol, hub_dir=hub_dir, datasets_dir=datasets_dir)]
    if limit is not None:
        jobs = jobs[:limit]
    deadline = time.time() + 3600 * max_hours if max_hours else math.inf
    if ray is not None:
        return _run_on_ray(jobs, address=ray, cpus=ray_cpus, deadline=deadline, runs_dir=runs_dir, hub_dir=hub_dir,
                           datasets_dir=datasets_dir, protocol=protocol, gpus_per_job=gpus_per_job)
    LOG.info("%d jobs pending; %d worker(s)", len(jobs), workers)
    done = 0
    queue = list(jobs)
    kills: dict = {}
    while queue and time.time() < deadline:
        # A worker killed from outside (out of memory, kill -9) breaks the whole pool: the jobs
        # in flight go back to the queue and a new pool continues.
        with ProcessPoolExecutor(workers, initializer=_init_worker) as ex:
            pending: dict = {}
            broken = False
            while not broken:
                while len(pending) < workers and queue and time.time() < deadline:
                    job = queue.pop(0)
                    pending[ex.submit(_claimed_job, *job, runs_dir, hub_dir, datasets_dir, protocol)] = job
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    job = pending.pop(f)
                    try:
                        rec = f.result()
                    except BrokenProcessPool:
                        # every job in flight is suspect; one that breaks the pool twice is dropped
                        suspects = [job, *pending.values()]
                        for j in suspects:
                            kills[j] = kills.get(j, 0) + 1
                        retry = [j for j in suspects if kills[j] < 2]
                        LOG.error("a worker died while running %s; restarting the pool (dropped for this run: %s)",
                                  suspects, [j for j in suspects if kills[j] >= 2] or "none")
                        queue[:0] = retry
                        broken = True
                        break
                    except Exception:  # one broken job must not stop the queue; logged, retried next run
                        LOG.exception("job %s failed", job)
                        continue
                    if rec is not None:
                        done += 1
                        LOG.info("done %s %s seed%d: test %.4f (lr %g) in %.0fs (%.0f CPU s)", *job,
                                 rec["test_accuracy"], rec["lr"], rec["seconds"], rec["cpu_seconds"])
                        if done % 10 == 0:
                            write_status(runs_dir)
            if broken:
                write_status(runs_dir)
    write_status(runs_dir)
    return done


#: Memory one fine-tuning job reserves on a Ray node: the zoo's models are small, their target
#: arrays (train, validation, test as float32 tensors) take most of it.
JOB_MEMORY = 2 * 2**30


def _run_on_ray(jobs: list[tuple[str, str, int]], *, address: str, cpus: int | None, deadline: float,
                runs_dir: Path, hub_dir: Path, datasets_dir: Path, protocol: Protocol,
                gpus_per_job: float = 0) -> int:
    """Run `jobs` as Ray tasks (``fennec.engine``); this process writes each result.

    Each job is a task asking for ``protocol.threads`` CPUs, :data:`JOB_MEMORY` and
    `gpus_per_job` GPUs (then it fine-tunes on CUDA); Ray's scheduler replaces the claim
    files of the local queue, and one Ray queue at a time may run on `runs_dir` (a lock file).
    A finished task's record comes back here and is written atomically as the local queue
    writes it, so a worker or node that dies loses only its job (Ray runs it once more; a job
    lost twice is redone by the next run) and a killed queue resumes from the files. No job
    is submitted after `deadline`, and at most as many as the cluster runs at once are
    submitted ahead, so none starts long after it. The workers need this checkout (the
    scripts, ``zoo/``) at the same path: a local instance has it; on a cluster use a
    shared file system."""
    import build_ground_truth as this  # the functions by module name: workers import them, not a pickled copy
    from fennec._io import file_lock
    from fennec.engine import RayExecutor, Resources, Unit

    def busy(holder: str | None) -> None:
        raise SystemExit(f"another Ray queue ({holder or 'unknown holder'}) is running on {runs_dir}; wait for it")

    if not jobs:  # no Ray instance or connection for nothing
        LOG.info("no job pending")
        write_status(runs_dir)
        return 0
    runs_dir.mkdir(parents=True, exist_ok=True)
    resources = Resources(num_cpus=protocol.threads, memory=JOB_MEMORY, num_gpus=gpus_per_job)
    where = {"hub_dir": hub_dir, "datasets_dir": datasets_dir, "protocol": protocol,
             "device": "cuda" if gpus_per_job else "cpu"}
    path = os.pathsep.join([str(Path(__file__).resolve().parent), str(REPO_ROOT)])
    done = 0
    with file_lock(runs_dir / ".ray-queue.lock", busy=busy), \
            RayExecutor(address, num_cpus=cpus, runtime_env={"env_vars": {"PYTHONPATH": path}}) as ex:
        slots = max(1, int(ex.workers // max(protocol.threads, 1)))
        LOG.info("%d jobs pending; %s, %d at a time", len(jobs), ex.describe(), slots)

        def units():
            for job in jobs:
                if time.time() >= deadline:
                    LOG.info("max-hours reached: no new job")
                    return
                yield Unit(job, this.job_record, job, where, resources=resources, retries=1)

        for result in ex.map(units(), in_flight=slots):
            model, target, seed = result.key
            if result.ok:
                write_atomic(job_path(model, target, seed, runs_dir), result.value)
                done += 1
                LOG.info("done %s %s seed%d: test %.4f (lr %g) in %.0fs (%.0f CPU s)", model, target, seed,
                         result.value["test_accuracy"], result.value["lr"], result.value["seconds"],
                         result.value["cpu_seconds"])
                if done % 10 == 0:
                    write_status(runs_dir)
            elif result.lost:
                LOG.error("job %s was lost with its Ray worker or node after a retry (%s); the next run redoes it",
                          result.key, result.error)
            else:  # one broken job must not stop the queue; logged, retried next run
                LOG.error("job %s failed: %s: %s", result.key, type(result.error).__name__, result.error)
    write_status(runs_dir)
    return done


# ----------------------------------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------------------------------

def load_results(runs_dir: Path = RUNS_DIR, *, hub_dir: Path = HUB_DIR,
                 datasets_dir: Path = DATASETS_DIR) -> list[dict]:
    """The results of this protocol version that still describe the zoo (stale ones are
    logged and left out: the queue redoes them)."""
    out = []
    for f in sorted(runs_dir.glob("*__seed*.json")):
        try:
            rec = json.loads(f.read_text())
        except ValueError:
            LOG.warning("unreadable result %s skipped", f)
            continue
        if rec.get("protocol", {}).get("version") != PROTOCOL.version:
            continue
        why = stale_reason(rec, hub_dir=hub_dir, datasets_dir=datasets_dir)
        if why:
            LOG.warning("stale result %s left out: %s (the queue redoes it)", f.name, why)
            continue
        out.append(rec)
    return out


def write_status(runs_dir: Path = RUNS_DIR, *, models: list[str] | None = None,
                 targets: list[str] | None = None) -> dict:
    pool = zoo_definition() if models is None else models
    models = zoo_models() if models is None else models
    targets = target_names() if targets is None else targets
    jobs = all_jobs(models, targets, pool=pool)
    res = load_results(runs_dir)
    done = {(r["model"], r["target"], r["seed"]) for r in res}
    n_done = sum(1 for j in jobs if j in done)
    secs = [r.get("cpu_seconds", r["seconds"]) for r in res]  # CPU time: robust to pauses and contention
    mean_s = float(np.mean(secs)) if secs else float("nan")
    left = len(jobs) - n_done
    lines = ["# Ground-truth job queue status", "",
             f"Updated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by "
             "`scripts/build_ground_truth.py`.", "",
             f"- protocol: `{PROTOCOL.version}`", f"- models: {len(models)}, targets: {len(targets)}",
             f"- jobs done: **{n_done} / {len(jobs)}** (seed 0: {sum(1 for j in jobs if j in done and j[2] == 0)} / "
             f"{sum(1 for j in jobs if j[2] == 0)}, seed 1: {sum(1 for j in jobs if j in done and j[2] == 1)} / "
             f"{sum(1 for j in jobs if j[2] == 1)})",
             f"- mean single-thread CPU seconds per job so far: {mean_s:.1f} (process CPU time; wall time is "
             "longer on a shared machine)",
             f"- estimated CPU hours left: {left * mean_s / 3600:.2f}" if secs
             else "- estimated CPU hours left: unknown",
             "", "| target | seed-0 done | seed-1 done |", "|---|---|---|"]
    for t in targets:
        lines.append(f"| {t} | {sum(1 for j in jobs if j in done and j[1] == t and j[2] == 0)} / {len(models)} | "
                     f"{sum(1 for j in jobs if j in done and j[1] == t and j[2] == 1)} / "
                     f"{sum(1 for j in jobs if j[1] == t and j[2] == 1)} |")
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "STATUS.md").write_text("\n".join(lines) + "\n")
    return {"done": n_done, "total": len(jobs), "mean_seconds": mean_s}


def aggregate(runs_dir: Path = RUNS_DIR, results_dir: Path = RESULTS_DIR, *, plot: bool = True,
              models: list[str] | None = None, targets: list[str] | None = None) -> dict:
    """Ground-truth table, noise ceiling, ranking diversity, report and heat map from the results so far."""
    from scipy.stats import kendalltau, weightedtau

    pool = zoo_definition() if models is None else models
    models = zoo_models() if models is None else models
    targets = target_names() if targets is None else targets
    res = load_results(runs_dir)
    acc = {0: {t: {} for t in targets}, 1: {t: {} for t in targets}}
    for r in res:
        if r["target"] in acc[r["seed"]] and r["model"] in models:
            acc[r["seed"]][r["target"]][r["model"]] = r["test_accuracy"]
    jobs = all_jobs(models, targets, pool=pool)
    done = {(r["model"], r["target"], r["seed"]) for r in res}
    coverage = {"jobs_done": sum(1 for j in jobs if j in done), "jobs_total": len(jobs),
                "seed0_done": sum(len(acc[0][t]) for t in targets), "seed0_total": len(models) * len(targets),
                "per_target_seed0": {t: len(acc[0][t]) for t in targets}}
    # Only targets whose seed-0 results cover every model enter the published tables (what the
    # zoo workspace imports as its history and `fennec bench` evaluates on): a half-finished
    # target would be a task known for a few models only. The others are listed as pending.
    pending = {t: {"seed0_done": len(acc[0][t]), "seed0_total": len(models)}
               for t in targets if not models or set(acc[0][t]) != set(models)}
    targets = [t for t in targets if t not in pending]
    acc = {k: {t: v[t] for t in targets} for k, v in acc.items()}
    # noise ceiling: weighted tau between the two seeds' test accuracies over the models with both
    noise = {}
    for t in targets:
        both = sorted(set(acc[0][t]) & set(acc[1][t]))
        if len(both) >= 3:
            a0 = np.array([acc[0][t][m] for m in both])
            a1 = np.array([acc[1][t][m] for m in both])
            tau = weightedtau(a0, a1).statistic if np.ptp(a0) > 0 and np.ptp(a1) > 0 else float("nan")
            noise[t] = {"weighted_tau": float(tau), "n_models": len(both),
                        "mean_abs_diff": float(np.mean(np.abs(a0 - a1)))}
    # ranking diversity: mean pairwise Kendall tau between targets' model rankings (seed 0)
    pairs = []
    for i, t1 in enumerate(targets):
        for t2 in targets[i + 1:]:
            common = sorted(set(acc[0][t1]) & set(acc[0][t2]))
            if len(common) >= 5:
                k = kendalltau([acc[0][t1][m] for m in common], [acc[0][t2][m] for m in common]).statistic
                if np.isfinite(k):
                    pairs.append({"targets": [t1, t2], "kendall_tau": float(k), "n_models": len(common)})
    diversity = float(np.mean([p["kendall_tau"] for p in pairs])) if pairs else float("nan")
    best = {t: max(acc[0][t], key=acc[0][t].get) for t in targets if acc[0][t]}
    wins = win_shares(acc[0])
    out = {"protocol": dataclasses.asdict(PROTOCOL), "models": models, "targets": targets, "coverage": coverage,
           "pending_targets": pending,
           "test_accuracy_seed0": acc[0], "test_accuracy_seed1": acc[1], "noise_ceiling": noise,
           "noise_ceiling_mean": float(np.mean([v["weighted_tau"] for v in noise.values()])) if noise else float("nan"),
           "ranking_diversity_mean_kendall_tau": diversity, "ranking_diversity_pairs": pairs,
           "best_model_per_target": best, "distinct_best_models": len(set(best.values())),
           "model_win_share": wins, "max_model_win_share": max(wins.values()) if wins else float("nan"),
           "generated_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "zoo_ground_truth.json").write_text(json.dumps(out, indent=1, sort_keys=True, allow_nan=True) + "\n")
    with open(results_dir / "zoo_ground_truth.csv", "w") as fh:
        fh.write("model,target,seed,test_accuracy,val_accuracy,lr,seconds,cpu_seconds\n")
        for r in sorted(res, key=lambda r: (r["target"], r["model"], r["seed"])):
            fh.write(f"{r['model']},{r['target']},{r['seed']},{r['test_accuracy']:.4f},{r['val_accuracy']:.4f},"
                     f"{r['lr']},{r['seconds']},{r.get('cpu_seconds', '')}\n")
    if plot and res:
        _heatmap(acc[0], models, targets, results_dir / "zoo_heatmap.png")
    _report(out, results_dir / "zoo_report.md", plot and bool(res))
    return out


def win_shares(acc0: dict[str, dict[str, float]]) -> dict[str, float]:
    """The share of the targets that each model wins (best seed-0 test accuracy), over the
    targets of `acc0` ({target: {model: accuracy}}); a tie splits the target between the tied
    models. Only models that win something are listed, largest share first."""
    shares: dict[str, float] = {}
    tables = [row for row in acc0.values() if row]
    for row in tables:
        top = max(row.values())
        winners = [m for m, v in row.items() if v == top]
        for m in winners:
            shares[m] = shares.get(m, 0.0) + 1.0 / (len(winners) * len(tables))
    return dict(sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])))


def _heatmap(acc0: dict, models: list[str], targets: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.full((len(models), len(targets)), np.nan)
    for j, t in enumerate(targets):
        for i, mod in enumerate(models):
            if mod in acc0[t]:
                m[i, j] = acc0[t][mod]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(targets), 1.5 + 0.28 * len(models)))
    im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    for i in range(len(models)):
        for j in range(len(targets)):
            if np.isfinite(m[i, j]):
                col = m[:, j]
                is_best = np.nanmax(col) == m[i, j]
                ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=6,
                        color="red" if is_best else ("black" if m[i, j] > 0.6 else "white"),
                        fontweight="bold" if is_best else "normal")
    ax.set_xticks(range(len(targets)), targets, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(models)), models, fontsize=6)
    ax.set_title("Zoo ground truth: test accuracy (%) after fine-tuning, seed 0 "
                 "(red = best per target; blank = not run yet)", fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _report(out: dict, path: Path, has_plot: bool) -> None:
    c = out["coverage"]
    lines = ["# Zoo benchmark: ground-truth fine-tuning report", "",
             f"Generated {out['generated_utc']} by `python scripts/build_ground_truth.py aggregate` from "
             f"`benchmark/zoo_runs/`. Protocol `{out['protocol']['version']}`: see `benchmark/zoo_protocol.md`.", "",
             "## Coverage", "",
             f"- jobs done: **{c['jobs_done']} / {c['jobs_total']}**; seed-0 (model, target) pairs: "
             f"{c['seed0_done']} / {c['seed0_total']}"
             + ("" if c["jobs_done"] == c["jobs_total"] else
                " — **partial results**: every table and figure below is over the targets whose seed-0 results "
                "are complete (the noise ceiling over their seed-1 jobs finished so far)."), ""]
    pending = out.get("pending_targets", {})
    if pending:
        lines += [f"Targets in the tables (seed 0 complete for every model): {len(out['targets'])}. Pending, left out "
                  f"of every table and figure below until their seed-0 results are complete ({len(pending)}): "
                  + ", ".join(f"{t} ({v['seed0_done']}/{v['seed0_total']})" for t, v in pending.items()) + ".", ""]
    wins = out.get("model_win_share", {})
    top = next(iter(wins.items()), None)
    lines += ["## Headline figures", "",
              f"- ranking diversity (mean pairwise Kendall τ between the targets' model rankings, seed 0; "
              f"{len(out['ranking_diversity_pairs'])} target pairs): "
              f"**{out['ranking_diversity_mean_kendall_tau']:.3f}** "
              "(aim < 0.3, issue 15)",
              f"- largest share of targets won by one model: **{out.get('max_model_win_share', float('nan')):.2f}**"
              + (f" ({top[0]})" if top else "") + " (aim ≤ 1/3)",
              "- noise ceiling (weighted τ between seed 0 and seed 1, per target, mean over "
              f"{len(out['noise_ceiling'])} targets): "
              f"**{out['noise_ceiling_mean']:.3f}**",
              f"- distinct best models over {len(out['best_model_per_target'])} targets: "
              f"{out['distinct_best_models']}", ""]
    if wins:
        lines += ["## Share of targets won", "", "| model | targets won | share |", "|---|---|---|"]
        n_targets = len(out["best_model_per_target"])
        lines += [f"| {m} | {share * n_targets:.1f} | {share:.2f} |" for m, share in wins.items()]
        lines += [""]
    lines += ["## Per target", "",
              "| target | models done | best model (seed 0) | best acc | median acc | noise-ceiling τw (n) |",
              "|---|---|---|---|---|---|"]
    for t in out["targets"]:
        a = out["test_accuracy_seed0"][t]
        nc = out["noise_ceiling"].get(t)
        b = out["best_model_per_target"].get(t)
        if not b:
            lines.append(f"| {t} | 0 | - | - | - | - |")
            continue
        ceiling = f"{nc['weighted_tau']:.3f} ({nc['n_models']})" if nc else "-"
        lines.append(f"| {t} | {len(a)} | {b} | {a[b]:.3f} | {np.median(list(a.values())):.3f} | {ceiling} |")
    for t, v in pending.items():
        lines.append(f"| {t} | {v['seed0_done']} / {v['seed0_total']} (pending) | - | - | - | - |")
    if has_plot:
        lines += ["", "## Accuracy matrix", "", "![heat map](zoo_heatmap.png)", ""]
    lines += ["", "Full table: `zoo_ground_truth.csv` (one row per finished job) and `zoo_ground_truth.json`.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run pending jobs, then aggregate")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--max-hours", type=float, default=None, help="start no new job after this many hours")
    r.add_argument("--limit", type=int, default=None, help="run at most this many jobs")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the jobs as Ray tasks: on the cluster at ADDRESS (host:port, ray://host:port, auto), "
                        "or on a Ray instance started here ('local' or no value; --workers CPUs); default: "
                        "FENNEC_RAY_ADDRESS, else this machine's process pool")
    r.add_argument("--gpus-per-job", type=float, default=0,
                   help="with --ray: GPUs each job asks for (then it fine-tunes on CUDA; the zoo's ground truth "
                        "is CPU)")
    sub.add_parser("aggregate", help="tables, noise ceiling, diversity, report and heat map")
    sub.add_parser("status", help="write benchmark/zoo_runs/STATUS.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "run":
        from fennec.engine import ray_address

        ray = ray_address(args.ray)
        if args.gpus_per_job and ray is None:
            p.error("--gpus-per-job needs --ray (the local queue fine-tunes on the CPU)")
        n = run_queue(workers=args.workers, max_hours=args.max_hours, limit=args.limit, ray=ray,
                      ray_cpus=args.workers if ray == "local" else None, gpus_per_job=args.gpus_per_job)
        LOG.info("%d jobs finished this run", n)
        aggregate()
    elif args.cmd == "aggregate":
        out = aggregate()
        LOG.info("coverage %s; diversity %.3f; noise ceiling %.3f", out["coverage"]["jobs_done"],
                 out["ranking_diversity_mean_kendall_tau"], out["noise_ceiling_mean"])
    else:
        LOG.info("%s", write_status())
    return 0


if __name__ == "__main__":
    sys.exit(main())
