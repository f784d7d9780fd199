"""Every GPU figure in one run: training images/s per preset, precision and XLA, their share of the card's peak
FLOP/s, the input pipeline's images/s, and the seconds from start to a recognisable Fashion-MNIST grid.

    KERAS_HOME=DIR python benchmarks/gpu.py            # on the GPU machine: under 8 minutes -> results/gpu.json
    python benchmarks/gpu.py --budget-seconds 300      # stop measuring sooner (what is left is recorded as skipped)
    python benchmarks/gpu.py --smoke --out /tmp/gpu.json   # the whole plumbing on a CPU, tiny network, in seconds

In this order, each measurement written to the JSON file as soon as it is taken (benchmarks/common.py `save`, with
the machine and command), so a run cut short keeps what it measured; once `--budget-seconds` (450) runs out, the
rest is skipped and named under "skipped":

1. The card: its name (TensorFlow's device details), its peak dense FLOP/s per precision (`PEAK_FLOPS`, from the
   vendor's datasheet) and the FLOP/s of a large matrix product timed here (flops.py's `matmul_flops_per_second`).
2. Training images/s of `fashion_mnist_fast`, `cifar10` and `laion64` in float32, mixed_float16 and mixed_bfloat16,
   with XLA (Keras's default on a GPU): speed.py's `training_speed`, the package's network, pipeline, EMA Adam and
   `model.fit` step on random in-memory images of the preset's shape (laion64: random 512-wide vectors in place of
   CLIP's, no encoder), tracing not timed. Beside each, its FLOP/s (flops.py's count of a training step) and their
   share of the card's peak in that precision: the model FLOP utilisation (null for a card not in the table).
3. The input pipeline's images/s (pipeline.py's `pipeline_speed`: arrays in memory for the Keras data sets, a
   memory-mapped cache for laion64, as they train) beside the preset's best training rate.
4. Seconds from calling `denoiser.train` on `fashion_mnist_fast` to a grid its classifier recognises: Fashion-MNIST
   from Keras's cache (DIR/datasets/fashion-mnist, as in shared/data/keras; skipped, saying why, where it is
   missing), `GRID_SAMPLES` samples of the averaged weights judged by the package's classifier every `GRID_EVERY`
   steps, until `THRESHOLD` conditional accuracy or `--grid-seconds`.
5. Training images/s again with XLA off.

Precision: `train.mixed_precision` (training.dtype_policy) computes in float16 on a GPU (Keras then wraps the
optimizer in a LossScaleOptimizer, as it does here) and in bfloat16 on a CPU; it cannot ask for bfloat16 on a GPU,
so this script sets Keras's dtype policy itself (`precision_policy`). A float32 model runs on TF32 tensor cores on
Ampere and later cards (TensorFlow's default), so its peak there is the TF32 one. On a CPU, Keras's default
(jit_compile="auto", what speed.py asks for with XLA on) compiles without XLA, so the XLA-off rows are skipped there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from common import save
from flops import matmul_flops_per_second, preset_config, step_flops
from pipeline import TARGET_RATIO, cached_dataset, pipeline_speed
from speed import random_dataset, training_speed

from denoiser import resolve_config, train
from denoiser.callbacks import averaged_weights_sampler
from denoiser.data.dataset import DataError
from denoiser.evaluation.classifier import build_classifier, cache_path, load_classifier, predict_classes
from denoiser.evaluation.metrics import conditional_accuracy
from denoiser.training import policy_named
from denoiser.utils.keras_cache import keras_home

PRESETS = ("fashion_mnist_fast", "cifar10", "laion64")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DTYPES = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}  # what a policy computes in
THRESHOLD = 0.85  # conditional accuracy that makes a grid "recognisable"
GRID_EVERY = 250  # training steps between two judgements of the grid
GRID_SAMPLES = 200  # samples judged each time (20 per class)

# Peak dense FLOP/s (no sparsity) in TFLOP/s, by a pattern of TensorFlow's device name ("NVIDIA H100 80GB HBM3",
# "Tesla T4"); the first match counts. float32: the CUDA cores; tf32, float16, bfloat16: the tensor cores (None:
# the card has none for it). Datasheets quote tensor-core figures "with sparsity": those are halved here.
PEAK_FLOPS = [
    # NVIDIA T4 Tensor Core GPU datasheet: FP32 8.1, mixed precision (FP16/FP32) 65
    (r"\bT4\b", {"float32": 8.1, "tf32": None, "float16": 65, "bfloat16": None}),
    # NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3, TF32 120*, FP16 242*, BF16 242* (* with sparsity)
    (r"\bL4\b", {"float32": 30.3, "tf32": 60, "float16": 121, "bfloat16": 121}),
    # NVIDIA V100S datasheet (PCIe): FP32 16.4, tensor 130
    (r"\bV100S\b", {"float32": 16.4, "tf32": None, "float16": 130, "bfloat16": None}),
    # NVIDIA V100 Tensor Core GPU datasheet, PCIe: FP32 14, tensor 112
    (r"\bV100\b.*\bPCIE\b", {"float32": 14, "tf32": None, "float16": 112, "bfloat16": None}),
    # NVIDIA V100 Tensor Core GPU datasheet, SXM2: FP32 15.7, tensor 125
    (r"\bV100\b", {"float32": 15.7, "tf32": None, "float16": 125, "bfloat16": None}),
    # NVIDIA A100 Tensor Core GPU datasheet (PCIe and SXM, 40 and 80 GB): FP32 19.5, TF32 156, FP16 312, BF16 312
    (r"\bA100\b", {"float32": 19.5, "tf32": 156, "float16": 312, "bfloat16": 312}),
    # NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe: FP32 51, TF32 756*, FP16 1513*, BF16 1513*
    (r"\bH100\b.*\bPCIE\b", {"float32": 51, "tf32": 378, "float16": 756.5, "bfloat16": 756.5}),
    # NVIDIA H100 Tensor Core GPU datasheet, H100 NVL: FP32 60, TF32 835*, FP16 1671*, BF16 1671*
    (r"\bH100\b.*\bNVL\b", {"float32": 60, "tf32": 417.5, "float16": 835.5, "bfloat16": 835.5}),
    # NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: FP32 67, TF32 989*, FP16 1979*, BF16 1979*
    (r"\bH100\b", {"float32": 67, "tf32": 494.5, "float16": 989.5, "bfloat16": 989.5}),
    # NVIDIA H200 Tensor Core GPU datasheet, H200 NVL: FP32 60, TF32 835*, FP16 1671*, BF16 1671*
    (r"\bH200\b.*\bNVL\b", {"float32": 60, "tf32": 417.5, "float16": 835.5, "bfloat16": 835.5}),
    # NVIDIA H200 Tensor Core GPU datasheet, H200 SXM: FP32 67, TF32 989*, FP16 1979*, BF16 1979*
    (r"\bH200\b", {"float32": 67, "tf32": 494.5, "float16": 989.5, "bfloat16": 989.5}),
]

# How much of each measurement a run takes: the full run (its timed training steps are --train-steps), and --smoke's.
FULL = {
    "matmul_size": 8192,  # of the matrix product
    "warmup": 2,  # untimed training steps or pipeline batches, after the first
    "images": 4096,  # in the pipeline's data
    "batches": 40,  # timed pipeline batches
    "grid_every": GRID_EVERY,
    "grid_samples": GRID_SAMPLES,
    "grid_epochs": 40,  # of GRID_EVERY steps: at most 10,000 steps, more than 5 epochs of Fashion-MNIST
}
SMOKE = {**FULL, "matmul_size": 256, "warmup": 1, "images": 64, "batches": 3, "train_steps": 2}
SMOKE.update(grid_every=2, grid_samples=10, grid_epochs=1)
SMOKE_NETWORK = {
    "base_width": 8,
    "width_multipliers": [1, 2],
    "blocks_per_level": 1,
    "self_attention": [False, True],
    "cross_attention": [False, True],
    "attention_heads": 2,
    "norm_groups": 4,
}
SMOKE_TRAINING = {("fashion_mnist_fast", "float32"), ("laion64", "mixed_bfloat16")}  # class ids; vectors
SMOKE_RUN = {"train": {"batch_size": 4}, "sample": {"steps": 2, "columns": 2}}


class Run:
    """The figures so far, written after every measurement, and the time budget that skips the rest."""

    def __init__(self, out: str, budget_seconds: float, figures: dict):
        self.out, self.end = out, time.monotonic() + budget_seconds
        self.figures = {"budget_seconds": budget_seconds, **figures, "skipped": []}
        self.durations: dict[str, float] = {}  # the longest measurement of each kind so far

    def left(self) -> float:
        return self.end - time.monotonic()

    def measure(self, name: str, kind: str, function, *args, needs: float = 0.0) -> dict:
        """`function(*args)`'s figures, or why there are none: too little time left (less than the longest `kind` so
        far, or `needs`), or the error it raised (a run on a borrowed card goes on to the next measurement)."""
        needs = max(needs, self.durations.get(kind, 0.0))
        if self.left() < needs:
            self.figures["skipped"].append(name)
            return {"skipped": f"out of time: {max(self.left(), 0):.0f} s of the budget left, about {needs:.0f} needed"}
        start = time.perf_counter()
        try:
            figures = function(*args)
        except DataError as error:
            figures = {"skipped": str(error)}
        except Exception as error:  # an unsupported precision, out of memory: record it, measure the rest
            figures = {"error": f"{type(error).__name__}: {error}"[:500]}
        seconds = time.perf_counter() - start
        self.durations[kind] = max(self.durations.get(kind, 0.0), seconds)
        print(f"{name}: {figures} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        return {**figures, "seconds": round(seconds, 1)}

    def save(self) -> None:
        save(self.out, self.figures)


# ================================================================================== the card
def device_details() -> dict:
    """The first GPU's name, compute capability and datasheet peaks; name "CPU" and no peaks without a GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"name": "CPU", "gpus": 0, "peak_tflops": None}
    details = tf.config.experimental.get_device_details(gpus[0])
    name = details.get("device_name", gpus[0].name)
    capability = details.get("compute_capability")
    return {
        "name": name,
        "gpus": len(gpus),
        "compute_capability": list(capability) if capability else None,
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "peak_tflops": datasheet_peaks(name),
    }


