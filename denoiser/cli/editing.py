"""`denoiser inpaint` (fill in or grow an image, RePaint) and `denoiser img2img` (redraw it, SDEdit)."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli import options
from denoiser.cli.command import Command

INPAINT_EPILOG = """masks: white pixels (grey value >= 128) of the --mask file are generated, black ones are kept
exactly; --mask-box x0,y0,x1,y1 generates that box (pixels of the image; x1 and y1 excluded).
The image and mask are fitted to the model's square (shorter side resized, centre cut
out). --grow N outpaints: the model sees the image
moved N pixels away from --side and fills the band it uncovers; the output is N pixels wider
(or taller). --resample R repeats every stretch of --jump steps R times in all (RePaint), which
blends the new part in better at R times the network calls.

examples:
  denoiser inpaint --checkpoint runs/shapes --image shape.png --mask-box 6,6,18,18 --out filled.png
  denoiser inpaint --checkpoint pretrained:fashion_mnist_fast --image shoe.png --mask hole.png --label Sneaker --resample 4 --out shoes.png
  denoiser inpaint --checkpoint runs/shapes --image shape.png --grow 8 --side left --label 0 --out wider.png"""  # noqa: E501

IMG2IMG_EPILOG = """The image is noised to level --strength (0 keeps it, near 1 is a fresh sample) and denoised
with all --steps steps (SDEdit).

examples:
  denoiser img2img --checkpoint runs/shapes --image shape.png --strength 0.6 --label "red circle" --out redrawn.png"""


def box(text: str) -> tuple[int, int, int, int]:
    """The argument type of --mask-box: four whole numbers x0,y0,x1,y1."""
    try:
        x0, y0, x1, y1 = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected four whole numbers x0,y0,x1,y1, got {text!r}") from None
    return x0, y0, x1, y1


def add_edit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both commands have: the image, the model, what to draw and where to write it."""
    parser.add_argument("--image", required=True, metavar="PATH", help="the input image (PNG, JPEG, ...)")
    options.add_checkpoint(parser)
    options.add_labels(parser)
    options.add_count(parser, default=4, help_text="variants per label")
    options.add_sampling(parser)
    options.add_solver(parser)
    options.add_image_output(parser, "the image grid")
    options.add_process_pictures(parser)


def add_inpaint_arguments(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", metavar="PATH", help="mask image: white = generate, black = keep")
    where.add_argument("--mask-box", type=box, metavar="X0,Y0,X1,Y1", help="generate this box of the image")
    where.add_argument(
        "--grow", type=options.positive_int, metavar="PIXELS", help="outpaint: add PIXELS rows or columns on --side"
    )
    parser.add_argument(
        "--side",
        default=defaults.SIDE,
        choices=["left", "right", "top", "bottom"],
        help="where --grow adds pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--resample",
        type=options.positive_int,
        default=defaults.RESAMPLE,
        metavar="R",
        help="passes over every stretch of --jump steps, RePaint (default: %(default)s)",
    )
    parser.add_argument(
        "--jump",
        type=options.positive_int,
        default=defaults.JUMP,
        metavar="J",
        help="levels to go back up between passes (default: %(default)s)",
    )


def add_img2img_arguments(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument(
        "--strength",
        type=options.finite_float,
        default=defaults.STRENGTH,
        metavar="S",
        help="starting noise level in (0, 1) (default: %(default)s)",
    )


INPAINT = Command(
    "inpaint",
    help="fill in a masked part of an image, or grow it",
    description="Generate the masked part of an image (RePaint), one row of variants per label.",
    epilog=INPAINT_EPILOG,
    add_arguments=add_inpaint_arguments,
    run="denoiser.cli.runners.editing:run_inpaint",
)

IMG2IMG = Command(
    "img2img",
    help="redraw an image from a noised copy (SDEdit)",
    description="Noise an image part of the way and denoise it again, one row of variants per label.",
    epilog=IMG2IMG_EPILOG,
    add_arguments=add_img2img_arguments,
    run="denoiser.cli.runners.editing:run_img2img",
)
