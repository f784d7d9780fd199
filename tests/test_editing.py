"""Inpainting, outpainting, image-to-image, their files and command line, and pictures of the process."""

import numpy as np
import pytest
from helpers import command_line, linear_network
from PIL import Image

from denoiser import Sampler
from denoiser.cli import main
from denoiser.cli.runners.editing import box_mask, image_from_file, mask_from_file
from denoiser.editing import EditError, image_to_image, inpaint, outpaint, repaint_path
from denoiser.schedule import add_noise, renoise
from denoiser.utils.plotting import ProcessRecorder

SOLVERS = ["ddim", "dpmpp_2m"]


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(1).uniform(-1, 1, (8, 8, 1)).astype("float32")


def left_half_mask():
    mask = np.zeros((8, 8), "float32")
    mask[:, :4] = 1.0
    return mask


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("resample", [1, 3])
def test_inpainting_keeps_the_known_region_exactly_and_fills_the_rest(class_model, image, solver, resample):
    sampler = Sampler(class_model, steps=4, guidance=2.0, solver=solver)
    result = inpaint(sampler, image, left_half_mask(), condition=np.array([1, 2, 3]), resample=resample, jump=2)
    assert result.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(result[:, :, 4:], np.broadcast_to(image[:, 4:], (3, 8, 4, 1)))
    assert np.abs(result[:, :, :4] - image[:, :4]).mean() > 0.05
    assert np.abs(result[0, :, :4] - result[1, :, :4]).max() > 1e-3  # the condition matters


