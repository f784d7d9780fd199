"""Solvers: order of accuracy on a toy problem with a closed-form answer, names, grids, network calls.

The toy: every pixel of the data is x0 ~ N(MEAN, SPREAD^2), independently. Then the best possible
network, E[x0 | x_t], is linear in x_t, and the probability-flow ODE keeps each pixel's standard
score z = (x - (1 - s) MEAN) / sqrt(variance(s)) fixed, so its solution is known at every level.
That linear network is `helpers.linear_network`.
"""

import numpy as np
import pytest
from helpers import MEAN, linear_network, randomize_weights, tiny, variance

from denoiser import Sampler, build_unet
from denoiser.schedule import karras_noise_levels, log_snr_noise_levels, sampling_noise_levels
from denoiser.solvers import DDIMSolver, DPMSolver2M, make_solver


def exact_solution(x, level, new_level):
    """Where the probability-flow ODE takes x from `level` to `new_level`."""
    score = (np.asarray(x, "float64") - (1 - level) * MEAN) / np.sqrt(variance(level))
    return (1 - new_level) * MEAN + np.sqrt(variance(new_level)) * score


# Start values whose predictions stay inside [-1, 1], so thresholding never acts.
START = np.linspace(-0.8, 0.8, 16, dtype="float32").reshape(1, 4, 4, 1)


def lambda_grid(steps: int, uneven: bool, top: float = 0.8, bottom: float = 0.05) -> np.ndarray:
    """Levels from `top` to `bottom` with steps in lambda all equal, or alternately 1 and 2 units long.

    It stops short of s = 0, where lambda is infinite, so that the order shows cleanly. The uneven
    grid checks that the multistep solver weighs its extrapolation by the ratio of step lengths.
    """
    widths = np.where(np.arange(steps) % 2 == 1, 2.0, 1.0) if uneven else np.ones(steps)
    start, end = np.log((1 - top) / top), np.log((1 - bottom) / bottom)
    lambdas = start + (end - start) * np.concatenate([[0.0], np.cumsum(widths)]) / widths.sum()
    return (1 / (1 + np.exp(lambdas))).astype("float32")


@pytest.mark.parametrize("uneven", [False, True], ids=["even", "uneven"])
@pytest.mark.parametrize("solver, order", [("ddim", 1), ("dpmpp_2m", 2)])
def test_doubling_the_steps_divides_the_error_by_two_to_the_order(solver, order, uneven):
    sampler = Sampler(linear_network(), steps=4, solver=solver)
    exact = exact_solution(START, 0.8, 0.05)
    errors = np.array(
        [np.abs(sampler.solve(START, lambda_grid(steps, uneven)) - exact).max() for steps in (16, 32, 64)]
    )
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(observed - order) < 0.25), (errors, observed)


@pytest.mark.parametrize("uneven", [False, True], ids=["even", "uneven"])
@pytest.mark.parametrize("solver", ["ddim", "dpmpp_2m", "deis"])
def test_one_step_from_the_exact_path_errs_by_the_step_length_to_the_order_plus_one(solver, uneven):
    """The local error, free of the lower-order first steps that cap a multistep solver's whole-run order.

    Every step starts on the exact path, with the history of predictions made on it; from the third step
    on, halving the steps must divide each step's error by 2^(order + 1).
    """
    order = make_solver(solver, [0.5, 0.0]).order
    sampler = Sampler(linear_network(), steps=4)
    errors = []
    for steps in (16, 32, 64):  # more steps reach float32's rounding
        grid = lambda_grid(steps, uneven)
        stepper, worst = make_solver(solver, grid), 0.0
        for index in range(steps):
            x = exact_solution(START, grid[0], grid[index]).astype("float32")
            moved = stepper.step(index, x, sampler.denoise(x, float(grid[index])))
            if index >= 2:
                worst = max(worst, np.abs(moved - exact_solution(START, grid[0], grid[index + 1])).max())
        errors.append(worst)
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.round(observed) == order + 1), (errors, observed)  # deis, in sigma, gets there slowest: 3.6


