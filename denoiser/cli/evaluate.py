"""`denoiser evaluate`: sample-quality metrics of a checkpoint, written as JSON."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli import options
from denoiser.cli.command import Command

EPILOG = """Class-conditional models are judged by a small classifier that is trained once on the data
set's training split and cached (KERAS_HOME/denoiser/classifiers/): conditional accuracy and the
Frechet distance of its features to the test split, with real training images scored beside them.
--inception adds FID and KID (InceptionV3, 299x299, against the test split; the ImageNet weights
download on first use). Text-conditioned models get a CLIP score. Every model gets a memorization
check: the nearest training images of a few samples, saved side by side as a PNG. A super-resolution
stage is measured as an upscaler instead: it upscales real test images made small by area
downsampling, each told its own class, and bicubic upsampling is scored beside it.

examples:
  denoiser evaluate --checkpoint runs/fashion_mnist --num 500
  denoiser evaluate --checkpoint runs/shapes/checkpoints/epoch-0004.keras --steps 10 --solver dpmpp_2m
  denoiser evaluate --checkpoint runs/cifar10 --inception --num 5000 --out cifar10-fid.json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser, help_text="a .keras checkpoint inside RUN/checkpoints/, or a run directory")
    options.add_count(parser, default=defaults.EVALUATION_NUM, help_text="samples to generate, classes in turn")
    options.add_sampling(parser)
    options.add_solver(parser)
    parser.add_argument("--inception", action="store_true", help="also compute FID and KID with InceptionV3")
    parser.add_argument(
        "--nearest",
        type=int,
        default=defaults.NEAREST,
        metavar="N",
        help="samples in the memorization check, 0 = none (default: %(default)s)",
    )
    parser.add_argument(
        "--out", metavar="FILE.json", help="where to write the results (default: RUN/evaluation/CHECKPOINT.json)"
    )


EVALUATE = Command(
    "evaluate",
    help="measure the quality of a checkpoint's samples",
    description="Sample from a checkpoint, score the samples and write the scores as JSON.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run="denoiser.cli.runners.evaluate:run",
)
