"""Training: `model.fit` on batches from the data pipeline, into a run directory that survives interruptions.

One batch goes: data/pipeline.py (shuffled uint8 images and conditions) -> objective.py (noised
images, noise levels, dropped conditions; the clean image as the target; the L1 loss) -> `model.fit`
here. After every epoch the callbacks (callbacks.py) save a checkpoint, a log row and a sample grid
into the run directory (rundir.py). Running the same command again resumes after the last finished
epoch; `--epochs N` extends a finished run.
"""

from __future__ import annotations

import contextlib
import os

import keras
import tensorflow as tf

from denoiser import objective
from denoiser.callbacks import CheckpointCallback, CSVLogCallback, SampleGridCallback
from denoiser.config import RunConfig
from denoiser.data.dataset import Dataset, check_fits_model
from denoiser.data.pipeline import training_pipeline
from denoiser.data.sources import class_names_for, dataset_for_config
from denoiser.evaluation.evaluator import EvaluationCallback
from denoiser.model import build_unet
from denoiser.optimizer import make_optimizer
from denoiser.rundir import RunDirectory
from denoiser.serialization import load_model


def evaluation_callbacks(run: RunDirectory, config: RunConfig) -> list[keras.callbacks.Callback]:
    """The evaluation every `train.evaluate_every` epochs (none when 0), into RUN/evaluation/."""
    if not config.train.evaluate_every:
        return []
    return [EvaluationCallback(run.path, config, config.train.evaluate_every, config.train.evaluate_num)]


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
    with dtype_policy(config.train.mixed_precision), strategy.scope() if strategy else contextlib.nullcontext():
        if done:
            model = load_model(run.checkpoint(done), compile=True)
            print(f"Resuming {run.path} after epoch {done}.")
        else:
            keras.utils.set_random_seed(config.train.seed)
            model = build_unet(config.model)
            model.compile(optimizer=make_optimizer(config), loss=objective.loss())
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
