"""`denoiser sample` (a grid of new images) and `denoiser interpolate` (a strip between two prompts or noises)."""

from __future__ import annotations

import argparse
import textwrap

import numpy as np

from denoiser.cascade import recording_across_stages
from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.generation import generate, interpolate, load_cascade
from denoiser.utils.plotting import save_grid, save_image, to_uint8, wrap_label

SAMPLE_EPILOG = """examples:
  denoiser sample --checkpoint runs/shapes --out samples.png
  denoiser sample --checkpoint runs/fmnist --label Dress --label 8 --num 16 --guidance 3 --out dresses.png --npz dresses.npz
  denoiser sample --checkpoint pretrained:fashion_mnist_fast --label Sneaker --num 1 --out shoe.png   # one 28x28 image
  denoiser sample --checkpoint runs/shapes --solver dpmpp_2m --steps 10 --out fast.png --gif process.gif
  denoiser sample --checkpoint runs/fmnist14 --upscale runs/fmnist_sr --label Dress --out dresses28.png"""  # noqa: E501

INTERPOLATE_EPILOG = """examples:
  denoiser interpolate --checkpoint runs/laion64 --from "a red dress" --to "a blue dress" --frames 8 --out dress.png
  denoiser interpolate --checkpoint runs/laion64 --prompt "a red dress" --seeds 1 2 --out dresses.png"""


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    options.add_labels(parser)
    options.add_prompts(parser, "a prompt for a text-to-image model, instead of --label; repeatable, one row each")
    options.add_count(parser, default=8, help_text="images per label")
    options.add_sampling(parser)
    options.add_solver(parser)
    options.add_encoder(parser)
    options.add_image_output(
        parser, "the image grid", npz_help="also save `images` (uint8) and `labels` as a NumPy .npz file"
    )
    options.add_process_pictures(parser)
    options.add_upscale_stages(
        parser,
        "upscale the samples with a super-resolution stage (its run's steps and guidance; --steps and "
        "--guidance are the base's); repeatable, one stage each, in order",
    )


def run_sample(args: argparse.Namespace) -> None:
    process = options.process_recorder(args)
    settings = {"steps": args.steps, "guidance": args.guidance, "solver": args.solver}
    source, callback = args.checkpoint, process
    if args.upscale:  # the base checkpoint's samples through the super-resolution stages
        source = load_cascade(args.checkpoint, args.upscale, **settings)
        callback = None if process is None else recording_across_stages(process, source.image_shape[0])
        settings = {}
    images, labels, names = generate(
        source,
        args.label,
        prompts=args.prompt,
        num_per_label=args.num,
        seed=args.seed,
        progress=True,
        callback=callback,
        encoder=args.encoder,
        **settings,
    )
    if args.prompt:
        names = [wrap_label(prompt) or "(no prompt)" for prompt in names]
    if len(images) == 1:  # one image is written as itself, at its size: a picture for inpaint or img2img
        save_image(images[0], args.out)
    else:
        save_grid(images, args.out, rows=len(names), row_labels=names if labels.any() or args.prompt else None)
    print(f"Wrote {args.out}")
    if args.npz:
        np.savez_compressed(args.npz, images=to_uint8(images), labels=labels)
        print(f"Wrote {args.npz}")
    options.save_process_pictures(process, args, rows=len(names))


def add_interpolate_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    parser.add_argument("--from", dest="from_prompt", metavar="PROMPT", help="the first frame's prompt")
    parser.add_argument("--to", dest="to_prompt", metavar="PROMPT", help="the last frame's prompt")
    parser.add_argument("--prompt", metavar="PROMPT", help="the prompt of every frame, with --seeds")
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("A", "B"), help="move from seed A's noise to seed B's")
    parser.add_argument(
        "--frames", type=options.positive_int, default=8, metavar="N", help="images in the strip (default: %(default)s)"
    )
    options.add_sampling(parser, seed_help="noise seed between prompts")
    options.add_encoder(parser)
    options.add_image_output(parser, "the strip", npz_help="also save the frames (uint8) as a NumPy .npz file")


def strip_title(args: argparse.Namespace) -> str:
    """The title above an interpolation strip, short enough to fit (about 10 characters per 64-pixel frame)."""

    def short(prompt: str | None, share: float = 1.0) -> str:
        width = max(12, int(10 * args.frames * share) - 4)
        return textwrap.shorten(prompt or "(no prompt)", width=width, placeholder="...")

    if args.seeds:
        return f"{short(args.prompt)}: seed {args.seeds[0]} -> {args.seeds[1]}"
    return f"{short(args.from_prompt, 0.5)} -> {short(args.to_prompt, 0.5)}"


def run_interpolate(args: argparse.Namespace) -> None:
    images = interpolate(
        args.checkpoint,
        from_prompt=args.from_prompt,
        to_prompt=args.to_prompt,
        prompt=args.prompt,
        seeds=args.seeds,
        frames=args.frames,
        seed=args.seed,
        encoder=args.encoder,
        progress=True,
        steps=args.steps,
        guidance=args.guidance,
    )
    save_grid(images, args.out, rows=1, title=strip_title(args))
    print(f"Wrote {args.out}")
    if args.npz:
        np.savez_compressed(args.npz, images=to_uint8(images))
        print(f"Wrote {args.npz}")


SAMPLE = Command(
    "sample",
    help="generate images from a checkpoint",
    description="Generate a grid of images, one row per label, from a checkpoint or a run directory.",
    epilog=SAMPLE_EPILOG,
    add_arguments=add_sample_arguments,
    run=run_sample,
)

INTERPOLATE = Command(
    "interpolate",
    help="a strip of images moving between two prompts or two noises",
    description="Sample a row of frames from a text-to-image checkpoint: from one prompt to another with the "
    "noise fixed, or from one noise to another with the prompt fixed (slerp).",
    epilog=INTERPOLATE_EPILOG,
    add_arguments=add_interpolate_arguments,
    run=run_interpolate,
)
