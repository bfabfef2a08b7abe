"""The sources :func:`fennec.data.load_sample` reads, behind one small interface.

:func:`open_split` detects the layout (ImageFolder, parquet, ``save_to_disk``, Hub id) and
returns a :class:`Split`: column metadata plus two readers (a whole column, or the values at
given row indices), so that the sampler reads labels first and images only for its sample.
See :mod:`fennec.data.sampling` for the layouts and their limits.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec import constants
from fennec.errors import (
    DatasetError,
    DatasetNotFoundError,
    DatasetSplitError,
    HubError,
    HubOfflineError,
    ModelAccessError,
    ModelNotFoundError,
)
from fennec.hub.untrusted import RejectedInput, describe_file_type, loads_json
from fennec.hub.untrusted import open_regular as _open_regular  # the dataset-error wrapper below

__all__ = ["IMAGE_EXTENSIONS", "Split", "open_regular", "open_split"]

#: File extensions an ImageFolder (or a column of image paths) may use.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pbm", ".jfif")

_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_SHARD = re.compile(r"^([A-Za-z][\w.]*?)-\d{5}-of-\d{5}\.parquet$")
_SPLIT_FILE = re.compile(r"^([A-Za-z][\w]*?)(?:-\d+)?\.parquet$")


# ---------------------------------------------------------------------------------------
# One split of one source, read column by column
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """What the sampler needs from a source: column metadata and two readers."""

    dataset: str                 # as the caller gave it, for error messages
    source: str
    split: str
    n_rows: int
    columns: tuple[str, ...]
    features: dict[str, dict]    # name -> datasets feature as a dict ({"_type": "Image"} …)
    types: dict[str, Any]        # name -> pyarrow type
    read_column: Callable[[str], list]
    read_rows: Callable[[str, np.ndarray], list]   # values at sorted row indices
    base_dir: Path | None = None  # where relative image paths are resolved
    # where image files named by rows may be: None for a local dataset (the user's own
    # files, anywhere); for a Hub dataset () (rows must carry image bytes) or, for
    # datasets.load_dataset's result, the caches it downloaded the images to
    path_roots: tuple[Path, ...] | None = None


# -- files ------------------------------------------------------------------------------------


def open_regular(path: str | os.PathLike, *, dataset: str | None, what: str = "") -> Any:
    """A binary file object for a regular file; never blocks on a FIFO or a device
    (:func:`fennec.hub.untrusted.open_regular`).

    Raises:
        DatasetError: not a regular file (the message names it and its type).
        OSError: it cannot be opened.
    """
    try:
        return _open_regular(path, what=what or "The file")
    except RejectedInput as e:
        raise DatasetError(f"{e}; fennec reads only regular files (reading it could block for "
                           "ever). Remove it or point the dataset elsewhere.", dataset=dataset) from None


def _refuse_special(path: Path, dataset: str, what: str) -> None:
    """Refuse an entry of a dataset folder that is neither a regular file nor a folder."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # a dangling link: not a file, skipped by the callers like any non-file
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DatasetError(f"{what} {path} is {describe_file_type(mode)}, not a regular file; "
                           "fennec reads only regular files (reading it could block for ever). "
                           "Remove it.", dataset=dataset)


def _pick_split(dataset: str, available: Sequence[str], split: str | None, what: str) -> str:
    names = list(available)
    if split is not None:
        if split not in names:
            raise DatasetSplitError(
                f"{what} has no split {split!r}; its splits are: {', '.join(names) or 'none'}. "
                "Pass one of them as split=.", dataset=dataset, split=split, available=tuple(names))
        return split
    if "train" in names:
        return "train"
    if len(names) == 1:
        return names[0]
    raise DatasetSplitError(
        f"{what} has no 'train' split and several others: {', '.join(names)}. Choose one with "
        "split=.", dataset=dataset, split=None, available=tuple(names))


# -- 1. ImageFolder ---------------------------------------------------------------------


def _is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def _subdirs(p: Path) -> list[Path]:
    return sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))


def _has_images(p: Path) -> bool:
    return any(_is_image_file(c) for c in p.iterdir())


#: Folder names read as splits (case-insensitive), as ``datasets``' imagefolder does; any
#: other folder under the root is a class, whose images may sit in nested folders.
SPLIT_FOLDER_NAMES = frozenset({"train", "training", "test", "testing", "validation", "valid", "val", "dev",
                                "eval"})


