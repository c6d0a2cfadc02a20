"""The example notebook, executed end to end in a real Jupyter kernel as a new user runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest
from support import DATASETS, ROOT

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def texts(cell, kind: str | None = None) -> list[str]:
    out = []
    for output in cell.outputs:
        if kind is not None and output.output_type != kind:
            continue
        out.append(str(output.get("text") or output.get("data", {}).get("text/plain", "")))
    return out


def test_the_quickstart_notebook_runs_in_a_kernel(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    monkeypatch.setenv("AUTOML_DATASETS", str(DATASETS))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))  # its own embedded Prefect
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert texts(cells[0]) == ["((800, 20), {'good': 560, 'bad': 240})"]  # the shared credit_g
    fit = next(c for c in cells if ".fit(" in c.source)
    # One updating display ending on the outcome, no wall of Prefect logs or warnings.
    shown = texts(fit, "display_data")
    assert len(shown) == 1 and "registered as models:/notebook/1" in shown[0], fit.outputs
    assert not any(o.output_type == "stream" for c in cells for o in c.outputs
                   if o.get("name") == "stderr"), [c.outputs for c in cells]
    board = next(c for c in cells if c.source.strip() == "model.leaderboard_")
    assert "AUC_weighted" in texts(board)[0]
    assert texts(cells[-1], "execute_result") == ["True"]  # the registered model agrees
    assert (tmp_path / "automl-runs" / "mlflow.db").is_file()
