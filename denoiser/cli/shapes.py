"""`denoiser shapes`: pictures of the built-in shapes data set, a preview or one input image."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli.command import Command
from denoiser.data.shapes import CLASS_NAMES

SHAPES_EPILOG = """examples:
  denoiser shapes --out preview.png                      # one row of examples per class
  denoiser shapes --one "yellow cross" --out shape.png   # one 24x24 image, e.g. to inpaint or redraw"""


def add_shapes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--one", metavar="CLASS", choices=CLASS_NAMES, help=f"one image of: {', '.join(CLASS_NAMES)}")
    parser.add_argument(
        "--size",
        type=int,
        metavar="N",
        help=f"image size in pixels (default: {defaults.EXAMPLE_SIZE} with --one, else {defaults.PREVIEW_SIZE})",
    )
    parser.add_argument("--out", required=True, metavar="FILE.png", help="where to write the picture")


SHAPES = Command(
    "shapes",
    help="draw the built-in shapes data set: a preview, or one image",
    description="Draw the built-in shapes data set: one row of examples per class, or one image of a class.",
    epilog=SHAPES_EPILOG,
    add_arguments=add_shapes_arguments,
    run="denoiser.cli.runners.shapes:run_shapes",
)
