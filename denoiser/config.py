"""The network's configuration: one YAML-friendly dataclass, validated on creation.

Every field is a plain int, float, str, bool or list of those, so a config round-trips through
YAML, JSON and a `.keras` file unchanged. A wrong value raises `ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

CONDITION_KINDS = ("class", "vector", "sequence", "none")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and how to fix it."""


@dataclass
class ModelConfig:
    """Shape of the U-Net.

    The network has one *level* per entry of `width_multipliers`. Level i works at resolution
    `image_size / 2**i` with `base_width * width_multipliers[i]` channels; the last level is the
    bottleneck. `self_attention[i]` and `cross_attention[i]` switch attention on at level i.

    The condition is one of:
      - "class":    an integer id in [0, num_classes]; 0 means "no condition" (for guidance).
      - "vector":   a float vector of width `condition_dim` (e.g. a CLIP embedding); zeros mean
                    "no condition".
      - "sequence": `condition_tokens` vectors of width `condition_dim` (e.g. CLIP token states).
      - "none":     an unconditional model.
    """

    image_size: int = 28
    channels: int = 1
    base_width: int = 64
    width_multipliers: list[int] = field(default_factory=lambda: [1, 2, 3])
    blocks_per_level: int = 2
    self_attention: list[bool] = field(default_factory=lambda: [False, True, False])
    cross_attention: list[bool] = field(default_factory=lambda: [False, True, False])
    attention_heads: int = 4
    condition: str = "class"
    num_classes: int = 10
    condition_dim: int = 512
    condition_tokens: int = 77
    noise_embedding_dim: int = 32
    noise_embedding_max_frequency: float = 1000.0
    norm_groups: int = 8
    dropout: float = 0.0

    def __post_init__(self):
        # Accept tuples and YAML lists alike; store lists so configs compare and serialize simply.
        self.width_multipliers = list(self.width_multipliers)
        self.self_attention = [bool(v) for v in self.self_attention]
        self.cross_attention = [bool(v) for v in self.cross_attention]
        self.validate()

    # ----------------------------------------------------------------------------- properties
    @property
    def num_levels(self) -> int:
        return len(self.width_multipliers)

    @property
    def widths(self) -> list[int]:
        """Channel count of each level."""
        return [self.base_width * m for m in self.width_multipliers]

    @property
    def conditional(self) -> bool:
        return self.condition != "none"

    # ----------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise `ConfigError` for the first wrong field, with a message that says how to fix it."""
        _positive_int(self, "image_size")
        if self.channels not in (1, 3):
            raise ConfigError(f"ModelConfig.channels must be 1 (grey) or 3 (RGB), got {self.channels!r}.")
        _positive_int(self, "base_width")
        _positive_int(self, "blocks_per_level")
        _positive_int(self, "attention_heads")
        _positive_int(self, "norm_groups")
        _positive_int(self, "noise_embedding_dim")
        if self.noise_embedding_dim % 2:
            raise ConfigError(
                f"ModelConfig.noise_embedding_dim must be even (sine and cosine halves), got {self.noise_embedding_dim}."
            )
        if not self.width_multipliers:
            raise ConfigError("ModelConfig.width_multipliers is empty; give at least one level, e.g. [1, 2, 3].")
        for m in self.width_multipliers:
            if not isinstance(m, int) or isinstance(m, bool) or m <= 0:
                raise ConfigError(
                    f"ModelConfig.width_multipliers must hold positive integers, got {self.width_multipliers!r}."
                )
        for name in ("self_attention", "cross_attention"):
            switches = getattr(self, name)
            if len(switches) != self.num_levels:
                raise ConfigError(
                    f"ModelConfig.{name} has {len(switches)} switches but width_multipliers has "
                    f"{self.num_levels} levels; give one True/False per level."
                )
        for width in self.widths:
            if width % self.norm_groups:
                raise ConfigError(
                    f"ModelConfig.norm_groups={self.norm_groups} must divide every level width {self.widths}; "
                    "choose a base_width that is a multiple of norm_groups."
                )
        attention_widths = [w for w, s, c in zip(self.widths, self.self_attention, self.cross_attention) if s or c]
        for width in attention_widths:
            if width % self.attention_heads:
                raise ConfigError(
                    f"ModelConfig.attention_heads={self.attention_heads} must divide the width {width} of every "
                    "level with attention."
                )
        if self.condition not in CONDITION_KINDS:
            raise ConfigError(f"ModelConfig.condition must be one of {CONDITION_KINDS}, got {self.condition!r}.")
        if self.condition == "class":
            _positive_int(self, "num_classes")
        if self.condition in ("vector", "sequence"):
            _positive_int(self, "condition_dim")
        if self.condition == "sequence":
            _positive_int(self, "condition_tokens")
        if any(self.cross_attention) and not self.conditional:
            raise ConfigError(
                "ModelConfig.cross_attention is switched on but condition='none'; cross-attention needs a condition."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}.")
        if self.noise_embedding_max_frequency <= 1.0:
            raise ConfigError("ModelConfig.noise_embedding_max_frequency must be greater than 1.")
        self._check_image_size()

    def _check_image_size(self) -> None:
        halvings = self.num_levels - 1
        if self.image_size % (2**halvings):
            sizes = [self.image_size / 2**i for i in range(halvings + 1)]
            chain = " -> ".join(f"{s:g}" for s in sizes)
            raise ConfigError(
                f"ModelConfig.image_size={self.image_size} cannot be halved {halvings} times ({chain}); "
                f"use an image size divisible by {2**halvings} or fewer width_multipliers levels."
            )

    # ----------------------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Build from a dict (e.g. parsed YAML); unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown ModelConfig field(s) {unknown}; known fields are {sorted(known)}.")
        return cls(**values)


