"""Sharing a trained model: a run directory cut down to a model folder, on disk or on the Hugging Face Hub.

    >>> share("runs/shapes", "hf://ada/shapes")     # upload (huggingface_hub; `huggingface-cli login` first)
    >>> share("runs/shapes", "models/shapes")       # or write the same folder on disk

A model folder (hub.py says what it holds) keeps what sampling needs and nothing else: the averaged weights
without the optimizer (the Adam moments and the training weights are left out, so it is about a quarter of a
training checkpoint), the run's config.yaml, its last sample grid, and a model card, README.md, written from the
config, the checkpoint's log row and the run's newest evaluation. Anyone then samples from it by name:
`denoiser sample --checkpoint hf://ada/shapes --out shapes.png`. The pretrained models in denoiser/pretrained/
were written this way.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile

from denoiser.hub import (
    HUB_PREFIX,
    PRETRAINED_FOLDER,
    PRETRAINED_PREFIX,
    ModelNameError,
    hub_repo_id,
    huggingface_hub_module,
)
from denoiser.optimizer import copy_ema_weights
from denoiser.rundir import RunDirectory, checkpoint_log_row
from denoiser.serialization import CheckpointError, find_checkpoint, load_model
from denoiser.utils.errors import short_reason
from denoiser.utils.files import write_text

CARD_NAME = "README.md"
PROJECT_URL = "https://github.com/denoiser-project/denoiser"


def share(run_dir: str | os.PathLike, destination: str) -> str:
    """Write the model folder of `run_dir` to `destination`, a folder or `hf://USER/NAME`; returns where it is.

    `run_dir` is any model that loads: a run directory, a checkpoint in one, `pretrained:NAME`, `hf://USER/NAME`
    or a model folder (whose weights are averaged already, and which has no optimizer steps to report)."""
    if destination.startswith(HUB_PREFIX):
        return push_to_hub(run_dir, hub_repo_id(destination))
    return write_model_folder(run_dir, destination)


def write_model_folder(run_dir: str | os.PathLike, out: str | os.PathLike) -> str:
    """The model folder of a run, written beside `out` and then moved there, so `out` is never half-made.

    An older model folder at `out` is replaced; any other non-empty folder there is refused. The card names it as
    given, or as pretrained:NAME inside the package's pretrained/ folder."""
    name = os.fspath(out)
    out = os.path.abspath(name)
    if os.path.dirname(out) == PRETRAINED_FOLDER:
        name = PRETRAINED_PREFIX + os.path.basename(out)
    if os.path.isdir(out) and os.listdir(out) and not is_model_folder(out):
        raise ModelNameError(f"{out} is a folder that is not a model folder; give a new or empty folder.")
    refuse_a_file_in_the_way(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-model-", dir=parent)
    try:
        fill_model_folder(run_dir, staging, name=name)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def refuse_a_file_in_the_way(out: str) -> None:
    """Refuse `out` where it, or a folder it would be made in, is a file: the model folder cannot be written."""
    path = out
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise ModelNameError(
            f"{path} is a file, so the model folder {out} cannot be written there; give a folder path that does not "
            "exist yet or is a folder."
        )


def push_to_hub(run_dir: str | os.PathLike, repo_id: str) -> str:
    """Upload the model folder of a run to the Hub repository `repo_id` (made if it does not exist); its URL."""
    hub = huggingface_hub_module()
    with tempfile.TemporaryDirectory(prefix="denoiser-push-") as folder:
        fill_model_folder(run_dir, folder, name=f"{HUB_PREFIX}{repo_id}")
        try:
            api = hub.HfApi(library_name="denoiser")
            url = api.create_repo(repo_id, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload a denoiser model")
        except Exception as error:  # no network, not logged in, no write access: the Hub's errors are many types
            raise ModelNameError(
                f"Could not upload to hf://{repo_id} ({short_reason(error)}); log in first with "
                "`huggingface-cli login` (a token with write access), and check the name."
            ) from error
    return str(url)


def is_model_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CARD_NAME)) and os.path.isfile(RunDirectory(path).latest)


