"""Training and sampling speed of each preset's model on this machine.

    python benchmarks/speed.py                       # every preset
    python benchmarks/speed.py fashion_mnist shapes  # some presets
    python benchmarks/speed.py --train-steps 50 --out benchmarks/results/speed.json
    python benchmarks/speed.py fashion_mnist --mixed-precision --out benchmarks/results/speed_bf16.json
    python benchmarks/speed.py fashion_mnist --no-xla --out benchmarks/results/speed_no_xla.json

Speed does not depend on what the images show, so the images are random pixels of the preset's
shape and class count (nothing is downloaded). Training runs the real pipeline and `model.fit`
step with EMA; the first steps (graph tracing) are not timed. Sampling runs the preset's sampler
(steps and guidance) on one batch of 64 images after a warm-up call.

Beside the speeds: the FLOPs per image of a training step and of a sampling step (counted from the
graph, see flops.py), the FLOP/s they achieve, and that as a share of the FLOP/s of a large float32
matrix multiply timed in the same run (what the machine can do at best with TensorFlow).
With --mixed-precision the models compute in bfloat16 (float16 on a GPU), as `train.mixed_precision`
does, and the reference is a bfloat16 matmul; its float32 speed is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import keras
import numpy as np
from common import save
from flops import matmul_flops_per_second, preset_config, step_flops

from denoiser import Sampler, build_unet
from denoiser.data.dataset import Dataset
from denoiser.data.pipeline import training_pipeline
from denoiser.optimizer import make_optimizer
from denoiser.presets import preset_names
from denoiser.training import dtype_policy


def random_conditions(config, count: int, seed: int = 0) -> np.ndarray:
    """Class ids, or random embeddings for text-conditioned presets (speed does not depend on the values)."""
    rng, model = np.random.default_rng(seed), config.model
    if model.condition == "vector":
        return rng.normal(size=(count, model.condition_dim)).astype("float32")
    if model.condition == "sequence":
        return rng.normal(size=(count, model.condition_tokens, model.condition_dim)).astype("float32")
    return rng.integers(1, model.num_classes + 1, count)


def random_dataset(config, count: int) -> Dataset:
    rng = np.random.default_rng(0)
    shape = (count, config.model.image_size, config.model.image_size, config.model.channels)
    return Dataset(rng.integers(0, 256, shape, dtype=np.uint8), random_conditions(config, count))


class StepTimer(keras.callbacks.Callback):
    """Wall time of the batches after the first `skip` (which include tracing)."""

    def __init__(self, skip: int):
        super().__init__()
        self.skip, self.times = skip, []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        timed = self.times[self.skip :]
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def training_speed(config, steps: int, warmup: int = 3, xla: bool = True) -> float:
    keras.utils.set_random_seed(0)
    model = build_unet(config.model)
    optimizer = make_optimizer(config, total_steps=steps + warmup + 1)
    model.compile(optimizer=optimizer, loss="mean_absolute_error", jit_compile="auto" if xla else False)
    batch = config.train.batch_size
    pipeline = training_pipeline(random_dataset(config, batch * 8), config)
    timer = StepTimer(skip=warmup)
    model.fit(pipeline, epochs=1, steps_per_epoch=steps + warmup + 1, verbose=0, callbacks=[timer])
    return batch / timer.seconds_per_step(), model


def sampling_speed(model, config, num_images: int = 64) -> float:
    sampler = Sampler(model, steps=config.sample.steps, guidance=config.sample.guidance)
    conditions = random_conditions(config, num_images)
    # Trace the compiled step with one call of the timed shape, instead of a whole untimed sampling run.
    sampler.denoise(sampler.noise(num_images), sampler.noise_levels[0], sampler.prepare_condition(conditions))
    start = time.perf_counter()
    sampler.sample(conditions, seed=1)
    return num_images / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=preset_names())
    parser.add_argument("--train-steps", type=int, default=30, help="timed training steps per preset")
    parser.add_argument("--mixed-precision", action="store_true", help="compute in bfloat16 (train.mixed_precision)")
    parser.add_argument(
        "--no-xla",
        action="store_true",
        help="train without XLA (Keras compiles the training step with XLA by default on TensorFlow)",
    )
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "speed.json"))
    args = parser.parse_args(argv)

    precision = "bfloat16" if args.mixed_precision else "float32"
    matmul_float32 = matmul_flops_per_second()
    matmul = matmul_flops_per_second(dtype=precision) if args.mixed_precision else matmul_float32
    print(
        f"2048x2048 matmul: float32 {matmul_float32 / 1e9:.1f} GFLOP/s, {precision} {matmul / 1e9:.1f} GFLOP/s",
        file=sys.stderr,
    )
    rows = []
    for name in args.presets:
        config = preset_config(name)
        with dtype_policy(args.mixed_precision):
            train_rate, model = training_speed(config, args.train_steps, xla=not args.no_xla)
            sample_rate = sampling_speed(model, config)
        flops = step_flops(model, config)
        train_flops = train_rate * flops["training_step_flops"]
        sample_flops = sample_rate * config.sample.steps * flops["sampling_step_flops"]
        rows.append(
            {
                "preset": name,
                "precision": precision,
                "xla": not args.no_xla,
                "parameters": model.count_params(),
                "image_shape": [config.model.image_size, config.model.image_size, config.model.channels],
                "batch_size": config.train.batch_size,
                "training_images_per_second": round(train_rate, 1),
                "sampling_steps": config.sample.steps,
                "guidance": config.sample.guidance,
                "sampling_images_per_second": round(sample_rate, 2),
                **flops,
                "training_flops_per_second": train_flops,
                "sampling_flops_per_second": sample_flops,
                "training_share_of_matmul": round(train_flops / matmul, 3),
                "sampling_share_of_matmul": round(sample_flops / matmul, 3),
            }
        )
        print(f"{name}: {rows[-1]}", file=sys.stderr)

    header = (
        f"{'preset':<14}{'params':>10}{'batch':>7}{'train img/s':>13}{'steps':>7}{'sample img/s':>14}"
        f"{'GFLOP/train img':>17}{'GFLOP/sample step':>19}{'train % matmul':>16}{'sample % matmul':>17}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['preset']:<14}{row['parameters']:>10,}{row['batch_size']:>7}{row['training_images_per_second']:>13.1f}"
            f"{row['sampling_steps']:>7}{row['sampling_images_per_second']:>14.2f}"
            f"{row['training_step_flops'] / 1e9:>17.3f}{row['sampling_step_flops'] / 1e9:>19.3f}"
            f"{100 * row['training_share_of_matmul']:>15.1f}%{100 * row['sampling_share_of_matmul']:>16.1f}%"
        )
    print(f"large matmul (2048x2048 {precision}): {matmul / 1e9:.1f} GFLOP/s; the models computed in {precision}")
    save(
        args.out,
        {
            "train_steps": args.train_steps,
            "precision": precision,
            "matmul_flops_per_second": matmul,
            "matmul_float32_flops_per_second": matmul_float32,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
