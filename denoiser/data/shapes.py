"""A built-in data set of coloured shapes: no download, drawn with numpy in a second or two.

Each image is one shape (circle, square, triangle or cross) in one colour on a dark background.
A class is a colour *and* a shape, and every colour and every shape appears in two classes, so a
model has to use its condition for both: the samples show at a glance whether it does.

Shapes are drawn from signed distance functions (negative inside, positive outside, in pixels).
Coverage `clip(0.5 - distance, 0, 1)` blends each edge over one pixel, which anti-aliases the
outline without supersampling. Captions name the size, colour, shape and position, for
text-conditioned training.

    images, labels, captions = make_shapes(1000, image_size=32, seed=0)
    denoiser shapes --out preview.png                      # one row per class (save_preview)
    denoiser shapes --one "yellow cross" --out shape.png   # one image, e.g. to inpaint (save_example)
"""

from __future__ import annotations

import numpy as np

from denoiser import defaults

# (colour, shape) per class. The cycle red-green-blue-yellow over circle-square-triangle-cross pairs
# each colour with two shapes and each shape with two colours.
_CLASSES = (
    ("red", "circle"),
    ("red", "square"),
    ("green", "square"),
    ("green", "triangle"),
    ("blue", "triangle"),
    ("blue", "cross"),
    ("yellow", "cross"),
    ("yellow", "circle"),
)
CLASS_NAMES = tuple(f"{colour} {shape}" for colour, shape in _CLASSES)

COLOURS = {  # RGB, bright and far apart so they stand out on a dark background
    "red": (230, 55, 45),
    "green": (60, 205, 75),
    "blue": (55, 115, 245),
    "yellow": (245, 210, 50),
}
SHAPES = ("circle", "square", "triangle", "cross")

MIN_EXTENT, MAX_EXTENT = 0.35, 0.70  # the shape's width as a fraction of the image side
LARGE_FROM = 0.525  # extents from here on are called "large" in captions, below "small"
CENTRE_BAND = 0.08  # centre offsets within this fraction of the side count as "centre"
CHUNK = 4096  # images drawn at once; bounds the float32 working memory to a few tens of MB at 32x32


def class_name(label: int) -> str:
    """The name of a 1-based class id (0 means "no condition" and has no name)."""
    if not 1 <= label <= len(CLASS_NAMES):
        raise ValueError(f"Shape labels run from 1 to {len(CLASS_NAMES)}, got {label}.")
    return CLASS_NAMES[label - 1]


# ================================================================================== geometry
# Every function takes pixel-centre coordinates relative to the shape's centre, x right and y down,
# broadcast against per-image sizes of shape (n, 1, 1), and returns distances in pixels.
def _box(x, y, half_width, half_height):
    """Axis-aligned rectangle; exact inside and along the edges, which is all the ramp needs."""
    return np.maximum(np.abs(x) - half_width, np.abs(y) - half_height)


def _circle(x, y, extent):
    return np.sqrt(x * x + y * y) - extent / 2


def _square(x, y, extent):
    # A square looks bigger than a circle of the same width, so it is drawn a little smaller.
    half = 0.43 * extent
    return _box(x, y, half, half)


def _triangle(x, y, extent):
    """Upward equilateral triangle of width `extent`, centred on its bounding box."""
    height = extent * np.sqrt(3) / 2
    bottom = y - height / 2  # distance below the base line
    # The two slanted edges have outward normals (+-sin 60, -cos 60) = (+-0.866, -0.5).
    sides = 0.866 * np.abs(x) - 0.5 * (y + height / 2) - 0.866 * extent / 2 + 0.5 * height
    return np.maximum(bottom, sides)


def _cross(x, y, extent):
    """Plus sign: the union (minimum) of a horizontal and a vertical bar."""
    half, arm = extent / 2, 0.18 * extent
    return np.minimum(_box(x, y, half, arm), _box(x, y, arm, half))


_DISTANCE = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross}


# ================================================================================== drawing
def _draw_parameters(rng: np.random.Generator, count: int, size: int) -> dict[str, np.ndarray]:
    """Everything random about each image, drawn up front so chunking does not change the result."""
    labels = rng.permutation(np.arange(count) % len(CLASS_NAMES)) + 1  # balanced, shuffled
    extent = rng.uniform(MIN_EXTENT, MAX_EXTENT, count)
    pixels = extent * size
    # The centre keeps the whole shape in the frame, with half a pixel to spare for the soft edge.
    low, high = pixels / 2 + 0.5, size - pixels / 2 - 0.5
    centre = low[:, None] + rng.random((count, 2)) * np.maximum(high - low, 0)[:, None]
    return {
        "labels": labels.astype(np.int64),
        "extent": extent,
        "centre": centre,  # (x, y) in pixels
        "shade": rng.uniform(0.85, 1.0, count),  # slight brightness change of the shape's colour
        "background": rng.uniform(12, 40, (count, 3)),  # a dark, slightly tinted grey
        "gradient": rng.normal(0, 10, (count, 2)),  # brightness change across the image, per axis
    }


