"""The text encoder sets the condition's shape: model.condition_dim (and condition_tokens) follow data.encoder unless
given, a given one that contradicts it is refused before anything is cached, and config.yaml records the real width.
"""

import contextlib
import glob
import io
import os

import numpy as np
import pytest
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS, FakeEncoder, needs_extra, tiny, write_captioned_folder

from denoiser import build_unet, train
from denoiser.cli import main
from denoiser.config import ConfigError, parse_override
from denoiser.data.captions import embeddings_cache_path, read_captions
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.encoders import embed_captions
from denoiser.data.sources import with_condition_shape
from denoiser.presets import resolve_config
from denoiser.rundir import RunDirectory

RANDOM_CLIP = "open_clip/ViT-B-32/none"
MINILM = "sentence_transformers/all-MiniLM-L6-v2"
TINY = ["model.image_size=16", *TINY_MODEL_SETS, "train.batch_size=4", "train.warmup_steps=1", *QUICK_SAMPLE_SETS]
ONE_STEP = ["train.epochs=1", "train.steps_per_epoch=1"]


def captions_config(folder, *sets):
    """The `captions` preset on `folder` with the tiny network, trained one step."""
    texts = [*TINY, *ONE_STEP, f"data.path={folder}", *sets]
    return resolve_config("captions", overrides=[parse_override(text) for text in texts])


def caches_beside(folder) -> list[str]:
    return glob.glob(os.path.join(folder, "images-*.npy*")) + glob.glob(os.path.join(folder, "embeddings-*.npy*"))


# ================================================================================== without an encoder to load
def test_the_shape_is_read_from_the_cache_note_the_data_set_or_the_embeddings_file(tmp_path):
    folder = str(tmp_path / "shapes")
    write_captioned_folder(folder, count=6, size=12)
    spec, captions = FakeEncoder.spec, read_captions(folder).captions
    assert captions_config(folder).model.condition_dim is None  # the preset leaves it to the encoder
    embed_captions(captions, embeddings_cache_path(folder, spec), FakeEncoder(), progress=False)
    config = with_condition_shape(captions_config(folder, f"data.encoder={spec}"))  # the note: no encoder loaded
    assert (config.model.condition_dim, config.model.condition_tokens) == (6, None)

    vectors = np.zeros((4, 5), "float32")
    assert (
        with_condition_shape(
            captions_config(folder), Dataset(np.zeros((4, 16, 16, 3), "uint8"), vectors)
        ).model.condition_dim
        == 5
    )
    tokens = str(tmp_path / "tokens.npy")
    np.save(tokens, np.zeros((len(captions), 3, 7), "float32"))
    sequence = captions_config(folder, "model.condition=sequence", f"data.embeddings={tokens}")
    assert with_condition_shape(sequence).model.condition_shape == (3, 7)
    with pytest.raises(
        DataError, match=r"shape \(3, 7\), not the 1-dimensional ones that model.condition=vector takes"
    ):
        with_condition_shape(captions_config(folder, f"data.embeddings={tokens}"))


def test_a_contradicting_width_is_refused_naming_both_shapes(tmp_path):
    folder = str(tmp_path / "shapes")
    write_captioned_folder(folder, count=6, size=12)
    embed_captions(
        read_captions(folder).captions, embeddings_cache_path(folder, FakeEncoder.spec), FakeEncoder(), progress=False
    )
    config = captions_config(folder, f"data.encoder={FakeEncoder.spec}", "model.condition_dim=512")
    with pytest.raises(DataError) as refused:
        with_condition_shape(config)
    assert str(refused.value) == (
        f"The encoder {FakeEncoder.spec} gives conditions of shape (6,), but model.condition_dim=512 makes the model "
        "expect (512,); leave model.condition_dim unset to follow it, or set model.condition_dim=6."
    )
    assert with_condition_shape(captions_config(folder, f"data.encoder={FakeEncoder.spec}", "model.condition_dim=6"))


def test_a_network_is_never_built_without_its_width():
    with pytest.raises(ConfigError, match=r"^model.condition_dim is unset \(null: the text encoder's"):
        build_unet(tiny(condition="vector", condition_dim=None))
    assert tiny(condition="class", condition_dim=None)  # a class model has no use for it


# ================================================================================== real encoders, whole runs
@pytest.mark.parametrize("encoder, width, extra", [(RANDOM_CLIP, 512, "clip"), (MINILM, 384, "text")])
def test_a_captioned_folder_trains_at_the_encoders_width(tmp_path, monkeypatch, encoder, width, extra):
    needs_extra(extra)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = str(tmp_path / "shapes")
    write_captioned_folder(folder, count=8, size=20)
    wrong = 384 if width == 512 else 512
    with pytest.raises(DataError, match=rf"gives conditions of shape \({width},\), but model.condition_dim={wrong}"):
        train(captions_config(folder, f"data.encoder={encoder}", f"model.condition_dim={wrong}"), tmp_path / "no")
    assert caches_beside(folder) == [] and not (tmp_path / "no").exists()  # refused before anything was written

    model = train(captions_config(folder, f"data.encoder={encoder}"), tmp_path / "run", verbose=0)
    assert model.inputs[2].shape[1:] == (width,) and model.config.condition_dim == width
    saved = RunDirectory(tmp_path / "run").run_config()
    assert (saved.model.condition_dim, saved.data.encoder) == (width, encoder)
    again = train(captions_config(folder, f"data.encoder={encoder}", "train.epochs=2"), tmp_path / "run", verbose=0)
    assert RunDirectory(tmp_path / "run").finished_epochs() == [1, 2] and again.config.condition_dim == width


def test_the_offline_text_recipe_stops_before_caching_with_one_line(tmp_path, monkeypatch, capsys):
    """`denoiser train --preset captions --set data.encoder=MiniLM --set model.condition_dim=512`: exit 2, one line."""
    needs_extra("text")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = str(tmp_path / "shapes")
    write_captioned_folder(folder, count=8, size=20)
    args = ["train", "--preset", "captions", "--run-dir", str(tmp_path / "run"), "--set", f"data.path={folder}"]
    args += ["--set", f"data.encoder={MINILM}", "--set", "model.condition_dim=512"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "(384,)" in error and "(512,)" in error
    assert caches_beside(folder) == []
