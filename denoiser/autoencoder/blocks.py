"""The autoencoder's own building blocks, as registered Keras layers written with `keras.ops`.

They follow diffusers' `AutoencoderKL` operation for operation (GroupNorm with epsilon 1e-6, SiLU, one attention
head as wide as the block), and their sub-layers carry diffusers' names (`norm1`, `conv1`, `to_q`, ...), so its
weights map onto them by name (from_diffusers.py). Registered with `get_config`, so a `.keras` file loads with
`safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from denoiser.layers import PACKAGE, scaled_dot_product_attention

NORM_EPSILON = 1e-6  # diffusers' and Stable Diffusion's; Keras' default (1e-3) gives other outputs


def group_norm(groups: int, name: str, dtype=None) -> layers.GroupNormalization:
    return layers.GroupNormalization(groups, epsilon=NORM_EPSILON, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AutoencoderResidualBlock(layers.Layer):
    """norm, SiLU, 3x3 conv, norm, SiLU, 3x3 conv, plus the input (through a 1x1 conv where the width changes).

    Unlike the U-Net's ResidualBlock it has no noise-level embedding: an autoencoder sees clean images only.
    """

    def __init__(self, width: int, groups: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.groups = groups
        self.norm1 = group_norm(groups, "norm1", self.dtype_policy)
        self.conv1 = layers.Conv2D(width, 3, padding="same", name="conv1", dtype=self.dtype_policy)
        self.norm2 = group_norm(groups, "norm2", self.dtype_policy)
        self.conv2 = layers.Conv2D(width, 3, padding="same", name="conv2", dtype=self.dtype_policy)
        self.conv_shortcut = None

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.conv1.build(input_shape)
        hidden_shape = (*input_shape[:-1], self.width)
        self.norm2.build(hidden_shape)
        self.conv2.build(hidden_shape)
        if input_shape[-1] != self.width:
            self.conv_shortcut = layers.Conv2D(self.width, 1, name="conv_shortcut", dtype=self.dtype_policy)
            self.conv_shortcut.build(input_shape)

    def call(self, x):
        h = self.conv1(ops.silu(self.norm1(x)))
        h = self.conv2(ops.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "groups": self.groups}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AutoencoderAttention(layers.Layer):
    """Every latent pixel attends to every other (one head as wide as the block), added to the input.

    It sits at the smallest side only, where the pixels are few: 32x32 = 1024 tokens for a 256-pixel image.
    """

    def __init__(self, groups: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.group_norm = group_norm(groups, "group_norm", self.dtype_policy)

    def build(self, input_shape):
        width = input_shape[-1]
        self.group_norm.build(input_shape)
        for name in ("to_q", "to_k", "to_v", "to_out"):
            dense = layers.Dense(width, name=name, dtype=self.dtype_policy)
            dense.build((None, None, width))
            setattr(self, name, dense)

    def call(self, x):
        shape = ops.shape(x)
        tokens = ops.reshape(self.group_norm(x), (shape[0], -1, x.shape[-1]))  # (N, h * w, width)
        attended = scaled_dot_product_attention(self.to_q(tokens), self.to_k(tokens), self.to_v(tokens), heads=1)
        return x + ops.reshape(self.to_out(attended), shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, 1)) per latent value, averaged: 0 when the encoder's distribution
    is the standard normal, large when it is very narrow (log_variance -> -inf) or far from 0."""
    return 0.5 * ops.mean(ops.square(mean) + ops.exp(log_variance) - 1.0 - log_variance)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LatentDistribution(layers.Layer):
    """The KL bottleneck: the encoder's moments (N, h, w, 2C), means then log-variances, to a latent (N, h, w, C).

    In training it draws latent = mean + std * noise and adds `kl_weight * kl_divergence` to the model's loss,
    which keeps the latents near unit scale and the decoder robust to small changes of them; otherwise it
    returns the means. The log-variance is clipped to [-30, 20], as diffusers does.
    """

    def __init__(self, kl_weight: float = 1e-4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, moments, training=None):
        mean, log_variance = moments_to_mean_and_log_variance(moments)
        if not training:
            return mean
        self.add_loss(self.kl_weight * kl_divergence(mean, log_variance))
        noise = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_variance) * noise

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


def moments_to_mean_and_log_variance(moments):
    """Split the encoder's output into the latent means and (clipped) log-variances."""
    mean, log_variance = ops.split(moments, 2, axis=-1)
    return mean, ops.clip(log_variance, -30.0, 20.0)
