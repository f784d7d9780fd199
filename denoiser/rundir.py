"""A run directory: the files of one training run, all written atomically.

config.yaml                 the resolved configuration of the run
checkpoints/epoch-0001.keras ...   the model and optimizer state after each epoch (and that epoch's log row)
checkpoints/latest.keras    a copy of the newest one
backup/step-00000400.keras  the mid-epoch state after that many steps (removed when its epoch is committed)
samples/epoch-0001.png ...  a grid from the same fixed noise after each epoch (one row per class)
log.csv                     loss, learning rate and speed per epoch
evaluation/epoch-0002.json  sample-quality scores every `train.evaluate_every` epochs (if set)
lock                        the process (pid, host) training into the directory right now

An epoch is committed when its checkpoint is renamed into place; its log row and grid can always be
redrawn from the checkpoint, so `train` repairs what an interruption left behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import time
import zipfile

import yaml

from denoiser.config import ConfigError, RunConfig, config_differences
from denoiser.utils.files import remove_temporaries, write_text

# Settings a resumed run takes up; changing any other one makes it a different run, which is refused.
CHANGEABLE_ON_RESUME = (
    "train.epochs",
    "train.learning_rate",
    "train.warmup_steps",
    "train.keep_checkpoints",
    "train.backup_every",
    "train.evaluate_every",
    "train.evaluate_num",
    "train.distribute",
    "sample.",
    "data.path",  # where the data lies may change (e.g. copied to a faster disk), what it is may not
    "data.embeddings",
)
LOG_FIELDS = ("epoch", "loss", "learning_rate", "seconds", "images_per_second")
LOG_ROW_ENTRY = "denoiser/log_row.json"  # a checkpoint carries its epoch's log row, so log.csv can be restored
STALE_LOCK_SECONDS = 10  # an unreadable lock file this old was left by a process killed while writing it


class TrainingError(RuntimeError):
    """Training cannot go on: the run directory is in use, or the loss stopped being a number."""


class RunDirectory:
    """The files of one training run (see the module docstring)."""

    CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")
    BACKUP = re.compile(r"^step-(\d{8,})\.keras$")

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.config_path = os.path.join(self.path, "config.yaml")
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.backups = os.path.join(self.path, "backup")
        self.samples = os.path.join(self.path, "samples")
        self.log_path = os.path.join(self.path, "log.csv")
        self.lock_path = os.path.join(self.path, "lock")
        self.latest = os.path.join(self.checkpoints, "latest.keras")

    def checkpoint(self, epoch: int) -> str:
        return os.path.join(self.checkpoints, f"epoch-{epoch:04d}.keras")

    def backup(self, step: int) -> str:
        return os.path.join(self.backups, f"step-{step:08d}.keras")

    def sample_grid(self, epoch: int) -> str:
        return os.path.join(self.samples, f"epoch-{epoch:04d}.png")

    def finished_epochs(self) -> list[int]:
        """Epochs with a complete checkpoint (writes are atomic, so a named file is complete)."""
        return numbered_files(self.checkpoints, self.CHECKPOINT)

    def backup_steps(self) -> list[int]:
        """Steps (counted from the start of the run) with a mid-epoch backup."""
        return numbered_files(self.backups, self.BACKUP)

    def remove_backups(self, up_to_step: int) -> None:
        """Delete the backups a committed checkpoint has made useless."""
        for step in self.backup_steps():
            if step <= up_to_step:
                os.remove(self.backup(step))

    def remove_temporaries(self) -> list[str]:
        """Delete the half-written files an interruption left (only while holding the lock)."""
        folders = (self.path, self.checkpoints, self.backups, self.samples, os.path.join(self.path, "evaluation"))
        return [path for folder in folders for path in remove_temporaries(folder)]

    @staticmethod
    def set_aside(path: str) -> str:
        """Rename a damaged file to PATH.damaged, so it is kept for inspection but no longer used."""
        os.replace(path, path + ".damaged")
        return path + ".damaged"

    @classmethod
    def around(cls, path: str | os.PathLike) -> tuple[str, RunDirectory | None]:
        """The checkpoint that `path` names, and the run directory it belongs to (None for a lone file).

        `path` is a run directory (its newest checkpoint, `checkpoints/latest.keras`, is meant) or a `.keras`
        file: inside a run's `checkpoints/` or `backup/` folder, or anywhere.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            return cls(path).latest, cls(path)
        run = cls(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        return path, run if os.path.exists(run.config_path) else None

    def run_config(self) -> RunConfig | None:
        """The run's configuration as the dataclasses, or None before it has one."""
        saved = self.read_config()
        return None if saved is None else RunConfig.from_dict(saved)

    def read_config(self) -> dict | None:
        if not os.path.exists(self.config_path):
            return None
        with open(self.config_path) as handle:
            return yaml.safe_load(handle)

    def write_config(self, config: RunConfig) -> None:
        os.makedirs(self.path, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def check_resume(self, config: RunConfig) -> list[str]:
        """The changed settings a resumed run applies; a change of any other setting is refused (ConfigError).

        Refused: the data, the network, and what a step or an epoch means (batch size, steps per epoch,
        seed, EMA, precision), so a short trial run never counts as epochs of a longer one.
        """
        saved = self.read_config()
        if saved is None:
            return []
        # Settings added to denoiser after the run was made take their defaults, as they did for the run.
        saved = RunConfig.from_dict(saved).to_dict()
        differences = config_differences(saved, config.to_dict())
        refused = [d for d in differences if not d.startswith(CHANGEABLE_ON_RESUME)]
        if refused:
            raise ConfigError(
                f"The run directory {self.path} holds a run with different settings: "
                + "; ".join(refused)
                + ". Use a new `run_dir`, or the same settings to resume."
            )
        return differences

    @contextlib.contextmanager
    def lock(self):
        """Hold RUN/lock while training; a second trainer is refused, a dead one's lock is taken over."""
        os.makedirs(self.path, exist_ok=True)
        while True:
            try:
                handle = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                self.take_over_stale_lock()
        with os.fdopen(handle, "w") as file:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, file)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.lock_path)

    def take_over_stale_lock(self) -> None:
        """Remove the lock if its process is gone; raise TrainingError naming it if it still runs."""
        holder = read_lock(self.lock_path)
        if holder is None:  # being written right now, or left half-written by a killed process
            if time.time() - os.path.getmtime(self.lock_path) < STALE_LOCK_SECONDS:
                raise TrainingError(f"{self.path} is being locked by another trainer; try again in a few seconds.")
        elif process_may_run(holder):
            raise TrainingError(
                f"{self.path} is in use by process {holder['pid']} on {holder['host']}; wait for it or stop it "
                f"(if it is gone, delete {self.lock_path})."
            )
        else:
            print(f"Taking over {self.path} from process {holder['pid']}, which is no longer running.")
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.lock_path)


