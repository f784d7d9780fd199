"""A run directory written before models carried their config still samples, describes itself and resumes.

tests/data/round2_run is what `denoiser train --preset shapes` wrote with round 2's code (commit 7849648), for a
network of 8x8 images: config.yaml (with the since retired data.shuffle_buffer), log.csv and the checkpoint of
epoch 1, a plain Functional Keras model. latest.keras was a copy of it; the test puts that copy back.
"""

import os
import shutil

import numpy as np
import pytest
from helpers import command_line, tiny_train_args
from PIL import Image

from denoiser.cli import main
from denoiser.rundir import RunDirectory, read_log
from denoiser.serialization import load_sampler

OLD_RUN = os.path.join(os.path.dirname(__file__), "data", "round2_run")
# The sets the old run was trained with, beyond tiny_train_args' own: the resumed run must ask for the same.
OLD_RUN_SETS = [
    "model.image_size=8",
    "model.base_width=4",
    "model.norm_groups=2",
    "model.attention_heads=1",
    "model.noise_embedding_dim=8",
    "data.num_images=32",
    "sample.columns=1",
]


@pytest.fixture
def old_run(tmp_path):
    run = tmp_path / "round2_run"
    shutil.copytree(OLD_RUN, run)
    run_directory = RunDirectory(run)
    shutil.copyfile(run_directory.checkpoint(1), os.path.join(run_directory.checkpoints, "latest.keras"))
    return run


def test_an_old_checkpoint_is_described_by_its_runs_config(old_run):
    sampler = load_sampler(old_run)
    assert (sampler.model_config.image_size, sampler.model_config.num_classes) == (8, 8)
    assert sampler.settings.steps == 2  # the run's sample section, as the trainer wrote it


def test_an_old_run_samples_from_the_command_line(old_run, tmp_path):
    out, npz = tmp_path / "sample.png", tmp_path / "sample.npz"
    assert main(command_line("sample", checkpoint=old_run, label=0, steps=2, out=out, npz=npz)) == 0
    assert Image.open(out).size == (8 * 64, 64)  # one row of the default 8 images, 64-pixel cells, no row labels
    images = np.load(npz)["images"]
    assert images.shape == (8, 8, 8, 3)
    # The stored expectation: its one training step moved the output layer (which starts at zero) by about 1e-5,
    # leaving every x0_hat a hair below 0: every pixel is 127, not noise. A zero output layer (a network without
    # the checkpoint's weights) gives 128.
    assert np.all(images == 127)


def test_an_old_run_resumes_where_it_stopped(old_run, capsys):
    levers = ["model.preconditioning=edm", "data.loss_weighting=edm", "train.lr_decay=cosine"]  # as a preset may
    assert main(tiny_train_args(old_run, *OLD_RUN_SETS, *levers, epochs=2, steps_per_epoch=1)) == 0
    assert RunDirectory(old_run).finished_epochs() == [1, 2]
    # Settings added since (the quality levers) keep the values the old run was trained with, whatever the defaults.
    config = RunDirectory(old_run).run_config()
    assert (config.model.preconditioning, config.data.loss_weighting) == ("none", "none")
    assert (config.train.lr_decay, config.train.warmup_fraction) == ("none", None)
    assert "was made before these settings existed" in capsys.readouterr().out
    assert [row["epoch"] for row in read_log(os.path.join(old_run, "log.csv"))] == ["1", "2"]
