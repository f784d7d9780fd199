"""Training: `model.fit` on batches from the data pipeline, into a run directory that survives interruptions.

`train()` is the story in four lines: prepare the run directory (lock it, clear half-written files,
check the config against the run's), recover what an interrupted run left (`recover`), build a new
model or go on with the recovered one, and `fit`. One batch goes: data/pipeline.py (shuffled uint8
images and conditions) -> objective.py (noised images, noise levels, dropped conditions; the clean
image as the target; the L1 or L2 loss) -> `model.fit` here. The callbacks (callbacks.py) stop at a
non-finite loss, back up a resumable state every `train.backup_every` steps and commit every epoch
(checkpoint, log row, sample grid) into the run directory (rundir.py), which the trainer locks.

Running the same command again resumes at the step of the newest backup or checkpoint, with the
same data order and noise as an uninterrupted run; it first repairs what the interruption left
(half-written files, a missing log row or grid, a damaged newest checkpoint). A larger `train.epochs`
extends a finished run.

With gradient accumulation (`train.accumulate_steps` = k) a step is one weight update from k batches of
`train.batch_size`, and a run trains as one with batches k times larger (optimizer.EMAAdam): `train.steps_per_epoch`
(default: one pass over the data), `train.warmup_steps`, the learning-rate decay, `train.backup_every` and the
EMA count updates, and each update sees the images and noise of the larger run's step (data/pipeline.py).
Keras's own steps are the batches, so what counts Keras's steps (the callbacks, the backups' file names,
"epoch 2, step 9" in messages, a resume point) counts batches; backups and epochs end on whole updates, so
a resumed run never starts inside one. The epoch's mean loss in log.csv is the mean over its batches, which
is the mean over its updates. A run keeps its `accumulate_steps` (resuming with another is refused).
"""

from __future__ import annotations

import contextlib
import os

import keras
import tensorflow as tf

from denoiser import objective
from denoiser.callbacks import (
    BackupCallback,
    EpochCommitCallback,
    EvaluationCallback,
    NonFiniteLossGuard,
    PlainProgressLog,
    SampleGridCallback,
    averaged_weights_sampler,
    commit_files,
    draw_sample_grid,
    epoch_and_step,
    grid_title,
)
from denoiser.config import RunConfig
from denoiser.data.dataset import Dataset, check_fits_model
from denoiser.data.folders import fit_config_to_folder
from denoiser.data.pipeline import steps_per_pass, training_pipeline
from denoiser.data.sources import class_names_for, dataset_for_config, with_condition_shape
from denoiser.model import build_unet
from denoiser.multi_worker import MultiWorkerStrategy, own_run_dir
from denoiser.optimizer import copy_ema_weights, learning_rate_schedule, make_optimizer
from denoiser.rundir import RunDirectory, TrainingError, checkpoint_log_row, model_run_info, read_log, write_log
from denoiser.serialization import CheckpointError, load_model
from denoiser.utils.files import set_aside
from denoiser.utils.terminal import redraws_in_place

