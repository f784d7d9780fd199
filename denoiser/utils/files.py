"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A rename is atomic on local disks and on Google Drive's mount, so a crash or a lost connection
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

TEMPORARY_PREFIX = ".tmp-"  # the names `atomic_path` writes before the rename


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=TEMPORARY_PREFIX, suffix=suffix or os.path.splitext(path)[1]
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


def remove_temporaries(directory: str | os.PathLike) -> list[str]:
    """Delete the temporary files an interrupted `atomic_path` left in `directory`; returns their paths.

    Only safe while nobody else writes there (the trainer holds the run directory's lock).
    """
    if not os.path.isdir(directory):
        return []
    stale = [os.path.join(directory, name) for name in os.listdir(directory) if name.startswith(TEMPORARY_PREFIX)]
    for path in stale:
        os.remove(path)
    return stale
