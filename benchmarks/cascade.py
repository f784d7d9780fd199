"""Is a cascade worth it? Fashion-MNIST, judged at 28x28 by the package's classifier (evaluation/classifier.py).

    python benchmarks/cascade.py upscale --sr runs/fmnist_sr --num 500
    python benchmarks/cascade.py compare --base runs/fmnist14 --sr runs/fmnist_sr --single runs/fmnist_fast --num 500

upscale (a): the test split made 14x14 by area downsampling, then brought back to 28x28 by the SR stage
    (told each image's true class, as a cascade tells it the class asked for) and by bicubic interpolation.
    For each: the classifier's accuracy on the true labels, the classifier Frechet distance to real training
    images, and the pixel error against the original test images (mean absolute and RMS, on the 0..255 scale).
    The original 28x28 test images are the floor.
compare (b): samples of the cascade (base 14x14 + SR 28x28) against samples of one 28x28 model, classes in
    turn: conditional accuracy and classifier FD, beside each run's training FLOPs (3 forward passes per
    training image, flops.py), so runs trained to equal FLOPs can be compared.

Both write benchmarks/results/cascade_<mode>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import save
from flops import forward_flops

from denoiser.cascade import Cascade, upscale
from denoiser.data.sources import load_dataset
from denoiser.evaluation import metrics
from denoiser.evaluation.classifier import classifier_features, load_classifier, predict_classes
from denoiser.objective import scale_images
from denoiser.rundir import RunDirectory
from denoiser.serialization import find_checkpoint, load_model, load_sampler
from denoiser.utils.images import downsample, to_uint8

REFERENCE_IMAGES = 2000  # real training images the Frechet distances are measured to


class Judge:
    """The 28x28 Fashion-MNIST classifier and the features of real training images, to score image sets."""

    def __init__(self):
        self.classifier = load_classifier("fashion_mnist", 28, progress=True)
        reference = load_dataset("fashion_mnist", "train", num_images=REFERENCE_IMAGES)
        self.reference = classifier_features(self.classifier, reference.images)

    def scores(self, images, labels) -> dict:
        images = to_uint8(images)
        return {
            "accuracy": float(np.mean(predict_classes(self.classifier, images) == labels)),
            "classifier_fd": metrics.frechet_distance(classifier_features(self.classifier, images), self.reference),
        }


def pixel_errors(images, originals) -> dict:
    difference = to_uint8(images).astype("float64") - to_uint8(originals).astype("float64")
    return {"mean_abs_error": float(np.abs(difference).mean()), "rms_error": float(np.sqrt((difference**2).mean()))}


def compare_upscaling(args, judge: Judge) -> list[dict]:
    """(a): the SR stage against bicubic on real test images made 14x14."""
    test = load_dataset("fashion_mnist", "test", num_images=args.num)
    originals = np.asarray(scale_images(test.images))
    sampler = load_sampler(args.sr, steps=args.steps, guidance=args.guidance)
    low = np.asarray(downsample(originals, sampler.low_resolution_shape[0]))
    start = time.perf_counter()
    upscaled = upscale(sampler, low, condition=test.conditions, seed=args.seed, progress=True)
    seconds = time.perf_counter() - start
    bicubic = np.asarray(metrics_resize(low, originals.shape[1]))
    rows = [
        {"method": f"SR stage ({sampler.steps} steps, guidance {sampler.guidance:g})", "seconds": round(seconds, 1)},
        {"method": "bicubic"},
        {"method": "original 28x28 (floor)"},
    ]
    for row, images in zip(rows, (upscaled, bicubic, originals)):
        row.update(judge.scores(images, test.conditions), **pixel_errors(images, originals))
    return rows


def metrics_resize(images, size: int):
    """Bicubic upsampling, clipped to [-1, 1] (Keras's bicubic kernel overshoots at sharp edges)."""
    import keras

    return np.clip(keras.ops.convert_to_numpy(keras.ops.image.resize(images, (size, size), "bicubic")), -1, 1)


def training_flops(run: str) -> float:
    """3 forward passes per training image over the run's finished epochs."""
    checkpoint, run_directory = find_checkpoint(run)
    config = run_directory.run_config()
    epochs = len(RunDirectory(run).finished_epochs()) if os.path.isdir(run) else config.train.epochs
    steps = config.train.steps_per_epoch or 60_000 // config.train.batch_size
    return 3.0 * forward_flops(load_model(checkpoint)) * epochs * steps * config.train.batch_size


def compare_models(args, judge: Judge) -> list[dict]:
    """(b): the cascade against one 28x28 model, with each one's training FLOPs."""
    labels = np.arange(args.num, dtype="int32") % 10 + 1
    cascade = Cascade([load_sampler(args.base, steps=args.steps), load_sampler(args.sr)])
    single = load_sampler(args.single, steps=args.steps)
    rows = []
    for name, sample, flops in (
        ("cascade: base 14x14 + SR 28x28", cascade.sample, training_flops(args.base) + training_flops(args.sr)),
        ("one 28x28 model", single.sample, training_flops(args.single)),
    ):
        start = time.perf_counter()
        images = sample(labels, seed=args.seed, progress=True)
        row = {"method": name, "training_tflop": round(flops / 1e12, 1), "seconds": round(time.perf_counter() - start)}
        rows.append({**row, **judge.scores(images, labels)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["upscale", "compare"])
    parser.add_argument("--sr", required=True, help="the super-resolution run (14 -> 28)")
    parser.add_argument("--base", help="compare: the 14x14 base run")
    parser.add_argument("--single", help="compare: the 28x28 run to compare the cascade with")
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--steps", type=int, help="sampling steps (default: each run's own)")
    parser.add_argument("--guidance", type=float, help="upscale: the SR stage's guidance (default: its run's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="default: benchmarks/results/cascade_<mode>.json")
    args = parser.parse_args(argv)
    if args.mode == "compare" and not (args.base and args.single):
        parser.error("compare needs --base and --single")
    judge = Judge()
    rows = compare_upscaling(args, judge) if args.mode == "upscale" else compare_models(args, judge)
    for row in rows:
        print(
            "  ".join(
                f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()
            )
        )
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"cascade_{args.mode}.json")
    save(out, {"num": args.num, "rows": rows})


if __name__ == "__main__":
    main()
