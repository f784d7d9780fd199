"""The run's configuration: four YAML-friendly dataclasses, one per section of a config file.

`DataConfig` (data.*), `ModelConfig` (model.*), `TrainConfig` (train.*) and `SampleConfig` (sample.*) hold every
setting and its default, written once: the rest of the library takes these sections, never a loose default of its
own. A short comment beside each field says what it does. Every field is a plain int, float, str, bool or list of
those, so a config round-trips through YAML, JSON and a `.keras` file unchanged.

A field's type annotation says which values it takes (`PositiveInt`, `Fraction`, a `Literal` of choices, ...);
config_rules.py holds those rules and the one function that checks them, with a one-line `ConfigError` naming
the field. Rules that tie several fields together (the image size must halve once per level, ...) follow the
sections, then `RunConfig` (the whole run) and the helpers that read YAML files and `--set section.key=value`.
"""

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from denoiser.config_rules import (  # ConfigError lives beside the rules, which raise it; it is a config concept too
    AboveOne,
    ConfigError,
    EncoderName,
    EvenPositiveInt,
    Fraction,
    LevelInterval,
    Levels,
    NonNegativeInt,
    OpenFraction,
    Percentile,
    PositiveFloat,
    PositiveInt,
    floats_from_text,
    only_if,
    unused_fields,
    validate_section,
)
from denoiser.utils.errors import shown

# The choices of a setting, declared once; the modules that implement them import these names.
DatasetName = Literal[  # data/sources.py
    "fashion_mnist", "mnist", "cifar10", "cifar100", "shapes", "images", "captions", "arrays"
]
Condition = Literal["class", "vector", "sequence", "none"]  # see ModelConfig
NoiseDistribution = Literal["folded_normal", "logit_normal", "uniform"]  # see schedule.training_noise_levels
Distribute = Literal["none", "mirrored", "tpu", "multi_worker"]  # see training.make_strategy
Solver = Literal["ddim", "dpmpp_2m", "deis"]  # see solvers.SOLVERS
LossWeighting = Literal["none", "edm", "min_snr"]  # see schedule.loss_weights
LossNorm = Literal["l1", "l2"]  # see objective.loss and schedule.loss_weights
Preconditioning = Literal["none", "edm"]  # see schedule.preconditioning_scalings
LearningRateDecay = Literal["none", "cosine", "linear"]  # see optimizer.WarmupSchedule


