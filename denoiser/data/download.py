"""From a URL list to a training-ready folder of captioned images, through img2dataset.

The public lists of captioned photos (LAION, Re-LAION, CC3M, CC12M, COYO) are parquet or CSV tables
of image URLs with their captions, plus numeric columns (aesthetic score, width, height...). This
module picks the rows a user asks for (`where`, `count`), writes them to `OUT/urls.parquet`, and hands
them to img2dataset, the field's downloader: many threads, retries, resize with centre crop, and
shards that a rerun skips when they are finished (its "incremental" mode). The result is the layout
`data.path` reads (captions.py):

    OUT/00000/000000000.jpg  OUT/00000/000000000.txt  ...  OUT/00000_stats.json  OUT/urls.parquet

The unit of resume is the shard (`shard_size` rows): an interrupted shard is fetched again, a finished
one never is. The summary comes from img2dataset's per-shard stats files.
"""

from __future__ import annotations

import ast
import collections
import glob
import json
import os
import threading
from dataclasses import dataclass, field

from denoiser import defaults
from denoiser.data.dataset import DataError
from denoiser.utils.progress import Progress

URL_COLUMNS = ("url", "image_url", "img_url", "link")
CAPTION_COLUMNS = ("caption", "text", "top_caption", "alt", "alt_text", "description", "prompt")
URL_LIST = "urls.parquet"  # the rows given to img2dataset, kept so that a rerun can check it is the same list


@dataclass
class DownloadSummary:
    """What img2dataset did, added up over its finished shards."""

    folder: str
    rows: int  # URLs handed to img2dataset
    downloaded: int = 0
    failed: collections.Counter = field(default_factory=collections.Counter)  # reason -> count

    def text(self) -> str:
        lines = [f"{self.folder}: downloaded {self.downloaded} of {self.rows} images"]
        for reason, count in self.failed.most_common():
            lines.append(f"  failed {count:>6}: {reason}")
        return "\n".join(lines)


# ================================================================================== the URL list
def read_url_table(path) -> "pandas.DataFrame":  # noqa: F821  (pandas is imported where it is used)
    """A parquet or CSV (or TSV) table of URLs, as a pandas DataFrame."""
    import pandas

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"The URL list {path} does not exist; give a parquet or CSV table of image URLs and captions.")
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension == ".parquet":
            return pandas.read_parquet(path)
        if extension in (".csv", ".tsv"):
            return pandas.read_csv(path, sep="\t" if extension == ".tsv" else ",")
    except Exception as error:  # pandas and pyarrow raise many kinds for a damaged table
        raise DataError(f"Cannot read the URL list {path}: {error}") from error
    raise DataError(f"{path}: the URL list must be a .parquet, .csv or .tsv table.")


def pick_column(columns, given: str | None, names: tuple[str, ...], what: str, parameter: str) -> str:
    """The column `given` by the user, or the one column whose name is in `names` (any case); `parameter` names
    the argument that gives it, for the error messages."""
    columns = list(columns)
    if given:
        if given not in columns:
            raise DataError(f"There is no column {given!r} ({parameter}); the columns are {columns}.")
        return given
    found = [column for column in columns if str(column).strip().lower() in names]
    if len(found) != 1:
        problem = f"several columns of {what} ({found})" if found else f"no column of {what}"
        raise DataError(f"The table has {problem}; name one with {parameter}. The columns are {columns}.")
    return found[0]


