"""Image folders as training data (`data.dataset=images`, `data.path=DIR`): class folders train a
class-conditional model, a folder of images without them an unconditional one.

    DIR/cat/0001.jpg  DIR/dog/0001.jpg ...   class folders, the layout keras.utils.image_dataset_from_directory
                                             reads: the classes are the folder names, sorted, with ids 1..N
                                             (0 stays "no condition"); images at any depth in a class folder count
    DIR/train/cat/...  DIR/test/cat/...      a train/ folder is the training split; a test/ (or else val/) folder
                                             beside it is the split that `denoiser evaluate` compares with
    DIR/0001.jpg  DIR/0002.jpg ...           images and no class folders: an unconditional model

The folder decides the model's condition (`fit_config_to_folder`), from the file names alone, before the run
directory's config.yaml is written, so a rerun resumes with the same config: class folders make
model.condition=class with model.num_classes=N, a folder without them model.condition=none (and no
cross-attention, which would have nothing to attend to). model.condition=none on class folders trains
unconditionally, leaving the classes unused; a setting that contradicts the folder (a text condition, a
model.num_classes other than its default and the folder's count) is refused in one line.

Listing a folder reads names, never pixels (`read_image_folder`, so `class_names_for` is quick). The images
are fitted once into the uint8 cache of image_files.py (DIR/images-32x32x3.npy, or DIR/train/...), where
unreadable files are skipped and counted. Hidden folders (.ipynb_checkpoints) are passed over; an empty class
folder is skipped, and so are images lying beside the class folders, saying so.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from denoiser.data.cache import fingerprint
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.image_files import IMAGE_EXTENSIONS, image_file_cache, image_files, is_image_file, readable_rows

DATASET = "images"  # the data.dataset of an image folder
TRAIN_SPLIT = "train"
TEST_SPLITS = ("test", "val")  # the held-out split beside train/: the first of these that exists
SHOWN_NAMES = 6  # class names a message lists before "..."


@dataclass
class ImageFolder:
    """One split of an image folder, listed without decoding: its images in a fixed order and their class ids."""

    path: str  # the split's folder: DIR, DIR/train or DIR/test
    images: list[str]
    class_ids: list[int]  # one per image, from 1; all 0 in a folder without classes
    class_names: tuple[str, ...] = ()  # empty for a folder without classes
    empty_classes: list[str] = field(default_factory=list)  # class folders without images, skipped
    loose_images: int = 0  # images beside the class folders, left out

    def summary(self) -> str:
        if self.class_names:
            classes = f"{len(self.class_names)} classes ({names(self.class_names)})"
            text = f"{self.path}: {len(self.images)} images in {classes}"
        else:
            text = f"{self.path}: {len(self.images)} images and no class folders, for an unconditional model"
        if self.empty_classes:
            text += f"; skipped the empty class folder(s) {names(self.empty_classes)}"
        if self.loose_images:
            text += f"; left out the {self.loose_images} image(s) beside the class folders (move them into one)"
        return text

    def fingerprint(self) -> str:
        """A short hash of where the split is, its classes and its files: what is learnt from it is cached under it."""
        files = (os.path.relpath(path, self.path) for path in self.images)
        return fingerprint([os.path.abspath(self.path), *self.class_names, *files])


def names(items) -> str:
    """'a, b, c' for a few names, 'a, b, ..., z (26)' for many."""
    items = list(items)
    if len(items) <= SHOWN_NAMES:
        return ", ".join(items)
    return ", ".join(items[: SHOWN_NAMES - 1]) + f", ..., {items[-1]} ({len(items)})"


# ================================================================================== listing
def split_folder(path, split: str = TRAIN_SPLIT) -> str | None:
    """The folder of a split: the training split is DIR/train where it exists, else DIR itself; the test split
    is DIR/test (or DIR/val) beside a DIR/train, None where there is none."""
    path = os.fspath(path)
    has_train = os.path.isdir(os.path.join(path, TRAIN_SPLIT))
    if split == TRAIN_SPLIT:
        return os.path.join(path, TRAIN_SPLIT) if has_train else path
    held_out = [os.path.join(path, name) for name in TEST_SPLITS if os.path.isdir(os.path.join(path, name))]
    return held_out[0] if has_train and held_out else None


def read_image_folder(path, split: str = TRAIN_SPLIT) -> ImageFolder:
    """The images of a split of an image folder (see the module doc) with their class ids, from names alone.

    A test split takes the training split's classes: its class ids are those of the same folder names.
    """
    if not path:
        raise DataError("data.dataset=images needs data.path: a folder of class folders (DIR/cat/1.jpg) or of images.")
    path = os.fspath(path)
    if not os.path.isdir(path):
        what = "is a file" if os.path.exists(path) else "does not exist"
        raise DataError(f"{path} {what}; data.path must be a folder of class folders (DIR/cat/1.jpg) or of images.")
    folder = split_folder(path, split)
    if folder is None:
        raise DataError(f"{path} has no {' or '.join(TEST_SPLITS)} folder beside its {TRAIN_SPLIT} folder.")
    listing = list_folder(folder)
    if split != TRAIN_SPLIT:
        listing = with_classes_of(listing, read_image_folder(path).class_names)
    return listing


def list_folder(folder: str) -> ImageFolder:
    """One folder's images: by class folder (sorted names) where any subfolder holds images, else its own images."""
    entries = sorted(os.listdir(folder))
    subfolders = [name for name in entries if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))]
    loose = [os.path.join(folder, name) for name in entries if is_image_file(name)]
    by_class = {name: image_files(os.path.join(folder, name)) for name in subfolders}
    classes = tuple(name for name in subfolders if by_class[name])
    if classes:
        images = [image for name in classes for image in by_class[name]]
        ids = [index + 1 for index, name in enumerate(classes) for _ in by_class[name]]
        empty = [name for name in subfolders if not by_class[name]]
        listing = ImageFolder(folder, images, ids, classes, empty, len(loose))
    elif loose:
        listing = ImageFolder(folder, loose, [0] * len(loose))
    elif subfolders:
        raise DataError(
            f"The subfolders of {folder} ({names(subfolders)}) hold no images ({', '.join(IMAGE_EXTENSIONS)}); "
            "put each class's images in its folder."
        )
    else:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); is it the right folder?")
    refuse_captions(listing)
    return listing


