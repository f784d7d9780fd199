"""Evaluation metrics, the classifier, `denoiser evaluate` and the trainer's evaluation hook."""

import json
import os
import re

import numpy as np
import pytest
from helpers import FakeEncoder, tiny_train_args

from denoiser.cli import main
from denoiser.data.dataset import Dataset
from denoiser.data.sources import load_dataset
from denoiser.evaluation import metrics
from denoiser.evaluation.classifier import (
    TRAINING_IMAGES,
    cache_path,
    load_classifier,
    predict_classes,
    train_classifier,
)
from denoiser.evaluation.metrics import MetricError
from denoiser.evaluation.report import default_output
from denoiser.serialization import find_checkpoint, load_sampler


@pytest.fixture(scope="module")
def shapes_classifier():
    """A small shapes classifier, put where evaluation looks for the cached one (this session's KERAS_HOME)."""
    data = load_dataset("shapes", num_images=2000, image_size=24)
    classifier = train_classifier(data.images, data.conditions, num_classes=8, epochs=5, batch_size=32, width=8)
    path = cache_path("shapes", 24)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    classifier.save(path)
    return classifier


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shapes_classifier):
    run_dir = tmp_path_factory.mktemp("evaluated-run")
    assert main(tiny_train_args(run_dir, "train.evaluate_every=1", "train.evaluate_num=16")) == 0
    return run_dir


def gaussian(count, dim=4, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, (count, dim))


def test_frechet_distance_is_zero_for_one_distribution_and_grows_with_a_shift():
    a, b = gaussian(4000, seed=0), gaussian(4000, seed=1)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    same = metrics.frechet_distance(a, b)
    shifted = [metrics.frechet_distance(a, gaussian(4000, shift=s, seed=1)) for s in (0.5, 1.0)]
    assert same < 0.02 < shifted[0] < shifted[1]
    # Two independent Gaussians: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 = 4 * 1 + 4 * 1 = 8.
    assert metrics.frechet_distance(a, gaussian(4000, shift=1.0, scale=2.0, seed=1)) == pytest.approx(8.0, rel=0.05)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_another():
    a, b = gaussian(600, dim=16, seed=0), gaussian(600, dim=16, seed=1)
    same, _ = metrics.kernel_distance(a, b, subset_size=300, subsets=5)
    other, _ = metrics.kernel_distance(a, gaussian(600, dim=16, shift=0.5, seed=1), subset_size=300, subsets=5)
    assert abs(same) < 0.01 < other


def test_nearest_neighbours_finds_the_copy():
    references = np.random.default_rng(0).normal(size=(500, 6, 6, 1))
    rows, distances = metrics.nearest_neighbours(references[[7, 300]] + 1e-3, references, batch_size=2)
    assert rows.tolist() == [7, 300] and np.all(distances < 0.01)


def test_conditional_accuracy_is_the_share_put_in_the_class_asked_for():
    requested = [1, 1, 1, 1, 2, 2, 3]
    predicted = [1, 1, 1, 2, 2, 3, 3]
    accuracy = metrics.conditional_accuracy(predicted, requested)
    assert accuracy["accuracy"] == pytest.approx(5 / 7)
    assert accuracy["per_class"] == pytest.approx({1: 0.75, 2: 0.5, 3: 1.0})


def test_real_images_are_classified_as_their_class(shapes_classifier):
    test = load_dataset("shapes", "test", num_images=400, image_size=24)
    accuracy = metrics.conditional_accuracy(predict_classes(shapes_classifier, test.images), test.conditions)
    assert accuracy["accuracy"] > 0.6 and set(accuracy["per_class"]) == set(range(1, 9))


def test_trainer_evaluates_every_epoch_when_asked(trained_run, shapes_classifier):
    results = json.load(open(os.path.join(trained_run, "evaluation", "epoch-0001.json")))
    assert results["epoch"] == 1 and results["num_samples"] == 16
    # Counted again: the same samples (epoch 1's averaged weights, the classes in turn, the same seed), classified.
    requested = np.arange(16) % 8 + 1
    samples = load_sampler(trained_run).sample(condition=requested, num_images=16, seed=results["seed"])
    correct = predict_classes(shapes_classifier, samples) == requested
    assert results["conditional_accuracy"] == pytest.approx(correct.mean())
    assert list(results["per_class_accuracy"].values()) == pytest.approx(correct.reshape(2, 8).mean(axis=0))
    assert results["conditional_accuracy_real"] > 0.6  # the classifier found: it knows real training images


