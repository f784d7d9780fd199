"""`denoiser evaluate` runs: sample, score, write the JSON and print the summary."""

from __future__ import annotations

import argparse

from denoiser.evaluation.evaluator import summary_lines
from denoiser.evaluation.report import evaluate


def run(args: argparse.Namespace) -> None:
    results = evaluate(
        args.checkpoint,
        num=args.num,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        solver=args.solver,
        inception=args.inception,
        out=args.out,
        nearest=args.nearest,
        progress=True,
    )
    print("\n".join(summary_lines(results)))
    print(f"Wrote {results['out']}")
