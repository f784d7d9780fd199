"""What the package prints where nobody watches a terminal: no TensorFlow start-up lines on stderr, and progress
as plain lines (no carriage returns, no colour codes) when the output is a file or a pipe."""

import io
import os
import re
import subprocess
import sys

from helpers import tiny_train_args

from denoiser.utils.progress import Progress
from denoiser.utils.quiet import start_up_lines_hidden
from denoiser.utils.terminal import redraws_in_place

CUDA_STUB = b"I0000 00:00:1796347676.788097    4642 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
CPU_NOTE = b"W0512 10:01:02.123456   17 cpu_feature_guard.cc:227] This binary is optimized to use AVX2.\n"
CU_INIT = b"E0000 00:00:1796347688.729170    4773 cuda_platform.cc:52] failed call to cuInit: (303)\n"
ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
FATAL = b"F0000 00:00:1796347688.729170    4773 check.cc:1] Check failed: a fatal error\n"
PYTHON = b"UserWarning: a warning from Python\n"
START_UP_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )", re.MULTILINE)


def written_to_stderr_while_hidden(capfd, level: str, monkeypatch) -> bytes:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with start_up_lines_hidden():
        for line in (ABSL, CUDA_STUB, PYTHON, CPU_NOTE, CU_INIT, FATAL):
            os.write(2, line)  # as C++ code writes: to the file descriptor, past Python's sys.stderr
    return capfd.readouterr().err.encode()


def test_the_log_level_hides_the_native_lines_below_it_and_nothing_else(capfd, monkeypatch):
    assert written_to_stderr_while_hidden(capfd, "3", monkeypatch) == PYTHON + FATAL
    assert written_to_stderr_while_hidden(capfd, "2", monkeypatch) == PYTHON + CU_INIT + FATAL
    everything = ABSL + CUDA_STUB + PYTHON + CPU_NOTE + CU_INIT + FATAL
    assert written_to_stderr_while_hidden(capfd, "0", monkeypatch) == everything  # the user asked for all


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, capsys):
    assert redraws_in_place(Terminal()) and not redraws_in_place(io.StringIO())
    progress = Progress("sampling", 20)  # pytest's captured stdout is no terminal
    for done in range(1, 21):
        progress.update(done)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("sampling: 20/20 steps, ") and len(lines) == 10  # every other step, and the last
    monkeypatch.setattr(sys, "stdout", Terminal())
    bar = Progress("sampling", 20)
    bar.update(20)
    assert "\r" in sys.stdout.getvalue()  # Keras's bar, redrawn in place


def test_training_into_a_log_file_prints_plain_lines_and_no_start_up_lines(tmp_path):
    log = tmp_path / "train.log"
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    with open(log, "w") as handle:
        result = subprocess.run(
            [sys.executable, "-m", "denoiser.cli", *tiny_train_args(tmp_path / "run", "train.log_every=1", epochs=2)],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            env=environment,
        )
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text, text
    assert re.search(r"^epoch 1/2, step 1/2: loss \d+\.\d{4}, \d+ s$", text, re.MULTILINE), text
    for epoch in (1, 2):
        assert re.search(rf"^epoch {epoch}/2: loss \d+\.\d{{4}} over 2 steps, \d+ s$", text, re.MULTILINE), text
    assert not START_UP_LINE.search(result.stderr), result.stderr
