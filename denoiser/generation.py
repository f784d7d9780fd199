"""Generate images with a sampler, a cascade, or straight from a checkpoint: the Python API behind
`denoiser sample` and `denoiser interpolate`.

    >>> images, labels, names = generate("runs/fashion_mnist", labels=["Dress", "Bag"], num_per_label=4)
    >>> images, ids, prompts = generate("runs/laion64", prompts=["a red dress"], num_per_label=4)
    >>> images, labels, names = generate(load_cascade("runs/fmnist14", ["runs/fmnist_sr"]), labels=["Dress"])
    >>> strip = interpolate("runs/laion64", from_prompt="a red dress", to_prompt="a blue car", frames=8)
    >>> strip = interpolate("runs/fashion_mnist", from_label="Sneaker", to_label="Ankle boot", frames=8)

A `Sampler` and a `Cascade` are sampled alike (`.sample()`); the conditions come from what the base model
takes (conditions.py). A text-conditioned model embeds its prompts with the encoder its run recorded.
"""

from __future__ import annotations

import os

import numpy as np

from denoiser import defaults
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
    num_per_label: int = defaults.NUM_PER_LABEL,
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


# What a class or text model walks between (two classes, two prompts: the ends' names), and the condition that a
# walk between two seeds' noises keeps fixed. An unconditional model walks between seeds only.
WALKS = {
    "class": ("classes", "from_label", "to_label", "label"),
    "vector": ("prompts", "from_prompt", "to_prompt", "prompt"),
    "sequence": ("prompts", "from_prompt", "to_prompt", "prompt"),
}
KINDS = {"class": "conditioned on class labels", "vector": "conditioned on text", "sequence": "conditioned on text"}


def check_walk(kind: str, given: set[str], seeds) -> None:
    """Raise ValueError unless `given` (the names of the arguments given) and `seeds` make one walk that this kind
    of model offers; the message names only the arguments that fit the model."""
    if kind in WALKS:
        what, start, end, fixed = WALKS[kind]
        fits = (given == {start, end} and seeds is None) or (given <= {fixed} and seeds is not None)
        offered = f"between two {what} (`{start}`, `{end}`) or two seeds (`seeds`, with `{fixed}`)"
    else:
        fits = not given and seeds is not None
        offered = "between two seeds (`seeds`)"
    if not fits:
        raise ValueError(f"This model is {KINDS.get(kind, 'unconditional')}; interpolate moves {offered}.")
    if seeds is not None and len(seeds) != 2:
        raise ValueError(f"Give two seeds to move between, got {list(seeds)}.")


def interpolate(
    source,
    *,
    from_prompt: str | None = None,
    to_prompt: str | None = None,
    prompt: str | None = None,
    from_label=None,
    to_label=None,
    label=None,
    seeds: tuple[int, int] | None = None,
    frames: int = defaults.FRAMES,
    seed: int = 0,
    encoder: str | None = None,
    progress: bool = False,
    **settings,
) -> np.ndarray:
    """A strip of `frames` images (frames, H, W, C) in [-1, 1] that moves between two conditions or two noises.

    source: a `Sampler`, or a checkpoint / run directory (loaded with `settings`, e.g. steps=10).
    from_prompt, to_prompt (a text model) or from_label, to_label (a class model, ids or names): the condition
        moves from one end's embedding to the other's (slerp; for classes, the rows of the model's learned class
        embedding); the starting noise (from `seed`) is the same for every frame, so only the condition changes.
    seeds=(a, b) with `prompt` or `label` (or neither: no condition): the noise moves from seed a's to seed b's
        (slerp); the condition stays fixed.
    """
    if frames < 2:
        raise ValueError(f"An interpolation needs at least 2 frames, got {frames}.")
    sampler = as_sampler(source, settings)
    kind = sampler.model_config.condition
    ends = {"from_prompt": from_prompt, "to_prompt": to_prompt, "prompt": prompt}
    ends.update(from_label=from_label, to_label=to_label, label=label)
    given = {name: value for name, value in ends.items() if value is not None}
    check_walk(kind, set(given), seeds)
    shares = np.linspace(0.0, 1.0, frames)
    if seeds is None:  # between two conditions, from the same noise
        start, end = walk_ends(sampler, kind, given, encoder)
        conditions = np.stack([slerp(start, end, share) for share in shares])
        noise = np.repeat(sampler.noise(1, seed), frames, axis=0)
    else:  # between two noises, the condition fixed
        fixed = fixed_condition(sampler, kind, given, encoder)
        conditions = None if fixed is None else np.repeat(fixed, frames, axis=0)
        start, end = sampler.noise(1, seeds[0])[0], sampler.noise(1, seeds[1])[0]
        noise = np.stack([slerp(start, end, share) for share in shares])
    return sampler.sample(condition=conditions, noise=noise, progress=progress)


def walk_ends(sampler: Sampler, kind: str, given: dict, encoder: str | None) -> np.ndarray:
    """The two conditions a walk goes between: two prompts' embeddings, or two classes' learned embeddings."""
    if kind == "class":
        ids, _ = label_ids([given["from_label"], given["to_label"]], sampler)
        return sampler.class_embeddings(ids)
    return prompt_conditions([given["from_prompt"], given["to_prompt"]], sampler, encoder)


def fixed_condition(sampler: Sampler, kind: str, given: dict, encoder: str | None) -> np.ndarray | None:
    """The condition of a walk between seeds, for one image: a prompt's embedding or a class id (none: empty)."""
    if kind == "none":
        return None
    if kind == "class":
        return label_ids([given.get("label", 0)], sampler)[0]
    return prompt_conditions([given.get("prompt", "")], sampler, encoder)
