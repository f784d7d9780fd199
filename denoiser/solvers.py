"""Solvers: how the sampler moves from one noise level to the next, given the network's prediction.

Deterministic sampling follows the probability-flow ODE of straight-line noising
`x_t = (1 - s) * x0 + s * eps`. Its velocity is the expected `eps - x0` given x_t, which in terms of
the network's prediction x0_hat(x, s) is

    dx/ds = (x - x0_hat(x, s)) / s.

The part `x / s` is linear and can be integrated exactly; only x0_hat has to be approximated. In the
log signal-to-noise ratio `lambda = log((1 - s) / s)` the exact solution over one step reads

    x_next = (s_next / s) * x + s_next * integral of e^lambda * x0_hat(lambda) over [lambda, lambda_next].

- "ddim" holds x0_hat constant over the step, which gives the DDIM update
  `x_next = (s_next / s) * x + (1 - s_next / s) * x0_hat`, i.e. `((s - s_next) * x0_hat + s_next * x) / s`.
  First order: doubling the steps halves the error.
- "dpmpp_2m" (DPM-Solver++(2M), Lu et al. 2022) uses the same update, but with x0_hat extrapolated
  linearly in lambda from this step's and the previous step's predictions to the middle of the step:
  `x0_mid = x0_hat + (x0_hat - x0_previous) * h / (2 * h_previous)`, h = lambda_next - lambda. Second
  order (doubling the steps quarters the error) at no extra network call. The first step has no
  previous prediction and the last one ends at s = 0 (lambda = infinity); both are DDIM steps.

- "deis" (DEIS's tAB, Zhang & Chen 2022; iPNDM is its fixed-coefficient cousin) divides by (1 - s), which
  turns the line into `y = x_t / (1 - s) = x0 + sigma * eps` with sigma = s / (1 - s), and the ODE into
  `dy/dsigma = eps_hat = (y - x0_hat) / sigma`: no linear part is left, so one step integrates eps_hat
  over [sigma, sigma_next]. eps_hat is taken as the polynomial (in sigma) through the predictions of the
  last three steps and integrated exactly: third-order Adams-Bashforth with steps of any length. The first
  two steps use the history they have (first, then second order), and the last step may end at sigma = 0.
  Made for 5 network calls or fewer, on EDM's grid (spacing "karras").

Each solver names the grid of noise levels it is meant for (`spacing`, see schedule.py): DDIM keeps
the project's power grid, dense near s = 0; DPM-Solver++ uses steps even in lambda, as in its paper.
On the trained shapes model, 10 such steps land closer to the exact ODE solution than 35 DDIM steps
on the power grid (benchmarks/solvers.py), whose first step from pure noise is very long.

Solvers are plain NumPy: they receive predictions and return the next images, so the sampler makes
the network calls (guidance, thresholding, batching) and any solver can be used for editing too.
"""

from __future__ import annotations

import numpy as np


def log_signal_to_noise(levels) -> np.ndarray:
    """lambda = log((1 - s) / s): -inf at s = 1 (pure noise), +inf at s = 0 (the clean image)."""
    levels = np.asarray(levels, dtype="float64")
    with np.errstate(divide="ignore"):
        return np.log1p(-levels) - np.log(levels)


def ddim_update(x, x0_hat, level: float, next_level: float) -> np.ndarray:
    """Move x from `level` to `next_level` along the line through x0_hat: exact if x0_hat were right."""
    keep = float(next_level) / float(level)
    return (keep * x + (1.0 - keep) * x0_hat).astype("float32")


class DDIMSolver:
    """First order: the prediction is held constant over each step. One network call per step."""

    order = 1
    spacing = "power"

    def __init__(self, levels):
        self.levels = np.asarray(levels, dtype="float64")

    def step(self, index: int, x: np.ndarray, x0_hat: np.ndarray) -> np.ndarray:
        """x at `levels[index]` and its prediction x0_hat -> x at `levels[index + 1]`."""
        return ddim_update(x, x0_hat, self.levels[index], self.levels[index + 1])


