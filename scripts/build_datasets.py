"""Build the offline image-classification datasets of fennec's zoo benchmark.

Every dataset is made here, deterministically (seeded), from what installs from the package
registries: the fonts that ship with matplotlib, the photographs that ship with scikit-image
and matplotlib, the handwritten digits that ship with scikit-learn, procedural drawings, and,
for the item-split targets, real images that Debian packages install (icon themes, the Noto
colour emoji, card decks, chess pieces, script fonts, map symbols, GIMP patterns: read by
``scripts/zoo_sources.py``; install list ``scripts/zoo_sources.txt``). An item-split target
puts every image of one item (an icon, an emoji, a deck, a font family...) in one split, so
its test items are unseen in training (:func:`split_items`). Images are 32x32 RGB. Each dataset is written as a
Hub-style dataset repository::

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

Needs scikit-image (``pip install scikit-image``) for the photographs, and the Debian packages of
``scripts/zoo_sources.txt`` for the item-split targets (a missing one stops the build with the
command that installs it).
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
import unicodedata
import zlib
from collections.abc import Callable
from pathlib import Path

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
    items: Callable[[], list[Item]] | None = None  # item-split targets: the items (see split_items)
    sources: tuple[str, ...] = ()  # Debian packages the recipe reads (zoo_sources.SOURCES)
    item_unit: str = ""  # what one item (the unit of the split) is, for the card

    def split_sizes(self) -> dict[str, int]:
        sizes = dict(self.sizes)
        if self.per_class_train is not None:
            sizes["train"] = self.per_class_train * len(self.classes)
        return sizes


@dataclasses.dataclass(frozen=True)
class Item:
    """One item of an item-split target: every image of it goes to the same split.

    ``group`` names the unit of the split (an icon, an emoji, a card deck, a font family):
    items that share a group go to the same split, so no test group was seen in training.
    ``draw`` makes one augmented 32x32 RGB view of the item.
    """

    label: int
    group: str
    draw: Callable[[np.random.Generator], np.ndarray]


#: Share of an item-split target's groups in validation and test (the rest is train).
ITEM_FRACTIONS = {"validation": 0.2, "test": 0.3}


def split_items(items: list[Item], name: str, n_classes: int) -> dict[str, list[Item]]:
    """Assign the items' groups to train / validation / test (seeded by the dataset name).

    When every group holds one class (an icon, an emoji, a character), the groups are split
    per class, so each class has ITEM_FRACTIONS of its groups in validation and test; when a
    group spans classes (a card deck, a piece set, a font family), the groups are split as a
    whole. Raises ValueError when a split would miss a class (too few groups).
    """
    groups: dict[str, set[int]] = {}
    for it in items:
        groups.setdefault(it.group, set()).add(it.label)
    rng = np.random.default_rng(_seed(name, "items"))
    strata: dict[object, list[str]] = {}
    single = all(len(v) == 1 for v in groups.values())
    for g in sorted(groups):
        strata.setdefault(next(iter(groups[g])) if single else "all", []).append(g)
    where: dict[str, str] = {}
    for key in sorted(strata, key=str):
        names = [strata[key][i] for i in rng.permutation(len(strata[key]))]
        if len(names) < 3:
            raise ValueError(f"{name}: {len(names)} group(s) for {key!r}; an item split needs at least 3")
        n_val = max(1, int(round(ITEM_FRACTIONS["validation"] * len(names))))
        n_test = max(1, int(round(ITEM_FRACTIONS["test"] * len(names))))
        for i, g in enumerate(names):
            where[g] = "validation" if i < n_val else ("test" if i < n_val + n_test else "train")
    out = {s: [it for it in items if where[it.group] == s] for s in SPLITS}
    for s in SPLITS:
        missing = sorted(set(range(n_classes)) - {it.label for it in out[s]})
        if missing:
            raise ValueError(f"{name}: no {s} item of class(es) {missing}")
    return out


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

        arr = np.asarray(skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left"
                         else getattr(skimage.data, name)())
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
        g = Image.fromarray(np.rint(im * (255.0 / 16.0)).astype(np.uint8)).resize((SIZE, SIZE),
                                                                                   Image.Resampling.BILINEAR)
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


# --- item-split targets: real images from Debian packages (scripts/zoo_sources.py) -------------

def _place(rng: np.random.Generator, sprite: Image.Image, *, fill: tuple = (0.6, 0.92), rot: float = 0.0,
           recolour: bool = False, bg: tuple | None = None, noise: float = 4.0) -> np.ndarray:
    """A sprite (RGBA) on a random plain background: scaled so its longer side fills `fill` of
    the frame, rotated up to ±`rot`°, shifted within the margin; `recolour` paints it (by its
    alpha) in a random colour that contrasts with the background."""
    big = 96
    if recolour:
        fg, bgc = _rand_colour_pair(rng, min_contrast=80.0)
        alpha = sprite.getchannel("A")
        sprite = Image.new("RGBA", sprite.size, fg + (255,))
        sprite.putalpha(alpha)
    else:
        bgc = tuple(int(v) for v in rng.integers(0, 256, size=3))
    if bg is not None:
        bgc = bg
    side = rng.uniform(*fill) * big
    w, h = sprite.size
    k = side / max(w, h)
    im = sprite.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)
    if rot:
        im = im.rotate(rng.uniform(-rot, rot), resample=Image.Resampling.BICUBIC, expand=True)
    canvas = Image.new("RGBA", (big, big), tuple(bgc) + (255,))
    x = (big - im.width) / 2 + rng.uniform(-1, 1) * max(0.0, (big - im.width) / 2) * 0.8
    y = (big - im.height) / 2 + rng.uniform(-1, 1) * max(0.0, (big - im.height) / 2) * 0.8
    canvas.alpha_composite(im, (int(round(x)), int(round(y))))
    return _add_noise(_to_rgb32(canvas), rng, noise)


def _sprite_item(label: int, group: str, sprite: Image.Image, **kw) -> Item:
    return Item(label, group, lambda rng: _place(rng, sprite, **kw))


def _glyph_item(label: int, group: str, char: str, fonts: tuple[str, ...]) -> Item:
    return Item(label, group, lambda rng: _glyph(rng, char, fonts, rot=10.0))


ICON_CONTEXTS = ("actions", "apps", "devices", "mimetypes", "places", "status")


def _items_icons_oxygen() -> list[Item]:
    import zoo_sources as zs

    return [_sprite_item(ICON_CONTEXTS.index(ctx), name, zs.load_rgba(path), fill=(0.55, 0.9))
            for ctx, name, path in zs.icons("usr/share/icons/oxygen/base", ICON_CONTEXTS, "oxygen-icon-theme")]


ICON_THEMES = ("tango", "gnome", "oxygen")


def _items_icon_style() -> list[Item]:
    import zoo_sources as zs

    themes = {"tango": ("usr/share/icons/Tango", "tango-icon-theme"),
              "gnome": ("usr/share/icons/gnome", "gnome-icon-theme"),
              "oxygen": ("usr/share/icons/oxygen/base", "oxygen-icon-theme")}
    found = {t: zs.icons(d, ICON_CONTEXTS, pkg) for t, (d, pkg) in themes.items()}
    # only icon names that every theme draws: the label is the style, never which icons a theme has
    common = set.intersection(*({name for _, name, _ in v} for v in found.values()))
    return [_sprite_item(ICON_THEMES.index(t), name, zs.load_rgba(path), fill=(0.55, 0.9))
            for t, v in found.items() for _, name, path in v if name in common]


EMOJI_GROUPS = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
                "Activities", "Objects", "Symbols")


def _emoji_items(classes: tuple[str, ...], key) -> list[Item]:
    """Emoji items whose `key(group, subgroup)` is one of `classes` (the group is the emoji)."""
    import zoo_sources as zs

    out = []
    for group, subgroup, char in zs.emoji_list():
        k = key(group, subgroup)
        if k in classes:
            out.append(_sprite_item(classes.index(k), f"U+{ord(char[0]):04X}", zs.emoji_image(char), fill=(0.6, 0.95)))
    return out


def _items_emoji_groups() -> list[Item]:
    return _emoji_items(EMOJI_GROUPS, lambda g, s: g)


EMOJI_FOOD = ("food-fruit", "food-vegetable", "food-prepared", "food-asian", "food-sweet", "drink")
EMOJI_ANIMALS = ("animal-mammal", "animal-bird", "animal-marine", "animal-bug", "animal-reptile", "plant-flower",
                 "plant-other")
EMOJI_FACES = ("face-smiling", "face-affection", "face-neutral-skeptical", "face-concerned", "face-unwell",
               "face-negative", "face-costume")
EMOJI_TRAVEL = ("place-building", "transport-ground", "transport-air", "transport-water", "sky & weather", "time")
EMOJI_OBJECTS = ("clothing", "household", "tool", "office", "book-paper", "light & video", "computer",
                 "musical-instrument")


def _items_emoji_subgroups(classes: tuple[str, ...]) -> Callable[[], list[Item]]:
    return lambda: _emoji_items(classes, lambda g, s: s)


CARD_SUITS = ("clubs", "diamonds", "hearts", "spades")
CARD_RANKS = ("ace", "2", "3", "4", "5", "6", "7", "8", "9", "10", "jack", "queen", "king")


def _card_bg(rng: np.random.Generator) -> tuple:
    """A card table: a random dark-to-mid colour (cards are mostly white)."""
    return tuple(int(v) for v in rng.integers(0, 170, size=3))


def _card_item(label: int, family: str, sprite: Image.Image) -> Item:
    return Item(label, family, lambda rng: _place(rng, sprite, fill=(0.85, 1.0), rot=6.0, bg=_card_bg(rng)))


def _items_cards(by: str) -> Callable[[], list[Item]]:
    def items() -> list[Item]:
        import zoo_sources as zs

        out = []
        for family, suit, rank, img in zs.cards():
            label = zs.SUITS.index(suit) if by == "suit" else zs.RANKS.index(rank)
            out.append(_card_item(label, family, img))
        return out
    return items


CHESS_PIECES = ("king", "queen", "rook", "bishop", "knight", "pawn")


def _items_chess() -> list[Item]:
    import zoo_sources as zs

    def square(rng):  # a board square: light or dark, wood-, green- or grey-toned
        base = np.array([(240, 217, 181), (181, 136, 99), (238, 238, 210), (118, 150, 86), (200, 200, 200),
                         (120, 120, 120)][int(rng.integers(6))], dtype=np.float64)
        return tuple(int(v) for v in np.clip(base + rng.normal(0, 12, size=3), 0, 255))

    out = []
    for name, piece, _colour, img in zs.chess_pieces():
        out.append(Item(CHESS_PIECES.index(piece), name,
                        lambda rng, img=img: _place(rng, img, fill=(0.75, 0.98), bg=square(rng))))
    return out


MAP_CATEGORIES = ("amenity", "shop", "tourism", "man_made", "leisure", "historic")


def _items_map_symbols() -> list[Item]:
    import zoo_sources as zs

    return [_sprite_item(MAP_CATEGORIES.index(cat), f"{cat}/{name}", img, fill=(0.55, 0.9), recolour=True)
            for cat, name, img in zs.map_symbols(MAP_CATEGORIES)]


GIMP_MATERIALS = ("stone", "wood", "organic", "water-sky")
_GIMP_FOLDERS = {"Stone": "stone", "Wood": "wood", "Animal": "organic", "Fabric": "organic", "Food": "organic",
                 "Paper": "organic", "Plant": "organic", "Water": "water-sky", "Sky": "water-sky"}


def _pattern_crop(rng: np.random.Generator, tile: np.ndarray) -> np.ndarray:
    """A random square crop of a seamless pattern tiled twice each way, flipped at random,
    with brightness/contrast jitter."""
    h, w = tile.shape[:2]
    big = np.tile(tile, (2, 2, 1))
    side = max(8, int(rng.uniform(0.35, 1.0) * min(h, w)))
    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
    crop = Image.fromarray(big[y0:y0 + side, x0:x0 + side]).resize((SIZE, SIZE), Image.Resampling.BOX)
    arr = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    if rng.random() < 0.5:
        arr = arr[::-1]
    arr = (arr - arr.mean()) * rng.uniform(0.8, 1.2) + arr.mean() + rng.uniform(-15, 15)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _items_gimp() -> list[Item]:
    import zoo_sources as zs

    return [Item(GIMP_MATERIALS.index(_GIMP_FOLDERS[folder]), f"{folder}/{name}",
                 lambda rng, arr=arr: _pattern_crop(rng, arr))
            for folder, name, arr in zs.gimp_patterns(tuple(_GIMP_FOLDERS))]


HEBREW = tuple(chr(c) for c in range(0x05D0, 0x05EB) if unicodedata.name(chr(c)).startswith("HEBREW LETTER")
               and "FINAL" not in unicodedata.name(chr(c)))


def _items_hebrew() -> list[Item]:
    import zoo_sources as zs

    out = []
    for family, files in zs.culmus_families().items():
        fonts = tuple(str(f) for f in files if all(ord(ch) in zs.font_cmap(str(f)) for ch in HEBREW))
        if fonts:
            out += [_glyph_item(i, family, ch, fonts) for i, ch in enumerate(HEBREW)]
    return out


#: Writing systems: (label, first and last code point of its letters, Noto font files).
SCRIPTS = (
    ("arabic", 0x0621, 0x064A, ("NotoSansArabic-Regular", "NotoNaskhArabic-Regular", "NotoKufiArabic-Regular",
                                "NotoSansArabic-Bold")),
    ("armenian", 0x0531, 0x0586, ("NotoSansArmenian-Regular", "NotoSerifArmenian-Regular", "NotoSansArmenian-Bold")),
    ("bengali", 0x0985, 0x09B9, ("NotoSansBengali-Regular", "NotoSerifBengali-Regular", "NotoSansBengali-Bold")),
    ("devanagari", 0x0905, 0x0939, ("NotoSansDevanagari-Regular", "NotoSerifDevanagari-Regular",
                                    "NotoSansDevanagari-Bold")),
    ("ethiopic", 0x1200, 0x1357, ("NotoSansEthiopic-Regular", "NotoSerifEthiopic-Regular", "NotoSansEthiopic-Bold")),
    ("georgian", 0x10D0, 0x10FA, ("NotoSansGeorgian-Regular", "NotoSerifGeorgian-Regular", "NotoSansGeorgian-Bold")),
    ("hebrew", 0x05D0, 0x05EA, ("NotoSansHebrew-Regular", "NotoSerifHebrew-Regular", "NotoSansHebrew-Bold")),
    ("khmer", 0x1780, 0x17B3, ("NotoSansKhmer-Regular", "NotoSerifKhmer-Regular", "NotoSansKhmer-Bold")),
    ("tamil", 0x0B85, 0x0BB9, ("NotoSansTamil-Regular", "NotoSerifTamil-Regular", "NotoSansTamil-Bold")),
    ("thai", 0x0E01, 0x0E2E, ("NotoSansThai-Regular", "NotoSerifThai-Regular", "NotoSansThai-Bold")),
)
SCRIPT_NAMES = tuple(s[0] for s in SCRIPTS)


def _items_scripts() -> list[Item]:
    import zoo_sources as zs

    out = []
    for label, (_, first, last, names) in enumerate(SCRIPTS):
        fonts = [zs.font_path(f"{zs.NOTO_DIR}/{n}.ttf", "fonts-noto-core") for n in names]
        for ch in zs.script_letters(first, last, fonts):
            out.append(_glyph_item(label, f"U+{ord(ch):04X}", ch, tuple(str(f) for f in fonts)))
    return out


# --- generated targets ----------------------------------------------------------------------

SYMMETRIES = ("none", "mirror", "rot-2", "rot-3", "rot-4", "rot-6")


def draw_t_symmetry(rng, label, split):
    """A blob r(θ) = 1 + Σ a_k cos(k θ + φ_k) whose harmonics set its symmetry: multiples of n
    only for n-fold rotation, phases 0 for one mirror axis, free otherwise; then rotated."""
    kind = SYMMETRIES[label]
    theta = np.linspace(0, 2 * math.pi, 360, endpoint=False)
    if kind.startswith("rot"):
        n = int(kind.split("-")[1])
        ks = [n * j for j in range(1, 4)]
        phases = rng.uniform(0, 2 * math.pi, size=len(ks))
        amps = rng.uniform(0.08, 0.3, size=len(ks)) / np.arange(1, len(ks) + 1)
        amps[0] = rng.uniform(0.2, 0.35)
        # free phases: no mirror
        r = 1 + sum(a * np.cos(k * theta + p) for a, k, p in zip(amps, ks, phases, strict=True))
    else:
        ks = list(range(1, 7))
        amps = rng.uniform(0.04, 0.22, size=len(ks))
        amps[int(rng.integers(1, 4))] = rng.uniform(0.2, 0.32)
        phases = np.zeros(len(ks)) if kind == "mirror" else rng.uniform(0, 2 * math.pi, size=len(ks))
        r = 1 + sum(a * np.cos(k * theta + p) for a, k, p in zip(amps, ks, phases, strict=True))
    big = 128
    rot = rng.uniform(0, 2 * math.pi)
    scale = rng.uniform(0.32, 0.42) * big / max(r.max(), 1e-6)
    cx, cy = big / 2 + rng.uniform(-6, 6, size=2)
    pts = [(cx + scale * rr * math.cos(t + rot), cy + scale * rr * math.sin(t + rot))
           for rr, t in zip(r, theta, strict=True)]
    fg, bg = _rand_colour_pair(rng, min_contrast=60.0)
    canvas = Image.new("RGB", (big, big), bg)
    ImageDraw.Draw(canvas).polygon(pts, fill=fg)
    return _add_noise(_to_rgb32(canvas), rng, 5.0)


CA_RULES = (18, 30, 45, 60, 90, 110, 150, 184)


def draw_t_ca_rules(rng, label, split):
    """The space-time diagram of an elementary cellular automaton (Wolfram rule) from a random
    initial row, periodic boundary, 16 cells x 16 steps at 2 px per cell, random colours."""
    rule = CA_RULES[label]
    n = 16
    table = np.array([(rule >> i) & 1 for i in range(8)], dtype=np.uint8)
    while True:  # a diagram that died out (or filled up) shows no rule: draw another
        warm = int(rng.integers(0, 12))  # start a few steps into the evolution
        row = (rng.random(n) < rng.uniform(0.25, 0.75)).astype(np.uint8)
        rows = []
        for step in range(warm + n):
            if step >= warm:
                rows.append(row)
            idx = (np.roll(row, 1) << 2) | (row << 1) | np.roll(row, -1)
            row = table[idx]
        cells = np.stack(rows)
        if 0.1 <= cells.mean() <= 0.9:
            break
    grid = np.kron(cells, np.ones((2, 2), dtype=np.uint8)).astype(np.float64)
    if rng.random() < 0.5:
        grid = grid[:, ::-1]
    return _add_noise(_two_tone(rng, grid).astype(np.uint8), rng, 6.0)


CHART_TYPES = ("line", "scatter", "bar", "barh", "pie", "area")


def draw_t_chart_types(rng, label, split):
    """A tiny matplotlib chart of random data: line, scatter, vertical bars, horizontal bars,
    pie or filled area; random colours, with or without axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = CHART_TYPES[label]
    fg, bg = _rand_colour_pair(rng, min_contrast=70.0)
    fgc, bgc = np.array(fg) / 255.0, np.array(bg) / 255.0
    fig = plt.figure(figsize=(1, 1), dpi=96, facecolor=bgc)
    ax = fig.add_axes([0.12, 0.12, 0.8, 0.8] if rng.random() < 0.5 else [0.02, 0.02, 0.96, 0.96], facecolor=bgc)
    n = int(rng.integers(4, 9))
    y = np.cumsum(rng.normal(0, 1, size=n)) if kind in ("line", "area") else rng.uniform(0.2, 1.0, size=n)
    if kind == "line":
        ax.plot(np.arange(n), y, color=fgc, lw=rng.uniform(1.5, 3.0))
    elif kind == "scatter":
        ax.scatter(rng.uniform(0, 1, size=3 * n), rng.uniform(0, 1, size=3 * n), color=fgc, s=rng.uniform(6, 20))
    elif kind == "bar":
        ax.bar(np.arange(n), y, color=fgc, width=rng.uniform(0.5, 0.85))
    elif kind == "barh":
        ax.barh(np.arange(n), y, color=fgc, height=rng.uniform(0.5, 0.85))
    elif kind == "pie":
        shades = [np.clip(fgc * rng.uniform(0.5, 1.2) + rng.uniform(-0.2, 0.2, size=3), 0, 1) for _ in range(n)]
        ax.pie(y, colors=shades, startangle=rng.uniform(0, 360), wedgeprops={"edgecolor": bgc, "linewidth": 0.8})
    else:
        ax.fill_between(np.arange(n), y - y.min() + 0.2, color=fgc)
    if kind != "pie" and rng.random() < 0.5:
        ax.set_xticks([])
        ax.set_yticks([])
    elif kind != "pie":
        ax.tick_params(labelsize=3, colors=fgc)
    if rng.random() < 0.5 or kind == "pie":
        ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, facecolor=bgc)
    plt.close(fig)
    buf.seek(0)
    return _add_noise(_to_rgb32(Image.open(buf)), rng, 4.0)


