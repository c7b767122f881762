"""Serve dashboard notebooks with Voila on 127.0.0.1, and stop them without leftovers."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError, ServiceError

log = logging.getLogger(__name__)

#: what a dashboard kernel prints on its stderr (Voila's log) once the cell that built the
#: dashboard has finished (:func:`smartmeter_lib.viz.common.mount`). Voila calls a kernel
#: pool "filled" as soon as its kernels have started, seconds before they have run the
#: notebook: a page asked for in between waits for the rest of the run.
READY_MARKER = "smartmeter-dashboard-ready"


def announce_ready(name: str) -> None:
    """Print the ready marker of dashboard ``name`` (with the kernel and the preheat flag) in
    the form :meth:`VoilaServer.wait_preheated` reads."""
    print(f"{READY_MARKER} name={name} preheated={os.environ.get('VOILA_PREHEAT') == 'True'} "
          f"kernel={os.environ.get('VOILA_KERNEL_ID', '-')}", file=sys.__stderr__, flush=True)


class _KernelLogHandler(logging.StreamHandler):
    """The handler :func:`kernel_logging` adds (once per kernel)."""


def kernel_logging(name: str) -> None:
    """Send this dashboard kernel's ``smartmeter_lib`` log records (INFO and up) to the
    kernel's real stderr, which is Voila's log, tagged with the dashboard and kernel: the
    updater's start and stop, the page attaching, and failed updates show up there."""
    lib = logging.getLogger("smartmeter_lib")
    if any(isinstance(h, _KernelLogHandler) for h in lib.handlers):
        return
    handler = _KernelLogHandler(sys.__stderr__)
    kernel = os.environ.get("VOILA_KERNEL_ID", "-")[:8]
    handler.setFormatter(logging.Formatter(
        f"[smartmeter {name} {kernel}] %(asctime)s %(levelname)s %(name)s: %(message)s"))
    lib.addHandler(handler)
    if lib.level == logging.NOTSET or lib.level > logging.INFO:
        lib.setLevel(logging.INFO)


