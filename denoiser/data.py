"""Training data: load image data sets and turn them into batches of noised images.

A data set here is a `Dataset`: uint8 images (N, H, W, C), one condition per image (a class id
from 1, since 0 means "no condition", or an embedding vector), and class names for the labels.
`training_pipeline` then builds the `tf.data` pipeline that `model.fit` consumes. Arrays in memory
become tensors and everything per batch happens in the TensorFlow graph; arrays in files too big
for memory (captioned data sets, captions.py) are read a batch of rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schedule import add_noise, training_noise_levels

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain",
    "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose",
    "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel",
    "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

KERAS_DATASETS = {
    "fashion_mnist": FASHION_MNIST_CLASSES,
    "mnist": MNIST_CLASSES,
    "cifar10": CIFAR10_CLASSES,
    "cifar100": CIFAR100_CLASSES,
}
CAPTIONED_DATASETS = ("captions", "arrays")  # text-conditioned data from files: see captions.py
DATASETS = (*KERAS_DATASETS, "shapes", *CAPTIONED_DATASETS)


class DataError(ValueError):
    """The data cannot be loaded or does not fit the model; the message says why and what to do."""


@dataclass
class Dataset:
    """Images (N, H, W, C) uint8, conditions (N,) int class ids from 1 or (N, ...) float embeddings.

    captions: one caption per image, for labelling sample grids (text-conditioned data).
    rows: the indices of the images to train on, for arrays that stay in (memory-mapped) files and
        hold rows to leave out, e.g. unreadable images; training then reads batches by index.
    """

    images: np.ndarray
    conditions: np.ndarray
    class_names: tuple[str, ...] = ()
    captions: list[str] | None = None
    rows: np.ndarray | None = None

    def __post_init__(self):
        if self.images.ndim == 3:
            self.images = self.images[..., None]
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DataError(
                f"images must be uint8 of shape (N, H, W, C); got {self.images.dtype} {self.images.shape}."
            )
        if len(self.conditions) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.conditions)} conditions; give one per image.")

    def __len__(self) -> int:
        return len(self.images) if self.rows is None else len(self.rows)

    @property
    def is_class_conditional(self) -> bool:
        return np.issubdtype(self.conditions.dtype, np.integer)

    def take(self, count: int | None) -> "Dataset":
        if count is None:
            return self
        if self.rows is not None:
            return Dataset(self.images, self.conditions, self.class_names, self.captions, self.rows[:count])
        captions = None if self.captions is None else self.captions[:count]
        return Dataset(self.images[:count], self.conditions[:count], self.class_names, captions)

    def examples(self, count: int) -> tuple[np.ndarray, list[str]]:
        """`count` conditions spread evenly over the data set, with their captions (for sample grids)."""
        rows = np.arange(len(self.images)) if self.rows is None else np.asarray(self.rows)
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int))]
        captions = [self.captions[row] if self.captions is not None else "" for row in rows]
        return np.asarray(self.conditions[rows]), captions


def load_dataset(name: str, split: str = "train", num_images: int | None = None, image_size: int = 24) -> Dataset:
    """Load a named data set. Keras data sets download on first use and are read from Keras's cache after.

    `image_size` only applies to "shapes", which is drawn on the fly at any size.
    """
    if name == "shapes":
        from .shapes import CLASS_NAMES, make_shapes

        count = num_images or 20000
        seed = 0 if split == "train" else 1
        images, labels, _captions = make_shapes(count, image_size=image_size, seed=seed)
        return Dataset(images, labels.astype("int32"), tuple(CLASS_NAMES))
    if name in CAPTIONED_DATASETS:
        raise DataError(
            f"The {name!r} data set is read from files: use denoiser.load_captioned_dataset, or train with "
            "data.path set (see captions.py)."
        )
    if name not in KERAS_DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
    import keras

    loader = getattr(keras.datasets, name).load_data
    try:
        (train_images, train_labels), (test_images, test_labels) = loader()
    except Exception as error:  # no network and no cached copy, most often
        raise DataError(
            f"Could not load {name} through keras.datasets ({error}). It downloads on first use; "
            "check the network connection, or put the files in Keras's cache (~/.keras/datasets)."
        ) from error
    images, labels = (train_images, train_labels) if split == "train" else (test_images, test_labels)
    conditions = labels.reshape(-1).astype("int32") + 1  # id 0 is reserved for "no condition"
    return Dataset(images, conditions, KERAS_DATASETS[name]).take(num_images)


def check_fits_model(dataset: Dataset, model_config) -> None:
    """Raise `DataError` if the images or conditions don't match what the network expects."""
    expected = (model_config.image_size, model_config.image_size, model_config.channels)
    if dataset.images.shape[1:] != expected:
        raise DataError(
            f"The data's images are {dataset.images.shape[1:]} but the model expects {expected}; "
            "set model.image_size and model.channels to match the data."
        )
    if model_config.condition in ("vector", "sequence"):
        expected = (model_config.condition_dim,) if model_config.condition == "vector" else (
            model_config.condition_tokens, model_config.condition_dim)
        if dataset.is_class_conditional or dataset.conditions.shape[1:] != expected:
            raise DataError(
                f"The model expects conditions of shape {expected} (model.condition={model_config.condition}) but the "
                f"data's are {dataset.conditions.dtype} {dataset.conditions.shape[1:]}; set model.condition_dim (and "
                "model.condition_tokens) to the encoder's output."
            )
    if model_config.condition == "class":
        if not dataset.is_class_conditional:
            raise DataError("The model expects class ids (model.condition=class) but the data holds embeddings.")
        top = int(dataset.conditions.max())
        if top > model_config.num_classes:
            raise DataError(
                f"The data has class ids up to {top} but model.num_classes={model_config.num_classes}; "
                f"set model.num_classes={top}."
            )


