"""Test set-up: an isolated Keras home with the shared Fashion-MNIST copy, and quiet TensorFlow.

Keras reads KERAS_HOME once, when it is first imported, so it is set here, before any test module
imports keras. Every test session gets its own temporary home: nothing is written to ~/.keras and
the shared data stays read-only. Shared helpers (tiny models and configs, stand-ins, data on disk)
are plain functions in helpers.py; the fixtures built on them (and the Keras home's) are here.
Tests marked `slow` (see pyproject.toml) are left out by `pytest -m "not slow"`.
"""

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest_plugins = ["torchvision_stand_in"]  # open_clip on the test machine's torch/torchvision wheels (see there)

SHARED_FASHION_MNIST = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "keras", "datasets", "fashion-mnist"
)

_keras_home = tempfile.mkdtemp(prefix="denoiser-keras-home-")
atexit.register(shutil.rmtree, _keras_home, ignore_errors=True)
os.environ["KERAS_HOME"] = _keras_home
if os.path.isdir(SHARED_FASHION_MNIST):
    shutil.copytree(SHARED_FASHION_MNIST, os.path.join(_keras_home, "datasets", "fashion-mnist"))

from helpers import (  # noqa: E402  (imports keras: only once KERAS_HOME is set)
    needs_extra,
    randomize_weights,
    tiny,
    write_captioned_folder,
)

from denoiser import build_unet  # noqa: E402


def pytest_runtest_setup(item):
    """Skip a test marked `extra("NAME")` whose optional extra is not installed (helpers.EXTRA_MODULES)."""
    for marker in item.iter_markers("extra"):
        needs_extra(*marker.args)


@pytest.fixture
def fashion_mnist_home():
    """The Keras home holding Fashion-MNIST; skips the test where the shared copy is missing."""
    if not os.path.isdir(os.path.join(_keras_home, "datasets", "fashion-mnist")):
        pytest.skip(f"the shared Fashion-MNIST copy is missing (looked in {os.path.abspath(SHARED_FASHION_MNIST)})")
    return _keras_home


@pytest.fixture
def captioned_folder(tmp_path):
    """A captioned folder (see `write_captioned_folder`) and the captions of its readable images."""
    root = tmp_path / "captioned"
    return str(root), write_captioned_folder(str(root))


@pytest.fixture(scope="module")
def class_model():
    """The tiny class-conditioned network (helpers.tiny) with random weights (seed 2); built once per test file."""
    model = build_unet(tiny())
    randomize_weights(model, seed=2)
    return model