def datasheet_peaks(name: str) -> dict | None:
    """The first `PEAK_FLOPS` row whose pattern is found in `name`, or None for a card not in the table."""
    for pattern, peaks in PEAK_FLOPS:
        if re.search(pattern, name, re.IGNORECASE):
            return peaks
    return None


def peak_flops(device: dict, precision: str) -> float | None:
    """The card's peak FLOP/s for a model computing in `precision` (float32 on TF32 tensor cores where TensorFlow
    uses them), or None where the table has no figure."""
    peaks = device["peak_tflops"]
    if peaks is None:
        return None
    dtype = DTYPES[precision]
    if dtype == "float32" and device["tensor_float_32"] and peaks["tf32"]:
        dtype = "tf32"
    return None if peaks[dtype] is None else peaks[dtype] * 1e12


def skip_reason(device: dict, name: str, precision: str, xla: bool, smoke: bool) -> str | None:
    """Why this training configuration is not measured, or None."""
    if unsupported(device, precision):
        return unsupported(device, precision)
    if not xla and not device["gpus"]:
        return "no GPU: Keras compiles without XLA on a CPU (jit_compile='auto'), so the xla=true row already did"
    if smoke and (name, precision) not in SMOKE_TRAINING:
        return "--smoke trains one configuration per precision and kind of condition"
    return None


