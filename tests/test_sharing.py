"""Models to start from and sharing: pretrained:NAME, `denoiser push` to a folder and to the Hub (a stand-in)."""

import json
import os
import shutil

import huggingface_hub
import numpy as np
import pytest
from helpers import needs_web_page, tiny_train_args

from denoiser import generate, load_sampler
from denoiser.cli import main
from denoiser.deploy.server import make_server
from denoiser.hub import PRETRAINED, pretrained_path
from denoiser.presets import resolve_config
from denoiser.rundir import RunDirectory
from denoiser.serialization import load_model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("share-run")
    assert main(tiny_train_args(run_dir, "train.ema_decay=0.5")) == 0
    return str(run_dir)


@pytest.fixture
def stand_in_hub(tmp_path, monkeypatch):
    """The Hub's upload and download calls, answered from a folder: HUB/USER/NAME holds what was uploaded."""
    hub = tmp_path / "hub"
    uploads = []

    def create_repo(self, repo_id, exist_ok=False, **_):
        (hub / repo_id).mkdir(parents=True, exist_ok=exist_ok)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, **_):
        uploads.append(files_in(folder_path))
        shutil.copytree(folder_path, hub / repo_id, dirs_exist_ok=True)

    def snapshot_download(repo_id, **_):
        if not (hub / repo_id).is_dir():
            raise huggingface_hub.errors.RepositoryNotFoundError(f"404 Client Error: {repo_id} not found")
        return str(hub / repo_id)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return uploads


def files_in(folder):
    found = [os.path.join(where, name) for where, _, names in os.walk(folder) for name in names]
    return sorted(os.path.relpath(path, folder) for path in found)


def sample(checkpoint, seed=3):
    images, _, _ = generate(checkpoint, labels=[1, 2], num_per_label=2, seed=seed, steps=2)
    return images


# ================================================================================== a model folder on disk
def test_push_to_a_folder_writes_a_model_folder_that_samples_like_the_run(trained_run, tmp_path):
    folder = tmp_path / "shared"
    assert main(["push", trained_run, str(folder)]) == 0
    assert files_in(folder) == ["README.md", "checkpoints/latest.keras", "config.yaml", "samples/epoch-0001.png"]
    np.testing.assert_array_equal(sample(str(folder)), sample(trained_run))
    run = RunDirectory(trained_run)
    assert os.path.getsize(RunDirectory(folder).latest) < 0.6 * os.path.getsize(run.latest)  # no optimizer state
    assert getattr(load_model(RunDirectory(folder).latest, compile=True), "optimizer", None) is None
    assert RunDirectory(folder).run_config() == run.run_config()


def test_the_model_card_says_what_was_trained_and_how_it_scored(trained_run, tmp_path):
    evaluation = {
        "num_samples": 50,
        "steps": 10,
        "solver": "deis",
        "guidance": 3.0,
        "conditional_accuracy": 0.875,
        "conditional_accuracy_real": 0.99,
        "classifier_fd": 12.34,
        "classifier_fd_real": 5.6,
    }
    os.makedirs(os.path.join(trained_run, "evaluation"), exist_ok=True)
    with open(os.path.join(trained_run, "evaluation", "latest.json"), "w") as handle:
        json.dump(evaluation, handle)
    folder = tmp_path / "card"
    assert main(["push", trained_run, str(folder)]) == 0
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: keras\n")
    for text in (
        "shapes",
        "1 epoch(s), 2 steps of batch 16",
        "0.875",
        "12.3",
        "5.6",
        "samples/epoch-0001.png",
        "denoiser sample --checkpoint",
    ):
        assert text in card


