"""`denoiser export` (a checkpoint to ONNX, for the web page) and `denoiser web` (serve the page and a model)."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli import options
from denoiser.cli.command import Command

EXPORT_EPILOG = """The folder gets model.onnx (the network for one step), denoiser.json (image size, class names or
prompts, default steps and guidance, the noise grid) and, for text models, prompts.bin with the
embeddings of the --prompt texts (computed now; the page offers exactly these). The export checks
itself: onnxruntime and Keras must agree within 1e-4 on random inputs.

With --upscale, a cascade: one such folder per stage (stage-0 the base, stage-1... the super-resolution
stages, in order) and a denoiser.json listing them; the page samples the stages one after the other with
the class or prompt chosen once. --steps and --guidance are the base's; each stage keeps its run's.

examples:
  denoiser export --checkpoint runs/shapes --format onnx --out web/models/shapes
  denoiser export --checkpoint runs/laion64 --format onnx --out web/models/laion64 --prompt "a red dress" --prompt "a castle"
  denoiser export --checkpoint runs/fmnist14 --upscale runs/fmnist_sr --format onnx --out web/models/fmnist_cascade
  denoiser web --model web/models/shapes                 # then open the address it prints"""  # noqa: E501


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="file format (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created if needed)")
    options.add_prompts(parser, "for a text-to-image model: a prompt the page offers (repeatable)")
    parser.add_argument("--prompts-file", metavar="FILE", help="more prompts, one per line")
    options.add_upscale_stages(
        parser, "export a cascade: a super-resolution stage after the checkpoint (repeatable, one stage each, in order)"
    )
    options.add_encoder(parser)
    options.add_steps_and_guidance(
        parser,
        steps_help="the page's default steps (default: the run's)",
        guidance_help="the page's default guidance (default: the run's)",
    )
    options.add_solver(parser, help_text="the page's default solver (default: the run's sample.solver)")


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="a folder written by `denoiser export`, or pretrained:NAME"
    )
    parser.add_argument("--port", type=int, default=defaults.PORT, help="(default: %(default)s)")
    parser.add_argument(
        "--host", default=defaults.HOST, help="(default: %(default)s; 0.0.0.0 to reach it from elsewhere)"
    )


EXPORT = Command(
    "export",
    help="export a checkpoint to ONNX for the web page",
    description="Export the single-step network to ONNX, with the JSON the web page needs beside it.",
    epilog=EXPORT_EPILOG,
    add_arguments=add_export_arguments,
    run="denoiser.cli.runners.web:run_export",
)

WEB = Command(
    "web",
    help="serve the web page with an exported model",
    description="Serve web/ and an export folder on this machine; the browser does the sampling.",
    add_arguments=add_web_arguments,
    run="denoiser.cli.runners.web:run_web",
)
