"""Training runs: run directory contents, resume after an interruption, extension, refusals, EMA."""

import os
import shutil
import subprocess
import sys
import textwrap

import helpers
import keras
import numpy as np
import pytest

from denoiser import load_model, train
from denoiser.config import ConfigError, parse_override
from denoiser.optimizer import EMAAdam, ema_variables
from denoiser.rundir import RunDirectory, read_log

# 256 images in batches of 16, three steps an epoch
TRAINING_SETS = ["data.num_images=256", "train.batch_size=16", "train.steps_per_epoch=3", "train.warmup_steps=2"]


def tiny_config(*extra, preset="shapes"):
    """The tiny model and quick sampling of `helpers.tiny_config`, trained three steps an epoch."""
    return helpers.tiny_config(*TRAINING_SETS, *extra, preset=preset)


def test_two_epochs_leave_checkpoints_samples_log_and_config(tmp_path):
    run = RunDirectory(tmp_path / "run")
    model = train(tiny_config("train.epochs=2"), run.path, verbose=0)
    assert run.finished_epochs() == [1, 2]
    assert os.path.isfile(run.latest)
    assert sorted(os.listdir(run.samples)) == ["epoch-0001.png", "epoch-0002.png"]
    assert [row["epoch"] for row in read_log(run.log_path)] == ["1", "2"]
    assert float(read_log(run.log_path)[0]["images_per_second"]) > 0
    assert run.read_config()["train"]["epochs"] == 2
    assert not [name for name in os.listdir(run.checkpoints) if name.startswith(".tmp")]  # no leftovers
    assert model.optimizer.iterations.numpy() == 6


