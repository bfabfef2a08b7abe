"""Build the offline image-classification datasets of fennec's zoo benchmark.

Every dataset is made here, deterministically (seeded), from what installs from the package
registries: the fonts that ship with matplotlib, the photographs that ship with scikit-image
and matplotlib, the handwritten digits that ship with scikit-learn, and procedural drawings.
Images are 32x32 RGB. Each dataset is written as a Hub-style dataset repository::

    zoo/datasets/<name>/README.md                         dataset card (classes, recipe, fingerprint)
    zoo/datasets/<name>/data/{train,validation,test}-00000-of-00001.parquet

with ``datasets`` features ``image: Image()`` and ``label: ClassLabel(names=...)``, so both
``datasets.load_dataset("zoo/datasets/<name>")`` and
``datasets.load_dataset("parquet", data_dir="zoo/datasets/<name>/data")`` load it.

Source datasets (``src-*``, used to pre-train the zoo) are large and git-ignored: they are
regenerated from their recipe. Target datasets (``t-*``, the fine-tuning targets) are small and
committed. The fingerprint of every dataset (sha256 over decoded pixels and labels, plus the
library versions that drew them) is stored in ``zoo/fingerprints.json``; a rebuild compares
against it and reports drift (a new Pillow or font changes the pixels).

Run::

    python scripts/build_datasets.py                 # all datasets, check fingerprints
    python scripts/build_datasets.py --only t-digits # one dataset
    python scripts/build_datasets.py --update-fingerprints   # accept the current pixels

Needs scikit-image (``pip install scikit-image``) for the photographs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LOG = logging.getLogger("build_datasets")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = REPO_ROOT / "zoo" / "datasets"
FINGERPRINTS = REPO_ROOT / "zoo" / "fingerprints.json"
SIZE = 32  # output resolution (pixels)
SPLITS = ("train", "validation", "test")
BASE_SEED = 20260521  # every dataset's RNG derives from this and its name


# ----------------------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one dataset is drawn."""

    name: str
    kind: str  # "source" (pre-training) or "target" (fine-tuning)
    classes: tuple[str, ...]
    sizes: dict  # split -> number of images (train may instead be per-class via per_class_train)
    draw: Callable[[np.random.Generator, int, str], np.ndarray]  # (rng, label, split) -> (32, 32, 3) uint8
    description: str
    transfer: str = ""  # for targets: which sources it is near to, and why
    per_class_train: int | None = None  # few-shot targets: this many train images per class
    pool: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None  # real-image pool (images, labels)

    def split_sizes(self) -> dict[str, int]:
        sizes = dict(self.sizes)
        if self.per_class_train is not None:
            sizes["train"] = self.per_class_train * len(self.classes)
        return sizes


def _mpl_font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"


_FONT_CACHE: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    key = (file, size)
    if key not in _FONT_CACHE:
        _FONT_CACHE[key] = ImageFont.truetype(str(_mpl_font_dir() / file), size)
    return _FONT_CACHE[key]


def _rand_colour_pair(rng: np.random.Generator, min_contrast: float = 90.0) -> tuple[tuple, tuple]:
    """A foreground and a background colour whose luminance differs by at least min_contrast."""
    while True:
        fg = rng.integers(0, 256, size=3)
        bg = rng.integers(0, 256, size=3)
        lum = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731
        if abs(lum(fg) - lum(bg)) >= min_contrast:
            return tuple(int(v) for v in fg), tuple(int(v) for v in bg)


def _to_rgb32(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BOX), dtype=np.uint8)


