"""Loading a labelled image dataset and drawing a stratified, seeded sample of it.

This is the first step of ``fennec.recommend``: the sample goes through the proxy model
(the task vector) and through the candidate models (the transferability scores), so it is
balanced over classes, small, reproducible, and identified by a content fingerprint.

:func:`load_sample` accepts, and detects in this order:

1. a local folder in ImageFolder layout: ``<root>/<class>/<image>`` (one split, called
   ``"train"``) or ``<root>/<split>/<class>/<image>``, where split folders are recognised by
   their name (train, test, validation, valid, val, dev, eval, training, testing, as in
   ``datasets``' imagefolder; any other folder is a class); class names are the folder
   names, sorted; images may sit in nested folders under their class folder;
2. a local parquet file (one split: ``"train"``, unless the file is named like a split,
   ``test.parquet`` or ``validation-00000-of-00001.parquet``), or a folder of parquet files in
   the Hub layout (``data/<split>-00000-of-00001.parquet``, ``<split>.parquet``,
   ``<config>/<split>-*.parquet`` or ``<config>/<split>/*.parquet``);
3. a folder written by ``datasets``' ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``);
4. otherwise a Hub dataset id (``org/name``, or ``hub:org/name`` to skip the local checks).

Only what the sample needs is read. For parquet (local or on the Hub) the label column is
read first, the sample is drawn from the labels, and then the image column is read only
from the row groups that hold sampled rows, and only the sampled images are decoded. On the
Hub the files are read over HTTP range requests (``HfFileSystem``, one request per footer
and column chunk), so nothing is downloaded whole. The granularity is the row group: a
sample that touches every row group fetches the whole image column (measured: 50 of 4000
images in 20 row groups fetched 11.1 of 13.0 MB; a sample from a dataset with many more row
groups than sampled rows fetches a correspondingly small part). A Hub dataset without
parquet files (nor the Hub's ``refs/convert/parquet`` branch) falls back to
``datasets.load_dataset``: fennec first downloads every file of the repository into the
Hugging Face cache (with the checks of :mod:`fennec.hub`), then ``datasets`` builds the
split from that snapshot folder read as a local folder (it sends no request itself).
The endpoint, token and offline mode come from :mod:`fennec.constants` at call time and
are passed explicitly (through :class:`fennec.hub.HfHub`, with its retries). In offline
mode a snapshot fennec downloaded before is read, else ``datasets``' own cache. Hub reads
are pinned to the commit sha listed first.

Limits: splits and configs of a parquet layout are read from file and folder names (the
Hub's conventions), not from the README's ``configs:`` block; every parquet shard's footer
is read (one or two small requests per shard on the Hub).

Hub input is untrusted: a Hub dataset's rows may only carry image bytes. A row that names
a file (``{"bytes": None, "path": ...}`` or a column of paths), absolute or relative, is
refused, never opened (a :class:`~fennec.errors.DatasetWarning` counts them; they count as
skipped); for the ``load_dataset`` fallback, only files in that repository's snapshot and
the ``datasets`` cache (archives it extracted) are opened. Every file fennec opens for a dataset (images, parquet files,
a ``save_to_disk`` folder's files) must be a regular file: a FIFO or a device is a
:class:`~fennec.errors.DatasetError` naming it, as is an empty or corrupt parquet or
``.arrow`` file.

Sampling: classes with fewer than ``min_per_class`` labelled rows are dropped (with a
:class:`~fennec.errors.DatasetWarning` naming them). Every kept class gets the same quota,
``per_class`` or else ``max_samples // n_classes``; a class with fewer rows gives all of
them, and the budget it leaves is *not* given to other classes, so the sample stays
balanced. Within a class, rows are visited in a seeded random order (``numpy``
``default_rng(seed)``, classes in order); an image that cannot be decoded is skipped,
counted, and replaced by the class's next row. The sample is ordered by class, then by row
index in the split.

Memory: images are decoded one at a time and kept downscaled (aspect ratio kept) to at most
``image_side`` pixels on the shorter side and twice that on the longer (default
:data:`DEFAULT_IMAGE_SIDE` = 512, at most :data:`MAX_IMAGE_SIDE` = 1024); JPEGs are decoded
at reduced DCT scale (``PIL.Image.draft``). An image whose header declares more than
:data:`MAX_IMAGE_PIXELS` pixels is refused with an error naming it (a decompression bomb).
benchmark/sample_memory.py measures the peak memory on 12-megapixel photos.

Example:
    >>> sample = load_sample("zoo/datasets/t-digits-fewshot", max_samples=50, seed=0)
    >>> sample.n_classes, len(sample), sample.class_counts().tolist()
    (10, 50, [5, 5, 5, 5, 5, 5, 5, 5, 5, 5])
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec import _progress
from fennec.data.sources import IMAGE_EXTENSIONS, Split, open_regular, open_split
from fennec.errors import (
    DatasetColumnError,
    DatasetError,
    DatasetWarning,
    InvalidInputError,
)
from fennec.hub.records import MAX_INPUT_SIDE
from fennec.validation import check_int, check_positive_int

__all__ = ["DEFAULT_IMAGE_SIDE", "IMAGE_EXTENSIONS", "LABEL_COLUMN_NAMES", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE",
           "DatasetSample", "load_sample"]

#: Column names taken for the label when no column has the ``ClassLabel`` feature.
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category")

#: A sample keeps each image with its shorter side at most this many pixels (and its longer
#: side at most twice that), aspect ratio kept, never enlarged. 512 covers the resize size
#: of the usual classifiers (224 / 0.875 = 256, 384 / 1.0 = 384, 448 / 0.875 = 512), so
#: their preprocessing sees the same content as from the original; a model asking for more
#: gets the stored image enlarged. 1000 sampled 12-megapixel photos take ~1 GB instead of ~36 GB.
DEFAULT_IMAGE_SIDE = 512
#: The largest ``image_side`` :func:`load_sample` accepts (the same bound as a model's input,
#: :data:`fennec.hub.records.MAX_INPUT_SIDE`).
MAX_IMAGE_SIDE = MAX_INPUT_SIDE
#: Decompression-bomb bound: an image whose header declares more pixels (128 Mi, e.g.
#: 13000 x 10000) is refused with a :class:`~fennec.errors.DatasetError` naming it, before
#: any pixel is decoded. PIL's own ``Image.MAX_IMAGE_PIXELS`` (a warning at 89 M pixels, an
#: error at 179 M) is left as it is.
MAX_IMAGE_PIXELS = 2**27


# ---------------------------------------------------------------------------------------
# The sample
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSample:
    """A stratified sample of a labelled image dataset (compare samples by ``fingerprint``).

    Attributes:
        images: the sampled images as RGB ``PIL.Image.Image``, in sample order, downscaled to
            at most ``image_side`` px on the shorter side (``2 * image_side`` on the longer).
        labels: ``(N,)`` int64 class indices in ``[0, n_classes)``, same order.
        class_names: the name of each class index (dropped classes are not in it).
        source: what was loaded: a resolved local path, or ``"hub:org/name[/config]"``.
        split: the split sampled.
        seed: the sampling seed.
        fingerprint: sha256 (hex) of the class names, then of every image's size, RGB pixels
            and label, in order, as stored (after the downscaling to ``image_side``): the same
            stored pixels and labels give the same fingerprint whatever the file format or
            source, and features (cached by fingerprint) are a function of exactly those pixels.
        n_available: rows in the split (None if unknown).
        n_skipped: images that could not be decoded and were skipped (replaced when the
            class had more rows).
        image_column: the column the images came from.
        label_column: the column the labels came from.
        image_side: the bound the images were downscaled to (see ``images``).
    """

    images: list
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    split: str
    seed: int
    fingerprint: str
    n_available: int | None
    n_skipped: int
    image_column: str
    label_column: str
    image_side: int = DEFAULT_IMAGE_SIDE

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> np.ndarray:
        """``(n_classes,)`` int64: how many sampled images each class has."""
        return np.bincount(self.labels, minlength=self.n_classes).astype(np.int64)

    def summary(self) -> str:
        """One line: source, split, size, classes, skipped images and fingerprint."""
        counts = self.class_counts()
        of = f" of {self.n_available} rows" if self.n_available is not None else ""
        return (f"{self.source} [{self.split}]: {len(self)} images{of}, {self.n_classes} classes "
                f"({counts.min()}-{counts.max()} per class), {self.n_skipped} skipped, seed "
                f"{self.seed}, fingerprint {self.fingerprint[:12]}")



# ---------------------------------------------------------------------------------------
# Columns and labels
# ---------------------------------------------------------------------------------------


def _image_like(s: Split, name: str) -> bool:
    import pyarrow as pa

    if s.features.get(name, {}).get("_type") == "Image":
        return True
    t = s.types[name]
    if pa.types.is_struct(t):
        return t.get_field_index("bytes") >= 0
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    if pa.types.is_string(t) or pa.types.is_large_string(t):   # a column of image paths?
        if s.path_roots == ():  # a Hub dataset: its rows may not name files
            return False
        head = [v for v in s.read_rows(name, np.arange(min(s.n_rows, 5))) if v]
        return bool(head) and all(str(v).lower().endswith(IMAGE_EXTENSIONS) for v in head)
    return False


def _label_like(s: Split, name: str) -> bool:
    import pyarrow as pa

    if name.lower() not in LABEL_COLUMN_NAMES:
        return False
    t = s.types[name]
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)


def _columns(s: Split, image_column: str | None, label_column: str | None) -> tuple[str, str]:
    found = ", ".join(f"{c} ({s.features.get(c, {}).get('_type') or s.types[c]})" for c in s.columns)

    def fail(msg: str) -> DatasetColumnError:
        return DatasetColumnError(f"{s.source} [{s.split}]: {msg} Columns found: {found}.",
                                  dataset=s.dataset, columns=s.columns)

    for given, arg in ((image_column, "image_column"), (label_column, "label_column")):
        if given is not None and given not in s.columns:
            raise fail(f"{arg}={given!r} is not a column.")
    if image_column is None:
        cands = [c for c in s.columns if c != label_column and _image_like(s, c)]
        if len(cands) != 1:
            raise fail(("No image column (an Image feature, image bytes or image paths)."
                        if not cands else f"Several image columns: {', '.join(cands)}.")
                       + " Name it with image_column=.")
        image_column = cands[0]
    if label_column is None:
        rest = [c for c in s.columns if c != image_column]
        cands = [c for c in rest if s.features.get(c, {}).get("_type") == "ClassLabel"]
        cands = cands or [c for c in rest if _label_like(s, c)]
        if len(cands) != 1:
            raise fail((f"No label column (a ClassLabel, or one named {'/'.join(LABEL_COLUMN_NAMES)} "
                        "with int or string values)." if not cands
                        else f"Several label columns: {', '.join(cands)}.")
                       + " Name it with label_column=.")
        label_column = cands[0]
    if image_column == label_column:
        raise fail(f"image_column and label_column are both {image_column!r}.")
    return image_column, label_column


def _encode_labels(s: Split, column: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and ``(n_rows,)`` int64 codes; -1 marks a row without a label."""
    values = s.read_column(column)
    feature = s.features.get(column, {})
    missing = [v is None or (isinstance(v, (int, np.integer)) and v < 0) for v in values]
    present = [v for v, m in zip(values, missing, strict=True) if not m]
    if not present:
        raise DatasetError(f"{s.source} [{s.split}]: the label column {column!r} has no labels "
                           f"({len(values)} rows, all empty or -1). Unlabelled splits (often "
                           "'test' on the Hub) cannot be used: pass another split=.",
                           dataset=s.dataset)
    types = {type(v) for v in present}
    if feature.get("_type") == "ClassLabel" and feature.get("names") and types <= {int}:
        names = [str(n) for n in feature["names"]]
        codes = np.array([-1 if m else v for v, m in zip(values, missing, strict=True)], dtype=np.int64)
        if codes.max() >= len(names):
            raise DatasetError(f"{s.source}: label {codes.max()} is out of range for the "
                               f"{len(names)} ClassLabel names of {column!r}.", dataset=s.dataset)
        return tuple(names), codes
    if types <= {int}:
        uniq = sorted(set(present))
        names = [str(u) for u in uniq]
    elif types <= {str}:
        uniq = sorted(set(present))
        names = list(uniq)
    else:
        raise DatasetError(f"{s.source}: the label column {column!r} mixes value types "
                           f"({', '.join(sorted(t.__name__ for t in types))}); labels must be all "
                           "int or all str.", dataset=s.dataset)
    index = {u: i for i, u in enumerate(uniq)}
    codes = np.array([-1 if m else index[v] for v, m in zip(values, missing, strict=True)], dtype=np.int64)
    return tuple(names), codes


