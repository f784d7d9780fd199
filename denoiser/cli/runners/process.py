"""The --strip and --gif pictures of `sample` and `inpaint`/`img2img`: the prediction x0_hat of every step."""

from __future__ import annotations

import argparse

from denoiser.utils.plotting import ProcessRecorder


def process_recorder(args: argparse.Namespace) -> ProcessRecorder | None:
    """A sampler callback that records the predictions, where --strip or --gif asks for them."""
    return ProcessRecorder() if args.strip or args.gif else None


def save_process_pictures(process: ProcessRecorder | None, args: argparse.Namespace, rows: int) -> None:
    """Write the --strip and --gif pictures of the recorded predictions, where asked for."""
    if args.strip:
        process.save_strip(args.strip)
        print(f"Wrote {args.strip}")
    if args.gif:
        process.save_gif(args.gif, rows=rows)
        print(f"Wrote {args.gif}")
