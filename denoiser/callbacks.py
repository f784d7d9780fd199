"""What the trainer does during and after every epoch, as Keras callbacks, and every per-epoch picture.

During the epoch: stop at the first non-finite loss (NonFiniteLossGuard), save a resumable state every
`train.backup_every` steps (BackupCallback) and, where the output is no terminal, print a plain line every
`train.log_every` steps and one per epoch instead of Keras's bar (PlainProgressLog). After it: commit the
epoch (EpochCommitCallback: checkpoint, then log row), draw its sample grid (SampleGridCallback: one row per
class or caption, or for a super-resolution stage real images made small beside its upscaling) and, every
`train.evaluate_every` epochs, score its samples (EvaluationCallback). Nothing with non-finite weights is
ever saved. Every callback counts steps from the start of the run (`start_step` on resume): Keras's steps,
which are batches (with `train.accumulate_steps` > 1, several make one weight update; see training.py).

The pictures and scores use the averaged weights through an ordinary `Sampler` (`averaged_weights_sampler`):
training uses the sampling side exactly as a user does.
"""

from __future__ import annotations

import math
import os
import shutil
import time

import keras
import numpy as np
from keras import ops

from denoiser.config import RunConfig
from denoiser.data.dataset import Dataset
from denoiser.evaluation.evaluator import Evaluation, summary_lines
from denoiser.optimizer import copy_ema_weights
from denoiser.rundir import (
    EPOCH_SO_FAR_ENTRY,
    RunDirectory,
    TrainingError,
    add_archive_entry,
    add_log_row,
    read_archive_entry,
    read_log,
    write_log,
)
from denoiser.sampler import Sampler
from denoiser.utils.files import atomic_path, write_json
from denoiser.utils.images import downsample, nearest_upsample, size_text, to_unit_range
from denoiser.utils.indices import evenly_spaced
from denoiser.utils.plotting import save_grid, wrap_label


def epoch_and_step(step: int, steps_per_epoch: int) -> str:
    """'epoch 3, step 17' (both counted from 1) for the `step`-th step of the run (counted from 0)."""
    return f"epoch {step // steps_per_epoch + 1}, step {step % steps_per_epoch + 1}"


