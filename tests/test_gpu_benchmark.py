"""benchmarks/gpu.py: its --smoke run on the CPU writes every figure or why it is missing; the card's peaks table."""

import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


@pytest.fixture
def gpu(monkeypatch):
    """The benchmark script as a module (its imports are the other benchmark scripts)."""
    monkeypatch.syspath_prepend(BENCHMARKS)
    import gpu

    return gpu


def test_smoke_run_writes_every_configuration(tmp_path):
    out = tmp_path / "gpu.json"
    command = [sys.executable, os.path.join(BENCHMARKS, "gpu.py"), "--smoke", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)  # KERAS_HOME: conftest's
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())

    assert figures["smoke"] and figures["command"] and figures["machine"]["tensorflow"]
    assert figures["skipped"] == [] and figures["seconds"] > 0
    assert figures["matmul"]["flops_per_second"]["float32"] > 0
    training = figures["training"]
    configurations = {(row["preset"], row["precision"], row["xla"]) for row in training}
    assert len(configurations) == len(training) == 3 * 3 * 2  # presets x precisions x XLA on and off
    for row in training:
        assert row.get("images_per_second", 0) > 0 or row.get("skipped"), row
        assert "error" not in row, row
    measured = [row for row in training if "images_per_second" in row]
    assert {row["precision"] for row in measured} == {"float32", "mixed_bfloat16"}
    assert all(row["training_step_flops"] > 0 and row["utilisation"] is None for row in measured)  # no card: no peak
    assert [row["preset"] for row in figures["pipeline"]] == ["fashion_mnist_fast", "cifar10", "laion64"]
    assert all(row["images_per_second"] > 0 for row in figures["pipeline"])
    grid = figures["time_to_recognisable_grid"]
    assert grid["classifier"] == "untrained stand-in" and grid["history"] and not grid["reached"]


def test_datasheet_peaks_by_device_name(gpu):
    assert gpu.datasheet_peaks("NVIDIA H100 80GB HBM3")["bfloat16"] == 989.5
    assert gpu.datasheet_peaks("NVIDIA H100 PCIe")["float16"] == 756.5
    assert gpu.datasheet_peaks("Tesla V100-PCIE-16GB")["float16"] == 112
    assert gpu.datasheet_peaks("Tesla T4")["bfloat16"] is None
    assert gpu.datasheet_peaks("NVIDIA L40S") is None  # not the L4
    t4 = {"name": "Tesla T4", "gpus": 1, "tensor_float_32": True, "peak_tflops": gpu.datasheet_peaks("Tesla T4")}
    assert gpu.peak_flops(t4, "float32") == 8.1e12  # no TF32 tensor cores
    assert gpu.peak_flops(t4, "mixed_bfloat16") is None
    assert "bfloat16" in gpu.unsupported(t4, "mixed_bfloat16")
    a100 = {**t4, "name": "NVIDIA A100-SXM4-40GB", "peak_tflops": gpu.datasheet_peaks("NVIDIA A100-SXM4-40GB")}
    assert gpu.peak_flops(a100, "float32") == 156e12  # TensorFlow runs float32 on TF32 tensor cores
    assert gpu.peak_flops({**a100, "tensor_float_32": False}, "float32") == 19.5e12


def test_out_of_budget_measurements_are_skipped_and_named(gpu, tmp_path):
    run = gpu.Run(str(tmp_path / "gpu.json"), budget_seconds=60, figures={})
    assert run.measure("laion64", "training", lambda: {"images_per_second": 1.0}, needs=61)["skipped"]
    assert run.figures["skipped"] == ["laion64"]
    assert run.measure("broken", "training", lambda: 1 / 0)["error"].startswith("ZeroDivisionError")
