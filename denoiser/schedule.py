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

TRAINING_DISTRIBUTIONS = ("folded_normal", "logit_normal", "uniform")  # the choices of data.noise_distribution
LOSS_WEIGHTINGS = ("none", "edm", "min_snr")  # the choices of data.loss_weighting
LOSS_NORMS = ("l1", "l2")  # the choices of data.loss_norm: |x0_hat - x| or (x0_hat - x)^2
MIN_SNR_GAMMA = 5.0  # Min-SNR-gamma's cap on the signal-to-noise ratio (Hang et al. 2023)


def add_noise(images, noise, noise_level):
    """Move `images` a fraction `noise_level` of the way to `noise`. `noise_level` broadcasts, e.g. (B, 1, 1, 1)."""
    return (1.0 - noise_level) * images + noise_level * noise


def renoise(noisy_images, noise, noise_level, higher_level):
    """Add fresh noise to images at `noise_level` so they are at `higher_level`, as if noised there directly.

    From `x_a = (1 - a) x + a eps` this gives `x_b = (1 - b) x + b eps'` with
    `x_b = ((1 - b) / (1 - a)) x_a + sqrt(b^2 - ((1 - b) a / (1 - a))^2) noise`: the image part
    shrinks to (1 - b) and the noise variances add up to b^2. Used by RePaint's jumps back.
    """
    if not 0.0 <= noise_level <= higher_level <= 1.0 or noise_level == 1.0:
        raise ValueError(
            f"renoise goes up from a level in [0, 1) to a higher one; got {noise_level} -> {higher_level}."
        )
    scale = (1.0 - higher_level) / (1.0 - noise_level)
    spread = np.sqrt(max(higher_level**2 - (scale * noise_level) ** 2, 0.0))
    return scale * noisy_images + spread * noise


def training_noise_levels(uniform, distribution: str, location: float = 0.0, scale: float = 1.0):
    """Turn uniform draws u ~ U(0, 1) into training noise levels in [MIN_LEVEL, MAX_LEVEL].

    - "folded_normal" (the seed's choice): s = |z| / 3 with z ~ N(0, 1), truncated to the range.
      Half of all draws fall below s = 0.22: most training effort goes to the fine detail of
      nearly clean images, which is what a few-step sampler needs to get right at the end.
    - "logit_normal": s = sigmoid(location + scale * z), z ~ N(0, 1), as used for rectified-flow
      models; it concentrates on the levels around its median sigmoid(location) (by default the
      middle, where the image's layout is decided). `location` and `scale` apply to it only.
    - "uniform": s = u, every level equally.

    Normal draws come from the inverse CDF, z = sqrt(2) * erfinv(2u - 1), so one kind of random
    draw serves every distribution.
    """
    if distribution not in TRAINING_DISTRIBUTIONS:
        raise ValueError(f"Unknown noise level distribution {distribution!r}; choose one of {TRAINING_DISTRIBUTIONS}.")
    if distribution == "uniform":
        levels = uniform
    else:
        normal = 1.4142135 * ops.erfinv(ops.clip(2.0 * uniform - 1.0, -0.999999, 0.999999))
        levels = ops.abs(normal) / 3.0 if distribution == "folded_normal" else ops.sigmoid(location + scale * normal)
    return ops.clip(levels, MIN_LEVEL, MAX_LEVEL)


def preconditioning_scalings(noise_level, data_std: float):
    """EDM's input, skip and output scalings (Karras et al. 2022), derived for x_t = (1 - s) x + s eps.

    For data of standard deviation sigma_d, x_t has variance v = (1 - s)^2 sigma_d^2 + s^2, and

        c_in   = 1 / sqrt(v)                   the network's input c_in * x_t has unit variance at every level
        c_skip = (1 - s) sigma_d^2 / v         the share of x_t in the best linear guess of x from x_t
        c_out  = sigma_d * s / sqrt(v)         the spread of what that guess misses

    so that in x0_hat = c_skip * x_t + c_out * F the network's own output F has a target
    (x - c_skip * x_t) / c_out of unit variance: c_skip is the choice that makes this variance smallest.
    At s = 0 the image passes through (c_skip = 1, c_out = 0); at s = 1 the network says all (c_skip = 0).
    Returns (c_in, c_skip, c_out), shaped like `noise_level`.
    """
    signal = (1.0 - noise_level) * data_std
    variance = signal * signal + noise_level * noise_level
    root = ops.sqrt(variance)
    return 1.0 / root, (1.0 - noise_level) * data_std * data_std / variance, data_std * noise_level / root


