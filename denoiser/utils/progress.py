"""Progress for a person at a terminal, or for a log file.

Where the output redraws a line in place (a terminal, a notebook cell: utils/terminal.py), progress is
Keras's bar, as `model.fit` draws it. Written to a file or a pipe (`nohup`, CI, `> log.txt`), such a bar
becomes one endless line of carriage returns and colour codes, so there progress is a plain line now and
then and one at the end:

    sampling: 4/10 steps, 3 s
    sampling: 10/10 steps, 7 s

Training's own lines (one every `train.log_every` steps, one per epoch) are callbacks.PlainProgressLog."""

from __future__ import annotations

import math
import time

import keras

from denoiser.utils.terminal import redraws_in_place


def fit_verbosity(progress: bool) -> int:
    """`model.fit`'s `verbose` for a fit that shows progress or not: its bar (1) where the output redraws in place,
    else its plain line per epoch (2)."""
    if not progress:
        return 0
    return 1 if redraws_in_place() else 2


class Progress:
    """Progress through `what`, a job of `total` units (steps, images...), told with `update(done)`.

    A bar where the output redraws in place; else a plain line, `what: done/total units, seconds`, whenever
    another tenth (`lines`) of the job is done, and at the end. `done` starts a job that is partly done already
    (a cache that continues).
    """

    def __init__(self, what: str, total: int, unit: str = "step", done: int = 0, lines: int = 10):
        self.what, self.total, self.unit = what, total, unit
        self.bar = keras.utils.Progbar(total, unit_name=unit) if redraws_in_place() else None
        self.every = max(1, math.ceil(total / lines))
        self.started = time.perf_counter()
        self.shown = done
        if self.bar is not None and done:
            self.bar.update(done)

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done)
        elif done > self.shown and (done >= self.total or done - self.shown >= self.every):
            self.shown = done
            seconds = time.perf_counter() - self.started
            print(f"{self.what}: {done}/{self.total} {self.unit}s, {seconds:.0f} s", flush=True)
