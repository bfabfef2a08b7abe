"""fennec's heavy steps on Ray: reindex and ground-truth throughput, and Ray's own overhead.

Everything runs on this machine: the benchmark starts its own local Ray instance with an
explicit number of CPUs (``ray.init(num_cpus=N)`` through :class:`fennec.engine.RayExecutor`)
for each configuration, and shuts it down afterwards.

1. **reindex** of a local folder hub of many fine-tunes of a few bases (the hub
   ``benchmark/arch_dedup.py`` builds: zoo, transformers-default and timm Hub configs and
   their fine-tunes), into fresh catalogs with the default embedder (archi2vec ``record``,
   sandboxed): today's single process (no executor) against Ray with 1 and 2 worker CPUs,
   each with and without architecture dedup. Ray's first run on a new instance pays for
   starting its workers and their sandboxes ("cold"); the later runs reuse them ("warm");
   both are reported, with the instance's start-up time apart. Every run must give the same
   vectors as the single process.
2. **ground truth**: the same fine-tuning jobs (a toy world: synthetic datasets and tiny zoo
   models as ``tests/test_zoo_builders.py`` builds them, and a tiny protocol: one learning
   rate, a few steps; not the zoo protocol) through ``scripts/build_ground_truth.py``'s
   process pool and through its Ray queue with the same number of workers; the records
   must agree.
3. **overhead** of Ray for a tiny job: starting a local instance, and the round trip of a
   unit that does nothing, against :class:`fennec.engine.LocalExecutor`.

Run: ``python benchmark/ray_scaling.py [--models 200] [--repeats 2] [--jobs 8]``.
Results: ``benchmark/results/ray_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import operator
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's fennec and archi2vec
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmark"))
RESULTS = REPO / "benchmark" / "results"


def reindex_once(hub_dir: Path, home: Path, *, dedup: bool, embedder, executor) -> dict:
    """One full reindex of ``hub_dir`` into a fresh catalog under ``home``."""
    from fennec.catalog import Catalog
    from fennec.hub import LocalHub
    from fennec.reindex import reindex

    with Catalog(home / "catalog.sqlite") as cat:
        t = time.perf_counter()
        summary = reindex(hub=LocalHub(hub_dir), catalog=cat, embedder=embedder, dedup=dedup, batch_size=16,
                          executor=executor)
        wall = time.perf_counter() - t
        ids, vectors = cat.vectors()
        states = sorted((m.repo_id, m.status) for m in cat.models(limit=None))
    return {"summary": summary, "wall_s": wall, "ids": ids, "vectors": vectors, "states": states,
            "models_per_min": summary.processed / wall * 60}


def bench_reindex(work: Path, *, models: int, n_bases: int, seed: int, repeats: int, timeout: float,
                  workers: list[int]) -> dict:
    """``repeats`` rounds; each runs the single process, then Ray with each number of CPUs (a
    new instance per round), so that the machine's changing load falls on every
    configuration alike. A new embedder (single process) or Ray instance first makes a cold
    run (its sandbox, or its workers and their sandboxes, start), then runs with and without
    dedup that reuse them."""
    import numpy as np

    from arch_dedup import build_hub
    from fennec.engine import RayExecutor
    from fennec.reindex import Archi2VecEmbedder

    hub = work / "hub"
    written = build_hub(hub, models=models, n_bases=n_bases, seed=seed)
    print(f"reindex: {len(written)} repositories over {len({w['base'] for w in written})} bases", flush=True)
    runs: dict[str, list[dict]] = {}
    homes = iter(work / f"home-{i}" for i in range(10**6))

    def series(name: str, embedder, executor, cold: bool) -> None:
        for label, dedup in ([("cold", True)] if cold else []) + [("", True), ("", False)]:
            r = reindex_once(hub, next(homes), dedup=dedup, embedder=embedder, executor=executor)
            key = f"{name}, dedup={dedup}" + (f", {label}" if label else "")
            runs.setdefault(key, []).append(r)
            print(f"  {key}: {r['summary'].line()}", flush=True)

    startup: dict[int, list[float]] = {}
    with Archi2VecEmbedder(method="record", timeout=timeout) as single:  # started for its cold run
        for round_ in range(repeats):
            series("single process", single, None, cold=round_ == 0)
            for w in workers:
                # the Ray workers embed, each in its own sandbox: this process never starts one
                with RayExecutor(num_cpus=w) as ex, \
                        Archi2VecEmbedder(method="record", timeout=timeout, prestart=False) as embedder:
                    startup.setdefault(w, []).append(ex.startup_seconds)
                    series(f"ray {w} CPU{'s' if w > 1 else ''}", embedder, ex, cold=True)
    reference = runs["single process, dedup=False"][0]
    same = all(r["ids"] == reference["ids"] and np.array_equal(r["vectors"], reference["vectors"])
               and r["states"] == reference["states"] for rs in runs.values() for r in rs)
    table = {}
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["wall_s"])
        table[name] = {"built": best["summary"].built, "reused": best["summary"].reused,
                       "processed": best["summary"].processed, "failed": best["summary"].failed,
                       "wall_s": round(best["wall_s"], 1), "models_per_min": round(best["models_per_min"], 1),
                       "all_wall_s": [round(r["wall_s"], 1) for r in rs]}
    return {"models": len(written), "bases": len({w["base"] for w in written}), "runs": table,
            "ray_startup_s": {str(w): [round(x, 1) for x in s] for w, s in startup.items()},
            "vectors_identical": same}


def toy_world(root: Path, n_models: int) -> tuple[Path, Path, list[str]]:
    """Synthetic datasets and ``n_models`` tiny zoo models pre-trained for 2 steps."""
    import build_datasets
    import build_zoo

    ds = root / "datasets"
    for name in ("src-glyphs", "t-counting"):
        recipe = build_datasets.RECIPES[name]
        splits = build_datasets.generate(recipe, scale=0.01 if recipe.kind == "source" else 0.03)
        build_datasets.save(recipe, splits, ds / name, build_datasets.fingerprint(splits))
    specs = [s for s in build_zoo.ALL_SPECS.values() if s.source == "glyphs" and s.size == "tiny"][:n_models]
    for spec in specs:
        build_zoo.build_one(spec, hub_dir=root / "hub", datasets_dir=ds, steps=2)
    return root / "hub", ds, [s.repo_id for s in specs]


def bench_ground_truth(work: Path, *, jobs: int, workers: int, steps: int) -> dict:
    """The same jobs through the process pool, through the Ray queue on a new Ray instance
    (cold: the instance and its workers start, and import torch), and through the Ray queue
    on an instance whose workers have run other jobs already (warm; the pool's workers are
    forked from this process, which has imported torch already)."""
    import build_ground_truth as gt
    from fennec.engine import RayExecutor

    hub, ds, models = toy_world(work / "toy", n_models=2)
    protocol = dataclasses.replace(gt.PROTOCOL, learning_rates=(1e-3,), steps=steps, batch_size=8)

    def queue(first_seed: int) -> list[tuple[str, str, int]]:
        return [(models[i % len(models)], "t-counting", first_seed + i // len(models)) for i in range(jobs)]

    out: dict = {"jobs": jobs, "models": models, "target": "t-counting", "workers": workers,
                 "protocol": {"learning_rates": list(protocol.learning_rates), "steps": protocol.steps,
                              "batch_size": protocol.batch_size, "threads": protocol.threads}}
    records = {}

    def run(mode: str, jobs_: list, ray: str | None) -> None:
        runs = work / f"runs-{mode.replace(' ', '-').replace(',', '')}"
        t = time.perf_counter()
        done = gt.run_queue(jobs=jobs_, runs_dir=runs, hub_dir=hub, datasets_dir=ds, protocol=protocol,
                            workers=workers, ray=ray, ray_cpus=workers if ray else None)
        wall = time.perf_counter() - t
        records[mode] = {p.name: json.loads(p.read_text()) for p in runs.glob("*__seed*.json")}
        cpu = sum(r["cpu_seconds"] for r in records[mode].values())
        out[mode] = {"done": done, "wall_s": round(wall, 1), "jobs_per_min": round(done / wall * 60, 1),
                     "job_cpu_s_total": round(cpu, 1)}
        print(f"ground truth, {mode}: {done} jobs in {wall:.1f} s", flush=True)

    run("process pool", queue(0), None)
    run("ray, cold", queue(0), "local")
    scripts = os.pathsep.join([str(REPO / "scripts"), str(REPO)])
    with RayExecutor(num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": scripts}}):
        run("ray warm-up", queue(1000), "local")  # other seeds: the workers start and import torch
        run("ray, warm", queue(0), "local")  # the queue uses this process's connection
    pool, cold, warm = records["process pool"], records["ray, cold"], records["ray, warm"]
    out["records_agree"] = pool.keys() == cold.keys() == warm.keys() and all(
        (pool[k]["test_accuracy"], pool[k]["val_accuracy"], pool[k]["runs"][0]["final_train_loss"])
        == (r[k]["test_accuracy"], r[k]["val_accuracy"], r[k]["runs"][0]["final_train_loss"])
        for k in pool for r in (cold, warm))
    return out


def bench_overhead(units: int) -> dict:
    from fennec.engine import LocalExecutor, RayExecutor, Unit

    def per_unit(ex, in_flight: int | None) -> float:
        t = time.perf_counter()
        results = list(ex.map((Unit(i, operator.add, (i, 1)) for i in range(units)), in_flight=in_flight))
        assert sorted(r.get() for r in results) == list(range(1, units + 1))
        return (time.perf_counter() - t) / units

    local = per_unit(LocalExecutor(), None)
    t = time.perf_counter()
    with RayExecutor(num_cpus=2) as ex:
        startup = time.perf_counter() - t
        t = time.perf_counter()
        ex.run([Unit("first", operator.add, (1, 1))])
        first = time.perf_counter() - t
        sequential = statistics.median(per_unit(ex, 1) for _ in range(3))
        pipelined = statistics.median(per_unit(ex, None) for _ in range(3))
    t = time.perf_counter()
    return {"units": units, "local_us_per_unit": round(local * 1e6, 2), "ray_start_s": round(startup, 1),
            "ray_first_unit_s": round(first, 2), "ray_ms_per_unit_one_at_a_time": round(sequential * 1e3, 2),
            "ray_ms_per_unit_pipelined": round(pipelined * 1e3, 2)}


def markdown(out: dict) -> str:
    r = out["reindex"]
    lines = ["# fennec on Ray: reindex and ground-truth throughput, Ray's overhead", "",
             f"Generated {out['generated_utc']} by `{out['command']}`.", "",
             f"**Machine: {out['machine']}.** Load average at the start {out['load_average_start']}, at the end "
             f"{out['load_average_end']}: other engineers' jobs and a background fine-tuning job ran at the same "
             "time, so absolute rates are low and noisy, and a second worker has at most one more (shared) core to "
             "use. A local Ray instance started by the benchmark (`ray.init(num_cpus=N)`), no cluster.", "",
             "## reindex", "",
             f"A local folder hub of {r['models']} repositories over {r['bases']} base architectures and their "
             "fine-tunes (`benchmark/arch_dedup.py`'s hub), reindexed into fresh catalogs with archi2vec `record` in "
             "its sandbox (the default embedder), batches of 16, in rounds (single process, then a new Ray instance "
             "with 1 CPU, then one with 2) so that the machine's changing load falls on every configuration. *cold*: "
             "the first run of a new embedder (single process: its sandbox starts and imports torch, transformers "
             "and timm) or of a new Ray instance (its workers and their sandboxes start); the other runs reuse them "
             "(fastest of the rounds; all wall times in the last column). Starting the Ray instances took "
             f"{r['ray_startup_s']} s (by CPUs), not counted.", "",
             "| run | built | reused | wall s | models/min | all wall s |", "|---|---:|---:|---:|---:|---|"]
    for name, row in r["runs"].items():
        lines.append(f"| {name} | {row['built']} | {row['reused']} | {row['wall_s']} | **{row['models_per_min']}** | "
                     f"{row['all_wall_s']} |")
    lines += ["", f"Every run gave the same vectors and statuses as the single process: **{r['vectors_identical']}**.",
              ""]
    g = out["ground_truth"]
    p = g["protocol"]
    lines += ["## Ground-truth builder", "",
              f"{g['jobs']} fine-tuning jobs ({len(g['models'])} tiny zoo models x seeds, on the synthetic target "
              f"{g['target']}) with a **tiny protocol** ({p['steps']} steps, learning rate {p['learning_rates']}, "
              f"batch {p['batch_size']}, {p['threads']} thread per job), not the zoo's: the jobs are short, so "
              "start-up "
              f"costs weigh more than in a real run. {g['workers']} workers either way. *ray, cold*: a new Ray "
              "instance, whose start and whose workers' imports (torch, transformers) are counted; *ray, warm*: an "
              "instance whose workers have run other jobs; the pool's workers are forked from the benchmark's "
              "process, which has imported torch already.", "",
              "| queue | jobs | wall s | jobs/min | CPU s in the jobs |", "|---|---:|---:|---:|---:|"]
    for mode in ("process pool", "ray, cold", "ray, warm"):
        row = g[mode]
        lines.append(f"| {mode} | {row['done']} | {row['wall_s']} | **{row['jobs_per_min']}** | "
                     f"{row['job_cpu_s_total']} |")
    lines += ["", f"Same records (accuracies, final loss) from both queues: **{g['records_agree']}**.", ""]
    o = out["overhead"]
    lines += ["## Ray's overhead for a tiny job", "",
              f"- starting a local Ray instance (2 CPUs): **{o['ray_start_s']} s**; the first unit (a worker "
              f"process starts): {o['ray_first_unit_s']} s",
              f"- a unit that does nothing ({o['units']} units): **{o['ray_ms_per_unit_one_at_a_time']} ms** each one "
              f"at a time, {o['ray_ms_per_unit_pipelined']} ms each when submitted ahead, against "
              f"{o['local_us_per_unit']} µs in this process (`LocalExecutor`)", "",
              "So Ray pays off for units of seconds (an archi2vec build, a fine-tune, a candidate's forward passes) "
              "once its instance and workers are up, and never for a handful of tiny units on one machine: fennec "
              "uses it only when asked (`--ray`).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=200, help="repositories in the reindexed hub")
    p.add_argument("--bases", type=int, default=10, help="base architectures (at most 11)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="runs of each reindex configuration")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray CPUs to try for reindex")
    p.add_argument("--jobs", type=int, default=8, help="fine-tuning jobs of the ground-truth comparison")
    p.add_argument("--steps", type=int, default=40, help="fine-tuning steps per job (tiny protocol)")
    p.add_argument("--overhead-units", type=int, default=200)
    p.add_argument("--timeout", type=float, default=120.0, help="archi2vec budget per model, s")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if min(args.models, args.bases, args.repeats, args.jobs, args.steps, args.overhead_units, *args.workers) < 1:
        p.error("every count must be >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    start_load = [round(v, 1) for v in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="fennec-ray-"))
    os.environ["FENNEC_HOME"] = str(work / "fennec_home")  # the workers inherit it: no user cache touched
    os.environ["HF_HOME"] = str(work / "hf_home")
    try:
        out = {"generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join(["python benchmark/ray_scaling.py", *(sys.argv[1:] if argv is None else argv)]),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other engineers' jobs",
               "load_average_start": start_load}
        import ray

        out["ray_version"] = ray.__version__
        out["overhead"] = bench_overhead(args.overhead_units)
        print(json.dumps(out["overhead"]), flush=True)
        out["ground_truth"] = bench_ground_truth(work, jobs=args.jobs, workers=2, steps=args.steps)
        out["reindex"] = bench_reindex(work, models=args.models, n_bases=args.bases, seed=args.seed,
                                       repeats=args.repeats, timeout=args.timeout, workers=args.workers)
        out["load_average_end"] = [round(v, 1) for v in os.getloadavg()]
        print(json.dumps(out, indent=1), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ray_scaling.json").write_text(json.dumps(out, indent=1) + "\n")
        (args.out / "ray_scaling.md").write_text(markdown(out))
        return 0 if out["reindex"]["vectors_identical"] and out["ground_truth"]["records_agree"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
