"""The whole text-to-image path, offline: embed captions, train, sample from prompts, interpolate.

The encoder is open_clip's ViT-B-32 with random weights (`open_clip/ViT-B-32/none`): the real
network and tokenizer, no download. The network is tiny and trains for two short epochs.
"""

import contextlib
import io
import os
import shutil

import numpy as np
import pytest
import yaml
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS, command_line, write_captioned_folder
from PIL import Image

from denoiser import build_unet, generate, interpolate, load_model, resolve_config, train
from denoiser.cli import main
from denoiser.conditions import prompt_conditions
from denoiser.config import ModelConfig, parse_override
from denoiser.data.cache import read_note
from denoiser.generation import slerp
from denoiser.rundir import RunDirectory
from denoiser.sampler import Sampler

ENCODER = "open_clip/ViT-B-32/none"
TINY = ["model.image_size=16", *TINY_MODEL_SETS, "train.batch_size=4", "train.warmup_steps=2", *QUICK_SAMPLE_SETS]
RED, BLUE = "a large red circle at the centre", "a small blue cross at the top left"

pytestmark = pytest.mark.extra("clip")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A captioned folder, its embeddings made by `denoiser embed`, and a run trained on them by `denoiser train`."""
    root = tmp_path_factory.mktemp("text-to-image")
    folder = str(root / "shapes")
    captions = write_captioned_folder(folder, count=16, size=20)
    assert main(["embed", "--encoder", ENCODER, "--captions", folder, "--batch-size", "8"]) == 0
    embeddings = os.path.join(folder, "embeddings-open_clip-ViT-B-32-none.npy")
    made = read_note(embeddings)
    args = [
        "train",
        "--preset",
        "captions",
        "--run-dir",
        str(root / "run"),
        "--epochs",
        "2",
        "--steps-per-epoch",
        "2",
        "--set",
        f"data.path={folder}",
        "--set",
        f"data.encoder={ENCODER}",
    ]
    for text in TINY:
        args += ["--set", text]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(args) == 0
    return {
        "root": root,
        "folder": folder,
        "run": str(root / "run"),
        "captions": captions,
        "embeddings": embeddings,
        "note_after_embed": made,
        "train_log": log.getvalue(),
    }


def test_embed_writes_one_vector_per_captioned_image_and_training_reuses_it(trained):
    embeddings = np.load(trained["embeddings"])
    assert embeddings.shape == (17, 512)  # 18 images: 17 with captions (one of them corrupt), one without
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert read_note(trained["embeddings"]) == trained["note_after_embed"]  # training did not embed again


def test_the_run_records_its_encoder_and_trains(trained):
    run = RunDirectory(trained["run"])
    assert run.finished_epochs() == [1, 2]
    assert run.read_config()["data"]["encoder"] == ENCODER
    assert os.path.isfile(run.sample_grid(2))


def test_training_reports_the_skipped_files(trained):
    assert "1 image(s) without a caption" in trained["train_log"]
    assert "Skipped 1 unreadable image(s), e.g. 00000/000000001.jpg" in trained["train_log"]


def test_sample_from_prompts(trained, tmp_path):
    out, npz = tmp_path / "prompts.png", tmp_path / "prompts.npz"
    assert (
        main(command_line("sample", checkpoint=trained["run"], prompt=[RED, BLUE], num=2, steps=2, out=out, npz=npz))
        == 0
    )
    # save_grid's picture: a 64-pixel cell per image, 2 in a row, a row per prompt, and 160 pixels of row labels
    assert Image.open(out).size == (160 + 2 * 64, 2 * 64)
    saved = np.load(npz)
    assert saved["images"].shape == (4, 16, 16, 3) and saved["labels"].tolist() == [0, 0, 1, 1]
    images, ids, names = generate(trained["run"], prompts=[RED, BLUE], num_per_label=2, steps=2)
    assert names == [RED, BLUE] and ids.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(np.round((images + 1) * 127.5).astype(np.uint8), saved["images"])


def to_uint8(images):
    return np.round((np.asarray(images) + 1) * 127.5).astype(int)


def test_interpolate_between_prompts_keeps_the_noise(trained, tmp_path):
    out, npz = tmp_path / "strip.png", tmp_path / "strip.npz"
    settings = dict(from_=RED, to=BLUE, frames=4, seed=3, steps=2, out=out, npz=npz)
    assert main(command_line("interpolate", checkpoint=trained["run"], **settings)) == 0
    assert Image.open(out).size == (4 * 64, 64 + 35)  # one row of 4 64-pixel frames, no row labels, a title
    strip = np.load(npz)["images"].astype(int)
    assert strip.shape == (4, 16, 16, 3)
    for frame, prompt in ((strip[0], RED), (strip[-1], BLUE)):  # the same noise, the two prompts
        alone, _, _ = generate(trained["run"], prompts=[prompt], num_per_label=1, steps=2, seed=3)
        assert np.abs(frame - to_uint8(alone[0])).max() <= 1
    assert (strip[0] != strip[-1]).any()  # the same noise, but the prompt moved


def test_interpolate_between_seeds_keeps_the_prompt(trained):
    strip = interpolate(trained["run"], prompt=RED, seeds=(1, 2), frames=3, steps=2)
    for frame, seed in ((strip[0], 1), (strip[-1], 2)):
        alone, _, _ = generate(trained["run"], prompts=[RED], num_per_label=1, steps=2, seed=seed)
        np.testing.assert_allclose(frame, alone[0], atol=1e-4)
    with pytest.raises(ValueError, match="two prompts"):
        interpolate(trained["run"], from_prompt=RED, to_prompt=BLUE, seeds=(1, 2))
    with pytest.raises(SystemExit):  # argparse: --seeds takes two numbers
        main(["interpolate", "--checkpoint", trained["run"], "--prompt", RED, "--seeds", "1", "--out", "x.png"])


def test_a_mismatching_encoder_is_refused(trained, tmp_path, capsys):
    code = main(
        [
            "sample",
            "--checkpoint",
            trained["run"],
            "--prompt",
            RED,
            "--encoder",
            "sentence_transformers/all-MiniLM-L6-v2",
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert ENCODER in error and "all-MiniLM-L6-v2" in error and len(error.splitlines()) == 1


def test_a_lone_checkpoint_carries_its_encoder_and_one_without_it_needs_it_named(trained, tmp_path, capsys):
    lone = tmp_path / "model.keras"
    shutil.copy(os.path.join(trained["run"], "checkpoints", "latest.keras"), lone)
    quick = ["--num", "1", "--steps", "1"]
    assert main(["sample", "--checkpoint", str(lone), "--prompt", RED, *quick, "--out", str(tmp_path / "x.png")]) == 0
    bare = load_model(lone)  # a checkpoint that does not carry its run's facts, as before models carried them
    bare.run_info = {}
    bare.save(tmp_path / "bare.keras")
    args = ["sample", "--checkpoint", str(tmp_path / "bare.keras"), "--prompt", RED, *quick]
    assert main([*args, "--out", str(tmp_path / "y.png")]) == 2
    assert "--encoder" in capsys.readouterr().err
    assert main([*args, "--encoder", ENCODER, "--out", str(tmp_path / "z.png")]) == 0


def test_the_run_config_round_trips(trained):
    with open(os.path.join(trained["run"], "config.yaml")) as handle:
        values = yaml.safe_load(handle)
    assert values["data"]["dataset"] == "captions" and values["model"]["condition"] == "vector"


def test_prompts_are_refused_by_a_class_model():
    model = build_unet(
        ModelConfig(
            image_size=8,
            channels=1,
            base_width=8,
            width_multipliers=[1],
            self_attention=[False],
            cross_attention=[False],
            norm_groups=4,
            num_classes=3,
        )
    )
    with pytest.raises(ValueError, match="class labels, not text"):
        prompt_conditions(["a red dress"], Sampler(model), ENCODER)


def test_slerp_stays_on_the_sphere_and_handles_the_empty_prompt():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    middle = slerp(a, b, 0.5)
    np.testing.assert_allclose(middle, [2**-0.5, 2**-0.5, 0], atol=1e-6)  # a straight line would have length 0.71
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, np.zeros(3), 0.25), 0.75 * a, atol=1e-6)  # the zero vector: a straight line


@pytest.mark.slow
def test_a_sequence_model_trains_on_token_states(trained, tmp_path):
    """model.condition=sequence: cross-attention over CLIP's 77 token states, embedded with --tokens."""
    assert main(["embed", "--encoder", ENCODER, "--captions", trained["folder"], "--tokens"]) == 0
    overrides = [
        parse_override(text)
        for text in TINY
        + [
            f"data.path={trained['folder']}",
            f"data.encoder={ENCODER}",
            "model.condition=sequence",
            "model.condition_tokens=77",
            "model.condition_dim=512",
            "train.epochs=1",
            "train.steps_per_epoch=1",
        ]
    ]
    config = resolve_config("captions", overrides=overrides)
    model = train(config, tmp_path / "run", verbose=0)
    assert model.inputs[2].shape[1:] == (77, 512)
    images, _, _ = generate(tmp_path / "run", prompts=[RED, ""], num_per_label=1, steps=1)
    assert images.shape == (2, 16, 16, 3)
