"""Third-party error messages, cut to one short line for our own one-line errors.

Keras, Hugging Face, open_clip and requests raise messages of several paragraphs (a whole model config, a
chain of connection errors). Ours name the problem and the fix in one line and quote only the start of theirs.
"""

from __future__ import annotations


def short_reason(error: BaseException, limit: int = 160) -> str:
    """`Type: first line of the message`, cut to `limit` characters."""
    lines = str(error).strip().splitlines() or [""]
    reason = f"{type(error).__name__}: {lines[0].strip()}"
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."
