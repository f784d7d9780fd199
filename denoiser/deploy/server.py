"""Serve the sampling page (`web/`) and an exported model from this machine: static files only.

The page does all the computing in the browser; this server only hands out files, so any static
file server works as well (see README). `denoiser web --model DIR` is a shortcut that serves the
page at `/` and the export folder at `/model/`:

    >>> server = make_server("web/models/shapes", port=8000)    # then open page_url(server)
    >>> server = make_server("pretrained:shapes")               # a model shipped with the package, exported
    >>> server.serve_forever()

Only regular files inside those two folders are served: a path whose real path leaves them (through
`..` or a symbolic link) and a folder get 404; a path that is no file name (a NUL byte, bytes that
are not UTF-8) gets 400. (tests/chromium.py drives the page from Python, for the tests and benchmarks.)
"""

from __future__ import annotations

import functools
import http.server
import os
import posixpath
import urllib.parse
from http import HTTPStatus

from denoiser import defaults
from denoiser.hub import web_model_path

MODEL_PREFIX = "/model/"


def page_directory() -> str:
    """The `web/` folder of this source checkout (or $DENOISER_WEB_DIR), with onnxruntime-web installed in it."""
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # above denoiser/deploy/
    folder = os.environ.get("DENOISER_WEB_DIR") or os.path.join(checkout, "web")
    if not os.path.isfile(os.path.join(folder, "index.html")):
        raise FileNotFoundError(
            f"The web page is not at {folder}: it ships with the source checkout (pip install -e .), "
            "or set DENOISER_WEB_DIR to a copy of the repository's web/ folder."
        )
    if not os.path.isdir(os.path.join(folder, "node_modules", "onnxruntime-web")):
        raise FileNotFoundError(f"onnxruntime-web is not installed for the page: run `npm ci --prefix {folder}` once.")
    return folder


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the page folder, and of the export folder under /model/; quiet unless asked."""

    def __init__(self, *args, model_dir: str, verbose: bool = False, **kwargs):
        self.model_dir = model_dir
        self.verbose = verbose
        super().__init__(*args, **kwargs)

    def send_head(self):
        """400 for a path that is no file name, 404 for one outside the served folders; else the file."""
        try:
            path = self.translate_path(self.path)
        except ValueError:  # a NUL byte or bytes that are not UTF-8 (UnicodeDecodeError is a ValueError)
            self.send_error(HTTPStatus.BAD_REQUEST, "The path is not a file name")
            return None
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def translate_path(self, path: str) -> str | None:
        """The file a URL path names, or None where its real path leaves the folder it is served from."""
        route = urllib.parse.urlsplit(path).path
        if route.startswith(MODEL_PREFIX):
            root, route = self.model_dir, route[len(MODEL_PREFIX) :]
        else:
            root = self.directory
        relative = urllib.parse.unquote(route, errors="strict")
        if "\x00" in relative:
            raise ValueError("a NUL byte in the path")
        root = os.path.realpath(root)
        parts = [part for part in posixpath.normpath("/" + relative).split("/") if part]
        target = os.path.realpath(os.path.join(root, *parts))  # follows symbolic links
        if os.path.commonpath([root, target]) != root:
            return None
        return target + "/" if route.endswith("/") else target

    def list_directory(self, path):
        """No folder listings: the page asks for its files by name."""
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a fresh export shows up on reload
        # Cross-origin isolation lets onnxruntime-web run its WebAssembly on several threads.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):
        if self.verbose:
            super().log_message(format, *args)


def make_server(
    model_dir, port: int = defaults.PORT, host: str = defaults.HOST, web_dir: str | None = None, verbose: bool = False
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the page and the export folder `model_dir`, or a model name such as `pretrained:shapes`
    (hub.py), on `port` (0 picks a free port)."""
    model_dir = os.path.abspath(web_model_path(model_dir))
    if not os.path.isfile(os.path.join(model_dir, "denoiser.json")):
        raise FileNotFoundError(
            f"{model_dir} has no denoiser.json; export a model there first: "
            f"denoiser export --checkpoint RUN_DIR --format onnx --out {model_dir}"
        )
    handler = functools.partial(
        PageHandler, directory=web_dir or page_directory(), model_dir=model_dir, verbose=verbose
    )
    return http.server.ThreadingHTTPServer((host, port), handler)


def page_url(server: http.server.HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/index.html?model={MODEL_PREFIX.strip('/')}/"
