"""Saving and loading `.keras` denoisers without ever executing code from the file.

A training checkpoint holds the network and its optimizer, whose state includes the moving
average (EMA) of the weights. For sampling we want those averaged weights: `load_model(path,
ema=True)` loads the file and copies them into the network.
"""

from __future__ import annotations

import os
import zipfile

import keras

# Importing these registers the custom layers, the optimizer and its schedule with Keras, so `.keras` files load.
import denoiser.layers  # noqa: F401
import denoiser.optimizer  # noqa: F401
from denoiser.utils.errors import short_reason


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a denoiser model."""


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


def ema_variables(model: keras.Model) -> dict:
    """Map each trainable variable's path to its moving average, or {} if the optimizer keeps none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # unwrap a loss-scale optimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None) if optimizer is not None else None
    if not getattr(optimizer, "use_ema", False) or not averages:
        return {}
    return {
        variable.path: average for variable, average in zip(model.trainable_variables, averages) if average is not None
    }


def copy_ema_weights(model: keras.Model, into: keras.Model) -> None:
    """Set `into`'s weights to `model`'s, using the moving averages where the optimizer keeps them."""
    averages = ema_variables(model)
    for source, target in zip(model.weights, into.weights):
        target.assign(averages.get(source.path, source).value)
