"""Cascaded super-resolution: the SR network, its training objective, cascades of samplers, the commands."""

import json
import os

import keras
import numpy as np
import pytest
import yaml
from helpers import randomize_weights, tiny, tiny_train_args
from PIL import Image

from denoiser import resolve_config
from denoiser.cascade import Cascade, upscale
from denoiser.cli import main
from denoiser.config import DataConfig, RunConfig, TrainConfig
from denoiser.data.dataset import Dataset
from denoiser.data.pipeline import training_pipeline
from denoiser.evaluation.classifier import build_classifier, cache_path
from denoiser.model import build_unet
from denoiser.objective import loss, scale_images
from denoiser.rundir import RunDirectory
from denoiser.sampler import Sampler
from denoiser.serialization import load_model
from denoiser.utils.images import downsample


def tiny_sr(**changes):
    """A tiny 8 -> 16 super-resolution stage (class-conditioned unless `changes` say otherwise)."""
    return tiny(**{"image_size": 16, "low_resolution": 8, **changes})


def sr_inputs(batch=2, augmentation=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((batch, 16, 16, 1)).astype("float32"),
        np.full((batch, 1), 0.5, "float32"),
        np.array([[1], [2]], "int32")[:batch],
        rng.uniform(-1, 1, (batch, 8, 8, 1)).astype("float32"),
        np.full((batch, 1), augmentation, "float32"),
    ]


def test_sr_network_shapes_and_safe_mode_round_trip(tmp_path):
    model = build_unet(tiny_sr())
    randomize_weights(model, scale=0.1)
    assert [tensor.name for tensor in model.inputs][3:] == ["low_resolution_images", "augmentation_level"]
    output = keras.ops.convert_to_numpy(model(sr_inputs()))
    assert output.shape == (2, 16, 16, 1)
    path = tmp_path / "sr.keras"
    model.save(path)
    loaded = load_model(path)  # safe_mode=True
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(sr_inputs())), output, atol=1e-5)
    assert loaded.config == model.config and loaded.config.low_resolution == 8


def test_the_augmentation_level_changes_the_output():
    model = build_unet(tiny_sr())
    randomize_weights(model, scale=0.1)
    clean, augmented = (keras.ops.convert_to_numpy(model(sr_inputs(augmentation=a))) for a in (0.0, 0.3))
    assert np.abs(clean - augmented).max() > 1e-3


def test_the_low_resolution_size_must_divide_the_image_size():
    with pytest.raises(ValueError, match="model.low_resolution=6 must be smaller than model.image_size=16"):
        tiny_sr(low_resolution=6)


def test_the_sr_example_holds_the_real_image_made_small_and_noised_at_its_level():
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 1)).astype("uint8")
    config = tiny_sr(condition="none", cross_attention=[False, False])
    dataset = Dataset(images, np.zeros(32, "int32"))
    run_config = RunConfig(model=config, train=TrainConfig(batch_size=8))
    (x_t, levels, low, augmentation), x0 = next(iter(training_pipeline(dataset, run_config)))
    assert x_t.shape == (8, 16, 16, 1) and low.shape == (8, 8, 8, 1) and augmentation.shape == (8, 1)
    expected = downsample(x0, 8)
    clean = augmentation.numpy().ravel() < 0.01
    assert 0.0 <= augmentation.numpy().min() and augmentation.numpy().max() <= 0.3
    errors = np.abs(low - expected).mean(axis=(1, 2, 3))
    assert np.all(errors[~clean] > 0) and np.corrcoef(errors, augmentation.numpy().ravel())[0, 1] > 0.9


# ================================================================================ learning beats bicubic
def rectangles(count, size=16, seed=0):
    """White axis-aligned rectangles on black, with edges at any pixel: sharp edges that bicubic blurs."""
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, size - 4, (2, count))
    height, width = rng.integers(4, size, (2, count))
    y, x = np.arange(size)[None, :, None], np.arange(size)[None, None, :]
    rows = (y >= top[:, None, None]) & (y < (top + height)[:, None, None])
    inside = rows & (x >= left[:, None, None]) & (x < (left + width)[:, None, None])
    return (inside * 255).astype("uint8")[..., None]