def _render(params: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Draw one chunk of images as float32 RGB in [0, 255], shape (n, size, size, 3)."""
    count = len(params["labels"])
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    ramp = (grid - size / 2) / size  # -0.5..0.5 across the image, for the background gradient

    gradient = params["gradient"].astype(np.float32)
    background = (
        params["background"].astype(np.float32)[:, None, None, :]
        + (gradient[:, 0, None, None] * ramp[None, None, :] + gradient[:, 1, None, None] * ramp[None, :, None])[
            ..., None
        ]
    )

    coverage = np.empty((count, size, size), np.float32)
    shape_of = np.array([SHAPES.index(shape) for _, shape in _CLASSES])[params["labels"] - 1]
    for index, shape in enumerate(SHAPES):
        chosen = np.flatnonzero(shape_of == index)
        if chosen.size == 0:
            continue
        centre = params["centre"][chosen].astype(np.float32)
        x = grid[None, None, :] - centre[:, 0, None, None]
        y = grid[None, :, None] - centre[:, 1, None, None]
        pixels = (params["extent"][chosen] * size).astype(np.float32)[:, None, None]
        coverage[chosen] = np.clip(0.5 - _DISTANCE[shape](x, y, pixels), 0.0, 1.0)

    palette = np.array([COLOURS[colour] for colour, _ in _CLASSES], np.float32)
    colour = palette[params["labels"] - 1] * params["shade"].astype(np.float32)[:, None]
    alpha = coverage[..., None]
    return background * (1 - alpha) + colour[:, None, None, :] * alpha


def _caption(label: int, extent: float, centre_x: float, centre_y: float, size: int) -> str:
    """E.g. "a large red circle at the top left on a dark background"."""
    colour, shape = _CLASSES[label - 1]
    size_word = "large" if extent >= LARGE_FROM else "small"
    dx, dy = centre_x / size - 0.5, centre_y / size - 0.5
    vertical = "top" if dy < -CENTRE_BAND else "bottom" if dy > CENTRE_BAND else ""
    horizontal = "left" if dx < -CENTRE_BAND else "right" if dx > CENTRE_BAND else ""
    if vertical and horizontal:
        where = f"at the {vertical} {horizontal}"
    elif vertical:
        where = f"at the {vertical}"
    elif horizontal:
        where = f"on the {horizontal}"
    else:
        where = "in the centre"
    return f"a {size_word} {colour} {shape} {where} on a dark background"


def make_shapes(
    num_images: int, image_size: int = 32, seed: int = 0, channels: int = 3
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Draw `num_images` shape images; the same seed gives the same images, labels and captions.

    Returns uint8 images (N, size, size, channels), int64 labels from 1 to len(CLASS_NAMES), and
    one caption per image. channels=1 gives greyscale (luminance) images.
    """
    if num_images < 0:
        raise ValueError(f"num_images must be 0 or more, got {num_images}.")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels for the shapes to be recognisable, got {image_size}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}.")

    params = _draw_parameters(np.random.default_rng(seed), num_images, image_size)
    images = np.empty((num_images, image_size, image_size, channels), np.uint8)
    luminance = np.array([0.299, 0.587, 0.114], np.float32)
    for start in range(0, num_images, CHUNK):
        chunk = {name: values[start : start + CHUNK] for name, values in params.items()}
        rgb = _render(chunk, image_size)
        if channels == 1:
            rgb = (rgb @ luminance)[..., None]
        images[start : start + CHUNK] = np.clip(np.rint(rgb), 0, 255)

    captions = [
        _caption(int(label), float(extent), float(x), float(y), image_size)
        for label, extent, (x, y) in zip(params["labels"], params["extent"], params["centre"])
    ]
    return images, params["labels"], captions


def save_preview(path: str, size: int = defaults.PREVIEW_SIZE, columns: int = 8) -> None:
    """One row of examples per class, as a PNG: what the data set looks like."""
    from matplotlib.figure import Figure

    images, labels, _ = make_shapes(columns * len(CLASS_NAMES) * 4, image_size=size, seed=0)
    figure = Figure(figsize=(columns * 1.1 + 1.4, len(CLASS_NAMES) * 1.1))
    axes = figure.subplots(len(CLASS_NAMES), columns, squeeze=False)
    for row, name in enumerate(CLASS_NAMES):
        for column, index in enumerate(np.flatnonzero(labels == row + 1)[:columns]):
            axes[row, column].imshow(images[index], interpolation="nearest")
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    figure.suptitle(f"shapes data set, {size}x{size}: one row per class", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def save_example(path: str, name: str, size: int = defaults.EXAMPLE_SIZE) -> None:
    """One image of the class `name`, at the data's own size: an input for `denoiser inpaint` or `img2img`."""
    from PIL import Image

    if name not in CLASS_NAMES:
        raise ValueError(f"Unknown class {name!r}; choose one of {list(CLASS_NAMES)}.")
    images, labels, _ = make_shapes(8 * len(CLASS_NAMES), image_size=size, seed=0)
    index = np.flatnonzero(labels == CLASS_NAMES.index(name) + 1)[0]
    Image.fromarray(images[index]).save(path)
