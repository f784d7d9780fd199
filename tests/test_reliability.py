"""Runs that survive anything: NaN stops, mid-epoch resume, kills at any moment, locks, changed settings."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time

import helpers
import keras
import numpy as np
import pytest

import denoiser.callbacks
import denoiser.utils.locks
from denoiser import train
from denoiser.config import ConfigError, RunConfig, TrainConfig, load_yaml
from denoiser.data.cache import fill_array, partial_path
from denoiser.data.captions import read_captions
from denoiser.data.dataset import Dataset
from denoiser.data.pipeline import training_pipeline
from denoiser.presets import resolve_config
from denoiser.rundir import RunDirectory, TrainingError, read_log
from denoiser.serialization import CheckpointError, load_model
from denoiser.utils.files import write_json, write_text

# 3 steps an epoch, a backup every 2 steps.
RUN_SETS = ["data.num_images=64", "train.batch_size=16", "train.steps_per_epoch=3", "train.warmup_steps=2"]


def tiny_config(*extra):
    return helpers.tiny_config(*RUN_SETS, "train.backup_every=2", *extra)


def assert_finite(path):
    model = load_model(path, compile=True)
    for variable in [*model.weights, *model.optimizer.variables]:
        assert np.isfinite(keras.ops.convert_to_numpy(variable.value)).all(), (path, variable.path)


def saved_files(run):
    folders = [run.checkpoints, run.backups]
    return [os.path.join(f, name) for f in folders if os.path.isdir(f) for name in os.listdir(f)]


def test_pipeline_started_at_a_step_gives_the_same_batches():
    """Step k of a run is a pure function of (seed, k): starting there replays nothing and changes nothing."""
    rng = np.random.default_rng(0)
    dataset = Dataset(rng.integers(0, 255, (40, 4, 4, 1), dtype=np.uint8), rng.integers(1, 4, 40))
    config = RunConfig(train=TrainConfig(batch_size=16, seed=3))
    whole = [np.asarray(x[0][0]) for x in training_pipeline(dataset, config).take(7)]
    resumed = [np.asarray(x[0][0]) for x in training_pipeline(dataset, config, start_step=5).take(2)]
    np.testing.assert_array_equal(resumed[0], whole[5])  # pass 2 (2 steps a pass), crossing into pass 3
    np.testing.assert_array_equal(resumed[1], whole[6])


@pytest.mark.slow
def test_nan_loss_stops_at_once_and_saves_nothing_non_finite(tmp_path):
    class PoisonAtStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 4:  # the 5th step: epoch 2, step 2
                weight = self.model.trainable_weights[0]
                weight.assign(np.full(weight.shape, np.nan, weight.dtype))

    run = RunDirectory(tmp_path)
    with pytest.raises(TrainingError, match=r"^The loss became nan at epoch 2, step 2;"):
        train(tiny_config("train.epochs=3", "train.backup_every=1"), run.path, callbacks=[PoisonAtStep()], verbose=0)
    assert run.finished_epochs() == [1]
    assert run.backup_steps() == [4]
    for path in saved_files(run):
        assert_finite(path)
    assert not os.path.exists(run.lock_path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A finished 2-epoch run and its final weights."""
    path = tmp_path_factory.mktemp("uninterrupted")
    model = train(tiny_config("train.epochs=2"), path, verbose=0)
    return RunDirectory(path), [keras.ops.convert_to_numpy(w) for w in model.weights]