def unsupported(device: dict, precision: str) -> str | None:
    """Why `precision` is not measured on this device, or None."""
    if precision == "mixed_float16" and not device["gpus"]:
        return "no GPU: float16 is a GPU's mixed precision (train.mixed_precision picks bfloat16 on a CPU)"
    peaks = device["peak_tflops"]
    if precision == "mixed_bfloat16" and peaks is not None and peaks["bfloat16"] is None:
        return f"the {device['name']} has no bfloat16 tensor cores"
    return None


# ================================================================================== training
def benchmark_config(name: str, smoke: bool):
    """The preset's config (laion64 with CLIP's condition shape); with `smoke`, a tiny network and batch."""
    if not smoke:
        return preset_config(name)
    model = dict(SMOKE_NETWORK)
    if resolve_config(name).model.unset_condition_shape:
        model["condition_dim"] = 16
    return resolve_config(name, overrides=[{"model": model, **SMOKE_RUN}])


def training_figures(name, config, precision: str, xla: bool, settings: dict, device: dict, flops: dict) -> dict:
    """Images/s of `model.fit` in `precision`, its FLOP/s and their share of the card's peak (`flops` caches the
    FLOPs of a training step per preset, which no precision changes)."""
    with policy_named(precision):
        rate, model = training_speed(config, settings["train_steps"], warmup=settings["warmup"], xla=xla)
    if name not in flops:
        flops[name] = step_flops(model, config)["training_step_flops"]
    figures = {
        "parameters": model.count_params(),
        "batch_size": config.train.batch_size,
        "jit_compile": bool(model.jit_compile),
        "loss_scaling": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer),
        "images_per_second": round(rate, 1),
    }
    return {**figures, **utilisation(rate * flops[name], flops[name], peak_flops(device, precision))}


