"""The autoencoder: an encoder network to the latent's moments, the KL bottleneck, and a decoder network.

The same architecture family as diffusers' `AutoencoderKL` (Stable Diffusion's VAE), layer for layer:

    encoder: conv_in -> per block: residual blocks, then a stride-2 3x3 conv (not after the last block)
             -> mid block (residual, attention, residual) -> norm, SiLU, conv_out to 2C moments -> quant_conv (1x1)
    decoder: post_quant_conv (1x1) -> conv_in -> mid block -> per block, widest first: one residual block more
             than the encoder's, then nearest-neighbour upsampling and a 3x3 conv (not after the last) -> norm,
             SiLU, conv_out to the image's channels

Every layer is named by its module path in diffusers, with "-" for "." (`encoder-down_blocks-0-resnets-1` is
diffusers' `encoder.down_blocks.0.resnets.1`; the PyTorch backend allows no "." in a name): that is all the weight
loader needs to know (from_diffusers.py). Channels last, (N, H, W, C), as the rest of the package.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from denoiser.autoencoder.blocks import (
    AutoencoderAttention,
    AutoencoderResidualBlock,
    LatentDistribution,
    group_norm,
    moments_to_mean_and_log_variance,
)
from denoiser.autoencoder.config import AutoencoderConfig
from denoiser.layers import PACKAGE


class AutoencoderError(ValueError):
    """An autoencoder file or folder, or the images given to one, do not fit; the message says how."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class Autoencoder(keras.Model):
    """images (N, H, W, C) in [-1, 1] -> reconstructions, as a functional Keras model carrying its config.

    Trained with `fit(images, images)` and a reconstruction loss; the KL term adds itself (LatentDistribution).
    `encode` and `decode` are the two halves; the latent scale (`config.scaling_factor`) is applied by neither.
    """

    def __init__(self, config: AutoencoderConfig | dict, name: str = "autoencoder", **kwargs):
        config = config if isinstance(config, AutoencoderConfig) else AutoencoderConfig.from_saved(config)
        images = keras.Input((None, None, config.image_channels), name="images")
        moments = encoder_network(config)(images)
        latents = LatentDistribution(config.kl_weight, name="latent_distribution")(moments)
        super().__init__(images, decoder_network(config)(latents), name=name, **kwargs)
        self.config = config

    @property
    def encoder(self) -> keras.Model:
        """The network from images to the latent's moments (N, h, w, 2C): means, then log-variances."""
        return self.get_layer("encoder")

    @property
    def decoder(self) -> keras.Model:
        """The network from latents (N, h, w, C) to images."""
        return self.get_layer("decoder")

    @property
    def scaling_factor(self) -> float:
        return self.config.scaling_factor

    def encode(self, images, batch_size: int = 16) -> np.ndarray:
        """The latent means (N, H/f, W/f, C) of images (N, H, W, image_channels) in [-1, 1], in batches."""
        images = self._checked(images, self.config.image_channels, self.config.downsampling, "images")
        means = [moments_to_mean_and_log_variance(self.encoder(batch))[0] for batch in _batches(images, batch_size)]
        return np.concatenate([ops.convert_to_numpy(batch) for batch in means])

    def decode(self, latents, batch_size: int = 16) -> np.ndarray:
        """Images (N, h*f, w*f, image_channels) in [-1, 1] of latents (N, h, w, C), in batches (`decoder` gives
        them unclipped)."""
        latents = self._checked(latents, self.config.latent_channels, 1, "latents")
        images = [ops.convert_to_numpy(self.decoder(batch)) for batch in _batches(latents, batch_size)]
        return np.clip(np.concatenate(images), -1.0, 1.0)

    @staticmethod
    def _checked(values, channels: int, multiple: int, what: str) -> np.ndarray:
        """`values` as float32 (N, H, W, channels) with H and W multiples of `multiple`, or AutoencoderError."""
        values = np.asarray(values, dtype="float32")
        if values.ndim != 4 or values.shape[-1] != channels or values.shape[1] % multiple or values.shape[2] % multiple:
            sides = f" with H and W multiples of {multiple}" if multiple > 1 else ""
            raise AutoencoderError(
                f"{what} of shape {values.shape} do not fit this autoencoder: give (N, H, W, {channels}){sides}, "
                "channels last."
            )
        return values

    def get_config(self) -> dict:
        return {"name": self.name, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict) -> Autoencoder:
        return cls(**config)