def _has_images_deep(p: Path) -> bool:
    return any(_is_image_file(c) for c in p.rglob("*"))


def _image_folder_splits(root: Path) -> dict[str, Path] | None:
    """``{split: folder of class folders}``, or None when ``root`` is not an ImageFolder.

    ``<root>/<split>/<class>/…`` when the root's folders are split names
    (:data:`SPLIT_FOLDER_NAMES`) holding class folders with images; otherwise
    ``<root>/<class>/…`` (one split, ``"train"``) when the root's folders hold images at any depth.
    """
    children = _subdirs(root)
    if any(_has_images(c) for c in children):
        return {"train": root}
    splits = {c.name: c for c in children
              if c.name.lower() in SPLIT_FOLDER_NAMES and any(_has_images_deep(g) for g in _subdirs(c))}
    if splits:
        return splits
    if any(_has_images_deep(c) for c in children):
        return {"train": root}
    return None


def _image_folder(dataset: str, root: Path, splits: dict[str, Path], split: str | None) -> Split:
    import pyarrow as pa

    name = _pick_split(dataset, sorted(splits), split, f"The ImageFolder {root}")
    paths, labels = [], []
    for cls in _subdirs(splits[name]):
        entries = list(cls.rglob("*"))
        for p in entries:
            _refuse_special(p, dataset, f"In the ImageFolder {root}, the entry")
        files = sorted((p for p in entries if _is_image_file(p)),
                       key=lambda p: p.relative_to(cls).as_posix())
        paths += [str(p) for p in files]
        labels += [cls.name] * len(files)
    columns = {"image": paths, "label": labels}
    return Split(
        dataset=dataset, source=str(root), split=name, n_rows=len(paths), columns=("image", "label"),
        features={"image": {"_type": "Image"}, "label": {"_type": "ClassLabel",
                                                         "names": sorted(set(labels))}},
        types={"image": pa.string(), "label": pa.string()},
        read_column=lambda c: list(columns[c]),
        read_rows=lambda c, idx: [columns[c][i] for i in idx])


# -- 2. parquet (local files or the Hub) --------------------------------------------------


def _config_and_split(rel: str) -> tuple[str | None, str]:
    """Where a parquet file sits in the Hub layout: its (config, split)."""
    parts = rel.split("/")
    name = parts[-1]
    m = _SHARD.match(name) or _SPLIT_FILE.match(name)
    from_name = m.group(1) if m else None
    if len(parts) >= 3:                      # <config>/<split>/0000.parquet (refs/convert/parquet)
        return parts[-3], parts[-2]
    if len(parts) == 2:
        if parts[0] == "data":
            return None, from_name or "train"
        if from_name is not None:            # <config>/<split>-00000-of-00001.parquet
            return parts[0], from_name
        return None, parts[0]                # <split>/0000.parquet
    return None, from_name or "train"


def _group_parquet(dataset: str, rel_paths: Sequence[str], config: str | None,
                   what: str) -> dict[str, list[str]]:
    """``{split: [relative paths]}`` for one config of a parquet layout."""
    by_config: dict[str | None, dict[str, list[str]]] = {}
    for rel in sorted(rel_paths):
        cfg, split = _config_and_split(rel)
        by_config.setdefault(cfg, {}).setdefault(split, []).append(rel)
    names = sorted(by_config, key=lambda c: (c is not None, c or ""))
    if config is not None:
        if config not in by_config:
            raise DatasetSplitError(
                f"{what} has no config {config!r}; its configs are: "
                f"{', '.join(c or '(default)' for c in names)}.", dataset=dataset, split=config,
                available=tuple(c or "default" for c in names))
        return by_config[config]
    if len(by_config) > 1:
        if None in by_config:
            return by_config[None]
        if "default" in by_config:
            return by_config["default"]
        raise DatasetSplitError(
            f"{what} has several configs: {', '.join(c or '(default)' for c in names)}. Choose one with config=.",
            dataset=dataset, split=None, available=tuple(c or "default" for c in names))
    return next(iter(by_config.values()))


