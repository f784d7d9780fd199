"""Walks between two classes, or between two noises with the class fixed, on a class model (text models:
test_text_to_image.py); and class embeddings as a condition, which those walks go through."""

import numpy as np
import pytest
from helpers import tiny

from denoiser import Sampler, build_unet, generate, interpolate


@pytest.fixture(scope="module")
def sampler(class_model):
    return Sampler(class_model, steps=3, guidance=2.0)


def test_class_embeddings_give_the_images_their_ids_give(sampler):
    ids = np.array([1, 3, 0, 2])
    from_ids = sampler.sample(condition=ids, seed=4)
    from_embeddings = sampler.sample(condition=sampler.class_embeddings(ids), seed=4)
    np.testing.assert_allclose(from_embeddings, from_ids, atol=1e-5)
    assert np.abs(from_ids[0] - from_ids[1]).max() > 1e-3  # the classes do steer the images apart


def test_a_walk_between_two_classes_starts_and_ends_at_each_class_from_the_same_noise(sampler):
    strip = interpolate(sampler, from_label=1, to_label="3", frames=4, seed=5)
    assert strip.shape == (4, 8, 8, 1)
    for frame, label in ((strip[0], 1), (strip[-1], 3)):
        alone, _, _ = generate(sampler, labels=[label], num_per_label=1, seed=5)
        np.testing.assert_allclose(frame, alone[0], atol=1e-5)
    between = interpolate(sampler, from_label=1, to_label=3, frames=3, seed=5)[1]
    assert min(np.abs(between - strip[0]).max(), np.abs(between - strip[-1]).max()) > 1e-3  # a point of its own


def test_a_walk_between_two_seeds_keeps_the_class(sampler):
    strip = interpolate(sampler, label=2, seeds=(1, 2), frames=3)
    for frame, seed in ((strip[0], 1), (strip[-1], 2)):
        alone, _, _ = generate(sampler, labels=[2], num_per_label=1, seed=seed)
        np.testing.assert_allclose(frame, alone[0], atol=1e-5)


@pytest.mark.parametrize(
    "walk",
    [
        dict(from_prompt="a red dress", to_prompt="a blue dress"),
        dict(from_label=1),
        dict(label=1),
        dict(from_label=1, to_label=2, seeds=(1, 2)),
        dict(from_label=1, to_label=2, label=3),
    ],
)
def test_a_class_model_names_only_its_own_walks(sampler, walk):
    with pytest.raises(ValueError) as error:
        interpolate(sampler, **walk)
    message = str(error.value)
    assert "class labels" in message and "`from_label`, `to_label`" in message and "prompt" not in message


def test_a_text_model_given_labels_names_its_prompts():
    text_sampler = Sampler(build_unet(tiny(condition="vector")), steps=2)
    with pytest.raises(ValueError) as error:
        interpolate(text_sampler, from_label=1, to_label=2)
    message = str(error.value)
    assert "`from_prompt`, `to_prompt`" in message and "label" not in message


def test_class_embeddings_of_another_width_are_refused(sampler):
    with pytest.raises(ValueError, match="shape"):
        sampler.sample(condition=np.zeros((2, 1, 5), "float32"))