# ---------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------


def _to_rgb(img: Any) -> Any:
    """Any PIL mode (1, L, LA, P, RGBA, CMYK, I;16, I, F …) as an 8-bit RGB image."""
    from PIL import Image

    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0                    # float images in [0, 1]
        elif img.mode != "F" and a.size and a.max() > 255:
            a = a / 257.0                    # 16-bit range -> 8-bit
        img = Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")            # avoids PIL's palette-transparency warning
    return img if img.mode == "RGB" else img.convert("RGB")


class _RefusedPath(Exception):
    """A row of a Hub dataset named a file instead of carrying image bytes (``args[0]``)."""


def _allowed(p: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``p`` (symlinks resolved) lies in one of ``roots`` (resolved too)."""
    real = Path(os.path.realpath(p))
    return any(Path(os.path.realpath(r)) in real.parents for r in roots)


def _bounded_size(width: int, height: int, image_side: int) -> tuple[int, int]:
    """The size an image of ``width`` x ``height`` is kept at in a sample: aspect ratio kept,
    never enlarged, shorter side at most ``image_side`` and longer side at most
    ``2 * image_side`` (each side at least 1 px)."""
    scale = min(1.0, image_side / min(width, height), 2 * image_side / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


class _DecompressionBomb(Exception):
    """An image whose header declares more than :data:`MAX_IMAGE_PIXELS` pixels."""


def _bounded_rgb(img: Any, image_side: int) -> Any:
    """An opened (not yet decoded) PIL image, decoded as RGB at most :func:`_bounded_size`.

    The pixel count in the header is checked before any pixel is decoded; a JPEG is decoded
    at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the bounded size
    (``Image.draft``), so a 12-megapixel photo never exists in memory at full size.

    Raises:
        _DecompressionBomb: the header declares more than :data:`MAX_IMAGE_PIXELS` pixels.
    """
    from PIL import Image

    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise _DecompressionBomb(f"{width}x{height} = {width * height:,}")
    target = _bounded_size(width, height, image_side)
    if target != (width, height) and img.format == "JPEG":
        img.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 scale, still >= target
    img.load()
    if img.mode in ("1", "P", "PA"):  # palette/bilevel: resample colours, not palette indices
        img = _to_rgb(img)
    if img.size != target:
        img = img.resize(target, Image.Resampling.LANCZOS)
    return _to_rgb(img)


def _decode(value: Any, base_dir: Path | None, path_roots: tuple[Path, ...] | None = None,
            *, dataset: str | None = None, image_side: int = DEFAULT_IMAGE_SIDE) -> Any:
    """An RGB PIL image from bytes, a path, a {"bytes", "path"} dict or a PIL image, within
    :func:`_bounded_size` (:func:`_bounded_rgb`); None if it cannot be decoded.

    A path is opened only if ``path_roots`` is None (a local dataset) or it lies in one of
    them; otherwise :class:`_RefusedPath` is raised. A path that is not a regular file (a
    FIFO, a device) raises :class:`DatasetError` (reading it could block for ever). An image
    declaring more than :data:`MAX_IMAGE_PIXELS` pixels raises :class:`_DecompressionBomb`.
    """
    from PIL import Image

    try:
        if isinstance(value, Image.Image):
            img = value
        else:
            data, path = value, None
            if isinstance(value, dict):
                data, path = value.get("bytes"), value.get("path")
            elif isinstance(value, (str, os.PathLike)):
                data, path = None, value
            if data:
                img = Image.open(io.BytesIO(data))
            elif path:
                p = Path(path)
                if path_roots is not None and not (p.is_absolute() and _allowed(p, path_roots)):
                    raise _RefusedPath(str(path))  # a Hub dataset naming a file
                if not p.is_absolute():      # never resolved against the working directory
                    if base_dir is None:
                        return None
                    p = base_dir / p
                with open_regular(p, dataset=dataset, what="The image file") as fh:
                    return _bounded_rgb(Image.open(fh), image_side)
            else:
                return None
        return _bounded_rgb(img, image_side)
    except Image.DecompressionBombError as e:  # PIL's own limit (2 x its MAX_IMAGE_PIXELS), met while opening
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise _DecompressionBomb(f"{int(found.group(1)):,}" if found else "too many") from None
    except (OSError, ValueError, SyntaxError) as e:
        if isinstance(e, DatasetError):      # a FIFO or device: a clear error, not a skip
            raise
        return None


def _image_name(value: Any, row: int, root: Path) -> str:
    """How a message names an image: its path (relative to the dataset's folder when under it,
    else its file name) when it has one, else its row."""
    path = value.get("path") if isinstance(value, dict) else value if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        return f"row {row}"
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name


def _named(names: Sequence[str], limit: int = 5, width: int = 80) -> str:
    """``a.png, b.png, …`` (the first ``limit`` names, each cut to ``width`` characters, and an
    ellipsis when there are more): a dataset's names never make a message grow without bound."""
    shown = [n if len(n) <= width else f"{n[:width - 1]}…" for n in names[:limit]]
    return ", ".join(shown) + (", …" if len(names) > limit else "")


def _fingerprint(images: Sequence[Any], labels: np.ndarray, class_names: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps(list(class_names)).encode())
    for img, y in zip(images, labels, strict=True):
        h.update(np.array([img.width, img.height, y], dtype=np.int64).tobytes())
        h.update(img.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------


def _where(value: Any, row: int, column: str) -> str:
    """The image's file when it has one, else its row and column, for error messages."""
    path = value.get("path") if isinstance(value, dict) else value if isinstance(value, (str, os.PathLike)) else None
    where = f"row {row} of column {column!r}"
    return f"the image {os.fspath(path)!r} ({where})" if path else f"the image at {where}"


def check_sampling(*, max_samples: int | None = None, per_class: int | None = None, min_per_class: int = 1,
                   seed: int = 0) -> None:
    """The sampling arguments of :func:`load_sample`, checked (callers check them before other work).

    Raises:
        InvalidInputError: a seed that is not an int >= 0, a size that is not an int >= 1, or
            ``per_class`` below ``min_per_class``.
    """
    check_int(seed, "seed", minimum=0, hint="the sample must be reproducible")
    for name, v in (("max_samples", max_samples), ("per_class", per_class)):
        if v is not None:
            check_positive_int(v, name, hint="or None: no limit")
    check_positive_int(min_per_class, "min_per_class")
    if per_class is not None and per_class < min_per_class:
        raise InvalidInputError(f"per_class={per_class} is below min_per_class={min_per_class}: "
                                "every class would be dropped. Raise per_class or lower "
                                "min_per_class.")


def _drop_warning(s: Split, names: Sequence[str], counts: Sequence[int], need: int, why: str) -> None:
    listed = ", ".join(f"{n!r} ({c})" for n, c in list(zip(names, counts, strict=True))[:20])
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    warnings.warn(f"{s.source} [{s.split}]: dropped {len(names)} class(es) with fewer than "
                  f"{need} {why}: {listed}{more}.", DatasetWarning, stacklevel=3)


def load_sample(dataset: str | os.PathLike, *, split: str | None = None, config: str | None = None,
                image_column: str | None = None, label_column: str | None = None,
                max_samples: int | None = 2000, per_class: int | None = None,
                min_per_class: int = 2, seed: int = 0, revision: str | None = None,
                image_side: int = DEFAULT_IMAGE_SIDE, progress: bool = False, hub: Any = None,
                parquet_only: bool = False) -> DatasetSample:
    """Load a labelled image dataset and draw a stratified, seeded sample of it.

    Args:
        dataset: a local ImageFolder, parquet file or folder, ``save_to_disk`` folder, or a
            Hub dataset id (``org/name``; ``hub:org/name`` skips the local checks).
        split: the split to sample; default ``"train"`` if present, else the only split.
        config: the dataset config (Hub datasets, parquet folders with config folders).
        image_column: the image column; detected when None (an ``Image`` feature, image
            bytes, ``{"bytes", "path"}`` structs or image paths).
        label_column: the label column; detected when None (a ``ClassLabel``, else a column
            named label/labels/class/target/category with int or str values; str labels
            become sorted class names).
        max_samples: the sample budget; each class gets ``max_samples // n_classes``. None
            (with ``per_class`` None) takes every row.
        per_class: the quota of each class; overrides ``max_samples``.
        min_per_class: classes with fewer labelled rows (or, after decoding, fewer
            readable images) are dropped with a :class:`DatasetWarning`.
        seed: the sampling seed.
        revision: the Hub revision (branch, tag or commit).
        image_side: each sampled image is kept with its shorter side at most this many
            pixels and its longer side at most twice that (aspect ratio kept, never
            enlarged; JPEGs are decoded at reduced scale); 1 to :data:`MAX_IMAGE_SIDE`.
            The default, :data:`DEFAULT_IMAGE_SIDE`, covers models with inputs up to 448 px.
        progress: report decoding on stderr (:mod:`fennec._progress`: a bar on a terminal, a line in a log).
        hub: where a Hub dataset id is read from (a :class:`fennec.hub.HfHub`); default: the
            environment's endpoint (``HF_ENDPOINT``, ``HF_TOKEN``, offline mode).
        parquet_only: refuse a Hub dataset without parquet files (:class:`DatasetError`)
            instead of downloading its files: only range requests are made.

    Returns:
        A :class:`DatasetSample`; ``labels`` index ``class_names``, which excludes dropped classes.

    Raises:
        DatasetNotFoundError: not a local path and not a (reachable) Hub dataset.
        DatasetSplitError: no such split or config (``available`` lists them).
        DatasetColumnError: no, or several, image/label columns (``columns`` lists them).
        DatasetError: no labels, fewer than two usable classes, no readable image, a
            folder in no known layout, or a sampled image declaring more than
            :data:`MAX_IMAGE_PIXELS` pixels (named in the message).
        HubUnavailableError, HubOfflineError: the Hub could not be reached / offline mode.
        InvalidInputError: bad ``max_samples`` / ``per_class`` / ``min_per_class`` / ``seed`` /
            ``image_side``.

    Example:
        >>> s = load_sample("zoo/datasets/t-digits", split="validation", per_class=3, seed=1)
        >>> len(s), s.n_classes, s.labels[:4].tolist(), s.split
        (30, 10, [0, 0, 0, 1], 'validation')
        >>> s.summary()  # doctest: +ELLIPSIS
        '.../t-digits [validation]: 30 images of 297 rows, 10 classes (3-3 per class), 0 skipped, ...'
    """
    check_sampling(max_samples=max_samples, per_class=per_class, min_per_class=min_per_class, seed=seed)
    check_int(image_side, "image_side", minimum=1, maximum=MAX_IMAGE_SIDE,
              hint=f"pixels on an image's shorter side in the sample; the default is {DEFAULT_IMAGE_SIDE}")
    s = open_split(dataset, split, config, revision, hub=hub, parquet_only=parquet_only)
    image_column, label_column = _columns(s, image_column, label_column)
    names, codes = _encode_labels(s, label_column)
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    small = np.flatnonzero(counts < min_per_class)
    if small.size:
        _drop_warning(s, [names[c] for c in small], counts[small].tolist(), min_per_class,
                      "labelled rows")
    kept = np.flatnonzero(counts >= min_per_class)
    if kept.size < 2:
        raise DatasetError(f"{s.source} [{s.split}]: {kept.size} class(es) with at least "
                           f"{min_per_class} labelled rows (of {len(names)} classes); fennec needs "
                           "at least 2. Check label_column= and split=, or lower min_per_class=.",
                           dataset=s.dataset)
    if per_class is not None:
        quota = per_class
    elif max_samples is not None:
        quota = max_samples // kept.size
        if quota < min_per_class:
            raise InvalidInputError(
                f"max_samples={max_samples} gives {quota} image(s) to each of {kept.size} classes, "
                f"below min_per_class={min_per_class}: raise max_samples= to at least "
                f"{min_per_class * kept.size} or lower min_per_class=.")
    else:
        quota = int(counts.max())

    from PIL.Image import DecompressionBombWarning

    rng = np.random.default_rng(seed)
    order = {int(c): rng.permutation(np.flatnonzero(codes == c)) for c in kept}
    want = {c: min(quota, len(o)) for c, o in order.items()}
    taken: dict[int, list[tuple[int, Any]]] = {c: [] for c in order}
    pos = dict.fromkeys(order, 0)
    n_skipped = 0
    refused: list[str] = []  # file paths named by rows of a Hub dataset
    skipped: list[str] = []  # images that could not be decoded
    decode_warnings: dict[tuple[type, str], list[str]] = {}  # (category, message) -> images
    bar = _progress.bar(total=sum(want.values()), desc="decoding images", unit="images", enabled=progress)
    try:
        while True:  # read the rows still wanted; replace undecodable ones from the same class
            batch = []
            for c, o in order.items():
                nxt = o[pos[c]:pos[c] + want[c] - len(taken[c])]
                pos[c] += len(nxt)
                batch += [(int(i), c) for i in nxt]
            if not batch:
                break
            batch.sort()
            rows = s.read_rows(image_column, np.array([i for i, _ in batch], dtype=np.int64))
            for (i, c), value in zip(batch, rows, strict=True):
                refusal = False
                with warnings.catch_warnings(record=True) as caught:  # PIL warns per image: collected
                    warnings.simplefilter("always")
                    warnings.simplefilter("ignore", DecompressionBombWarning)  # fennec's bound replaces it
                    try:
                        img = _decode(value, s.base_dir, s.path_roots, dataset=s.dataset, image_side=image_side)
                    except _RefusedPath as e:
                        refused.append(e.args[0])
                        img, refusal = None, True
                    except _DecompressionBomb as e:
                        raise DatasetError(
                            f"{s.source} [{s.split}]: {_where(value, i, image_column)} declares {e} pixels, "
                            f"more than fennec decodes (MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,}): a decompression "
                            "bomb, or a huge scan. Remove that image from the dataset, or downscale it below "
                            "the bound.", dataset=s.dataset) from None
                for w in caught:
                    key = (w.category, str(w.message).splitlines()[0][:200] if str(w.message) else "")
                    if key in decode_warnings or len(decode_warnings) < 5:
                        decode_warnings.setdefault(key, []).append(_image_name(value, i, Path(s.source)))
                if img is None:
                    n_skipped += 1
                    if not refusal:
                        skipped.append(_image_name(value, i, Path(s.source)))
                    continue
                taken[c].append((i, img))
                bar.update(1)
    finally:
        bar.close()
    for (category, message), which in decode_warnings.items():
        warnings.warn(f"{s.source} [{s.split}]: {len(which)} image(s) warned while decoding "
                      f"({category.__name__}: {message}): {_named(which)}", DatasetWarning, stacklevel=2)
    if refused:
        warnings.warn(f"{s.source} [{s.split}]: refused {len(refused)} row(s) that name a file "
                      f"(e.g. {refused[0][:200]!r}) instead of carrying image bytes: fennec never "
                      "opens files named by a Hub dataset. They count as skipped.",
                      DatasetWarning, stacklevel=2)
    if skipped:
        warnings.warn(f"{s.source} [{s.split}]: skipped {len(skipped)} image(s) that could not be "
                      f"decoded (column {image_column!r}): {_named(skipped)}", DatasetWarning, stacklevel=2)
    if not any(taken.values()):
        raise DatasetError(f"{s.source} [{s.split}]: none of the {n_skipped} images tried in "
                           f"column {image_column!r} could be decoded.", dataset=s.dataset)
    short = [c for c in taken if len(taken[c]) < min_per_class]
    if short:
        _drop_warning(s, [names[c] for c in short], [len(taken[c]) for c in short],
                      min_per_class, "readable images")
    final = [c for c in taken if len(taken[c]) >= min_per_class]
    if len(final) < 2:
        raise DatasetError(f"{s.source} [{s.split}]: only {len(final)} class(es) kept at least "
                           f"{min_per_class} readable images; fennec needs at least 2.",
                           dataset=s.dataset)
    images, labels = [], []
    for new, c in enumerate(final):
        for _, img in sorted(taken[c], key=lambda t: t[0]):
            images.append(img)
            labels.append(new)
    class_names = tuple(names[c] for c in final)
    y = np.asarray(labels, dtype=np.int64)
    return DatasetSample(images=images, labels=y, class_names=class_names, source=s.source,
                         split=s.split, seed=int(seed), fingerprint=_fingerprint(images, y, class_names),
                         n_available=s.n_rows, n_skipped=n_skipped, image_column=image_column,
                         label_column=label_column, image_side=int(image_side))