def test_interrupted_run_resumes_after_last_finished_epoch(tmp_path):
    """A crash in epoch 2 loses only epoch 2; rerunning continues there with the optimizer state."""
    config = tiny_config("train.epochs=3")

    class CrashInSecondEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 4:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, callbacks=[CrashInSecondEpoch()], verbose=0)
    run = RunDirectory(tmp_path)
    assert run.finished_epochs() == [1]

    started = []

    class RecordStart(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append((epoch, int(self.model.optimizer.iterations.numpy())))

    train(config, tmp_path, callbacks=[RecordStart()], verbose=0)
    assert started[0] == (1, 3)  # epoch index 1 (the second epoch), after the 3 steps of epoch 1
    assert run.finished_epochs() == [1, 2, 3]


# Weights that move fast and a short average, so the averaged weights differ clearly from the last ones.
FAST_AVERAGE_SETS = ["train.ema_decay=0.9", "train.learning_rate=0.01"]


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished one-epoch run (FAST_AVERAGE_SETS), trained once; the tests that write to it take a copy."""
    path = tmp_path_factory.mktemp("one-epoch") / "run"
    train(tiny_config("train.epochs=1", *FAST_AVERAGE_SETS), path, verbose=0)
    return path


def copy_of(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def test_more_epochs_extend_a_finished_run(one_epoch_run, tmp_path):
    run = copy_of(one_epoch_run, tmp_path)
    model = train(tiny_config("train.epochs=2", *FAST_AVERAGE_SETS), run, verbose=0)
    assert RunDirectory(run).finished_epochs() == [1, 2]
    assert model.optimizer.iterations.numpy() == 6


def test_rerunning_a_finished_run_only_says_it_is_finished(one_epoch_run, tmp_path, capsys):
    run = copy_of(one_epoch_run, tmp_path)
    train(tiny_config("train.epochs=1", *FAST_AVERAGE_SETS), run, verbose=0)
    out = capsys.readouterr().out
    assert f"{run} already finished 1 epoch; raise `train.epochs`." in out
    assert "Resuming" not in out  # nothing is resumed: no "at epoch 2, step 1"
    assert RunDirectory(run).finished_epochs() == [1]


def test_a_different_model_in_the_same_run_dir_is_refused(one_epoch_run, tmp_path):
    run = copy_of(one_epoch_run, tmp_path)
    with pytest.raises(ConfigError, match=r"model\.base_width: 8 -> 16"):
        train(tiny_config("train.epochs=2", "model.base_width=16", *FAST_AVERAGE_SETS), run, verbose=0)
    assert RunDirectory(run).finished_epochs() == [1]  # nothing was touched


def test_checkpoint_holds_averaged_weights_for_sampling(one_epoch_run):
    """The sampling model (ema=True) holds the optimizer's averages, which are not the last weights."""
    path = RunDirectory(one_epoch_run).latest
    raw = load_model(path, compile=True)  # the last weights, and the optimizer with its averages
    averages = ema_variables(raw)
    assert len(averages) == len(raw.trainable_variables)
    averaged = load_model(path, ema=True)
    for variable, loaded in zip(raw.weights, averaged.weights):
        np.testing.assert_array_equal(loaded.numpy(), averages.get(variable.path, variable).numpy())
    assert max(np.abs(averages[v.path].numpy() - v.numpy()).max() for v in raw.trainable_variables) > 1e-4


def test_train_returns_the_averaged_weights_and_its_checkpoint_the_training_ones(tmp_path):
    run = RunDirectory(tmp_path / "run")
    model = train(tiny_config("train.epochs=1", *FAST_AVERAGE_SETS), run.path, verbose=0)
    averaged, raw = load_model(run.latest, ema=True), load_model(run.latest, compile=True)
    for returned, expected in zip(model.weights, averaged.weights):
        np.testing.assert_array_equal(returned.numpy(), expected.numpy(), err_msg=returned.path)
    trained = {v.path: v.numpy() for v in raw.trainable_variables}
    assert max(np.abs(v.numpy() - trained[v.path]).max() for v in model.trainable_variables) > 1e-4


def test_the_average_follows_the_weights_with_a_warming_up_decay():
    """After step k = 0, 1, ... the average (from zero) becomes m_k * average + (1 - m_k) * weights.

    m_k = min(decay, (1 + k) / (10 + k)): early averages follow the weights closely instead of clinging
    to the start, as a fixed decay of 0.999 would.
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=EMAAdam(learning_rate=0.05, use_ema=True, ema_momentum=0.6), loss="mean_squared_error")
    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")
    weights_after_each_step = []

    class RecordWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weights_after_each_step.append({v.path: v.numpy() for v in self.model.trainable_variables})

    model.fit(inputs, targets, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[RecordWeights()])
    assert len(weights_after_each_step) == 16  # the decay reaches its cap of 0.6 at step 14
    expected = {path: np.zeros_like(value) for path, value in weights_after_each_step[0].items()}
    for step, weights in enumerate(weights_after_each_step):
        momentum = 0.0 if step == 0 else min(0.6, (1 + step) / (10 + step))  # the first step copies the weights
        expected = {path: momentum * expected[path] + (1 - momentum) * weights[path] for path in weights}
    averages = ema_variables(model)
    assert sorted(averages) == sorted(expected)
    for path, average in averages.items():
        np.testing.assert_allclose(average.numpy(), expected[path], rtol=1e-5, atol=1e-6)


def test_mixed_precision_checkpoint_loads_and_runs(tmp_path):
    config = tiny_config("train.epochs=1", "train.mixed_precision=true")
    train(config, tmp_path, verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    model = load_model(RunDirectory(tmp_path).latest, ema=True)
    size = config.model.image_size
    output = model([np.zeros((2, size, size, 3), "float32"), np.full((2, 1), 0.5, "float32"), np.ones((2, 1), "int32")])
    assert output.shape == (2, size, size, 3) and np.all(np.isfinite(output))


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_devices(tmp_path):
    """`train.distribute=mirrored` trains across devices; two logical CPUs stand in for two GPUs."""
    sets = [*helpers.TINY_MODEL_SETS, *helpers.QUICK_SAMPLE_SETS, *TRAINING_SETS, "train.epochs=1"]
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from denoiser import resolve_config, train
        from denoiser.config import parse_override
        from denoiser.training import make_strategy
        assert make_strategy("mirrored").num_replicas_in_sync == 2
        overrides = {sets!r} + ["train.distribute=mirrored"]
        train(resolve_config("shapes", overrides=[parse_override(o) for o in overrides]), {str(tmp_path)!r}, verbose=0)
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
    assert RunDirectory(tmp_path).finished_epochs() == [1]


def test_bad_override_names_the_key():
    with pytest.raises(ConfigError, match="train.epochs"):
        tiny_config("train.epochs=-1")
    with pytest.raises(ConfigError, match="model.base_widht"):
        tiny_config("model.base_widht=3")
    with pytest.raises(ConfigError, match="section.key"):
        parse_override("epochs=3")
    with pytest.raises(ConfigError, match="train.learning_rate must be a number"):
        tiny_config("train.learning_rate=fast")


def test_exponents_without_a_dot_are_numbers():
    """YAML 1.1 reads 1e-3 as a string; a float field takes it as the number it means."""
    assert tiny_config("train.learning_rate=1e-3").train.learning_rate == pytest.approx(0.001)


def test_an_unconditional_model_trains_and_samples(tmp_path):
    """With model.condition=none the batches carry no condition, and the network gets (x_t, s) only."""
    config = helpers.tiny_config(
        "train.epochs=1", "train.steps_per_epoch=2", "model.condition=none", "model.cross_attention=[false,false]"
    )
    model = train(config, tmp_path, verbose=0)
    assert [tensor.name for tensor in model.inputs] == ["noisy_images", "noise_level"]
    assert len(read_log(RunDirectory(tmp_path).log_path)) == 1
    assert os.path.exists(RunDirectory(tmp_path).sample_grid(1))
