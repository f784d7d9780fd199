"""The noise schedule: how images are noised for training and which noise levels the sampler visits.

Noising is a straight line between the clean image x and Gaussian noise eps:

    x_t = (1 - s) * x + s * eps,     s in (0, 1)

so s = 0 is the image and s = 1 is pure noise. These are plain functions of tensors, independent of
the network; they work on NumPy arrays and on any Keras backend's tensors (and inside `tf.data`
with the TensorFlow backend).
"""

from __future__ import annotations

import numpy as np
from keras import ops

MIN_LEVEL = 1e-4
MAX_LEVEL = 0.999

TRAINING_DISTRIBUTIONS = ("folded_normal", "logit_normal", "uniform")


def add_noise(images, noise, noise_level):
    """Move `images` a fraction `noise_level` of the way to `noise`. `noise_level` broadcasts, e.g. (B, 1, 1, 1)."""
    return (1.0 - noise_level) * images + noise_level * noise


def training_noise_levels(uniform, distribution: str = "folded_normal"):
    """Turn uniform draws u ~ U(0, 1) into training noise levels in [MIN_LEVEL, MAX_LEVEL].

    - "folded_normal" (the seed's choice): s = |z| / 3 with z ~ N(0, 1), truncated to the range.
      Half of all draws fall below s = 0.22: most training effort goes to the fine detail of
      nearly clean images, which is what a few-step sampler needs to get right at the end.
    - "logit_normal": s = sigmoid(z), z ~ N(0, 1), as used for rectified-flow models; it
      concentrates on the middle levels, where the image's layout is decided.
    - "uniform": s = u, every level equally.

    Normal draws come from the inverse CDF, z = sqrt(2) * erfinv(2u - 1), so one kind of random
    draw serves every distribution.
    """
    if distribution not in TRAINING_DISTRIBUTIONS:
        raise ValueError(
            f"Unknown noise level distribution {distribution!r}; choose one of {TRAINING_DISTRIBUTIONS}."
        )
    if distribution == "uniform":
        levels = uniform
    else:
        normal = 1.4142135 * ops.erfinv(ops.clip(2.0 * uniform - 1.0, -0.999999, 0.999999))
        levels = ops.abs(normal) / 3.0 if distribution == "folded_normal" else ops.sigmoid(normal)
    return ops.clip(levels, MIN_LEVEL, MAX_LEVEL)


def sampling_noise_levels(steps: int, max_level: float = 0.95, power: float = 3.0) -> np.ndarray:
    """The `steps + 1` noise levels a sampler walks through, from `max_level` down to exactly 0.

    Levels are s_i = 1 - t_i ** (1 / power) for t evenly spaced from (1 - max_level) ** power to 1.
    With power 3 the steps are large at high noise, where little detail exists yet, and small near
    s = 0, where the fine detail is decided. Each of the `steps` transitions costs one network call.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not 0.0 < max_level <= 1.0:
        raise ValueError(f"max_level must be in (0, 1], got {max_level!r}.")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power!r}.")
    start = (1.0 - max_level) ** power
    t = np.linspace(start, 1.0, int(steps) + 1)
    levels = 1.0 - t ** (1.0 / power)
    levels[-1] = 0.0
    return levels.astype("float32")
