"""Cascaded generation, Imagen-style: a base model makes small images, super-resolution stages upscale them.

    >>> cascade = Cascade([base_sampler, sr_sampler])         # e.g. 14x14, then 14 -> 28
    >>> images = cascade.sample(condition=np.array([1, 2, 3]), seed=0)          # (3, 28, 28, C)
    >>> stages = cascade.sample_stages(condition=np.array([1, 2, 3]), seed=0)   # every stage's images
    >>> high = upscale(sr_sampler, low_images, condition=np.array([4]), seed=0) # a picture of your own

Each stage is a `Sampler` with its own steps, guidance and solver; the condition (class ids or prompt
embeddings) is shared by every stage that takes one. A super-resolution stage gets the previous stage's
output as its low-resolution input (noised at its sampler's `augmentation_level`, see sampler.py), so
each stage's low resolution must be the previous stage's image size. Stage k starts from the noise of
seed + k: one seed fixes the whole cascade.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from denoiser.sampler import Sampler
from denoiser.utils.images import nearest_upsample, size_text, to_unit_range

StageCallback = Callable[[int, int, float, np.ndarray], None]  # (stage, step, noise level, x0_hat)


class Cascade:
    """A base sampler followed by super-resolution samplers, each upscaling the one before."""

    def __init__(self, samplers: list[Sampler]):
        if not samplers:
            raise ValueError("A cascade needs at least one sampler: the base model.")
        if samplers[0].low_resolution_shape is not None:
            raise ValueError(
                f"The first stage of a cascade must be a base model; this one upscales "
                f"{size_text(samplers[0].low_resolution_shape)} images."
            )
        for index, (previous, stage) in enumerate(zip(samplers, samplers[1:]), start=1):
            check_stage_fits(previous, stage, index)
        self.samplers = list(samplers)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.samplers[-1].image_shape

    def sample(self, condition=None, num_images: int | None = None, seed: int | None = 0, **options) -> np.ndarray:
        """The last stage's images (N, H, W, C) in [-1, 1]; takes the arguments of `sample_stages`."""
        return self.sample_stages(condition, num_images, seed, **options)[-1]

    def sample_stages(
        self,
        condition=None,
        num_images: int | None = None,
        seed: int | None = 0,
        callback: StageCallback | None = None,
        progress: bool = False,
    ) -> list[np.ndarray]:
        """Every stage's images, base first; `callback(stage, step, level, x0_hat)` after each step of any stage."""
        outputs = []
        for stage, sampler in enumerate(self.samplers):
            stage_callback = None if callback is None else _with_stage(callback, stage)
            outputs.append(
                sampler.sample(
                    condition=condition if sampler.model_config.conditional else None,
                    num_images=num_images if stage == 0 else len(outputs[-1]),
                    seed=None if seed is None else seed + stage,
                    callback=stage_callback,
                    progress=progress,
                    low_resolution_images=outputs[-1] if stage else None,
                )
            )
        return outputs


def check_stage_fits(previous: Sampler, stage: Sampler, index: int) -> None:
    """Refuse a stage that does not upscale what the stage before it makes, naming both sizes."""
    made = previous.image_shape
    wanted = stage.low_resolution_shape
    if wanted is None:
        raise ValueError(f"Stage {index} of the cascade is a base model, not a super-resolution stage.")
    if wanted != made:
        raise ValueError(
            f"Stage {index} upscales {size_text(wanted)} images with {wanted[2]} channel(s), but stage "
            f"{index - 1} makes {size_text(made)} images with {made[2]} channel(s); chain stages whose sizes match."
        )


def _with_stage(callback: StageCallback, stage: int) -> Callable[[int, float, np.ndarray], None]:
    return lambda step, level, x0_hat: callback(stage, step, level, x0_hat)


def upscale(sampler: Sampler, low_resolution_images, condition=None, seed: int | None = 0, **options) -> np.ndarray:
    """Upscale your own images with a super-resolution stage: (N, h, w, C) in [-1, 1] (or uint8) -> (N, H, W, C).

    `options` go to `Sampler.sample` (callback, progress).
    """
    images = np.asarray(low_resolution_images)
    if images.dtype == np.uint8:
        images = to_unit_range(images)
    if images.ndim == 3:  # one image
        images = images[None]
    return sampler.sample(condition=condition, seed=seed, low_resolution_images=images, **options)


def recording_across_stages(recorder: Callable[[int, float, np.ndarray], None], size: int) -> StageCallback:
    """A cascade callback that hands every stage's predictions, blown up to `size`, to a sampler callback
    such as `ProcessRecorder`: one strip or GIF of the whole cascade."""
    return lambda stage, step, level, x0_hat: recorder(step, level, nearest_upsample(x0_hat, size))
