"""Captioned images from Hugging Face datasets: `data.path=hf:NAME[:SPLIT]`, or a local copy of one.

Three kinds of `data.path` are read through the `datasets` library:
  - `hf:NAME` or `hf:NAME:SPLIT` (default split: train): `datasets.load_dataset(NAME, split=SPLIT)`,
    e.g. hf:lambdalabs/naruto-blip-captions; NAME may also be a local folder that load_dataset reads;
  - a folder written by `Dataset.save_to_disk` (it holds state.json or dataset_dict.json);
  - a parquet file, or a folder of them, with a column of images (encoded bytes, as `datasets` writes them).

Each row has an image column (a `datasets.Image`, or encoded bytes) and a caption column (text),
chosen by `data.image_column` / `data.caption_column`, or found when there is only one of a kind.
The images are decoded and fitted once, batch by batch, into the same memory-mapped uint8 cache as
captions.py and folders.py make (image_files.py; an interrupted fill continues), and the captions are
embedded once, into its embeddings cache. The caches live in the local folder, or for a dataset from the Hub in
~/.cache/denoiser/huggingface/NAME-SPLIT (XDG_CACHE_HOME is honoured).
"""

from __future__ import annotations

import glob
import io
import os
import re

import numpy as np

from denoiser.data.cache import fingerprint
from denoiser.data.captions import CaptionList, caption_embeddings
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.encoders import DEFAULT_ENCODER
from denoiser.data.image_files import fill_image_cache, readable_rows
from denoiser.utils.images import fit_image, load_image

PREFIX = "hf:"
CAPTION_NAMES = ("caption", "text", "prompt", "captions", "sentence")
SAVED_MARKERS = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes


# ================================================================================== which paths
def is_huggingface_source(path) -> bool:
    """Whether `data.path` is a Hugging Face dataset: hf:NAME, a `save_to_disk` folder or a parquet folder of images."""
    if not path:
        return False
    path = os.fspath(path)
    if path.startswith(PREFIX):
        return True
    return (os.path.isdir(path) and _is_saved(path)) or bool(_image_parquet_files(path))


def _is_saved(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, marker)) for marker in SAVED_MARKERS)


def _image_parquet_files(path: str) -> list[str]:
    """A parquet file, or those at the top of a folder, if they hold a column of image bytes (img2dataset's do not)."""
    files = sorted(glob.glob(os.path.join(path, "*.parquet"))) if os.path.isdir(path) else [path]
    files = [file for file in files if file.lower().endswith(".parquet") and os.path.isfile(file)]
    if not files:
        return []
    import pyarrow
    import pyarrow.parquet

    def holds_bytes(kind) -> bool:
        if pyarrow.types.is_struct(kind):
            return any(kind.field(index).name == "bytes" for index in range(kind.num_fields))
        return pyarrow.types.is_binary(kind) or pyarrow.types.is_large_binary(kind)

    schema = pyarrow.parquet.read_schema(files[0])
    return files if any(holds_bytes(item.type) for item in schema) else []


def split_name(path: str) -> tuple[str, str]:
    """`hf:NAME:SPLIT` -> (NAME, SPLIT); the split defaults to train."""
    name = path[len(PREFIX) :] if path.startswith(PREFIX) else path
    match = re.fullmatch(r"(.+):([\w\[\]:%+-]+)", name)
    if match and not os.path.exists(name):
        return match.group(1), match.group(2)
    return name, "train"


# ================================================================================== loading
def open_dataset(path: str):
    """The `datasets.Dataset` that `path` names, and where our caches go (a folder, or a file to put them beside)."""
    try:
        import datasets
    except ImportError as error:
        raise DataError(f"data.path={path} needs the datasets library ({error}): pip install -e '.[hf]'") from error
    name, split = split_name(path)
    try:
        if os.path.isdir(name) and _is_saved(name):
            dataset = datasets.load_from_disk(name)
        elif _image_parquet_files(name):
            dataset = datasets.load_dataset("parquet", data_files=_image_parquet_files(name), split=split)
        else:
            dataset = datasets.load_dataset(name, split=split)
    except Exception as error:  # no network, no such dataset or split, a damaged folder...
        raise DataError(f"Cannot load the Hugging Face dataset {name!r} (split {split}): {error}") from error
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise DataError(f"{name} has no split {split!r}; its splits are {list(dataset)}: use hf:{name}:SPLIT.")
        dataset = dataset[split]
    if os.path.exists(name):  # our caches go in a local copy's folder, or beside its file (image_files.cache_path)
        return dataset, name
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return dataset, os.path.join(cache_home, "denoiser", "huggingface", re.sub(r"[^\w.-]+", "-", f"{name}-{split}"))


