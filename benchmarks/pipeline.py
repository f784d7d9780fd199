"""Is the model fed? Images/s of the input pipeline alone against images/s of training, per preset.

    python benchmarks/pipeline.py                                # laion64 and fashion_mnist
    python benchmarks/pipeline.py laion64 --train-steps 3 --out benchmarks/results/pipeline.json

The pipeline is what training reads: a memory-mapped uint8 image cache and its conditions on disk
(as captions.py makes them, random pixels here: speed does not depend on what they show), read by
row index through `training_pipeline` (shuffle, gather, noise, prefetch), with no model. For
fashion_mnist the arrays it really trains from are in memory, so that is measured too. Training
images/s come from speed.py's `training_speed` (the real `model.fit` step, tracing not timed). On a
GPU the pipeline should deliver at least 5x the training rate, or the GPU waits for data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from common import save
from speed import random_conditions, training_speed

from denoiser import resolve_config
from denoiser.data.dataset import Dataset
from denoiser.data.pipeline import training_pipeline

TARGET_RATIO = 5  # pipeline images/s per training image/s that keeps a GPU busy


def cached_dataset(config, count: int, folder: str) -> Dataset:
    """`count` random images and conditions written to `.npy` files and read back memory-mapped, as a cache is."""
    model = config.model
    shape = (count, model.image_size, model.image_size, model.channels)
    images_path, conditions_path = os.path.join(folder, "images.npy"), os.path.join(folder, "conditions.npy")
    np.save(images_path, np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    np.save(conditions_path, random_conditions(config, count))
    images, conditions = np.load(images_path, mmap_mode="r"), np.load(conditions_path, mmap_mode="r")
    return Dataset(images, conditions, rows=np.arange(count))


def pipeline_speed(dataset: Dataset, config, batches: int, warmup: int = 3) -> float:
    """Images/s that `training_pipeline` delivers, after `warmup` batches (graph tracing, prefetch filling)."""
    pipeline = iter(training_pipeline(dataset, config))
    for _ in range(warmup):
        next(pipeline)
    start = time.perf_counter()
    for _ in range(batches):
        next(pipeline)
    return batches * config.train.batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=["laion64", "fashion_mnist"])
    parser.add_argument("--images", type=int, default=4096, help="images in the cache (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=40, help="timed pipeline batches (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (default: %(default)s)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "pipeline.json"))
    args = parser.parse_args(argv)

    rows = []
    for name in args.presets:
        config = resolve_config(name)
        with tempfile.TemporaryDirectory() as folder:
            cached = cached_dataset(config, args.images, folder)
            speeds = {"memory_mapped": pipeline_speed(cached, config, args.batches)}
            if name != "laion64":  # built-in data sets train from arrays in memory
                in_memory = Dataset(np.array(cached.images), np.array(cached.conditions))
                speeds["in_memory"] = pipeline_speed(in_memory, config, args.batches)
        training, _model = training_speed(config, args.train_steps, warmup=2)
        for source, rate in speeds.items():
            row = {
                "preset": name,
                "source": source,
                "batch_size": config.train.batch_size,
                "pipeline_images_per_second": round(rate, 1),
                "training_images_per_second": round(training, 1),
                "ratio": round(rate / training, 1),
            }
            print(row, file=sys.stderr)
            rows.append(row)
    save(args.out, {"target_ratio": TARGET_RATIO, "images": args.images, "batches": args.batches, "results": rows})


if __name__ == "__main__":
    main()
