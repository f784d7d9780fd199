"""The `denoiser` command line: `denoiser train` and `denoiser sample`.

Errors in what the user gave (a bad config value, a missing or damaged checkpoint) are printed
as one line and exit with status 2; an interrupted training run exits with 130 and resumes when
the same command is run again.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG_TRAIN = """examples:
  denoiser train --preset shapes                      # offline quick start, a few minutes on a CPU
  denoiser train --preset fashion_mnist --run-dir runs/fmnist
  denoiser train --preset cifar10 --epochs 50 --set model.base_width=96 --set train.mixed_precision=true

Running the same command again resumes after the last finished epoch; a larger --epochs extends
a finished run. The run directory holds config.yaml, checkpoints/, samples/ and log.csv."""

EPILOG_SAMPLE = """examples:
  denoiser sample --checkpoint runs/shapes --out samples.png
  denoiser sample --checkpoint runs/fmnist --label Dress --label 8 --num 16 --guidance 3 --out dresses.png --npz dresses.npz"""


def build_parser() -> argparse.ArgumentParser:
    from .presets import preset_names

    parser = argparse.ArgumentParser(prog="denoiser", description="Train and sample small diffusion models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model, or resume one", epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a denoiser; checkpoints and a sample grid are written after every epoch.",
    )
    train.add_argument("--preset", default="fashion_mnist", choices=preset_names(),
                       help="starting configuration (default: %(default)s)")
    train.add_argument("--config", metavar="FILE", help="YAML file whose values override the preset's")
    train.add_argument("--run-dir", metavar="DIR", help="where checkpoints, samples and logs go (default: runs/PRESET)")
    train.add_argument("--epochs", type=int, metavar="N", help="train until N epochs are finished (train.epochs)")
    train.add_argument("--steps-per-epoch", type=int, metavar="N",
                       help="batches per epoch (train.steps_per_epoch; default: one pass over the data)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override any config key, e.g. --set model.base_width=32 (repeatable)")

    sample = commands.add_parser(
        "sample", help="generate images from a checkpoint", epilog=EPILOG_SAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate a grid of images, one row per label, from a checkpoint or a run directory.",
    )
    sample.add_argument("--checkpoint", required=True, metavar="PATH_OR_RUN_DIR",
                        help="a .keras checkpoint, or a run directory (uses checkpoints/latest.keras)")
    sample.add_argument("--label", action="append", default=[], metavar="ID_OR_NAME",
                        help="class id (1..num_classes, 0 = none) or class name; repeatable (default: every class)")
    sample.add_argument("--num", type=int, default=8, metavar="N", help="images per label (default: %(default)s)")
    sample.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the run's sample.steps)")
    sample.add_argument("--guidance", type=float, metavar="G", help="guidance scale (default: the run's sample.guidance)")
    sample.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default: %(default)s)")
    sample.add_argument("--out", required=True, metavar="FILE.png", help="where to write the image grid")
    sample.add_argument("--npz", metavar="FILE", help="also save `images` (uint8) and `labels` as a NumPy .npz file")
    return parser


def run_train(args) -> None:
    from .config import load_yaml, parse_override
    from .presets import resolve_config
    from .training import train

    overrides = [parse_override(text) for text in args.overrides]
    if args.epochs is not None:
        overrides.append({"train": {"epochs": args.epochs}})
    if args.steps_per_epoch is not None:
        overrides.append({"train": {"steps_per_epoch": args.steps_per_epoch}})
    file_values = load_yaml(args.config) if args.config else None
    config = resolve_config(args.preset, file_values, overrides)
    run_dir = args.run_dir or os.path.join("runs", args.preset)
    print(f"Training {args.preset} into {run_dir} for {config.train.epochs} epochs.")
    train(config, run_dir)
    print(f"Done. Checkpoints: {os.path.join(run_dir, 'checkpoints')}  samples: {os.path.join(run_dir, 'samples')}")


def run_sample(args) -> None:
    import numpy as np

    from .generation import generate
    from .plotting import save_grid, to_uint8

    images, labels, names = generate(args.checkpoint, args.label, args.num, args.steps, args.guidance, args.seed,
                                     progress=True)
    save_grid(images, args.out, rows=len(names), row_labels=names if labels.any() else None)
    print(f"Wrote {args.out}")
    if args.npz:
        np.savez_compressed(args.npz, images=to_uint8(images), labels=labels)
        print(f"Wrote {args.npz}")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up messages (oneDNN, CUDA probing) kept off the terminal.

    TensorFlow prints them before its log level applies; an import error is still raised normally.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    from .serialization import CheckpointError

    try:
        {"train": run_train, "sample": run_sample}[args.command](args)
    except (ValueError, CheckpointError, OSError) as error:
        print(f"denoiser {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume after the last finished epoch.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
