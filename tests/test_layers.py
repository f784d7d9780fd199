"""One harness for every registered layer of the package (the U-Net's and the autoencoder's blocks, and the two
models, which are layers too): each through the same checks, with a small example of it.

  - get_config / from_config (through JSON, as a .keras file stores it) gives the same config and, with the same
    weights, the same outputs;
  - a tiny keras.Model around it, saved as .keras and loaded with safe_mode=True, gives the same outputs;
  - in float32 the outputs are finite float32, shaped as the symbolic call said; under mixed_bfloat16 they are
    finite, in the compute dtype the layer means to give (bfloat16, or float32 where it computes in float32 on
    purpose), its weights stay float32, and they are near the float32 outputs of the same weights.

A new registered layer without a case in CASES fails test_every_registered_layer_of_the_package_has_a_case.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable

import keras
import numpy as np
import pytest
from helpers import randomize_weights, tiny
from keras import ops

import denoiser
from denoiser import AutoencoderConfig
from denoiser.autoencoder.blocks import AutoencoderAttention, AutoencoderResidualBlock, LatentDistribution
from denoiser.autoencoder.model import Autoencoder
from denoiser.layers import (
    PACKAGE,
    CrossAttention,
    PreconditionInput,
    PreconditionOutput,
    ResidualBlock,
    SelfAttention,
    SinusoidalEmbedding,
)
from denoiser.model import DenoiserUNet
from denoiser.training import policy_named

# bfloat16 keeps 8 bits of mantissa: a few layers of it stay within a few percent of the float32 outputs' scale.
MIXED_TOLERANCE = 0.05
# Greyscale 8x8 images to 4x4 latents of 2 channels: one halving, one residual block per level.
TINY_AUTOENCODER = AutoencoderConfig(
    image_channels=1, widths=[4, 8], layers_per_block=1, latent_channels=2, norm_groups=2
)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def levels() -> np.ndarray:
    """Two noise levels (B, 1), one low and one high."""
    return np.array([[0.05], [0.8]], dtype="float32")


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """A registered layer class, the arguments of a small one, an example input (an array, or the list its call
    takes) and the dtype of its outputs under mixed_bfloat16."""

    layer: type
    arguments: dict
    inputs: Callable[[], object]
    mixed_dtype: str = "bfloat16"

    def make(self) -> keras.layers.Layer:
        return self.layer(name="under_test", **self.arguments)


CASES = [
    LayerCase(SinusoidalEmbedding, dict(dim=8), levels),
    LayerCase(ResidualBlock, dict(width=8, groups=4, dropout=0.1), lambda: [normal(2, 4, 4, 4), normal(2, 6)]),
    LayerCase(SelfAttention, dict(heads=2, groups=4), lambda: normal(2, 4, 4, 8)),
    LayerCase(CrossAttention, dict(heads=2, groups=4), lambda: [normal(2, 4, 4, 8), normal(2, 3, 6)]),
    LayerCase(PreconditionInput, dict(data_std=0.5), lambda: [normal(2, 4, 4, 3), levels()]),
    # x0_hat is computed in float32 on purpose (the network's last conv is float32 too).
    LayerCase(
        PreconditionOutput,
        dict(data_std=0.5),
        lambda: [normal(2, 4, 4, 3), normal(2, 4, 4, 3, seed=1), levels()],
        mixed_dtype="float32",
    ),
    LayerCase(AutoencoderResidualBlock, dict(width=8, groups=4), lambda: normal(2, 4, 4, 4)),
    LayerCase(AutoencoderAttention, dict(groups=4), lambda: normal(2, 4, 4, 8)),
    LayerCase(LatentDistribution, dict(kl_weight=1e-3, seed=0), lambda: normal(2, 4, 4, 8)),
    # The models' output convolutions are float32 on purpose: images leave them in float32.
    LayerCase(
        DenoiserUNet,
        dict(config=tiny(preconditioning="edm")),
        lambda: [normal(2, 8, 8, 1), levels(), np.array([[1], [3]], dtype="int32")],
        mixed_dtype="float32",
    ),
    LayerCase(
        Autoencoder,
        dict(config=TINY_AUTOENCODER),
        lambda: normal(2, 8, 8, 1),
        mixed_dtype="float32",
    ),
]
each_layer = pytest.mark.parametrize("case", CASES, ids=[case.layer.__name__ for case in CASES])


def built(case: LayerCase, seed: int = 0):
    """A layer of `case`, built on its example input and given random weights, and that input."""
    layer, inputs = case.make(), case.inputs()
    layer(inputs)
    randomize_weights(layer, seed)  # fresh blocks start as the identity (zero output layers): compare real work
    return layer, inputs


def outputs(layer, inputs) -> np.ndarray:
    """The layer's inference outputs as float32 NumPy."""
    return ops.convert_to_numpy(ops.cast(layer(inputs, training=False), "float32"))


