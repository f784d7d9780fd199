"""The data sets and the tf.data pipeline: ranges, shapes, label dropout, clear errors."""

import re

import keras
import numpy as np
import pytest

from denoiser.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from denoiser.data.dataset import DataError, Dataset, check_fits_model
from denoiser.data.pipeline import training_pipeline
from denoiser.data.sources import load_dataset


def toy_dataset(count=256, size=8, channels=1, classes=4):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, channels), dtype=np.uint8)
    return Dataset(images, rng.integers(1, classes + 1, count).astype("int32"), tuple(f"c{i}" for i in range(classes)))


def first_batches(pipeline, count):
    return [tuple(np.asarray(t) for t in (*inputs, target)) for inputs, target in pipeline.take(count)]


def test_pipeline_shapes_ranges_and_noising():
    """Targets are the images scaled to [-1, 1]; inputs lie on the line between them and the noise."""
    dataset = toy_dataset()
    config = RunConfig(train=TrainConfig(batch_size=32))
    ((x_t, levels, conditions, x0),) = first_batches(training_pipeline(dataset, config), 1)
    assert x_t.shape == x0.shape == (32, 8, 8, 1)
    assert levels.shape == (32, 1) and conditions.shape == (32, 1)
    # Every target is one of the data set's images, scaled exactly to [-1, 1]; a batch holds 32 different ones.
    scaled = dataset.images.reshape(len(dataset), -1) / 127.5 - 1.0
    rows = [np.flatnonzero(np.abs(scaled - target.ravel()).max(axis=1) < 1e-6) for target in x0]
    assert all(len(row) == 1 for row in rows) and len({int(row[0]) for row in rows}) == 32
    assert len(np.unique(levels)) == 32  # each image its own noise level
    noise = (x_t - (1 - levels[:, :, None, None]) * x0) / levels[:, :, None, None]
    assert abs(noise.std() - 1.0) < 0.1 and abs(noise.mean()) < 0.1


def test_label_dropout_rate_and_zero_id():
    """About 15% of conditions become 0 ("no condition"); the rest keep their real class ids."""
    dataset = toy_dataset(count=4096)
    config = RunConfig(DataConfig(label_dropout=0.15), train=TrainConfig(batch_size=512))
    batches = first_batches(training_pipeline(dataset, config), 8)
    conditions = np.concatenate([c for _, _, c, _ in batches]).ravel()
    assert 0.12 < np.mean(conditions == 0) < 0.18
    assert set(conditions) <= set(range(5))
    config = RunConfig(DataConfig(label_dropout=0.0), train=TrainConfig(batch_size=512))
    none_dropped = first_batches(training_pipeline(dataset, config), 2)
    assert all((c > 0).all() for _, _, c, _ in none_dropped)


def test_vector_conditions_are_dropped_to_zero_vectors():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (1024, 8, 8, 3), dtype=np.uint8)
    vectors = rng.normal(size=(1024, 6)).astype("float32") + 5.0  # never zero by chance
    config = RunConfig(DataConfig(label_dropout=0.3), train=TrainConfig(batch_size=1024))
    ((_, _, conditions, _),) = first_batches(training_pipeline(Dataset(images, vectors), config), 1)
    zero_rows = np.all(conditions == 0, axis=1)
    assert 0.25 < zero_rows.mean() < 0.35
    assert np.all(conditions[~zero_rows] > 0)


