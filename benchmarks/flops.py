"""FLOPs of a model's forward pass, counted from its TensorFlow graph, and this machine's matmul FLOP/s.

    python benchmarks/flops.py                 # every preset: forward, training-step and sampling-step FLOPs

A FLOP here is one multiply or one add: a multiply-add counts 2. Counted are the convolutions and the
matrix products (dense layers, attention's Q.K and weights.V), which hold nearly all the work;
normalization, activations and other elementwise ops are left out (a few percent). A training step
costs about 3 forward passes per image (the backward pass needs two products per forward one); a
guided sampling step costs 2 (the conditional and the unconditional prediction).
"""

from __future__ import annotations

import argparse
import math
import os
import time


def op_flops(op) -> int:
    """FLOPs of one graph op (Conv2D, MatMul, BatchMatMul, Einsum); 0 for the others."""

    def shape(tensor):
        return [int(d) for d in tensor.shape]

    if op.type == "Conv2D":
        kernel_h, kernel_w, inputs, _ = shape(op.inputs[1])
        return 2 * math.prod(shape(op.outputs[0])) * kernel_h * kernel_w * inputs
    if op.type == "MatMul":
        a = shape(op.inputs[0])
        return 2 * math.prod(shape(op.outputs[0])) * (a[0] if op.get_attr("transpose_a") else a[1])
    if op.type in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = shape(op.inputs[0])
        return 2 * math.prod(shape(op.outputs[0])) * (a[-2] if op.get_attr("adj_x") else a[-1])
    if op.type == "Einsum":  # every index combination is one multiply-add
        sizes = {}
        for letters, tensor in zip(op.get_attr("equation").decode().split("->")[0].split(","), op.inputs):
            sizes.update(zip(letters, shape(tensor)))
        return 2 * math.prod(sizes.values())
    return 0


def forward_flops(model) -> int:
    """FLOPs of one forward pass for one image (batch 1), counted on the frozen TensorFlow graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = [tf.TensorSpec((1, *input.shape[1:]), input.dtype) for input in model.inputs]
    function = tf.function(lambda *inputs: model(list(inputs), training=False))
    graph = convert_variables_to_constants_v2(function.get_concrete_function(*specs)).graph
    return sum(op_flops(op) for op in graph.get_operations())


def matmul_flops_per_second(size: int = 2048, repeats: int = 10, dtype: str = "float32", rounds: int = 5) -> float:
    """Peak FLOP/s of a large matrix multiply (float32 or bfloat16) with TensorFlow here (GPU if there is one).

    The best of `rounds` rounds of `repeats` products: a single short round moves with whatever else
    the machine is doing, the best one is what it can do.
    """
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    product(a, b).numpy()  # trace and warm up
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            product(a, b).numpy()
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best


def step_flops(model, config) -> dict:
    """Per image: forward, training step (3 forwards) and sampling step (2 forwards when guided)."""
    forward = forward_flops(model)
    guided = config.sample.guidance != 1.0 and config.model.condition != "none"
    return {
        "forward_flops": forward,
        "training_step_flops": 3 * forward,
        "sampling_step_flops": (2 if guided else 1) * forward,
    }


# What the text presets' encoder (CLIP ViT-B-32) gives; training asks the encoder, counting needs none.
CLIP_CONDITION = {"condition_dim": 512, "condition_tokens": 77}


def preset_config(name: str):
    """A preset's config, a text model's condition shape set to CLIP's, as training would find it."""
    from denoiser import resolve_config

    config = resolve_config(name)
    return resolve_config(name, overrides=[{"model": CLIP_CONDITION}]) if config.model.unset_condition_shape else config


def main(argv=None):
    from common import save

    from denoiser import build_unet
    from denoiser.presets import preset_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=preset_names())
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "flops.json"))
    args = parser.parse_args(argv)
    rows = []
    print(f"{'preset':<14}{'params':>11}{'forward GFLOP':>15}{'train GFLOP':>13}{'sample-step GFLOP':>19}")
    for name in args.presets:
        config = preset_config(name)
        model = build_unet(config.model)
        rows.append({"preset": name, "parameters": model.count_params(), **step_flops(model, config)})
        row = rows[-1]
        print(
            f"{name:<14}{row['parameters']:>11,}{row['forward_flops'] / 1e9:>15.3f}"
            f"{row['training_step_flops'] / 1e9:>13.3f}{row['sampling_step_flops'] / 1e9:>19.3f}",
            flush=True,
        )
    matmul = matmul_flops_per_second()
    print(f"2048x2048 float32 matmul: {matmul / 1e9:.1f} GFLOP/s")
    save(args.out, {"matmul_flops_per_second": matmul, "results": rows})


if __name__ == "__main__":
    main()
