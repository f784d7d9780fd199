"""`denoiser upscale` runs: a picture through a super-resolution stage, written as a PNG."""

from __future__ import annotations

import argparse

from denoiser.cascade import upscale
from denoiser.conditions import label_ids, prompt_conditions
from denoiser.serialization import load_sampler
from denoiser.utils.images import image_size, load_image, size_text
from denoiser.utils.plotting import save_image


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