# ================================================================================= the sections
class Section:
    """What every section of the run config shares: checked on creation, built from a dict with a check for
    unknown keys. `SECTION` is its name in the YAML file and in `--set section.key=value`; `RETIRED` names keys
    that older versions wrote and that are now ignored, so old run directories still load; `ADDED` gives each key
    that older versions did not write the value that reproduces how they behaved (`from_saved`)."""

    SECTION: ClassVar[str]
    RETIRED: ClassVar[tuple[str, ...]] = ()
    # Keys newer than the first run directories, with the value that reproduces what a run made before them did.
    ADDED: ClassVar[dict[str, Any]] = {}

    def __post_init__(self):
        self.validate()
        for item in dataclasses.fields(self):  # store lists, as YAML gives them, so configs compare equal
            if isinstance(getattr(self, item.name), tuple):
                setattr(self, item.name, list(getattr(self, item.name)))

    def validate(self) -> None:
        """Raise `ConfigError` for the first wrong field, with a message that says how to fix it."""
        validate_section(self, CROSS_FIELD_CHECKS.get(type(self), ()))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Build from a dict (e.g. parsed YAML); unknown keys are an error, not silently dropped (retired keys are)."""
        if not isinstance(values, dict):
            raise ConfigError(
                f"Config section {cls.SECTION!r} must be a mapping of keys to values, got {shown(values)}."
            )
        values = {key: value for key, value in values.items() if key not in cls.RETIRED}
        known = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            guess = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"did you mean {cls.SECTION}.{guess[0]}? " if guess else ""
            keys = [f"{cls.SECTION}.{key}" for key in unknown]
            raise ConfigError(f"Unknown key(s) {keys}; {hint}{cls.SECTION} has {sorted(known)}.")
        return cls(**floats_from_text(cls, values))

    @classmethod
    def from_saved(cls, values: dict):
        """`from_dict` for a section that denoiser wrote itself (config.yaml, a checkpoint): it holds every key of
        its version, so a missing key is one added since, and takes the value that reproduces that version."""
        return cls.from_dict({**cls.ADDED, **values} if isinstance(values, dict) else values)


@dataclass
class DataConfig(Section):
    """Where the training images and their conditions come from, and how they are noised."""

    SECTION: ClassVar[str] = "data"
    RETIRED: ClassVar[tuple[str, ...]] = ("shuffle_buffer",)  # unused once every pass became a full shuffle
    ADDED: ClassVar[dict[str, Any]] = {
        "loss_weighting": "none",
        "loss_norm": "l1",
        "noise_location": 0.0,
        "noise_scale": 1.0,
    }

    dataset: DatasetName = "fashion_mnist"  # which images (data/sources.py loads them)
    num_images: PositiveInt | None = None  # use only the first N training images (None: all)
    label_dropout: Fraction = 0.15  # share of conditions replaced by "no condition" (for guidance)
    noise_distribution: NoiseDistribution = "folded_normal"  # how training draws noise levels (schedule.py)
    # logit_normal levels are s = sigmoid(noise_location + noise_scale * z), z ~ N(0, 1): their median is
    # sigmoid(noise_location); below 0 trains more on nearly clean images, above 0 on noisy ones
    noise_location: float = field(default=0.0, metadata=only_if("noise_distribution", "logit_normal"))
    # the spread of logit_normal levels s = sigmoid(noise_location + noise_scale * z): above 1, more at both ends
    noise_scale: PositiveFloat = field(default=1.0, metadata=only_if("noise_distribution", "logit_normal"))
    loss_weighting: LossWeighting = "none"  # how much the loss counts at each noise level (schedule.loss_weights)
    loss_norm: LossNorm = "l1"  # the per-pixel distance of x0_hat to x: l1 |x0_hat - x| or l2 (x0_hat - x)^2
    # Super-resolution stages (model.low_resolution > 0): the low-resolution input is noised at a random level
    # in [0, max_augmentation] while training, and the network is told that level (noise conditioning augmentation).
    max_augmentation: Fraction = 0.3
    # images: a folder of class folders or of images (data/folders.py); captions: a captioned folder, a CSV/parquet
    # table or hf:NAME; arrays: the images .npy (the other data sets are read by name, without it)
    path: str | None = field(default=None, metadata=only_if("dataset", "images", "captions", "arrays"))
    # Text-conditioned data (see data/captions.py and data/encoders.py):
    encoder: EncoderName | None = None  # the text encoder of the captions and prompts, e.g. open_clip/ViT-B-32/none
    embeddings: str | None = None  # a .npy of caption embeddings (default for captions: the cache beside them)
    # A Hugging Face dataset (data.path=hf:NAME[:SPLIT], or a local copy): which columns to read.
    image_column: str | None = None  # a Hugging Face dataset's column of images (default: the only one)
    caption_column: str | None = None  # a Hugging Face dataset's column of captions (default: the only one)


@dataclass
class ModelConfig(Section):
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

    SECTION: ClassVar[str] = "model"
    ADDED: ClassVar[dict[str, Any]] = {"preconditioning": "none"}

    image_size: PositiveInt = 28  # side of the square images it makes
    channels: Literal[1, 3] = field(default=1, metadata={"hint": "1 for grey, 3 for RGB"})
    base_width: PositiveInt = 64  # channels of the first level
    width_multipliers: Levels = field(default_factory=lambda: [1, 2, 3])  # one per level: its width / base_width
    blocks_per_level: PositiveInt = 2  # residual blocks at each level, on the way down and again on the way up
    self_attention: list[bool] = field(default_factory=lambda: [False, True, False])  # one switch per level
    # attention to the condition, one switch per level; with condition none, off at every level unless set
    # explicitly (presets.resolve_config: a preset's switches would have nothing to attend to)
    cross_attention: list[bool] = field(default_factory=lambda: [False, True, False])
    attention_heads: PositiveInt = 4  # heads of every attention layer; they must divide its width
    # what steers the image: class (a class id), vector (an embedding, e.g. CLIP's), sequence (token states) or none
    condition: Condition = "class"
    num_classes: PositiveInt = field(default=10, metadata=only_if("condition", "class"))  # class ids 1..N
    # the width of a condition vector or token (512 for CLIP ViT-B-32, 384 for MiniLM); null: the text encoder's,
    # asked of data.encoder (or data.embeddings) when training starts and written into config.yaml
    condition_dim: PositiveInt | None = field(default=None, metadata=only_if("condition", "vector", "sequence"))
    # tokens a caption (77 for CLIP and T5); null: the text encoder's, as for condition_dim
    condition_tokens: PositiveInt | None = field(default=None, metadata=only_if("condition", "sequence"))
    noise_embedding_dim: EvenPositiveInt = 32  # width of the sinusoidal embedding of the noise level
    noise_embedding_max_frequency: AboveOne = 1000.0  # the fastest sine of that embedding
    norm_groups: PositiveInt = 8  # groups of every GroupNormalization
    dropout: Fraction = 0.0  # in every residual block
    # x0_hat = c_skip * x_t + c_out * F(c_in * x_t): "edm" scales the network's input and output to unit size at
    # every level (schedule.preconditioning_scalings); "none": x0_hat = F, the network's raw output
    preconditioning: Preconditioning = "none"
    data_std: PositiveFloat = field(default=0.5, metadata=only_if("preconditioning", "edm"))  # what "edm" assumes
    # A super-resolution stage: the side of the low-resolution image it upscales (0: a base model). The low-res
    # image is upsampled (bilinear) by image_size // low_resolution and concatenated to the noisy image.
    low_resolution: NonNegativeInt = 0

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

    @property
    def super_resolution(self) -> bool:
        return self.low_resolution > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of one image the network makes: (image_size, image_size, channels)."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def unset_condition_shape(self) -> list[str]:
        """The fields of the condition's shape left to the encoder (None) that this condition uses; a network
        needs them set, so every checkpoint's config holds numbers."""
        used = {"vector": ["condition_dim"], "sequence": ["condition_tokens", "condition_dim"]}.get(self.condition, [])
        return [name for name in used if getattr(self, name) is None]

    @property
    def condition_shape(self) -> tuple[int, ...] | None:
        """The shape of one image's condition as the data and the sampler give it: () for a class id, (D,) for a
        vector, (T, D) for a token sequence; None for an unconditional model."""
        return {
            "class": (),
            "vector": (self.condition_dim,),
            "sequence": (self.condition_tokens, self.condition_dim),
        }.get(self.condition)


