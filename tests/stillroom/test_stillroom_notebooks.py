"""The notebooks run top to bottom (nbclient, kernel python3) and are committed without outputs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.stillroom.conftest import needs_teacher, needs_train

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ROOT = NOTEBOOKS.parent

nbformat = pytest.importorskip("nbformat")
needs_kernel = pytest.mark.skipif(
    importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("ipykernel") is None,
    reason="needs nbclient and ipykernel (the dev extra)",
)


def _all() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_three_notebooks_exist_and_are_committed_without_outputs():
    assert [p.name for p in _all()] == ["01_harvest.ipynb", "02_train.ipynb", "03_detect.ipynb"]
    for path in _all():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: a cell has outputs"
                assert cell.execution_count is None, f"{path.name}: a cell has a count"
        assert any("plt." in c.source for c in nb.cells), f"{path.name}: no plot"


def _execute(name: str, timeout: int) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, errors


@needs_kernel
@pytest.mark.slow
def test_01_harvest_runs():
    _execute("01_harvest.ipynb", timeout=300)


@needs_kernel
@needs_teacher
@needs_train
@pytest.mark.slow
@pytest.mark.teacher
@pytest.mark.train
def test_02_train_runs():
    _execute("02_train.ipynb", timeout=900)


@needs_kernel
@pytest.mark.slow
def test_03_detect_runs():
    _execute("03_detect.ipynb", timeout=600)
