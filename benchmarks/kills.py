"""Kill the long commands with SIGKILL at random moments, rerun them, and count what was damaged or lost.

    python benchmarks/kills.py --kills 20 --seed 0 --run-dir /tmp/kills                     # train
    python benchmarks/kills.py --command export --kills 10 --seed 0 --run-dir /tmp/kills-export
    (and --command evaluate, download, embed; embed encodes with sentence_transformers/all-MiniLM-L6-v2,
    offline, so it needs an install with the `text` extra)

train: each round starts the trainer (a worker process running `denoiser.train` on a tiny shapes run that
records every finished step in RUN/steps.txt) and kills it a random delay after its first step. After every kill
it counts named checkpoints that are not whole archives; at the end it finishes the run and counts
checkpoints that do not load, leftover temporary files, log gaps, missing grids, and the steps each
rerun had to redo (the last step done before a kill minus the step the rerun resumed at).

The other commands (command_kills.py holds them): the command is run once uninterrupted into a reference
output, then started again and again on a second output, each start killed a random moment into it (up to
the reference run's duration), then run to the end. Counted: reruns that failed or printed a traceback,
files left behind (temporary files, half-made caches, locks), and whether the output differs from the reference.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

from command_kills import COMMANDS, command_kills
from common import save

# A few-thousand-parameter U-Net on 128 shapes, 10 steps an epoch, a backup every 4 steps.
TINY = (
    "model.base_width=8 model.width_multipliers=[1,2] model.blocks_per_level=1 model.self_attention=[false,true] "
    "model.cross_attention=[false,true] model.attention_heads=2 model.norm_groups=4 data.num_images=128 "
    "train.batch_size=16 train.steps_per_epoch=10 train.backup_every=4 sample.steps=2 sample.columns=2"
).split()


def worker(run_dir: str, epochs: int) -> None:
    """Train the tiny run, appending the optimizer's step count to RUN/steps.txt after every step."""
    import keras

    from denoiser import resolve_config, train
    from denoiser.config import parse_override

    steps_file = os.path.join(run_dir, "steps.txt")

    class RecordSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            with open(steps_file, "a") as handle:
                handle.write(f"{int(self.model.optimizer.iterations.numpy())}\n")

    config = resolve_config("shapes", overrides=[parse_override(text) for text in [*TINY, f"train.epochs={epochs}"]])
    train(config, run_dir, callbacks=[RecordSteps()], verbose=0)


def recorded_steps(run_dir: str) -> list[int]:
    path = os.path.join(run_dir, "steps.txt")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [int(line) for line in handle if line.strip()]


def start_worker(run_dir: str, epochs: int) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, __file__, "--worker", "--run-dir", run_dir, "--epochs", str(epochs)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def broken_archives(run_dir: str) -> list[str]:
    """Checkpoints and backups under their final names that are not whole zip archives (no TensorFlow needed)."""
    broken = []
    for folder in ("checkpoints", "backup"):
        path = os.path.join(run_dir, folder)
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
            if name.endswith(".keras") and not name.startswith(".tmp-"):
                try:
                    with zipfile.ZipFile(os.path.join(path, name)) as archive:
                        if archive.testzip() is not None:
                            broken.append(name)
                except zipfile.BadZipFile:
                    broken.append(name)
    return broken


def temporary_files(run_dir: str) -> int:
    """Files `atomic_path` was writing when the process died (the rerun removes them)."""
    folders = [os.path.join(run_dir, name) for name in ("", "checkpoints", "samples", "backup")]
    return sum(name.startswith(".tmp-") for f in folders if os.path.isdir(f) for name in os.listdir(f))


def final_counts(run_dir: str) -> dict:
    """Checkpoints that do not load, leftover temporary files, log gaps and missing grids of a finished run."""
    from denoiser.rundir import RunDirectory, read_log
    from denoiser.serialization import CheckpointError, load_model

    run = RunDirectory(run_dir)
    epochs = run.finished_epochs()
    unloadable = 0
    for path in [run.checkpoint(epoch) for epoch in epochs] + [run.latest]:
        try:
            load_model(path)
        except CheckpointError:
            unloadable += 1
    logged = [int(row["epoch"]) for row in read_log(run.log_path)]
    return {
        "epochs": len(epochs),
        "unloadable_checkpoints": unloadable,
        "leftover_temporary_files": temporary_files(run_dir),
        "log_gaps": len(set(range(1, max(epochs, default=0) + 1)) ^ set(logged)),
        "missing_grids": sum(not os.path.exists(run.sample_grid(epoch)) for epoch in epochs),
        "damaged_set_aside": sum(name.endswith(".damaged") for name in os.listdir(run.checkpoints)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="/tmp/denoiser-kills")
    parser.add_argument("--epochs", type=int, default=10_000, help="more than the kills leave time for")
    parser.add_argument("--max-delay", type=float, default=10.0, help="seconds after the round's first step")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "kills.json"))
    parser.add_argument("--command", choices=["train", *COMMANDS], default="train")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.run_dir, args.epochs)
        return
    if os.path.exists(args.run_dir):
        sys.exit(f"{args.run_dir} exists; give a new --run-dir for a fresh state.")
    os.makedirs(args.run_dir)
    if args.command != "train":
        counts = command_kills(COMMANDS[args.command](args.run_dir), args.kills, random.Random(args.seed))
        print(counts)
        save(args.out.replace("kills.json", f"kills_{args.command}.json"), counts)
        return
    rng = random.Random(args.seed)
    lost, broken_after_kill, killed_while_writing = [], 0, 0
    for round_index in range(args.kills):
        before = recorded_steps(args.run_dir)
        worker_process = start_worker(args.run_dir, args.epochs)
        while len(recorded_steps(args.run_dir)) == len(before) and worker_process.poll() is None:
            time.sleep(0.2)  # start-up (TensorFlow, the model, resuming) is not what we test
        time.sleep(rng.uniform(0.0, args.max_delay))
        worker_process.send_signal(signal.SIGKILL)
        output = worker_process.communicate()[0]
        after = recorded_steps(args.run_dir)[len(before) :]
        if before and after:  # the step it resumed at is the one before its first recorded step
            lost.append(max(0, before[-1] - (after[0] - 1)))
        broken = broken_archives(args.run_dir)
        broken_after_kill += len(broken)
        killed_while_writing += temporary_files(args.run_dir) > 0
        print(f"kill {round_index + 1}: {len(after)} steps this round, now at step {(before + after or [0])[-1]}")
        if broken or "Error" in output:
            print(output)
    done = max(recorded_steps(args.run_dir) or [0]) // 10
    finish = start_worker(args.run_dir, done + 1)  # finish the epoch under way, then count
    output = finish.communicate()[0]
    print(output.strip())
    counts = final_counts(args.run_dir)
    counts["broken_archives_right_after_kills"] = broken_after_kill
    counts["kills_while_writing_a_file"] = killed_while_writing
    counts["lost_steps_per_rerun"] = lost
    counts["max_lost_steps"] = max(lost, default=0)
    counts["backup_every"] = 4
    print(counts)
    save(args.out, counts)


if __name__ == "__main__":
    main()
