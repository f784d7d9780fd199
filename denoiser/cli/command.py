"""`Command`: one `denoiser` command: its help texts and options, and the name of the function that runs it.

A command is declared in two places, so that `denoiser --help` (and a mistyped option) answers at once,
without importing TensorFlow:

- its module in cli/ (train.py, sampling.py...) holds the `Command`: help texts and options. It imports
  only light modules (argparse, options.py, config.py, presets.py), as every command's parser is built
  for every `denoiser` call;
- its runner, the function that does the work, lives in cli/runners/ and is named by a string,
  `"module:function"` (like a console script's entry point). That module imports the library code it
  runs (TensorFlow with it) at its top, and is imported only when the command runs.

A new command `denoiser push`: in cli/push.py, `add_arguments(parser)` and
`PUSH = Command("push", help=..., description=..., add_arguments=add_arguments,
run="denoiser.cli.runners.push:run")`; in cli/runners/push.py, `run(args)`; then add `push.PUSH` to
`COMMANDS` in cli/__init__.py.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A sub-command of `denoiser`.

    `add_arguments` declares the options on the command's parser (mostly with the shared groups of
    options.py); `run` names the function that does the work with the parsed options and prints what it
    wrote, as "denoiser.cli.runners.MODULE:FUNCTION". An interrupted command tells the user that running
    it again will `on_interrupt` (a text, or a function of the options that says what a rerun would do,
    e.g. whether there is anything to resume from).
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: str
    epilog: str | None = None
    on_interrupt: str | Callable[[argparse.Namespace], str] = "start again"

    def runner(self) -> Callable[[argparse.Namespace], None]:
        """The function that `run` names, its module imported now (with the library code it uses)."""
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)

    def after_interrupt(self, args: argparse.Namespace) -> str:
        return self.on_interrupt(args) if callable(self.on_interrupt) else self.on_interrupt

    def add_to(self, commands) -> None:
        """Add this command's parser to the sub-parsers `commands` of the `denoiser` parser."""
        parser = commands.add_parser(
            self.name,
            help=self.help,
            description=self.description,
            epilog=self.epilog,
            # An epilog keeps its line breaks (examples, one per line); without one, argparse wraps the text.
            formatter_class=argparse.RawDescriptionHelpFormatter if self.epilog else argparse.HelpFormatter,
        )
        self.add_arguments(parser)
