"""A `.keras` file is a zip archive: the sizes its members declare, checked before Keras reads them.

Keras reads config.json and metadata.json whole into memory, and its own guard lets a member inflate to 4 GiB:
a 1.5 MB file whose config.json inflates to 1 GB takes gigabytes to load. What each member inflates to is
written in the zip's directory (ZipInfo.file_size), which costs nothing to read, and zipfile never reads a
member past that size.
"""

from __future__ import annotations

import zipfile

from denoiser.utils.errors import short_reason

JSON_MEMBERS = ("config.json", "metadata.json")
MAX_JSON_BYTES = 10 * 2**20  # a model's config.json is tens of kB


def keras_archive_problem(path: str, max_total_bytes: int | None = None) -> str | None:
    """What makes the `.keras` file at `path` unsafe to hand to Keras, in words, or None: a config.json or
    metadata.json over MAX_JSON_BYTES, or members inflating to more than `max_total_bytes` in all."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile) as error:
        return f"it is not a readable zip archive ({short_reason(error)})"
    for member in members:
        if member.filename in JSON_MEMBERS and member.file_size > MAX_JSON_BYTES:
            return f"its {member.filename} inflates to {member.file_size:,} bytes, more than {MAX_JSON_BYTES:,}"
    total = sum(member.file_size for member in members)
    if max_total_bytes is not None and total > max_total_bytes:
        return f"it inflates to {total:,} bytes, more than the {max_total_bytes:,} any such model needs"
    return None
