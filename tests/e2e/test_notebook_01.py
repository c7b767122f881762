"""notebooks/01_load_profiles.ipynb runs headless under papermill, with and without the real
LCL samples, and shows both profile plots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from ..conftest import ROOT, SHARED_DATA

NOTEBOOK = ROOT / "notebooks" / "01_load_profiles.ipynb"


def _run(out: Path, lcl_dir: str) -> nbformat.NotebookNode:
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3",
                        cwd=str(NOTEBOOK.parent), progress_bar=False,
                        parameters={"homes": 150, "days": 3, "lcl_dir": lcl_dir})
    return nbformat.read(str(out), as_version=4)


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text", ""))
            data = o.get("data", {})
            parts += [str(data.get(k, "")) for k in ("text/plain", "text/html",
                                                      "application/javascript")]
    return "\n".join(parts)


def test_notebook_has_a_parameters_cell() -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "lcl_dir" in tagged[0].source
    assert all(len(c.source.splitlines()) <= 15 for c in nb.cells if c.cell_type == "code")


def test_notebook_with_generated_data(test_output_dir: Path) -> None:
    nb = _run(test_output_dir / "01_load_profiles_generated.ipynb", "/nonexistent/lcl")
    text = _text(nb)
    assert "generated file" in text and "simulated fleet:" in text
    assert "Bokeh" in text and "simulated archetypes" in text


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no real LCL samples at {SHARED_DATA}")
def test_notebook_with_real_lcl_samples(test_output_dir: Path) -> None:
    nb = _run(test_output_dir / "01_load_profiles.ipynb", str(SHARED_DATA))
    text = _text(nb)
    assert "real LCL samples" in text and "MAC000002" in text and "MAC000147" in text
    assert "Bokeh" in text
