"""The web page in headless Chromium: it samples an exported model like the Python sampler does.

Needs Debian's `chromium` and `chromium-driver`, selenium, and onnxruntime-web in web/node_modules
(`npm ci --prefix web`); the test is skipped without them, except where DENOISER_REQUIRE_BROWSER=1
(CI sets it), where a missing piece fails it.

DENOISER_SCREENSHOT=FILE.png saves the page after a generation (the README's screenshot), with
the model of DENOISER_WEB_CHECKPOINT (a run directory) instead of the tiny random one if given.
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest

from denoiser.deploy.onnx import export_onnx
from denoiser.deploy.server import (
    CHROMEDRIVER,
    CHROMIUM,
    call_page,
    generate_in_page,
    headless_chromium,
    make_server,
    page_directory,
    page_url,
)
from denoiser.deploy.server import serve_in_background as serve
from denoiser.generation import load_sampler


def missing_pieces() -> list[str]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    for module in ("selenium", "tf2onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    try:
        page_directory()
    except FileNotFoundError as error:
        missing.append(str(error))
    return missing


@pytest.fixture(scope="module")
def browser():
    missing = missing_pieces()
    if missing:
        message = "the browser test needs: " + "; ".join(missing)
        if os.environ.get("DENOISER_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    driver = headless_chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def class_page(browser, tmp_path_factory, tiny_run_maker):
    root = tmp_path_factory.mktemp("web")
    run = tiny_run_maker(root / "run", condition="class", seed=5)
    export_onnx(run, root / "exported")
    server = serve(root / "exported")
    browser.get(page_url(server))
    yield browser, run
    server.shutdown()


@pytest.mark.parametrize(
    "solver,steps,guidance,choice", [("ddim", 6, 2.0, 3), ("dpmpp_2m", 5, 3.0, 1), ("ddim", 4, 1.0, 0)]
)
def test_the_page_samples_like_the_python_sampler(class_page, solver, steps, guidance, choice):
    driver, run = class_page
    sampler, _ = load_sampler(run, steps=steps, guidance=guidance, solver=solver)
    noise = sampler.noise(1, seed=choice)
    expected = sampler.sample(condition=np.array([choice]), noise=noise)
    image, levels = generate_in_page(driver, noise, choice=choice, steps=steps, guidance=guidance, solver=solver)
    np.testing.assert_allclose(levels, sampler.noise_levels, atol=1e-7)
    assert np.abs(expected).max() > 0.1 and np.abs(image - expected).max() < 1e-3
    assert driver.find_element("id", "status").text.startswith(f"done: {steps} steps")
    assert len(driver.find_elements("css selector", "#steps-strip canvas")) == steps  # every step drawn


def test_the_page_grids_match_the_python_grids(class_page):
    from denoiser.schedule import log_snr_noise_levels, sampling_noise_levels

    driver, _ = class_page
    grids = call_page(
        driver,
        "const m = await import('./sampler.js');"
        "return [1, 2, 10, 35].map((n) => [m.powerLevels(n, 0.95), m.logSnrLevels(n, 0.8)]);",
    )
    for steps, (power, log_snr) in zip([1, 2, 10, 35], grids):
        np.testing.assert_allclose(power, sampling_noise_levels(steps, 0.95), atol=1e-7)
        np.testing.assert_allclose(log_snr, log_snr_noise_levels(steps, 0.8), atol=1e-7)


def test_the_page_offers_every_class_and_a_seeded_generate_button(class_page):
    driver, _ = class_page
    options = [element.text for element in driver.find_elements("css selector", "#condition option")]
    assert options[0] == "(no condition)" and options[1:3] == ["red circle", "red square"] and len(options) == 9
    first = call_page(driver, "return (await app.generate({seed: 4, choice: 2, steps: 3})).image;")
    again = call_page(driver, "return (await app.generate({seed: 4, choice: 2, steps: 3})).image;")
    other = call_page(driver, "return (await app.generate({seed: 5, choice: 2, steps: 3})).image;")
    assert first == again and first != other


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None, reason="open_clip is not installed")
def test_the_page_samples_a_text_model_from_its_exported_prompts(browser, tmp_path, tiny_run_maker):
    from denoiser.data.encoders import encode_texts

    run = tiny_run_maker(tmp_path / "run", condition="vector", seed=2)
    prompts = ["a red circle", "a small blue cross"]
    export_onnx(run, tmp_path / "exported", prompts=prompts)
    server = serve(tmp_path / "exported")
    try:
        browser.get(page_url(server))
        sampler, _ = load_sampler(run, steps=5, guidance=2.5)
        noise = sampler.noise(1, seed=1)
        expected = sampler.sample(condition=encode_texts(prompts[1:], "open_clip/ViT-B-32/none"), noise=noise)
        image, _ = generate_in_page(browser, noise, choice=2, steps=5, guidance=2.5, solver="ddim")
        assert np.abs(image - expected).max() < 1e-3
    finally:
        server.shutdown()


def test_screenshot(browser, tmp_path, tiny_run_maker):
    """The page after generating an image; DENOISER_SCREENSHOT saves it (the README's picture)."""
    run = os.environ.get("DENOISER_WEB_CHECKPOINT") or tiny_run_maker(tmp_path / "run", seed=1)
    export_onnx(run, tmp_path / "exported")
    server = serve(tmp_path / "exported")
    try:
        browser.get(page_url(server))
        call_page(browser, "await app.generate({seed: 3, choice: 4, steps: 20, solver: 'ddim'}); return true;")
        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("DENOISER_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DENOISER_SCREENSHOT"])
    finally:
        server.shutdown()


def test_the_server_refuses_paths_outside_the_export_and_a_folder_without_an_export(tmp_path):
    import urllib.error
    import urllib.request

    try:
        page_directory()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    with pytest.raises(FileNotFoundError, match="denoiser export"):
        make_server(tmp_path)
    (tmp_path / "denoiser.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("not for the page")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "denoiser.json").write_text("{}")
    server = serve(inner)
    try:
        base = page_url(server).split("index.html")[0]
        assert urllib.request.urlopen(base + "model/denoiser.json").read() == b"{}"
        for path in ("model/../secret.txt", "model/%2e%2e/secret.txt"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(base + path)
    finally:
        server.shutdown()
