"""The README's quick start, timed: `denoiser train --preset shapes` from an empty run directory.

    python benchmarks/quick_start.py                       # -> results/quick_start.json
    python benchmarks/quick_start.py --run-dir runs/shapes-timed

The target: recognisable samples within 5 minutes of training on 2 idle CPU cores. The time covers the
whole command (start-up, data, 6 epochs with their checkpoints and sample grids), as a user waits for it;
look at the last grid (`RUN/samples/epoch-0006.png`) to judge "recognisable".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import save

from denoiser.rundir import read_log


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="where the run goes (default: a temporary folder, removed after)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "quick_start.json"))
    args = parser.parse_args(argv)

    run_dir = args.run_dir or tempfile.mkdtemp(prefix="denoiser-quick-start-")
    if os.path.exists(os.path.join(run_dir, "checkpoints")):
        sys.exit(f"{run_dir} already holds a run; give an empty --run-dir.")
    start = time.perf_counter()
    subprocess.run(["denoiser", "train", "--preset", "shapes", "--run-dir", run_dir], check=True)
    seconds = time.perf_counter() - start
    log = read_log(os.path.join(run_dir, "log.csv"))
    print(f"denoiser train --preset shapes: {seconds:.0f} s ({seconds / 60:.1f} minutes), {len(log)} epochs")
    save(args.out, {"seconds": round(seconds, 1), "epochs": len(log), "final_loss": float(log[-1]["loss"])})
    if not args.run_dir:
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    main()
