"""Large arrays built batch by batch into a `.npy` file that an interrupted run continues.

Caption embeddings and resized images of a big data set do not fit in memory and take long to make,
so they are made once, written to disk a batch at a time, and read back memory-mapped:

    array = fill_array("cache.npy", shape, "float32", key, produce, batch_size=256)

`produce(start, stop)` returns rows `start:stop` and the indices (within them) of rows it could not
make, e.g. unreadable images; those stay zero and are listed in the result's `skipped`. A note
`cache.npy.json` beside the array records what the array holds (`key`, e.g. the encoder and a
fingerprint of the captions) and how far the filling got. The rows go into `cache.npy.partial`,
which is renamed to `cache.npy` when complete, so `cache.npy` is never half-made. A rerun with the
same key returns the finished array at once, or continues an interrupted fill where it stopped; a
different key starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from denoiser.utils.files import write_json

# Arrays bigger than this are memory-mapped when read back instead of loaded into memory.
MEMMAP_FROM_BYTES = 64 * 2**20


@dataclass
class FilledArray:
    """A filled array (in memory or memory-mapped) and the rows that could not be made."""

    array: np.ndarray
    path: str
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row, why)
    reused: bool = False  # True when a finished file was found and nothing was computed


def fingerprint(lines) -> str:
    """A short hash of a list of strings (captions, file names), so a cache made for others is never reused."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(str(line).encode() + b"\n")
    return digest.hexdigest()[:16]


def note_path(path: str) -> str:
    return path + ".json"


def partial_path(path: str) -> str:
    return path + ".partial"


def read_note(path: str) -> dict | None:
    """The note written beside a filled array, or None if there is none (or it is unreadable)."""
    try:
        with open(note_path(path)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def load_array(path: str) -> np.ndarray:
    """Read a `.npy` file: into memory when small, memory-mapped (read-only) when large."""
    large = os.path.getsize(path) >= MEMMAP_FROM_BYTES
    return np.load(path, mmap_mode="r" if large else None)


def finished_array(path, key: dict, rows: int) -> FilledArray | None:
    """The finished array at `path` if its note says it holds `rows` rows made for `key`, else None."""
    path = os.fspath(path)
    note = read_note(path) or {}
    if note.get("key") != key or note.get("done") != rows or not os.path.exists(path):
        return None
    array = load_array(path)
    if len(array) != rows:
        return None
    return FilledArray(array, path, [tuple(entry) for entry in note.get("skipped", [])], reused=True)


def fill_array(
    path: str,
    shape: tuple[int, ...],
    dtype: str,
    key: dict,
    produce: Callable[[int, int], tuple[np.ndarray, list[tuple[int, str]]]],
    batch_size: int = 256,
    unit: str = "row",
    progress: bool = True,
) -> FilledArray:
    """Fill the array at `path` batch by batch with `produce`, or reuse what an earlier run made."""
    path = os.fspath(path)
    shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype).name
    finished = finished_array(path, key, shape[0])
    if finished is not None and finished.array.shape == shape and finished.array.dtype == dtype:
        return finished
    expected = {"key": key, "shape": list(shape), "dtype": dtype}
    note = read_note(path) or {}
    same = all(note.get(name) == value for name, value in expected.items())
    skipped = [tuple(entry) for entry in note.get("skipped", [])] if same else []
    partial = partial_path(path)
    done = note.get("done", 0) if same and os.path.exists(partial) else 0
    if done:
        print(f"Continuing {path} after {done} of {shape[0]} {unit}s.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    array = np.lib.format.open_memmap(partial, mode="r+" if done else "w+", dtype=dtype, shape=shape)
    bar = _progress_bar(shape[0], done, unit) if progress else None
    for start in range(done, shape[0], batch_size):
        stop = min(start + batch_size, shape[0])
        rows, bad = produce(start, stop)
        array[start:stop] = rows
        array.flush()
        skipped += [(start + index, why) for index, why in bad]
        write_json(note_path(path), {**expected, "done": stop, "skipped": skipped})
        if bar is not None:
            bar.update(stop)
    del array  # closes the memory map before the rename
    os.replace(partial, path)
    write_json(note_path(path), {**expected, "done": shape[0], "skipped": skipped})
    return FilledArray(load_array(path), path, skipped)


def _progress_bar(total: int, done: int, unit: str):
    import keras

    bar = keras.utils.Progbar(total, unit_name=unit)
    bar.update(done)
    return bar
