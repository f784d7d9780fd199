"""Config validation: every kind of field rule, the cross-field checks, presets, YAML files and overrides,
and old run directories' configs."""

from __future__ import annotations

import math
import re
import typing

import helpers
import pytest
import yaml

from denoiser.config import (
    ConfigError,
    DataConfig,
    DatasetName,
    LossNorm,
    LossWeighting,
    ModelConfig,
    NoiseDistribution,
    RunConfig,
    SampleConfig,
    Solver,
    TrainConfig,
    load_yaml,
    parse_override,
)
from denoiser.config_rules import ENCODER_FAMILIES
from denoiser.data.encoders import FAMILIES
from denoiser.presets import preset_names, resolve_config
from denoiser.rundir import RunDirectory
from denoiser.schedule import LOSS_NORMS, LOSS_WEIGHTINGS, TRAINING_DISTRIBUTIONS
from denoiser.solvers import SOLVERS


def one_line_error(build) -> str:
    return helpers.one_line_error(build, ConfigError)


@pytest.mark.parametrize(
    "section, changes, expected",
    [
        # positive integer (a bool or a float is not one)
        (TrainConfig, dict(epochs=0), "train.epochs must be a positive integer, got 0"),
        (TrainConfig, dict(epochs=2.0), "train.epochs must be a positive integer, got 2.0"),
        (ModelConfig, dict(base_width=True), "model.base_width must be a positive integer, got True"),
        # non-negative integer
        (TrainConfig, dict(warmup_steps=-1), "train.warmup_steps must be a non-negative integer, got -1"),
        # optional: a positive integer or null
        (DataConfig, dict(num_images=0), "data.num_images must be a positive integer or null, got 0"),
        (TrainConfig, dict(steps_per_epoch="all"), "train.steps_per_epoch must be a positive integer or null"),
        # numbers in a range
        (TrainConfig, dict(learning_rate=0.0), "train.learning_rate must be a positive number, got 0.0"),
        # a number is finite: nan and inf are refused by every float field
        (TrainConfig, dict(learning_rate=math.inf), "train.learning_rate must be a positive number, got inf"),
        (SampleConfig, dict(guidance=math.nan), "sample.guidance must be a finite number, got nan"),
        (ModelConfig, dict(noise_embedding_max_frequency=math.inf), "model.noise_embedding_max_frequency must be"),
        (ModelConfig, dict(dropout=1.0), r"model.dropout must be a number in \[0, 1\), got 1.0"),
        (TrainConfig, dict(ema_decay=-0.1), r"train.ema_decay must be a number in \[0, 1\), got -0.1"),
        (SampleConfig, dict(threshold_percentile=0), r"sample.threshold_percentile must be a number in \(0, 100\]"),
        (ModelConfig, dict(noise_embedding_max_frequency=1), "model.noise_embedding_max_frequency must be a number"),
        (ModelConfig, dict(noise_embedding_dim=31), "model.noise_embedding_dim must be a positive even integer"),
        # one of a set of choices (Literal); 1 is a channel count, True is not
        (ModelConfig, dict(channels=2), "model.channels must be one of 1, 3, got 2 .1 for grey, 3 for RGB."),
        (ModelConfig, dict(channels=True), "model.channels must be one of 1, 3, got True"),
        (ModelConfig, dict(condition="text"), "model.condition must be one of 'class', 'vector', 'sequence', 'none'"),
        (DataConfig, dict(noise_distribution="gauss"), "data.noise_distribution must be one of 'folded_normal'"),
        (TrainConfig, dict(distribute="gpu"), "train.distribute must be one of 'none', 'mirrored'"),
        # true or false, plain text, lists
        (TrainConfig, dict(mixed_precision="yes"), "train.mixed_precision must be true or false, got 'yes'"),
        (DataConfig, dict(dataset=3), "data.dataset must be one of 'fashion_mnist', 'mnist', .*, got 3"),
        (
            DataConfig,
            dict(dataset="imagenet"),
            "data.dataset must be one of 'fashion_mnist'.*'arrays', got 'imagenet'",
        ),
        (ModelConfig, dict(width_multipliers=[1, 0, 2]), "model.width_multipliers must be a non-empty list"),
        (ModelConfig, dict(width_multipliers=[]), "model.width_multipliers must be a non-empty list"),
        (ModelConfig, dict(self_attention=[0, 1, 0]), "model.self_attention must be a list whose entries are each"),
        # the shape of an encoder's name
        (DataConfig, dict(encoder="clip/ViT-B-32"), "data.encoder must be open_clip/MODEL/PRETRAINED"),
        (DataConfig, dict(encoder="open_clip/ViT-B-32"), "data.encoder must be open_clip/MODEL/PRETRAINED"),
        (DataConfig, dict(encoder="sentence_transformers/"), "data.encoder must be"),
    ],
)
def test_each_rule_rejects_a_bad_value_naming_the_field(section, changes, expected):
    assert re.search(expected, one_line_error(lambda: section(**changes)))


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(cross_attention=[True]), "model.cross_attention has 1 switches but width_multipliers has 3 levels"),
        (dict(base_width=6), "model.norm_groups=8 must divide every level width"),
        (dict(attention_heads=3, norm_groups=2, base_width=16), "model.attention_heads=3 must divide the width 32"),
        (dict(condition="none"), "model.cross_attention is switched on but condition='none'"),
        (dict(image_size=30), "model.image_size=30 cannot be halved 2 times"),
    ],
)
def test_cross_field_checks_name_the_fields(changes, expected):
    assert expected in one_line_error(lambda: ModelConfig(**changes))