def pick_columns(dataset, image_column: str | None, caption_column: str | None) -> tuple[str, str]:
    """The image and caption columns: the ones given, or the only column of each kind."""
    import datasets

    features = dataset.features
    columns = list(features)

    def is_image(feature) -> bool:
        if isinstance(feature, datasets.Image):
            return True
        if isinstance(feature, dict):  # {"bytes": ..., "path": ...} as parquet stores an image
            return "bytes" in feature
        return isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary")

    def is_text(feature) -> bool:
        return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")

    images = [column for column in columns if is_image(features[column])]
    texts = [column for column in columns if is_text(features[column])]
    if len(texts) > 1:
        named = [column for column in texts if column.lower() in CAPTION_NAMES]
        texts = named if len(named) == 1 else texts
    return (
        _chosen(image_column, images, columns, "images", "data.image_column"),
        _chosen(caption_column, texts, columns, "captions", "data.caption_column"),
    )


def _chosen(given: str | None, candidates: list[str], columns: list[str], what: str, setting: str) -> str:
    if given:
        if given not in columns:
            raise DataError(f"The dataset has no column {given!r} ({setting}); its columns are {columns}.")
        return given
    if len(candidates) != 1:
        problem = f"several columns of {what} {candidates}" if candidates else f"no column of {what}"
        raise DataError(f"The dataset has {problem}; choose one with {setting}. Its columns are {columns}.")
    return candidates[0]


def _decode(value, size: int, channels: int) -> np.ndarray:
    """One image cell (a PIL image, encoded bytes, or {"bytes", "path"}) fitted to (size, size, channels)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return load_image(io.BytesIO(value), size, channels)
    if isinstance(value, str):
        return load_image(value, size, channels)
    if value is None:
        raise ValueError("no image")
    return fit_image(value, size, channels)  # a PIL image


class _ColumnSlices:
    """One column of a `datasets.Dataset`, read a slice of rows at a time (the whole column may not fit in memory)."""

    def __init__(self, dataset, column: str):
        self.dataset, self.column = dataset, column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, rows: slice) -> list:
        return self.dataset[rows][self.column]


def image_column_cache(dataset, column: str, folder: str, size: int, channels: int, key: dict, progress: bool = True):
    """The dataset's images fitted to `size`, filled batch by batch into a uint8 `.npy` cache in `folder`."""
    import datasets

    images = dataset.select_columns([column])
    if isinstance(images.features[column], datasets.Image):
        images = images.cast_column(column, datasets.Image(decode=False))  # we decode, in threads

    def read(value):
        try:
            return _decode(value, size, channels)
        except Exception as error:  # PIL raises OSError, ValueError, SyntaxError... for damaged images
            return f"{error}"

    return fill_image_cache(folder, _ColumnSlices(images, column), read, size, channels, key, progress)


def load_huggingface_dataset(
    path,
    *,
    encoder=DEFAULT_ENCODER,
    image_size: int = 64,
    channels: int = 3,
    image_column: str | None = None,
    caption_column: str | None = None,
    tokens: bool = False,
    num_images: int | None = None,
    progress: bool = True,
) -> Dataset:
    """A training `Dataset` of a Hugging Face dataset (see the module doc): cached images with their caption embeddings.

    The columns are the ones given, or the only column of images and of captions; rows whose image cannot be
    read or whose caption is empty are left out (`Dataset.rows`).
    """
    path = os.fspath(path)
    dataset, folder = open_dataset(path)
    image_column, caption_column = pick_columns(dataset, image_column, caption_column)
    captions = [" ".join(str(text or "").split()) for text in dataset[caption_column]]
    print(f"{path}: {len(captions)} rows (images: {image_column!r}, captions: {caption_column!r})")
    key = {"dataset": path, "image_column": image_column, "rows": len(captions), "captions": fingerprint(captions)}
    images = image_column_cache(dataset, image_column, folder, image_size, channels, key, progress)
    listing = CaptionList(folder, captions, None)
    conditions = caption_embeddings(listing, encoder, tokens=tokens, progress=progress).array
    rows = np.array([row for row in readable_rows(images, path) if captions[row]], dtype=np.int64)
    if not len(rows):
        raise DataError(f"{path} has no readable image with a caption.")
    return Dataset(images.array, conditions, captions=captions, rows=rows).take(num_images)
