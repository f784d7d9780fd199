"""`Command`: one `denoiser` command, with its help texts, its options and what it runs, side by side."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A sub-command of `denoiser`.

    `add_arguments` declares the options on the command's parser (mostly with the shared groups of
    options.py); `run` does the work with the parsed options and prints what it wrote. An interrupted
    command tells the user that running it again will `on_interrupt` (a text, or a function of the options
    that says what a rerun would do, e.g. whether there is anything to resume from).
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    epilog: str | None = None
    on_interrupt: str | Callable[[argparse.Namespace], str] = "start again"

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
