"""The web page in headless Chromium: it samples an exported model like the Python sampler does.

Needs Debian's `chromium` and `chromium-driver`, selenium, and onnxruntime-web in web/node_modules
(`npm ci --prefix web`); the test is skipped without them, except where DENOISER_REQUIRE_BROWSER=1
(CI sets it), where a missing piece fails it. The server's own tests (the end of this file) need none
of them. The page is driven through tests/chromium.py.

DENOISER_SCREENSHOT=FILE.png saves the page after a generation (the README's screenshot), with
the model of DENOISER_WEB_CHECKPOINT (a run directory) instead of the tiny random one if given.
"""

import http.client
import os
import shutil

import numpy as np
import pytest
from chromium import call_page, generate_in_page, headless_chromium, missing_pieces
from chromium import serve_in_background as serve
from helpers import make_tiny_run

from denoiser.cascade import Cascade
from denoiser.deploy.onnx import export_onnx
from denoiser.deploy.server import make_server, page_url
from denoiser.serialization import load_sampler


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
def class_export(tmp_path_factory):
    """A tiny class-conditioned run with random weights, and its export folder."""
    root = tmp_path_factory.mktemp("web")
    run = make_tiny_run(root / "run", condition="class", seed=5)
    export_onnx(run, root / "exported")
    return run, root / "exported"


@pytest.fixture(scope="module")
def class_page(browser, class_export):
    run, exported = class_export
    server = serve(exported)
    browser.get(page_url(server))
    yield browser, run
    server.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize(
    "solver,steps,guidance,choice",
    [("ddim", 6, 2.0, 3), ("dpmpp_2m", 5, 3.0, 1), ("ddim", 4, 1.0, 0), ("deis", 5, 2.0, 2)],
)
def test_the_page_samples_like_the_python_sampler(class_page, solver, steps, guidance, choice):
    driver, run = class_page
    sampler = load_sampler(run, steps=steps, guidance=guidance, solver=solver)
    noise = sampler.noise(1, seed=choice)
    expected = sampler.sample(condition=np.array([choice]), noise=noise)
    image, levels = generate_in_page(driver, noise, choice=choice, steps=steps, guidance=guidance, solver=solver)
    np.testing.assert_allclose(levels, sampler.noise_levels, atol=1e-7)
    assert np.abs(expected).max() > 0.1 and np.abs(image - expected).max() < 1e-3
    assert driver.find_element("id", "status").text.startswith(f"done: {steps} steps")
    assert len(driver.find_elements("css selector", "#steps-strip canvas")) == steps  # every step drawn


@pytest.mark.slow
def test_the_page_grids_match_the_python_grids(class_page):
    from denoiser.schedule import karras_noise_levels, log_snr_noise_levels, sampling_noise_levels

    driver, _ = class_page
    grids = call_page(
        driver,
        "const m = await import('./sampler.js');"
        "return [1, 2, 10, 35].map((n) => [m.powerLevels(n, 0.95), m.logSnrLevels(n, 0.8), m.karrasLevels(n, 0.9)]);",
    )
    for steps, (power, log_snr, karras) in zip([1, 2, 10, 35], grids):
        np.testing.assert_allclose(power, sampling_noise_levels(steps, 0.95), atol=1e-7)
        np.testing.assert_allclose(log_snr, log_snr_noise_levels(steps, 0.8), atol=1e-7)
        np.testing.assert_allclose(karras, karras_noise_levels(steps, 0.9), atol=1e-7)


@pytest.mark.slow
def test_the_page_offers_every_class_and_a_seeded_generate_button(class_page):
    driver, _ = class_page
    options = [element.text for element in driver.find_elements("css selector", "#condition option")]
    assert options[0] == "(no condition)" and options[1:3] == ["red circle", "red square"] and len(options) == 9
    first = call_page(driver, "return (await app.generate({seed: 4, choice: 2, steps: 3})).image;")
    again = call_page(driver, "return (await app.generate({seed: 4, choice: 2, steps: 3})).image;")
    other = call_page(driver, "return (await app.generate({seed: 5, choice: 2, steps: 3})).image;")
    assert first == again and first != other