def test_a_field_used_by_one_condition_only_is_checked_for_that_condition():
    with pytest.raises(ConfigError, match="model.num_classes must be a positive integer"):
        ModelConfig(num_classes=0)
    assert ModelConfig(condition="vector", num_classes=0).num_classes == 0  # unused by a vector condition
    with pytest.raises(ConfigError, match="model.condition_dim"):
        ModelConfig(condition="vector", condition_dim=0)


def test_good_values_pass_and_tuples_are_stored_as_lists():
    config = ModelConfig(width_multipliers=(1, 2), self_attention=(False, True), cross_attention=(False, False))
    assert config.width_multipliers == [1, 2] and config.self_attention == [False, True]
    assert DataConfig(encoder="sentence_transformers/models/my-minilm").encoder.endswith("my-minilm")
    assert DataConfig(encoder="open_clip/ViT-B-32/none", num_images=5).num_images == 5
    assert DataConfig(encoder="transformers/t5-small").encoder == "transformers/t5-small"
    assert TrainConfig(learning_rate=1, steps_per_epoch=None).learning_rate == 1  # an integer is a number


def test_a_changed_config_is_validated_again():
    config = RunConfig()
    config.train.batch_size = 0
    with pytest.raises(ConfigError, match="train.batch_size"):
        config.validate()


def test_the_encoder_families_are_those_the_encoders_module_loads():
    assert set(ENCODER_FAMILIES) == set(FAMILIES)


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_is_valid_and_round_trips(preset):
    config = resolve_config(preset)
    config.validate()
    assert RunConfig.from_dict(config.to_dict()) == config


def test_the_configs_choices_are_those_the_core_implements():
    """The core cannot import config (sampling knows nothing of training), so the names are checked here."""
    assert set(typing.get_args(NoiseDistribution)) == set(TRAINING_DISTRIBUTIONS)
    assert set(typing.get_args(Solver)) == set(SOLVERS)
    assert set(typing.get_args(LossWeighting)) == set(LOSS_WEIGHTINGS)
    assert set(typing.get_args(LossNorm)) == set(LOSS_NORMS)


def test_every_dataset_name_is_a_valid_choice():
    for name in typing.get_args(DatasetName):
        assert DataConfig(dataset=name).dataset == name


def test_non_finite_numbers_are_refused_from_yaml_and_overrides_too():
    """YAML's .inf and an override's text "nan" both become floats, and no float field takes them."""
    assert "train.learning_rate must be a positive number, got inf" in one_line_error(
        lambda: RunConfig.from_dict(yaml.safe_load("train:\n  learning_rate: .inf\n"))
    )
    assert "sample.guidance must be a finite number, got nan" in one_line_error(
        lambda: resolve_config("shapes", overrides=[parse_override("sample.guidance=nan")])
    )
    assert "sample.guidance must be a finite number, got -inf" in one_line_error(
        lambda: resolve_config("shapes", overrides=[parse_override("sample.guidance=-inf")])
    )


