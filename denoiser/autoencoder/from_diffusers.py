"""Diffusers' `AutoencoderKL` (Stable Diffusion's VAE) as our Keras autoencoder: its config and its weights.

A diffusers folder holds `config.json` (the architecture) and `diffusion_pytorch_model.safetensors` (the
weights, read with the `safetensors` package's NumPy API: no torch). Every Keras layer of model.py is named by
its diffusers module path (with "-" for "."), so the weight `encoder.down_blocks.0.resnets.0.conv1.weight` goes
to the variable `encoder-down_blocks-0-resnets-0/conv1/kernel`. Only the layout differs: a torch conv weight is
(out, in, kH, kW) where Keras wants (kH, kW, in, out), and a torch linear weight is (out, in) where Keras wants
(in, out). Any name or shape that does not fit is refused, naming the first one.

Both files may come from anyone: the JSON is read with a size and a nesting limit, the config's sizes are bounded
(config.py) before any layer is built, and every weight must be finite floating point before any is assigned.
"""

from __future__ import annotations

import json
import os
import re
import reprlib

import numpy as np

from denoiser.autoencoder.config import AutoencoderConfig
from denoiser.autoencoder.model import Autoencoder, AutoencoderError
from denoiser.config_rules import ConfigError
from denoiser.utils.errors import short_reason

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
MAX_CONFIG_BYTES = 2**20  # diffusers' config.json is under 1 kB
MAX_CONFIG_DEPTH = 8  # an object of lists of values: 3 levels
MAX_SAMPLE_SIZE = 16384  # the image side the VAE was trained at (SD: 512, SDXL and SD3: 1024); unused here
# What a config.json must give, having no default that fits a real checkpoint.
REQUIRED_KEYS = ("block_out_channels",)
# diffusers' AutoencoderKL arguments for what a config.json leaves out (older files lack the newer keys)
DIFFUSERS_DEFAULTS = {
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "scaling_factor": 0.18215,
    "shift_factor": None,
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "mid_block_add_attention": True,
}
KERAS_TO_TORCH_PARAMETER = {"kernel": "weight", "gamma": "weight", "bias": "bias", "beta": "bias"}
# Attention weights of checkpoints saved before diffusers renamed them (diffusers renames them on load too).
OLD_ATTENTION_NAME = re.compile(r"\.attentions\.(\d+)\.(query|key|value|proj_attn)\.")
NEW_ATTENTION_NAME = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def is_diffusers_folder(folder: str) -> bool:
    return all(os.path.isfile(os.path.join(folder, name)) for name in (CONFIG_FILE, WEIGHTS_FILE))


def load_diffusers_autoencoder(folder: str) -> Autoencoder:
    """The Keras autoencoder of a diffusers `AutoencoderKL` folder (config.json + the safetensors weights)."""
    config = config_from_diffusers(read_json(os.path.join(folder, CONFIG_FILE)), os.path.join(folder, CONFIG_FILE))
    model = Autoencoder(config)
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    assign_diffusers_weights(model, read_safetensors(weights_path), weights_path)
    return model


# ================================================================================== config.json
def config_from_diffusers(values: dict, source: str) -> AutoencoderConfig:
    """Our `AutoencoderConfig` for a diffusers `AutoencoderKL` config, or AutoencoderError for one we cannot build;
    nothing is built here, so a config asking for too much is refused before it costs anything."""
    if values.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise AutoencoderError(
            f"{source} describes a {_short(values['_class_name'])} model; only diffusers' AutoencoderKL loads here."
        )
    missing = [key for key in REQUIRED_KEYS if key not in values]
    if missing:
        raise AutoencoderError(f"{source} has no {missing[0]}; is it the config.json of diffusers' AutoencoderKL?")
    values = {**DIFFUSERS_DEFAULTS, **values}
    try:
        config = AutoencoderConfig(
            image_channels=values["in_channels"],
            widths=values["block_out_channels"],
            layers_per_block=values["layers_per_block"],
            latent_channels=values["latent_channels"],
            norm_groups=values["norm_num_groups"],
            mid_attention=values["mid_block_add_attention"],
            quant_convs=values["use_quant_conv"],
            scaling_factor=values["scaling_factor"],
            shift_factor=values["shift_factor"] or 0.0,
        )
    except ConfigError as error:
        reason = str(error) if len(str(error)) <= 300 else str(error)[:297] + "..."  # it quotes the value given
        raise AutoencoderError(f"{source} describes an autoencoder we cannot build: {reason}") from error
    problem = _unsupported(values, len(config.widths))
    if problem:
        raise AutoencoderError(f"{source} describes an AutoencoderKL with {problem}, which ours does not have.")
    return config


def _unsupported(values: dict, levels: int) -> str | None:
    """What in a diffusers AutoencoderKL config our architecture does not have, in words, or None."""
    if values["in_channels"] != values["out_channels"]:
        return f"in_channels={_short(values['in_channels'])} but out_channels={_short(values['out_channels'])}"
    if values["act_fn"] != "silu":
        return f"act_fn={_short(values['act_fn'])} (ours is 'silu')"
    if values["use_quant_conv"] != values["use_post_quant_conv"]:
        return "only one of use_quant_conv and use_post_quant_conv (ours has both or neither)"
    for key, kind in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        types = values.get(key, [kind] * levels)
        if not isinstance(types, (list, tuple)) or list(types) != [kind] * levels:
            return f"{key}={_short(types)} (ours is {kind} for each of the {levels} block_out_channels)"
    sizes = values.get("sample_size", 0)
    sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
    if not all(type(size) is int and 0 <= size <= MAX_SAMPLE_SIZE for size in sizes):
        return f"sample_size={_short(values['sample_size'])} (integers up to {MAX_SAMPLE_SIZE})"
    return None


