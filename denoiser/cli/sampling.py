"""`denoiser sample` (a grid of new images) and `denoiser interpolate` (a strip between two prompts, two classes or
two noises)."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli import options
from denoiser.cli.command import Command

SAMPLE_EPILOG = """examples:
  denoiser sample --checkpoint runs/shapes --out samples.png
  denoiser sample --checkpoint runs/fmnist --label Dress --label 8 --num 16 --guidance 3 --out dresses.png --npz dresses.npz
  denoiser sample --checkpoint pretrained:fashion_mnist_fast --label Sneaker --num 1 --out shoe.png   # one 28x28 image
  denoiser sample --checkpoint runs/shapes --solver dpmpp_2m --steps 10 --out fast.png --gif process.gif
  denoiser sample --checkpoint runs/fmnist14 --upscale runs/fmnist_sr --label Dress --out dresses28.png"""  # noqa: E501

INTERPOLATE_EPILOG = """A text-to-image model moves between two prompts (--from, --to), a class-conditional one
between two classes (--from-label, --to-label: their learned embeddings), with the starting noise
fixed; with --seeds both move from one noise to another, the prompt (--prompt) or class (--label) fixed.

examples:
  denoiser interpolate --checkpoint runs/laion64 --from "a red dress" --to "a blue dress" --frames 8 --out dress.png
  denoiser interpolate --checkpoint runs/laion64 --prompt "a red dress" --seeds 1 2 --out dresses.png
  denoiser interpolate --checkpoint runs/fashion_mnist --from-label Sneaker --to-label "Ankle boot" --out shoes.png
  denoiser interpolate --checkpoint runs/shapes --label "red circle" --seeds 1 2 --out circles.png"""


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    options.add_labels(parser)
    options.add_prompts(parser, "a prompt for a text-to-image model, instead of --label; repeatable, one row each")
    options.add_count(parser, default=defaults.NUM_PER_LABEL, help_text="images per label")
    options.add_sampling(parser)
    options.add_solver(parser)
    options.add_encoder(parser)
    options.add_image_output(
        parser, "the image grid", npz_help="also save `images` (uint8) and `labels` as a NumPy .npz file"
    )
    options.add_process_pictures(parser)
    options.add_upscale_stages(
        parser,
        "upscale the samples with a super-resolution stage (its run's steps and guidance; --steps and "
        "--guidance are the base's); repeatable, one stage each, in order",
    )


def add_interpolate_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    parser.add_argument("--from", dest="from_prompt", metavar="PROMPT", help="a text model: the first frame's prompt")
    parser.add_argument("--to", dest="to_prompt", metavar="PROMPT", help="a text model: the last frame's prompt")
    parser.add_argument("--prompt", metavar="PROMPT", help="a text model: the prompt of every frame, with --seeds")
    parser.add_argument("--from-label", metavar="ID_OR_NAME", help="a class model: the first frame's class")
    parser.add_argument("--to-label", metavar="ID_OR_NAME", help="a class model: the last frame's class")
    parser.add_argument("--label", metavar="ID_OR_NAME", help="a class model: the class of every frame, with --seeds")
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("A", "B"), help="move from seed A's noise to seed B's")
    parser.add_argument(
        "--frames",
        type=options.positive_int,
        default=defaults.FRAMES,
        metavar="N",
        help="images in the strip (default: %(default)s)",
    )
    options.add_sampling(parser, seed_help="noise seed between prompts or classes")
    options.add_encoder(parser)
    options.add_image_output(parser, "the strip", npz_help="also save the frames (uint8) as a NumPy .npz file")


SAMPLE = Command(
    "sample",
    help="generate images from a checkpoint",
    description="Generate a grid of images, one row per label, from a checkpoint or a run directory.",
    epilog=SAMPLE_EPILOG,
    add_arguments=add_sample_arguments,
    run="denoiser.cli.runners.sampling:run_sample",
)

INTERPOLATE = Command(
    "interpolate",
    help="a strip of images moving between two prompts, two classes or two noises",
    description="Sample a row of frames: from one prompt or class to another with the noise fixed, or from one "
    "noise to another with the prompt or class fixed (slerp).",
    epilog=INTERPOLATE_EPILOG,
    add_arguments=add_interpolate_arguments,
    run="denoiser.cli.runners.sampling:run_interpolate",
)
