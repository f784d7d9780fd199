"""denoiser: train small text-to-image diffusion models with Keras 3, and understand every line.

The public API, by the module that holds it (README, "How the code is organised", has the map):

    ModelConfig, RunConfig, ConfigError   configuration (config.py); resolve_config: presets (presets.py)
    build_unet                            the denoising U-Net (model.py, from the layers of layers.py)
    Autoencoder, AutoencoderConfig,
    build_autoencoder, load_autoencoder   autoencoders for latent diffusion; Stable Diffusion's VAE (autoencoder/)
    add_noise, training_noise_levels,
    sampling_noise_levels                 the noise schedule (schedule.py)
    Sampler, dynamic_threshold, SOLVERS   the sampler with guidance, and its solvers (sampler.py, solvers.py)
    Cascade, upscale                      a base model plus super-resolution stages (cascade.py)
    load_model, load_sampler              a checkpoint, and a sampler from one (serialization.py)
    generate, interpolate, slerp,
    load_cascade                          sampling with a sampler, a cascade or a checkpoint (generation.py)
    inpaint, outpaint, image_to_image     editing images with a sampler (editing.py)
    train                                 training runs into a run directory (training.py)
    Dataset, load_dataset                 training data (data/dataset.py, data/sources.py)
    read_captions, load_captioned_dataset,
    load_array_dataset                    captioned image data sets (data/captions.py)
    DEFAULT_ENCODER, load_encoder,
    encode_texts, embed_captions          text encoders and the embedding cache (data/encoders.py)
    evaluate                              sample-quality metrics of a checkpoint (evaluation/report.py)
    ProcessRecorder                       a sampler callback that saves a strip or GIF (utils/plotting.py)
    download_file                         Google Drive downloads with gdown (utils/download.py)
    export_onnx                           ONNX export for the web page (deploy/onnx.py)

Importing the package registers its Keras layers and optimizer, so plain
`keras.saving.load_model(path, safe_mode=True)` loads a denoiser checkpoint too.
"""

# ruff: noqa: E402  (the log level below must be set before the modules import TensorFlow)
import os

# TensorFlow's C++ log: level 3 keeps lines such as "failed call to cuInit ... (303)", logged as an error on
# every machine without a GPU, off the terminal; Python errors are unaffected. A TF_CPP_MIN_LOG_LEVEL you set
# (0 shows everything) wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from denoiser.autoencoder.config import AutoencoderConfig
from denoiser.autoencoder.loading import load_autoencoder
from denoiser.autoencoder.model import Autoencoder, build_autoencoder
from denoiser.cascade import Cascade, upscale
from denoiser.config import ConfigError, ModelConfig, RunConfig
from denoiser.data.captions import load_array_dataset, load_captioned_dataset, read_captions
from denoiser.data.dataset import Dataset
from denoiser.data.encoders import DEFAULT_ENCODER, embed_captions, encode_texts, load_encoder
from denoiser.data.sources import load_dataset
from denoiser.deploy.onnx import export_onnx
from denoiser.editing import image_to_image, inpaint, outpaint
from denoiser.evaluation.report import evaluate
from denoiser.generation import generate, interpolate, load_cascade, slerp
from denoiser.model import build_unet
from denoiser.presets import resolve_config
from denoiser.sampler import Sampler, dynamic_threshold
from denoiser.schedule import add_noise, sampling_noise_levels, training_noise_levels
from denoiser.serialization import load_model, load_sampler
from denoiser.solvers import SOLVERS
from denoiser.training import train
from denoiser.utils.download import download_file
from denoiser.utils.plotting import ProcessRecorder

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ENCODER",
    "SOLVERS",
    "Autoencoder",
    "AutoencoderConfig",
    "Cascade",
    "ConfigError",
    "Dataset",
    "ModelConfig",
    "ProcessRecorder",
    "RunConfig",
    "Sampler",
    "add_noise",
    "build_autoencoder",
    "build_unet",
    "download_file",
    "dynamic_threshold",
    "embed_captions",
    "encode_texts",
    "evaluate",
    "export_onnx",
    "generate",
    "image_to_image",
    "inpaint",
    "interpolate",
    "load_autoencoder",
    "load_array_dataset",
    "load_captioned_dataset",
    "load_cascade",
    "load_dataset",
    "load_encoder",
    "load_model",
    "load_sampler",
    "outpaint",
    "read_captions",
    "resolve_config",
    "sampling_noise_levels",
    "slerp",
    "train",
    "training_noise_levels",
    "upscale",
]