def test_each_epoch_sees_new_order_and_new_noise():
    """Step 0 and the first step of the next pass differ; the same step is always the same batch."""
    dataset = toy_dataset()
    config = RunConfig(train=TrainConfig(batch_size=256))
    ((first, *_),) = first_batches(training_pipeline(dataset, config), 1)
    ((again, *_),) = first_batches(training_pipeline(dataset, config), 1)
    ((next_pass, *_),) = first_batches(training_pipeline(dataset, config, start_step=len(dataset) // 256), 1)
    assert np.array_equal(first, again)
    assert not np.allclose(first, next_pass)


def test_fashion_mnist_from_keras_cache(fashion_mnist_home):
    """The real loader reads the shared copy; ids start at 1 because 0 means "no condition"."""
    dataset = load_dataset("fashion_mnist", num_images=1000)
    assert dataset.images.shape == (1000, 28, 28, 1) and dataset.images.dtype == np.uint8
    assert dataset.conditions.min() == 1 and dataset.conditions.max() == 10
    assert dataset.class_names[0] == "T-shirt/top"


def test_shapes_dataset_needs_no_download():
    dataset = load_dataset("shapes", num_images=64, image_size=24)
    assert dataset.images.shape == (64, 24, 24, 3)
    assert dataset.conditions.min() >= 1 and dataset.conditions.max() <= len(dataset.class_names)


def test_mismatched_data_and_model_are_explained():
    dataset = toy_dataset(size=8, classes=4)
    with pytest.raises(DataError, match="image_size"):
        check_fits_model(
            dataset,
            ModelConfig(
                image_size=16, base_width=8, width_multipliers=[1], self_attention=[False], cross_attention=[False]
            ),
        )
    with pytest.raises(DataError, match="num_classes"):
        check_fits_model(
            dataset,
            ModelConfig(
                image_size=8,
                base_width=8,
                width_multipliers=[1],
                self_attention=[False],
                cross_attention=[False],
                num_classes=2,
            ),
        )
    with pytest.raises(DataError, match="Unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="fewer than one batch"):
        training_pipeline(toy_dataset(count=10), RunConfig(train=TrainConfig(batch_size=32)))


def test_a_missing_keras_data_set_names_the_cache_folder_keras_reads(monkeypatch, tmp_path):
    """KERAS_HOME when it is set, else ~/.keras: where Keras looks for datasets/, so the copy lands there."""

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match=re.escape(f"Keras's cache ({tmp_path / 'elsewhere' / 'datasets'})")):
        load_dataset("mnist")
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match=re.escape(f"Keras's cache ({tmp_path / '.keras' / 'datasets'})")):
        load_dataset("mnist")


def test_conditions_must_have_the_shape_the_model_expects():
    """A vector model takes (N, D) embeddings, a sequence model (N, T, D), a class model ids; "none" takes any."""
    images = np.zeros((4, 8, 8, 1), np.uint8)
    vectors, sequences = np.zeros((4, 6), "float32"), np.zeros((4, 3, 6), "float32")

    def model(condition, **fields):
        return ModelConfig(
            image_size=8, base_width=8, width_multipliers=[1], self_attention=[False], cross_attention=[False],
            condition=condition, **fields,
        )  # fmt: skip

    check_fits_model(Dataset(images, vectors), model("vector", condition_dim=6))
    check_fits_model(Dataset(images, sequences), model("sequence", condition_dim=6, condition_tokens=3))
    check_fits_model(Dataset(images, vectors), model("none"))
    with pytest.raises(DataError, match=r"conditions of shape \(5,\) \(model.condition=vector\).*model.condition_dim"):
        check_fits_model(Dataset(images, vectors), model("vector", condition_dim=5))
    with pytest.raises(DataError, match=r"conditions of shape \(3, 6\) \(model.condition=sequence\)"):
        check_fits_model(Dataset(images, vectors), model("sequence", condition_dim=6, condition_tokens=3))
    with pytest.raises(DataError, match="expects class ids"):
        check_fits_model(Dataset(images, vectors), model("class"))
    with pytest.raises(DataError, match=r"conditions of shape \(6,\)"):
        check_fits_model(toy_dataset(count=4), model("vector", condition_dim=6))


def test_a_row_subset_is_what_length_examples_and_take_see():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    whole = Dataset(images, np.arange(10), captions=[str(i) for i in range(10)])
    subset = Dataset(images, np.arange(10), captions=[str(i) for i in range(10)], rows=np.array([1, 2, 4, 8, 9]))
    assert whole.row_indices().tolist() == list(range(10)) and len(whole) == 10
    assert len(subset) == 5 and subset.example_rows(3).tolist() == [1, 4, 9]
    conditions, captions = subset.examples(3)
    assert conditions.tolist() == [1, 4, 9] and captions == ["1", "4", "9"]
    assert whole.take(4).row_indices().tolist() == [0, 1, 2, 3] and subset.take(2).row_indices().tolist() == [1, 2]
