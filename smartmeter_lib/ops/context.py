"""The settings a runbook works with, built from its parameters.

Every runbook takes the same connection parameters: where the local services keep their data
(``services_dir``), a ``port_offset`` that shifts every local port (to run a second set of
services beside the first), or explicit hosts of an existing cluster. Names of topics, the
keyspace and the Redis key prefix are plain settings overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.services.config import ServicesConfig, find_project_root


def default_run_dir() -> Path:
    """Where the pipeline's pid files and logs go: ``<repo>/.smartmeter/pipeline``."""
    return find_project_root() / ".smartmeter" / "pipeline"


def services_config(services_dir: str | Path | None = None, port_offset: int = 0,
                    redis_password: str | None = None) -> ServicesConfig:
    """The local services' config: the defaults, every port shifted by ``port_offset``.

    >>> services_config("/tmp/x", 1000).kafka_bootstrap
    '127.0.0.1:10092,127.0.0.1:10093,127.0.0.1:10094'
    """
    if port_offset < 0 or port_offset % 1000:
        raise ConfigError(f"port_offset must be a non-negative multiple of 1000, got {port_offset}")
    d = ServicesConfig()
    extra: dict[str, Any] = {} if services_dir is None else {"base_dir": Path(services_dir)}
    if redis_password:
        extra["redis_password"] = SecretStr(redis_password)
    return ServicesConfig(
        kafka_ports=tuple(p + port_offset for p in d.kafka_ports),  # type: ignore[arg-type]
        kafka_controller_ports=tuple(p + port_offset for p in d.kafka_controller_ports),  # type: ignore[arg-type]
        cassandra_port=d.cassandra_port + port_offset,
        cassandra_storage_port=d.cassandra_storage_port + port_offset,
        redis_port=d.redis_port + port_offset, **extra)


def stack_settings(services: ServicesConfig | None = None, *, kafka_bootstrap: str | None = None,
                   cassandra_hosts: str | None = None, cassandra_port: int | None = None,
                   redis_url: str | None = None, **overrides: Any) -> Settings:
    """Settings on the real backends (Kafka, Cassandra, Redis).

    Hosts given explicitly win; the others come from ``services`` (the local services), and
    without it from the environment (``SMARTMETER_KAFKA_BOOTSTRAP``, ...).

    >>> s = stack_settings(services_config(port_offset=1000), topic_readings="t1_readings")
    >>> s.bus, s.kafka_bootstrap.split(",")[0], s.cassandra_port, s.redis_url
    ('kafka', '127.0.0.1:10092', 10042, 'redis://127.0.0.1:7379/0')
    """
    hosts: dict[str, Any] = {}
    if services is not None:
        hosts = {"kafka_bootstrap": services.kafka_bootstrap, "cassandra_hosts": services.host,
                 "cassandra_port": services.cassandra_port, "redis_url": services.redis_url,
                 "services": services}
        if services.redis_password is not None:
            hosts["redis_password"] = services.redis_password.get_secret_value()
    given = {"kafka_bootstrap": kafka_bootstrap, "cassandra_hosts": cassandra_hosts,
             "cassandra_port": cassandra_port, "redis_url": redis_url}
    hosts.update({k: v for k, v in given.items() if v})
    s = build_settings(**hosts, **{k: v for k, v in overrides.items() if v is not None})
    return s.with_backends("real")


def settings_env(settings: Settings) -> dict[str, str]:
    """``SMARTMETER_*`` environment variables that give a child process the same settings
    (secrets included: they go to the child's environment, never to a log)."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        if name == "services":
            continue
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = value.absolute()
        env[f"SMARTMETER_{name.upper()}"] = str(value)
    return env
