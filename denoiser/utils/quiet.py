"""TensorFlow's start-up lines kept off the terminal: its log settings, and the lines no setting reaches.

TensorFlow reads its log level from the environment once, when it is first imported, so
`quiet_tensorflow_settings` must run before that (the package's `__init__` calls it). A value you set
yourself wins: `TF_CPP_MIN_LOG_LEVEL=0 denoiser ...` shows everything.

Some lines ignore that setting: the CUDA stub libraries log through absl before absl is set up, which
writes straight to the process's stderr ("WARNING: All log messages before absl::InitializeLog() ...",
"I0000 ... cudart_stub.cc:31] Could not find cuda drivers ..."), twice per import on a machine without a
GPU. `start_up_lines_hidden` catches what is written to stderr while TensorFlow is imported and writes it
back without the native log lines that TF_CPP_MIN_LOG_LEVEL would have hidden (a Python warning, a
traceback or a fatal error passes).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's C++ log, level 3: only fatal errors. It also hides lines such as "failed call to cuInit ... (303)",
# logged as an error on every machine without a GPU; Python errors are unaffected.
QUIET_SETTINGS = {LOG_LEVEL: "3"}
# A native (C++) log line: severity I, W, E or F, then date, time (before absl is set up, in seconds since 1970),
# thread and source, e.g.
# "I0000 00:00:1796347676.788097    4642 cudart_stub.cc:31] Could not find cuda drivers on your machine, ..."
NATIVE_LOG_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
SEVERITIES = b"IWEF"  # the levels TF_CPP_MIN_LOG_LEVEL counts: 0 shows all, 1 hides I, 2 also W, 3 also E
ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def quiet_tensorflow_settings() -> None:
    """Set TensorFlow's log settings in the environment, where the user has not set them."""
    for name, value in QUIET_SETTINGS.items():
        os.environ.setdefault(name, value)


def min_log_level() -> int:
    """The TF_CPP_MIN_LOG_LEVEL in force (0 where it is unset or not a number, as TensorFlow reads it)."""
    text = os.environ.get(LOG_LEVEL, "0")
    return int(text) if text.isdigit() else 0


def hidden(line: bytes, level: int) -> bool:
    """Whether TF_CPP_MIN_LOG_LEVEL=`level` would have hidden this line of native start-up logging."""
    if line.startswith(ABSL_NOTICE):
        return level > 0
    match = NATIVE_LOG_LINE.match(line)
    return match is not None and SEVERITIES.index(match.group(1)) < level


@contextlib.contextmanager
def start_up_lines_hidden():
    """While the block runs (an import that loads TensorFlow), catch the process's stderr; afterwards write it
    back without the native log lines that the log level hides.

    The catch is at the level of file descriptor 2, where C++ code writes, so it holds for Python's
    `sys.stderr` too; whatever is not a hidden log line comes back in order once the block ends.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to catch (a closed descriptor): nothing to hide either
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            level = min_log_level()
            kept = b"".join(line for line in caught if not hidden(line, level))
            while kept:
                kept = kept[os.write(2, kept) :]
