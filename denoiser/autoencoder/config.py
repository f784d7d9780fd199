"""The autoencoder's shape as one dataclass, so a few-thousand-parameter CPU autoencoder and Stable Diffusion's
VAE are the same code with other numbers.

The defaults are Stable Diffusion's VAE (`AutoencoderKL` of sd-vae-ft-mse: widths 128-256-512-512, 2 layers per
block, 4 latent channels at 1/8 of the image side). The fields mirror diffusers' `AutoencoderKL` config
(`block_out_channels` is `widths`, `norm_num_groups` is `norm_groups`, ...): from_diffusers.py translates one into
the other. Checked like the run's sections (config.py): a wrong value is a one-line `ConfigError`.
"""

from dataclasses import dataclass, field
from typing import ClassVar

from denoiser.config import Section
from denoiser.config_rules import Fraction, Levels, PositiveFloat, PositiveInt, validate_section

# Bounds on what a config may ask for, with a wide margin over Stable Diffusion's, SDXL's and SD3's VAEs (widths up to
# 512, 4 blocks, 2 layers per block, 16 latent channels, about 84 million parameters).
MAX_CHANNELS = 4096  # of any width, the images and the latent
MAX_BLOCKS = 8
MAX_LAYERS_PER_BLOCK = 8
MAX_PARAMETERS = 10**9


@dataclass
class AutoencoderConfig(Section):
    """Shape of the autoencoder: block i of the encoder works at 1/2**i of the image side with `widths[i]`
    channels; every block but the last halves the side, so the latent side is 1/2**(len(widths) - 1) of it."""

    SECTION: ClassVar[str] = "autoencoder"

    image_channels: PositiveInt = 3  # channels of the images it reads and writes (3: RGB, 1: grey)
    widths: Levels = field(default_factory=lambda: [128, 256, 512, 512])  # channels of each block, image side first
    layers_per_block: PositiveInt = 2  # residual blocks per encoder block (the decoder has one more, as diffusers')
    latent_channels: PositiveInt = 4  # channels of the latent
    norm_groups: PositiveInt = 32  # groups of every GroupNormalization; they must divide every width
    mid_attention: bool = True  # self-attention between the two residual blocks at the latent side
    quant_convs: bool = True  # the 1x1 convolutions on the moments (quant_conv) and the latent (post_quant_conv)
    # How a latent model sees the latents: (latent - shift_factor) * scaling_factor, applied by neither encode nor
    # decode (SD 1.x/2.x: 0.18215 and 0; SD3's VAE: 1.5305 and 0.0609). Read it from the autoencoder's config.
    scaling_factor: PositiveFloat = 0.18215
    shift_factor: float = 0.0
    kl_weight: Fraction = 1e-4  # training: the weight of the KL term beside the per-pixel reconstruction loss

    def validate(self) -> None:
        validate_section(self, (within_limits, norm_groups_divide_every_width))

    @property
    def downsampling(self) -> int:
        """f: how many image pixels one latent pixel stands for, along each side."""
        return 2 ** (len(self.widths) - 1)


def norm_groups_divide_every_width(config: AutoencoderConfig) -> str | None:
    if any(width % config.norm_groups for width in config.widths):
        return (
            f"autoencoder.norm_groups={config.norm_groups} must divide every width {config.widths}; "
            "choose widths that are multiples of norm_groups."
        )


def within_limits(config: AutoencoderConfig) -> str | None:
    """The first size beyond the bounds above, in words, or None (checked before anything is built)."""
    sizes = [
        ("widths", len(config.widths), MAX_BLOCKS, "blocks"),
        ("widths", max(config.widths), MAX_CHANNELS, "channels"),
        ("layers_per_block", config.layers_per_block, MAX_LAYERS_PER_BLOCK, "layers"),
        ("image_channels", config.image_channels, MAX_CHANNELS, "channels"),
        ("latent_channels", config.latent_channels, MAX_CHANNELS, "channels"),
        ("norm_groups", config.norm_groups, MAX_CHANNELS, "groups"),
    ]
    for name, size, limit, what in sizes:
        if size > limit:
            return f"autoencoder.{name} asks for {size} {what}, more than the {limit} allowed; is the config right?"
    if parameter_count(config) > MAX_PARAMETERS:
        return (
            f"autoencoder of {parameter_count(config):,} parameters is more than the {MAX_PARAMETERS:,} allowed; "
            "choose smaller widths or fewer layers."
        )
    return None


def parameter_count(config: AutoencoderConfig) -> int:
    """How many weights the autoencoder of `config` has (model.py's layers), counted without building it."""

    def conv(size, inputs, outputs):
        return size * size * inputs * outputs + outputs

    def resnet(inputs, width):
        shortcut = conv(1, inputs, width) if inputs != width else 0
        return 2 * inputs + conv(3, inputs, width) + 2 * width + conv(3, width, width) + shortcut

    def blocks(widths, layers, channels):
        count = 0
        for i, width in enumerate(widths):
            count += sum(resnet(channels if j == 0 else width, width) for j in range(layers))
            count += conv(3, width, width) if i < len(widths) - 1 else 0  # down- or upsampling
            channels = width
        return count

    widths, latent, last = config.widths, config.latent_channels, config.widths[-1]
    mid = 2 * resnet(last, last) + (2 * last + 4 * (last * last + last) if config.mid_attention else 0)
    quant = conv(1, 2 * latent, 2 * latent) + conv(1, latent, latent) if config.quant_convs else 0
    encoder = conv(3, config.image_channels, widths[0]) + blocks(widths, config.layers_per_block, widths[0])
    encoder += 2 * last + conv(3, last, 2 * latent)
    decoder = conv(3, latent, last) + blocks(widths[::-1], config.layers_per_block + 1, last)
    decoder += 2 * widths[0] + conv(3, widths[0], config.image_channels)
    return encoder + decoder + 2 * mid + quant