def _parquet(dataset: str, source: str, files: Sequence[str], split: str,
             open_file: Callable[[str], Any], base_dir: Path | None,
             path_roots: tuple[Path, ...] | None = None) -> Split:
    """One split made of parquet files; reads by column and by row group.

    A file that is empty, corrupt or cut short is a :class:`DatasetError` naming it, whether
    the footer (here) or a column chunk (when read) is bad.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def failed(f: str, e: BaseException) -> DatasetError:
        where = f"{source}: {f}" if not os.path.isabs(f) else f
        return DatasetError(f"The parquet file {where} cannot be read ({type(e).__name__}: "
                            f"{str(e)[:200]}); it is empty, corrupt or incomplete. Replace it.",
                            dataset=dataset)

    handles = []
    for f in files:
        try:
            handles.append(pq.ParquetFile(open_file(f)))
        except (HubError, DatasetError):
            raise
        except (pa.ArrowException, OSError, ValueError) as e:
            raise failed(f, e) from e
    schema = handles[0].schema_arrow
    meta = (schema.metadata or {}).get(b"huggingface")
    try:  # the features datasets wrote; hostile or broken metadata is ignored
        features = loads_json(meta, what=f"{source}: parquet metadata")["info"]["features"] if meta else {}
        features = features if isinstance(features, dict) else {}
    except (RejectedInput, KeyError, TypeError):
        features = {}
    # global row index -> (file, row group); starts[k] = first global row of group k
    groups = [(f, g) for f, h in enumerate(handles) for g in range(h.num_row_groups)]
    sizes = [handles[f].metadata.row_group(g).num_rows for f, g in groups]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def read_column(c: str) -> list:
        out: list = []
        for f, h in zip(files, handles, strict=True):
            try:
                out += h.read(columns=[c]).column(c).to_pylist()
            except HubError:
                raise
            except (pa.ArrowException, OSError, ValueError) as e:
                raise failed(f, e) from e
        return out

    def read_rows(c: str, idx: np.ndarray) -> list:
        out: list = []
        which = np.searchsorted(starts, idx, side="right") - 1
        for k in np.unique(which):
            f, g = groups[k]
            try:
                col = handles[f].read_row_group(g, columns=[c]).column(c)
            except HubError:
                raise
            except (pa.ArrowException, OSError, ValueError) as e:
                raise failed(files[f], e) from e
            out += col.take(idx[which == k] - starts[k]).to_pylist()
        return out

    return Split(dataset=dataset, source=source, split=split, n_rows=int(starts[-1]),
                  columns=tuple(schema.names), features=features,
                  types={n: schema.field(n).type for n in schema.names},
                  read_column=read_column, read_rows=read_rows, base_dir=base_dir,
                  path_roots=path_roots)


def _local_parquet(dataset: str, path: Path, split: str | None, config: str | None) -> Split | None:
    def open_file(f: str) -> Any:
        return open_regular(f, dataset=dataset, what="The parquet file")

    if path.is_file():
        # One file is one split: named by the file when its name is a split's (test.parquet,
        # validation-00000-of-00001.parquet), else "train" (my_photos.parquet).
        _, name = _config_and_split(path.name)
        name = name if name.lower() in SPLIT_FOLDER_NAMES else "train"
        name = _pick_split(dataset, [name], split, f"The parquet file {path}")
        return _parquet(dataset, str(path), [str(path)], name, open_file, path.parent)
    rels = [p.relative_to(path).as_posix() for p in path.rglob("*.parquet")
            if not any(s.startswith(".") for s in p.relative_to(path).parts)]
    if not rels:
        return None
    by_split = _group_parquet(dataset, rels, config, f"The parquet folder {path}")
    name = _pick_split(dataset, sorted(by_split), split, f"The parquet folder {path}")
    files = [str(path / r) for r in by_split[name]]
    return _parquet(dataset, str(path), files, name, open_file, path)


# -- 3. datasets (save_to_disk, or load_dataset's result) --------------------------------


def _hf_dataset(dataset: str, source: str, ds: Any, split: str | None, what: str,
                base_dir: Path | None = None, path_roots: tuple[Path, ...] | None = None) -> Split:
    import datasets

    if isinstance(ds, (datasets.DatasetDict, dict)):
        name = _pick_split(dataset, sorted(ds), split, what)
        ds = ds[name]
    else:
        name = _pick_split(dataset, [str(ds.split) if ds.split else "train"], split, what)
    table = ds.with_format("arrow")
    schema = ds.features.arrow_schema

    def read_column(c: str) -> list:
        return table.select_columns([c])[:][c].to_pylist()

    def read_rows(c: str, idx: np.ndarray) -> list:
        return table.select_columns([c]).select(idx.tolist())[:][c].to_pylist()

    return Split(dataset=dataset, source=source, split=name, n_rows=len(ds),
                  columns=tuple(ds.column_names), features=ds.features.to_dict(),
                  types={n: schema.field(n).type for n in schema.names},
                  read_column=read_column, read_rows=read_rows, base_dir=base_dir,
                  path_roots=path_roots)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file())


def _load_saved(dataset: str, root: Path) -> Any:
    """``datasets.load_from_disk(root)``, after refusing what would hang it (a FIFO or a
    device among its files) or what it would fail on unclearly (an empty ``.arrow`` file).

    Raises:
        DatasetError: such a file (named), or a folder datasets cannot read (its error quoted).
    """
    import datasets

    for p in sorted(root.rglob("*")):
        _refuse_special(p, dataset, f"In the saved dataset {root}, the entry")
        if p.suffix == ".arrow" and p.is_file() and p.stat().st_size == 0:
            raise DatasetError(f"The saved dataset {root} has an empty data file {p} (0 bytes); "
                               "it was not written completely. Save the dataset again "
                               "(Dataset.save_to_disk).", dataset=dataset)
    try:
        return datasets.load_from_disk(str(root))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:  # ArrowInvalid is a ValueError
        raise DatasetError(f"The saved dataset {root} cannot be read ({type(e).__name__}: "
                           f"{str(e)[:300]}); a file in it is corrupt or missing. Save the "
                           "dataset again (Dataset.save_to_disk).", dataset=dataset) from e


# -- 4. the Hub -----------------------------------------------------------------------------


def _hub(dataset: str, repo_id: str, split: str | None, config: str | None,
         revision: str | None, hub: Any = None, parquet_only: bool = False) -> Split:
    if not _HUB_ID.match(repo_id):
        raise DatasetNotFoundError(f"{repo_id!r} is not a Hub dataset id ('org/name').",
                                   dataset=dataset, tried=("hub id",))
    source = f"hub:{repo_id}" + (f"/{config}" if config else "")
    from fennec.hub import HfHub

    hub = hub if hub is not None else HfHub()  # endpoint, token and offline mode from fennec.constants, now
    if hub.offline:  # a snapshot fennec downloaded before, else what datasets cached
        folder = hub.dataset_snapshot(repo_id, revision)
        if folder is not None:
            return _hub_snapshot(dataset, repo_id, source, split, config, folder)
        return _hub_datasets(dataset, repo_id, source, split, config, revision)
    try:
        sha, files = hub.dataset_files(repo_id, revision=revision)  # every read uses this commit
        parquet = _parquet_names(files)
        if not parquet and revision is None:  # the Hub's automatic parquet conversion
            try:
                sha, files = hub.dataset_files(repo_id, revision="refs/convert/parquet")
                parquet = _parquet_names(files)
            except ModelNotFoundError:
                pass
    except ModelAccessError as e:
        raise DatasetError(f"The Hub dataset {repo_id} is private or gated: {e}", dataset=dataset) from e
    except ModelNotFoundError as e:
        raise DatasetNotFoundError(
            f"{dataset!r} is not a local path, and {hub.endpoint} has no dataset {repo_id!r}"
            + (f" at revision {revision!r}" if revision else "") + " (or it is private: set "
            "HF_TOKEN).", dataset=dataset, tried=("local path", f"hub:{repo_id} on {hub.endpoint}")) from e
    if not parquet and parquet_only:
        raise DatasetError(
            f"The Hub dataset {repo_id} has no parquet files (nor the Hub's refs/convert/parquet branch), so a "
            "sample of it cannot be read over range requests; reading it would download its files whole. Name a "
            "parquet copy of it, or pass the dataset to fennec.recommend() yourself.", dataset=dataset)
    if not parquet:
        # fennec downloads every file itself, with its checks, and datasets builds the split
        # from that snapshot folder as a local folder, making no request of its own: through
        # huggingface_hub it would let the endpoint's headers name cache paths unchecked
        # (e.g. the .no_exist/<X-Repo-Commit>/ marker of each file it probes and is missing);
        # only the files datasets reads for an image dataset, within the download bounds
        wanted = {f: files[f] for f in _snapshot_names(files)}
        folder = hub.prefetch_dataset(repo_id, sha=sha, files=wanted, revision=revision)
        return _hub_snapshot(dataset, repo_id, source, split, config, folder)
    what = f"The Hub dataset {repo_id}"
    by_split = _group_parquet(dataset, parquet, config, what)
    name = _pick_split(dataset, sorted(by_split), split, what)
    # path_roots=(): a Hub dataset's rows may only carry image bytes, never name a file
    return _parquet(dataset, source, by_split[name], name,
                    lambda f: hub.open_dataset_file(repo_id, f, sha=sha), None, path_roots=())


def _parquet_names(files: Iterable[str]) -> list[str]:
    """The parquet files of a Hub listing; names that are absolute or climb (``..``) are
    dropped (they are hostile: the Hub never lists them)."""
    return [f for f in files if f.endswith(".parquet") and not f.startswith("/")
            and ".." not in f.split("/")]


#: The ``datasets`` builders whose data files fennec downloads for a Hub dataset without
#: parquet files: images (``imagefolder``: image files, ``.zip`` archives of them), tables
#: that carry or name images (csv/tsv, json/jsonl, parquet, arrow) and webdataset ``.tar``
#: shards. Audio, video, text, PDF … files are not downloaded.
_SNAPSHOT_BUILDERS = ("imagefolder", "csv", "json", "parquet", "arrow", "webdataset")
#: What ``datasets`` reads at the root of a local dataset folder besides data files: the
#: card's YAML (configs, data_files), a standalone YAML, split infos.
_SNAPSHOT_METADATA = ("README.md", ".huggingface.yaml", "dataset_infos.json")


def _snapshot_names(files: Iterable[str]) -> list[str]:
    """The files of a Hub dataset without parquet that ``datasets.load_dataset`` needs to
    build an image dataset from a snapshot folder: the root metadata (:data:`_SNAPSHOT_METADATA`)
    and the data files of :data:`_SNAPSHOT_BUILDERS` by extension (also compressed singly,
    e.g. ``train.csv.gz``), as ``datasets``' own tables map extensions to builders. The
    rest (``.gitattributes``, scripts, audio, video, documents …) is skipped."""
    from datasets import packaged_modules
    from datasets.utils.file_utils import SINGLE_FILE_COMPRESSION_EXTENSION_TO_PROTOCOL

    data = {ext.lower() for ext, (builder, _) in packaged_modules._EXTENSION_TO_MODULE.items()
            if builder in _SNAPSHOT_BUILDERS}
    data |= {ext.lower() for ext in packaged_modules._MODULE_TO_EXTENSIONS.get("imagefolder", ())}
    compressed = {"." + ext.lower() for ext in SINGLE_FILE_COMPRESSION_EXTENSION_TO_PROTOCOL}
    kept = []
    for name in files:
        base = name.rsplit("/", 1)[-1].lower()
        stem, dot, ext = base.rpartition(".")
        if dot and "." + ext in compressed:
            stem, dot, ext = stem.rpartition(".")
        if name in _SNAPSHOT_METADATA or (dot and stem and "." + ext in data):
            kept.append(name)
    return kept


def _download_caches() -> tuple[Path, ...]:
    """Where ``datasets.load_dataset`` puts the files it downloads (image rows may name them)."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE), constants.hf_hub_cache()