def test_a_tiny_sr_stage_trained_briefly_beats_bicubic_on_held_out_images():
    keras.utils.set_random_seed(0)
    images = rectangles(1024 + 64)
    config = tiny_sr(condition="none", base_width=16, self_attention=[False, False], cross_attention=[False, False])
    model = build_unet(config)
    model.compile(keras.optimizers.Adam(3e-3), loss=loss())
    run_config = RunConfig(DataConfig(noise_distribution="uniform"), config, TrainConfig(batch_size=32))
    batches = training_pipeline(Dataset(images[:1024], np.zeros(1024, "int32")), run_config)
    model.fit(batches, steps_per_epoch=160, epochs=1, verbose=0, shuffle=False)

    held_out = np.asarray(scale_images(images[1024:]))
    low = np.asarray(downsample(held_out, 8))
    bicubic = np.clip(keras.ops.convert_to_numpy(keras.ops.image.resize(low, (16, 16), interpolation="bicubic")), -1, 1)
    # A plain clip to [-1, 1]: dynamic thresholding would shrink every pixel of a briefly trained model that
    # overshoots a little, and these images are all at -1 or 1.
    sampler = Sampler(model, steps=4, augmentation_level=0.0, threshold_percentile=None)
    upscaled = upscale(sampler, low, seed=0)
    sr_error, bicubic_error = np.abs(upscaled - held_out).mean(), np.abs(bicubic - held_out).mean()
    assert sr_error < 0.5 * bicubic_error, (sr_error, bicubic_error)


# ================================================================================ cascades
@pytest.fixture(scope="module")
def samplers():
    base = build_unet(tiny(image_size=8))
    stage = build_unet(tiny_sr())
    for seed, model in enumerate((base, stage)):
        randomize_weights(model, seed, scale=0.1)
    return Sampler(base, steps=2, guidance=2.0), Sampler(stage, steps=3, guidance=1.5)


def test_cascade_sampling_is_deterministic_under_a_seed_and_has_the_last_stages_size(samplers):
    cascade = Cascade(list(samplers))
    seen = []
    first = cascade.sample(np.array([1, 2, 3]), seed=4, callback=lambda stage, step, *_: seen.append((stage, step)))
    assert first.shape == (3, 16, 16, 1)
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    np.testing.assert_array_equal(cascade.sample(np.array([1, 2, 3]), seed=4), first)
    assert not np.array_equal(cascade.sample(np.array([1, 2, 3]), seed=5), first)
    base_images, final = cascade.sample_stages(np.array([1, 2, 3]), seed=4)
    assert base_images.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(final, first)


def test_a_stage_that_does_not_upscale_the_previous_output_is_refused_naming_both_sizes(samplers):
    base = Sampler(build_unet(tiny(image_size=12)), steps=2)
    with pytest.raises(ValueError) as error:
        Cascade([base, samplers[1]])
    message = str(error.value)
    assert "8x8" in message and "12x12" in message and "\n" not in message


# ================================================================================ runs and commands
def write_run(root, model_config, sample_sets=None):
    """A run directory with a random-weight model of `model_config` and the shapes preset's settings."""
    config = resolve_config("shapes", overrides=[{"model": model_config.to_dict(), "sample": sample_sets or {}}])
    model = build_unet(config.model)
    randomize_weights(model, scale=0.1)
    os.makedirs(os.path.join(root, "checkpoints"), exist_ok=True)
    model.save(os.path.join(root, "checkpoints", "latest.keras"))
    with open(os.path.join(root, "config.yaml"), "w") as handle:
        yaml.safe_dump(config.to_dict(), handle)
    return str(root)


