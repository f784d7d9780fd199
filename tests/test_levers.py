"""The quality levers of benchmarks/ablations.py: preconditioning, loss weights and norm, the training levels, Adam's
beta_2, the learning-rate schedule (decay or cool-down).

Each is a config switch whose old setting reproduces the old behaviour; these tests check what each one
promises in its docstring, and that a run with all of them switched on trains, saves, resumes and samples.
"""

import keras
import numpy as np
import pytest
from helpers import tiny, tiny_config

from denoiser import build_unet, train
from denoiser.config import SECTIONS, ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig, parse_override
from denoiser.model import DenoiserUNet
from denoiser.objective import loss, training_example
from denoiser.optimizer import WarmupSchedule, learning_rate_schedule, make_optimizer
from denoiser.presets import resolve_config
from denoiser.schedule import MIN_SNR_GAMMA, add_noise, loss_weights, preconditioning_scalings
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


def test_a_squared_loss_takes_min_snr_unrooted_and_edms_one_over_c_out_squared():
    s = LEVELS.astype("float32")
    snr = ((1 - s) / s) ** 2
    min_snr = np.asarray(loss_weights(s, "min_snr", 0.5, "l2"))
    np.testing.assert_allclose(min_snr, np.minimum(snr, 5.0), rtol=1e-5)  # min(SNR, 5), not its square root
    assert min_snr.max() == MIN_SNR_GAMMA and min_snr[-1, 0] == pytest.approx(snr[-1, 0], rel=1e-4)
    c_out = np.asarray(preconditioning_scalings(s, 0.5)[2])
    np.testing.assert_allclose(loss_weights(s, "edm", 0.5, "l2"), 1 / c_out**2, rtol=1e-5)
    np.testing.assert_array_equal(loss_weights(s, "none", 0.5, "l2"), np.ones_like(s))
    for weighting in ("none", "edm", "min_snr"):  # l1 is the default, and the weights as before
        np.testing.assert_array_equal(loss_weights(s, weighting, 0.5, "l1"), loss_weights(s, weighting, 0.5))
    with pytest.raises(ValueError, match="'l1', 'l2'"):
        loss_weights(s, "min_snr", 0.5, "l3")


def test_the_loss_norm_is_the_per_pixel_distance_weighted_per_image():
    x0_hat, x = np.zeros((2, 2, 2, 1), "float32"), np.full((2, 2, 2, 1), 3.0, "float32")
    weights = np.array([1.0, 0.5], "float32").reshape(2, 1, 1)
    assert float(loss()(x, x0_hat)) == pytest.approx(3.0)  # l1, the default
    assert float(loss("l2")(x, x0_hat)) == pytest.approx(9.0)
    assert float(loss("l2")(x, x0_hat, sample_weight=weights)) == pytest.approx(9.0 * 0.75)
    assert isinstance(loss("l1"), keras.losses.MeanAbsoluteError)
    config = tiny_config("data.loss_norm=l2", "data.loss_weighting=min_snr")
    images = np.zeros((4, 24, 24, 3), "uint8")
    inputs, _, weights = training_example(images, np.arange(4), [1, 2], config.data, config.model)
    np.testing.assert_allclose(weights, np.minimum(((1 - inputs[1]) / inputs[1]) ** 2, 5).reshape(4, 1, 1), 1e-5)
    with pytest.raises(ConfigError, match="data.loss_norm must be one of 'l1', 'l2'"):
        tiny_config("data.loss_norm=huber")


def test_the_training_levels_follow_the_location_and_scale_with_logit_normal_only():
    config = tiny_config("data.noise_distribution=logit_normal", "data.noise_location=-1.5", "data.noise_scale=0.5")
    images = np.zeros((4000, 1, 1, 3), "uint8")
    inputs, _ = training_example(images, np.zeros(4000, "int32"), [3, 4], config.data, config.model)
    assert np.median(inputs[1]) == pytest.approx(1 / (1 + np.exp(1.5)), abs=0.01)  # sigmoid(location)
    assert np.log(inputs[1] / (1 - inputs[1])).std() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(ConfigError, match="data.noise_scale must be a positive number"):
        DataConfig(noise_distribution="logit_normal", noise_scale=0.0)
    assert DataConfig(noise_scale=0.0).noise_scale == 0.0  # unused by the folded normal
    assert RunConfig().unused_settings() >= {"data.noise_location", "data.noise_scale"}


def test_adams_beta_2_reaches_the_optimizer():
    assert make_optimizer(tiny_config("train.adam_beta_2=0.95"), total_steps=10).beta_2 == 0.95
    assert make_optimizer(tiny_config(), total_steps=10).beta_2 == keras.optimizers.Adam().beta_2 == 0.999
    for bad in (0.0, 1.0):
        with pytest.raises(ConfigError, match=r"train.adam_beta_2 must be a number in \(0, 1\)"):
            TrainConfig(adam_beta_2=bad)


