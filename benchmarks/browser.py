"""Sampling in the browser: the exported model in headless Chromium (onnxruntime-web, WebAssembly) against Python.

    python benchmarks/browser.py runs/shapes runs/fashion_mnist
    python benchmarks/browser.py runs/shapes --out benchmarks/results/browser.json

For each run directory: export it to ONNX, open the page, and generate one image per setting from
the same noise as the Python sampler (TensorFlow). Prints the seconds per image in both and the
largest pixel difference between them. The page runs onnxruntime-web on one thread, without
WebGPU (headless, no GPU): a user's browser with more threads is faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from common import save

from denoiser.deploy.onnx import export_onnx
from denoiser.deploy.server import page_url
from denoiser.serialization import load_sampler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))  # the page driver
from chromium import generate_in_page, headless_chromium, serve_in_background  # noqa: E402

SETTINGS = [("ddim", 20), ("dpmpp_2m", 10)]


def measure(run: str, driver, guidance: float = 2.0, label: int = 1) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        info = export_onnx(run, folder)
        server = serve_in_background(folder)
        try:
            driver.get(page_url(server))
            for solver, steps in SETTINGS:
                sampler = load_sampler(run, steps=steps, guidance=guidance, solver=solver)
                noise = sampler.noise(1, seed=0)
                condition = None if info["condition"]["kind"] == "none" else np.array([label])
                generate_in_page(driver, noise, choice=label, steps=2, guidance=guidance, solver=solver)  # warm up
                sampler.sample(condition=condition, noise=noise)
                start = time.perf_counter()
                expected = sampler.sample(condition=condition, noise=noise)
                python_seconds = time.perf_counter() - start
                start = time.perf_counter()
                image, _ = generate_in_page(driver, noise, choice=label, steps=steps, guidance=guidance, solver=solver)
                browser_seconds = time.perf_counter() - start
                rows.append(
                    {
                        "run": run,
                        "image_shape": list(noise.shape[1:]),
                        "solver": solver,
                        "steps": steps,
                        "guidance": guidance,
                        "python_seconds": round(python_seconds, 3),
                        "browser_seconds": round(browser_seconds, 3),
                        "max_abs_difference": float(np.abs(image - expected).max()),
                        "onnx_megabytes": round(os.path.getsize(os.path.join(folder, "model.onnx")) / 1e6, 1),
                    }
                )
        finally:
            server.shutdown()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (or checkpoints) to export and time")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "browser.json"))
    args = parser.parse_args(argv)

    driver = headless_chromium()
    try:
        rows = [row for run in args.runs for row in measure(run, driver)]
    finally:
        driver.quit()
    print(
        f"{'run':<28}{'image':>12}{'solver':>10}{'steps':>7}{'python s':>10}{'browser s':>11}{'max |diff|':>12}"
        f"{'onnx MB':>9}"
    )
    for row in rows:
        shape = "x".join(map(str, row["image_shape"]))
        print(
            f"{row['run']:<28}{shape:>12}{row['solver']:>10}{row['steps']:>7}{row['python_seconds']:>10.2f}"
            f"{row['browser_seconds']:>11.2f}{row['max_abs_difference']:>12.1e}{row['onnx_megabytes']:>9.1f}"
        )
    save(args.out, {"results": rows})


if __name__ == "__main__":
    main()
