"""`denoiser config` runs: the settings a run would use, resolved, printed as YAML."""

from __future__ import annotations

import argparse

import yaml

from denoiser.cli import options
from denoiser.data.folders import fit_config_to_folder


def run(args: argparse.Namespace) -> None:
    config = fit_config_to_folder(options.run_settings(args))  # as train() would: an image folder sets the condition
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