def loss_weights(noise_level, weighting: str, data_std: float, norm: str = "l1"):
    """How much the loss counts at each training noise level s (`data.loss_weighting`), for the L1 loss
    |x0_hat - x| or, with `norm="l2"`, the squared loss (x0_hat - x)^2 (`data.loss_norm`).

    - "none": every level alike (the seed's choice).
    - "edm": 1 / c_out (see `preconditioning_scalings`): |x0_hat - x| = c_out * |F - target|, so this
      counts the network's own unit-scale error alike at every level, as EDM's 1 / c_out^2 does for
      a squared loss. It favours nearly clean levels, where c_out is small.
    - "min_snr": min(SNR, gamma)^(1/2) with SNR = ((1 - s) / s)^2 and gamma = 5: Min-SNR-gamma's weight
      of an x0 loss, square-rooted for an L1 loss. Noisy levels count less; nearly clean ones are capped.

    A squared loss squares what the L1 loss measures (|x0_hat - x|^2 = c_out^2 |F - target|^2), so "l2"
    takes the square of each weight: EDM's own 1 / c_out^2, and Min-SNR-gamma's min(SNR, gamma), not rooted.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"Unknown loss weighting {weighting!r}; choose one of {LOSS_WEIGHTINGS}.")
    if norm not in LOSS_NORMS:
        raise ValueError(f"Unknown loss norm {norm!r}; choose one of {LOSS_NORMS}.")
    if weighting == "none":
        return ops.ones_like(noise_level)
    if weighting == "edm":
        c_out = preconditioning_scalings(noise_level, data_std)[2]
        return 1.0 / c_out if norm == "l1" else 1.0 / (c_out * c_out)
    root_snr = (1.0 - noise_level) / noise_level  # sqrt(SNR)
    if norm == "l1":
        return ops.minimum(root_snr, MIN_SNR_GAMMA**0.5)
    return ops.minimum(root_snr * root_snr, MIN_SNR_GAMMA)


def sampling_noise_levels(steps: int, max_level: float, power: float = 3.0) -> np.ndarray:
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


def log_snr_noise_levels(steps: int, max_level: float, min_level: float = 0.002) -> np.ndarray:
    """`steps + 1` levels evenly spaced in lambda = log((1 - s) / s) from `max_level` to `min_level`, then 0.

    Multistep solvers (DPM-Solver++) work in lambda, so even steps there suit them. Unlike the
    power grid, the first steps from pure noise are not huge: with 10 steps the power grid jumps
    from 0.95 to 0.54 at once, this one to 0.87. The last step goes from `min_level` to 0. A
    `min_level` above `max_level / 10` is lowered to it (for image-to-image from low levels).
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not 0.0 < max_level < 1.0:
        raise ValueError(f"max_level must be in (0, 1) for even steps in log signal-to-noise ratio, got {max_level!r}.")
    min_level = min(min_level, max_level / 10.0)
    lambdas = np.linspace(np.log((1.0 - max_level) / max_level), np.log((1.0 - min_level) / min_level), int(steps))
    levels = np.append(1.0 / (1.0 + np.exp(lambdas)), 0.0)
    return levels.astype("float32")


def karras_noise_levels(steps: int, max_level: float, min_level: float = 0.002, rho: float = 7.0) -> np.ndarray:
    """`steps + 1` levels evenly spaced in sigma^(1 / rho), sigma = s / (1 - s), from `max_level` to `min_level`,
    then 0: EDM's grid (Karras et al. 2022), where sigma is the noise scale of x_t / (1 - s) = x + sigma * eps.

    rho = 7 packs the steps towards the clean end far more than the power grid: with 5 steps the levels
    are 0.95, 0.82, 0.44, 0.069, 0.002, 0. A `min_level` above `max_level / 10` is lowered to it.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not 0.0 < max_level < 1.0:
        raise ValueError(f"max_level must be in (0, 1) for a grid in sigma = s / (1 - s), got {max_level!r}.")
    min_level = min(min_level, max_level / 10.0)
    top, bottom = (max_level / (1.0 - max_level)) ** (1.0 / rho), (min_level / (1.0 - min_level)) ** (1.0 / rho)
    sigmas = np.linspace(top, bottom, int(steps)) ** rho if steps > 1 else np.array([top**rho])
    levels = np.append(sigmas / (1.0 + sigmas), 0.0)
    return levels.astype("float32")


SPACINGS = {"power": sampling_noise_levels, "log_snr": log_snr_noise_levels, "karras": karras_noise_levels}