CLOCK_HOURS = tuple(f"{h}-oclock" for h in (12, *range(1, 12)))


def draw_t_clock(rng, label, split):
    """An analogue clock face showing label o'clock plus a random minute (the hour hand moves
    with the minutes, as on a real clock): face, optional ticks, a short hour hand and a long
    minute hand, random colours."""
    minute = rng.uniform(0, 50)
    hour_angle = 2 * math.pi * ((label % 12) + minute / 60) / 12
    minute_angle = 2 * math.pi * minute / 60
    big = 128
    fg, bg = _rand_colour_pair(rng, min_contrast=80.0)
    face = tuple(int(v) for v in np.clip(np.array(bg) + rng.integers(-30, 30, size=3), 0, 255))
    canvas = Image.new("RGB", (big, big), tuple(int(v) for v in rng.integers(0, 256, size=3)))
    d = ImageDraw.Draw(canvas)
    c = big / 2 + rng.uniform(-5, 5, size=2)
    r = rng.uniform(46, 58)
    d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=face, outline=fg, width=int(rng.integers(2, 6)))
    if rng.random() < 0.7:
        for k in range(12):
            a = 2 * math.pi * k / 12
            r0 = r * (0.78 if k % 3 == 0 else 0.86)
            d.line([(c[0] + r0 * math.sin(a), c[1] - r0 * math.cos(a)),
                    (c[0] + 0.95 * r * math.sin(a), c[1] - 0.95 * r * math.cos(a))], fill=fg, width=3)
    for angle, length, width in ((hour_angle, 0.5, 9), (minute_angle, 0.85, 5)):
        d.line([(c[0], c[1]), (c[0] + length * r * math.sin(angle), c[1] - length * r * math.cos(angle))],
               fill=fg, width=width)
    return _add_noise(_to_rgb32(canvas), rng, 5.0)


