"""Generate images from a checkpoint or a run directory: the Python API behind `denoiser sample`.

    >>> from denoiser.generation import load_sampler, generate
    >>> images, labels, names = generate("runs/fashion_mnist", labels=["Dress", "Bag"], num_per_label=4)
"""

from __future__ import annotations

import os

import numpy as np
import yaml

from .config import RunConfig
from .sampler import Sampler
from .serialization import CheckpointError, load_model


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
    from .training import class_names_for

    return class_names_for(config) if config is not None else ()


def load_sampler(path, steps: int | None = None, guidance: float | None = None) -> tuple[Sampler, RunConfig | None]:
    """A `Sampler` over the averaged weights of a checkpoint, with the run's sampling defaults."""
    checkpoint, config = find_checkpoint(path)
    defaults = config.sample if config is not None else RunConfig().sample
    model = load_model(checkpoint, ema=True)
    sampler = Sampler(
        model,
        steps=steps or defaults.steps,
        guidance=defaults.guidance if guidance is None else guidance,
        threshold_percentile=defaults.threshold_percentile,
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


def generate(path, labels=(), num_per_label: int = 8, steps=None, guidance=None, seed: int = 0, progress=False):
    """Sample `num_per_label` images per label from a checkpoint or run directory.

    Returns images (N, H, W, C) in [-1, 1], their class ids (N,) (0 when unconditional) and the
    display name of each label, in order.
    """
    if num_per_label <= 0:
        raise ValueError(f"The number of images per label must be positive, got {num_per_label}.")
    sampler, config = load_sampler(path, steps, guidance)
    ids, names = label_ids(labels, sampler, config)
    conditions = None if ids is None else np.repeat(ids, num_per_label)
    images = sampler.sample(condition=conditions, num_images=num_per_label * len(names), seed=seed, progress=progress)
    return images, (np.zeros(len(images), "int32") if conditions is None else conditions), names