def test_push_replaces_an_older_model_folder_but_refuses_any_other_folder(trained_run, tmp_path, capsys):
    folder = tmp_path / "again"
    assert main(["push", trained_run, str(folder)]) == 0
    assert main(["push", trained_run, str(folder)]) == 0
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not mine")
    capsys.readouterr()
    assert main(["push", trained_run, str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "not a model folder" in error
    assert sorted(os.listdir(other)) == ["holiday.jpg"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_a_pretrained_model_and_a_pushed_folder_can_be_pushed_again(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["push", "pretrained:shapes", str(first)]) == 0  # no optimizer: its weights are averaged already
    assert main(["push", str(first), str(second)]) == 0
    for folder in (first, second):
        assert files_in(folder) == ["README.md", "checkpoints/latest.keras", "config.yaml", "samples/epoch-0006.png"]
        assert f"--checkpoint {folder} " in (folder / "README.md").read_text()
        assert RunDirectory(folder).run_config() == RunDirectory(pretrained_path("shapes")).run_config()
    np.testing.assert_array_equal(sample(str(second)), sample("pretrained:shapes"))


def test_push_to_a_file_is_refused_in_one_line_naming_the_fix(trained_run, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    for destination in (existing, existing / "model"):
        capsys.readouterr()
        assert main(["push", trained_run, str(destination)]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1
        assert f"{existing} is a file" in error and "give a folder path that does not exist yet or is a folder" in error
    assert existing.read_text() == "mine"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_push_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["push", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "checkpoints/latest.keras" in capsys.readouterr().err


# ================================================================================== the Hub, through a stand-in
def test_push_to_the_hub_and_sample_from_it_by_name(trained_run, tmp_path, stand_in_hub, capsys):
    assert main(["push", trained_run, "hf://ada/tiny-shapes"]) == 0
    assert "https://huggingface.co/ada/tiny-shapes" in capsys.readouterr().out
    assert stand_in_hub == [["README.md", "checkpoints/latest.keras", "config.yaml", "samples/epoch-0001.png"]]
    np.testing.assert_array_equal(sample("hf://ada/tiny-shapes"), sample(trained_run))
    out = tmp_path / "from-hub.png"
    assert main(["sample", "--checkpoint", "hf://ada/tiny-shapes", "--steps", "2", "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    "name, words",
    [
        ("hf://ada/missing", ["hf://ada/missing", "check the name"]),
        ("hf://just-a-name", ["hf://USER/NAME"]),
        ("pretrained:cats", ["pretrained:shapes", "pretrained:fashion_mnist_fast"]),
    ],
)
def test_a_model_name_that_names_nothing_is_one_line(name, words, tmp_path, stand_in_hub, capsys):
    assert main(["sample", "--checkpoint", name, "--out", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    for word in words:
        assert word in error


# ================================================================================== the pretrained models
@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_a_pretrained_model_is_its_presets_run_with_averaged_weights_only(name):
    folder = pretrained_path(name)
    run = RunDirectory(folder)
    config = run.run_config()
    preset = resolve_config(name)
    unused = {key.removeprefix("model.") for key in preset.unused_settings()}  # e.g. a class model's condition_dim

    def used(model):
        return {key: value for key, value in model.to_dict().items() if key not in unused}

    assert used(config.model) == used(preset.model)
    assert getattr(load_model(run.latest, compile=True), "optimizer", None) is None
    assert os.path.getsize(run.latest) < 8 * 2**20  # a few MB, committed with the project
    with open(os.path.join(folder, "web", "denoiser.json")) as handle:
        assert json.load(handle)["image_size"] == config.model.image_size


def test_a_pretrained_model_samples_with_one_command(tmp_path):
    out = tmp_path / "shapes.png"
    assert main(["sample", "--checkpoint", "pretrained:shapes", "--steps", "2", "--num", "1", "--out", str(out)]) == 0
    assert out.is_file()
    assert load_sampler("pretrained:fashion_mnist_fast").model_config.image_size == 28


def test_the_web_page_opens_a_pretrained_model_without_an_export_step():
    needs_web_page()
    server = make_server("pretrained:shapes", port=0)
    try:
        assert server.RequestHandlerClass.keywords["model_dir"] == os.path.join(pretrained_path("shapes"), "web")
    finally:
        server.server_close()