#: Braille (Grade 1) letters a-z: the raised dots of the six-dot cell (1-3 left column top to
#: bottom, 4-6 right column).
BRAILLE = {"a": "1", "b": "12", "c": "14", "d": "145", "e": "15", "f": "124", "g": "1245", "h": "125", "i": "24",
           "j": "245", "k": "13", "l": "123", "m": "134", "n": "1345", "o": "135", "p": "1234", "q": "12345",
           "r": "1235", "s": "234", "t": "2345", "u": "136", "v": "1236", "w": "2456", "x": "1346", "y": "13456",
           "z": "1356"}
BRAILLE_LETTERS = tuple(BRAILLE)


def draw_t_braille(rng, label, split):
    """One Braille cell (letter a-z): raised dots drawn as discs, unraised positions faint or
    absent, random dot size, spacing, position and colours."""
    big = 128
    fg, bg = _rand_colour_pair(rng, min_contrast=70.0)
    canvas = Image.new("RGB", (big, big), bg)
    d = ImageDraw.Draw(canvas)
    pitch = rng.uniform(18, 26)
    dot = rng.uniform(0.28, 0.42) * pitch
    x0 = big / 2 - pitch / 2 + rng.uniform(-8, 8)
    y0 = big / 2 - pitch + rng.uniform(-8, 8)
    faint = tuple(int(0.8 * b + 0.2 * f) for f, b in zip(fg, bg, strict=True)) if rng.random() < 0.5 else None
    raised = set(BRAILLE[BRAILLE_LETTERS[label]])
    for k in range(6):
        col, row = (0, k) if k < 3 else (1, k - 3)
        cx, cy = x0 + col * pitch + rng.normal(0, 0.8), y0 + row * pitch + rng.normal(0, 0.8)
        colour = fg if str(k + 1) in raised else faint
        if colour is not None:
            d.ellipse([cx - dot, cy - dot, cx + dot, cy + dot], fill=colour)
    return _add_noise(_to_rgb32(canvas), rng, 6.0)


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
        # --- item-split targets from Debian packages (scripts/zoo_sources.py): every image of
        # an item (icon, emoji, card deck, piece set, font family, character, symbol, pattern)
        # is in one split, so the test items are unseen in training.
        Recipe("t-icons-oxygen", "target", ICON_CONTEXTS, {"validation": 120, "test": 480}, _pool_draw,
               "Oxygen desktop icons (32x32 PNG of the Debian package oxygen-icon-theme) labelled with the "
               "icon theme's context folder: actions, apps, devices, mimetypes, places, status (aliases and "
               "pictures filed under two contexts left out); placed on a random plain background at a random "
               "scale and position; 40 training images per class.",
               transfer="far: real designed icons, semantic label (what the icon is for), no source has icons",
               per_class_train=40, items=_items_icons_oxygen, sources=("oxygen-icon-theme",), item_unit="icon name"),
        Recipe("t-icon-style", "target", ICON_THEMES, {"validation": 120, "test": 480}, _pool_draw,
               "Which icon theme drew an icon: Tango, GNOME (2.x, Tango-style) or Oxygen, over the icon names "
               "that all three themes have in the six contexts of t-icons-oxygen; same placement; 80 training "
               "images per class.",
               transfer="far: artistic style with content held fixed", per_class_train=80, items=_items_icon_style,
               sources=("tango-icon-theme", "gnome-icon-theme", "oxygen-icon-theme"),
               item_unit="icon name (all themes)"),
        Recipe("t-emoji-groups", "target", EMOJI_GROUPS, {"validation": 160, "test": 480}, _pool_draw,
               "Noto colour emoji (single code point, no skin tones) labelled with their Unicode emoji group "
               "(emoji-test.txt of Unicode 15.0, Flags and Component left out); placed on a random plain "
               "background; 40 training images per class.",
               transfer="far: colour pictograms, broad semantic classes", per_class_train=40,
               items=_items_emoji_groups, sources=("fonts-noto-color-emoji", "unicode-data"), item_unit="emoji"),
        Recipe("t-emoji-food", "target", EMOJI_FOOD, {"validation": 120, "test": 480}, _pool_draw,
               "Noto colour emoji of Unicode's Food & Drink group labelled with their subgroup (fruit, "
               "vegetable, prepared, asian, sweet, drink); 30 training images per class.",
               transfer="far: fine-grained semantic classes of colour pictograms", per_class_train=30,
               items=_items_emoji_subgroups(EMOJI_FOOD), sources=("fonts-noto-color-emoji", "unicode-data"),
               item_unit="emoji"),
        Recipe("t-emoji-animals", "target", EMOJI_ANIMALS, {"validation": 140, "test": 490}, _pool_draw,
               "Noto colour emoji of Unicode's Animals & Nature group labelled with their subgroup (mammal, "
               "bird, marine, bug, reptile, flower, other plant); 30 training images per class.",
               transfer="far: fine-grained semantic classes of colour pictograms", per_class_train=30,
               items=_items_emoji_subgroups(EMOJI_ANIMALS), sources=("fonts-noto-color-emoji", "unicode-data"),
               item_unit="emoji"),
        Recipe("t-emoji-faces", "target", EMOJI_FACES, {"validation": 140, "test": 490}, _pool_draw,
               "Noto colour face emoji labelled with their Unicode subgroup (smiling, affection, neutral-"
               "skeptical, concerned, unwell, negative, costume): facial expression on near-identical yellow "
               "discs; 30 training images per class.",
               transfer="far: subtle expression cues on a shared layout", per_class_train=30,
               items=_items_emoji_subgroups(EMOJI_FACES), sources=("fonts-noto-color-emoji", "unicode-data"),
               item_unit="emoji"),
        Recipe("t-emoji-travel", "target", EMOJI_TRAVEL, {"validation": 120, "test": 480}, _pool_draw,
               "Noto colour emoji of Unicode's Travel & Places group labelled with their subgroup (building, "
               "ground transport, air transport, water transport, sky & weather, time); 30 training images per "
               "class.",
               transfer="far: semantic classes, weather and transport symbols", per_class_train=30,
               items=_items_emoji_subgroups(EMOJI_TRAVEL), sources=("fonts-noto-color-emoji", "unicode-data"),
               item_unit="emoji"),
        Recipe("t-emoji-objects", "target", EMOJI_OBJECTS, {"validation": 160, "test": 480}, _pool_draw,
               "Noto colour emoji of Unicode's Objects group labelled with their subgroup (clothing, household, "
               "tool, office, book-paper, light & video, computer, musical instrument); 30 training images per "
               "class.",
               transfer="far: semantic classes of everyday objects", per_class_train=30,
               items=_items_emoji_subgroups(EMOJI_OBJECTS), sources=("fonts-noto-color-emoji", "unicode-data"),
               item_unit="emoji"),
        Recipe("t-card-suits", "target", CARD_SUITS, {"validation": 120, "test": 480}, _pool_draw,
               "Playing cards of 29 French-suited deck themes (GNOME AisleRiot's and KDE's card decks, SVG "
               "rendered with rsvg-convert) labelled with their suit; a whole card on a random dark table "
               "colour, ±6° rotation; decks that share artwork form one family, the unit of the split; "
               "60 training images per class.",
               transfer="far: colour (red/black) plus pip shape in drawn and engraved decks", per_class_train=60,
               items=_items_cards("suit"), sources=("gnome-cards-data", "kdegames-card-data-kf5", "librsvg2-bin"),
               item_unit="deck family"),
        Recipe("t-card-ranks", "target", CARD_RANKS, {"validation": 130, "test": 520}, _pool_draw,
               "The same playing cards as t-card-suits labelled with their rank (ace, 2-10, jack, queen, king): "
               "pip count and layout or the court figure; 24 training images per class.",
               transfer="far: counting pips / reading court cards, unseen deck families", per_class_train=24,
               items=_items_cards("rank"), sources=("gnome-cards-data", "kdegames-card-data-kf5", "librsvg2-bin"),
               item_unit="deck family"),
        Recipe("t-chess-pieces", "target", CHESS_PIECES, {"validation": 120, "test": 480}, _pool_draw,
               "Chess pieces of 17 of pychess's SVG piece sets (white and black, rendered with rsvg-convert) "
               "labelled with the piece type, on a random board-square colour; 40 training images per class.",
               transfer="mid: silhouettes (src-shapes) in unseen drawing styles", per_class_train=40,
               items=_items_chess, sources=("pychess", "librsvg2-bin"), item_unit="piece set"),
        Recipe("t-map-symbols", "target", MAP_CATEGORIES, {"validation": 120, "test": 480}, _pool_draw,
               "OpenStreetMap Carto map symbols (SVG, rendered with rsvg-convert) labelled with the OSM key "
               "they are filed under (amenity, shop, tourism, man_made, leisure, historic), painted in a random "
               "colour on a contrasting background; 30 training images per class.",
               transfer="far: monochrome pictograms, semantic label", per_class_train=30,
               items=_items_map_symbols, sources=("openstreetmap-carto-common", "librsvg2-bin"),
               item_unit="symbol"),
        Recipe("t-gimp-materials", "target", GIMP_MATERIALS, {"validation": 120, "test": 400}, _pool_draw,
               "Random crops of GIMP's photographic patterns labelled with their material (the pattern "
               "folders Stone; Wood; Animal, Fabric, Food, Paper, Plant = organic; Water, Sky = water-sky), "
               "flips, brightness/contrast jitter; 60 training images per class.",
               transfer="near src-photos / src-textures (real texture statistics), unseen patterns",
               per_class_train=60, items=_items_gimp, sources=("gimp-data",), item_unit="pattern"),
        Recipe("t-hebrew-letters", "target", HEBREW, {"validation": 132, "test": 440}, _pool_draw,
               "The 22 Hebrew letters (no final forms) in the Culmus font families (regular, bold, oblique "
               "styles of one family together), same affine and colour augmentation as src-glyphs; 12 "
               "training images per class.",
               transfer="near src-glyphs: an unseen alphabet, test fonts unseen", per_class_train=12,
               items=_items_hebrew, sources=("culmus",), item_unit="font family"),
        Recipe("t-scripts", "target", SCRIPT_NAMES, {"validation": 120, "test": 480}, _pool_draw,
               "Which writing system a letter belongs to (Arabic, Armenian, Bengali, Devanagari, Ethiopic, "
               "Georgian, Hebrew, Khmer, Tamil, Thai) in Noto Sans and Serif fonts, same augmentation as "
               "src-glyphs; the test letters are unseen; 30 training images per class.",
               transfer="near src-glyphs: stroke statistics of unseen scripts", per_class_train=30,
               items=_items_scripts, sources=("fonts-noto-core",), item_unit="letter"),
        # --- generated targets
        Recipe("t-symmetry", "target", SYMMETRIES, {"validation": 120, "test": 480}, draw_t_symmetry,
               "The symmetry of a random smooth blob: none, one mirror axis, or 2-, 3-, 4- or 6-fold rotation "
               "(no mirror), randomly rotated, random colours; 40 training images per class.",
               transfer="mid: shape (src-shapes) but a global, relational property", per_class_train=40),
        Recipe("t-ca-rules", "target", tuple(f"rule-{r}" for r in CA_RULES), {"validation": 120, "test": 480},
               draw_t_ca_rules,
               "Space-time diagrams of 8 elementary cellular automata (Wolfram rules 18, 30, 45, 60, 90, 110, "
               "150, 184) from random initial rows, 16 cells x 16 steps, two random colours; 40 training "
               "images per class.",
               transfer="mid: binary textures (src-textures) whose class is a local rule", per_class_train=40),
        Recipe("t-chart-types", "target", CHART_TYPES, {"validation": 120, "test": 480}, draw_t_chart_types,
               "Tiny matplotlib charts of random data: line, scatter, bar, horizontal bar, pie, filled area; "
               "random colours, with or without axes; 40 training images per class.",
               transfer="far: no source draws charts", per_class_train=40),
        Recipe("t-clock", "target", CLOCK_HOURS, {"validation": 120, "test": 480}, draw_t_clock,
               "The hour shown by an analogue clock (12 classes; the minute is random in 0-50 and the hour "
               "hand moves with it), random face, tick marks and colours; 30 training images per class.",
               transfer="mid: orientation of two hands (t-orientation) with a relational reading",
               per_class_train=30),
        Recipe("t-braille", "target", BRAILLE_LETTERS, {"validation": 130, "test": 520}, draw_t_braille,
               "One Braille cell, letters a-z: raised dots as discs, unraised positions faint or absent, random "
               "dot size, spacing, position and colours; 12 training images per class.",
               transfer="far: dot patterns, the class is the dots' relative positions", per_class_train=12),
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


