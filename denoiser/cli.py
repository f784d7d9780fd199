"""The `denoiser` command line: `denoiser train`, `sample`, `inpaint`, `img2img`, `evaluate`, `export`, `web`...

Errors in what the user gave (a bad config value, a missing or damaged checkpoint) are printed
as one line and exit with status 2; an interrupted training run exits with 130 and resumes when
the same command is run again.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG_TRAIN = """examples:
  denoiser train --preset shapes                      # offline quick start, a few minutes on a CPU
  denoiser train --preset fashion_mnist --run-dir runs/fmnist
  denoiser train --preset cifar10 --epochs 50 --set model.base_width=96 --set train.mixed_precision=true

Running the same command again resumes after the last finished epoch; a larger --epochs extends
a finished run. The run directory holds config.yaml, checkpoints/, samples/ and log.csv."""

EPILOG_SAMPLE = """examples:
  denoiser sample --checkpoint runs/shapes --out samples.png
  denoiser sample --checkpoint runs/fmnist --label Dress --label 8 --num 16 --guidance 3 --out dresses.png --npz dresses.npz
  denoiser sample --checkpoint runs/shapes --solver dpmpp_2m --steps 10 --out fast.png --gif process.gif"""

EPILOG_INPAINT = """masks: white pixels (grey value >= 128) of the --mask file are generated, black ones are kept
exactly; --mask-box x0,y0,x1,y1 generates that box (pixels of the image; x1 and y1 excluded).
The image and mask are fitted to the model's square (shorter side resized, centre cut
out). --grow N outpaints: the model sees the image
moved N pixels away from --side and fills the band it uncovers; the output is N pixels wider
(or taller). --resample R repeats every stretch of --jump steps R times in all (RePaint), which
blends the new part in better at R times the network calls.

examples:
  denoiser inpaint --checkpoint runs/shapes --image shape.png --mask-box 6,6,18,18 --out filled.png
  denoiser inpaint --checkpoint runs/fmnist --image shoe.png --mask hole.png --label Sneaker --resample 4 --out shoes.png
  denoiser inpaint --checkpoint runs/shapes --image shape.png --grow 8 --side left --label 0 --out wider.png"""

EPILOG_IMG2IMG = """The image is noised to level --strength (0 keeps it, near 1 is a fresh sample) and denoised
with all --steps steps (SDEdit).

examples:
  denoiser img2img --checkpoint runs/shapes --image shape.png --strength 0.6 --label "red circle" --out redrawn.png"""


EPILOG_EVALUATE = """Class-conditional models are judged by a small classifier that is trained once on the data
set's training split and cached (KERAS_HOME/denoiser/classifiers/): conditional accuracy and the
Frechet distance of its features to the test split, with real training images scored beside them.
--inception adds FID and KID (InceptionV3, 299x299, against the test split; the ImageNet weights
download on first use). Text-conditioned models get a CLIP score. Every model gets a memorization
check: the nearest training images of a few samples, saved side by side as a PNG.

