"""Google Drive downloads through gdown (mocked: there is no network), checksums, archives, the CLI."""

import hashlib
import os
import sys
import zipfile

import pytest

from denoiser.cli import main
from denoiser.utils.download import DownloadError, download_file, drive_file_id, parse_checksum

FILE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"
CONTENT = b"pretend this is a checkpoint\n"


@pytest.fixture
def fake_gdown(monkeypatch):
    """gdown.download replaced by a function that 'downloads' `fake_gdown.payload` as `fake_gdown.name`."""
    gdown = pytest.importorskip("gdown")

    class Fake:
        name, payload, calls = "model.keras", CONTENT, []

        @classmethod
        def download(cls, id=None, output=None, quiet=False, resume=False, **kwargs):
            cls.calls.append({"id": id, "output": output, "resume": resume})
            path = os.path.join(output, cls.name)
            with open(path, "wb") as handle:
                handle.write(cls.payload)
            return path

    Fake.calls = []
    monkeypatch.setattr(gdown, "download", Fake.download)
    return Fake


def test_drive_ids_from_links_and_bare_ids():
    for link in (
        f"https://drive.google.com/file/d/{FILE_ID}/view?usp=sharing",
        f"https://drive.google.com/uc?id={FILE_ID}&export=download",
        f"https://drive.google.com/open?id={FILE_ID}",
        FILE_ID,
    ):
        assert drive_file_id(link) == FILE_ID
    with pytest.raises(DownloadError, match="neither a Google Drive file link"):
        drive_file_id("https://example.com/model.keras")


def test_checksum_forms():
    assert parse_checksum("sha256:" + "ab" * 32) == ("sha256", "ab" * 32)
    assert parse_checksum("A" * 32) == ("md5", "a" * 32)
    with pytest.raises(DownloadError, match="sha256:HEX"):
        parse_checksum("crc:1234")


def test_download_into_a_folder_with_a_matching_checksum(fake_gdown, tmp_path):
    digest = hashlib.sha256(CONTENT).hexdigest()
    path = download_file(f"https://drive.google.com/file/d/{FILE_ID}/view", tmp_path / "runs", f"sha256:{digest}")
    assert path == os.path.join(tmp_path, "runs", "model.keras")
    assert open(path, "rb").read() == CONTENT
    assert fake_gdown.calls == [{"id": FILE_ID, "output": os.path.join(tmp_path, "runs", ""), "resume": True}]


def test_a_file_that_does_not_match_its_checksum_is_deleted(fake_gdown, tmp_path):
    with pytest.raises(DownloadError, match="it was deleted"):
        download_file(FILE_ID, tmp_path, checksum="md5:" + "0" * 32)
    assert not os.path.exists(tmp_path / "model.keras")


def test_archives_are_unpacked(fake_gdown, tmp_path):
    archive = tmp_path / "source.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("laion64/00000/000000000.txt", "a red dress")
    fake_gdown.name, fake_gdown.payload = "data.zip", archive.read_bytes()
    assert download_file(FILE_ID, tmp_path / "data", extract=True) == tmp_path / "data"
    assert (tmp_path / "data" / "laion64" / "00000" / "000000000.txt").read_text() == "a red dress"


def test_failed_download_and_missing_gdown(monkeypatch, tmp_path):
    gdown = pytest.importorskip("gdown")
    monkeypatch.setattr(gdown, "download", lambda **kwargs: None)  # older gdown returns None on failure
    with pytest.raises(DownloadError, match="anyone with the link"):
        download_file(FILE_ID, tmp_path)

    def refuse(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setattr(gdown, "download", refuse)
    with pytest.raises(DownloadError, match="Too many users"):
        download_file(FILE_ID, tmp_path)
    monkeypatch.setitem(sys.modules, "gdown", None)
    with pytest.raises(DownloadError, match="pip install gdown"):
        download_file(FILE_ID, tmp_path)


def test_command_line(fake_gdown, tmp_path, capsys):
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert main(["download", FILE_ID, "--to", str(tmp_path), "--checksum", f"sha256:{digest}"]) == 0
    assert "model.keras" in capsys.readouterr().out
    assert main(["download", FILE_ID, "--to", str(tmp_path), "--checksum", "sha256:" + "0" * 64]) == 2
    error = capsys.readouterr().err.strip()
    assert "not " + "0" * 64 in error and len(error.splitlines()) == 1
