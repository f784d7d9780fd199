"""The `tf.data` pipeline that feeds `model.fit`: shuffled batches of a `Dataset`, noised by the objective.

Arrays in memory become tensors and everything per batch happens in the TensorFlow graph; arrays in
files too big for memory (captioned data sets) are read a batch of rows at a time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from denoiser.data.dataset import DataError, Dataset
from denoiser.objective import LABEL_DROPOUT, training_example


def training_pipeline(
    dataset: Dataset,
    batch_size: int,
    label_dropout: float = LABEL_DROPOUT,
    distribution: str = "folded_normal",
    shuffle_buffer: int = 60000,
    seed: int = 0,
    repeat: bool = False,
):
    """A `tf.data.Dataset` of noised batches: shuffled anew every epoch, prefetched, no Python per batch."""
    if len(dataset) < batch_size:
        raise DataError(f"The data set has {len(dataset)} images, fewer than one batch of {batch_size}.")
    if dataset.rows is None:
        images = tf.data.Dataset.from_tensor_slices((dataset.images, dataset.conditions))
        images = images.shuffle(min(shuffle_buffer, len(dataset)), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            images = images.repeat()
        batches = images.batch(batch_size, drop_remainder=True)
    else:
        batches = batches_by_index(dataset, batch_size, seed, repeat)
    # A fresh stream of random seeds every epoch, so each epoch sees new noise.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    pipeline = tf.data.Dataset.zip(batches, seeds).map(
        lambda batch, pair_seed: training_example(batch[0], batch[1], pair_seed, label_dropout, distribution),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return pipeline.prefetch(tf.data.AUTOTUNE)


def batches_by_index(dataset: Dataset, batch_size: int, seed: int = 0, repeat: bool = False):
    """Batches of (images, conditions) read from (memory-mapped) arrays by shuffled row indices.

    Only the indices live in TensorFlow; each batch's rows are read from the files when needed,
    so the data set never has to fit in memory.
    """
    images, conditions = dataset.images, dataset.conditions

    def read(indices):
        indices = np.sort(indices)  # reading a file front to back is faster; a batch's order does not matter
        return np.asarray(images[indices]), np.asarray(conditions[indices])

    def read_batch(indices):
        batch_images, batch_conditions = tf.numpy_function(
            read, [indices], [tf.uint8, tf.as_dtype(conditions.dtype)], stateful=False
        )
        batch_images.set_shape([batch_size, *images.shape[1:]])
        batch_conditions.set_shape([batch_size, *conditions.shape[1:]])
        return batch_images, batch_conditions

    order = tf.data.Dataset.from_tensor_slices(np.asarray(dataset.rows, dtype=np.int64))
    order = order.shuffle(len(dataset), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        order = order.repeat()
    return order.batch(batch_size, drop_remainder=True).map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
