"""Test set-up: an isolated Keras home with the shared Fashion-MNIST copy, and quiet TensorFlow.

Keras reads KERAS_HOME once, when it is first imported, so it is set here, before any test module
imports keras. Every test session gets its own temporary home: nothing is written to ~/.keras and
the shared data stays read-only.
"""

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_FASHION_MNIST = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "keras", "datasets", "fashion-mnist"
)

_keras_home = tempfile.mkdtemp(prefix="denoiser-keras-home-")
atexit.register(shutil.rmtree, _keras_home, ignore_errors=True)
os.environ["KERAS_HOME"] = _keras_home
if os.path.isdir(SHARED_FASHION_MNIST):
    shutil.copytree(SHARED_FASHION_MNIST, os.path.join(_keras_home, "datasets", "fashion-mnist"))


@pytest.fixture
def fashion_mnist_home():
    """The Keras home holding Fashion-MNIST; skips the test where the shared copy is missing."""
    if not os.path.isdir(os.path.join(_keras_home, "datasets", "fashion-mnist")):
        pytest.skip(f"the shared Fashion-MNIST copy is missing (looked in {os.path.abspath(SHARED_FASHION_MNIST)})")
    return _keras_home


def write_captioned_folder(root, count: int = 12, size: int = 20, seed: int = 0):
    """A small data set in img2dataset's layout (00000/000000000.jpg + .txt), drawn from the shapes data set.

    Besides `count` captioned images it holds one image without a caption and one truncated JPEG
    (with a caption). Returns the captions of the readable images in file order.
    """
    import io

    from PIL import Image

    from denoiser.data.shapes import make_shapes

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


@pytest.fixture
def captioned_folder(tmp_path):
    """A captioned folder (see `write_captioned_folder`) and the captions of its readable images."""
    root = tmp_path / "captioned"
    return str(root), write_captioned_folder(str(root))


@pytest.fixture(scope="session")
def captioned_folder_writer():
    """`write_captioned_folder`, for fixtures with a wider scope than one test."""
    return write_captioned_folder


def make_tiny_run(root, condition: str = "class", channels: int = 3, seed: int = 0) -> str:
    """A run directory (config.yaml + checkpoints/latest.keras) holding a tiny network with random weights.

    A fresh network outputs zeros (its last conv starts at zero); random weights make the outputs,
    and so comparisons between two ways of running it, meaningful. Based on the `shapes` preset, so
    a class model has the shapes' 8 class names.
    """
    import numpy as np
    import yaml

    from denoiser import build_unet, resolve_config

    overrides = {
        "model": {
            "image_size": 16,
            "channels": channels,
            "base_width": 8,
            "width_multipliers": [1, 2],
            "blocks_per_level": 1,
            "self_attention": [False, True],
            "cross_attention": [False, condition != "none"],
            "attention_heads": 2,
            "norm_groups": 4,
            "condition": condition,
            "condition_dim": 512,
            "condition_tokens": 77,
        },
        "sample": {"steps": 6, "guidance": 2.0},
    }
    if condition in ("vector", "sequence"):
        overrides["data"] = {"encoder": "open_clip/ViT-B-32/none"}
    config = resolve_config("shapes", overrides=[overrides])
    model = build_unet(config.model)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(0.1 * rng.standard_normal(variable.shape).astype(variable.dtype))
    os.makedirs(os.path.join(root, "checkpoints"), exist_ok=True)
    model.save(os.path.join(root, "checkpoints", "latest.keras"))
    with open(os.path.join(root, "config.yaml"), "w") as handle:
        yaml.safe_dump(config.to_dict(), handle)
    return str(root)


@pytest.fixture(scope="session")
def tiny_run_maker():
    """`make_tiny_run`, for fixtures of any scope."""
    return make_tiny_run