def _add_noise(arr: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    out = arr.astype(np.float32) + rng.normal(0.0, sigma, size=arr.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _glyph(rng: np.random.Generator, char: str, fonts: tuple[str, ...], *, rot: float = 15.0,
           colour: bool = True) -> np.ndarray:
    """Render one character in a random font from `fonts` under a random affine and colours."""
    big = 96
    font = _font(fonts[int(rng.integers(len(fonts)))], int(rng.integers(44, 62)))
    if colour:
        fg, bg = _rand_colour_pair(rng)
    else:
        fg, bg = (255, 255, 255), (0, 0, 0)
    canvas = Image.new("RGB", (big, big), bg)
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    x = (big - (right - left)) / 2 - left + rng.uniform(-6, 6)
    y = (big - (bottom - top)) / 2 - top + rng.uniform(-6, 6)
    draw.text((x, y), char, fill=255, font=font)
    mask = mask.rotate(rng.uniform(-rot, rot), resample=Image.Resampling.BILINEAR,
                       center=(big / 2, big / 2))
    shear = rng.uniform(-0.2, 0.2)
    scale = rng.uniform(0.85, 1.15)
    # inverse affine map around the centre: output (u, v) samples input (a u + b v + c, d u + e v + f)
    a, b, d, e = 1 / scale, shear / scale, 0.0, 1 / scale
    c = big / 2 - a * big / 2 - b * big / 2
    f = big / 2 - d * big / 2 - e * big / 2
    mask = mask.transform((big, big), Image.Transform.AFFINE, (a, b, c, d, e, f),
                          resample=Image.Resampling.BILINEAR)
    canvas.paste(Image.new("RGB", (big, big), fg), (0, 0), mask)
    return _add_noise(_to_rgb32(canvas), rng, 6.0)


def _regular_polygon(cx, cy, r, n, rot):
    return [(cx + r * math.cos(rot + 2 * math.pi * k / n), cy + r * math.sin(rot + 2 * math.pi * k / n))
            for k in range(n)]


def _shape_mask(rng: np.random.Generator, shape: str, big: int = 128, *, scale: tuple = (0.45, 0.8),
                centre_jitter: float = 0.12) -> Image.Image:
    """A binary (L) mask of a randomly placed, rotated and scaled shape."""
    m = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(m)
    r = rng.uniform(*scale) * big / 2
    cx = big / 2 + rng.uniform(-centre_jitter, centre_jitter) * big
    cy = big / 2 + rng.uniform(-centre_jitter, centre_jitter) * big
    rot = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ellipse":
        e = Image.new("L", (big, big), 0)
        ImageDraw.Draw(e).ellipse([cx - r, cy - 0.5 * r, cx + r, cy + 0.5 * r], fill=255)
        m = e.rotate(math.degrees(rot), center=(cx, cy))
    elif shape in ("triangle", "square", "pentagon", "hexagon"):
        n = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}[shape]
        d.polygon(_regular_polygon(cx, cy, r, n, rot), fill=255)
    elif shape == "rhombus":
        pts = [(cx + r * math.cos(rot), cy + r * math.sin(rot)),
               (cx + 0.5 * r * math.cos(rot + math.pi / 2), cy + 0.5 * r * math.sin(rot + math.pi / 2)),
               (cx - r * math.cos(rot), cy - r * math.sin(rot)),
               (cx - 0.5 * r * math.cos(rot + math.pi / 2), cy - 0.5 * r * math.sin(rot + math.pi / 2))]
        d.polygon(pts, fill=255)
    elif shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else 0.42 * r
            pts.append((cx + rr * math.cos(rot + math.pi * k / 5), cy + rr * math.sin(rot + math.pi * k / 5)))
        d.polygon(pts, fill=255)
    elif shape == "cross":
        w = 0.33 * r
        arm = [(-r, -w), (r, -w), (r, w), (-r, w)]
        for theta in (rot, rot + math.pi / 2):
            cs, sn = math.cos(theta), math.sin(theta)
            d.polygon([(cx + x * cs - y * sn, cy + x * sn + y * cs) for x, y in arm], fill=255)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        d.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=0)
    elif shape == "semicircle":
        start = math.degrees(rot)
        d.pieslice([cx - r, cy - r, cx + r, cy + r], start, start + 180, fill=255)
    elif shape == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ox, oy = 0.45 * r * math.cos(rot), 0.45 * r * math.sin(rot)
        d.ellipse([cx + ox - 0.85 * r, cy + oy - 0.85 * r, cx + ox + 0.85 * r, cy + oy + 0.85 * r], fill=0)
    else:  # pragma: no cover - recipe bug
        raise ValueError(f"unknown shape {shape!r}")
    return m


