"""Generate images with a sampler, a cascade, or straight from a checkpoint: the Python API behind
`denoiser sample` and `denoiser interpolate`.

    >>> images, labels, names = generate("runs/fashion_mnist", labels=["Dress", "Bag"], num_per_label=4)
    >>> images, ids, prompts = generate("runs/laion64", prompts=["a red dress"], num_per_label=4)
    >>> images, labels, names = generate(load_cascade("runs/fmnist14", ["runs/fmnist_sr"]), labels=["Dress"])
    >>> strip = interpolate("runs/laion64", from_prompt="a red dress", to_prompt="a blue car", frames=8)

A `Sampler` and a `Cascade` are sampled alike (`.sample()`); the conditions come from what the base model
takes (conditions.py). A text-conditioned model embeds its prompts with the encoder its run recorded.
"""

from __future__ import annotations

import os

import numpy as np

from denoiser.cascade import Cascade, StageCallback
from denoiser.conditions import label_ids, prompt_conditions
from denoiser.sampler import Sampler
from denoiser.serialization import load_sampler


def load_cascade(base, upscales, **settings) -> Cascade:
    """A cascade from a base checkpoint or run and super-resolution ones; `settings` are the base's.

    Each super-resolution stage samples with its own run's settings, except the solver, which every stage shares.
    """
    base_sampler = load_sampler(base, **settings)
    stages = [load_sampler(path, solver=settings.get("solver")) for path in upscales]
    return Cascade([base_sampler, *stages])


def as_sampler(source, settings: dict) -> Sampler | Cascade:
    """A sampler or cascade as given, or a sampler loaded from a checkpoint path with `settings`."""
    if isinstance(source, (str, os.PathLike)):
        return load_sampler(source, **settings)
    if any(value is not None for value in settings.values()):
        raise ValueError(f"Sampling settings {sorted(settings)} go with a checkpoint path; set them on the sampler.")
    return source


def generate(
    source,
    labels=(),
    *,
    prompts=(),
    num_per_label: int = 8,
    seed: int = 0,
    progress: bool = False,
    callback: StageCallback | None = None,
    encoder: str | None = None,
    **settings,
):
    """Sample `num_per_label` images per label, or per prompt, with a sampler, a cascade or a checkpoint.

    source: a `Sampler`, a `Cascade`, or a checkpoint / run directory (loaded with `settings`, e.g. steps=10).
    Returns images (N, H, W, C) in [-1, 1], their class ids (N,) (0 when unconditional) and the display
    name of each label, in order. With `prompts` (text-conditioned models) the ids are each image's prompt
    index and the names the prompts; `encoder` is needed only for a checkpoint that does not name its own.
    `callback` is the sampler's (or, for a cascade, the cascade's) step callback.
    """
    if num_per_label <= 0:
        raise ValueError(f"The number of images per label must be positive, got {num_per_label}.")
    sampler = as_sampler(source, settings)
    base = sampler.samplers[0] if isinstance(sampler, Cascade) else sampler
    if prompts:
        if labels:
            raise ValueError("Give `labels` or `prompts`, not both.")
        conditions = np.repeat(prompt_conditions(prompts, base, encoder), num_per_label, axis=0)
        ids, names = np.repeat(np.arange(len(prompts)), num_per_label), list(prompts)
    else:
        ids, names = label_ids(labels, base)
        conditions = None if ids is None else np.repeat(ids, num_per_label)
        ids = np.zeros(num_per_label * len(names), "int32") if conditions is None else conditions
    images = sampler.sample(condition=conditions, num_images=len(ids), seed=seed, progress=progress, callback=callback)
    return images, ids, names


def slerp(a, b, t: float) -> np.ndarray:
    """Spherical interpolation from `a` (t=0) to `b` (t=1), along the great circle between them.

    Between two normalized embeddings it stays on the unit sphere; between two Gaussian noises it
    keeps the noise's length, where a straight line passes through shorter, too smooth noise. It
    falls back to the straight line when the two are (nearly) parallel or one is zero (the empty prompt).
    """
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    length_a, length_b = np.linalg.norm(a), np.linalg.norm(b)
    if min(length_a, length_b) < 1e-8:
        return ((1 - t) * a + t * b).astype("float32")
    angle = np.arccos(np.clip(np.sum(a * b) / (length_a * length_b), -1.0, 1.0))
    if angle < 1e-4:
        return ((1 - t) * a + t * b).astype("float32")
    return ((np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle)).astype("float32")


def interpolate(
    source,
    *,
    from_prompt: str | None = None,
    to_prompt: str | None = None,
    prompt: str | None = None,
    seeds: tuple[int, int] | None = None,
    frames: int = 8,
    seed: int = 0,
    encoder: str | None = None,
    progress: bool = False,
    **settings,
) -> np.ndarray:
    """A strip of `frames` images (frames, H, W, C) in [-1, 1] that moves between two prompts or two noises.

    source: a `Sampler`, or a checkpoint / run directory (loaded with `settings`, e.g. steps=10).
    from_prompt, to_prompt: the condition moves from one prompt's embedding to the other's (slerp);
        the starting noise (from `seed`) is the same for every frame, so only the prompt changes.
    prompt, seeds=(a, b): the noise moves from seed a's to seed b's (slerp); the prompt stays fixed.
    """
    if frames < 2:
        raise ValueError(f"An interpolation needs at least 2 frames, got {frames}.")
    between_prompts = from_prompt is not None or to_prompt is not None
    if between_prompts == (seeds is not None) or (between_prompts and prompt is not None):
        raise ValueError(
            "Give two prompts to move between (`from_prompt`, `to_prompt`), or two seeds (`seeds`) and one `prompt`."
        )
    if between_prompts and (from_prompt is None or to_prompt is None):
        raise ValueError("Moving between prompts needs both `from_prompt` and `to_prompt`.")
    if seeds is not None and len(seeds) != 2:
        raise ValueError(f"Give two seeds to move between, got {list(seeds)}.")
    sampler = as_sampler(source, settings)
    condition = sampler.model_config.condition
    if condition not in ("vector", "sequence"):  # walking between classes is not offered (yet)
        raise ValueError(
            "interpolate moves between the prompts or seeds of a text-conditioned model; this one is conditioned "
            f"on {'class labels' if condition == 'class' else 'nothing'}."
        )
    shares = np.linspace(0.0, 1.0, frames)
    if between_prompts:
        start, end = prompt_conditions([from_prompt, to_prompt], sampler, encoder)
        conditions = np.stack([slerp(start, end, share) for share in shares])
        noise = np.repeat(sampler.noise(1, seed), frames, axis=0)
    else:
        conditions = np.repeat(prompt_conditions([prompt or ""], sampler, encoder), frames, axis=0)
        start, end = sampler.noise(1, seeds[0])[0], sampler.noise(1, seeds[1])[0]
        noise = np.stack([slerp(start, end, share) for share in shares])
    return sampler.sample(condition=conditions, noise=noise, progress=progress)
