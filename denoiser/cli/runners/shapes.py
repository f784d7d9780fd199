"""`denoiser shapes` runs: a preview of the shapes data set, or one image of a class."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.data.shapes import save_example, save_preview


def run_shapes(args: argparse.Namespace) -> None:
    if args.one:
        save_example(args.out, args.one, size=args.size or defaults.EXAMPLE_SIZE)
    else:
        save_preview(args.out, size=args.size or defaults.PREVIEW_SIZE)
    print(f"Wrote {args.out}")
