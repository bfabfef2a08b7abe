"""fennec._io: atomic writes keep the old file on failure and leave no temp files."""

import hashlib
import json

import numpy as np
import pytest

from fennec._io import save_json_atomic, save_npz_atomic, sha256_file, write_bytes_atomic


def test_npz_and_json_round_trip(tmp_path):
    path = save_npz_atomic(tmp_path / "sub" / "a.npz", {"x": np.arange(3)})
    assert np.array_equal(np.load(path)["x"], np.arange(3))
    path = save_json_atomic(tmp_path / "b.json", {"b": 1, "a": 2}, sort_keys=True)
    assert json.loads(path.read_text()) == {"a": 2, "b": 1}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.npz", "b.json"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "c.bin"
    path.write_bytes(b"old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_bytes_atomic(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.bin"]


def test_sha256_file(tmp_path):
    data = bytes(range(256)) * 9000  # spans several read chunks
    (tmp_path / "d").write_bytes(data)
    assert sha256_file(tmp_path / "d") == hashlib.sha256(data).hexdigest()
