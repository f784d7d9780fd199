"""Named starting configurations. A preset only lists what differs from the defaults in config.py.

denoiser train --preset cifar10 --set train.epochs=30
"""

from __future__ import annotations

from denoiser.config import ConfigError, RunConfig, check_sections, merge
from denoiser.config_rules import DEFAULT_ENCODER

# The defaults (config.py) are the seed's Fashion-MNIST model: base width 64, multipliers (1, 2, 3), 2 blocks
# per level, attention at the middle level, batch 64, learning rate 3e-4, 10 epochs. A preset for a data set
# still names the shape of its images and its number of classes.

# A super-resolution stage (cascade.py): the low-res image carries the layout, so no self-attention is
# needed; the condition still steers the details through cross-attention at the bottleneck.
_SR_UNET = {
    "width_multipliers": [1, 2, 2],
    "self_attention": [False, False, False],
    "cross_attention": [False, False, True],
}

# The quick start's CPU-sized network (shapes, and your own images): two halvings, one block per level, attention
# at the bottleneck only.
_CPU_UNET = {
    "base_width": 32,
    "width_multipliers": [1, 2, 2],
    "blocks_per_level": 1,
    "self_attention": [False, False, True],
    "cross_attention": [False, False, True],
}

# Text-to-image: the U-Net is conditioned on the pooled CLIP embedding of the caption; its width is the
# encoder's (512 for ViT-B-32), found when training starts. data.path names the captioned folder or table
# (see captions.py).
_TEXT_MODEL = {"condition": "vector"}
_TEXT_DATA = {"dataset": "captions", "encoder": DEFAULT_ENCODER}

PRESETS: dict[str, dict] = {
    "fashion_mnist": {
        "data": {"dataset": "fashion_mnist"},
        "model": {"image_size": 28, "channels": 1, "num_classes": 10},
    },
    # The most quality per training FLOP we know for one epoch: the seed's design at width 32 (1.2M
    # parameters, a quarter of the FLOPs), twice the updates (batch 32) at a higher learning rate, and
    # uniform noise levels, which teach the garment's outline that makes it recognisable; sampled with
    # guidance 3 (see benchmarks/RESULTS.md: "What matters"; the solver is the default, 10 deis steps).
    "fashion_mnist_fast": {
        "data": {"dataset": "fashion_mnist", "noise_distribution": "uniform"},
        "model": {"base_width": 32, "image_size": 28, "channels": 1, "num_classes": 10},
        "train": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 200},
        "sample": {"guidance": 3.0},
    },
    "mnist": {
        "data": {"dataset": "mnist"},
        "model": {"image_size": 28, "channels": 1, "num_classes": 10},
    },
    "cifar10": {
        "data": {"dataset": "cifar10"},
        "model": {"image_size": 32, "channels": 3, "num_classes": 10},
        "train": {"epochs": 30},
    },
    "cifar100": {
        "data": {"dataset": "cifar100"},
        "model": {"image_size": 32, "channels": 3, "num_classes": 100},
        "train": {"epochs": 30},
        "sample": {"columns": 4},
    },
    # The offline quick start: small coloured shapes, a small network, a few minutes on a laptop CPU.
    # Uniform noise levels (instead of the seed's, which favour nearly clean images) teach the overall
    # outline early: after 6 short epochs the shapes are recognisable, with the seed's choice they are blobs.
    "shapes": {
        "data": {"dataset": "shapes", "num_images": 12000, "noise_distribution": "uniform"},
        "model": {**_CPU_UNET, "image_size": 24, "channels": 3, "num_classes": 8},
        "train": {"epochs": 6, "batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 100, "ema_decay": 0.995},
    },
    # The seed's LAION model: 64x64, base width 96, multipliers (1, 2, 3, 4), attention at the third level.
    "laion64": {
        "data": dict(_TEXT_DATA),
        "model": {
            **_TEXT_MODEL,
            "image_size": 64,
            "channels": 3,
            "base_width": 96,
            "width_multipliers": [1, 2, 3, 4],
            "self_attention": [False, False, True, False],
            "cross_attention": [False, False, True, False],
        },
        "train": {"epochs": 20},
        "sample": {"guidance": 4.0, "columns": 6},
    },
    # A cascade, Imagen-style (cascade.py): a 14x14 base model (Fashion-MNIST made small by area
    # downsampling), then a super-resolution stage 14 -> 28 trained on the same data at full size.
    # Both have the fast preset's width 32; the base has one halving (14 -> 7) with attention at 7x7.
    "fashion_mnist_14": {
        "data": {"dataset": "fashion_mnist", "noise_distribution": "uniform"},
        "model": {
            "base_width": 32,
            "width_multipliers": [1, 2],
            "self_attention": [False, True],
            "cross_attention": [False, True],
            "image_size": 14,
            "channels": 1,
            "num_classes": 10,
        },
        "train": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 200},
    },
    "fashion_mnist_sr": {
        "data": {"dataset": "fashion_mnist"},
        "model": {**_SR_UNET, "base_width": 32, "image_size": 28, "low_resolution": 14, "channels": 1},
        "train": {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 200},
        "sample": {"steps": 10, "guidance": 1.0},
    },
    "cifar10_sr": {
        "data": {"dataset": "cifar10"},
        "model": {**_SR_UNET, "image_size": 32, "low_resolution": 16, "channels": 3},
        "train": {"epochs": 20},
        "sample": {"guidance": 1.0},
    },
    # The second stage of a LAION cascade after `laion64`: 64 -> 128, text-conditioned; for a GPU.
    "laion64_sr": {
        "data": dict(_TEXT_DATA),
        "model": {
            **_TEXT_MODEL,
            "image_size": 128,
            "low_resolution": 64,
            "channels": 3,
            "base_width": 64,
            "width_multipliers": [1, 2, 3, 4],
            "self_attention": [False, False, False, False],
            "cross_attention": [False, False, False, True],
        },
        "train": {"epochs": 20, "batch_size": 32},
        "sample": {"guidance": 3.0, "columns": 4},
    },
    # Your own folder of images at 32x32 (data.path): class folders train a class-conditional model, a folder of
    # images an unconditional one; the folder sets model.condition and model.num_classes (data/folders.py). The
    # shapes quick start's network (32 -> 16 -> 8, attention at 8x8) and uniform noise levels.
    "images": {
        "data": {"dataset": "images", "noise_distribution": "uniform"},
        "model": {**_CPU_UNET, "image_size": 32, "channels": 3},
        "train": {"epochs": 20, "batch_size": 32, "learning_rate": 1e-3, "warmup_fraction": 0.02},
    },
    # Your own captioned folder or table at 32x32: a small network that trains on a laptop or Colab.
    "captions": {
        "data": dict(_TEXT_DATA),
        "model": {**_TEXT_MODEL, "image_size": 32, "channels": 3},
        "train": {"epochs": 20, "warmup_fraction": 0.02},  # a share of the run: a short CPU run is not all warm-up
        "sample": {"guidance": 3.0},
    },
}