def check_filter(expression: str, columns) -> None:
    """Raise DataError unless `expression` is a comparison of numeric columns such as `aesthetic >= 6.5`."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise DataError(
            f"`where` {expression!r} is not a valid expression ({error.msg}); e.g. 'aesthetic >= 6.5'."
        ) from None
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise DataError(f"`where` {expression!r} names unknown column(s) {unknown}; the columns are {list(columns)}.")


def select_rows(table, url_column: str, caption_column: str, where: str | None = None, count: int | None = None):
    """The rows to download, as a table with columns `url` and `caption`: filtered, then the first `count`."""
    if where:
        check_filter(where, table.columns)
        try:
            table = table.query(where, engine="python")
        except Exception as error:  # a comparison of text with a number, a function pandas lacks...
            raise DataError(f"`where` {where!r} cannot be applied: {error}") from error
    table = table[[url_column, caption_column]].rename(columns={url_column: "url", caption_column: "caption"})
    table = table[table["url"].notna()]
    if count is not None:
        table = table.head(count)
    return table.reset_index(drop=True)


def write_url_list(rows, folder: str) -> str:
    """Write the selected rows to FOLDER/urls.parquet; a folder started from another list is an error."""
    import pandas

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, URL_LIST)
    if os.path.isfile(path):
        before = pandas.read_parquet(path)
        if not before.equals(rows):
            raise DataError(
                f"{folder} was downloaded from another URL list (or another `where` / `count`); "
                "download into another folder (`out`), or delete this one to start again."
            )
        return path
    rows.to_parquet(path + ".partial", index=False)
    os.replace(path + ".partial", path)
    return path


# ================================================================================== downloading
def download_captioned_images(
    url_list,
    out,
    size: int = defaults.IMAGE_SIZE,
    count: int | None = None,
    min_side: int = defaults.MIN_SIDE,
    where: str | None = None,
    url_column: str | None = None,
    caption_column: str | None = None,
    threads: int = defaults.THREADS,
    processes: int = defaults.PROCESSES,
    shard_size: int = defaults.SHARD_SIZE,
    timeout: int = defaults.TIMEOUT,
    retries: int = defaults.RETRIES,
    progress: bool = True,
) -> DownloadSummary:
    """Download the captioned images of a URL list into `out`, resized with centre crop to `size`.

    Images whose shorter side is below `min_side` (before resizing) are dropped. A rerun on the same
    `out` downloads only the shards that are not finished.
    """
    table = read_url_table(url_list)
    url_column = pick_column(table.columns, url_column, URL_COLUMNS, "URLs", "`url_column`")
    caption_column = pick_column(table.columns, caption_column, CAPTION_COLUMNS, "captions", "`caption_column`")
    rows = select_rows(table, url_column, caption_column, where, count)
    if not len(rows):
        raise DataError(f"No row of {url_list} is left to download (check `where` and `count`).")
    out = os.fspath(out)
    listing = write_url_list(rows, out)
    img2dataset = _img2dataset()
    watcher = _ProgressWatcher(out, len(rows)) if progress else None
    try:
        img2dataset.download(
            url_list=listing,
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            output_folder=out,
            output_format="files",
            image_size=size,
            resize_mode="center_crop",
            min_image_size=min_side,
            thread_count=threads,
            processes_count=processes,
            number_sample_per_shard=shard_size,
            timeout=timeout,
            retries=retries,
            incremental_mode="incremental",
            enable_wandb=False,
            compute_hash=None,
        )
    finally:
        if watcher is not None:
            watcher.stop()
    return read_summary(out, len(rows))


def _img2dataset():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations (under img2dataset) asks PyPI otherwise
    try:
        import img2dataset
    except ImportError as error:
        raise DataError(
            f"Downloading captioned images needs img2dataset ({error}): pip install -e '.[download]'"
        ) from error
    return img2dataset


def _stats_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*_stats.json")))


def read_summary(folder: str, rows: int) -> DownloadSummary:
    """Add up img2dataset's stats files: images downloaded, and failures by reason."""
    summary = DownloadSummary(folder, rows)
    for path in _stats_files(folder):
        with open(path) as handle:
            stats = json.load(handle)
        summary.downloaded += stats["successes"]
        for reason, count in stats["status_dict"].items():
            if reason != "success":
                summary.failed[reason] += count
    return summary


class _ProgressWatcher:
    """A progress bar of finished rows, read from the stats file img2dataset writes as each shard ends."""

    def __init__(self, folder: str, rows: int):
        self.folder, self.bar = folder, Progress("downloading", rows, unit="image")
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _done(self) -> int:
        done = 0
        for path in _stats_files(self.folder):
            try:
                with open(path) as handle:
                    done += json.load(handle)["count"]
            except (OSError, ValueError, KeyError):  # a stats file being written
                pass
        return done

    def _watch(self) -> None:
        shown = 0
        while not self.stopped.wait(1.0):
            done = self._done()
            if done != shown:
                self.bar.update(done)
                shown = done

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.bar.update(self._done())
