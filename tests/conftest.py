"""Shared test set-up: tier markers from the folder, and where test output goes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "lcl-samples"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if not path.is_relative_to(ROOT / "tests"):
            item.add_marker(pytest.mark.unit)  # doctests of the library
            continue
        parts = path.relative_to(ROOT / "tests").parts
        if parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """Screenshots and executed notebooks land here (kept after the run)."""
    path = Path(os.environ.get("SMARTMETER_TEST_OUTPUT", ROOT / "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path
