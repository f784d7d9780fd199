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
    command tells the user that running it again will `on_interrupt`.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    epilog: str | None = None
    on_interrupt: str = "start again"

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