@pytest.mark.parametrize("solver", SOLVERS)
def test_inpainting_everything_is_plain_sampling_from_the_same_seed(class_model, image, solver):
    sampler = Sampler(class_model, steps=4, guidance=2.0, solver=solver)
    labels = np.array([1, 3])
    everything = inpaint(sampler, image, np.ones((8, 8)), condition=labels, seed=5)
    np.testing.assert_allclose(everything, sampler.sample(labels, seed=5), atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_editor_is_deterministic_under_a_seed(class_model, image, solver):
    sampler = Sampler(class_model, steps=3, guidance=2.0, solver=solver)
    labels = np.array([1, 2])
    editors = {
        "inpaint": lambda seed: inpaint(
            sampler, image, left_half_mask(), condition=labels, seed=seed, resample=2, jump=1
        ),
        "outpaint": lambda seed: outpaint(sampler, image, 3, side="top", condition=labels, seed=seed),
        "img2img": lambda seed: image_to_image(sampler, image, 0.7, condition=labels, seed=seed),
    }
    for name, edit in editors.items():
        first = edit(7)
        np.testing.assert_array_equal(first, edit(7), err_msg=name)
        assert np.abs(first - edit(8)).max() > 1e-3, name


def test_repaint_path_walks_down_and_jumps_back():
    assert repaint_path(4) == [0, 1, 2, 3, 4]
    assert repaint_path(4, jump=2, resample=2) == [0, 1, 2, 0, 1, 2, 3, 4, 2, 3, 4]
    path = repaint_path(10, jump=3, resample=4)
    downs = sum(1 for a, b in zip(path, path[1:]) if b == a + 1)
    assert downs == 10 + 3 * 3 * 3 and path[-1] == 10  # three jump points, three extra passes of three steps
    assert all(b == a + 1 or b < a for a, b in zip(path, path[1:]))
    with pytest.raises(ValueError, match="resample"):
        repaint_path(4, resample=0)


def test_renoising_gives_the_same_statistics_as_noising_directly():
    rng = np.random.default_rng(0)
    clean = np.full(200_000, 0.5)
    at_low = add_noise(clean, rng.standard_normal(clean.shape), 0.3)
    at_high = renoise(at_low, rng.standard_normal(clean.shape), 0.3, 0.7)
    assert at_high.mean() == pytest.approx(0.3 * 0.5, abs=0.01)
    assert at_high.std() == pytest.approx(0.7, abs=0.01)
    with pytest.raises(ValueError, match="higher"):
        renoise(at_low, at_low, 0.7, 0.3)


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_outpainting_adds_a_band_and_keeps_the_image(class_model, image, side):
    sampler = Sampler(class_model, steps=3, guidance=2.0)
    result = outpaint(sampler, image, 3, side=side, condition=np.array([1, 2]))
    kept = {"left": result[:, :, 3:], "right": result[:, :, :8], "top": result[:, 3:], "bottom": result[:, :8]}[side]
    band = {"left": result[:, :, :3], "right": result[:, :, 8:], "top": result[:, :3], "bottom": result[:, 8:]}[side]
    assert result.shape == ((2, 8, 11, 1) if side in ("left", "right") else (2, 11, 8, 1))
    np.testing.assert_array_equal(kept, np.broadcast_to(image, (2, 8, 8, 1)))
    assert band.std() > 0.01
    # Grown images can grow again.
    assert outpaint(sampler, result[0], 2, side=side).shape[1:3] == ((8, 13) if side in ("left", "right") else (13, 8))


def test_outpainting_refuses_a_band_as_wide_as_the_canvas(class_model, image):
    with pytest.raises(ValueError, match="1 to 7 pixels"):
        outpaint(Sampler(class_model, steps=2), image, 8)


def test_image_to_image_stays_closer_to_the_input_at_lower_strength(image):
    """With the exact Gaussian denoiser, a little noise is removed again; a lot gives a new image."""
    sampler = Sampler(linear_network(8), steps=10, threshold_percentile=None)
    start = np.clip(image * 0.5, -1, 1)
    distances = [
        np.abs(image_to_image(sampler, start, strength, num_images=4, seed=0) - start).mean()
        for strength in (0.05, 0.3, 0.9)
    ]
    assert distances[0] < distances[1] < distances[2], distances
    seen = []
    image_to_image(sampler, start, 0.3, seed=0, callback=lambda step, level, x0: seen.append(level))
    assert seen[0] == pytest.approx(0.3) and len(seen) == 10
    with pytest.raises(ValueError, match="strength"):
        image_to_image(sampler, start, 1.0)


def test_bad_masks_and_images_are_refused(class_model, image):
    sampler = Sampler(class_model, steps=2)
    with pytest.raises(ValueError, match="at least one pixel"):
        inpaint(sampler, image, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="does not fit"):
        inpaint(sampler, image, np.ones((6, 6)))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        inpaint(sampler, image * 200, np.ones((8, 8)))
    with pytest.raises(ValueError, match="do not fit this model"):
        image_to_image(sampler, np.zeros((6, 6, 1)), 0.5)


def test_image_and_mask_files(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    np.testing.assert_allclose(image_from_file(tmp_path / "image.png", 8, 3), pixels / 127.5 - 1, atol=1e-6)
    assert image_from_file(tmp_path / "image.png", 16, 1).shape == (16, 16, 1)  # resized, greyscale
    drawn = np.zeros((8, 8), np.uint8)
    drawn[2:5, 1:7] = 255  # white = generate
    Image.fromarray(drawn).save(tmp_path / "mask.png")
    mask = mask_from_file(tmp_path / "mask.png", 8)
    assert mask.shape == (8, 8, 1) and set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(mask, box_mask((1, 2, 7, 5), tmp_path / "image.png", 8))
    assert box_mask((0, 0, 4, 8), tmp_path / "image.png", 16)[:, :8].all()  # scaled with the image
    with pytest.raises(ValueError, match="8x8"):
        box_mask((0, 0, 9, 4), tmp_path / "image.png", 8)
    # A wide image is fitted like training images, centre cut out; its box goes through the same fit.
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "wide.png")
    expected = np.zeros((8, 8, 1), "float32")
    expected[:, :4] = 1  # columns 2..5 of the 12 are columns 0..3 of the middle 8
    np.testing.assert_array_equal(box_mask((2, 0, 6, 8), tmp_path / "wide.png", 8), expected)


def test_process_is_recorded_as_a_strip_and_a_gif(class_model, tmp_path):
    process = ProcessRecorder()
    Sampler(class_model, steps=4, guidance=2.0).sample(np.array([1, 2, 3]), seed=0, callback=process)
    assert len(process.frames) == 4 and process.levels[0] == pytest.approx(0.95)
    process.save_strip(tmp_path / "strip.png")
    process.save_gif(tmp_path / "process.gif")
    assert Image.open(tmp_path / "strip.png").size[1] > 4 * 30
    with Image.open(tmp_path / "process.gif") as gif:
        assert gif.n_frames == 4 and gif.size[0] >= 3 * 64


@pytest.fixture(scope="module")
def cli_files(class_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("editing-cli")
    class_model.save(folder / "model.keras")
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "image.png")
    return folder


def edit_command(command, cli_files, *words, **options):
    """`denoiser inpaint|img2img` arguments for the tiny model and 8x8 picture of `cli_files`, at 2 steps."""
    model, image = cli_files / "model.keras", cli_files / "image.png"
    return command_line(command, *words, checkpoint=model, image=image, steps=2, **options)


def test_inpaint_and_img2img_commands_write_their_pictures(cli_files, tmp_path):
    common = dict(num=2, label=1)
    pictures = dict(out=tmp_path / "a.png", gif=tmp_path / "a.gif", strip=tmp_path / "a-strip.png")
    assert main(edit_command("inpaint", cli_files, mask_box="0,0,4,8", solver="dpmpp_2m", **common, **pictures)) == 0
    assert main(edit_command("inpaint", cli_files, grow=3, side="bottom", **common, out=tmp_path / "b.png")) == 0
    assert main(edit_command("img2img", cli_files, strength=0.4, **common, out=tmp_path / "c.png")) == 0
    for name in ("a.png", "a.gif", "a-strip.png", "b.png", "c.png"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.parametrize(
    "extra, message",
    [
        (["inpaint", "--mask-box", "0,0,20,4"], "0 <= x0 < x1 <= 8"),
        (["inpaint", "--grow", "9"], "1 to 7 pixels"),
        (["img2img", "--strength", "1.5"], "strength"),
    ],
)
def test_editing_mistakes_are_one_clear_line(cli_files, tmp_path, capsys, extra, message):
    command, *options = extra
    code = main(edit_command(command, cli_files, *options, out=tmp_path / "x.png"))
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and len(error.splitlines()) == 1, error


def test_a_mask_of_another_size_than_the_image_is_refused_not_stretched(cli_files, tmp_path, capsys):
    Image.fromarray(np.full((8, 16), 255, np.uint8)).save(tmp_path / "wide-mask.png")
    with pytest.raises(EditError, match=r"16x8 pixels but the image .* is 8x8; draw the mask at 8x8"):
        mask_from_file(tmp_path / "wide-mask.png", 8, cli_files / "image.png")
    assert mask_from_file(tmp_path / "wide-mask.png", 8).shape == (8, 8, 1)  # without an image: no check
    files = ["--image", str(cli_files / "image.png"), "--mask", str(tmp_path / "wide-mask.png")]
    code = main(["inpaint", "--checkpoint", str(cli_files / "model.keras"), *files, "--out", str(tmp_path / "x.png")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "draw the mask at 8x8" in error and len(error.splitlines()) == 1, error