class DPMSolver2M(DDIMSolver):
    """Second order multistep: the prediction is extrapolated from the last two steps (DPM-Solver++(2M))."""

    order = 2
    spacing = "log_snr"

    def __init__(self, levels):
        super().__init__(levels)
        self.lambdas = log_signal_to_noise(self.levels)
        self.previous: tuple[int, np.ndarray] | None = None  # (index, x0_hat) of the last step taken

    def step(self, index: int, x: np.ndarray, x0_hat: np.ndarray) -> np.ndarray:
        estimate = x0_hat
        # Extrapolate only from the step just before on the grid (an editor that jumps back starts afresh).
        if self.previous is not None and self.previous[0] == index - 1 and self.levels[index + 1] > 0:
            h = self.lambdas[index + 1] - self.lambdas[index]
            h_previous = self.lambdas[index] - self.lambdas[index - 1]
            estimate = x0_hat + (x0_hat - self.previous[1]) * float(h / (2.0 * h_previous))
        self.previous = (index, x0_hat)
        return ddim_update(x, estimate, self.levels[index], self.levels[index + 1])


def adams_bashforth_weights(nodes, start: float, end: float) -> np.ndarray:
    """The integrals over [start, end] of the Lagrange polynomials through `nodes` (one weight per node).

    Integrating the polynomial through (node_j, f_j) gives sum_j weight_j * f_j. Gauss-Legendre with three
    points is exact for these polynomials (degree <= 2, three nodes at most).
    """
    nodes = np.asarray(nodes, dtype="float64")
    middle, half = (start + end) / 2.0, (end - start) / 2.0
    points = middle + half * np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)])
    point_weights = half * np.array([5.0, 8.0, 5.0]) / 9.0
    weights = []
    for j, node in enumerate(nodes):
        others = np.delete(nodes, j)
        basis = np.prod([(points - other) / (node - other) for other in others], axis=0) if len(others) else 1.0
        weights.append(float(np.sum(point_weights * basis)))
    return np.array(weights)


class DEISSolver(DDIMSolver):
    """Third-order multistep in sigma = s / (1 - s) on eps_hat (see the module docstring). One call per step."""

    order = 3
    spacing = "karras"

    def __init__(self, levels):
        super().__init__(levels)
        with np.errstate(divide="ignore"):
            self.sigmas = self.levels / (1.0 - self.levels)
        self.history: list[tuple[int, np.ndarray]] = []  # (index, eps_hat) of the last steps taken, oldest first

    def step(self, index: int, x: np.ndarray, x0_hat: np.ndarray) -> np.ndarray:
        y = x.astype("float64") / (1.0 - self.levels[index])
        eps_hat = (y - x0_hat) / self.sigmas[index]
        # Use only the steps just before on the grid (an editor that jumps back starts afresh).
        self.history = [(i, e) for i, e in self.history if i >= index - self.order + 1 and i < index]
        if self.history and self.history[-1][0] != index - 1:
            self.history = []
        self.history.append((index, eps_hat))
        weights = adams_bashforth_weights(
            [self.sigmas[i] for i, _ in self.history], self.sigmas[index], self.sigmas[index + 1]
        )
        y_next = y + sum(weight * e for weight, (_, e) in zip(weights, self.history))
        return ((1.0 - self.levels[index + 1]) * y_next).astype("float32")


SOLVERS = {"ddim": DDIMSolver, "dpmpp_2m": DPMSolver2M, "deis": DEISSolver}  # the names config.Solver declares


def solver_type(name: str) -> type[DDIMSolver]:
    """The solver class called `name`; an unknown name is refused with the list of choices."""
    if name not in SOLVERS:
        raise ValueError(f"Unknown solver {name!r}; choose one of {', '.join(SOLVERS)}.")
    return SOLVERS[name]


def make_solver(name: str, levels) -> DDIMSolver:
    """A fresh solver (with no memory of earlier steps) for the grid of noise levels `levels`."""
    return solver_type(name)(levels)