def symbolic(inputs):
    """keras.Input placeholders shaped like the example input (any batch size)."""
    return keras.tree.map_structure(lambda array: keras.Input(array.shape[1:], dtype=str(array.dtype)), inputs)


def dtype(tensor) -> str:
    return keras.backend.standardize_dtype(tensor.dtype)


# ================================================================================== the harness
@each_layer
def test_get_config_and_from_config_give_the_same_layer_and_outputs(case):
    layer, inputs = built(case)
    config = layer.get_config()
    copy = case.layer.from_config(json.loads(json.dumps(config)))  # as a .keras file keeps it: JSON
    assert type(copy) is case.layer and copy.get_config() == config
    copy(inputs)
    copy.set_weights(layer.get_weights())
    np.testing.assert_array_equal(outputs(copy, inputs), outputs(layer, inputs))


@each_layer
def test_a_keras_file_of_a_model_around_it_loads_in_safe_mode_with_the_same_outputs(case, tmp_path):
    layer, inputs = case.make(), case.inputs()
    placeholders = symbolic(inputs)
    model = keras.Model(placeholders, layer(placeholders))
    randomize_weights(model)
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("under_test")) is case.layer
    assert loaded.get_layer("under_test").get_config() == layer.get_config()
    np.testing.assert_array_equal(outputs(loaded, inputs), outputs(model, inputs))


@each_layer
def test_float32_outputs_are_finite_float32_of_the_symbolic_shape(case):
    with policy_named("float32"):
        layer, inputs = built(case)
    result = layer(inputs, training=False)
    assert dtype(result) == "float32" and np.isfinite(ops.convert_to_numpy(result)).all()
    assert tuple(layer(symbolic(inputs)).shape) == (None, *result.shape[1:])


@each_layer
def test_mixed_bfloat16_outputs_are_finite_in_the_compute_dtype_and_near_float32s(case):
    reference, inputs = built(case)
    with policy_named("mixed_bfloat16"):
        layer = case.make()
    layer(inputs)
    layer.set_weights(reference.get_weights())
    assert {dtype(weight) for weight in layer.weights} <= {"float32", "int32"}  # the weights stay float32
    result = layer(inputs, training=False)
    assert dtype(result) == case.mixed_dtype
    mixed, expected = outputs(layer, inputs), outputs(reference, inputs)
    assert np.isfinite(mixed).all()
    np.testing.assert_allclose(mixed, expected, rtol=0, atol=MIXED_TOLERANCE * np.abs(expected).max())


# ================================================================================== coverage
def registered_layer_classes() -> set[type]:
    """Every keras Layer subclass defined or imported in the package's modules and registered under its name."""
    found = set()
    for module in pkgutil.walk_packages(denoiser.__path__, "denoiser."):
        if module.name.endswith(".__main__"):  # importing it would run the command line
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if inspect.isclass(value) and issubclass(value, keras.layers.Layer):
                name = keras.saving.get_registered_name(value)
                if name.startswith(f"{PACKAGE}>") and keras.saving.get_registered_object(name) is value:
                    found.add(value)
    return found


def test_every_registered_layer_of_the_package_has_a_case():
    registered = registered_layer_classes()
    covered = {case.layer for case in CASES}
    assert not registered - covered, f"registered layers without a case in CASES: {registered - covered}"
    assert covered <= registered, f"cases of layers that are not registered: {covered - registered}"
