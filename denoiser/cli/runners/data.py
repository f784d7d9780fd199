"""`denoiser embed`, `denoiser download` and `denoiser data download` run: embed captions, fetch a file, fetch
a URL list's images."""

from __future__ import annotations

import argparse

from denoiser.data.captions import caption_embeddings, read_captions
from denoiser.data.download import download_captioned_images
from denoiser.utils.download import download_file


def run_embed(args: argparse.Namespace) -> None:
    listing = read_captions(args.captions)
    print(listing.summary())
    result = caption_embeddings(listing, args.encoder, out=args.out, tokens=args.tokens, batch_size=args.batch_size)
    state = "Already up to date" if result.reused else "Wrote"
    print(f"{state}: {result.path} {tuple(result.array.shape)} ({args.encoder})")


def run_download(args: argparse.Namespace) -> None:
    print(f"Downloaded {download_file(args.url_or_id, args.to, checksum=args.checksum, extract=args.extract)}")


def run_data(args: argparse.Namespace) -> None:
    summary = download_captioned_images(
        args.url_list,
        args.out,
        size=args.size,
        count=args.count,
        min_side=args.min_side,
        where=args.where,
        url_column=args.url_column,
        caption_column=args.caption_column,
        threads=args.threads,
        processes=args.processes,
        shard_size=args.shard_size,
        timeout=args.timeout,
        retries=args.retries,
    )
    print(summary.text())
    print(f"Train on it: denoiser train --preset captions --set data.path={args.out}")
