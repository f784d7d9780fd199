"""Score a sampler's samples against a run's data (metrics.py): the `Evaluation` behind `denoiser evaluate`
(report.py, for a checkpoint) and the trainer's evaluation every N epochs (callbacks.py).

    >>> evaluation = Evaluation(config)                  # the run's data, classifier and reference features
    >>> results = evaluation.run(sampler, num=500)       # a dict of scores; summary_lines(results) reads them

What is measured depends on the model:
  - class-conditional: the package's classifier (classifier.py) gives the conditional accuracy (share of
    samples classified as the class asked for) and the Frechet distance of its features between samples
    and the test split; real training images score the same way beside them, as the floor. An image folder
    (data/folders.py) has its own classifier, trained on its training split; its test split is its test/ or
    val/ folder, and a folder without one is compared with its training images ("reference" says which);
  - unconditional: the Frechet distance of the judge's features alone (there is no class to ask for); a folder
    of images without classes gets a judge of its own, trained to tell how its images are turned
    (classifier.rotated_copies), so the measure needs no labels and no download;
  - text-conditioned (open_clip encoder): the CLIP score of samples against their captions, and of the real
    images as the reference;
  - every model: a memorization check, the nearest training images of a few samples in pixels (and in
    classifier features), saved side by side as a PNG; held-out test images give the usual distance;
  - with `inception=True`: FID and KID against the test split (protocol in metrics.py);
  - a super-resolution stage (cascade.py) is measured as an upscaler: it upscales real test images (training
    images where there is no test split) made small by area downsampling, each told its own class or caption,
    so "conditional accuracy" is the classifier's accuracy on the images' true classes. Bicubic upsampling of
    the same small images is scored beside it, with the pixel error of both against the originals; no
    memorization check (the outputs follow real held-out images by construction).

During training, `train.evaluate_every: N` runs this every N epochs into RUN/evaluation/epoch-NNNN.json.
A sampler is anything with `sample()` and the `Sampler` attributes (sampler.py); nothing here loads a model.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from denoiser import defaults
from denoiser.data.dataset import Dataset
from denoiser.data.folders import TEST_SPLITS, load_image_folder, read_image_folder, split_folder
from denoiser.data.sources import CAPTIONED_DATASETS, IMAGE_FOLDERS, dataset_for_config, load_dataset
from denoiser.evaluation import metrics
from denoiser.evaluation.classifier import classifier_features, load_classifier, predict_classes, rotated_copies
from denoiser.evaluation.metrics import MetricError
from denoiser.utils.images import downsample, to_uint8, to_unit_range
from denoiser.utils.indices import evenly_spaced
from denoiser.utils.plotting import save_grid

REFERENCE_IMAGES = {"shapes": 2000}  # test images drawn for built-in data sets; Keras ones use the whole split


class Evaluation:
    """The data, classifier and reference features an evaluation compares samples with.

    Built once and reused (the trainer's callback scores every N epochs against the same references).
    """

    def __init__(self, config, inception: bool = False, progress: bool = False, classifier=None):
        self.config, self.progress = config, progress
        self.train = dataset_for_config(config)
        self.class_conditional = config.model.condition == "class" and self.train.is_class_conditional
        self.unconditional = config.model.condition == "none"
        self.test = held_out_split(config)
        self.reference, self.reference_name = self.reference_images()
        if progress and self.reference is not None:
            print(f"Comparing samples with {self.reference_name}.")
        self.classifier = classifier
        if (self.class_conditional or self.unconditional) and classifier is None:
            self.classifier = judge(config, self.train, progress)
        self.inception = metrics.load_inception() if inception else None
        if self.inception is not None and self.reference is None:
            name = config.data.dataset
            raise MetricError(f"FID needs a test split; the {name!r} data set has none. Leave out `inception`.")
        self._test_features = self._inception_test = self._train_features = None

    def reference_images(self) -> tuple[Dataset | None, str]:
        """The real images that samples are compared with (classifier FD, FID) and what they are: the test split;
        for an image folder without one, its training images; None for captioned data."""
        data = self.config.data
        if self.test is not None and data.dataset == IMAGE_FOLDERS:
            return self.test, f"{split_folder(data.path, 'test')}, {len(self.test)} images"
        if self.test is not None:
            return self.test, f"{data.dataset} test split, {len(self.test)} images"
        if data.dataset == IMAGE_FOLDERS:
            held_out = " or ".join(f"{name}/" for name in TEST_SPLITS)
            return self.train, (
                f"the training images of {data.path}, {len(self.train)} images (it has no {held_out} split beside "
                f"a train/ folder)"
            )
        return None, ""

    # ----------------------------------------------------------------------------- samples
    def conditions(self, num: int, kind: str):
        """What to sample: classes in turn, captions spread over the data set, or nothing; and the captions."""
        if kind == "class":
            return np.arange(num, dtype="int32") % self.config.model.num_classes + 1, None
        if kind in ("vector", "sequence"):
            conditions, captions = self.train.examples(num)
            return conditions, captions
        return None, None

    def training_images(self, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rows = self.train.row_indices()
        rows = np.sort(np.random.default_rng(seed).choice(rows, min(count, len(rows)), replace=False))
        return self.train.images[rows], np.asarray(self.train.conditions[rows])

    def upscaling_inputs(self, num: int, kind: str, low_size: int):
        """A super-resolution stage's inputs: `num` real images spread over the test split (over the training
        images where there is none, or for captions), made low_size x low_size by area downsampling; with
        their conditions (None for an unconditional stage), captions, the originals and where they came from."""
        source = self.test if self.test is not None and kind in ("class", "none") else self.train
        rows = source.example_rows(num)
        originals = source.images[rows]
        conditions = None if kind == "none" else np.asarray(source.conditions[rows])
        captions = [source.captions[row] if source.captions is not None else "" for row in rows]
        low = np.asarray(downsample(to_unit_range(originals), low_size))
        return low, conditions, captions, originals, "test split" if source is self.test else "training images"

    # ----------------------------------------------------------------------------- scores
    def run(
        self,
        sampler,
        num: int = defaults.EVALUATION_NUM,
        seed: int = 0,
        nearest: int = defaults.NEAREST,
        picture: str | None = None,
    ) -> dict:
        """Sample `num` images with `sampler` and score them; `picture` is where the memorization PNG goes.

        A super-resolution stage upscales `num` real images made small instead (see the module's docstring).
        """
        start = time.perf_counter()
        kind = sampler.model_config.condition
        upscaling = None
        if sampler.low_resolution_shape is None:
            conditions, captions = self.conditions(num, kind)
            samples = sampler.sample(condition=conditions, num_images=num, seed=seed, progress=self.progress)
        else:
            low, conditions, captions, originals, source = self.upscaling_inputs(
                num, kind, sampler.low_resolution_shape[0]
            )
            samples = sampler.sample(condition=conditions, seed=seed, low_resolution_images=low, progress=self.progress)
            num, bicubic = len(samples), bicubic_upsample(low, samples.shape[1])
            upscaling = {
                "measures": f"the stage as an upscaler: {num} real images of the {source} made "
                f"{low.shape[1]}x{low.shape[2]} by area downsampling, upscaled, each told its own class or "
                "caption; bicubic upsampling of the same images beside it",
                "source": source,
                "low_resolution": int(low.shape[1]),
                "augmentation_level": sampler.augmentation_level,
                "mean_abs_error": mean_abs_error(samples, originals),
                "bicubic_mean_abs_error": mean_abs_error(bicubic, originals),
            }
        results = {
            "dataset": self.config.data.dataset,
            "num_samples": int(num),
            "steps": sampler.steps,
            "guidance": None if kind == "none" else sampler.guidance,  # an unconditional model has none
            "solver": sampler.solver,
            "seed": seed,
        }
        real, real_ids = self.training_images(num, seed)
        if self.class_conditional:
            results.update(self.classifier_scores(samples, conditions, real, real_ids))
            if upscaling is not None:
                bicubic_scores = self.classifier_scores(bicubic, conditions, real, real_ids)
                upscaling.update(
                    bicubic_accuracy=bicubic_scores["conditional_accuracy"],
                    bicubic_classifier_fd=bicubic_scores["classifier_fd"],
                )
        elif self.unconditional and self.reference is not None:
            results.update(self.feature_distances(samples, real))
            if upscaling is not None:
                upscaling["bicubic_classifier_fd"] = self.distance_to_reference(bicubic)
        if kind in ("vector", "sequence") and str(self.config.data.encoder).startswith("open_clip/"):
            results["clip_score"] = metrics.clip_score(samples, captions, self.config.data.encoder)
            real_images = self.train.images[self.train.example_rows(num)]  # the images the captions describe
            results["clip_score_real"] = metrics.clip_score(real_images, captions, self.config.data.encoder)
        if self.inception is not None:
            results.update(self.inception_scores(samples))
        if upscaling is not None:
            results["upscaling"] = upscaling
        elif nearest:
            results["memorization"] = self.memorization(samples, nearest, picture)
        results["seconds"] = round(time.perf_counter() - start, 1)
        return results

    def classifier_scores(self, samples, requested, real, real_ids) -> dict:
        """Conditional accuracy (samples, then real training images) and the feature distances."""
        accuracy = metrics.conditional_accuracy(predict_classes(self.classifier, samples), requested)
        names = self.train.class_names
        return {
            "conditional_accuracy": accuracy["accuracy"],
            "conditional_accuracy_real": float(np.mean(predict_classes(self.classifier, real) == real_ids)),
            "per_class_accuracy": {
                names[c - 1] if c <= len(names) else str(c): value for c, value in accuracy["per_class"].items()
            },
            **self.feature_distances(samples, real),
        }

    def feature_distances(self, samples, real) -> dict:
        """The Frechet distance of the judge's features between the samples and the reference images, and of
        as many real training images, the floor a perfect generator would reach."""
        return {
            "reference": self.reference_name,
            "classifier_fd": self.distance_to_reference(samples),
            "classifier_fd_real": self.distance_to_reference(real),
        }

    def distance_to_reference(self, images) -> float:
        if self._test_features is None:
            self._test_features = classifier_features(self.classifier, self.reference.in_memory().images)
        return metrics.frechet_distance(classifier_features(self.classifier, images), self._test_features)

    def inception_scores(self, samples) -> dict:
        if self._inception_test is None:
            reference = self.reference.in_memory().images
            self._inception_test = metrics.inception_features(reference, self.inception, progress=self.progress)
        features = metrics.inception_features(samples, self.inception, progress=self.progress)
        kid, kid_std = metrics.kernel_distance(features, self._inception_test)
        return {
            "fid": metrics.frechet_distance(features, self._inception_test),
            "kid": kid,
            "kid_std": kid_std,
            "inception_reference": self.reference_name,
        }

    def memorization(self, samples, count: int, picture: str | None) -> dict:
        """Nearest training images of `count` samples (spread over the batch), in pixels and in features."""
        picks = evenly_spaced(count, len(samples))
        chosen = samples[picks]
        train_images = self.train.images[self.train.row_indices()]
        train_pixels = to_unit_range(train_images)
        pixel_rows, pixel_distances = metrics.nearest_neighbours(chosen, train_pixels)
        result = {
            "samples": picks.tolist(),
            "pixel_nearest_rows": pixel_rows.tolist(),
            "pixel_distances": np.round(pixel_distances, 3).tolist(),
        }
        rows = [chosen, train_pixels[pixel_rows]]
        labels = ["samples", "nearest (pixels)"]
        if self.classifier is not None:
            if self._train_features is None:
                self._train_features = classifier_features(self.classifier, train_images)
            feature_rows, feature_distances = metrics.nearest_neighbours(
                classifier_features(self.classifier, chosen), self._train_features
            )
            result.update(
                feature_nearest_rows=feature_rows.tolist(), feature_distances=np.round(feature_distances, 3).tolist()
            )
            rows.append(train_pixels[feature_rows])
            labels.append("nearest (features)")
        if self.test is not None:  # how far new, real images are from the training set: the usual distance
            held_out = to_unit_range(self.test.images[: len(picks)])
            result["test_pixel_distances"] = np.round(metrics.nearest_neighbours(held_out, train_pixels)[1], 3).tolist()
        if picture:
            save_grid(
                np.concatenate(rows),
                picture,
                rows=len(rows),
                row_labels=labels,
                title="nearest training images (pixel distance in [-1, 1] units)",
            )
            result["picture"] = picture
        return result


def held_out_split(config) -> Dataset | None:
    """A run's held-out images: its data set's test split, an image folder's test/ (or val/) folder, or None
    (captioned data, a folder without such a split)."""
    name, model = config.data.dataset, config.model
    if name in CAPTIONED_DATASETS or (name == IMAGE_FOLDERS and split_folder(config.data.path, "test") is None):
        return None
    if name == IMAGE_FOLDERS:
        return load_image_folder(config.data.path, model.image_size, model.channels, split="test").in_memory()
    return load_dataset(name, "test", num_images=REFERENCE_IMAGES.get(name), image_size=model.image_size)


def judge(config, train: Dataset, progress: bool = False):
    """The classifier that judges a class-conditional or unconditional run (classifier.py): the package's for a
    built-in data set; for an image folder one trained on `train`, its training split, and cached under the
    folder's fingerprint: on its classes, or for a folder without classes on how its images are turned."""
    name, size = config.data.dataset, config.model.image_size
    if name != IMAGE_FOLDERS:
        return load_classifier(name, size, progress=progress)
    cache_name = f"images-{read_image_folder(config.data.path).fingerprint()}-c{config.model.channels}"
    if not train.class_names:
        return load_classifier(f"{cache_name}-rotations", size, progress=progress, data=rotated_copies(train))
    return load_classifier(cache_name, size, progress=progress, data=train)


def bicubic_upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Bicubic upsampling to size x size, clipped to [-1, 1] (the bicubic kernel overshoots at sharp edges)."""
    return np.clip(keras.ops.convert_to_numpy(keras.ops.image.resize(images, (size, size), "bicubic")), -1, 1)


def mean_abs_error(images: np.ndarray, originals: np.ndarray) -> float:
    """Mean absolute pixel difference on the 0..255 scale."""
    return float(np.abs(to_uint8(images).astype("float64") - to_uint8(originals).astype("float64")).mean())


def summary_lines(results: dict) -> list[str]:
    """The results as a few readable lines, each with its reference value where there is one."""
    upscaling = results.get("upscaling")
    what = "samples"
    if upscaling:
        size = upscaling["low_resolution"]
        what = f"real images of the {upscaling['source']}, made {size}x{size} and upscaled"
    guidance = "" if results.get("guidance") is None else f", guidance {results['guidance']:g}"
    lines = [f"{results['num_samples']} {what}, {results['steps']} {results['solver']} steps{guidance}"]
    if "conditional_accuracy" in results:
        lines.append(
            f"conditional accuracy  {results['conditional_accuracy']:.3f}"
            f"   (real training images: {results['conditional_accuracy_real']:.3f})"
        )
    if "classifier_fd" in results:
        lines.append(
            f"classifier FD         {results['classifier_fd']:.3f}"
            f"   (real training images vs the reference, the floor: {results['classifier_fd_real']:.3f})"
        )
        lines.append(f"compared with         {results['reference']}")
    if upscaling:
        line = f"pixel error vs originals {upscaling['mean_abs_error']:.1f}/255   (bicubic: "
        line += f"{upscaling['bicubic_mean_abs_error']:.1f}"
        if "bicubic_accuracy" in upscaling:
            line += f"; accuracy {upscaling['bicubic_accuracy']:.3f}"
        if "bicubic_classifier_fd" in upscaling:
            line += f"; classifier FD {upscaling['bicubic_classifier_fd']:.3f}"
        lines.append(line + ")")
    if "clip_score" in results:
        lines.append(
            f"CLIP score            {results['clip_score']:.2f}   (real images: {results['clip_score_real']:.2f})"
        )
    if "fid" in results:
        lines.append(
            f"FID                   {results['fid']:.2f}   KID {results['kid']:.4f} +- {results['kid_std']:.4f}"
            f"   ({results['inception_reference']})"
        )
    memorization = results.get("memorization")
    if memorization:
        line = f"nearest training image, pixels: median {np.median(memorization['pixel_distances']):.2f}"
        if "test_pixel_distances" in memorization:
            line += f"   (held-out test images: {np.median(memorization['test_pixel_distances']):.2f})"
        lines.append(line)
        if "picture" in memorization:
            lines.append(f"side by side: {memorization['picture']}")
    return lines
