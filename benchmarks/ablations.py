"""What matters for quality per compute: each lever trained at the same budget and seed, side by side.

    KERAS_HOME=... python benchmarks/ablations.py --budget fashion_mnist --variants baseline cosine
    python benchmarks/ablations.py --budget shapes --variants baseline winners
    python benchmarks/ablations.py --table           # the markdown table of results/ablations.json

A variant is the budget's recipe as it stood before this table (`BASELINES`, every lever pinned to its old
setting, so the row means the same after the presets change) plus a few `--set` overrides. Each one trains
into RUNS/<budget>/<variant> (rerunning resumes or just re-scores a finished run), is scored like
`denoiser evaluate` (the same 500 samples: same noise, classes in turn, 20 steps of the run's solver and
guidance), and draws a picture row from the same noise into results/ablations/<budget>-<variant>.png.
results/ablations.json keeps every variant measured so far; a new measurement replaces its old entry.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from common import save
from one_epoch import TRAINING_IMAGES, training_flops_per_image

from denoiser import load_sampler, resolve_config, train
from denoiser.config import parse_override
from denoiser.evaluation.report import evaluate
from denoiser.rundir import read_log
from denoiser.utils.images import to_uint8
from denoiser.utils.plotting import save_grid

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "ablations.json")
PICTURES = os.path.join(HERE, "results", "ablations")

# The recipes as they stood before this table: the preset with every lever at its old value.
OLD_LEVERS = [
    "sample.solver=ddim",  # every variant is scored by the same sampler: 20 DDIM steps, guidance 2
    "sample.steps=20",
    "sample.guidance=2.0",
    "train.lr_decay=none",
    "train.warmup_fraction=null",
    "model.preconditioning=none",
    "data.loss_weighting=none",
]
BASELINES = {
    "fashion_mnist": ("fashion_mnist_fast", ["train.warmup_steps=200", "data.noise_distribution=uniform", *OLD_LEVERS]),
    "shapes": ("shapes", ["train.warmup_steps=100", "data.noise_distribution=uniform", *OLD_LEVERS]),
}

# name: (what it changes, overrides on top of the baseline)
VARIANTS = {
    "baseline": ("the recipe before this table", []),
    "seed1": ("the baseline with another training seed (run-to-run noise)", ["train.seed=1"]),
    "cosine": (
        "learning rate decays to 0 (cosine) after a warm-up of 10% of the run",
        [
            "train.lr_decay=cosine",
            "train.warmup_fraction=0.1",
        ],
    ),
    "linear": (
        "learning rate decays to 0 (linear) after a warm-up of 10% of the run",
        [
            "train.lr_decay=linear",
            "train.warmup_fraction=0.1",
        ],
    ),
    "precond": ("EDM-style preconditioning of the x0 prediction", ["model.preconditioning=edm"]),
    "precond_weighted": (
        "preconditioning and the loss weighted by 1 / c_out (unit-scale error at every level)",
        [
            "model.preconditioning=edm",
            "data.loss_weighting=edm",
        ],
    ),
    "min_snr": ("loss weighted by min(SNR, 5)^(1/2) (Min-SNR-5 for an L1 loss)", ["data.loss_weighting=min_snr"]),
    "logit_normal": ("logit-normal training levels instead of uniform", ["data.noise_distribution=logit_normal"]),
    "no_ema": ("no weight averaging", ["train.ema_decay=0"]),
    "lr2e-3": ("twice the learning rate (2e-3)", ["train.learning_rate=2e-3"]),
    "three_epochs": ("half the epochs (shapes: 3 of 6)", ["train.epochs=3"]),
    "three_epochs_cosine": (
        "half the epochs, the learning rate decaying to 0 (cosine, 5% warm-up)",
        [
            "train.epochs=3",
            "train.lr_decay=cosine",
            "train.warmup_fraction=0.05",
        ],
    ),
    "three_epochs_lr2e-3": (
        "half the epochs at twice the learning rate (2e-3)",
        [
            "train.epochs=3",
            "train.learning_rate=2e-3",
        ],
    ),
    "three_epochs_lr3e-3": (
        "half the epochs at three times the learning rate (3e-3)",
        [
            "train.epochs=3",
            "train.learning_rate=3e-3",
        ],
    ),
}


def variant_config(budget: str, variant: str, extra: list[str] = ()):
    preset, baseline = BASELINES[budget]
    overrides = [*baseline, *VARIANTS[variant][1], *extra]
    return resolve_config(preset, overrides=[parse_override(text) for text in overrides]), overrides


def picture_row(run_dir: str, path: str, per_class: int = 2) -> None:
    """One row per class of `per_class` samples from the same noise (seed 0) for every variant."""
    sampler = load_sampler(run_dir)
    classes = np.repeat(np.arange(1, len(sampler.class_names) + 1), per_class)
    images = sampler.sample(classes, seed=0)
    save_grid(to_uint8(images), path, rows=1, pixels_per_cell=42)


def measure(budget: str, variant: str, runs: str, num: int, extra: list[str]) -> dict:
    config, overrides = variant_config(budget, variant, extra)
    run_dir = os.path.join(runs, budget, variant)
    flops, parameters = training_flops_per_image(config)
    start = time.perf_counter()
    train(config, run_dir, verbose=2)
    trained = time.perf_counter() - start
    results = evaluate(run_dir, num=num, nearest=0)
    os.makedirs(PICTURES, exist_ok=True)
    picture = os.path.join(PICTURES, f"{budget}-{variant}.png")
    picture_row(run_dir, picture)
    log = read_log(os.path.join(run_dir, "log.csv"))
    batch = config.train.batch_size
    # one pass: Fashion-MNIST's training split, or the preset's data.num_images (shapes)
    steps_per_epoch = config.train.steps_per_epoch or (config.data.num_images or TRAINING_IMAGES) // batch
    images = len(log) * steps_per_epoch * batch
    return {
        "budget": budget,
        "variant": variant,
        "description": VARIANTS[variant][0],
        "overrides": overrides,
        "parameters": parameters,
        "training_flops": flops * images,
        "training_flops_per_image": flops,
        "training_seconds_this_call": round(trained, 1),
        "training_seconds": sum(float(row.get("seconds") or 0) for row in log),
        "final_loss": float(log[-1]["loss"]) if log else None,
        "picture": os.path.relpath(picture, HERE),
        **{
            key: results[key]
            for key in (
                "conditional_accuracy",
                "classifier_fd",
                "classifier_fd_real",
                "steps",
                "guidance",
                "solver",
                "num_samples",
                "seconds",
            )
        },
    }


def load_results() -> list[dict]:
    if not os.path.exists(RESULTS):
        return []
    with open(RESULTS) as handle:
        return json.load(handle)["results"]


def table(rows: list[dict]) -> str:
    lines = [
        "| budget | variant | what it changes | training FLOPs | conditional accuracy | classifier FD (floor) | "
        "FD / floor | training s | samples from the same noise |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        flops = f"{row['training_flops'] / 1e12:.1f} TFLOP"
        lines.append(
            f"| {row['budget']} | `{row['variant']}` | {row['description']} | {flops} | "
            f"{row['conditional_accuracy']:.3f} | {row['classifier_fd']:.1f} ({row['classifier_fd_real']:.2f}) | "
            f"{row['classifier_fd'] / row['classifier_fd_real']:.1f}x | {row['training_seconds']:.0f} | "
            f"![{row['variant']}]({row['picture']}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BASELINES), default="fashion_mnist")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=[])
    parser.add_argument("--set", dest="extra", action="append", default=[], help="another override for every variant")
    parser.add_argument("--runs", default=os.path.join("runs", "ablations"))
    parser.add_argument("--num", type=int, default=500, help="samples to score (default: %(default)s)")
    parser.add_argument("--table", action="store_true", help="print the table of what was measured and stop")
    args = parser.parse_args(argv)

    rows = load_results()
    for variant in args.variants:
        row = measure(args.budget, variant, args.runs, args.num, args.extra)
        rows = [old for old in rows if (old["budget"], old["variant"]) != (args.budget, variant)] + [row]
        save(RESULTS, {"results": rows})
        print(table([row]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
