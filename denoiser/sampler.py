"""Turn noise into images with a trained denoiser.

At each noise level s the network predicts the clean image x0_hat; the sampler then moves to the
next, lower level s_next along the straight line between x0_hat and the current image:

    x_next = ((s - s_next) * x0_hat + s_next * x_t) / s

which is exactly where `x_t` would be at `s_next` if x0_hat were right and the noise unchanged (the
deterministic DDIM update for straight-line noising). At s_next = 0 the result is x0_hat itself.

Classifier-free guidance mixes the predictions with and without the condition,
`x0_hat = g * cond + (1 - g) * uncond`; g > 1 exaggerates what the condition changes. Both
predictions come from one network call on a stacked batch. Dynamic thresholding then rescales any
image whose pixels overshoot [-1, 1] (Imagen's trick), which keeps strong guidance from saturating.

The update above is the "ddim" solver; `solver="dpmpp_2m"` or `"deis"` reaches the same quality in fewer
steps (see solvers.py). The network call is compiled; the solver's update is plain NumPy. The grid
of noise levels is the solver's preferred `spacing` unless another is asked for (schedule.py).

A super-resolution stage (model.py) also gets the low-resolution image to upscale at every step,
noised once at the sampler's `augmentation_level` and told that level; with guidance the conditional
and unconditional halves share it. cascade.py chains such samplers after a base one.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from denoiser.config import ModelConfig, SampleConfig
from denoiser.model import CLASS_EMBEDDING, class_embedding_network
from denoiser.schedule import SPACINGS, add_noise
from denoiser.solvers import make_solver, solver_type
from denoiser.utils.progress import Progress


def dynamic_threshold(x0_hat, percentile: float | None):
    """Per image: take the `percentile` of |pixel| as limit l (at least 1), clip to [-l, l], divide by l.

    The result always lies in [-1, 1]. With `percentile=None` it is a plain clip to [-1, 1].
    """
    if percentile is None:
        return ops.clip(x0_hat, -1.0, 1.0)
    flat = ops.reshape(ops.abs(x0_hat), (ops.shape(x0_hat)[0], -1))
    limit = ops.maximum(ops.quantile(flat, percentile / 100.0, axis=1), 1.0)
    limit = ops.reshape(limit, (-1, 1, 1, 1))
    return ops.minimum(ops.maximum(x0_hat, -limit), limit) / limit


def compile_function(fn: Callable) -> Callable:
    """Compile `fn` into one graph call where the backend allows it (TensorFlow); otherwise run eagerly."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return fn


