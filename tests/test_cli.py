"""The `denoiser` command line: train, sample, clear one-line errors."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from helpers import command_line, tiny, tiny_train_args
from PIL import Image

import denoiser.cli.runners.train
from denoiser import build_unet, generate
from denoiser.cli import COMMANDS, main
from denoiser.config import SECTIONS, RunConfig
from denoiser.presets import resolve_config
from denoiser.rundir import RunDirectory
from denoiser.utils.images import to_uint8

START_UP_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )", re.MULTILINE)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli-run")
    assert main(tiny_train_args(run_dir)) == 0
    return run_dir


def run_console_script(*args):
    """Run the installed `denoiser` command as a user would."""
    command = shutil.which("denoiser") or os.path.join(os.path.dirname(sys.executable), "denoiser")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=300)


def test_train_writes_a_run_directory(trained_run):
    assert RunDirectory(trained_run).finished_epochs() == [1]
    assert os.path.isfile(os.path.join(trained_run, "samples", "epoch-0001.png"))


def test_sample_writes_png_and_npz_of_requested_size(trained_run, tmp_path):
    out, npz = tmp_path / "grid.png", tmp_path / "grid.npz"
    code = main(
        command_line("sample", checkpoint=trained_run, label=[2, "red circle"], num=3, steps=2, out=out, npz=npz)
    )
    assert code == 0
    # save_grid's picture: a 64-pixel cell per image, 3 in a row, a row per label, and 160 pixels of row labels
    assert Image.open(out).size == (160 + 3 * 64, 2 * 64)
    data = np.load(npz)
    assert data["images"].shape == (6, 24, 24, 3) and data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [2, 2, 2, 1, 1, 1]


def test_sample_from_a_checkpoint_file_is_reproducible(trained_run, tmp_path):
    checkpoint = os.path.join(trained_run, "checkpoints", "epoch-0001.keras")
    arrays = []
    for name in ("a", "b"):
        npz = tmp_path / f"{name}.npz"
        assert (
            main(
                [
                    "sample",
                    "--checkpoint",
                    checkpoint,
                    "--num",
                    "2",
                    "--steps",
                    "2",
                    "--seed",
                    "7",
                    "--out",
                    str(tmp_path / f"{name}.png"),
                    "--npz",
                    str(npz),
                ]
            )
            == 0
        )
        arrays.append(np.load(npz)["images"])
    np.testing.assert_array_equal(arrays[0], arrays[1])


def test_unknown_label_is_one_clear_line(trained_run, tmp_path, capsys):
    assert (
        main(["sample", "--checkpoint", str(trained_run), "--label", "unicorn", "--out", str(tmp_path / "x.png")]) == 2
    )
    error = capsys.readouterr().err.strip()
    assert "unicorn" in error and "red circle" in error and len(error.splitlines()) == 1


def test_a_long_label_is_cut_short_in_its_error(trained_run, tmp_path, capsys):
    label = "x" * 100_000
    assert main(["sample", "--checkpoint", str(trained_run), "--label", label, "--out", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and len(error) < 400
    assert f"Unknown label '{'x' * 79}... (100000 characters)" in error and "red circle" in error


def test_truncated_checkpoint_gives_a_clear_error(trained_run, tmp_path, capsys):
    broken = tmp_path / "broken.keras"
    data = open(os.path.join(trained_run, "checkpoints", "latest.keras"), "rb").read()
    broken.write_bytes(data[: len(data) // 2])
    assert main(["sample", "--checkpoint", str(broken), "--out", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err
    assert "truncated" in error and "Traceback" not in error


def test_bad_config_exits_nonzero_with_a_message_not_a_traceback(tmp_path):
    result = run_console_script(
        "train", "--preset", "shapes", "--run-dir", str(tmp_path), "--set", "model.base_width=-4"
    )
    assert result.returncode == 2
    assert "model" in result.stderr and "base_width" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "config.yaml")  # nothing was written


def test_bad_yaml_config_file(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  widths: [1, 2\n")
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def help_of(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def test_train_help_lists_every_setting_with_its_type_default_and_meaning(capsys):
    lines = help_of("train", capsys).splitlines()
    for name, section in SECTIONS.items():
        for item in dataclasses.fields(section):
            key = f"  {name}.{item.name}: "
            found = [index for index, line in enumerate(lines) if line.startswith(key)]
            assert len(found) == 1, key
            assert " = " in lines[found[0]], lines[found[0]]  # its default
            assert lines[found[0] + 1].startswith("      ") and lines[found[0] + 1].strip(), f"{key} has no meaning"
    assert "  sample.solver: ddim | dpmpp_2m | deis = deis" in lines  # a Literal's choices, spelled out


def test_train_help_says_each_setting_in_its_own_words(capsys):
    """A setting's help is read from the comment beside it in config.py, so it must not point at other text."""
    text = help_of("train", capsys)
    assert "see above" not in text
    lines = text.splitlines()
    meaning = lines[lines.index("  model.condition: class | vector | sequence | none = class") + 1]
    assert meaning.startswith("      what steers the image: class (a class id), vector (an embedding")
    solver = " ".join(lines[lines.index("  sample.solver: ddim | dpmpp_2m | deis = deis") + 1 :][:2])
    assert "deis (third order: the default, the best from 3 to 10 steps)" in " ".join(solver.split())


