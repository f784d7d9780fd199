"""Export a trained denoiser to ONNX, with everything a web page needs to sample from it.

    >>> from denoiser.deploy.onnx import export_onnx
    >>> export_onnx("runs/shapes", "web/models/shapes")                       # class-conditional
    >>> export_onnx("runs/laion64", "web/models/laion64", prompts=["a red dress", "a blue car"])

The ONNX file holds the single-step network only: (noisy images, noise level, condition) -> x0_hat.
The sampling loop (guidance, thresholding, the solver) is a few lines of arithmetic that the page
runs itself in JavaScript (web/sampler.js mirrors denoiser/sampler.py). Beside the network,
`denoiser.json` tells the page the image size, the condition (class names, or the prompts whose
embeddings were computed here, at export time, and stored in `prompts.bin`, because a browser
cannot run the text encoder cheaply), the default steps and guidance and the grid of noise levels.

Every export checks itself: onnxruntime and Keras are run on the same random inputs and the
largest difference is recorded in the JSON (and must stay below `tolerance`).

A cascade (cascade.py) exports stage by stage: given `upscales`, `export_onnx` writes one such folder per stage
(`stage-0/` the base, `stage-1/`... the super-resolution stages) and a top-level `denoiser.json` that
lists them in order with their sizes and holds the condition they share (the class names, or the
prompts, embedded in each stage's folder by the one text encoder all text stages must share).

    >>> export_onnx("runs/fmnist14", "web/models/fmnist_cascade", upscales=["runs/fmnist_sr"])
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np

from denoiser.cascade import Cascade
from denoiser.conditions import class_name, prompt_conditions, text_encoder
from denoiser.serialization import load_sampler
from denoiser.utils.files import atomic_path, write_json

FORMAT = "denoiser-web/1"
CASCADE_FORMAT = "denoiser-web-cascade/1"
OPSET = 17
OUTPUT_NAME = "x0_hat"


class ExportError(ValueError):
    """The export cannot be made (missing converter, prompts for a class model, a failed parity check)."""


def export_onnx(
    path,
    out_dir,
    *,
    prompts=(),
    encoder: str | None = None,
    tolerance: float = 1e-4,
    upscales=(),
    **settings,
) -> dict:
    """Write `model.onnx`, `denoiser.json` (and `prompts.bin` for a text model) into `out_dir`.

    path: a checkpoint or run directory (the averaged weights are exported).
    prompts: for text-conditioned models, the prompts the page offers; their embeddings are stored.
    settings: the page's sampling defaults (steps=, guidance=, solver=; the run's sampling settings unless given).
    upscales: super-resolution checkpoints or run directories to run after `path`, in order (as
    `denoiser sample --upscale`): the cascade is exported stage by stage (`export_cascade`); `settings`
    then set the base's defaults, each super-resolution stage keeps its run's (as `load_cascade`).
    Returns the JSON description that was written (the top-level one for a cascade).
    """
    sampler = load_sampler(path, **settings)
    if upscales:
        stages = [sampler, *(load_sampler(stage, solver=settings.get("solver")) for stage in upscales)]
        return export_cascade(Cascade(stages), out_dir, prompts, encoder, tolerance)
    return export_sampler(sampler, out_dir, prompts, encoder, tolerance)


def export_sampler(sampler, out_dir, prompts=(), encoder: str | None = None, tolerance: float = 1e-4) -> dict:
    """`export_onnx` for a loaded sampler (which knows its run's class names and text encoder)."""
    kind = sampler.model_config.condition
    if prompts and kind in ("class", "none"):
        raise ExportError(f"This model's condition is {kind!r}, not text: leave out `prompts`.")
    if not prompts and kind in ("vector", "sequence"):
        raise ExportError("This model is conditioned on text: give the prompts the page should offer (`prompts`).")
    table = prompt_conditions(list(prompts), sampler, encoder) if prompts else None

    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "model.onnx")
    write_onnx(sampler.model, model_path)
    difference = parity(sampler.model, model_path)
    if not difference <= tolerance:
        os.remove(model_path)
        raise ExportError(
            f"onnxruntime and Keras disagree by up to {difference:.2e} (tolerance {tolerance:.0e}); "
            "the exported file is not trustworthy. Please report this with your Keras and tf2onnx versions."
        )
    description = describe(sampler, list(prompts), table, difference)
    if table is not None:
        with atomic_path(os.path.join(out_dir, "prompts.bin")) as temporary:
            table.astype("<f4").tofile(temporary)
    write_json(os.path.join(out_dir, "denoiser.json"), description)
    return description


def write_onnx(model: keras.Model, path: str) -> None:
    """Convert the Keras network to ONNX (tf2onnx) with readable input and output names and a batch axis."""
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ExportError(f'Exporting to ONNX needs {error.name}: pip install -e ".[onnx]"') from error
    if keras.backend.backend() != "tensorflow":
        raise ExportError("Export to ONNX runs on the TensorFlow backend; set KERAS_BACKEND=tensorflow.")
    model(example_inputs(model, batch=1))  # Keras exports only a model that has been called
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's NumPy 2 shims
        model.export(temporary, format="onnx", verbose=False, opset_version=OPSET)
        tidy_names(temporary)