examples:
  denoiser evaluate --checkpoint runs/fashion_mnist --num 500
  denoiser evaluate --checkpoint runs/shapes/checkpoints/epoch-0004.keras --steps 10 --solver dpmpp_2m
  denoiser evaluate --checkpoint runs/cifar10 --inception --num 5000 --out cifar10-fid.json"""


def build_parser() -> argparse.ArgumentParser:
    from denoiser.presets import preset_names

    parser = argparse.ArgumentParser(prog="denoiser", description="Train and sample small diffusion models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model, or resume one",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a denoiser; checkpoints and a sample grid are written after every epoch.",
    )
    train.add_argument(
        "--preset",
        default="fashion_mnist",
        choices=preset_names(),
        help="starting configuration (default: %(default)s)",
    )
    train.add_argument("--config", metavar="FILE", help="YAML file whose values override the preset's")
    train.add_argument("--run-dir", metavar="DIR", help="where checkpoints, samples and logs go (default: runs/PRESET)")
    train.add_argument("--epochs", type=int, metavar="N", help="train until N epochs are finished (train.epochs)")
    train.add_argument(
        "--steps-per-epoch",
        type=int,
        metavar="N",
        help="batches per epoch (train.steps_per_epoch; default: one pass over the data)",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override any config key, e.g. --set model.base_width=32 (repeatable)",
    )

    sample = commands.add_parser(
        "sample",
        help="generate images from a checkpoint",
        epilog=EPILOG_SAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate a grid of images, one row per label, from a checkpoint or a run directory.",
    )
    add_sampling_arguments(sample, images="images", default_num=8)
    sample.add_argument("--npz", metavar="FILE", help="also save `images` (uint8) and `labels` as a NumPy .npz file")
    sample.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="TEXT",
        help="a prompt for a text-to-image model, instead of --label; repeatable, one row each",
    )
    sample.add_argument(
        "--encoder",
        metavar="SPEC",
        help="the text encoder, only for a checkpoint without its run's config.yaml beside it",
    )
    add_solver_arguments(sample)
    add_editing_commands(commands)
    add_evaluate_command(commands)
    add_text_commands(commands)
    add_web_commands(commands)
    return parser


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH_OR_RUN_DIR",
        help="a .keras checkpoint, or a run directory (uses checkpoints/latest.keras)",
    )


def add_sampling_arguments(parser: argparse.ArgumentParser, images: str, default_num: int) -> None:
    """The options that `sample`, `inpaint` and `img2img` share: which model, what to make, where to."""
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="class id (1..num_classes, 0 = none) or class name; repeatable (default: every class)",
    )
    parser.add_argument(
        "--num", type=int, default=default_num, metavar="N", help=f"{images} per label (default: %(default)s)"
    )
    parser.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the run's sample.steps)")
    parser.add_argument(
        "--guidance", type=float, metavar="G", help="guidance scale (default: the run's sample.guidance)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="where to write the image grid")


def add_solver_arguments(parser: argparse.ArgumentParser) -> None:
    """--solver, and --strip / --gif to see the predictions x0_hat step by step."""
    from denoiser.solvers import SOLVERS

    parser.add_argument(
        "--solver",
        default="ddim",
        choices=list(SOLVERS),
        help="ddim (first order) or dpmpp_2m (second order, ~10 steps suffice) (default: %(default)s)",
    )
    parser.add_argument("--strip", metavar="FILE.png", help="also save the prediction x0_hat of every step, a row each")
    parser.add_argument("--gif", metavar="FILE.gif", help="also save an animated GIF of the predictions x0_hat")


def parse_box(text: str) -> tuple[int, int, int, int]:
    try:
        x0, y0, x1, y1 = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected four whole numbers x0,y0,x1,y1, got {text!r}") from None
    return x0, y0, x1, y1


def add_editing_commands(commands) -> None:
    """`denoiser inpaint` (and outpainting with --grow) and `denoiser img2img`."""
    inpaint = commands.add_parser(
        "inpaint",
        help="fill in a masked part of an image, or grow it",
        epilog=EPILOG_INPAINT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate the masked part of an image (RePaint), one row of variants per label.",
    )
    img2img = commands.add_parser(
        "img2img",
        help="redraw an image from a noised copy (SDEdit)",
        epilog=EPILOG_IMG2IMG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Noise an image part of the way and denoise it again, one row of variants per label.",
    )
    for command in (inpaint, img2img):
        command.add_argument("--image", required=True, metavar="PATH", help="the input image (PNG, JPEG, ...)")
        add_sampling_arguments(command, images="variants", default_num=4)
        add_solver_arguments(command)
    where = inpaint.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", metavar="PATH", help="mask image: white = generate, black = keep")
    where.add_argument("--mask-box", type=parse_box, metavar="X0,Y0,X1,Y1", help="generate this box of the image")
    where.add_argument("--grow", type=int, metavar="PIXELS", help="outpaint: add PIXELS rows or columns on --side")
    inpaint.add_argument(
        "--side",
        default="right",
        choices=["left", "right", "top", "bottom"],
        help="where --grow adds pixels (default: %(default)s)",
    )
    inpaint.add_argument(
        "--resample",
        type=int,
        default=1,
        metavar="R",
        help="passes over every stretch of --jump steps, RePaint (default: %(default)s)",
    )
    inpaint.add_argument(
        "--jump", type=int, default=2, metavar="J", help="levels to go back up between passes (default: %(default)s)"
    )
    img2img.add_argument(
        "--strength", type=float, default=0.5, metavar="S", help="starting noise level in (0, 1) (default: %(default)s)"
    )


def add_evaluate_command(commands) -> None:
    """`denoiser evaluate`: sample quality metrics of a checkpoint, written as JSON."""
    from denoiser.solvers import SOLVERS

    evaluate = commands.add_parser(
        "evaluate",
        help="measure the quality of a checkpoint's samples",
        epilog=EPILOG_EVALUATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample from a checkpoint, score the samples and write the scores as JSON.",
    )
    evaluate.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH_OR_RUN_DIR",
        help="a .keras checkpoint inside RUN/checkpoints/, or a run directory",
    )
    evaluate.add_argument(
        "--num", type=int, default=500, metavar="N", help="samples to generate, classes in turn (default: %(default)s)"
    )
    evaluate.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the run's sample.steps)")
    evaluate.add_argument("--guidance", type=float, metavar="G", help="guidance scale (default: the run's)")
    evaluate.add_argument(
        "--solver", default="ddim", choices=list(SOLVERS), help="sampling solver (default: %(default)s)"
    )
    evaluate.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default: %(default)s)")
    evaluate.add_argument("--inception", action="store_true", help="also compute FID and KID with InceptionV3")
    evaluate.add_argument(
        "--nearest",
        type=int,
        default=8,
        metavar="N",
        help="samples in the memorization check, 0 = none (default: %(default)s)",
    )
    evaluate.add_argument(
        "--out", metavar="FILE.json", help="where to write the results (default: RUN/evaluation/CHECKPOINT.json)"
    )


def run_evaluate(args) -> None:
    from denoiser.evaluation.evaluator import evaluate, summary_lines

    results = evaluate(
        args.checkpoint,
        args.num,
        args.steps,
        args.guidance,
        args.solver,
        args.seed,
        inception=args.inception,
        out=args.out,
        nearest=args.nearest,
        progress=True,
    )
    print("\n".join(summary_lines(results)))
    print(f"Wrote {results['out']}")


def run_train(args) -> None:
    from denoiser.config import load_yaml, parse_override
    from denoiser.presets import resolve_config
    from denoiser.training import train

    overrides = [parse_override(text) for text in args.overrides]
    if args.epochs is not None:
        overrides.append({"train": {"epochs": args.epochs}})
    if args.steps_per_epoch is not None:
        overrides.append({"train": {"steps_per_epoch": args.steps_per_epoch}})
    file_values = load_yaml(args.config) if args.config else None
    config = resolve_config(args.preset, file_values, overrides)
    run_dir = args.run_dir or os.path.join("runs", args.preset)
    print(f"Training {args.preset} into {run_dir} for {config.train.epochs} epochs.")
    train(config, run_dir)
    print(f"Done. Checkpoints: {os.path.join(run_dir, 'checkpoints')}  samples: {os.path.join(run_dir, 'samples')}")


def run_sample(args) -> None:
    import numpy as np

    from denoiser.generation import generate
    from denoiser.utils.plotting import ProcessRecorder, save_grid, to_uint8

    process = ProcessRecorder() if args.strip or args.gif else None
    images, labels, names = generate(
        args.checkpoint,
        args.label,
        args.num,
        args.steps,
        args.guidance,
        args.seed,
        progress=True,
        solver=args.solver,
        callback=process,
        prompts=args.prompt,
        encoder=args.encoder,
    )
    if args.prompt:
        from denoiser.data.encoders import wrap_label

        names = [wrap_label(prompt) or "(no prompt)" for prompt in names]
    save_grid(images, args.out, rows=len(names), row_labels=names if labels.any() or args.prompt else None)
    print(f"Wrote {args.out}")
    if args.npz:
        np.savez_compressed(args.npz, images=to_uint8(images), labels=labels)
        print(f"Wrote {args.npz}")
    save_process(process, args, rows=len(names))


def run_edit(args) -> None:
    """`denoiser inpaint` and `denoiser img2img`: a grid with one row of variants per label."""
    import numpy as np

    from denoiser.editing import box_mask, image_from_file, image_to_image, inpaint, mask_from_file, outpaint
    from denoiser.generation import label_ids, load_sampler
    from denoiser.utils.plotting import ProcessRecorder, save_grid

    if args.num <= 0:
        raise ValueError(f"The number of variants per label must be positive, got {args.num}.")
    sampler, config = load_sampler(args.checkpoint, args.steps, args.guidance, args.solver)
    ids, names = label_ids(args.label, sampler, config)
    size, channels = sampler.image_shape[0], sampler.image_shape[2]
    image = image_from_file(args.image, size, channels)
    process = ProcessRecorder() if args.strip or args.gif else None
    options = dict(
        condition=None if ids is None else np.repeat(ids, args.num),
        num_images=args.num * len(names),
        seed=args.seed,
        callback=process,
        progress=True,
    )
    if args.command == "img2img":
        images = image_to_image(sampler, image, args.strength, **options)
    elif args.grow is not None:
        images = outpaint(sampler, image, args.grow, args.side, resample=args.resample, jump=args.jump, **options)
    else:
        mask = mask_from_file(args.mask, size) if args.mask else box_mask(args.mask_box, args.image, size)
        images = inpaint(sampler, image, mask, resample=args.resample, jump=args.jump, **options)
    save_grid(images, args.out, rows=len(names), row_labels=names if ids is not None else None)
    print(f"Wrote {args.out}")
    save_process(process, args, rows=len(names))


def save_process(process, args, rows: int) -> None:
    """Write the --strip and --gif pictures of the recorded predictions, where asked for."""
    if args.strip:
        process.save_strip(args.strip)
        print(f"Wrote {args.strip}")
    if args.gif:
        process.save_gif(args.gif, rows=rows)
        print(f"Wrote {args.gif}")


# ================================================================================== text-to-image
EPILOG_EMBED = """Encoders: open_clip/MODEL/PRETRAINED (default: open_clip/ViT-B-32/laion2b_s34b_b79k),
open_clip/MODEL/none (random weights, offline) or sentence_transformers/NAME_OR_PATH.
Without --out the embeddings go beside the captions, named by the encoder, where training finds them.
A rerun skips finished work and continues an interrupted one.

