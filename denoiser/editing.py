"""Editing images with a trained denoiser: inpainting, outpainting and image-to-image.

All three reuse a `Sampler`: its network calls (guidance, thresholding, batching), its solver and its
condition handling. Only the path through the noise levels and what stays fixed differ.

Masks mark what to generate: 1 (white in a mask file) = generate, 0 (black) = keep the input.

- Inpainting (RePaint, Lugmayr et al. 2022): before every step the kept pixels are replaced by the
  input image noised to the current level with fresh noise, so the network fills in the rest to
  match them. With `resample > 1`, after every `jump` steps the whole image is noised back up
  `jump` levels and walked down again, `resample - 1` more times: more chances for the generated
  part to agree with the kept part, at `resample` times the network calls. At s = 0 the kept part
  is exactly the input.
- Outpainting grows the canvas. The network's canvas has a fixed size, so it sees the image's edge
  moved by `pixels` and fills the uncovered band; the result is the input with that band attached.
- Image-to-image (SDEdit, Meng et al. 2021): noise the image to level `strength` and solve from
  there with all `sampler.steps` steps. Small strengths keep layout and colours; near 1 it is
  almost a fresh sample.

    >>> filled = inpaint(sampler, image, mask, condition=np.array([2, 2]), seed=0)
    >>> wider = outpaint(sampler, image, pixels=8, side="right", num_images=4)
    >>> variations = image_to_image(sampler, image, strength=0.6, condition=np.array([3]))
"""

from __future__ import annotations

import numpy as np

from denoiser import defaults
from denoiser.sampler import Sampler
from denoiser.schedule import add_noise, renoise
from denoiser.solvers import make_solver
from denoiser.utils.progress import Progress

SIDES = ("left", "right", "top", "bottom")


class EditError(ValueError):
    """The images, mask or settings of an edit do not fit together; the message says why and what to do."""


def inpaint(
    sampler: Sampler,
    images,
    mask,
    *,
    condition=None,
    num_images: int | None = None,
    seed: int | None = 0,
    resample: int = defaults.RESAMPLE,
    jump: int = defaults.JUMP,
    callback=None,
    progress: bool = False,
) -> np.ndarray:
    """Generate the masked part of `images` (N, H, W, C) or (H, W, C) in [-1, 1]; keep the rest exactly.

    mask: 1 = generate, 0 = keep; (H, W), (H, W, 1) or one per image. One image is repeated for
        every condition (or `num_images` times). callback: `callback(level_index, level, x0_hat)`
        after every network call, with the kept part pasted into x0_hat.
    """
    images, condition = batch_images(sampler, images, condition, num_images)
    generate = broadcast_mask(mask, images.shape)
    if generate.min() < 0 or generate.max() > 1 or not generate.any():
        raise EditError("The mask needs values in [0, 1] and at least one pixel to generate (1 or white = generate).")
    keep = 1.0 - generate
    levels = sampler.noise_levels
    path = repaint_path(len(levels) - 1, jump, resample)
    solver = make_solver(sampler.solver, levels)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(images.shape).astype("float32")  # the same start as sampler.sample(seed=seed)
    progbar = Progress("repainting", len(path) - 1, unit="move") if progress else None
    for move, (index, target) in enumerate(zip(path, path[1:])):
        noise = rng.standard_normal(images.shape).astype("float32")
        if target < index:  # a RePaint jump back up to a noisier level
            x = renoise(x, noise, levels[index], levels[target]).astype("float32")
        else:
            x = keep * add_noise(images, noise, levels[index]) + generate * x
            x0_hat = sampler.denoise(x, levels[index], condition)
            x = solver.step(index, x, x0_hat)
            if callback is not None:
                callback(index, float(levels[index]), keep * images + generate * x0_hat)
        if progbar is not None:
            progbar.update(move + 1)
    return keep * images + generate * np.clip(x, -1.0, 1.0)


