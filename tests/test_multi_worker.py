"""`train.distribute=multi_worker`: two worker processes on 127.0.0.1 train one tiny model together.

Each worker is `denoiser train` in its own process with its own TF_CONFIG; both read the same
captioned cache (a memory-mapped `.npy` of images and one of caption embeddings, `data.dataset=arrays`).
Only the chief (worker 0) writes the run directory; worker 1 writes its scratch copy RUN.worker-1.
The checkpoint they write loads and samples, and equals what one process makes with the same global
batch: the two workers split each batch, and their gradients are summed.
"""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS

from denoiser.cli import main
from denoiser.model import build_unet
from denoiser.rundir import RunDirectory
from denoiser.sampler import Sampler
from denoiser.serialization import load_model

pytestmark = pytest.mark.slow  # worker processes training together

WORKER_SECONDS = 400  # each worker's bound; both usually finish in under a minute


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def data_sets(root) -> list[str]:
    """The settings of a tiny text-conditioned model on the cache in `root`."""
    data = [f"data.path={root / 'images.npy'}", f"data.embeddings={root / 'embeddings.npy'}", "data.dataset=arrays"]
    return [*data, "model.image_size=16", *TINY_MODEL_SETS, "train.batch_size=8", *QUICK_SAMPLE_SETS]


def train_args(root, run_dir, distribute):
    args = ["train", "--preset", "captions", "--run-dir", str(run_dir), "--epochs", "1", "--steps-per-epoch", "3"]
    for text in [*data_sets(root), "train.warmup_steps=1", f"train.distribute={distribute}"]:
        args += ["--set", text]
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run trained by two workers (RUN and RUN.worker-1), and the same run trained by one process."""
    root = tmp_path_factory.mktemp("multi-worker")
    rng = np.random.default_rng(0)
    np.save(root / "images.npy", rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    np.save(root / "embeddings.npy", rng.normal(size=(64, 512)).astype("float32"))
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-m", "denoiser.cli", *train_args(root, root / "run", "multi_worker")]
        log = open(root / f"worker-{index}.log", "w")
        workers.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [process.wait(timeout=WORKER_SECONDS) for process, _ in workers]
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = [(root / f"worker-{index}.log").read_text()[-3000:] for index in range(2)]
    assert codes == [0, 0], logs
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(train_args(root, root / "single", "none")) == 0
    return root


def weights_gap(first, second) -> float:
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first.get_weights(), second.get_weights()))


def test_only_the_chief_writes_the_run_directory(runs):
    assert sorted(os.listdir(runs / "run" / "checkpoints")) == ["epoch-0001.keras", "latest.keras"]
    assert os.path.isfile(runs / "run" / "log.csv") and os.path.isfile(runs / "run" / "samples" / "epoch-0001.png")
    assert not os.path.exists(runs / "run" / "lock")
    assert os.path.isdir(runs / "run.worker-1")  # worker 1's scratch copy, beside the run, never inside it


def test_two_workers_equal_one_process_with_the_same_global_batch(runs):
    chief = load_model(runs / "run" / "checkpoints" / "latest.keras")
    worker = load_model(runs / "run.worker-1" / "checkpoints" / "latest.keras")
    single = load_model(runs / "single" / "checkpoints" / "latest.keras")
    config = RunDirectory(runs / "single").run_config()  # the settings resolved by training (the encoder's width)
    keras.utils.set_random_seed(config.train.seed)
    initial = build_unet(config.model)
    assert weights_gap(chief, worker) == 0.0  # the workers hold the same weights
    moved = weights_gap(single, initial)
    assert moved > 1e-4  # three steps moved the weights...
    assert weights_gap(chief, single) < moved / 1000  # ...and two workers moved them as one process does


def test_the_checkpoint_loads_and_samples(runs):
    model = load_model(runs / "run" / "checkpoints" / "latest.keras", ema=True)
    embeddings = np.load(runs / "embeddings.npy")[:2]
    images = np.asarray(Sampler(model, steps=2).sample(embeddings, seed=1))
    assert images.shape == (2, 16, 16, 3) and np.all(np.isfinite(images))