def test_evaluate_writes_json_and_the_memorization_picture(trained_run, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained_run),
                "--num",
                "24",
                "--steps",
                "2",
                "--nearest",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.load(open(out))
    assert results["num_samples"] == 24 and results["steps"] == 2
    for key in ("conditional_accuracy", "conditional_accuracy_real", "classifier_fd", "classifier_fd_real"):
        assert np.isfinite(results[key])
    assert results["conditional_accuracy_real"] > 0.6  # real training images: the floor
    memorization = results["memorization"]
    assert len(memorization["pixel_distances"]) == len(memorization["feature_distances"]) == 4
    assert os.path.getsize(memorization["picture"]) > 0 and memorization["picture"].endswith("-nearest.png")
    assert "conditional accuracy" in capsys.readouterr().out


def test_evaluate_defaults_to_the_run_directory(trained_run):
    assert default_output(*find_checkpoint(trained_run)) == os.path.join(str(trained_run), "evaluation", "latest.json")


def test_missing_inception_weights_say_so_plainly(trained_run, tmp_path, monkeypatch, capsys):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(MetricError, match="InceptionV3 weights are not in the Keras cache"):
        metrics.load_inception()
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(trained_run),
            "--num",
            "4",
            "--steps",
            "2",
            "--inception",
            "--out",
            str(tmp_path / "x.json"),
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and "InceptionV3 weights are not in the Keras cache" in error and len(error.splitlines()) == 1
    assert not os.path.exists(tmp_path / "x.json")


def test_missing_inception_weights_name_the_cache_folder_keras_reads(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(MetricError, match=re.escape(f"(they go to {tmp_path / 'elsewhere' / 'models'})")):
        metrics.load_inception()


def tiny_classifier_progress(capsys, name, path, data=None):
    """What load_classifier prints as it trains a classifier (for one step only)."""
    load_classifier(name, 24, path=str(path), progress=True, data=data, epochs=1, steps_per_epoch=1, width=4)
    return capsys.readouterr().out


def test_the_classifier_training_line_names_the_data_not_a_cache_file(monkeypatch, tmp_path, capsys):
    folder = Dataset(np.zeros((8, 24, 24, 1), "uint8"), np.array([1, 2] * 4, "int32"), ("cat", "dog"))
    line = tiny_classifier_progress(capsys, "images-0123abcd-c1", tmp_path / "folder.keras", data=folder)
    assert "Training a classifier of the image folder (classes: cat, dog) for evaluation on 8 images" in line
    assert "a images-" not in line

    monkeypatch.setitem(TRAINING_IMAGES, "shapes", 64)  # not the 12,000 a real judge trains on
    line = tiny_classifier_progress(capsys, "shapes", tmp_path / "shapes.keras")
    assert "Training a shapes classifier for evaluation on 64 images" in line


def test_evaluate_refuses_too_few_samples(trained_run, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(trained_run), "--num", "1", "--out", str(tmp_path / "x.json")]) == 2
    assert "at least 2 samples" in capsys.readouterr().err


class ColourEncoder:
    """A stand-in CLIP: an image's embedding is its mean colour, a caption's the colour it names (unit vectors)."""

    spec = "open_clip/colour/stand-in"
    colours = {"red": [1, 0, 0], "green": [0, 1, 0], "blue": [0, 0, 1], "yellow": [1, 1, 0], "not red": [-1, 0, 0]}

    def encode_images(self, images, batch_size: int = 64):
        means = np.asarray(images, "float64").mean(axis=(1, 2))
        return means / np.linalg.norm(means, axis=1, keepdims=True)

    def encode(self, texts, tokens: bool = False):
        vectors = np.array([self.colours[text] for text in texts], "float64")
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_clip_score_of_matched_captions_beats_shuffled_ones():
    images = np.zeros((3, 4, 4, 3), np.uint8)
    for index in range(3):
        images[index, ..., index] = 255  # red, green, blue
    encoder = ColourEncoder()
    assert metrics.clip_score(images, ["red", "green", "blue"], encoder) == pytest.approx(100.0)
    assert metrics.clip_score(images, ["green", "blue", "red"], encoder) == pytest.approx(0.0)
    # 100 * the mean cosine, a negative one counted as 0: (0 instead of -1, cos 45 degrees, 1) / 3.
    score = metrics.clip_score(images, ["not red", "yellow", "blue"], encoder)
    assert score == pytest.approx(100 * (0 + np.sqrt(0.5) + 1) / 3)
    with pytest.raises(MetricError, match="embeds images"):
        metrics.clip_score(images, ["red", "green", "blue"], FakeEncoder())
