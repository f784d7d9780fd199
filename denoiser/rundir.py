"""A run directory: the files of one training run, all written atomically.

config.yaml                 the resolved configuration of the run
checkpoints/epoch-0001.keras ...   the model and optimizer state after each epoch
checkpoints/latest.keras    a copy of the newest one
samples/epoch-0001.png ...  a grid from the same fixed noise after each epoch (one row per class)
log.csv                     loss, learning rate and speed per epoch
evaluation/epoch-0002.json  sample-quality scores every `train.evaluate_every` epochs (if set)
"""

from __future__ import annotations

import csv
import os
import re

import yaml

from denoiser.config import ConfigError, RunConfig, config_differences
from denoiser.utils.files import write_text

# Sections whose change makes an existing run directory a different run (the rest may change on resume).
IDENTITY_SECTIONS = ("data", "model")
# Where the data lies may change (e.g. copied to a faster disk), what it is may not.
RELOCATABLE_KEYS = ("data.path", "data.embeddings")


class RunDirectory:
    """The files of one training run (see the module docstring)."""

    CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.config_path = os.path.join(self.path, "config.yaml")
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.samples = os.path.join(self.path, "samples")
        self.log_path = os.path.join(self.path, "log.csv")
        self.latest = os.path.join(self.checkpoints, "latest.keras")

    def checkpoint(self, epoch: int) -> str:
        return os.path.join(self.checkpoints, f"epoch-{epoch:04d}.keras")

    def sample_grid(self, epoch: int) -> str:
        return os.path.join(self.samples, f"epoch-{epoch:04d}.png")

    def finished_epochs(self) -> list[int]:
        """Epochs with a complete checkpoint (writes are atomic, so a named file is complete)."""
        if not os.path.isdir(self.checkpoints):
            return []
        return sorted(int(m.group(1)) for m in map(self.CHECKPOINT.match, os.listdir(self.checkpoints)) if m)

    def read_config(self) -> dict | None:
        if not os.path.exists(self.config_path):
            return None
        with open(self.config_path) as handle:
            return yaml.safe_load(handle)

    def write_config(self, config: RunConfig) -> None:
        os.makedirs(self.path, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def check_same_run(self, config: RunConfig) -> None:
        """Refuse to continue a run directory with a different data set or network."""
        saved = self.read_config()
        if saved is None:
            return
        new = config.to_dict()
        differences = config_differences(
            {k: saved.get(k, {}) for k in IDENTITY_SECTIONS}, {k: new[k] for k in IDENTITY_SECTIONS}
        )
        differences = [d for d in differences if not d.startswith(tuple(f"{key}:" for key in RELOCATABLE_KEYS))]
        if differences:
            raise ConfigError(
                f"The run directory {self.path} holds a run with a different configuration: "
                + "; ".join(differences)
                + ". Use a new --run-dir, or the same settings to resume."
            )


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
