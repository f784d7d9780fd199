"""Argument types and the option groups that several `denoiser` commands share.

A command declares its options by calling these functions on its parser, so an option such as
--steps or --guidance is spelled, typed and checked in one place. The types refuse a bad value
while the command line is read (one line, exit status 2) instead of letting it mean something else
later: `--steps 0` is not "the default", `--guidance nan` is not a number.

Every command's options are declared for every `denoiser` call, so this module imports only what
declaring them needs (config.py, presets.py), never TensorFlow (see command.py).
"""

from __future__ import annotations

import argparse
import math
import os
import typing

from denoiser.config import RunConfig, Solver, load_yaml, parse_override
from denoiser.presets import DEFAULT_PRESET, preset_names, resolve_config

CHECKPOINT_HELP = "a .keras checkpoint, or a run directory (uses checkpoints/latest.keras)"
SOLVER_HELP = (
    "ddim (first order), dpmpp_2m (second order, ~10 steps suffice) or deis (third order, the best from 3 to 10 steps) "
    "(default: the run's sample.solver)"
)
ENCODER_HELP = "the text encoder, only for a checkpoint without its run's config.yaml beside it"


# ================================================================================== argument types
def positive_int(text: str) -> int:
    """A whole number of at least 1: a count of steps, images, epochs..."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A real number; nan and inf are refused, as no scale or strength can be infinite."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


# ================================================================================== option groups
def add_config_overrides(parser: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE (repeatable): any config key, read by `denoiser.config.parse_override`, into `overrides`."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override any config key, e.g. --set model.base_width=32 (repeatable)",
    )


def add_run_settings(parser: argparse.ArgumentParser) -> None:
    """--preset, --config FILE and --set KEY=VALUE: a run's settings, resolved by `run_settings`."""
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=preset_names(),
        help="starting configuration (default: %(default)s)",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file whose values override the preset's")
    add_config_overrides(parser)


def run_settings(args: argparse.Namespace, *more_overrides: dict) -> RunConfig:
    """The preset, then the --config file, then the --set overrides, then `more_overrides` (e.g. --epochs)."""
    overrides = [parse_override(text) for text in args.overrides] + list(more_overrides)
    return resolve_config(args.preset, load_yaml(args.config) if args.config else None, overrides)


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    """--run-dir: where a run's files go (`run_dir_of`)."""
    parser.add_argument(
        "--run-dir", metavar="DIR", help="where checkpoints, samples and logs go (default: runs/PRESET)"
    )


def run_dir_of(args: argparse.Namespace) -> str:
    """The run directory of --run-dir, or else runs/PRESET."""
    return args.run_dir or os.path.join("runs", args.preset)


def add_checkpoint(parser: argparse.ArgumentParser, help_text: str = CHECKPOINT_HELP) -> None:
    """--checkpoint: the model to use."""
    parser.add_argument("--checkpoint", required=True, metavar="PATH_OR_RUN_DIR", help=help_text)


def add_labels(parser: argparse.ArgumentParser) -> None:
    """--label (repeatable): the classes to draw, one row each."""
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="class id (1..num_classes, 0 = none) or class name; repeatable (default: every class)",
    )


def add_prompts(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--prompt (repeatable): prompts for a text-to-image model."""
    parser.add_argument("--prompt", action="append", default=[], metavar="TEXT", help=help_text)


def add_upscale_stages(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--upscale (repeatable): super-resolution stages after the checkpoint, in the order they run (a cascade)."""
    parser.add_argument("--upscale", action="append", default=[], metavar="SR_RUN", help=help_text)


def add_count(parser: argparse.ArgumentParser, default: int, help_text: str) -> None:
    """--num: how many images to make (per label, or in all: `help_text` says which)."""
    parser.add_argument(
        "--num", type=positive_int, default=default, metavar="N", help=f"{help_text} (default: %(default)s)"
    )


def add_steps_and_guidance(
    parser: argparse.ArgumentParser,
    steps_help: str = "sampling steps (default: the run's sample.steps)",
    guidance_help: str = "guidance scale (default: the run's sample.guidance)",
) -> None:
    """--steps and --guidance; left out, they are the run's own sample.steps and sample.guidance."""
    parser.add_argument("--steps", type=positive_int, metavar="N", help=steps_help)
    parser.add_argument("--guidance", type=finite_float, metavar="G", help=guidance_help)


def add_sampling(parser: argparse.ArgumentParser, seed_help: str = "noise seed") -> None:
    """--steps, --guidance and --seed: how to sample."""
    add_steps_and_guidance(parser)
    parser.add_argument("--seed", type=int, default=0, metavar="S", help=f"{seed_help} (default: %(default)s)")


def add_solver(parser: argparse.ArgumentParser, help_text: str = SOLVER_HELP) -> None:
    """--solver: the step rule of the sampler."""
    parser.add_argument("--solver", choices=typing.get_args(Solver), help=help_text)


def add_process_pictures(parser: argparse.ArgumentParser) -> None:
    """--strip and --gif: pictures of the predictions x0_hat step by step."""
    parser.add_argument("--strip", metavar="FILE.png", help="also save the prediction x0_hat of every step, a row each")
    parser.add_argument("--gif", metavar="FILE.gif", help="also save an animated GIF of the predictions x0_hat")


def add_encoder(parser: argparse.ArgumentParser, help_text: str = ENCODER_HELP) -> None:
    """--encoder: the text encoder, for a checkpoint whose run (and so its encoder) is not beside it."""
    parser.add_argument("--encoder", metavar="SPEC", help=help_text)


def add_image_output(parser: argparse.ArgumentParser, what: str, npz_help: str | None = None) -> None:
    """--out FILE.png, and --npz where the command can also save its images as an array."""
    parser.add_argument("--out", required=True, metavar="FILE.png", help=f"where to write {what}")
    if npz_help:
        parser.add_argument("--npz", metavar="FILE", help=npz_help)