def _hub_snapshot(dataset: str, repo_id: str, source: str, split: str | None,
                  config: str | None, folder: Path) -> Split:
    """A Hub dataset without parquet files, from the snapshot ``folder`` fennec downloaded it
    to (:meth:`fennec.hub.HfHub.prefetch_dataset`): ``datasets.load_dataset`` reads it as a
    local folder (its README configs and data files as on the Hub) and sends no request.

    Image rows may name files only in that repository's cache folder or the ``datasets``
    cache (archives it extracts).

    Raises:
        DatasetNotFoundError: datasets finds no data files it can read in the repository.
    """
    import datasets

    try:
        loaded = datasets.load_dataset(str(folder), config,
                                       download_config=datasets.DownloadConfig(local_files_only=True))
    except FileNotFoundError as e:
        raise DatasetNotFoundError(
            f"The Hub dataset {repo_id} has no parquet files, and datasets.load_dataset finds no "
            f"data in its files (downloaded to {folder}): {type(e).__name__}: {str(e)[:300]}",
            dataset=dataset, tried=("local path", f"hub:{repo_id}")) from e
    roots = (folder.parent.parent, Path(datasets.config.HF_DATASETS_CACHE))  # <repo>/snapshots/<sha>
    return _hf_dataset(dataset, source, loaded, split, f"The Hub dataset {repo_id}", path_roots=roots)


