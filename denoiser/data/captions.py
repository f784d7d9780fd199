"""Captioned image data sets for text-to-image training: folders, tables and numpy arrays.

Sources:
  - a folder in img2dataset's output layout, each image with its caption in a `.txt` beside it:
        FOLDER/00000/000000001.jpg   FOLDER/00000/000000001.txt   ...   (any depth of subfolders)
  - a CSV or parquet table with a column of image paths (relative to the table's folder, or
    absolute) named image, image_path, path, file, filename or filepath, and a column of captions
    named caption, text or prompt;
  - numpy arrays: a `.npy` of uint8 images (N, H, W, C) and a `.npy` of their embeddings (N, D);
  - for `denoiser embed` only: a `.txt` file of captions, one per line.

Images are resized (shorter side) and centre-cropped to the model's size once, into a uint8 cache
beside the data (image_files.py), and captions are embedded once, into a cache keyed by the encoder:

    FOLDER/images-64x64x3.npy                                    (data.csv -> data.images-64x64x3.npy)
    FOLDER/embeddings-open_clip-ViT-B-32-laion2b_s34b_b79k.npy

Both are filled batch by batch and continued after an interruption (cache.py). Training reads
batches from them by index, memory-mapped, so a data set larger than memory works. Unreadable
images and images without a caption are skipped and counted; they never stop a run.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from denoiser import defaults
from denoiser.data.cache import DamagedFile, FilledArray, load_array
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.encoders import DEFAULT_ENCODER, embed_captions, encoder_slug, recorded_encoder
from denoiser.data.image_files import (
    IMAGE_EXTENSIONS,
    cache_path,
    fill_image_cache,
    image_file_cache,
    image_files,
    readable_rows,
)
from denoiser.utils.errors import short_reason
from denoiser.utils.images import fit_image

TABLE_EXTENSIONS = (".csv", ".parquet")
IMAGE_COLUMNS = ("image", "image_path", "path", "file", "filename", "filepath")
CAPTION_COLUMNS = ("caption", "text", "prompt")


# ================================================================================== reading captions
@dataclass
class CaptionList:
    """The captioned images of a source, in a fixed order: row i of every cache belongs to image i."""

    source: str
    captions: list[str]
    images: list[str] | None  # image paths; None for a plain caption file
    missing_captions: int = 0  # images skipped because they have no (or an empty) caption

    def __len__(self) -> int:
        return len(self.captions)

    def summary(self) -> str:
        text = f"{self.source}: {len(self)} captioned images"
        if self.images is None:
            text = f"{self.source}: {len(self)} captions"
        if self.missing_captions:
            text += f"; skipped {self.missing_captions} image(s) without a caption"
        return text


def read_captions(source) -> CaptionList:
    """The captions (and image paths) of a folder, a CSV/parquet table or a caption `.txt` file."""
    source = os.fspath(source)
    if os.path.isdir(source):
        return _read_folder(source)
    if not os.path.isfile(source):
        raise DataError(f"{source} does not exist; give a captioned folder, a CSV or parquet table, or a .txt file.")
    extension = os.path.splitext(source)[1].lower()
    try:
        if extension in TABLE_EXTENSIONS:
            return _read_table(source)
        if extension == ".txt":
            return _read_caption_lines(source)
    except UnicodeDecodeError as error:
        raise DataError(f"{source} is not UTF-8 text ({error.reason}); save it as UTF-8.") from None
    raise DataError(f"{source}: captions must be a folder, a {' or '.join(TABLE_EXTENSIONS)} table, or a .txt file.")


def _read_caption_lines(path: str) -> CaptionList:
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    captions = [line for line in lines if line]
    return CaptionList(path, captions, None, missing_captions=len(lines) - len(captions))


def _read_folder(folder: str) -> CaptionList:
    images, captions, missing = [], [], 0
    for path in image_files(folder):  # a fixed order: the caches' rows follow it
        caption = _read_caption_file(os.path.splitext(path)[0] + ".txt")
        if caption:
            images.append(path)
            captions.append(caption)
        else:
            missing += 1
    if not images and not missing:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); is it the right folder?")
    return CaptionList(folder, captions, images, missing)


def _read_caption_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return " ".join(handle.read().split())
    except OSError:
        return ""


def _read_table(path: str) -> CaptionList:
    columns = _table_columns(path)
    image_column = _pick_column(path, columns, IMAGE_COLUMNS, "image paths")
    caption_column = _pick_column(path, columns, CAPTION_COLUMNS, "captions")
    base = os.path.dirname(os.path.abspath(path))
    images, captions, missing = [], [], 0
    for image, caption in zip(*_table_values(path, [image_column, caption_column])):
        caption = (
            "" if caption is None or (isinstance(caption, float) and math.isnan(caption)) else str(caption).strip()
        )
        if caption and image:
            images.append(os.path.join(base, str(image)))  # an absolute path stays as it is
            captions.append(caption)
        else:
            missing += 1
    return CaptionList(path, captions, images, missing)


def _table_columns(path: str) -> list[str]:
    if path.lower().endswith(".parquet"):
        return list(_pyarrow_parquet().read_schema(path).names)
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _table_values(path: str, columns: list[str]) -> list[list]:
    if path.lower().endswith(".parquet"):
        table = _pyarrow_parquet().read_table(path, columns=columns)
        return [table.column(name).to_pylist() for name in columns]
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [[row.get(name) for row in rows] for name in columns]


def _pyarrow_parquet():
    try:
        import pyarrow.parquet
    except ImportError as error:
        raise DataError(f"Reading parquet tables needs pyarrow ({error}): pip install -e '.[parquet]'") from error
    return pyarrow.parquet


def _pick_column(path: str, columns: list[str], names: tuple[str, ...], what: str) -> str:
    by_lower = {column.strip().lower(): column for column in columns}
    for name in names:
        if name in by_lower:
            return by_lower[name]
    raise DataError(f"{path} has no column of {what}: name one of {list(names)}; its columns are {columns}.")


# ================================================================================== caption embeddings
def embeddings_cache_path(source, encoder: str, tokens: bool = False) -> str:
    """Where the embeddings of a source's captions by the encoder named `encoder` are cached."""
    return cache_path(source, "embeddings-" + encoder_slug(encoder, tokens))