def model_run_info(config: RunConfig, class_names=()) -> dict:
    """What a trained model carries about its run (model.DenoiserUNet): its data set and class names, the text
    encoder of its captions, and its sampling settings, so a lone checkpoint samples like its run."""
    return {
        "dataset": config.data.dataset,
        "class_names": list(class_names),
        "encoder": config.data.encoder,
        "sample": config.sample.to_dict(),
    }


def numbered_files(folder: str, pattern: re.Pattern) -> list[int]:
    """The numbers in the names of the files in `folder` that match `pattern`, sorted."""
    if not os.path.isdir(folder):
        return []
    return sorted(int(m.group(1)) for m in map(pattern.match, os.listdir(folder)) if m)


def read_lock(path: str) -> dict | None:
    """The {"pid", "host"} in a lock file, or None while it is empty or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        with open(path) as handle:
            holder = json.load(handle)
        if isinstance(holder, dict) and {"pid", "host"} <= set(holder):
            return holder
    return None


def process_may_run(holder: dict) -> bool:
    """False only when the process is known to be gone (same host, no such pid)."""
    if holder["host"] != socket.gethostname():
        return True  # another machine's processes cannot be checked from here
    if holder["pid"] == os.getpid():
        return True  # a second trainer in this very process
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_log(path: str, rows: list[dict]) -> None:
    """Rewrite log.csv atomically with `rows`, sorted by epoch."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: int(row["epoch"])))
    write_text(path, buffer.getvalue())


def add_log_row(checkpoint_path: str, row: dict) -> None:
    """Store an epoch's log row inside its (not yet renamed) checkpoint archive."""
    with zipfile.ZipFile(checkpoint_path, "a") as archive:
        archive.writestr(LOG_ROW_ENTRY, json.dumps(row))


def checkpoint_log_row(checkpoint_path: str) -> dict | None:
    """The log row stored in a checkpoint, or None for checkpoints written without one."""
    with contextlib.suppress(OSError, KeyError, ValueError, zipfile.BadZipFile):
        with zipfile.ZipFile(checkpoint_path) as archive:
            return json.loads(archive.read(LOG_ROW_ENTRY))
    return None
