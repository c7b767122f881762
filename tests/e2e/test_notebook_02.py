"""notebooks/02_outage_analysis.ipynb runs headless under papermill on a short scenario."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_outage_analysis.ipynb"


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(json.dumps(out) if out.get("output_type") != "stream" else out["text"]
                     for cell in nb.cells for out in cell.get("outputs", []))


def test_outage_analysis_notebook_scores_the_scenario(test_output_dir: Path) -> None:
    source = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    out = test_output_dir / "02_outage_analysis.out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent), kernel_name="python3",
                        parameters={"duration": "80m"}, progress_bar=False)
    text = _text(nbformat.read(out, as_version=4))
    assert "| smartmeter | area outage | 4 | 4 | 1.00 | 1.00 |" in text
    assert "| prototype | area outage |" in text
    assert "labelled outage" in text and "AREA_OUTAGE alert" in text
    assert "Time to detect each outage" in text  # the figures were rendered


def test_outage_analysis_on_the_real_stack_needs_labels(test_output_dir: Path) -> None:
    out = test_output_dir / "02_outage_analysis.real.ipynb"
    with pytest.raises(pm.PapermillExecutionError, match=r"labels file .* not found"):
        pm.execute_notebook(str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent),
                            kernel_name="python3", parameters={"stack": "real"},
                            progress_bar=False)
