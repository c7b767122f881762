"""Settings of the local real services (Kafka, Cassandra, Redis) that ``smartmeter services`` runs.

Everything binds to ``host`` (127.0.0.1 by default). Data, logs, rendered config files and
pid files live under ``base_dir``; the jars resolved from Maven Central are cached under
``jar_cache_dir`` and shared by every checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

SERVICE_NAMES: tuple[str, ...] = ("kafka", "cassandra", "redis")


def find_project_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: the current directory) holding ``.git``.

    Falls back to ``start`` itself when no git checkout encloses it.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def default_base_dir() -> Path:
    """``<repo or cwd>/.smartmeter/services``."""
    return find_project_root() / ".smartmeter" / "services"


def default_jar_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/smartmeter/jars``, that is ``~/.cache/smartmeter/jars`` by default."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "smartmeter" / "jars"


class ServicesConfig(BaseModel):
    """Where and how the local Kafka cluster, Cassandra node and Redis server run."""

    model_config = ConfigDict(frozen=True)

    base_dir: Path = Field(default_factory=default_base_dir)
    jar_cache_dir: Path = Field(default_factory=default_jar_cache_dir)
    host: str = "127.0.0.1"

    kafka_ports: tuple[int, int, int] = (9092, 9093, 9094)
    kafka_controller_ports: tuple[int, int, int] = (9192, 9193, 9194)
    kafka_heap_mb: int = Field(default=512, ge=128)

    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_heap_mb: int = Field(default=1024, ge=512)

    redis_port: int = 6379
    redis_password: SecretStr | None = None
    redis_appendonly: bool = False

    start_timeout_s: float = Field(default=240.0, gt=0)
    stop_timeout_s: float = Field(default=45.0, gt=0)

    @field_validator("base_dir", "jar_cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator(
        "kafka_ports",
        "kafka_controller_ports",
        "cassandra_port",
        "cassandra_storage_port",
        "redis_port",
    )
    @classmethod
    def _valid_ports(cls, value: int | tuple[int, ...]) -> int | tuple[int, ...]:
        ports = value if isinstance(value, tuple) else (value,)
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1..65535")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> ServicesConfig:
        ports = self.all_ports()
        duplicates = sorted({p for p in ports if ports.count(p) > 1})
        if duplicates:
            raise ValueError(f"each service port must be distinct; repeated: {duplicates}")
        return self

    def all_ports(self) -> list[int]:
        """Every TCP port that the three services listen on."""
        return [
            *self.kafka_ports,
            *self.kafka_controller_ports,
            self.cassandra_port,
            self.cassandra_storage_port,
            self.redis_port,
        ]

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers of the local cluster, e.g. ``127.0.0.1:9092,127.0.0.1:9093,...``."""
        return ",".join(f"{self.host}:{port}" for port in self.kafka_ports)

    @property
    def kafka_quorum_voters(self) -> str:
        """The static ``controller.quorum.voters`` list: ``1@host:9192,2@host:9193,3@host:9194``."""
        return ",".join(
            f"{node_id}@{self.host}:{port}"
            for node_id, port in enumerate(self.kafka_controller_ports, start=1)
        )

    @property
    def cassandra_contact_point(self) -> str:
        """``host:port`` of the CQL native transport."""
        return f"{self.host}:{self.cassandra_port}"

    @property
    def redis_url(self) -> str:
        """``redis://host:port/0`` (without the password, which is passed separately)."""
        return f"redis://{self.host}:{self.redis_port}/0"

    def service_dir(self, name: str) -> Path:
        """The directory holding the data, logs and config files of one service."""
        return self.base_dir / name
