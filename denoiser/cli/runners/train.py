"""`denoiser train` runs: resolve the settings, then train (or resume) the run."""

from __future__ import annotations

import argparse
import os

from denoiser.cli import options
from denoiser.training import epoch_count, train


def run(args: argparse.Namespace) -> None:
    flags = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch}
    config = options.run_settings(args, {"train": {key: value for key, value in flags.items() if value is not None}})
    run_dir = options.run_dir_of(args)
    print(f"Training {args.preset} into {run_dir} for {epoch_count(config.train.epochs)}.")
    train(config, run_dir)
    print(f"Done. Checkpoints: {os.path.join(run_dir, 'checkpoints')}  samples: {os.path.join(run_dir, 'samples')}")
