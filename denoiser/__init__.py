"""denoiser: train small text-to-image diffusion models with Keras 3, and understand every line.

Public API (imported on first use, so `denoiser --help` starts instantly):
    ModelConfig, RunConfig, ConfigError   configuration (config.py)
    build_unet                            the denoising U-Net (model.py)
    add_noise, training_noise_levels,
    sampling_noise_levels                 the noise schedule (schedule.py)
    Sampler, dynamic_threshold            the DDIM-like sampler with guidance (sampler.py)
    SOLVERS                               its solvers by name: "ddim", "dpmpp_2m" (solvers.py)
    inpaint, outpaint, image_to_image     editing images with a sampler (editing.py)
    ProcessRecorder                       a sampler callback that saves a strip or GIF (plotting.py)
    Dataset, load_dataset                 training data (data.py)
    train, resolve_config                 training runs and presets (training.py, presets.py)
    load_model, generate                  checkpoints and sampling from them (serialization.py, generation.py)
    evaluate                              sample-quality metrics of a checkpoint (evaluation.py, metrics.py)
    interpolate, slerp                    strips between two prompts or two noises (generation.py)
    DEFAULT_ENCODER, load_encoder,
    encode_texts, embed_captions          text encoders and the embedding cache (text.py)
    read_captions, load_captioned_dataset,
    load_array_dataset                    captioned image data sets (captions.py)
    download_file                         Google Drive downloads with gdown (download.py)
    export_onnx                           ONNX export for the web page (export.py)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "config",
    "ModelConfig": "config",
    "RunConfig": "config",
    "build_unet": "model",
    "add_noise": "schedule",
    "sampling_noise_levels": "schedule",
    "training_noise_levels": "schedule",
    "Sampler": "sampler",
    "dynamic_threshold": "sampler",
    "SOLVERS": "solvers",
    "inpaint": "editing",
    "outpaint": "editing",
    "image_to_image": "editing",
    "ProcessRecorder": "utils.plotting",
    "Dataset": "data.dataset",
    "load_dataset": "data.sources",
    "train": "training",
    "resolve_config": "presets",
    "load_model": "serialization",
    "generate": "generation",
    "evaluate": "evaluation.evaluator",
    "interpolate": "generation",
    "slerp": "generation",
    "DEFAULT_ENCODER": "data.encoders",
    "load_encoder": "data.encoders",
    "encode_texts": "data.encoders",
    "embed_captions": "data.encoders",
    "read_captions": "data.captions",
    "load_captioned_dataset": "data.captions",
    "load_array_dataset": "data.captions",
    "download_file": "utils.download",
    "export_onnx": "deploy.onnx",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'denoiser' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
