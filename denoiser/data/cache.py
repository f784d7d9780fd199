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
different key starts over. A file that does not read back as its note says (truncated, emptied, replaced) is
set aside as `cache.npy.damaged` and made again, saying so. Two processes filling one cache take turns
(`cache.npy.lock`): the second waits, then finds the array finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from denoiser.utils.errors import short_reason
from denoiser.utils.files import set_aside, write_json
from denoiser.utils.locks import acquire_lock, holder_name
from denoiser.utils.progress import Progress

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
    """The note written beside a filled array, or None if there is none. A note that does not read as one is
    set aside (the array is then made again: without its note, nothing says what it holds)."""
    try:
        with open(note_path(path), encoding="utf-8") as handle:
            note = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        make_again(note_path(path), f"{note_path(path)} is damaged ({short_reason(error)})")
        return None
    if not isinstance(note, dict):
        make_again(note_path(path), f"{note_path(path)} is damaged (it holds no note)")
        return None
    return note


class DamagedFile(ValueError):
    """A `.npy` file cannot be read as an array of numbers (truncated, emptied, not a `.npy`, pickled objects)."""


def load_array(path: str) -> np.ndarray:
    """Read a `.npy` file of numbers: into memory when small, memory-mapped (read-only) when large.

    Never unpickles (a cache is data, not code); a file that does not read raises DamagedFile naming it.
    """
    try:
        large = os.path.getsize(path) >= MEMMAP_FROM_BYTES
        return np.load(path, mmap_mode="r" if large else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        reason = "it holds Python objects, not numbers" if "pickle" in str(error) else short_reason(error)
        raise DamagedFile(f"{path} does not read as an array: {reason}") from None


def make_again(path: str, why: str) -> None:
    """Set a damaged file aside as PATH.damaged (kept for inspection, no longer used), saying so."""
    print(f"{why}; set it aside as {set_aside(path)} and making it again.")


def finished_array(path, key: dict, rows: int) -> FilledArray | None:
    """The finished array at `path` if its note says it holds `rows` rows made for `key`, else None.

    A finished file that does not read back with the shape and dtype its note records is set aside.
    """
    path = os.fspath(path)
    note = read_note(path) or {}
    if note.get("key") != key or note.get("done") != rows or not os.path.exists(path):
        return None
    try:
        array = load_array(path)
    except DamagedFile as error:
        make_again(path, str(error))
        return None
    shape, dtype = note.get("shape", list(array.shape)), note.get("dtype", array.dtype.name)
    if list(array.shape) != shape or array.dtype.name != dtype:
        make_again(path, f"{path} holds {array.dtype.name} {list(array.shape)}, not the {dtype} {shape} of its note")
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
    finished = _reusable(path, key, shape, dtype)  # read without its lock: a finished cache may be read-only
    if finished is not None:
        return finished
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with acquire_lock(path + ".lock", wait=True, on_wait=lambda holder: _say_waiting(path, holder)):
        finished = _reusable(path, key, shape, dtype)  # made meanwhile by the process we waited for
        if finished is not None:
            return finished
        return _fill(path, shape, dtype, key, produce, batch_size, unit, progress)


def _reusable(path: str, key: dict, shape: tuple[int, ...], dtype: str) -> FilledArray | None:
    finished = finished_array(path, key, shape[0])
    if finished is not None and finished.array.shape == shape and finished.array.dtype == dtype:
        return finished
    return None


def _say_waiting(path: str, holder: dict | None) -> None:
    print(f"Waiting for {holder_name(holder)}, which is making {path}.")


def _fill(path, shape, dtype, key, produce, batch_size, unit, progress) -> FilledArray:
    """Fill the array (holding its lock), continuing the rows an interrupted fill left in `.partial`."""
    expected = {"key": key, "shape": list(shape), "dtype": dtype}
    note = read_note(path) or {}
    same = all(note.get(name) == value for name, value in expected.items())
    skipped = [tuple(entry) for entry in note.get("skipped", [])] if same else []
    partial = partial_path(path)
    done = note.get("done", 0) if same and os.path.exists(partial) else 0
    array = _open_partial(partial, shape, dtype) if done else None
    if array is None:
        done, skipped = 0, []
        array = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
    else:
        print(f"Continuing {path} after {done} of {shape[0]} {unit}s.")
    bar = Progress(os.path.basename(path), shape[0], unit, done=done) if progress else None
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


def _open_partial(partial: str, shape: tuple[int, ...], dtype: str) -> np.ndarray | None:
    """The rows an interrupted fill left, memory-mapped for writing; None (set aside) if the file is damaged."""
    try:
        array = np.lib.format.open_memmap(partial, mode="r+")
    except (OSError, ValueError, EOFError) as error:
        make_again(partial, f"{partial} does not read as an array: {short_reason(error)}")
        return None
    if array.shape != shape or array.dtype.name != dtype:
        del array
        make_again(partial, f"{partial} is not the {dtype} {list(shape)} its note records")
        return None
    return array