class Sampler:
    """DDIM-like sampler with classifier-free guidance, dynamic thresholding and a choice of solver.

    >>> sampler = Sampler(model)                                  # the model's own sampling settings
    >>> images = sampler.sample(condition=np.array([1, 2, 3]), seed=0)   # (3, H, W, C) in [-1, 1]
    >>> fast = Sampler(model, steps=10, solver="dpmpp_2m")        # second order, 10 calls
    >>> fewer = Sampler(model, steps=5, solver="deis")            # third order, 5 calls
    >>> sampler = Sampler(model, config.sample)                   # a run's sample section

    The settings are a `SampleConfig` (config.py holds every default and its meaning: steps, guidance, solver,
    max_level, threshold_percentile, augmentation_level): `settings`, else the ones the model carries from
    its run (`model.run_info["sample"]`), else the defaults; keyword `overrides` replace single fields and
    are checked like a config file's (threshold_percentile=None is a plain clip to [-1, 1]).
    spacing: the grid of noise levels, "power" or "log_snr" (schedule.py); None = the solver's own.
    model_config: what the network takes, for a model that does not carry its `ModelConfig`
        (a checkpoint saved before models carried one: then it is read from the model's inputs).
    """

    def __init__(
        self,
        model: keras.Model,
        settings: SampleConfig | None = None,
        *,
        spacing: str | None = None,
        batch_size: int = 128,
        model_config: ModelConfig | None = None,
        **overrides,
    ):
        self.model = model
        self.model_config = model_config or model_config_of(model)
        self.run_info = dict(getattr(model, "run_info", None) or {})
        self.settings = sample_settings(settings or self.run_info.get("sample"), overrides)
        self.steps = self.settings.steps
        self.guidance = float(self.settings.guidance)
        self.guidance_interval = tuple(float(level) for level in self.settings.guidance_interval)
        self.threshold_percentile = self.settings.threshold_percentile
        self.solver = self.settings.solver
        self.spacing = spacing or solver_type(self.solver).spacing
        if self.spacing not in SPACINGS:
            raise ValueError(f"Unknown spacing {self.spacing!r}; choose one of {', '.join(SPACINGS)}.")
        self.max_level = float(self.settings.max_level)
        self.noise_levels = self.levels_from(self.max_level)
        self.batch_size = batch_size
        self.augmentation_level = float(self.settings.augmentation_level)
        self._guided_prediction = compile_function(self._guided_prediction_fn)
        self._plain_prediction = compile_function(self._plain_prediction_fn)
        self._embedding_network = None  # a class model's network fed class embeddings, built when first needed

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names of the classes the model was trained on (from its run), or () where unknown."""
        return tuple(self.run_info.get("class_names") or ())

    @property
    def encoder(self) -> str | None:
        """The text encoder of the captions the model was trained on (its run's data.encoder), or None."""
        return self.run_info.get("encoder")

    # ----------------------------------------------------------------------------- public API
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.model_config.image_shape

    @property
    def low_resolution_shape(self) -> tuple[int, int, int] | None:
        """The shape of one low-res input image of a super-resolution stage; None for a base model."""
        size = self.model_config.low_resolution
        return (size, size, self.model_config.channels) if size else None

    def levels_from(self, max_level: float) -> np.ndarray:
        """The `steps + 1` noise levels this sampler walks from `max_level` down to 0."""
        return SPACINGS[self.spacing](self.steps, max_level=max_level)

    def class_embeddings(self, ids) -> np.ndarray:
        """A class model's learned embeddings of class ids (N,), as (N, 1, E) floats: the condition as the network
        sees it after its lookup. Given to `sample` in place of the ids they give the same images; a point
        between two of them steers between two classes (generation.interpolate)."""
        if self.model_config.condition != "class":
            raise ValueError("Only a class-conditional model has class embeddings.")
        table = ops.convert_to_numpy(self.model.get_layer(CLASS_EMBEDDING).embeddings)
        return table[np.asarray(ids, "int32").reshape(-1)][:, None, :].astype("float32")

    def empty_condition(self, condition: np.ndarray) -> np.ndarray:
        """The "no condition" input of the same shape: class id 0 (or its embedding), or the zero vector."""
        if self._takes_embeddings(condition):
            return np.repeat(self.class_embeddings([0]), len(condition), axis=0)
        return np.zeros_like(condition)

    def noise(self, num_images: int, seed: int | None = 0) -> np.ndarray:
        """The starting noise for `num_images` images; the same seed always gives the same noise."""
        return np.random.default_rng(seed).standard_normal((num_images, *self.image_shape)).astype("float32")

    def sample(
        self,
        condition=None,
        num_images: int | None = None,
        seed: int | None = 0,
        noise: np.ndarray | None = None,
        callback: Callable[[int, float, np.ndarray], None] | None = None,
        progress: bool = False,
        low_resolution_images: np.ndarray | None = None,
    ) -> np.ndarray:
        """Generate images as a float32 array (N, H, W, C) in [-1, 1].

        condition: one entry per image: class ids (N,) (or their embeddings (N, 1, E), `class_embeddings`),
            vectors (N, D) or token sequences (N, T, D); None for an unconditional model.
        seed / noise: the starting noise; give `noise` (N, H, W, C) to reuse one exactly.
        callback: called after every step as `callback(step, noise_level, x0_hat)`, with the
            guided, thresholded prediction of the clean images (for animations of the process).
        low_resolution_images: for a super-resolution stage, the images to upscale (N, h, w, C) in [-1, 1].
        """
        low_resolution = self.prepare_low_resolution(low_resolution_images, seed)
        if low_resolution is not None and num_images is None and noise is None:
            num_images = len(low_resolution)
        condition = self.prepare_condition(condition, num_images, noise)
        count = len(condition) if condition is not None else (len(noise) if noise is not None else num_images)
        if count is None:
            raise ValueError("Give `condition`, `num_images` or `noise` so the sampler knows how many images to make.")
        x = self.noise(count, seed) if noise is None else np.asarray(noise, dtype="float32")
        if x.shape != (count, *self.image_shape):
            raise ValueError(f"noise has shape {x.shape}; expected {(count, *self.image_shape)}.")
        if low_resolution is not None and len(low_resolution) != count:
            raise ValueError(f"{len(low_resolution)} low-resolution images for {count} images; give one per image.")
        return self.solve(x, self.noise_levels, condition, callback, progress, low_resolution)

    def solve(
        self, x, levels, condition=None, callback=None, progress: bool = False, low_resolution=None
    ) -> np.ndarray:
        """Take images `x` at noise level `levels[0]` down the grid `levels` (ending at 0) with the solver.

        `condition` and `low_resolution` are prepared already (see `prepare_condition` and
        `prepare_low_resolution`); returns the images clipped to [-1, 1].
        """
        solver = make_solver(self.solver, levels)
        steps = len(levels) - 1
        progbar = Progress("sampling", steps) if progress else None
        for step in range(steps):
            x0_hat = self.denoise(x, levels[step], condition, low_resolution)
            x = solver.step(step, x, x0_hat)
            if callback is not None:
                callback(step, float(levels[step]), x0_hat)
            if progbar is not None:
                progbar.update(step + 1)
        return np.clip(x, -1.0, 1.0)

    def denoise(self, x, level, condition=None, low_resolution=None) -> np.ndarray:
        """The guided, thresholded prediction x0_hat for images `x` at one noise level, as NumPy.

        One compiled network call per batch of `batch_size` images (with guidance, the conditional
        and unconditional inputs are stacked into that one call).
        """
        predictions = []
        for start in range(0, len(x), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            x0_hat = self._prediction(
                x[chunk],
                level,
                None if condition is None else condition[chunk],
                None if low_resolution is None else low_resolution[chunk],
            )
            predictions.append(ops.convert_to_numpy(x0_hat))
        return np.concatenate(predictions)

    def prepare_low_resolution(self, images, seed: int | None = 0) -> np.ndarray | None:
        """A super-resolution stage's low-res inputs, checked and noised at `augmentation_level`; None for a base.

        The augmentation noise is drawn from (seed, 1), apart from the starting noise, so a seed fixes both.
        """
        expected = self.low_resolution_shape
        if expected is None:
            if images is not None:
                raise ValueError("This is a base model, not a super-resolution stage; leave out the low-res images.")
            return None
        if images is None:
            raise ValueError(f"This super-resolution stage upscales images of {expected}; give low_resolution_images.")
        images = np.asarray(images, dtype="float32")
        if images.shape[1:] != expected:
            raise ValueError(
                f"This super-resolution stage upscales images of {expected}, got low-res images of {images.shape[1:]}."
            )
        rng = np.random.default_rng(None if seed is None else [seed, 1])
        noise = rng.standard_normal(images.shape).astype("float32")
        return add_noise(images, noise, self.augmentation_level).astype("float32")

    def prepare_condition(self, condition, num_images=None, noise=None):
        """Check and convert a condition to the model's input: (N, 1) int32 ids or float32 arrays (vectors, tokens, or
        a class model's class embeddings).

        With no condition, a conditional model gets the empty condition for `num_images` (or
        `len(noise)`) images; an unconditional model gets None.
        """
        kind = self.model_config.condition
        if kind == "none":
            if condition is not None:
                raise ValueError("This model is unconditional; call sample(num_images=N) without a condition.")
            return None
        if condition is None:
            count = num_images if num_images is not None else (len(noise) if noise is not None else None)
            if count is None:
                raise ValueError(
                    "Give `condition` (or `num_images` for unconditioned samples from the empty condition)."
                )
            condition = np.zeros((count, *self.model_config.condition_shape))
        if kind == "class" and np.ndim(condition) == 3:  # class embeddings, e.g. between two classes
            return self.prepare_class_embeddings(condition)
        if kind == "class":
            condition = np.asarray(condition).astype("int32").reshape(-1, 1)
            top = self.model_config.num_classes
            if condition.min() < 0 or condition.max() > top:
                raise ValueError(
                    f"Class ids must lie in [0, {top}] (0 = no condition); got {condition.ravel().tolist()}."
                )
            return condition
        condition = np.asarray(condition, dtype="float32")
        expected = 2 if kind == "vector" else 3
        if condition.ndim != expected:
            raise ValueError(
                f"A {kind} condition needs {expected} dimensions (one row per image); got shape {condition.shape}."
            )
        return condition

    def prepare_class_embeddings(self, embeddings) -> np.ndarray:
        """Check class embeddings (N, 1, E) against the model's table, and build the network that takes them."""
        embeddings = np.asarray(embeddings, dtype="float32")
        expected = self.class_embeddings([0]).shape[1:]
        if embeddings.shape[1:] != expected:
            raise ValueError(
                f"Class embeddings of this model have shape (N, {expected[0]}, {expected[1]}); got {embeddings.shape}."
            )
        if self._embedding_network is None:
            self._embedding_network = class_embedding_network(self.model)
        return embeddings

    # ----------------------------------------------------------------------------- internals
    def _takes_embeddings(self, condition) -> bool:
        """Whether `condition` is class embeddings (rank 3 for a class model), for the network that takes them."""
        return self.model_config.condition == "class" and condition is not None and len(condition.shape) == 3

    def guides_at(self, level: float) -> bool:
        """Whether a step at this noise level is guided: a guidance other than 1, inside `guidance_interval`."""
        low, high = self.guidance_interval
        return self.guidance != 1.0 and low <= float(level) <= high

    def _prediction(self, x, level, condition, low_resolution=None):
        guided = condition is not None and self.guides_at(level)
        level = ops.convert_to_tensor(level, "float32")
        if guided:
            guidance = ops.convert_to_tensor(self.guidance, "float32")
            empty = self.empty_condition(condition)
            return self._guided_prediction(x, level, condition, empty, guidance, low_resolution)
        return self._plain_prediction(x, level, condition, low_resolution)

    def _predict(self, x, level, condition, low_resolution=None):
        levels = ops.ones((ops.shape(x)[0], 1), "float32") * level
        inputs = [x, levels] if condition is None else [x, levels, condition]
        if low_resolution is not None:
            inputs += [low_resolution, ops.ones((ops.shape(x)[0], 1), "float32") * self.augmentation_level]
        network = self._embedding_network if self._takes_embeddings(condition) else self.model
        return ops.cast(network(inputs, training=False), "float32")

    def _plain_prediction_fn(self, x, level, condition, low_resolution=None):
        return dynamic_threshold(self._predict(x, level, condition, low_resolution), self.threshold_percentile)

    def _guided_prediction_fn(self, x, level, condition, empty, guidance, low_resolution=None):
        if low_resolution is not None:  # the conditional and unconditional halves upscale the same image
            low_resolution = ops.concatenate([low_resolution, low_resolution])
        both = self._predict(ops.concatenate([x, x]), level, ops.concatenate([condition, empty]), low_resolution)
        conditional, unconditional = ops.split(both, 2)
        x0_hat = guidance * conditional + (1.0 - guidance) * unconditional
        return dynamic_threshold(x0_hat, self.threshold_percentile)


def sample_settings(settings: SampleConfig | dict | None, overrides: dict) -> SampleConfig:
    """A `SampleConfig` from a section (or its dict, as a model carries it) with single fields replaced."""
    values = settings.to_dict() if isinstance(settings, SampleConfig) else dict(settings or {})
    values.update(overrides)  # an unknown name is refused by from_dict, with a did-you-mean
    return SampleConfig.from_dict(values)


def model_config_of(model: keras.Model) -> ModelConfig:
    """The `ModelConfig` a model carries (see model.DenoiserUNet), or one read back from its inputs.

    The reading from inputs is for checkpoints saved before models carried their config (and for stand-in
    networks in tests): it recovers what the sampler needs, image size, channels, condition kind and size and
    the low resolution of a super-resolution stage, and leaves the network's widths and levels at one level.
    """
    if isinstance(getattr(model, "config", None), ModelConfig):
        return model.config
    names = [tensor.name for tensor in model.inputs]
    image = model.inputs[0]
    facts = {"image_size": image.shape[1], "channels": image.shape[3], "condition": "none"}
    if "low_resolution_images" in names:
        facts["low_resolution"] = model.inputs[names.index("low_resolution_images")].shape[1]
    if "condition" in names:
        condition = model.inputs[names.index("condition")]
        if "int" in str(condition.dtype):
            facts.update(condition="class", num_classes=model.get_layer(CLASS_EMBEDDING).input_dim - 1)
        elif len(condition.shape) == 2:
            facts.update(condition="vector", condition_dim=condition.shape[1])
        else:
            facts.update(condition="sequence", condition_tokens=condition.shape[1], condition_dim=condition.shape[2])
    one_level = {"width_multipliers": [1], "self_attention": [False], "cross_attention": [False]}
    return ModelConfig(**facts, **one_level)