@pytest.mark.slow
@pytest.mark.extra("clip")
def test_the_page_samples_a_text_model_from_its_exported_prompts(browser, tmp_path):
    from denoiser.data.encoders import encode_texts

    run = make_tiny_run(tmp_path / "run", condition="vector", seed=2)
    prompts = ["a red circle", "a small blue cross"]
    export_onnx(run, tmp_path / "exported", prompts=prompts)
    server = serve(tmp_path / "exported")
    try:
        browser.get(page_url(server))
        sampler = load_sampler(run, steps=5, guidance=2.5, solver="ddim")
        noise = sampler.noise(1, seed=1)
        expected = sampler.sample(condition=encode_texts(prompts[1:], "open_clip/ViT-B-32/none"), noise=noise)
        image, _ = generate_in_page(browser, noise, choice=2, steps=5, guidance=2.5, solver="ddim")
        assert np.abs(image - expected).max() < 1e-3
    finally:
        server.shutdown()


@pytest.mark.slow
def test_screenshot(browser, class_export, tmp_path):
    """The page after generating an image; DENOISER_SCREENSHOT saves it (the README's picture)."""
    exported = class_export[1]
    if os.environ.get("DENOISER_WEB_CHECKPOINT"):
        exported = tmp_path / "exported"
        export_onnx(os.environ["DENOISER_WEB_CHECKPOINT"], exported)
    server = serve(exported)
    try:
        browser.get(page_url(server))
        call_page(browser, "await app.generate({seed: 3, choice: 4, steps: 20, solver: 'ddim'}); return true;")
        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("DENOISER_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DENOISER_SCREENSHOT"])
    finally:
        server.shutdown()


# ================================================================================== a cascade, stage by stage
@pytest.fixture(scope="module")
def cascade_page(browser, tmp_path_factory):
    """The page with a cascade export: a tiny 8x8 class-conditioned base and an 8 -> 16 stage, random weights."""
    root = tmp_path_factory.mktemp("cascade")
    base = make_tiny_run(root / "base", image_size=8, seed=6)
    upscaler = make_tiny_run(root / "sr", low_resolution=8, seed=7)
    export_onnx(base, root / "exported", upscales=[upscaler])
    server = serve(root / "exported")
    browser.get(page_url(server))
    yield browser, base, upscaler, server
    server.shutdown()


def cascade_noises(samplers, seed: int) -> dict:
    """The noises `Cascade.sample_stages(seed=seed)` draws, for the page: stage k starts from seed + k's noise,
    and a super-resolution stage noises its low-res input with (seed + k, 1)'s (Sampler.prepare_low_resolution)."""
    starts = [sampler.noise(1, seed + k) for k, sampler in enumerate(samplers)]
    augmentations = [None] + [
        np.random.default_rng([seed + k, 1]).standard_normal((1, *sampler.low_resolution_shape)).ravel().tolist()
        for k, sampler in enumerate(samplers[1:], start=1)
    ]
    return {"noises": [noise.ravel().tolist() for noise in starts], "augmentationNoises": augmentations}


@pytest.mark.slow
@pytest.mark.parametrize(
    "solver,steps,guidance,choice,seed", [("ddim", (4, 3), (2.0, 1.5), 3, 2), ("dpmpp_2m", (3, 4), (1.0, 3.0), 0, 5)]
)
def test_the_page_samples_a_cascade_like_python(cascade_page, solver, steps, guidance, choice, seed):
    driver, base, upscaler, _ = cascade_page
    samplers = [
        load_sampler(run, steps=n, guidance=g, solver=solver) for run, n, g in zip((base, upscaler), steps, guidance)
    ]
    expected = Cascade(samplers).sample_stages(condition=np.array([choice]), seed=seed)
    options = {"choice": choice, "steps": steps[0], "guidance": guidance[0], "solver": solver}
    options["stages"] = [{"steps": steps[1], "guidance": guidance[1]}]
    result = call_page(driver, "return await app.generate(args[0]);", {**options, **cascade_noises(samplers, seed)})
    for stage, sampler, want in zip(result["stages"], samplers, expected):
        image = np.asarray(stage["image"], "float32").reshape(want.shape)
        np.testing.assert_allclose(stage["levels"], sampler.noise_levels, atol=1e-7)
        assert np.abs(want).max() > 0.1 and np.abs(image - want).max() < 1e-3
    assert result["image"] == result["stages"][-1]["image"] and len(result["image"]) == 16 * 16 * 3
    assert driver.find_element("id", "status").text.startswith(f"done: {steps[0]} + {steps[1]} = {sum(steps)} steps")
    assert len(driver.find_elements("css selector", "#steps-strip canvas")) == sum(steps)  # every stage's steps


