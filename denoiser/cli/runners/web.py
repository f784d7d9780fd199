"""`denoiser export` and `denoiser web` run: write the ONNX export, serve the page."""

from __future__ import annotations

import argparse

from denoiser.deploy.onnx import export_onnx
from denoiser.deploy.server import make_server, page_url


def run_export(args: argparse.Namespace) -> None:
    prompts = list(args.prompt)
    if args.prompts_file:
        with open(args.prompts_file) as handle:
            prompts += [line.strip() for line in handle if line.strip()]
    settings = dict(steps=args.steps, guidance=args.guidance, solver=args.solver, encoder=args.encoder)
    info = export_onnx(args.checkpoint, args.out, prompts=prompts, upscales=args.upscale, **settings)
    if args.upscale:
        sizes = " -> ".join(f"{stage['image_size']}x{stage['image_size']}" for stage in info["stages"])
        print(
            f"Wrote a cascade of {len(info['stages'])} stages to {args.out} ({sizes}): stage-0/ ... and denoiser.json."
        )
    else:
        choices = info["condition"].get("class_names") or info["condition"].get("prompts") or []
        print(
            f"Wrote {args.out}/model.onnx and denoiser.json ({info['image_size']}x{info['image_size']}, "
            f"{len(choices)} {'classes' if info['condition']['kind'] == 'class' else 'prompts'}; "
            f"onnxruntime vs Keras max difference {info['parity_max_abs_difference']:.1e})."
        )
    print(f"Open it in the browser: denoiser web --model {args.out}")


def run_web(args: argparse.Namespace) -> None:
    server = make_server(args.model, port=args.port, host=args.host)
    print(f"Serving the page with {args.model} at {page_url(server)} (Ctrl-C to stop)")
    with server:
        server.serve_forever()
