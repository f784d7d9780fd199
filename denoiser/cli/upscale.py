"""`denoiser upscale`: a picture of your own through a super-resolution stage of a cascade."""

from __future__ import annotations

import argparse

from denoiser.cascade import upscale
from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.conditions import label_ids, prompt_conditions
from denoiser.serialization import load_sampler
from denoiser.utils.images import image_size, load_image, size_text
from denoiser.utils.plotting import save_image

UPSCALE_EPILOG = """examples:
  denoiser upscale --checkpoint runs/fmnist_sr --image small.png --out large.png
  denoiser upscale --checkpoint runs/fmnist_sr --image small.png --label Dress --out dress.png"""


def add_upscale_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser, "the super-resolution stage: a .keras checkpoint or its run directory")
    parser.add_argument(
        "--image", required=True, metavar="FILE", help="the picture to upscale (fitted to the stage's low resolution)"
    )
    parser.add_argument("--label", metavar="ID_OR_NAME", help="the class of a class-conditioned stage (default: none)")
    parser.add_argument("--prompt", metavar="TEXT", help="the prompt of a text-conditioned stage (default: none)")
    options.add_sampling(parser)
    options.add_solver(parser)
    options.add_encoder(parser)
    parser.add_argument("--out", required=True, metavar="FILE.png", help="where to write the upscaled picture")


def run_upscale(args: argparse.Namespace) -> None:
    sampler = load_sampler(args.checkpoint, steps=args.steps, guidance=args.guidance, solver=args.solver)
    shape = sampler.low_resolution_shape
    if shape is None:
        raise ValueError(f"{args.checkpoint} is a base model, not a super-resolution stage; give an SR run.")
    width, height = image_size(args.image)
    if (width, height) != shape[:2]:
        print(f"Fitting {args.image} ({width}x{height}) to the stage's {size_text(shape)} input.")
    low = load_image(args.image, shape[0], shape[2])
    condition = None
    if args.prompt is not None:
        condition = prompt_conditions([args.prompt], sampler, args.encoder)
    elif args.label is not None:
        condition = label_ids([args.label], sampler)[0]
    image = upscale(sampler, low, condition, args.seed, progress=True)[0]
    save_image(image, args.out)
    print(f"Wrote {args.out} ({size_text(image.shape)})")


UPSCALE = Command(
    "upscale",
    help="upscale a picture with a super-resolution stage",
    description="Upscale a picture of your own with the super-resolution stage of a cascade (e.g. 14x14 -> 28x28).",
    epilog=UPSCALE_EPILOG,
    add_arguments=add_upscale_arguments,
    run=run_upscale,
)
