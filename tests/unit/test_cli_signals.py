"""Ctrl-C stops the long-running commands even when they start with SIGINT ignored, as a
shell's background job ('cmd &' in a script) does."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from smartmeter_lib.ops.background import Background


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_demo_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartmeter_lib.cli", "--data-dir", str(tmp_path / "d"), "demo",
         "--no-serve", "--homes", "50"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ignore_sigint)
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "pipeline:" in line or "producer:" in line:
                running.set()
        running.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert running.wait(120), "".join(lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, "".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any("demo stopped:" in x for x in lines), "".join(lines[-20:])


def test_background_children_get_sigint_back(tmp_path: Path) -> None:
    """A process started by the runbooks' Background from a parent that ignores SIGINT
    still stops on the SIGINT of ``stop``."""
    code = ("import signal, sys; from smartmeter_lib.ops.background import Background\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            f"Background(sys.argv[1]).start('sleeper', [{sys.executable!r}, '-c', "
            "'import time; print(\"up\", flush=True); time.sleep(60)'])\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    bg = Background(tmp_path)
    try:
        end = time.monotonic() + 30  # bounded: Python handles SIGINT once it prints
        while "up" not in bg.log_file("sleeper").read_text() and time.monotonic() < end:
            threading.Event().wait(0.05)
        assert bg.stop("sleeper", timeout_s=30) == "stopped"
        assert "KeyboardInterrupt" in bg.log_file("sleeper").read_text()
    finally:
        if bg.pid("sleeper"):
            bg.stop("sleeper", timeout_s=5)

