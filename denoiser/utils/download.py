"""Files from Google Drive through gdown: published checkpoints and prepared data sets.

    denoiser download https://drive.google.com/file/d/FILE_ID/view --to runs/ --checksum sha256:HEX
    denoiser download FILE_ID --to data/ --extract          # unpack a .zip / .tar.gz data set

gdown keeps the file's name from Drive, writes to a temporary file that it renames when complete,
and continues an interrupted download; a file that is already there is not fetched again. With a
checksum the file is verified, and a file that does not match is deleted rather than used. gdown's progress
bar is shown where it can redraw in place (a terminal), not in a log file (utils/terminal.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.parse

from denoiser import defaults
from denoiser.utils.errors import network_cause, short_reason
from denoiser.utils.terminal import redraws_in_place

DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{20,}$")  # a bare id: Drive's are 25 to 44 characters, so "model.keras" is none
LINK_ID = re.compile(r"(?:/d/|[?&]id=)([A-Za-z0-9_-]+)")  # in a link: /file/d/ID/view, open?id=ID, uc?id=ID
PLACEHOLDER = re.compile(r"^[A-Z_]+$")  # FILE_ID, ID: what documentation writes for an id; Drive's mix cases and digits
ARCHIVE_ENDINGS = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz")


class DownloadError(OSError):
    """A download failed or its file does not match its checksum; the message says what to do."""


def drive_file_id(url_or_id: str) -> str:
    """The file id of a Google Drive share link (…/file/d/ID/view, …?id=ID) or of a bare id.

    An id the documentation writes in its place (FILE_ID) is refused here, rather than asked of Drive, which
    would answer as for a file that is not shared.
    """
    text = url_or_id.strip()
    file_id = text if DRIVE_ID.match(text) or PLACEHOLDER.match(text) else link_id(text)
    if PLACEHOLDER.match(file_id):
        raise DownloadError(
            f"{file_id} stands for a file id: put your file's id in its place (the part after /file/d/ in the link "
            "that Drive's Share button copies)."
        )
    return file_id


def link_id(text: str) -> str:
    """The file id in a link to Google Drive (drive.google.com, docs.google.com), any length."""
    parts = urllib.parse.urlsplit(text)
    match = LINK_ID.search(f"{parts.path}?{parts.query}")
    if not (parts.hostname or "").endswith(".google.com") or match is None:
        raise DownloadError(
            f"{text!r} is neither a Google Drive file link (https://drive.google.com/file/d/ID/view) nor a file id "
            "(20 or more letters, digits, - and _)."
        )
    return match.group(1)


def failure_message(url_or_id: str, error: BaseException) -> str:
    """Why a download failed, in one line: Drive out of reach (offline), or Drive's or gdown's own reason."""
    unreachable = network_cause(error)
    if unreachable is not None:
        return (
            f"Could not reach drive.google.com ({unreachable}); check the network connection, then run the same "
            "command again to continue."
        )
    return (
        f"Could not download {url_or_id} ({short_reason(error)}). Is the file shared as 'anyone with the link'? "
        "Run the same command again to continue an interrupted download."
    )


def parse_checksum(checksum: str) -> tuple[str, str]:
    """ "sha256:HEX" or "md5:HEX" (a bare hex digest of 64 or 32 digits means sha256 or md5) -> (algorithm, hex)."""
    algorithm, _, digest = checksum.strip().rpartition(":")
    algorithm = algorithm.lower() or {64: "sha256", 32: "md5"}.get(len(digest), "")
    if algorithm not in hashlib.algorithms_guaranteed or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise DownloadError(f"Checksum {checksum!r} must look like sha256:HEX or md5:HEX.")
    return algorithm, digest.lower()


def file_checksum(path: str, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in blocks (files may be larger than memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url_or_id: str,
    to: str = defaults.DOWNLOAD_TO,
    checksum: str | None = None,
    extract: bool = False,
    quiet: bool = False,
) -> str:
    """Download a Google Drive file into the folder `to`; returns its path (or the folder it was unpacked into).

    checksum: "sha256:HEX" or "md5:HEX"; a file that does not match is deleted and an error raised.
    extract: unpack a .zip or .tar(.gz) archive into `to` after the download.
    """
    expected = parse_checksum(checksum) if checksum else None
    file_id = drive_file_id(url_or_id)
    try:
        import gdown
    except ImportError as error:
        raise DownloadError(f"gdown is not installed ({error}): pip install gdown") from error
    os.makedirs(to, exist_ok=True)
    bar = not quiet and redraws_in_place(sys.stderr)  # gdown draws it on stderr
    if not (quiet or bar):
        print(f"Downloading {url_or_id} into {to}", flush=True)
    try:
        path = gdown.download(id=file_id, output=os.path.join(to, ""), quiet=not bar, resume=True)
    except Exception as error:  # gdown raises its own errors, requests' and OSErrors
        raise DownloadError(failure_message(url_or_id, error)) from error
    if not path or not os.path.isfile(path):
        raise DownloadError(f"Could not download {url_or_id}: is the file shared as 'anyone with the link'?")
    if expected is not None:
        algorithm, digest = expected
        actual = file_checksum(path, algorithm)
        if actual != digest:
            os.remove(path)
            raise DownloadError(
                f"{path} has {algorithm} {actual}, not {digest}; it was deleted. "
                "Download it again, or check the checksum."
            )
    if extract and path.lower().endswith(ARCHIVE_ENDINGS):
        gdown.extractall(path, to=to)
        return to
    return path