def test_cli_sample_with_upscale_and_upscale_a_picture(tmp_path, capsys):
    base = write_run(tmp_path / "base", tiny(image_size=8), {"steps": 2})
    stage = write_run(tmp_path / "sr", tiny_sr(), {"steps": 2, "guidance": 1.0})
    out, npz, strip = tmp_path / "grid.png", tmp_path / "grid.npz", tmp_path / "strip.png"
    args = ["sample", "--checkpoint", base, "--upscale", stage, "--label", "2", "--num", "2", "--out", str(out)]
    assert main([*args, "--npz", str(npz), "--strip", str(strip)]) == 0
    assert np.load(npz)["images"].shape == (2, 16, 16, 1) and os.path.isfile(strip)

    picture = tmp_path / "low.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)).save(picture)
    high = tmp_path / "high.png"
    assert main(["upscale", "--checkpoint", stage, "--image", str(picture), "--label", "1", "--out", str(high)]) == 0
    assert Image.open(high).size == (16, 16)

    capsys.readouterr()
    assert main(["upscale", "--checkpoint", base, "--image", str(picture), "--out", str(high)]) == 2
    assert "is a base model, not a super-resolution stage" in capsys.readouterr().err
    wrong = write_run(tmp_path / "wrong", tiny(image_size=12), {"steps": 2})
    assert main(["sample", "--checkpoint", wrong, "--upscale", stage, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "8x8" in error and "12x12" in error and error.count("\n") == 1


@pytest.mark.slow
def test_an_sr_stage_trains_into_its_run_directory_with_grids_and_resumes(tmp_path):
    sets = ["model.low_resolution=12", "model.cross_attention=[false, false]", "model.self_attention=[false, false]"]
    assert main(tiny_train_args(tmp_path, *sets)) == 0
    assert main(tiny_train_args(tmp_path, *sets, epochs=2)) == 0
    run = RunDirectory(tmp_path)
    assert run.finished_epochs() == [1, 2]
    assert os.path.isfile(run.sample_grid(2))
    assert load_model(run.latest).config.low_resolution == 12


@pytest.mark.extra("onnx")
def test_an_sr_stage_exports_to_onnx_with_its_low_resolution(tmp_path):
    from denoiser.deploy.onnx import export_onnx

    stage = write_run(tmp_path / "sr", tiny_sr(), {"steps": 2})
    description = export_onnx(stage, tmp_path / "web")
    assert description["inputs"][3:] == ["low_resolution_images", "augmentation_level"]
    assert description["super_resolution"] == {"low_resolution": 8, "augmentation_level": 0.1}
    assert description["parity_max_abs_difference"] <= 1e-4


# ================================================================================ evaluating an SR stage
def test_an_sr_stage_is_evaluated_as_an_upscaler_in_training_and_by_the_command(tmp_path, capsys):
    classifier = cache_path("shapes", 16)  # an untrained stand-in: this checks what is measured, not how well
    if not os.path.exists(classifier):
        os.makedirs(os.path.dirname(classifier), exist_ok=True)
        build_classifier((16, 16, 3), num_classes=8, width=4).save(classifier)
    sets = ["model.image_size=16", "model.low_resolution=8", "model.self_attention=[false, false]"]
    sets += ["model.cross_attention=[false, false]", "train.evaluate_every=1", "train.evaluate_num=8"]
    assert main(tiny_train_args(tmp_path, *sets)) == 0
    during_training = json.load(open(tmp_path / "evaluation" / "epoch-0001.json"))

    out = tmp_path / "scores.json"
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--num", "6", "--steps", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "real images of the test split, made 8x8 and upscaled" in printed and "bicubic" in printed
    for results, count in ((during_training, 8), (json.load(open(out)), 6)):
        upscaling = results["upscaling"]
        assert results["num_samples"] == count and upscaling["source"] == "test split"
        assert upscaling["low_resolution"] == 8 and "area downsampling" in upscaling["measures"]
        assert upscaling["mean_abs_error"] > 0 and upscaling["bicubic_mean_abs_error"] > 0
        correct = results["conditional_accuracy"] * count  # judged against the test images' own classes
        assert correct == pytest.approx(round(correct), abs=1e-6)
        assert np.isfinite(upscaling["bicubic_classifier_fd"])
        assert "memorization" not in results  # upscaled held-out images follow them by construction
