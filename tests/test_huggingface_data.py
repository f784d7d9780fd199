"""Hugging Face datasets as training data, offline: a dataset written locally, read by `data.path`.

One dataset of coloured squares with captions is written two ways, as `datasets` does: with
`save_to_disk`, and as a parquet file of encoded image bytes and text. Both load (the parquet one
through `hf:FOLDER` naming too), fill the image cache once, and a tiny model trains on them.
"""

import contextlib
import io
import os

import numpy as np
import pytest
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS
from PIL import Image

from denoiser.cli import main
from denoiser.config import parse_override
from denoiser.data.dataset import DataError
from denoiser.data.huggingface import is_huggingface_source, load_huggingface_dataset, split_name
from denoiser.data.sources import dataset_for_config
from denoiser.presets import resolve_config

pytestmark = pytest.mark.extra("hf")

ENCODER = "open_clip/ViT-B-32/none"
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def png_bytes(colour, size=24):
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def rows(count=12):
    names = list(COLOURS)
    texts = [f"a {names[index % 3]} square" for index in range(count)]
    images = [png_bytes(COLOURS[names[index % 3]]) for index in range(count)]
    images[-1] = b"not an image"  # a damaged row is skipped, not fatal
    return {"image": [{"bytes": data, "path": None} for data in images], "text": texts, "id": list(range(count))}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The dataset written with `save_to_disk` and as a folder of parquet files."""
    import datasets

    root = tmp_path_factory.mktemp("hf")
    features = datasets.Features(
        {"image": datasets.Image(), "text": datasets.Value("string"), "id": datasets.Value("int64")}
    )
    dataset = datasets.Dataset.from_dict(rows(), features=features)
    dataset.save_to_disk(str(root / "saved"))
    os.makedirs(root / "parquet")
    dataset.to_parquet(str(root / "parquet" / "train-00000.parquet"))
    return root


def config_for(path, *sets):
    texts = [f"data.path={path}", f"data.encoder={ENCODER}", "model.image_size=16", *TINY_MODEL_SETS, *sets]
    return resolve_config("captions", overrides=[parse_override(text) for text in texts])


def test_which_paths_are_huggingface_datasets(saved, captioned_folder):
    assert is_huggingface_source(str(saved / "saved")) and is_huggingface_source(str(saved / "parquet"))
    assert is_huggingface_source("hf:lambdalabs/naruto-blip-captions")
    assert not is_huggingface_source(captioned_folder[0])  # an img2dataset-style folder is read by captions.py
    assert split_name("hf:user/name:test") == ("user/name", "test")
    assert split_name("hf:user/name") == ("user/name", "train")


@pytest.mark.extra("clip")
@pytest.mark.parametrize("where", ["saved", "parquet", "hf:parquet", "parquet/train-00000.parquet"])
def test_a_local_dataset_loads_with_its_columns_found(saved, where, capsys):
    path = "hf:" + str(saved / "parquet") if where == "hf:parquet" else str(saved / where)
    dataset = load_huggingface_dataset(path, encoder=ENCODER, image_size=16, progress=False)
    assert len(dataset) == 11  # 12 rows, one damaged image
    assert dataset.images.shape == (12, 16, 16, 3)
    red = dataset.images[0].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(red, COLOURS["red"], atol=2)
    assert dataset.captions[1] == "a green square"
    assert "images: 'image', captions: 'text'" in capsys.readouterr().out


def test_missing_or_ambiguous_columns_name_the_columns(saved, tmp_path):
    import datasets

    two_texts = datasets.Dataset.from_dict({**rows(3), "title": ["x", "y", "z"], "text": ["a", "b", "c"]})
    two_texts = two_texts.rename_column("text", "alt")
    two_texts.save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataError, match=r"several columns of captions \['alt', 'title'\].*data.caption_column"):
        dataset_for_config(config_for(tmp_path / "two"))
    with pytest.raises(DataError, match=r"no column 'pixels' \(data.image_column\); its columns are \['image'"):
        dataset_for_config(config_for(saved / "saved", "data.image_column=pixels"))


@pytest.mark.extra("clip")
def test_one_command_trains_on_a_local_dataset(saved, tmp_path):
    args = ["train", "--preset", "captions", "--run-dir", str(tmp_path / "run"), "--epochs", "1"]
    args += ["--steps-per-epoch", "2", "--set", f"data.path=hf:{saved / 'parquet'}", "--set", f"data.encoder={ENCODER}"]
    for text in [
        "model.image_size=16",
        *TINY_MODEL_SETS,
        "train.batch_size=4",
        "train.warmup_steps=2",
        *QUICK_SAMPLE_SETS,
    ]:
        args += ["--set", text]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    assert os.path.isfile(tmp_path / "run" / "checkpoints" / "latest.keras")
