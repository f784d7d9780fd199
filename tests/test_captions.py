"""Captioned data sets: folders, tables and arrays; skipped files are counted; caches; reading by index."""

import csv
import os

import numpy as np
import pytest
from helpers import FakeEncoder, fake_embedding
from PIL import Image

from denoiser.config import DataConfig, RunConfig, TrainConfig, parse_override
from denoiser.data import image_files
from denoiser.data.captions import load_array_dataset, load_captioned_dataset, read_captions
from denoiser.data.dataset import DataError, Dataset
from denoiser.data.encoders import embed_captions
from denoiser.data.pipeline import training_pipeline
from denoiser.data.sources import dataset_for_config
from denoiser.presets import resolve_config
from denoiser.utils.images import fit_image


def test_folder_with_a_corrupt_jpeg_and_an_uncaptioned_image(captioned_folder, capsys):
    folder, readable = captioned_folder
    listing = read_captions(folder)
    assert len(listing) == 13 and listing.missing_captions == 1  # 14 images, one without a caption
    encoder = FakeEncoder()
    dataset = load_captioned_dataset(folder, image_size=16, channels=3, encoder=encoder, progress=False)
    log = capsys.readouterr().out
    assert "13 captioned images" in log and "1 image(s) without a caption" in log
    assert "Skipped 1 unreadable image(s)" in log and "000000001.jpg" in log

    assert len(dataset) == 12 == len(readable)
    assert dataset.images.shape == (13, 16, 16, 3) and dataset.images.dtype == np.uint8
    assert [dataset.captions[row] for row in dataset.rows] == readable
    # Each row's condition is the embedding of that row's caption.
    expected = np.stack([fake_embedding(caption) for caption in readable])
    np.testing.assert_allclose(np.asarray(dataset.conditions)[dataset.rows], expected)
    assert dataset.images[dataset.rows].mean() > 5  # real pictures, not the zeros of a skipped row
    assert os.path.isfile(image_files.cache_path(folder, "images-16x16x3"))
    assert os.path.isfile(image_files.cache_path(folder, "embeddings-sentence_transformers-fake"))


def test_a_second_load_reads_the_caches_only(captioned_folder, monkeypatch, capsys):
    folder, _ = captioned_folder
    first = load_captioned_dataset(folder, image_size=16, encoder=FakeEncoder(), progress=False)

    def no_decoding(*args):
        raise AssertionError("an image was decoded again")

    monkeypatch.setattr(image_files, "load_image", no_decoding)
    encoder = FakeEncoder()
    again = load_captioned_dataset(folder, image_size=16, encoder=encoder, progress=False)
    assert encoder.calls == []
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.rows, first.rows)
    assert "Skipped 1 unreadable image(s)" in capsys.readouterr().out  # still reported
    # Another size is another cache.
    monkeypatch.undo()
    assert load_captioned_dataset(folder, image_size=8, encoder=encoder, progress=False).images.shape[1:] == (8, 8, 3)


def test_fit_image_resizes_the_short_side_and_crops_the_centre():
    picture = np.zeros((20, 40, 3), np.uint8)  # 40 wide: red | green | blue in quarters, half, quarter
    picture[:, :10] = (255, 0, 0)
    picture[:, 10:30] = (0, 255, 0)
    picture[:, 30:] = (0, 0, 255)
    fitted = fit_image(picture, 10)
    assert fitted.shape == (10, 10, 3)
    assert np.all(fitted[:, 1:-1, 1] > 200) and np.all(fitted[:, 1:-1, 0] < 60)  # only the green middle is left
    grey = fit_image(Image.fromarray(picture), 6, channels=1)
    assert grey.shape == (6, 6, 1)