def check_finite_state(model: keras.Model, where: str) -> None:
    """Raise TrainingError if a weight or optimizer variable is NaN or infinite, so it is never saved."""
    for variable in [*model.weights, *model.optimizer.variables]:
        if "float" in str(variable.dtype) and not bool(ops.all(ops.isfinite(variable))):
            raise TrainingError(
                f"{variable.path} stopped being finite at {where}; nothing from it was saved. "
                "Lower train.learning_rate and run again to resume from the last good state."
            )


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop training at the first NaN or infinite loss, raising TrainingError naming the epoch and step."""

    def __init__(self, steps_per_epoch: int, start_step: int = 0):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(
                f"The loss became {float(loss)} at {epoch_and_step(self.step, self.steps_per_epoch)}; "
                "training stopped and nothing after the last good state was saved. "
                "Lower train.learning_rate and run again to resume from it."
            )
        self.step += 1


class BackupCallback(keras.callbacks.Callback):
    """Every `every` steps, save the model and optimizer to RUN/backup/step-N.keras, atomically.

    Like Keras's `BackupAndRestore(save_freq=every, double_checkpoint=True)`, but the file name holds
    the step, so a rerun continues at that very step (the pipeline replays nothing, see data/pipeline.py),
    and the two newest backups are kept in case the newest one is damaged.
    """

    def __init__(self, run: RunDirectory, every: int, epoch: EpochCommitCallback, start_step: int = 0):
        super().__init__()
        self.run = run
        self.every = every
        self.epoch = epoch  # what the epoch so far has measured (its loss and time), kept in the backup
        self.steps_per_epoch = epoch.steps_per_epoch
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if not self.every or self.step % self.every or self.step % self.steps_per_epoch == 0:
            return  # the epoch's checkpoint covers its last step
        check_finite_state(self.model, epoch_and_step(self.step - 1, self.steps_per_epoch))
        with atomic_path(self.run.backup(self.step)) as temporary:
            self.model.save(temporary)
            add_archive_entry(temporary, EPOCH_SO_FAR_ENTRY, self.epoch.so_far())
        for old in self.run.backup_steps()[:-2]:
            os.remove(self.run.backup(old))


class PlainProgressLog(keras.callbacks.Callback):
    """Training's progress as plain lines, for output to a file or a pipe, where Keras's bar would be one endless
    line of control codes: every `every` steps and after every epoch, counted from the start of the run.

        epoch 2/6, step 100/375: loss 0.0871, 41 s
        epoch 2/6: loss 0.0843 over 375 steps, 152 s

    The epoch's loss and time are what `epoch` (the EpochCommitCallback) measured, so a resumed epoch counts
    the steps before the resume too, as log.csv does.
    """

    def __init__(self, epoch: EpochCommitCallback, epochs: int, every: int, start_step: int = 0):
        super().__init__()
        self.epoch, self.epochs, self.every = epoch, epochs, every
        self.steps_per_epoch = epoch.steps_per_epoch
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every or self.step % self.steps_per_epoch == 0:
            return  # the epoch's last step gets the epoch's line
        so_far = self.epoch.so_far()
        epoch, step = divmod(self.step, self.steps_per_epoch)
        print(
            f"epoch {epoch + 1}/{self.epochs}, step {step}/{self.steps_per_epoch}: "
            f"loss {so_far['loss_sum'] / so_far['steps']:.4f}, {so_far['seconds']:.0f} s",
            flush=True,
        )

    def on_epoch_end(self, epoch, logs=None):
        so_far = self.epoch.so_far()
        print(
            f"epoch {epoch + 1}/{self.epochs}: loss {so_far['loss_sum'] / max(so_far['steps'], 1):.4f} "
            f"over {so_far['steps']} steps, {so_far['seconds']:.0f} s",
            flush=True,
        )


class EpochCommitCallback(keras.callbacks.Callback):
    """After every epoch: commit it as one unit, then write the files that can be redrawn from it.

    1. `epoch-NNNN.keras` with the log row inside, renamed into place: the commit.
    2. `latest.keras`, log.csv (both atomically), and the mid-epoch backups are removed.
    A rerun redoes step 2 (and the sample grid) for a committed epoch when an interruption stopped it.
    """

    def __init__(self, run: RunDirectory, batch_size: int, steps_per_epoch: int, keep: int = 0, start_step: int = 0):
        super().__init__()
        self.run = run
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.keep = keep
        # Resumed inside an epoch: the steps before the backup count towards its loss and time too.
        resumed_inside = start_step % steps_per_epoch and os.path.exists(run.backup(start_step))
        self.carried = read_archive_entry(run.backup(start_step), EPOCH_SO_FAR_ENTRY) if resumed_inside else None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.end = time.perf_counter()
        self.steps, self.mean_loss = 0, float("nan")
        self.before = self.carried or {"loss_sum": 0.0, "steps": 0, "seconds": 0.0}
        self.carried = None  # only the first epoch after a resume has steps before it

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.mean_loss = float((logs or {}).get("loss", float("nan")))  # Keras's running mean over the epoch
        self.end = time.perf_counter()  # the epoch's training ends here; checkpoints and samples follow

    def so_far(self) -> dict:
        """The epoch's loss sum, steps and seconds up to now, including those before a resume."""
        return {
            "loss_sum": self.before["loss_sum"] + (self.mean_loss * self.steps if self.steps else 0.0),
            "steps": self.before["steps"] + self.steps,
            "seconds": self.before["seconds"] + self.end - self.start,
        }

    def on_epoch_end(self, epoch, logs=None):
        check_finite_state(self.model, f"the end of epoch {epoch + 1}")
        row = self.log_row(epoch + 1, logs or {})
        path = self.run.checkpoint(epoch + 1)
        with atomic_path(path) as temporary:
            self.model.save(temporary)
            add_log_row(temporary, row)
        commit_files(self.run, epoch + 1, row, committed_step=(epoch + 1) * self.steps_per_epoch)
        if self.keep:
            for old in self.run.finished_epochs()[: -self.keep]:
                os.remove(self.run.checkpoint(old))

    def log_row(self, epoch: int, logs: dict) -> dict:
        """The epoch's row of log.csv: the mean loss over all its steps, also those before a resume."""
        whole = self.so_far()
        learning_rate = self.model.optimizer.learning_rate
        return {
            "epoch": epoch,
            "loss": f"{whole['loss_sum'] / max(whole['steps'], 1):.6f}",
            "learning_rate": f"{float(ops.convert_to_numpy(learning_rate)):.3g}",
            "seconds": f"{whole['seconds']:.1f}",
            "images_per_second": f"{whole['steps'] * self.batch_size / max(whole['seconds'], 1e-9):.1f}",
        }


def commit_files(run: RunDirectory, epoch: int, row: dict | None, committed_step: int) -> None:
    """Everything after committing the checkpoint of `epoch`: latest.keras, its log row, no backups before it."""
    with atomic_path(run.latest) as latest:
        shutil.copyfile(run.checkpoint(epoch), latest)
    if row is not None:
        rows = [r for r in read_log(run.log_path) if int(r["epoch"]) != epoch]
        write_log(run.log_path, [*rows, row])
    run.remove_backups(up_to_step=committed_step)


def averaged_weights_sampler(model: keras.Model, config: RunConfig, sampler: Sampler | None = None) -> Sampler:
    """A sampler (with the run's sampling settings) over a copy of `model` holding its averaged weights.

    Pass the sampler from the last call to reuse its copy (and its compiled steps) instead of building one.
    """
    if sampler is None:
        copy = type(model).from_config(model.get_config())  # the same network, weights to be copied in
        sampler = Sampler(copy, config.sample, model_config=config.model)
    copy_ema_weights(model, into=sampler.model)
    return sampler