def build_autoencoder(config: AutoencoderConfig | None = None, name: str = "autoencoder") -> Autoencoder:
    """The autoencoder `config` describes (by default Stable Diffusion's VAE), with fresh weights."""
    return Autoencoder(config or AutoencoderConfig(), name=name)


def _batches(values: np.ndarray, batch_size: int):
    return (values[start : start + batch_size] for start in range(0, len(values), batch_size))


def encoder_network(config: AutoencoderConfig) -> keras.Model:
    """images (N, H, W, image_channels) -> moments (N, H/f, W/f, 2 * latent_channels)."""
    images = keras.Input((None, None, config.image_channels), name="images")
    x = layers.Conv2D(config.widths[0], 3, padding="same", name="encoder-conv_in")(images)
    last = len(config.widths) - 1
    for i, width in enumerate(config.widths):
        for j in range(config.layers_per_block):
            x = AutoencoderResidualBlock(width, config.norm_groups, name=f"encoder-down_blocks-{i}-resnets-{j}")(x)
        if i < last:  # diffusers pads right and bottom by one, then a 3x3 stride-2 conv
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"encoder-down_blocks-{i}-pad")(x)
            x = layers.Conv2D(width, 3, strides=2, name=f"encoder-down_blocks-{i}-downsamplers-0-conv")(x)
    x = mid_block(x, config, "encoder")
    x = layers.Activation("silu", name="encoder-conv_act")(group_norm(config.norm_groups, "encoder-conv_norm_out")(x))
    moments = layers.Conv2D(2 * config.latent_channels, 3, padding="same", name="encoder-conv_out")(x)
    if config.quant_convs:
        moments = layers.Conv2D(2 * config.latent_channels, 1, name="quant_conv")(moments)
    return keras.Model(images, moments, name="encoder")


def decoder_network(config: AutoencoderConfig) -> keras.Model:
    """latents (N, h, w, latent_channels) -> images (N, h*f, w*f, image_channels)."""
    latents = keras.Input((None, None, config.latent_channels), name="latents")
    x = latents
    if config.quant_convs:
        x = layers.Conv2D(config.latent_channels, 1, name="post_quant_conv")(x)
    x = layers.Conv2D(config.widths[-1], 3, padding="same", name="decoder-conv_in")(x)
    x = mid_block(x, config, "decoder")
    last = len(config.widths) - 1
    for i, width in enumerate(reversed(config.widths)):
        for j in range(config.layers_per_block + 1):
            x = AutoencoderResidualBlock(width, config.norm_groups, name=f"decoder-up_blocks-{i}-resnets-{j}")(x)
        if i < last:
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"decoder-up_blocks-{i}-upsample")(x)
            x = layers.Conv2D(width, 3, padding="same", name=f"decoder-up_blocks-{i}-upsamplers-0-conv")(x)
    x = layers.Activation("silu", name="decoder-conv_act")(group_norm(config.norm_groups, "decoder-conv_norm_out")(x))
    images = layers.Conv2D(config.image_channels, 3, padding="same", name="decoder-conv_out", dtype="float32")(x)
    return keras.Model(latents, images, name="decoder")


def mid_block(x, config: AutoencoderConfig, part: str):
    """Residual block, attention (if `mid_attention`), residual block, at the latent side."""
    width, groups = config.widths[-1], config.norm_groups
    x = AutoencoderResidualBlock(width, groups, name=f"{part}-mid_block-resnets-0")(x)
    if config.mid_attention:
        x = AutoencoderAttention(groups, name=f"{part}-mid_block-attentions-0")(x)
    return AutoencoderResidualBlock(width, groups, name=f"{part}-mid_block-resnets-1")(x)
