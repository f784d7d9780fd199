"""Models by name: the trained models that ship with the package, and models shared on the Hugging Face Hub.

Wherever a checkpoint or run directory is asked for (`--checkpoint`, `load_sampler`, `evaluate`...), two more
spellings name a model:

    pretrained:shapes            a small model trained here and shipped in denoiser/pretrained/ (PRETRAINED)
    hf://USER/NAME               a model that `denoiser push` shared on the Hub, downloaded once into its cache

Both are *model folders*: a run directory cut down to what sampling needs (sharing.py writes them),

    config.yaml                  the run's settings
    checkpoints/latest.keras     the averaged (EMA) weights, without the optimizer
    samples/epoch-NNNN.png       the run's last sample grid
    README.md                    the model card
    web/                         (pretrained models) the ONNX export that `denoiser web` opens

so every command that takes a run directory takes them unchanged. `model_path` turns a name into that folder.
"""

from __future__ import annotations

import os

from denoiser.utils.errors import short_reason

PRETRAINED_PREFIX = "pretrained:"
HUB_PREFIX = "hf://"
PRETRAINED_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")

# The models committed with the project, by name (each trained by its preset; see denoiser/pretrained/README.md).
PRETRAINED = {
    "shapes": "the quick start: 8 coloured shapes at 24x24, 6 epochs (`--preset shapes`)",
    "fashion_mnist_fast": "Fashion-MNIST at 28x28, one epoch at 77.3 TFLOP (`--preset fashion_mnist_fast`)",
}


class ModelNameError(ValueError):
    """A `pretrained:` or `hf://` name that names no model; the message lists what exists."""


def model_path(path: str | os.PathLike) -> str:
    """The local path of a checkpoint, run directory or model folder named by a path, `pretrained:NAME` or
    `hf://USER/NAME` (downloaded on first use, from the Hub's cache after)."""
    text = os.fspath(path)
    if text.startswith(PRETRAINED_PREFIX):
        return pretrained_path(text.removeprefix(PRETRAINED_PREFIX))
    if text.startswith(HUB_PREFIX):
        return download_from_hub(hub_repo_id(text))
    return text


def web_model_path(path: str | os.PathLike) -> str:
    """The ONNX export folder (`denoiser export`'s) that a path or model name gives the web page: a model folder's
    `web/` where it has one (the pretrained models do), else the path itself."""
    folder = model_path(path)
    export = os.path.join(folder, "web")
    return export if os.path.isfile(os.path.join(export, "denoiser.json")) else folder


def pretrained_path(name: str) -> str:
    """The folder of a pretrained model shipped with the package."""
    if name not in PRETRAINED:
        names = ", ".join(f"pretrained:{known}" for known in PRETRAINED)
        raise ModelNameError(f"No pretrained model {name!r}; there are {names}.")
    return os.path.join(PRETRAINED_FOLDER, name)


def hub_repo_id(location: str) -> str:
    """`hf://USER/NAME` -> `USER/NAME`, refusing anything else (a missing user, a longer path)."""
    repo_id = location.removeprefix(HUB_PREFIX).strip("/")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise ModelNameError(f"{location!r} is not a Hub model name; write hf://USER/NAME, e.g. hf://ada/shapes.")
    return repo_id


def huggingface_hub_module():
    """The `huggingface_hub` package (from the `hf` extra), with a one-line error when it is missing."""
    try:
        import huggingface_hub
    except ImportError as error:
        raise ModelNameError(f"Models on the Hub need huggingface_hub ({error}): pip install -e '.[hf]'") from error
    return huggingface_hub


def download_from_hub(repo_id: str) -> str:
    """The model folder of a Hub repository, downloaded into Hugging Face's cache (once: a rerun reuses it)."""
    hub = huggingface_hub_module()
    try:
        return hub.snapshot_download(repo_id=repo_id, library_name="denoiser")
    except Exception as error:  # no network, no such repository, no access: the Hub's errors are many types
        raise ModelNameError(
            f"Could not download hf://{repo_id} from the Hugging Face Hub ({short_reason(error)}); "
            "check the name, the network, and for a private model `huggingface-cli login`."
        ) from error