def dashboards_dir() -> Path:
    """Where the dashboard notebooks are (``SMARTMETER_DASHBOARDS_DIR`` overrides)."""
    env = os.environ.get("SMARTMETER_DASHBOARDS_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "dashboards"
    if not path.is_dir():
        raise ConfigError(f"dashboards folder not found at {path}; set "
                          "SMARTMETER_DASHBOARDS_DIR to the repository's dashboards/ folder")
    return path


def dashboard_env(settings: Settings) -> dict[str, str]:
    """Environment for the dashboard kernels: the stores of ``settings`` (secrets are not
    copied here; kernels inherit them from this process's environment)."""
    return {"SMARTMETER_DATA_DIR": str(Path(settings.data_dir).resolve()),
            "SMARTMETER_LIVE": settings.live, "SMARTMETER_HISTORY": settings.history,
            "SMARTMETER_REDIS_URL": settings.redis_url,
            "SMARTMETER_REDIS_PREFIX": settings.redis_prefix,
            "SMARTMETER_CASSANDRA_HOSTS": settings.cassandra_hosts,
            "SMARTMETER_CASSANDRA_PORT": str(settings.cassandra_port),
            "SMARTMETER_CASSANDRA_KEYSPACE": settings.cassandra_keyspace,
            "SMARTMETER_DASHBOARD_PAGE_TIMEOUT_S": str(settings.dashboard_page_timeout_s)}


def check_port_free(host: str, port: int) -> None:
    """A :class:`ConfigError` if something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise ConfigError(f"port {port} on {host} is already in use; choose another with "
                              f"--port (or SMARTMETER_PORT)") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class VoilaServer:
    """A Voila process serving one notebook (or a folder of notebooks)."""

    def __init__(self, target: Path, host: str, port: int, env: dict[str, str],
                 log_file: Path, cull_idle_s: int = 60, preheat: bool = False) -> None:
        self.target, self.host, self.port = target, host, port
        self.cull_idle_s = cull_idle_s
        self.preheat = preheat
        self.env = {**os.environ, **env, "BOKEH_RESOURCES": "inline"}
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout_s: float = 90.0) -> None:
        check_port_free(self.host, self.port)
        cmd = [sys.executable, "-m", "voila", str(self.target), f"--port={self.port}",
               f"--Voila.ip={self.host}", "--no-browser", "--show_tracebacks=True",
               # kernels whose page went away (no heartbeat: the updater stopped) are idle;
               # shut them down instead of keeping them forever
               f"--MappingKernelManager.cull_idle_timeout={self.cull_idle_s}",
               f"--MappingKernelManager.cull_interval={max(5, self.cull_idle_s // 2)}",
               "--MappingKernelManager.cull_connected=True"]
        if self.preheat:
            # one kernel per notebook runs it before anyone asks: the first page of each
            # dashboard renders without waiting for a kernel start and the notebook's imports
            cmd += ["--preheat_kernel=True", "--pool_size=1"]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # the log is appended to: only what this run writes counts (wait_preheated)
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.log_file, "ab")  # noqa: SIM115 (closed by the child's exit)
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"voila exited with code {self.proc.returncode}; see "
                                   f"{self.log_file}")
            try:
                # HEAD answers (405) without starting a kernel: any HTTP answer means ready
                urllib.request.urlopen(urllib.request.Request(self.url, method="HEAD"),
                                       timeout=2).close()
                ready = True
            except urllib.error.HTTPError:
                ready = True
            except (urllib.error.URLError, OSError):
                ready = False
            if ready:
                log.info("voila is serving %s on %s", self.target.name, self.url)
                return
            else:
                # not listening yet: wait for the process (or a short tick), then look again
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.25)
        self.stop()
        raise ServiceError(f"voila did not answer on {self.url} within {timeout_s:.0f} s; see "
                           f"{self.log_file}")

    def wait_preheated(self, timeout_s: float = 180.0) -> list[str]:
        """With ``preheat``: wait (bounded) until every notebook's kernel pool is filled and
        each pooled kernel has run its notebook (its :data:`READY_MARKER` is in the log), so
        the first page is served at once; returns the notebooks ready. A
        :class:`ServiceError` if they are not ready within ``timeout_s``."""
        if not self.preheat:
            return []
        wanted = ({self.target.name} if self.target.is_file()
                  else {p.name for p in self.target.glob("*.ipynb")})
        deadline = time.monotonic() + timeout_s
        ready: set[str] = set()
        while True:
            text = ""
            if self.log_file.exists():
                with open(self.log_file, "rb") as f:
                    f.seek(self._log_start)
                    text = f.read().decode(errors="replace")
            filled = {m.group(1).rsplit("/", 1)[-1]
                      for m in re.finditer(r"Kernel pool of (\S+) is filled", text)}
            # filled = the kernels started; the marker = each has run its notebook too
            built = {m.group(1) + ".ipynb" for m in re.finditer(
                READY_MARKER + r" name=(\S+) preheated=True", text)}
            ready = filled & built
            if wanted <= ready:
                return sorted(ready)
            if self.proc is None or self.proc.poll() is not None:
                raise ServiceError(f"voila stopped while preheating; see {self.log_file}")
            if time.monotonic() > deadline:
                if wanted <= filled:  # e.g. a notebook of the user's that does not mount()
                    log.warning("dashboards %s started but did not announce %r within %.0f s; "
                                "their first page may be slow", sorted(wanted - built),
                                READY_MARKER, timeout_s)
                    return sorted(filled)
                raise ServiceError(f"dashboard kernels not ready within {timeout_s:.0f} s "
                                   f"(ready: {sorted(ready)}); see {self.log_file}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.5)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop Voila and every kernel it started; nothing is left behind."""
        if self.proc is None:
            return
        try:
            family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(
                recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("voila did not stop within %.0f s; killing it", timeout_s)
                self.proc.kill()
                self.proc.wait(timeout=5)
        alive = [p for p in family[1:] if p.is_running()]
        for p in alive:
            p.terminate()
        _, alive = psutil.wait_procs(alive, timeout=5)
        for p in alive:
            p.kill()
        psutil.wait_procs(alive, timeout=5)
        self.proc = None