examples:
  denoiser embed --captions data/laion64 --encoder open_clip/ViT-B-32/laion2b_s34b_b79k
  denoiser embed --captions captions.csv --encoder sentence_transformers/all-MiniLM-L6-v2 --out minilm.npy"""

EPILOG_INTERPOLATE = """examples:
  denoiser interpolate --checkpoint runs/laion64 --from "a red dress" --to "a blue dress" --frames 8 --out dress.png
  denoiser interpolate --checkpoint runs/laion64 --prompt "a red dress" --seeds 1 2 --out dresses.png"""

EPILOG_DOWNLOAD = """examples:
  denoiser download https://drive.google.com/file/d/FILE_ID/view --to runs/ --checksum sha256:HEX
  denoiser download FILE_ID --to data/ --extract"""


def add_text_commands(commands) -> None:
    """`denoiser embed`, `denoiser interpolate` and `denoiser download`."""
    from denoiser.data.encoders import DEFAULT_ENCODER

    embed = commands.add_parser(
        "embed",
        help="embed the captions of a data set with a text encoder",
        epilog=EPILOG_EMBED,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Encode captions in batches into a .npy of embeddings (one row per captioned image).",
    )
    embed.add_argument(
        "--captions",
        required=True,
        metavar="FILE_OR_FOLDER",
        help="a captioned image folder, a CSV or parquet table, or a .txt file with one caption per line",
    )
    embed.add_argument("--encoder", default=DEFAULT_ENCODER, metavar="SPEC", help="text encoder (default: %(default)s)")
    embed.add_argument("--out", metavar="FILE.npy", help="where to write the embeddings (default: beside the captions)")
    embed.add_argument(
        "--tokens",
        action="store_true",
        help="save the token sequences (N, 77, width) for model.condition=sequence (open_clip only)",
    )
    embed.add_argument(
        "--batch-size", type=int, default=256, metavar="N", help="captions per batch (default: %(default)s)"
    )

    interpolate = commands.add_parser(
        "interpolate",
        help="a strip of images moving between two prompts or two noises",
        epilog=EPILOG_INTERPOLATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample a row of frames from a text-to-image checkpoint: from one prompt to another with the "
        "noise fixed, or from one noise to another with the prompt fixed (slerp).",
    )
    add_checkpoint_argument(interpolate)
    interpolate.add_argument("--from", dest="from_prompt", metavar="PROMPT", help="the first frame's prompt")
    interpolate.add_argument("--to", dest="to_prompt", metavar="PROMPT", help="the last frame's prompt")
    interpolate.add_argument("--prompt", metavar="PROMPT", help="the prompt of every frame, with --seeds")
    interpolate.add_argument(
        "--seeds", type=int, nargs=2, metavar=("A", "B"), help="move from seed A's noise to seed B's"
    )
    interpolate.add_argument(
        "--frames", type=int, default=8, metavar="N", help="images in the strip (default: %(default)s)"
    )
    interpolate.add_argument(
        "--seed", type=int, default=0, metavar="S", help="noise seed between prompts (default: %(default)s)"
    )
    interpolate.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the run's sample.steps)")
    interpolate.add_argument("--guidance", type=float, metavar="G", help="guidance scale (default: the run's)")
    interpolate.add_argument(
        "--encoder", metavar="SPEC", help="the text encoder, only for a checkpoint without its run"
    )
    interpolate.add_argument("--out", required=True, metavar="FILE.png", help="where to write the strip")
    interpolate.add_argument("--npz", metavar="FILE", help="also save the frames (uint8) as a NumPy .npz file")

    download = commands.add_parser(
        "download",
        help="download a checkpoint or data set from Google Drive",
        epilog=EPILOG_DOWNLOAD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download a Google Drive file with gdown; a rerun continues an interrupted download.",
    )
    download.add_argument("url_or_id", metavar="URL_OR_ID", help="a Google Drive share link or file id")
    download.add_argument("--to", default=".", metavar="DIR", help="the folder to download into (default: %(default)s)")
    download.add_argument("--checksum", metavar="ALGO:HEX", help="verify the file, e.g. sha256:... or md5:...")
    download.add_argument("--extract", action="store_true", help="unpack a .zip or .tar(.gz) archive into --to")


def run_embed(args) -> None:
    from denoiser.data.captions import caption_embeddings, read_captions

    listing = read_captions(args.captions)
    print(listing.summary())
    result = caption_embeddings(listing, args.encoder, out=args.out, tokens=args.tokens, batch_size=args.batch_size)
    state = "Already up to date" if result.reused else "Wrote"
    print(f"{state}: {result.path} {tuple(result.array.shape)} ({args.encoder})")


def run_interpolate(args) -> None:
    import textwrap

    import numpy as np

    from denoiser.generation import interpolate
    from denoiser.utils.plotting import save_grid, to_uint8

    images = interpolate(
        args.checkpoint,
        args.from_prompt,
        args.to_prompt,
        args.prompt,
        args.seeds,
        args.frames,
        args.steps,
        args.guidance,
        args.seed,
        args.encoder,
        progress=True,
    )

    def short(prompt, share=1.0):  # about 10 characters fit above each 64-pixel frame
        return textwrap.shorten(
            prompt or "(no prompt)", width=max(12, int(10 * args.frames * share) - 4), placeholder="..."
        )

    if args.seeds:
        title = f"{short(args.prompt)}: seed {args.seeds[0]} -> {args.seeds[1]}"
    else:
        title = f"{short(args.from_prompt, 0.5)} -> {short(args.to_prompt, 0.5)}"
    save_grid(images, args.out, rows=1, title=title)
    print(f"Wrote {args.out}")
    if args.npz:
        np.savez_compressed(args.npz, images=to_uint8(images))
        print(f"Wrote {args.npz}")


def run_download(args) -> None:
    from denoiser.utils.download import download_file

    print(f"Downloaded {download_file(args.url_or_id, args.to, checksum=args.checksum, extract=args.extract)}")


EPILOG_EXPORT = """The folder gets model.onnx (the network for one step), denoiser.json (image size, class names or
prompts, default steps and guidance, the noise grid) and, for text models, prompts.bin with the
embeddings of the --prompt texts (computed now; the page offers exactly these). The export checks
itself: onnxruntime and Keras must agree within 1e-4 on random inputs.

