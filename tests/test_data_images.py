"""Image bounds: samples are stored downscaled, hostile preprocessor sizes and decompression
bombs are refused with errors naming what was found (docs/security.md)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fennec.data import DEFAULT_IMAGE_SIDE, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, load_sample
from fennec.data import sampling as data
from fennec.errors import DatasetError, InvalidInputError, MalformedModelError
from fennec.features import preprocess
from fennec.hub.records import MAX_INPUT_SIDE, ModelFiles, Preprocessing


def _smooth(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like RGB image (gradients plus mild noise), so that JPEG and resizing keep it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0.5, 2.0, size=2)
    arr = np.stack([x / width * 255 * a, y / height * 255 * b, (x + y) / (width + height) * 255], axis=-1)
    arr = np.clip(arr + rng.normal(0, 3, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _folder(root: Path, sizes: list[tuple[int, int]], ext: str) -> Path:
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, (w, h) in enumerate(sizes):
            _smooth(w, h, seed=i + (cls == "b") * 100).save(root / cls / f"{i}{ext}", quality=92)
    return root


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_large_images_are_stored_downscaled_within_the_bound(tmp_path, ext):
    sizes = [(1600, 1200), (300, 2000), (2400, 500), (40, 30)]
    s = load_sample(_folder(tmp_path, sizes, ext), per_class=4, image_side=128, seed=0)
    assert len(s) == 8 and s.image_side == 128
    by_aspect = {}
    for img in s.images:
        w, h = img.size
        assert img.mode == "RGB"
        assert min(w, h) <= 128 and max(w, h) <= 256
        by_aspect.setdefault(round(w / h, 1), []).append((w, h))
    # aspect ratios kept (to the rounding of one pixel), the small image untouched
    assert set(by_aspect) == {round(w / h, 1) for w, h in sizes}
    assert (40, 30) in by_aspect[1.3]
    assert (171, 128) in by_aspect[1.3]          # 1600x1200: shorter side to 128
    assert (256, 53) in by_aspect[4.8]           # 2400x500: longer side to 2 x 128


def test_jpeg_draft_decoding_keeps_the_content(tmp_path):
    """The reduced-scale JPEG decode gives (nearly) the pixels of a full decode + resize."""
    root = _folder(tmp_path, [(2000, 1500), (1800, 1200)], ".jpg")
    s = load_sample(root, per_class=2, image_side=150, seed=0)
    for img, path in zip(s.images, sorted(root.glob("*/*.jpg")), strict=True):
        with Image.open(path) as full:
            expected = full.convert("RGB").resize(img.size, Image.Resampling.LANCZOS)
        diff = np.abs(np.asarray(img, dtype=np.int16) - np.asarray(expected, dtype=np.int16))
        assert diff.mean() < 2.0, path


def test_fingerprint_hashes_the_stored_pixels(tmp_path):
    big = _folder(tmp_path / "big", [(900, 600), (800, 800)], ".png")
    f64 = load_sample(big, per_class=2, image_side=64, seed=0).fingerprint
    assert load_sample(big, per_class=2, image_side=64, seed=0).fingerprint == f64      # stable
    assert load_sample(big, per_class=2, image_side=96, seed=0).fingerprint != f64      # other pixels
    small = _folder(tmp_path / "small", [(50, 40), (60, 60)], ".png")
    # images under both bounds are stored as they are: same pixels, same fingerprint, same cache key
    assert (load_sample(small, per_class=2, image_side=64, seed=0).fingerprint
            == load_sample(small, per_class=2, image_side=512, seed=0).fingerprint)


@pytest.mark.parametrize("image_side", [0, MAX_IMAGE_SIDE + 1, 60000, 1.5, True, "512"])
def test_image_side_out_of_bounds_is_refused(tmp_path, image_side):
    root = _folder(tmp_path, [(20, 20), (20, 20)], ".png")
    with pytest.raises(InvalidInputError, match=f"image_side must be an int from 1 to {MAX_IMAGE_SIDE}"):
        load_sample(root, per_class=2, image_side=image_side)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height RGB pixels (the pixel data is absent)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [12000, 60000])  # above fennec's bound only / above PIL's too
def test_decompression_bomb_in_a_folder_names_the_file(tmp_path, side):
    assert side * side > MAX_IMAGE_PIXELS
    root = _folder(tmp_path, [(20, 20), (20, 20)], ".png")
    bomb = root / "b" / "bomb.png"
    bomb.write_bytes(_png_header(side, side))
    with pytest.raises(DatasetError) as err:
        load_sample(root, per_class=3, seed=0)
    msg = str(err.value)
    assert str(bomb) in msg and f"{side * side:,} pixels" in msg and "MAX_IMAGE_PIXELS" in msg
    assert "decompression bomb" in msg and "Remove that image" in msg


def test_decompression_bomb_in_parquet_bytes_names_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ok = io.BytesIO()
    _smooth(16, 16, 0).save(ok, format="PNG")
    images = [{"bytes": ok.getvalue(), "path": None}] * 3 + [{"bytes": _png_header(15000, 9000), "path": None}]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"image": images, "label": [0, 0, 1, 1]}), path)
    with pytest.raises(DatasetError,
                       match=r"the image at row 3 of column 'image' declares 15000x9000 = 135,000,000 pixels"):
        load_sample(path, per_class=2, seed=0)


def test_bomb_bound_is_fennecs_own_not_pils_global(tmp_path, monkeypatch):
    """A legitimate image under the bound decodes; lowering the bound refuses it."""
    root = _folder(tmp_path, [(300, 200), (300, 200)], ".png")
    assert len(load_sample(root, per_class=2, seed=0)) == 4
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 300 * 200 - 1)
    with pytest.raises(DatasetError, match="declares 300x200 = 60,000 pixels"):
        load_sample(root, per_class=2, seed=0)
    assert Image.MAX_IMAGE_PIXELS == 89478485  # PIL's global is left alone


# ---------------------------------------------------------------------------------------
# Hostile preprocessor sizes
# ---------------------------------------------------------------------------------------


def _model_files(tmp_path: Path, preprocessor: dict, config: dict | None = None) -> ModelFiles:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config or {"model_type": "vit"}))
    pre = tmp_path / "preprocessor_config.json"
    pre.write_text(json.dumps(preprocessor))
    return ModelFiles(repo_id="evil/huge", sha="0" * 40, config=json.loads(cfg.read_text()),
                      config_path=cfg, preprocessor_path=pre)


@pytest.mark.parametrize("preprocessor, found", [
    ({"size": 60000}, "3x60000x60000"),
    ({"size": {"height": 224, "width": 5000}}, "3x224x5000"),
    ({"crop_size": 224, "size": 224, "crop_pct": 1e-6}, "resizes images to 224000000x224000000"),
    ({"size": 0}, "3x0x0"),
])
def test_hostile_preprocessor_sizes_are_refused(tmp_path, preprocessor, found):
    files = _model_files(tmp_path, preprocessor)
    with pytest.raises(MalformedModelError, match=f"evil/huge: .*{found}.*{MAX_INPUT_SIDE}") as err:
        files.preprocessing()
    assert err.value.repo_id == "evil/huge"


def test_hostile_timm_input_size_is_refused(tmp_path):
    files = _model_files(tmp_path, {}, {"architecture": "resnet18",
                                         "pretrained_cfg": {"input_size": [3, 60000, 60000]}})
    with pytest.raises(MalformedModelError, match="3x60000x60000"):
        files.preprocessing()


def test_unreadable_preprocessor_size_is_a_malformed_model(tmp_path):
    with pytest.raises(MalformedModelError, match="evil/huge: unreadable image size"):
        _model_files(tmp_path, {"size": {"height": "tall", "width": 3}}).preprocessing()


def test_preprocess_refuses_out_of_bound_sizes_before_resizing():
    img = Image.new("RGB", (8, 8))
    with pytest.raises(InvalidInputError, match="60000"):
        preprocess([img], Preprocessing(input_size=(3, 60000, 60000)))
    with pytest.raises(InvalidInputError, match="crop_pct"):
        preprocess([img], Preprocessing(input_size=(3, 32, 32), crop_pct=float("nan")))


def test_largest_accepted_sizes_still_work(tmp_path):
    files = _model_files(tmp_path, {"size": MAX_INPUT_SIDE, "crop_pct": 1.0})
    pre = files.preprocessing()
    assert pre.size_problem() is None and max(pre.resize_side()) == MAX_INPUT_SIDE
    assert Preprocessing(input_size=(3, 448, 448), crop_pct=0.875).resize_side() == (DEFAULT_IMAGE_SIDE,) * 2