def test_an_old_config_with_a_retired_key_loads_and_resumes(tmp_path):
    """Run directories made before data.shuffle_buffer was retired hold it in config.yaml; it is dropped on read."""
    saved = RunConfig().to_dict()
    saved["data"]["shuffle_buffer"] = 60000
    assert "shuffle_buffer" not in RunConfig().to_dict()["data"]
    assert RunConfig.from_dict(saved) == RunConfig()
    assert DataConfig.from_dict({"shuffle_buffer": 60000, "label_dropout": 0.1}) == DataConfig(label_dropout=0.1)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert RunDirectory(tmp_path).check_resume(RunConfig()) == []  # the same run: nothing changed, nothing refused
    assert "train.shuffle_buffer" in one_line_error(lambda: RunConfig.from_dict({"train": {"shuffle_buffer": 1}}))


def test_an_unknown_key_or_section_is_named():
    message = one_line_error(lambda: RunConfig.from_dict({"model": {"base_widht": 32}}))
    assert "model.base_widht" in message and "did you mean model.base_width?" in message
    assert "modle" in one_line_error(lambda: RunConfig.from_dict({"modle": {}}))
    assert "base_widht" in one_line_error(lambda: ModelConfig.from_dict({"base_widht": 32}))
    assert "'train' must be a mapping" in one_line_error(lambda: RunConfig.from_dict({"train": [1, 2]}))


def test_numbers_written_as_text_are_read_as_numbers():
    """YAML 1.1 reads 1e-3 as a string; a float field takes it as the number it means."""
    config = RunConfig.from_dict({"train": {"learning_rate": "1e-3"}, "model": {"dropout": "0.1"}})
    assert config.train.learning_rate == pytest.approx(1e-3) and config.model.dropout == pytest.approx(0.1)
    assert "train.learning_rate must be a number, got 'fast'" in one_line_error(
        lambda: RunConfig.from_dict({"train": {"learning_rate": "fast"}})
    )


def test_a_long_value_is_cut_short_in_its_error():
    long = "y" * 5000
    for message in (
        one_line_error(lambda: parse_override(long)),
        one_line_error(lambda: resolve_config("shapes", overrides=[{"data": {"encoder": long}}])),
    ):
        assert "'yyyy" in message and "... (5000 characters)" in message and len(message) < 400


def test_data_path_is_an_unused_setting_of_the_data_sets_read_by_name():
    assert "data.path" in resolve_config("fashion_mnist", overrides=[{"data": {"path": "x"}}]).unused_settings()
    for preset in ("images", "captions"):
        assert "data.path" not in resolve_config(preset, overrides=[{"data": {"path": "x"}}]).unused_settings()
    assert "data.path" not in RunConfig.from_dict({"data": {"dataset": "arrays"}}).unused_settings()


def test_a_yaml_file_with_a_syntax_error_is_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 3\nmodel:\n  width_multipliers: [1, 2\n")
    message = one_line_error(lambda: load_yaml(path))
    assert str(path) in message and "not valid YAML" in message
    assert "line 5, column 1" in message and "line 4" in message  # the end it reached and the open bracket
    path.write_text("model:\n\tbase_width: 32\n")  # a tab indent
    assert "line 2" in one_line_error(lambda: load_yaml(path))


def test_a_yaml_file_is_read_including_exponents(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  epochs: 2\n")
    config = resolve_config("shapes", load_yaml(path))
    assert config.train.learning_rate == pytest.approx(1e-3) and config.train.epochs == 2
    assert "does not exist" in one_line_error(lambda: load_yaml(tmp_path / "missing.yaml"))
    path.write_text("- just\n- a list\n")
    assert "must hold a mapping" in one_line_error(lambda: load_yaml(path))


def test_overrides_parse_values_and_give_one_line_errors():
    assert parse_override("model.width_multipliers=[1, 2]") == {"model": {"width_multipliers": [1, 2]}}
    assert parse_override("data.path=null") == {"data": {"path": None}}
    assert "section.key=value" in one_line_error(lambda: parse_override("epochs"))
    assert "section.key" in one_line_error(lambda: parse_override("epochs=3"))
    message = one_line_error(lambda: parse_override("model.width_multipliers=[1, 2"))
    assert "model.width_multipliers=[1, 2" in message and "not valid YAML" in message and "column" in message
    assert "train.epochs must be a positive integer" in one_line_error(
        lambda: resolve_config("shapes", overrides=[parse_override("train.epochs=-1")])
    )