def _texture(rng: np.random.Generator, kind: str, n: int = SIZE, *, jitter: bool = True) -> np.ndarray:
    """A procedural texture in [0, 1], shape (n, n)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    phase = rng.uniform(0, 2 * math.pi)
    dj = math.radians(rng.uniform(-8, 8)) if jitter else 0.0
    if kind.startswith("stripes"):
        _, ang, freq = kind.split("-")  # e.g. stripes-45-high
        theta = math.radians(float(ang)) + dj
        period = rng.uniform(3.0, 4.5) if freq == "high" else rng.uniform(8.0, 12.0)
        t = xx * math.cos(theta) + yy * math.sin(theta)
        return (np.sin(2 * math.pi * t / period + phase) > 0).astype(np.float64)
    if kind.startswith("checks"):
        cell = rng.uniform(2.5, 4.0) if kind.endswith("small") else rng.uniform(6.5, 10.0)
        ox, oy = rng.uniform(0, cell, size=2)
        return ((np.floor((xx + ox) / cell) + np.floor((yy + oy) / cell)) % 2).astype(np.float64)
    if kind == "dot-grid":
        period = rng.uniform(5.0, 8.0)
        ox, oy = rng.uniform(0, period, size=2)
        dx = ((xx + ox) % period) - period / 2
        dy = ((yy + oy) % period) - period / 2
        return (dx ** 2 + dy ** 2 < (0.3 * period) ** 2).astype(np.float64)
    if kind == "scattered-dots":
        img = np.zeros((n, n))
        for _ in range(int(rng.integers(8, 18))):
            cx, cy, r = rng.uniform(0, n), rng.uniform(0, n), rng.uniform(1.2, 2.8)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2] = 1.0
        return img
    if kind == "white-noise":
        return rng.uniform(0, 1, size=(n, n))
    if kind == "smooth-noise":
        small = rng.uniform(0, 1, size=(6, 6))
        img = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((n, n), Image.Resampling.BICUBIC))
        return img.astype(np.float64) / 255.0
    if kind == "rings":
        cx, cy = rng.uniform(0, n, size=2)
        period = rng.uniform(4.0, 7.0)
        return (np.sin(2 * math.pi * np.hypot(xx - cx, yy - cy) / period + phase) > 0).astype(np.float64)
    if kind == "zigzag":
        period = rng.uniform(6.0, 9.0)
        amp = rng.uniform(2.0, 4.0)
        tri = amp * (2 * np.abs(((xx / period) % 1.0) - 0.5))
        return (np.sin(2 * math.pi * (yy + tri) / rng.uniform(5.0, 7.0) + phase) > 0).astype(np.float64)
    raise ValueError(f"unknown texture {kind!r}")  # pragma: no cover - recipe bug


def _two_tone(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    fg, bg = _rand_colour_pair(rng, min_contrast=60.0)
    fg_a, bg_a = np.array(fg, dtype=np.float64), np.array(bg, dtype=np.float64)
    return (bg_a * (1 - t[..., None]) + fg_a * t[..., None])


# --- source: glyphs ----------------------------------------------------------------------------

SRC_GLYPH_FONTS = tuple(
    f"DejaVu{fam}{sty}.ttf"
    for fam in ("Sans", "Serif", "SansMono")
    for sty in ("", "-Bold", "-Oblique" if fam != "Serif" else "-Italic",
                "-BoldOblique" if fam != "Serif" else "-BoldItalic"))
LATIN = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def draw_src_glyphs(rng, label, split):
    return _glyph(rng, LATIN[label], SRC_GLYPH_FONTS)


# --- source: shapes ----------------------------------------------------------------------------

SHAPES = ("circle", "ellipse", "triangle", "square", "pentagon", "hexagon", "star", "cross", "ring",
          "rhombus", "semicircle", "crescent")


def draw_src_shapes(rng, label, split):
    fg, bg = _rand_colour_pair(rng, min_contrast=50.0)
    big = 128
    canvas = Image.new("RGB", (big, big), bg)
    canvas.paste(Image.new("RGB", (big, big), fg), (0, 0), _shape_mask(rng, SHAPES[label], big))
    return _add_noise(_to_rgb32(canvas), rng, float(rng.uniform(3, 14)))


# --- source: procedural textures ----------------------------------------------------------------

SRC_TEXTURES = tuple(f"stripes-{a}-{f}" for a in (0, 45, 90, 135) for f in ("low", "high")) + (
    "checks-small", "checks-large", "dot-grid", "scattered-dots", "white-noise", "smooth-noise",
    "rings", "zigzag")


def draw_src_textures(rng, label, split):
    rgb = _two_tone(rng, _texture(rng, SRC_TEXTURES[label]))
    return _add_noise(rgb.astype(np.uint8), rng, float(rng.uniform(2, 10)))


# --- photographs (scikit-image + matplotlib sample data) --------------------------------------

def _photo(name: str) -> np.ndarray:
    """One shipped photograph as an (H, W, 3) uint8 array."""
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            arr = np.asarray(Image.open(fh).convert("RGB"))
    else:
        import skimage.data

        arr = np.asarray(skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)())
        if arr.dtype != np.uint8:
            arr = (255 * (arr.astype(np.float64) - arr.min()) / max(np.ptp(arr), 1e-9)).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


_PHOTO_CACHE: dict[str, Image.Image] = {}


def _photo_crop(rng: np.random.Generator, name: str, *, frac: tuple = (0.12, 0.4), jitter: bool = True) -> np.ndarray:
    if name not in _PHOTO_CACHE:
        _PHOTO_CACHE[name] = Image.fromarray(_photo(name))
    img = _PHOTO_CACHE[name]
    w, h = img.size
    side = int(rng.uniform(*frac) * min(w, h))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    crop = img.crop((x0, y0, x0 + side, y0 + side)).resize((SIZE, SIZE), Image.Resampling.BOX)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = np.asarray(crop, dtype=np.float32)
    if jitter:  # brightness / contrast jitter
        arr = (arr - arr.mean()) * rng.uniform(0.75, 1.25) + arr.mean() + rng.uniform(-20, 20)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


SRC_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "grace_hopper", "camera",
              "coins")


def draw_src_photos(rng, label, split):
    return _photo_crop(rng, SRC_PHOTOS[label])


# --- targets -----------------------------------------------------------------------------------

def _digits_pool() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real handwritten 8x8 digits, upscaled to 32x32 RGB (white on black)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = []
    for im in d.images:
        g = Image.fromarray(np.rint(im * (255.0 / 16.0)).astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        imgs.append(np.repeat(np.asarray(g)[..., None], 3, axis=2))
    return np.stack(imgs), d.target.astype(np.int64)


UNSEEN_LATIN_FONTS = ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
                      "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")
UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def draw_t_fonts_unseen(rng, label, split):
    return _glyph(rng, UPPER[label], UNSEEN_LATIN_FONTS)


GREEK = tuple("αβγδεζηθικλμνξοπρστυφχψω")
GREEK_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf",
               "STIXGeneralItalic.ttf", "STIXGeneralBol.ttf")


def draw_t_greek(rng, label, split):
    return _glyph(rng, GREEK[label], GREEK_FONTS)


MATH_SYMBOLS = tuple("∑∏∫∂∇∞≈≠≤≥⊂⊃∈∀∃∧∨⊕⊗√")


MATH_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf", "STIXGeneral.ttf",
              "STIXGeneralBol.ttf")  # STIX italic lacks these symbols


def draw_t_math_symbols(rng, label, split):
    return _glyph(rng, MATH_SYMBOLS[label], MATH_FONTS)


REAL_TEXTURES = ("brick", "grass", "gravel", "moon", "immunohistochemistry", "hubble_deep_field", "retina", "cell")


def draw_t_real_textures(rng, label, split):
    return _photo_crop(rng, REAL_TEXTURES[label], frac=(0.1, 0.3))


ST_SHAPES = ("circle", "triangle", "square", "star")
ST_FILLS = ("stripes", "checks", "dots")
SHAPE_TEXTURE = tuple(f"{s}/{f}" for s in ST_SHAPES for f in ST_FILLS)


def draw_t_shape_texture(rng, label, split):
    shape, fill = SHAPE_TEXTURE[label].split("/")
    big = 128
    mask = _shape_mask(rng, shape, big, scale=(0.6, 0.9), centre_jitter=0.06).resize((SIZE, SIZE), Image.Resampling.BOX)
    m = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    kind = {"stripes": f"stripes-{int(rng.choice([0, 45, 90, 135]))}-high", "checks": "checks-small",
            "dots": "dot-grid"}[fill]
    inside = _two_tone(rng, _texture(rng, kind))
    bg = rng.integers(0, 256, size=3).astype(np.float64)
    out = inside * m + bg * (1 - m)
    return _add_noise(out.astype(np.uint8), rng, 5.0)


COUNTS = ("1", "2", "3", "4", "5", "6")


def draw_t_counting(rng, label, split):
    n = label + 1
    big = 128
    fg, bg = _rand_colour_pair(rng, min_contrast=70.0)
    canvas = Image.new("RGB", (big, big), bg)
    d = ImageDraw.Draw(canvas)
    placed: list[tuple[float, float, float]] = []
    while len(placed) < n:
        r = rng.uniform(7, 13)
        cx, cy = rng.uniform(r + 2, big - r - 2, size=2)
        if all(math.hypot(cx - x, cy - y) > r + rr + 4 for x, y, rr in placed):
            placed.append((cx, cy, r))
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    return _add_noise(_to_rgb32(canvas), rng, 6.0)


HUES = tuple(f"hue-{k * 30:03d}" for k in range(12))


def draw_t_colour(rng, label, split):
    import colorsys

    hue = (label * 30 + rng.uniform(-9, 9)) % 360
    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0))
    big = 128
    grey = int(rng.integers(60, 200))
    canvas = Image.new("RGB", (big, big), (grey, grey, grey))
    shape = str(rng.choice(["circle", "square", "hexagon"]))
    canvas.paste(Image.new("RGB", (big, big), (int(255 * r), int(255 * g), int(255 * b))), (0, 0),
                 _shape_mask(rng, shape, big, scale=(0.35, 0.7)))
    return _add_noise(_to_rgb32(canvas), rng, 8.0)


ORIENTATIONS = tuple(f"{a:.1f}deg" for a in np.arange(8) * 22.5)


def draw_t_orientation(rng, label, split):
    n = SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    cx, cy = n / 2 + rng.uniform(-4, 4, size=2)
    theta = math.radians(label * 22.5 + rng.uniform(-4, 4))
    period = rng.uniform(4.0, 9.0)
    t = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
    sigma = rng.uniform(5.0, 9.0)
    env = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
    g = 0.5 + 0.5 * rng.uniform(0.5, 1.0) * env * np.cos(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    return _add_noise(_two_tone(rng, g).astype(np.uint8), rng, 10.0)


def _pool_draw(rng, label, split):  # placeholder: pooled recipes never call draw
    raise RuntimeError("pooled recipe")


def _recipes() -> dict[str, Recipe]:
    src_sizes = {"train": 8000, "validation": 1000, "test": 1000}
    r = [
        Recipe("src-glyphs", "source", LATIN, src_sizes, draw_src_glyphs,
               "The 52 Latin letters (A-Z, a-z) in 12 DejaVu fonts (Sans, Serif, Sans Mono; regular, bold, "
               "oblique/italic) shipped with matplotlib, under random rotation (±15°), shear, scale and "
               "translation, random foreground/background colours and pixel noise."),
        Recipe("src-shapes", "source", SHAPES, src_sizes, draw_src_shapes,
               "12 filled geometric shapes, randomly rotated, scaled and placed, random colours, pixel noise."),
        Recipe("src-textures", "source", SRC_TEXTURES, src_sizes, draw_src_textures,
               "16 procedural two-tone textures: stripes at 4 orientations x 2 frequencies, checks at 2 "
               "scales, dot grid, scattered dots, white noise, smooth noise, rings, zigzag; random colours, "
               "phase, ±8° orientation jitter, pixel noise."),
        Recipe("src-photos", "source", SRC_PHOTOS, src_sizes, draw_src_photos,
               "Random square crops (12-40% of the short side) of 8 real photographs shipped with "
               "scikit-image (astronaut, coffee, chelsea, rocket, motorcycle_left, camera, coins) and "
               "matplotlib (grace_hopper); label = which photograph; flips, brightness/contrast jitter."),
        Recipe("t-digits", "target", tuple(str(i) for i in range(10)),
               {"train": 1000, "validation": 297, "test": 500}, _pool_draw,
               "scikit-learn's 1,797 real handwritten 8x8 digits (UCI optdigits), bilinearly upscaled to 32x32, "
               "grey on black; a seeded permutation split into train/validation/test.",
               transfer="near src-glyphs (strokes), but handwritten and blurry", pool=_digits_pool),
        Recipe("t-digits-fewshot", "target", tuple(str(i) for i in range(10)),
               {"validation": 100, "test": 500}, _pool_draw,
               "The same real digits as t-digits with only 10 training images per class.",
               transfer="near src-glyphs; few-shot", per_class_train=10, pool=_digits_pool),
        Recipe("t-fonts-unseen", "target", UPPER, {"validation": 130, "test": 520}, draw_t_fonts_unseen,
               "The 26 Latin capitals in 9 fonts that no source uses (STIX General regular/bold/italic/"
               "bold-italic, Computer Modern cmr10, cmss10, cmtt10, cmb10, cmti10), same affine and colour "
               "augmentation as src-glyphs; 15 training images per class.",
               transfer="nearest: same classes as part of src-glyphs, unseen fonts", per_class_train=15),
        Recipe("t-greek", "target", GREEK, {"validation": 120, "test": 480}, draw_t_greek,
               "The 24 lower-case Greek letters (an alphabet no source contains) in DejaVu and STIX fonts, "
               "same augmentation as src-glyphs; 12 training images per class.",
               transfer="near src-glyphs: glyph statistics, unseen classes; few-shot", per_class_train=12),
        Recipe("t-math-symbols", "target", MATH_SYMBOLS, {"validation": 100, "test": 400}, draw_t_math_symbols,
               "20 mathematical symbols (∑ ∏ ∫ ∂ ∇ ∞ ≈ ≠ ≤ ≥ ⊂ ⊃ ∈ ∀ ∃ ∧ ∨ ⊕ ⊗ √) in DejaVu and upright STIX fonts, "
               "same augmentation as src-glyphs; 10 training images per class.",
               transfer="near-mid: glyph-like strokes, partly shape-like; few-shot", per_class_train=10),
        Recipe("t-real-textures", "target", REAL_TEXTURES, {"validation": 160, "test": 400}, draw_t_real_textures,
               "Random crops (10-30% of the short side) of 8 real photographs shipped with scikit-image that no "
               "source uses: brick, grass, gravel, moon, immunohistochemistry, hubble_deep_field, retina, cell; "
               "flips, brightness/contrast jitter; 40 training images per class.",
               transfer="near src-photos / src-textures (real image statistics)", per_class_train=40),
        Recipe("t-shape-texture", "target", SHAPE_TEXTURE, {"validation": 120, "test": 480}, draw_t_shape_texture,
               "4 shapes (circle, triangle, square, star) x 3 fills (stripes, checks, dots) = 12 classes: a "
               "shape filled with a two-tone texture on a random plain background; 30 training images per class.",
               transfer="mid: needs both src-shapes and src-textures features", per_class_train=30),
        Recipe("t-counting", "target", COUNTS, {"validation": 120, "test": 480}, draw_t_counting,
               "Count 1-6 non-overlapping discs of random size and position; 60 training images per class.",
               transfer="far: no source counts", per_class_train=60),
        Recipe("t-colour", "target", HUES, {"validation": 120, "test": 480}, draw_t_colour,
               "Fine-grained colour: 12 hue bins 30° apart (±9° jitter, random saturation and value) of a "
               "shape on a grey background; 40 training images per class.",
               transfer="far: every source randomises colour, so pre-training teaches colour invariance",
               per_class_train=40),
        Recipe("t-orientation", "target", ORIENTATIONS, {"validation": 120, "test": 480}, draw_t_orientation,
               "Orientation of a Gabor patch, 8 classes 22.5° apart (±4° jitter), random frequency, phase, "
               "contrast, colours and noise; 40 training images per class.",
               transfer="near src-textures (oriented stripes), at finer angles", per_class_train=40),
    ]
    return {x.name: x for x in r}


RECIPES: dict[str, Recipe] = _recipes()


# ----------------------------------------------------------------------------------------------
# Generation, fingerprint, storage
# ----------------------------------------------------------------------------------------------

def _seed(name: str, split: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([BASE_SEED, zlib.crc32(name.encode()), zlib.crc32(split.encode())])


def _balanced_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    return y.astype(np.int64)


def generate(recipe: Recipe, *, scale: float = 1.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Draw every split of `recipe`: split -> (images (N, 32, 32, 3) uint8, labels (N,) int64).

    `scale` shrinks every split (tests use a toy size); 1.0 is the published recipe.
    """
    sizes = {k: max(len(recipe.classes) if k == "train" else 1, int(round(v * scale)))
             for k, v in recipe.split_sizes().items()}
    out = {}
    if recipe.pool is not None:
        images, labels = recipe.pool()
        rng = np.random.default_rng(_seed(recipe.name, "permutation"))
        order = rng.permutation(len(labels))
        if recipe.per_class_train is None:
            cuts = np.cumsum([sizes["train"], sizes["validation"], sizes["test"]])
            parts = {"train": order[:cuts[0]], "validation": order[cuts[0]:cuts[1]], "test": order[cuts[1]:cuts[2]]}
        else:  # few-shot: k per class for train, the rest for validation/test
            k = max(1, int(round(recipe.per_class_train * scale))) if scale != 1.0 else recipe.per_class_train
            train_idx = np.concatenate([order[labels[order] == c][:k] for c in range(len(recipe.classes))])
            rest = np.setdiff1d(order, train_idx, assume_unique=True)
            rest = order[np.isin(order, rest)]  # keep the permutation order
            parts = {"train": rng.permutation(train_idx), "validation": rest[:sizes["validation"]],
                     "test": rest[sizes["validation"]:sizes["validation"] + sizes["test"]]}
        for split in SPLITS:
            out[split] = (images[parts[split]], labels[parts[split]])
        return out
    for split in SPLITS:
        rng = np.random.default_rng(_seed(recipe.name, split))
        y = _balanced_labels(rng, sizes[split], len(recipe.classes))
        x = np.stack([recipe.draw(rng, int(c), split) for c in y])
        out[split] = (x, y)
    return out


