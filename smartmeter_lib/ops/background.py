"""Processes in the background, each with a pid file and a log, in one run directory.

A process runs in its own session (its pid is its process group), so that stopping it stops
the processes it started too. :meth:`Background.stop` sends SIGINT to the group first (our
commands finish cleanly on Ctrl-C: processors flush and commit), then SIGTERM, then SIGKILL,
each after a timeout. Pid files record the process's start time, so a pid reused by another
program is never signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import psutil

from smartmeter_lib.errors import OpsError, ServiceError
from smartmeter_lib.services.base import live_pid, read_pid_file, spawn, tail

log = logging.getLogger(__name__)


def group_pids(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_gone(pgid: int, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while group_pids(pgid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.2)
    return True


class Background:
    """The background processes of one run directory (``NAME.pid`` and ``NAME.log`` each)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir).absolute()

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` if it runs (a stale pid file is removed)."""
        return live_pid(self.pid_file(name))

    def names(self) -> list[str]:
        """Every process with a pid file or a log here."""
        found = {p.stem for p in self.run_dir.glob("*.pid")}
        found |= {p.stem for p in self.run_dir.glob("*.log")}
        return sorted(found)

    def running(self, names: Sequence[str] | None = None) -> list[str]:
        return [n for n in (self.names() if names is None else names) if self.pid(n)]

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | Path | None = None) -> int:
        """Start ``argv`` as ``name``, unless a process of that name already runs (then its
        pid is returned and nothing is started)."""
        pid = self.pid(name)
        if pid is not None:
            log.info("%s already runs (pid %d); left alone", name, pid)
            return pid
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            pid = spawn(name, list(argv), log_path=self.log_file(name),
                        pid_file=self.pid_file(name), cwd=Path(cwd or self.run_dir), env=env)
        except ServiceError as err:
            raise OpsError(f"{err}; see {self.log_file(name)}") from err
        log.info("started %s: pid %d, log %s", name, pid, self.log_file(name))
        return pid

    def stop(self, name: str, timeout_s: float = 30.0) -> str:
        """Stop ``name`` and every process it started: SIGINT, then SIGTERM, then SIGKILL,
        ``timeout_s`` apart. Returns how it ended ('not running', 'stopped' by SIGINT,
        'terminated' or 'killed')."""
        record = read_pid_file(self.pid_file(name))
        pid = self.pid(name)
        pgid = pid if pid is not None else (record.pid if record else None)
        if pgid is None or not group_pids(pgid):
            with contextlib.suppress(FileNotFoundError):
                self.pid_file(name).unlink()
            return "not running"
        for sig, how in ((signal.SIGINT, "stopped"), (signal.SIGTERM, "terminated"),
                         (signal.SIGKILL, "killed")):
            log.info("%s: sending %s to process group %d", name, sig.name, pgid)
            _signal_group(pgid, sig)
            if _wait_gone(pgid, timeout_s if sig != signal.SIGKILL else 10.0):
                result = how
                break
        else:
            raise OpsError(f"{name}: processes {group_pids(pgid)} survived SIGKILL; stop them "
                           "by hand")
        self.pid(name)  # reaps our child and removes the pid file
        with contextlib.suppress(FileNotFoundError):
            self.pid_file(name).unlink()
        return result

    def stop_all(self, timeout_s: float = 30.0, prefix: str = "") -> pd.DataFrame:
        """Stop every process here whose name starts with ``prefix``; one row each."""
        rows = [{"name": n, "result": self.stop(n, timeout_s)}
                for n in self.names() if n.startswith(prefix)]
        return pd.DataFrame(rows, columns=["name", "result"])

    def status(self) -> pd.DataFrame:
        """Name, pid, whether it runs, its log and the log's last line."""
        rows = []
        for n in self.names():
            pid = self.pid(n)
            rows.append({"name": n, "pid": pid, "running": pid is not None,
                         "log": str(self.log_file(n)), "last_log_line": tail(self.log_file(n), 1)})
        return pd.DataFrame(rows, columns=["name", "pid", "running", "log", "last_log_line"])

    def require_running(self, names: Sequence[str]) -> None:
        """An OpsError with the end of its log for each of ``names`` that is not running."""
        dead = [n for n in names if self.pid(n) is None]
        if dead:
            raise OpsError("; ".join(
                f"{n} is not running; the end of {self.log_file(n)}:\n{tail(self.log_file(n), 15)}"
                for n in dead))
