"""Images as arrays: uint8 <-> [-1, 1], 16-bit files read to 8 bits, and evenly spread indices."""

import numpy as np
import pytest
from PIL import Image

from denoiser.utils.images import fit_image, load_image, to_uint8, to_unit_range
from denoiser.utils.indices import evenly_spaced


def test_uint8_and_unit_range_convert_back_and_forth_exactly():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    floats = to_unit_range(pixels)
    assert floats.dtype == np.float32 and floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(to_uint8(floats), pixels)
    assert to_uint8(pixels) is pixels  # each passes its own kind through
    np.testing.assert_array_equal(to_unit_range(floats), floats)
    np.testing.assert_array_equal(to_uint8([-3.0, -1.0, 0.0, 1.0, 3.0]), [0, 0, 128, 255, 255])  # clipped, rounded


@pytest.mark.parametrize("channels", [1, 3])
def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path, channels):
    ramp = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode.startswith("I")  # Pillow opens it as 16-bit greyscale
    pixels = load_image(tmp_path / "deep.png", 32, channels)
    expected = np.round(ramp / 257.0).astype(np.uint8)
    assert pixels.shape == (32, 32, channels)
    assert np.abs(pixels.astype(int) - expected[..., None]).max() <= 1
    assert 120 < pixels.mean() < 135  # a ramp from black to white, not nearly white
    np.testing.assert_array_equal(fit_image(ramp, 32, channels), pixels)  # a uint16 array the same way


@pytest.mark.parametrize(
    "count, total, expected",
    [(4, 10, [0, 3, 6, 9]), (1, 10, [0]), (2, 5, [0, 4]), (10, 3, [0, 1, 2]), (3, 0, []), (0, 5, [])],
)
def test_evenly_spaced_indices_keep_the_ends_and_never_repeat(count, total, expected):
    assert evenly_spaced(count, total).tolist() == expected
