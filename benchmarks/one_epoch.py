"""Quality after a fixed budget: one epoch of Fashion-MNIST, and the training FLOPs it took.

    python benchmarks/one_epoch.py --run-dir runs/bench-one-epoch        # trains one epoch, then evaluates
    python benchmarks/one_epoch.py --run-dir runs/bench-one-epoch --num 500 --steps 20
    python benchmarks/one_epoch.py --preset fashion_mnist_budget --run-dir runs/bench-budget

A run directory that already holds its finished epoch is only evaluated (training resumes, so an
interrupted benchmark continues). The samples are scored as in `denoiser evaluate`.

The product's quality-per-compute target allows one epoch's training FLOPs of a 1.2M-parameter U-Net of
the seed's design (the `fashion_mnist` preset at base width 32); the table says how the run compares.
"""

from __future__ import annotations

import argparse
import os
import time

from common import save
from flops import step_flops

from denoiser import build_unet, resolve_config, train
from denoiser.cli import options
from denoiser.config import parse_override
from denoiser.evaluation.evaluator import summary_lines
from denoiser.evaluation.report import evaluate
from denoiser.rundir import read_log

TRAINING_IMAGES = 60_000  # Fashion-MNIST's training split
BUDGET_MODEL = {"base_width": 32}  # the seed's design at 1.2M parameters


def training_flops_per_image(config) -> tuple[float, int]:
    """FLOPs of one training step per image, and the parameter count, of the network `config` describes."""
    model = build_unet(config.model)
    return step_flops(model, config)["training_step_flops"], model.count_params()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fashion_mnist")
    options.add_config_overrides(parser)
    parser.add_argument("--run-dir", default=os.path.join("runs", "bench-one-epoch"))
    parser.add_argument("--num", type=int, default=500, help="samples to score, classes in turn (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the preset's)")
    parser.add_argument("--solver", help="sampling solver (default: the preset's)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "quality_one_epoch.json"))
    args = parser.parse_args(argv)

    config = resolve_config(args.preset, overrides=[*map(parse_override, args.overrides), {"train": {"epochs": 1}}])
    flops, parameters = training_flops_per_image(config)
    budget, budget_parameters = training_flops_per_image(
        resolve_config("fashion_mnist", overrides=[{"model": BUDGET_MODEL}])
    )

    start = time.perf_counter()
    train(config, args.run_dir)
    trained = time.perf_counter() - start
    results = evaluate(
        args.run_dir, num=args.num, steps=args.steps, guidance=args.guidance, solver=args.solver, progress=True
    )
    print("\n".join(summary_lines(results)))
    print(
        f"training: {parameters:,} parameters, {flops / 1e9:.3f} GFLOP per image, one epoch = "
        f"{TRAINING_IMAGES * flops / 1e12:.1f} TFLOP; budget ({budget_parameters:,}-parameter seed design): "
        f"{TRAINING_IMAGES * budget / 1e12:.1f} TFLOP ({flops / budget:.0%} of it used)"
    )
    log = read_log(os.path.join(args.run_dir, "log.csv"))
    save(
        args.out,
        {
            "preset": args.preset,
            "overrides": args.overrides,
            "epochs": 1,
            "parameters": parameters,
            "training_flops_per_image": flops,
            "budget_flops_per_image": budget,
            "share_of_budget": round(flops / budget, 3),
            "training_log": log,
            "seconds_this_call": round(trained, 1),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
