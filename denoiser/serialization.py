"""Loading `.keras` denoisers without ever executing code from the file, and a sampler from one.

A training checkpoint holds the network (which carries its `ModelConfig` and what sampling needs of its
run, see model.py) and its optimizer, whose state includes the moving average (EMA) of the weights. For
sampling we want those averaged weights: `load_model(path, ema=True)` loads the file and copies them into
the network. `load_sampler(path)` is the one way from a checkpoint or run directory to a `Sampler`.

    >>> sampler = load_sampler("runs/fashion_mnist")                 # the run's own sampling settings
    >>> sampler = load_sampler("model.keras", steps=10, solver="dpmpp_2m")
    >>> sampler = load_sampler("pretrained:fashion_mnist_fast")    # a model shipped with the package (hub.py)
"""

from __future__ import annotations

import os
import zipfile

import keras

# Importing these registers the custom layers, the U-Net, the optimizer and its schedule with Keras, so `.keras`
# files load.
import denoiser.layers  # noqa: F401
from denoiser.data.sources import class_names_for
from denoiser.hub import model_path
from denoiser.model import DenoiserUNet
from denoiser.optimizer import copy_ema_weights
from denoiser.rundir import CheckpointError, RunDirectory, model_run_info
from denoiser.sampler import Sampler
from denoiser.utils.archives import keras_archive_problem
from denoiser.utils.errors import short_reason


def load_model(path: str | os.PathLike, compile: bool = False, ema: bool = False) -> keras.Model:
    """Load a `.keras` model with `safe_mode=True`; a damaged file raises `CheckpointError` saying so.

    compile: also restore the optimizer and its state (to resume training).
    ema: use the optimizer's averaged weights when the checkpoint has them (for sampling).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"No checkpoint file at {path}; check the path, or train a run first.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a readable .keras file (perhaps cut short by an interrupted copy); "
            "use another checkpoint, e.g. the previous epoch's."
        )
    problem = keras_archive_problem(path)
    if problem:
        raise CheckpointError(f"{path} is refused: {problem}; use another checkpoint, e.g. the previous epoch's.")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=compile or ema)
    except Exception as error:  # Keras raises many types, with messages of up to kilobytes of config
        raise CheckpointError(
            f"{path} is damaged or not a denoiser checkpoint ({short_reason(error, limit=100)}); "
            "use another checkpoint, e.g. the previous epoch's."
        ) from error
    if ema:
        copy_ema_weights(model, into=model)
    return model


def find_checkpoint(path: str | os.PathLike) -> tuple[str, RunDirectory | None]:
    """The checkpoint file that `path` (a `.keras` file, a run directory, `pretrained:NAME` or `hf://USER/NAME`,
    see hub.py) names, and its run directory."""
    path = model_path(path)
    checkpoint, run = RunDirectory.around(path)
    if os.path.isdir(os.fspath(path)) and not os.path.exists(checkpoint):
        raise CheckpointError(f"{path} has no checkpoints/latest.keras; has a training epoch finished there yet?")
    return checkpoint, run


def load_sampler(path: str | os.PathLike, **settings) -> Sampler:
    """A `Sampler` over the averaged weights of a checkpoint or run directory, with the run's sampling settings.

    `settings` replace single fields of them (steps=10, guidance=3.0, solver="dpmpp_2m"); a setting given as
    None keeps the run's. A checkpoint saved before models carried their config is described by the run's
    config.yaml beside it, or else by its inputs (see sampler.model_config_of).
    """
    checkpoint, run = find_checkpoint(path)
    model = load_model(checkpoint, ema=True)
    settings = {name: value for name, value in settings.items() if value is not None}
    config = run.run_config() if run is not None else None
    if config is not None and not getattr(model, "run_info", None):  # a checkpoint that does not carry its run's
        model.run_info = model_run_info(config, class_names_for(config))
    model_config = None if isinstance(model, DenoiserUNet) or config is None else config.model
    return Sampler(model, model_config=model_config, **settings)