def tidy_names(path: str) -> None:
    """Name the output `x0_hat` and every input's first axis `batch` (tf2onnx writes 'Identity:0', 'unk__12')."""
    import onnx

    graph_file = onnx.load(path)
    graph = graph_file.graph
    old_name = graph.output[0].name
    for node in graph.node:
        node.output[:] = [OUTPUT_NAME if name == old_name else name for name in node.output]
        node.input[:] = [OUTPUT_NAME if name == old_name else name for name in node.input]
    graph.output[0].name = OUTPUT_NAME
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(graph_file)
    onnx.save(graph_file, path)


def example_inputs(model: keras.Model, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the network's shapes: noisy images, noise levels in (0, 1), and conditions."""
    rng = np.random.default_rng(seed)
    inputs = []
    for tensor in model.inputs:
        shape = (batch, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            top = model.get_layer("class_embedding").input_dim
            inputs.append(rng.integers(0, top, shape).astype("int32"))
        elif tensor.name.startswith("noise_level"):
            inputs.append(rng.uniform(0.0, 1.0, shape).astype("float32"))
        else:
            inputs.append(rng.standard_normal(shape).astype("float32"))
    return inputs


def parity(model: keras.Model, path: str, batch: int = 4, seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime and Keras on the same random inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = example_inputs(model, batch, seed)
    feeds = {spec.name: value for spec, value in zip(session.get_inputs(), inputs)}
    exported = session.run([OUTPUT_NAME], feeds)[0]
    reference = keras.ops.convert_to_numpy(model(inputs, training=False)).astype("float32")
    return float(np.max(np.abs(exported - reference)))


def describe(sampler, prompts, table, difference: float) -> dict:
    """What the web page needs to know besides the network, as a JSON-ready dict."""
    config = sampler.model_config
    condition = {"kind": config.condition}
    if config.condition == "class":
        names = sampler.class_names
        condition.update(
            num_classes=config.num_classes,
            class_names=[class_name(i, names) for i in range(1, config.num_classes + 1)],
        )
    elif table is not None:
        condition.update(prompts=prompts, table="prompts.bin", table_shape=list(table.shape), dtype="float32")
    description = {
        "format": FORMAT,
        "model": "model.onnx",
        "opset": OPSET,
        "inputs": [tensor.name for tensor in sampler.model.inputs],
        "output": OUTPUT_NAME,
        "image_size": config.image_size,
        "channels": config.channels,
        "condition": condition,
        "sampling": {
            "steps": sampler.steps,
            "guidance": sampler.guidance,
            "guidance_interval": list(sampler.guidance_interval),
            "threshold_percentile": sampler.threshold_percentile,
            "solver": sampler.solver,
            "spacing": sampler.spacing,
            "max_level": sampler.max_level,
            "noise_levels": [float(level) for level in sampler.noise_levels],
        },
        "parity_max_abs_difference": difference,
    }
    if config.super_resolution:  # a super-resolution stage of a cascade: what it upscales, how noised
        description["super_resolution"] = {
            "low_resolution": config.low_resolution,
            "augmentation_level": sampler.augmentation_level,
        }
    return description


# ================================================================================ a cascade, stage by stage
def export_cascade(cascade: Cascade, out_dir, prompts=(), encoder: str | None = None, tolerance: float = 1e-4) -> dict:
    """Export every stage of a cascade into `out_dir/stage-K` and list them in `out_dir/denoiser.json`.

    prompts: for text-conditioned stages, the prompts the page offers. Returns the top-level description
    that was written.
    """
    check_shared_condition(cascade.samplers, encoder)
    stages, condition = [], {"kind": "none"}
    for index, sampler in enumerate(cascade.samplers):
        folder = f"stage-{index}"
        conditioned = sampler.model_config.conditional
        stage_prompts = prompts if conditioned else ()
        info = export_sampler(sampler, os.path.join(out_dir, folder), stage_prompts, encoder, tolerance)
        if conditioned and condition["kind"] == "none":  # the first conditioned stage names the shared choices
            condition = {
                key: info["condition"][key] for key in ("kind", "class_names", "prompts") if key in info["condition"]
            }
        stages.append(
            {
                "folder": folder + "/",
                "image_size": info["image_size"],
                "channels": info["channels"],
                "low_resolution": sampler.model_config.low_resolution,
                "condition": sampler.model_config.condition,
            }
        )
    description = {
        "format": CASCADE_FORMAT,
        "stages": stages,
        "image_size": stages[-1]["image_size"],
        "channels": stages[-1]["channels"],
        "condition": condition,
    }
    write_json(os.path.join(out_dir, "denoiser.json"), description)
    return description


def check_shared_condition(samplers, encoder: str | None = None) -> None:
    """Refuse a cascade whose conditioned stages cannot share one class or prompt (kind, classes, text encoder)."""
    first, wanted = None, None
    for index, sampler in enumerate(samplers):
        if not sampler.model_config.conditional:
            continue
        got = condition_in_words(sampler, encoder)
        if first is None:
            first, wanted = index, got
        elif got != wanted:
            raise ExportError(
                f"Stage {index} of the cascade is conditioned on {got} but stage {first} on {wanted}; "
                "the stages share the class or prompt, so chain stages conditioned alike."
            )


def condition_in_words(sampler, encoder: str | None = None) -> str:
    """A stage's condition as the page shares it: '8 classes', or 'vector embeddings by ENCODER'."""
    config = sampler.model_config
    if config.condition == "class":
        return f"{config.num_classes} classes"
    return f"{config.condition} embeddings by {text_encoder(sampler, encoder)}"
