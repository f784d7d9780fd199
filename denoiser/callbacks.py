"""What the trainer does after every epoch, as Keras callbacks: checkpoint, log row, sample grid."""

from __future__ import annotations

import csv
import io
import os
import time

import keras
import numpy as np
from keras import ops

from denoiser.config import RunConfig
from denoiser.data.dataset import Dataset
from denoiser.data.encoders import wrap_label
from denoiser.rundir import RunDirectory, read_log
from denoiser.sampler import Sampler
from denoiser.serialization import copy_ema_weights
from denoiser.utils.files import atomic_path, write_text
from denoiser.utils.plotting import save_grid


class CheckpointCallback(keras.callbacks.Callback):
    """After every epoch: save `epoch-NNNN.keras` and `latest.keras`, both atomically."""

    def __init__(self, run: RunDirectory, keep: int = 0):
        super().__init__()
        self.run = run
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        path = self.run.checkpoint(epoch + 1)
        with atomic_path(path) as temporary:
            self.model.save(temporary)
            with atomic_path(self.run.latest) as latest:
                with open(temporary, "rb") as source, open(latest, "wb") as target:
                    target.write(source.read())
        if self.keep:
            for old in self.run.finished_epochs()[: -self.keep]:
                os.remove(self.run.checkpoint(old))


def averaged_weights_sampler(model: keras.Model, config: RunConfig, sampler: Sampler | None = None) -> Sampler:
    """A sampler (with the run's sampling settings) over a copy of `model` holding its averaged weights.

    Pass the sampler from the last call to reuse its copy (and its compiled steps) instead of building one.
    """
    if sampler is None:
        sample = config.sample
        sampler = Sampler(
            keras.models.clone_model(model),
            steps=sample.steps,
            guidance=sample.guidance,
            threshold_percentile=sample.threshold_percentile,
        )
    copy_ema_weights(model, into=sampler.model)
    return sampler


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
        conditions, row_labels = grid_conditions(self.config, self.class_names, dataset=self.dataset)
        columns = self.config.sample.columns
        images = self.sampler.sample(
            condition=None if conditions is None else np.repeat(conditions, columns, axis=0),
            num_images=columns * len(row_labels),
            seed=self.config.sample.seed,
        )
        loss = (logs or {}).get("loss")
        title = f"epoch {epoch + 1}" + (f", loss {loss:.4f}" if loss is not None else "")
        save_grid(images, self.run.sample_grid(epoch + 1), rows=len(row_labels), row_labels=row_labels, title=title)


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
    ids = np.unique(np.linspace(1, count, min(count, max_rows)).round().astype("int32"))
    labels = [class_names[i - 1] if i - 1 < len(class_names) else f"class {i}" for i in ids]
    return ids, labels


class CSVLogCallback(keras.callbacks.Callback):
    """Append one row per epoch (loss, learning rate, speed) to log.csv, rewriting it atomically."""

    FIELDS = ("epoch", "loss", "learning_rate", "seconds", "images_per_second")

    def __init__(self, path: str, batch_size: int):
        super().__init__()
        self.path = path
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.end = time.perf_counter()  # the epoch's training ends here; checkpoints and samples follow

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.end - self.start
        learning_rate = self.model.optimizer.learning_rate
        row = {
            "epoch": epoch + 1,
            "loss": f"{(logs or {}).get('loss', float('nan')):.6f}",
            "learning_rate": f"{float(ops.convert_to_numpy(learning_rate)):.3g}",
            "seconds": f"{seconds:.1f}",
            "images_per_second": f"{self.steps * self.batch_size / max(seconds, 1e-9):.1f}",
        }
        rows = read_log(self.path)
        rows = [r for r in rows if int(r["epoch"]) < row["epoch"]] + [row]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, buffer.getvalue())
