"""What every benchmark records beside its figures: the machine and the command that made them."""

from __future__ import annotations

import os
import platform
import shlex
import sys

from denoiser.utils.files import write_json


def machine() -> dict:
    import keras
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def command() -> str:
    return " ".join(shlex.quote(part) for part in ["python", *sys.argv])


def save(path: str, values: dict) -> None:
    """Write the figures with the machine and command, atomically."""
    write_json(path, {"command": command(), "machine": machine(), **values})
    print(f"wrote {path}")
