"""Every data source by name: Fashion-MNIST, MNIST, CIFAR-10/100 (through `keras.datasets`), the
built-in shapes, folders of images (folders.py), and captioned images from files (captions.py) or Hugging Face
(huggingface.py), each as a `Dataset`; `dataset_for_config` is the one place that turns a run config's `data`
section into one.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

from denoiser.data.captions import embeddings_cache_path, load_array_dataset, load_captioned_dataset
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.encoders import DEFAULT_ENCODER, encoder_output_shape
from denoiser.data.folders import DATASET as IMAGE_FOLDERS
from denoiser.data.folders import load_image_folder, read_image_folder
from denoiser.data.huggingface import is_huggingface_source, load_huggingface_dataset
from denoiser.data.shapes import CLASS_NAMES as SHAPES_CLASSES
from denoiser.data.shapes import make_shapes
from denoiser.utils.errors import short_reason
from denoiser.utils.images import downsample
from denoiser.utils.keras_cache import keras_home

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR100_CLASSES = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)

KERAS_DATASETS = {
    "fashion_mnist": FASHION_MNIST_CLASSES,
    "mnist": MNIST_CLASSES,
    "cifar10": CIFAR10_CLASSES,
    "cifar100": CIFAR100_CLASSES,
}
CAPTIONED_DATASETS = ("captions", "arrays")  # text-conditioned data from files: see captions.py
DATASETS = (*KERAS_DATASETS, "shapes", IMAGE_FOLDERS, *CAPTIONED_DATASETS)


def load_dataset(name: str, split: str = "train", num_images: int | None = None, image_size: int = 24) -> Dataset:
    """Load a named data set. Keras data sets download on first use and are read from Keras's cache after.

    `image_size` only applies to "shapes", which is drawn on the fly at any size.
    """
    if name == "shapes":
        count = num_images or 20000
        seed = 0 if split == "train" else 1
        images, labels, _captions = make_shapes(count, image_size=image_size, seed=seed)
        return Dataset(images, labels.astype("int32"), tuple(SHAPES_CLASSES))
    if name == IMAGE_FOLDERS:
        raise DataError("The 'images' data set is a folder: use denoiser.load_image_folder, or train with data.path.")
    if name in CAPTIONED_DATASETS:
        raise DataError(
            f"The {name!r} data set is read from files: use denoiser.load_captioned_dataset, or train with "
            "data.path set (see captions.py)."
        )
    if name not in KERAS_DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
    loader = getattr(keras.datasets, name).load_data
    try:
        (train_images, train_labels), (test_images, test_labels) = loader()
    except Exception as error:  # no network and no cached copy, most often
        cache = os.path.join(keras_home(), "datasets")
        raise DataError(
            f"Could not load {name} through keras.datasets ({short_reason(error)}). It downloads on first use; "
            f"check the network connection, or put the files in Keras's cache ({cache})."
        ) from error
    images, labels = (train_images, train_labels) if split == "train" else (test_images, test_labels)
    conditions = labels.reshape(-1).astype("int32") + 1  # id 0 is reserved for "no condition"
    return Dataset(images, conditions, KERAS_DATASETS[name]).take(num_images)


def dataset_for_config(config) -> Dataset:
    """The training data a run config names: a built-in data set, a folder of images, or captioned images from
    files or Hugging Face."""
    data, model = config.data, config.model
    if data.dataset == IMAGE_FOLDERS:
        return load_image_folder(data.path, model.image_size, model.channels, num_images=data.num_images)
    if data.dataset not in CAPTIONED_DATASETS:  # Keras's data sets and the shapes, by name
        dataset = load_dataset(data.dataset, num_images=data.num_images, image_size=model.image_size)
        return shrink_images(dataset, model.image_size)
    if not data.path:
        what = "a captioned folder or a CSV/parquet table" if data.dataset == "captions" else "a .npy of images"
        raise DataError(f"data.dataset={data.dataset} needs data.path: {what}.")
    if data.dataset == "arrays":  # a .npy of images and a .npy of their embeddings
        return load_array_dataset(
            data.path,
            embeddings=data.embeddings,
            image_size=model.image_size,
            channels=model.channels,
            encoder=data.encoder,
            num_images=data.num_images,
        )
    if not data.encoder:
        raise DataError(f"data.dataset=captions needs data.encoder, e.g. data.encoder={DEFAULT_ENCODER}.")
    tokens = model.condition == "sequence"
    if is_huggingface_source(data.path):  # hf:NAME, or a local copy of a Hugging Face dataset
        if data.embeddings:
            raise DataError("data.embeddings is not used with a Hugging Face dataset; the captions are embedded once.")
        return load_huggingface_dataset(
            data.path,
            encoder=data.encoder,
            image_size=model.image_size,
            channels=model.channels,
            image_column=data.image_column,
            caption_column=data.caption_column,
            tokens=tokens,
            num_images=data.num_images,
        )
    return load_captioned_dataset(  # a captioned folder or a CSV/parquet table
        data.path,
        image_size=model.image_size,
        channels=model.channels,
        encoder=data.encoder,
        embeddings=data.embeddings,
        tokens=tokens,
        num_images=data.num_images,
    )


def with_condition_shape(config, dataset: Dataset | None = None):
    """`config` with the shape of the data's conditions where the model leaves it to the encoder
    (`model.condition_dim`, `model.condition_tokens` null), so that naming `data.encoder` is all a text model
    needs and config.yaml and every checkpoint record real numbers. A given shape that differs is refused in
    one line naming both, before any cache is made. Without data to ask (no path yet), `config` as it is:
    loading the data then says what is missing.
    """
    model = config.model
    found = condition_source(config, dataset) if model.condition in ("vector", "sequence") else None
    if found is None:
        return config
    shape, source = found
    names = ["condition_dim"] if model.condition == "vector" else ["condition_tokens", "condition_dim"]
    if len(shape) != len(names):
        raise DataError(
            f"{source} gives conditions of shape {shape}, not the {len(names)}-dimensional ones that "
            f"model.condition={model.condition} takes; give embeddings of that kind or change model.condition."
        )
    found_values = dict(zip(names, shape))
    contradicted = [name for name in names if getattr(model, name) not in (None, found_values[name])]
    if contradicted:
        given = " and ".join(f"model.{name}={getattr(model, name)}" for name in contradicted)
        follow = " and ".join(f"model.{name}" for name in contradicted)
        expected = tuple(getattr(model, name) or found_values[name] for name in names)
        raise DataError(
            f"{source} gives conditions of shape {shape}, but {given} makes the model expect "
            f"{expected}; leave {follow} unset to follow it, or set "
            + " and ".join(f"model.{name}={found_values[name]}" for name in contradicted)
            + "."
        )
    return dataclasses.replace(config, model=dataclasses.replace(model, **found_values))


def condition_source(config, dataset: Dataset | None = None) -> tuple[tuple[int, ...], str] | None:
    """The shape of one condition of the run's data and what gives it, found without making a cache: `dataset`,
    the data.embeddings file's header, or the encoder (from the note of its cache beside the data, else asked);
    None where the data is not there yet or holds class ids."""
    data, tokens = config.data, config.model.condition == "sequence"
    if dataset is not None:
        return None if dataset.is_class_conditional else (tuple(dataset.conditions.shape[1:]), "The data set")
    if data.dataset not in CAPTIONED_DATASETS or not data.path:
        return None
    from_hub = is_huggingface_source(data.path)
    if not from_hub and not os.path.exists(data.path):
        return None
    if data.embeddings and not from_hub:
        try:
            shape = np.load(data.embeddings, mmap_mode="r").shape  # reads the header only
        except (OSError, ValueError, EOFError):
            return None
        return tuple(shape[1:]), f"data.embeddings={data.embeddings}"
    if data.dataset == "arrays" or not data.encoder:
        return None
    cache = None if from_hub else embeddings_cache_path(data.path, data.encoder, tokens)
    return encoder_output_shape(data.encoder, tokens, cache), f"The encoder {data.encoder}"


def shrink_images(dataset: Dataset, size: int) -> Dataset:
    """The data set with its images made size x size by area downsampling, where they are a whole multiple
    of `size` larger (Fashion-MNIST's 28x28 for a 14x14 base model of a cascade); otherwise unchanged."""
    height = dataset.images.shape[1]
    if size >= height or height % size:
        return dataset
    small = np.asarray(downsample(dataset.images.astype("float32"), size))
    return dataclasses.replace(dataset, images=np.round(small).astype("uint8"))


def class_names_for(config) -> tuple[str, ...]:
    """Class names of the run's data set, without loading the images."""
    if config.data.dataset == IMAGE_FOLDERS and config.data.path and config.model.condition == "class":
        return read_image_folder(config.data.path).class_names
    if config.data.dataset == "shapes":
        return tuple(SHAPES_CLASSES)
    return tuple(KERAS_DATASETS.get(config.data.dataset, ()))
