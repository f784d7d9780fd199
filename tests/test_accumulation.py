"""Gradient accumulation (train.accumulate_steps): k batches of B images train as one batch of k * B.

The optimizer counts real updates (its learning-rate schedule and its average advance once per k batches), the
pipeline draws each update's k * B images and noise as the larger batch's run does, and a run resumes inside an
epoch as if never interrupted.
"""

import helpers
import keras
import numpy as np
import pytest

from denoiser import train
from denoiser.config import RunConfig, TrainConfig
from denoiser.optimizer import learning_rate_schedule, make_optimizer
from denoiser.rundir import RunDirectory, read_log

# Steps of 16 images, three an epoch, a backup every 2 steps; fast-moving weights and a short average. The model
# is unconditional: a class embedding's gradient is sparse (tf.IndexedSlices), and for a class that appears twice
# in a batch Keras's Adam adds the squares of the two slices to its second moment instead of squaring their sum,
# while accumulated gradients are summed into a dense tensor first, so a class model's embedding would differ.
RUN_SETS = [
    "model.condition=none",
    "model.cross_attention=[false,false]",
    "data.num_images=64",
    "train.batch_size=16",
    "train.steps_per_epoch=3",
    "train.warmup_steps=2",
    "train.backup_every=2",
    "train.epochs=2",
    "train.learning_rate=0.01",
    "train.ema_decay=0.9",
]
ACCUMULATED = ["train.batch_size=8", "train.accumulate_steps=2"]  # the same steps, from two batches of 8


def tiny_config(*extra):
    return helpers.tiny_config(*RUN_SETS, *extra)


# ================================================================================== the optimizer
def optimizer_run(accumulate: int, gradients: list[np.ndarray]) -> list[dict]:
    """make_optimizer's EMAAdam on one variable, fed `gradients` one at a time; after each: the learning rate it
    used, the weights, the average and the updates counted."""
    config = RunConfig(
        train=TrainConfig(
            accumulate_steps=accumulate, learning_rate=0.1, warmup_steps=3, lr_decay="cosine", ema_decay=0.9
        )
    )
    optimizer = make_optimizer(config, total_steps=8)
    variable = keras.Variable(np.zeros(3, "float32"))
    states = []
    for gradient in gradients:
        rate = float(optimizer.learning_rate)
        optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
        average = optimizer._model_variables_moving_average[0]
        states.append(
            {
                "rate": rate,
                "weights": variable.numpy(),
                "average": average.numpy(),
                "updates": int(optimizer.iterations),
            }
        )
    return states


K = 3
GRADIENTS = [np.random.default_rng(n).normal(size=3).astype("float32") for n in range(K * 6)]


def test_the_learning_rate_after_n_batches_is_the_schedules_at_n_over_k():
    schedule = learning_rate_schedule(TrainConfig(learning_rate=0.1, warmup_steps=3, lr_decay="cosine"), 8)
    states = optimizer_run(K, GRADIENTS)
    for batches, state in enumerate(states):  # state: after the batch that `batches` batches came before
        assert state["rate"] == pytest.approx(float(schedule(batches // K)), rel=1e-6)
        assert state["updates"] == (batches + 1) // K
    assert states[0]["rate"] < states[K]["rate"] and states[-1]["rate"] < 0.1  # warmed up, then decayed


def test_weights_and_average_move_on_real_updates_only_and_as_with_the_mean_gradient():
    accumulated = optimizer_run(K, GRADIENTS)
    means = [np.mean(GRADIENTS[start : start + K], axis=0) for start in range(0, len(GRADIENTS), K)]
    whole = optimizer_run(1, means)
    for batches, state in enumerate(accumulated, start=1):
        updates = batches // K
        if batches % K:  # inside an update: nothing moves, the average neither
            before = accumulated[batches - 2] if batches > 1 else {"weights": 0, "average": 0}
            np.testing.assert_array_equal(state["weights"], before["weights"])
            np.testing.assert_array_equal(state["average"], before["average"])
        else:  # the k-th batch: the update a batch k times larger makes
            np.testing.assert_allclose(state["weights"], whole[updates - 1]["weights"], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(state["average"], whole[updates - 1]["average"], rtol=1e-5, atol=1e-7)
    assert np.abs(accumulated[-1]["average"] - accumulated[-1]["weights"]).max() > 1e-3  # a real average


# ================================================================================== whole runs
def assert_same_training(run_dir, reference_dir):
    weights, averages = helpers.raw_weights_and_averages(run_dir)
    expected_weights, expected_averages = helpers.raw_weights_and_averages(reference_dir)
    for got, expected in zip(weights + averages, expected_weights + expected_averages):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    rows, expected_rows = read_log(RunDirectory(run_dir).log_path), read_log(RunDirectory(reference_dir).log_path)
    assert [row["learning_rate"] for row in rows] == [row["learning_rate"] for row in expected_rows]
    for row, expected in zip(rows, expected_rows):
        assert float(row["loss"]) == pytest.approx(float(expected["loss"]), rel=1e-4)


@pytest.fixture(scope="module")
def one_batch_run(tmp_path_factory):
    """The reference: two epochs of three steps of 16 images, uninterrupted."""
    path = tmp_path_factory.mktemp("batch-16") / "run"
    train(tiny_config(), path, verbose=0)
    return path


def test_two_batches_of_8_train_as_one_of_16(one_batch_run, tmp_path):
    model = train(tiny_config(*ACCUMULATED), tmp_path, verbose=0)
    assert int(model.optimizer.iterations) == 6 and int(model.optimizer._iterations) == 12  # updates, batches
    assert RunDirectory(tmp_path).read_config()["train"]["accumulate_steps"] == 2
    assert_same_training(tmp_path, one_batch_run)
    weights, averages = helpers.raw_weights_and_averages(tmp_path)
    assert max(np.abs(w - a).max() for w, a in zip(weights, averages)) > 1e-4  # the comparison is not vacuous


@pytest.mark.slow
def test_an_accumulating_run_resumes_inside_an_epoch_as_if_never_interrupted(one_batch_run, tmp_path, capsys):
    run = RunDirectory(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(*ACCUMULATED), run.path, callbacks=[helpers.StopAfterStep(5)], verbose=0)
    # backup_every=2 steps: after update 4, which is batch 8 (Keras's steps, which name the backups)
    assert run.finished_epochs() == [1] and run.backup_steps() == [8]
    train(tiny_config(*ACCUMULATED), run.path, verbose=0)
    assert f"Resuming {run.path} at epoch 2, step 3 from" in capsys.readouterr().out  # the 3rd batch of 6
    assert run.finished_epochs() == [1, 2] and run.backup_steps() == []
    assert_same_training(run.path, one_batch_run)