def test_train_says_how_many_epochs_in_words(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(denoiser.cli.runners.train, "train", lambda config, run_dir: None)
    assert main(tiny_train_args(tmp_path / "one", epochs=1)) == 0
    assert f"into {tmp_path / 'one'} for 1 epoch." in capsys.readouterr().out
    assert main(tiny_train_args(tmp_path / "two", epochs=2)) == 0
    assert f"into {tmp_path / 'two'} for 2 epochs." in capsys.readouterr().out


def test_config_prints_the_resolved_settings_as_yaml(tmp_path, capsys):
    extra = tmp_path / "extra.yaml"
    extra.write_text("train:\n  batch_size: 8\n")
    assert main(["config", "--preset", "shapes", "--config", str(extra), "--set", "sample.steps=7"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = resolve_config("shapes", {"train": {"batch_size": 8}}, [{"sample": {"steps": 7}}])
    assert RunConfig.from_dict(printed) == expected and printed["train"]["batch_size"] == 8


def test_help_texts_document_every_option():
    train_help = run_console_script("train", "--help").stdout
    for option in ("--preset", "--config", "--run-dir", "--epochs", "--steps-per-epoch", "--set", "shapes"):
        assert option in train_help
    sample_help = run_console_script("sample", "--help").stdout
    for option in ("--checkpoint", "--label", "--num", "--steps", "--guidance", "--seed", "--out", "--npz"):
        assert option in sample_help


@pytest.mark.parametrize(
    "command, option, value",
    [
        ("sample", "--guidance", "nan"),
        ("sample", "--guidance", "inf"),
        ("sample", "--guidance", "-inf"),
        ("img2img", "--strength", "nan"),
        ("sample", "--steps", "0"),
        ("sample", "--steps", "-3"),
        ("sample", "--num", "0"),
        ("evaluate", "--steps", "0"),
        ("interpolate", "--guidance", "inf"),
        ("export", "--steps", "0"),
    ],
)
def test_out_of_range_option_values_are_refused_in_one_line(command, option, value, tmp_path, capsys):
    args = [
        command,
        "--checkpoint",
        str(tmp_path / "no-such-run"),
        "--out",
        str(tmp_path / "x.png"),
        f"{option}={value}",
    ]
    if command == "img2img":
        args += ["--image", str(tmp_path / "image.png")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(error.splitlines()) == 1 and error.startswith(f"denoiser {command}: error:"), error
    assert option in error and repr(value) in error and "Traceback" not in error
    assert not os.path.exists(tmp_path / "x.png")


def test_a_multi_line_error_message_is_printed_on_one_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  base_width: [1, 2\n")
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("denoiser train: error:") and len(error.splitlines()) == 1, error


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["train"],
        ["sample"],
        ["inpaint"],
        ["img2img"],
        ["evaluate"],
        ["embed"],
        ["interpolate"],
        ["download"],
        ["export"],
        ["web"],
        ["config"],
    ],
)
def test_every_command_has_help(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: denoiser {' '.join(args)}".strip() in capsys.readouterr().out


def test_a_command_prints_no_tensorflow_start_up_lines_and_plain_progress_to_a_pipe(trained_run, tmp_path):
    """TensorFlow's start-up lines (CUDA stubs, cuInit, absl) stay off stderr; progress into a pipe is plain lines."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    out = tmp_path / "one.png"
    result = subprocess.run(
        [sys.executable, "-m", "denoiser.cli", "sample", "--checkpoint", str(trained_run), "--num", "1"]
        + ["--label", "1", "--steps", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0 and out.exists(), result.stderr
    assert not START_UP_LINE.search(result.stderr), result.stderr
    assert "sampling: 1/1 steps" in result.stdout and "\r" not in result.stdout and "\x1b" not in result.stdout


HELP_IN_A_FRESH_PROCESS = """
import contextlib, io, json, sys
from denoiser.cli import COMMANDS, main
answers = {}
BAD = ["sample", "--checkpoint", "run", "--out", "x.png", "--no-such-option"]
for args in [["--help"], *([command.name, "--help"] for command in COMMANDS), BAD]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exit:
            answers[" ".join(args)] = [exit.code, out.getvalue(), err.getvalue()]
heavy = [name for name in ("tensorflow", "keras", "torch") if name in sys.modules]
print(json.dumps({"answers": answers, "heavy": heavy}))
"""


def test_help_and_a_bad_option_answer_without_importing_tensorflow():
    command = [sys.executable, "-c", HELP_IN_A_FRESH_PROCESS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["heavy"] == []
    answers = report["answers"]
    assert answers["--help"][0] == 0 and "interpolate" in answers["--help"][1]
    assert (
        answers["train --help"][0] == 0
        and "  model.condition_dim: PositiveInt | None = null" in answers["train --help"][1]
    )
    helps = [answer for args, answer in answers.items() if args.endswith("--help")]
    assert len(helps) == len(COMMANDS) + 1
    assert all(code == 0 and out.startswith("usage: denoiser") for code, out, _ in helps)
    code, _, error = answers["sample --checkpoint run --out x.png --no-such-option"]
    assert code == 2 and len(error.strip().splitlines()) == 1 and "--no-such-option" in error


def test_every_command_names_a_runner_that_exists():
    for command in COMMANDS:
        assert callable(command.runner()), command.run


def test_an_interrupted_training_says_whether_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    def interrupted(config, run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(denoiser.cli.runners.train, "train", interrupted)
    run = RunDirectory(tmp_path / "run")
    assert main(tiny_train_args(run.path)) == 130
    assert "again to start again (nothing was saved yet" in capsys.readouterr().err
    os.makedirs(run.checkpoints)
    open(run.checkpoint(1), "wb").close()
    assert main(tiny_train_args(run.path)) == 130
    assert "again to resume from the last backup" in capsys.readouterr().err


def test_interpolate_names_only_the_options_that_fit_the_model(trained_run, tmp_path, capsys):
    """A class model given prompts names --from-label and --to-label; a text model given classes, --from and --to."""
    out = str(tmp_path / "x.png")
    assert main(["interpolate", "--checkpoint", str(trained_run), "--from", "a", "--to", "b", "--out", out]) == 2
    error = capsys.readouterr().err.strip()
    assert "conditioned on class labels" in error and "(--from-label, --to-label)" in error, error
    assert "--prompt" not in error and len(error.splitlines()) == 1
    text_model = tmp_path / "text.keras"
    build_unet(tiny(condition="vector")).save(text_model)
    walk = ["--from-label", "1", "--to-label", "2"]
    assert main(["interpolate", "--checkpoint", str(text_model), *walk, "--out", out]) == 2
    error = capsys.readouterr().err.strip()
    assert "conditioned on text" in error and "(--from, --to)" in error and "label" not in error, error
    assert not os.path.exists(out)


def test_interpolate_between_two_classes_writes_one_strip(trained_run, tmp_path):
    npz = tmp_path / "strip.npz"
    walk = dict(from_label="red circle", to_label=2, frames=3, steps=2, seed=4, out=tmp_path / "strip.png", npz=npz)
    assert main(command_line("interpolate", checkpoint=trained_run, **walk)) == 0
    strip = np.load(npz)["images"]
    assert strip.shape == (3, 24, 24, 3)
    first, _, _ = generate(str(trained_run), labels=["red circle"], num_per_label=1, steps=2, seed=4)
    assert np.abs(strip[0].astype(int) - to_uint8(first)[0].astype(int)).max() <= 1
