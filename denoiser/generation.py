"""Generate images from a checkpoint or a run directory: the Python API behind `denoiser sample`
and `denoiser interpolate`.

    >>> from denoiser.generation import load_sampler, generate
    >>> images, labels, names = generate("runs/fashion_mnist", labels=["Dress", "Bag"], num_per_label=4)
    >>> images, ids, prompts = generate("runs/laion64", prompts=["a red dress"], num_per_label=4)
    >>> strip = interpolate("runs/laion64", from_prompt="a red dress", to_prompt="a blue car", frames=8)

A text-conditioned checkpoint embeds its prompts with the encoder its run's config records
(`data.encoder`) and refuses another one.
"""

from __future__ import annotations

import os

import numpy as np
import yaml

from denoiser.config import RunConfig
from denoiser.data.encoders import encode_texts
from denoiser.data.sources import class_names_for
from denoiser.sampler import Sampler
from denoiser.serialization import CheckpointError, load_model


def find_checkpoint(path: str | os.PathLike) -> tuple[str, RunConfig | None]:
    """A checkpoint file and its run's config (None if it has no run directory around it).

    `path` is a `.keras` file (inside `RUN/checkpoints/` or anywhere) or a run directory, for which
    the newest checkpoint, `checkpoints/latest.keras`, is used.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        run_dir, checkpoint = path, os.path.join(path, "checkpoints", "latest.keras")
        if not os.path.exists(checkpoint):
            raise CheckpointError(f"{path} has no checkpoints/latest.keras; has a training epoch finished there yet?")
    else:
        checkpoint, run_dir = path, os.path.dirname(os.path.dirname(os.path.abspath(path)))
    config_path = os.path.join(run_dir, "config.yaml")
    config = None
    if os.path.exists(config_path):
        with open(config_path) as handle:
            config = RunConfig.from_dict(yaml.safe_load(handle))
    return checkpoint, config


def class_names(config: RunConfig | None) -> tuple[str, ...]:
    return class_names_for(config) if config is not None else ()


def load_sampler(
    path, steps: int | None = None, guidance: float | None = None, solver: str = "ddim"
) -> tuple[Sampler, RunConfig | None]:
    """A `Sampler` over the averaged weights of a checkpoint, with the run's sampling defaults."""
    checkpoint, config = find_checkpoint(path)
    defaults = config.sample if config is not None else RunConfig().sample
    model = load_model(checkpoint, ema=True)
    sampler = Sampler(
        model,
        steps=steps or defaults.steps,
        guidance=defaults.guidance if guidance is None else guidance,
        threshold_percentile=defaults.threshold_percentile,
        solver=solver,
        augmentation_level=defaults.augmentation_level,
    )
    return sampler, config


def label_ids(labels, sampler: Sampler, config: RunConfig | None) -> tuple[np.ndarray | None, list[str]]:
    """Class ids and display names for labels given as ids ("3", 3) or class names ("Dress").

    No labels means every class. An unconditional model has no labels: (None, [""]).
    """
    if sampler.inputs["condition"] == "none":
        if labels:
            raise ValueError("This model is unconditional; leave out --label.")
        return None, [""]
    if sampler.inputs["condition"] != "class":
        raise ValueError("This model is conditioned on embeddings, not class labels; give prompts instead.")
    names = class_names(config)
    count = sampler.inputs["num_classes"]
    lookup = {name.lower(): index + 1 for index, name in enumerate(names)}
    ids = []
    for label in labels or range(1, count + 1):
        text = str(label).strip()
        if text.isdigit() and 0 <= int(text) <= count:
            ids.append(int(text))
        elif text.lower() in lookup:
            ids.append(lookup[text.lower()])
        else:
            known = f"; class names: {', '.join(names)}" if names else ""
            raise ValueError(f"Unknown label {text!r}: give an id from 0 to {count}{known}.")
    display = ["no condition" if i == 0 else (names[i - 1] if i <= len(names) else f"class {i}") for i in ids]
    return np.array(ids, dtype="int32"), display


def text_encoder(config: RunConfig | None, encoder: str | None = None) -> str:
    """The encoder a checkpoint's prompts need: the one its run recorded; `encoder` must agree with it."""
    recorded = config.data.encoder if config is not None else None
    if encoder and recorded and encoder != recorded:
        raise ValueError(
            f"This checkpoint was trained on captions embedded by {recorded}, so its prompts need that encoder, "
            f"not {encoder}; leave out --encoder."
        )
    if not (encoder or recorded):
        raise ValueError(
            "This checkpoint has no run config that names its text encoder (data.encoder); "
            "pass --encoder with the one it was trained with, e.g. --encoder open_clip/ViT-B-32/laion2b_s34b_b79k."
        )
    return recorded or encoder