def _positive_int(config: ModelConfig, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"ModelConfig.{name} must be a positive integer, got {value!r}.")


# ================================================================================= run configuration
@dataclass
class DataConfig:
    """Where the training images and their conditions come from, and how they are noised."""

    dataset: str = "fashion_mnist"  # fashion_mnist | mnist | cifar10 | cifar100 | shapes | captions | arrays
    num_images: int | None = None  # use only the first N training images (None: all)
    label_dropout: float = 0.15  # share of conditions replaced by "no condition" (for guidance)
    noise_distribution: str = "folded_normal"  # see schedule.training_noise_levels
    shuffle_buffer: int = 60000
    # Text-conditioned data (see captions.py and text.py):
    path: str | None = None  # captions: a captioned folder or CSV/parquet table; arrays: the images .npy
    encoder: str | None = None  # the text encoder of the captions and prompts, e.g. open_clip/ViT-B-32/none
    embeddings: str | None = None  # a .npy of caption embeddings (default for captions: the cache beside them)

    def validate(self) -> None:
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(f"data.label_dropout must be in [0, 1), got {self.label_dropout!r}.")
        from denoiser.schedule import TRAINING_DISTRIBUTIONS

        if self.noise_distribution not in TRAINING_DISTRIBUTIONS:
            raise ConfigError(
                f"data.noise_distribution must be one of {TRAINING_DISTRIBUTIONS}, got {self.noise_distribution!r}."
            )
        if self.num_images is not None and (not isinstance(self.num_images, int) or self.num_images <= 0):
            raise ConfigError(f"data.num_images must be a positive integer or null, got {self.num_images!r}.")
        self._validate_text_data()

    def _validate_text_data(self) -> None:
        """The encoder's name is checked here; that a captioned data set has its files, when it is loaded."""
        from denoiser.data.encoders import EncoderError, check_encoder_spec

        if self.encoder is not None:
            try:
                check_encoder_spec(self.encoder)
            except EncoderError as error:
                raise ConfigError(f"data.encoder: {error}") from None


