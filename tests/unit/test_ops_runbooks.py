"""The runbooks are thin and complete: one tagged parameters cell each, short code cells that
call smartmeter_lib.ops, and the README shows their papermill commands in order."""

from __future__ import annotations

import re

import nbformat
import pytest

from ..conftest import ROOT

RUNBOOKS = ROOT / "runbooks"
NAMES = ["00_check_prerequisites", "01_start_services", "02_create_topics", "03_create_schema",
         "04_start_pipeline", "05_health_check", "06_load_test", "07_replay_history",
         "09_teardown"]


def test_every_runbook_is_there() -> None:
    assert sorted(p.stem for p in RUNBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_runbook_has_one_parameters_cell_and_thin_code(name: str) -> None:
    nb = nbformat.read(str(RUNBOOKS / f"{name}.ipynb"), as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "port_offset" in tagged[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(len(c.source.splitlines()) <= 16 for c in code if c is not tagged[0])
    assert all(not c.get("outputs") for c in code), "commit runbooks without outputs"
    assert "smartmeter_lib.ops" in "\n".join(c.source for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_readme_shows_the_papermill_commands_in_order() -> None:
    text = (RUNBOOKS / "README.md").read_text()
    order = [m.group(1) for m in re.finditer(r"\$PM runbooks/(\w+)\.ipynb", text)]
    assert order == NAMES
