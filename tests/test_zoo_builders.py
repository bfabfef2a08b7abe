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

build_datasets = pytest.importorskip("build_datasets")


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
        if recipe.pool is not None or recipe.kind == "source":
            continue  # pooled (real) data and the large sources are covered by other tests / the build
        x, y = build_datasets.generate(recipe, scale=0.02)["train"]
        assert set(np.unique(y)) == set(range(len(recipe.classes))), name


def test_saved_dataset_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
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
    build_zoo = pytest.importorskip("build_zoo")
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
    transformers = pytest.importorskip("transformers")
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
    gt = pytest.importorskip("build_ground_truth")
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


def test_write_atomic_leaves_no_partial_file(tmp_path):
    gt = pytest.importorskip("build_ground_truth")
    target = tmp_path / "x.json"
    gt.write_atomic(target, {"a": 1})
    gt.write_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_job_order_and_second_seed_subset():
    gt = pytest.importorskip("build_ground_truth")
    models = [f"org/m{i}" for i in range(20)]
    targets = ["t-a", "t-b", "t-c"]
    jobs = gt.all_jobs(models, targets)
    s0 = [j for j in jobs if j[2] == 0]
    s1 = [j for j in jobs if j[2] == 1]
    assert len(s0) == 60 and jobs[:60] == s0  # every seed-0 job first
    assert len(s1) >= 0.25 * len(s0)
    assert gt.all_jobs(models, targets) == jobs  # deterministic
    # membership of the seed-1 subset depends only on (model, target)
    assert set(gt.second_seed_models(models, "t-a")) <= set(models)


def _fake_result(model, target, seed, acc):
    # Synthetic records that exercise the aggregation code only; never written to benchmark/.
    return {"model": model, "target": target, "seed": seed, "test_accuracy": acc, "val_accuracy": acc, "lr": 1e-3,
            "seconds": 1.0, "protocol": {"version": "zoo-ft-v1"}}


def test_aggregation_on_partial_results(tmp_path):
    gt = pytest.importorskip("build_ground_truth")
    rng = np.random.default_rng(0)
    models = [f"org/m{i}" for i in range(8)]
    targets = ["t-a", "t-b", "t-c"]
    runs = tmp_path / "runs"
    for t in targets:
        for m in models[:6]:  # partial: 2 models missing everywhere
            gt.write_atomic(gt.job_path(m, t, 0, runs), _fake_result(m, t, 0, float(rng.uniform())))
    for m in gt.second_seed_models(models, "t-a"):
        if m in models[:6]:
            gt.write_atomic(gt.job_path(m, "t-a", 1, runs), _fake_result(m, "t-a", 1, float(rng.uniform())))
    out = gt.aggregate(runs, tmp_path / "results", plot=False, models=models, targets=targets)
    assert out["coverage"]["seed0_done"] == 18 and out["coverage"]["seed0_total"] == 24
    assert -1.0 <= out["ranking_diversity_mean_kendall_tau"] <= 1.0
    assert len(out["ranking_diversity_pairs"]) == 3
    assert set(out["best_model_per_target"]) == set(targets)
    assert (tmp_path / "results" / "zoo_ground_truth.csv").read_text().count("\n") == 1 + 18 + sum(
        1 for m in gt.second_seed_models(models, "t-a") if m in models[:6])
    report = (tmp_path / "results" / "zoo_report.md").read_text()
    assert "partial results" in report
    status = gt.write_status(runs, models=models, targets=targets)
    assert status["total"] == len(gt.all_jobs(models, targets))


def test_harness_evaluation_table():
    sys.path.insert(0, str(SCRIPTS.parent / "benchmark"))
    zoo_metrics = pytest.importorskip("zoo_metrics")
    pytest.importorskip("fennec.evaluation")
    models = [f"org/m{i}" for i in range(6)]
    acc = {m: 0.1 * i for i, m in enumerate(models)}
    scores = {"t-a": {m: {"good": {"score": 0.1 * i}, "bad": {"score": -0.1 * i}} for i, m in enumerate(models)}}
    table = zoo_metrics.evaluate(scores, {"t-a": acc}, ["good", "bad"])
    assert table["t-a"]["good"]["weighted_tau"] == pytest.approx(1.0)
    assert table["t-a"]["bad"]["weighted_tau"] == pytest.approx(-1.0)
    assert table["t-a"]["good"]["top1_regret"] == pytest.approx(0.0)


def test_a_claimed_job_is_not_claimed_twice_and_is_released(tmp_path):
    gt = pytest.importorskip("build_ground_truth")
    path = tmp_path / "runs" / "m__t__seed0.json"
    fd = gt._claim(path)
    assert fd is not None
    assert gt._claim(path) is None  # held (flock is per open file, so this holds within a process too)
    gt._release(fd)
    again = gt._claim(path)
    assert again is not None
    gt._release(again)


def test_the_head_is_reinitialised_when_the_label_count_matches(toy_world, tmp_path):
    gt = pytest.importorskip("build_ground_truth")
    transformers = pytest.importorskip("transformers")
    import torch

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
    assert gt.is_done(runs / "b.json", hub_dir=toy_world["hub"]) and gt.is_done(runs / "c.json", hub_dir=toy_world["hub"])
