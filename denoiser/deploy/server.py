"""Serve the sampling page (`web/`) and an exported model from this machine: static files only.

The page does all the computing in the browser; this server only hands out files, so any static
file server works as well (see README). `denoiser web --model DIR` is a shortcut that serves the
page at `/` and the export folder at `/model/`:

    >>> server = make_server("web/models/shapes", port=8000)    # then open page_url(server)
    >>> server.serve_forever()

`headless_chromium` and `call_page` drive the page from Python (the browser test, the browser
benchmark, screenshots); they need selenium and Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import functools
import http.server
import os
import posixpath
import threading
import urllib.parse

MODEL_PREFIX = "/model/"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [  # headless, and no connections to Google's services from a machine without internet
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,900",
]


def page_directory() -> str:
    """The `web/` folder of this source checkout (or $DENOISER_WEB_DIR), with onnxruntime-web installed in it."""
    folder = os.environ.get("DENOISER_WEB_DIR") or os.path.join(os.path.dirname(os.path.dirname(__file__)), "web")
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

    def translate_path(self, path: str) -> str:
        route = urllib.parse.urlsplit(path).path
        if route.startswith(MODEL_PREFIX):
            relative = posixpath.normpath(urllib.parse.unquote(route[len(MODEL_PREFIX) :]))
            if relative.startswith(".."):
                return os.path.join(self.model_dir, "__outside__")  # never serve files above the export folder
            return os.path.join(self.model_dir, *relative.split("/"))
        return super().translate_path(path)

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
    model_dir, port: int = 8000, host: str = "127.0.0.1", web_dir: str | None = None, verbose: bool = False
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the page and the export folder `model_dir` (port 0 picks a free port)."""
    model_dir = os.path.abspath(model_dir)
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


def serve_in_background(model_dir, web_dir: str | None = None) -> http.server.ThreadingHTTPServer:
    """`make_server` on a free port, serving from a daemon thread; call `.shutdown()` when done."""
    server = make_server(model_dir, port=0, web_dir=web_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def headless_chromium(script_timeout: float = 180):
    """A selenium driver for Debian's headless Chromium (no driver or browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(script_timeout)
    return driver


def call_page(driver, script: str, *args):
    """Run `script` in the page, with `app` (the page's API, once loaded) and `args`; return its value.

    >>> call_page(driver, "return (await app.generate({seed: 3, choice: 2})).image;")
    """
    wrapped = (
        "const done = arguments[arguments.length - 1];"
        f"(async (...args) => {{ const app = await window.denoiserApp; {script} }})(...arguments)"
        ".then(done, (error) => done({error: String(error && error.stack || error)}));"
    )
    result = driver.execute_async_script(wrapped, *args)
    if isinstance(result, dict) and "error" in result:
        raise RuntimeError(f"The page failed: {result['error']}")
    return result


def generate_in_page(driver, noise, **options):
    """Generate from `noise` (N, H, W, C) in the page; returns the images (same shape) and the noise levels."""
    import numpy as np

    result = call_page(
        driver, "return await app.generate({...args[1], noise: args[0]});", np.asarray(noise).ravel().tolist(), options
    )
    return np.asarray(result["image"], "float32").reshape(np.shape(noise)), np.asarray(result["levels"])
