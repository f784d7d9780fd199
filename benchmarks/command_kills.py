"""SIGKILL for the long commands besides `train`: embed, export, evaluate and data download (see kills.py).

Each command is a `Case`: what it needs made once (`prepare`), its arguments for an output name, how two
outputs are compared, and which files in an output are left-overs (temporary files, half-made caches, locks).
`command_kills` runs the case once into "reference", then starts it again and again into "killed", killing
each start a random moment into it, and finally lets it finish.
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np

LEFTOVER_PATTERNS = (".tmp-*", "*.partial", "*.lock", "_tmp")  # what an interrupted writer may leave
TINY = (
    "model.base_width=8 model.width_multipliers=[1,2] model.blocks_per_level=1 model.self_attention=[false,true] "
    "model.cross_attention=[false,true] model.attention_heads=2 model.norm_groups=4 data.num_images=128 "
    "train.batch_size=16 train.steps_per_epoch=10 sample.steps=2 sample.columns=2"
).split()


def denoiser(*arguments: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the `denoiser` command line in a process of its own, output captured."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "denoiser.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def start_denoiser(*arguments: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "denoiser.cli", *arguments]
    # A session of its own, so the kill reaches its worker processes too (img2dataset's), as a lost runtime's does.
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )


def leftovers(folder: str) -> list[str]:
    """Files (or folders) in `folder`, at any depth, that only an interrupted writer leaves."""
    found = []
    for pattern in LEFTOVER_PATTERNS:
        found += glob.glob(os.path.join(glob.escape(folder), "**", pattern), recursive=True)
    return sorted(set(found))


class Case:
    """A command to kill: made once by `prepare`, run into an output named "reference" or "killed"."""

    kill_window = (0.0, 1.0)  # kills land this share of the uninterrupted run's duration into a start

    def __init__(self, work: str):
        self.work = work

    def prepare(self) -> None: ...

    def arguments(self, name: str) -> list[str]:
        raise NotImplementedError

    def output(self, name: str) -> str:
        """The folder the command writes into (it makes it)."""
        return os.path.join(self.work, name)

    def reset(self, name: str) -> None:
        """Remove an output, so that the next start has all its work to do again."""
        shutil.rmtree(self.output(name), ignore_errors=True)

    def differences(self) -> list[str]:
        raise NotImplementedError

    def left_behind(self) -> list[str]:
        return leftovers(self.output("killed"))


def train_tiny_run(run_dir: str) -> None:
    sets = [part for text in TINY for part in ("--set", text)]
    done = denoiser("train", "--preset", "shapes", "--run-dir", run_dir, "--epochs", "1", *sets)
    if done.returncode:
        sys.exit(done.stdout + done.stderr)


class Embed(Case):
    """`denoiser embed` of 6,000 distinct captions with a real sentence encoder, batch by batch."""

    def prepare(self):
        colours, shapes = ["red", "green", "blue", "yellow", "purple", "white"], ["circle", "square", "cross", "star"]
        with open(os.path.join(self.work, "captions.txt"), "w") as handle:
            for index in range(6000):
                handle.write(f"a {colours[index % 6]} {shapes[index // 6 % 4]}, picture number {index}\n")

    def arguments(self, name):
        captions = os.path.join(self.work, "captions.txt")
        return ["embed", "--captions", captions, "--encoder", "sentence_transformers/all-MiniLM-L6-v2",
                "--out", os.path.join(self.output(name), "embeddings.npy"), "--batch-size", "128"]  # fmt: skip

    def differences(self):
        reference, killed = (self.embeddings(name) for name in ("reference", "killed"))
        return [] if np.array_equal(reference, killed) else ["the embeddings differ"]

    def embeddings(self, name):
        return np.load(os.path.join(self.output(name), "embeddings.npy"))


class Export(Case):
    """`denoiser export` of a tiny trained run to ONNX (Keras's tf2onnx conversion, then the onnxruntime check)."""

    def prepare(self):
        train_tiny_run(os.path.join(self.work, "run"))

    def arguments(self, name):
        return ["export", "--checkpoint", os.path.join(self.work, "run"), "--out", self.output(name)]

    def differences(self):
        import onnxruntime

        outputs = []
        for name in ("reference", "killed"):
            session = onnxruntime.InferenceSession(os.path.join(self.output(name), "model.onnx"))
            outputs.append(session.run(None, fixed_inputs(session))[0])
            with open(os.path.join(self.output(name), "denoiser.json")) as handle:
                outputs.append(json.load(handle))
        problems = [] if np.array_equal(outputs[0], outputs[2]) else ["the networks differ"]
        return problems + ([] if outputs[1] == outputs[3] else ["denoiser.json differs"])


def fixed_inputs(session) -> dict:
    """The same inputs for any two exports of one network: a batch of 2, random numbers from seed 0."""
    rng, feeds = np.random.default_rng(0), {}
    for spec in session.get_inputs():
        shape = [n if isinstance(n, int) else 2 for n in spec.shape]
        if "int" in spec.type:
            feeds[spec.name] = rng.integers(0, 3, shape).astype("int64" if "int64" in spec.type else "int32")
        else:
            feeds[spec.name] = rng.random(shape, np.float32)
    return feeds


class Evaluate(Case):
    """`denoiser evaluate` of a tiny trained run: 200 samples scored by the shapes classifier."""

    kill_window = (0.6, 1.1)  # its files are written in the last moments (after start-up, sampling, scoring)

    def prepare(self):
        run = os.path.join(self.work, "run")
        train_tiny_run(run)
        warm_up = denoiser("evaluate", "--checkpoint", run, "--num", "8", "--out", self.output("warm-up") + ".json")
        if warm_up.returncode:  # it trained and cached the classifier, which the timed runs then load
            sys.exit(warm_up.stdout + warm_up.stderr)

    def arguments(self, name):
        run, scores = os.path.join(self.work, "run"), os.path.join(self.output(name), "scores.json")
        return ["evaluate", "--checkpoint", run, "--num", "200", "--out", scores]

    def differences(self):
        scores = []
        for name in ("reference", "killed"):
            with open(os.path.join(self.output(name), "scores.json")) as handle:
                results = json.load(handle)
            scores.append({key: value for key, value in results.items() if key not in ("seconds", "memorization")})
        return [] if scores[0] == scores[1] else ["the scores differ"]


class Download(Case):
    """`denoiser data download` of 400 captioned images from a local HTTP server that answers in 30 ms."""

    def prepare(self):
        import pandas
        from PIL import Image

        site = os.path.join(self.work, "site")
        os.makedirs(site)
        for index in range(400):
            pixels = np.random.default_rng(index).integers(0, 256, (32, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(site, f"{index}.png"))
        base = serve_slowly(site)
        names = sorted(os.listdir(site), key=lambda name: int(name.split(".")[0]))
        table = pandas.DataFrame({"URL": [f"{base}/{name}" for name in names], "TEXT": names})
        table.to_parquet(os.path.join(self.work, "urls.parquet"))

    def arguments(self, name):
        table = os.path.join(self.work, "urls.parquet")
        return ["data", "download", table, "--out", self.output(name), "--size", "16", "--shard-size", "50",
                "--threads", "4"]  # fmt: skip

    def differences(self):
        listings = []
        for name in ("reference", "killed"):
            folder = self.output(name)
            names = glob.glob(os.path.join(folder, "*", "*.txt"))
            listings.append({os.path.relpath(path, folder): open(path).read() for path in names})
        return [] if listings[0] == listings[1] and listings[0] else ["the downloaded folders differ"]


def serve_slowly(folder: str, seconds: float = 0.03) -> str:
    """Serve `folder` on 127.0.0.1 (a thread of this process), each file after `seconds`; returns the address."""

    class SlowHandler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=folder, **kwargs)

        def do_GET(self):
            time.sleep(seconds)
            with contextlib.suppress(OSError):  # a killed downloader has gone
                super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


COMMANDS = {"embed": Embed, "export": Export, "evaluate": Evaluate, "download": Download}


def command_kills(case: Case, kills: int, rng) -> dict:
    """Kill `case` `kills` times at random moments, finish it, and count what went wrong."""
    case.prepare()
    start = time.perf_counter()
    reference = denoiser(*case.arguments("reference"))
    seconds = time.perf_counter() - start
    if reference.returncode:
        sys.exit(f"the uninterrupted run failed:\n{reference.stdout}{reference.stderr}")
    finished_first, tracebacks, killed_while_writing = 0, 0, 0
    for round_index in range(kills):
        before = set(case.left_behind())
        process = start_denoiser(*case.arguments("killed"))
        delay = rng.uniform(*case.kill_window) * seconds
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        tracebacks += "Traceback" in output
        killed_while_writing += bool(set(case.left_behind()) - before)  # new files for the rerun to clear away
        if process.returncode == 0:  # it finished before the kill: start the next round from nothing again
            finished_first += 1
            case.reset("killed")
        print(f"kill {round_index + 1} after {delay:.1f} s of {seconds:.1f}: exit {process.returncode}")
    final = denoiser(*case.arguments("killed"))
    tracebacks += "Traceback" in final.stdout + final.stderr
    return {
        "command": " ".join(case.arguments("killed")),
        "kills": kills,
        "uninterrupted_seconds": round(seconds, 1),
        "finished_before_the_kill": finished_first,
        "kills_that_left_files_behind": killed_while_writing,
        "final_rerun_failed": int(final.returncode != 0),
        "tracebacks": tracebacks,
        "left_behind": case.left_behind(),
        "differences_from_uninterrupted": case.differences() if final.returncode == 0 else ["no output"],
    }
