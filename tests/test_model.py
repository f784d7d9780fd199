"""The U-Net: shapes for every conditioning kind, config errors, saving and loading, learning."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import randomize_weights, tiny

from denoiser import ConfigError, ModelConfig, Sampler, add_noise, build_unet, load_model
from denoiser.sampler import model_config_of


def example_inputs(config: ModelConfig, batch: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (batch, config.image_size, config.image_size, config.channels)
    inputs = [rng.standard_normal(shape).astype("float32"), rng.uniform(0, 1, (batch, 1)).astype("float32")]
    if config.condition == "class":
        inputs.append(rng.integers(0, config.num_classes + 1, (batch, 1)).astype("int32"))
    elif config.condition == "vector":
        inputs.append(rng.standard_normal((batch, config.condition_dim)).astype("float32"))
    elif config.condition == "sequence":
        inputs.append(rng.standard_normal((batch, config.condition_tokens, config.condition_dim)).astype("float32"))
    return inputs


@pytest.mark.parametrize("condition", ["class", "vector", "sequence", "none"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_condition_kind_gives_float32_images_of_the_input_shape(condition, channels):
    cross = [False, condition != "none"]
    config = tiny(condition=condition, channels=channels, cross_attention=cross)
    model = build_unet(config)
    randomize_weights(model)
    inputs = example_inputs(config)
    output = keras.ops.convert_to_numpy(model(inputs))
    assert output.shape == inputs[0].shape and output.dtype == np.float32
    assert np.isfinite(output).all() and output.std() > 0
    assert model.config.condition == condition and model_config_of(model) is model.config
    assert len(model.inputs) == (2 if condition == "none" else 3)


@pytest.mark.parametrize("size, multipliers", [(28, [1, 2, 3]), (32, [1, 2, 2, 2]), (64, [1, 1, 2, 2])])
def test_common_image_sizes_build(size, multipliers):
    levels = len(multipliers)
    config = tiny(
        image_size=size,
        width_multipliers=multipliers,
        self_attention=[False] * levels,
        cross_attention=[False] * (levels - 1) + [True],
    )
    model = build_unet(config)
    output = model(example_inputs(config, batch=1))
    assert tuple(output.shape) == (1, size, size, 1)


def test_the_output_starts_at_zero_so_training_starts_from_the_mean_image():
    config = tiny()
    output = keras.ops.convert_to_numpy(build_unet(config)(example_inputs(config)))
    assert np.all(output == 0)


def test_noise_level_and_condition_both_change_the_output():
    config = tiny()
    model = build_unet(config)
    randomize_weights(model)
    images, levels, labels = example_inputs(config)
    base = keras.ops.convert_to_numpy(model([images, levels, labels]))
    other_level = keras.ops.convert_to_numpy(model([images, levels * 0 + 0.9, labels]))
    other_label = keras.ops.convert_to_numpy(model([images, levels, (labels + 1) % 4]))
    assert np.abs(base - other_level).max() > 1e-3
    assert np.abs(base - other_label).max() > 1e-3


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(self_attention=[False, True, False]), "self_attention"),
        (dict(cross_attention=[True]), "cross_attention"),
        (dict(base_width=-8), "base_width"),
        (dict(width_multipliers=[1, 0]), "width_multipliers"),
        (
            dict(image_size=10, width_multipliers=[1, 2, 2], self_attention=[False] * 3, cross_attention=[False] * 3),
            "image_size",
        ),
        (dict(channels=2), "channels"),
        (dict(condition="text"), "condition"),
        (dict(base_width=6), "norm_groups"),
        (dict(condition="none"), "cross_attention"),
    ],
)
def test_a_wrong_config_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        tiny(**changes)


def test_config_round_trips_through_a_dict_and_rejects_unknown_keys():
    config = tiny(condition="vector")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="base_widht"):
        ModelConfig.from_dict({**config.to_dict(), "base_widht": 3})


@pytest.mark.parametrize("condition", ["class", "vector", "sequence"])
def test_keras_file_round_trip_in_safe_mode_gives_the_same_outputs(tmp_path, condition):
    config = tiny(condition=condition, channels=3)
    model = build_unet(config)
    randomize_weights(model, seed=1)
    inputs = example_inputs(config)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs)), rtol=1e-5, atol=1e-5
    )
    assert loaded.config == model.config  # the checkpoint carries its ModelConfig


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "model.keras"
    build_unet(tiny()).save(path)
    path.write_bytes(path.read_bytes()[:1000])
    from denoiser.serialization import CheckpointError

    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_model(str(path))


def toy_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images of a bright square in one of three corners; the label says which corner."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 4, count)
    images = np.full((count, 8, 8, 1), -1.0, "float32")
    for index, label in enumerate(labels):
        row, col = [(0, 0), (0, 4), (4, 0)][label - 1]
        images[index, row : row + 4, col : col + 4] = 1.0
    return images, labels.reshape(-1, 1).astype("int32")


def test_a_few_epochs_of_toy_images_clearly_lower_the_l1_loss():
    keras.utils.set_random_seed(0)
    config = tiny()
    model = build_unet(config)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mean_absolute_error")
    rng = np.random.default_rng(0)
    images, labels = toy_images(1024)
    levels = (np.abs(rng.standard_normal((1024, 1))) / 3).clip(1e-4, 0.999).astype("float32")
    noisy = add_noise(images, rng.standard_normal(images.shape).astype("float32"), levels[:, :, None, None])
    held_out = [noisy[:256], levels[:256], labels[:256]], images[:256]
    before = model.evaluate(*held_out, verbose=0)
    model.fit([noisy[256:], levels[256:], labels[256:]], images[256:], batch_size=16, epochs=3, verbose=0)
    after = model.evaluate(*held_out, verbose=0)
    assert after < 0.5 * before, (before, after)


OTHER_BACKENDS = [name for name in ("jax", "torch") if __import__("importlib").util.find_spec(name)]


@pytest.mark.parametrize(
    "backend", OTHER_BACKENDS or [pytest.param("jax", marks=pytest.mark.skip("neither JAX nor PyTorch is installed"))]
)
def test_the_network_samples_alike_on_another_keras_backend(backend, tmp_path):
    """A checkpoint saved here (TensorFlow) samples the same images under JAX or PyTorch."""
    model = build_unet(tiny())
    randomize_weights(model, seed=3)
    model.save(tmp_path / "model.keras")
    expected = Sampler(model, steps=2, guidance=2.0).sample(np.array([1, 2]), seed=0)
    script = textwrap.dedent(
        """
        import sys
        import keras, numpy as np
        from denoiser import Sampler, load_model
        assert keras.backend.backend() == sys.argv[1]
        images = Sampler(load_model(sys.argv[2]), steps=2, guidance=2.0).sample(np.array([1, 2]), seed=0)
        np.save(sys.argv[3], images)
        """
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-c", script, backend, str(tmp_path / "model.keras"), str(tmp_path / "images.npy")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), expected, atol=1e-4)
