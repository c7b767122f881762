"""What every local service shares: its status record, its interface, and process helpers.

A service is one or more detached OS processes (``start_new_session=True``), each known by a
pid file holding its pid and its process start time, so that a later, separate CLI process can
check or stop it and a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Literal

import psutil

from smartmeter_lib.errors import ServiceError

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent

State = Literal["running", "stopped", "unhealthy"]

# Popen objects of the processes this interpreter started, kept so they can be reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()


@dataclass
class ServiceStatus:
    """A snapshot of one service, as ``smartmeter services status`` shows it."""

    name: str
    state: State
    pids: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    data_dir: str = ""
    log_file: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class Service(abc.ABC):
    """A local server that can be started, checked and stopped from any process."""

    name: str

    @abc.abstractmethod
    def start(self, timeout: float | None = None) -> None:
        """Start (or adopt, if already running) and wait until ready; no-op when healthy."""

    @abc.abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Stop cleanly: SIGTERM, wait, SIGKILL after ``timeout``; remove the pid files."""

    @abc.abstractmethod
    def status(self) -> ServiceStatus:
        """Whether it is running, stopped, or running but not answering."""

    @abc.abstractmethod
    def is_ready(self) -> bool:
        """One quick readiness probe (client-level: it answers requests)."""


# --------------------------------------------------------------------------- pid files


@dataclass(frozen=True)
class PidRecord:
    """The contents of a pid file."""

    pid: int
    create_time: float
    name: str


def write_pid_file(path: Path, pid: int, name: str) -> PidRecord:
    """Record ``pid`` (and its start time, to detect pid reuse) in ``path``."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error as exc:
        raise ServiceError(f"{name}: process {pid} exited right after it was started") from exc
    record = PidRecord(pid=pid, create_time=created, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    tmp.replace(path)
    return record


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(int(data["pid"]), float(data["create_time"]), str(data["name"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_pid(path: Path) -> int | None:
    """The pid recorded in ``path`` if that very process is still alive, else None.

    A pid file whose process is gone (or whose pid now belongs to another process) is
    removed, and a zombie child of ours is reaped.
    """
    record = read_pid_file(path)
    if record is None:
        return None
    try:
        proc = psutil.Process(record.pid)
        same = abs(proc.create_time() - record.create_time) < 1.0
        alive = same and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        same = alive = False
    if alive:
        return record.pid
    if same:
        _reap(record.pid)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return None


# --------------------------------------------------------------------------- processes


def spawn(
    name: str,
    cmd: Sequence[str],
    *,
    log_path: Path,
    pid_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``cmd`` detached from this process (own session), stdout+stderr to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    log.debug("%s: starting %s", name, " ".join(cmd))
    with open(log_path, "ab") as out:
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
                close_fds=True,
                # a shell's background job ('&' without job control) ignores SIGINT, and so
                # would every child: these are stopped with SIGINT first, so restore it
                preexec_fn=_default_sigint,
            )
        except OSError as exc:
            raise ServiceError(f"{name}: cannot run {cmd[0]!r}: {exc}") from exc
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc
    write_pid_file(pid_file, proc.pid, name)
    return proc.pid


def _reap(pid: int) -> None:
    with _CHILDREN_LOCK:
        proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def terminate(pids: Sequence[int], timeout: float, name: str) -> list[int]:
    """SIGTERM every pid, wait up to ``timeout`` s, SIGKILL the rest; reap. Returns killed pids."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        for pid in [p for p in pending if _gone(p)]:
            _reap(pid)
            pending.remove(pid)
        if pending:
            time.sleep(0.1)
    killed = list(pending)
    for pid in pending:
        log.warning("%s: pid %d did not stop within %.0f s; sending SIGKILL", name, pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 10
    while pending and time.monotonic() < kill_deadline:
        for pid in [p for p in pending if _gone(p)]:
            _reap(pid)
            pending.remove(pid)
        if pending:
            time.sleep(0.05)
    if pending:
        raise ServiceError(f"{name}: pids {pending} survived SIGKILL")
    return killed


# --------------------------------------------------------------------------- ports


def port_in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound because another socket holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise ServiceError(f"cannot check port {host}:{port}: {exc}") from exc
    return False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """A short description of the process listening on ``port``, or '' when unknown."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return ""
    for conn in conns:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return ""
            try:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return ""


def ensure_ports_free(
    service: str, host: str, ports: Mapping[int, str], service_dir: Path | None = None
) -> None:
    """Raise a ServiceError naming the port and service if any of ``ports`` is taken.

    ``ports`` maps each port to what it is for, e.g. ``{9092: "broker 1"}``.
    """
    for port, role in ports.items():
        if port_in_use(host, port):
            owner = port_owner(port)
            by = f"by {owner}" if owner else "by another process"
            where = f" in {service_dir}" if service_dir else ""
            raise ServiceError(
                f"{service}: port {port} ({role}) on {host} is already in use {by}, not by a "
                f"{service} that smartmeter started{where}; stop that process or configure "
                "another port"
            )


# --------------------------------------------------------------------------- waiting


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
    abort: Callable[[], str | None] | None = None,
) -> float:
    """Poll ``condition`` until it is true; return the seconds it took.

    ``abort`` is polled too: when it returns a message the wait fails at once with it.
    Raises ServiceError on timeout.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if condition():
            return time.monotonic() - start
        if abort is not None:
            reason = abort()
            if reason:
                raise ServiceError(f"{what}: {reason}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(min(interval, remaining))


# --------------------------------------------------------------------------- files


def render_template(name: str, values: Mapping[str, object]) -> str:
    """Render ``templates/<name>`` with ``string.Template`` (``$key`` / ``${key}``)."""
    text = (PACKAGE_DIR / "templates" / name).read_text(encoding="utf-8")
    try:
        return Template(text).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise ServiceError(f"template {name} needs a value for {exc}") from exc


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` (creating its directory) with permission ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' when missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _default_sigint() -> None:
    """In a child before exec: SIGINT back to its default (Python then raises
    KeyboardInterrupt on it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
