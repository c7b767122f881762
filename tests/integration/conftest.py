"""Real Kafka, Cassandra and Redis for the integration tests.

The session fixture ``services`` starts the local services (a no-op when they already run) under
``$SMARTMETER_TEST_SERVICES_DIR`` (default ``/tmp/smartmeter-test-services``) on the default
ports, and stops them at the end unless ``SMARTMETER_KEEP_SERVICES=1`` (handy while iterating:
the next run then starts in seconds). ``SMARTMETER_TEST_REDIS_PASSWORD`` sets a Redis password.
``SMARTMETER_TEST_PORT_OFFSET=N`` (a multiple of 1000) shifts every port by N, so that two
checkouts can run their own services side by side (use a separate services dir too).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services import ServiceManager, ServicesConfig

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration is an integration test."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def keep_services() -> bool:
    return os.environ.get("SMARTMETER_KEEP_SERVICES") == "1"


def integration_config() -> ServicesConfig:
    """The ServicesConfig the integration suite runs with."""
    base = Path(os.environ.get("SMARTMETER_TEST_SERVICES_DIR") or "/tmp/smartmeter-test-services")
    password = os.environ.get("SMARTMETER_TEST_REDIS_PASSWORD")
    offset = int(os.environ.get("SMARTMETER_TEST_PORT_OFFSET") or 0)
    d = ServicesConfig()
    ports = {
        "kafka_ports": tuple(p + offset for p in d.kafka_ports),
        "kafka_controller_ports": tuple(p + offset for p in d.kafka_controller_ports),
        "cassandra_port": d.cassandra_port + offset,
        "cassandra_storage_port": d.cassandra_storage_port + offset,
        "redis_port": d.redis_port + offset,
    }
    return ServicesConfig(base_dir=base, redis_password=SecretStr(password) if password else None,
                          **ports)


@pytest.fixture(scope="session")
def services() -> Iterator[ServicesConfig]:
    """Kafka (3 brokers), Cassandra and Redis, running and answering; yields their config."""
    config = integration_config()
    manager = ServiceManager(config)
    t0 = time.monotonic()
    try:
        manager.up()
    except ServiceError:
        if not keep_services():
            manager.down()
        raise
    log.info("services up in %.1f s under %s", time.monotonic() - t0, config.base_dir)
    yield config
    if keep_services():
        log.info("leaving the services running (SMARTMETER_KEEP_SERVICES=1)")
    else:
        manager.down()


@pytest.fixture(scope="session")
def service_manager(services: ServicesConfig) -> ServiceManager:
    """A ServiceManager for the running integration services."""
    return ServiceManager(services)
