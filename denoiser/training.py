"""Training: `model.fit` on noised batches, with a run directory that survives interruptions.

A run directory holds

    config.yaml                 the resolved configuration of the run
    checkpoints/epoch-0001.keras ...   the model and optimizer state after each epoch
    checkpoints/latest.keras    a copy of the newest one
    samples/epoch-0001.png ...  a grid from the same fixed noise after each epoch (one row per class)
    log.csv                     loss, learning rate and speed per epoch
    evaluation/epoch-0002.json  sample-quality scores every `train.evaluate_every` epochs (if set)

Every file is written atomically. Running the same command again resumes after the last
finished epoch; `--epochs N` extends a finished run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time

import keras
import numpy as np
import yaml
from keras import ops

from .config import ConfigError, RunConfig, config_differences
from .data import Dataset, check_fits_model, dataset_for_config, training_pipeline
from .files import atomic_path, write_text
from .model import build_unet
from .plotting import save_grid
from .sampler import Sampler
from .serialization import CheckpointError, copy_ema_weights, load_model

PACKAGE = "denoiser"
# Sections whose change makes an existing run directory a different run (the rest may change on resume).
IDENTITY_SECTIONS = ("data", "model")
# Where the data lies may change (e.g. copied to a faster disk), what it is may not.
RELOCATABLE_KEYS = ("data.path", "data.embeddings")


# ================================================================================== optimizer
@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate after a linear warm-up from 0 over `warmup_steps` steps.

    Warm-up keeps Adam's first, poorly estimated steps from knocking a fresh network off course.
    """

    def __init__(self, learning_rate: float, warmup_steps: int):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        progress = (ops.cast(step, "float32") + 1.0) / max(self.warmup_steps, 1)
        return self.learning_rate * ops.minimum(1.0, progress)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EMAAdam(keras.optimizers.Adam):
    """Adam that also keeps an exponential moving average (EMA) of the weights, with a warm-up.

    Averaged weights give cleaner samples than the last step's. Keras's own EMA uses a fixed decay,
    so after 1,000 steps at 0.999 a third of the average is still the random start; here the decay
    grows as min(decay, (1 + step) / (10 + step)), so early averages forget the start quickly.
    """

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")
        momentum = ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                average.assign(momentum * average + (1.0 - momentum) * variable)


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    train = config.train
    return EMAAdam(
        learning_rate=WarmupSchedule(train.learning_rate, train.warmup_steps),
        use_ema=train.ema_decay > 0,
        ema_momentum=train.ema_decay or 0.99,
    )


