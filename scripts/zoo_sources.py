"""Real images shipped inside Debian packages, read for the zoo's item-split target datasets.

``scripts/build_datasets.py`` draws a dozen of its targets from files that Debian packages install
(icon themes, the Noto colour-emoji font with Unicode's emoji list, playing-card and chess-piece
themes, script fonts, OpenStreetMap map symbols, GIMP patterns). This module finds those files,
reads them, and says exactly which package to install when one is missing. Every package the
recipes read is listed, with the version the committed datasets were drawn from and its
licence, in ``SOURCES`` and in ``scripts/zoo_sources.txt`` (the install list), and each
dataset card names its own.

Nothing here runs at fennec's run time: the datasets are committed, and only a rebuild
(``python scripts/build_datasets.py --only t-...``) needs these packages.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import shutil
import struct
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Where the packages put their files (a test or a chroot can point this elsewhere).
ROOT = Path(os.environ.get("FENNEC_ZOO_SOURCES_ROOT", "/"))
#: Rendered SVGs are cached here (git-ignored): rendering a card deck takes seconds.
RENDER_CACHE = Path(__file__).resolve().parents[1] / "zoo" / "cache" / "render"


@dataclasses.dataclass(frozen=True)
class Source:
    """A Debian package whose files a recipe reads."""

    package: str
    version: str  # the version the committed datasets were drawn from
    licence: str  # as its /usr/share/doc/<package>/copyright states for the files read
    probe: str  # a file the package installs (relative to ROOT): present = installed

    def path(self) -> Path:
        return ROOT / self.probe


SOURCES: dict[str, Source] = {s.package: s for s in (
    Source("tango-icon-theme", "0.8.90-11", "public domain", "usr/share/icons/Tango/index.theme"),
    Source("oxygen-icon-theme", "5:5.103.0-1", "LGPL-3+", "usr/share/icons/oxygen/index.theme"),
    Source("gnome-icon-theme", "3.12.0-5", "GPL-2+ / GPL-3+", "usr/share/icons/gnome/index.theme"),
    Source("fonts-noto-color-emoji", "2.042-0+deb12u1", "OFL-1.1 (font), Apache-2.0 (images)",
           "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    Source("unicode-data", "15.0.0-1", "Unicode License (data files)", "usr/share/unicode/emoji/emoji-test.txt"),
    Source("culmus", "0.133-1", "GPL-2 (some fonts GPL-2 with the Bitstream Vera licence)",
           "usr/share/fonts/truetype/culmus/DavidCLM-Medium.otf"),
    Source("fonts-noto-core", "20201225-1", "OFL-1.1", "usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf"),
    Source("gnome-cards-data", "1:3.22.23-1", "GPL-3+ / LGPL-3+ / GFDL (per theme: see its copyright)",
           "usr/share/aisleriot/cards/paris.svgz"),
    Source("kdegames-card-data-kf5", "4:22.12.3-1", "GPL-2+ / LGPL-2+ / Expat-like (per deck: see its copyright)",
           "usr/share/carddecks/svg-standard/standard.svgz"),
    Source("pychess", "1.0.3-1", "GPL-3+", "usr/share/pychess/pieces/merida/wk.svg"),
    Source("openstreetmap-carto-common", "5.7.0-1", "CC0-1.0",
           "usr/share/openstreetmap-carto-common/symbols/amenity/cafe.svg"),
    Source("gimp-data", "2.10.34-1+deb12u10", "GPL-3+ / CC-BY-SA / CC0 (per file: see its copyright)",
           "usr/share/gimp/2.0/patterns/Wood/wood1.pat"),
    Source("librsvg2-bin", "2.54.7+dfsg-1~deb12u2", "LGPL-2+ (renderer: rsvg-convert)", "usr/bin/rsvg-convert"),
)}


class SourceMissingError(RuntimeError):
    """A recipe's Debian package is not installed."""


