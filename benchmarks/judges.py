"""Two judges for the ablations: the package's classifier and a second, independent one.

A lever tuned against one classifier's features can end up fitting that classifier rather than making better
images. So every ablation is scored twice: by the package's judge (evaluation/classifier.py: max-pooled
convolutions with batch norm, a flattened feature map, seed 0) and by this module's second judge, built
differently on purpose: strided convolutions with GELU and layer norm, no batch norm, a global average instead of
a flattened map, label smoothing, another seed. A lever counts only where both agree.

    judges = load_judges("fashion_mnist", 28)                 # {"package": ..., "second": ...}
    scores = judge_samples(judges, samples, classes, real, real_ids, reference)

The second judge is trained once (about 3 minutes on 2 CPU cores) and cached beside the package's in
KERAS_HOME/denoiser/classifiers/.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers

from denoiser.data.sources import load_dataset
from denoiser.evaluation import metrics
from denoiser.evaluation.classifier import FEATURES, classifier_features, load_classifier, predict_classes
from denoiser.utils.files import atomic_path
from denoiser.utils.images import to_unit_range

SECOND_JUDGE_SEED = 1
SECOND_JUDGE_EPOCHS = 8


def second_judge_path(dataset: str, image_size: int) -> str:
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "denoiser", "classifiers", f"{dataset}-{image_size}-second-judge-v1.keras")


def build_second_judge(image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Three stages of a 3x3 convolution and a strided one (GELU, layer norm), a global average, `features`."""
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="gelu")(x)
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="gelu")(x)
        x = layers.LayerNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(128, activation="gelu", name=FEATURES)(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.2)(features))
    return keras.Model(inputs, logits, name="second_judge")


def load_second_judge(dataset: str, image_size: int) -> keras.Model:
    """The cached second judge, trained on the data set's training split on first use."""
    path = second_judge_path(dataset, image_size)
    if os.path.exists(path):
        return keras.saving.load_model(path, safe_mode=True)
    data = load_dataset(dataset, "train", image_size=image_size).in_memory()
    keras.utils.set_random_seed(SECOND_JUDGE_SEED)
    model = build_second_judge(data.images.shape[1:], len(data.class_names))
    steps = SECOND_JUDGE_EPOCHS * int(np.ceil(len(data) / 128))
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["accuracy"],
    )
    labels = keras.utils.to_categorical(np.asarray(data.conditions).reshape(-1) - 1, len(data.class_names))
    print(f"Training the second judge on {len(data)} images (once; cached at {path})", flush=True)
    model.fit(to_unit_range(data.images), labels, epochs=SECOND_JUDGE_EPOCHS, batch_size=128, verbose=2)
    with atomic_path(path) as temporary:
        model.save(temporary)
    return model


def load_judges(dataset: str, image_size: int) -> dict:
    return {"package": load_classifier(dataset, image_size), "second": load_second_judge(dataset, image_size)}


def judge_samples(judges: dict, samples, classes, real, real_ids, reference) -> dict:
    """Each judge's accuracy on the requested classes and Frechet distance to `reference` (the test split), with
    its real-data floor (`real`, training images as many as the samples, against the same reference)."""
    scores = {}
    for name, judge in judges.items():
        reference_features = classifier_features(judge, reference)
        scores[name] = {
            "accuracy": float(np.mean(predict_classes(judge, samples) == np.asarray(classes).reshape(-1))),
            "fd": metrics.frechet_distance(classifier_features(judge, samples), reference_features),
            "fd_real": metrics.frechet_distance(classifier_features(judge, real), reference_features),
            "accuracy_real": float(np.mean(predict_classes(judge, real) == np.asarray(real_ids).reshape(-1))),
        }
    return scores
