"""`denoiser data download`: a URL list served on 127.0.0.1 becomes a training-ready folder, through img2dataset.

The test's own HTTP server serves generated images and the usual failures of web data: a 404, a
corrupt file, a redirect, a slow answer (beyond the timeout) and a tiny image (below --min-side).
It counts the requests per path, so a rerun can be shown to fetch nothing twice.
"""

import collections
import contextlib
import http.server
import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS
from PIL import Image

from denoiser.cli import main
from denoiser.data.captions import read_captions
from denoiser.data.download import select_rows

pytestmark = pytest.mark.extra("download")

SLOW_SECONDS = 3  # the slow image answers after this; the download's timeout is 1 s


def image_bytes(width, height, seed, format):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


class Site:
    """Generated images by path, the number of requests per path, and a handler that serves them."""

    def __init__(self):
        self.files = {f"/good{index}.png": image_bytes(48, 32, index, "PNG") for index in range(6)}
        self.files.update({f"/good{index}.jpg": image_bytes(40, 40, index, "JPEG") for index in range(6, 8)})
        self.files["/target.png"] = image_bytes(32, 32, 99, "PNG")  # where /redirect leads
        self.files["/tiny.png"] = image_bytes(8, 8, 7, "PNG")
        self.files["/corrupt.jpg"] = b"\xff\xd8\xff this is not a JPEG"
        self.files["/slow.png"] = image_bytes(32, 32, 5, "PNG")
        self.files.update({f"/dull{index}.png": image_bytes(32, 32, index, "PNG") for index in range(3)})
        self.files["/beyond_count.png"] = image_bytes(32, 32, 1, "PNG")
        self.hits = collections.Counter()
        self.lock = threading.Lock()

    def handler(self):
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with site.lock:
                    site.hits[self.path] += 1
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/target.png")
                    self.end_headers()
                    return
                if self.path == "/slow.png":
                    time.sleep(SLOW_SECONDS)
                body = site.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the slow one's client has gone
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture(scope="module")
def site():
    """The site, served on a free port of 127.0.0.1 for the module's tests, then stopped."""
    served = Site()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), served.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield served
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def url_table(base):
    """A LAION-style list: URL, TEXT and an aesthetic score; the dull rows score low, the last row is past --count."""
    rows = [(f"/good{index}.png", f"a good picture number {index}", 7.0) for index in range(6)]
    rows += [(f"/good{index}.jpg", f"a good photo number {index}", 7.0) for index in range(6, 8)]
    rows += [("/redirect", "a redirected picture", 7.0), ("/missing.png", "a missing picture", 7.0)]
    rows += [("/corrupt.jpg", "a corrupt picture", 7.0), ("/slow.png", "a slow picture", 7.0)]
    rows += [("/tiny.png", "a tiny picture", 7.0)]
    rows += [(f"/dull{index}.png", f"a dull picture {index}", 3.0) for index in range(3)]
    rows += [("/beyond_count.png", "a picture past the count", 7.0)]
    import pandas

    return pandas.DataFrame(
        {
            "URL": [base + path for path, _, _ in rows],
            "TEXT": [text for _, text, _ in rows],
            "aesthetic": [s for *_, s in rows],
        }
    )


def download_args(table_path, out):
    return ["data", "download", str(table_path), "--out", str(out), "--size", "16", "--min-side", "16"]


DOWNLOAD_OPTIONS = ["--where", "aesthetic >= 6.5", "--count", "13", "--threads", "4", "--shard-size", "4"]
DOWNLOAD_OPTIONS += ["--timeout", "1", "--retries", "0"]


@pytest.fixture(scope="module")
def downloaded(site, tmp_path_factory):
    """The list downloaded once by `denoiser data download`, with what it printed and the server's hits."""
    root = tmp_path_factory.mktemp("download")
    table_path = root / "urls.parquet"
    url_table(site.base).to_parquet(table_path)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main([*download_args(table_path, root / "out"), *DOWNLOAD_OPTIONS]) == 0
    return {"root": root, "table": table_path, "out": root / "out", "log": log.getvalue(), "hits": dict(site.hits)}