@pytest.mark.slow
def test_resume_inside_an_epoch_continues_as_if_never_interrupted(tmp_path, uninterrupted, capsys):
    _, expected = uninterrupted
    run = RunDirectory(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config("train.epochs=2"), run.path, callbacks=[helpers.StopAfterStep(5)], verbose=0)
    assert run.finished_epochs() == [1] and run.backup_steps() == [4]  # step 5 lost: less than backup_every

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open(run.lock_path, "w") as handle:  # a lock left by a killed trainer is taken over
        handle.write(f'{{"pid": {int(dead.stdout)}, "host": "{socket.gethostname()}"}}')
    model = train(tiny_config("train.epochs=2"), run.path, verbose=0)
    out = capsys.readouterr().out
    assert "Taking over" in out and f"Resuming {run.path} at epoch 2, step 2 from" in out
    assert model.optimizer.iterations.numpy() == 6
    for weight, reference in zip(model.weights, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(weight), reference, rtol=1e-5, atol=1e-6)
    assert run.backup_steps() == [] and run.finished_epochs() == [1, 2]
    rows, whole_rows = read_log(run.log_path), read_log(uninterrupted[0].log_path)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    # epoch 2's loss is the mean over all three of its steps, the one before the backup included
    assert float(rows[1]["loss"]) == pytest.approx(float(whole_rows[1]["loss"]), rel=1e-5)


@pytest.mark.slow
def test_resume_inside_the_first_of_two_epochs_ends_with_the_uninterrupted_weights(tmp_path, uninterrupted):
    """Resuming inside an epoch that is not the last takes two `fit` calls (the rest of the epoch, then the other
    epochs); the second must go on from the training weights, not from their average, which Keras's `fit` would
    leave in the model at its end."""
    config = tiny_config("train.epochs=2")
    whole, resumed = uninterrupted[0], RunDirectory(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(config, resumed.path, callbacks=[helpers.StopAfterStep(2)], verbose=0)
    assert resumed.finished_epochs() == [] and resumed.backup_steps() == [2]  # resumes at epoch 1, step 3
    train(config, resumed.path, verbose=0)

    weights, averages = helpers.raw_weights_and_averages(resumed.path)
    expected_weights, expected_averages = helpers.raw_weights_and_averages(whole.path)
    for got, expected in zip(weights + averages, expected_weights + expected_averages):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path):
    run = RunDirectory(tmp_path)
    with run.lock():
        with pytest.raises(TrainingError, match=rf"in use by process {os.getpid()} on {socket.gethostname()};"):
            train(tiny_config(), run.path, verbose=0)
    assert not os.path.exists(run.lock_path)


def test_a_trial_run_does_not_count_as_epochs_of_a_longer_one(uninterrupted, tmp_path):
    run = RunDirectory(tmp_path / "run")
    shutil.copytree(uninterrupted[0].path, run.path)
    with pytest.raises(ConfigError, match=r"train\.steps_per_epoch: 3 -> 50\. Use a new `run_dir`"):
        train(tiny_config("train.epochs=2", "train.steps_per_epoch=50"), run.path, verbose=0)
    with pytest.raises(ConfigError, match=r"train\.seed: 0 -> 1"):
        train(tiny_config("train.epochs=2", "train.seed=1"), run.path, verbose=0)


def test_damaged_newest_checkpoint_falls_back_and_a_changed_learning_rate_is_applied(uninterrupted, tmp_path, capsys):
    run = RunDirectory(tmp_path / "run")
    shutil.copytree(uninterrupted[0].path, run.path)
    with open(run.checkpoint(2), "r+b") as handle:
        handle.seek(200)
        handle.write(b"\0" * 2000)  # damaged inside, still a zip archive by its directory
    os.remove(run.sample_grid(1))
    train(tiny_config("train.epochs=2", "train.learning_rate=0.0005"), run.path, verbose=0)
    out = capsys.readouterr().out
    assert f"{run.checkpoint(2)} is damaged" in out and "falling back" in out
    assert "Applying the changed settings: train.learning_rate: 0.001 -> 0.0005" in out
    assert "Drawing the missing sample grid of epoch 1" in out
    assert os.path.exists(run.checkpoint(2) + ".damaged") and os.path.exists(run.sample_grid(1))
    assert [row["learning_rate"] for row in read_log(run.log_path)] == ["0.001", "0.0005"]
    load_model(run.checkpoint(2)), load_model(run.latest)