def _short(value) -> str:
    """A value of an untrusted file for a message: its repr, cut short (reprlib) however long or deep it is."""
    return reprlib.repr(value)


# ================================================================================== the weights
def assign_diffusers_weights(model: Autoencoder, tensors: dict[str, np.ndarray], source: str) -> None:
    """Set every weight of `model` from diffusers' `tensors` (name -> torch-layout array), checking names and shapes
    before any is set, so a file that does not fit leaves the model as it was."""
    tensors = {OLD_ATTENTION_NAME.sub(_new_attention_name, name): value for name, value in tensors.items()}
    variables = diffusers_names(model)
    missing = [name for name in variables if name not in tensors]
    if missing:
        raise AutoencoderError(
            f"{source} has no {missing[0]} ({len(missing)} weights missing): it is not the AutoencoderKL that "
            "its config.json describes."
        )
    unexpected = [name for name in tensors if name not in variables]
    if unexpected:
        raise AutoencoderError(
            f"{source} holds {unexpected[0]} ({len(unexpected)} weights), which its config.json's AutoencoderKL "
            "has no place for."
        )
    values = {name: keras_layout(tensors[name], variable.shape, name, source) for name, variable in variables.items()}
    for name, variable in variables.items():
        variable.assign(values[name])


def diffusers_names(model: Autoencoder) -> dict[str, object]:
    """Each weight of the encoder and decoder networks by its diffusers name, in the order the model holds them.

    A variable's path ends in `LAYER/NAME` or `LAYER/SUBLAYER/NAME`; the layer is named by its diffusers module
    path with "-" for ".", the sub-layer by its diffusers attribute (attention's output layer is `to_out.0`).
    """
    names = {}
    for layer in [*model.encoder.layers, *model.decoder.layers]:
        for variable in layer.weights:
            parts = variable.path.split("/")
            *modules, parameter = parts[parts.index(layer.name) :]
            modules = ["to_out.0" if module == "to_out" else module.replace("-", ".") for module in modules]
            names[".".join([*modules, KERAS_TO_TORCH_PARAMETER[parameter]])] = variable
    return names


def keras_layout(tensor: np.ndarray, shape: tuple, name: str, source: str) -> np.ndarray:
    """A torch-layout weight as the Keras variable of `shape` holds it, or AutoencoderError naming the mismatch."""
    tensor, in_file = np.asarray(tensor), tuple(np.shape(tensor))
    if not np.issubdtype(tensor.dtype, np.floating):
        raise AutoencoderError(f"{source}: {name} holds {tensor.dtype} values; an AutoencoderKL's weights are floats.")
    tensor = tensor.astype("float32")
    if not np.isfinite(tensor).all():
        raise AutoencoderError(
            f"{source}: {name} holds NaN or infinite values (as float32); the file is damaged or its training diverged."
        )
    if len(shape) == 4 and tensor.ndim == 4:  # a conv: (out, in, kH, kW) -> (kH, kW, in, out)
        tensor = tensor.transpose(2, 3, 1, 0)
    elif len(shape) == 2 and in_file[2:] in ((), (1, 1)):  # a linear layer (or a 1x1 conv): (out, in) -> (in, out)
        tensor = tensor.reshape(in_file[:2]).T
    if tuple(tensor.shape) != tuple(shape):
        raise AutoencoderError(
            f"{source}: {name} has shape {in_file}, but the AutoencoderKL of its config.json needs "
            f"{torch_layout_shape(tuple(shape))}."
        )
    return tensor


def torch_layout_shape(shape: tuple) -> tuple:
    """The shape in torch's layout of a Keras conv kernel (kH, kW, in, out), dense kernel (in, out) or vector."""
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    return tuple(reversed(shape))


def _new_attention_name(match: re.Match) -> str:
    return f".attentions.{match.group(1)}.{NEW_ATTENTION_NAME[match.group(2)]}."


# ================================================================================== files
def read_json(path: str) -> dict:
    """The JSON object of a config.json, refusing one too large or too deeply nested to be a config."""
    too_deep = f"{path} nests its JSON too deeply to be a config; is it diffusers' config.json?"
    try:
        with open(path, "rb") as file:
            text = file.read(MAX_CONFIG_BYTES + 1)
        values = json.loads(text) if len(text) <= MAX_CONFIG_BYTES else None
    except RecursionError:  # json.loads recurses once per level
        raise AutoencoderError(too_deep) from None
    except (OSError, ValueError) as error:
        raise AutoencoderError(f"Cannot read {path} ({short_reason(error)}); is it diffusers' config.json?") from error
    if len(text) > MAX_CONFIG_BYTES:
        raise AutoencoderError(f"{path} is over {MAX_CONFIG_BYTES:,} bytes, too large for diffusers' config.json.")
    if nesting_depth(values) > MAX_CONFIG_DEPTH:
        raise AutoencoderError(too_deep)
    if not isinstance(values, dict):
        raise AutoencoderError(f"{path} is not a JSON object of settings; is it diffusers' config.json?")
    return values


def nesting_depth(value) -> int:
    """How many levels of lists and objects `value` has, counted level by level (no recursion to run out of)."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [child for item in level if isinstance(item, (list, dict)) for child in _children(item)]
    return depth


def _children(item: list | dict) -> list:
    return list(item.values()) if isinstance(item, dict) else item


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a `.safetensors` file as a NumPy array (torch's layout), without torch."""
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise AutoencoderError(
            f"Reading {path} needs the safetensors package ({error}): pip install -e '.[latent]'"
        ) from error
    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own error types for a damaged header or an unknown dtype
        raise AutoencoderError(
            f"Cannot read {path} ({short_reason(error)}); is it a complete safetensors file?"
        ) from error
