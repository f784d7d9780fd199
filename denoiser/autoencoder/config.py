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
        validate_section(self, (norm_groups_divide_every_width,))

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
