"""`denoiser upscale`: a picture of your own through a super-resolution stage of a cascade."""

from __future__ import annotations

import argparse

from denoiser.cli import options
from denoiser.cli.command import Command

UPSCALE_EPILOG = """examples:
  denoiser upscale --checkpoint runs/fmnist_sr --image small.png --out large.png
  denoiser upscale --checkpoint runs/fmnist_sr --image small.png --label Dress --out dress.png"""


def add_upscale_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser, "the super-resolution stage: a .keras checkpoint or its run directory")
    parser.add_argument(
        "--image", required=True, metavar="FILE", help="the picture to upscale (fitted to the stage's low resolution)"
    )
    parser.add_argument("--label", metavar="ID_OR_NAME", help="the class of a class-conditioned stage (default: none)")
    parser.add_argument("--prompt", metavar="TEXT", help="the prompt of a text-conditioned stage (default: none)")
    options.add_sampling(parser)
    options.add_solver(parser)
    options.add_encoder(parser)
    parser.add_argument("--out", required=True, metavar="FILE.png", help="where to write the upscaled picture")


UPSCALE = Command(
    "upscale",
    help="upscale a picture with a super-resolution stage",
    description="Upscale a picture of your own with the super-resolution stage of a cascade (e.g. 14x14 -> 28x28).",
    epilog=UPSCALE_EPILOG,
    add_arguments=add_upscale_arguments,
    run="denoiser.cli.runners.upscale:run_upscale",
)
