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
import zipfile

import yaml

from denoiser.config import ConfigError, RunConfig, config_differences, yaml_problem
from denoiser.utils.errors import short_reason
from denoiser.utils.files import remove_temporaries, set_aside, write_text
from denoiser.utils.locks import LockHeld, acquire_lock, holder_name

# Settings a resumed run takes up; changing any other one makes it a different run, which is refused.
CHANGEABLE_ON_RESUME = (
    "train.epochs",
    "train.learning_rate",
    "train.warmup_steps",
    "train.warmup_fraction",
    "train.lr_decay",
    "train.cooldown_fraction",
    "train.keep_checkpoints",
    "train.backup_every",
    "train.evaluate_every",
    "train.evaluate_num",
    "train.log_every",
    "train.distribute",
    "sample.",
    "data.path",  # where the data lies may change (e.g. copied to a faster disk), what it is may not
    "data.embeddings",
)
LOG_FIELDS = ("epoch", "loss", "learning_rate", "seconds", "images_per_second")
LOG_ROW_ENTRY = "denoiser/log_row.json"  # a checkpoint carries its epoch's log row, so log.csv can be restored
EPOCH_SO_FAR_ENTRY = "denoiser/epoch_so_far.json"  # a backup carries its epoch's loss sum, steps and seconds so far


class TrainingError(RuntimeError):
    """Training cannot go on: the run directory is in use, or the loss stopped being a number."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a denoiser model (raised by serialization.load_model)."""


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
        if saved is None:
            return None
        try:
            return RunConfig.from_saved(saved)
        except ConfigError as error:
            raise self.damaged_config(str(error).rstrip(".")) from None

    def read_config(self) -> dict | None:
        """The saved settings as a dict, None before there are any; ConfigError naming a damaged file."""
        if not os.path.exists(self.config_path):
            return None
        try:
            with open(self.config_path, encoding="utf-8") as handle:
                saved = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            raise self.damaged_config(yaml_problem(error)) from None
        except UnicodeDecodeError as error:
            raise self.damaged_config(f"it is not UTF-8 text ({error.reason})") from None
        if not isinstance(saved, dict):
            raise self.damaged_config("it holds no mapping of sections")
        return saved

    def damaged_config(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.config_path} is damaged: {problem}. Put back a copy, or train into a new `run_dir`.")

    def keep_older_settings(self, config: RunConfig) -> RunConfig:
        """`config` with the settings added to denoiser since this run was made set to what the run did, saying so
        (an older run resumes as it was trained, whatever today's defaults are)."""
        saved = self.read_config()
        if saved is None:
            return config
        kept = config.keep_older_settings(saved)
        changed = config_differences(config.to_dict(), kept.to_dict())
        if changed:
            print(
                f"{self.path} was made before these settings existed, so it keeps its own: " + "; ".join(changed) + "."
            )
        return kept

    def write_config(self, config: RunConfig) -> None:
        os.makedirs(self.path, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def check_resume(self, config: RunConfig) -> list[str]:
        """The changed settings a resumed run applies; a change of any other setting is refused (ConfigError).

        Refused: the data, the network, and what a step or an epoch means (batch size, accumulated batches,
        steps per epoch, seed, EMA, precision), so a short trial run never counts as epochs of a longer one.
        A setting that neither run reads is no difference (the condition width of a class model: older runs
        wrote 512, newer ones null).
        """
        saved = self.run_config()
        if saved is None:
            return []
        unused = saved.unused_settings() & config.unused_settings()
        differences = config_differences(saved.to_dict(), config.to_dict())
        differences = [d for d in differences if d.split(":")[0] not in unused]
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
        """Hold RUN/lock while training; a second trainer is refused, a dead one's lock is taken over.

        A directory this call made is removed again if nothing was written into it (a run that failed at once).
        """
        made = not os.path.isdir(self.path)
        os.makedirs(self.path, exist_ok=True)
        try:
            lock = acquire_lock(self.lock_path)
        except LockHeld as held:
            who = holder_name(held.holder, unknown="another trainer")
            raise TrainingError(
                f"{self.path} is in use by {who}; wait for it or stop it (if it is gone, delete {self.lock_path})."
            ) from None
        try:
            if lock.previous is not None:
                print(f"Taking over {self.path} from process {lock.previous['pid']}, which is no longer running.")
            yield
        finally:
            lock.release()
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)  # only if it is still empty


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


def read_log(path: str) -> list[dict]:
    """log.csv's rows. A file that does not read as the log is set aside as PATH.damaged, saying so; the
    trainer then restores the rows from the checkpoints, each of which carries its own."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            int(row["epoch"])
        return rows
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as error:
        print(f"{path} is damaged ({short_reason(error)}); set it aside as {set_aside(path)}, to be rebuilt.")
        return []


def write_log(path: str, rows: list[dict]) -> None:
    """Rewrite log.csv atomically with `rows`, sorted by epoch."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: int(row["epoch"])))
    write_text(path, buffer.getvalue())


def add_archive_entry(checkpoint_path: str, entry: str, values: dict) -> None:
    """Store a small JSON entry inside a (not yet renamed) `.keras` archive, which is a zip file."""
    with zipfile.ZipFile(checkpoint_path, "a") as archive:
        archive.writestr(entry, json.dumps(values))


def read_archive_entry(checkpoint_path: str, entry: str) -> dict | None:
    """A JSON entry stored in a checkpoint, or None for checkpoints written without it."""
    with contextlib.suppress(OSError, KeyError, ValueError, zipfile.BadZipFile):
        with zipfile.ZipFile(checkpoint_path) as archive:
            return json.loads(archive.read(entry))
    return None


def add_log_row(checkpoint_path: str, row: dict) -> None:
    """Store an epoch's log row inside its checkpoint, so log.csv can always be restored from it."""
    add_archive_entry(checkpoint_path, LOG_ROW_ENTRY, row)


def checkpoint_log_row(checkpoint_path: str) -> dict | None:
    """The log row stored in a checkpoint, or None for checkpoints written without one."""
    return read_archive_entry(checkpoint_path, LOG_ROW_ENTRY)
