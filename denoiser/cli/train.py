"""`denoiser train`: train a model from a preset, or resume one."""

from __future__ import annotations

import argparse
import os

from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.config import load_yaml, parse_override
from denoiser.presets import preset_names, resolve_config
from denoiser.training import train

EPILOG = """examples:
  denoiser train --preset shapes                      # offline quick start, a few minutes on a CPU
  denoiser train --preset fashion_mnist --run-dir runs/fmnist
  denoiser train --preset cifar10 --epochs 50 --set model.base_width=96 --set train.mixed_precision=true

Running the same command again resumes from the last backup (every train.backup_every steps) or
finished epoch; a larger --epochs extends a finished run. The run directory holds config.yaml,
checkpoints/, backup/, samples/ and log.csv."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default="fashion_mnist",
        choices=preset_names(),
        help="starting configuration (default: %(default)s)",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file whose values override the preset's")
    parser.add_argument(
        "--run-dir", metavar="DIR", help="where checkpoints, samples and logs go (default: runs/PRESET)"
    )
    parser.add_argument(
        "--epochs", type=options.positive_int, metavar="N", help="train until N epochs are finished (train.epochs)"
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=options.positive_int,
        metavar="N",
        help="batches per epoch (train.steps_per_epoch; default: one pass over the data)",
    )
    options.add_config_overrides(parser)


def run(args: argparse.Namespace) -> None:
    overrides = [parse_override(text) for text in args.overrides]
    if args.epochs is not None:
        overrides.append({"train": {"epochs": args.epochs}})
    if args.steps_per_epoch is not None:
        overrides.append({"train": {"steps_per_epoch": args.steps_per_epoch}})
    file_values = load_yaml(args.config) if args.config else None
    config = resolve_config(args.preset, file_values, overrides)
    run_dir = args.run_dir or os.path.join("runs", args.preset)
    print(f"Training {args.preset} into {run_dir} for {config.train.epochs} epochs.")
    train(config, run_dir)
    print(f"Done. Checkpoints: {os.path.join(run_dir, 'checkpoints')}  samples: {os.path.join(run_dir, 'samples')}")


TRAIN = Command(
    "train",
    help="train a model, or resume one",
    description="Train a denoiser; checkpoints and a sample grid are written after every epoch.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    on_interrupt="resume from the last backup (at most train.backup_every steps are trained again)",
)