@dataclass
class TrainConfig:
    """How long and how fast to train."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-4
    warmup_steps: int = 500
    steps_per_epoch: int | None = None  # None: one pass over the data per epoch
    ema_decay: float = 0.999  # weight averaging for samples and checkpoints; 0 switches it off
    keep_checkpoints: int = 0  # keep only the newest N epoch checkpoints; 0 keeps all
    mixed_precision: bool = False  # bfloat16 on CPU/TPU, float16 on GPU
    distribute: str = "none"  # none | mirrored | tpu | multi_worker
    seed: int = 0
    evaluate_every: int = 0  # score samples every N epochs into RUN/evaluation/ (evaluation.py); 0 = off
    evaluate_num: int = 200  # samples per evaluation

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "evaluate_num"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"train.{name} must be a positive integer, got {value!r}.")
        if self.steps_per_epoch is not None and (
            not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch <= 0
        ):
            raise ConfigError(
                f"train.steps_per_epoch must be a positive integer or null, got {self.steps_per_epoch!r}."
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"train.learning_rate must be positive, got {self.learning_rate!r}.")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps must be a non-negative integer, got {self.warmup_steps!r}.")
        if not isinstance(self.evaluate_every, int) or self.evaluate_every < 0:
            raise ConfigError(
                f"train.evaluate_every must be a non-negative integer (0 = off), got {self.evaluate_every!r}."
            )
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 0:
            raise ConfigError(f"train.keep_checkpoints must be a non-negative integer, got {self.keep_checkpoints!r}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay!r}.")
        if self.distribute not in ("none", "mirrored", "tpu", "multi_worker"):
            raise ConfigError(
                f"train.distribute must be one of none, mirrored, tpu, multi_worker; got {self.distribute!r}."
            )


@dataclass
class SampleConfig:
    """How the per-epoch sample grid (and `denoiser sample` by default) draws images."""

    steps: int = 20
    guidance: float = 2.0
    threshold_percentile: float = 99.5
    columns: int = 8  # images per class (or prompt) in the grid
    seed: int = 0

    def validate(self) -> None:
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ConfigError(f"sample.steps must be a positive integer, got {self.steps!r}.")
        if not isinstance(self.columns, int) or self.columns <= 0:
            raise ConfigError(f"sample.columns must be a positive integer, got {self.columns!r}.")
        if not 0.0 < self.threshold_percentile <= 100.0:
            raise ConfigError(f"sample.threshold_percentile must be in (0, 100], got {self.threshold_percentile!r}.")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "sample": SampleConfig}


@dataclass
class RunConfig:
    """Everything a training run needs; saved as `config.yaml` in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def validate(self) -> None:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        self.sample.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        unknown = sorted(set(values) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"Unknown config section(s) {unknown}; sections are {sorted(SECTIONS)}.")
        sections = {name: _section_from_dict(name, values.get(name) or {}) for name in SECTIONS}
        config = cls(**sections)
        config.validate()
        return config


def _section_from_dict(name: str, values: dict):
    section = SECTIONS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"Config section {name!r} must be a mapping of keys to values, got {values!r}.")
    known = {f.name for f in dataclasses.fields(section)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown key(s) {[f'{name}.{k}' for k in unknown]}; {name} has {sorted(known)}.")
    try:
        return section(**_floats_from_text(name, section, values))
    except ConfigError as error:  # say which section of the run config, as the user wrote it
        raise ConfigError(f"In the {name!r} section of the config: {error}") from None


def _floats_from_text(name: str, section, values: dict) -> dict:
    """Read float fields given as text ("1e-3": YAML 1.1 reads exponents without a dot as strings)."""
    values = dict(values)
    for field in dataclasses.fields(section):
        value = values.get(field.name)
        if isinstance(value, str) and str(field.type).startswith("float"):
            try:
                values[field.name] = float(value)
            except ValueError:
                raise ConfigError(f"{name}.{field.name} must be a number, got {value!r}.") from None
    return values


def merge(base: dict, overrides: dict) -> dict:
    """Recursively update a nested config dict with another (the override wins)."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict:
    """`"train.epochs=3"` -> `{"train": {"epochs": 3}}`; the value is parsed as YAML (numbers, lists, null)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"Override {text!r} must look like section.key=value, e.g. train.epochs=3.")
    dotted, raw = text.split("=", 1)
    keys = dotted.strip().split(".")
    if len(keys) != 2 or keys[0] not in SECTIONS or not keys[1]:
        raise ConfigError(
            f"Override {text!r}: the key must be section.key with a section in {sorted(SECTIONS)}, e.g. model.base_width=32."
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"Override {text!r}: cannot parse the value: {error}") from error
    return {keys[0]: {keys[1]: value}}


def load_yaml(path) -> dict:
    """Read a YAML config file into a dict, with a clear error for a missing or malformed file."""
    import yaml

    try:
        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections (data, model, train, sample).")
    return values


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable list of keys whose values differ between two nested config dicts."""
    differences = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return differences
