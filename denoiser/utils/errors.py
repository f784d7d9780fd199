"""Third-party error messages, cut to one short line for our own one-line errors.

Keras, Hugging Face, open_clip and requests raise messages of several paragraphs (a whole model config, a
chain of connection errors). Ours name the problem and the fix in one line and quote only the start of theirs,
and of a long value the user gave (`shown`).
"""

from __future__ import annotations

import errno
import socket

# What a socket raises when the server cannot be reached: no name resolution (offline, most often), a refused or
# reset connection, a timeout, or no route to the network.
NETWORK_ERRORS = (socket.gaierror, ConnectionError, TimeoutError)
NETWORK_ERRNOS = {errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH}


def short_reason(error: BaseException, limit: int = 160) -> str:
    """`Type: first line of the message`, cut at a word boundary to at most `limit` characters."""
    lines = str(error).strip().splitlines() or [""]
    reason = f"{type(error).__name__}: {lines[0].strip()}"
    return reason if len(reason) <= limit else reason[: limit - 3].rsplit(" ", 1)[0] + "..."


def shown(value, limit: int = 80) -> str:
    """A user's value for a one-line message: its repr(), cut to `limit` characters then "... (N characters)"."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(value) if isinstance(value, str) else len(text)} characters)"


def network_cause(error: BaseException) -> BaseException | None:
    """The socket error behind a request that could not reach its server (no network, no name resolution, a
    refused or timed-out connection), or None when the failure was another one.

    requests and urllib wrap it several times (requests' ConnectionError -> urllib3's MaxRetryError -> its
    `reason` -> the socket error as `__cause__`), so the chain is followed to the end.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, NETWORK_ERRORS) or getattr(error, "errno", None) in NETWORK_ERRNOS:
            return error
        error = wrapped_error(error)
    return None


def wrapped_error(error: BaseException) -> BaseException | None:
    """The error that `error` wraps: urllib's and urllib3's `reason`, the one it was raised from, or its argument."""
    for inner in (getattr(error, "reason", None), error.__cause__, *error.args[:1]):
        if isinstance(inner, BaseException):
            return inner
    return None
