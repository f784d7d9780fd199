"""Image files on disk: finding them in a folder, and fitting them once into a memory-mapped uint8 cache.

Every source of image files shares this: captioned folders and tables (captions.py), class folders and
folders of images (folders.py), Hugging Face datasets (huggingface.py). The images are resized (shorter
side) and centre-cropped to the model's size once, batch by batch, into a cache beside the data,

    FOLDER/images-32x32x3.npy                              (a table data.csv -> data.images-32x32x3.npy)

which an interrupted fill continues (cache.py) and training reads by row, memory-mapped. An image that
cannot be read leaves its row zero; `readable_rows` says how many were skipped and keeps the others.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from denoiser.data.cache import FilledArray, fill_array, fingerprint
from denoiser.data.dataset import DataError
from denoiser.utils.errors import short_reason
from denoiser.utils.images import load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
IMAGE_BATCH = 256  # images decoded per step of the image cache (and per progress update)


def is_image_file(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def image_files(folder: str) -> list[str]:
    """Every image file under `folder`, at any depth, in a fixed order (folders and files sorted by name):
    row i of a cache belongs to image i, so the order must not depend on the file system."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        found += [os.path.join(directory, name) for name in sorted(files) if is_image_file(name)]
    return found


def cache_path(source: str, name: str) -> str:
    """Where a cache of `source` lives: inside a folder, or beside a file with the file's name in front."""
    source = os.fspath(source)
    if os.path.isdir(source):
        return os.path.join(source, name + ".npy")
    return os.path.splitext(source)[0] + "." + name + ".npy"


def fill_image_cache(
    source, items, read_one, size: int, channels: int, key: dict, progress: bool = True
) -> FilledArray:
    """The images of `items` fitted to `size`, filled batch by batch into the uint8 image cache of `source`.

    `items[start:stop]` are the sources of a batch of images (paths, encoded bytes, arrays). `read_one(item)`
    gives one image fitted to (size, size, channels), or a str saying why it cannot be read: that row stays
    zero and is listed in `skipped`. Images are read in a pool of threads, as decoding releases the GIL.
    """
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:

        def produce(start, stop):
            rows, bad = np.zeros((stop - start, size, size, channels), np.uint8), []
            for index, result in enumerate(pool.map(read_one, items[start:stop])):
                if isinstance(result, str):
                    bad.append((index, result))
                else:
                    rows[index] = result
            return rows, bad

        path = cache_path(source, f"images-{size}x{size}x{channels}")
        shape = (len(items), size, size, channels)
        return fill_array(path, shape, "uint8", key, produce, batch_size=IMAGE_BATCH, unit="image", progress=progress)


def image_file_cache(source, paths: list[str], size: int, channels: int = 3, progress: bool = True) -> FilledArray:
    """The image files `paths` fitted to `size`, in the image cache of `source` (a folder, or a table beside them).

    The cache is keyed by the files' paths relative to the source, so a moved folder keeps its cache and a
    folder whose files changed gets a new one. Unreadable files are listed in `skipped`, never raised.
    """
    source = os.fspath(source)
    root = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    key = {"images": fingerprint(os.path.relpath(path, root) for path in paths), "size": size, "channels": channels}

    def read(image_path):
        try:
            return load_image(image_path, size, channels)
        except Exception as error:  # PIL raises OSError, ValueError, SyntaxError... for damaged files
            return f"{os.path.relpath(image_path, root)}: {short_reason(error)}"

    return fill_image_cache(source, paths, read, size, channels, key, progress)


def readable_rows(images: FilledArray, source: str) -> np.ndarray:
    """The rows of an image cache that hold a readable image; says how many were skipped, and why (a few)."""
    unreadable = {row for row, _ in images.skipped}
    if unreadable:
        examples = "; ".join(why for _, why in images.skipped[:3])
        print(f"Skipped {len(unreadable)} unreadable image(s), e.g. {examples}")
    rows = np.array([row for row in range(len(images.array)) if row not in unreadable], dtype=np.int64)
    if not len(rows):
        raise DataError(f"None of the {len(images.array)} images of {source} could be read.")
    return rows
