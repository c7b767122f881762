"""Start, stop and report the local services together."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services.base import ServiceStatus
from smartmeter_lib.services.cassandra import CassandraService
from smartmeter_lib.services.config import SERVICE_NAMES, ServicesConfig
from smartmeter_lib.services.kafka import KafkaService
from smartmeter_lib.services.process import ProcessService
from smartmeter_lib.services.redis import RedisService

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServiceManager:
    """The local Kafka cluster, Cassandra node and Redis server described by one config."""

    def __init__(self, config: ServicesConfig | None = None) -> None:
        self.config = config or ServicesConfig()
        self.services: dict[str, ProcessService] = {
            "kafka": KafkaService(self.config),
            "cassandra": CassandraService(self.config),
            "redis": RedisService(self.config),
        }

    def select(self, names: Iterable[str] | None = None) -> list[str]:
        """Validated service names in canonical order (all of them when ``names`` is empty)."""
        wanted = list(dict.fromkeys(n.lower() for n in names)) if names else list(SERVICE_NAMES)
        unknown = [n for n in wanted if n not in self.services]
        if unknown:
            raise ServiceError(
                f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICE_NAMES)}"
            )
        return [n for n in SERVICE_NAMES if n in wanted]

    def service(self, name: str) -> ProcessService:
        return self.services[self.select([name])[0]]

    def _each(self, names: list[str], action: Callable[[str], T]) -> dict[str, T]:
        """Run ``action`` for each name concurrently; one ServiceError names every failure."""
        results: dict[str, T] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="svc") as pool:
            futures = {name: pool.submit(action, name) for name in names}
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except ServiceError as exc:
                    errors.append(str(exc))
        if errors:
            raise ServiceError("\n".join(errors))
        return results

    def up(
        self, names: Iterable[str] | None = None, timeout: float | None = None
    ) -> list[ServiceStatus]:
        """Start the named services (all by default) concurrently and wait until each answers.

        Services that already run and answer are left alone, so calling it again is cheap.
        """
        selected = self.select(names)

        def start(name: str) -> float:
            t0 = time.monotonic()
            self.services[name].start(timeout)
            took = time.monotonic() - t0
            log.info("%s is ready (%.1f s)", name, took)
            return took

        self._each(selected, start)
        return self.status(selected)

    def down(self, names: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Stop the named services (all by default); stopping a stopped service is a no-op."""
        selected = self.select(names)
        self._each(selected, lambda name: self.services[name].stop(timeout))

    def status(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        """The status of the named services (all by default), in canonical order."""
        selected = self.select(names)
        found = self._each(selected, lambda name: self.services[name].status())
        return [found[name] for name in selected]

    def versions(self) -> dict[str, str | None]:
        """The versions that would run: from the jar cache and the redis-server binary."""
        kafka = self.services["kafka"]
        cassandra = self.services["cassandra"]
        redis = self.services["redis"]
        assert isinstance(kafka, KafkaService)
        assert isinstance(cassandra, CassandraService)
        assert isinstance(redis, RedisService)
        return {
            "kafka": kafka.version(),
            "cassandra": cassandra.version(),
            "redis": redis.version(),
        }
