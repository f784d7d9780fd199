"""Quality after a fixed budget: one epoch of Fashion-MNIST with the `fashion_mnist` preset.

    python benchmarks/one_epoch.py --run-dir runs/bench-one-epoch        # trains one epoch, then evaluates
    python benchmarks/one_epoch.py --run-dir runs/bench-one-epoch --num 500 --steps 20

A run directory that already holds its finished epoch is only evaluated (training resumes, so an
interrupted benchmark continues). The samples are scored as in `denoiser evaluate`.
"""

from __future__ import annotations

import argparse
import os
import time

from common import save

from denoiser import resolve_config, train
from denoiser.evaluation import evaluate, summary_lines
from denoiser.training import read_log


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=os.path.join("runs", "bench-one-epoch"))
    parser.add_argument("--num", type=int, default=500, help="samples to score, classes in turn (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    parser.add_argument("--solver", default="ddim")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "quality_one_epoch.json"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    train(resolve_config("fashion_mnist", overrides=[{"train": {"epochs": 1}}]), args.run_dir)
    trained = time.perf_counter() - start
    results = evaluate(args.run_dir, args.num, args.steps, solver=args.solver, progress=True, nearest=8)
    print("\n".join(summary_lines(results)))
    log = read_log(os.path.join(args.run_dir, "log.csv"))
    save(args.out, {"preset": "fashion_mnist", "epochs": 1, "training_log": log,
                    "seconds_this_call": round(trained, 1), "results": results})


if __name__ == "__main__":
    main()
