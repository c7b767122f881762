"""Background processes with pid files and logs: start once, stop the whole group, report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from smartmeter_lib.errors import OpsError
from smartmeter_lib.ops.background import Background, group_pids

PY = sys.executable


def test_start_is_idempotent_and_stop_ends_it_with_sigint(tmp_path: Path) -> None:
    bg = Background(tmp_path)
    pid = bg.start("sleeper", [PY, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    assert bg.start("sleeper", [PY, "-c", "raise SystemExit(1)"]) == pid  # left alone
    assert bg.pid_file("sleeper").exists() and bg.running() == ["sleeper"]
    end = time.monotonic() + 20  # bounded: Python is up (and handles SIGINT) once it prints
    while "up" not in bg.log_file("sleeper").read_text() and time.monotonic() < end:
        time.sleep(0.05)
    assert bg.stop("sleeper", timeout_s=30) == "stopped"  # SIGINT; 10 s was short under load
    assert bg.pid("sleeper") is None and not bg.pid_file("sleeper").exists()
    assert group_pids(pid) == []
    assert bg.stop("sleeper") == "not running"
    status = bg.status()
    assert status.loc[0, "name"] == "sleeper" and not status.loc[0, "running"]
    assert "KeyboardInterrupt" in bg.log_file("sleeper").read_text()


def test_stop_takes_the_children_too_and_escalates(tmp_path: Path) -> None:
    bg = Background(tmp_path)
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            f"subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
            "time.sleep(60)\n")
    pid = bg.start("stubborn", [PY, "-c", code])
    end = time.monotonic() + 20
    while len(group_pids(pid)) < 2 and time.monotonic() < end:  # bounded: the child starts
        time.sleep(0.05)
    assert len(group_pids(pid)) == 2, "the child process never started"
    assert bg.stop("stubborn", timeout_s=1) == "terminated"  # SIGINT ignored, SIGTERM works
    assert group_pids(pid) == []


def test_a_process_that_died_is_reported_with_its_log(tmp_path: Path) -> None:
    bg = Background(tmp_path)
    pid = bg.start("crash", [PY, "-c", "import time; time.sleep(0.5); print('boom: no config');"
                             " raise SystemExit(3)"])
    end = time.monotonic() + 20
    while group_pids(pid) and time.monotonic() < end:  # bounded: it exits by itself
        time.sleep(0.05)
    with pytest.raises(OpsError) as err:
        bg.require_running(["crash"])
    assert "crash is not running" in str(err.value) and "boom: no config" in str(err.value)
    assert bg.stop_all().to_dict("records") == [{"name": "crash", "result": "not running"}]