def test_damaged_checkpoint_message_is_one_short_line(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    import denoiser.callbacks
    from denoiser import train
    sys.path.insert(0, {tests!r})
    import helpers

    run_dir, kill_at = sys.argv[1], sys.argv[2]
    what, _, count = kill_at.partition(":")
    calls = {{"save": 0, "grid": 0}}

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def counted(name):
        calls[name] += 1
        return what == name and calls[name] == int(count)

    save = keras.Model.save
    def save_then_die_halfway(self, path, *args, **kwargs):  # killed while the checkpoint file is written
        save(self, path, *args, **kwargs)
        if "checkpoints" in str(path) and counted("save"):
            os.truncate(path, os.path.getsize(path) // 2)
            die()
    keras.Model.save = save_then_die_halfway

    save_grid = denoiser.callbacks.save_grid
    def die_drawing(images, path, *args, **kwargs):  # killed while the grid is written
        if counted("grid"):
            with open(os.path.join(os.path.dirname(path), ".tmp-half.png"), "wb") as handle:
                handle.write(b"half a png")
            die()
        save_grid(images, path, *args, **kwargs)
    denoiser.callbacks.save_grid = die_drawing

    class DieAtStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if what == "step" and int(self.model.optimizer.iterations.numpy()) == int(count):
                die()

    sets = {sets!r}
    train(helpers.tiny_config(*sets), run_dir, callbacks=[DieAtStep()], verbose=0)
    """
)


def run_until_killed(run_dir, kill_at, sets):
    script = KILL_SCRIPT.format(tests=os.path.dirname(__file__), sets=sets)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(run_dir), kill_at], capture_output=True, text=True, env=env, timeout=300
    )
    return done.returncode, done.stdout


@pytest.mark.slow
def test_killed_at_any_moment_a_rerun_leaves_a_whole_run(tmp_path, monkeypatch, capsys):
    """SIGKILL mid-epoch, while writing a checkpoint and while drawing a grid; stopped right after a commit.

    The kills run in their own processes (nothing of the trainer's clean-up runs); the stop right after
    committing a checkpoint leaves the same files behind, so it, and the final rerun, run in this process.
    """
    sets = [*RUN_SETS, "train.backup_every=2", "train.epochs=3"]
    run = RunDirectory(tmp_path)
    code, out = run_until_killed(run.path, "step:5", sets)  # backup at step 4: one step lost
    assert code == -9 and run.backup_steps() == [4]
    code, out = run_until_killed(run.path, "save:1", sets)  # epoch 2's checkpoint, half written
    assert code == -9 and "at epoch 2, step 2 from" in out
    assert run.finished_epochs() == [1] and any(name.startswith(".tmp-") for name in os.listdir(run.checkpoints))

    def stop_after_commit(*args, **kwargs):  # epoch 2 committed, log row and latest not yet
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(denoiser.callbacks, "commit_files", stop_after_commit)
        train(helpers.tiny_config(*sets), run.path, verbose=0)
    assert "Removed" in capsys.readouterr().out and run.finished_epochs() == [1, 2]
    assert [row["epoch"] for row in read_log(run.log_path)] == ["1"]
    code, out = run_until_killed(run.path, "grid:2", sets)  # epoch 2's grid redrawn, killed drawing epoch 3's
    assert (
        code == -9 and "Finishing the commit of epoch 2" in out and "Drawing the missing sample grid of epoch 2" in out
    )
    train(helpers.tiny_config(*sets), run.path, verbose=0)

    assert run.finished_epochs() == [1, 2, 3] and run.backup_steps() == []
    for name in os.listdir(run.checkpoints):
        load_model(os.path.join(run.checkpoints, name))
    leftovers = [name for f in (run.path, run.checkpoints, run.samples) for name in os.listdir(f) if ".tmp-" in name]
    assert leftovers == []
    assert [row["epoch"] for row in read_log(run.log_path)] == ["1", "2", "3"]
    assert sorted(os.listdir(run.samples)) == ["epoch-0001.png", "epoch-0002.png", "epoch-0003.png"]
    assert not os.path.exists(run.lock_path)


# ================================================================================= damaged files, named or repaired
def fill(path, key="a", rows=6, produced=None):
    """A 6x2 float32 cache at `path` whose row i is all i (`produced` collects the rows made)."""

    def produce(start, stop):
        if produced is not None:
            produced.extend(range(start, stop))
        return np.repeat(np.arange(start, stop, dtype="float32")[:, None], 2, axis=1), []

    return fill_array(str(path), (rows, 2), "float32", {"k": key}, produce, batch_size=2, progress=False)


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda path: open(path, "wb").close(), "does not read as an array"),  # emptied: EOFError before
        (lambda path: os.truncate(path, os.path.getsize(path) - 9), "does not read as an array"),
        (lambda path: np.save(path, np.array([{"rows": 6}], dtype=object)), "it holds Python objects, not numbers"),
        (lambda path: np.save(path, np.zeros((6, 3), "float32")), "holds float32 [6, 3], not the float32 [6, 2]"),
    ],
    ids=["emptied", "truncated", "pickled", "reshaped"],
)
def test_a_damaged_cache_is_set_aside_and_made_again(tmp_path, capsys, damage, said):
    path = tmp_path / "cache.npy"
    fill(path)
    damage(str(path))
    produced = []
    again = fill(path, produced=produced)
    out = capsys.readouterr().out
    assert said in out and f"set it aside as {path}.damaged and making it again" in out
    assert "allow_pickle" not in out and produced == list(range(6)) and not again.reused
    np.testing.assert_array_equal(again.array[:, 0], np.arange(6))
    assert fill(path).reused  # and the new one is good


def test_a_damaged_half_made_cache_starts_over(tmp_path, capsys):
    path = tmp_path / "cache.npy"
    with pytest.raises(KeyboardInterrupt):
        fill_array(str(path), (6, 2), "float32", {"k": "a"}, interrupt_after_two_rows, batch_size=2, progress=False)
    with open(partial_path(str(path)), "wb") as handle:
        handle.write(b"garbage")
    produced = []
    assert fill(path, produced=produced).array.shape == (6, 2) and produced == list(range(6))
    assert "set it aside" in capsys.readouterr().out


def interrupt_after_two_rows(start, stop):
    if start >= 2:
        raise KeyboardInterrupt
    return np.zeros((stop - start, 2), "float32"), []


def test_two_processes_filling_one_cache_take_turns(tmp_path, capsys):
    """The second waits for the first (holding CACHE.lock), then finds the cache finished and makes nothing."""
    path = tmp_path / "cache.npy"
    first_started, results, produced = threading.Event(), {}, []

    def slow(start, stop):
        first_started.set()
        time.sleep(0.1)
        return np.zeros((stop - start, 2), "float32"), []

    first = threading.Thread(
        target=lambda: results.update(
            first=fill_array(str(path), (6, 2), "float32", {"k": "a"}, slow, 2, progress=False)
        )
    )
    first.start()
    first_started.wait()
    second = fill(path, produced=produced)
    first.join()
    assert produced == [] and second.reused and not results["first"].reused
    assert "Waiting for process" in capsys.readouterr().out and not os.path.exists(f"{path}.lock")


def test_a_damaged_run_config_is_named_in_one_line(tmp_path):
    run = RunDirectory(tmp_path)
    train(tiny_config(), run.path, verbose=0)
    for text in ("data: [unclosed\n", "\xff\xfe garbage", "just words\n"):
        with open(run.config_path, "w", encoding="latin-1") as handle:
            handle.write(text)
        message = helpers.one_line_error(lambda: train(tiny_config(), run.path, verbose=0))
        assert message.startswith(f"{run.config_path} is damaged: ") and "new `run_dir`" in message


def test_a_damaged_log_is_set_aside_and_rebuilt_from_the_checkpoints(uninterrupted, tmp_path, capsys):
    run = RunDirectory(tmp_path / "run")
    shutil.copytree(uninterrupted[0].path, run.path)
    expected = read_log(run.log_path)
    with open(run.log_path, "wb") as handle:
        handle.write(b"\xc3\x28 not a log\x00\n")
    train(tiny_config("train.epochs=2"), run.path, verbose=0)
    assert "set it aside as" in capsys.readouterr().out and os.path.exists(run.log_path + ".damaged")
    assert read_log(run.log_path) == expected


def test_a_config_section_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: 5\n")
    message = helpers.one_line_error(lambda: resolve_config("shapes", load_yaml(str(path)), [{"train": {"epochs": 2}}]))
    assert message == f"Config file {path}: section 'train' must be a mapping of keys to values, got 5."


def test_a_run_that_fails_at_once_leaves_no_directory(tmp_path):
    run_dir = tmp_path / "new-run"
    with pytest.raises(ValueError, match="needs data.path"):
        train(tiny_config("data.dataset=captions", "model.condition=vector"), run_dir, verbose=0)
    assert not run_dir.exists()


def test_dead_writers_leftovers_go_with_the_next_write_into_their_folder(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_leftover = tmp_path / f".tmp-{int(dead.stdout)}-abc.onnx"
    live_one, old_style = tmp_path / f".tmp-{os.getpid()}-def.png", tmp_path / ".tmp-xyz.json"
    for path in (dead_leftover, live_one, old_style):
        path.write_text("half")
    write_json(tmp_path / "denoiser.json", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == [live_one.name, "denoiser.json"]


def test_a_captions_table_that_is_not_utf8_is_named(tmp_path):
    table = tmp_path / "captions.csv"
    table.write_bytes("image,caption\na.jpg,caf\xe9\n".encode("latin-1"))
    message = helpers.one_line_error(lambda: read_captions(str(table)))
    assert message == f"{table} is not UTF-8 text (invalid continuation byte); save it as UTF-8."


# ================================================================================= the run directory's lock
RACE_WORKER = textwrap.dedent(
    """
    # One of several processes racing for a lock file; a line on stdin starts a trial, one line reports it.
    import importlib.util, os, sys, time
    spec = importlib.util.spec_from_file_location("locks", sys.argv[1])  # locks.py alone: no TensorFlow to import
    locks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(locks)
    lock_path, me = sys.argv[2], sys.argv[3]
    folder = os.path.dirname(lock_path)
    for line in sys.stdin:
        try:
            lock = locks.acquire_lock(lock_path)
        except locks.LockHeld:
            print("refused", 0, flush=True)
            continue
        marker = os.path.join(folder, "holder-" + me)
        open(marker, "w").close()
        time.sleep(0.002)
        holders = sum(name.startswith("holder-") for name in os.listdir(folder))
        os.remove(marker)
        lock.release()
        print("held", holders, flush=True)
    """
)


@pytest.mark.slow
def test_many_processes_racing_for_a_dead_trainers_lock_never_both_hold_it(tmp_path):
    """500 times: a lock left by a killed trainer, four processes set off at once to take it over."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    lock_path = str(tmp_path / "lock")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_WORKER, denoiser.utils.locks.__file__, lock_path, str(index)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(4)
    ]
    double_holders, taken_over = 0, 0
    try:
        for trial in range(500):
            assert not os.path.exists(lock_path)  # every holder of the last trial let go
            write_text(lock_path, stale)
            for worker in workers:
                worker.stdin.write(f"{trial}\n")
                worker.stdin.flush()
            reports = [worker.stdout.readline().split() for worker in workers]
            double_holders += any(outcome == "held" and int(holders) > 1 for outcome, holders in reports)
            taken_over += any(outcome == "held" for outcome, _ in reports)
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(timeout=30)
    assert (double_holders, taken_over) == (0, 500)


def test_a_damaged_cache_note_is_set_aside_and_the_cache_made_again(tmp_path, capsys):
    path = tmp_path / "cache.npy"
    fill(path)
    (tmp_path / "cache.npy.json").write_bytes(b"\x00{not json")
    produced = []
    fill(path, produced=produced)
    assert produced == list(range(6)) and f"{path}.json is damaged" in capsys.readouterr().out