__all__ = ["TrainingError", "train"]


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    dataset: Dataset | None = None,
    callbacks: list[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> keras.Model:
    """Train (or resume) the run in `run_dir`; returns the model with its averaged (EMA) weights (its checkpoints
    hold the training weights, and the optimizer their averages).

    `dataset` overrides `config.data.dataset` with your own arrays (see `denoiser.data.Dataset`).
    `verbose` is `model.fit`'s; "auto" draws Keras's progress bar where the output redraws in place (a terminal,
    a notebook) and prints plain lines elsewhere (a file, a pipe), every `train.log_every` steps and per epoch.
    Raises TrainingError when another trainer holds the directory or the loss stops being finite,
    ConfigError when the settings differ from the run's in a way a resumed run cannot take up.
    """
    config.validate()
    config = fit_config_to_folder(config)  # an image folder decides the model's condition, before config.yaml
    strategy = make_strategy(config.train.distribute)  # first: workers connect before TensorFlow runs anything
    run = RunDirectory(own_run_dir(run_dir, strategy))
    config = with_condition_shape(config, dataset)  # the encoder's width, before anything is cached
    with run.lock():
        config, changes = prepare_run(run, config)
        dataset = dataset_for_config(config) if dataset is None else dataset
        check_fits_model(dataset, config.model)
        steps_per_epoch = batches_per_epoch(config, dataset)  # Keras's steps
        class_names = dataset.class_names or class_names_for(config)
        with dtype_policy(config.train.mixed_precision), strategy.scope() if strategy else contextlib.nullcontext():
            model, step = recover(run, config, steps_per_epoch, class_names, dataset)
            if step >= config.train.epochs * steps_per_epoch:
                print(f"{run.path} already finished {epoch_count(step // steps_per_epoch)}; raise `train.epochs`.")
                return load_model(run.latest, ema=True)
            # in weight updates: where a decaying learning rate reaches 0
            total_steps = config.train.epochs * steps_per_epoch // config.train.accumulate_steps
            model = (
                new_model(config, total_steps) if model is None else apply_changes(model, config, changes, total_steps)
            )
            model.run_info = model_run_info(config, class_names)  # what its checkpoints tell a sampler
            run.write_config(config)
            fit(model, run, config, dataset, step, steps_per_epoch, class_names, callbacks, verbose)
            copy_ema_weights(model, into=model)  # last: every `fit` call goes on from the training weights
    return model


def epoch_count(count: int) -> str:
    """'1 epoch', '6 epochs': a count of epochs for a message."""
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def prepare_run(run: RunDirectory, config: RunConfig) -> tuple[RunConfig, list[str]]:
    """Clear what an interruption left half-written, and check `config` against the run's. Returns the config
    to train with (settings newer than the run keep its values) and the changed settings a resumed run takes
    up (others are refused, see RunDirectory.check_resume)."""
    for path in run.remove_temporaries():
        print(f"Removed {path}, half-written when the last run was interrupted.")
    config = run.keep_older_settings(config)
    return config, run.check_resume(config)


def batches_per_epoch(config: RunConfig, dataset: Dataset) -> int:
    """Keras's steps in an epoch: `train.steps_per_epoch` weight updates (default: as many as one pass over the
    data holds), each of `train.accumulate_steps` batches."""
    settings = config.train
    updates = settings.steps_per_epoch or steps_per_pass(dataset, settings.batch_size * settings.accumulate_steps)
    return updates * settings.accumulate_steps


def new_model(config: RunConfig, total_steps: int) -> keras.Model:
    """A fresh U-Net with its optimizer (scheduled over `total_steps`) and loss, its weights fixed by `train.seed`."""
    keras.utils.set_random_seed(config.train.seed)
    model = build_unet(config.model)
    model.compile(optimizer=make_optimizer(config, total_steps), loss=objective.loss(config.data.loss_norm))
    return model


def fit(model, run, config, dataset, step, steps_per_epoch, class_names, callbacks=(), verbose="auto") -> None:
    """`model.fit` from `step` to the end of `train.epochs`, with the callbacks that commit every epoch."""
    settings = config.train
    epoch = EpochCommitCallback(
        run, settings.batch_size, steps_per_epoch, keep=settings.keep_checkpoints, start_step=step
    )
    plain = verbose == "auto" and not redraws_in_place()  # a log file: plain lines instead of Keras's bar
    fit_callbacks = [
        NonFiniteLossGuard(steps_per_epoch, step),  # first: nothing after a non-finite loss runs
        epoch,  # before the backups and the plain lines, which use what it has measured of the epoch so far
        BackupCallback(run, settings.backup_every * settings.accumulate_steps, epoch, start_step=step),  # in batches
        *([PlainProgressLog(epoch, settings.epochs, settings.log_every, start_step=step)] if plain else []),
        SampleGridCallback(run, config, class_names, dataset),
        *([EvaluationCallback(run, config)] if settings.evaluate_every else []),
        *callbacks,
    ]
    for first_epoch, end_epoch, steps in fit_calls(step, steps_per_epoch, settings.epochs):
        batches = training_pipeline(dataset, config, start_step=step)
        model.fit(
            batches,
            initial_epoch=first_epoch,
            epochs=end_epoch,
            steps_per_epoch=steps,
            verbose=0 if plain else verbose,
            shuffle=False,  # the pipeline shuffles
            callbacks=fit_callbacks,
        )
        step = end_epoch * steps_per_epoch


def mixed_precision_policy() -> str:
    """float16 where a GPU runs the model, bfloat16 on CPUs and TPUs."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def make_strategy(name: str):
    """A `tf.distribute` strategy for `train.distribute`, or None for one device."""
    if name == "none":
        return None
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        return MultiWorkerStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def dtype_policy(mixed: bool):
    """Use a mixed-precision policy while building and training (the device's, see mixed_precision_policy), then
    restore the previous one."""
    return policy_named(mixed_precision_policy() if mixed else keras.config.dtype_policy())


@contextlib.contextmanager
def policy_named(name):
    """Use Keras's global dtype policy `name` ("mixed_bfloat16", ...) while building and training, then restore
    the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ================================================================================ recovering an interrupted run
def fit_calls(step: int, steps_per_epoch: int, epochs: int) -> list[tuple[int, int, int]]:
    """The `model.fit` calls that train from `step` on, as (initial epoch, end epoch, steps per epoch).

    Resuming inside an epoch needs one call for the rest of that epoch, then one for the whole epochs.
    """
    epoch, done_in_epoch = divmod(step, steps_per_epoch)
    calls = []
    if done_in_epoch:
        calls.append((epoch, epoch + 1, steps_per_epoch - done_in_epoch))
        epoch += 1
    if epoch < epochs:
        calls.append((epoch, epochs, steps_per_epoch))
    return calls


def recover(run: RunDirectory, config: RunConfig, steps_per_epoch: int, class_names, dataset):
    """The state to go on from, (model or None, step), after redoing what an interruption stopped."""
    model, step = resume_state(run, steps_per_epoch, config.train.epochs)
    repair(run, config, step // steps_per_epoch, steps_per_epoch, class_names, dataset)
    return model, step


def resume_state(run: RunDirectory, steps_per_epoch: int, epochs: int) -> tuple[keras.Model | None, int]:
    """The newest state that loads, with its step: a mid-epoch backup or an epoch's checkpoint.

    A damaged file is renamed to PATH.damaged (saying so) and the one before it is tried.
    Returns (None, 0) for a new run. Says where it resumes, unless the run has finished its `epochs` (`train`
    says so instead: there is nothing to resume).
    """
    committed = [(epoch * steps_per_epoch, run.checkpoint(epoch)) for epoch in run.finished_epochs()]
    newest = max((step for step, _ in committed), default=0)
    backups = [(step, run.backup(step)) for step in run.backup_steps() if step > newest]
    candidates = sorted(committed + backups, reverse=True)
    for step, path in candidates:
        try:
            model = load_model(path, compile=True)
        except CheckpointError as error:
            print(f"{error} Set it aside as {set_aside(path)} and falling back to the one before.")
            continue
        if step < epochs * steps_per_epoch:
            print(f"Resuming {run.path} at {epoch_and_step(step, steps_per_epoch)} from {path}.")
        return model, step
    if candidates:
        print(f"No checkpoint in {run.path} loads; starting the run from scratch.")
    return None, 0


def repair(run: RunDirectory, config: RunConfig, done: int, steps_per_epoch: int, class_names, dataset) -> None:
    """Redo what an interruption stopped after an epoch's commit: latest.keras, log rows, sample grids."""
    rows = {int(row["epoch"]): row for row in read_log(run.log_path) if int(row["epoch"]) <= done}
    restored = {epoch: checkpoint_log_row(run.checkpoint(epoch)) for epoch in run.finished_epochs()}
    rows.update({epoch: row for epoch, row in restored.items() if epoch not in rows and row is not None})
    lost = [epoch for epoch in range(1, done + 1) if epoch not in rows]
    if lost:
        print(f"log.csv has no row for epoch(s) {lost} and no checkpoint holds it; those rows are lost.")
    if done and done in run.finished_epochs() and (checkpoint_log_row(run.latest) or {}).get("epoch") != done:
        print(f"Finishing the commit of epoch {done} (latest.keras, log.csv).")
        commit_files(run, done, rows.get(done), committed_step=done * steps_per_epoch)
    if [row["epoch"] for row in read_log(run.log_path)] != [str(epoch) for epoch in sorted(rows)]:
        write_log(run.log_path, list(rows.values()))
    sampler = None
    for epoch in run.finished_epochs():
        if not os.path.exists(run.sample_grid(epoch)):
            print(f"Drawing the missing sample grid of epoch {epoch} from its checkpoint.")
            sampler = averaged_weights_sampler(load_model(run.checkpoint(epoch), ema=True), config, sampler)
            title = grid_title(epoch, rows.get(epoch, {}).get("loss"))
            draw_sample_grid(sampler, run.sample_grid(epoch), config, class_names, dataset, title)


def apply_changes(model: keras.Model, config: RunConfig, changes: list[str], total_steps: int) -> keras.Model:
    """Take up the settings changed since the run started (rundir.CHANGEABLE_ON_RESUME), saying which.

    More epochs move a decaying learning rate's end to the new last step (so the rate rises to the longer
    schedule's value at this step)."""
    if not changes:
        return model
    print("Applying the changed settings: " + "; ".join(changes) + ".")
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # unwrap a loss-scale optimizer
    optimizer.learning_rate = learning_rate_schedule(config.train, total_steps)
    return model
