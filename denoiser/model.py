"""The denoising U-Net: given a noisy image, its noise level and a condition, predict the clean image.

    inputs:  noisy_images (B, H, W, C)  in about [-1, 1] plus noise
             noise_level  (B, 1)        s in (0, 1); 0 is clean, 1 is pure noise
             condition    (B, 1) int    class id, 0 = "no condition"        (condition="class")
                          (B, D) float  e.g. a CLIP embedding, 0 = "none"   (condition="vector")
                          (B, T, D)     e.g. CLIP token states              (condition="sequence")
    a super-resolution stage (model.low_resolution = h > 0) also takes
             low_resolution_images (B, h, h, C)  the image to upscale, noised at the augmentation level
             augmentation_level    (B, 1)        that noise level (0: a clean low-res image)
    output:  x0_hat       (B, H, W, C)  the predicted clean image (float32)

With `model.preconditioning="edm"` the network sees c_in * x_t and its output F becomes
x0_hat = c_skip * x_t + c_out * F (EDM's scalings, schedule.preconditioning_scalings), so input and
output have unit scale at every noise level; sampler and export see x0_hat either way.

The noise level and the pooled condition are summed into one embedding that modulates every
residual block; cross-attention layers additionally let pixels attend to the condition's tokens.

A super-resolution stage (Imagen's cascade) upsamples its low-resolution image bilinearly to the output
size and concatenates it to the noisy image's channels, and adds a second sinusoidal embedding, of the
low-res image's augmentation level, to the noise-level embedding: so the network knows how far to trust
the low-res picture (noise conditioning augmentation, see objective.py).
"""

from __future__ import annotations

import keras
from keras import layers

from denoiser.config import ConfigError, ModelConfig
from denoiser.layers import (
    CrossAttention,
    PreconditionInput,
    PreconditionOutput,
    ResidualBlock,
    SelfAttention,
    SinusoidalEmbedding,
)

CLASS_EMBEDDING = "class_embedding"  # the layer of a class model's learned embeddings, one row per id (0 = none)


def embedding_width(config: ModelConfig) -> int:
    """Width of the noise/condition embedding and of the condition tokens."""
    return 4 * config.base_width


@keras.saving.register_keras_serializable(package="denoiser")
class DenoiserUNet(keras.Model):
    """The U-Net as a functional Keras model that carries its own `ModelConfig` (and what sampling needs of its run).

    `get_config()` is the `ModelConfig` as a dict plus `run_info` (class names, text encoder and sampling
    settings of the run that trained it), so a `.keras` file describes itself: loading it rebuilds the same
    network from that config, and a sampler knows image size, condition kind and class names without a run
    directory beside it (the keras-hub way of carrying constructor arguments).
    """

    def __init__(self, config: ModelConfig | dict, run_info: dict | None = None, name: str = "denoiser_unet", **kwargs):
        config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        inputs, x0_hat = unet_graph(config)
        super().__init__(inputs, x0_hat, name=name, **kwargs)
        self.config = config
        self.run_info = dict(run_info or {})

    def get_config(self) -> dict:
        return {"name": self.name, "config": self.config.to_dict(), "run_info": dict(self.run_info)}

    @classmethod
    def from_config(cls, config: dict) -> DenoiserUNet:
        """The network a saved config describes; settings added since it was saved take their old values."""
        return cls(**{**config, "config": ModelConfig.from_saved(config["config"])})


def build_unet(config: ModelConfig, run_info: dict | None = None, name: str = "denoiser_unet") -> DenoiserUNet:
    """Build the U-Net described by `config`; `run_info` is what it carries about its run (see DenoiserUNet)."""
    return DenoiserUNet(config, run_info, name=name)