# ================================================================================== the folder's contents
def fill_model_folder(run_dir: str | os.PathLike, folder: str, name: str) -> None:
    """Write the averaged weights, config.yaml, the last sample grid and the model card of `run_dir` into `folder`;
    `name` is where users will find it (a path or hf://USER/NAME), for the card's examples."""
    checkpoint, run = find_checkpoint(run_dir)
    config = run.run_config() if run is not None else None
    if config is None:
        raise CheckpointError(f"{run_dir} is not a run directory with a config.yaml; share a training run's folder.")
    target = RunDirectory(folder)
    os.makedirs(target.checkpoints)
    trained = load_model(checkpoint, compile=True)
    optimizer = getattr(trained, "optimizer", None)  # None in a model folder (pretrained:NAME, a pushed one)
    network = load_model(checkpoint)  # no optimizer: the averaged weights go into this copy
    copy_ema_weights(trained, into=network)
    network.save(target.latest)
    shutil.copyfile(run.config_path, target.config_path)
    grid = last_sample_grid(run)
    if grid:
        os.makedirs(target.samples)
        shutil.copyfile(grid, os.path.join(target.samples, os.path.basename(grid)))
    trained_for = checkpoint_log_row(checkpoint) or {}
    if optimizer is not None:
        trained_for["steps"] = int(optimizer.iterations)
    card = model_card(config, trained_for, newest_evaluation(run), grid and os.path.basename(grid), name)
    write_text(os.path.join(folder, CARD_NAME), card)


def last_sample_grid(run: RunDirectory) -> str | None:
    grids = sorted(glob.glob(os.path.join(run.samples, "epoch-*.png")))
    return grids[-1] if grids else None


def newest_evaluation(run: RunDirectory) -> dict | None:
    """The newest `denoiser evaluate` results of the run (RUN/evaluation/*.json), or None."""
    paths = sorted(glob.glob(os.path.join(run.path, "evaluation", "*.json")), key=os.path.getmtime)
    for path in reversed(paths):
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            continue
    return None


# ================================================================================== the model card
def model_card(config, trained_for: dict, evaluation: dict | None, grid: str | None, name: str) -> str:
    """The README.md of a model folder: what the model is, how it was trained (`trained_for`: the checkpoint's log
    row and its optimizer steps), what it scored (`denoiser evaluate`'s results), and how to use it from `name`."""
    data, model, train = config.data, config.model, config.train
    path = None if "data.path" in config.unused_settings() else data.path  # a data set read by name has none
    condition = {
        "class": f"class-conditional ({model.num_classes} classes)",
        "vector": f"text-conditioned ({data.encoder})",
        "sequence": f"text-conditioned ({data.encoder}, token states)",
        "none": "unconditional",
    }[model.condition]
    kind = {"vector": "text-to-image", "sequence": "text-to-image", "none": "unconditional-image-generation"}
    lines = ["---", "library_name: keras"]
    if model.condition in kind:  # the Hub's task names; a class-conditional model has none
        lines.append(f"pipeline_tag: {kind[model.condition]}")
    lines += [
        "tags: [denoiser, diffusion]",
        "---",
        "",
        f"# A denoiser model: {data.dataset}, {model.image_size}x{model.image_size}",
        "",
        f"A {condition} diffusion U-Net trained with [denoiser]({PROJECT_URL}) (Keras 3): base width "
        f"{model.base_width}, width multipliers {model.width_multipliers}, {model.blocks_per_level} residual "
        f"block(s) per level.",
        "",
        "## Training",
        f"- data: `{data.dataset}`" + (f" from `{os.path.basename(str(path))}`" if path else ""),
    ]
    if "epoch" in trained_for and "steps" in trained_for:
        lines.append(
            f"- {trained_for['epoch']} epoch(s), {trained_for['steps']} steps of batch {train.batch_size}; "
            f"last epoch's loss {float(trained_for.get('loss', 'nan')):.4f}"
        )
    lines.append(f"- learning rate {train.learning_rate:g}, EMA decay {train.ema_decay:g}; all settings in config.yaml")
    if evaluation and "conditional_accuracy" in evaluation:
        lines += [
            "",
            "## Evaluation (`denoiser evaluate`)",
            f"- {evaluation.get('num_samples')} samples, {evaluation.get('steps')} {evaluation.get('solver')} steps, "
            f"guidance {evaluation.get('guidance')}",
            f"- conditional accuracy {evaluation['conditional_accuracy']:.3f} "
            f"(real training images: {evaluation.get('conditional_accuracy_real', float('nan')):.3f})",
            f"- classifier Fréchet distance {evaluation['classifier_fd']:.1f} "
            f"(real training images vs test, the floor: {evaluation.get('classifier_fd_real', float('nan')):.1f})",
        ]
    if grid:
        lines += ["", "## Samples", f"![the last epoch's sample grid](samples/{grid})"]
    lines += [
        "",
        "## Use",
        "```",
        f'git clone {PROJECT_URL} && cd denoiser && pip install -e ".[hf]"',
        f"denoiser sample --checkpoint {name} --out samples.png",
        "```",
        f'or in Python: `denoiser.load_sampler("{name}")`.',
        "",
    ]
    return "\n".join(lines)