def caption_embeddings(
    listing: CaptionList,
    encoder=DEFAULT_ENCODER,
    out=None,
    tokens: bool = False,
    batch_size: int = defaults.EMBED_BATCH_SIZE,
    progress: bool = True,
) -> FilledArray:
    """The embeddings of a source's captions, from its cache (made first if missing); `out` overrides the path."""
    spec = encoder if isinstance(encoder, str) else encoder.spec
    path = out or embeddings_cache_path(listing.source, spec, tokens)
    return embed_captions(listing.captions, path, encoder, tokens=tokens, batch_size=batch_size, progress=progress)


# ================================================================================== data sets
def load_captioned_dataset(
    source,
    image_size: int = 64,
    channels: int = 3,
    encoder=DEFAULT_ENCODER,
    embeddings=None,
    tokens: bool = False,
    num_images: int | None = None,
    progress: bool = True,
) -> Dataset:
    """A training `Dataset` of a captioned folder or table: cached images with their caption embeddings.

    `embeddings` is a `.npy` made by `denoiser embed` for this source (default: the cache beside
    it, made now if missing). The data set keeps the readable images only (`Dataset.rows`).
    """
    listing = read_captions(source)
    if listing.images is None:
        raise DataError(f"{listing.source} holds captions but no images; give a captioned folder or a table.")
    print(listing.summary())
    if not len(listing):
        raise DataError(f"{listing.source} has no image with a caption; write one .txt caption beside each image.")
    images = image_file_cache(listing.source, listing.images, image_size, channels, progress)
    if embeddings:
        conditions = _embeddings_file(
            embeddings, len(listing), encoder, f"the {len(listing)} captions of {listing.source}"
        )
    else:
        conditions = caption_embeddings(listing, encoder, tokens=tokens, progress=progress).array
    rows = readable_rows(images, listing.source)
    return Dataset(images.array, conditions, captions=listing.captions, rows=rows).take(num_images)


def load_array_dataset(
    images,
    embeddings,
    image_size: int,
    channels: int = 3,
    encoder: str | None = None,
    num_images: int | None = None,
    progress: bool = True,
) -> Dataset:
    """A training `Dataset` of a `.npy` of uint8 images and a `.npy` of their embeddings, both memory-mapped.

    Images of another size are fitted once into a cache beside the images file.
    """
    images_path = os.fspath(images)
    try:
        pixels = np.load(images_path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise DataError(f"Cannot read the images {images_path}: {short_reason(error)}") from error
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise DataError(f"{images_path} must hold uint8 images (N, H, W, C); it holds {pixels.dtype} {pixels.shape}.")
    conditions = _embeddings_file(embeddings, len(pixels), encoder, f"the {len(pixels)} images of {images_path}")
    if pixels.shape[1:] != (image_size, image_size, channels):

        def fit(image):
            return fit_image(image, image_size, channels)

        key = {"images": os.path.basename(images_path), "from_shape": list(pixels.shape), "channels": channels}
        pixels = fill_image_cache(images_path, pixels, fit, image_size, channels, key, progress).array
    return Dataset(pixels, conditions, rows=np.arange(len(pixels))).take(num_images)


def _embeddings_file(path, rows: int, encoder: str | None, what: str) -> np.ndarray:
    """An embeddings `.npy` that must have one row per item and, if its note says, come from `encoder`."""
    if not path:
        raise DataError(f"Give the embeddings of {what} (data.embeddings), e.g. made by denoiser embed.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(
            f"The embeddings file {path} (data.embeddings) does not exist; make it with denoiser embed "
            "or denoiser.embed_captions."
        )
    made_by, encoder = recorded_encoder(path), getattr(encoder, "spec", encoder)
    if encoder and made_by and made_by != encoder:
        raise DataError(
            f"{path} was made by the encoder {made_by}, not {encoder}; set data.encoder={made_by} or embed again."
        )
    try:
        embeddings = load_array(path)
    except DamagedFile as error:
        raise DataError(f"{error}; make it again with denoiser embed.") from None
    if len(embeddings) != rows:
        raise DataError(f"{path} has {len(embeddings)} embeddings but there are {what}; embed them again.")
    return embeddings