@dataclass
class TrainConfig(Section):
    """How long and how fast to train."""

    SECTION: ClassVar[str] = "train"
    ADDED: ClassVar[dict[str, Any]] = {
        "warmup_fraction": None,
        "lr_decay": "none",
        "log_every": 100,
        "accumulate_steps": 1,
        "adam_beta_2": 0.999,
        "cooldown_fraction": 0.0,
    }

    epochs: PositiveInt = 10  # train until this many epochs are finished (--epochs)
    batch_size: PositiveInt = 64  # images per batch; a step (one weight update) takes accumulate_steps batches
    # update the weights once per N batches, with their mean gradient: a step of batch_size * N images that needs
    # the memory of one batch (steps, warm-up, backups and the EMA all count updates, see optimizer.EMAAdam)
    accumulate_steps: PositiveInt = 1
    learning_rate: PositiveFloat = 3e-4  # Adam's peak, reached after the warm-up (optimizer.py)
    adam_beta_2: OpenFraction = 0.999  # Adam's beta_2: the decay of its average of squared gradients (Keras's 0.999)
    warmup_steps: NonNegativeInt = 500  # the learning rate rises linearly from 0 over these first steps
    warmup_fraction: Fraction | None = None  # a warm-up of this share of the run's steps instead (None: warmup_steps)
    lr_decay: LearningRateDecay = "none"  # after the warm-up: constant, or down to 0 at the last planned step
    # with lr_decay none: the learning rate falls linearly from its peak to 0 over this last share of the run's
    # planned steps (a short cool-down; 0: none)
    cooldown_fraction: Fraction = 0.0
    steps_per_epoch: PositiveInt | None = None  # None: one pass over the data per epoch
    ema_decay: Fraction = 0.999  # weight averaging for samples and checkpoints; 0 switches it off
    keep_checkpoints: NonNegativeInt = 0  # keep only the newest N epoch checkpoints; 0 keeps all
    backup_every: NonNegativeInt = 200  # save a resumable mid-epoch state into RUN/backup/ every N steps; 0 = off
    mixed_precision: bool = False  # bfloat16 on CPU/TPU, float16 on GPU
    distribute: Distribute = "none"  # several accelerators or machines: training.make_strategy
    seed: int = 0  # the weights, the data order and the noise of every step (data/pipeline.py)
    evaluate_every: NonNegativeInt = 0  # score samples every N epochs into RUN/evaluation/; 0 = off
    evaluate_num: PositiveInt = 200  # samples per evaluation
    # output to a file or pipe (not a terminal, which gets a progress bar): a plain line every N steps, one an epoch
    log_every: PositiveInt = 100


