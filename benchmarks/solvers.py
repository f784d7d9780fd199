"""How close each solver gets to the exact sampling ODE for a given number of network calls.

    python benchmarks/solvers.py runs/shapes                  # a run directory or a .keras checkpoint
    python benchmarks/solvers.py                              # trains a small shapes model first
    python benchmarks/solvers.py runs/fmnist --images 64 --steps 5 10 20 35 --reference-steps 200

Every image starts from the same noise. The distance is the mean absolute pixel difference (pixels
in [-1, 1]) to two references from that noise:
  - "ddim-200": the default DDIM loop with 200 steps on its power grid (the issue's yardstick);
  - "2m-200": DPM-Solver++(2M) with 200 steps, even in log signal-to-noise ratio, which is much
    closer to the exact ODE solution: the power grid's first step from pure noise stays long even
    at 200 steps (0.95 -> 0.83), so "ddim-200" is itself off by the distance printed between them.
Each solver is run on both grids ("power" and "log_snr"); its own grid is marked with *.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import keras
import numpy as np

from denoiser import Sampler, resolve_config, train
from denoiser.schedule import SPACINGS
from denoiser.serialization import load_sampler
from denoiser.solvers import SOLVERS, solver_type
from denoiser.utils.files import write_json

RUNS = [(solver, spacing) for solver in SOLVERS for spacing in ("power", "log_snr")]


def small_shapes_model(steps: int) -> str:
    """Train the shapes preset for `steps` batches in a temporary run directory; returns its path."""
    run_dir = tempfile.mkdtemp(prefix="solvers-benchmark-")
    config = resolve_config("shapes", overrides=[{"train": {"epochs": 1, "steps_per_epoch": steps}}])
    print(f"No checkpoint given: training the shapes preset for {steps} steps in {run_dir}", file=sys.stderr)
    train(config, run_dir, verbose=0)
    return run_dir


def distance(images: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(images - reference).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "checkpoint", nargs="?", help="run directory or .keras file (default: train a small shapes model)"
    )
    parser.add_argument("--images", type=int, default=32, help="images, spread over the classes (default: 32)")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 35], help="network calls per image")
    parser.add_argument("--reference-steps", type=int, default=200)
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the run's)")
    parser.add_argument("--train-steps", type=int, default=300, help="training batches when no checkpoint is given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "solvers.json"))
    args = parser.parse_args(argv)

    checkpoint = args.checkpoint or small_shapes_model(args.train_steps)
    base = load_sampler(checkpoint, guidance=args.guidance)
    classes = base.model_config.num_classes
    labels = np.arange(args.images) % classes + 1 if base.model_config.condition == "class" else None
    condition = base.prepare_condition(labels, args.images)
    noise = base.noise(args.images, args.seed)

    samplers = {name: Sampler(base.model, base.settings, steps=1, solver=name) for name in SOLVERS}

    def run(solver: str, spacing: str, steps: int) -> np.ndarray:
        return samplers[solver].solve(noise, SPACINGS[spacing](steps, base.max_level), condition)

    start = time.perf_counter()
    references = {
        f"ddim-{args.reference_steps}": run("ddim", "power", args.reference_steps),
        f"2m-{args.reference_steps}": run("dpmpp_2m", "log_snr", args.reference_steps),
    }
    rows = []
    for solver, spacing in RUNS:
        for steps in args.steps:
            images = run(solver, spacing, steps)
            rows.append(
                {
                    "solver": solver,
                    "spacing": spacing,
                    "steps": steps,
                    **{f"to_{name}": round(distance(images, ref), 5) for name, ref in references.items()},
                }
            )
    between = distance(*references.values())

    print(
        f"Mean |pixel difference| to a {args.reference_steps}-step reference from the same noise "
        f"({args.images} images, guidance {base.guidance}); * = the solver's own grid."
    )
    for name in references:
        print(f"\nreference {name}")
        print(f"{'solver':<10}{'grid':<10}" + "".join(f"{steps:>9}" for steps in args.steps))
        for solver, spacing in RUNS:
            own = "*" if solver_type(solver).spacing == spacing else " "
            cells = [row[f"to_{name}"] for row in rows if row["solver"] == solver and row["spacing"] == spacing]
            print(f"{solver:<10}{spacing + own:<10}" + "".join(f"{cell:>9.4f}" for cell in cells))
    print(f"\ndistance between the two references: {between:.4f}   ({time.perf_counter() - start:.0f} s)")

    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    write_json(
        args.out,
        {
            "machine": machine,
            "checkpoint": os.path.abspath(checkpoint) if args.checkpoint else None,
            "images": args.images,
            "guidance": base.guidance,
            "seed": args.seed,
            "reference_steps": args.reference_steps,
            "distance_between_references": round(between, 5),
            "results": rows,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