def outpaint(sampler: Sampler, images, pixels: int, *, side: str = defaults.SIDE, **options) -> np.ndarray:
    """Extend `images` by `pixels` generated rows or columns on `side` (left, right, top or bottom).

    The network's canvas holds the image's `size - pixels` rows or columns nearest that side, shifted
    `pixels` away from it, and fills the band this uncovers. The image must have the model's size
    across the side (its height for left and right); the result is `pixels` wider (or taller) than
    the input, so it can be grown again. options: as for `inpaint` (condition, num_images, seed, ...).
    """
    size = sampler.image_shape[0]
    if side not in SIDES:
        raise EditError(f"Unknown side {side!r}; choose one of {', '.join(SIDES)}.")
    if not 0 < pixels < size:
        raise EditError(
            f"Outpainting grows by 1 to {size - 1} pixels at a time for this {size}x{size} model; got {pixels}."
        )
    images = np.asarray(images, "float32")
    images = images[None] if images.ndim == 3 else images
    axis = 2 if side in ("left", "right") else 1  # the axis that grows
    kept, length, at_end = size - pixels, images.shape[axis], side in ("right", "bottom")
    if images.shape[3 - axis] != size or length < kept:
        raise EditError(
            f"Growing the {side} side needs images {size} pixels across it and at least {kept} along it; "
            f"got {images.shape[1]}x{images.shape[2]}."
        )

    def attach(base, band):  # put `band` on the growing side of `base`
        return np.concatenate([base, band] if at_end else [band, base], axis=axis)

    window = np.take(images, range(length - kept, length) if at_end else range(kept), axis=axis)
    blank = np.zeros_like(np.take(window, range(pixels), axis=axis))
    mask = attach(np.zeros_like(window[:1]), np.ones_like(blank[:1]))
    filled = inpaint(sampler, attach(window, blank), mask, **options)
    band = np.take(filled, range(kept, size) if at_end else range(pixels), axis=axis)
    return attach(np.broadcast_to(images, (len(filled), *images.shape[1:])), band)


def image_to_image(
    sampler: Sampler,
    images,
    strength: float = defaults.STRENGTH,
    *,
    condition=None,
    num_images: int | None = None,
    seed: int | None = 0,
    callback=None,
    progress: bool = False,
) -> np.ndarray:
    """SDEdit: noise `images` to level `strength` in (0, 1) and denoise them with `sampler.steps` steps.

    Arguments as for `inpaint`; the result is (N, H, W, C) in [-1, 1].
    """
    if not 0.0 < strength < 1.0:
        raise EditError(f"`strength` is the starting noise level, in (0, 1); got {strength}.")
    images, condition = batch_images(sampler, images, condition, num_images)
    levels = sampler.levels_from(strength)
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype("float32")
    return sampler.solve(add_noise(images, noise, levels[0]), levels, condition, callback, progress)


def repaint_path(steps: int, jump: int = defaults.JUMP, resample: int = defaults.RESAMPLE) -> list[int]:
    """The grid indices that inpainting visits, from 0 (noisiest) to `steps` (clean).

    It walks down one level at a time; on reaching every multiple of `jump` it goes back up `jump`
    levels and walks down again, `resample - 1` times. With resample = 1 it is simply 0, 1, ..., steps.
    """
    if int(jump) != jump or jump < 1 or int(resample) != resample or resample < 1:
        raise EditError(f"jump and resample must be positive integers; got jump={jump}, resample={resample}.")
    path = [0]
    for index in range(1, steps + 1):
        path.append(index)
        if index % jump == 0:
            for _ in range(int(resample) - 1):
                path += list(range(index - jump, index + 1))
    return path


def batch_images(sampler: Sampler, images, condition, num_images):
    """Images as (N, H, W, C) float32 and their prepared conditions, one per image.

    A single image is repeated for every condition (or `num_images` times).
    """
    images = np.asarray(images, "float32")
    images = images[None] if images.ndim == 3 else images
    if images.shape[1:] != sampler.image_shape:
        raise EditError(f"Images of shape {images.shape[1:]} do not fit this model, which makes {sampler.image_shape}.")
    if np.abs(images).max() > 1.0 + 1e-5:
        raise EditError("Images must be floats in [-1, 1]; convert uint8 pixels with utils.images.to_unit_range.")
    count = num_images or len(images)
    condition = sampler.prepare_condition(condition, count)
    count = len(condition) if condition is not None else count
    if len(images) == 1:
        images = np.repeat(images, count, axis=0)
    if len(images) != count:
        raise EditError(f"Got {len(images)} images for {count} conditions; give one image, or one per condition.")
    return images, condition


def broadcast_mask(mask, shape) -> np.ndarray:
    """`mask` as float32 of the images' `shape`; it may be (H, W), (H, W, 1), (H, W, C) or one per image."""
    mask = np.asarray(mask, "float32")
    mask = mask[..., None] if mask.ndim == 2 else mask
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise EditError(f"A mask of shape {mask.shape} does not fit images of shape {tuple(shape)}.") from None
