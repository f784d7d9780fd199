"""`denoiser inpaint` and `denoiser img2img` run: load the model, the image and its mask, edit, save the grid."""

from __future__ import annotations

import argparse

import numpy as np

from denoiser.cli.runners.process import process_recorder, save_process_pictures
from denoiser.conditions import label_ids
from denoiser.editing import EditError, image_to_image, inpaint, outpaint
from denoiser.serialization import load_sampler
from denoiser.utils.images import fit_image, image_size, load_image, to_unit_range
from denoiser.utils.plotting import save_grid


def edit(args: argparse.Namespace, make_images) -> None:
    """Load the model and the image, let `make_images(sampler, image, **common)` edit it, save the grid.

    The grid has one row of --num variants per label.
    """
    sampler = load_sampler(args.checkpoint, steps=args.steps, guidance=args.guidance, solver=args.solver)
    ids, names = label_ids(args.label, sampler)
    size, channels = sampler.image_shape[0], sampler.image_shape[2]
    image = image_from_file(args.image, size, channels)
    process = process_recorder(args)
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
    save_process_pictures(process, args, rows=len(names))


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
