"""A service made of one or more detached OS processes, each with a pid file."""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services.base import (
    Service,
    ServiceStatus,
    ensure_ports_free,
    live_pid,
    spawn,
    tail,
    terminate,
    wait_until,
)
from smartmeter_lib.services.config import ServicesConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instance:
    """One process of a service: a Kafka node, the Cassandra node or the Redis server."""

    key: str
    pid_file: Path
    console_log: Path
    main_log: Path
    ports: dict[int, str] = field(default_factory=dict)


class ProcessService(Service):
    """Start, stop and check the processes of one service from their pid files.

    Subclasses say which processes make the service (:meth:`instances`), how to prepare their
    files (:meth:`prepare`), how to run each (:meth:`command`) and when it answers
    (:meth:`is_ready`).
    """

    name: str = ""

    def __init__(self, config: ServicesConfig) -> None:
        self.config = config

    # ---------------------------------------------------------------- to implement

    @abc.abstractmethod
    def instances(self) -> list[Instance]:
        """The processes that make up this service."""

    @abc.abstractmethod
    def prepare(self, todo: list[Instance]) -> None:
        """Resolve binaries and write config files before the ``todo`` processes start."""

    @abc.abstractmethod
    def command(self, instance: Instance) -> list[str]:
        """The command line that runs ``instance`` in the foreground."""

    # ---------------------------------------------------------------- shared behaviour

    @property
    def service_dir(self) -> Path:
        return self.config.service_dir(self.name)

    @property
    def log_file(self) -> Path:
        """The main log of the (first) process, shown by ``status``."""
        return self.instances()[0].main_log

    def ports(self) -> list[int]:
        return [port for inst in self.instances() for port in inst.ports]

    def live_pids(self) -> dict[str, int | None]:
        """Instance key -> pid of its live process (None when not running)."""
        return {inst.key: live_pid(inst.pid_file) for inst in self.instances()}

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this service's lock file, so two processes never start or stop it at once."""
        self.service_dir.mkdir(parents=True, exist_ok=True)
        with open(self.service_dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def start(self, timeout: float | None = None) -> None:
        with self.exclusive():
            self._start(self.config.start_timeout_s if timeout is None else timeout)

    def _start(self, timeout: float) -> None:
        insts = self.instances()
        alive = self.live_pids()
        todo = [inst for inst in insts if alive[inst.key] is None]
        if not todo and self.is_ready():
            log.debug("%s is already running (pids %s)", self.name, list(alive.values()))
            return
        for inst in todo:
            ensure_ports_free(self.name, self.config.host, inst.ports, self.service_dir)
        started: list[int] = []
        try:
            if todo:
                self.prepare(todo)
                for inst in todo:
                    started.append(
                        spawn(
                            inst.key,
                            self.command(inst),
                            log_path=inst.console_log,
                            pid_file=inst.pid_file,
                            cwd=self.service_dir,
                        )
                    )
                    log.info("%s: started pid %d", inst.key, started[-1])
            try:
                took = wait_until(
                    self.is_ready,
                    timeout=timeout,
                    what=self.name,
                    interval=0.25,
                    abort=self._died,
                )
            except ServiceError as exc:
                if self._died() is not None:
                    raise
                raise ServiceError(
                    f"{exc} (see {self.log_file})\n{self.diagnosis(insts[0])}"
                ) from exc
        except BaseException:
            if started:
                log.warning("%s did not come up; stopping the processes started", self.name)
                with contextlib.suppress(ServiceError):
                    self._stop(timeout=10)
            raise
        log.debug("%s answered %.1f s after its processes started", self.name, took)

    def _died(self) -> str | None:
        for inst in self.instances():
            if live_pid(inst.pid_file) is None:
                return (
                    f"{inst.key} exited during start-up (see {inst.main_log})\n"
                    + self.diagnosis(inst)
                )
        return None

    def diagnosis(self, inst: Instance) -> str:
        """The last lines of the console and main logs of ``inst``, for error messages."""
        parts = []
        for path in dict.fromkeys([inst.console_log, inst.main_log]):
            text = tail(path, 15)
            if text.strip():
                parts.append(f"--- last lines of {path}:\n{text}")
        return "\n".join(parts) or f"(no output in {inst.console_log})"

    def stop(self, timeout: float | None = None) -> None:
        with self.exclusive():
            self._stop(self.config.stop_timeout_s if timeout is None else timeout)

    def _stop(self, timeout: float) -> None:
        insts = self.instances()
        pids = {inst.key: live_pid(inst.pid_file) for inst in insts}
        running = [pid for pid in pids.values() if pid is not None]
        if running:
            t0 = time.monotonic()
            killed = terminate(running, timeout, self.name)
            how = f" ({len(killed)} killed)" if killed else ""
            log.info("%s stopped in %.1f s%s", self.name, time.monotonic() - t0, how)
        for inst in insts:
            with contextlib.suppress(FileNotFoundError):
                inst.pid_file.unlink()

    def status(self) -> ServiceStatus:
        insts = self.instances()
        pids = self.live_pids()
        alive = [pid for pid in pids.values() if pid is not None]
        result = ServiceStatus(
            name=self.name,
            state="stopped",
            pids=alive,
            ports=self.ports(),
            data_dir=str(self.service_dir),
            log_file=str(self.log_file),
        )
        if not alive:
            return result
        if len(alive) < len(insts):
            down = [key for key, pid in pids.items() if pid is None]
            result.state = "unhealthy"
            result.detail = f"not running: {', '.join(down)}"
        elif self.is_ready():
            result.state = "running"
        else:
            result.state = "unhealthy"
            result.detail = "processes are up but do not answer yet (starting, or failing)"
        return result
