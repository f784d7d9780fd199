"""denoiser: train small text-to-image diffusion models with Keras 3, and understand every line.

The public API is the table `PUBLIC` below: each name by the module that holds it (README, "How the code is
organised", has the map). The names are imported on first use, `denoiser.train(...)` or
`from denoiser import train`: a module-level `__getattr__` (PEP 562) imports the name's module when the name
is first asked for. So `import denoiser` loads nothing heavy, `denoiser --help` answers at once, and
TensorFlow starts only when a name that needs it is used.

Loading a model registers the package's Keras layers and optimizer (serialization.py imports them): after
`import denoiser.serialization`, or a first use of `denoiser.load_model`, `load_sampler`, `generate`...,
plain `keras.saving.load_model(path, safe_mode=True)` loads a denoiser checkpoint too.
"""

import importlib

from denoiser.utils.quiet import quiet_tensorflow_settings, start_up_lines_hidden

# Before any module imports TensorFlow: its log level (a TF_CPP_MIN_LOG_LEVEL you set wins).
quiet_tensorflow_settings()

__version__ = "0.1.0"

PUBLIC = {
    "denoiser.config": ("ModelConfig", "RunConfig", "ConfigError"),  # the settings of a run
    "denoiser.config_rules": ("DEFAULT_ENCODER",),  # the text encoder's name, unless told otherwise
    "denoiser.presets": ("resolve_config",),  # named configurations
    "denoiser.model": ("build_unet",),  # the denoising U-Net (from the layers of layers.py)
    # autoencoders for latent diffusion; Stable Diffusion's VAE
    "denoiser.autoencoder.config": ("AutoencoderConfig",),
    "denoiser.autoencoder.model": ("Autoencoder", "build_autoencoder"),
    "denoiser.autoencoder.loading": ("load_autoencoder",),
    "denoiser.schedule": ("add_noise", "training_noise_levels", "sampling_noise_levels"),  # the noise schedule
    "denoiser.sampler": ("Sampler", "dynamic_threshold"),  # the sampler with guidance
    "denoiser.solvers": ("SOLVERS",),  # its step rules
    "denoiser.cascade": ("Cascade", "upscale"),  # a base model plus super-resolution stages
    "denoiser.serialization": ("load_model", "load_sampler"),  # a checkpoint, and a sampler from one
    "denoiser.sharing": ("share",),  # a run as a model folder, on disk or on the Hugging Face Hub
    # sampling with a sampler, a cascade or a checkpoint
    "denoiser.generation": ("generate", "interpolate", "slerp", "load_cascade"),
    "denoiser.editing": ("inpaint", "outpaint", "image_to_image"),  # editing images with a sampler
    "denoiser.training": ("train",),  # training runs into a run directory
    "denoiser.data.dataset": ("Dataset",),  # training data ...
    "denoiser.data.sources": ("load_dataset",),  # ... by name
    "denoiser.data.folders": ("load_image_folder",),  # a folder of class folders or of images
    "denoiser.data.captions": ("read_captions", "load_captioned_dataset", "load_array_dataset"),  # captioned images
    "denoiser.data.encoders": ("load_encoder", "encode_texts", "embed_captions"),  # text encoders, embedding caches
    "denoiser.evaluation.report": ("evaluate",),  # sample-quality metrics of a checkpoint
    "denoiser.utils.plotting": ("ProcessRecorder",),  # a sampler callback that saves a strip or GIF
    "denoiser.utils.download": ("download_file",),  # Google Drive downloads with gdown
    "denoiser.deploy.onnx": ("export_onnx",),  # ONNX export for the web page
}
HOMES = {name: module for module, names in PUBLIC.items() for name in names}

__all__ = sorted(HOMES)


def __getattr__(name: str):
    """A public name, from its module, imported now (hiding TensorFlow's start-up lines) and kept for next time."""
    if name not in HOMES:
        raise AttributeError(f"module 'denoiser' has no attribute {name!r}")
    with start_up_lines_hidden():
        module = importlib.import_module(HOMES[name])
    value = globals()[name] = getattr(module, name)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *HOMES})
