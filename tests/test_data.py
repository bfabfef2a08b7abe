"""fennec.data: every source layout, column detection, stratified sampling, errors."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fennec.data import DatasetSample, load_sample
from fennec.errors import (
    DatasetColumnError,
    DatasetError,
    DatasetNotFoundError,
    DatasetSplitError,
    DatasetWarning,
    HubOfflineError,
    InvalidInputError,
)
from fennec.hub.server import HubServer
from hub_server_fixtures import REPO_ROOT, hub_server, online, run_python, tiny_zoo  # noqa: F401

# ---------------------------------------------------------------------------------------
# Tiny synthetic datasets
# ---------------------------------------------------------------------------------------


def _pixels(seed: int, shape=(8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_image_folder(root: Path, sizes: dict[str, int], *, seed: int = 0, ext: str = ".png") -> Path:
    """``root/<class>/<i>.png`` with random 8x8 RGB images; image seed = seed*1000 + k."""
    k = 0
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(_pixels(seed * 1000 + k)).save(root / cls / f"{i:03d}{ext}")
            k += 1
    return root


def write_table(path: Path, columns: dict, metadata: dict | None = None, row_group_size=None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata({"huggingface": json.dumps(metadata)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------


def test_image_folder_flat_layout(tmp_path):
    root = make_image_folder(tmp_path / "pets", {"dog": 5, "cat": 4, "fish": 3})
    before = snapshot(root)
    s = load_sample(root, max_samples=None)
    assert isinstance(s, DatasetSample)
    assert s.class_names == ("cat", "dog", "fish")  # sorted folder names
    assert s.class_counts().tolist() == [4, 5, 3] and len(s) == 12 and s.n_available == 12
    assert s.split == "train" and s.source == str(root.resolve())
    assert (s.image_column, s.label_column, s.n_skipped) == ("image", "label", 0)
    assert s.labels.dtype == np.int64 and np.all(np.diff(s.labels) >= 0)  # ordered by class
    assert all(im.mode == "RGB" and im.size == (8, 8) for im in s.images)
    # the first cat image is dog's 5 images later in the folder: seed 5 (dog is written first)
    np.testing.assert_array_equal(np.asarray(s.images[0]), _pixels(5))
    assert str(root.resolve()) in s.summary() and "12 images" in s.summary()
    assert snapshot(root) == before  # nothing written into the user's folder


def test_image_folder_split_layout_and_split_choice(tmp_path):
    make_image_folder(tmp_path / "ds" / "train", {"a": 4, "b": 4})
    make_image_folder(tmp_path / "ds" / "test", {"a": 2, "b": 3}, seed=1)
    assert load_sample(tmp_path / "ds").split == "train"
    test = load_sample(tmp_path / "ds", split="test")
    assert test.split == "test" and test.class_counts().tolist() == [2, 3]
    with pytest.raises(DatasetSplitError, match="test, train") as e:
        load_sample(tmp_path / "ds", split="validation")
    assert e.value.available == ("test", "train") and e.value.split == "validation"


def test_image_folder_with_images_nested_under_their_class_folders(tmp_path):
    make_image_folder(tmp_path / "ds" / "cat" / "indoor", {"x": 3})
    make_image_folder(tmp_path / "ds" / "dog" / "park", {"y": 2}, seed=1)
    s = load_sample(tmp_path / "ds", max_samples=None)
    assert s.split == "train" and s.class_names == ("cat", "dog") and s.class_counts().tolist() == [3, 2]
    # the same nesting under split folders
    make_image_folder(tmp_path / "split" / "train" / "cat" / "indoor", {"x": 2})
    make_image_folder(tmp_path / "split" / "train" / "dog" / "park", {"y": 2}, seed=1)
    make_image_folder(tmp_path / "split" / "test" / "cat" / "indoor", {"x": 1})
    s = load_sample(tmp_path / "split", max_samples=None)
    assert s.split == "train" and s.class_names == ("cat", "dog") and s.class_counts().tolist() == [2, 2]


def test_split_fallback_only_split_or_error_listing_them(tmp_path):
    make_image_folder(tmp_path / "one" / "val", {"a": 2, "b": 2})
    assert load_sample(tmp_path / "one").split == "val"
    make_image_folder(tmp_path / "two" / "val", {"a": 2, "b": 2})
    make_image_folder(tmp_path / "two" / "test", {"a": 2, "b": 2})
    with pytest.raises(DatasetSplitError, match="no 'train' split.*test, val.*split="):
        load_sample(tmp_path / "two")


def test_all_pixel_modes_become_8bit_rgb(tmp_path):
    root = tmp_path / "modes"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    gray = np.full((8, 8), 100, np.uint8)
    Image.fromarray(gray, "L").save(root / "a" / "gray.png")
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(root / "a" / "sixteen.png")
    Image.fromarray(_pixels(1, (8, 8, 4)), "RGBA").save(root / "a" / "rgba.png")
    Image.fromarray(gray, "L").convert("P").save(root / "b" / "palette.png", transparency=0)
    Image.fromarray(gray, "L").convert("1").save(root / "b" / "bits.bmp")
    Image.fromarray(_pixels(2)).convert("CMYK").save(root / "b" / "cmyk.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PIL palette warning, nothing skipped
        s = load_sample(root, max_samples=None)
    assert len(s) == 6 and s.n_skipped == 0
    assert all(im.mode == "RGB" and im.size == (8, 8) for im in s.images)
    by_name = dict(zip(["gray", "rgba", "sixteen"], s.images[:3], strict=True))  # rglob order: sorted names
    assert np.all(np.asarray(by_name["gray"]) == 100)
    assert np.all(np.asarray(by_name["sixteen"]) == 100)  # 16-bit rescaled, not clipped to 255


def test_parquet_folder_in_hub_layout_and_single_file(tiny_zoo):
    folder = tiny_zoo["datasets"] / "t-tiny"
    s = load_sample(folder, max_samples=None)
    assert s.class_names == ("cat", "dog", "fish") and s.split == "train" and s.n_available == 9
    assert s.class_counts().tolist() == [3, 3, 3]
    assert load_sample(folder, split="test").n_available == 6
    with pytest.raises(DatasetSplitError, match="test, train"):
        load_sample(folder, split="validation")
    one = load_sample(folder / "data" / "test-00000-of-00001.parquet", max_samples=None)
    assert one.split == "test" and one.fingerprint == load_sample(folder, split="test",
                                                                 max_samples=None).fingerprint


def test_parquet_string_labels_binary_images_and_detection(tmp_path):
    labels = ["zebra", "ant", "moth"] * 3
    imgs = [_png(Image.fromarray(_pixels(i))) for i in range(9)]
    path = write_table(tmp_path / "plain.parquet",
                       {"id": list(range(9)), "img": imgs, "category": labels})
    s = load_sample(path, max_samples=None)
    assert (s.image_column, s.label_column) == ("img", "category")
    assert s.class_names == ("ant", "moth", "zebra")  # string labels -> sorted class names
    assert [s.class_names[y] for y in s.labels] == ["ant"] * 3 + ["moth"] * 3 + ["zebra"] * 3
    np.testing.assert_array_equal(np.asarray(s.images[0]), _pixels(1))  # first "ant" is row 1


def test_parquet_column_of_relative_image_paths(tmp_path):
    root = make_image_folder(tmp_path / "files", {"x": 3, "y": 3})
    rel = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    path = write_table(root / "index.parquet", {"file": rel, "target": [0, 0, 0, 1, 1, 1]})
    s = load_sample(path, max_samples=None)
    assert (s.image_column, s.label_column) == ("file", "target")
    assert s.class_names == ("0", "1") and len(s) == 6 and s.n_skipped == 0


def test_same_pixels_same_fingerprint_across_sources(tmp_path):
    root = make_image_folder(tmp_path / "folder", {"a": 3, "b": 3})
    files = sorted(root.rglob("*.png"))
    write_table(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet",
                {"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
                 "label": [0, 0, 0, 1, 1, 1]},
                metadata={"info": {"features": {"image": {"_type": "Image"},
                                                "label": {"_type": "ClassLabel", "names": ["a", "b"]}}}})
    a, b = load_sample(root), load_sample(tmp_path / "pq")
    assert a.fingerprint == b.fingerprint and a.source != b.source


def test_parquet_configs_and_converted_layout(tmp_path):
    imgs = [_png(Image.fromarray(_pixels(i))) for i in range(4)]
    for cfg, labels in (("small", [0, 1, 0, 1]), ("big", [0, 1, 2, 2])):
        write_table(tmp_path / "cfgs" / cfg / "train-00000-of-00001.parquet",
                    {"image": imgs, "label": labels})
    with pytest.raises(DatasetSplitError, match="several configs: big, small.*config=") as e:
        load_sample(tmp_path / "cfgs")
    assert e.value.available == ("big", "small")
    assert load_sample(tmp_path / "cfgs", config="small", min_per_class=1).n_classes == 2
    assert load_sample(tmp_path / "cfgs", config="big", min_per_class=1).n_classes == 3
    with pytest.raises(DatasetSplitError, match="no config 'other'"):
        load_sample(tmp_path / "cfgs", config="other")
    # the Hub's refs/convert/parquet layout: <config>/<split>/<n>.parquet
    write_table(tmp_path / "conv" / "default" / "validation" / "0000.parquet",
                {"image": imgs, "label": [0, 1, 0, 1]})
    write_table(tmp_path / "conv" / "default" / "validation" / "0001.parquet",
                {"image": imgs, "label": [1, 0, 1, 0]})
    s = load_sample(tmp_path / "conv")
    assert s.split == "validation" and s.n_available == 8 and s.class_counts().tolist() == [4, 4]


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    import datasets

    feats = datasets.Features({"picture": datasets.Image(),
                               "fine": datasets.ClassLabel(names=["p", "q", "r"])})
    rows = {"picture": [Image.fromarray(_pixels(i)) for i in range(9)], "fine": [0, 1, 2] * 3}
    ds = datasets.Dataset.from_dict(rows, features=feats)
    ds.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"validation": ds, "test": ds.select(range(6))}).save_to_disk(
        str(tmp_path / "dict"))
    before = snapshot(tmp_path)
    single = load_sample(tmp_path / "single", per_class=2)
    assert (single.image_column, single.label_column) == ("picture", "fine")
    assert single.class_names == ("p", "q", "r") and single.class_counts().tolist() == [2, 2, 2]
    with pytest.raises(DatasetSplitError, match="test, validation"):
        load_sample(tmp_path / "dict")
    test = load_sample(tmp_path / "dict", split="test", max_samples=None)
    assert test.n_available == 6 and len(test) == 6
    assert snapshot(tmp_path) == before


def test_real_zoo_fewshot_dataset(capsys):
    s = load_sample(REPO_ROOT / "zoo" / "datasets" / "t-digits-fewshot", max_samples=None,
                    progress=True)
    assert "decoding images" in capsys.readouterr().err
    assert s.n_classes == 10 and s.class_counts().tolist() == [10] * 10
    assert s.class_names == tuple(str(d) for d in range(10))
    assert all(im.mode == "RGB" and im.size == (32, 32) for im in s.images)


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------


def test_balanced_quota_per_class_cap_and_no_redistribution(tmp_path):
    root = make_image_folder(tmp_path / "d", {"a": 10, "b": 6, "c": 3})
    assert load_sample(root, max_samples=12).class_counts().tolist() == [4, 4, 3]  # c's 1 not moved
    assert load_sample(root, per_class=5).class_counts().tolist() == [5, 5, 3]
    assert load_sample(root, per_class=5, max_samples=3).class_counts().tolist() == [5, 5, 3]
    assert load_sample(root, max_samples=None).class_counts().tolist() == [10, 6, 3]


def test_same_seed_same_sample_other_seed_other_sample(tmp_path):
    root = make_image_folder(tmp_path / "d", {"a": 12, "b": 12})
    a, b = load_sample(root, per_class=4, seed=3), load_sample(root, per_class=4, seed=3)
    c = load_sample(root, per_class=4, seed=4)
    assert a.fingerprint == b.fingerprint and a.seed == 3
    assert c.fingerprint != a.fingerprint
    assert not all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, c.images, strict=True))


def test_small_classes_dropped_with_a_warning(tmp_path):
    root = make_image_folder(tmp_path / "d", {"a": 4, "rare": 1, "z": 4})
    with pytest.warns(DatasetWarning, match=r"'rare' \(1\)"):
        s = load_sample(root, min_per_class=2)
    assert s.class_names == ("a", "z") and set(s.labels.tolist()) == {0, 1}
    other = make_image_folder(tmp_path / "e", {"a": 4, "b": 1})
    with pytest.warns(DatasetWarning, match="'b'"), pytest.raises(DatasetError, match="1 class"):
        load_sample(other)


def test_unreadable_images_are_skipped_counted_and_replaced(tmp_path):
    root = make_image_folder(tmp_path / "d", {"a": 4, "b": 6})
    (root / "a" / "broken1.png").write_bytes(b"not a png")
    (root / "a" / "broken2.jpg").write_bytes(_png(Image.fromarray(_pixels(0)))[:30])  # truncated
    (root / "a" / "notes.txt").write_text("ignored: not an image extension")
    with pytest.warns(DatasetWarning, match=r"skipped 2 image.*: a/broken1.png, a/broken2.jpg$"):
        full = load_sample(root, max_samples=None)
    assert full.n_skipped == 2 and full.class_counts().tolist() == [4, 6] and full.n_available == 12
    for seed in range(4):  # class a has exactly 4 readable images among 6 rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            s = load_sample(root, per_class=4, seed=seed)
        assert s.class_counts().tolist() == [4, 4] and 0 <= s.n_skipped <= 2


def test_warnings_raised_while_decoding_are_one_warning_with_a_count_and_names(tmp_path, monkeypatch):
    import fennec.data.sampling as data

    root = make_image_folder(tmp_path / "d", {"a": 3, "b": 3})
    decode = data._decode

    def warning_decode(value, *args, **kwargs):
        warnings.warn("Corrupt EXIF data", UserWarning, stacklevel=2)
        return decode(value, *args, **kwargs)

    monkeypatch.setattr(data, "_decode", warning_decode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_sample(root, max_samples=None)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and all(issubclass(w.category, DatasetWarning) for w in caught)
    assert ("6 image(s) warned while decoding (UserWarning: Corrupt EXIF data): a/000.png, a/001.png, a/002.png, "
            "b/000.png, b/001.png, …") in messages[0] and messages[0].endswith(", …")


def test_a_single_parquet_file_is_the_train_split_unless_named_like_a_split(tmp_path):
    import pyarrow as pa

    imgs = [{"bytes": _png(Image.fromarray(_pixels(i))), "path": None} for i in range(6)]
    columns = {"image": pa.array(imgs, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
               "label": [0, 1] * 3}
    mine = write_table(tmp_path / "my_photos-2.parquet", columns)
    assert load_sample(mine, max_samples=None).split == "train"
    assert load_sample(mine, split="train", max_samples=None).n_available == 6
    with pytest.raises(DatasetSplitError, match="its splits are: train"):
        load_sample(mine, split="my_photos")
    assert load_sample(write_table(tmp_path / "validation.parquet", columns), max_samples=None).split == "validation"


def test_parquet_reads_images_only_from_sampled_row_groups(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    n = 40
    path = write_table(tmp_path / "big.parquet",
                       {"image": [_png(Image.fromarray(_pixels(i))) for i in range(n)],
                        "label": [i % 2 for i in range(n)]}, row_group_size=2)
    calls = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, columns=None, **kw: calls.append((i, columns))
                        or original(self, i, columns=columns, **kw))
    s = load_sample(path, per_class=2)
    assert len(s) == 4 and pq.ParquetFile(path).num_row_groups == 20
    assert 1 <= len(calls) <= 4 and all(c == ["image"] for _, c in calls)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_no_image_column_names_columns_and_argument(tmp_path):
    path = write_table(tmp_path / "t.parquet", {"x": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]})
    with pytest.raises(DatasetColumnError, match=r"No image column.*image_column=.*x \(double\)") as e:
        load_sample(path)
    assert e.value.columns == ("x", "label") and isinstance(e.value, ValueError)


def test_ambiguous_and_explicit_columns(tmp_path):
    imgs = [_png(Image.fromarray(_pixels(i))) for i in range(4)]
    path = write_table(tmp_path / "t.parquet", {"a": imgs, "b": imgs, "label": ["x", "y"] * 2})
    with pytest.raises(DatasetColumnError, match="Several image columns: a, b"):
        load_sample(path)
    assert load_sample(path, image_column="b").image_column == "b"
    with pytest.raises(DatasetColumnError, match="label_column='nope' is not a column"):
        load_sample(path, image_column="a", label_column="nope")


def test_no_labels_and_one_class(tmp_path):
    imgs = [_png(Image.fromarray(_pixels(i))) for i in range(4)]
    with pytest.raises(DatasetColumnError, match="No label column.*label_column="):
        load_sample(write_table(tmp_path / "a.parquet", {"image": imgs, "caption": list("abcd")}))
    with pytest.raises(DatasetError, match="no labels.*split="):
        load_sample(write_table(tmp_path / "b.parquet", {"image": imgs, "label": [-1] * 4}))
    with pytest.raises(DatasetError, match="1 class.*at least 2"):
        load_sample(write_table(tmp_path / "c.parquet", {"image": imgs, "label": [3] * 4}))


def test_all_images_unreadable(tmp_path):
    path = write_table(tmp_path / "t.parquet", {"image": [b"junk"] * 4, "label": [0, 1, 0, 1]})
    with pytest.warns(DatasetWarning, match="skipped 4"), pytest.raises(DatasetError, match="none of the 4"):
        load_sample(path)


def test_nonexistent_path_not_a_hub_id(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="neither a local path.*nor a Hub") as e:
        load_sample(tmp_path / "no" / "such" / "dataset")
    assert e.value.tried and isinstance(e.value, FileNotFoundError)


def test_folder_in_no_known_layout(tmp_path):
    Image.fromarray(_pixels(0)).save(tmp_path / "loose.png")
    with pytest.raises(DatasetError, match="no class sub-folders.*Tried: ImageFolder"):
        load_sample(tmp_path)


def test_bad_arguments(tmp_path):
    root = make_image_folder(tmp_path / "d", {"a": 3, "b": 3, "c": 3})
    with pytest.raises(InvalidInputError, match="max_samples"):
        load_sample(root, max_samples=0)
    with pytest.raises(InvalidInputError, match="per_class=1 is below min_per_class=2"):
        load_sample(root, per_class=1)
    with pytest.raises(InvalidInputError, match="raise max_samples= to at least 6"):
        load_sample(root, max_samples=5)
    with pytest.raises(InvalidInputError, match="seed must be an int"):
        load_sample(root, seed=None)


# ---------------------------------------------------------------------------------------
# The Hub (local server)
# ---------------------------------------------------------------------------------------


def test_hub_dataset_through_the_local_server(online, tiny_zoo, tmp_path):
    s = load_sample("local/t-tiny", per_class=2, seed=1)
    local = load_sample(tiny_zoo["datasets"] / "t-tiny", per_class=2, seed=1)
    assert s.source == "hub:local/t-tiny" and s.split == "train" and s.n_available == 9
    assert s.fingerprint == local.fingerprint and s.class_names == ("cat", "dog", "fish")
    assert load_sample("hub:local/t-tiny", split="test", max_samples=None).n_available == 6
    with pytest.raises(DatasetSplitError, match="test, train"):
        load_sample("local/t-tiny", split="validation")
    with pytest.raises(DatasetNotFoundError, match="no dataset 'local/missing'"):
        load_sample("local/missing")
    # parquet is read over range requests: nothing lands in the Hugging Face cache
    assert not any((tmp_path / "hf_home").rglob("*.parquet"))
    assert any(p.endswith(".parquet") for _, p, _ in online.requests)


def test_hub_offline_is_refused_clearly():
    with pytest.raises(HubOfflineError, match="offline mode"):
        load_sample("local/t-tiny")  # conftest sets HF_HUB_OFFLINE=1


def test_hub_without_parquet_is_read_from_fennecs_checked_download(tmp_path, monkeypatch):
    # fennec downloads the files itself (checked) and datasets reads that snapshot as a local
    # folder, so datasets sends no request: no HEAD probe of a missing file whose 404 would let
    # the endpoint's X-Repo-Commit name a .no_exist/ folder, whatever HF_ENDPOINT it was
    # imported with
    import datasets
    import huggingface_hub.constants as hf_constants

    make_image_folder(tmp_path / "served" / "folder-ds" / "train", {"a": 2, "b": 2})
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "ds"))
    with HubServer(datasets_dir=tmp_path / "served") as server:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # read at import
        s = load_sample("local/folder-ds", per_class=2)
    assert (list(s.class_names), len(s), s.source) == (["a", "b"], 4, "hub:local/folder-ds")
    assert server.requests and all(m == "GET" for m, _, _ in server.requests), server.requests
    resolved = [p for _, p, _ in server.requests if not p.startswith("/api/datasets/local/folder-ds")]
    assert resolved and all(p.startswith("/datasets/local/folder-ds/resolve/") for p in resolved), resolved
    assert not list(tmp_path.rglob(".no_exist"))
    # offline, with the server gone, the same snapshot is read again
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    again = load_sample("local/folder-ds", per_class=2)
    assert again.fingerprint == s.fingerprint


@pytest.mark.slow
def test_hub_without_parquet_falls_back_to_load_dataset(tmp_path):
    make_image_folder(tmp_path / "served" / "folder-ds" / "train", {"a": 3, "b": 3})
    with HubServer(datasets_dir=tmp_path / "served") as server:
        out = run_python("""
            import json
            from fennec.data import load_sample
            s = load_sample("local/folder-ds", per_class=2)
            print(json.dumps({"names": list(s.class_names), "n": len(s), "source": s.source}))
        """, env={"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
                  "HF_DATASETS_CACHE": str(tmp_path / "ds")})
    assert out == {"names": ["a", "b"], "n": 4, "source": "hub:local/folder-ds"}
    # fennec downloaded the listed files (checked); datasets read them as a local folder
    # and sent no request of its own (not even a probe of a file the repository lacks)
    listed = {p for m, p, status in server.requests if "/resolve/" in p and status == 200}
    assert listed and all(m == "GET" for m, _, _ in server.requests), server.requests


def test_docstring_examples(monkeypatch):
    import doctest

    import fennec.data.sampling

    monkeypatch.chdir(REPO_ROOT)  # the examples use the zoo's relative paths
    result = doctest.testmod(fennec.data.sampling, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


def test_hub_parquet_fetches_only_what_the_sample_needs(online, tmp_path, monkeypatch):
    import fennec.hub.server.routes as routes

    n = 200  # 20 row groups of 10 rows, ~70 KB of images each, both classes in every group
    path = write_table(tmp_path / "served" / "many-groups" / "data" / "train-00000-of-00001.parquet",
                       {"image": [_png(Image.fromarray(_pixels(i, (48, 48, 3)))) for i in range(n)],
                        "label": [i % 2 for i in range(n)]}, row_group_size=10)
    ranges: list[str] = []
    send_header = routes.HubRequestHandler.send_header
    monkeypatch.setattr(routes.HubRequestHandler, "send_header", lambda self, k, v: (
        ranges.append(v) if k == "Content-Range" else None, send_header(self, k, v))[1])
    with HubServer(datasets_dir=tmp_path / "served") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        s = load_sample("local/many-groups", per_class=2, seed=0)
    fetched = sum(int(r.split()[1].split("/")[0].split("-")[1]) - int(r.split()[1].split("-")[0]) + 1
                  for r in ranges)
    assert len(s) == 4 and s.class_counts().tolist() == [2, 2]
    # the footer (pyarrow reads the last 64 KB), the labels, <= 4 of 20 groups' images
    assert 0 < fetched < 0.4 * path.stat().st_size, ranges


def test_a_hub_dataset_is_read_through_the_hub_client_given(monkeypatch):
    """load_sample(hub=) reads a Hub id through that client, never one it builds from the environment."""
    from fennec.errors import DatasetNotFoundError, ModelNotFoundError

    class GivenHub:
        endpoint, offline = "http://given.invalid", False

        def __init__(self):
            self.asked = []

        def dataset_files(self, repo_id, *, revision=None):
            self.asked.append((repo_id, revision))
            raise ModelNotFoundError(f"no dataset {repo_id}")

    def no_default_client(*args, **kwargs):
        raise AssertionError("load_sample built its own hub client although one was given")

    monkeypatch.setattr("fennec.hub.HfHub", no_default_client)
    given = GivenHub()
    with pytest.raises(DatasetNotFoundError, match="http://given.invalid has no dataset 'org/absent'"):
        load_sample("hub:org/absent", hub=given)
    assert given.asked == [("org/absent", None)]
