"""The `tf.data` pipeline that feeds `model.fit`: batches of a `Dataset`, noised by the objective.

Every training step g of a run sees the same images and the same noise, whatever happened before:
pass p = g // steps_per_pass over the data uses the order shuffled with the seed (seed, p), and the
noise of step g is drawn with the stateless seed (seed, g). So a run resumed at any step continues
exactly as if it had never been interrupted (`start_step`), and nothing is replayed to get there.

With gradient accumulation (`train.accumulate_steps` = k) a step is one weight update of k batches: the
step's k * batch_size images are drawn and noised as above, as one batch of a run with batch_size * k
would be, then cut into the k batches that `model.fit` sees, so both runs train on the same numbers.

Arrays in memory become tensors and everything per batch happens in the TensorFlow graph; arrays in
files too big for memory (captioned data sets) are read a batch of rows at a time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from denoiser.config import RunConfig
from denoiser.data.dataset import DataError, Dataset
from denoiser.objective import super_resolution_example, training_example

ENDLESS = np.iinfo(np.int64).max


def steps_per_pass(dataset: Dataset, batch_size: int) -> int:
    """Full batches in one pass over the data (the last partial batch is dropped)."""
    if len(dataset) < batch_size:
        raise DataError(f"The data set has {len(dataset)} images, fewer than one batch of {batch_size}.")
    return len(dataset) // batch_size


def training_pipeline(dataset: Dataset, config: RunConfig, start_step: int = 0):
    """An endless `tf.data.Dataset` of noised batches from batch `start_step` on, prefetched.

    Batches of `config.train.batch_size`, noised as `config.data` says; the same (`config.train.seed`, step)
    always gives the same batch: see the module docstring. For a super-resolution stage
    (`config.model.low_resolution > 0`) the batches also hold the low-res inputs (objective.py). With
    `train.accumulate_steps` = k, `start_step` counts batches (Keras's steps), k of them a weight update.
    """
    accumulate, seed = config.train.accumulate_steps, config.train.seed
    step_size = config.train.batch_size * accumulate  # the images of one weight update
    noised_example = super_resolution_example if config.model.super_resolution else training_example
    per_pass = steps_per_pass(dataset, step_size)
    first_step, batches_done = divmod(start_step, accumulate)
    first_pass, offset = divmod(first_step, per_pass)
    positions = tf.data.Dataset.range(first_pass, ENDLESS).flat_map(
        lambda index: tf.data.Dataset.from_tensor_slices(pass_order(len(dataset), per_pass, step_size, seed, index))
    )
    steps = tf.data.Dataset.range(first_step, ENDLESS)
    read = batch_reader(dataset, step_size)

    def example(step, step_positions):
        images, conditions = read(step_positions)
        pair_seed = tf.stack([tf.constant(seed, tf.int64), step])
        return noised_example(images, conditions, pair_seed, config.data, config.model)

    pipeline = tf.data.Dataset.zip(steps, positions.skip(offset))
    pipeline = pipeline.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if accumulate > 1:
        pipeline = pipeline.flat_map(lambda *step: split_batches(step, accumulate)).skip(batches_done)
    return pipeline.prefetch(tf.data.AUTOTUNE)


def split_batches(step: tuple, count: int) -> tf.data.Dataset:
    """One step's noised example ((inputs...), target[, weights]) as `count` equal batches, in order."""
    cut = tf.nest.map_structure(lambda tensor: tf.reshape(tensor, [count, -1, *tensor.shape[1:]]), step)
    return tf.data.Dataset.from_tensor_slices(cut)


def pass_order(count: int, per_pass: int, batch_size: int, seed: int, index):
    """The positions of pass `index` over `count` images, shuffled with (seed, index), as (per_pass, batch_size)."""
    keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), index]))
    order = tf.argsort(keys)[: per_pass * batch_size]
    return tf.reshape(tf.cast(order, tf.int64), [per_pass, batch_size])


def batch_reader(dataset: Dataset, batch_size: int):
    """A graph function from a batch of positions (0..len-1) to (images, conditions).

    Arrays in memory are gathered as tensors; arrays in (memory-mapped) files are read by row index,
    so the data set never has to fit in memory.
    """
    if dataset.rows is None:
        images, conditions = tf.constant(dataset.images), tf.constant(dataset.conditions)
        return lambda positions: (tf.gather(images, positions), tf.gather(conditions, positions))

    images, conditions, rows = dataset.images, dataset.conditions, dataset.row_indices()

    def read(positions):
        indices = np.sort(rows[positions])  # reading a file front to back is faster; a batch's order does not matter
        return np.asarray(images[indices]), np.asarray(conditions[indices])

    def read_batch(positions):
        batch_images, batch_conditions = tf.numpy_function(
            read, [positions], [tf.uint8, tf.as_dtype(conditions.dtype)], stateful=False
        )
        batch_images.set_shape([batch_size, *images.shape[1:]])
        batch_conditions.set_shape([batch_size, *conditions.shape[1:]])
        return batch_images, batch_conditions

    return read_batch
