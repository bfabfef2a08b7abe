"""fennec.data against hostile datasets: Hub rows that name files on the user's disk, FIFOs
where files should be, empty or corrupt parquet and save_to_disk files.

Every test that puts a FIFO in a dataset runs the load through ``call_without_hanging``: a
regression that opens the FIFO fails the test instead of hanging the run.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from fennec.data import load_sample
from fennec.errors import DatasetColumnError, DatasetError, DatasetWarning
from fennec.hub.server import HubServer
from hostile_hub import call_without_hanging

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
FEATURES = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": ["a", "b"]}}


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
        buf, format="PNG")
    return buf.getvalue()


def _parquet(path: Path, images: list, labels: list, *, image_type=IMAGE, metadata=None) -> Path:
    import pyarrow.parquet as pq

    table = pa.table({"image": pa.array(images, type=image_type), "label": pa.array(labels, pa.int64())})
    meta = metadata if metadata is not None else json.dumps({"info": {"features": FEATURES}})
    table = table.replace_schema_metadata({"huggingface": meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    """A readable image on the user's disk, outside any dataset."""
    path = tmp_path / "home" / "secret.png"
    path.parent.mkdir()
    path.write_bytes(_png(99))
    return path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A local Hub serving ``tmp_path/served``; fennec talks to it (HF_ENDPOINT)."""
    import huggingface_hub.constants as hf_constants

    served = tmp_path / "served"
    served.mkdir()
    with HubServer(datasets_dir=served) as server:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        yield served


# ---------------------------------------------------------------------------------------
# A Hub dataset yields image bytes only
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True])
def test_hub_rows_naming_files_are_refused_never_opened(hub, secret, relative):
    path = os.path.relpath(secret, hub / "evil" / "data") if relative else str(secret)
    _parquet(hub / "evil" / "data" / "train-00000-of-00001.parquet",
             [{"bytes": None, "path": path}] * 4, [0, 0, 1, 1])
    with pytest.warns(DatasetWarning, match=r"refused 4 row\(s\) that name a file"):
        with pytest.raises(DatasetError, match="could be decoded"):
            load_sample("local/evil", min_per_class=1)


def test_hub_rows_mixing_bytes_and_paths_give_only_the_bytes(hub, secret):
    _parquet(hub / "mixed" / "data" / "train-00000-of-00001.parquet",
             [{"bytes": _png(i), "path": None} for i in range(4)]
             + [{"bytes": None, "path": str(secret)}] * 2, [0, 0, 1, 1, 0, 1])
    with pytest.warns(DatasetWarning, match=r"refused 2 row"):
        s = load_sample("local/mixed", max_samples=None, min_per_class=1)
    assert len(s) == 4 and s.n_skipped == 2


def test_a_hub_column_of_file_paths_is_not_an_image_column(hub, secret):
    _parquet(hub / "paths" / "data" / "train-00000-of-00001.parquet",
             [str(secret)] * 4, [0, 0, 1, 1], image_type=pa.string(),
             metadata=json.dumps({"info": {"features": {"label": FEATURES["label"]}}}))
    with pytest.raises(DatasetColumnError, match="No image column"):
        load_sample("local/paths", min_per_class=1)
    with pytest.warns(DatasetWarning, match="refused"), pytest.raises(DatasetError, match="decoded"):
        load_sample("local/paths", image_column="image", min_per_class=1)


def test_local_parquet_may_still_name_its_own_image_files(tmp_path, secret):
    _parquet(tmp_path / "ds" / "train.parquet", [{"bytes": None, "path": str(secret)},
                                                 {"bytes": None, "path": "../home/secret.png"}] * 2,
             [0, 0, 1, 1])
    assert len(load_sample(tmp_path / "ds", max_samples=None, min_per_class=1)) == 4


# ---------------------------------------------------------------------------------------
# Special files: refused, never opened
# ---------------------------------------------------------------------------------------


def _image_folder(root: Path) -> Path:
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.png").write_bytes(_png(i))
    return root


def test_a_fifo_in_an_image_folder_is_refused(tmp_path):
    root = _image_folder(tmp_path / "ds")
    os.mkfifo(root / "a" / "fifo.png")
    with pytest.raises(DatasetError, match=r"fifo\.png is a FIFO.*not a regular file"):
        call_without_hanging(lambda: load_sample(root), fifos=[root / "a" / "fifo.png"])


def test_a_parquet_row_naming_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "ds" / "pipe.png"
    _parquet(tmp_path / "ds" / "train.parquet",
             [{"bytes": _png(0), "path": None}, {"bytes": None, "path": "pipe.png"}] * 2, [0, 0, 1, 1])
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="pipe.png is a FIFO"):
        call_without_hanging(lambda: load_sample(tmp_path / "ds", max_samples=None, min_per_class=1),
                             fifos=[fifo])


def test_a_fifo_parquet_file_is_refused(tmp_path):
    _parquet(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet", [{"bytes": _png(0), "path": None}] * 2,
             [0, 1])
    fifo = tmp_path / "ds" / "data" / "test-00000-of-00001.parquet"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="test-00000-of-00001.parquet is a FIFO"):
        call_without_hanging(lambda: load_sample(tmp_path / "ds", split="test"), fifos=[fifo])
    os.mkfifo(tmp_path / "alone.parquet")
    with pytest.raises(DatasetError, match="alone.parquet is a FIFO"):
        call_without_hanging(lambda: load_sample(tmp_path / "alone.parquet"),
                             fifos=[tmp_path / "alone.parquet"])


def _saved(path: Path) -> Path:
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"image": [Image.open(io.BytesIO(_png(i))) for i in range(4)],
                                     "label": [0, 1, 0, 1]}, features=feats)
    ds.save_to_disk(str(path))
    return path


def test_a_fifo_in_a_save_to_disk_folder_is_refused(tmp_path):
    root = _saved(tmp_path / "saved")
    arrow = next(root.glob("*.arrow"))
    arrow.unlink()
    os.mkfifo(arrow)
    with pytest.raises(DatasetError, match=r"\.arrow is a FIFO"):
        call_without_hanging(lambda: load_sample(root), fifos=[arrow])


# ---------------------------------------------------------------------------------------
# Empty or corrupt files: a clear error naming the file
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated"])
def test_an_empty_or_corrupt_parquet_file_is_named(tmp_path, damage):
    path = _parquet(tmp_path / "ds" / "train.parquet", [{"bytes": _png(i), "path": None} for i in range(4)],
                    [0, 0, 1, 1])
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "garbage": b"PAR1" + b"\x00" * 64,
                      "truncated": data[: len(data) // 2]}[damage])
    with pytest.raises(DatasetError, match=r"The parquet file .*train\.parquet cannot be read.*corrupt"):
        load_sample(tmp_path / "ds", min_per_class=1)


def test_a_corrupt_column_chunk_is_named_when_read(tmp_path):
    path = _parquet(tmp_path / "ds" / "train.parquet", [{"bytes": _png(i), "path": None} for i in range(4)],
                    [0, 0, 1, 1])
    data = bytearray(path.read_bytes())
    data[4:200] = b"\xff" * 196  # the first column chunk (the images), footer intact
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"train\.parquet cannot be read"):
        load_sample(tmp_path / "ds", min_per_class=1)


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_an_empty_or_corrupt_save_to_disk_file_is_named(tmp_path, damage):
    root = _saved(tmp_path / "saved")
    arrow = next(root.glob("*.arrow"))
    arrow.write_bytes(b"" if damage == "empty" else b"\x00" * 100)
    match = r"empty data file .*\.arrow" if damage == "empty" else r"saved dataset .*saved cannot be read"
    with pytest.raises(DatasetError, match=match):
        load_sample(root)


def test_hostile_parquet_metadata_is_ignored_not_fatal(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    _parquet(tmp_path / "ds" / "train.parquet", [{"bytes": _png(i), "path": None} for i in range(4)],
             [0, 0, 1, 1], metadata=deep)
    s = load_sample(tmp_path / "ds", max_samples=None, min_per_class=1)
    assert len(s) == 4 and s.class_names == ("0", "1")  # no ClassLabel names: the int labels
