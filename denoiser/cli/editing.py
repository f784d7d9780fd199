"""`denoiser inpaint` (fill in or grow an image, RePaint) and `denoiser img2img` (redraw it, SDEdit)."""

from __future__ import annotations

import argparse

import numpy as np

from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.conditions import label_ids
from denoiser.editing import EditError, image_to_image, inpaint, outpaint
from denoiser.serialization import load_sampler
from denoiser.utils.images import fit_image, image_size, load_image, to_unit_range
from denoiser.utils.plotting import save_grid

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
        default="right",
        choices=["left", "right", "top", "bottom"],
        help="where --grow adds pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--resample",
        type=options.positive_int,
        default=1,
        metavar="R",
        help="passes over every stretch of --jump steps, RePaint (default: %(default)s)",
    )
    parser.add_argument(
        "--jump",
        type=options.positive_int,
        default=2,
        metavar="J",
        help="levels to go back up between passes (default: %(default)s)",
    )


def add_img2img_arguments(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument(
        "--strength",
        type=options.finite_float,
        default=0.5,
        metavar="S",
        help="starting noise level in (0, 1) (default: %(default)s)",
    )


def edit(args: argparse.Namespace, make_images) -> None:
    """Load the model and the image, let `make_images(sampler, image, **common)` edit it, save the grid.

    The grid has one row of --num variants per label.
    """
    sampler = load_sampler(args.checkpoint, steps=args.steps, guidance=args.guidance, solver=args.solver)
    ids, names = label_ids(args.label, sampler)
    size, channels = sampler.image_shape[0], sampler.image_shape[2]
    image = image_from_file(args.image, size, channels)
    process = options.process_recorder(args)
    images = make_images(
        sampler,
        image,
        condition=None if ids is None else np.repeat(ids, args.num),
        num_images=args.num * len(names),
        seed=args.seed,
        callback=process,
        progress=True,
    )
    save_grid(images, args.out, rows=len(names), row_labels=names if ids is not None else None)
    print(f"Wrote {args.out}")
    options.save_process_pictures(process, args, rows=len(names))


def run_inpaint(args: argparse.Namespace) -> None:
    def fill(sampler, image, **common):
        if args.grow is not None:
            return outpaint(sampler, image, args.grow, side=args.side, resample=args.resample, jump=args.jump, **common)
        size = sampler.image_shape[0]
        mask = mask_from_file(args.mask, size, args.image) if args.mask else box_mask(args.mask_box, args.image, size)
        return inpaint(sampler, image, mask, resample=args.resample, jump=args.jump, **common)

    edit(args, fill)


def run_img2img(args: argparse.Namespace) -> None:
    edit(args, lambda sampler, image, **common: image_to_image(sampler, image, args.strength, **common))


# --------------------------------------------------------------------------------- image and mask files
# Files are fitted to the model's square canvas like training images (utils/images.py): the shorter side
# is resized and the middle of the longer side cut out. A mask or box goes through the same fit.
def image_from_file(path, size: int, channels: int) -> np.ndarray:
    """An image file as a (size, size, channels) float32 array in [-1, 1]."""
    return to_unit_range(load_image(path, size, channels))


def mask_from_file(path, size: int, image_path=None) -> np.ndarray:
    """A mask file as (size, size, 1): 1 where it is white (grey value >= 128, generate), 0 where dark (keep).

    With `image_path`, the mask must have that image's size: it is fitted the same way, so a mask of
    another size or shape would mark other pixels than drawn.
    """
    if image_path is not None:
        check_same_size(path, image_path)
    return (load_image(path, size, channels=1) >= 128).astype("float32")


def check_same_size(mask_path, image_path) -> None:
    """Raise `EditError` unless the mask file and the image file have the same width and height."""
    (mask_width, mask_height), (width, height) = image_size(mask_path), image_size(image_path)
    if (mask_width, mask_height) != (width, height):
        raise EditError(
            f"The mask {mask_path} is {mask_width}x{mask_height} pixels but the image {image_path} is "
            f"{width}x{height}; draw the mask at {width}x{height} (or give --mask-box x0,y0,x1,y1)."
        )


def box_mask(box, image_path, size: int) -> np.ndarray:
    """A (size, size, 1) mask that generates the box (x0, y0, x1, y1), in pixels of the image file.

    x0, y0 is the top-left corner; x1 and y1 are excluded, so (0, 0, width, height) is everything.
    """
    width, height = image_size(image_path)
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise EditError(
            f"The box {x0},{y0},{x1},{y1} must have 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height} "
            f"(the image is {width}x{height})."
        )
    pixels = np.zeros((height, width), "uint8")
    pixels[y0:y1, x0:x1] = 255
    return (fit_image(pixels, size, channels=1) >= 128).astype("float32")


INPAINT = Command(
    "inpaint",
    help="fill in a masked part of an image, or grow it",
    description="Generate the masked part of an image (RePaint), one row of variants per label.",
    epilog=INPAINT_EPILOG,
    add_arguments=add_inpaint_arguments,
    run=run_inpaint,
)

IMG2IMG = Command(
    "img2img",
    help="redraw an image from a noised copy (SDEdit)",
    description="Noise an image part of the way and denoise it again, one row of variants per label.",
    epilog=IMG2IMG_EPILOG,
    add_arguments=add_img2img_arguments,
    run=run_img2img,
)