def write_table(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_path", "Caption"])
        writer.writerows(rows)


def test_csv_table_with_relative_paths(captioned_folder, tmp_path, capsys):
    folder, readable = captioned_folder
    table = tmp_path / "captioned" / "data.csv"
    write_table(
        table,
        [
            ["00000/000000000.jpg", "first"],
            ["00000/000000001.jpg", "corrupt"],
            ["00000/000000003.jpg", ""],
            ["00000/000000004.jpg", "fourth"],
            ["missing.jpg", "gone"],
        ],
    )
    listing = read_captions(table)
    assert listing.captions == ["first", "corrupt", "fourth", "gone"] and listing.missing_captions == 1
    dataset = load_captioned_dataset(table, image_size=8, encoder=FakeEncoder(), progress=False)
    assert len(dataset) == 2 and [dataset.captions[row] for row in dataset.rows] == ["first", "fourth"]
    log = capsys.readouterr().out
    assert "Skipped 2 unreadable image(s)" in log and "missing.jpg" in log
    assert os.path.isfile(tmp_path / "captioned" / "data.images-8x8x3.npy")


@pytest.mark.extra("parquet")
def test_parquet_table(captioned_folder, tmp_path):
    import pyarrow
    import pyarrow.parquet as parquet

    folder, _ = captioned_folder
    path = str(tmp_path / "captioned" / "data.parquet")
    parquet.write_table(
        pyarrow.table({"file": ["00000/000000000.jpg", "00000/000000004.jpg"], "text": ["a picture", None]}), path
    )
    listing = read_captions(path)
    assert listing.captions == ["a picture"] and listing.missing_captions == 1


def test_table_without_known_columns_says_which_names_work(tmp_path):
    table = tmp_path / "data.csv"
    table.write_text("picture,words\na.jpg,a cat\n")
    with pytest.raises(DataError, match=r"no column of image paths.*'image'.*columns are \['picture', 'words'\]"):
        read_captions(table)


def test_caption_text_file_can_be_embedded_but_not_trained_on(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red circle\n\na blue cross\n")
    listing = read_captions(path)
    assert listing.captions == ["a red circle", "a blue cross"] and listing.images is None
    with pytest.raises(DataError, match="no images"):
        load_captioned_dataset(path, encoder=FakeEncoder(), progress=False)


def test_numpy_arrays_are_fitted_once_and_checked(tmp_path):
    rng = np.random.default_rng(0)
    images_path, embeddings_path = tmp_path / "images.npy", tmp_path / "embeddings.npy"
    np.save(images_path, rng.integers(0, 256, (12, 20, 30, 3), dtype=np.uint8))
    np.save(embeddings_path, rng.normal(size=(12, 5)).astype("float32"))
    dataset = load_array_dataset(images_path, embeddings_path, image_size=8, channels=3, progress=False)
    assert len(dataset) == 12 and dataset.images.shape == (12, 8, 8, 3) and dataset.conditions.shape == (12, 5)
    assert os.path.isfile(tmp_path / "images.images-8x8x3.npy")

    np.save(embeddings_path, rng.normal(size=(11, 5)).astype("float32"))
    with pytest.raises(DataError, match="has 11 embeddings but there are the 12 images"):
        load_array_dataset(images_path, embeddings_path, image_size=8)


def test_embeddings_of_another_encoder_are_refused(captioned_folder, tmp_path):
    folder, _ = captioned_folder
    made = str(tmp_path / "made.npy")
    embed_captions(read_captions(folder).captions, made, FakeEncoder(), progress=False)
    with pytest.raises(DataError, match="made by the encoder sentence_transformers/fake, not open_clip/ViT-B-32/none"):
        load_captioned_dataset(folder, image_size=8, encoder="open_clip/ViT-B-32/none", embeddings=made, progress=False)


def test_run_config_needs_a_path():
    config = resolve_config("captions", overrides=[parse_override("model.image_size=16")])
    with pytest.raises(DataError, match="needs data.path"):
        dataset_for_config(config)


def test_batches_are_read_by_index_from_the_usable_rows_only():
    """Image i is filled with the value i and its condition is (i, i); row 3 and 5 are left out."""
    count = 40
    images = np.repeat(np.arange(count, dtype=np.uint8), 4 * 4 * 3).reshape(count, 4, 4, 3)
    conditions = np.repeat(np.arange(count, dtype="float32")[:, None], 2, axis=1)
    rows = np.array([row for row in range(count) if row not in (3, 5)])
    dataset = Dataset(images, conditions, rows=rows)
    assert len(dataset) == 38
    seen = []
    config = RunConfig(DataConfig(label_dropout=0.0), train=TrainConfig(batch_size=19))
    for (_, _, batch_conditions), x0 in training_pipeline(dataset, config).take(2):
        ids = np.round((np.asarray(x0)[:, 0, 0, 0] + 1) * 127.5).astype(int)  # back from [-1, 1] to the row id
        np.testing.assert_array_equal(np.asarray(batch_conditions)[:, 0], ids)  # images and conditions stay paired
        seen += ids.tolist()
    assert sorted(seen) == rows.tolist()  # one epoch: every usable row once, no skipped row


def test_a_run_may_move_its_data_but_not_change_its_encoder(tmp_path):
    from denoiser.config import ConfigError
    from denoiser.rundir import RunDirectory

    def config(*sets):
        return resolve_config("captions", overrides=[parse_override(text) for text in sets])

    run = RunDirectory(tmp_path)
    run.write_config(config("data.path=/data/mine", "data.encoder=open_clip/ViT-B-32/none"))
    moved = run.check_resume(config("data.path=/content/mine", "data.encoder=open_clip/ViT-B-32/none"))
    assert moved == ["data.path: '/data/mine' -> '/content/mine'"]  # moved: fine
    with pytest.raises(ConfigError, match="data.encoder: 'open_clip/ViT-B-32/none' -> 'sentence_transformers/x'"):
        run.check_resume(config("data.path=/data/mine", "data.encoder=sentence_transformers/x"))
