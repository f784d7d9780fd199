"""The noise schedule: noising, the training distributions of noise levels, the sampling grid."""

import numpy as np
import pytest
from keras import ops

from denoiser import add_noise, sampling_noise_levels, training_noise_levels
from denoiser.schedule import MAX_LEVEL, MIN_LEVEL, TRAINING_DISTRIBUTIONS


def test_noising_is_a_straight_line_from_image_to_noise():
    image, noise = np.full((1, 2, 2, 1), 0.5), np.full((1, 2, 2, 1), -2.0)
    assert np.allclose(add_noise(image, noise, 0.0), image)
    assert np.allclose(add_noise(image, noise, 1.0), noise)
    assert np.allclose(add_noise(image, noise, 0.25), 0.75 * 0.5 + 0.25 * -2.0)


def levels_of(distribution, count=200_000):
    uniform = np.random.default_rng(0).uniform(0, 1, count).astype("float32")
    return ops.convert_to_numpy(training_noise_levels(uniform, distribution))


def test_the_seeds_folded_normal_puts_most_training_near_clean_images():
    levels = levels_of("folded_normal")
    # Truncated: draws beyond the range sit at its ends, P(|z| > 3 MAX_LEVEL) of them at the top.
    assert levels.min() == pytest.approx(MIN_LEVEL) and levels.max() == pytest.approx(MAX_LEVEL)
    assert (levels == levels.max()).mean() == pytest.approx(0.00273, abs=0.0004)
    # |z| / 3 with z ~ N(0, 1): median 0.6745 / 3, mean sqrt(2 / pi) / 3.
    assert np.median(levels) == pytest.approx(0.6745 / 3, abs=0.005)
    assert levels.mean() == pytest.approx(np.sqrt(2 / np.pi) / 3, abs=0.005)
    assert (levels < 0.5).mean() == pytest.approx(0.8664, abs=0.005)  # P(|z| < 1.5)


def test_logit_normal_centres_on_the_middle_and_uniform_is_flat():
    logit = levels_of("logit_normal")
    assert np.median(logit) == pytest.approx(0.5, abs=0.01)
    assert ((logit > 0.27) & (logit < 0.73)).mean() == pytest.approx(0.68, abs=0.02)  # sigmoid(+-1)
    uniform = levels_of("uniform")
    assert np.histogram(uniform, bins=10, range=(0, 1))[0].std() / len(uniform) < 0.002


@pytest.mark.parametrize("location, scale", [(-1.0, 1.0), (0.5, 1.6), (-2.0, 0.5)])
def test_logit_normal_levels_centre_on_sigmoid_of_the_location_and_spread_with_the_scale(location, scale):
    uniform = np.random.default_rng(0).uniform(0, 1, 200_000).astype("float32")
    levels = ops.convert_to_numpy(training_noise_levels(uniform, "logit_normal", location, scale))
    assert np.median(levels) == pytest.approx(1 / (1 + np.exp(-location)), abs=0.005)
    logits = np.log(levels / (1 - levels))  # location + scale * z, the draws not clipped at the range's ends
    inside = (levels > MIN_LEVEL) & (levels < MAX_LEVEL)
    assert np.percentile(logits[inside], 84.13) - np.median(logits) == pytest.approx(scale, rel=0.02)  # one sigma


def test_logit_normal_defaults_reproduce_the_plain_sigmoid_exactly():
    uniform = np.random.default_rng(1).uniform(0, 1, 10_000).astype("float32")
    normal = 1.4142135 * ops.erfinv(ops.clip(2.0 * uniform - 1.0, -0.999999, 0.999999))
    before = ops.convert_to_numpy(ops.clip(ops.sigmoid(normal), MIN_LEVEL, MAX_LEVEL))  # the code before the switch
    np.testing.assert_array_equal(ops.convert_to_numpy(training_noise_levels(uniform, "logit_normal")), before)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(training_noise_levels(uniform, "logit_normal", 0.0, 1.0)), before
    )


def test_location_and_scale_leave_the_other_distributions_alone():
    uniform = np.random.default_rng(2).uniform(0, 1, 1000).astype("float32")
    for distribution in ("folded_normal", "uniform"):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(training_noise_levels(uniform, distribution, -1.0, 2.0)),
            ops.convert_to_numpy(training_noise_levels(uniform, distribution)),
        )


def test_unknown_distribution_lists_the_choices():
    with pytest.raises(ValueError, match="|".join(TRAINING_DISTRIBUTIONS)):
        training_noise_levels(np.zeros(3, "float32"), "cosine")


@pytest.mark.parametrize("steps", [1, 5, 20, 35])
def test_sampling_grid_falls_from_max_level_to_exactly_zero(steps):
    levels = sampling_noise_levels(steps, max_level=0.95)
    assert len(levels) == steps + 1
    assert levels[0] == pytest.approx(0.95) and levels[-1] == 0.0
    assert np.all(np.diff(levels) < 0)


def test_sampling_steps_shrink_towards_clean_images():
    steps = -np.diff(sampling_noise_levels(20, 0.95))
    assert steps[-1] < steps[0]


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_step_count_is_refused(bad):
    with pytest.raises(ValueError, match="steps"):
        sampling_noise_levels(bad, 0.95)
