"""`denoiser export --format onnx`: the exported network agrees with Keras, and its JSON describes the page's needs."""

import json
import os

import numpy as np
import pytest
from helpers import make_tiny_run

from denoiser.cli import main
from denoiser.deploy.onnx import ExportError, example_inputs, export_onnx, parity, write_onnx
from denoiser.serialization import load_sampler

pytestmark = pytest.mark.extra("onnx")


def onnx_against_keras(model, path, seed):
    """Max |onnxruntime - Keras| on fresh random inputs (other than the ones the export checked itself)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = example_inputs(model, batch=3, seed=seed)
    exported = session.run(["x0_hat"], dict(zip([spec.name for spec in session.get_inputs()], inputs)))[0]
    reference = np.asarray(model(inputs, training=False))
    assert exported.shape == reference.shape == (3, *model.inputs[0].shape[1:])
    assert np.abs(reference).max() > 0.1  # random weights: the comparison is not between two zero images
    return float(np.abs(exported - reference).max())


@pytest.fixture(scope="module")
def class_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run = make_tiny_run(root / "run", condition="class")
    out = root / "exported"
    assert main(["export", "--checkpoint", run, "--format", "onnx", "--out", str(out), "--steps", "8"]) == 0
    return run, out


def test_export_writes_the_network_and_its_description(class_export):
    run, out = class_export
    assert sorted(os.listdir(out)) == ["denoiser.json", "model.onnx"]
    info = json.loads((out / "denoiser.json").read_text())
    sampler = load_sampler(run, steps=8)
    assert info["inputs"] == ["noisy_images", "noise_level", "condition"] and info["output"] == "x0_hat"
    assert (info["image_size"], info["channels"]) == (16, 3)
    assert info["condition"]["kind"] == "class" and info["condition"]["num_classes"] == 8
    assert info["condition"]["class_names"][0] == "red circle"
    assert info["sampling"]["steps"] == 8 and info["sampling"]["guidance"] == 2.0  # the run's guidance
    np.testing.assert_array_equal(np.float32(info["sampling"]["noise_levels"]), sampler.noise_levels)
    assert info["parity_max_abs_difference"] < 1e-4


def test_onnxruntime_matches_keras_on_random_inputs(class_export):
    run, out = class_export
    sampler = load_sampler(run)
    assert onnx_against_keras(sampler.model, str(out / "model.onnx"), seed=7) < 1e-4


@pytest.mark.parametrize("condition,channels", [("vector", 3), ("sequence", 1), ("none", 1)])
def test_every_condition_kind_exports_within_tolerance(condition, channels, tmp_path):
    run = make_tiny_run(tmp_path / "run", condition=condition, channels=channels, seed=3)
    sampler = load_sampler(run)
    path = str(tmp_path / "model.onnx")
    write_onnx(sampler.model, path)
    assert parity(sampler.model, path) < 1e-4
    assert onnx_against_keras(sampler.model, path, seed=11) < 1e-4
    assert sampler.model_config.condition == condition


@pytest.mark.extra("clip")
def test_a_text_model_exports_the_embeddings_of_its_prompts(tmp_path):
    from denoiser.data.encoders import encode_texts

    run = make_tiny_run(tmp_path / "run", condition="vector")
    prompts = ["a red circle", "a blue cross"]
    info = export_onnx(run, tmp_path / "out", prompts=prompts)
    assert info["condition"] == {
        "kind": "vector",
        "prompts": prompts,
        "table": "prompts.bin",
        "table_shape": [2, 512],
        "dtype": "float32",
    }
    table = np.fromfile(tmp_path / "out" / "prompts.bin", dtype="<f4").reshape(2, 512)
    np.testing.assert_allclose(table, encode_texts(prompts, "open_clip/ViT-B-32/none"), atol=1e-6)


def test_prompts_for_a_class_model_are_refused(class_export, tmp_path):
    run, _ = class_export
    with pytest.raises(ExportError, match="not text"):
        export_onnx(run, tmp_path / "out", prompts=["a red circle"])
    assert not (tmp_path / "out").exists()


def test_a_text_model_without_prompts_is_one_clear_line(tmp_path, capsys):
    run = make_tiny_run(tmp_path / "run", condition="vector")
    assert main(["export", "--checkpoint", run, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "give the prompts" in error and "--prompt" in error and "Traceback" not in error


def test_an_export_that_fails_its_check_leaves_no_model_behind(class_export, tmp_path):
    run, _ = class_export
    with pytest.raises(ExportError, match="disagree"):
        export_onnx(run, tmp_path / "out", tolerance=1e-12)  # float32 arithmetic never agrees this closely
    assert os.listdir(tmp_path / "out") == []


# ================================================================================ a cascade, stage by stage
@pytest.fixture(scope="module")
def cascade_runs(tmp_path_factory):
    """A tiny 8x8 base and an 8 -> 16 super-resolution stage, both class-conditioned, random weights."""
    root = tmp_path_factory.mktemp("cascade")
    return make_tiny_run(root / "base", image_size=8, seed=1), make_tiny_run(root / "sr", low_resolution=8, seed=2)


def test_a_cascade_exports_one_folder_per_stage_and_lists_them(cascade_runs, tmp_path, capsys):
    base, sr = cascade_runs
    out = tmp_path / "cascade"
    assert main(["export", "--checkpoint", base, "--upscale", sr, "--out", str(out), "--steps", "3"]) == 0
    assert "8x8 -> 16x16" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["denoiser.json", "stage-0", "stage-1"]
    assert sorted(os.listdir(out / "stage-1")) == ["denoiser.json", "model.onnx"]
    info = json.loads((out / "denoiser.json").read_text())
    assert info["format"] == "denoiser-web-cascade/1" and (info["image_size"], info["channels"]) == (16, 3)
    stages = [(stage["folder"], stage["image_size"], stage["low_resolution"]) for stage in info["stages"]]
    assert stages == [("stage-0/", 8, 0), ("stage-1/", 16, 8)]
    assert info["condition"]["kind"] == "class" and info["condition"]["class_names"][:2] == ["red circle", "red square"]
    base_info, sr_info = (json.loads((out / folder / "denoiser.json").read_text()) for folder, _, _ in stages)
    assert base_info["sampling"]["steps"] == 3 and sr_info["sampling"]["steps"] == 6  # the stage keeps its run's
    assert "super_resolution" not in base_info
    assert sr_info["super_resolution"] == {"low_resolution": 8, "augmentation_level": 0.1}
    assert sr_info["inputs"][3:] == ["low_resolution_images", "augmentation_level"]
    assert sr_info["parity_max_abs_difference"] < 1e-4


def test_a_cascade_whose_sizes_do_not_chain_is_one_line_naming_both(cascade_runs, tmp_path, capsys):
    _, sr = cascade_runs
    base16 = make_tiny_run(tmp_path / "base16")  # makes 16x16 images; the stage upscales 8x8 ones
    out = tmp_path / "out"
    assert main(["export", "--checkpoint", base16, "--upscale", sr, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "upscales 8x8" in error and "makes 16x16" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1 and not out.exists()


def test_cascade_stages_conditioned_differently_are_refused(cascade_runs, tmp_path):
    base, _ = cascade_runs
    text_sr = make_tiny_run(tmp_path / "sr", condition="vector", low_resolution=8)
    with pytest.raises(ExportError, match="Stage 1 .* vector embeddings by open_clip/ViT-B-32/none but stage 0 on 8"):
        export_onnx(base, tmp_path / "out", upscales=[text_sr])
    assert not (tmp_path / "out").exists()