def generate(recipe: Recipe, *, scale: float = 1.0,
             info: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Draw every split of `recipe`: split -> (images (N, 32, 32, 3) uint8, labels (N,) int64).

    `scale` shrinks every split (tests use a toy size); 1.0 is the published recipe. For an
    item-split recipe, `info` (if given) receives ``groups``: split -> number of items' groups.
    """
    sizes = {k: max(len(recipe.classes) if k == "train" else 1, int(round(v * scale)))
             for k, v in recipe.split_sizes().items()}
    out = {}
    if recipe.items is not None:
        parts = split_items(recipe.items(), recipe.name, len(recipe.classes))
        if info is not None:
            info["groups"] = {split: len({it.group for it in parts[split]}) for split in SPLITS}
            info["per_class"] = len({it.group for it in parts["train"]}) == len(
                {(it.group, it.label) for it in parts["train"]})
        for split in SPLITS:
            rng = np.random.default_rng(_seed(recipe.name, split))
            y = _balanced_labels(rng, sizes[split], len(recipe.classes))
            # each class cycles through its items of this split in a seeded order, so every
            # item is drawn about equally often
            by_class = {c: [parts[split][i] for i in rng.permutation(len(parts[split]))
                            if parts[split][i].label == c] for c in range(len(recipe.classes))}
            seen = dict.fromkeys(by_class, 0)
            x = []
            for c in y:
                pool = by_class[int(c)]
                x.append(pool[seen[int(c)] % len(pool)].draw(rng))
                seen[int(c)] += 1
            out[split] = (np.stack(x), y)
        return out
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
    import matplotlib
    import PIL
    import sklearn

    v = {"numpy": np.__version__, "Pillow": PIL.__version__, "matplotlib": matplotlib.__version__,
         "scikit-learn": sklearn.__version__}
    try:
        import skimage

        v["scikit-image"] = skimage.__version__
    except ImportError:  # only the photo recipes need it
        v["scikit-image"] = "not installed"
    return v


def source_versions(recipe: Recipe) -> dict[str, str]:
    """The installed Debian version of every package `recipe` reads (empty for the others)."""
    if not recipe.sources:
        return {}
    import zoo_sources

    return {p: zoo_sources.installed_version(p) for p in recipe.sources}


def _sources_section(recipe: Recipe, groups: dict | None) -> str:
    import zoo_sources

    rows = "\n".join(f"| {p} | {zoo_sources.installed_version(p)} | {zoo_sources.SOURCES[p].licence} |"
                     for p in recipe.sources)
    split = ""
    if groups:
        share = (f"{int(100 * ITEM_FRACTIONS['validation'])} % / {int(100 * ITEM_FRACTIONS['test'])} % of "
                 + ("each class's items" if groups.get("per_class") else "the items (an item holds every class)"))
        split = (f"\n\n**Split by item** (an item: one {recipe.item_unit}): every image of an item is in the same "
                 f"split, so the test items are unseen in training; train / validation / test hold "
                 f"{groups['train']} / {groups['validation']} / {groups['test']} items (seeded; {share} in "
                 "validation / test). Each image is a random view of an item (placement, scale, colours, noise).")
    return f"""**Sources** (Debian packages; install them as `scripts/zoo_sources.txt` says to rebuild):

| package | version | licence (see /usr/share/doc/<package>/copyright) |
|---|---|---|
{rows}{split}

"""


def _card(recipe: Recipe, splits, fp: str, groups: dict | None = None) -> str:
    sizes = {s: len(splits[s][1]) for s in SPLITS}
    cls = "\n".join(f"| {i} | {c} |" for i, c in enumerate(recipe.classes))
    real = recipe.pool is not None or recipe.items is not None
    tags = ["fennec-zoo", f"fennec-{recipe.kind}", "real" if real else "synthetic"]
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

{_sources_section(recipe, groups) if recipe.sources else ''}| split | images |
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


def save(recipe: Recipe, splits, out_dir: Path, fp: str, *, groups: dict | None = None) -> None:
    """Write `splits` as a Hub-style dataset repo (parquet + README card) under `out_dir`
    (`groups`: an item-split recipe's number of items' groups per split, for the card)."""
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
    (out_dir / "README.md").write_text(_card(recipe, splits, fp, groups), encoding="utf-8")


def load_split_arrays(path: Path | str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of a saved dataset repo back as (images uint8 (N,32,32,3), labels int64)."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path) / "data" / f"{split}-00000-of-00001.parquet")
    imgs = [np.asarray(Image.open(io.BytesIO(d["bytes"])).convert("RGB")) for d in table.column("image").to_pylist()]
    return np.stack(imgs), np.asarray(table.column("label").to_pylist(), dtype=np.int64)


def check_sources(names: list[str]) -> None:
    """Raise zoo_sources.SourceMissingError, naming the package to install, when a Debian
    package that one of the named recipes reads is missing (checked before anything is drawn)."""
    import zoo_sources

    for name in names:
        for package in RECIPES[name].sources:
            zoo_sources.require(package, why=f"dataset {name} is drawn from it")
            have, drawn = zoo_sources.installed_version(package), zoo_sources.SOURCES[package].version
            if have not in (drawn, "unknown"):
                LOG.warning("%s: %s %s is installed, the committed dataset was drawn from %s: expect fingerprint "
                            "drift", name, package, have, drawn)


def build(names: list[str], *, out_root: Path = DATASETS_DIR, fingerprints_path: Path = FINGERPRINTS,
          update_fingerprints: bool = False, scale: float = 1.0) -> dict[str, dict]:
    """Generate, save and fingerprint the named datasets; return {name: status record}."""
    stored = json.loads(fingerprints_path.read_text()) if fingerprints_path.exists() else {"datasets": {}}
    check_sources(names)
    report = {}
    for name in names:
        recipe = RECIPES[name]
        t0 = time.time()
        info: dict = {}
        splits = generate(recipe, scale=scale, info=info)
        fp = fingerprint(splits)
        old = stored["datasets"].get(name, {}).get("sha256")
        status = "new" if old is None else ("ok" if old == fp else "DRIFT")
        # A drifted rebuild never replaces the stored dataset (the ground truth was fine-tuned on
        # its pixels): it goes beside it, under .drift/, unless the new fingerprint is accepted.
        keep = status == "DRIFT" and not update_fingerprints and (out_root / name).exists()
        save(recipe, splits, (out_root / ".drift" / name) if keep else (out_root / name), fp,
             groups={**info["groups"], "per_class": info["per_class"]} if "groups" in info else None)
        rec = {"sha256": fp, "kind": recipe.kind, "classes": len(recipe.classes),
               "sizes": {s: int(len(splits[s][1])) for s in SPLITS}}
        if recipe.sources:  # the Debian packages its pixels come from, at the versions used
            rec["sources"] = source_versions(recipe)
        if info.get("groups"):
            rec["item_groups"] = info["groups"]
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
    import zoo_sources

    try:
        report = build(names, out_root=args.out, update_fingerprints=args.update_fingerprints)
    except zoo_sources.SourceMissingError as e:
        LOG.error("%s", e)
        return 2
    drift = [n for n, r in report.items() if r["status"] == "DRIFT"]
    if drift:
        LOG.warning("fingerprint drift in %s", drift)
    return 1 if (drift and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