examples:
  denoiser export --checkpoint runs/shapes --format onnx --out web/models/shapes
  denoiser export --checkpoint runs/laion64 --format onnx --out web/models/laion64 --prompt "a red dress" --prompt "a castle"
  denoiser web --model web/models/shapes                 # then open the address it prints"""


def add_web_commands(commands) -> None:
    """`denoiser export` (ONNX for the web page) and `denoiser web` (serve the page and a model)."""
    from denoiser.solvers import SOLVERS

    export = commands.add_parser(
        "export",
        help="export a checkpoint to ONNX for the web page",
        epilog=EPILOG_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export the single-step network to ONNX, with the JSON the web page needs beside it.",
    )
    add_checkpoint_argument(export)
    export.add_argument("--format", default="onnx", choices=["onnx"], help="file format (default: %(default)s)")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created if needed)")
    export.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="TEXT",
        help="for a text-to-image model: a prompt the page offers (repeatable)",
    )
    export.add_argument("--prompts-file", metavar="FILE", help="more prompts, one per line")
    export.add_argument("--encoder", metavar="SPEC", help="the text encoder, only for a checkpoint without its run")
    export.add_argument("--steps", type=int, metavar="N", help="the page's default steps (default: the run's)")
    export.add_argument("--guidance", type=float, metavar="G", help="the page's default guidance (default: the run's)")
    export.add_argument("--solver", default="ddim", choices=list(SOLVERS), help="the page's default solver")

    web = commands.add_parser(
        "web",
        help="serve the web page with an exported model",
        description="Serve web/ and an export folder on this machine; the browser does the sampling.",
    )
    web.add_argument("--model", required=True, metavar="DIR", help="a folder written by `denoiser export`")
    web.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    web.add_argument("--host", default="127.0.0.1", help="(default: %(default)s; 0.0.0.0 to reach it from elsewhere)")


