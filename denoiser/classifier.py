"""A small image classifier for judging class-conditional samples (see metrics.py and evaluation.py).

It is trained once per data set and image size on the training split and cached as a `.keras` file
in Keras's cache, `KERAS_HOME/denoiser/classifiers/<dataset>-<size>.keras` (KERAS_HOME defaults to
~/.keras); later evaluations load it with `safe_mode=True`. Its last hidden layer, `features`, gives
the features that the Frechet distance compares.

    >>> classifier = load_classifier("fashion_mnist", image_size=28)      # trains on first use
    >>> ids = predict_classes(classifier, images)                          # class ids from 1
    >>> features = classifier_features(classifier, images)                 # (N, 128)
"""

from __future__ import annotations

import functools
import os

import numpy as np

FEATURES = "features"  # the name of the layer whose output is the feature vector
TRAINING_IMAGES = {"shapes": 12000}  # built-in data sets are drawn, so choose how many; None = the whole split


def cache_path(dataset: str, image_size: int) -> str:
    """Where the classifier of `dataset` at `image_size` is cached (in Keras's cache folder)."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "denoiser", "classifiers", f"{dataset}-{image_size}.keras")


def build_classifier(image_shape: tuple[int, int, int], num_classes: int, width: int = 16):
    """Three conv blocks, global average pooling, a 128-wide `features` layer and the class logits.

    Inputs are images in [-1, 1], the sampler's output range.
    """
    import keras
    from keras import layers

    inputs = keras.Input(image_shape, name="images")
    x = inputs
    for multiplier in (1, 2, 4):
        x = layers.Conv2D(width * multiplier, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(width * multiplier, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(128, activation="relu", name=FEATURES)(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits, name="classifier")


def as_inputs(images) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] images -> float32 [-1, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype("float32") / 127.5 - 1.0
    return images.astype("float32")


def train_classifier(images, class_ids, num_classes: int, epochs: int = 2, batch_size: int = 128,
                     steps_per_epoch: int | None = None, width: int = 16, seed: int = 0, verbose: int | str = 0):
    """Train a classifier on images (uint8 or [-1, 1]) with class ids from 1; returns the Keras model."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_classifier(tuple(np.shape(images)[1:]), num_classes, width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    labels = np.asarray(class_ids).reshape(-1).astype("int32") - 1
    model.fit(as_inputs(images), labels, epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
              shuffle=True, verbose=verbose)
    return model


def load_classifier(dataset: str, image_size: int, path: str | None = None, progress: bool = False, **training):
    """The cached classifier of a named data set, trained on its training split (and cached) if missing.

    `training` goes to `train_classifier` (e.g. epochs=1 or steps_per_epoch=5 for a quick one).
    """
    import keras

    from .data import load_dataset
    from .files import atomic_path

    path = path or cache_path(dataset, image_size)
    if os.path.exists(path):
        return keras.saving.load_model(path, safe_mode=True)
    data = load_dataset(dataset, "train", num_images=TRAINING_IMAGES.get(dataset), image_size=image_size)
    if progress:
        print(f"Training a {dataset} classifier for evaluation on {len(data)} images (once; cached at {path}).")
    model = train_classifier(data.images, data.conditions, len(data.class_names), verbose=1 if progress else 0,
                             **training)
    with atomic_path(path) as temporary:
        model.save(temporary)
    return model


def predict_classes(classifier, images, batch_size: int = 256) -> np.ndarray:
    """The classifier's class id (from 1) for each image."""
    logits = classifier.predict(as_inputs(images), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1).astype("int32") + 1


@functools.lru_cache(maxsize=4)
def feature_model(classifier):
    """A model from the classifier's input to its `features` layer (made once per classifier)."""
    import keras

    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES).output)


def classifier_features(classifier, images, batch_size: int = 256) -> np.ndarray:
    """The `features` layer's output for each image (N, 128)."""
    return feature_model(classifier).predict(as_inputs(images), batch_size=batch_size, verbose=0)
