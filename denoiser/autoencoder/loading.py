"""`load_autoencoder`: the one way from a `.keras` file, a diffusers folder or a Hugging Face name to an
`Autoencoder`.

    >>> autoencoder = load_autoencoder("autoencoder.keras")          # saved by Autoencoder.save
    >>> autoencoder = load_autoencoder("stable-diffusion-v1-5")     # a folder holding vae/ in diffusers' layout
    >>> autoencoder = load_autoencoder("stabilityai/sd-vae-ft-mse")  # downloaded once by huggingface_hub
"""

from __future__ import annotations

import os
import zipfile

import keras

from denoiser.autoencoder.config import MAX_PARAMETERS
from denoiser.autoencoder.from_diffusers import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    is_diffusers_folder,
    load_diffusers_autoencoder,
)
from denoiser.autoencoder.model import Autoencoder, AutoencoderError
from denoiser.utils.archives import keras_archive_problem
from denoiser.utils.errors import short_reason

DIFFUSERS_FILES = [CONFIG_FILE, WEIGHTS_FILE, f"vae/{CONFIG_FILE}", f"vae/{WEIGHTS_FILE}"]
# The most a .keras autoencoder can inflate to: float32 weights and an optimizer's two moments, with room to spare.
MAX_KERAS_BYTES = 16 * MAX_PARAMETERS


def load_autoencoder(path: str | os.PathLike) -> Autoencoder:
    """The autoencoder at `path`: a `.keras` file (loaded with `safe_mode=True`), a folder in diffusers' layout
    (config.json + diffusion_pytorch_model.safetensors, or a folder holding vae/ with those), or a Hugging Face
    name such as `stabilityai/sd-vae-ft-mse` (through huggingface_hub, cached). No torch is needed."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return load_keras_autoencoder(path)
    if os.path.isdir(path):
        return load_diffusers_autoencoder(diffusers_folder(path))
    if _looks_like_a_hub_name(path):
        return load_diffusers_autoencoder(diffusers_folder(download_from_hub(path)))
    raise AutoencoderError(
        f"No autoencoder at {path}: give a .keras file, a diffusers folder (config.json and {WEIGHTS_FILE}, "
        "or vae/ with them) or a Hugging Face name such as stabilityai/sd-vae-ft-mse."
    )


def load_keras_autoencoder(path: str) -> Autoencoder:
    """A `.keras` file that holds an `Autoencoder`, loaded without executing code from it, nor inflating more of it
    than an autoencoder can need."""
    if not zipfile.is_zipfile(path):
        raise AutoencoderError(f"{path} is not a readable .keras file; give an autoencoder saved with .save(PATH).")
    problem = keras_archive_problem(path, MAX_KERAS_BYTES)
    if problem:
        raise AutoencoderError(f"{path} is refused: {problem}; give an autoencoder saved with .save(PATH).")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types, with messages of up to kilobytes of config
        reason = short_reason(error, limit=100)
        raise AutoencoderError(f"{path} is damaged or not an autoencoder ({reason}).") from error
    if not isinstance(model, Autoencoder):
        raise AutoencoderError(f"{path} holds a {type(model).__name__}, not an Autoencoder.")
    return model


def diffusers_folder(folder: str) -> str:
    """`folder` itself or its vae/ subfolder, whichever holds a diffusers autoencoder."""
    for candidate in (folder, os.path.join(folder, "vae")):
        if is_diffusers_folder(candidate):
            return candidate
    raise AutoencoderError(
        f"{folder} holds no autoencoder in diffusers' layout: it needs {CONFIG_FILE} and {WEIGHTS_FILE}, "
        "there or in vae/ (a .bin-only folder: convert it to safetensors first)."
    )


def download_from_hub(name: str) -> str:
    """The local folder of a Hugging Face model's autoencoder files, downloaded on first use."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise AutoencoderError(f"Loading {name} needs huggingface_hub ({error}): pip install -e '.[latent]'") from error
    try:
        return snapshot_download(name, allow_patterns=DIFFUSERS_FILES)
    except Exception as error:  # no network, no such model, a gated model without a token...
        raise AutoencoderError(f"Cannot download {name} from Hugging Face ({short_reason(error)}).") from error


def _looks_like_a_hub_name(path: str) -> bool:
    """OWNER/NAME with no further slash, which no local path names (it does not exist)."""
    parts = path.split("/")
    return len(parts) == 2 and all(parts) and not path.startswith((".", "~"))
