"""Every notebook runs top to bottom in smoke mode (DENOISER_SMOKE=1: tiny model, tiny data, offline).

The committed notebooks carry the outputs of a CPU-sized run (DENOISER_CPU_SIZED=1) so that a reader on GitHub
sees the pictures. The smoke test starts from no outputs, executes in memory with its working directory in a
temporary folder, and never writes the notebook back.
"""

import glob
import os

import pytest

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "*.ipynb")))
IDS = [os.path.basename(path) for path in NOTEBOOKS]


def outputs_of(notebook):
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def execute_in_smoke_mode(path, tmp_path, monkeypatch, edit=lambda source: source):
    """Run the notebook at `path` from no outputs in memory, in `tmp_path`, each code cell's source through
    `edit` first; the executed notebook."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DENOISER_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernel loads the test machine's torchvision stand-in, as this process does (tests/kernel_site).
    kernel_site = os.path.join(os.path.dirname(__file__), "kernel_site")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [kernel_site, os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code_cells:  # drop the stored outputs: only what runs here is checked
        cell.outputs, cell.execution_count = [], None
        cell.source = edit(cell.source)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, showing the failing cell, if any cell fails
    assert all(cell.execution_count for cell in code_cells)  # every code cell ran in this kernel
    assert not [output for output in outputs_of(notebook) if output.get("output_type") == "error"]
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    with open(path, "rb") as handle:
        committed = handle.read()
    execute_in_smoke_mode(path, tmp_path, monkeypatch)
    assert os.path.isdir(tmp_path / "runs")  # the notebook wrote its run directory where it was run
    with open(path, "rb") as handle:
        assert handle.read() == committed  # executed in memory: the committed file is untouched


@pytest.mark.slow
def test_the_inpainting_notebook_can_skip_training_with_the_pretrained_model(tmp_path, monkeypatch):
    path = next(path for path in NOTEBOOKS if "04_inpainting" in path)

    def switched_on(code):
        return code.replace("PRETRAINED = False", "PRETRAINED = True")

    execute_in_smoke_mode(path, tmp_path, monkeypatch, edit=switched_on)
    assert not glob.glob(str(tmp_path / "runs" / "*" / "checkpoints"))  # nothing was trained


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_shows_its_pictures(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    outputs = outputs_of(notebook)
    assert any("image/png" in output.get("data", {}) for output in outputs)  # a reader on GitHub sees figures
    assert not [output for output in outputs if output.get("output_type") == "error"]
    repository = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    assert repository not in nbformat.writes(notebook)  # no local paths in the stored outputs
