"""The sampler: ranges, determinism, guidance, thresholding, the per-step callback, one call per step."""

import keras
import numpy as np
import pytest
from test_model import randomize_weights, tiny

from denoiser import Sampler, build_unet, dynamic_threshold, sampling_noise_levels


@pytest.fixture(scope="module")
def class_model():
    model = build_unet(tiny())
    randomize_weights(model, seed=2)
    return model


def test_samples_lie_in_range_and_have_the_model_shape(class_model):
    images = Sampler(class_model, steps=3, guidance=2.0).sample(np.array([1, 2, 3, 0]), seed=0)
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("condition", ["vector", "sequence", "none"])
def test_other_condition_kinds_sample(condition):
    model = build_unet(tiny(condition=condition, channels=3, cross_attention=[False, condition != "none"]))
    randomize_weights(model)
    sampler = Sampler(model, steps=2, guidance=3.0)
    if condition == "none":
        images = sampler.sample(num_images=2, seed=0)
    else:
        shape = (2, 6) if condition == "vector" else (2, 3, 6)
        images = sampler.sample(np.random.default_rng(0).standard_normal(shape), seed=0)
    assert images.shape == (2, 8, 8, 3) and np.abs(images).max() <= 1


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
    sampler = Sampler(class_model, steps=4, guidance=2.0)
    final = sampler.sample(np.array([1, 2]), seed=0, callback=lambda step, level, x0: seen.append((step, level, x0)))
    assert [step for step, _, _ in seen] == [0, 1, 2, 3]
    np.testing.assert_allclose([level for _, level, _ in seen], sampling_noise_levels(4)[:-1])
    assert all(x0.shape == (2, 8, 8, 1) and np.abs(x0).max() <= 1 for _, _, x0 in seen)
    np.testing.assert_allclose(seen[-1][2], final, atol=1e-6)  # the last step lands on x0_hat


@pytest.mark.parametrize("solver", ["ddim", "dpmpp_2m"])
def test_one_network_call_per_step_even_with_guidance(class_model, solver):
    calls = []

    class Counting(keras.Model):
        def call(self, inputs, training=False):
            calls.append(inputs[0].shape[0])
            return class_model(inputs, training=training)

    counting = Counting()
    counting.inputs = class_model.inputs  # describe_inputs reads the input signature
    sampler = Sampler(class_model, steps=5, guidance=2.0, solver=solver)
    sampler.model = counting
    sampler.sample(np.array([1, 2, 3]), seed=0)
    # Traced once into a graph: the Python call happens at trace time only, with cond + uncond stacked.
    assert calls and set(calls) == {6}
    assert len(calls) <= 2


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