def unet_graph(config: ModelConfig) -> tuple[list, object]:
    """The U-Net's inputs and its output x0_hat as a functional graph (symbolic Keras tensors)."""
    if config.unset_condition_shape:  # left to the encoder: train() sets them (data/sources.py, with_condition_shape)
        names = " and ".join(f"model.{name}" for name in config.unset_condition_shape)
        raise ConfigError(
            f"{names} is unset (null: the text encoder's, which training asks data.encoder for); to build a network "
            "yourself set it, e.g. model.condition_dim=512 for CLIP ViT-B-32 (and model.condition_tokens=77)."
        )
    width = embedding_width(config)
    noisy_images = keras.Input((config.image_size, config.image_size, config.channels), name="noisy_images")
    noise_level = keras.Input((1,), name="noise_level")

    embedding = SinusoidalEmbedding(
        config.noise_embedding_dim, config.noise_embedding_max_frequency, name="noise_sinusoids"
    )(noise_level)
    embedding = layers.Dense(width, activation="silu", name="noise_mlp_1")(embedding)
    embedding = layers.Dense(width, name="noise_mlp_2")(embedding)

    inputs = [noisy_images, noise_level]
    context = None
    if config.conditional:
        condition, context = _condition_tokens(config, width)
        inputs.append(condition)
        pooled = layers.GlobalAveragePooling1D(name="condition_pool")(context)
        embedding = layers.Add(name="embedding")([embedding, layers.Dense(width, name="condition_mlp")(pooled)])

    stem_input = noisy_images
    if config.preconditioning == "edm":
        stem_input = PreconditionInput(config.data_std, name="precondition_input")([noisy_images, noise_level])
    if config.super_resolution:
        low_resolution_images, augmentation_level, stem_input = _low_resolution_input(config, stem_input)
        inputs += [low_resolution_images, augmentation_level]
        augmentation = SinusoidalEmbedding(
            config.noise_embedding_dim, config.noise_embedding_max_frequency, name="augmentation_sinusoids"
        )(augmentation_level)
        augmentation = layers.Dense(width, activation="silu", name="augmentation_mlp_1")(augmentation)
        augmentation = layers.Dense(width, name="augmentation_mlp_2")(augmentation)
        embedding = layers.Add(name="embedding_with_augmentation")([embedding, augmentation])

    def attend(x, level, tag):
        if config.self_attention[level]:
            x = SelfAttention(config.attention_heads, config.norm_groups, name=f"{tag}_self_attention")(x)
        if config.cross_attention[level]:
            x = CrossAttention(config.attention_heads, config.norm_groups, name=f"{tag}_cross_attention")([x, context])
        return x

    def block(x, level, tag):
        x = ResidualBlock(config.widths[level], config.norm_groups, config.dropout, name=f"{tag}_residual")(
            [x, embedding]
        )
        return attend(x, level, tag)

    x = layers.Conv2D(config.widths[0], 3, padding="same", name="stem")(stem_input)
    skips = []
    bottleneck = config.num_levels - 1
    for level in range(bottleneck):
        for b in range(config.blocks_per_level):
            x = block(x, level, f"down{level}_{b}")
            skips.append(x)
        x = layers.AveragePooling2D(2, name=f"downsample{level}")(x)

    for b in range(config.blocks_per_level):
        x = block(x, bottleneck, f"middle_{b}")

    for level in reversed(range(bottleneck)):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"upsample{level}")(x)
        for b in range(config.blocks_per_level):
            x = layers.Concatenate(name=f"up{level}_{b}_skip")([x, skips.pop()])
            x = block(x, level, f"up{level}_{b}")

    x = layers.GroupNormalization(config.norm_groups, name="out_norm")(x)
    x = layers.Activation("silu", name="out_silu")(x)
    preconditioned = config.preconditioning == "edm"
    x0_hat = layers.Conv2D(
        config.channels,
        3,
        padding="same",
        kernel_initializer="zeros",
        dtype="float32",
        name="network_output" if preconditioned else "x0_hat",
    )(x)
    if preconditioned:
        x0_hat = PreconditionOutput(config.data_std, name="x0_hat")([x0_hat, noisy_images, noise_level])
    return inputs, x0_hat


def _condition_tokens(config: ModelConfig, width: int):
    """The condition input and its tokens (B, T, width) for cross-attention and pooling."""
    if config.condition == "class":
        condition = keras.Input((1,), dtype="int32", name="condition")
        tokens = layers.Embedding(config.num_classes + 1, width, name=CLASS_EMBEDDING)(condition)
    elif config.condition == "vector":
        condition = keras.Input((config.condition_dim,), name="condition")
        tokens = layers.Reshape((1, config.condition_dim), name="vector_as_token")(condition)
        tokens = layers.Dense(width, name="condition_projection")(tokens)
    else:
        condition = keras.Input((config.condition_tokens, config.condition_dim), name="condition")
        tokens = layers.Dense(width, name="condition_projection")(condition)
    return condition, tokens


def class_embedding_network(model: keras.Model) -> keras.Model:
    """A class model's network (sharing its weights) with the class-embedding lookup cut off: its condition input
    is the embedding itself, (B, 1, E) floats, instead of the id. Row k of the table gives what id k gives; a point
    between two rows steers between two classes (Sampler.class_embeddings, generation.interpolate)."""
    table = model.get_layer(CLASS_EMBEDDING)
    inputs = [table.output if tensor is table.input else tensor for tensor in model.inputs]
    return keras.Model(inputs, model.outputs, name=f"{model.name}_from_class_embeddings")


def _low_resolution_input(config: ModelConfig, noisy_images):
    """The low-res image and augmentation level inputs, and the (scaled) noisy image with the upsampled low-res one
    beside it."""
    size = config.low_resolution
    low_resolution_images = keras.Input((size, size, config.channels), name="low_resolution_images")
    augmentation_level = keras.Input((1,), name="augmentation_level")
    factor = config.image_size // size
    upsampled = layers.UpSampling2D(factor, interpolation="bilinear", name="low_resolution_upsample")(
        low_resolution_images
    )
    stacked = layers.Concatenate(name="with_low_resolution")([noisy_images, upsampled])
    return low_resolution_images, augmentation_level, stacked