def test_the_new_switches_default_to_todays_behaviour_and_old_runs_take_it_too():
    new = {"data": ["loss_norm", "noise_location", "noise_scale"], "train": ["adam_beta_2", "cooldown_fraction"]}
    for name, keys in new.items():
        section = SECTIONS[name]
        for key in keys:
            assert section.ADDED[key] == getattr(section(), key), f"{name}.{key}"
    saved = RunConfig().to_dict()
    for name, keys in new.items():
        for key in keys:
            del saved[name][key]  # what a run directory made before these switches holds
    assert RunConfig.from_saved(saved) == RunConfig()


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


def test_a_cool_down_keeps_the_peak_then_falls_linearly_to_zero_at_the_last_planned_step():
    train = tiny_config("train.warmup_steps=10", "train.learning_rate=1e-3", "train.cooldown_fraction=0.2").train
    schedule = learning_rate_schedule(train, total_steps=100)
    assert (schedule.warmup_steps, schedule.cooldown_steps) == (10, 20)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(1e-4)  # the warm-up's first step
    np.testing.assert_allclose(rates[9:81], 1e-3, rtol=1e-6)  # the peak, mid-run included, to the cool-down's start
    assert rates[90] == pytest.approx(0.5e-3, rel=1e-5)  # half-way down
    assert rates[100] == 0.0 and np.all(np.diff(rates[80:]) < 0)  # linearly to 0 at the end
    np.testing.assert_allclose(np.diff(rates[80:]), -1e-3 / 20, rtol=1e-4)
    restored = WarmupSchedule.from_config(schedule.get_config())
    assert [float(restored(step)) for step in (50, 90)] == [float(schedule(step)) for step in (50, 90)]
    old = {"learning_rate": 1e-3, "warmup_steps": 10, "decay": "none", "total_steps": 100}  # a checkpoint's
    assert float(WarmupSchedule.from_config(old)(100)) == pytest.approx(1e-3)  # no cool-down


def test_a_cool_down_is_refused_with_a_decay():
    with pytest.raises(ConfigError, match="set train.lr_decay=none or train.cooldown_fraction=0"):
        TrainConfig(lr_decay="cosine", cooldown_fraction=0.1)
    assert TrainConfig(lr_decay="linear", cooldown_fraction=0.0).cooldown_fraction == 0.0
    with pytest.raises(ValueError, match="cool-down"):
        WarmupSchedule(1e-3, 10, "cosine", total_steps=100, cooldown_steps=10)


def test_edm_loss_weights_without_edm_preconditioning_are_refused_naming_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="data.loss_weighting=edm needs model.preconditioning=edm") as error:
        tiny_config("data.loss_weighting=edm")
    assert "\n" not in str(error.value) and "set model.preconditioning=edm" in str(error.value)
    config = RunConfig(DataConfig(loss_weighting="edm"), ModelConfig())
    with pytest.raises(ConfigError, match="model.preconditioning=edm"):
        config.validate()  # what train() checks first
    with pytest.raises(ConfigError, match="model.preconditioning=edm"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert tiny_config("data.loss_weighting=edm", "model.preconditioning=edm").model.data_std == 0.5
    assert "model.data_std" not in tiny_config("data.loss_weighting=edm", "model.preconditioning=edm").unused_settings()
    # A run directory saved with the combination still loads (to sample from); only training refuses it.
    assert RunConfig.from_saved(config.to_dict()).data.loss_weighting == "edm"


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
        "train.adam_beta_2=0.99",
        "data.loss_norm=l2",
        "data.noise_distribution=logit_normal",
        "data.noise_location=-0.5",
    ]
    config = tiny_config(*levers, "train.epochs=2", "train.steps_per_epoch=4", "train.backup_every=0")
    train(config, tmp_path / "run", verbose=0)
    model = load_model(tmp_path / "run" / "checkpoints" / "latest.keras", compile=True)
    assert float(model.optimizer.learning_rate) == pytest.approx(0, abs=1e-9)  # decayed at the run's end
    assert model.optimizer.beta_2 == 0.99 and isinstance(model.loss, keras.losses.MeanSquaredError)
    images = load_sampler(tmp_path / "run", steps=3).sample(np.array([1, 2]), seed=0)
    assert np.all(np.isfinite(images)) and images.shape == (2, 24, 24, 3)


def test_a_saved_network_from_before_preconditioning_is_rebuilt_without_it():
    saved = tiny().to_dict()
    del saved["preconditioning"]  # what a checkpoint saved before the switch existed holds
    model = DenoiserUNet.from_config({"name": "denoiser_unet", "config": saved, "run_info": {}})
    assert model.config.preconditioning == "none" and "precondition_input" not in [layer.name for layer in model.layers]
