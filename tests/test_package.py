"""The package's public names, imported on first use: `import denoiser` starts no TensorFlow, yet every name of
`__all__` is there, and a checkpoint loads with plain Keras once `denoiser.serialization` is imported."""

import importlib
import subprocess
import sys

import pytest
from helpers import tiny

import denoiser
from denoiser import build_unet

LAZY_THEN_PLAIN_KERAS = """
import sys
import denoiser
print("tensorflow" in sys.modules, "keras" in sys.modules)
import keras
import denoiser.serialization
print(type(keras.saving.load_model(sys.argv[1], safe_mode=True)).__name__)
"""


def test_import_denoiser_starts_no_tensorflow_and_serialization_registers_the_layers(tmp_path):
    path = tmp_path / "model.keras"
    build_unet(tiny()).save(path)
    result = subprocess.run(
        [sys.executable, "-c", LAZY_THEN_PLAIN_KERAS, str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "DenoiserUNet"]


def test_every_public_name_comes_from_its_module():
    for name in denoiser.__all__:
        namespace = {}
        exec(f"from denoiser import {name}", namespace)
        assert namespace[name] is getattr(importlib.import_module(denoiser.HOMES[name]), name), name
    assert set(denoiser.__all__) <= set(dir(denoiser))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        denoiser.no_such_name  # noqa: B018
