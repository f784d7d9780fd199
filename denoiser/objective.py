"""The diffusion objective: what the network learns, in one place.

For a batch of clean images x (scaled to [-1, 1]) the network sees

    x_t = (1 - s) * x + s * eps        a point on the straight line from the image to noise eps
    s                                  the noise level, drawn from the training distribution
    c                                  the condition, replaced by "no condition" for a share of the images

and predicts the clean image: the target is x itself, and the loss the mean absolute error
|x0_hat - x| (or, with `data.loss_norm=l2`, the mean squared error), weighted per image by its noise level
as `data.loss_weighting` says (schedule.loss_weights; the weights travel as Keras sample weights). Dropping
conditions teaches the same network the unconditional prediction, which classifier-free guidance needs at
sampling time.

`training_example` builds ((x_t, s, c), x[, weights]) inside the `tf.data` graph, so the accelerator never waits
for Python; `loss` is what `model.compile` gets. The settings (the distribution of s, the share of dropped
conditions, ...) come from the run's `DataConfig` and `ModelConfig`, where their defaults are.

A super-resolution stage (model.low_resolution > 0) also sees the real image made small (area
downsampling) and then noised at a random augmentation level a in [0, data.max_augmentation], and a itself:
`super_resolution_example`. Noising the low-res input (Imagen's noise conditioning augmentation)
teaches the stage not to copy every flaw of a base model's output; told the level, it can be asked for a
small one at sampling time.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from denoiser.config import DataConfig, ModelConfig
from denoiser.schedule import LOSS_NORMS, add_noise, loss_weights, training_noise_levels
from denoiser.utils.images import downsample


def loss(norm: str = "l1") -> keras.losses.Loss:
    """The distance between the predicted and the clean image (`data.loss_norm`): L1, the default, gives sharper
    samples than L2 for x0-prediction; L2 is the squared error most diffusion papers train with."""
    if norm not in LOSS_NORMS:
        raise ValueError(f"Unknown loss norm {norm!r}; choose one of {LOSS_NORMS}.")
    return keras.losses.MeanAbsoluteError() if norm == "l1" else keras.losses.MeanSquaredError()


def scale_images(images):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def drop_conditions(conditions, uniform, rate: float):
    """Replace a share `rate` of the conditions by "no condition" (class 0 or the zero vector).

    The network thus also learns the unconditional prediction, which guidance needs.
    """
    keep = uniform >= rate
    keep = tf.reshape(keep, [-1] + [1] * (len(conditions.shape) - 1))
    return tf.where(keep, conditions, tf.zeros_like(conditions))


def training_example(images, conditions, seed, data: DataConfig, model: ModelConfig):
    """One training batch: ((x_t, s, condition), x0[, weights]) from uint8 images and conditions, all in graph.

    The inputs are what the network sees, x0 the target it must predict; an unconditional network
    (`model.condition="none"`) sees only (x_t, s). s follows `data.noise_distribution`, and a share
    `data.label_dropout` of the conditions becomes "no condition". Unless `data.loss_weighting` is "none",
    each image's loss weight for `data.loss_norm`, shaped (B, 1, 1) to weigh its every pixel, comes third.

    `seed` is a pair of integers for TensorFlow's stateless random ops, so a batch is reproducible.
    """
    x0 = scale_images(images)
    batch = tf.shape(x0)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    noise = tf.random.stateless_normal(tf.shape(x0), seed=seeds[0])
    uniform = tf.random.stateless_uniform([batch, 1], seed=seeds[1])
    levels = training_noise_levels(uniform, data.noise_distribution, data.noise_location, data.noise_scale)
    dropout_draws = tf.random.stateless_uniform([batch], seed=seeds[2])
    x_t = add_noise(x0, noise, tf.reshape(levels, [-1, 1, 1, 1]))
    if len(conditions.shape) == 1:  # class ids: the network takes (B, 1)
        conditions = conditions[:, None]
    inputs = (x_t, levels)
    if model.conditional:
        inputs += (drop_conditions(conditions, dropout_draws, data.label_dropout),)
    if data.loss_weighting == "none":
        return inputs, x0
    weights = loss_weights(levels, data.loss_weighting, model.data_std, data.loss_norm)
    return inputs, x0, tf.reshape(weights, [-1, 1, 1])


def super_resolution_example(images, conditions, seed, data: DataConfig, model: ModelConfig):
    """`training_example` for a super-resolution stage: ((x_t, s, [condition,] low_res, a), x0[, weights]).

    low_res is x0 downsampled to `model.low_resolution` (area) and noised at the augmentation level a, drawn
    uniformly from [0, data.max_augmentation] per image. The condition is left out for an unconditional model.
    """
    split = tf.random.experimental.stateless_split(seed, 3)
    inputs, x0, *weights = training_example(images, conditions, split[0], data, model)
    low = downsample(x0, model.low_resolution)
    augmentation = data.max_augmentation * tf.random.stateless_uniform([tf.shape(x0)[0], 1], seed=split[1])
    noise = tf.random.stateless_normal(tf.shape(low), seed=split[2])
    low = add_noise(low, noise, tf.reshape(augmentation, [-1, 1, 1, 1]))
    return ((*inputs, low, augmentation), x0, *weights)
