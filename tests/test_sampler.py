"""The sampler: the guided, thresholded DDIM loop, determinism, the per-step callback, one call per step."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_weights, tiny

from denoiser import Sampler, build_unet, dynamic_threshold, sampling_noise_levels
from denoiser.config import ConfigError, SampleConfig


def threshold(x0_hat, percentile=99.5):
    """Dynamic thresholding in NumPy: per image, clip to the percentile of |pixel| (at least 1) and divide by it."""
    flat = np.abs(x0_hat).reshape(len(x0_hat), -1)
    limit = np.maximum(np.percentile(flat, percentile, axis=1), 1.0).reshape(-1, 1, 1, 1)
    return np.clip(x0_hat, -limit, limit) / limit


def predict(model, x, level, condition=None):
    inputs = [x.astype("float32"), np.full((len(x), 1), level, "float32")]
    return keras.ops.convert_to_numpy(model(inputs + ([] if condition is None else [condition]))).astype("float64")


def reference_sample(model, noise, levels, condition=None, guidance=1.0, percentile=99.5, interval=(0, 1)):
    """The DDIM loop written out: guided prediction (two separate network calls) at the levels inside `interval`,
    threshold, straight-line step.

    Returns the final images and the prediction of every step.
    """
    x, predictions = noise.astype("float64"), []
    for level, next_level in zip(levels[:-1], levels[1:]):
        x0_hat = predict(model, x, level, condition)
        if condition is not None and guidance != 1.0 and interval[0] <= level <= interval[1]:
            x0_hat = guidance * x0_hat + (1 - guidance) * predict(model, x, level, np.zeros_like(condition))
        x0_hat = threshold(x0_hat, percentile) if percentile is not None else np.clip(x0_hat, -1, 1)
        predictions.append(x0_hat)
        x = ((level - next_level) * x0_hat + next_level * x) / level
    return x, predictions


def test_samples_are_the_guided_thresholded_ddim_loop(class_model):
    sampler = Sampler(class_model, steps=3, guidance=2.0, solver="ddim")
    labels = np.array([1, 2, 3, 0])
    images = sampler.sample(labels, seed=0)
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.float32
    expected, predictions = reference_sample(
        class_model, sampler.noise(4, seed=0), sampler.noise_levels, labels.reshape(-1, 1).astype("int32"), 2.0
    )
    np.testing.assert_allclose(images, expected, atol=1e-4)
    np.testing.assert_allclose(expected, predictions[-1], atol=1e-6)  # the last step lands on x0_hat


def overshooting_network(size: int = 8) -> keras.Model:
    """A stand-in network whose prediction, 4 x_t, overshoots [-1, 1] by far at every step."""
    images, levels = keras.Input((size, size, 1)), keras.Input((1,))
    return keras.Model([images, levels], keras.layers.Rescaling(4.0)(images))


def test_dynamic_thresholding_rescales_overshooting_predictions_instead_of_saturating_them():
    model, noise = overshooting_network(), np.random.default_rng(0).standard_normal((3, 8, 8, 1)).astype("float32")
    rescaled = Sampler(model, steps=4, solver="ddim").sample(noise=noise, num_images=3)
    clipped = Sampler(model, steps=4, threshold_percentile=None, solver="ddim").sample(noise=noise, num_images=3)
    levels = Sampler(model, steps=4, solver="ddim").noise_levels
    np.testing.assert_allclose(rescaled, reference_sample(model, noise, levels)[0], atol=1e-4)
    np.testing.assert_allclose(clipped, reference_sample(model, noise, levels, percentile=None)[0], atol=1e-4)
    saturated = [np.mean(np.abs(images) > 0.999) for images in (rescaled, clipped)]  # shares of pixels at +-1
    assert saturated[0] < 0.05 < 0.5 < saturated[1], saturated


@pytest.mark.parametrize("condition", ["vector", "sequence", "none"])
def test_other_condition_kinds_sample(condition):
    model = build_unet(tiny(condition=condition, channels=3, cross_attention=[False, condition != "none"]))
    randomize_weights(model)
    sampler = Sampler(model, steps=2, guidance=3.0)
    if condition == "none":
        conditions = None
        images = sampler.sample(num_images=2, seed=0)
    else:
        shape = (2, 6) if condition == "vector" else (2, 3, 6)
        conditions = np.random.default_rng(0).standard_normal(shape).astype("float32")
        images = sampler.sample(conditions, seed=0)
    assert images.shape == (2, 8, 8, 3)
    expected, _ = reference_sample(model, sampler.noise(2, seed=0), sampler.noise_levels, conditions, 3.0)
    np.testing.assert_allclose(images, expected, atol=1e-4)


def test_the_same_seed_gives_the_same_images_and_another_seed_does_not(class_model):
    sampler = Sampler(class_model, steps=3, guidance=2.0)
    labels = np.array([1, 2, 3])
    first, again = sampler.sample(labels, seed=7), sampler.sample(labels, seed=7)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - sampler.sample(labels, seed=8)).max() > 1e-3


def test_batching_does_not_change_the_images(class_model):
    labels = np.array([1, 2, 3, 1, 2])
    whole = Sampler(class_model, steps=3, guidance=2.0).sample(labels, seed=3)
    in_pieces = Sampler(class_model, steps=3, guidance=2.0, batch_size=2).sample(labels, seed=3)
    np.testing.assert_allclose(whole, in_pieces, atol=1e-5)


def test_guidance_changes_the_output(class_model):
    labels = np.array([1, 2, 3])
    plain = Sampler(class_model, steps=3, guidance=1.0).sample(labels, seed=0)
    guided = Sampler(class_model, steps=3, guidance=4.0).sample(labels, seed=0)
    assert np.abs(plain - guided).max() > 1e-2


def test_guidance_one_equals_the_conditional_prediction_and_zero_the_unconditional(class_model):
    """g = 1 is the conditional model alone; g = 0 is the same as asking for class 0 ("no condition")."""
    labels = np.array([1, 2, 3])
    unconditional = Sampler(class_model, steps=3, guidance=1.0).sample(np.zeros(3, int), seed=5)
    guided_zero = Sampler(class_model, steps=3, guidance=0.0).sample(labels, seed=5)
    np.testing.assert_allclose(unconditional, guided_zero, atol=1e-5)


def test_callback_sees_every_step_with_its_noise_level_and_prediction(class_model):
    seen = []
    sampler = Sampler(class_model, steps=4, guidance=2.0, solver="ddim")
    final = sampler.sample(np.array([1, 2]), seed=0, callback=lambda step, level, x0: seen.append((step, level, x0)))
    assert [step for step, _, _ in seen] == [0, 1, 2, 3]
    np.testing.assert_allclose([level for _, level, _ in seen], sampling_noise_levels(4, 0.95)[:-1])
    _, predictions = reference_sample(
        class_model, sampler.noise(2, seed=0), sampler.levels_from(0.95), np.array([[1], [2]], "int32"), 2.0
    )
    for (_, _, x0), expected in zip(seen, predictions):
        np.testing.assert_allclose(x0, expected, atol=1e-4)  # the guided, thresholded prediction of that step
    np.testing.assert_allclose(seen[-1][2], final, atol=1e-6)  # the last step lands on x0_hat


def test_a_guidance_interval_guides_only_the_steps_inside_it(class_model):
    sampler = Sampler(class_model, steps=4, guidance=3.0, solver="ddim", guidance_interval=[0.2, 0.7])
    levels = sampler.noise_levels
    inside = [bool(0.2 <= level <= 0.7) for level in levels[:-1]]
    assert any(inside) and not all(inside)  # the interval cuts this grid: some steps guided, some not
    labels = np.array([1, 2, 3, 0])
    expected, _ = reference_sample(
        class_model, sampler.noise(4, seed=1), levels, labels.reshape(-1, 1).astype("int32"), 3.0, interval=(0.2, 0.7)
    )
    np.testing.assert_allclose(sampler.sample(labels, seed=1), expected, atol=1e-4)
    everywhere = Sampler(class_model, steps=4, guidance=3.0, solver="ddim").sample(labels, seed=1)
    assert np.abs(everywhere - expected).max() > 1e-3  # the interval changed the images


def test_a_guidance_interval_must_be_two_ordered_levels():
    with pytest.raises(ConfigError, match=r"sample.guidance_interval must be two noise levels \[low, high\]"):
        SampleConfig(guidance_interval=[0.8, 0.2])


@pytest.mark.parametrize("solver", ["ddim", "dpmpp_2m"])
def test_one_network_call_per_step_even_with_guidance(class_model, solver, monkeypatch):
    """Counted when the network really runs (inside the compiled graph too), not when it is traced."""
    calls = []

    def count(batch_size):
        calls.append(int(batch_size))
        return np.int32(0)

    def counting_model(inputs, training=False):
        images = inputs[0]
        counted = tf.numpy_function(count, [tf.shape(images)[0]], tf.int32, stateful=True)
        with tf.control_dependencies([counted]):
            return tf.identity(class_model(inputs, training=training))

    sampler = Sampler(class_model, steps=5, guidance=2.0, solver=solver)
    monkeypatch.setattr(sampler, "model", counting_model)
    sampler.sample(np.array([1, 2, 3]), seed=0)
    assert calls == [6] * 5  # five steps, each one call on the conditional and unconditional inputs stacked
    sampler.sample(np.array([1, 2, 3]), seed=1)
    assert calls == [6] * 10  # the compiled graph is reused: still one call per step


def test_a_wrong_class_id_is_refused(class_model):
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        Sampler(class_model, steps=2).sample(np.array([1, 4]))


def test_dynamic_threshold_rescales_only_images_that_overshoot():
    rng = np.random.default_rng(0)
    calm = rng.uniform(-0.9, 0.9, (1, 8, 8, 1)).astype("float32")
    wild = (3 * rng.standard_normal((1, 8, 8, 1))).astype("float32")
    result = keras.ops.convert_to_numpy(dynamic_threshold(np.concatenate([calm, wild]), 99.5))
    np.testing.assert_allclose(result[0], calm[0], atol=1e-6)
    assert np.abs(result[1]).max() == pytest.approx(1.0, abs=1e-5)
    limit = np.percentile(np.abs(wild), 99.5, method="linear")
    np.testing.assert_allclose(result[1], np.clip(wild[0], -limit, limit) / limit, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dynamic_threshold(wild, None)), np.clip(wild, -1, 1))