def _hub_datasets(dataset: str, repo_id: str, source: str, split: str | None,
                  config: str | None, revision: str | None) -> Split:
    """``datasets.load_dataset`` from the ``datasets`` cache only (offline mode).

    Raises:
        HubOfflineError: the dataset is not in that cache.
    """
    import datasets

    dl = datasets.DownloadConfig(local_files_only=True, token=constants.hf_token())
    try:
        loaded = datasets.load_dataset(repo_id, config, revision=revision, download_config=dl,
                                       token=constants.hf_token())
    except (FileNotFoundError, ConnectionError) as e:
        raise HubOfflineError(
            f"{dataset!r} is not a local path, and the Hub dataset {repo_id} is not in the "
            f"datasets cache; offline mode is on (HF_HUB_OFFLINE): unset it or pass a local "
            f"folder ({type(e).__name__}: {str(e)[:200]}).", repo_id=repo_id) from e
    return _hf_dataset(dataset, source, loaded, split, f"The Hub dataset {repo_id}",
                       path_roots=_download_caches())


# -- detection ------------------------------------------------------------------------------


def open_split(dataset: str | os.PathLike, split: str | None, config: str | None,
               revision: str | None, *, hub: Any = None, parquet_only: bool = False) -> Split:
    """Detect the layout of ``dataset`` (ImageFolder, parquet, save_to_disk, Hub id, in this
    order) and open one split of it; raises fennec's dataset errors naming what was tried.
    A Hub dataset is read from ``hub`` (a :class:`fennec.hub.HfHub`; default: the
    environment's endpoint); with ``parquet_only`` one without parquet files is refused
    instead of downloaded."""
    text = os.fspath(dataset)
    if text.startswith("hub:"):
        return _hub(text, text[4:], split, config, revision, hub, parquet_only)
    path = Path(text).expanduser()
    if path.exists() and not (path.is_file() or path.is_dir()):
        _refuse_special(path, text, "The dataset")
    if path.is_file():
        if path.suffix.lower() != ".parquet":
            raise DatasetError(f"{path} is a file but not a .parquet file; fennec reads an "
                               "ImageFolder, parquet, a save_to_disk folder or a Hub id.",
                               dataset=text)
        opened = _local_parquet(text, path.resolve(), split, config)
        assert opened is not None  # None is for a folder without parquet files
        return opened
    if path.is_dir():
        root = path.resolve()
        folders = _image_folder_splits(root)
        if folders:
            return _image_folder(text, root, folders, split)
        found = _local_parquet(text, root, split, config)
        if found is not None:
            return found
        if _is_saved_dataset(root):
            return _hf_dataset(text, str(root), _load_saved(text, root), split,
                               f"The saved dataset {root}", root)
        loose = " (it holds image files but no class sub-folders)" if _has_images(root) else ""
        raise DatasetError(
            f"The folder {root} is not a dataset fennec can read{loose}. Tried: ImageFolder "
            "(<root>/[<split>/]<class>/<image>), parquet (*.parquet files), and a datasets "
            "save_to_disk folder (dataset_dict.json or state.json + dataset_info.json).",
            dataset=text)
    if _HUB_ID.match(text):
        return _hub(text, text, split, config, revision, hub, parquet_only)
    raise DatasetNotFoundError(
        f"{text!r} is neither a local path (no such file or folder: {path.absolute()}) nor a Hub "
        "dataset id ('org/name'). Tried: local ImageFolder / parquet / save_to_disk, Hub id.",
        dataset=text, tried=("local path", "hub id"))
