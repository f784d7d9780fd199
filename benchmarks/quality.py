"""Sample quality against the number of sampling steps, for one trained class-conditional run.

    python benchmarks/quality.py runs/fashion_mnist                        # steps 5 10 20 35 50, ddim and dpmpp_2m
    python benchmarks/quality.py runs/shapes --steps 10 20 --solvers ddim --num 400
    python benchmarks/quality.py runs/fashion_mnist --steps 5 --solvers deis dpmpp_3m --spacing power

For every solver and step count the same `--num` samples (same noise, classes in turn) are scored by
the package's classifier (denoiser/evaluation.py): conditional accuracy and the classifier Frechet
distance to the test split. The last row scores real training images the same way: the floor.
"""

from __future__ import annotations

import argparse
import os

from common import save

from denoiser.evaluation.evaluator import Evaluation
from denoiser.serialization import find_checkpoint, load_sampler


def quality_rows(run: str, steps_list, solvers, num: int, seed: int = 0, guidance=None, spacing=None) -> list[dict]:
    checkpoint, run_directory = find_checkpoint(run)
    config = run_directory.run_config()
    evaluation = Evaluation(config, progress=True)
    rows = []
    for solver in solvers:
        for steps in steps_list:
            sampler = load_sampler(checkpoint, steps=steps, guidance=guidance, solver=solver, spacing=spacing)
            result = evaluation.run(sampler, num, seed=seed, nearest=0)
            result["spacing"] = sampler.spacing
            rows.append(
                {
                    key: result[key]
                    for key in (
                        "solver",
                        "spacing",
                        "steps",
                        "guidance",
                        "num_samples",
                        "conditional_accuracy",
                        "conditional_accuracy_real",
                        "classifier_fd",
                        "classifier_fd_real",
                        "seconds",
                    )
                }
            )
            print_row(rows[-1])
    return rows


def print_header() -> None:
    print(f"{'solver':<10}{'spacing':>8}{'steps':>6}{'samples':>9}{'accuracy':>10}{'classifier FD':>15}{'seconds':>9}")


def print_row(row: dict) -> None:
    print(
        f"{row['solver']:<10}{row['spacing']:>8}{row['steps']:>6}{row['num_samples']:>9}{row['conditional_accuracy']:>10.3f}"
        f"{row['classifier_fd']:>15.2f}{row['seconds']:>9.1f}",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory (or a checkpoint inside RUN/checkpoints/)")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 35, 50])
    parser.add_argument("--solvers", nargs="+", default=["ddim", "dpmpp_2m"])
    parser.add_argument("--num", type=int, default=500, help="samples per point (default: %(default)s)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the run's)")
    parser.add_argument("--spacing", help="the grid of noise levels (default: each solver's own)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "quality_steps.json"))
    args = parser.parse_args(argv)

    print_header()
    rows = quality_rows(args.run, args.steps, args.solvers, args.num, guidance=args.guidance, spacing=args.spacing)
    print(
        f"{'real':<10}{'':>8}{'':>6}{rows[0]['num_samples']:>9}{rows[0]['conditional_accuracy_real']:>10.3f}"
        f"{rows[0]['classifier_fd_real']:>15.2f}   (training images: the floor)"
    )
    save(args.out, {"run": os.path.abspath(args.run), "results": rows})


if __name__ == "__main__":
    main()
