"""How quickly the command line answers: `denoiser --help` and `denoiser train --help`, each a fresh process.

    python benchmarks/cli_help.py                  # -> results/cli_help.json
    python benchmarks/cli_help.py --runs 11
    python benchmarks/cli_help.py --before /tmp/old    # also another checkout's, e.g. `git archive` of an older commit

Each command runs `--runs` times as `python -m denoiser.cli ...` from this checkout (a new interpreter every
time, as a user's shell starts one); the figure is the median wall time. For scale, the same is timed for
`python -c "import tensorflow"`, which every `--help` paid while the package imported everything at once, and
for `python -c pass`, the interpreter's own start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import save

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {
    "denoiser --help": ["-m", "denoiser.cli", "--help"],
    "denoiser train --help": ["-m", "denoiser.cli", "train", "--help"],
    "python -c 'import tensorflow'": ["-c", "import tensorflow"],
    "python -c pass": ["-c", "pass"],
}


def seconds(arguments: list[str], root: str = ROOT) -> float:
    """The wall time of one fresh `python ARGUMENTS` from the checkout `root`, its output thrown away."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=root, env=environment, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (default: %(default)s)")
    parser.add_argument("--before", metavar="DIR", help="also time the --help commands of the checkout in DIR")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "cli_help.json"))
    args = parser.parse_args(argv)

    load_average = list(os.getloadavg())  # before the runs: how busy the machine was
    runs = [(name, arguments, ROOT) for name, arguments in COMMANDS.items()]
    if args.before:
        runs += [(f"{name} (before)", COMMANDS[name], args.before) for name in list(COMMANDS)[:2]]
    figures = {}
    for name, arguments, root in runs:
        times = [seconds(arguments, root) for _ in range(args.runs)]
        figures[name] = {"median_seconds": round(statistics.median(times), 3), "seconds": [round(t, 3) for t in times]}
        print(f"{name}: median {statistics.median(times):.2f} s of {args.runs} runs")
    save(args.out, {"runs": args.runs, "load_average_at_start": load_average, "commands": figures})


if __name__ == "__main__":
    main()
