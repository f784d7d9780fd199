"""Evenly spread indices: the few rows of a sample grid, strip or evaluation picked from many."""

from __future__ import annotations

import numpy as np


def evenly_spaced(count: int, total: int) -> np.ndarray:
    """Up to `count` sorted indices into `range(total)`, evenly spread, always the first and (for 2 or more)
    the last: `evenly_spaced(4, 10)` is [0, 3, 6, 9]; all of them when `count >= total`."""
    return np.unique(np.linspace(0, total - 1, max(0, min(count, total))).round().astype(np.int64))