def utilisation(achieved: float, step: int, peak: float | None) -> dict:
    return {
        "training_step_flops": step,
        "flops_per_second": achieved,
        "peak_flops_per_second": peak,
        "utilisation": None if peak is None else round(achieved / peak, 4),
    }


def measure_training(run: Run, configs: dict, xla: bool, settings: dict, device: dict, flops: dict) -> None:
    """Every preset in every precision, with XLA on or off, into run.figures["training"]."""
    for name, config in configs.items():
        for precision in PRECISIONS:
            row = {"preset": name, "precision": precision, "xla": xla}
            reason = skip_reason(device, name, precision, xla, run.figures["smoke"])
            if reason:
                run.figures["training"].append({**row, "skipped": reason})
                continue
            label = f"training {name} {precision} xla={'on' if xla else 'off'}"
            arguments = (name, config, precision, xla, settings, device, flops)
            row.update(run.measure(label, f"training {name}", training_figures, *arguments))
            keras.backend.clear_session(free_memory=True)  # the model's memory, before the next one
            run.figures["training"].append(row)
            run.save()


# ================================================================================== the card's matmul, the pipeline
def matmul_figures(device: dict, size: int) -> dict:
    """FLOP/s of a size x size matrix product per dtype (the best of 3 rounds of 10), or why not."""
    figures = {}
    for precision, dtype in DTYPES.items():
        figures[dtype] = unsupported(device, precision) or matmul_flops_per_second(size, dtype=dtype, rounds=3)
    return {"size": size, "flops_per_second": figures}


def pipeline_figures(config, settings: dict, training: list[dict]) -> dict:
    """Images/s of `training_pipeline` alone from the data as the preset trains on it (laion64: a memory-mapped
    cache; the others: arrays in memory), beside the preset's best training images/s."""
    with tempfile.TemporaryDirectory() as folder:
        if config.model.condition != "class":  # captioned images train from a memory-mapped cache
            source, dataset = "memory_mapped", cached_dataset(config, settings["images"], folder)
        else:
            source, dataset = "in_memory", random_dataset(config, settings["images"])
        rate = pipeline_speed(dataset, config, settings["batches"], warmup=settings["warmup"])
    rates = [row["images_per_second"] for row in training if "images_per_second" in row]
    best = max(rates) if rates else None
    return {
        "source": source,
        "images_per_second": round(rate, 1),
        "best_training_images_per_second": best,
        "ratio": round(rate / best, 1) if best else None,
        "target_ratio": TARGET_RATIO,
    }


def measure_pipelines(run: Run, configs: dict, settings: dict) -> None:
    """Every preset's pipeline beside its training figures so far, into run.figures["pipeline"]."""
    for name, config in configs.items():
        training = [row for row in run.figures["training"] if row["preset"] == name]
        figures = run.measure(f"pipeline {name}", "pipeline", pipeline_figures, config, settings, training)
        run.figures["pipeline"].append({"preset": name, **figures})
    run.save()


# ================================================================================== time to a recognisable grid
class JudgeGrid(keras.callbacks.Callback):
    """After every (short) epoch: sample with the averaged weights, judge the samples with `classifier`, and stop
    at `THRESHOLD` conditional accuracy or once `cap` seconds have passed since `start`."""

    def __init__(self, config, classifier, start: float, cap: float, samples: int):
        super().__init__()
        self.config, self.classifier, self.start, self.cap = config, classifier, start, cap
        self.requested = np.arange(samples, dtype="int32") % config.model.num_classes + 1
        self.sampler, self.history, self.judging_seconds = None, [], 0.0

    def on_epoch_end(self, epoch, logs=None):
        begin = time.perf_counter()
        self.sampler = averaged_weights_sampler(self.model, self.config, self.sampler)
        samples = self.sampler.sample(self.requested, seed=self.config.sample.seed)
        accuracy = conditional_accuracy(predict_classes(self.classifier, samples), self.requested)["accuracy"]
        self.judging_seconds += time.perf_counter() - begin
        seconds = time.perf_counter() - self.start
        steps = (epoch + 1) * self.config.train.steps_per_epoch
        judging = round(self.judging_seconds, 1)  # so far: the seconds above less these are training's
        self.history.append(
            {"step": steps, "seconds": round(seconds, 1), "judging_seconds": judging, "accuracy": round(accuracy, 3)}
        )
        print(f"grid after {steps} steps, {seconds:.0f} s: accuracy {accuracy:.3f}", file=sys.stderr, flush=True)
        if accuracy >= THRESHOLD or seconds > self.cap:
            self.model.stop_training = True