def require(package: str, *, why: str = "") -> Path:
    """The probe path of ``package``; raise :class:`SourceMissingError` naming the install
    command when it is not there."""
    src = SOURCES[package]
    if not src.path().exists():
        raise SourceMissingError(
            f"{src.path()} not found{(' (' + why + ')') if why else ''}: it comes from the Debian package "
            f"{package} (the committed datasets were drawn from version {src.version}). Install it with "
            f"`apt-get install --no-install-recommends {package}` (scripts/zoo_sources.txt lists every "
            "source), or leave the targets that need it out of the rebuild (--only).")
    return src.path()


def installed_version(package: str) -> str:
    """The installed Debian version of ``package`` (``"unknown"`` when dpkg cannot say)."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


# ----------------------------------------------------------------------------------------------
# Raster and vector images
# ----------------------------------------------------------------------------------------------

def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def icons(theme_dir: str, contexts: tuple[str, ...], package: str, size: str = "32x32") -> list[tuple[str, str, Path]]:
    """``(context, icon name, file)`` of every distinct PNG icon of ``theme_dir/size/<context>``.

    Symbolic links (the themes' aliases) are skipped, and so is a picture whose bytes appear
    under two contexts (its label would be ambiguous); of identical pictures under one context
    the first name in sorted order is kept.
    """
    require(package)
    base = ROOT / theme_dir / size
    seen: dict[str, tuple[str, str, Path]] = {}
    ambiguous: set[str] = set()
    for ctx in contexts:
        folder = base / ctx
        if not folder.is_dir():
            raise SourceMissingError(
                f"{folder} not found: the icon theme of {package} has no '{ctx}' context at {size}.")
        for f in sorted(folder.glob("*.png")):
            if f.is_symlink():
                continue
            digest = _sha(f)
            if digest in seen:
                if seen[digest][0] != ctx:
                    ambiguous.add(digest)
                continue
            seen[digest] = (ctx, f.stem, f)
    return [v for k, v in sorted(seen.items(), key=lambda kv: (kv[1][0], kv[1][1])) if k not in ambiguous]


def load_rgba(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGBA")


def rsvg(svg: Path, *, height: int, element: str | None = None) -> Image.Image:
    """Render an SVG (or ``.svgz``), or one element of it, with ``rsvg-convert`` to RGBA.

    Cached under ``zoo/cache/render`` by the file's sha256, the element, the height and the
    renderer's version (a different librsvg may draw other pixels: the dataset fingerprint
    would say so).
    """
    exe = shutil.which("rsvg-convert")
    if exe is None:
        require("librsvg2-bin", why="rsvg-convert renders the SVG sources")
        exe = str(SOURCES["librsvg2-bin"].path())
    key = hashlib.sha256(f"{_sha(svg)}|{element}|{height}|{_rsvg_version(exe)}".encode()).hexdigest()
    cached = RENDER_CACHE / f"{key}.png"
    if not cached.exists():
        cmd = [exe, "-h", str(height), "-f", "png"]
        if element:
            cmd.append(f"--export-id={element}")
        out = subprocess.run([*cmd, str(svg)], capture_output=True, timeout=300, check=False)
        if out.returncode != 0 or not out.stdout:
            raise RuntimeError(f"rsvg-convert failed on {svg} ({element}): {out.stderr.decode(errors='replace')[:300]}")
        RENDER_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(out.stdout)
        os.replace(tmp, cached)
    return load_rgba(cached)


@functools.cache
def _rsvg_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.strip()


def rsvg_version() -> str:
    exe = shutil.which("rsvg-convert")
    return _rsvg_version(exe) if exe else "not installed"


# --- playing cards ------------------------------------------------------------------------------

SUITS = ("club", "diamond", "heart", "spade")
RANKS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "jack", "queen", "king")

#: Card themes: (package, file under the package's card folder, family). Themes of one family
#: share their artwork (a variant of the same deck), so a family is the unit of the split: no
#: test deck's artwork is seen in training. Left out: the themes whose cards rsvg-convert 2.54
#: cannot cut out by element id (no dimensions: konqi, xskat-french; no card-shaped box:
#: future), the colour and bitmap variants of kept themes (anglo_bitmap, *_4_color,
#: gnomangelo_bitmap, atlasnye_skat and its Cyrillic-named copy, oxygen-air, oxygen-white), the
#: KDE copies of AisleRiot themes (paris, dondorf, tigullio, ornamental), and the
#: German-suited deck (xskat-german).
CARD_DECKS: tuple[tuple[str, str, str], ...] = (
    ("gnome-cards-data", "ancient_french.svgz", "ancient-french"),
    ("gnome-cards-data", "anglo.svgz", "anglo"),
    ("gnome-cards-data", "anglo_modern.svgz", "anglo"),
    ("gnome-cards-data", "anglo_poker.svgz", "anglo"),
    ("gnome-cards-data", "atlasnye.svgz", "atlasnye"),
    ("gnome-cards-data", "bellot.svgz", "bellot"),
    ("gnome-cards-data", "berlin.svgz", "berlin"),
    ("gnome-cards-data", "dondorf.svgz", "dondorf"),
    ("gnome-cards-data", "gnomangelo.svgz", "gnomangelo"),
    ("gnome-cards-data", "guyenne-classic.svgz", "guyenne"),
    ("gnome-cards-data", "lattmann.svgz", "lattmann"),
    ("gnome-cards-data", "neoclassical.svgz", "neoclassical"),
    ("gnome-cards-data", "orell.svgz", "orell"),
    ("gnome-cards-data", "ornamental.svgz", "nicu-ornamental"),
    ("gnome-cards-data", "paris.svgz", "paris"),
    ("gnome-cards-data", "plastic.svgz", "plastic"),
    ("gnome-cards-data", "rheinland.svgz", "rheinland"),
    ("gnome-cards-data", "simplistic.svgz", "simplistic"),
    ("gnome-cards-data", "slavic_costumes.svgz", "slavic-costumes"),
    ("gnome-cards-data", "swiss-xvii.svgz", "swiss-xvii"),
    ("gnome-cards-data", "tango.svgz", "tango"),
    ("gnome-cards-data", "tarocco.svgz", "tarocco"),
    ("gnome-cards-data", "tigullio.svgz", "tigullio"),
    ("kdegames-card-data-kf5", "svg-ancient-egyptians/Ancient_Egyptians.svgz", "ancient-egyptians"),
    ("kdegames-card-data-kf5", "svg-jolly-royal/jolly-royal.svgz", "jolly-royal"),
    ("kdegames-card-data-kf5", "svg-nicu-white/white.svgz", "nicu-white"),
    ("kdegames-card-data-kf5", "svg-oxygen/oxygen.svgz", "oxygen"),
    ("kdegames-card-data-kf5", "svg-penguins/penguins.svgz", "penguins"),
    ("kdegames-card-data-kf5", "svg-standard/standard.svgz", "kde-standard"),
)
_CARD_DIRS = {"gnome-cards-data": "usr/share/aisleriot/cards", "kdegames-card-data-kf5": "usr/share/carddecks"}


def card_element(package: str, suit: str, rank: str) -> str:
    """The SVG element id of a card: aisleriot themes name it ``<suit>_<rank>``, KDE decks
    ``<rank>_<suit>``."""
    return f"{suit}_{rank}" if package == "gnome-cards-data" else f"{rank}_{suit}"


def cards(height: int = 96) -> list[tuple[str, str, str, Image.Image]]:
    """``(family, suit, rank, RGBA image)`` of the 52 cards of every deck in ``CARD_DECKS``."""
    out = []
    for package, rel, family in CARD_DECKS:
        require(package)
        path = ROOT / _CARD_DIRS[package] / rel
        if not path.exists():
            raise SourceMissingError(f"{path} not found: the card deck comes from the Debian package {package} "
                                     f"{SOURCES[package].version} (`apt-get install {package}`).")
        for suit in SUITS:
            for rank in RANKS:
                element = card_element(package, suit, rank)
                render = height
                for _ in range(3):
                    # rsvg-convert sizes some cards' canvas from a box larger than the card: the
                    # card is then drawn small inside it, and is rendered again larger
                    img = rsvg(path, height=render, element=element)
                    box = img.getchannel("A").getbbox()
                    w, h = (box[2] - box[0], box[3] - box[1]) if box else (0, 0)
                    if h == 0 or h >= 0.9 * height:
                        break
                    render = min(4000, int(math.ceil(render * height / h)))
                if h < 0.9 * height or not 0.5 <= w / h <= 0.85:
                    raise RuntimeError(f"{path}: rsvg-convert {rsvg_version()} drew {suit}_{rank} as a {img.size} "
                                       f"image with content at {box}, not a whole card: this librsvg cuts the "
                                       "deck's cards out differently (leave the deck out of CARD_DECKS)")
                out.append((family, suit, rank, img.crop(box)))
    return out


# --- chess pieces -------------------------------------------------------------------------------

PIECES = ("king", "queen", "rook", "bishop", "knight", "pawn")
_PIECE_LETTER = {"king": "k", "queen": "q", "rook": "r", "bishop": "b", "knight": "n", "pawn": "p"}
#: pychess's SVG piece sets with the 12 standard pieces (makruk and sittuyin are other games).
CHESS_SETS = ("ada", "alfonso", "alpha", "cburnett", "chessicons", "chessmonk", "freestaunton", "kilfiger",
              "kosal", "leipzig", "magnetic", "maya", "merida", "merida_new", "metaltops", "pirat", "regular")


def chess_pieces(height: int = 96) -> list[tuple[str, str, str, Image.Image]]:
    """``(set, piece, colour, RGBA image)`` for every piece of every set in ``CHESS_SETS``."""
    require("pychess")
    base = ROOT / "usr/share/pychess/pieces"
    out = []
    for name in CHESS_SETS:
        for piece in PIECES:
            for colour in ("w", "b"):
                path = base / name / f"{colour}{_PIECE_LETTER[piece]}.svg"
                if not path.exists():
                    raise SourceMissingError(f"{path} not found: pychess {SOURCES['pychess'].version} ships it "
                                             "(`apt-get install pychess`).")
                out.append((name, piece, colour, rsvg(path, height=height)))
    return out


# --- map symbols -------------------------------------------------------------------------------

def map_symbols(categories: tuple[str, ...], height: int = 64) -> list[tuple[str, str, Image.Image]]:
    """``(category, symbol name, RGBA image)`` of the OpenStreetMap Carto symbols filed under
    ``symbols/<category>/``."""
    require("openstreetmap-carto-common")
    base = ROOT / "usr/share/openstreetmap-carto-common/symbols"
    out = []
    for cat in categories:
        for f in sorted((base / cat).glob("*.svg")):
            out.append((cat, f.stem, rsvg(f, height=height)))
    return out


# --- GIMP patterns -----------------------------------------------------------------------------

def read_gimp_pattern(path: Path) -> np.ndarray:
    """A GIMP ``.pat`` pattern as an (H, W, 3) uint8 array (format: big-endian header of
    header size, version 1, width, height, bytes per pixel, magic ``GPAT``, name; then pixels)."""
    data = path.read_bytes()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a GIMP pattern header")
    header_size, version, width, height, bpp = struct.unpack(">5I", data[:20])
    if (data[20:24] != b"GPAT" or version != 1 or bpp not in (1, 2, 3, 4)
            or not (0 < width <= 4096 and 0 < height <= 4096)):
        raise ValueError(f"{path}: not a version-1 GIMP pattern (magic {data[20:24]!r}, version {version}, "
                         f"{width}x{height}x{bpp})")
    n = width * height * bpp
    pixels = np.frombuffer(data[header_size:header_size + n], dtype=np.uint8)
    if pixels.size != n:
        raise ValueError(f"{path}: {pixels.size} pixel bytes, expected {n}")
    arr = pixels.reshape(height, width, bpp)
    if bpp in (1, 2):
        arr = np.repeat(arr[..., :1], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def gimp_patterns(folders: tuple[str, ...]) -> list[tuple[str, str, np.ndarray]]:
    """``(folder, pattern name, RGB array)`` of every pattern in ``patterns/<folder>/``."""
    require("gimp-data")
    base = ROOT / "usr/share/gimp/2.0/patterns"
    return [(folder, f.stem, read_gimp_pattern(f)) for folder in folders for f in sorted((base / folder).glob("*.pat"))]


# ----------------------------------------------------------------------------------------------
# Emoji
# ----------------------------------------------------------------------------------------------

EMOJI_FONT = "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
_SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}


def emoji_list() -> list[tuple[str, str, str]]:
    """``(group, subgroup, emoji)`` of Unicode's emoji-test.txt: fully-qualified emoji of one
    code point (plus an optional variation selector U+FE0F) -- sequences (ZWJ families,
    flags, keycaps, skin tones) are left out: a plain font renderer draws them as several
    pictures."""
    path = require("unicode-data")
    out = []
    group = subgroup = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            cps, rest = line.split(";", 1)
            if rest.split("#", 1)[0].strip() != "fully-qualified":
                continue
            points = [int(c, 16) for c in cps.split()]
            core = [p for p in points if p != 0xFE0F]
            if len(core) == 1 and not _SKIN_TONES & set(points):
                out.append((group, subgroup, "".join(chr(p) for p in points)))
    return out


_EMOJI_CACHE: dict[str, Image.Image] = {}


def emoji_image(char: str) -> Image.Image:
    """The Noto colour-emoji picture of ``char`` (RGBA, cropped to its drawn pixels)."""
    if char not in _EMOJI_CACHE:
        font = ImageFont.truetype(str(require("fonts-noto-color-emoji")), 109)  # the font's one bitmap size
        im = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(im).text((10, 10), char, font=font, embedded_color=True)
        box = im.getbbox()
        if box is None:
            raise ValueError(f"the emoji font draws nothing for U+{ord(char[0]):04X}")
        _EMOJI_CACHE[char] = im.crop(box)
    return _EMOJI_CACHE[char]


# ----------------------------------------------------------------------------------------------
# Fonts
# ----------------------------------------------------------------------------------------------

NOTO_DIR = "usr/share/fonts/truetype/noto"
CULMUS_DIR = "usr/share/fonts/truetype/culmus"


def font_path(rel: str, package: str) -> Path:
    require(package)
    path = ROOT / rel
    if not path.exists():
        raise SourceMissingError(f"{path} not found: it comes from the Debian package {package} "
                                 f"{SOURCES[package].version} (`apt-get install {package}`).")
    return path


@functools.cache
def font_cmap(path: str) -> frozenset[int]:
    """The code points a font maps to a glyph."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as f:
        return frozenset(f.getBestCmap() or {})


def script_letters(first: int, last: int, fonts: list[Path]) -> list[str]:
    """The letters (Unicode category L*) of ``first..last`` that every font in ``fonts`` has."""
    maps = [font_cmap(str(f)) for f in fonts]
    return [chr(cp) for cp in range(first, last + 1)
            if unicodedata.category(chr(cp)).startswith("L") and all(cp in m for m in maps)]


def culmus_families() -> dict[str, list[Path]]:
    """Culmus Hebrew font files grouped by family (the file name before its style)."""
    base = font_path(CULMUS_DIR + "/DavidCLM-Medium.otf", "culmus").parent
    fams: dict[str, list[Path]] = {}
    for f in sorted(base.iterdir()):
        if f.suffix.lower() not in (".ttf", ".otf"):
            continue
        fam = f.stem.split("-")[0]
        fam = "Shofar" if fam.startswith("Shofar") else fam
        fams.setdefault(fam, []).append(f)
    return fams