@dataclass
class SampleConfig(Section):
    """How the per-epoch sample grid (and `denoiser sample` by default) draws images."""

    SECTION: ClassVar[str] = "sample"

    steps: PositiveInt = 10  # denoising steps (network calls) from pure noise to an image
    guidance: float = 2.0  # classifier-free guidance scale g; 1 is the plain conditional prediction
    # guide only at the noise levels in [low, high], elsewhere the plain conditional prediction (one network call
    # instead of two): a guidance interval (Kynkaanniemi et al. 2024); [0, 1] guides every step
    guidance_interval: LevelInterval = field(default_factory=lambda: [0.0, 1.0])
    # the step rule (solvers.py): ddim (first order), dpmpp_2m (second order) or deis (third order: the default,
    # the best from 3 to 10 steps)
    solver: Solver = "deis"
    max_level: OpenFraction = 0.95  # the noise level sampling starts from (the grid's top, schedule.py)
    threshold_percentile: Percentile | None = 99.5  # dynamic thresholding (sampler.py); null: a plain clip
    columns: PositiveInt = 8  # images per class (or prompt) in the grid
    seed: int = 0  # the starting noise of the grid (and of the samples an evaluation scores)
    augmentation_level: Fraction = 0.1  # super-resolution stages: the noise level given to the low-res input


# ================================================================================= rules across fields
def one_attention_switch_per_level(model: ModelConfig) -> str | None:
    for name in ("self_attention", "cross_attention"):
        switches = getattr(model, name)
        if len(switches) != model.num_levels:
            return (
                f"model.{name} has {len(switches)} switches but width_multipliers has {model.num_levels} levels; "
                "give one true/false per level."
            )


def norm_groups_divide_every_width(model: ModelConfig) -> str | None:
    if any(width % model.norm_groups for width in model.widths):
        return (
            f"model.norm_groups={model.norm_groups} must divide every level width {model.widths}; "
            "choose a base_width that is a multiple of norm_groups."
        )


def attention_heads_divide_attention_widths(model: ModelConfig) -> str | None:
    levels = zip(model.widths, model.self_attention, model.cross_attention)
    for width in [width for width, self_attention, cross_attention in levels if self_attention or cross_attention]:
        if width % model.attention_heads:
            return (
                f"model.attention_heads={model.attention_heads} must divide the width {width} of every level "
                "with attention."
            )


def cross_attention_needs_a_condition(model: ModelConfig) -> str | None:
    if any(model.cross_attention) and not model.conditional:
        return "model.cross_attention is switched on but condition='none'; cross-attention needs a condition."


def image_size_halves_at_every_level(model: ModelConfig) -> str | None:
    halvings = model.num_levels - 1
    if model.image_size % 2**halvings:
        chain = " -> ".join(f"{model.image_size / 2**i:g}" for i in range(halvings + 1))
        return (
            f"model.image_size={model.image_size} cannot be halved {halvings} times ({chain}); "
            f"use an image size divisible by {2**halvings} or fewer width_multipliers levels."
        )


def low_resolution_divides_image_size(model: ModelConfig) -> str | None:
    if model.super_resolution and (model.low_resolution >= model.image_size or model.image_size % model.low_resolution):
        return (
            f"model.low_resolution={model.low_resolution} must be smaller than model.image_size={model.image_size} "
            f"and divide it (a whole upscaling factor), e.g. model.low_resolution={model.image_size // 2}."
        )


def cooldown_only_after_a_constant_rate(train: TrainConfig) -> str | None:
    if train.cooldown_fraction > 0 and train.lr_decay != "none":
        return (
            f"train.cooldown_fraction={train.cooldown_fraction} cools down a constant learning rate, but "
            f"train.lr_decay={train.lr_decay!r} decays it already; set train.lr_decay=none or "
            "train.cooldown_fraction=0."
        )


CROSS_FIELD_CHECKS: dict[type, tuple[Callable[[Any], str | None], ...]] = {
    ModelConfig: (
        one_attention_switch_per_level,  # first: the other checks walk the levels
        norm_groups_divide_every_width,
        attention_heads_divide_attention_widths,
        cross_attention_needs_a_condition,
        image_size_halves_at_every_level,
        low_resolution_divides_image_size,
    ),
    TrainConfig: (cooldown_only_after_a_constant_rate,),
}


# ================================================================================= the whole run
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "sample": SampleConfig}