def draw_sample_grid(sampler: Sampler, path: str, config: RunConfig, class_names=(), dataset=None, title="") -> None:
    """Sample the grid of `path` from the run's fixed noise (`sample.seed`): one row per class or caption.

    A super-resolution stage's grid upscales real images from `dataset` instead (`draw_upscaling_grid`).
    """
    if config.model.super_resolution:
        return draw_upscaling_grid(sampler, path, config, dataset, title)
    conditions, row_labels = grid_conditions(config, class_names, dataset=dataset)
    columns = config.sample.columns
    images = sampler.sample(
        condition=None if conditions is None else np.repeat(conditions, columns, axis=0),
        num_images=columns * len(row_labels),
        seed=config.sample.seed,
    )
    save_grid(images, path, rows=len(row_labels), row_labels=row_labels, title=title)


def grid_title(epoch: int, loss=None) -> str:
    return f"epoch {epoch}" + (f", loss {float(loss):.4f}" if loss is not None else "")


class SampleGridCallback(keras.callbacks.Callback):
    """After every epoch: sample a grid from the same noise with the averaged weights."""

    def __init__(self, run: RunDirectory, config: RunConfig, class_names=(), dataset: Dataset | None = None):
        super().__init__()
        self.run = run
        self.config = config
        self.class_names = class_names
        self.dataset = dataset
        self.sampler = None

    def on_epoch_end(self, epoch, logs=None):
        self.sampler = averaged_weights_sampler(self.model, self.config, self.sampler)
        title = grid_title(epoch + 1, (logs or {}).get("loss"))
        path = self.run.sample_grid(epoch + 1)
        draw_sample_grid(self.sampler, path, self.config, self.class_names, self.dataset, title)


def grid_conditions(config: RunConfig, class_names=(), max_rows: int = 10, dataset: Dataset | None = None):
    """The conditions of the sample grid's rows and their labels: up to `max_rows` classes, evenly spread.

    A text-conditioned model gets 4 rows of captions from the data set, a model without classes 4 rows
    from the empty condition.
    """
    if config.model.condition in ("vector", "sequence") and dataset is not None:
        conditions, captions = dataset.examples(4)
        return conditions, [wrap_label(caption) for caption in captions]
    if config.model.condition != "class":
        return None, [""] * min(max_rows, 4)
    count = config.model.num_classes
    ids = (evenly_spaced(max_rows, count) + 1).astype("int32")  # class ids count from 1
    labels = [class_names[i - 1] if i - 1 < len(class_names) else f"class {i}" for i in ids]
    return ids, labels


def low_resolution_examples(dataset: Dataset, count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` real images spread over the data set, in [-1, 1], their low-res versions (area) and conditions."""
    rows = dataset.example_rows(count)
    images = to_unit_range(dataset.images[rows])
    return images, np.asarray(downsample(images, size)), np.asarray(dataset.conditions[rows])


def draw_upscaling_grid(sampler: Sampler, path: str, config: RunConfig, dataset: Dataset, title: str = "") -> None:
    """A super-resolution run's grid: a row of real images made small, the stage's upscaling, the originals."""
    columns = config.sample.columns * 2
    originals, low, conditions = low_resolution_examples(dataset, columns, config.model.low_resolution)
    condition = conditions if config.model.conditional else None
    upscaled = sampler.sample(condition=condition, seed=config.sample.seed, low_resolution_images=low)
    images = np.concatenate([nearest_upsample(low, config.model.image_size), upscaled, originals])
    labels = [f"input {size_text(low.shape[1:])}", "upscaled", "original"]
    save_grid(images, path, rows=3, row_labels=labels, title=title)


class EvaluationCallback(keras.callbacks.Callback):
    """Every `train.evaluate_every` epochs: score the averaged weights' samples into RUN/evaluation/epoch-NNNN.json.

    The references (data, classifier, real-image features) are built once, at the first evaluation.
    """

    def __init__(self, run: RunDirectory, config: RunConfig):
        super().__init__()
        self.run, self.config = run, config
        self.evaluation = self.sampler = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.config.train.evaluate_every:
            return
        if self.evaluation is None:
            self.evaluation = Evaluation(self.config)
        self.sampler = averaged_weights_sampler(self.model, self.config, self.sampler)
        out = os.path.join(self.run.path, "evaluation", f"epoch-{epoch + 1:04d}.json")
        results = self.evaluation.run(
            self.sampler,
            self.config.train.evaluate_num,
            seed=self.config.sample.seed,
            picture=os.path.splitext(out)[0] + "-nearest.png",
        )
        write_json(out, {"epoch": epoch + 1, **results})
        print(f"\nEvaluation after epoch {epoch + 1}: " + "; ".join(summary_lines(results)[1:3]))
