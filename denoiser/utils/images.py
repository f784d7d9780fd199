"""Images as arrays: the one conversion between uint8 pixels and the network's [-1, 1] floats, and image
files fitted to a square, the one resize-and-crop used for captioned training data, editing and CLIP's input.

The shorter side is resized to the target size (bicubic) and the middle of the longer side is cut
out, so nothing is squashed: a 640x480 photo becomes its central 480x480 square, scaled down.
(`objective.scale_images` is the TensorFlow twin of `to_unit_range`, for the tf.data graph.)
"""

from __future__ import annotations

import numpy as np
from keras import ops

# Pillow's modes for 16-bit greyscale (a 16-bit PNG opens as one of them; older Pillows say "I").
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_uint8(images) -> np.ndarray:
    """Floats in [-1, 1] -> uint8 [0, 255], rounded (values outside are clipped); uint8 images pass unchanged."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def to_unit_range(images) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (a pixel p becomes p / 127.5 - 1); floats pass as float32."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images.astype(np.float32)


def downsample(images, size: int):
    """Area downsampling: (B, H, W, C) images -> (B, size, size, C), each pixel the mean of its H // size block.

    Works on float NumPy arrays and tensors alike (also in the `tf.data` graph).
    """
    factor = images.shape[1] // size
    return ops.average_pool(ops.convert_to_tensor(images, "float32"), factor, strides=factor, padding="valid")


def nearest_upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Blow (N, h, w, C) images up to size x size by repeating pixels (to show a low-res image beside others)."""
    factor = size // images.shape[1]
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def size_text(shape) -> str:
    """(14, 14, 1) -> '14x14'."""
    return f"{shape[0]}x{shape[1]}"


def eight_bit(image):
    """A PIL image with 16-bit greyscale scaled to 8-bit "L" (65535 -> 255); others unchanged.

    Pillow's own `convert("L")` clips 16-bit values at 255 instead, which turns such a picture nearly white.
    """
    from PIL import Image

    if image.mode not in SIXTEEN_BIT_MODES:
        return image
    pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
    return Image.fromarray(np.round(pixels / 257.0).astype(np.uint8))


def fit_image(image, size: int, channels: int = 3) -> np.ndarray:
    """A PIL image or an array -> uint8 (size, size, channels): shorter side resized to `size`, centre cropped."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    image = eight_bit(image).convert("L" if channels == 1 else "RGB")
    image = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if channels == 1 else pixels


def load_image(path, size: int, channels: int = 3) -> np.ndarray:
    """Read an image file and fit it to (size, size, channels); raises OSError if it cannot be read."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here
        return fit_image(image, size, channels)


def image_size(path) -> tuple[int, int]:
    """The (width, height) of an image file, read from its header; raises OSError if it cannot be read."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size
