"""Image files fitted to a square: the one resize-and-crop used for captioned training data and for
CLIP's image input.

The shorter side is resized to the target size (bicubic) and the middle of the longer side is cut
out, so nothing is squashed: a 640x480 photo becomes its central 480x480 square, scaled down.
"""

from __future__ import annotations

import numpy as np


def fit_image(image, size: int, channels: int = 3) -> np.ndarray:
    """A PIL image or an array -> uint8 (size, size, channels): shorter side resized to `size`, centre cropped."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    image = ImageOps.fit(image.convert("L" if channels == 1 else "RGB"), (size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if channels == 1 else pixels


def load_image(path: str, size: int, channels: int = 3) -> np.ndarray:
    """Read an image file and fit it to (size, size, channels); raises OSError if it cannot be read."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here
        return fit_image(image, size, channels)
