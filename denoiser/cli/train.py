"""`denoiser train`: train a model from a preset, or resume one."""

from __future__ import annotations

import argparse

from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.cli.settings import settings_reference
from denoiser.rundir import RunDirectory

EPILOG = """examples:
  denoiser train --preset shapes                      # offline quick start, a few minutes on a CPU
  denoiser train --preset fashion_mnist --run-dir runs/fmnist
  denoiser train --preset cifar10 --epochs 50 --set model.base_width=96 --set train.mixed_precision=true

Running the same command again resumes from the last backup (every train.backup_every steps) or
finished epoch; a larger --epochs extends a finished run. The run directory holds config.yaml,
checkpoints/, backup/, samples/ and log.csv.

"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_run_settings(parser)
    options.add_run_dir(parser)
    parser.add_argument(
        "--epochs", type=options.positive_int, metavar="N", help="train until N epochs are finished (train.epochs)"
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=options.positive_int,
        metavar="N",
        help="batches per epoch (train.steps_per_epoch; default: one pass over the data)",
    )


def after_interrupt(args: argparse.Namespace) -> str:
    """What a rerun does: resume from what was saved, or start again when nothing was saved yet."""
    run = RunDirectory(options.run_dir_of(args))
    if run.backup_steps() or run.finished_epochs():
        return "resume from the last backup (at most train.backup_every steps are trained again)"
    return "start again (nothing was saved yet: the first backup comes after train.backup_every steps)"


TRAIN = Command(
    "train",
    help="train a model, or resume one",
    description="Train a denoiser; checkpoints and a sample grid are written after every epoch.",
    epilog=EPILOG + settings_reference(),
    add_arguments=add_arguments,
    run="denoiser.cli.runners.train:run",
    on_interrupt=after_interrupt,
)
