"""`denoiser embed` (caption embeddings for text-to-image training), `denoiser data download` (captioned
images from a URL list, through img2dataset) and `denoiser download` (one file from Google Drive)."""

from __future__ import annotations

import argparse

from denoiser import defaults
from denoiser.cli import options
from denoiser.cli.command import Command
from denoiser.config_rules import DEFAULT_ENCODER

EMBED_EPILOG = """Encoders: open_clip/MODEL/PRETRAINED (default: open_clip/ViT-B-32/laion2b_s34b_b79k),
open_clip/MODEL/none (random weights, offline) or sentence_transformers/NAME_OR_PATH.
Without --out the embeddings go beside the captions, named by the encoder, where training finds them.
A rerun skips finished work and continues an interrupted one.

examples:
  denoiser embed --captions data/laion64 --encoder open_clip/ViT-B-32/laion2b_s34b_b79k
  denoiser embed --captions captions.csv --encoder sentence_transformers/all-MiniLM-L6-v2 --out minilm.npy"""

DOWNLOAD_EPILOG = """examples:
  denoiser download https://drive.google.com/file/d/FILE_ID/view --to runs/ --checksum sha256:HEX
  denoiser download FILE_ID --to data/ --extract"""


DATA_DOWNLOAD_EPILOG = """The URL list is a parquet, CSV or TSV table with a URL column and a caption column: LAION,
Re-LAION, CC3M, CC12M and COYO metadata files are such tables. Images are resized with centre crop to
--size and written in img2dataset's layout, which data.path reads. A rerun continues an interrupted
download: finished shards are not fetched again.

examples:
  denoiser data download laion-aesthetics.parquet --out data/laion64 --where "aesthetic >= 6.5" --count 600000
  denoiser data download cc3m.tsv --out data/cc3m64 --url-column url --caption-column caption --min-side 128
  denoiser train --preset laion64 --set data.path=data/laion64"""


def add_embed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--captions",
        required=True,
        metavar="FILE_OR_FOLDER",
        help="a captioned image folder, a CSV or parquet table, or a .txt file with one caption per line",
    )
    parser.add_argument(
        "--encoder", default=DEFAULT_ENCODER, metavar="SPEC", help="text encoder (default: %(default)s)"
    )
    parser.add_argument(
        "--out", metavar="FILE.npy", help="where to write the embeddings (default: beside the captions)"
    )
    parser.add_argument(
        "--tokens",
        action="store_true",
        help="save the token sequences (N, 77, width) for model.condition=sequence (open_clip only)",
    )
    parser.add_argument(
        "--batch-size",
        type=options.positive_int,
        default=defaults.EMBED_BATCH_SIZE,
        metavar="N",
        help="captions per batch (default: %(default)s)",
    )


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url_or_id", metavar="URL_OR_ID", help="a Google Drive share link or file id")
    parser.add_argument(
        "--to", default=defaults.DOWNLOAD_TO, metavar="DIR", help="the folder to download into (default: %(default)s)"
    )
    parser.add_argument("--checksum", metavar="ALGO:HEX", help="verify the file, e.g. sha256:... or md5:...")
    parser.add_argument("--extract", action="store_true", help="unpack a .zip or .tar(.gz) archive into --to")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = actions.add_parser(
        "download",
        help="download the captioned images of a URL list (img2dataset)",
        description="Download the captioned images of a URL list into a training-ready folder, through img2dataset.",
        epilog=DATA_DOWNLOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument("url_list", metavar="URL_LIST", help="a parquet, CSV or TSV table of image URLs and captions")
    download.add_argument("--out", required=True, metavar="DIR", help="the folder to download into")
    download.add_argument(
        "--size",
        type=options.positive_int,
        default=defaults.IMAGE_SIZE,
        metavar="PIXELS",
        help="image side (default: %(default)s)",
    )
    download.add_argument("--count", type=options.positive_int, metavar="N", help="download the first N rows only")
    download.add_argument(
        "--min-side",
        type=int,
        default=defaults.MIN_SIDE,
        metavar="PIXELS",
        help="drop images whose shorter side is smaller",
    )
    download.add_argument(
        "--where", metavar="EXPRESSION", help="keep the rows where this holds, e.g. 'aesthetic >= 6.5'"
    )
    download.add_argument("--url-column", metavar="NAME", help="the column of URLs (default: detected)")
    download.add_argument("--caption-column", metavar="NAME", help="the column of captions (default: detected)")
    download.add_argument(
        "--threads",
        type=options.positive_int,
        default=defaults.THREADS,
        metavar="N",
        help="download threads (default: %(default)s)",
    )
    download.add_argument(
        "--processes",
        type=options.positive_int,
        default=defaults.PROCESSES,
        metavar="N",
        help="processes (default: %(default)s)",
    )
    download.add_argument(
        "--shard-size",
        type=options.positive_int,
        default=defaults.SHARD_SIZE,
        metavar="N",
        help="images per shard, the unit of resume (default: %(default)s)",
    )
    download.add_argument(
        "--timeout",
        type=options.positive_int,
        default=defaults.TIMEOUT,
        metavar="SECONDS",
        help="per image (default: %(default)s)",
    )
    download.add_argument(
        "--retries",
        type=int,
        default=defaults.RETRIES,
        metavar="N",
        help="retries of a failed image (default: %(default)s)",
    )


EMBED = Command(
    "embed",
    help="embed the captions of a data set with a text encoder",
    description="Encode captions in batches into a .npy of embeddings (one row per captioned image).",
    epilog=EMBED_EPILOG,
    add_arguments=add_embed_arguments,
    run="denoiser.cli.runners.data:run_embed",
)

DOWNLOAD = Command(
    "download",
    help="download a checkpoint or data set from Google Drive",
    description="Download a Google Drive file with gdown; a rerun continues an interrupted download.",
    epilog=DOWNLOAD_EPILOG,
    add_arguments=add_download_arguments,
    run="denoiser.cli.runners.data:run_download",
)

DATA = Command(
    "data",
    help="get training data: `denoiser data download URL_LIST --out DIR` (captioned images from a URL list)",
    description="Get training data. `data download`: the captioned images of a URL list, through img2dataset.",
    add_arguments=add_data_arguments,
    run="denoiser.cli.runners.data:run_data",
    on_interrupt="continue the download",
)