def test_the_folder_holds_the_good_images_with_their_captions(downloaded):
    listing = read_captions(str(downloaded["out"]))
    assert len(listing) == 9  # 8 good images and the redirected one
    assert sorted(listing.captions)[0] == "a good photo number 6"
    assert "a redirected picture" in listing.captions
    for path in listing.images:
        assert Image.open(path).size == (16, 16)  # centre-cropped to --size


def test_the_summary_counts_failures_by_reason(downloaded):
    log = downloaded["log"]
    assert "downloaded 9 of 13 images" in log
    failures = [line for line in log.splitlines() if line.strip().startswith("failed")]
    assert len(failures) == 4, log  # the 404, the corrupt file, the timeout and the tiny image
    assert any("404" in line for line in failures)
    assert any("too small" in line for line in failures)


def test_where_and_count_rows_are_never_fetched(downloaded):
    hits = downloaded["hits"]
    assert not any(path.startswith("/dull") for path in hits)
    assert "/beyond_count.png" not in hits
    assert all(count == 1 for path, count in hits.items() if path != "/slow.png"), hits


def test_a_rerun_fetches_only_the_unfinished_shard(downloaded, site):
    out = downloaded["out"]
    # An interruption during the second shard (rows 4-7) leaves it without its stats file.
    os.remove(out / "00001_stats.json")
    shutil.rmtree(out / "00001")
    before = collections.Counter(site.hits)
    with contextlib.redirect_stdout(io.StringIO()) as log:
        assert main([*download_args(downloaded["table"], out), *DOWNLOAD_OPTIONS]) == 0
    fetched = site.hits - before
    assert set(fetched) == {"/good4.png", "/good5.png", "/good6.jpg", "/good7.jpg"}
    assert "downloaded 9 of 13 images" in log.getvalue()
    assert len(read_captions(str(out))) == 9


def test_another_list_in_the_same_folder_is_refused(downloaded, capsys):
    args = [*download_args(downloaded["table"], downloaded["out"]), "--count", "5"]
    assert main(args) == 2
    assert "another URL list" in capsys.readouterr().err


@pytest.mark.parametrize(
    "where, message",
    [("aesthetics >= 6", "unknown column(s) ['aesthetics']"), ("aesthetic >=", "not a valid expression")],
)
def test_a_bad_filter_is_one_line_naming_the_problem(downloaded, tmp_path, capsys, where, message):
    assert main([*download_args(downloaded["table"], tmp_path / "out"), "--where", where]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_ambiguous_or_missing_columns_are_named(tmp_path, capsys):
    import pandas

    table = pandas.DataFrame({"url": ["http://x/a.png"], "image_url": ["http://x/b.png"], "caption": ["a"]})
    table.to_parquet(tmp_path / "two.parquet")
    assert main(["data", "download", str(tmp_path / "two.parquet"), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "several columns of URLs (['url', 'image_url'])" in error and "--url-column" in error
    args = ["data", "download", str(tmp_path / "two.parquet"), "--out", str(tmp_path / "o"), "--url-column", "url"]
    assert main([*args, "--caption-column", "alt"]) == 2
    assert "no column 'alt'" in capsys.readouterr().err


def test_select_rows_filters_then_counts():
    import pandas

    table = pandas.DataFrame({"u": list("abcde"), "t": list("ABCDE"), "score": [1, 7, 8, 2, 9]})
    rows = select_rows(table, "u", "t", where="score > 5", count=2)
    assert rows.to_dict("list") == {"url": ["b", "c"], "caption": ["B", "C"]}


@pytest.mark.extra("clip")
def test_training_on_the_downloaded_folder(downloaded, tmp_path):
    args = ["train", "--preset", "captions", "--run-dir", str(tmp_path / "run"), "--epochs", "1"]
    args += ["--steps-per-epoch", "2", "--set", f"data.path={downloaded['out']}"]
    sets = ["data.encoder=open_clip/ViT-B-32/none", "model.image_size=16", *TINY_MODEL_SETS, "train.batch_size=4"]
    for text in [*sets, "train.warmup_steps=2", *QUICK_SAMPLE_SETS]:
        args += ["--set", text]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    assert os.path.isfile(tmp_path / "run" / "checkpoints" / "latest.keras")
