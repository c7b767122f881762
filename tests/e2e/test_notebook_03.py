"""notebooks/03_tariff_study.ipynb runs headless under papermill on small synthetic data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_tariff_study.ipynb"


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_tariff_study_notebook_runs_under_papermill(test_output_dir: Path) -> None:
    source = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged `parameters`"
    assert all(len(c.source.splitlines()) <= 15 for c in source.cells if c.cell_type == "code")

    out = test_output_dir / "03_tariff_study.out.ipynb"
    html = test_output_dir / "03_tariff_study.html"
    html.unlink(missing_ok=True)
    pm.execute_notebook(str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent), kernel_name="python3",
                        parameters={"n_meters": 60, "history_days": 21, "n_boot": 20,
                                    "output_html": str(html)}, progress_bar=False)
    done = nbformat.read(out, as_version=4)
    text = _text(done)
    for word in ("60 meters", "flat_cap_2025q3", "agile_synthetic", "share_saving",
                 "recommended", "baseload_w"):
        assert word in text, f"the executed notebook does not show {word!r}"
    page = html.read_text(encoding="utf-8")
    assert "savings_by_tariff" in page and "cheapest_counts" in page and "Bokeh" in page
