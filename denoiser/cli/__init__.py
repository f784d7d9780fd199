"""The `denoiser` command line: `denoiser train`, `sample`, `inpaint`, `img2img`, `evaluate`, `export`, `web`...

Every command is a `Command` (command.py): its help texts and options, in one module per family of
commands: train.py, settings.py (config, and the settings listed in train --help), sampling.py (sample,
interpolate), upscale.py (a picture through a super-resolution stage), editing.py (inpaint, img2img),
evaluate.py, data.py (embed, data download, download), web.py (export, web), push.py (push) and shapes.py
(pictures of the built-in data set). What a command runs is in the module of the same name in runners/,
imported only when it runs: building the parser imports no TensorFlow, so `denoiser --help` answers at once.
Options that several commands share (--checkpoint, --steps, --guidance, --seed, --solver...) are
declared once, in options.py. This module builds the parser from the list of commands and runs one; the
lines TensorFlow prints as it starts are kept off the terminal (utils/quiet.py).

Errors in what the user gave (a bad option or config value, a missing or damaged checkpoint) are
printed as one line and exit with status 2, the library's parameter names in them (`labels`) worded as
this command line's flags (--label); a training run that cannot go on (its loss became NaN, its
run directory is in use) exits with 1; an interrupted training run exits with 130 and resumes when the
same command is run again.
"""

import argparse
import re
import sys

from denoiser.cli import data, editing, evaluate, push, sampling, settings, shapes, train, upscale, web
from denoiser.cli.command import Command
from denoiser.rundir import CheckpointError, TrainingError
from denoiser.utils.quiet import start_up_lines_hidden

COMMANDS: tuple[Command, ...] = (
    train.TRAIN,
    settings.CONFIG,
    sampling.SAMPLE,
    upscale.UPSCALE,
    editing.INPAINT,
    editing.IMG2IMG,
    evaluate.EVALUATE,
    data.EMBED,
    sampling.INTERPOLATE,
    data.DOWNLOAD,
    data.DATA,
    web.EXPORT,
    web.WEB,
    push.PUSH,
    shapes.SHAPES,
)

# Mistakes in what the user gave. ValueError covers ConfigError, DataError, EncoderError, MetricError
# and ExportError; OSError covers DownloadError and files that are missing or cannot be written.
USER_ERRORS = (ValueError, CheckpointError, OSError)

# The library's errors name parameters in backquotes (`labels`); on the command line they are these flags.
FLAGS = {
    "labels": "--label",
    "label": "--label",
    "from_label": "--from-label",
    "to_label": "--to-label",
    "prompts": "--prompt",
    "prompt": "--prompt",
    "from_prompt": "--from",
    "to_prompt": "--to",
    "seeds": "--seeds",
    "encoder": "--encoder",
    "num": "--num",
    "strength": "--strength",
    "run_dir": "--run-dir",
    "train.epochs": "--epochs",
    "where": "--where",
    "count": "--count",
    "url_column": "--url-column",
    "caption_column": "--caption-column",
    "out": "--out",
    "inception": "--inception",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, `denoiser sample: error: ...`, with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="denoiser", description="Train and sample small diffusion models.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(subparsers)
    return parser


def one_line(error: Exception) -> str:
    """The error's message on one line (line breaks and runs of spaces collapsed), parameters worded as flags."""
    message = " ".join(str(error).split())
    return re.sub(r"`([\w.]+)`", lambda match: FLAGS.get(match.group(1), match.group(1)), message)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = next(command for command in COMMANDS if command.name == args.command)
    try:
        with start_up_lines_hidden():  # importing the runner imports TensorFlow
            run = command.runner()
        run(args)
    except USER_ERRORS as error:
        print(f"denoiser {command.name}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except TrainingError as error:  # a run that cannot go on: a non-finite loss, a run directory in use
        sys.stdout.flush()  # after a progress bar's unfinished line, the error starts a line of its own
        print(f"\ndenoiser {command.name}: error: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nInterrupted. Run the same command again to {command.after_interrupt(args)}.", file=sys.stderr)
        return 130
    return 0