# ================================================================================== run directory
class RunDirectory:
    """The files of one training run (see the module docstring)."""

    CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.config_path = os.path.join(self.path, "config.yaml")
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.samples = os.path.join(self.path, "samples")
        self.log_path = os.path.join(self.path, "log.csv")
        self.latest = os.path.join(self.checkpoints, "latest.keras")

    def checkpoint(self, epoch: int) -> str:
        return os.path.join(self.checkpoints, f"epoch-{epoch:04d}.keras")

    def sample_grid(self, epoch: int) -> str:
        return os.path.join(self.samples, f"epoch-{epoch:04d}.png")

    def finished_epochs(self) -> list[int]:
        """Epochs with a complete checkpoint (writes are atomic, so a named file is complete)."""
        if not os.path.isdir(self.checkpoints):
            return []
        return sorted(int(m.group(1)) for m in map(self.CHECKPOINT.match, os.listdir(self.checkpoints)) if m)

    def read_config(self) -> dict | None:
        if not os.path.exists(self.config_path):
            return None
        with open(self.config_path) as handle:
            return yaml.safe_load(handle)

    def write_config(self, config: RunConfig) -> None:
        os.makedirs(self.path, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def check_same_run(self, config: RunConfig) -> None:
        """Refuse to continue a run directory with a different data set or network."""
        saved = self.read_config()
        if saved is None:
            return
        new = config.to_dict()
        differences = config_differences(
            {k: saved.get(k, {}) for k in IDENTITY_SECTIONS}, {k: new[k] for k in IDENTITY_SECTIONS}
        )
        differences = [d for d in differences if not d.startswith(tuple(f"{key}:" for key in RELOCATABLE_KEYS))]
        if differences:
            raise ConfigError(
                f"The run directory {self.path} holds a run with a different configuration: "
                + "; ".join(differences)
                + ". Use a new --run-dir, or the same settings to resume."
            )


# ================================================================================== callbacks
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
        sampler = Sampler(keras.models.clone_model(model), steps=sample.steps, guidance=sample.guidance,
                          threshold_percentile=sample.threshold_percentile)
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
        from .text import wrap_label

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


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ================================================================================== training
def evaluation_callbacks(run: RunDirectory, config: RunConfig) -> list[keras.callbacks.Callback]:
    """The evaluation every `train.evaluate_every` epochs (none when 0), into RUN/evaluation/."""
    if not config.train.evaluate_every:
        return []
    from .evaluation import EvaluationCallback

    return [EvaluationCallback(run.path, config, config.train.evaluate_every, config.train.evaluate_num)]


def class_names_for(config: RunConfig) -> tuple[str, ...]:
    """Class names of the run's data set, without loading the images."""
    from .data import KERAS_DATASETS

    if config.data.dataset == "shapes":
        from .shapes import CLASS_NAMES

        return tuple(CLASS_NAMES)
    return tuple(KERAS_DATASETS.get(config.data.dataset, ()))


def mixed_precision_policy() -> str:
    """float16 where a GPU runs the model, bfloat16 on CPUs and TPUs."""
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def make_strategy(name: str):
    """A `tf.distribute` strategy for `train.distribute`, or None for one device."""
    if name == "none":
        return None
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


@contextlib.contextmanager
def dtype_policy(mixed: bool):
    """Use a mixed-precision policy while building and training, then restore the previous one."""
    previous = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    dataset: Dataset | None = None,
    callbacks: list[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> keras.Model:
    """Train (or resume) the run in `run_dir`; returns the model with its averaged (EMA) weights.

    `dataset` overrides `config.data.dataset` with your own arrays (see `denoiser.data.Dataset`).
    """
    config.validate()
    run = RunDirectory(run_dir)
    run.check_same_run(config)
    done = max(run.finished_epochs(), default=0)
    if done >= config.train.epochs:
        print(f"{run.path} already finished {done} epochs; pass a larger --epochs to train further.")
        return load_model(run.latest, ema=True)

    if dataset is None:
        dataset = dataset_for_config(config)
    check_fits_model(dataset, config.model)
    repeat = config.train.steps_per_epoch is not None
    batches = training_pipeline(
        dataset,
        config.train.batch_size,
        label_dropout=config.data.label_dropout,
        distribution=config.data.noise_distribution,
        shuffle_buffer=config.data.shuffle_buffer,
        seed=config.train.seed + 1000 * done,  # a resumed run does not replay the first epochs' noise
        repeat=repeat,
    )

    strategy = make_strategy(config.train.distribute)
    with dtype_policy(config.train.mixed_precision), (strategy.scope() if strategy else contextlib.nullcontext()):
        if done:
            model = load_model(run.checkpoint(done), compile=True)
            print(f"Resuming {run.path} after epoch {done}.")
        else:
            keras.utils.set_random_seed(config.train.seed)
            model = build_unet(config.model)
            model.compile(optimizer=make_optimizer(config), loss="mean_absolute_error")
        run.write_config(config)
        model.fit(
            batches,
            epochs=config.train.epochs,
            initial_epoch=done,
            steps_per_epoch=config.train.steps_per_epoch,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles
            callbacks=[
                # Checkpoint and log first: an epoch's training is kept even if drawing its samples fails.
                CheckpointCallback(run, keep=config.train.keep_checkpoints),
                CSVLogCallback(run.log_path, config.train.batch_size),
                SampleGridCallback(run, config, dataset.class_names or class_names_for(config), dataset),
                *evaluation_callbacks(run, config),
                *callbacks,
            ],
        )
    return model
