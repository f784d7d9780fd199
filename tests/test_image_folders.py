"""Image folders as training data: class folders, a folder of images, splits, skipped files, evaluation, errors."""

import os
import re

import numpy as np
import pytest
import yaml
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS, randomize_weights, tiny, tiny_config
from PIL import Image

from denoiser import Sampler, build_unet, evaluate, load_image_folder, load_model, train
from denoiser.callbacks import draw_sample_grid, grid_conditions
from denoiser.cli import main
from denoiser.config import ConfigError, parse_override
from denoiser.data.dataset import Dataset
from denoiser.data.folders import fit_config_to_folder, read_image_folder
from denoiser.data.sources import CIFAR10_CLASSES, class_names_for
from denoiser.evaluation.classifier import build_classifier, rotated_copies
from denoiser.evaluation.evaluator import Evaluation, summary_lines
from denoiser.presets import resolve_config
from denoiser.rundir import RunDirectory

TINY_FOLDER_SETS = ["model.image_size=16", "train.batch_size=4"]  # with tiny_config's tiny network


def write_class_folder(root, images, labels, class_names, extension="png"):
    """Image i into root/<its class name>/<i>.<extension>; file names sort in the arrays' order within a class."""
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, class_names[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{index:05d}.{extension}"))


def random_images(count, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def small_class_folder(root, classes=("cat", "dog", "fox"), per_class=4, seed=0):
    """A folder of class folders with random 16x16 JPEGs; returns its path."""
    labels = np.repeat(np.arange(len(classes)), per_class)
    write_class_folder(root, random_images(len(labels), seed=seed), labels, classes, extension="jpg")
    return str(root)


def folder_sets(path, *extra):
    """`--set`s of a tiny run on the folder `path` (for tiny_config, which adds the tiny network)."""
    return [f"data.path={path}", *TINY_FOLDER_SETS, *extra]


def train_args(run_dir, path, *extra, epochs=1):
    args = ["train", "--preset", "images", "--run-dir", str(run_dir), "--epochs", str(epochs)]
    args += ["--steps-per-epoch", "2"]
    for text in (*TINY_MODEL_SETS, *QUICK_SAMPLE_SETS, *folder_sets(path, *extra)):
        args += ["--set", text]
    return args


# ================================================================================== the CIFAR-10 layout
@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    """CIFAR-10 as PNGs in train/ and test/ class folders, written from random arrays in keras.datasets' form:
    images in any order of classes, labels 0..9. Returns the folder and the arrays."""
    root = tmp_path_factory.mktemp("cifar10-png")
    rng = np.random.default_rng(1)
    arrays = {}
    for split, per_class in (("train", 3), ("test", 2)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        write_class_folder(root / split, images, labels, CIFAR10_CLASSES)
        arrays[split] = images, labels
    return str(root), arrays


def in_folder_order(images, labels):
    """The arrays as a class folder lists them: class by class, in file-name (here: array) order within one."""
    order = np.argsort(labels, kind="stable")
    return images[order], labels[order]


def test_the_cifar10_png_layout_holds_the_arrays_it_was_written_from(cifar_folder):
    root, arrays = cifar_folder
    for split in ("train", "test"):
        dataset = load_image_folder(root, image_size=32, channels=3, split=split, progress=False)
        images, labels = in_folder_order(*arrays[split])
        np.testing.assert_array_equal(dataset.images[dataset.rows], images)  # PNG is lossless: pixel for pixel
        np.testing.assert_array_equal(dataset.conditions[dataset.rows], labels + 1)  # ids from 1, as cifar10's
        assert dataset.class_names == CIFAR10_CLASSES


def test_the_cifar10_png_layout_resolves_to_the_cifar10_run(cifar_folder):
    root, _ = cifar_folder
    cifar = resolve_config("cifar10")
    folder = fit_config_to_folder(resolve_config("cifar10", overrides=[{"data": {"dataset": "images", "path": root}}]))
    assert folder.model == cifar.model and folder.train == cifar.train and folder.sample == cifar.sample
    differences = {key for key, value in folder.data.to_dict().items() if cifar.data.to_dict()[key] != value}
    assert differences == {"dataset", "path"}
    assert class_names_for(folder) == class_names_for(cifar) == CIFAR10_CLASSES
    # The images preset keeps its smaller network; what the data decides is cifar10's.
    preset = fit_config_to_folder(resolve_config("images", overrides=[{"data": {"path": root}}]))
    for name in ("image_size", "channels", "condition", "num_classes"):
        assert getattr(preset.model, name) == getattr(cifar.model, name), name


def test_the_cifar10_png_layout_draws_the_cifar10_sample_grid(cifar_folder, tmp_path):
    root, _ = cifar_folder
    quick = {"sample": {"steps": 2, "columns": 2}}
    cifar = resolve_config("cifar10", overrides=[quick])
    folder = fit_config_to_folder(
        resolve_config("cifar10", overrides=[quick, {"data": {"dataset": "images", "path": root}}])
    )
    model = build_unet(tiny(image_size=32, channels=3, num_classes=10))
    randomize_weights(model, seed=3)
    sampler = Sampler(model, cifar.sample)
    assert grid_conditions(folder, class_names_for(folder))[1] == list(CIFAR10_CLASSES)
    grids = []
    for config in (cifar, folder):
        path = tmp_path / f"{config.data.dataset}.png"
        draw_sample_grid(sampler, str(path), config, class_names_for(config), title="epoch 1")
        grids.append(np.asarray(Image.open(path)))
    np.testing.assert_array_equal(*grids)


# ================================================================================== training
def test_a_class_folder_trains_a_class_model_and_resumes_with_the_same_config(tmp_path, capsys):
    path = small_class_folder(tmp_path / "pets")
    run = RunDirectory(tmp_path / "run")
    assert main(train_args(run.path, path)) == 0
    assert "12 images in 3 classes (cat, dog, fox)" in capsys.readouterr().out
    saved = run.read_config()
    assert saved["data"]["dataset"] == "images"
    assert saved["model"]["condition"] == "class" and saved["model"]["num_classes"] == 3
    assert os.path.isfile(run.sample_grid(1))
    assert load_model(run.latest).run_info["class_names"] == ["cat", "dog", "fox"]  # the grid's and sampling's labels
    config = run.run_config()
    assert grid_conditions(config, class_names_for(config))[1] == ["cat", "dog", "fox"]

    assert main(train_args(run.path, path, epochs=2)) == 0  # the same command, one epoch more: it resumes
    assert run.finished_epochs() == [1, 2]

    capsys.readouterr()
    assert main(["config", "--preset", "images", "--set", f"data.path={path}"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["condition"] == "class" and printed["model"]["num_classes"] == 3


def test_a_folder_of_images_trains_an_unconditional_model(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for index, image in enumerate(random_images(8, seed=4)):
        Image.fromarray(image).save(folder / f"{index}.png")
    config = tiny_config(*folder_sets(folder, "train.epochs=1", "train.steps_per_epoch=2"), preset="images")
    assert config.model.condition == "class"  # the preset's; the folder decides
    model = train(config, tmp_path / "run", verbose=0)
    saved = RunDirectory(tmp_path / "run").read_config()["model"]
    assert saved["condition"] == "none" and saved["cross_attention"] == [False, False]
    assert model.run_info["class_names"] == []
    assert os.path.isfile(RunDirectory(tmp_path / "run").sample_grid(1))


def test_model_condition_none_trains_a_class_folder_unconditionally(tmp_path):
    path = small_class_folder(tmp_path / "pets")
    network = [text for text in TINY_MODEL_SETS if not text.startswith("model.cross_attention=")]  # the preset's
    sets = [*network, *QUICK_SAMPLE_SETS, *folder_sets(path, "model.condition=none")]
    config = fit_config_to_folder(resolve_config("images", overrides=[parse_override(text) for text in sets]))
    assert config.model.condition == "none" and config.model.cross_attention == [False, False]
    assert class_names_for(config) == ()
    run = RunDirectory(tmp_path / "run")
    args = ["train", "--preset", "images", "--run-dir", str(run.path), "--epochs", "1", "--steps-per-epoch", "2"]
    assert main(args + [word for text in sets for word in ("--set", text)]) == 0
    saved = run.read_config()["model"]
    assert saved["condition"] == "none" and saved["cross_attention"] == [False, False]
    with pytest.raises(ConfigError, match="cross-attention needs a condition"):  # switched on explicitly: refused
        resolve_config("images", overrides=[{"model": {"condition": "none", "cross_attention": [False, False, True]}}])


# ================================================================================== reading
def test_unreadable_files_are_skipped_and_counted(tmp_path, capsys):
    path = small_class_folder(tmp_path / "pets", per_class=3)
    cut = os.path.join(path, "dog", "00003.jpg")
    with open(cut, "rb") as handle:
        data = handle.read()
    with open(cut, "wb") as handle:
        handle.write(data[: len(data) // 2])  # a truncated JPEG
    with open(os.path.join(path, "fox", "notes.png"), "w") as handle:
        handle.write("not a picture")
    dataset = load_image_folder(path, image_size=16, progress=False)
    log = capsys.readouterr().out
    assert "10 images in 3 classes (cat, dog, fox)" in log  # 9 pictures and the text file, listed by name
    assert "Skipped 2 unreadable image(s)" in log and "00003.jpg" in log and "notes.png" in log
    assert len(dataset) == 8
    assert np.bincount(dataset.conditions[dataset.rows]).tolist() == [0, 3, 2, 3]
    assert all(dataset.images[row].any() for row in dataset.rows)  # no zero row of a skipped file is used


def test_empty_class_folders_and_loose_images_are_left_out_saying_so(tmp_path, capsys):
    path = small_class_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=2)
    os.makedirs(os.path.join(path, "empty"))
    os.makedirs(os.path.join(path, ".ipynb_checkpoints"))
    Image.fromarray(random_images(1)[0]).save(os.path.join(path, "loose.png"))
    listing = read_image_folder(path)
    assert listing.class_names == ("cat", "dog") and listing.class_ids == [1, 1, 2, 2]
    summary = listing.summary()
    assert "skipped the empty class folder(s) empty" in summary and "1 image(s) beside the class folders" in summary
    assert ".ipynb_checkpoints" not in summary


def test_a_test_split_takes_the_training_classes_ids(tmp_path):
    root = tmp_path / "pets"
    small_class_folder(root / "train", classes=("cat", "dog", "fox"), per_class=1)
    small_class_folder(root / "val", classes=("dog", "fox"), per_class=1)
    assert read_image_folder(root, "test").class_ids == [2, 3]  # dog and fox keep their training ids
    small_class_folder(root / "val", classes=("wolf",), per_class=1)
    with pytest.raises(ValueError, match="has the class folder\\(s\\) wolf, which the training split has not"):
        read_image_folder(root, "test")


# ================================================================================== evaluation
def tiny_run(root, folder) -> str:
    """A run directory over `folder` (config.yaml and a random-weight checkpoint), as training leaves it."""
    config = fit_config_to_folder(tiny_config(*folder_sets(folder), preset="images"))
    run = RunDirectory(root)
    run.write_config(config)
    model = build_unet(config.model)
    randomize_weights(model, scale=0.1)
    os.makedirs(run.checkpoints, exist_ok=True)
    model.save(run.latest)
    return str(root)


def test_evaluate_compares_with_the_test_split_and_trains_a_judge_per_folder(tmp_path):
    splits = {}
    for name in ("pets", "more-pets"):
        root = tmp_path / name
        small_class_folder(root / "train", classes=("cat", "dog"), per_class=6, seed=1)
        splits[name] = small_class_folder(root / "val", classes=("cat", "dog"), per_class=2, seed=2)
    run = tiny_run(tmp_path / "run", tmp_path / "pets")
    results = evaluate(run, num=4, nearest=2, steps=2)
    assert results["reference"] == f"{splits['pets']}, 4 images"  # the val/ folder beside train/
    assert set(results["per_class_accuracy"]) == {"cat", "dog"}  # judged by the folder's classes
    assert len(results["memorization"]["test_pixel_distances"]) == 2  # held-out images: the val/ ones
    evaluation = Evaluation(RunDirectory(run).run_config())
    expected = load_image_folder(tmp_path / "pets", image_size=16, split="test", progress=False)
    np.testing.assert_array_equal(evaluation.test.images, expected.images[expected.rows])

    tiny_run(tmp_path / "run2", tmp_path / "more-pets")
    evaluate(tmp_path / "run2", num=4, nearest=0, steps=2)
    judges = os.listdir(os.path.join(os.environ["KERAS_HOME"], "denoiser", "classifiers"))
    assert len([name for name in judges if name.startswith("images-")]) == 2  # one per folder, never shared


def test_a_folder_without_a_test_split_is_compared_with_its_training_images(tmp_path):
    run = tiny_run(tmp_path / "run", small_class_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=4))
    evaluation = Evaluation(RunDirectory(run).run_config(), classifier=build_classifier((16, 16, 3), 2, width=4))
    assert evaluation.test is None and len(evaluation.reference) == 8
    assert "the training images of" in evaluation.reference_name and "no test/ or val/" in evaluation.reference_name


def test_rotated_copies_label_each_image_by_its_turn():
    images = random_images(3, size=8)
    turned = rotated_copies(Dataset(images, np.zeros(3, dtype="int32")))
    assert len(turned) == 12 and len(turned.class_names) == 4
    np.testing.assert_array_equal(turned.conditions, np.repeat([1, 2, 3, 4], 3))
    np.testing.assert_array_equal(turned.images[3 * 2 + 1], np.rot90(images[1], 2))  # image 1, turned 180 degrees


def test_an_unconditional_model_is_scored_by_a_judge_trained_on_its_folder(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for index, image in enumerate(random_images(12, seed=4)):
        Image.fromarray(image).save(folder / f"{index}.png")
    run = tiny_run(tmp_path / "run", folder)
    assert RunDirectory(run).run_config().model.condition == "none"
    results = evaluate(run, num=6, nearest=0, steps=2)
    assert "conditional_accuracy" not in results and results["guidance"] is None
    assert "the training images of" in results["reference"]
    # a random network's samples are further from the folder's images than the images themselves
    assert results["classifier_fd"] > results["classifier_fd_real"]
    judges = os.listdir(os.path.join(os.environ["KERAS_HOME"], "denoiser", "classifiers"))
    assert any(name.startswith("images-") and "-rotations" in name for name in judges)
    printed = "\n".join(summary_lines(results))
    assert "guidance" not in printed and "classifier FD" in printed


# ================================================================================== one-line errors
def captioned(root):
    path = small_class_folder(root, classes=("cat",), per_class=2)
    with open(os.path.join(path, "cat", "00000.txt"), "w") as handle:
        handle.write("a cat")
    return path


def empty(root):
    os.makedirs(root)
    return str(root)


def empty_subfolders(root):
    os.makedirs(os.path.join(root, "cat"))
    os.makedirs(os.path.join(root, "dog"))
    return str(root)


@pytest.mark.parametrize(
    "make, sets, expected",
    [
        (lambda root: str(root / "nowhere"), [], "does not exist; data.path must be a folder"),
        (empty, [], "holds no images \\(.jpg"),
        (empty_subfolders, [], "The subfolders of .* \\(cat, dog\\) hold no images"),
        (captioned, [], "holds captions .*00000.txt.*data.dataset=captions"),
        (small_class_folder, ["model.condition=vector"], "model.condition=vector needs captions"),
        (
            small_class_folder,
            ["model.num_classes=5"],
            "3 class folders \\(cat, dog, fox\\) but model.num_classes=5",
        ),
    ],
    ids=["missing", "empty", "empty-subfolders", "captions", "text-condition", "num-classes"],
)
def test_bad_folders_get_one_line_through_the_command_line(tmp_path, capsys, make, sets, expected):
    path = make(tmp_path / "data")
    run_dir = tmp_path / "run"
    assert main(train_args(run_dir, path, *sets)) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("denoiser train: error: ")
    assert re.search(expected, error), error
    assert not os.path.exists(run_dir)  # nothing half-made