def fingerprint(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """sha256 over every split's decoded pixels and labels, in split order."""
    h = hashlib.sha256()
    for split in SPLITS:
        x, y = splits[split]
        h.update(split.encode())
        h.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import PIL
    import matplotlib
    import sklearn

    v = {"numpy": np.__version__, "Pillow": PIL.__version__, "matplotlib": matplotlib.__version__,
         "scikit-learn": sklearn.__version__}
    try:
        import skimage

        v["scikit-image"] = skimage.__version__
    except ImportError:  # only the photo recipes need it
        v["scikit-image"] = "not installed"
    return v


def _card(recipe: Recipe, splits, fp: str) -> str:
    sizes = {s: len(splits[s][1]) for s in SPLITS}
    cls = "\n".join(f"| {i} | {c} |" for i, c in enumerate(recipe.classes))
    tags = ["fennec-zoo", f"fennec-{recipe.kind}", "synthetic" if recipe.pool is None else "real"]
    return f"""---
pretty_name: {recipe.name}
task_categories:
- image-classification
tags:
{chr(10).join('- ' + t for t in tags)}
size_categories:
- {'1K<n<10K' if sum(sizes.values()) < 10000 else '10K<n<100K'}
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: validation
    path: data/validation-*
  - split: test
    path: data/test-*
---

# {recipe.name}

A {recipe.kind} dataset of fennec's offline zoo benchmark, generated by
`scripts/build_datasets.py` (recipe `{recipe.name}`, base seed {BASE_SEED}). 32x32 RGB images.

{recipe.description}

{('**Transfer:** ' + recipe.transfer) if recipe.transfer else ''}

| split | images |
|---|---|
| train | {sizes['train']} |
| validation | {sizes['validation']} |
| test | {sizes['test']} |

Classes ({len(recipe.classes)}):

| label | name |
|---|---|
{cls}

**Fingerprint** (sha256 over decoded pixels and labels of train, validation, test):
`{fp}`, drawn with {', '.join(f'{k} {v}' for k, v in library_versions().items())}.
"""


def save(recipe: Recipe, splits, out_dir: Path, fp: str) -> None:
    """Write `splits` as a Hub-style dataset repo (parquet + README card) under `out_dir`."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature

    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(recipe.classes))})
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        x, y = splits[split]
        pngs = []
        for img in x:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG", optimize=False)
            pngs.append({"bytes": buf.getvalue(), "path": None})
        ds = Dataset.from_dict({"image": pngs, "label": y.tolist()}, features=features)
        tmp = data_dir / f".{split}.parquet.tmp"
        ds.to_parquet(str(tmp))
        os.replace(tmp, data_dir / f"{split}-00000-of-00001.parquet")
    (out_dir / "README.md").write_text(_card(recipe, splits, fp), encoding="utf-8")


def load_split_arrays(path: Path | str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of a saved dataset repo back as (images uint8 (N,32,32,3), labels int64)."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path) / "data" / f"{split}-00000-of-00001.parquet")
    imgs = [np.asarray(Image.open(io.BytesIO(d["bytes"])).convert("RGB")) for d in table.column("image").to_pylist()]
    return np.stack(imgs), np.asarray(table.column("label").to_pylist(), dtype=np.int64)


def build(names: list[str], *, out_root: Path = DATASETS_DIR, fingerprints_path: Path = FINGERPRINTS,
          update_fingerprints: bool = False, scale: float = 1.0) -> dict[str, dict]:
    """Generate, save and fingerprint the named datasets; return {name: status record}."""
    stored = json.loads(fingerprints_path.read_text()) if fingerprints_path.exists() else {"datasets": {}}
    report = {}
    for name in names:
        recipe = RECIPES[name]
        t0 = time.time()
        splits = generate(recipe, scale=scale)
        fp = fingerprint(splits)
        old = stored["datasets"].get(name, {}).get("sha256")
        status = "new" if old is None else ("ok" if old == fp else "DRIFT")
        # A drifted rebuild never replaces the stored dataset (the ground truth was fine-tuned on
        # its pixels): it goes beside it, under .drift/, unless the new fingerprint is accepted.
        keep = status == "DRIFT" and not update_fingerprints and (out_root / name).exists()
        save(recipe, splits, (out_root / ".drift" / name) if keep else (out_root / name), fp)
        rec = {"sha256": fp, "kind": recipe.kind, "classes": len(recipe.classes),
               "sizes": {s: int(len(splits[s][1])) for s in SPLITS}}
        report[name] = {**rec, "status": status, "seconds": round(time.time() - t0, 1)}
        LOG.info("%-18s %-6s %s  %s  (%.1fs)", name, recipe.kind, rec["sizes"], status, time.time() - t0)
        if status == "DRIFT":
            LOG.warning("%s: pixels differ from the stored fingerprint %s (now %s); stored versions %s, now %s. "
                        "The stored dataset is kept%s; rerun with --update-fingerprints to accept the new pixels "
                        "(and rerun the ground truth on them).", name, old[:12], fp[:12],
                        stored.get("versions"), library_versions(),
                        f" and the new one written to {out_root / '.drift' / name}" if keep else "")
        if status == "new" or update_fingerprints:
            stored["datasets"][name] = rec
    if scale == 1.0 and (update_fingerprints or any(r["status"] == "new" for r in report.values())):
        stored["versions"] = library_versions()
        stored["base_seed"] = BASE_SEED
        fingerprints_path.parent.mkdir(parents=True, exist_ok=True)
        fingerprints_path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", default=None, help="dataset names (default: all)")
    p.add_argument("--kind", choices=["source", "target"], default=None)
    p.add_argument("--out", type=Path, default=DATASETS_DIR)
    p.add_argument("--update-fingerprints", action="store_true", help="store the current fingerprints")
    p.add_argument("--strict", action="store_true", help="exit 1 when a fingerprint drifted")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    names = args.only or [n for n, r in RECIPES.items() if args.kind is None or r.kind == args.kind]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        p.error(f"unknown dataset(s) {unknown}; valid names: {sorted(RECIPES)}")
    report = build(names, out_root=args.out, update_fingerprints=args.update_fingerprints)
    drift = [n for n, r in report.items() if r["status"] == "DRIFT"]
    if drift:
        LOG.warning("fingerprint drift in %s", drift)
    return 1 if (drift and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
