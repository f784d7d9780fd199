"""`denoiser config` runs: the settings a run would use, resolved, printed as YAML."""

from __future__ import annotations

import argparse

import yaml

from denoiser.cli import options


def run(args: argparse.Namespace) -> None:
    print(yaml.safe_dump(options.run_settings(args).to_dict(), sort_keys=False), end="")
