"""The quality levers of benchmarks/ablations.py: preconditioning, loss weights, the learning-rate schedule.

Each is a config switch whose old setting reproduces the old behaviour; these tests check what each one
promises in its docstring, and that a run with all of them switched on trains, saves, resumes and samples.
"""

import keras
import numpy as np
import pytest
from helpers import tiny, tiny_config

from denoiser import build_unet, train
from denoiser.config import ConfigError, parse_override
from denoiser.model import DenoiserUNet
from denoiser.objective import training_example
from denoiser.optimizer import WarmupSchedule, learning_rate_schedule
from denoiser.presets import resolve_config
from denoiser.schedule import add_noise, loss_weights, preconditioning_scalings
from denoiser.serialization import load_model, load_sampler

LEVELS = np.array([1e-3, 0.05, 0.3, 0.6, 0.9, 0.999]).reshape(-1, 1)


@pytest.mark.parametrize("data_std", [0.5, 1.0])
def test_preconditioning_gives_unit_scale_input_and_target_at_every_level(data_std):
    rng = np.random.default_rng(0)
    x, eps = data_std * rng.standard_normal((2, 200_000))
    eps /= data_std
    for level in LEVELS.ravel():
        c_in, c_skip, c_out = (float(c) for c in preconditioning_scalings(level, data_std))
        x_t = add_noise(x, eps, level)
        target = (x - c_skip * x_t) / c_out  # what the network's own output F must say
        assert np.std(c_in * x_t) == pytest.approx(1.0, abs=0.01)
        assert np.std(target) == pytest.approx(1.0, abs=0.01)
        if level < 0.95:  # c_skip is the best share of x_t (the regression of x on x_t); at 0.999 it is ~0
            assert c_skip == pytest.approx(np.cov(x, x_t)[0, 1] / np.var(x_t), abs=0.005)


def test_preconditioning_passes_the_image_through_near_zero_noise_and_lets_the_network_speak_at_full_noise():
    _, c_skip, c_out = (np.asarray(c) for c in preconditioning_scalings(np.array([0.0, 1.0]), 0.5))
    np.testing.assert_allclose(c_skip, [1.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(c_out, [0.0, 0.5], atol=1e-7)


def test_loss_weights():
    s = LEVELS.astype("float32")
    np.testing.assert_array_equal(loss_weights(s, "none", 0.5), np.ones_like(s))
    np.testing.assert_allclose(loss_weights(s, "edm", 0.5), 1 / np.asarray(preconditioning_scalings(s, 0.5)[2]), 1e-5)
    min_snr = np.asarray(loss_weights(s, "min_snr", 0.5)).ravel()
    assert min_snr.max() == pytest.approx(5**0.5) and np.all(np.diff(min_snr) <= 0)  # capped, less for noisier
    np.testing.assert_allclose(min_snr[3:], ((1 - s) / s).ravel()[3:], rtol=1e-5)  # sqrt(SNR) below the cap
    with pytest.raises(ValueError, match="'none', 'edm', 'min_snr'"):
        loss_weights(s, "snr", 0.5)


def test_a_weighted_objective_gives_keras_one_weight_per_image():
    config = tiny_config("data.loss_weighting=min_snr")
    images = np.zeros((4, 24, 24, 3), "uint8")
    inputs, x0, weights = training_example(images, np.arange(4), [1, 2], config.data, config.model)
    assert weights.shape == (4, 1, 1)
    np.testing.assert_allclose(weights, loss_weights(inputs[1], "min_snr", 0.5).numpy().reshape(4, 1, 1))
    assert len(training_example(images, np.arange(4), [1, 2], tiny_config().data, config.model)) == 2


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_the_learning_rate_warms_up_then_decays_to_zero_at_the_last_planned_step(decay):
    schedule = WarmupSchedule(1e-3, 10, decay, total_steps=110)
    rates = np.array([float(schedule(step)) for step in range(111)])
    np.testing.assert_allclose(rates[:10], 1e-3 * np.arange(1, 11) / 10, rtol=1e-6)
    assert np.all(np.diff(rates[10:]) <= 1e-12) and rates[110] == pytest.approx(0, abs=1e-9)
    assert rates[60] == pytest.approx(0.5e-3, rel=1e-5)  # half-way down the decay, for cosine and linear alike
    assert float(WarmupSchedule(1e-3, 10)(100)) == pytest.approx(1e-3)  # the old schedule: constant


def test_a_warm_up_fraction_is_a_share_of_the_run():
    train = tiny_config("train.warmup_fraction=0.1", "train.lr_decay=cosine").train
    assert learning_rate_schedule(train, total_steps=300).warmup_steps == 30
    assert learning_rate_schedule(tiny_config("train.warmup_steps=7").train, 300).warmup_steps == 7
    with pytest.raises(ConfigError, match="train.lr_decay"):
        resolve_config("shapes", overrides=[parse_override("train.lr_decay=exponential")])


def test_a_preconditioned_network_starts_as_the_skip_and_survives_safe_mode(tmp_path):
    config = tiny(preconditioning="edm", data_std=0.7)
    model = build_unet(config)
    x = np.random.default_rng(1).standard_normal((3, 8, 8, 1)).astype("float32")
    levels = np.array([[0.1], [0.5], [0.9]], "float32")
    inputs = [x, levels, np.array([[1], [2], [0]])]
    _, c_skip, _ = preconditioning_scalings(levels.reshape(-1, 1, 1, 1), 0.7)
    np.testing.assert_allclose(model(inputs), np.asarray(c_skip) * x, rtol=1e-5)  # F starts at 0
    for weight in model.weights:
        weight.assign(np.random.default_rng(2).normal(0, 0.1, weight.shape))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)
    assert model.layers[-1].name == "x0_hat"  # the output keeps its name for export and the web page


def test_a_run_with_every_lever_on_trains_resumes_and_samples(tmp_path):
    levers = [
        "model.preconditioning=edm",
        "data.loss_weighting=edm",
        "train.lr_decay=cosine",
        "train.warmup_fraction=0.25",
    ]
    config = tiny_config(*levers, "train.epochs=2", "train.steps_per_epoch=4", "train.backup_every=0")
    train(config, tmp_path / "run", verbose=0)
    model = load_model(tmp_path / "run" / "checkpoints" / "latest.keras", compile=True)
    assert float(model.optimizer.learning_rate) == pytest.approx(0, abs=1e-9)  # decayed at the run's end
    images = load_sampler(tmp_path / "run", steps=3).sample(np.array([1, 2]), seed=0)
    assert np.all(np.isfinite(images)) and images.shape == (2, 24, 24, 3)


def test_a_saved_network_from_before_preconditioning_is_rebuilt_without_it():
    saved = tiny().to_dict()
    del saved["preconditioning"]  # what a checkpoint saved before the switch existed holds
    model = DenoiserUNet.from_config({"name": "denoiser_unet", "config": saved, "run_info": {}})
    assert model.config.preconditioning == "none" and "precondition_input" not in [layer.name for layer in model.layers]
