"""`denoiser push` runs: a trained run shared as a model folder (sharing.py)."""

from __future__ import annotations

import argparse

from denoiser.sharing import share


def run(args: argparse.Namespace) -> None:
    where = share(args.run, args.destination)
    print(f"Shared {args.run} (averaged weights, config.yaml, the last sample grid, a model card) at {where}")
