"""A small image classifier for judging class-conditional samples (see metrics.py and evaluation.py).

It is trained once per data set and image size on the training split and cached as a `.keras` file
in Keras's cache, `KERAS_HOME/denoiser/classifiers/<dataset>-<size>-v<VERSION>.keras` (KERAS_HOME defaults
to ~/.keras); later evaluations load it with `safe_mode=True`. An image folder's is trained on the folder's
training split and cached under a name of its own, `images-<fingerprint of the folder>-c<channels>`, so two
folders (or a folder whose files changed) never share one. Its last hidden layer, `features`, gives
the features that the Frechet distance compares.

    >>> classifier = load_classifier("fashion_mnist", image_size=28)      # trains on first use
    >>> ids = predict_classes(classifier, images)                          # class ids from 1
    >>> features = classifier_features(classifier, images)                 # (N, 128)

A judge can only measure accuracy up to its own: on Fashion-MNIST this one reaches 93% on the test split
after 10 epochs (2-4 minutes on 2 CPU cores). What made it so, over an earlier 85% one (2 epochs):
batch normalization (faster, steadier training), a flattened feature map rather than a global average
(the classes differ in *where* things are: sleeves, collars, heels) and a learning rate that decays to
zero along a cosine. Light augmentation (random shifts and flips) was tried and did not pay at this
budget: it slowed learning more than it curbed overfitting.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from denoiser.data.dataset import Dataset
from denoiser.data.folders import DATASET as IMAGE_FOLDERS
from denoiser.data.sources import load_dataset
from denoiser.utils.files import atomic_path
from denoiser.utils.images import to_unit_range
from denoiser.utils.keras_cache import keras_home
from denoiser.utils.progress import fit_verbosity

FEATURES = "features"  # the name of the layer whose output is the feature vector
VERSION = 2  # in the cache file's name: bump it when the network or its training changes
TRAINING_IMAGES = {"shapes": 12000}  # built-in data sets are drawn, so choose how many; None = the whole split


def cache_path(dataset: str, image_size: int) -> str:
    """Where the classifier of `dataset` at `image_size` is cached (in Keras's cache folder)."""
    return os.path.join(keras_home(), "denoiser", "classifiers", f"{dataset}-{image_size}-v{VERSION}.keras")


def build_classifier(image_shape: tuple[int, int, int], num_classes: int, width: int = 16):
    """Five 3x3 convolutions (1 at full size, 2 at 1/2, 2 at 1/4), each with batch norm and ReLU; the
    flattened feature map, a 128-wide `features` layer and the class logits.

    Inputs are images in [-1, 1], the sampler's output range.
    """
    import keras
    from keras import layers

    def conv(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)  # no bias: batch norm's shift does its job
        # momentum 0.9 (Keras: 0.99): the running statistics that inference uses must catch up with the
        # weights within a short training run (a few hundred steps in the tests)
        return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))

    inputs = keras.Input(image_shape, name="images")
    x = layers.MaxPooling2D(2)(conv(inputs, width))
    x = layers.MaxPooling2D(2)(conv(conv(x, 2 * width), 2 * width))
    x = conv(conv(x, 4 * width), 4 * width)
    features = layers.Dense(128, activation="relu", name=FEATURES)(layers.Dropout(0.3)(layers.Flatten()(x)))
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits, name="classifier")


def train_classifier(
    images,
    class_ids,
    num_classes: int,
    epochs: int = 10,
    batch_size: int = 128,
    steps_per_epoch: int | None = None,
    width: int = 16,
    seed: int = 0,
    verbose: int | str = 0,
):
    """Train a classifier on images (uint8 or [-1, 1]) with class ids from 1; returns the Keras model.

    Adam with a learning rate that falls from 2e-3 to 0 along a cosine over the whole run.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = build_classifier(tuple(np.shape(images)[1:]), num_classes, width)
    steps = epochs * (steps_per_epoch or math.ceil(len(images) / batch_size))
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    labels = np.asarray(class_ids).reshape(-1).astype("int32") - 1
    model.fit(
        to_unit_range(images),
        labels,
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        shuffle=True,
        verbose=verbose,
    )
    return model


def load_classifier(
    dataset: str, image_size: int, path: str | None = None, progress: bool = False, data=None, **training
):
    """The cached classifier of a data set, trained on its training split (and cached) if missing.

    `dataset` names a built-in data set, whose training split is loaded here; with `data` (the training split as
    a `Dataset`, e.g. an image folder's) it only names the cache file. `training` goes to `train_classifier`
    (e.g. epochs=1 or steps_per_epoch=5 for a quick one).
    """
    import keras

    path = path or cache_path(dataset, image_size)
    if os.path.exists(path):
        return keras.saving.load_model(path, safe_mode=True)
    subject = f"a {dataset} classifier" if data is None else classifier_of(dataset, data)
    if data is None:
        data = load_dataset(dataset, "train", num_images=TRAINING_IMAGES.get(dataset), image_size=image_size)
    data = data.in_memory()  # the readable images only, of a data set read from files
    if progress:
        print(
            f"Training {subject} for evaluation on {len(data)} images (once, a few minutes on a CPU; cached at {path})."
        )
    model = train_classifier(
        data.images, data.conditions, len(data.class_names), verbose=fit_verbosity(progress), **training
    )
    with atomic_path(path) as temporary:
        model.save(temporary)
    return model


def classifier_of(name: str, data) -> str:
    """How the progress line names a classifier of the images given to `load_classifier`: by where they come
    from and their classes, not by `name`, a cache file's name ("images-<fingerprint>-c3" for an image folder)."""
    source = "the image folder" if name.startswith(f"{IMAGE_FOLDERS}-") else "the given images"
    names = list(data.class_names)
    listed = ", ".join(names[:4] + (["..."] if len(names) > 4 else []))
    return f"a classifier of {source} (classes: {listed})"


def predict_classes(classifier, images, batch_size: int = 256) -> np.ndarray:
    """The classifier's class id (from 1) for each image."""
    logits = classifier.predict(to_unit_range(images), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1).astype("int32") + 1


@functools.lru_cache(maxsize=4)
def feature_model(classifier):
    """A model from the classifier's input to its `features` layer (made once per classifier)."""
    import keras

    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES).output)


def classifier_features(classifier, images, batch_size: int = 256) -> np.ndarray:
    """The `features` layer's output for each image (N, 128)."""
    return feature_model(classifier).predict(to_unit_range(images), batch_size=batch_size, verbose=0)


TURNS = ("upright", "turned 90 degrees", "turned 180 degrees", "turned 270 degrees")


def rotated_copies(data: Dataset) -> Dataset:
    """Every image four times, turned by 0, 90, 180 and 270 degrees and labelled by its turn (ids 1..4).

    A task that needs no labels: to tell how an image is turned, a network must learn the shapes and parts the
    images are made of (self-supervised rotation prediction, Gidaris et al. 2018). Trained on it, the classifier
    gives a folder of unlabelled images a judge of its own, whose features the Frechet distance compares.
    """
    images = data.in_memory().images
    turned = np.concatenate([np.rot90(images, turns, axes=(1, 2)) for turns in range(len(TURNS))])
    ids = np.repeat(np.arange(1, len(TURNS) + 1, dtype="int32"), len(images))
    return Dataset(np.ascontiguousarray(turned), ids, TURNS)