def edm_loss_weights_need_edm_preconditioning(run: "RunConfig") -> str | None:
    """The weight 1 / c_out (schedule.loss_weights) counts the error of a preconditioned network's own output;
    on a plain x0 prediction it piles the gradient onto nearly clean images (and reads model.data_std, which
    a network without preconditioning does not)."""
    if run.data.loss_weighting == "edm" and run.model.preconditioning != "edm":
        return (
            "data.loss_weighting=edm needs model.preconditioning=edm (its weight 1 / c_out is for a preconditioned "
            "network); set model.preconditioning=edm, or data.loss_weighting=min_snr or none."
        )


# Rules that tie fields of several sections together, checked by RunConfig.validate.
CROSS_SECTION_CHECKS: tuple[Callable[[Any], str | None], ...] = (edm_loss_weights_need_edm_preconditioning,)


@dataclass
class RunConfig:
    """Everything a training run needs; saved as `config.yaml` in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def validate(self) -> None:
        """Check every section, then the rules across sections (`CROSS_SECTION_CHECKS`), before a run trains.

        Loading a saved run skips the rules across sections, so a run made before one existed still samples."""
        for name in SECTIONS:
            getattr(self, name).validate()
        for check in CROSS_SECTION_CHECKS:
            problem = check(self)
            if problem:
                raise ConfigError(problem)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        refuse_unknown_sections(values)
        return cls(**{name: section.from_dict(values.get(name) or {}) for name, section in SECTIONS.items()})

    @classmethod
    def from_saved(cls, values: dict) -> "RunConfig":
        """`from_dict` for a config.yaml that denoiser wrote: keys added since take the values of its version."""
        refuse_unknown_sections(values)
        return cls(**{name: section.from_saved(values.get(name) or {}) for name, section in SECTIONS.items()})

    def unused_settings(self) -> set[str]:
        """The settings ("model.condition_dim") nothing of this run reads, e.g. a class model's condition width."""
        return {f"{name}.{key}" for name in SECTIONS for key in unused_fields(getattr(self, name))}

    def keep_older_settings(self, saved: dict) -> "RunConfig":
        """This config with the keys that the run's `saved` settings predate set to what that run did (ADDED)."""
        older = {
            name: {key: value for key, value in section.ADDED.items() if key not in (saved.get(name) or {})}
            for name, section in SECTIONS.items()
        }
        return RunConfig.from_dict(merge(self.to_dict(), older))


def refuse_unknown_sections(values: dict) -> None:
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"Unknown config section(s) {unknown}; sections are {sorted(SECTIONS)}.")


# ================================================================================= YAML files and --set overrides
def load_yaml(path) -> dict:
    """Read a YAML config file into a dict, with a one-line error for a missing or malformed file."""
    try:
        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"Config file {path} is not valid YAML: {yaml_problem(error)}; "
            "check the brackets, quotes, 'key: value' colons and indentation (spaces, not tabs) there."
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections (data, model, train, sample).")
    check_sections(values, f"Config file {path}")
    return values


def check_sections(values: dict, where: str) -> None:
    """Refuse a section that is not a mapping of keys to values (`train: 5`), before it is merged with others."""
    for name, section in values.items():
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{where}: section {name!r} must be a mapping of keys to values, got {shown(section)}.")


def parse_override(text: str) -> dict:
    """`"train.epochs=3"` -> `{"train": {"epochs": 3}}`; the value is parsed as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"Override {shown(text)} must look like section.key=value, e.g. train.epochs=3.")
    dotted, raw = text.split("=", 1)
    keys = dotted.strip().split(".")
    if len(keys) != 2 or keys[0] not in SECTIONS or not keys[1]:
        raise ConfigError(
            f"Override {shown(text)}: the key must be section.key with a section in {sorted(SECTIONS)}, "
            "e.g. model.base_width=32."
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(
            f"Override {shown(text)}: the value is not valid YAML: {yaml_problem(error)}; "
            "close brackets and quotes, e.g. model.width_multipliers=[1,2,2]."
        ) from None
    return {keys[0]: {keys[1]: value}}


def yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's several-line error as one line: what is wrong, and where (1-based line and column)."""
    problem = getattr(error, "problem", None) or str(error)
    text = " ".join(problem.split())
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        text += f" ({context} from line {context_mark.line + 1}, column {context_mark.column + 1})"
    return text


# ================================================================================= combining and comparing
def merge(base: dict, overrides: dict) -> dict:
    """Recursively update a nested config dict with another (the override wins)."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


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
