"""T5 as a text encoder (`transformers/NAME_OR_PATH`), offline: a tiny random T5 and a word-level tokenizer.

No T5 tokenizer ships with an installed package and nothing can be downloaded, so the test builds
one from a small vocabulary with the `tokenizers` library and saves it beside a random-weight
T5 encoder: the same folder layout `save_pretrained` gives for t5-small.
"""

import numpy as np
import pytest
from helpers import QUICK_SAMPLE_SETS, TINY_MODEL_SETS, write_captioned_folder

from denoiser import generate, resolve_config, train
from denoiser.config import parse_override
from denoiser.data.encoders import T5_TOKENS, T5Encoder, encode_texts

WIDTH = 16
WORDS = "a an the large small red blue green yellow circle cross square triangle at in top bottom left right centre"
RED, LONGER = "a large red circle at the centre", "a small blue cross at the top left"

pytestmark = pytest.mark.extra("t5")


def save_tiny_t5(folder) -> str:
    """A random T5 encoder (2 layers, 16 wide) and a lower-casing word-level tokenizer, saved in `folder`."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocabulary = {word: index for index, word in enumerate(["<pad>", "</s>", "<unk>", *WORDS.split()])}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    wrapped.save_pretrained(folder)
    config = T5Config(
        vocab_size=len(vocabulary), d_model=WIDTH, d_kv=8, d_ff=32, num_layers=2, num_heads=2, pad_token_id=0
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        T5EncoderModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="module")
def t5(t5_folder):
    return T5Encoder(t5_folder)


def test_pooled_vectors_are_normalized_means_and_the_empty_caption_is_zero(t5):
    pooled = encode_texts([RED, LONGER, ""], t5)
    assert pooled.shape == (3, WIDTH) and pooled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), [1, 1, 0], atol=1e-5)
    assert not np.allclose(pooled[0], pooled[1])

    states = encode_texts([RED, LONGER, ""], t5, tokens=True)
    assert states.shape == (3, T5_TOKENS, WIDTH)
    caption_tokens = len(RED.split()) + 1  # and </s>
    assert np.abs(states[0, :caption_tokens]).sum(axis=1).all() and not states[0, caption_tokens:].any()
    assert not states[2].any()
    mean = states[0, :caption_tokens].mean(axis=0)
    np.testing.assert_allclose(pooled[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_embeddings_do_not_depend_on_the_batch_or_the_load(t5, t5_folder):
    alone = encode_texts([RED], t5, tokens=True)
    beside_a_longer_one = encode_texts([LONGER, RED], t5, tokens=True)[1:]
    np.testing.assert_allclose(beside_a_longer_one, alone, atol=1e-5)
    again = T5Encoder(t5_folder)
    np.testing.assert_allclose(encode_texts([RED], again), encode_texts([RED], t5), atol=1e-6)
    assert t5.spec == f"transformers/{t5_folder}"


def test_a_sequence_model_trains_and_samples_with_t5_token_states(t5_folder, tmp_path):
    folder = str(tmp_path / "shapes")
    write_captioned_folder(folder, count=8, size=20)
    sets = [
        *TINY_MODEL_SETS,
        *QUICK_SAMPLE_SETS,
        "model.image_size=16",
        "train.batch_size=4",
        "train.warmup_steps=2",
        f"data.path={folder}",
        f"data.encoder=transformers/{t5_folder}",
        "model.condition=sequence",
        f"model.condition_tokens={T5_TOKENS}",
        f"model.condition_dim={WIDTH}",
        "train.epochs=1",
        "train.steps_per_epoch=2",
    ]
    config = resolve_config("captions", overrides=[parse_override(text) for text in sets])
    model = train(config, tmp_path / "run", verbose=0)
    assert model.inputs[2].shape[1:] == (T5_TOKENS, WIDTH)
    images, _, _ = generate(tmp_path / "run", prompts=[RED, ""], num_per_label=1, steps=1)
    assert images.shape == (2, 16, 16, 3)
