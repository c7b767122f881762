"""A local Redis server (Debian's ``redis-server`` binary), with an optional password.

Layout under ``<base_dir>/redis``: ``redis.conf`` (mode 0600, rendered at each start, holds
``requirepass`` when a password is set, so it never shows on a command line), ``data/`` (AOF
when ``redis_appendonly``), ``redis.log``, ``redis.out`` and ``redis.pid``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import redis

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services.base import live_pid, port_open, render_template, write_text
from smartmeter_lib.services.process import Instance, ProcessService

log = logging.getLogger(__name__)


def redis_quote(value: str) -> str:
    """Quote ``value`` for redis.conf (double quotes, backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def redis_server_executable() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError(
            "redis: no redis-server on PATH; install it (apt-get install -y redis-server) "
            "or point the settings at your own Redis host"
        )
    return found


class RedisService(ProcessService):
    """One redis-server process; ready when PING answers (with AUTH when a password is set)."""

    name = "redis"

    @property
    def conf_file(self) -> Path:
        return self.service_dir / "redis.conf"

    @property
    def data_dir(self) -> Path:
        return self.service_dir / "data"

    def instances(self) -> list[Instance]:
        return [
            Instance(
                key="redis",
                pid_file=self.service_dir / "redis.pid",
                console_log=self.service_dir / "redis.out",
                main_log=self.service_dir / "redis.log",
                ports={self.config.redis_port: "client port"},
            )
        ]

    def render_config(self) -> str:
        cfg = self.config
        password = cfg.redis_password.get_secret_value() if cfg.redis_password else None
        auth = f"requirepass {redis_quote(password)}" if password else "# no requirepass"
        return render_template(
            "redis.conf",
            {
                "host": cfg.host,
                "port": cfg.redis_port,
                "data_dir": self.data_dir,
                "log_file": self.instances()[0].main_log,
                "appendonly": "yes" if cfg.redis_appendonly else "no",
                "auth": auth,
            },
        )

    def prepare(self, todo: list[Instance]) -> None:
        redis_server_executable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.conf_file, self.render_config(), mode=0o600)

    def command(self, instance: Instance) -> list[str]:
        return [redis_server_executable(), str(self.conf_file)]

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A ``redis.Redis`` client for this server."""
        cfg = self.config
        return redis.Redis(
            host=cfg.host,
            port=cfg.redis_port,
            password=cfg.redis_password.get_secret_value() if cfg.redis_password else None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    def start(self, timeout: float | None = None) -> None:
        if live_pid(self.instances()[0].pid_file) is not None:
            self.check_password()
        super().start(timeout)

    def check_password(self) -> None:
        """Fail fast when the running server does not take the configured password."""
        client = self.client()
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise ServiceError(
                f"redis: the server running on port {self.config.redis_port} rejects the "
                f"configured password ({exc}); restart it with `smartmeter services down redis` "
                "and `smartmeter services up redis`"
            ) from exc
        except redis.RedisError:
            return
        finally:
            client.close()
        if self.config.redis_password is not None and self.answers_without_password():
            raise ServiceError(
                f"redis: the server running on port {self.config.redis_port} has no password "
                "but one is configured; restart it with `smartmeter services down redis` and "
                "`smartmeter services up redis`"
            )

    def answers_without_password(self) -> bool:
        """True when PING works with no password at all."""
        cfg = self.config
        client = redis.Redis(host=cfg.host, port=cfg.redis_port, socket_timeout=2.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def is_ready(self) -> bool:
        if not port_open(self.config.host, self.config.redis_port):
            return False
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def version(self) -> str | None:
        """The version of the redis-server binary, e.g. ``7.0.15``."""
        try:
            out = subprocess.run(
                [redis_server_executable(), "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
        except (ServiceError, OSError, subprocess.TimeoutExpired):
            return None
        for token in out.split():
            if token.startswith("v="):
                return token[2:]
        return None
