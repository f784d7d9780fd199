"""`denoiser sample` and `denoiser interpolate` run: sample from the checkpoint, save the grid or the strip."""

from __future__ import annotations

import argparse
import textwrap

import numpy as np

from denoiser.cascade import recording_across_stages
from denoiser.cli.runners.process import process_recorder, save_process_pictures
from denoiser.generation import generate, interpolate, load_cascade
from denoiser.utils.plotting import save_grid, save_image, to_uint8, wrap_label


def run_sample(args: argparse.Namespace) -> None:
    process = process_recorder(args)
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
    save_process_pictures(process, args, rows=len(names))


def strip_title(args: argparse.Namespace) -> str:
    """The title above an interpolation strip, short enough to fit (about 10 characters per 64-pixel frame)."""

    def short(text: str | None, share: float = 1.0) -> str:
        width = max(12, int(10 * args.frames * share) - 4)
        return textwrap.shorten(text or "(no prompt)", width=width, placeholder="...")

    if args.seeds:
        fixed = args.label if args.label is not None else args.prompt
        return f"{short(fixed)}: seed {args.seeds[0]} -> {args.seeds[1]}"
    if args.from_label is not None or args.to_label is not None:
        return f"{short(args.from_label, 0.5)} -> {short(args.to_label, 0.5)}"
    return f"{short(args.from_prompt, 0.5)} -> {short(args.to_prompt, 0.5)}"


def run_interpolate(args: argparse.Namespace) -> None:
    images = interpolate(
        args.checkpoint,
        from_prompt=args.from_prompt,
        to_prompt=args.to_prompt,
        prompt=args.prompt,
        from_label=args.from_label,
        to_label=args.to_label,
        label=args.label,
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
