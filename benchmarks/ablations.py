"""What matters for quality per compute: each lever trained at the same budget and seed, side by side.

    KERAS_HOME=... nohup python benchmarks/ablations.py --budget fashion_mnist_quarter \
        --queue baseline seed1 precond lr2e-3 > ablations.log 2>&1 &
    python benchmarks/ablations.py --table           # the markdown table of results/ablations.json

A variant is the budget's recipe as it stood before this table (`BASELINES`, every lever pinned to its old
setting, so the row means the same after the presets change) plus a few `--set` overrides. `fashion_mnist_quarter`
is the screening proxy: the same network for a quarter of the epoch's steps (see RESULTS.md for how its ranking
compares with the full budget's).

The queue runs the variants one after another and is made to be left alone in the background: each variant trains
into RUNS/<budget>/<variant> (a killed run resumes there when the queue is started again), and the moment it is
scored its row is written to results/ablations.json (atomically) with its picture row in results/ablations/. A
variant already scored with the same overrides and the same scoring is skipped, so rerunning the same command
finishes what is left.

Scoring is what users get: the preset's own solver, steps and guidance, 500 samples (the same noise, classes in
turn), from the averaged weights and from the raw training weights, each judged by two classifiers (judges.py)
against the test split, beside each judge's real-data floor.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

import numpy as np
from common import save
from judges import judge_samples, load_judges
from one_epoch import TRAINING_IMAGES, training_flops_per_image

from denoiser import resolve_config, train
from denoiser.config import parse_override
from denoiser.evaluation.evaluator import Evaluation
from denoiser.rundir import RunDirectory, read_log
from denoiser.sampler import Sampler
from denoiser.serialization import find_checkpoint, load_model
from denoiser.utils.images import to_uint8
from denoiser.utils.plotting import save_grid

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "ablations.json")
PICTURES = os.path.join(HERE, "results", "ablations")

# How rows are scored: round 2 scored with 20 DDIM steps at guidance 2 and the package's judge only; round 3 with
# the preset's sampler, averaged and raw weights, two judges. Rows of both rounds stay in the JSON.
SCORING = "preset sampler, averaged and raw weights, two judges"
FULL_EPOCH_STEPS = TRAINING_IMAGES // 32  # fashion_mnist_fast's batch of 32: 1,875 steps an epoch

# The recipes as they stood before this table: the preset with every lever at its old value.
OLD_LEVERS = [
    "train.lr_decay=none",
    "train.warmup_fraction=null",
    "model.preconditioning=none",
    "data.loss_weighting=none",
]
BASELINES = {
    "fashion_mnist": ("fashion_mnist_fast", ["train.warmup_steps=200", "data.noise_distribution=uniform", *OLD_LEVERS]),
    "fashion_mnist_quarter": (
        "fashion_mnist_fast",
        [
            "train.warmup_steps=200",
            "data.noise_distribution=uniform",
            *OLD_LEVERS,
            f"train.steps_per_epoch={FULL_EPOCH_STEPS // 4}",
        ],
    ),
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
    "ema0.995": (
        "a shorter weight average for a short run (decay 0.995: about the last 200 steps)",
        ["train.ema_decay=0.995"],
    ),
    "batch16": ("half the batch (16), so twice the weight updates for the same FLOPs", ["train.batch_size=16"]),
    "precond_rms": (
        "EDM-style preconditioning with data_std 0.83, Fashion-MNIST's pixel RMS in [-1, 1]",
        ["model.preconditioning=edm", "model.data_std=0.83"],
    ),
    "lr2e-3": ("twice the learning rate (2e-3)", ["train.learning_rate=2e-3"]),
    "folded_normal": (
        "the seed's training levels |z| / 3 (most effort on nearly clean images)",
        ["data.noise_distribution=folded_normal"],
    ),
    "logit_normal_shifted": (
        "logit-normal levels shifted towards clean images (location -0.7, scale 1.2: EDM's, for this data's scale)",
        ["data.noise_distribution=logit_normal", "data.noise_location=-0.7", "data.noise_scale=1.2"],
    ),
    "l2": ("a squared (L2) distance between x0_hat and x instead of L1", ["data.loss_norm=l2"]),
    "l2_min_snr": ("L2 with min(SNR, 5) weighting (Min-SNR-5)", ["data.loss_norm=l2", "data.loss_weighting=min_snr"]),
    "beta2_0.99": ("Adam's beta_2 0.99 (EDM2's) instead of 0.999", ["train.adam_beta_2=0.99"]),
    "label_dropout0.10": ("conditions dropped for guidance 10% of the time instead of 15%", ["data.label_dropout=0.1"]),
    "frequency100": (
        "the noise-level embedding's fastest sine at 100 cycles instead of 1,000",
        ["model.noise_embedding_max_frequency=100"],
    ),
    "cooldown0.2": (
        "the learning rate falls linearly to 0 over the last 20% of the run",
        ["train.cooldown_fraction=0.2"],
    ),
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


# Sampling levers, free of training: name: (what it changes, the sampler settings it replaces). Each is scored on
# a queued variant's trained network (`--sampling`), from its averaged weights, as the row VARIANT:LEVER.
SAMPLING_LEVERS = {
    "interval": (
        "guidance only at noise levels in [0.2, 0.85] (a guidance interval, EDM2's band)",
        {"guidance_interval": [0.2, 0.85]},
    ),
    "interval_g4": ("guidance 4 at noise levels in [0.2, 0.85]", {"guidance_interval": [0.2, 0.85], "guidance": 4.0}),
    "interval_low": ("guidance only at noise levels up to 0.6", {"guidance_interval": [0.0, 0.6]}),
    "no_threshold": ("a plain clip instead of dynamic thresholding", {"threshold_percentile": None}),
    "max_level0.99": ("sampling starts from noise level 0.99 instead of 0.95", {"max_level": 0.99}),
}


def variant_config(budget: str, variant: str, extra: list[str] = ()):
    preset, baseline = BASELINES[budget]
    overrides = [*baseline, *VARIANTS[variant][1], *extra]
    return resolve_config(preset, overrides=[parse_override(text) for text in overrides]), overrides


def picture_row(run_dir: str, path: str, per_class: int = 2, settings: dict | None = None) -> None:
    """One row per class of `per_class` samples from the same noise (seed 0) for every variant."""
    sampler = Sampler(load_model(find_checkpoint(run_dir)[0], ema=True), **(settings or {}))
    classes = np.repeat(np.arange(1, len(sampler.class_names) + 1), per_class)
    images = sampler.sample(classes, seed=0)
    save_grid(to_uint8(images), path, rows=1, pixels_per_cell=42)


def scores(run_dir: str, config, num: int, judges: dict, settings: dict | None = None, weights=("averaged", "raw")):
    """Sample `num` images (classes in turn, noise seed 0, the run's own sampler with `settings` replaced) from the
    averaged and from the raw weights, and score each batch with every judge; flat keys such as
    `averaged_second_fd`."""
    checkpoint, _ = find_checkpoint(run_dir)
    evaluation = Evaluation(config, classifier=judges["package"])
    classes, _ = evaluation.conditions(num, "class")
    real, real_ids = evaluation.training_images(num, seed=0)
    reference = evaluation.reference.in_memory().images
    row = {}
    for kind in weights:
        sampler = Sampler(load_model(checkpoint, ema=kind == "averaged"), **(settings or {}))
        samples = sampler.sample(classes, seed=0)
        row.update(solver=sampler.solver, steps=sampler.steps, guidance=sampler.guidance, num_samples=num)
        for judge, values in judge_samples(judges, samples, classes, real, real_ids, reference).items():
            row.update({f"{kind}_{judge}_{key}": value for key, value in values.items()})
    return row


def measure(budget: str, variant: str, runs: str, num: int, extra: list[str], judges: dict) -> dict:
    config, overrides = variant_config(budget, variant, extra)
    run_dir = os.path.join(runs, budget, variant)
    flops, parameters = training_flops_per_image(config)
    start = time.perf_counter()
    train(config, run_dir, verbose=2)
    trained = time.perf_counter() - start
    start = time.perf_counter()
    row_scores = scores(run_dir, config, num, judges)
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
        "scoring": SCORING,
        "parameters": parameters,
        "training_flops": flops * images,
        "training_flops_per_image": flops,
        "training_seconds_this_call": round(trained, 1),
        "training_seconds": sum(float(row.get("seconds") or 0) for row in log),
        "final_loss": float(log[-1]["loss"]) if log else None,
        "picture": os.path.relpath(picture, HERE),
        **row_scores,
        "seconds": round(time.perf_counter() - start, 1),
    }


def measure_sampling(budget: str, variant: str, lever: str, runs: str, num: int, judges: dict, trained: dict) -> dict:
    """A sampling lever on the trained network of `trained` (the variant's row): its averaged weights only."""
    description, settings = SAMPLING_LEVERS[lever]
    run_dir = os.path.join(runs, budget, variant)
    start = time.perf_counter()
    row_scores = scores(run_dir, RunDirectory(run_dir).run_config(), num, judges, settings, weights=("averaged",))
    picture = os.path.join(PICTURES, f"{budget}-{variant}-{lever}.png")
    picture_row(run_dir, picture, settings=settings)
    return {
        **{key: trained[key] for key in ("budget", "parameters", "training_flops", "training_flops_per_image")},
        "variant": f"{variant}:{lever}",
        "description": f"{trained['description']}; sampled with {description}",
        "overrides": lever_overrides(trained["overrides"], lever),
        "scoring": SCORING,
        "picture": os.path.relpath(picture, HERE),
        **row_scores,
        "seconds": round(time.perf_counter() - start, 1),
    }


def scored_row(rows: list[dict], budget: str, variant: str, overrides: list[str]) -> dict | None:
    """The row of `variant` scored this round with the same overrides, if there is one (the queue skips it)."""
    for row in rows:
        same = (row["budget"], row["variant"], row.get("scoring"), row["overrides"])
        if same == (budget, variant, SCORING, overrides):
            print(f"{budget}/{variant}: already scored, skipped", flush=True)
            return row
    return None


def load_results() -> list[dict]:
    if not os.path.exists(RESULTS):
        return []
    with open(RESULTS) as handle:
        return json.load(handle)["results"]


def table(rows: list[dict]) -> str:
    """Round 3's rows: each judge's accuracy and FD / floor, averaged weights (raw weights in brackets)."""
    lines = [
        "| budget | variant | what it changes | training FLOPs | package judge: accuracy, FD (x floor), averaged "
        "weights; raw weights | second judge: the same | samples from the same noise |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.get("scoring") != SCORING:
            continue
        judged = []
        for judge in ("package", "second"):
            text = []
            for weights in ("averaged", "raw"):
                if f"{weights}_{judge}_fd" in row:
                    fd, floor = row[f"{weights}_{judge}_fd"], row[f"{weights}_{judge}_fd_real"]
                    text.append(f"{row[f'{weights}_{judge}_accuracy']:.3f}, {fd:.3g} ({fd / floor:.1f}x)")
            judged.append("; raw ".join(text))
        lines.append(
            f"| {row['budget']} | `{row['variant']}` | {row['description']} | "
            f"{row['training_flops'] / 1e12:.1f} TFLOP | {judged[0]} | {judged[1]} | "
            f"![{row['variant']}]({row['picture']}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BASELINES), default="fashion_mnist_quarter")
    parser.add_argument("--queue", "--variants", nargs="+", choices=sorted(VARIANTS), default=[])
    parser.add_argument(
        "--sampling", nargs="*", choices=sorted(SAMPLING_LEVERS), default=[], help="sampling levers on each variant"
    )
    parser.add_argument("--set", dest="extra", action="append", default=[], help="another override for every variant")
    parser.add_argument("--runs", default=os.path.join("runs", "ablations"))
    parser.add_argument("--num", type=int, default=500, help="samples to score (default: %(default)s)")
    parser.add_argument("--table", action="store_true", help="print the table of what was measured and stop")
    args = parser.parse_args(argv)

    if args.table:
        print(table(load_results()))
        return
    preset, _ = BASELINES[args.budget]
    for variant in args.queue:
        _, overrides = variant_config(args.budget, variant, args.extra)
        trained = scored_row(load_results(), args.budget, variant, overrides)
        if trained is None:
            trained = record(measure(args.budget, variant, args.runs, args.num, args.extra, judges_of(preset)))
        for lever in args.sampling:
            if scored_row(load_results(), args.budget, f"{variant}:{lever}", lever_overrides(overrides, lever)) is None:
                record(measure_sampling(args.budget, variant, lever, args.runs, args.num, judges_of(preset), trained))


@functools.cache
def judges_of(preset: str) -> dict:
    """Both judges of the preset's data set (trained and cached on first use)."""
    config = resolve_config(preset)
    return load_judges(config.data.dataset, config.model.image_size)


def lever_overrides(overrides: list[str], lever: str) -> list[str]:
    """A variant's training overrides and the sampler settings a sampling lever replaces, as `--set` texts."""
    return [*overrides, *(f"sample.{key}={value}" for key, value in SAMPLING_LEVERS[lever][1].items())]


def record(row: dict) -> dict:
    """Write `row` into results/ablations.json (replacing an older one of the same variant and scoring) at once."""
    key = (row["budget"], row["variant"], SCORING)
    rows = [old for old in load_results() if (old["budget"], old["variant"], old.get("scoring")) != key]
    save(RESULTS, {"results": [*rows, row]})
    print(table([row]), flush=True)
    return row


if __name__ == "__main__":
    main()