def test_the_second_order_solver_is_far_closer_to_the_exact_samples():
    """Whole sampling runs down to s = 0 on the power grid, 20 steps each."""
    exact = exact_solution(START, 0.5, 0.0)
    errors = {
        solver: np.abs(
            Sampler(linear_network(), steps=20, max_level=0.5, solver=solver, spacing="power").sample(
                noise=START, num_images=1
            )
            - exact
        ).max()
        for solver in ("ddim", "dpmpp_2m")
    }
    assert errors["ddim"] < 0.05
    assert errors["dpmpp_2m"] < 0.05 * errors["ddim"], errors


def test_the_first_step_and_a_step_after_a_jump_back_are_ddim_steps():
    levels = np.array([0.9, 0.6, 0.3, 0.0])
    rng = np.random.default_rng(0)
    x, first, second = (rng.standard_normal((2, 3)).astype("float32") for _ in range(3))
    ddim, multistep = DDIMSolver(levels), DPMSolver2M(levels)
    np.testing.assert_allclose(multistep.step(0, x, first), ddim.step(0, x, first))
    np.testing.assert_allclose(multistep.step(0, x, second), ddim.step(0, x, second))  # index 0 again: no history
    assert np.abs(multistep.step(1, x, first) - ddim.step(1, x, first)).max() > 1e-3  # extrapolates from `second`
    np.testing.assert_allclose(multistep.step(2, x, first), first)  # the last step lands on the prediction


def test_a_prediction_that_never_changes_is_followed_exactly_by_every_solver():
    levels = sampling_noise_levels(5, 0.95)
    target = np.full((1, 2, 2, 1), 0.3, "float32")
    for name in ("ddim", "dpmpp_2m", "deis"):
        solver, x = make_solver(name, levels), np.ones_like(target)
        for index in range(5):
            x = solver.step(index, x, target)
        np.testing.assert_allclose(x, target, atol=1e-6)


def test_each_solver_brings_its_own_grid_unless_another_is_asked_for():
    model = build_unet(tiny())
    default = Sampler(model, steps=10)  # deis
    np.testing.assert_allclose(default.noise_levels, karras_noise_levels(10, 0.95))
    np.testing.assert_allclose(Sampler(model, steps=10, solver="ddim").noise_levels, sampling_noise_levels(10, 0.95))
    np.testing.assert_allclose(Sampler(model, steps=10, solver="dpmpp_2m").noise_levels, log_snr_noise_levels(10, 0.95))
    np.testing.assert_allclose(
        Sampler(model, steps=10, solver="dpmpp_2m", spacing="power").noise_levels, sampling_noise_levels(10, 0.95)
    )
    levels = log_snr_noise_levels(10, 0.95)
    assert levels[0] == pytest.approx(0.95) and levels[-2] == pytest.approx(0.002) and levels[-1] == 0
    assert np.all(np.diff(levels) < 0)


def test_unknown_solver_or_spacing_lists_the_choices():
    model = build_unet(tiny())
    with pytest.raises(ValueError, match="'ddim', 'dpmpp_2m'"):
        Sampler(model, solver="euler")
    with pytest.raises(ValueError, match="power, log_snr"):
        Sampler(model, spacing="cosine")


@pytest.mark.parametrize("solver", ["ddim", "dpmpp_2m", "deis"])
def test_every_solver_is_deterministic_under_a_seed(solver):
    """(That each takes one network call per step is checked in test_sampler.py.)"""
    model = build_unet(tiny())
    randomize_weights(model, seed=2)
    sampler = Sampler(model, steps=4, guidance=2.0, solver=solver)
    labels = np.array([1, 2, 3])
    first, again = sampler.sample(labels, seed=4), sampler.sample(labels, seed=4)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - sampler.sample(labels, seed=5)).max() > 1e-3
