"""Drive the sampling page from Python in Debian's headless Chromium: the browser test, its benchmark, screenshots.

Needs selenium (the `dev` extra), Debian's `chromium` and `chromium-driver`, and onnxruntime-web in
web/node_modules (`npm ci --prefix web`). `missing_pieces` lists what is not there.
"""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np

from denoiser.deploy.server import make_server, page_directory

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


def missing_pieces() -> list[str]:
    """What the page needs to run here and is missing: the browser, its driver, Python packages, the page."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    for module in ("selenium", "tf2onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    try:
        page_directory()
    except FileNotFoundError as error:
        missing.append(str(error))
    return missing


def serve_in_background(model_dir, web_dir: str | None = None):
    """`make_server` on a free port, serving from a daemon thread; call `.shutdown()` when done.

    The thread checks for shutdown every 0.05 s (serve_forever's default, 0.5 s, is each test's wait).
    """
    server = make_server(model_dir, port=0, web_dir=web_dir)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
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
        # until app.js has run, window.denoiserApp is not there yet to be awaited
        "(async (...args) => { while (!window.denoiserApp) await new Promise((r) => setTimeout(r, 10));"
        f" const app = await window.denoiserApp; {script} }})(...arguments)"
        ".then(done, (error) => done({error: String(error && error.stack || error)}));"
    )
    result = driver.execute_async_script(wrapped, *args)
    if isinstance(result, dict) and "error" in result:
        raise RuntimeError(f"The page failed: {result['error']}")
    return result


def generate_in_page(driver, noise, **options):
    """Generate from `noise` (N, H, W, C) in the page; returns the images (same shape) and the noise levels."""
    result = call_page(
        driver, "return await app.generate({...args[1], noise: args[0]});", np.asarray(noise).ravel().tolist(), options
    )
    return np.asarray(result["image"], "float32").reshape(np.shape(noise)), np.asarray(result["levels"])