def refuse_captions(listing: ImageFolder) -> None:
    """Images with a caption `.txt` beside them are captioned data: say which setting trains on those."""
    for image in listing.images:
        caption = os.path.splitext(image)[0] + ".txt"
        if os.path.isfile(caption):
            raise DataError(
                f"{listing.path} holds captions ({caption}): train on them with data.dataset=captions "
                "(--preset captions), or remove the .txt files to train on the images alone."
            )


def with_classes_of(listing: ImageFolder, training_classes: tuple[str, ...]) -> ImageFolder:
    """A test split with the class ids of the training split's classes (matched by folder name)."""
    if not training_classes:  # an unconditional model: the test split's classes do not matter
        return dataclasses.replace(listing, class_ids=[0] * len(listing.images), class_names=())
    unknown = [name for name in listing.class_names if name not in training_classes]
    if unknown or not listing.class_names:
        problem = (
            f"the class folder(s) {names(unknown)}, which the training split has not" if unknown else "no class folders"
        )
        raise DataError(
            f"{listing.path} has {problem}; give it the training split's class folders ({names(training_classes)})."
        )
    ids = [training_classes.index(listing.class_names[index - 1]) + 1 for index in listing.class_ids]
    return dataclasses.replace(listing, class_ids=ids, class_names=training_classes)


# ================================================================================== the data set and the model
def load_image_folder(
    path, image_size: int = 32, channels: int = 3, split: str = TRAIN_SPLIT, num_images=None, progress: bool = True
) -> Dataset:
    """A training `Dataset` of an image folder's split (see the module doc): images fitted to `image_size` in a
    uint8 cache, with class ids from 1 (zeros without class folders). Unreadable files are left out
    (`Dataset.rows`) and counted."""
    listing = read_image_folder(path, split)
    print(listing.summary())
    images = image_file_cache(listing.path, listing.images, image_size, channels, progress)
    rows = readable_rows(images, listing.path)
    conditions = np.asarray(listing.class_ids, dtype=np.int32)
    return Dataset(images.array, conditions, listing.class_names, rows=rows).take(num_images)


def fit_config_to_folder(config):
    """The run config with the model's condition the image folder's (see the module doc); other runs' as they are."""
    data, model = config.data, config.model
    if data.dataset != DATASET or not data.path:
        return config
    if model.condition in ("vector", "sequence"):
        raise DataError(
            f"model.condition={model.condition} needs captions, and an image folder has none; set model.condition="
            "class (or none), or train images with captions with data.dataset=captions."
        )
    classes = read_image_folder(data.path).class_names
    if not classes:
        model = dataclasses.replace(model, condition="none", cross_attention=[False] * model.num_levels)
    elif model.condition == "class":
        if model.num_classes not in (len(classes), field_default(model, "num_classes")):
            raise DataError(
                f"{data.path} has {len(classes)} class folders ({names(classes)}) but model.num_classes="
                f"{model.num_classes}; leave model.num_classes out (the folder decides it) or set it to {len(classes)}."
            )
        model = dataclasses.replace(model, num_classes=len(classes))
    return dataclasses.replace(config, model=model)


def field_default(section, name: str):
    """The default of a config section's field: the value of a setting that was left out."""
    return next(item.default for item in dataclasses.fields(section) if item.name == name)
