"""Fast checks of the zoo-benchmark builders in scripts/ at toy size (datasets, zoo, job queue, aggregation)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import build_datasets  # noqa: E402 - from scripts/, put on sys.path above


def _toy_target(name="t-counting", scale=0.03):
    return build_datasets.generate(build_datasets.RECIPES[name], scale=scale)


def test_recipe_is_deterministic_and_fingerprint_detects_change():
    a, b = _toy_target(), _toy_target()
    assert build_datasets.fingerprint(a) == build_datasets.fingerprint(b)
    x, y = a["train"]
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(x) == len(y)
    changed = {k: (v[0].copy(), v[1]) for k, v in a.items()}
    changed["test"][0][0, 0, 0, 0] ^= 1
    assert build_datasets.fingerprint(changed) != build_datasets.fingerprint(a)


def test_every_recipe_draws_every_class():
    for name, recipe in build_datasets.RECIPES.items():
        if recipe.pool is not None or recipe.items is not None or recipe.kind == "source":
            continue  # real data (pooled or item-split) and the large sources are covered by other tests / the build
        x, y = build_datasets.generate(recipe, scale=0.02)["train"]
        assert set(np.unique(y)) == set(range(len(recipe.classes))), name


def _toy_items(n_groups_per_class=(5, 6, 7), *, multi=False):
    """Synthetic items: each image is a constant picture that encodes its group and label."""
    items = []
    for label, n in enumerate(n_groups_per_class):
        for g in range(n):
            group = f"g{g}" if multi else f"c{label}-g{g}"
            value = np.full((32, 32, 3), 10 * label + g, dtype=np.uint8)
            items.append(build_datasets.Item(label, group, lambda rng, v=value: v.copy()))
    return items


def test_item_split_keeps_groups_in_one_split_and_every_class_in_every_split():
    for multi in (False, True):  # one class per group (icons, emoji) / groups across classes (decks, fonts)
        items = _toy_items(multi=multi)
        parts = build_datasets.split_items(items, "t-toy", 3)
        groups = {s: {it.group for it in parts[s]} for s in build_datasets.SPLITS}
        assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
        assert not groups["validation"] & groups["test"]
        assert sum(len(v) for v in parts.values()) == len(items)
        for s in build_datasets.SPLITS:
            assert {it.label for it in parts[s]} == {0, 1, 2}
        again = build_datasets.split_items(items, "t-toy", 3)
        assert all([it.group for it in again[s]] == [it.group for it in parts[s]] for s in parts)  # seeded
    other = build_datasets.split_items(_toy_items(), "t-other", 3)  # the seed is the dataset's name
    assert any({it.group for it in other[s]} != {it.group for it in parts[s]} for s in parts)
    with pytest.raises(ValueError, match="at least 3"):
        build_datasets.split_items(_toy_items((5, 2, 5)), "t-toy", 3)


def test_item_recipe_draws_from_the_items_of_its_split(monkeypatch):
    items = _toy_items((6, 6, 6))
    recipe = build_datasets.Recipe("t-toy-items", "target", ("a", "b", "c"), {"validation": 30, "test": 60},
                                   build_datasets._pool_draw, "toy", per_class_train=10, items=lambda: items)
    info = {}
    splits = build_datasets.generate(recipe, info=info)
    parts = build_datasets.split_items(items, recipe.name, 3)
    assert info["groups"] == {s: len({it.group for it in parts[s]}) for s in build_datasets.SPLITS}
    for s, (x, y) in splits.items():
        allowed = {(it.label, int(it.draw(None)[0, 0, 0])) for it in parts[s]}
        assert {(int(c), int(img[0, 0, 0])) for img, c in zip(x, y, strict=True)} <= allowed  # only its own items
        assert np.bincount(y, minlength=3).min() == np.bincount(y, minlength=3).max()  # balanced
    assert len(splits["train"][1]) == 30
    assert build_datasets.fingerprint(build_datasets.generate(recipe)) == build_datasets.fingerprint(splits)


ITEM_RECIPES_FAST = ("t-emoji-food", "t-hebrew-letters", "t-gimp-materials", "t-scripts", "t-icons-oxygen")


@pytest.mark.parametrize("name", ITEM_RECIPES_FAST)
def test_item_recipe_from_its_debian_package(name):
    """Where the recipe's Debian packages are installed (scripts/zoo_sources.txt): the expected
    classes, every class in every split, splits disjoint by item, determinism."""
    import zoo_sources
    recipe = build_datasets.RECIPES[name]
    try:
        build_datasets.check_sources([name])
    except zoo_sources.SourceMissingError as e:
        pytest.skip(str(e))
    items = recipe.items()
    parts = build_datasets.split_items(items, name, len(recipe.classes))
    groups = {s: {it.group for it in parts[s]} for s in build_datasets.SPLITS}
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["test"]
                or groups["validation"] & groups["test"])
    for s in build_datasets.SPLITS:
        assert {it.label for it in parts[s]} == set(range(len(recipe.classes))), s
    a = build_datasets.generate(recipe, scale=0.05)
    assert set(np.unique(a["train"][1])) == set(range(len(recipe.classes)))
    assert a["train"][0].shape[1:] == (32, 32, 3) and a["train"][0].dtype == np.uint8
    assert build_datasets.fingerprint(build_datasets.generate(recipe, scale=0.05)) == build_datasets.fingerprint(a)


def test_a_missing_debian_source_names_the_package_to_install(tmp_path, monkeypatch, caplog):
    import zoo_sources
    monkeypatch.setattr(zoo_sources, "ROOT", tmp_path)  # a system without the packages
    with pytest.raises(zoo_sources.SourceMissingError, match=r"apt-get install --no-install-recommends culmus"):
        build_datasets.check_sources(["t-counting", "t-hebrew-letters"])
    out = tmp_path / "out"
    assert build_datasets.main(["--only", "t-hebrew-letters", "--out", str(out)]) == 2
    assert "culmus" in caplog.text and not out.exists()  # nothing drawn
    build_datasets.check_sources(["t-counting", "t-symmetry"])  # generated recipes need no package


def test_another_version_of_a_source_package_is_reported(tmp_path, monkeypatch, caplog):
    import zoo_sources
    probe = tmp_path / zoo_sources.SOURCES["culmus"].probe
    probe.parent.mkdir(parents=True)
    probe.write_bytes(b"")
    monkeypatch.setattr(zoo_sources, "ROOT", tmp_path)
    monkeypatch.setattr(zoo_sources, "installed_version", lambda package: "9.9-1")
    build_datasets.check_sources(["t-hebrew-letters"])
    assert "culmus 9.9-1 is installed, the committed dataset was drawn from 0.133-1" in caplog.text


def test_gimp_pattern_reader_checks_the_header(tmp_path):
    import struct

    import zoo_sources

    name = b"toy\0"
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8)
    good = tmp_path / "good.pat"
    good.write_bytes(struct.pack(">5I", 24 + len(name), 1, 3, 2, 3) + b"GPAT" + name + pixels.tobytes())
    np.testing.assert_array_equal(zoo_sources.read_gimp_pattern(good), pixels.reshape(2, 3, 3))
    short = tmp_path / "short.pat"
    short.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(ValueError, match="pixel bytes"):
        zoo_sources.read_gimp_pattern(short)
    bad = tmp_path / "bad.pat"
    bad.write_bytes(good.read_bytes().replace(b"GPAT", b"GIMP"))
    with pytest.raises(ValueError, match="not a version-1 GIMP pattern"):
        zoo_sources.read_gimp_pattern(bad)


def test_committed_targets_match_their_recipes_and_fingerprints():
    """Every target recipe has its committed dataset, with the recipe's class names and the split
    sizes recorded in zoo/fingerprints.json (the parquet metadata only; no pixels decoded)."""
    import pyarrow.parquet as pq
    root = SCRIPTS.parent / "zoo"
    stored = json.loads((root / "fingerprints.json").read_text())["datasets"]
    for name, recipe in build_datasets.RECIPES.items():
        if recipe.kind != "target":
            continue
        assert name in stored, f"{name}: no fingerprint (run scripts/build_datasets.py --only {name})"
        for split in build_datasets.SPLITS:
            f = pq.ParquetFile(root / "datasets" / name / "data" / f"{split}-00000-of-00001.parquet")
            assert f.metadata.num_rows == stored[name]["sizes"][split], (name, split)
            features = json.loads(f.schema_arrow.metadata[b"huggingface"])["info"]["features"]
            assert features["label"]["names"] == list(recipe.classes), name
        if recipe.items is not None:
            assert set(stored[name]["sources"]) == set(recipe.sources)
            assert all(n > 0 for n in stored[name]["item_groups"].values())


def test_saved_dataset_loads_with_datasets(tmp_path):
    import datasets
    recipe = build_datasets.RECIPES["t-orientation"]
    splits = build_datasets.generate(recipe, scale=0.03)
    fp = build_datasets.fingerprint(splits)
    build_datasets.save(recipe, splits, tmp_path / "t-orientation", fp)
    ds = datasets.load_dataset(str(tmp_path / "t-orientation"))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features["label"].names == list(recipe.classes)
    assert ds["test"][0]["image"].size == (32, 32)
    x, y = build_datasets.load_split_arrays(tmp_path / "t-orientation", "test")
    np.testing.assert_array_equal(x, splits["test"][0])  # PNG round trip is lossless
    np.testing.assert_array_equal(y, splits["test"][1])
    assert fp in (tmp_path / "t-orientation" / "README.md").read_text()


def test_build_reports_drift(tmp_path):
    fps = tmp_path / "fingerprints.json"
    fps.write_text(json.dumps({"datasets": {"t-counting": {"sha256": "0" * 64}}}))
    report = build_datasets.build(["t-counting"], out_root=tmp_path, fingerprints_path=fps, scale=0.03)
    assert report["t-counting"]["status"] == "DRIFT"


@pytest.fixture(scope="module")
def toy_world(tmp_path_factory):
    """Toy source + target datasets and one tiny zoo model pre-trained for 2 steps."""
    import build_zoo
    root = tmp_path_factory.mktemp("zoo")
    ds_dir = root / "datasets"
    for name in ("src-glyphs", "t-counting"):
        recipe = build_datasets.RECIPES[name]
        splits = build_datasets.generate(recipe, scale=0.01 if recipe.kind == "source" else 0.03)
        build_datasets.save(recipe, splits, ds_dir / name, build_datasets.fingerprint(splits))
    spec = build_zoo.ALL_SPECS["regnet-tiny-glyphs"]
    rec = build_zoo.build_one(spec, hub_dir=root / "hub", datasets_dir=ds_dir, steps=2)
    return {"root": root, "datasets": ds_dir, "hub": root / "hub", "model": spec.repo_id, "record": rec}


def test_tiny_zoo_model_reloads_with_auto_classes(toy_world):
    import transformers
    path = toy_world["hub"] / toy_world["model"]
    for f in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "fennec_zoo.json"):
        assert (path / f).exists(), f
    model = transformers.AutoModelForImageClassification.from_pretrained(path)
    proc = transformers.AutoImageProcessor.from_pretrained(path)
    assert model.config.num_labels == 52 and proc.size["height"] == 32
    card = (path / "README.md").read_text()
    assert card.startswith("---\npipeline_tag: image-classification\nlibrary_name: transformers")
    assert "family:regnet" in card and "fennec-zoo/src-glyphs" in card


def test_job_queue_writes_atomically_and_skips_finished_jobs(toy_world, tmp_path, monkeypatch):
    import build_ground_truth as gt
    protocol = dataclasses.replace(gt.PROTOCOL, learning_rates=(1e-3,), steps=2, batch_size=8)
    runs = tmp_path / "runs"
    rec = gt.run_job(toy_world["model"], "t-counting", 0, runs_dir=runs, hub_dir=toy_world["hub"],
                     datasets_dir=toy_world["datasets"], protocol=protocol)
    path = gt.job_path(toy_world["model"], "t-counting", 0, runs)
    assert json.loads(path.read_text())["test_accuracy"] == rec["test_accuracy"]
    assert 0.0 <= rec["test_accuracy"] <= 1.0 and rec["num_classes"] == 6
    assert not list(runs.glob("*.tmp")) and not list(runs.glob(".*.tmp"))
    dirs = {"hub_dir": toy_world["hub"], "datasets_dir": toy_world["datasets"]}
    assert gt.is_done(path, **dirs)
    assert rec["dataset_sha256"] == gt._dataset_fingerprint(str(toy_world["datasets"] / "t-counting"))
    # a finished job is skipped: fine-tuning must not even be called
    monkeypatch.setattr(gt, "run_job", lambda *a, **k: pytest.fail("finished job was re-run"))
    assert gt._claimed_job(toy_world["model"], "t-counting", 0, runs, **dirs) is None
    # ... unless the weights it was fine-tuned from changed: then it is stale and redone
    stale = {**json.loads(path.read_text()), "model_sha256": "0" * 64}
    gt.write_atomic(path, stale)
    assert "weights" in gt.stale_reason(stale, **dirs) and not gt.is_done(path, **dirs)
    assert gt.load_results(runs, **dirs) == []


@pytest.mark.slow
def test_the_ray_queue_writes_the_records_the_local_queue_writes(toy_world, tmp_path):
    """Two jobs as Ray tasks on a local instance: each record comes back and is written by the
    queue, as the local queue writes it; finished jobs are not run again."""
    pytest.importorskip("ray", reason="the Ray tests need the ray extra: pip install -e '.[ray]' (.ci/run's Ray "
                                      "check installs it)")
    import build_ground_truth as gt
    protocol = dataclasses.replace(gt.PROTOCOL, learning_rates=(1e-3,), steps=2, batch_size=8)
    dirs = {"hub_dir": toy_world["hub"], "datasets_dir": toy_world["datasets"], "protocol": protocol}
    jobs = [(toy_world["model"], "t-counting", seed) for seed in (0, 1)]
    local = gt.run_job(*jobs[0], runs_dir=tmp_path / "local", **dirs)
    runs = tmp_path / "ray"
    assert gt.run_queue(jobs=jobs, runs_dir=runs, ray="local", ray_cpus=2, **dirs) == 2
    on_ray = json.loads(gt.job_path(*jobs[0], runs).read_text())
    for field in ("test_accuracy", "val_accuracy", "num_classes", "model_sha256", "dataset_sha256"):
        assert on_ray[field] == local[field], field
    assert [r["final_train_loss"] for r in on_ray["runs"]] == [r["final_train_loss"] for r in local["runs"]]
    assert on_ray["device"] == "cpu" and gt.is_done(gt.job_path(*jobs[1], runs), protocol, hub_dir=toy_world["hub"],
                                                     datasets_dir=toy_world["datasets"])
    assert not (runs / ".claims").exists() and not list(runs.glob(".*.tmp"))  # Ray schedules; no claim files
    assert gt.run_queue(jobs=jobs, runs_dir=runs, ray="local", ray_cpus=2, **dirs) == 0  # nothing left to do


def test_write_atomic_leaves_no_partial_file(tmp_path):
    import build_ground_truth as gt
    target = tmp_path / "x.json"
    gt.write_atomic(target, {"a": 1})
    gt.write_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_job_order_and_second_seed_subset():
    import build_ground_truth as gt
    models = [f"org/m{i}" for i in range(20)]
    targets = ["t-a", "t-b", "t-c"]
    jobs = gt.all_jobs(models, targets)
    s0 = [j for j in jobs if j[2] == 0]
    s1 = [j for j in jobs if j[2] == 1]
    assert len(s0) == 60 and len(s1) >= 0.25 * len(s0)
    # whole targets one after another (each target's seed-0 jobs, then its seed-1 jobs), so a
    # partial run leaves complete targets rather than every target a little
    assert [t for _, t, _ in jobs] == sorted((t for _, t, _ in jobs), key=targets.index)
    for t in targets:
        own = [j for j in jobs if j[1] == t]
        assert [j[2] for j in own] == sorted(j[2] for j in own)
        assert {m for m, _, seed in own if seed == 0} == set(models)
    assert gt.all_jobs(models, targets) == jobs  # deterministic
    # membership of the seed-1 subset depends only on (model, target)
    assert set(gt.second_seed_models(models, "t-a")) <= set(models)


def _fake_result(model, target, seed, acc):
    # Synthetic records that exercise the aggregation code only; never written to benchmark/.
    return {"model": model, "target": target, "seed": seed, "test_accuracy": acc, "val_accuracy": acc, "lr": 1e-3,
            "seconds": 1.0, "protocol": {"version": "zoo-ft-v1"}}


def _partial_runs(tmp_path):
    """Toy results: t-a, t-b and t-c complete for 8 models, t-d with 5 of them (seed 0)."""
    import build_ground_truth as gt
    rng = np.random.default_rng(0)
    models = [f"org/m{i}" for i in range(8)]
    targets = ["t-a", "t-b", "t-c", "t-d"]
    runs = tmp_path / "runs"
    for t in targets:
        for m in models if t != "t-d" else models[:5]:
            gt.write_atomic(gt.job_path(m, t, 0, runs), _fake_result(m, t, 0, float(rng.uniform())))
    for t in ("t-a", "t-d"):
        for m in gt.second_seed_models(models, t):
            gt.write_atomic(gt.job_path(m, t, 1, runs), _fake_result(m, t, 1, float(rng.uniform())))
    return gt, runs, models, targets


def test_aggregation_on_partial_results(tmp_path):
    gt, runs, models, targets = _partial_runs(tmp_path)
    out = gt.aggregate(runs, tmp_path / "results", plot=False, models=models, targets=targets)
    assert out["coverage"]["seed0_done"] == 29 and out["coverage"]["seed0_total"] == 32
    # the incomplete target is pending: in no table, no figure (its seed-1 results neither)
    assert out["pending_targets"] == {"t-d": {"seed0_done": 5, "seed0_total": 8}}
    assert out["targets"] == ["t-a", "t-b", "t-c"]
    assert set(out["test_accuracy_seed0"]) == set(out["test_accuracy_seed1"]) == {"t-a", "t-b", "t-c"}
    assert set(out["noise_ceiling"]) == {"t-a"}
    assert -1.0 <= out["ranking_diversity_mean_kendall_tau"] <= 1.0
    assert len(out["ranking_diversity_pairs"]) == 3  # t-a/t-b, t-a/t-c, t-b/t-c
    assert set(out["best_model_per_target"]) == {"t-a", "t-b", "t-c"}
    assert (tmp_path / "results" / "zoo_ground_truth.csv").read_text().count("\n") == 1 + 29 + 2 * len(
        gt.second_seed_models(models, "t-a"))
    report = (tmp_path / "results" / "zoo_report.md").read_text()
    assert "partial results" in report and "t-d (5/8)" in report and "| t-d | 5 / 8 (pending) |" in report
    status = gt.write_status(runs, models=models, targets=targets)
    assert status["total"] == len(gt.all_jobs(models, targets))


def test_diversity_statistics_over_complete_targets(tmp_path):
    from scipy.stats import kendalltau

    import build_ground_truth as gt

    models = [f"org/m{i}" for i in range(6)]
    up = {m: 0.1 * (i + 1) for i, m in enumerate(models)}  # m5 best
    down = {m: 0.1 * (6 - i) for i, m in enumerate(models)}  # m0 best
    truth = {"t-a": up, "t-b": dict(up), "t-c": down, "t-d": {**up, "org/m0": up["org/m5"]}}  # t-d: m0, m5 tie
    runs = tmp_path / "runs"
    for t, row in truth.items():
        for m, v in row.items():
            gt.write_atomic(gt.job_path(m, t, 0, runs), _fake_result(m, t, 0, v))
    gt.write_atomic(gt.job_path("org/m1", "t-e", 0, runs), _fake_result("org/m1", "t-e", 0, 1.0))  # pending
    out = gt.aggregate(runs, tmp_path / "results", plot=False, models=models, targets=[*truth, "t-e"])
    # wins: t-a, t-b -> m5; t-c -> m0; t-d tied -> half each; the pending t-e counts for nothing
    assert out["model_win_share"] == pytest.approx({"org/m5": 2.5 / 4, "org/m0": 1.5 / 4})
    assert list(out["model_win_share"]) == ["org/m5", "org/m0"]  # largest share first
    assert out["max_model_win_share"] == pytest.approx(2.5 / 4)
    keys = list(truth)
    expected = np.mean([kendalltau([truth[a][m] for m in models], [truth[b][m] for m in models]).statistic
                        for i, a in enumerate(keys) for b in keys[i + 1:]])
    assert out["ranking_diversity_mean_kendall_tau"] == pytest.approx(expected)
    saved = json.loads((tmp_path / "results" / "zoo_ground_truth.json").read_text())
    assert saved["model_win_share"] == pytest.approx(out["model_win_share"])
    report = (tmp_path / "results" / "zoo_report.md").read_text()
    assert "largest share of targets won by one model: **0.62** (org/m5)" in report
    assert "| org/m5 | 2.5 | 0.62 |" in report


def test_a_pending_target_stays_out_of_the_zoo_history(tmp_path):
    """What the zoo workspace imports from the aggregated ground truth: complete targets only."""
    from fennec.catalog import Catalog
    gt, runs, models, targets = _partial_runs(tmp_path)
    gt.aggregate(runs, tmp_path / "results", plot=False, models=models, targets=targets)
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        catalog.import_zoo_ground_truth(tmp_path / "results" / "zoo_ground_truth.json")
        tasks = {r.task_id for r in catalog.transfer_results(source="zoo_ground_truth")}
    assert tasks == {"t-a", "t-b", "t-c"}


def test_harness_evaluation_table():
    sys.path.insert(0, str(SCRIPTS.parent / "benchmark"))
    import zoo_metrics
    models = [f"org/m{i}" for i in range(6)]
    acc = {m: 0.1 * i for i, m in enumerate(models)}
    scores = {"t-a": {m: {"good": {"score": 0.1 * i}, "bad": {"score": -0.1 * i}} for i, m in enumerate(models)}}
    table = zoo_metrics.evaluate(scores, {"t-a": acc}, ["good", "bad"])
    assert table["t-a"]["good"]["weighted_tau"] == pytest.approx(1.0)
    assert table["t-a"]["bad"]["weighted_tau"] == pytest.approx(-1.0)
    assert table["t-a"]["good"]["top1_regret"] == pytest.approx(0.0)


def test_a_claimed_job_is_not_claimed_twice_and_is_released(tmp_path):
    import build_ground_truth as gt
    path = tmp_path / "runs" / "m__t__seed0.json"
    fd = gt._claim(path)
    assert fd is not None
    assert gt._claim(path) is None  # held (flock is per open file, so this holds within a process too)
    gt._release(fd)
    again = gt._claim(path)
    assert again is not None
    gt._release(again)


def test_the_head_is_reinitialised_when_the_label_count_matches(toy_world, tmp_path):
    import torch
    import transformers

    import build_ground_truth as gt

    model_dir = toy_world["hub"] / toy_world["model"]
    n = gt.checkpoint_labels(model_dir)
    assert n == 52
    model = transformers.AutoModelForImageClassification.from_pretrained(model_dir, num_labels=n,
                                                                         ignore_mismatched_sizes=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert gt.reinit_head(model) == ["classifier"]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("classifier.") for k in changed)

    # a result written before the fix, with a matching label count, is redone; others are kept
    runs = tmp_path / "runs"
    record = {"model": toy_world["model"], "protocol": {"version": gt.PROTOCOL.version}, "num_classes": 52}
    gt.write_atomic(runs / "a.json", record)
    assert not gt.is_done(runs / "a.json", hub_dir=toy_world["hub"])
    gt.write_atomic(runs / "b.json", {**record, "head_reinit": "explicit"})
    gt.write_atomic(runs / "c.json", {**record, "num_classes": 6})
    assert gt.is_done(runs / "b.json", hub_dir=toy_world["hub"])
    assert gt.is_done(runs / "c.json", hub_dir=toy_world["hub"])
