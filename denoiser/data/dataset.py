"""The `Dataset` every data source returns: uint8 images with one condition each.

A condition is a class id from 1 (0 means "no condition") or an embedding vector; `class_names`
label the ids and `captions` the embeddings, for sample grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denoiser.utils.indices import evenly_spaced


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
            raise DataError(f"images must be uint8 of shape (N, H, W, C); got {self.images.dtype} {self.images.shape}.")
        if len(self.conditions) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.conditions)} conditions; give one per image.")

    def __len__(self) -> int:
        return len(self.row_indices())

    @property
    def is_class_conditional(self) -> bool:
        return np.issubdtype(self.conditions.dtype, np.integer)

    def row_indices(self) -> np.ndarray:
        """The indices of the images in use: `rows`, or every image when there is no row subset."""
        return np.arange(len(self.images)) if self.rows is None else np.asarray(self.rows)

    def take(self, count: int | None) -> "Dataset":
        """The first `count` images in use (all for None); arrays in memory are cut, arrays in files keep `rows`."""
        if count is None:
            return self
        if self.rows is not None:
            return Dataset(self.images, self.conditions, self.class_names, self.captions, self.rows[:count])
        captions = None if self.captions is None else self.captions[:count]
        return Dataset(self.images[:count], self.conditions[:count], self.class_names, captions)

    def in_memory(self) -> "Dataset":
        """The images in use and their conditions as arrays in memory, without the rows left out (for a judge to
        train on, or test images to compare with)."""
        if self.rows is None:
            return self
        rows = self.row_indices()
        captions = None if self.captions is None else [self.captions[row] for row in rows]
        return Dataset(np.asarray(self.images[rows]), np.asarray(self.conditions[rows]), self.class_names, captions)

    def example_rows(self, count: int) -> np.ndarray:
        """The indices of `count` images in use spread evenly over the data set (for sample grids)."""
        return self.row_indices()[evenly_spaced(count, len(self))]

    def examples(self, count: int) -> tuple[np.ndarray, list[str]]:
        """The conditions of `example_rows(count)`, with their captions (for sample grids)."""
        rows = self.example_rows(count)
        captions = [self.captions[row] if self.captions is not None else "" for row in rows]
        return np.asarray(self.conditions[rows]), captions


def check_fits_model(dataset: Dataset, model_config) -> None:
    """Raise `DataError` if the images or conditions don't match what the network expects."""
    expected = model_config.image_shape
    if dataset.images.shape[1:] != expected:
        raise DataError(
            f"The data's images are {dataset.images.shape[1:]} but the model expects {expected}; "
            "set model.image_size and model.channels to match the data."
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
    elif model_config.conditional:  # an embedding per image: a vector, or a sequence of token vectors
        expected = model_config.condition_shape
        if dataset.is_class_conditional or dataset.conditions.shape[1:] != expected:
            raise DataError(
                f"The model expects conditions of shape {expected} (model.condition={model_config.condition}) but the "
                f"data's are {dataset.conditions.dtype} {dataset.conditions.shape[1:]}; set model.condition_dim (and "
                "model.condition_tokens) to the encoder's output."
            )
