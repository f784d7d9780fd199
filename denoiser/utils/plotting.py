"""Pictures: sample grids with one labelled row per class or prompt; strips and GIFs of the process."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from denoiser.utils.files import atomic_path
from denoiser.utils.images import to_uint8
from denoiser.utils.indices import evenly_spaced


def wrap_label(text: str, width: int = 22, lines: int = 3) -> str:
    """A caption or prompt shortened and wrapped to fit beside a row of a sample grid."""
    return "\n".join(textwrap.wrap(text, width)[:lines])


def tile(images: np.ndarray, rows: int, padding: int = 1) -> np.ndarray:
    """Arrange (N, H, W, C) images row by row into one (rows*H', cols*W', C) picture."""
    count, height, width, channels = images.shape
    columns = -(-count // rows)
    canvas = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        255 if images.dtype == np.uint8 else 1.0,
        dtype=images.dtype,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = image
    return canvas


def save_grid(images, path, rows: int, row_labels=None, title: str | None = None, pixels_per_cell: int = 64) -> None:
    """Save images in [-1, 1] as a PNG grid, one row per label, written atomically."""
    picture = tile(to_uint8(images), rows)
    columns = -(-len(images) // rows)
    label_width = 1.6 if row_labels is not None else 0.0
    dpi = 100
    cell = pixels_per_cell / dpi
    figure = Figure(figsize=(label_width + columns * cell, rows * cell + (0.35 if title else 0.0)), dpi=dpi)
    axes = figure.add_axes(
        (
            label_width / (label_width + columns * cell),
            0,
            1 - label_width / (label_width + columns * cell),
            rows * cell / (rows * cell + (0.35 if title else 0.0)),
        )
    )
    axes.imshow(
        picture.squeeze(-1) if picture.shape[-1] == 1 else picture,
        cmap="gray",
        vmin=0,
        vmax=255,
        interpolation="nearest",
    )
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


def save_image(image, path) -> None:
    """Save one image in [-1, 1] (H, W, C) as a PNG at its own size, pixel for pixel, written atomically."""
    from PIL import Image

    pixels = to_uint8(np.asarray(image))
    with atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(temporary, format="png")


class ProcessRecorder:
    """Records the prediction x0_hat after every sampler step: pass it as the `callback`.

    >>> process = ProcessRecorder()
    >>> images = sampler.sample(np.array([1, 2, 3]), seed=0, callback=process)
    >>> process.save_strip("strip.png")     # one row per step, labelled with its noise level
    >>> process.save_gif("process.gif")     # one frame per step
    """

    def __init__(self):
        self.levels: list[float] = []
        self.frames: list[np.ndarray] = []

    def __call__(self, step: int, level: float, x0_hat: np.ndarray) -> None:
        self.levels.append(float(level))
        self.frames.append(np.array(x0_hat))

    def save_strip(self, path, max_images: int = 8, max_rows: int = 12) -> None:
        """A PNG grid of the first `max_images` images' predictions, one row per step labelled with its
        noise level; of many steps, `max_rows` evenly spread ones (always the first and the last)."""
        if not self.frames:
            raise ValueError("No steps recorded: pass this recorder as the sampler's callback first.")
        steps = evenly_spaced(max_rows, len(self.frames))
        rows = np.concatenate([self.frames[step][:max_images] for step in steps])
        save_grid(rows, path, rows=len(steps), row_labels=[f"s = {self.levels[step]:.3f}" for step in steps])

    def save_gif(self, path, rows: int = 1, pixels_per_cell: int = 64, seconds_per_frame: float = 0.2) -> None:
        """An animated GIF with one frame per step, every image in `rows` rows; the last frame lingers."""
        from PIL import Image

        if not self.frames:
            raise ValueError("No steps recorded: pass this recorder as the sampler's callback first.")
        pictures = []
        for frame in self.frames:
            picture = tile(to_uint8(frame), rows)
            scale = max(1, -(-pixels_per_cell // frame.shape[1]))  # rounded up
            picture = Image.fromarray(picture.squeeze(-1) if picture.shape[-1] == 1 else picture)
            pictures.append(picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST))
        durations = [round(1000 * seconds_per_frame)] * (len(pictures) - 1) + [1500]
        with atomic_path(path, suffix=".gif") as temporary:
            pictures[0].save(
                temporary, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0
            )