def scale_images(images):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def drop_conditions(conditions, uniform, rate: float):
    """Replace a share `rate` of the conditions by "no condition" (class 0 or the zero vector).

    The network thus also learns the unconditional prediction, which guidance needs.
    """
    import tensorflow as tf

    keep = uniform >= rate
    keep = tf.reshape(keep, [-1] + [1] * (len(conditions.shape) - 1))
    return tf.where(keep, conditions, tf.zeros_like(conditions))


def noise_batch(images, conditions, seed, label_dropout: float = 0.15, distribution: str = "folded_normal"):
    """One training batch: ((x_t, s, condition), x0) from uint8 images and conditions, all in graph.

    `seed` is a pair of integers for TensorFlow's stateless random ops, so a batch is reproducible.
    """
    import tensorflow as tf

    x0 = scale_images(images)
    batch = tf.shape(x0)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    noise = tf.random.stateless_normal(tf.shape(x0), seed=seeds[0])
    levels = training_noise_levels(tf.random.stateless_uniform([batch, 1], seed=seeds[1]), distribution)
    dropout_draws = tf.random.stateless_uniform([batch], seed=seeds[2])
    x_t = add_noise(x0, noise, tf.reshape(levels, [-1, 1, 1, 1]))
    if len(conditions.shape) == 1:  # class ids: the network takes (B, 1)
        conditions = conditions[:, None]
    conditions = drop_conditions(conditions, dropout_draws, label_dropout)
    return (x_t, levels, conditions), x0


def training_pipeline(
    dataset: Dataset,
    batch_size: int,
    label_dropout: float = 0.15,
    distribution: str = "folded_normal",
    shuffle_buffer: int = 60000,
    seed: int = 0,
    repeat: bool = False,
):
    """A `tf.data.Dataset` of noised batches: shuffled anew every epoch, prefetched, no Python per batch."""
    import tensorflow as tf

    if len(dataset) < batch_size:
        raise DataError(f"The data set has {len(dataset)} images, fewer than one batch of {batch_size}.")
    if dataset.rows is None:
        images = tf.data.Dataset.from_tensor_slices((dataset.images, dataset.conditions))
        images = images.shuffle(min(shuffle_buffer, len(dataset)), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            images = images.repeat()
        batches = images.batch(batch_size, drop_remainder=True)
    else:
        batches = batches_by_index(dataset, batch_size, seed, repeat)
    # A fresh stream of random seeds every epoch, so each epoch sees new noise.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    pipeline = tf.data.Dataset.zip(batches, seeds).map(
        lambda batch, pair_seed: noise_batch(batch[0], batch[1], pair_seed, label_dropout, distribution),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return pipeline.prefetch(tf.data.AUTOTUNE)


def batches_by_index(dataset: Dataset, batch_size: int, seed: int = 0, repeat: bool = False):
    """Batches of (images, conditions) read from (memory-mapped) arrays by shuffled row indices.

    Only the indices live in TensorFlow; each batch's rows are read from the files when needed,
    so the data set never has to fit in memory.
    """
    import tensorflow as tf

    images, conditions = dataset.images, dataset.conditions

    def read(indices):
        indices = np.sort(indices)  # reading a file front to back is faster; a batch's order does not matter
        return np.asarray(images[indices]), np.asarray(conditions[indices])

    def read_batch(indices):
        batch_images, batch_conditions = tf.numpy_function(
            read, [indices], [tf.uint8, tf.as_dtype(conditions.dtype)], stateful=False
        )
        batch_images.set_shape([batch_size, *images.shape[1:]])
        batch_conditions.set_shape([batch_size, *conditions.shape[1:]])
        return batch_images, batch_conditions

    order = tf.data.Dataset.from_tensor_slices(np.asarray(dataset.rows, dtype=np.int64))
    order = order.shuffle(len(dataset), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        order = order.repeat()
    return order.batch(batch_size, drop_remainder=True).map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)


def dataset_for_config(config) -> Dataset:
    """The training data that a run config names: a built-in data set, or captioned images from files."""
    data = config.data
    if data.dataset in CAPTIONED_DATASETS:
        from .captions import dataset_from_config

        return dataset_from_config(config)
    return load_dataset(data.dataset, num_images=data.num_images, image_size=config.model.image_size)
