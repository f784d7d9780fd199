"""The U-Net's building blocks, as registered Keras layers written with `keras.ops`.

Registration (`register_keras_serializable`) plus `get_config` lets a saved `.keras` file load with
`safe_mode=True`: the file names these classes and their arguments, never code. `keras.ops` keeps
them backend-neutral (TensorFlow, JAX, PyTorch).
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from denoiser.schedule import preconditioning_scalings

PACKAGE = "denoiser"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SinusoidalEmbedding(layers.Layer):
    """Maps a noise level s of shape (B, 1) to sines and cosines at geometric frequencies, (B, dim).

    Low frequencies tell coarse levels apart, high ones resolve small differences near s = 0, where
    most training happens.
    """

    def __init__(self, dim: int = 32, max_frequency: float = 1000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.max_frequency = max_frequency

    @property
    def input_dtype(self):
        # Keras would cast the noise level to the compute dtype first: in bfloat16 (3 digits) the angles of the
        # high frequencies, up to 2 pi * max_frequency * s, would be noise. The output is cast down instead.
        return "float32"

    def call(self, noise_level):
        half = self.dim // 2
        log_frequencies = ops.linspace(0.0, math.log(self.max_frequency), half)
        angular_speeds = 2.0 * math.pi * ops.exp(log_frequencies)
        angles = ops.cast(noise_level, "float32") * angular_speeds
        embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_frequency": self.max_frequency}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """Two 3x3 convolutions with a skip connection, modulated by the embedding of noise level and condition.

    The embedding (B, E) is turned into a per-channel scale and shift ("FiLM") after the first
    convolution, so every block knows how noisy its input is. The second convolution starts at zero,
    so a fresh block is the identity and deep networks train from the first step.
    """

    def __init__(self, width: int, groups: int = 8, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.groups = groups
        self.dropout = dropout
        self.norm_in = layers.GroupNormalization(groups, name="norm_in", dtype=self.dtype_policy)
        self.conv_in = layers.Conv2D(width, 3, padding="same", name="conv_in", dtype=self.dtype_policy)
        self.film = layers.Dense(2 * width, name="film", dtype=self.dtype_policy)
        self.norm_out = layers.GroupNormalization(groups, name="norm_out", dtype=self.dtype_policy)
        self.drop = layers.Dropout(dropout, name="dropout", dtype=self.dtype_policy)
        self.conv_out = layers.Conv2D(
            width, 3, padding="same", kernel_initializer="zeros", name="conv_out", dtype=self.dtype_policy
        )
        self.project_skip = None

    def build(self, input_shape):
        image_shape, embedding_shape = input_shape
        self.norm_in.build(image_shape)
        self.conv_in.build(image_shape)
        self.film.build(embedding_shape)
        hidden_shape = (*image_shape[:-1], self.width)
        self.norm_out.build(hidden_shape)
        self.conv_out.build(hidden_shape)
        if image_shape[-1] != self.width:
            self.project_skip = layers.Conv2D(self.width, 1, name="project_skip", dtype=self.dtype_policy)
            self.project_skip.build(image_shape)

    def call(self, inputs, training=None):
        x, embedding = inputs
        skip = x if self.project_skip is None else self.project_skip(x)
        h = self.conv_in(ops.silu(self.norm_in(x)))
        scale, shift = ops.split(self.film(ops.silu(embedding)), 2, axis=-1)
        h = self.norm_out(h) * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :]
        h = self.conv_out(self.drop(ops.silu(h), training=training))
        return skip + h

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "groups": self.groups, "dropout": self.dropout}


def _split_heads(tokens, heads):
    """(B, N, H*D) -> (B, H, N, D)."""
    batch, length, width = ops.shape(tokens)[0], ops.shape(tokens)[1], tokens.shape[-1]
    return ops.transpose(ops.reshape(tokens, (batch, length, heads, width // heads)), (0, 2, 1, 3))


def _merge_heads(tokens):
    """(B, H, N, D) -> (B, N, H*D)."""
    heads, depth = tokens.shape[1], tokens.shape[3]
    tokens = ops.transpose(tokens, (0, 2, 1, 3))
    return ops.reshape(tokens, (ops.shape(tokens)[0], ops.shape(tokens)[1], heads * depth))


def scaled_dot_product_attention(query, key, value, heads: int):
    """Multi-head attention of query tokens (B, N, W) over key/value tokens (B, M, W)."""
    q, k, v = (_split_heads(t, heads) for t in (query, key, value))
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(q.shape[-1])
    scores = ops.cast(scores, "float32")
    # softmax written out: Keras warns about ops.softmax over a single token (a class or CLIP vector).
    weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    weights = weights / ops.sum(weights, axis=-1, keepdims=True)
    return _merge_heads(ops.matmul(ops.cast(weights, v.dtype), v))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelfAttention(layers.Layer):
    """Every pixel attends to every other pixel: lets the network relate distant parts of the image."""

    def __init__(self, heads: int = 4, groups: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.groups = groups
        self.norm = layers.GroupNormalization(groups, name="norm", dtype=self.dtype_policy)

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm.build(input_shape)
        self.to_qkv = layers.Dense(3 * width, use_bias=False, name="to_qkv", dtype=self.dtype_policy)
        self.to_qkv.build((None, None, width))
        self.to_out = layers.Dense(width, kernel_initializer="zeros", name="to_out", dtype=self.dtype_policy)
        self.to_out.build((None, None, width))

    def call(self, x):
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        tokens = ops.reshape(self.norm(x), (-1, height * width, channels))
        query, key, value = ops.split(self.to_qkv(tokens), 3, axis=-1)
        attended = self.to_out(scaled_dot_product_attention(query, key, value, self.heads))
        return x + ops.reshape(attended, (-1, height, width, channels))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "groups": self.groups}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CrossAttention(layers.Layer):
    """Every pixel attends to the condition's tokens (a class embedding, a CLIP vector, or CLIP token states).

    This is how a prompt steers different parts of the image differently.
    """

    def __init__(self, heads: int = 4, groups: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.groups = groups
        self.norm = layers.GroupNormalization(groups, name="norm", dtype=self.dtype_policy)
        self.context_norm = layers.LayerNormalization(name="context_norm", dtype=self.dtype_policy)

    def build(self, input_shape):
        image_shape, context_shape = input_shape
        width = image_shape[-1]
        self.norm.build(image_shape)
        self.context_norm.build(context_shape)
        self.to_q = layers.Dense(width, use_bias=False, name="to_q", dtype=self.dtype_policy)
        self.to_q.build((None, None, width))
        self.to_kv = layers.Dense(2 * width, use_bias=False, name="to_kv", dtype=self.dtype_policy)
        self.to_kv.build(context_shape)
        self.to_out = layers.Dense(width, kernel_initializer="zeros", name="to_out", dtype=self.dtype_policy)
        self.to_out.build((None, None, width))

    def call(self, inputs):
        x, context = inputs
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        query = self.to_q(ops.reshape(self.norm(x), (-1, height * width, channels)))
        key, value = ops.split(self.to_kv(self.context_norm(context)), 2, axis=-1)
        attended = self.to_out(scaled_dot_product_attention(query, key, value, self.heads))
        return x + ops.reshape(attended, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "groups": self.groups}


class Preconditioning(layers.Layer):
    """What both EDM scalings share: the data's standard deviation `data_std` they assume, and the
    scalings (c_in, c_skip, c_out) of `schedule.preconditioning_scalings` per image, shaped (B, 1, 1, 1).
    The first input, an image, has the output's shape."""

    def __init__(self, data_std: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.data_std = data_std

    def scalings(self, noise_level):
        return preconditioning_scalings(ops.reshape(noise_level, (-1, 1, 1, 1)), self.data_std)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "data_std": self.data_std}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PreconditionInput(Preconditioning):
    """(x_t, s) -> c_in * x_t: the noisy image scaled to unit variance at every noise level (EDM)."""

    def call(self, inputs):
        noisy_images, noise_level = inputs
        c_in, _, _ = self.scalings(noise_level)
        return ops.cast(c_in, noisy_images.dtype) * noisy_images


@keras.saving.register_keras_serializable(package=PACKAGE)
class PreconditionOutput(Preconditioning):
    """(F, x_t, s) -> x0_hat = c_skip * x_t + c_out * F: the network's unit-scale output F made a prediction
    of the clean image, which keeps the part of x_t that is already the image (EDM)."""

    @property
    def input_dtype(self):
        # Computed in float32 (as the network's last conv): under a mixed policy Keras would otherwise cast x_t and
        # s to the compute dtype first, and bfloat16 scalings times float32 images fail.
        return "float32"

    def call(self, inputs):
        output, noisy_images, noise_level = inputs
        _, c_skip, c_out = self.scalings(noise_level)
        return c_skip * ops.cast(noisy_images, "float32") + c_out * ops.cast(output, "float32")
