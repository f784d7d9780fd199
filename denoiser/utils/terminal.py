"""Is the output a terminal? Progress bars redraw their line with carriage returns and colour codes, which
only a terminal or a notebook cell shows as a bar; in a log file (`nohup`, CI, `> log.txt`) they are noise."""

from __future__ import annotations

import sys


def redraws_in_place(stream=None) -> bool:
    """Whether a carriage return goes back to the start of the line on `stream` (default: stdout): a terminal,
    or a Jupyter or Colab cell (ipykernel's stream, which says it is no terminal)."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty()) or type(stream).__module__.startswith("ipykernel")
