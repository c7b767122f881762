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


def output_root() -> Path:
    """Where tests write what they keep: ``$SMARTMETER_TEST_OUTPUT`` or ``test-output/``."""
    return Path(os.environ.get("SMARTMETER_TEST_OUTPUT") or ROOT / "test-output")


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """Screenshots and executed notebooks land here (kept after the run)."""
    path = output_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- hang watchdog
# pytest-timeout (signal method, 600 s) fails a slow test but cannot interrupt a thread that
# is blocked inside C code (a client library's destructor, say), because Python runs signal
# handlers only between bytecodes. Then the whole run would hang until CI kills it, with no
# clue why. faulthandler's watchdog is a C thread: past WATCHDOG_S it prints every thread's
# stack and ends the run, so the log says where it stuck.
WATCHDOG_S = float(os.environ.get("SMARTMETER_TEST_WATCHDOG_S", "900"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    import faulthandler
    import sys

    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Print a failure as soon as it happens (a run cut short still shows why), and the
    failure of a test marked xfail too (a known gap: its cause is worth having from CI)."""
    xfailed = report.skipped and hasattr(report, "wasxfail") and report.when == "call"
    if not (report.failed or xfailed):
        return
    import sys

    what = "XFAIL" if xfailed else "FAILED"
    print(f"\n--- {what} {report.nodeid} ({report.when}, {report.duration:.1f} s) ---\n"
          f"{report.longreprtext[-6000:]}\n--- end of {report.nodeid} ---",
          file=sys.__stderr__, flush=True)
