"""Pictures: sample grids with one labelled row per class or prompt."""

from __future__ import annotations

import numpy as np

from .files import atomic_path


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> [0, 255] uint8."""
    return np.round((np.clip(np.asarray(images), -1.0, 1.0) + 1.0) * 127.5).astype("uint8")


def tile(images: np.ndarray, rows: int, padding: int = 1) -> np.ndarray:
    """Arrange (N, H, W, C) images row by row into one (rows*H', cols*W', C) picture."""
    count, height, width, channels = images.shape
    columns = -(-count // rows)
    canvas = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
                     255 if images.dtype == np.uint8 else 1.0, dtype=images.dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top:top + height, left:left + width] = image
    return canvas


def save_grid(images, path, rows: int, row_labels=None, title: str | None = None, pixels_per_cell: int = 64) -> None:
    """Save images in [-1, 1] as a PNG grid, one row per label, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picture = tile(to_uint8(images), rows)
    columns = -(-len(images) // rows)
    label_width = 1.6 if row_labels is not None else 0.0
    dpi = 100
    cell = pixels_per_cell / dpi
    figure = plt.figure(figsize=(label_width + columns * cell, rows * cell + (0.35 if title else 0.0)), dpi=dpi)
    axes = figure.add_axes((label_width / (label_width + columns * cell), 0, 1 - label_width / (label_width + columns * cell),
                            rows * cell / (rows * cell + (0.35 if title else 0.0))))
    axes.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=255,
                interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    if row_labels is not None:
        step = picture.shape[0] / rows
        axes.set_yticks([step * (i + 0.5) for i in range(rows)])
        axes.set_yticklabels([str(label) for label in row_labels], fontsize=9)
        axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=10, y=0.995)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    plt.close(figure)