def prompt_conditions(prompts, sampler: Sampler, config: RunConfig | None, encoder: str | None = None) -> np.ndarray:
    """The model's conditions for `prompts`: their embeddings by the run's encoder ("" gives the zero vector)."""
    kind = sampler.inputs["condition"]
    if kind == "class":
        raise ValueError("This model is conditioned on class labels, not text; give --label instead of prompts.")
    if kind == "none":
        raise ValueError("This model is unconditional; leave out the prompts.")
    embeddings = encode_texts(prompts, text_encoder(config, encoder), tokens=kind == "sequence")
    dim = sampler.inputs["condition_dim"]
    expected = (dim,) if kind == "vector" else (sampler.inputs["condition_tokens"], dim)
    if embeddings.shape[1:] != expected:
        raise ValueError(
            f"The encoder gives conditions of shape {embeddings.shape[1:]} but the model takes {expected}; "
            "is this the encoder the model was trained with?"
        )
    return embeddings


def generate(
    path,
    labels=(),
    num_per_label: int = 8,
    steps=None,
    guidance=None,
    seed: int = 0,
    progress=False,
    solver: str = "ddim",
    callback=None,
    prompts=(),
    encoder: str | None = None,
):
    """Sample `num_per_label` images per label, or per prompt, from a checkpoint or run directory.

    Returns images (N, H, W, C) in [-1, 1], their class ids (N,) (0 when unconditional) and the
    display name of each label, in order. `solver` and `callback` are passed to the `Sampler`.
    With `prompts` (text-conditioned models) the ids are each image's prompt index and the names
    the prompts; `encoder` is needed only for a checkpoint without its run's config.
    """
    if num_per_label <= 0:
        raise ValueError(f"The number of images per label must be positive, got {num_per_label}.")
    sampler, config = load_sampler(path, steps, guidance, solver)
    if prompts:
        if labels:
            raise ValueError("Give labels or prompts, not both.")
        conditions = np.repeat(prompt_conditions(list(prompts), sampler, config, encoder), num_per_label, axis=0)
        images = sampler.sample(condition=conditions, seed=seed, progress=progress, callback=callback)
        return images, np.repeat(np.arange(len(prompts)), num_per_label), list(prompts)
    ids, names = label_ids(labels, sampler, config)
    conditions = None if ids is None else np.repeat(ids, num_per_label)
    images = sampler.sample(
        condition=conditions, num_images=num_per_label * len(names), seed=seed, progress=progress, callback=callback
    )
    return images, (np.zeros(len(images), "int32") if conditions is None else conditions), names


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
    path,
    from_prompt: str | None = None,
    to_prompt: str | None = None,
    prompt: str | None = None,
    seeds: tuple[int, int] | None = None,
    frames: int = 8,
    steps=None,
    guidance=None,
    seed: int = 0,
    encoder: str | None = None,
    progress=False,
) -> np.ndarray:
    """A strip of `frames` images (frames, H, W, C) in [-1, 1] that moves between two prompts or two noises.

    from_prompt, to_prompt: the condition moves from one prompt's embedding to the other's (slerp);
        the starting noise (from `seed`) is the same for every frame, so only the prompt changes.
    prompt, seeds=(a, b): the noise moves from seed a's to seed b's (slerp); the prompt stays fixed.
    """
    if frames < 2:
        raise ValueError(f"An interpolation needs at least 2 frames, got {frames}.")
    between_prompts = from_prompt is not None or to_prompt is not None
    if between_prompts == (seeds is not None) or (between_prompts and prompt is not None):
        raise ValueError("Give two prompts to move between (--from, --to), or two seeds (--seeds) and one --prompt.")
    if between_prompts and (from_prompt is None or to_prompt is None):
        raise ValueError("Moving between prompts needs both --from and --to.")
    if seeds is not None and len(seeds) != 2:
        raise ValueError(f"Give two seeds to move between, got {list(seeds)}.")
    sampler, config = load_sampler(path, steps, guidance)
    shares = np.linspace(0.0, 1.0, frames)
    if between_prompts:
        start, end = prompt_conditions([from_prompt, to_prompt], sampler, config, encoder)
        conditions = np.stack([slerp(start, end, share) for share in shares])
        noise = np.repeat(sampler.noise(1, seed), frames, axis=0)
    else:
        conditions = np.repeat(prompt_conditions([prompt or ""], sampler, config, encoder), frames, axis=0)
        start, end = sampler.noise(1, seeds[0])[0], sampler.noise(1, seeds[1])[0]
        noise = np.stack([slerp(start, end, share) for share in shares])
    return sampler.sample(condition=conditions, noise=noise, progress=progress)
