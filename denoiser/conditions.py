"""What a user asks for, as the condition input of a model: class names or ids, or prompts.

    >>> ids, names = label_ids(["Dress", "8"], sampler)      # class ids (N,) and a display name each
    >>> embeddings = prompt_conditions(["a red dress"], sampler)   # (1, D) by the run's text encoder

The sampler knows what its model takes (`sampler.model_config`) and what its run used: the class names and
the text encoder (`sampler.class_names`, `sampler.encoder`, carried by the model, see model.py). A prompt
is embedded by the encoder the captions were embedded with; another one is refused.
"""

from __future__ import annotations

import numpy as np

from denoiser.data.encoders import encode_texts
from denoiser.utils.errors import shown


def label_ids(labels, sampler) -> tuple[np.ndarray | None, list[str]]:
    """Class ids and display names for labels given as ids ("3", 3) or class names ("Dress").

    No labels means every class. An unconditional model has no labels: (None, [""]).
    """
    kind = sampler.model_config.condition
    if kind == "none":
        if labels:
            raise ValueError("This model is unconditional; leave out `labels`.")
        return None, [""]
    if kind != "class":
        raise ValueError("This model is conditioned on embeddings, not class labels; give `prompts` instead.")
    names = sampler.class_names
    count = sampler.model_config.num_classes
    lookup = {name.lower(): index + 1 for index, name in enumerate(names)}
    ids = []
    for label in labels or range(1, count + 1):
        text = str(label).strip()
        if text.isdigit() and 0 <= int(text) <= count:
            ids.append(int(text))
        elif text.lower() in lookup:
            ids.append(lookup[text.lower()])
        else:
            known = f"; class names: {', '.join(names)}" if names else ""
            raise ValueError(f"Unknown label {shown(text)}: give an id from 0 to {count}{known}.")
    return np.array(ids, dtype="int32"), [class_name(i, names) for i in ids]


def class_name(class_id: int, names=()) -> str:
    """The display name of a class id: its name, "class 7" where the names are unknown, "no condition" for 0."""
    if class_id == 0:
        return "no condition"
    return names[class_id - 1] if class_id <= len(names) else f"class {class_id}"


def text_encoder(sampler, encoder: str | None = None) -> str:
    """The encoder a model's prompts need: the one its run recorded; `encoder` must agree with it."""
    recorded = sampler.encoder
    if encoder and recorded and encoder != recorded:
        raise ValueError(
            f"This checkpoint was trained on captions embedded by {recorded}, so its prompts need that encoder, "
            f"not {encoder}; leave out `encoder`."
        )
    if not (encoder or recorded):
        raise ValueError(
            "This checkpoint does not name its text encoder (its run's data.encoder); give `encoder`, the one it "
            "was trained with, e.g. open_clip/ViT-B-32/laion2b_s34b_b79k."
        )
    return recorded or encoder


def prompt_conditions(prompts, sampler, encoder: str | None = None) -> np.ndarray:
    """The model's conditions for `prompts`: their embeddings by the run's encoder ("" gives the zero vector)."""
    kind = sampler.model_config.condition
    if kind == "class":
        raise ValueError("This model is conditioned on class labels, not text; give `labels` instead of prompts.")
    if kind == "none":
        raise ValueError("This model is unconditional; leave out `prompts`.")
    embeddings = encode_texts(list(prompts), text_encoder(sampler, encoder), tokens=kind == "sequence")
    expected = sampler.model_config.condition_shape
    if embeddings.shape[1:] != expected:
        raise ValueError(
            f"The encoder gives conditions of shape {embeddings.shape[1:]} but the model takes {expected}; "
            "is this the encoder the model was trained with?"
        )
    return embeddings
