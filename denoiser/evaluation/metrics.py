"""Sample-quality metrics: Frechet distance, KID, conditional accuracy, CLIP score, nearest neighbours.

All work on plain NumPy arrays of features or images, so they are easy to read and to test:

    frechet_distance(a, b)          distance between two Gaussians fitted to features (N, D); FID when the
                                    features are InceptionV3's, "classifier FD" with the package's classifier
    kernel_distance(a, b)           KID: unbiased squared MMD with the polynomial kernel (x.y / D + 1)^3
    conditional_accuracy(...)       the share of samples a classifier puts in the class they were asked for
    inception_features(images)      InceptionV3 (ImageNet weights) pool features, for FID and KID
    clip_score(images, captions)    100 * mean cosine(image embedding, caption embedding), CLIP's way
    nearest_neighbours(a, b)        for each row of a, the closest row of b (memorization check)

FID/KID protocol: images in [-1, 1] are resized bilinearly to 299x299 (grey ones copied to 3 channels) and
fed to `keras.applications.InceptionV3(include_top=False, pooling="avg", weights="imagenet")`; generated
samples (evaluate --num, 500 by default, classes in turn) are compared with the data set's test split
(all of it for Keras data sets, 2,000 images for shapes). KID uses subsets of up to 1,000. Numbers
from other sample counts or reference splits are not comparable: FID falls as the sample count grows.
"""

from __future__ import annotations

import os

import numpy as np

from denoiser.data.encoders import as_encoder
from denoiser.utils.images import to_uint8, to_unit_range
from denoiser.utils.keras_cache import keras_home
from denoiser.utils.progress import Progress

INCEPTION_SIZE = 299


class MetricError(ValueError):
    """A metric cannot be computed as asked; the message says why and what to do."""


# ================================================================================== distances
def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The square root of a symmetric positive semi-definite matrix, by eigendecomposition."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a, b) -> float:
    """||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)) between Gaussians fitted to features a and b.

    tr((C_a C_b)^(1/2)) is computed as tr((S C_b S)^(1/2)) with S = C_a^(1/2): the same eigenvalues,
    but of a symmetric matrix, so NumPy's `eigh` suffices (no SciPy).
    """
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise MetricError(f"Frechet distance needs two feature arrays (N, D) with N >= 2; got {a.shape} and {b.shape}.")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = symmetric_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def kernel_distance(a, b, subset_size: int = 1000, subsets: int = 10, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased squared MMD with kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets.

    Returns (mean, standard deviation) over the subsets. Unlike FID it has no bias from the sample
    count: two samples of one distribution give about 0 (it can be slightly negative).
    """
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise MetricError(f"KID needs at least 2 feature vectors on each side; got {len(a)} and {len(b)}.")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        kernel = lambda p, q: (p @ q.T / a.shape[1] + 1.0) ** 3  # noqa: E731
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        off_diagonal = size * (size - 1)
        values.append(
            (k_xx.sum() - np.trace(k_xx)) / off_diagonal
            + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
            - 2.0 * k_xy.mean()
        )
    return float(np.mean(values)), float(np.std(values))


def conditional_accuracy(predicted_ids, requested_ids) -> dict:
    """The share of samples classified as the class asked for, overall and per class id."""
    predicted, requested = np.asarray(predicted_ids), np.asarray(requested_ids)
    per_class = {int(c): float(np.mean(predicted[requested == c] == c)) for c in np.unique(requested)}
    return {"accuracy": float(np.mean(predicted == requested)), "per_class": per_class}


# ================================================================================== InceptionV3
def load_inception():
    """InceptionV3 without its top, average-pooled (2048 features); a clear `MetricError` if unavailable."""
    import keras

    try:
        return keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights="imagenet", input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3)
        )
    except Exception as error:  # no network and no cached copy, most often
        raise MetricError(
            "InceptionV3 weights are not in the Keras cache and cannot be downloaded "
            f"({type(error).__name__}: {' '.join(str(error).split())}). "
            "FID and KID need them: run once with network access "
            f"(they go to {os.path.join(keras_home(), 'models')}), or leave out `inception`."
        ) from error


def inception_features(images, model=None, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """InceptionV3 pool features (N, 2048) of images in [-1, 1] (or uint8), under the protocol above."""
    import tensorflow as tf

    model = model or load_inception()
    images = to_unit_range(images)
    bar = Progress("InceptionV3 features", len(images), unit="image") if progress else None
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = tf.image.resize(images[start : start + batch_size], (INCEPTION_SIZE, INCEPTION_SIZE), "bilinear")
        if batch.shape[-1] == 1:
            batch = tf.repeat(batch, 3, axis=-1)
        outputs.append(np.asarray(model(batch, training=False)))  # InceptionV3 takes [-1, 1] inputs
        if bar is not None:
            bar.update(min(start + batch_size, len(images)))
    return np.concatenate(outputs)


# ================================================================================== CLIP score
def clip_score(images, captions, encoder) -> float:
    """100 * the mean cosine similarity of each image's CLIP embedding with its caption's (negatives as 0).

    `encoder` is an open_clip encoder spec or object from text.py (it must embed images too).
    """
    encoder = as_encoder(encoder)
    if not hasattr(encoder, "encode_images"):
        raise MetricError(f"CLIP score needs an open_clip encoder that embeds images; {encoder.spec} does not.")
    images = to_uint8(images)
    image_embeddings = encoder.encode_images(images)
    text_embeddings = encoder.encode(list(captions))
    cosines = np.sum(image_embeddings * text_embeddings, axis=-1)
    return float(100.0 * np.mean(np.clip(cosines, 0.0, None)))


# ================================================================================== memorization
def nearest_neighbours(queries, references, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of the closest reference row and the Euclidean distance to it.

    Rows are flattened, so images (N, H, W, C) and features (N, D) both work.
    """
    queries = np.asarray(queries, "float32").reshape(len(queries), -1)
    references = np.asarray(references, "float32").reshape(len(references), -1)
    reference_norms = np.sum(references**2, axis=1)
    best_index = np.zeros(len(queries), "int64")
    best_distance = np.full(len(queries), np.inf, "float32")
    for start in range(0, len(references), batch_size * 64):
        chunk = slice(start, start + batch_size * 64)
        squared = (
            np.sum(queries**2, axis=1)[:, None] - 2.0 * queries @ references[chunk].T + reference_norms[chunk][None, :]
        )
        index = np.argmin(squared, axis=1)
        distance = np.sqrt(np.clip(squared[np.arange(len(queries)), index], 0.0, None))
        closer = distance < best_distance
        best_index[closer], best_distance[closer] = index[closer] + start, distance[closer]
    return best_index, best_distance