@pytest.mark.slow
def test_the_page_offers_the_shared_classes_and_seeds_the_whole_cascade(cascade_page):
    driver, _, _, server = cascade_page
    driver.get(page_url(server))  # the controls as loaded
    options = call_page(driver, "return [...document.querySelectorAll('#condition option')].map((o) => o.text);")
    assert options[:3] == ["(no condition)", "red circle", "red square"] and len(options) == 9
    assert driver.find_element("id", "steps-1").get_attribute("value") == "6"  # the stage's own run's steps
    script = "return (await app.generate({seed: args[0], choice: 2, steps: 2, stages: [{steps: 2, guidance: 2}]}))"
    first, again, other = (call_page(driver, script + ".stages;", seed) for seed in (4, 4, 5))
    assert first == again and first[0] != other[0] and first[1] != other[1]
    driver.get(page_url(server).replace("model=model/", "model=model/stage-1/"))  # a stage alone cannot run
    with pytest.raises(RuntimeError, match="super-resolution stage"):
        call_page(driver, "return true;")
    status = driver.find_element("id", "status")
    assert "super-resolution stage" in status.text and "--upscale" in status.text


# ================================================================================== the server alone (no browser)
@pytest.fixture
def served(tmp_path):
    """A server for a stand-in page folder and an export folder, with a secret beside them; yields a GET function.

    GET returns (status, body) for a raw path, sent as is (no client normalizes it).
    """
    web, export, outside = tmp_path / "web", tmp_path / "export", tmp_path / "outside"
    for folder in (web, web / "scripts", export, export / "inner", outside):
        folder.mkdir()
    (web / "index.html").write_text("the page")
    (export / "denoiser.json").write_text("{}")
    (outside / "secret.txt").write_text("not for the page")
    (tmp_path / "secret.txt").write_text("not for the page either")
    (export / "to-outside").symlink_to(outside)  # a folder link out of the export
    (export / "secret-link.txt").symlink_to(outside / "secret.txt")  # a file link out of the export
    (web / "to-outside").symlink_to(outside)
    (export / "alias.json").symlink_to(export / "denoiser.json")  # a link that stays inside is fine
    server = serve(export, web_dir=str(web))

    def get(path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    yield get
    server.shutdown()
    server.server_close()


def test_the_server_hands_out_the_page_and_the_export(served):
    assert served("/index.html") == (200, b"the page")
    assert served("/") == (200, b"the page")  # the folder's index.html, not a listing
    assert served("/model/denoiser.json") == (200, b"{}")
    assert served("/model/alias.json?v=2") == (200, b"{}")


@pytest.mark.parametrize(
    "path",
    [
        "/model/../secret.txt",
        "/model/%2e%2e/secret.txt",
        "/model/%2e%2e/outside/secret.txt",
        "/../secret.txt",
        "/model/to-outside/secret.txt",
        "/model/secret-link.txt",
        "/to-outside/secret.txt",
    ],
)
def test_the_server_never_leaves_its_folders(served, path):
    status, body = served(path)
    assert status == 404 and b"not for the page" not in body


@pytest.mark.parametrize("path", ["/model/", "/model/inner/", "/scripts/", "/model/to-outside/"])
def test_the_server_lists_no_folder(served, path):
    status, body = served(path)
    assert status == 404 and b"denoiser.json" not in body and b"secret" not in body


@pytest.mark.parametrize("path", ["/model/%00", "/model/denoiser.json%00.txt", "/%00", "/model/%ff%fe.json"])
def test_a_path_that_is_no_file_name_gets_400_and_no_traceback(served, path, capsys):
    assert served(path)[0] == 400
    assert served("/model/denoiser.json")[0] == 200  # the server still answers
    assert "Traceback" not in capsys.readouterr().err


def test_a_folder_without_an_export_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="denoiser export"):
        make_server(tmp_path, web_dir=str(tmp_path))