def grid_figures(settings: dict, cap: float, left, smoke: bool) -> dict:
    """Seconds from calling `denoiser.train` on fashion_mnist_fast (data loading included) to a grid whose samples
    the package's classifier recognises at `THRESHOLD`; with `smoke`, a tiny network on random images judged by an
    untrained stand-in classifier (it is never reached: the run stops after `grid_epochs` short epochs). Training
    stops after `cap` seconds or what is `left()` of the budget once the classifier is loaded (or trained)."""
    overrides = {"steps_per_epoch": settings["grid_every"], "epochs": settings["grid_epochs"], "backup_every": 0}
    tiny = [{"model": SMOKE_NETWORK, **SMOKE_RUN}] if smoke else []
    config = resolve_config("fashion_mnist_fast", overrides=[*tiny, {"train": {**overrides, "keep_checkpoints": 1}}])
    begin = time.perf_counter()
    if smoke:
        classifier, dataset, judge = build_classifier((28, 28, 1), 10), random_dataset(config, 64), "untrained stand-in"
    else:
        check_fashion_mnist_cached()
        cached = os.path.exists(cache_path("fashion_mnist", 28))
        classifier, dataset, judge = load_classifier("fashion_mnist", 28), None, "cached" if cached else "trained here"
    classifier_seconds = time.perf_counter() - begin
    cap = min(cap, left())
    start = time.perf_counter()
    judge_grid = JudgeGrid(config, classifier, start, cap, settings["grid_samples"])
    with tempfile.TemporaryDirectory() as run_dir:
        train(config, run_dir, dataset=dataset, callbacks=[judge_grid], verbose=0)
    reached = [row for row in judge_grid.history if row["accuracy"] >= THRESHOLD]
    return {
        "threshold": THRESHOLD,
        "samples_judged": settings["grid_samples"],
        "judged_every_steps": settings["grid_every"],
        "classifier": judge,
        "classifier_seconds": round(classifier_seconds, 1),
        "reached": bool(reached),
        "seconds_to_recognisable": reached[0]["seconds"] if reached else None,
        "judging_seconds": round(judge_grid.judging_seconds, 1),
        "cap_seconds": round(cap),
        "history": judge_grid.history,
    }


def check_fashion_mnist_cached() -> None:
    """Raise DataError unless Fashion-MNIST is in Keras's cache: a timed run does not wait for a download (and the
    GPU machine may have no network)."""
    folder = os.path.join(keras_home(), "datasets", "fashion-mnist")
    if not os.path.isdir(folder):
        raise DataError(f"Fashion-MNIST is not in Keras's cache ({folder}); set KERAS_HOME to a folder that has it.")


# ================================================================================== the run
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-seconds", type=float, default=450, help="measure until then (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=50, help="timed steps per training figure (%(default)s)")
    parser.add_argument(
        "--grid-seconds", type=float, default=180, help="most seconds to a recognisable grid (%(default)s)"
    )
    parser.add_argument("--smoke", action="store_true", help="the plumbing on a CPU: tiny network, a few steps")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gpu.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()

    settings = {**FULL, "train_steps": args.train_steps} if not args.smoke else SMOKE
    device = device_details()
    run = Run(args.out, args.budget_seconds, {"smoke": args.smoke, "device": device, "settings": settings})
    run.figures["matmul"] = run.measure("matmul", "matmul", matmul_figures, device, settings["matmul_size"])
    run.figures["training"], run.figures["pipeline"], flops = [], [], {}
    run.save()
    configs = {name: benchmark_config(name, args.smoke) for name in PRESETS}

    measure_training(run, configs, True, settings, device, flops)
    measure_pipelines(run, configs, settings)
    arguments = (settings, args.grid_seconds, run.left, args.smoke)
    grid = run.measure("time to a recognisable grid", "grid", grid_figures, *arguments, needs=60)
    run.figures["time_to_recognisable_grid"] = grid
    run.save()
    measure_training(run, configs, False, settings, device, flops)
    run.figures["seconds"] = round(time.perf_counter() - started, 1)
    run.save()


if __name__ == "__main__":
    main()
