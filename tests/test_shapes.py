"""The built-in shapes data set: deterministic, balanced, in range, with captions that match the labels."""

import numpy as np
import pytest

from denoiser.data.shapes import CLASS_NAMES, class_name, make_shapes


def test_same_seed_same_images_and_other_seed_other_images():
    first, labels, captions = make_shapes(64, image_size=16, seed=3)
    again, labels_again, captions_again = make_shapes(64, image_size=16, seed=3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert captions == captions_again
    assert not np.array_equal(first, make_shapes(64, image_size=16, seed=4)[0])


def test_classes_are_balanced_and_captions_name_the_class():
    images, labels, captions = make_shapes(800, image_size=24)
    assert images.shape == (800, 24, 24, 3) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=len(CLASS_NAMES) + 1)[1:].tolist() == [100] * len(CLASS_NAMES)
    assert all(class_name(int(label)) in caption for label, caption in zip(labels, captions))


def test_the_shape_has_the_class_colour_and_stands_out_from_the_background():
    images, labels, _ = make_shapes(200, image_size=32)
    red = images[labels == 1].astype(float)  # "red circle"
    brightest = red.reshape(len(red), -1, 3)[np.arange(len(red)), red.sum(-1).reshape(len(red), -1).argmax(1)]
    assert (brightest[:, 0] > 150).all() and (brightest[:, 1] < 100).all()
    assert (images.reshape(200, -1).std(axis=1) > 20).all()  # never a blank image


def test_greyscale_and_bad_arguments():
    grey, _, _ = make_shapes(4, image_size=16, channels=1)
    assert grey.shape == (4, 16, 16, 1)
    with pytest.raises(ValueError, match="channels"):
        make_shapes(4, channels=2)
    with pytest.raises(ValueError, match="image_size"):
        make_shapes(4, image_size=4)
    with pytest.raises(ValueError, match="1 to 8"):
        class_name(0)
