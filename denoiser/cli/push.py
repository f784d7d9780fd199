"""`denoiser push`: share a trained run as a model folder, on the Hugging Face Hub or on disk (sharing.py)."""

from __future__ import annotations

import argparse

from denoiser.cli.command import Command

EPILOG = """examples:
  denoiser push runs/shapes hf://ada/shapes          # then: denoiser sample --checkpoint hf://ada/shapes --out s.png
  denoiser push runs/fashion_mnist models/fmnist     # the same folder on disk
  denoiser push pretrained:shapes models/shapes      # a model that was shared already

The Hub needs huggingface_hub (pip install -e ".[hf]") and a token with write access (huggingface-cli login)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run",
        metavar="RUN_DIR",
        help="a training run directory (its checkpoints/latest.keras), a checkpoint in one, pretrained:NAME, "
        "hf://USER/NAME or a model folder",
    )
    parser.add_argument("destination", metavar="hf://USER/NAME|FOLDER", help="a Hub repository, or a local folder")


PUSH = Command(
    "push",
    help="share a run's model (averaged weights, config, samples, model card) on the Hub or in a folder",
    description="Write a run's latest averaged weights, config.yaml, last sample grid and a model card to a Hugging "
    "Face Hub repository (hf://USER/NAME) or a folder; --checkpoint takes either to sample from it.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run="denoiser.cli.runners.push:run",
)