DEFAULT_PRESET = "fashion_mnist"  # `denoiser train` and `config` without --preset


def preset_names() -> list[str]:
    return sorted(PRESETS)


def resolve_config(
    preset: str = DEFAULT_PRESET, file_values: dict | None = None, overrides: list[dict] = ()
) -> RunConfig:
    """The config of a run: a preset, then a YAML file's values, then command-line overrides, in that order;
    checked as a whole (RunConfig.validate), so a combination that cannot train is refused before anything runs.

    An unconditional model (model.condition=none) gets no cross-attention, which would have nothing to attend to,
    unless the file or an override sets model.cross_attention itself."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; choose one of {preset_names()}.")
    values = merge(RunConfig().to_dict(), PRESETS[preset])
    check_sections(file_values or {}, "file_values")
    layers = [file_values or {}, *overrides]
    for layer in layers:
        values = merge(values, layer)
    values = without_cross_attention_if_unconditional(values, layers)
    config = RunConfig.from_dict(values)
    config.validate()
    return config


def without_cross_attention_if_unconditional(values: dict, layers: list[dict]) -> dict:
    """`values` with model.cross_attention off at every level where model.condition is none, unless one of the
    `layers` (a file's values, the overrides) sets it."""
    model = values.get("model")
    if not isinstance(model, dict) or model.get("condition") != "none":
        return values
    if any(isinstance(layer.get("model"), dict) and "cross_attention" in layer["model"] for layer in layers):
        return values
    levels = model.get("width_multipliers")
    switches = [False] * len(levels) if isinstance(levels, list) else model.get("cross_attention")
    return merge(values, {"model": {"cross_attention": switches}})
