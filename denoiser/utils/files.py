"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A rename is atomic on local disks and on Google Drive's mount, so a crash or a lost connection
leaves either the old file or the new one, never half of one. A killed process can leave its temporary
file behind (`.tmp-<pid>-...`); the next write into that folder removes the leftovers of processes that
are gone, so every command that writes files cleans up after an interrupted run of itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile

from denoiser.utils.locks import process_runs

TEMPORARY_PREFIX = ".tmp-"  # the names `atomic_path` writes before the rename: .tmp-<pid>-<random><suffix>
WRITER_PID = re.compile(r"^\.tmp-(\d+)-")
_cleaned_folders: set[str] = set()  # folders this process has already cleared of dead writers' leftovers


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    if os.path.abspath(directory) not in _cleaned_folders:
        remove_temporaries(directory)
        _cleaned_folders.add(os.path.abspath(directory))
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-", suffix=suffix or os.path.splitext(path)[1]
    )
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes private files; give the usual permissions
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        handle.write(text)


def write_json(path, values) -> None:
    write_text(path, json.dumps(values, indent=2) + "\n")


def set_aside(path: str | os.PathLike) -> str:
    """Rename a damaged file to PATH.damaged, so it is kept for inspection but no longer used; returns the name."""
    damaged = os.fspath(path) + ".damaged"
    os.replace(path, damaged)
    return damaged


def remove_temporaries(directory: str | os.PathLike) -> list[str]:
    """Delete the temporary files that processes now gone left in `directory`; returns their paths.

    A file names its writer's pid (a name without one is from an older denoiser); a live writer's is kept.
    """
    if not os.path.isdir(directory):
        return []
    stale = [
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.startswith(TEMPORARY_PREFIX) and not writer_runs(name)
    ]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return stale


def writer_runs(name: str) -> bool:
    match = WRITER_PID.match(name)
    return bool(match) and process_runs(int(match.group(1)))