def run_export(args) -> None:
    from denoiser.deploy.onnx import export_onnx

    prompts = list(args.prompt)
    if args.prompts_file:
        with open(args.prompts_file) as handle:
            prompts += [line.strip() for line in handle if line.strip()]
    info = export_onnx(
        args.checkpoint,
        args.out,
        prompts=prompts,
        steps=args.steps,
        guidance=args.guidance,
        solver=args.solver,
        encoder=args.encoder,
    )
    choices = info["condition"].get("class_names") or info["condition"].get("prompts") or []
    print(
        f"Wrote {args.out}/model.onnx and denoiser.json ({info['image_size']}x{info['image_size']}, "
        f"{len(choices)} {'classes' if info['condition']['kind'] == 'class' else 'prompts'}; "
        f"onnxruntime vs Keras max difference {info['parity_max_abs_difference']:.1e})."
    )
    print(f"Open it in the browser: denoiser web --model {args.out}")


def run_web(args) -> None:
    from denoiser.deploy.server import make_server, page_url

    server = make_server(args.model, port=args.port, host=args.host)
    print(f"Serving the page with {args.model} at {page_url(server)} (Ctrl-C to stop)")
    with server:
        server.serve_forever()


TEXT_COMMANDS = {"embed": run_embed, "interpolate": run_interpolate, "download": run_download}


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up messages (oneDNN, CUDA probing) kept off the terminal.

    TensorFlow prints them before its log level applies; an import error is still raised normally.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "web":  # serving files needs no TensorFlow
        import_tensorflow_quietly()
    from denoiser.serialization import CheckpointError

    try:
        commands = {
            "train": run_train,
            "sample": run_sample,
            "inpaint": run_edit,
            "img2img": run_edit,
            "evaluate": run_evaluate,
            "export": run_export,
            "web": run_web,
            **TEXT_COMMANDS,
        }
        commands[args.command](args)
    except (ValueError, CheckpointError, OSError) as error:
        print(f"denoiser {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "resume after the last finished epoch" if args.command == "train" else "start again"
        print(f"\nInterrupted. Run the same command again to {again}.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
