"""Evaluate a checkpoint or run directory into a JSON file: the Python API behind `denoiser evaluate`.

    >>> results = evaluate("runs/fashion_mnist", num=500)     # writes runs/fashion_mnist/evaluation/latest.json
    >>> print("\n".join(summary_lines(results)))

The scores and what they mean are evaluator.py's; this module finds the checkpoint and its run, loads the
sampler (serialization.load_sampler) and writes the results.
"""

from __future__ import annotations

import os

from denoiser import defaults
from denoiser.evaluation.evaluator import Evaluation
from denoiser.evaluation.metrics import MetricError
from denoiser.serialization import find_checkpoint, load_sampler
from denoiser.utils.files import write_json


def default_output(checkpoint: str, run) -> str:
    """RUN/evaluation/<checkpoint name>.json for a checkpoint in a run directory, else beside the checkpoint."""
    stem = os.path.splitext(os.path.basename(checkpoint))[0]
    folder = run.path if run is not None else os.path.dirname(os.path.abspath(checkpoint))
    return os.path.join(folder, "evaluation", f"{stem}.json")


def evaluate(
    path,
    *,
    num: int = defaults.EVALUATION_NUM,
    seed: int = 0,
    inception: bool = False,
    out: str | None = None,
    nearest: int = defaults.NEAREST,
    progress: bool = False,
    classifier=None,
    **settings,
) -> dict:
    """Evaluate a checkpoint or run directory; writes the results as JSON (and the memorization PNG).

    `settings` replace the run's sampling settings (steps=10, guidance=3.0, solver="dpmpp_2m"). Returns the
    results, with `out` (the JSON's path) added.
    """
    if num < 2:
        raise MetricError(f"Evaluation needs at least 2 samples, got `num` = {num}.")
    checkpoint, run = find_checkpoint(path)
    config = run.run_config() if run is not None else None
    if config is None:
        raise MetricError(
            f"{checkpoint} has no run directory with a config.yaml around it, so its data set is "
            "unknown; evaluate a run directory or a checkpoint inside RUN/checkpoints/."
        )
    out = out or default_output(checkpoint, run)
    evaluation = Evaluation(config, inception=inception, progress=progress, classifier=classifier)
    sampler = load_sampler(checkpoint, **settings)
    results = {"checkpoint": os.path.abspath(checkpoint)}
    results.update(evaluation.run(sampler, num, seed, nearest, picture=os.path.splitext(out)[0] + "-nearest.png"))
    write_json(out, results)
    return {**results, "out": out}
