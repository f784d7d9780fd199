"""`denoiser config` (a run's settings, resolved, as YAML) and the list of every setting in `train --help`.

The list is read from config.py itself: each field's name, type, default and the comment written beside it (or
just above it), so it cannot go stale:

    data.label_dropout: Fraction = 0.15
        share of conditions replaced by "no condition" (for guidance)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import re
import textwrap
import tokenize
import typing

import yaml

from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.config import SECTIONS

FIELD_LINE = re.compile(r"^(\w+)\s*:\s*(.+?)\s*=")  # `name: Type = default`, as config.py declares a field


def field_notes(section: type) -> dict[str, tuple[str, str]]:
    """{field: (its type as written, its comment)} from the section's source; the comment beside a field, or else
    the comment lines right above it."""
    source = textwrap.dedent(inspect.getsource(section))
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    names = {item.name for item in dataclasses.fields(section)}
    notes, above = {}, []
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text.startswith("#"):
            above.append(comments[number])
            continue
        match = FIELD_LINE.match(text)
        if match and match.group(1) in names:
            notes[match.group(1)] = (match.group(2), comments.get(number) or " ".join(above))
        above = []
    return notes


def type_text(item: dataclasses.Field, written: str) -> str:
    """A `Literal`'s choices spelled out (`ddim | dpmpp_2m`); any other type as config.py writes it."""
    kind = item.type
    if typing.get_origin(kind) is typing.Literal:
        return " | ".join(str(choice) for choice in typing.get_args(kind))
    return written


def default_of(item: dataclasses.Field):
    return item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default


@functools.cache  # in the epilogs of both `train` and `config`
def settings_reference(width: int = 100) -> str:
    """Every setting of a run, by section: `section.key: type = default`, then what it does."""
    lines = ["settings (--set SECTION.KEY=VALUE, or a --config YAML file; `denoiser config` prints a preset's):"]
    for name, section in SECTIONS.items():
        notes = field_notes(section)
        for item in dataclasses.fields(section):
            written, comment = notes.get(item.name, ("", ""))
            hint = item.metadata.get("hint", "")
            default = yaml.safe_dump(default_of(item), default_flow_style=True).strip().removesuffix("...").strip()
            lines.append(f"  {name}.{item.name}: {type_text(item, written)} = {default}")
            meaning = "; ".join(part for part in (comment, hint) if part)
            if meaning:
                lines += textwrap.wrap(meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


# ================================================================================= denoiser config
CONFIG = Command(
    "config",
    help="print a run's settings: a preset with a YAML file and --set overrides, resolved",
    description="Print the settings `denoiser train` would use, as YAML (a file for --config).",
    epilog=settings_reference(),
    add_arguments=options.add_run_settings,
    run="denoiser.cli.runners.settings:run",
)
